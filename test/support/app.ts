/**
 * The real HTTP app on a fresh test database, with one actor (and token) of every type and
 * one agency operator per role. Requests go through `app.inject` — the full edge, no socket.
 */
import { buildApp, type Services } from '../../src/app.ts';
import { type Config, loadConfig } from '../../src/config.ts';
import type { NewActor } from '../../src/platform/actors.ts';
import { type Clock, FakeClock } from '../../src/platform/clock.ts';
import type { App } from '../../src/platform/http.ts';
import type { ConsumerDefinition } from '../../src/platform/outbox.ts';
import { CLI_ACTOR, DEMO_ACTORS, ensureAgencyKeys } from '../../src/platform/install.ts';
import { ensureDemoVerifier } from '../../src/verifiers/demo.ts';

/** A fixed master key for tests (base64 of 32 bytes); never used outside tests. */
export const TEST_MASTER_KEY = Buffer.alloc(32, 0x4b).toString('base64');
import { createTestDatabase, type TestDatabase } from './database.ts';

/** Demo actors plus single-role operators and a resident. */
export const TEST_ACTORS: readonly NewActor[] = [
  ...DEMO_ACTORS,
  { name: 'opRegistry', type: 'agencyOperator', roles: ['registry'] },
  { name: 'opCa', type: 'agencyOperator', roles: ['ca'] },
  { name: 'opCards', type: 'agencyOperator', roles: ['cards'] },
  { name: 'opAuditor', type: 'agencyOperator', roles: ['auditor'] },
  { name: 'prefecture2', type: 'prefecture', prefectureCode: '14' },
  { name: 'resident', type: 'resident' },
];

export type TestActorName = (typeof TEST_ACTORS)[number]['name'];

export interface TestApp {
  app: App;
  services: Services;
  database: TestDatabase;
  clock: FakeClock;
  config: Config;
  tokens: Record<string, string>;
  /** Authorization header for an actor. */
  auth(name: string): { authorization: string };
  close(): Promise<void>;
}

export async function createTestApp(
  options: {
    clock?: Clock;
    consumers?: readonly ConsumerDefinition[];
    env?: Record<string, string>;
    /** Create the JPKI CAs (generation 1 of each kind). */
    jpki?: boolean;
  } = {},
): Promise<TestApp> {
  const database = await createTestDatabase();
  const clock = options.clock instanceof FakeClock ? options.clock : new FakeClock();
  const config = loadConfig(
    {
      // KIBAN_TEST_LOG_LEVEL=error shows what was behind an unexpected 500 in a failing run.
      KIBAN_LOG_LEVEL: process.env['KIBAN_TEST_LOG_LEVEL'] ?? 'silent',
      KIBAN_MASTER_KEY: TEST_MASTER_KEY,
      ...(options.env ?? {}),
    },
    {
      data: '/nonexistent-test-data-dir',
    },
  );
  const { app, services } = await buildApp({
    config,
    db: database.db,
    clock,
    ...(options.consumers ? { consumers: options.consumers } : {}),
  });
  await ensureAgencyKeys(database.db, services);
  if (options.jpki) await services.jpki.cas.ensureCas(database.db, CLI_ACTOR);
  const tokens: Record<string, string> = {};
  await database.db.transaction(async (tx) => {
    // The verifier the signatureVerifier / authVerifier credentials act for.
    await ensureDemoVerifier(tx, services, CLI_ACTOR);
    for (const spec of TEST_ACTORS) {
      const actor = await services.actors.create(tx, spec);
      tokens[spec.name] = (
        await services.actors.createToken(tx, actor.id, { label: 'test' })
      ).token;
    }
  });
  return {
    app,
    services,
    database,
    clock,
    config,
    tokens,
    auth: (name) => {
      const token = tokens[name];
      if (!token) throw new Error(`no test actor ${name}`);
      return { authorization: `Bearer ${token}` };
    },
    close: async () => {
      await app.close();
      await database.close();
    },
  };
}
