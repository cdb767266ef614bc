/**
 * Forward-only migrations: plain, numbered SQL files in `migrations/` (`0001_name.sql`), the
 * same files for PGlite and PostgreSQL. Each file runs in its own transaction together with
 * the row that records it in `schema_migrations`; a file that was applied and then edited is
 * refused (checksum mismatch) rather than silently skipped.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { advisoryLockKey, type Database, type Queryable } from './db.ts';

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

const FILE_PATTERN = /^(\d{4})_([a-z0-9_]+)\.sql$/;

export function loadMigrations(dir: string = MIGRATIONS_DIR): Migration[] {
  const files = readdirSync(dir).filter((f) => f.endsWith('.sql'));
  const migrations = files.map((file) => {
    const m = FILE_PATTERN.exec(file);
    if (!m) throw new Error(`migration file name must look like 0001_name.sql: ${file}`);
    const sql = readFileSync(`${dir}/${file}`, 'utf8');
    return {
      version: Number(m[1]),
      name: m[2] ?? file,
      sql,
      checksum: createHash('sha256').update(sql).digest('hex'),
    };
  });
  migrations.sort((a, b) => a.version - b.version);
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new Error(`migrations must be numbered 1, 2, 3 … without gaps; found ${m.version}`);
    }
  });
  return migrations;
}

const CREATE_TABLE = `
CREATE TABLE IF NOT EXISTS schema_migrations (
  version    integer PRIMARY KEY,
  name       text NOT NULL,
  checksum   text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
)`;

interface AppliedRow {
  [key: string]: unknown;
  version: number;
  name: string;
  checksum: string;
}

async function applied(db: Queryable): Promise<AppliedRow[]> {
  const r = await db.query<AppliedRow>(
    'SELECT version, name, checksum FROM schema_migrations ORDER BY version',
  );
  return r.rows;
}

export interface MigrationStatus {
  applied: number;
  pending: number;
  latest: number;
}

/** Applies every pending migration; returns the versions applied now. */
export async function migrate(db: Database, migrations = loadMigrations()): Promise<number[]> {
  // Two runners starting on an empty database would race in CREATE TABLE IF NOT EXISTS
  // (a unique violation in pg_type on PostgreSQL); a transaction-scoped lock serialises it.
  await db.transaction(async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock(${advisoryLockKey("'schema-migrations'")})`);
    await tx.query(CREATE_TABLE);
  });
  const done = new Map((await applied(db)).map((r) => [r.version, r]));
  const known = migrations.length ? Math.max(...migrations.map((m) => m.version)) : 0;
  const newest = Math.max(0, ...done.keys());
  if (newest > known) {
    throw new Error(
      `the database is at migration ${newest}, newer than this kiban knows (${known}); upgrade kiban instead of running an older one against it`,
    );
  }
  const now: number[] = [];
  for (const m of migrations) {
    const prior = done.get(m.version);
    if (prior) {
      if (prior.checksum !== m.checksum) {
        throw new Error(
          `migration ${m.version} (${m.name}) was edited after it was applied; add a new migration instead`,
        );
      }
      continue;
    }
    await db.transaction(async (tx) => {
      // Serialise concurrent runners (two `kiban init` against one server).
      await tx.query('LOCK TABLE schema_migrations IN EXCLUSIVE MODE');
      const again = await tx.query('SELECT 1 FROM schema_migrations WHERE version = $1', [
        m.version,
      ]);
      if (again.rows.length > 0) return;
      await tx.exec(m.sql);
      await tx.query(
        'INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)',
        [m.version, m.name, m.checksum],
      );
      now.push(m.version);
    });
  }
  return now;
}

/** For readiness: how many known migrations are applied and how many are pending. */
export async function migrationStatus(
  db: Queryable,
  migrations = loadMigrations(),
): Promise<MigrationStatus> {
  const exists = await db.query<{ present: boolean }>(
    "SELECT to_regclass('schema_migrations') IS NOT NULL AS present",
  );
  const rows = exists.rows[0]?.present ? await applied(db) : [];
  const versions = new Set(rows.map((r) => r.version));
  const pending = migrations.filter((m) => !versions.has(m.version)).length;
  return {
    applied: rows.length,
    pending,
    latest: rows.length ? Math.max(...rows.map((r) => r.version)) : 0,
  };
}
