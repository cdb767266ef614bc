/**
 * Provision counting (提供の状況, 公的個人認証法 第41条 report and 電子証明書失効情報提供手数料):
 * every provision to a verifier is counted per verifier, per kind the credential acted as,
 * per provision kind and per day (JST) in `verifier_provisions`.
 *
 * Two ways in:
 * - {@link ProvisionLedger.count} adds in the caller's transaction (certified basic-4, linked
 *   serials, designation tokens: counted exactly with the audited work);
 * - {@link ProvisionLedger.note} buffers in memory for the hot paths (OCSP, CRL), so a request
 *   costs no database write. The buffer is added to the table every second (timer unref'd)
 *   and on close. Crash bound: a process killed without closing loses at most the counts of
 *   the last second (plus those of a flush that failed and is being retried); counts are never
 *   added twice (each flush is one transaction; a failed one is put back whole).
 */
import type { Actor } from '../platform/actors.ts';
import type { Clock } from '../platform/clock.ts';
import type { Database, Queryable } from '../platform/db.ts';
import { isVerifierKind, jstDay, type VerifierKind } from './kinds.ts';

export const PROVISION_KINDS = [
  'ocsp',
  'crl',
  'certifiedBasicFour',
  'linkedSerial',
  'designationToken',
] as const;
export type ProvisionKind = (typeof PROVISION_KINDS)[number];

export interface ProvisionCount {
  verifierId: string;
  verifierKind: VerifierKind;
  kind: ProvisionKind;
  /** How many provisions (default 1). */
  n?: number;
}

interface Key {
  verifierId: string;
  verifierKind: VerifierKind;
  kind: ProvisionKind;
  day: string;
}

const keyOf = (k: Key): string => `${k.verifierId}|${k.verifierKind}|${k.kind}|${k.day}`;

/** Rows per INSERT statement when flushing. */
const FLUSH_CHUNK = 500;

export class ProvisionLedger {
  #pending = new Map<string, Key & { n: number }>();
  #timer: NodeJS.Timeout | null = null;
  #flushing: Promise<void> = Promise.resolve();
  #closed = false;
  #flushes = 0;

  /**
   * @param db where {@link note}d counts are flushed by the timer
   * @param onError called when a timed flush fails (the counts stay buffered for the next one)
   */
  constructor(
    private readonly clock: Clock,
    private readonly db: Database,
    private readonly onError: (err: unknown) => void = () => undefined,
    private readonly everyMs = 1000,
  ) {}

  /** Adds provisions in the caller's transaction (exact, with the work it counts). */
  async count(tx: Queryable, p: ProvisionCount): Promise<void> {
    const n = p.n ?? 1;
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError('provision count must be ≥ 0');
    if (n === 0) return;
    await upsert(tx, [
      {
        verifierId: p.verifierId,
        verifierKind: p.verifierKind,
        kind: p.kind,
        day: jstDay(this.clock.now()),
        n,
      },
    ]);
  }

  /** Buffers provisions for the hot paths; no database work in the request. */
  note(p: ProvisionCount): void {
    const n = p.n ?? 1;
    if (!Number.isSafeInteger(n) || n <= 0) return;
    const key: Key = {
      verifierId: p.verifierId,
      verifierKind: p.verifierKind,
      kind: p.kind,
      day: jstDay(this.clock.now()),
    };
    const k = keyOf(key);
    const entry = this.#pending.get(k);
    if (entry) entry.n += n;
    else this.#pending.set(k, { ...key, n });
    if (!this.#timer && !this.#closed) {
      this.#timer = setInterval(() => {
        this.flush(this.db).catch(this.onError);
      }, this.everyMs);
      this.#timer.unref();
    }
  }

  /**
   * Notes one provision to the verifier a credential acts for; callers that are not verifier
   * credentials (CA operators) are not counted.
   */
  noteFor(actor: Pick<Actor, 'type' | 'verifierId'> | null | undefined, kind: ProvisionKind): void {
    if (actor?.verifierId && isVerifierKind(actor.type)) {
      this.note({ verifierId: actor.verifierId, verifierKind: actor.type, kind });
    }
  }

  /** How many flushes have written counts (each one transaction, whatever the requests). */
  get flushes(): number {
    return this.#flushes;
  }

  /** How many noted provisions wait for the next flush. */
  get pending(): number {
    let n = 0;
    for (const e of this.#pending.values()) n += e.n;
    return n;
  }

  /**
   * Adds everything noted so far to the table in one transaction. Flushes run one at a time;
   * on failure the counts are put back and the error is thrown.
   */
  flush(db: Database): Promise<void> {
    const run = async (): Promise<void> => {
      if (this.#pending.size === 0) return;
      const batch = [...this.#pending.values()];
      this.#pending = new Map();
      try {
        await db.transaction(async (tx) => {
          for (let i = 0; i < batch.length; i += FLUSH_CHUNK) {
            await upsert(tx, batch.slice(i, i + FLUSH_CHUNK));
          }
        });
        this.#flushes += 1;
      } catch (err) {
        for (const e of batch) {
          const k = keyOf(e);
          const now = this.#pending.get(k);
          if (now) now.n += e.n;
          else this.#pending.set(k, e);
        }
        throw err;
      }
    };
    const next = this.#flushing.then(run, run);
    this.#flushing = next.catch(() => undefined);
    return next;
  }

  /** Stops the timer and flushes what is left (the app's onClose hook). */
  async close(db: Database): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.flush(db);
  }
}

async function upsert(tx: Queryable, rows: readonly (Key & { n: number })[]): Promise<void> {
  // A stable order: concurrent flushes on PostgreSQL lock the rows in the same order.
  const sorted = [...rows].sort((a, b) => keyOf(a).localeCompare(keyOf(b)));
  const params: unknown[] = [];
  const values = sorted.map((r) => {
    params.push(r.verifierId, r.verifierKind, r.kind, r.day, r.n);
    const b = params.length - 5;
    return `($${b + 1}::uuid, $${b + 2}, $${b + 3}, $${b + 4}::date, $${b + 5}::bigint)`;
  });
  await tx.query(
    `INSERT INTO verifier_provisions (verifier_id, verifier_kind, provision_kind, day, count)
     VALUES ${values.join(', ')}
     ON CONFLICT (verifier_id, verifier_kind, provision_kind, day)
     DO UPDATE SET count = verifier_provisions.count + EXCLUDED.count`,
    params,
  );
}
