import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/support/database.ts';
import { FakeClock } from './clock.ts';
import { advisoryLockKey, type Tx } from './db.ts';
import {
  appendEvents,
  type ConsumerOptions,
  listParked,
  type NewOutboxEvent,
  OutboxConsumer,
  type OutboxEvent,
  type OutboxHandler,
  OutboxRunner,
  type PumpResult,
} from './outbox.ts';

/**
 * One database for the file; every test uses its own topics, consumer name and effect table,
 * so a consumer created later walks past earlier tests' events (which it must skip).
 */
let t: TestDatabase;
const clock = new FakeClock('2026-04-01T00:00:00Z');

beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => t?.close());

const append = (events: readonly NewOutboxEvent[]): Promise<string[]> =>
  t.db.transaction((tx) => appendEvents(tx, clock, events));

const cursorOf = async (consumer: string): Promise<string | undefined> =>
  (
    await t.db.query<{ cursor: string }>('SELECT cursor FROM outbox_consumers WHERE name = $1', [
      consumer,
    ])
  ).rows[0]?.cursor;

const failuresOf = async (consumer: string) =>
  (
    await t.db.query<{ event_id: string; attempts: number; dead: boolean; last_error: string }>(
      'SELECT event_id, attempts, dead, last_error FROM outbox_failures WHERE consumer = $1 ORDER BY event_id',
      [consumer],
    )
  ).rows;

const idle = (over: Partial<PumpResult> = {}): PumpResult => ({
  delivered: 0,
  skipped: 0,
  failed: 0,
  parked: 0,
  waiting: false,
  ...over,
});

/**
 * A table of side effects written by handlers through `tx`. A plain INSERT on a primary key:
 * a second delivery of one event would fail (and show up as a failure), never pass silently.
 */
async function effectTable(name: string) {
  await t.db.query(`CREATE TABLE ${name} (event_id bigint PRIMARY KEY, n int NOT NULL)`);
  return {
    write: async (event: OutboxEvent, tx: Tx): Promise<void> => {
      await tx.query(`INSERT INTO ${name} (event_id, n) VALUES ($1, 1)`, [event.id]);
    },
    rows: async () =>
      (
        await t.db.query<{ event_id: string; n: number }>(
          `SELECT event_id, n FROM ${name} ORDER BY event_id`,
        )
      ).rows,
    ids: async () =>
      (
        await t.db.query<{ event_id: string }>(`SELECT event_id FROM ${name} ORDER BY event_id`)
      ).rows.map((r) => r.event_id),
  };
}

const consumer = (
  name: string,
  topics: readonly string[],
  handle: OutboxHandler,
  options: ConsumerOptions = {},
) => new OutboxConsumer(t.db, clock, { name, topics, handle }, options);

