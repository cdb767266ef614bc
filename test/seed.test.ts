/**
 * `kiban seed`: synthetic residents registered through the real intake path, in resumable
 * batches — on the engine the run selects (PGlite, or PostgreSQL with DATABASE_URL) — and
 * the command end to end.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServices, type Services } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { isValidMyNumber, isValidResidentCode } from '../src/numbering/check-digits.ts';
import { verifyAuditChain } from '../src/platform/audit.ts';
import { FakeClock } from '../src/platform/clock.ts';
import { type Database, openDatabase, type Queryable } from '../src/platform/db.ts';
import { ensureAgencyKeys } from '../src/platform/install.ts';
import { loadLocalGovernmentsFrom } from '../src/platform/master-data.ts';
import { readSeedState, SeedMismatchError, seedResidents } from '../src/registry/seed.ts';
import { SyntheticPopulation } from '../src/registry/synthetic.ts';
import { TEST_MASTER_KEY } from './support/app.ts';
import { createTestDatabase, type TestDatabase } from './support/database.ts';

const config = loadConfig(
  { KIBAN_LOG_LEVEL: 'silent', KIBAN_MASTER_KEY: TEST_MASTER_KEY },
  { data: '/nonexistent-test-data-dir' },
);

interface Seeded {
  t: TestDatabase;
  services: Services;
}

async function freshInstallation(): Promise<Seeded> {
  const t = await createTestDatabase();
  // FakeClock: 2026-04-01 in Japan, the population's reference date.
  const services = buildServices({ config, db: t.db, clock: new FakeClock() });
  await ensureAgencyKeys(t.db, services);
  return { t, services };
}

interface Registered {
  municipalityCode: string;
  sequence: number;
  name: string;
  nameKana: string;
  birthDate: string;
  sex: string;
  address: string;
}

/** Every accepted identity notification with its record, per municipality in sequence order. */
async function registered(db: Queryable): Promise<Registered[]> {
  const r = await db.query<{
    municipality_code: string;
    sequence: string;
    name: string;
    name_kana: string;
    birth_date: string;
    sex: string;
    address: string;
  }>(
    `SELECT n.municipality_code, n.sequence, v.name, v.name_kana, v.birth_date, v.sex, v.address
       FROM registry_notifications n JOIN identity_record_versions v ON v.notification_id = n.id
      WHERE n.stream = 'identity' ORDER BY n.municipality_code, n.sequence`,
  );
  return r.rows.map((row) => ({
    municipalityCode: row.municipality_code,
    sequence: Number(row.sequence),
    name: row.name,
    nameKana: row.name_kana,
    birthDate: row.birth_date,
    sex: row.sex,
    address: row.address,
  }));
}

/** What people 0 … n − 1 of the default population must look like once registered. */
async function expected(db: Queryable, n: number): Promise<Registered[]> {
  const population = new SyntheticPopulation({
    seed: 'kiban',
    asOf: '2026-04-01',
    localGovernments: await loadLocalGovernmentsFrom(db),
  });
  const next = new Map<string, number>();
  const rows: Registered[] = [];
  for (let i = 0; i < n; i++) {
    const p = population.person(i);
    const sequence = (next.get(p.municipalityCode) ?? 0) + 1;
    next.set(p.municipalityCode, sequence);
    rows.push({
      municipalityCode: p.municipalityCode,
      sequence,
      name: p.name,
      nameKana: p.nameKana,
      birthDate: p.birthDate,
      sex: p.sex,
      address: p.address,
    });
  }
  return rows.sort((a, b) =>
    a.municipalityCode === b.municipalityCode
      ? a.sequence - b.sequence
      : a.municipalityCode.localeCompare(b.municipalityCode),
  );
}

async function scalar(db: Queryable, sql: string): Promise<number> {
  const r = await db.query<{ n: string | number }>(sql);
  return Number(r.rows[0]?.n ?? NaN);
}

