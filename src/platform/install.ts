/**
 * `kiban init`: create or upgrade the database, load master data and, with `--demo`, create
 * one actor of each type and write their tokens to `<data dir>/demo-credentials.json` (0600).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Actor, ActorStore, NewActor } from './actors.ts';
import type { AuditActor, AuditLog, SystemActor } from './audit.ts';
import type { Clock } from './clock.ts';
import type { Database, Queryable } from './db.ts';
import { loadLocalGovernments } from './master-data.ts';
import { migrate } from './migrations.ts';
import type { Config } from '../config.ts';
import type { KeyCustody } from '../pki/key-store.ts';
import { ensureMasterKeyFile } from '../pki/master-key.ts';
import { MY_NUMBER_KEY_LABEL, MY_NUMBER_KEY_PURPOSE } from '../numbering/numbering.service.ts';
import { DEMO_VERIFIER_ID, ensureDemoVerifier } from '../verifiers/demo.ts';

export const CLI_ACTOR: SystemActor = { id: null, type: 'cli', name: 'kiban-cli' };

/** The demo actors, by the names other issues and acceptance checks rely on. */
export const DEMO_ACTORS: ReadonlyArray<NewActor> = [
  {
    name: 'operator',
    type: 'agencyOperator',
    displayName: '地方公共団体情報システム機構 運用担当 (demo)',
    roles: ['registry', 'ca', 'cards', 'auditor'],
  },
  { name: 'prefecture', type: 'prefecture', prefectureCode: '13' },
  { name: 'municipality', type: 'municipality', municipalityCode: '131016' },
  { name: 'municipality2', type: 'municipality', municipalityCode: '141046' },
  {
    name: 'nationalAgency',
    type: 'nationalAgency',
    displayName: '国の機関等 (demo)',
    purposes: ['pensionBenefits'],
  },
  // Bound to the demo verifier (src/verifiers/demo.ts), registered as both kinds.
  {
    name: 'signatureVerifier',
    type: 'signatureVerifier',
    displayName: '署名検証者 (demo)',
    verifierId: DEMO_VERIFIER_ID,
  },
  {
    name: 'authVerifier',
    type: 'authVerifier',
    displayName: '利用者証明検証者 (demo)',
    verifierId: DEMO_VERIFIER_ID,
  },
];

export interface DemoCredential {
  type: string;
  token: string;
  displayName: string;
  roles?: string[];
  municipalityCode?: string;
  prefectureCode?: string;
  purposes?: string[];
  verifierId?: string;
}

export interface DemoCredentialsFile {
  baseUrl: string;
  actors: Record<string, DemoCredential>;
}

export interface InitOptions {
  demo: boolean;
  dataDir: string;
  baseUrl: string;
}

export interface InitReport {
  migrationsApplied: number[];
  masterKeyCreated: boolean;
  keysCreated: string[];
  localGovernments: number;
  demo: 'created' | 'renewed' | 'present' | 'skipped';
  credentialsFile: string | null;
}

export const credentialsPath = (dataDir: string): string =>
  path.join(dataDir, 'demo-credentials.json');

/**
 * Creates the agency's keys that do not exist yet: today the My Number generation key
 * (番号法第8条), wrapped under the master key like the CA keys.
 */
export async function ensureAgencyKeys(
  db: Database,
  deps: { keys: () => KeyCustody; audit: AuditLog },
): Promise<string[]> {
  const created: string[] = [];
  await db.transaction(async (tx) => {
    const keys = deps.keys();
    if (!(await keys.exists(tx, MY_NUMBER_KEY_LABEL))) {
      await keys.createSymmetricKey(tx, {
        label: MY_NUMBER_KEY_LABEL,
        purpose: MY_NUMBER_KEY_PURPOSE,
      });
      await deps.audit.append(tx, CLI_ACTOR, {
        action: 'key.create',
        subjectType: 'system',
        subject: MY_NUMBER_KEY_LABEL,
      });
      created.push(MY_NUMBER_KEY_LABEL);
    }
  });
  return created;
}

