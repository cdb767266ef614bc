/**
 * 個人番号とすべき番号の生成 (番号法第8条第2項; 業務方法書第6条第1号).
 *
 * The agency turns a resident code into a My Number when a municipality asks. The number
 * must (1) differ from every My Number ever issued, including retired ones, (2) be obtained
 * by converting the resident code, and (3) show no regularity that would let anyone recover
 * the resident code.
 *
 * Conversion: body = FF1(key, tweak = attempt number)(resident code) — a keyed pseudorandom
 * permutation of the 11-digit space (NIST SP 800-38G) — and the My Number = body + the check
 * digit of 平成26年総務省令第85号第5条. For a fixed tweak, distinct resident codes give
 * distinct bodies; without the key the output reveals nothing about the code. The key lives
 * in the key store, wrapped under the master key like the CA keys.
 *
 * Every issued number is persisted and its uniqueness enforced by the database (primary key
 * over all numbers ever issued). A collision with an earlier number (possible only across
 * tweaks) is resolved with the next tweak. A number is never recomputed on demand: asking
 * again returns the stored number, and a person keeps it when their resident code changes.
 *
 * Renumbering (個人番号の変更, 番号法第7条第2項): when a number leaked and may be misused, a
 * fresh number is generated with the next tweak and the old one is retired for good.
 */
import type { KeyObject } from 'node:crypto';
import type { Clock } from '../platform/clock.ts';
import { advisoryLockKey, pgArray, type Queryable } from '../platform/db.ts';
import { AppError } from '../platform/errors.ts';
import { FF1 } from './ff1.ts';
import { myNumberCheckDigit } from './check-digits.ts';

/** The key-store label of the current My Number generation key. */
export const MY_NUMBER_KEY_LABEL = 'numbering/my-number/1';
export const MY_NUMBER_KEY_PURPOSE = 'myNumberGeneration';

const TWEAK_DOMAIN = Buffer.from('kiban/my-number/v1\0', 'utf8');
const MAX_ATTEMPTS = 64;

function tweakFor(attempt: number): Buffer {
  const n = Buffer.alloc(4);
  n.writeUInt32BE(attempt);
  return Buffer.concat([TWEAK_DOMAIN, n]);
}

/** The pure conversion: resident code → candidate My Number for an attempt (tweak). */
export class MyNumberGenerator {
  readonly #ff1: FF1;
  constructor(
    key: KeyObject | Uint8Array,
    readonly keyLabel: string = MY_NUMBER_KEY_LABEL,
  ) {
    this.#ff1 = new FF1(key, 10, { minLength: 11, maxLength: 11, maxTweakLength: 64 });
  }

  candidate(residentCode: string, attempt: number): string {
    const body = this.#ff1.encryptDecimal(residentCode, tweakFor(attempt));
    return body + myNumberCheckDigit(body);
  }
}

export interface IssuedMyNumber {
  myNumber: string;
  /** True when this call generated it; false when an earlier call had. */
  created: boolean;
}

export class NumberingService {
  constructor(
    private readonly clock: Clock,
    /** Loads the generator (its key) through the caller's transaction. */
    private readonly generator: (db: Queryable) => Promise<MyNumberGenerator>,
  ) {}

  /** The active My Number of the person holding this resident code, if any. */
  async activeFor(db: Queryable, residentCode: string): Promise<string | null> {
    const r = await db.query<{ my_number: string }>(
      'SELECT my_number FROM my_numbers WHERE holder_code = $1 AND retired_at IS NULL',
      [residentCode],
    );
    return r.rows[0]?.my_number ?? null;
  }

  /** True if `myNumber` was issued for (and is still held by) this resident code. */
  async isIssuedFor(db: Queryable, myNumber: string, residentCode: string): Promise<boolean> {
    const r = await db.query(
      'SELECT 1 FROM my_numbers WHERE my_number = $1 AND holder_code = $2 AND retired_at IS NULL',
      [myNumber, residentCode],
    );
    return r.rows.length > 0;
  }

  /**
   * Returns the person's My Number, generating it on the first request. The caller has
   * checked that `residentCode` is an issued code the requesting municipality may use.
   */
  async issue(
    tx: Queryable,
    residentCode: string,
    municipalityCode: string,
  ): Promise<IssuedMyNumber> {
    await this.lockHolder(tx, residentCode);
    const existing = await this.activeFor(tx, residentCode);
    if (existing) return { myNumber: existing, created: false };
    const myNumber = await this.generate(tx, residentCode, municipalityCode);
    return { myNumber, created: true };
  }

