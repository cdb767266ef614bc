import { describe, expect, it } from 'vitest';
import type { Database, Tx } from './db.ts';
import { batchOrEach, GroupCommit, type Outcome } from './group-commit.ts';

/** A batch function that records its batches and waits until `release` is called. */
function gated() {
  const batches: number[][] = [];
  const gates: (() => void)[] = [];
  const handle = async (items: number[]): Promise<Outcome<number>[]> => {
    batches.push(items);
    await new Promise<void>((r) => gates.push(r));
    return items.map((n) =>
      n < 0 ? { ok: false, error: new Error(`refused ${n}`) } : { ok: true, value: n * 10 },
    );
  };
  const releaseNext = async (): Promise<void> => {
    for (let i = 0; i < 50 && gates.length === 0; i++) await new Promise((r) => setImmediate(r));
    gates.shift()?.();
  };
  return { batches, handle, releaseNext };
}

describe('GroupCommit', () => {
  it('takes what was submitted in one turn as one batch, and what arrives meanwhile as the next', async () => {
    const g = gated();
    const gc = new GroupCommit(g.handle, 10);
    const first = [1, 2].map((n) => gc.submit(n));
    expect(g.batches).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(g.batches).toEqual([[1, 2]]);
    const rest = [3, 4, 5].map((n) => gc.submit(n));
    await g.releaseNext();
    expect(await Promise.all(first)).toEqual([10, 20]);
    await g.releaseNext();
    expect(await Promise.all(rest)).toEqual([30, 40, 50]);
    expect(g.batches).toEqual([
      [1, 2],
      [3, 4, 5],
    ]);
  });

  it('handles a lone item alone, without waiting for company', async () => {
    const g = gated();
    const gc = new GroupCommit(g.handle, 10);
    const lone = gc.submit(7);
    await g.releaseNext();
    expect(await lone).toBe(70);
    expect(g.batches).toEqual([[7]]);
  });

  it('never puts more than maxBatch items in one batch', async () => {
    const g = gated();
    const gc = new GroupCommit(g.handle, 2);
    const all = [1, 2, 3, 4, 5].map((n) => gc.submit(n));
    for (let i = 0; i < 3; i++) await g.releaseNext();
    expect(await Promise.all(all)).toEqual([10, 20, 30, 40, 50]);
    expect(g.batches).toEqual([[1, 2], [3, 4], [5]]);
  });

  it('answers each item on its own: a refusal does not touch its neighbours', async () => {
    const g = gated();
    const gc = new GroupCommit(g.handle, 10);
    const results = Promise.allSettled([5, -1, 6].map((n) => gc.submit(n)));
    await g.releaseNext();
    const settled = await results;
    expect(g.batches).toEqual([[5, -1, 6]]);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((settled[1] as PromiseRejectedResult).reason).toEqual(new Error('refused -1'));
  });

  it('rejects every item of a batch whose function throws, and goes on with the next', async () => {
    let calls = 0;
    const gc = new GroupCommit<number, number>(async (items) => {
      calls++;
      if (calls === 2) throw new Error('connection lost');
      return items.map((n) => ({ ok: true, value: n }));
    }, 10);
    expect(await gc.submit(1)).toBe(1);
    const b = await Promise.allSettled([gc.submit(2), gc.submit(3)]);
    expect(b.map((s) => s.status)).toEqual(['rejected', 'rejected']);
    expect(await gc.submit(4)).toBe(4);
  });

  it('refuses a batch function that answers the wrong number of outcomes', async () => {
    const gc = new GroupCommit<number, number>(async () => [], 10);
    await expect(gc.submit(1)).rejects.toThrow('batch of 1 answered 0 outcomes');
  });
});

describe('batchOrEach', () => {
  /** A database whose transactions record their items and fail when one is negative. */
  function fakeDb() {
    const transactions: number[][] = [];
    const db = {
      transaction: async <T>(fn: (tx: Tx) => Promise<T>): Promise<T> => fn({} as Tx),
    } as unknown as Database;
    const inTx = async (_tx: Tx, items: readonly number[]): Promise<Outcome<number>[]> => {
      transactions.push([...items]);
      if (items.some((n) => n < 0)) throw new Error(`constraint broken by ${items.join(',')}`);
      return items.map((n) => ({ ok: true, value: n * 2 }));
    };
    return { db, inTx, transactions };
  }

  it('runs the whole batch in one transaction when it succeeds', async () => {
    const f = fakeDb();
    expect(await batchOrEach(f.db, [1, 2, 3], f.inTx)).toEqual([
      { ok: true, value: 2 },
      { ok: true, value: 4 },
      { ok: true, value: 6 },
    ]);
    expect(f.transactions).toEqual([[1, 2, 3]]);
  });

  it('redoes each item alone when the batch fails, so the failure lands on its item', async () => {
    const f = fakeDb();
    const out = await batchOrEach(f.db, [1, -2, 3], f.inTx);
    expect(out.map((o) => o.ok)).toEqual([true, false, true]);
    expect((out[1] as { error: Error }).error.message).toBe('constraint broken by -2');
    expect(f.transactions).toEqual([[1, -2, 3], [1], [-2], [3]]);
  });

  it('goes one by one from the start when told the items may not go together', async () => {
    const f = fakeDb();
    await batchOrEach(f.db, [1, 2], f.inTx, false);
    expect(f.transactions).toEqual([[1], [2]]);
  });
});
