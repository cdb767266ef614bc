/**
 * The `kiban` command line. Exit codes: 0 success, 1 failure (including a broken audit
 * chain), 2 usage or configuration error.
 */
import { parseArgs } from 'node:util';
import { buildApp, buildServices, type Services, startJpkiScheduler, VERSION } from './app.ts';
import type { CertificateKind } from './jpki/jpki.profiles.ts';
import {
  ConfigError,
  type Config,
  databaseTarget,
  describeDatabase,
  loadConfig,
} from './config.ts';
import {
  ACTOR_TYPES,
  OPERATOR_ROLES,
  type ActorType,
  type OperatorRole,
} from './platform/actors.ts';
import { verifyAuditChain } from './platform/audit.ts';
import { type Database, openDatabase } from './platform/db.ts';
import { isAppError } from './platform/errors.ts';
import {
  CLI_ACTOR,
  credentialsPath,
  initialise,
  type InitReport,
  updateCredentialsBaseUrl,
} from './platform/install.ts';
import { migrationStatus } from './platform/migrations.ts';
import { listParked } from './platform/outbox.ts';
import {
  DEFAULT_SEED_BATCH_SIZE,
  MAX_SEED_BATCH_SIZE,
  readSeedState,
  SeedMismatchError,
  type SeedProgress,
  seedResidents,
} from './registry/seed.ts';
import { DEFAULT_SYNTHETIC_SEED } from './registry/synthetic.ts';

const USAGE = `kiban ${VERSION} — national identity backbone

Usage:
  kiban init [--demo] [--data DIR]        create/upgrade the database, load master data;
                                          --demo also creates demo actors and writes
                                          <data>/demo-credentials.json (mode 0600)
  kiban serve [--port N] [--host H] [--data DIR]
                                          run the HTTP service (default 127.0.0.1:8080)
  kiban start [--port N] [--host H] [--data DIR]
                                          init --demo (first time only), then serve
  kiban actor create --name NAME --type TYPE [--municipality-code C] [--prefecture-code P]
                     [--roles r1,r2] [--purposes p1,p2] [--display-name TEXT]
  kiban actor list
  kiban token create --actor NAME [--label TEXT] [--expires-in-days N]
  kiban token revoke --id TOKEN_ID
  kiban audit verify                       recompute the audit hash chain
  kiban outbox status                      consumer cursors and parked events
  kiban seed --residents N [--batch 1000] [--seed S] [--data DIR]
                                          register synthetic residents (職権記載) through the
                                          intake path until N are seeded; run again to resume
                                          or to grow to a larger N. Ctrl+C stops after the
                                          current batch (exit 130)
  kiban ca list                            the JPKI CA generations
  kiban ca rollover sign|auth              add a CA generation (new key, new root); older
                                          generations stay valid
  kiban ca compromise sign|auth GENERATION record 発行者署名符号の漏えい: revoke every
                                          certificate the key signed, announce it publicly,
                                          publish that generation's CRLs
  kiban crl publish                        publish every CRL partition and ARL now
  kiban jpki recover                       abandon issuance interrupted between recording
                                          and storing (pending for over 10 minutes)

Environment: KIBAN_DATA_DIR (default ./data), DATABASE_URL (PostgreSQL instead of PGlite),
KIBAN_PORT, KIBAN_HOST, KIBAN_PUBLIC_URL, KIBAN_LOG_LEVEL, KIBAN_BODY_LIMIT; JPKI:
KIBAN_CRL_INTERVAL_HOURS, KIBAN_JPKI_POLICY_*; HSM: KIBAN_PKCS11_MODULE, KIBAN_PKCS11_TOKEN,
KIBAN_PKCS11_PIN[_FILE] (see README).
Actor types: ${ACTOR_TYPES.join(', ')}. Operator roles: ${OPERATOR_ROLES.join(', ')}.`;

class UsageError extends Error {}