/** The invariants every committed state keeps, whatever happened before. */
async function expectConsistent(db: Queryable, n: number): Promise<void> {
  expect(await scalar(db, 'SELECT count(*) AS n FROM persons')).toBe(n);
  expect(await scalar(db, 'SELECT count(*) AS n FROM identity_record_versions')).toBe(n);
  expect(
    await scalar(db, "SELECT count(*) AS n FROM registry_notifications WHERE stream = 'identity'"),
  ).toBe(n);
  // A code handed out in a rolled-back batch went back with it: issued = registered.
  expect(await scalar(db, "SELECT count(*) AS n FROM resident_codes WHERE state = 'issued'")).toBe(
    n,
  );
  expect(await scalar(db, 'SELECT count(*) AS n FROM my_numbers')).toBe(n);
  expect(
    await scalar(db, "SELECT count(*) AS n FROM outbox_events WHERE topic = 'resident.changed'"),
  ).toBe(n);
  expect((await readSeedState(db))?.done ?? 0).toBe(n);
  // Per municipality, sequences run 1 … k without gaps.
  const bad = await db.query(
    `SELECT municipality_code FROM registry_notifications WHERE stream = 'identity'
      GROUP BY municipality_code HAVING min(sequence) <> 1 OR max(sequence) <> count(*)`,
  );
  expect(bad.rows).toEqual([]);
  const seededBatches = await db.query<{ count: number }>(
    "SELECT (details->>'count')::int AS count FROM audit_log WHERE action = 'registry.seed.batch'",
  );
  expect(seededBatches.rows.reduce((sum, r) => sum + r.count, 0)).toBe(n);
  expect((await verifyAuditChain(db)).ok).toBe(true);
}

