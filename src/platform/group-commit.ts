/**
 * Group commit: concurrent callers' items are handled together, one batch at a time. While a
 * batch runs, newly submitted items wait; when it ends, everything waiting (up to `maxBatch`)
 * forms the next batch. Before taking a batch the stage yields to the event loop once
 * (`setImmediate`, after the I/O poll), so requests whose bytes have already arrived reach the
 * queue first: with an in-process database (PGlite) a transaction can run from start to end
 * in promise callbacks without the loop ever reading a socket, and without the yield every
 * batch would hold one item. There is no timer: a lone caller waits one turn of the loop.
 *
 * The batch function answers each item on its own ({@link Outcome}): one item's refusal is not
 * its neighbours'. If the batch function itself throws, every item of the batch gets that error.
 */
import type { Database, Tx } from './db.ts';

export type Outcome<O> = { ok: true; value: O } | { ok: false; error: unknown };

interface Waiting<I, O> {
  item: I;
  resolve(value: O): void;
  reject(error: unknown): void;
}

export class GroupCommit<I, O> {
  readonly #queue: Waiting<I, O>[] = [];
  #running = false;

  constructor(
    private readonly handle: (items: I[]) => Promise<Outcome<O>[]>,
    private readonly maxBatch: number,
  ) {
    if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new Error('maxBatch must be ≥ 1');
  }

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      if (!this.#running) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#running = true;
    try {
      while (this.#queue.length > 0) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        const batch = this.#queue.splice(0, this.maxBatch);
        let outcomes: Outcome<O>[];
        try {
          outcomes = await this.handle(batch.map((w) => w.item));
          if (outcomes.length !== batch.length) {
            throw new Error(`batch of ${batch.length} answered ${outcomes.length} outcomes`);
          }
        } catch (error) {
          outcomes = batch.map(() => ({ ok: false, error }));
        }
        batch.forEach((w, i) => {
          const o = outcomes[i]!;
          if (o.ok) w.resolve(o.value);
          else w.reject(o.error);
        });
      }
    } finally {
      this.#running = false;
    }
  }
}

/**
 * Runs `inTx` over the whole batch in one transaction; if that transaction fails, over each
 * item alone, in order, so a failure of the batch as a whole (a constraint, a deadlock, a lost
 * connection) lands on the item it belongs to and the others go on. With `together` false the
 * items go one by one from the start.
 */
export async function batchOrEach<I, O>(
  db: Database,
  items: readonly I[],
  inTx: (tx: Tx, items: readonly I[]) => Promise<Outcome<O>[]>,
  together = true,
): Promise<Outcome<O>[]> {
  if (together || items.length === 1) {
    try {
      return await db.transaction((tx) => inTx(tx, items));
    } catch (error) {
      if (items.length === 1) return [{ ok: false, error }];
    }
  }
  const outcomes: Outcome<O>[] = [];
  for (const item of items) outcomes.push(...(await batchOrEach(db, [item], inTx)));
  return outcomes;
}
