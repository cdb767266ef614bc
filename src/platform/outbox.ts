/**
 * Transactional outbox: contexts append domain events in the same transaction as the change
 * they describe; consumers read them in id order from a cursor persisted in the database.
 *
 * Delivery is exactly-once in effect: a handler receives the transaction in which the
 * consumer's cursor advances, so its writes and the cursor commit together or not at all.
 * A failing event is retried with exponential back-off (the consumer waits on it: order is
 * kept); after `maxAttempts` it is parked as dead and the consumer moves on, so one poison
 * event cannot stop the stream. Parked events are listed and can be replayed.
 *
 * Appends take a transaction-scoped advisory lock, so event ids become visible in id order:
 * a cursor never passes an event whose transaction commits late.
 */
import type { Clock } from './clock.ts';
import { advisoryLockKey, type Database, pgArray, type Queryable, type Tx } from './db.ts';
import { safeErrorForLog } from './errors.ts';

export interface OutboxEvent<P = unknown> {
  id: string;
  topic: string;
  key: string | null;
  payload: P;
  createdAt: Date;
}

export interface NewOutboxEvent {
  topic: string;
  /** What the event is about (e.g. a resident code) — for tracing, not for routing. */
  key?: string;
  payload: unknown;
}

/** An event handler; it must do all its writes through `tx`. */
export type OutboxHandler = (event: OutboxEvent, tx: Tx) => Promise<void>;

export interface ConsumerDefinition {
  name: string;
  /** Topics this consumer wants; events of other topics only advance its cursor. */
  topics: readonly string[];
  handle: OutboxHandler;
  /**
   * Optional: the events of a run (this consumer's topics, in id order) handled together,
   * e.g. with one query for all of them. Must leave what `handle` called for each event in
   * turn would leave. If it throws, the run is rolled back and delivered again with `handle`,
   * so that a failure is pinned on its event.
   */
  handleRun?: (events: readonly OutboxEvent[], tx: Tx) => Promise<void>;
}

/**
 * Most events delivered in one transaction. A run holds its transaction (and on PGlite the
 * one connection) while its handlers work, so it is kept short: what a revocation waits for.
 */
const RUN_LIMIT = 25;
/** Most events in one run for a consumer with `handleRun` (a few queries for the whole run). */
const SET_BASED_RUN_LIMIT = 100;

/** The advisory lock that orders outbox appends. */
const APPEND_LOCK = `SELECT pg_advisory_xact_lock(${advisoryLockKey("'outbox-append'")})`;

export async function appendEvents(
  tx: Tx,
  clock: Clock,
  events: readonly NewOutboxEvent[],
): Promise<string[]> {
  if (events.length === 0) return [];
  await tx.query(APPEND_LOCK);
  const r = await tx.query<{ id: string }>(
    `INSERT INTO outbox_events (id, topic, key, payload, created_at)
     SELECT nextval('outbox_events_id_seq'), t, k, p, $4
       FROM unnest($1::text[], $2::text[], $3::jsonb[]) WITH ORDINALITY AS u(t, k, p, n)
      ORDER BY n
     RETURNING id`,
    [
      pgArray(events.map((e) => e.topic)),
      pgArray(events.map((e) => e.key ?? null)),
      pgArray(events.map((e) => JSON.stringify(e.payload))),
      clock.now(),
    ],
  );
  return r.rows.map((row) => row.id);
}

export interface ConsumerOptions {
  batchSize?: number;
  maxAttempts?: number;
  /** Back-off before retry n (1-based): base · 2^(n−1), capped. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  log?: (level: 'warn' | 'error', msg: string, fields: Record<string, unknown>) => void;
}

export interface PumpResult {
  delivered: number;
  skipped: number;
  failed: number;
  parked: number;
  /** True when the consumer stopped on an event that is waiting for its retry time. */
  waiting: boolean;
}

const eventOf = (row: EventRow): OutboxEvent => ({
  id: row.id,
  topic: row.topic,
  key: row.key,
  payload: row.payload,
  createdAt: row.created_at,
});

interface EventRow {
  [key: string]: unknown;
  id: string;
  topic: string;
  key: string | null;
  payload: unknown;
  created_at: Date;
}