  /**
   * {@link issue} for many resident codes in one transaction — a municipality numbering a
   * batch of residents, or a first national load: each code gets the number the single path
   * would give it (its stored number, or the first unused candidate from its next tweak),
   * with a handful of set-based statements instead of four per code. The caller has checked
   * every code as for {@link issue}.
   */
  async issueMany(
    tx: Queryable,
    residentCodes: readonly string[],
    municipalityCode: string,
  ): Promise<Map<string, IssuedMyNumber>> {
    const out = new Map<string, IssuedMyNumber>();
    const codes = [...new Set(residentCodes)];
    if (codes.length === 0) return out;
    // The same per-code locks as the single path, taken in one order: batches cannot deadlock.
    await tx.query(
      `SELECT pg_advisory_xact_lock(h)
         FROM (SELECT DISTINCT ${advisoryLockKey("'my-number:' || c")} AS h
                 FROM unnest($1::text[]) AS c ORDER BY 1 OFFSET 0) l`,
      [pgArray(codes)],
    );
    const active = await tx.query<{ holder_code: string; my_number: string }>(
      `SELECT holder_code, my_number FROM my_numbers
        WHERE holder_code = ANY($1::bpchar[]) AND retired_at IS NULL`,
      [pgArray(codes)],
    );
    for (const r of active.rows) out.set(r.holder_code, { myNumber: r.my_number, created: false });
    let pending = codes.filter((c) => !out.has(c));
    if (pending.length === 0) return out;
    const used = await tx.query<{ code: string; next: number }>(
      `SELECT generated_from AS code, (max(tweak) + 1)::int AS next FROM my_numbers
        WHERE generated_from = ANY($1::bpchar[]) GROUP BY generated_from`,
      [pgArray(pending)],
    );
    const attempt = new Map(pending.map((c) => [c, 0]));
    for (const r of used.rows) attempt.set(r.code, r.next);
    const gen = await this.generator(tx);
    const now = this.clock.now();
    for (let tries = 0; tries < MAX_ATTEMPTS && pending.length > 0; tries++) {
      // A candidate equal to a number ever issued (or to another code's in this statement) is
      // skipped by the primary key; its code tries its next tweak.
      const r = await tx.query<{ my_number: string; generated_from: string }>(
        `INSERT INTO my_numbers (my_number, generated_from, holder_code, key_label, tweak,
                                 issued_at, issued_to)
         SELECT n, c, c, $4, t, $5, $6 FROM unnest($1::bpchar[], $2::bpchar[], $3::int[]) AS u(n, c, t)
         ON CONFLICT (my_number) DO NOTHING
         RETURNING my_number, generated_from`,
        [
          pgArray(pending.map((c) => gen.candidate(c, attempt.get(c) ?? 0))),
          pgArray(pending),
          pgArray(pending.map((c) => attempt.get(c) ?? 0)),
          gen.keyLabel,
          now,
          municipalityCode,
        ],
      );
      for (const row of r.rows) {
        out.set(row.generated_from, { myNumber: row.my_number, created: true });
      }
      pending = pending.filter((c) => !out.has(c));
      for (const c of pending) attempt.set(c, (attempt.get(c) ?? 0) + 1);
    }
    if (pending.length > 0) throw new Error('could not generate an unused My Number');
    return out;
  }

  /** 個人番号の変更: retires the active number and issues a fresh one. */
  async renumber(
    tx: Queryable,
    residentCode: string,
    municipalityCode: string,
    reason: string,
  ): Promise<{ myNumber: string; retired: string }> {
    await this.lockHolder(tx, residentCode);
    const old = await this.activeFor(tx, residentCode);
    if (!old) {
      throw new AppError(
        'conflict',
        'my-number.not-issued',
        'no My Number has been issued for this resident code; request one first',
      );
    }
    await tx.query(
      'UPDATE my_numbers SET retired_at = $2, retire_reason = $3 WHERE my_number = $1',
      [old, this.clock.now(), reason],
    );
    const myNumber = await this.generate(tx, residentCode, municipalityCode);
    return { myNumber, retired: old };
  }

  /** Moves the person's active number to their new resident code (住民票コードの変更). */
  async followCodeChange(tx: Queryable, oldCode: string, newCode: string): Promise<void> {
    await tx.query(
      'UPDATE my_numbers SET holder_code = $2 WHERE holder_code = $1 AND retired_at IS NULL',
      [oldCode, newCode],
    );
  }

  /** One generation per resident code at a time (concurrent first requests). */
  private async lockHolder(tx: Queryable, residentCode: string): Promise<void> {
    await tx.query(`SELECT pg_advisory_xact_lock(${advisoryLockKey('$1')})`, [
      `my-number:${residentCode}`,
    ]);
  }

  private async generate(
    tx: Queryable,
    residentCode: string,
    municipalityCode: string,
  ): Promise<string> {
    const gen = await this.generator(tx);
    const used = await tx.query<{ next: number }>(
      'SELECT coalesce(max(tweak) + 1, 0)::int AS next FROM my_numbers WHERE generated_from = $1',
      [residentCode],
    );
    let attempt = used.rows[0]?.next ?? 0;
    for (let tries = 0; tries < MAX_ATTEMPTS; tries++, attempt++) {
      const candidate = gen.candidate(residentCode, attempt);
      // The primary key over every number ever issued makes a repeat impossible; a
      // collision simply moves on to the next tweak.
      const r = await tx.query(
        `INSERT INTO my_numbers (my_number, generated_from, holder_code, key_label, tweak,
                                 issued_at, issued_to)
         VALUES ($1, $2, $2, $3, $4, $5, $6)
         ON CONFLICT (my_number) DO NOTHING`,
        [candidate, residentCode, gen.keyLabel, attempt, this.clock.now(), municipalityCode],
      );
      if (r.rowCount === 1) return candidate;
    }
    throw new Error('could not generate an unused My Number');
  }
}