async function waitFor(cond: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('appendEvents', () => {
  it('leaves no event when its transaction rolls back', async () => {
    await expect(
      t.db.transaction(async (tx) => {
        const ids = await appendEvents(tx, clock, [
          { topic: 'rollback', payload: { a: 1 } },
          { topic: 'rollback', payload: { a: 2 } },
        ]);
        expect(ids).toHaveLength(2);
        throw new Error('the change failed');
      }),
    ).rejects.toThrow('the change failed');
    const r = await t.db.query("SELECT 1 FROM outbox_events WHERE topic = 'rollback'");
    expect(r.rows).toHaveLength(0);
    expect(await t.db.transaction((tx) => appendEvents(tx, clock, []))).toEqual([]);
  });

  it('stores payloads and keys exactly, quotes, backslashes and all', async () => {
    const payload = {
      text: 'a "quoted" \\ back\\slash, {braces}, a comma and\nnew line',
      kana: '千代田区　ｶﾅ',
      nested: [null, true, 1.5, { k: '}' }],
    };
    const ids = await t.db.transaction((tx) =>
      appendEvents(tx, clock, [
        { topic: 'escape "topic"', key: 'key,with\\"odd"chars', payload },
        { topic: 'escape', payload: {} },
      ]),
    );
    const r = await t.db.query<{ topic: string; key: string | null; payload: unknown }>(
      'SELECT topic, key, payload FROM outbox_events WHERE id = ANY($1::bigint[]) ORDER BY id',
      [ids],
    );
    expect(r.rows).toEqual([
      { topic: 'escape "topic"', key: 'key,with\\"odd"chars', payload },
      { topic: 'escape', key: null, payload: {} },
    ]);
  });

  it('delivers events in id order with topic, key, payload and time', async () => {
    const seen: OutboxEvent[] = [];
    const c = consumer('order', ['order'], async (e) => {
      seen.push(e);
    });
    const ids: string[] = [];
    ids.push(
      ...(await append([
        { topic: 'order', key: '12345678901', payload: { n: 1, nested: { k: ['x'] } } },
        { topic: 'order', payload: { n: 2 } },
      ])),
    );
    clock.advance(1000);
    ids.push(...(await append([{ topic: 'order', payload: { n: 3 } }])));
    // Concurrent appenders: ids are distinct and still delivered in ascending order.
    const concurrent = await Promise.all(
      [4, 5, 6, 7, 8].map((n) => append([{ topic: 'order', payload: { n } }])),
    );
    ids.push(...concurrent.flat());
    expect(new Set(ids).size).toBe(8);
    const ascending = [...ids].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
    expect(ids.slice(0, 3)).toEqual(ascending.slice(0, 3));

    expect(await c.pump()).toMatchObject({ delivered: 8, failed: 0, parked: 0, waiting: false });
    expect(seen.map((e) => e.id)).toEqual(ascending);
    expect(seen[0]).toEqual({
      id: ids[0],
      topic: 'order',
      key: '12345678901',
      payload: { n: 1, nested: { k: ['x'] } },
      createdAt: new Date('2026-04-01T00:00:00Z'),
    });
    expect(seen[1]?.key).toBeNull();
    expect(seen[2]?.createdAt).toEqual(new Date('2026-04-01T00:00:01Z'));
    expect(await cursorOf('order')).toBe(ascending[7]);
    expect(await c.pump()).toEqual(idle());
  });
});

describe('the append lock', () => {
  it('is namespaced by schema: the same key text, another schema, another lock', async () => {
    const keys = await t.db.transaction(async (tx) => {
      await tx.exec('CREATE SCHEMA IF NOT EXISTS lock_namespace_probe');
      const key = `SELECT ${advisoryLockKey("'outbox-append'")} AS k`;
      const here = (await tx.query<{ k: string }>(key)).rows[0]?.k;
      const again = (await tx.query<{ k: string }>(key)).rows[0]?.k;
      await tx.exec('SET LOCAL search_path TO lock_namespace_probe');
      const there = (await tx.query<{ k: string }>(key)).rows[0]?.k;
      return { here, again, there };
    });
    expect(keys.here).toMatch(/^-?\d+$/);
    expect(keys.again).toBe(keys.here);
    expect(keys.there).toMatch(/^-?\d+$/);
    expect(keys.there).not.toBe(keys.here);
  });

  it('does not hold up another Kiban database on the same server', async () => {
    // On PostgreSQL both test databases are schemas of one server, where advisory locks are
    // shared: an unnamespaced lock would make the second append wait for the first commit.
    const other = await createTestDatabase();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let appended!: () => void;
    const holding = new Promise<void>((resolve) => (appended = resolve));
    const first = t.db.transaction(async (tx) => {
      await appendEvents(tx, clock, [{ topic: 'namespace', payload: { n: 1 } }]);
      appended();
      await held;
    });
    try {
      await holding;
      const ids = await other.db.transaction(async (tx) => {
        await tx.exec("SET LOCAL lock_timeout = '3s'");
        return appendEvents(tx, clock, [{ topic: 'namespace', payload: { n: 2 } }]);
      });
      expect(ids).toHaveLength(1);
    } finally {
      release();
      await first;
      await other.close();
    }
  });
});

describe('OutboxConsumer', () => {
  it('gets only its topics; its cursor passes the others', async () => {
    const seenA: string[] = [];
    const seenB: string[] = [];
    const a = consumer('filterA', ['filter.a'], async (e) => {
      seenA.push(e.id);
    });
    const b = consumer('filterB', ['filter.b', 'filter.c'], async (e) => {
      seenB.push(e.id);
    });
    const [a1, b1, a2, b2, c1, d1] = await append([
      { topic: 'filter.a', payload: {} },
      { topic: 'filter.b', payload: {} },
      { topic: 'filter.a', payload: {} },
      { topic: 'filter.b', payload: {} },
      { topic: 'filter.c', payload: {} },
      { topic: 'filter.d', payload: {} },
    ]);
    const total = Number(
      (await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox_events')).rows[0]?.n,
    );
    expect(await a.pump()).toEqual(idle({ delivered: 2, skipped: total - 2 }));
    expect(seenA).toEqual([a1, a2]);
    expect(await cursorOf('filterA')).toBe(d1);

    expect(await b.pump()).toEqual(idle({ delivered: 3, skipped: total - 3 }));
    expect(seenB).toEqual([b1, b2, c1]);
    expect(await cursorOf('filterB')).toBe(d1);
    expect(await a.pump()).toEqual(idle());
    expect(await b.pump()).toEqual(idle());
  });

  it('small batches: skipping and delivering across page boundaries', async () => {
    const fx = await effectTable('effects_paged');
    const ids = await append(
      Array.from({ length: 7 }, (_, i) => ({
        topic: i % 2 === 0 ? 'paged' : 'paged.other',
        payload: { i },
      })),
    );
    const c = consumer('paged', ['paged'], fx.write, { batchSize: 2 });
    const r = await c.pump();
    expect(r.delivered).toBe(4);
    expect(await fx.ids()).toEqual([ids[0], ids[2], ids[4], ids[6]]);
    expect(await cursorOf('paged')).toBe(ids[6]);
  });

  it('is exactly-once under retry: a failed attempt rolls back, back-off is honoured', async () => {
    const fx = await effectTable('effects_retry');
    const [e1, e2, e3] = await append([
      { topic: 'retry', payload: { step: 1 } },
      { topic: 'retry', payload: { step: 2 } },
      { topic: 'retry', payload: { step: 3 } },
    ]);
    const calls = new Map<string, number>();
    const logs: string[] = [];
    const c = consumer(
      'retry',
      ['retry'],
      async (event, tx) => {
        const n = (calls.get(event.id) ?? 0) + 1;
        calls.set(event.id, n);
        // The write happens first: a throw must take it back.
        await fx.write(event, tx);
        if (event.id === e2 && n <= 2) throw new Error(`handler failed on attempt ${n}`);
      },
      {
        maxAttempts: 5,
        retryBaseMs: 1000,
        log: (level, msg) => {
          logs.push(`${level}:${msg}`);
        },
      },
    );

    expect(await c.pump()).toMatchObject({ delivered: 1, failed: 1, waiting: true });
    expect(await fx.ids()).toEqual([e1]);
    expect(await cursorOf('retry')).toBe(e1);
    expect(await failuresOf('retry')).toEqual([
      { event_id: e2, attempts: 1, dead: false, last_error: 'handler failed on attempt 1' },
    ]);

    // Not yet due: the consumer waits on the event (order is kept) without calling the handler.
    expect(await c.pump()).toEqual(idle({ waiting: true }));
    clock.advance(999);
    expect(await c.pump()).toEqual(idle({ waiting: true }));
    expect(calls.get(e2 ?? '')).toBe(1);

    clock.advance(1);
    expect(await c.pump()).toEqual(idle({ failed: 1, waiting: true }));
    expect(calls.get(e2 ?? '')).toBe(2);
    expect(await fx.ids()).toEqual([e1]);
    expect(await failuresOf('retry')).toMatchObject([{ event_id: e2, attempts: 2, dead: false }]);

    // The second back-off is twice as long.
    clock.advance(1999);
    expect(await c.pump()).toEqual(idle({ waiting: true }));
    clock.advance(1);
    expect(await c.pump()).toEqual(idle({ delivered: 2 }));
    expect(calls.get(e2 ?? '')).toBe(3);
    expect(await fx.rows()).toEqual([e1, e2, e3].map((id) => ({ event_id: id, n: 1 })));
    expect(await cursorOf('retry')).toBe(e3);
    expect(await failuresOf('retry')).toEqual([]);
    expect(logs).toEqual(['warn:outbox event failed', 'warn:outbox event failed']);

    expect(await c.pump()).toEqual(idle());
    expect(await fx.rows()).toHaveLength(3);
  });

  it('hands runs to handleRun; when it throws, delivers event by event and pins the failure', async () => {
    const fx = await effectTable('effects_runs');
    const ids = await append(
      Array.from({ length: 5 }, (_, i) => ({
        topic: i === 2 ? 'runs.other' : 'runs',
        payload: { i },
      })),
    );
    const [e1, e2, , e4, e5] = ids;
    const runs: string[][] = [];
    const single: string[] = [];
    let poison: string | undefined = e4;
    const c = new OutboxConsumer(t.db, clock, {
      name: 'runs',
      topics: ['runs'],
      handle: async (event, tx) => {
        single.push(event.id);
        if (event.id === poison) throw new Error('poison');
        await fx.write(event, tx);
      },
      handleRun: async (events, tx) => {
        runs.push(events.map((e) => e.id));
        for (const e of events) await fx.write(e, tx);
        if (events.some((e) => e.id === poison)) throw new Error('poison in the run');
      },
    });
    // The run (its own topic only) fails as a whole and is rolled back; the same run with
    // `handle` finds e4 failing; the events before it are then delivered one by one, and the
    // failure is recorded on e4 alone.
    expect(await c.pump()).toMatchObject({ delivered: 2, failed: 1, waiting: true });
    expect(runs).toEqual([[e1, e2, e4, e5]]);
    expect(single).toEqual([e1, e2, e4, e1, e2]);
    expect(await fx.ids()).toEqual([e1, e2]);
    expect((await failuresOf('runs')).map((f) => f.event_id)).toEqual([e4]);
    // Fixed: the failed event goes alone (it failed before), then the rest.
    poison = undefined;
    clock.advance(60_000);
    expect(await c.pump()).toMatchObject({ delivered: 2, failed: 0, waiting: false });
    expect(await fx.ids()).toEqual([e1, e2, e4, e5]);
    expect(await cursorOf('runs')).toBe(e5);
  });

  it('parks a poison event after maxAttempts, moves on, and replays it once fixed', async () => {
    const fx = await effectTable('effects_park');
    const [p1, p2, p3] = await append([
      { topic: 'park', payload: { ok: true } },
      { topic: 'park', payload: { ok: false } },
      { topic: 'park', payload: { ok: true } },
    ]);
    let poisonCalls = 0;
    const logs: string[] = [];
    const broken: OutboxHandler = async (event, tx) => {
      await fx.write(event, tx);
      if (event.id === p2) {
        poisonCalls += 1;
        throw new Error('poison');
      }
    };
    const options: ConsumerOptions = {
      maxAttempts: 3,
      retryBaseMs: 10,
      log: (level, msg) => {
        logs.push(`${level}:${msg}`);
      },
    };
    const c = consumer('park', ['park'], broken, options);

    // (Earlier tests' events are skipped on the way.)
    expect(await c.pump()).toMatchObject({ delivered: 1, failed: 1, parked: 0, waiting: true });
    clock.advance(10);
    expect(await c.pump()).toEqual(idle({ failed: 1, waiting: true }));
    clock.advance(20);
    expect(await c.pump()).toEqual(idle({ delivered: 1, parked: 1 }));
    expect(poisonCalls).toBe(3);
    expect(logs).toEqual([
      'warn:outbox event failed',
      'warn:outbox event failed',
      'error:outbox event parked',
    ]);
    expect(await fx.ids()).toEqual([p1, p3]);
    expect(await cursorOf('park')).toBe(p3);
    const parked = (await listParked(t.db)).filter((p) => p.consumer === 'park');
    expect(parked).toEqual([
      { consumer: 'park', eventId: p2, topic: 'park', attempts: 3, lastError: 'poison' },
    ]);

    // A parked event is not delivered again by pumping.
    clock.advance(60_000);
    expect(await c.pump()).toEqual(idle());
    expect(poisonCalls).toBe(3);

    // Replaying with the still-broken handler fails, rolls back and keeps it parked.
    await expect(c.replayParked(p2 ?? '')).rejects.toThrow('poison');
    expect(await fx.ids()).toEqual([p1, p3]);
    expect((await listParked(t.db)).filter((p) => p.consumer === 'park')).toHaveLength(1);
    await expect(c.replayParked(p1 ?? '')).rejects.toThrow(/no parked event/);

    // After the fix (new instances with a working handler), replay delivers it once, even
    // when two replays of it race.
    let fixedCalls = 0;
    const fixedHandler: OutboxHandler = async (event, tx) => {
      fixedCalls += 1;
      await fx.write(event, tx);
    };
    const fixed = consumer('park', ['park'], fixedHandler, options);
    const other = consumer('park', ['park'], fixedHandler, options);
    // Open a few pool connections first (PostgreSQL), so that both replays really overlap.
    await Promise.all([1, 2, 3].map(() => t.db.query('SELECT pg_sleep(0.01)')));
    const replays = await Promise.allSettled([
      fixed.replayParked(p2 ?? ''),
      other.replayParked(p2 ?? ''),
    ]);
    expect(replays.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const lost = replays.find((r) => r.status === 'rejected');
    expect(String(lost?.reason)).toMatch(/no parked event/);
    expect(fixedCalls).toBe(1);
    expect(await fx.rows()).toEqual([p1, p2, p3].map((id) => ({ event_id: id, n: 1 })));
    expect((await listParked(t.db)).filter((p) => p.consumer === 'park')).toEqual([]);
    expect(await failuresOf('park')).toEqual([]);
    await expect(fixed.replayParked(p2 ?? '')).rejects.toThrow(/no parked event/);
    expect(await fixed.pump()).toEqual(idle());
  });

  it('resumes from the persisted cursor after a restart (no redelivery)', async () => {
    const fx = await effectTable('effects_restart');
    const [r1, r2] = await append([
      { topic: 'restart', payload: {} },
      { topic: 'restart', payload: {} },
    ]);
    const calls: string[] = [];
    const handler: OutboxHandler = async (event, tx) => {
      calls.push(event.id);
      await fx.write(event, tx);
    };
    const first = consumer('restart', ['restart'], handler);
    expect((await first.pump()).delivered).toBe(2);

    const second = consumer('restart', ['restart'], handler);
    expect((await second.pump()).delivered).toBe(0);
    const [r3] = await append([{ topic: 'restart', payload: {} }]);
    expect((await second.pump()).delivered).toBe(1);
    expect((await first.pump()).delivered).toBe(0);
    expect(calls).toEqual([r1, r2, r3]);
    expect(await fx.rows()).toEqual([r1, r2, r3].map((id) => ({ event_id: id, n: 1 })));
  });

  it('delivers each event exactly once when instances of one consumer pump concurrently', async () => {
    const fx = await effectTable('effects_twin');
    const events: NewOutboxEvent[] = Array.from({ length: 30 }, (_, i) => ({
      topic: i % 3 === 2 ? 'twin.other' : 'twin',
      payload: { i },
    }));
    const ids = await append(events);
    const mine = ids.filter((_, i) => i % 3 !== 2);
    const failures: unknown[] = [];
    const instances = [1, 2, 3].map(() =>
      consumer('twin', ['twin'], fx.write, {
        batchSize: 4,
        log: (_level, _msg, fields) => {
          failures.push(fields);
        },
      }),
    );
    const results = await Promise.all(instances.map((c) => c.pump()));
    expect(failures).toEqual([]);
    expect(results.reduce((n, r) => n + r.delivered, 0)).toBe(mine.length);
    expect(results.every((r) => r.failed === 0 && r.parked === 0)).toBe(true);
    expect(await fx.rows()).toEqual(mine.map((id) => ({ event_id: id, n: 1 })));
    expect(await cursorOf('twin')).toBe(ids[ids.length - 1]);
    expect(await failuresOf('twin')).toEqual([]);
    // A second concurrent round finds nothing left.
    const again = await Promise.all(instances.map((c) => c.pump()));
    expect(again.reduce((n, r) => n + r.delivered, 0)).toBe(0);
  });
});

describe('OutboxRunner', () => {
  it('delivers events appended after start; wake() shortens the wait; stop() stops', async () => {
    const fx = await effectTable('effects_runner');
    const errors: unknown[] = [];
    const c = consumer('runner', ['runner'], fx.write);
    const runner = new OutboxRunner([c], 200, (err) => errors.push(err));
    try {
      runner.start();
      runner.start(); // idempotent
      const [e1] = await append([{ topic: 'runner', payload: {} }]);
      runner.wake();
      await waitFor(async () => (await fx.ids()).length === 1);
      // Without a wake, the next idle poll picks it up.
      const [e2] = await append([{ topic: 'runner', payload: {} }]);
      await waitFor(async () => (await fx.ids()).length === 2);
      expect(await fx.ids()).toEqual([e1, e2]);
    } finally {
      await runner.stop();
    }
    await runner.stop(); // idempotent
    await append([{ topic: 'runner', payload: {} }]);
    runner.wake();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await fx.ids()).toHaveLength(2);
    expect(errors).toEqual([]);
  });

  it('does not lose a wake() that arrives while it is draining', async () => {
    let pumps = 0;
    let runner: OutboxRunner | null = null;
    class WakingConsumer extends OutboxConsumer {
      override async pump(): Promise<PumpResult> {
        pumps += 1;
        // First pass: an event is appended and wake() called while this drain runs.
        if (pumps === 1) runner?.wake();
        return idle();
      }
    }
    const c = new WakingConsumer(t.db, clock, {
      name: 'waking',
      topics: [],
      handle: async () => undefined,
    });
    runner = new OutboxRunner([c], 60_000);
    const started = Date.now();
    try {
      runner.start();
      await waitFor(async () => pumps >= 2, 2000);
    } finally {
      await runner.stop();
    }
    // stop() also ends the 60 s idle sleep at once.
    expect(Date.now() - started).toBeLessThan(5000);
    expect(pumps).toBe(2);
  });

  it('drain() pumps every consumer once', async () => {
    const fx = await effectTable('effects_drain');
    const [e1] = await append([{ topic: 'drain', payload: {} }]);
    const runner = new OutboxRunner([
      consumer('drain1', ['drain'], fx.write),
      consumer('drain2', ['drain.none'], async () => undefined),
    ]);
    const results = await runner.drain();
    expect(results.map((r) => r.delivered)).toEqual([1, 0]);
    expect(await fx.ids()).toEqual([e1]);
  });
});
