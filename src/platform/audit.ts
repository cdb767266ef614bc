/**
 * Audit log (機構処理事務管理規程, seed 003 第18–20条): every read or write of a resident's data
 * and every privileged action is appended — actor, action, subject, legal purpose, time —
 * in the same transaction as the work it records.
 *
 * Entries are hash-chained: hash = SHA-256(prev_hash ‖ canonical entry). The chain head
 * (`audit_chain`) is updated under its row lock, so `seq` has no gaps and a deleted, edited,
 * reordered or truncated entry is found by {@link verifyAuditChain}.
 *
 * No My Number and no basic-4 value may appear in an entry; {@link assertNoPersonalData}
 * rejects text that looks like one before it is written.
 */
import { createHash } from 'node:crypto';
import type { Actor } from './actors.ts';
import type { Clock } from './clock.ts';
import { pgArray, type Queryable } from './db.ts';

export type AuditOutcome = 'success' | 'denied' | 'failed';

/** The kinds of thing an entry can be about. */
export type AuditSubjectType =
  'resident' | 'certificate' | 'actor' | 'token' | 'localGovernment' | 'ca' | 'system';

export interface AuditEntryInput {
  action: string;
  subjectType?: AuditSubjectType;
  /** Resident code (住民票コード), certificate serial, actor name … never a My Number. */
  subject?: string;
  /** Legal purpose (利用目的) where one applies. */
  purpose?: string;
  outcome?: AuditOutcome;
  requestId?: string;
  /** Small, non-personal facts (counts, reasons, item names — never values). */
  details?: Record<string, string | number | boolean | null | string[]>;
}

/** Who acted: an API actor, or the system itself (CLI, scheduled jobs). */
export type AuditActor = Pick<Actor, 'id' | 'type' | 'name'> | SystemActor;
export interface SystemActor {
  id: null;
  type: 'system' | 'cli';
  name: string;
}

export interface AuditEntry {
  seq: string;
  occurredAt: string;
  actorId: string | null;
  actorType: string;
  actorName: string;
  action: string;
  subjectType: string | null;
  subject: string | null;
  purpose: string | null;
  outcome: AuditOutcome;
  requestId: string | null;
  details: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

export const GENESIS_HASH = '0'.repeat(64);

/** Canonical JSON: object keys sorted at every level, so the hash does not depend on storage. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const obj = value as Record<string, unknown>;
  return `{${Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`)
    .join(',')}}`;
}

/** The fields an entry's hash covers, in {@link canonicalJson}'s (sorted) key order. */
const HASHED_FIELDS = [
  'action',
  'actorId',
  'actorName',
  'actorType',
  'details',
  'occurredAt',
  'outcome',
  'purpose',
  'requestId',
  'seq',
  'subject',
  'subjectType',
] as const satisfies readonly (keyof AuditEntry)[];
const HASHED_KEYS = HASHED_FIELDS.map((k) => `${JSON.stringify(k)}:`);

/**
 * `canonicalJson` of the hashed fields, written field by field in their fixed order (no key
 * sorting per entry: appends hash one entry per line of a batch). Byte for byte the same text
 * as `canonicalJson` over an object of those fields (test/audit.test.ts holds them together).
 */
export function entryBody(e: Omit<AuditEntry, 'hash' | 'prevHash'>): string {
  let out = '{';
  let first = true;
  for (let i = 0; i < HASHED_FIELDS.length; i++) {
    const value = e[HASHED_FIELDS[i] as (typeof HASHED_FIELDS)[number]];
    if (value === undefined) continue;
    out += `${first ? '' : ','}${HASHED_KEYS[i] as string}${canonicalJson(value)}`;
    first = false;
  }
  return `${out}}`;
}

export function entryHash(prevHash: string, e: Omit<AuditEntry, 'hash' | 'prevHash'>): string {
  return createHash('sha256').update(prevHash).update('\n').update(entryBody(e)).digest('hex');
}

const MY_NUMBER_LIKE = /(?<![0-9])[0-9]{12}(?![0-9])/;
/** UUIDs (actor and token ids) are removed first: their last group can be 12 digits. */
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

/**
 * Refuses text that could be a My Number (any run of exactly 12 digits, also as a number in
 * details). Resident codes are 11 digits and a certificate serial is accepted as the subject
 * of a `certificate` entry only, so legitimate entries pass.
 */
export function assertNoPersonalData(input: AuditEntryInput): void {
  const texts = [input.action, input.purpose ?? ''];
  if (input.subjectType !== 'certificate') texts.push(input.subject ?? '');
  for (const v of Object.values(input.details ?? {})) {
    if (typeof v === 'string') texts.push(v);
    if (typeof v === 'number' && Number.isInteger(v)) texts.push(String(v));
    if (Array.isArray(v)) texts.push(...v);
  }
  for (const t of texts) {
    if (MY_NUMBER_LIKE.test(t.replace(UUID, ''))) {
      throw new Error('audit entry refused: it contains a 12-digit number (a My Number?)');
    }
  }
}

interface AuditRow {
  [key: string]: unknown;
  seq: string;
  occurred_at: Date;
  actor_id: string | null;
  actor_type: string;
  actor_name: string;
  action: string;
  subject_type: string | null;
  subject: string | null;
  purpose: string | null;
  outcome: AuditOutcome;
  request_id: string | null;
  details: Record<string, unknown>;
  prev_hash: string;
  hash: string;
}

const toEntry = (r: AuditRow): AuditEntry => ({
  seq: r.seq,
  occurredAt: r.occurred_at.toISOString(),
  actorId: r.actor_id,
  actorType: r.actor_type,
  actorName: r.actor_name,
  action: r.action,
  subjectType: r.subject_type,
  subject: r.subject,
  purpose: r.purpose,
  outcome: r.outcome,
  requestId: r.request_id,
  details: r.details,
  prevHash: r.prev_hash,
  hash: r.hash,
});

export class AuditLog {
  constructor(private readonly clock: Clock) {}

