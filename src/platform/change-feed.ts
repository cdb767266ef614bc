/**
 * Change epochs (migration 0010): what lets a process keep hot answers in memory — pre-signed
 * OCSP responses, authenticated tokens — without a database round trip per request, and still
 * see every change made by any process within one poll.
 *
 * Each named epoch is a counter row in `change_epochs` that a change advances inside its own
 * transaction (explicitly for revocations, by trigger for tokens, actors and verifiers). The
 * feed polls the few rows every `everyMs` and tells each subscriber what advanced. Changes this
 * process makes are announced at once with `touch`, so its own caches never wait for the poll.
 *
 * A cache fills safely by taking `version(name)` before it reads the database and storing its
 * answer only if the version is unchanged afterwards (`unchangedSince`): a change that
 * committed while the read was in flight is then never cached over.
 */
import type { Database, Queryable } from './db.ts';

export type EpochName = 'jpki.revocations' | 'auth';

export interface ChangeSubscriber {
  /**
   * The database epoch advanced from `from` to `to` (exclusive, inclusive). Rejecting makes the
   * feed fall back to `forgetAll`.
   */
  changed?: (q: Queryable, from: number, to: number) => Promise<void>;
  /** Drop everything cached (a change too large to follow, or a failure to follow it). */
  forgetAll: () => void;
}

export class ChangeFeed {
  readonly #seen = new Map<EpochName, number>();
  readonly #local = new Map<EpochName, number>();
  readonly #subscribers = new Map<EpochName, ChangeSubscriber[]>();
  #timer: NodeJS.Timeout | null = null;
  #polling: Promise<void> | null = null;

  constructor(
    private readonly db: Database,
    private readonly everyMs: number,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** True while the feed polls: only then may a cache trust an entry across requests. */
  get live(): boolean {
    return this.#timer !== null;
  }

  subscribe(name: EpochName, subscriber: ChangeSubscriber): void {
    const list = this.#subscribers.get(name) ?? [];
    list.push(subscriber);
    this.#subscribers.set(name, list);
  }

  /**
   * A number that grows whenever a change of `name` is seen (polled or touched); null when the
   * feed is not running, meaning: cache nothing.
   */
  version(name: EpochName): number | null {
    if (!this.live) return null;
    return (this.#seen.get(name) ?? 0) + (this.#local.get(name) ?? 0);
  }

  /** Whether nothing of `name` changed since `version` was taken (false when not running). */
  unchangedSince(name: EpochName, version: number | null): boolean {
    return version !== null && this.version(name) === version;
  }

  /** Announces a change made by this process (its caches drop what it affects themselves). */
  touch(name: EpochName): void {
    this.#local.set(name, (this.#local.get(name) ?? 0) + 1);
  }

  /**
   * Advances `name` in the caller's transaction and returns the new epoch. The row stays locked
   * until the transaction ends, so transactions advancing one epoch commit in epoch order.
   */
  static async advance(tx: Queryable, name: EpochName): Promise<number> {
    const r = await tx.query<{ epoch: string }>(
      'UPDATE change_epochs SET epoch = epoch + 1 WHERE name = $1 RETURNING epoch::text AS epoch',
      [name],
    );
    const row = r.rows[0];
    if (!row) throw new Error(`change epoch ${name} is missing (migration 0010 not applied?)`);
    return Number(row.epoch);
  }

  /** Reads the epochs once (the baseline), then polls every `everyMs`. */
  async start(): Promise<void> {
    if (this.#timer) return;
    await this.poll();
    this.#timer = setInterval(() => {
      this.poll().catch(this.onError);
    }, this.everyMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#polling?.catch(() => undefined);
  }

  /** One poll; concurrent calls share it. */
  poll(): Promise<void> {
    this.#polling ??= this.#poll().finally(() => {
      this.#polling = null;
    });
    return this.#polling;
  }

  async #poll(): Promise<void> {
    const r = await this.db.query<{ name: EpochName; epoch: string }>(
      'SELECT name, epoch::text AS epoch FROM change_epochs',
    );
    for (const row of r.rows) {
      const to = Number(row.epoch);
      const from = this.#seen.get(row.name);
      if (from !== undefined && to > from) {
        for (const s of this.#subscribers.get(row.name) ?? []) {
          try {
            if (s.changed) await s.changed(this.db, from, to);
            else s.forgetAll();
          } catch (err) {
            s.forgetAll();
            this.onError(err);
          }
        }
      }
      if (from === undefined || to > from) this.#seen.set(row.name, to);
    }
  }
}
