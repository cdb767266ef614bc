/**
 * Lock-order tests (PostgreSQL only: PGlite runs one transaction at a time): two transactions
 * meet on a row, one waiting for the other, and both must commit.
 */
import { expect, vi } from 'vitest';
import type { Database, Tx } from '../../src/platform/db.ts';

/**
 * Runs `hold` in a transaction (a row locked as a registry change or a revocation locks it
 * first), then `request` once that row is held; the transaction goes on to `then` (what that
 * change does next: an outbox append, the revocation epoch, the audit chain, another row) only
 * when `request` waits for it. Answers what `request` answered, after checking that no
 * transaction of `db` was lost on the way: issuance and the outbox redo a failed transaction,
 * which would hide a deadlock from the answer.
 */
export async function meetHeldRow<T>(
  db: Database,
  hold: (tx: Tx) => Promise<unknown>,
  then: (tx: Tx) => Promise<unknown>,
  request: () => Promise<T>,
): Promise<T> {
  const lost: unknown[] = [];
  const transaction = db.transaction.bind(db);
  const spy = vi.spyOn(db, 'transaction').mockImplementation((fn) =>
    transaction(fn).catch((err: unknown) => {
      lost.push((err as { code?: unknown }).code);
      throw err;
    }),
  );
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let holding!: (pid: number) => void;
  const held = new Promise<number>((resolve) => (holding = resolve));
  const other = db.transaction(async (tx) => {
    const me = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    await hold(tx);
    holding(me.rows[0]!.pid);
    await released;
    await then(tx);
  });
  try {
    const pid = await held;
    const answer = request();
    try {
      for (let tries = 0; ; tries++) {
        const waiting = await db.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))',
          [pid],
        );
        if ((waiting.rows[0]?.n ?? 0) > 0) break;
        if (tries > 400) throw new Error('the request never waited for the held row');
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    } finally {
      release();
    }
    await other;
    return await answer;
  } finally {
    spy.mockRestore();
    expect(lost).toEqual([]);
  }
}