  /** Appends one entry; call inside the transaction of the work it records. */
  async append(tx: Queryable, actor: AuditActor, input: AuditEntryInput): Promise<AuditEntry> {
    const [entry] = await this.appendMany(tx, actor, [input]);
    if (!entry) throw new Error('audit append returned nothing');
    return entry;
  }

  /** Appends several entries of one actor under one lock of the chain head (batches). */
  async appendMany(
    tx: Queryable,
    actor: AuditActor,
    inputs: readonly AuditEntryInput[],
  ): Promise<AuditEntry[]> {
    return this.appendEach(
      tx,
      inputs.map((input) => ({ actor, input })),
    );
  }

  /** Appends several entries, each with its own actor, under one lock of the chain head. */
  async appendEach(
    tx: Queryable,
    items: readonly { actor: AuditActor; input: AuditEntryInput }[],
  ): Promise<AuditEntry[]> {
    if (items.length === 0) return [];
    items.forEach((it) => assertNoPersonalData(it.input));
    // Taking the head row lock serialises appenders: sequence numbers follow commit order.
    const head = await tx.query<{ last_seq: string; last_hash: string }>(
      `UPDATE audit_chain SET last_seq = last_seq + $1 WHERE id
       RETURNING last_seq - $1 AS last_seq, last_hash`,
      [items.length],
    );
    const row = head.rows[0];
    if (!row) throw new Error('audit chain head is missing; run kiban init');
    let seq = BigInt(row.last_seq);
    let prev = row.last_hash;
    const occurredAt = new Date(this.clock.now().getTime()).toISOString();
    const entries: AuditEntry[] = items.map(({ actor, input }) => {
      seq += 1n;
      const base = {
        seq: seq.toString(),
        occurredAt,
        actorId: actor.id,
        actorType: actor.type,
        actorName: actor.name,
        action: input.action,
        subjectType: input.subjectType ?? null,
        subject: input.subject ?? null,
        purpose: input.purpose ?? null,
        outcome: input.outcome ?? 'success',
        requestId: input.requestId ?? null,
        details: input.details ?? {},
      };
      const hash = entryHash(prev, base);
      const entry = { ...base, prevHash: prev, hash };
      prev = hash;
      return entry;
    });
    // Array literals built in one pass (pgArray), not element by element by the driver.
    const col = (k: Exclude<keyof AuditEntry, 'details'>) => pgArray(entries.map((e) => e[k]));
    // The entries and the chain head's new hash in one statement (one round trip).
    await tx.query(
      `WITH appended AS (
         INSERT INTO audit_log (seq, occurred_at, actor_id, actor_type, actor_name, action,
                                subject_type, subject, purpose, outcome, request_id, details,
                                prev_hash, hash)
         SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::uuid[], $4::text[], $5::text[],
                              $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                              $11::text[], $12::jsonb[], $13::text[], $14::text[]))
       UPDATE audit_chain SET last_hash = $15 WHERE id`,
      [
        col('seq'),
        col('occurredAt'),
        col('actorId'),
        col('actorType'),
        col('actorName'),
        col('action'),
        col('subjectType'),
        col('subject'),
        col('purpose'),
        col('outcome'),
        col('requestId'),
        pgArray(entries.map((e) => JSON.stringify(e.details))),
        col('prevHash'),
        col('hash'),
        prev,
      ],
    );
    return entries;
  }