// Seeding goes through full intake (about two dozen statements per person); on a busy CI
// machine against PostgreSQL a 500-person run can take most of a minute.
describe('seedResidents', { timeout: 240_000 }, () => {
  let straight: Seeded;
  beforeAll(async () => {
    straight = await freshInstallation();
  });
  afterAll(async () => {
    await straight?.t.close();
  });

  it('registers 500 residents through intake with contiguous sequences and valid numbers', async () => {
    const { t, services } = straight;
    const batches: number[] = [];
    const result = await seedResidents(services, {
      count: 500,
      batchSize: 128,
      onProgress: (p) => void batches.push(p.done),
    });
    expect(result).toMatchObject({ target: 500, done: 500, added: 500, complete: true });
    expect(batches).toEqual([128, 256, 384, 500]);
    await expectConsistent(t.db, 500);
    expect(await readSeedState(t.db)).toEqual({
      target: 500,
      done: 500,
      seed: 'kiban',
      batchSize: 128,
      asOf: '2026-04-01',
    });

    const versions = await t.db.query<{
      resident_code: string;
      my_number: string;
      change_reason: string;
      status: string;
      change_date: string;
    }>(
      'SELECT resident_code, my_number, change_reason, status, change_date FROM identity_record_versions',
    );
    for (const v of versions.rows) {
      expect(isValidResidentCode(v.resident_code)).toBe(true);
      expect(isValidMyNumber(v.my_number)).toBe(true);
      expect(v).toMatchObject({
        change_reason: 'officialEntry',
        status: 'current',
        change_date: '2026-04-01',
      });
    }
    expect(new Set(versions.rows.map((v) => v.my_number)).size).toBe(500);
    // The My Number of each record is the one issued for its resident code.
    expect(
      await scalar(
        t.db,
        `SELECT count(*) AS n FROM identity_record_versions v
           JOIN my_numbers m ON m.my_number = v.my_number AND m.holder_code = v.resident_code`,
      ),
    ).toBe(500);
    expect(
      await scalar(
        t.db,
        "SELECT count(*) AS n FROM audit_log WHERE action = 'registry.notification.accept' AND actor_type = 'cli'",
      ),
    ).toBe(500);
    expect(new Set((await registered(t.db)).map((r) => r.municipalityCode)).size).toBeGreaterThan(
      100,
    );
    expect(await registered(t.db)).toEqual(await expected(t.db, 500));
  });

  it('does nothing when the target is reached', async () => {
    const result = await seedResidents(straight.services, { count: 400 });
    expect(result).toMatchObject({ done: 500, added: 0, complete: true });
    await expectConsistent(straight.t.db, 500);
  });

  it('resumes: 300 then a target of 500 gives the same 500 people as one run', async () => {
    const resumed = await freshInstallation();
    try {
      const first = await seedResidents(resumed.services, { count: 300, batchSize: 128 });
      expect(first).toMatchObject({ done: 300, added: 300, complete: true });
      await expectConsistent(resumed.t.db, 300);
      const second = await seedResidents(resumed.services, { count: 500, batchSize: 128 });
      expect(second).toMatchObject({ done: 500, added: 200, complete: true });
      await expectConsistent(resumed.t.db, 500);
      expect(await registered(resumed.t.db)).toEqual(await registered(straight.t.db));
    } finally {
      await resumed.t.close();
    }
  });

  it('survives failures mid-run: a failed batch rolls back whole, and the next run continues', async () => {
    const broken = await freshInstallation();
    try {
      const { t, services } = broken;
      // After a committed batch: the batch stays.
      await expect(
        seedResidents(services, {
          count: 500,
          batchSize: 100,
          onProgress: (p) => {
            if (p.done === 200) throw new Error('progress display failed');
          },
        }),
      ).rejects.toThrow('progress display failed');
      await expectConsistent(t.db, 200);

      // Inside a batch, after its notifications were accepted: all of it rolls back.
      await expect(
        seedResidents(services, {
          count: 500,
          batchSize: 100,
          beforeCommit: (_tx, batch) => {
            if (batch.from === 300) throw new Error('connection lost');
          },
        }),
      ).rejects.toThrow('connection lost');
      await expectConsistent(t.db, 300);

      // A stop request (SIGINT) ends the run after the current batch.
      let stop = false;
      const stopped = await seedResidents(services, {
        count: 500,
        batchSize: 100,
        shouldStop: () => stop,
        onProgress: () => {
          stop = true;
        },
      });
      expect(stopped).toMatchObject({ done: 400, added: 100, complete: false });
      await expectConsistent(t.db, 400);

      // A different seed would mix two populations.
      await expect(seedResidents(services, { count: 500, seed: 'other' })).rejects.toThrow(
        SeedMismatchError,
      );

      const finished = await seedResidents(services, { count: 500, batchSize: 100 });
      expect(finished).toMatchObject({ done: 500, added: 100, complete: true });
      await expectConsistent(t.db, 500);
      expect(await registered(t.db)).toEqual(await registered(straight.t.db));
    } finally {
      await broken.t.close();
    }
  });

  it('refuses to go on when another run moved the progress', async () => {
    const raced = await freshInstallation();
    try {
      const { t, services } = raced;
      await expect(
        seedResidents(services, {
          count: 40,
          batchSize: 10,
          onProgress: async (p) => {
            // Another seeder committed a batch in between.
            if (p.done === 10) {
              await t.db.query(
                "UPDATE installation SET value = jsonb_set(value, '{done}', '20') WHERE key = 'seed'",
              );
            }
          },
        }),
      ).rejects.toThrow(/seed progress changed under this run \(20 seeded, expected 10\)/);
      expect(await scalar(t.db, 'SELECT count(*) AS n FROM persons')).toBe(10);
    } finally {
      await raced.t.close();
    }
  });

  it('continues sequences after notifications that did not come from the seed', async () => {
    const mixed = await freshInstallation();
    try {
      const { t, services } = mixed;
      const population = new SyntheticPopulation({
        seed: 'kiban',
        asOf: '2026-04-01',
        localGovernments: await loadLocalGovernmentsFrom(t.db),
      });
      const code = population.person(0).municipalityCode;
      // A resident that municipality registered itself (sequence 1) before any seeding.
      const existing = await t.db.transaction(async (tx) => {
        const [residentCode = ''] = await services.residentCodes.handOut(tx, code, 1);
        const { myNumber } = await services.numbering.issue(tx, residentCode, code);
        return services.registry.submit(
          tx,
          { id: null, type: 'cli', name: 'test' },
          {
            municipalityCode: code,
            sequence: 1,
            changeReason: 'birth',
            changeDate: '2026-03-31',
            record: {
              residentCode,
              myNumber,
              name: '山田　花子',
              nameKana: 'ヤマダ　ハナコ',
              birthDate: '2026-03-20',
              sex: 'female',
              address: population.person(0).address,
            },
          },
          undefined,
        );
      });
      expect(existing.version).toBe(1);
      await seedResidents(services, { count: 50 });
      const seqs = await t.db.query<{ sequence: string }>(
        "SELECT sequence FROM registry_notifications WHERE municipality_code = $1 AND stream = 'identity' ORDER BY sequence",
        [code],
      );
      expect(seqs.rows.map((r) => Number(r.sequence))[0]).toBe(1);
      expect(seqs.rows.length).toBeGreaterThan(1);
      const bad = await t.db.query(
        `SELECT municipality_code FROM registry_notifications WHERE stream = 'identity'
          GROUP BY municipality_code HAVING min(sequence) <> 1 OR max(sequence) <> count(*)`,
      );
      expect(bad.rows).toEqual([]);
      expect(await scalar(t.db, 'SELECT count(*) AS n FROM persons')).toBe(51);
    } finally {
      await mixed.t.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The command, as a user runs it (PGlite data dir, or a schema of DATABASE_URL's server).
// ---------------------------------------------------------------------------------------------

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = path.join(ROOT, 'bin', 'kiban.js');
const PG_URL = process.env['DATABASE_URL'] ?? null;

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const children = new Set<ChildProcess>();

function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && k !== 'DATABASE_URL' && !k.startsWith('KIBAN_')) env[k] = v;
  }
  return env;
}

/** Runs `kiban …`; `onStderr` may act on the child while it runs (send it a signal). */
function run(
  args: string[],
  env: Record<string, string>,
  onStderr?: (text: string, child: ChildProcess) => void,
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      onStderr?.(stderr, child);
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`kiban ${args.join(' ')} timed out\n${stdout}\n${stderr}`));
    }, 90_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('kiban seed (command line)', () => {
  let dataDir: string;
  let env: Record<string, string>;
  let open: () => Promise<Database>;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'kiban-seed-'));
    if (!PG_URL) {
      env = baseEnv();
      open = () => openDatabase({ engine: 'pglite', dataDir: path.join(dataDir, 'pglite') });
      cleanup = async () => rmSync(dataDir, { recursive: true, force: true });
    } else {
      const schema = `kiban_seed_${randomBytes(6).toString('hex')}`;
      const admin = await openDatabase({ engine: 'postgres', url: PG_URL, poolSize: 1 });
      await admin.query(`CREATE SCHEMA ${schema}`);
      const sep = PG_URL.includes('?') ? '&' : '?';
      env = {
        ...baseEnv(),
        DATABASE_URL: `${PG_URL}${sep}options=${encodeURIComponent(`-c search_path=${schema}`)}`,
      };
      open = () => openDatabase({ engine: 'postgres', url: PG_URL, schema, poolSize: 1 });
      cleanup = async () => {
        await admin.query(`DROP SCHEMA ${schema} CASCADE`);
        await admin.close();
        rmSync(dataDir, { recursive: true, force: true });
      };
    }
    const init = await run(['init', '--data', dataDir], env);
    expect(init.code, init.stderr).toBe(0);
  });

  afterAll(async () => {
    for (const child of children) child.kill('SIGKILL');
    await cleanup?.();
  });

  const counts = async () => {
    const db = await open();
    try {
      return {
        persons: await scalar(db, 'SELECT count(*) AS n FROM persons'),
        done: (await readSeedState(db))?.done ?? 0,
        chainOk: (await verifyAuditChain(db)).ok,
      };
    } finally {
      await db.close();
    }
  };

  it('seeds 200 residents and says so', async () => {
    const r = await run(['seed', '--residents', '200', '--data', dataDir], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/seeded 200 residents in .*200 of 200 in total \(seed "kiban"\)/);
    expect(r.stdout).toContain(PG_URL ? 'database: PostgreSQL' : 'database: PGlite');
    expect(r.stderr).toMatch(/seed: 200\/200 {2}\d+\/s/);
    expect(await counts()).toEqual({ persons: 200, done: 200, chainOk: true });
  });

  it('stops after the current batch on Ctrl+C, says how to resume, and resumes', async () => {
    let signalled = false;
    const stopped = await run(
      ['seed', '--residents', '5000', '--batch', '25', '--data', dataDir],
      env,
      (text, child) => {
        if (!signalled && text.includes('seeding ')) {
          signalled = true;
          child.kill('SIGINT');
        }
      },
    );
    expect(stopped.code, stopped.stderr).toBe(130);
    expect(stopped.stdout).toContain(`resume with: kiban seed --residents 5000 --data ${dataDir}`);
    const after = await counts();
    expect(after.persons).toBe(after.done);
    expect(after.done).toBeGreaterThanOrEqual(200);
    expect(after.done).toBeLessThan(5000);
    expect((after.done - 200) % 25).toBe(0);
    expect(after.chainOk).toBe(true);

    const target = after.done + 30;
    const resumed = await run(['seed', '--residents', String(target), '--data', dataDir], env);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toContain(`seeded 30 residents`);
    expect(await counts()).toEqual({ persons: target, done: target, chainOk: true });
  });

  it('refuses bad flags and another seed', async () => {
    const missing = await run(['seed', '--data', dataDir], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('seed needs --residents N');
    const bad = await run(['seed', '--residents', '10', '--batch', '0', '--data', dataDir], env);
    expect(bad.code).toBe(2);
    const other = await run(
      ['seed', '--residents', '10000', '--seed', 'other', '--data', dataDir],
      env,
    );
    expect(other.code).toBe(2);
    expect(other.stderr).toContain('this database was seeded with --seed "kiban"');
  });
});