const OPTIONS = {
  data: { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
  demo: { type: 'boolean' },
  name: { type: 'string' },
  type: { type: 'string' },
  'municipality-code': { type: 'string' },
  'prefecture-code': { type: 'string' },
  roles: { type: 'string' },
  purposes: { type: 'string' },
  'display-name': { type: 'string' },
  actor: { type: 'string' },
  label: { type: 'string' },
  'expires-in-days': { type: 'string' },
  residents: { type: 'string' },
  batch: { type: 'string' },
  seed: { type: 'string' },
  id: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const;

type Values = ReturnType<
  typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>
>['values'];

const out = (s: string): void => {
  process.stdout.write(`${s}\n`);
};
const err = (s: string): void => {
  process.stderr.write(`${s}\n`);
};

async function withDatabase<T>(config: Config, fn: (db: Database) => Promise<T>): Promise<T> {
  const db = await openDatabase(databaseTarget(config));
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

function printInit(config: Config, report: InitReport): void {
  out(`database: ${describeDatabase(config)}`);
  out(
    report.migrationsApplied.length
      ? `migrations applied: ${report.migrationsApplied.join(', ')}`
      : 'migrations: up to date',
  );
  out(`local governments loaded: ${report.localGovernments}`);
  if (report.masterKeyCreated) {
    out(
      `master key created: ${config.masterKey.file} — back it up; every key in the key store is wrapped under it`,
    );
  }
  if (report.keysCreated.length) out(`keys created: ${report.keysCreated.join(', ')}`);
  if (report.credentialsFile) {
    out(`demo actors: ${report.demo}; credentials in ${report.credentialsFile}`);
  }
}

async function cmdInit(config: Config, demo: boolean): Promise<void> {
  await withDatabase(config, async (db) => {
    const services = buildServices({ config, db });
    const report = await initialise(db, services, {
      demo,
      dataDir: config.dataDir,
      baseUrl: config.publicUrl,
    });
    printInit(config, report);
  });
}

async function cmdServe(config: Config, initFirst: boolean): Promise<void> {
  const db = await openDatabase(databaseTarget(config));
  let report: InitReport | null = null;
  if (initFirst) {
    const services = buildServices({ config, db });
    report = await initialise(db, services, {
      demo: true,
      dataDir: config.dataDir,
      baseUrl: config.publicUrl,
    });
    printInit(config, report);
  }
  const { app, services } = await buildApp({ config, db });
  let stopScheduler: () => Promise<void> = async () => undefined;
  const shutdown = async (signal: string) => {
    app.log.info({ signal }, 'shutting down');
    await stopScheduler();
    await app.close();
    await db.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  await app.listen({ port: config.port, host: config.host });
  services.outbox.start();
  stopScheduler = startJpkiScheduler(services, (level, msg, fields) => app.log[level](fields, msg));
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  // With --port 0 the real port is known only now; an explicit public URL is left alone.
  const base = config.port === 0 ? config.publicUrl.replace(/:\d+$/, `:${port}`) : config.publicUrl;
  if (report?.credentialsFile && base !== config.publicUrl) {
    updateCredentialsBaseUrl(report.credentialsFile, base);
  }
  out(`Kiban ${VERSION} listening on ${base}  (${describeDatabase(config)})`);
  out(`  API docs:      ${base}/docs   (OpenAPI: ${base}/openapi.json)`);
  out(`  health:        ${base}/healthz  ${base}/readyz`);
  out(`  demo tokens:   ${credentialsPath(config.dataDir)}`);
  out('Press Ctrl+C to stop.');
}

/** Runs `fn` with the services, then releases them (the HSM session) and the database. */
async function withServices<T>(config: Config, fn: (s: Services) => Promise<T>): Promise<T> {
  return withDatabase(config, async (db) => {
    const services = buildServices({ config, db });
    try {
      return await fn(services);
    } finally {
      await services.close();
    }
  });
}

function kindOf(raw: string | undefined): CertificateKind {
  if (raw !== 'sign' && raw !== 'auth') throw new UsageError('the CA kind is sign or auth');
  return raw;
}

async function cmdCa(config: Config, sub: string | undefined, args: string[]): Promise<void> {
  await withServices(config, async ({ db, jpki }) => {
    if (sub === 'list') {
      for (const ca of await jpki.cas.list(db)) {
        out(
          `${ca.kind}\tgeneration ${ca.generation}\tserial ${ca.serial}\t${ca.notBefore.toISOString()} – ${ca.notAfter.toISOString()}${ca.compromisedAt ? '\tCOMPROMISED' : ''}`,
        );
      }
      return;
    }
    if (sub === 'rollover') {
      const ca = await jpki.cas.rollover(db, kindOf(args[0]), CLI_ACTOR);
      out(
        `created ${ca.kind} CA generation ${ca.generation} (serial ${ca.serial}, key ${ca.keyLabel})`,
      );
      const r = await jpki.crls.publish(db, CLI_ACTOR, {
        kinds: [ca.kind],
        generation: ca.generation,
      });
      out(`published ${r.crls} CRL(s) for it`);
      return;
    }
    if (sub === 'compromise') {
      const kind = kindOf(args[0]);
      const generation = Number(args[1]);
      if (!Number.isInteger(generation) || generation < 1) {
        throw new UsageError('kiban ca compromise sign|auth GENERATION');
      }
      const ca = await jpki.cas.get(db, kind, generation);
      const r = await jpki.revocations.issuerKeyCompromise(db, jpki.cas, CLI_ACTOR, ca);
      out(
        `${kind} CA generation ${generation}: ${r.revoked} certificate(s) revoked; announcement ${r.announcementId}`,
      );
      const p = await jpki.crls.publish(db, CLI_ACTOR, { kinds: [kind], generation });
      out(`published ${p.crls} CRL(s) listing ${p.entries} entr${p.entries === 1 ? 'y' : 'ies'}`);
      out(`new certificates need a sound generation: kiban ca rollover ${kind}`);
      return;
    }
    throw new UsageError('kiban ca list|rollover|compromise');
  });
}

async function cmdCrlPublish(config: Config): Promise<void> {
  await withServices(config, async ({ db, jpki }) => {
    const r = await jpki.crls.publish(db, CLI_ACTOR);
    for (const c of r.byCa) {
      out(
        `${c.kind} generation ${c.generation}: ${c.crls} CRL(s), ${c.entries} entr${c.entries === 1 ? 'y' : 'ies'}`,
      );
    }
  });
}

async function cmdJpkiRecover(config: Config): Promise<void> {
  await withServices(config, async ({ db, jpki }) => {
    const abandoned = await jpki.issuance.abandonStale(db, CLI_ACTOR);
    out(
      abandoned.length
        ? `abandoned ${abandoned.length} interrupted issuance(s): serials ${abandoned.join(', ')}`
        : 'no interrupted issuance',
    );
  });
}

function csv(v: string | undefined): string[] {
  return v
    ? v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : [];
}

async function cmdActor(config: Config, sub: string | undefined, v: Values): Promise<void> {
  if (sub === 'list') {
    await withDatabase(config, async (db) => {
      const { actors } = buildServices({ config, db });
      for (const a of await actors.list(db)) {
        const binding =
          a.municipalityCode ?? a.prefectureCode ?? (a.roles.join('|') || a.purposes.join('|'));
        out(`${a.name}\t${a.type}\t${binding}\t${a.status}\t${a.displayName}`);
      }
    });
    return;
  }
  if (sub !== 'create') throw new UsageError('kiban actor create|list');
  if (!v.name || !v.type) throw new UsageError('actor create needs --name and --type');
  if (!(ACTOR_TYPES as readonly string[]).includes(v.type)) {
    throw new UsageError(`--type must be one of ${ACTOR_TYPES.join(', ')}`);
  }
  const roles = csv(v.roles);
  for (const r of roles) {
    if (!(OPERATOR_ROLES as readonly string[]).includes(r)) {
      throw new UsageError(`unknown role ${r}; roles: ${OPERATOR_ROLES.join(', ')}`);
    }
  }
  await withDatabase(config, async (db) => {
    const { actors, audit } = buildServices({ config, db });
    const actor = await db.transaction(async (tx) => {
      const a = await actors.create(tx, {
        name: v.name ?? '',
        type: v.type as ActorType,
        roles: roles as OperatorRole[],
        purposes: csv(v.purposes),
        ...(v['municipality-code'] ? { municipalityCode: v['municipality-code'] } : {}),
        ...(v['prefecture-code'] ? { prefectureCode: v['prefecture-code'] } : {}),
        ...(v['display-name'] ? { displayName: v['display-name'] } : {}),
      });
      await audit.append(tx, CLI_ACTOR, {
        action: 'actor.create',
        subjectType: 'actor',
        subject: a.name,
        details: { type: a.type },
      });
      return a;
    });
    out(
      `created actor ${actor.name} (${actor.type}); issue a token with: kiban token create --actor ${actor.name}`,
    );
  });
}

async function cmdToken(config: Config, sub: string | undefined, v: Values): Promise<void> {
  if (sub === 'revoke') {
    if (!v.id) throw new UsageError('token revoke needs --id');
    await withDatabase(config, async (db) => {
      const { actors, audit } = buildServices({ config, db });
      const done = await db.transaction(async (tx) => {
        const ok = await actors.revokeToken(tx, v.id ?? '');
        if (ok) {
          await audit.append(tx, CLI_ACTOR, {
            action: 'token.revoke',
            subjectType: 'token',
            subject: v.id ?? '',
          });
        }
        return ok;
      });
      if (!done) throw new Error(`no active token with id ${v.id}`);
      out(`revoked token ${v.id}`);
    });
    return;
  }
  if (sub !== 'create') throw new UsageError('kiban token create|revoke');
  if (!v.actor) throw new UsageError('token create needs --actor NAME');
  let expiresAt: Date | undefined;
  if (v['expires-in-days']) {
    const days = Number(v['expires-in-days']);
    if (!Number.isInteger(days) || days < 1 || days > 3650) {
      throw new UsageError('--expires-in-days must be a whole number from 1 to 3650');
    }
    expiresAt = new Date(Date.now() + days * 86_400_000);
  }
  await withDatabase(config, async (db) => {
    const { actors, audit } = buildServices({ config, db });
    const result = await db.transaction(async (tx) => {
      const actor = await actors.byName(tx, v.actor ?? '');
      if (!actor) throw new Error(`no actor named ${v.actor}`);
      const t = await actors.createToken(tx, actor.id, {
        label: v.label ?? 'cli',
        ...(expiresAt ? { expiresAt } : {}),
      });
      await audit.append(tx, CLI_ACTOR, {
        action: 'token.create',
        subjectType: 'actor',
        subject: actor.name,
        details: { tokenId: t.id, label: v.label ?? 'cli' },
      });
      return t;
    });
    err(`token id ${result.id} for ${v.actor} (shown once; only its hash is stored):`);
    out(result.token);
  });
}

async function cmdAudit(config: Config, sub: string | undefined): Promise<boolean> {
  if (sub !== 'verify') throw new UsageError('kiban audit verify');
  return withDatabase(config, async (db) => {
    const result = await verifyAuditChain(db);
    if (result.ok) {
      out(
        `audit chain OK: ${result.entries} entries, last seq ${result.lastSeq}, head ${result.lastHash}`,
      );
      return true;
    }
    out(
      `audit chain BROKEN at entry ${result.brokenAt}: ${result.reason} (${result.entries} entries verified before it)`,
    );
    return false;
  });
}

async function cmdOutbox(config: Config, sub: string | undefined): Promise<void> {
  if (sub !== 'status') throw new UsageError('kiban outbox status');
  await withDatabase(config, async (db) => {
    const consumers = await db.query<{ name: string; cursor: string }>(
      'SELECT name, cursor FROM outbox_consumers ORDER BY name',
    );
    const last = await db.query<{ id: string | null }>('SELECT max(id) AS id FROM outbox_events');
    out(`events: last id ${last.rows[0]?.id ?? 0}`);
    for (const c of consumers.rows) out(`consumer ${c.name}: cursor ${c.cursor}`);
    for (const p of await listParked(db)) {
      out(
        `parked: ${p.consumer} event ${p.eventId} (${p.topic}) after ${p.attempts} attempts: ${p.lastError}`,
      );
    }
  });
}

function wholeNumber(raw: string, flag: string, min: number, max: number): number {
  const n = /^[0-9][0-9_,]*$/.test(raw) ? Number(raw.replace(/[_,]/g, '')) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(
      `${flag} must be a whole number from ${min} to ${max.toLocaleString('en-US')}`,
    );
  }
  return n;
}

const count = (n: number): string => n.toLocaleString('en-US');

/** `s` as one POSIX shell word, for commands printed for the user to run. */
const shellWord = (s: string): string =>
  /^[\w./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
}

/** Progress on stderr: a redrawn bar on a terminal, a line every few seconds otherwise. */
function seedProgressReporter(startedMs: number): {
  update(p: SeedProgress): void;
  finish(): void;
} {
  const tty = process.stderr.isTTY === true;
  let lastLine = 0;
  let drawn = false;
  return {
    update(p) {
      const elapsed = (Date.now() - startedMs) / 1000;
      const rate = p.added / Math.max(elapsed, 0.001);
      const eta = rate > 0 ? (p.target - p.done) / rate : Infinity;
      const text = `${count(p.done)}/${count(p.target)}  ${count(Math.round(rate))}/s  ETA ${duration(eta)}`;
      if (tty) {
        const width = 30;
        const filled = Math.min(width, Math.round((width * p.done) / Math.max(p.target, 1)));
        process.stderr.write(
          `\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${text}\x1b[K`,
        );
        drawn = true;
      } else if (Date.now() - lastLine >= 5000 || p.done >= p.target) {
        err(`seed: ${text}`);
        lastLine = Date.now();
      }
    },
    finish() {
      if (drawn) process.stderr.write('\n');
      drawn = false;
    },
  };
}

/** `kiban seed`: 0 when the target is reached, 130 when stopped by Ctrl+C (resumable). */
async function cmdSeed(config: Config, v: Values): Promise<number> {
  if (v.residents === undefined) throw new UsageError('seed needs --residents N');
  const target = wholeNumber(v.residents, '--residents', 1, 100_000_000);
  const batchSize =
    v.batch === undefined
      ? DEFAULT_SEED_BATCH_SIZE
      : wholeNumber(v.batch, '--batch', 1, MAX_SEED_BATCH_SIZE);
  if (v.seed !== undefined && (v.seed.length < 1 || v.seed.length > 200)) {
    throw new UsageError('--seed must be 1 to 200 characters');
  }
  return withDatabase(config, async (db) => {
    const migrations = await migrationStatus(db);
    if (migrations.pending > 0 || migrations.applied === 0) {
      throw new Error('the database is not initialised or not up to date; run kiban init first');
    }
    const services = buildServices({ config, db });
    const before = await readSeedState(db);
    if (before && v.seed !== undefined && v.seed !== before.seed) {
      throw new UsageError(new SeedMismatchError(before.seed, v.seed).message);
    }
    const already = before?.done ?? 0;
    const seed = before?.seed ?? v.seed ?? DEFAULT_SYNTHETIC_SEED;
    if (already >= target) {
      out(
        `already seeded: ${count(already)} residents (seed ${JSON.stringify(seed)}); nothing to do`,
      );
      out(`database: ${describeDatabase(config)}`);
      return 0;
    }
    let stopping = false;
    const onSigint = () => {
      stopping = true;
      err(
        `${process.stderr.isTTY ? '\n' : ''}stopping after the current batch commits (Ctrl+C again aborts it; it rolls back)…`,
      );
    };
    process.once('SIGINT', onSigint);
    err(
      `seeding ${count(target - already)} residents (${count(already)} already, target ${count(target)}, seed ${JSON.stringify(seed)}, batches of ${count(batchSize)}) into ${describeDatabase(config)}; Ctrl+C stops after the current batch`,
    );
    const started = Date.now();
    const progress = seedProgressReporter(started);
    try {
      const result = await seedResidents(services, {
        count: target,
        batchSize,
        ...(v.seed !== undefined ? { seed: v.seed } : {}),
        shouldStop: () => stopping,
        onProgress: (p) => progress.update(p),
      });
      progress.finish();
      const seconds = (Date.now() - started) / 1000;
      const rate = result.added / Math.max(seconds, 0.001);
      out(
        `seeded ${count(result.added)} residents in ${duration(seconds)} (${count(Math.round(rate))}/s); ${count(result.done)} of ${count(result.target)} in total (seed ${JSON.stringify(result.seed)})`,
      );
      out(`database: ${describeDatabase(config)}`);
      if (result.complete) return 0;
      const again = [
        'kiban seed',
        `--residents ${target}`,
        ...(v.data ? [`--data ${shellWord(v.data)}`] : []),
      ].join(' ');
      out(`stopped at ${count(result.done)} of ${count(target)}; resume with: ${again}`);
      return 130;
    } catch (e) {
      progress.finish();
      if (e instanceof SeedMismatchError) throw new UsageError(e.message);
      throw e;
    } finally {
      process.removeListener('SIGINT', onSigint);
    }
  });
}

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    err(`${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values: v, positionals } = parsed;
  const [command, sub] = positionals;
  if (v.version) {
    out(VERSION);
    return 0;
  }
  if (v.help || !command || command === 'help') {
    out(USAGE);
    return command || v.help ? 0 : 2;
  }
  try {
    const config = loadConfig(process.env, { data: v.data, port: v.port, host: v.host });
    switch (command) {
      case 'init':
        await cmdInit(config, v.demo ?? false);
        return 0;
      case 'serve':
        await cmdServe(config, false);
        return -1;
      case 'start':
        await cmdServe(config, true);
        return -1;
      case 'actor':
        await cmdActor(config, sub, v);
        return 0;
      case 'token':
        await cmdToken(config, sub, v);
        return 0;
      case 'audit':
        return (await cmdAudit(config, sub)) ? 0 : 1;
      case 'outbox':
        await cmdOutbox(config, sub);
        return 0;
      case 'seed':
        return await cmdSeed(config, v);
      case 'ca':
        await cmdCa(config, sub, positionals.slice(2));
        return 0;
      case 'crl':
        if (sub !== 'publish') throw new UsageError('kiban crl publish');
        await cmdCrlPublish(config);
        return 0;
      case 'jpki':
        if (sub !== 'recover') throw new UsageError('kiban jpki recover');
        await cmdJpkiRecover(config);
        return 0;
      default:
        throw new UsageError(`unknown command ${command}`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      err(`${e.message}\n\n${USAGE}`);
      return 2;
    }
    if (e instanceof ConfigError) {
      err(e.message);
      return 2;
    }
    err(`kiban ${command}: ${isAppError(e) ? e.detail : (e as Error).message}`);
    return 1;
  }
}

const code = await main(process.argv.slice(2));
// -1: a server is running; let it keep the process alive.
if (code >= 0) process.exit(code);