export class OutboxConsumer {
  readonly name: string;
  private readonly topics: ReadonlySet<string>;
  private readonly handle: OutboxHandler;
  private readonly handleRun: ConsumerDefinition['handleRun'];
  private readonly batchSize: number;
  private readonly maxAttempts: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly log: NonNullable<ConsumerOptions['log']>;

  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
    def: ConsumerDefinition,
    options: ConsumerOptions = {},
  ) {
    this.name = def.name;
    this.topics = new Set(def.topics);
    this.handle = def.handle;
    this.handleRun = def.handleRun;
    this.batchSize = options.batchSize ?? 100;
    this.maxAttempts = options.maxAttempts ?? 8;
    this.retryBaseMs = options.retryBaseMs ?? 1000;
    this.retryMaxMs = options.retryMaxMs ?? 10 * 60_000;
    this.log = options.log ?? (() => undefined);
  }

  async register(): Promise<void> {
    await this.db.query(
      `INSERT INTO outbox_consumers (name, cursor, updated_at) VALUES ($1, 0, $2)
       ON CONFLICT (name) DO NOTHING`,
      [this.name, this.clock.now()],
    );
  }

  /**
   * Delivers what is pending, one event per transaction, until caught up or blocked. A page of
   * events is read once and walked through while this consumer's cursor moves as expected; it
   * is read again only when exhausted or when another runner moved the cursor (a race).
   */
  async pump(): Promise<PumpResult> {
    await this.register();
    const result: PumpResult = { delivered: 0, skipped: 0, failed: 0, parked: 0, waiting: false };
    for (;;) {
      const cursorRow = await this.db.query<{ cursor: string }>(
        'SELECT cursor FROM outbox_consumers WHERE name = $1',
        [this.name],
      );
      let cursor = cursorRow.rows[0]?.cursor ?? '0';
      const page = await this.db.query<EventRow>(
        'SELECT id, topic, key, payload, created_at FROM outbox_events WHERE id > $1 ORDER BY id LIMIT $2',
        [cursor, this.batchSize],
      );
      if (page.rows.length === 0) return result;
      const rows = page.rows;
      let i = 0;
      while (i < rows.length) {
        // Events of topics this consumer ignores are passed over in one step.
        let skipTo: string | null = null;
        let skipCount = 0;
        while (i < rows.length && !this.topics.has(rows[i]!.topic)) {
          skipTo = rows[i]!.id;
          skipCount += 1;
          i += 1;
        }
        if (skipTo !== null) {
          if (!(await this.advance(cursor, skipTo))) break;
          result.skipped += skipCount;
          cursor = skipTo;
          continue;
        }
        // A run of pending events, delivered in one transaction when none has failed before.
        const run: EventRow[] = [];
        const limit = this.handleRun ? SET_BASED_RUN_LIMIT : RUN_LIMIT;
        for (let j = i; j < rows.length && run.length < limit; j++) run.push(rows[j]!);
        if (run.length > 1) {
          const together = await this.deliverRun(cursor, run);
          if (together === 'raced') break;
          if (together !== 'declined' && 'delivered' in together) {
            result.delivered += together.delivered;
            result.skipped += run.length - together.delivered;
            cursor = run[run.length - 1]!.id;
            i += run.length;
            continue;
          }
          if (together !== 'declined') {
            // The events before the failed one, one by one; then the failure is recorded.
            let raced = false;
            for (const row of run.slice(0, together.failedAt)) {
              const step = this.topics.has(row.topic)
                ? await this.deliver(cursor, row)
                : (await this.advance(cursor, row.id))
                  ? 'skipped'
                  : 'raced';
              if (step === 'raced') {
                raced = true;
                break;
              }
              if (step === 'delivered') result.delivered += 1;
              else if (step === 'skipped') result.skipped += 1;
              else {
                // A before-event failed on its own now: stop here, as a single delivery would.
                if (step === 'parked') result.parked += 1;
                else if (step === 'failed') result.failed += 1;
                result.waiting = step !== 'parked';
                return result;
              }
              cursor = row.id;
            }
            if (raced) break;
            const failedRow = run[together.failedAt]!;
            const step = await this.recordFailure(cursor, failedRow, 0, together.err);
            if (step === 'parked') {
              result.parked += 1;
              cursor = failedRow.id;
              i += together.failedAt + 1;
              continue;
            }
            result.failed += 1;
            result.waiting = true;
            return result;
          }
        }
        const row = rows[i]!;
        const step = await this.deliver(cursor, row);
        if (step === 'delivered' || step === 'parked') {
          if (step === 'delivered') result.delivered += 1;
          else result.parked += 1;
          cursor = row.id;
          i += 1;
          continue;
        }
        if (step === 'raced') break;
        if (step === 'failed') result.failed += 1;
        result.waiting = true;
        return result;
      }
    }
  }

  private async advance(from: string, to: string): Promise<boolean> {
    const r = await this.db.query(
      'UPDATE outbox_consumers SET cursor = $3, updated_at = $4 WHERE name = $1 AND cursor = $2',
      [this.name, from, to, this.clock.now()],
    );
    return r.rowCount > 0;
  }

  /** Delivers a parked (dead) event again, e.g. after the cause was fixed. */
  async replayParked(eventId: string): Promise<void> {
    const r = await this.db.query<EventRow>(
      `SELECT e.id, e.topic, e.key, e.payload, e.created_at
         FROM outbox_failures f JOIN outbox_events e ON e.id = f.event_id
        WHERE f.consumer = $1 AND f.event_id = $2 AND f.dead`,
      [this.name, eventId],
    );
    const row = r.rows[0];
    if (!row) throw new Error(`no parked event ${eventId} for consumer ${this.name}`);
    await this.db.transaction(async (tx) => {
      // Claim the parked event first: of two concurrent replays only one may deliver it.
      const claim = await tx.query(
        'DELETE FROM outbox_failures WHERE consumer = $1 AND event_id = $2 AND dead',
        [this.name, row.id],
      );
      if (claim.rowCount === 0) {
        throw new Error(`no parked event ${eventId} for consumer ${this.name}`);
      }
      await this.handle(eventOf(row), tx);
    });
  }

  /**
   * Delivers `run` (consecutive events after `cursor`) in one transaction: one claim of the
   * cursor, the handler for each event of this consumer's topics in order, one commit. Declines
   * (having changed nothing) when any of them failed before: those go one per transaction.
   * When a handler throws, everything is rolled back and the caller is told which event it
   * was: the events before it are delivered again, one by one, and the failure is recorded as
   * that event's attempt (its handler is not called a second time for it).
   */
  private async deliverRun(
    cursor: string,
    run: readonly EventRow[],
    together = this.handleRun !== undefined,
  ): Promise<{ delivered: number } | 'raced' | 'declined' | { failedAt: number; err: unknown }> {
    const ids = run.map((r) => r.id);
    const failed = await this.db.query(
      'SELECT 1 FROM outbox_failures WHERE consumer = $1 AND event_id = ANY($2::bigint[]) LIMIT 1',
      [this.name, ids],
    );
    if (failed.rows.length > 0) return 'declined';
    let at = -1;
    let inRunHandler = false;
    try {
      return await this.db.transaction(async (tx) => {
        const claim = await tx.query(
          `UPDATE outbox_consumers SET cursor = $3, updated_at = $4
            WHERE name = $1 AND cursor = $2`,
          [this.name, cursor, ids[ids.length - 1], this.clock.now()],
        );
        if (claim.rowCount === 0) return 'raced' as const;
        const mine = run.filter((row) => this.topics.has(row.topic));
        if (together && this.handleRun) {
          inRunHandler = true;
          await this.handleRun(mine.map(eventOf), tx);
          return { delivered: mine.length };
        }
        let delivered = 0;
        for (const [k, row] of run.entries()) {
          if (!this.topics.has(row.topic)) continue;
          at = k;
          await this.handle(eventOf(row), tx);
          delivered += 1;
        }
        return { delivered };
      });
    } catch (err) {
      // Rolled back. The run handler failed: again event by event, to find which one.
      if (inRunHandler) return this.deliverRun(cursor, run, false);
      // A handler's failure is that event's attempt; anything else (the claim) leaves the run
      // to one-by-one delivery.
      return at >= 0 ? { failedAt: at, err } : 'declined';
    }
  }

  private async deliver(
    cursor: string,
    row: EventRow,
  ): Promise<'delivered' | 'failed' | 'waiting' | 'parked' | 'raced'> {
    const prior = await this.db.query<{ attempts: number; next_attempt_at: Date; dead: boolean }>(
      'SELECT attempts, next_attempt_at, dead FROM outbox_failures WHERE consumer = $1 AND event_id = $2',
      [this.name, row.id],
    );
    const failure = prior.rows[0];
    if (failure && !failure.dead && failure.next_attempt_at > this.clock.now()) return 'waiting';
    const event = eventOf(row);
    try {
      const moved = await this.db.transaction(async (tx) => {
        // Claim the event: only the holder of this cursor value may deliver it.
        const claim = await tx.query(
          `UPDATE outbox_consumers SET cursor = $3, updated_at = $4
            WHERE name = $1 AND cursor = $2`,
          [this.name, cursor, row.id, this.clock.now()],
        );
        if (claim.rowCount === 0) return false;
        await this.handle(event, tx);
        await tx.query('DELETE FROM outbox_failures WHERE consumer = $1 AND event_id = $2', [
          this.name,
          row.id,
        ]);
        return true;
      });
      return moved ? 'delivered' : 'raced';
    } catch (err) {
      return this.recordFailure(cursor, row, failure?.attempts ?? 0, err);
    }
  }

  /**
   * Records a failed delivery of `row` (the handler threw `err`, its effects rolled back): its
   * attempt count and next attempt, or, past `maxAttempts`, parks it and moves the cursor on.
   */
  private async recordFailure(
    cursor: string,
    row: EventRow,
    attemptsBefore: number,
    err: unknown,
  ): Promise<'failed' | 'parked'> {
    const attempts = attemptsBefore + 1;
    const safe = safeErrorForLog(err);
    const text = safe['message'] ?? safe['type'];
    const message = (typeof text === 'string' ? text : 'error').slice(0, 500);
    const dead = attempts >= this.maxAttempts;
    const delay = Math.min(this.retryBaseMs * 2 ** (attempts - 1), this.retryMaxMs);
    await this.db.transaction(async (tx) => {
      await tx.query(
        `INSERT INTO outbox_failures (consumer, event_id, attempts, last_error, next_attempt_at, dead)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (consumer, event_id) DO UPDATE
             SET attempts = EXCLUDED.attempts, last_error = EXCLUDED.last_error,
                 next_attempt_at = EXCLUDED.next_attempt_at, dead = EXCLUDED.dead`,
        [this.name, row.id, attempts, message, new Date(this.clock.now().getTime() + delay), dead],
      );
      if (dead) {
        await tx.query(
          `UPDATE outbox_consumers SET cursor = $3, updated_at = $4
              WHERE name = $1 AND cursor = $2`,
          [this.name, cursor, row.id, this.clock.now()],
        );
      }
    });
    this.log(dead ? 'error' : 'warn', dead ? 'outbox event parked' : 'outbox event failed', {
      consumer: this.name,
      eventId: row.id,
      topic: row.topic,
      attempts,
      error: safe,
    });
    return dead ? 'parked' : 'failed';
  }
}

