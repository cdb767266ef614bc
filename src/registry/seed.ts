/**
 * `kiban seed`: loads a synthetic population (synthetic.ts) into the national server through
 * the same intake path a municipality uses — a resident code from the municipality's pool
 * (住基法第30条の2), the My Number generated for it (番号法第8条), and one identity-record
 * notification per person accepted by {@link RegistryService.submit} with the municipality's
 * next sequence number. Nothing is written around the rules: every seeded record has its
 * version, notification row, audit entry and `resident.changed` event.
 *
 * Change reason: 職権記載 (`officialEntry`, 住民基本台帳法施行令第12条). Seeding enters people
 * who already live in a municipality into the national server's records; no 届出 by them is
 * involved, which is what 職権記載 is — the municipality recording by office. A `moveIn` with
 * no prior record would assert a 転入届 by someone never registered anywhere (第22条: a foreign
 * resident's first address, or a national returning from abroad), which is false of almost
 * everyone, and `birth` fits only newborns.
 *
 * Batches: people [done, done + batchSize) are registered in one transaction, grouped by
 * municipality so that each municipality's sequence numbers run on without gaps. The
 * progress record (`installation` key `seed`) is written in the same transaction, so an
 * interrupted batch leaves nothing behind and a later run continues from `done`: person i is
 * a pure function of (seed, asOf, i), so resuming costs nothing and yields the same people as
 * an uninterrupted run.
 */
import type { Services } from '../app.ts';
import { advisoryLockKey, type Queryable, type Tx } from '../platform/db.ts';
import { CLI_ACTOR } from '../platform/install.ts';
import { loadLocalGovernmentsFrom } from '../platform/master-data.ts';
import { japanDateOf } from './registry.rules.ts';
import { streamLockKey } from './registry.store.ts';
import {
  DEFAULT_SYNTHETIC_SEED,
  officialEntryNotification,
  type SyntheticPerson,
  SyntheticPopulation,
} from './synthetic.ts';

/** The `installation` key holding the seed progress. */
export const SEED_STATE_KEY = 'seed';
export const DEFAULT_SEED_BATCH_SIZE = 1000;
export const MAX_SEED_BATCH_SIZE = 10_000;
/** Most codes {@link ResidentCodePool.handOut} gives in one call (as configured in app.ts). */
const HAND_OUT_MAX = 1000;

/** What `installation.seed` holds. */
export interface SeedState {
  /** The population size asked for last. */
  target: number;
  /** People 0 … done − 1 are registered. */
  done: number;
  seed: string;
  batchSize: number;
  /** The reference date of the population (birth dates are counted back from it). */
  asOf: string;
}

export interface SeedProgress {
  target: number;
  done: number;
  /** Registered by this run so far. */
  added: number;
  /** `done` when this run started. */
  startedAt: number;
}

export interface SeedOptions {
  /** The population size wanted in total; people already seeded count towards it. */
  count: number;
  batchSize?: number;
  /** Defaults to the seed of an earlier run, else {@link DEFAULT_SYNTHETIC_SEED}. */
  seed?: string;
  /** Called after every committed batch. */
  onProgress?: (p: SeedProgress) => void | Promise<void>;
  /** Checked before each batch; true stops the run there (SIGINT). */
  shouldStop?: () => boolean;
  /**
   * Called inside each batch's transaction after its notifications were accepted and before
   * the progress is recorded; a throw rolls the whole batch back (tests).
   */
  beforeCommit?: (tx: Tx, batch: { from: number; count: number }) => void | Promise<void>;
}

export interface SeedResult extends SeedState {
  /** Registered by this run. */
  added: number;
  /** done ≥ target. */
  complete: boolean;
}

/** The database was seeded with another seed; mixing two populations is refused. */
export class SeedMismatchError extends Error {
  constructor(
    readonly stored: string,
    readonly given: string,
  ) {
    super(
      `this database was seeded with --seed ${JSON.stringify(stored)}; pass the same seed (or none) to continue it, not ${JSON.stringify(given)}`,
    );
    this.name = 'SeedMismatchError';
  }
}

/**
 * PGlite answers through promises alone: without a macrotask turn now and then the event loop
 * never polls, and a SIGINT handler (shouldStop) or a progress timer would not run until the
 * whole run ends.
 */
const eventLoopTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
/** People between two turns inside a batch. */
const TURN_EVERY = 10;

type SeedServices = Pick<
  Services,
  'db' | 'clock' | 'audit' | 'residentCodes' | 'numbering' | 'registry'
>;

export async function readSeedState(db: Queryable): Promise<SeedState | null> {
  const r = await db.query<{ value: SeedState }>('SELECT value FROM installation WHERE key = $1', [
    SEED_STATE_KEY,
  ]);
  return r.rows[0]?.value ?? null;
}

/**
 * Registers synthetic residents until `count` people of this database's population are
 * registered, one transaction per batch. Returns where it stopped.
 */
