/**
 * Actors (who calls the system) and their bearer-token credentials.
 *
 * - 機構 (J-LIS) 従事者 → `agencyOperator`, with roles `registry`, `ca`, `cards`, `auditor`;
 * - 都道府県 → `prefecture` (bound to a 2-digit prefecture code);
 * - 市町村 / 市区町村 → `municipality` (bound to one 6-digit 全国地方公共団体コード);
 * - 国の機関等 → `nationalAgency` (with the legal purposes it may use);
 * - 署名検証者 → `signatureVerifier`; 団体署名検証者 → `organisationalSignatureVerifier`;
 *   利用者証明検証者 → `authVerifier` — each bound to a registered verifier (`verifierId`,
 *   src/verifiers); 住民 → `resident`.
 *
 * Tokens are 256-bit random values shown once at creation; only their SHA-256 is stored.
 */
import type { ChangeFeed } from './change-feed.ts';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Clock } from './clock.ts';
import type { Queryable } from './db.ts';
import { AppError } from './errors.ts';
import {
  isVerifierKind,
  jstDay,
  type VerifierRefusal,
  verifierRefusal,
} from '../verifiers/kinds.ts';

export const ACTOR_TYPES = [
  'agencyOperator',
  'prefecture',
  'municipality',
  'nationalAgency',
  'signatureVerifier',
  'organisationalSignatureVerifier',
  'authVerifier',
  'resident',
] as const;
export type ActorType = (typeof ACTOR_TYPES)[number];

export const OPERATOR_ROLES = ['registry', 'ca', 'cards', 'auditor'] as const;
export type OperatorRole = (typeof OPERATOR_ROLES)[number];

export interface Actor {
  id: string;
  name: string;
  type: ActorType;
  displayName: string;
  roles: OperatorRole[];
  municipalityCode: string | null;
  prefectureCode: string | null;
  purposes: string[];
  status: 'active' | 'suspended';
  /** The verifier (署名検証者等 / 利用者証明検証者) a verifier-kind credential acts for. */
  verifierId: string | null;
  /**
   * Why this verifier-kind credential may not be served at the time of the lookup
   * (suspended, ended, outside its agreement, unbound), or null. The edge refuses it (403).
   */
  verifierRefusal: VerifierRefusal | null;
}

export interface NewActor {
  name: string;
  type: ActorType;
  displayName?: string;
  roles?: OperatorRole[];
  municipalityCode?: string;
  prefectureCode?: string;
  purposes?: string[];
  /** Required for the verifier kinds: the registered verifier this credential acts for. */
  verifierId?: string;
}

const TOKEN_PREFIX = 'kbn_';

/** SHA-256 of the token text: what is stored and looked up. */
export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

