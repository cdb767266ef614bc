/**
 * 住民票コード (resident codes; 住民基本台帳法第30条の2〜第30条の4, NUMBERS.md).
 *
 * - 住民票コードの指定: the agency allots each municipality a pool of never-used codes, each
 *   10 random digits plus the check digit. Codes are drawn independently at random, so a
 *   pool shows no order or pattern by municipality; a random rank fixed at allotment decides
 *   the order in which the pool hands them out.
 * - A code is handed out once. Retirement (住民票コードの変更) links the old code to its
 *   successor. Rows are never deleted, so a code is never drawn or handed out again.
 */
import { randomBytes, randomInt } from 'node:crypto';
import type { Clock } from '../platform/clock.ts';
import type { Queryable } from '../platform/db.ts';
import { AppError } from '../platform/errors.ts';
import { residentCodeCheckDigit } from '../numbering/check-digits.ts';
import { advisoryLockKey, pgArray } from '../platform/db.ts';

export type ResidentCodeState = 'pooled' | 'issued' | 'retired';

export interface ResidentCodeInfo {
  code: string;
  municipalityCode: string;
  state: ResidentCodeState;
  successorCode: string | null;
}

/** A uniformly random 11-digit resident code (10 random digits + check digit). */
export function randomResidentCode(): string {
  // Two draws below 10^5 keep randomInt's range limit (< 2^48) with no modulo bias.
  const body = `${randomInt(100_000).toString().padStart(5, '0')}${randomInt(100_000)
    .toString()
    .padStart(5, '0')}`;
  return body + residentCodeCheckDigit(body);
}

const randomRank = (): string => randomBytes(8).readBigInt64BE().toString();

interface ResidentCodeRow {
  [key: string]: unknown;
  code: string;
  municipality_code: string;
  state: ResidentCodeState;
  successor_code: string | null;
}

const toInfo = (row: ResidentCodeRow): ResidentCodeInfo => ({
  code: row.code,
  municipalityCode: row.municipality_code,
  state: row.state,
  successorCode: row.successor_code,
});

/** {@link ResidentCodePool.info} for several codes at once (batch intake); unknown codes are absent. */
export async function residentCodeInfos(
  db: Queryable,
  codes: Iterable<string>,
): Promise<Map<string, ResidentCodeInfo>> {
  const list = [...new Set(codes)];
  const out = new Map<string, ResidentCodeInfo>();
  if (list.length === 0) return out;
  // bpchar[]: compared as char(11), the primary key serves the lookup.
  const r = await db.query<ResidentCodeRow>(
    `SELECT code, municipality_code, state, successor_code FROM resident_codes
      WHERE code = ANY($1::bpchar[])`,
    [pgArray(list)],
  );
  for (const row of r.rows) out.set(row.code, toInfo(row));
  return out;
}

export interface ResidentCodePoolOptions {
  /** Codes to keep ready in each municipality's pool after a refill. */
  refillTo: number;
  /** Most codes one request may take. */
  maxPerRequest: number;
}

export const DEFAULT_POOL_OPTIONS: ResidentCodePoolOptions = { refillTo: 200, maxPerRequest: 1000 };

export class ResidentCodePool {
  constructor(
    private readonly clock: Clock,
    private readonly options: ResidentCodePoolOptions = DEFAULT_POOL_OPTIONS,
  ) {}

  /** Allots `n` fresh codes to a municipality's pool; returns how many were added. */
  async allot(tx: Queryable, municipalityCode: string, n: number): Promise<number> {
    let added = 0;
    // A drawn code that already exists anywhere (pooled, issued or retired) is simply drawn
    // again: the primary key is the guarantee that no code is ever allotted twice.
    for (let round = 0; added < n; round++) {
      if (round > 50) throw new Error('could not draw unused resident codes');
      const want = n - added;
      const codes = Array.from({ length: want }, randomResidentCode);
      const ranks = codes.map(randomRank);
      const r = await tx.query(
        `INSERT INTO resident_codes (code, municipality_code, state, pool_rank, allotted_at)
         SELECT c, $2, 'pooled', r, $3 FROM unnest($1::text[], $4::bigint[]) AS u(c, r)
         ON CONFLICT (code) DO NOTHING`,
        [codes, municipalityCode, this.clock.now(), ranks],
      );
      added += r.rowCount;
    }
    return added;
  }

  /**
   * Hands out `count` codes from the municipality's pool, refilling it first when it holds
   * too few. Concurrent requests never receive the same code.
   */
  async handOut(tx: Queryable, municipalityCode: string, count: number): Promise<string[]> {
    if (!Number.isInteger(count) || count < 1 || count > this.options.maxPerRequest) {
      throw new AppError(
        'badRequest',
        'resident-code.bad-count',
        `count must be from 1 to ${this.options.maxPerRequest}`,
      );
    }
    await tx.query(`SELECT pg_advisory_xact_lock(${advisoryLockKey('$1')})`, [
      `pool:${municipalityCode}`,
    ]);
    const pooled = await tx.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM resident_codes WHERE municipality_code = $1 AND state = 'pooled'",
      [municipalityCode],
    );
    const have = pooled.rows[0]?.n ?? 0;
    if (have < count) await this.allot(tx, municipalityCode, count - have + this.options.refillTo);
    const r = await tx.query<{ code: string }>(
      `UPDATE resident_codes SET state = 'issued', issued_at = $3
        WHERE code IN (SELECT code FROM resident_codes
                        WHERE municipality_code = $1 AND state = 'pooled'
                        ORDER BY pool_rank LIMIT $2)
        RETURNING code`,
      [municipalityCode, count, this.clock.now()],
    );
    if (r.rows.length !== count) throw new Error('resident code pool hand-out came up short');
    return r.rows.map((row) => row.code);
  }

  async info(db: Queryable, code: string): Promise<ResidentCodeInfo | null> {
    const r = await db.query<ResidentCodeRow>(
      'SELECT code, municipality_code, state, successor_code FROM resident_codes WHERE code = $1',
      [code],
    );
    const row = r.rows[0];
    return row ? toInfo(row) : null;
  }

  /**
   * 住民票コードの変更 (第30条の4): retires `oldCode` and links it to `newCode`. The registry
   * checks beforehand that `newCode` is an issued code of the notifying municipality that no
   * person holds yet.
   */
  async retire(tx: Queryable, oldCode: string, newCode: string): Promise<void> {
    const r = await tx.query(
      `UPDATE resident_codes SET state = 'retired', retired_at = $3, successor_code = $2
        WHERE code = $1 AND state = 'issued'`,
      [oldCode, newCode, this.clock.now()],
    );
    if (r.rowCount !== 1) {
      throw new AppError('conflict', 'resident-code.not-retirable', 'the code is not in use');
    }
  }
}
