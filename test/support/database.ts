/**
 * A fresh, fully migrated database for one test file: PGlite booted from the run's snapshot
 * by default, or a new schema on the PostgreSQL server named by DATABASE_URL.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { inject } from 'vitest';
import { type Database, openDatabase } from '../../src/platform/db.ts';
import { loadLocalGovernments } from '../../src/platform/master-data.ts';
import { migrate } from '../../src/platform/migrations.ts';

export interface TestDatabase {
  db: Database;
  engine: 'pglite' | 'postgres';
  /** PostgreSQL only: the schema holding this test database. */
  schema: string | null;
  close(): Promise<void>;
}

export const testEngine = (): 'pglite' | 'postgres' =>
  process.env['DATABASE_URL'] ? 'postgres' : 'pglite';

/** An empty database (no migrations) — for migration tests. */
export async function createEmptyTestDatabase(): Promise<TestDatabase> {
  const url = process.env['DATABASE_URL'];
  if (url) {
    const schema = `kiban_t_${randomBytes(6).toString('hex')}`;
    const admin = await openDatabase({ engine: 'postgres', url, poolSize: 1 });
    await admin.query(`CREATE SCHEMA ${schema}`);
    const db = await openDatabase({ engine: 'postgres', url, schema, poolSize: 5 });
    return {
      db,
      engine: 'postgres',
      schema,
      close: async () => {
        await db.close();
        await admin.query(`DROP SCHEMA ${schema} CASCADE`);
        await admin.close();
      },
    };
  }
  const db = await openDatabase({ engine: 'pglite', dataDir: null });
  return { db, engine: 'pglite', schema: null, close: () => db.close() };
}

/** A database with every migration and the master data applied. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const snapshot = process.env['DATABASE_URL'] ? null : inject('pgliteSnapshot');
  if (snapshot) {
    const blob = new Blob([readFileSync(snapshot)]);
    const db = await openDatabase({ engine: 'pglite', dataDir: null, loadDataDir: blob });
    return { db, engine: 'pglite', schema: null, close: () => db.close() };
  }
  const t = await createEmptyTestDatabase();
  await migrate(t.db);
  await t.db.transaction((tx) => loadLocalGovernments(tx));
  return t;
}