export async function seedResidents(
  services: SeedServices,
  options: SeedOptions,
): Promise<SeedResult> {
  const { db, clock } = services;
  const batchSize = options.batchSize ?? DEFAULT_SEED_BATCH_SIZE;
  if (!Number.isSafeInteger(options.count) || options.count < 0) {
    throw new RangeError('count must be a whole number ≥ 0');
  }
  if (!Number.isSafeInteger(batchSize) || batchSize < 1 || batchSize > MAX_SEED_BATCH_SIZE) {
    throw new RangeError(`batchSize must be from 1 to ${MAX_SEED_BATCH_SIZE}`);
  }
  const stored = await readSeedState(db);
  if (stored && options.seed !== undefined && options.seed !== stored.seed) {
    throw new SeedMismatchError(stored.seed, options.seed);
  }
  const seed = stored?.seed ?? options.seed ?? DEFAULT_SYNTHETIC_SEED;
  const asOf = stored?.asOf ?? japanDateOf(clock.now());
  const startedAt = stored?.done ?? 0;
  const target = options.count;
  let done = startedAt;
  const result = (): SeedResult => ({
    target,
    done,
    seed,
    batchSize,
    asOf,
    added: done - startedAt,
    complete: done >= target,
  });
  if (done >= target) return result();

  const population = new SyntheticPopulation({
    seed,
    asOf,
    localGovernments: await loadLocalGovernmentsFrom(db),
  });
  for (;;) {
    await eventLoopTurn();
    if (done >= target || (options.shouldStop?.() ?? false)) break;
    const count = Math.min(batchSize, target - done);
    const from = done;
    await db.transaction(async (tx) => {
      // One seeder at a time: a second `kiban seed` on the same PostgreSQL database would
      // register the same people again.
      await tx.query(`SELECT pg_advisory_xact_lock(${advisoryLockKey('$1')})`, ['kiban:seed']);
      const now = (await readSeedState(tx))?.done ?? 0;
      if (now !== from) {
        throw new Error(
          `the seed progress changed under this run (${now} seeded, expected ${from}); is another kiban seed running? Run again to continue`,
        );
      }
      await registerBatch(services, tx, population, from, count);
      await options.beforeCommit?.(tx, { from, count });
      await services.audit.append(tx, CLI_ACTOR, {
        action: 'registry.seed.batch',
        subjectType: 'system',
        subject: SEED_STATE_KEY,
        details: { count, from, target },
      });
      const state: SeedState = { target, done: from + count, seed, batchSize, asOf };
      await tx.query(
        `INSERT INTO installation (key, value, updated_at) VALUES ($1, $2, $3)
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at`,
        [SEED_STATE_KEY, JSON.stringify(state), clock.now()],
      );
    });
    done = from + count;
    await options.onProgress?.({ target, done, added: done - startedAt, startedAt });
  }
  return result();
}

/**
 * People [from, from + count) in one transaction: per municipality, lock its notification
 * stream, draw codes from its pool and issue their My Numbers; then submit every
 * notification in sequence order.
 *
 * Locks are taken in a fixed order and all of them before the first audit append (which
 * locks the audit chain head until commit), so an API request running beside the seed on
 * PostgreSQL waits for the batch instead of deadlocking with it.
 */
async function registerBatch(
  services: SeedServices,
  tx: Tx,
  population: SyntheticPopulation,
  from: number,
  count: number,
): Promise<void> {
  const { residentCodes, numbering, registry, clock } = services;
  const groups = new Map<string, SyntheticPerson[]>();
  for (let i = from; i < from + count; i++) {
    const person = population.person(i);
    const group = groups.get(person.municipalityCode);
    if (group) group.push(person);
    else groups.set(person.municipalityCode, [person]);
  }
  const codes = [...groups.keys()].sort();

  // The per-municipality lock RegistryStore.claimSequence takes for every submit
  // (re-entrant within this transaction): nobody else can use these sequence numbers until
  // the batch commits.
  await tx.query(
    `SELECT pg_advisory_xact_lock(${advisoryLockKey('k')})
       FROM (SELECT unnest($1::text[]) AS k ORDER BY 1) AS ordered`,
    [codes.map((c) => streamLockKey('identity', c))],
  );
  const last = await tx.query<{ code: string; n: string }>(
    `SELECT municipality_code AS code, max(sequence) AS n FROM registry_notifications
      WHERE stream = 'identity' AND municipality_code = ANY($1::char(6)[])
      GROUP BY municipality_code`,
    [codes],
  );
  const nextSequence = new Map(last.rows.map((r) => [r.code, Number(r.n) + 1]));

  const issued = new Map<SyntheticPerson, { residentCode: string; myNumber: string }>();
  for (const code of codes) {
    const people = groups.get(code) ?? [];
    const drawn: string[] = [];
    for (let k = 0; k < people.length; k += HAND_OUT_MAX) {
      const n = Math.min(HAND_OUT_MAX, people.length - k);
      drawn.push(...(await residentCodes.handOut(tx, code, n)));
    }
    for (const [k, person] of people.entries()) {
      const residentCode = drawn[k];
      if (!residentCode) throw new Error('resident code hand-out came up short');
      const { myNumber } = await numbering.issue(tx, residentCode, code);
      issued.set(person, { residentCode, myNumber });
      if (issued.size % TURN_EVERY === 0) await eventLoopTurn();
    }
  }

  const changeDate = japanDateOf(clock.now());
  const requestId = `seed:${from}-${from + count - 1}`;
  let submitted = 0;
  for (const code of codes) {
    let sequence = nextSequence.get(code) ?? 1;
    for (const person of groups.get(code) ?? []) {
      const ids = issued.get(person);
      if (!ids) throw new Error('no resident code issued for a seeded person');
      const body = officialEntryNotification(person, { ...ids, sequence, changeDate });
      await registry.submit(tx, CLI_ACTOR, body, requestId);
      sequence += 1;
      if (++submitted % TURN_EVERY === 0) await eventLoopTurn();
    }
  }
}
