/**
 * Database access: one narrow interface over PGlite (embedded PostgreSQL, the zero-setup
 * default) and a real PostgreSQL server (`DATABASE_URL`). The same SQL runs on both; keep
 * queries inside the PostgreSQL 15 ∩ PGlite (PostgreSQL 18) subset.
 *
 * Value conventions, identical on both engines:
 * - int8 / bigint / numeric → string (never lossy); cast to int in SQL where a number is wanted;
 * - timestamptz → Date; date → 'YYYY-MM-DD' string; jsonb → parsed value; bytea → Uint8Array.
 */
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { PGlite, types as pgliteTypes } from '@electric-sql/pglite';

export type Row = Record<string, unknown>;

export interface QueryResult<T extends Row = Row> {
  rows: T[];
  rowCount: number;
}

/** Anything that can run a statement: the database itself or an open transaction. */
export interface Queryable {
  query<T extends Row = Row>(sql: string, params?: readonly unknown[]): Promise<QueryResult<T>>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

/** A transaction handle. Only valid inside the callback given to {@link Database.transaction}. */
export type Tx = Queryable;

export type Engine = 'pglite' | 'postgres';

export interface Database extends Queryable {
  readonly engine: Engine;
  /**
   * Runs `fn` in one explicit transaction (BEGIN … COMMIT); any throw rolls back and rethrows.
   */
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  /** PGlite only: the whole data directory as a tar archive (test snapshots, backups). */
  dump?(): Promise<Uint8Array>;
}

export type DatabaseTarget =
  | { engine: 'pglite'; dataDir: string | null; loadDataDir?: Blob }
  | { engine: 'postgres'; url: string; schema?: string; poolSize?: number };

const OID = { int8: 20, numeric: 1700, date: 1082 } as const;

export async function openDatabase(target: DatabaseTarget): Promise<Database> {
  return target.engine === 'pglite' ? openPglite(target) : openPostgres(target);
}

async function openPglite(target: {
  dataDir: string | null;
  loadDataDir?: Blob;
}): Promise<Database> {
  const releaseLock = target.dataDir ? lockDataDir(target.dataDir) : () => undefined;
  const identity = (v: string): string => v;
  const options = {
    parsers: {
      [pgliteTypes.INT8]: identity,
      [OID.numeric]: identity,
      [pgliteTypes.DATE]: identity,
    },
    ...(target.loadDataDir ? { loadDataDir: target.loadDataDir } : {}),
  };
  let db: PGlite;
  try {
    db = target.dataDir
      ? await PGlite.create(target.dataDir, options)
      : await PGlite.create(options);
  } catch (err) {
    releaseLock();
    throw err;
  }
  const run = async <T extends Row>(
    q: Pick<PGlite, 'query'>,
    sql: string,
    params?: readonly unknown[],
  ): Promise<QueryResult<T>> => {
    const r = await q.query<T>(sql, params ? [...params] : undefined);
    return { rows: r.rows, rowCount: r.affectedRows ?? r.rows.length };
  };
  return {
    engine: 'pglite',
    query: (sql, params) => run(db, sql, params),
    exec: async (sql) => {
      await db.exec(sql);
    },
    transaction: (fn) =>
      db.transaction((tx) =>
        fn({
          query: (sql, params) => run(tx, sql, params),
          exec: async (sql) => {
            await tx.exec(sql);
          },
        }),
      ),
    dump: async () => new Uint8Array(await (await db.dumpDataDir('none')).arrayBuffer()),
    close: async () => {
      try {
        await db.close();
      } finally {
        releaseLock();
      }
    },
  };
}

/**
 * PGlite is one process's embedded database: a second process opening the same directory
 * would corrupt it. A lock file with the owner's pid keeps a second `kiban` out (and names
 * the holder); a lock left by a dead process is taken over.
 */
function lockDataDir(dir: string): () => void {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'kiban.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(file, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw new DataDirInUseError(dir, pid);
      }
      rmSync(file, { force: true });
    }
  }
  throw new Error(`could not lock the data directory ${dir}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class DataDirInUseError extends Error {
  constructor(
    readonly dir: string,
    readonly pid: number,
  ) {
    super(
      `the database in ${dir} is in use by process ${pid} (a running kiban?). ` +
        'Stop it first, or run against PostgreSQL with DATABASE_URL.',
    );
    this.name = 'DataDirInUseError';
  }
}

let pgTypesConfigured = false;
function configurePgTypes(): void {
  if (pgTypesConfigured) return;
  pgTypesConfigured = true;
  const identity = (v: string): string => v;
  pg.types.setTypeParser(OID.int8, identity);
  pg.types.setTypeParser(OID.numeric, identity);
  pg.types.setTypeParser(OID.date, identity);
}

async function openPostgres(target: {
  url: string;
  schema?: string;
  poolSize?: number;
}): Promise<Database> {
  configurePgTypes();
  const pool = new pg.Pool({
    connectionString: target.url,
    max: target.poolSize ?? 10,
    ...(target.schema ? { options: `-c search_path=${quoteIdent(target.schema)}` } : {}),
  });
  // A broken idle connection must not crash the process; the next query reconnects.
  pool.on('error', () => undefined);
  const toResult = <T extends Row>(r: pg.QueryResult): QueryResult<T> => ({
    rows: r.rows as T[],
    rowCount: r.rowCount ?? r.rows.length,
  });
  const db: Database = {
    engine: 'postgres',
    query: async (sql, params) => toResult(await pool.query(sql, params ? [...params] : [])),
    exec: async (sql) => {
      await pool.query(sql);
    },
    transaction: async (fn) => {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn({
          query: async (sql, params) =>
            toResult(await client.query(sql, params ? [...params] : [])),
          exec: async (sql) => {
            await client.query(sql);
          },
        });
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
  // Fail fast with a clear error when the server cannot be reached.
  await db.query('SELECT 1');
  return db;
}

/** Quotes an SQL identifier (schema or table name chosen by code, never by a request). */
export function quoteIdent(name: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`unsafe SQL identifier: ${name}`);
  return `"${name}"`;
}

/**
 * The key of an advisory lock on `keySql` (an SQL text expression: a parameter or a column),
 * in the current schema's own namespace. Advisory locks belong to the whole database while
 * the rows they guard belong to one schema: without the namespace, two Kiban schemas on one
 * server (the PostgreSQL test pass runs dozens at once) wait on each other's locks, and a
 * transaction holding one lock while taking another can deadlock with a stranger. 64-bit, so
 * unrelated keys practically never share a lock.
 */
export const advisoryLockKey = (keySql: string): string =>
  `hashtextextended(coalesce(current_schema(), '') || '/' || ${keySql}, 0)`;

/** One element of a batch-sized array parameter. */
export type ArrayElement = string | number | boolean | null | Buffer;

/** `value` as an element of a PostgreSQL array literal: quoted, or NULL. */
function arrayElement(value: ArrayElement): string {
  if (value === null) return 'NULL';
  if (typeof value === 'number') return String(value);
  if (typeof value === 'boolean') return value ? 't' : 'f';
  if (Buffer.isBuffer(value)) return `"\\\\x${value.toString('hex')}"`;
  return /["\\]/.test(value) ? `"${value.replace(/["\\]/g, '\\$&')}"` : `"${value}"`;
}

/**
 * An array parameter as one PostgreSQL array literal (`{"a","b",NULL}`) for `$n::type[]`:
 * built in one pass here instead of element by element by the driver, which for arrays of a
 * batch's size is most of the cost of sending them (both engines).
 */
export const pgArray = (values: readonly ArrayElement[]): string =>
  `{${values.map(arrayElement).join(',')}}`;