export function generateToken(): string {
  return TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

const isActorType = (v: string): v is ActorType => (ACTOR_TYPES as readonly string[]).includes(v);
const isRole = (v: string): v is OperatorRole => (OPERATOR_ROLES as readonly string[]).includes(v);

interface ActorRow {
  [key: string]: unknown;
  id: string;
  name: string;
  type: string;
  display_name: string;
  roles: string[];
  municipality_code: string | null;
  prefecture_code: string | null;
  purposes: string[];
  status: string;
  verifier_id: string | null;
  verifier_status: string | null;
  verifier_from: string | null;
  verifier_until: string | null;
}

const ACTOR_COLUMNS =
  'a.id, a.name, a.type, a.display_name, a.roles, a.municipality_code, a.prefecture_code, a.purposes, a.status' +
  ', a.verifier_id, v.status AS verifier_status, v.agreement_from AS verifier_from, v.agreement_until AS verifier_until';
/** The verifier of a verifier credential, joined into every actor lookup (no extra query). */
const VERIFIER_JOIN = 'LEFT JOIN verifiers v ON v.id = a.verifier_id';

function toActor(r: ActorRow, today: string): Actor {
  if (!isActorType(r.type)) throw new Error(`unknown actor type in database: ${r.type}`);
  const verifier =
    r.verifier_status !== null && r.verifier_from !== null
      ? {
          status: r.verifier_status,
          agreementFrom: r.verifier_from,
          agreementUntil: r.verifier_until,
        }
      : null;
  return {
    id: r.id,
    name: r.name,
    type: r.type,
    displayName: r.display_name,
    roles: r.roles.filter(isRole),
    municipalityCode: r.municipality_code,
    prefectureCode: r.prefecture_code,
    purposes: r.purposes,
    status: r.status === 'suspended' ? 'suspended' : 'active',
    verifierId: r.verifier_id,
    verifierRefusal: isVerifierKind(r.type) ? verifierRefusal(verifier, today) : null,
  };
}

/** Authenticated tokens kept in memory (the oldest insertion is dropped first). */
const MAX_CACHED_TOKENS = 100_000;

interface CachedToken {
  row: ActorRow;
  expiresAt: Date | null;
  /** The `auth` change version it was read at: any later change to who may call invalidates it. */
  version: number;
}

export class ActorStore {
  readonly #tokens = new Map<string, CachedToken>();

  /**
   * With a running change feed, a token's actor is kept in memory until anything about tokens,
   * actors or verifiers changes (in any process: one poll; in this one: at once) or the token
   * expires, so the hot paths (OCSP, CRL) authenticate without a query.
   */
  constructor(
    private readonly clock: Clock,
    private readonly changes?: ChangeFeed,
  ) {}

  /**
   * Announces that this process changed tokens, actors or verifiers' standing: every cached
   * authentication is dropped at once (other processes see the trigger-advanced epoch).
   */
  changed(): void {
    this.changes?.touch('auth');
    this.#tokens.clear();
  }

  /** Validates the bindings each actor type needs, then inserts. */
  async create(db: Queryable, input: NewActor): Promise<Actor> {
    const roles = input.roles ?? [];
    const problems: string[] = [];
    if (!isActorType(input.type)) problems.push(`unknown actor type ${String(input.type)}`);
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(input.name)) {
      problems.push('name must be 1–64 characters of A–Z a–z 0–9 . _ - and start alphanumeric');
    }
    if (input.type === 'agencyOperator' && roles.length === 0) {
      problems.push(`an agencyOperator needs at least one role (${OPERATOR_ROLES.join(', ')})`);
    }
    if (input.type !== 'agencyOperator' && roles.length > 0) {
      problems.push('only agencyOperator actors have roles');
    }
    for (const r of roles) if (!isRole(r)) problems.push(`unknown role ${String(r)}`);
    if (input.type === 'nationalAgency' && (input.purposes ?? []).length === 0) {
      problems.push('a nationalAgency needs at least one legal purpose');
    }
    if (input.type !== 'nationalAgency' && (input.purposes ?? []).length > 0) {
      problems.push('only nationalAgency actors have legal purposes');
    }
    let municipalityCode: string | null = null;
    let prefectureCode: string | null = null;
    let displayName = input.displayName ?? input.name;
    if (input.type === 'municipality') {
      if (!input.municipalityCode) problems.push('a municipality actor needs a municipality code');
      else {
        const lg = await db.query<{ prefecture_code: string; name: string; kind: string }>(
          'SELECT prefecture_code, name, kind FROM local_governments WHERE code = $1',
          [input.municipalityCode],
        );
        const row = lg.rows[0];
        if (!row || row.kind === 'prefecture' || row.kind === 'designatedCity') {
          problems.push(
            `${input.municipalityCode} is not a municipality or ward that keeps a resident register`,
          );
        } else {
          municipalityCode = input.municipalityCode;
          prefectureCode = row.prefecture_code;
          displayName = input.displayName ?? row.name;
        }
      }
    } else if (input.municipalityCode) {
      problems.push('only municipality actors are bound to a municipality code');
    }
    if (input.type === 'prefecture') {
      const lg = await db.query<{ name: string }>(
        "SELECT name FROM local_governments WHERE prefecture_code = $1 AND kind = 'prefecture'",
        [input.prefectureCode ?? ''],
      );
      const row = lg.rows[0];
      if (!row) problems.push('a prefecture actor needs a valid 2-digit prefecture code');
      else {
        prefectureCode = input.prefectureCode ?? null;
        displayName = input.displayName ?? row.name;
      }
    } else if (input.prefectureCode && input.type !== 'municipality') {
      problems.push('only prefecture actors are bound to a prefecture code');
    }
    if (isVerifierKind(input.type)) {
      if (!input.verifierId) {
        problems.push(
          `a ${input.type} credential must be bound to a registered verifier (POST /v1/verifiers/{verifierId}/credentials)`,
        );
      } else {
        const v = await db.query<{ kinds: string[]; status: string }>(
          'SELECT kinds, status FROM verifiers WHERE id = $1',
          [input.verifierId],
        );
        const row = v.rows[0];
        if (!row) problems.push('no such verifier');
        else if (!row.kinds.includes(input.type)) {
          problems.push(`the verifier is not registered as a ${input.type}`);
        } else if (row.status === 'ended') problems.push('the verifier has ended');
      }
    } else if (input.verifierId) {
      problems.push('only verifier credentials are bound to a verifier');
    }
    if (problems.length > 0) {
      throw new AppError('badRequest', 'actor.invalid', problems.join('; '));
    }
    const existing = await db.query('SELECT 1 FROM actors WHERE name = $1', [input.name]);
    const nameTaken = () =>
      new AppError('conflict', 'actor.name-taken', `an actor named ${input.name} exists`);
    if (existing.rows.length > 0) throw nameTaken();
    const id = randomUUID();
    await db
      .query(
        `INSERT INTO actors (id, name, type, display_name, roles, municipality_code, prefecture_code,
                             purposes, created_at, verifier_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
        [
          id,
          input.name,
          input.type,
          displayName,
          roles,
          municipalityCode,
          prefectureCode,
          input.purposes ?? [],
          this.clock.now(),
          input.verifierId ?? null,
        ],
      )
      .catch((err: unknown) => {
        // A concurrent create of the same name got in between the check above and this insert.
        const e = err as { code?: unknown; constraint?: unknown };
        throw e.code === '23505' && e.constraint === 'actors_name_key' ? nameTaken() : err;
      });
    const created = await this.byName(db, input.name);
    if (!created) throw new Error('actor vanished after insert');
    return created;
  }

  async byName(db: Queryable, name: string): Promise<Actor | null> {
    const r = await db.query<ActorRow>(
      `SELECT ${ACTOR_COLUMNS} FROM actors a ${VERIFIER_JOIN} WHERE a.name = $1`,
      [name],
    );
    return r.rows[0] ? toActor(r.rows[0], jstDay(this.clock.now())) : null;
  }

  async list(db: Queryable): Promise<Actor[]> {
    const r = await db.query<ActorRow>(
      `SELECT ${ACTOR_COLUMNS} FROM actors a ${VERIFIER_JOIN} ORDER BY a.name`,
    );
    const today = jstDay(this.clock.now());
    return r.rows.map((row) => toActor(row, today));
  }

  /** Issues a new token for an actor; the clear token is returned once and never stored. */
  async createToken(
    db: Queryable,
    actorId: string,
    options: { label?: string; expiresAt?: Date } = {},
  ): Promise<{ id: string; token: string }> {
    const token = generateToken();
    const id = randomUUID();
    await db.query(
      `INSERT INTO api_tokens (id, actor_id, token_hash, label, created_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6)`,
      [id, actorId, hashToken(token), options.label ?? 'cli', this.clock.now(), options.expiresAt],
    );
    return { id, token };
  }

  async revokeToken(db: Queryable, tokenId: string): Promise<boolean> {
    const r = await db.query(
      'UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL',
      [tokenId, this.clock.now()],
    );
    this.changed();
    return r.rowCount > 0;
  }

  /** The active actor holding this token, or null for an unknown, expired or revoked one. */
  async authenticate(db: Queryable, token: string): Promise<Actor | null> {
    if (!token.startsWith(TOKEN_PREFIX) || token.length > 200) return null;
    const hash = hashToken(token);
    const key = hash.toString('hex');
    // Taken before the read: a change seen meanwhile means the row read is not kept.
    const version = this.changes?.version('auth') ?? null;
    const now = this.clock.now();
    const hit = version === null ? undefined : this.#tokens.get(key);
    if (hit && hit.version === version && (hit.expiresAt === null || hit.expiresAt > now)) {
      return toActor(hit.row, jstDay(now));
    }
    const r = await db.query<ActorRow & { token_expires_at: Date | null }>(
      `SELECT ${ACTOR_COLUMNS}, t.expires_at AS token_expires_at
         FROM api_tokens t JOIN actors a ON a.id = t.actor_id ${VERIFIER_JOIN}
        WHERE t.token_hash = $1 AND t.revoked_at IS NULL
          AND (t.expires_at IS NULL OR t.expires_at > $2) AND a.status = 'active'`,
      [hash, now],
    );
    const row = r.rows[0];
    if (!row) return null;
    if (version !== null && this.changes?.unchangedSince('auth', version)) {
      this.#tokens.delete(key);
      if (this.#tokens.size >= MAX_CACHED_TOKENS) {
        const oldest = this.#tokens.keys().next().value;
        if (oldest !== undefined) this.#tokens.delete(oldest);
      }
      this.#tokens.set(key, { row, expiresAt: row.token_expires_at, version });
    }
    return toActor(row, jstDay(now));
  }
}