  async list(
    db: Queryable,
    filter: {
      afterSeq?: string;
      limit: number;
      subjectType?: string;
      subject?: string;
      actorId?: string;
      /** Only entries made by actors bound to this municipality. */
      actorMunicipalityCode?: string;
    },
  ): Promise<AuditEntry[]> {
    const r = await db.query<AuditRow>(
      `SELECT * FROM audit_log
        WHERE seq > $1
          AND ($2::text IS NULL OR subject_type = $2)
          AND ($3::text IS NULL OR subject = $3)
          AND ($4::uuid IS NULL OR actor_id = $4)
          AND ($6::text IS NULL OR actor_id IN (SELECT id FROM actors WHERE municipality_code = $6))
        ORDER BY seq LIMIT $5`,
      [
        filter.afterSeq ?? '0',
        filter.subjectType ?? null,
        filter.subject ?? null,
        filter.actorId ?? null,
        filter.limit,
        filter.actorMunicipalityCode ?? null,
      ],
    );
    return r.rows.map(toEntry);
  }
}

export type ChainVerification =
  | { ok: true; entries: number; lastSeq: string; lastHash: string }
  | { ok: false; entries: number; brokenAt: string; reason: string };

/**
 * Walks the whole chain in order and recomputes every hash. Reports the first entry that
 * does not follow from its predecessor (edited, inserted, deleted or reordered), or a head
 * that does not match the last entry (truncation).
 */
export async function verifyAuditChain(
  db: Queryable,
  options: { pageSize?: number; onProgress?: (checked: number) => void } = {},
): Promise<ChainVerification> {
  const pageSize = options.pageSize ?? 5000;
  let prev = GENESIS_HASH;
  let expectedSeq = 1n;
  let checked = 0;
  for (;;) {
    const page = await db.query<AuditRow>(
      'SELECT * FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2',
      [expectedSeq.toString(), pageSize],
    );
    for (const row of page.rows) {
      const e = toEntry(row);
      if (BigInt(e.seq) !== expectedSeq) {
        return {
          ok: false,
          entries: checked,
          brokenAt: expectedSeq.toString(),
          reason: `entry ${expectedSeq} is missing (next present is ${e.seq})`,
        };
      }
      if (e.prevHash !== prev) {
        return {
          ok: false,
          entries: checked,
          brokenAt: e.seq,
          reason: 'its prev_hash does not match the previous entry',
        };
      }
      if (entryHash(prev, e) !== e.hash) {
        return {
          ok: false,
          entries: checked,
          brokenAt: e.seq,
          reason: 'its content does not match its hash (edited)',
        };
      }
      prev = e.hash;
      expectedSeq += 1n;
      checked += 1;
    }
    options.onProgress?.(checked);
    if (page.rows.length < pageSize) break;
  }
  const head = await db.query<{ last_seq: string; last_hash: string }>(
    'SELECT last_seq, last_hash FROM audit_chain WHERE id',
  );
  const h = head.rows[0];
  const lastSeq = (expectedSeq - 1n).toString();
  if (!h || h.last_seq !== lastSeq || h.last_hash !== prev) {
    return {
      ok: false,
      entries: checked,
      brokenAt: (expectedSeq - 1n > 0n ? expectedSeq - 1n : 1n).toString(),
      reason: `the chain head (seq ${h?.last_seq ?? 'none'}) does not match the last entry (seq ${lastSeq}): entries were removed from the end or the head was altered`,
    };
  }
  return { ok: true, entries: checked, lastSeq, lastHash: prev };
}