export async function initialise(
  db: Database,
  deps: {
    actors: ActorStore;
    audit: AuditLog;
    clock: Clock;
    keys: () => KeyCustody;
    config: Pick<Config, 'masterKey'>;
    /** Creates the JPKI CAs (generation 1 of each kind) when missing. */
    jpki?: { cas: { ensureCas(db: Database, actor: AuditActor): Promise<{ keyLabel: string }[]> } };
  },
  options: InitOptions,
): Promise<InitReport> {
  const migrationsApplied = await migrate(db);
  const { masterKey } = deps.config;
  if (masterKey.env === null && !existsSync(masterKey.file)) {
    // A new master key would orphan every key wrapped under the lost one: refuse instead.
    const held = await db.query<{ n: number; kek: string | null }>(
      "SELECT count(*)::int AS n, min(kek_id) AS kek FROM key_store WHERE backend = 'software'",
    );
    const row = held.rows[0];
    if (row && row.n > 0) {
      throw new Error(
        `the master key file ${masterKey.file} is missing, but the key store holds ${row.n} key(s) wrapped under master key ${row.kek ?? '?'}; restore the file from backup or set KIBAN_MASTER_KEY`,
      );
    }
  }
  const masterKeyCreated = masterKey.env === null && ensureMasterKeyFile(masterKey.file).created;
  const keysCreated = await ensureAgencyKeys(db, deps);
  if (deps.jpki) {
    for (const ca of await deps.jpki.cas.ensureCas(db, CLI_ACTOR)) keysCreated.push(ca.keyLabel);
  }
  const localGovernments = await db.transaction(async (tx) => {
    const n = await loadLocalGovernments(tx);
    await deps.audit.append(tx, CLI_ACTOR, {
      action: 'system.init',
      subjectType: 'system',
      details: { migrationsApplied: migrationsApplied.map(String), localGovernments: n },
    });
    return n;
  });
  if (options.demo) {
    // The demo verifier credentials act for the demo verifier; bind ones made before it existed.
    await db.transaction((tx) => ensureDemoVerifier(tx, deps, CLI_ACTOR, DEMO_ACTORS));
  }
  if (!options.demo) {
    return {
      migrationsApplied,
      masterKeyCreated,
      keysCreated,
      localGovernments,
      demo: 'skipped',
      credentialsFile: null,
    };
  }
  const file = credentialsPath(options.dataDir);
  const marker = await db.query("SELECT 1 FROM installation WHERE key = 'demo'");
  if (marker.rows.length > 0 && existsSync(file)) {
    // Keep the file's baseUrl in step with where the service is served now.
    updateCredentialsBaseUrl(file, options.baseUrl);
    return {
      migrationsApplied,
      masterKeyCreated,
      keysCreated,
      localGovernments,
      demo: 'present',
      credentialsFile: file,
    };
  }
  // First run, or the credentials file was lost: (re)issue one token per demo actor.
  const renewing = marker.rows.length > 0;
  const credentials = await db.transaction(async (tx) => {
    const out: Record<string, DemoCredential> = {};
    for (const spec of DEMO_ACTORS) {
      const actor =
        (await deps.actors.byName(tx, spec.name)) ?? (await createActor(tx, deps, spec));
      if (renewing) {
        await tx.query(
          "UPDATE api_tokens SET revoked_at = $2 WHERE actor_id = $1 AND label = 'demo' AND revoked_at IS NULL",
          [actor.id, deps.clock.now()],
        );
      }
      const { token } = await deps.actors.createToken(tx, actor.id, { label: 'demo' });
      await deps.audit.append(tx, CLI_ACTOR, {
        action: 'token.create',
        subjectType: 'actor',
        subject: actor.name,
        details: { label: 'demo' },
      });
      out[actor.name] = credentialView(actor, token);
    }
    await tx.query(
      `INSERT INTO installation (key, value, updated_at) VALUES ('demo', $1, $2)
       ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at`,
      [JSON.stringify({ actors: Object.keys(out) }), deps.clock.now()],
    );
    return out;
  });
  writeCredentials(file, { baseUrl: options.baseUrl, actors: credentials });
  return {
    migrationsApplied,
    masterKeyCreated,
    keysCreated,
    localGovernments,
    demo: renewing ? 'renewed' : 'created',
    credentialsFile: file,
  };
}

async function createActor(
  tx: Queryable,
  deps: { actors: ActorStore; audit: AuditLog },
  spec: NewActor,
): Promise<Actor> {
  const actor = await deps.actors.create(tx, spec);
  await deps.audit.append(tx, CLI_ACTOR, {
    action: 'actor.create',
    subjectType: 'actor',
    subject: actor.name,
    details: { type: actor.type },
  });
  return actor;
}

function credentialView(actor: Actor, token: string): DemoCredential {
  return {
    type: actor.type,
    token,
    displayName: actor.displayName,
    ...(actor.roles.length ? { roles: actor.roles } : {}),
    ...(actor.municipalityCode ? { municipalityCode: actor.municipalityCode } : {}),
    ...(actor.prefectureCode ? { prefectureCode: actor.prefectureCode } : {}),
    ...(actor.purposes.length ? { purposes: actor.purposes } : {}),
    ...(actor.verifierId ? { verifierId: actor.verifierId } : {}),
  };
}

/** Points an existing credentials file at the URL the service is reachable at now. */
export function updateCredentialsBaseUrl(file: string, baseUrl: string): void {
  const current = JSON.parse(readFileSync(file, 'utf8')) as DemoCredentialsFile;
  if (current.baseUrl !== baseUrl) writeCredentials(file, { ...current, baseUrl });
}

/** Writes the file atomically with mode 0600 (it holds bearer tokens). */
function writeCredentials(file: string, content: DemoCredentialsFile): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}