export interface ParkedEvent {
  consumer: string;
  eventId: string;
  topic: string;
  attempts: number;
  lastError: string;
}

export async function listParked(db: Queryable): Promise<ParkedEvent[]> {
  const r = await db.query<{
    consumer: string;
    event_id: string;
    topic: string;
    attempts: number;
    last_error: string;
  }>(
    `SELECT f.consumer, f.event_id, e.topic, f.attempts, f.last_error
       FROM outbox_failures f JOIN outbox_events e ON e.id = f.event_id
      WHERE f.dead ORDER BY f.consumer, f.event_id`,
  );
  return r.rows.map((x) => ({
    consumer: x.consumer,
    eventId: x.event_id,
    topic: x.topic,
    attempts: x.attempts,
    lastError: x.last_error,
  }));
}

/**
 * Runs consumers until stopped: pumps each one, then sleeps `idleMs` when nothing moved.
 * `wake()` shortens the sleep (call it after appending events in this process).
 */
export class OutboxRunner {
  private stopped = false;
  /** Set by wake(); a wake that arrives during a drain must not be lost. */
  private woken = false;
  private wakeUp: (() => void) | null = null;
  private loop: Promise<void> | null = null;

  constructor(
    private readonly consumers: readonly OutboxConsumer[],
    private readonly idleMs = 500,
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {}

  start(): void {
    if (this.loop) return;
    this.loop = this.run();
  }

  wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake();
    await this.loop;
  }

  /** One pass over every consumer (tests and CLI use this directly). */
  async drain(): Promise<PumpResult[]> {
    const results: PumpResult[] = [];
    for (const c of this.consumers) results.push(await c.pump());
    return results;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      let moved = false;
      this.woken = false;
      try {
        moved = (await this.drain()).some((r) => r.delivered + r.skipped + r.parked > 0);
      } catch (err) {
        this.onError(err);
      }
      if (this.stopped) break;
      if (!moved && !this.woken) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, this.idleMs);
          this.wakeUp = () => {
            clearTimeout(t);
            resolve();
          };
        });
        this.wakeUp = null;
      }
    }
  }
}
