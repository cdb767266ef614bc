import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmptyTestDatabase, type TestDatabase } from '../../test/support/database.ts';
import {
  loadMigrations,
  migrate,
  migrationStatus,
  MIGRATIONS_DIR,
  type Migration,
} from './migrations.ts';

const tempDirs: string[] = [];
/** A temporary migrations directory holding `files` (name → SQL). */
function dirWith(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'kiban-migrations-'));
  tempDirs.push(dir);
  for (const [name, sql] of Object.entries(files)) writeFileSync(path.join(dir, name), sql);
  return dir;
}
/** A copy of the real migrations directory. */
function copyOfMigrations(): string {
  const dir = dirWith({});
  cpSync(MIGRATIONS_DIR, dir, { recursive: true });
  return dir;
}

const tableExists = async (t: TestDatabase, name: string): Promise<boolean> =>
  (await t.db.query<{ present: boolean }>('SELECT to_regclass($1) IS NOT NULL AS present', [name]))
    .rows[0]?.present === true;

afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

describe('loadMigrations', () => {
  it('reads the shipped migrations in order, with checksums of their text', () => {
    const all = loadMigrations();
    expect(all.length).toBeGreaterThan(0);
    expect(all.map((m) => m.version)).toEqual(all.map((_, i) => i + 1));
    const first = all[0];
    expect(first?.name).toBe('platform');
    const text = readFileSync(path.join(MIGRATIONS_DIR, '0001_platform.sql'), 'utf8');
    expect(first?.sql).toBe(text);
    expect(first?.checksum).toBe(createHash('sha256').update(text).digest('hex'));
  });

  it('sorts by version and ignores files that are not .sql', () => {
    const dir = dirWith({
      '0002_second.sql': 'SELECT 2;',
      '0001_first.sql': 'SELECT 1;',
      'README.md': 'not a migration',
    });
    expect(loadMigrations(dir).map((m) => [m.version, m.name])).toEqual([
      [1, 'first'],
      [2, 'second'],
    ]);
  });

  it.each([
    ['1_init.sql'],
    ['0001-init.sql'],
    ['0001_Init.sql'],
    ['00001_init.sql'],
    ['0001_.sql'],
    ['init.sql'],
  ])('refuses the file name %s', (name) => {
    const dir = dirWith({ [name]: 'SELECT 1;' });
    expect(() => loadMigrations(dir)).toThrow(/must look like 0001_name\.sql/);
  });

  it.each([
    ['a gap', ['0001_a.sql', '0003_c.sql']],
    ['a missing first migration', ['0002_b.sql']],
    ['a duplicate version', ['0001_a.sql', '0001_b.sql', '0002_c.sql']],
  ])('refuses %s in the numbering', (_what, names) => {
    const dir = dirWith(Object.fromEntries(names.map((n) => [n, 'SELECT 1;'])));
    expect(() => loadMigrations(dir)).toThrow(/numbered 1, 2, 3/);
  });
});

describe('migrate on an empty database', () => {
  let t: TestDatabase;
  let all: Migration[];
  beforeAll(async () => {
    t = await createEmptyTestDatabase();
    all = loadMigrations();
  });
  afterAll(async () => t?.close());

  it('reports every migration pending before anything ran', async () => {
    expect(await tableExists(t, 'schema_migrations')).toBe(false);
    expect(await migrationStatus(t.db)).toEqual({ applied: 0, pending: all.length, latest: 0 });
  });

  it('applies them all, then nothing the second time', async () => {
    expect(await migrate(t.db)).toEqual(all.map((m) => m.version));
    expect(await migrate(t.db)).toEqual([]);
    expect(await migrationStatus(t.db)).toEqual({
      applied: all.length,
      pending: 0,
      latest: all.length,
    });
    for (const table of ['actors', 'api_tokens', 'audit_log', 'audit_chain', 'outbox_events']) {
      expect(await tableExists(t, table)).toBe(true);
    }
    const head = await t.db.query('SELECT last_seq FROM audit_chain');
    expect(head.rows).toEqual([{ last_seq: '0' }]);
  });

  it('records each migration with its name and checksum', async () => {
    const rows = await t.db.query<{
      version: number;
      name: string;
      checksum: string;
      applied_at: Date;
    }>('SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version');
    expect(
      rows.rows.map((r) => ({ version: r.version, name: r.name, checksum: r.checksum })),
    ).toEqual(all.map((m) => ({ version: m.version, name: m.name, checksum: m.checksum })));
    for (const r of rows.rows) {
      expect(r.checksum).toMatch(/^[0-9a-f]{64}$/);
      expect(r.applied_at).toBeInstanceOf(Date);
    }
  });

  it('refuses a migration edited after it was applied', async () => {
    const dir = copyOfMigrations();
    const file = path.join(dir, '0001_platform.sql');
    writeFileSync(file, `${readFileSync(file, 'utf8')}\n-- an innocent-looking edit\n`);
    const edited = loadMigrations(dir);
    expect(edited[0]?.version).toBe(1);
    expect(edited[0]?.checksum).not.toBe(all[0]?.checksum);
    await expect(migrate(t.db, edited)).rejects.toThrow(/edited after it was applied/);
  });

  it('applies a new migration, and a failing one not at all', async () => {
    const next = all.length + 1;
    const pad = (n: number) => String(n).padStart(4, '0');
    const dir = copyOfMigrations();
    writeFileSync(
      path.join(dir, `${pad(next)}_extra.sql`),
      'CREATE TABLE extra_a (id int PRIMARY KEY);\nINSERT INTO extra_a VALUES (1);',
    );
    const withExtra = loadMigrations(dir);
    expect(await migrationStatus(t.db, withExtra)).toMatchObject({ pending: 1 });
    expect(await migrate(t.db, withExtra)).toEqual([next]);
    expect(await migrationStatus(t.db, withExtra)).toEqual({
      applied: next,
      pending: 0,
      latest: next,
    });

    // A migration that fails half-way leaves neither its first statement nor a record.
    writeFileSync(
      path.join(dir, `${pad(next + 1)}_broken.sql`),
      'CREATE TABLE extra_b (id int);\nSELECT no_such_function();',
    );
    const withBroken = loadMigrations(dir);
    await expect(migrate(t.db, withBroken)).rejects.toThrow();
    expect(await tableExists(t, 'extra_b')).toBe(false);
    expect(await migrationStatus(t.db, withBroken)).toMatchObject({ pending: 1, latest: next });
  });

  it('refuses to run older code against a database migrated further', async () => {
    // The database now holds the shipped migrations plus "extra" from the test above.
    await expect(migrate(t.db, all)).rejects.toThrow(/newer than this kiban knows/);
  });
});

describe('concurrent migrate', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createEmptyTestDatabase();
  });
  afterAll(async () => t?.close());

  it('two runners on one empty database apply each migration once', async () => {
    const all = loadMigrations();
    const [a, b] = await Promise.all([migrate(t.db), migrate(t.db)]);
    expect([...(a ?? []), ...(b ?? [])].sort((x, y) => x - y)).toEqual(all.map((m) => m.version));
    expect(await migrationStatus(t.db)).toEqual({
      applied: all.length,
      pending: 0,
      latest: all.length,
    });
  });
});
