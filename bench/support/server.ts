/**
 * The system under test as a user runs it: `kiban start` (init --demo, then serve) in its own
 * process on a fresh data directory — PGlite by default, or a fresh PostgreSQL database made
 * for the run and dropped afterwards — listening on a loopback port chosen by the kernel.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface DemoCredentials {
  baseUrl: string;
  actors: Record<string, { token: string; municipalityCode?: string }>;
}

/** A fresh PostgreSQL database on the server `url` points at, dropped by `drop()`. */
export async function freshPostgresDatabase(
  url: string,
  label: string,
): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `kiban_bench_${label}_${process.pid}_${randomBytes(3).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const u = new URL(url);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        await c.query(
          'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
          [name],
        );
        await c.query(`DROP DATABASE IF EXISTS ${name}`);
      } finally {
        await c.end();
      }
    },
  };
}

export interface KibanServer {
  url: string;
  dataDir: string;
  engine: 'pglite' | 'postgres';
  credentials: DemoCredentials;
  token(actor: string): string;
  pid: number;
  stop(): Promise<void>;
}

/** Waits for `child` to print a line matching `pattern`; fails on exit or after `ms`. */
export function waitForLine(child: ChildProcess, pattern: RegExp, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out waiting for ${pattern} (output: ${seen.slice(-2000)})`));
    }, ms);
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString();
      const m = seen.match(pattern);
      if (m) {
        cleanup();
        resolve(m[0]);
      }
    };
    const onExit = (code: number | null): void => {
      cleanup();
      reject(new Error(`exited (${code}) before ${pattern}: ${seen.slice(-2000)}`));
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.on('exit', onExit);
  });
}

/**
 * Stops a child: SIGTERM, then SIGKILL after 10 s. With `group`, the signals go to its whole
 * process group (a child spawned `detached`, whose own children must stop too).
 */
export function stopChild(child: ChildProcess, group = false): Promise<void> {
  const signal = (s: NodeJS.Signals): void => {
    try {
      if (group && child.pid) process.kill(-child.pid, s);
      else child.kill(s);
    } catch {
      // Already gone.
    }
  };
  if (child.exitCode !== null || child.signalCode !== null) {
    if (group) signal('SIGKILL');
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const kill = setTimeout(
      () => signal('SIGKILL'),
      Number(process.env['KIBAN_BENCH_STOP_MS'] ?? 10_000),
    );
    child.once('exit', () => {
      clearTimeout(kill);
      if (group) signal('SIGKILL');
      resolve();
    });
    signal('SIGTERM');
  });
}

/** Starts `kiban start` on a fresh database; resolves once it listens. */
export async function startKiban(
  opts: { databaseUrl?: string; env?: Record<string, string> } = {},
): Promise<KibanServer> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'kiban-bench-'));
  const pgDb = opts.databaseUrl ? await freshPostgresDatabase(opts.databaseUrl, 'srv') : null;
  const child = spawn(
    process.execPath,
    // KIBAN_BENCH_NODE_ARGS (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`) profiles the server.
    [
      ...(process.env['KIBAN_BENCH_NODE_ARGS']?.split(/\s+/).filter(Boolean) ?? []),
      'bin/kiban.js',
      'start',
      '--data',
      dataDir,
      '--port',
      '0',
    ],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        // Everything else as in production (the outbox, scheduler and change feed run).
        KIBAN_LOG_LEVEL: 'warn',
        ...(pgDb ? { DATABASE_URL: pgDb.url } : { DATABASE_URL: '' }),
        ...(opts.env ?? {}),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let line: string;
  try {
    line = await waitForLine(child, /listening on (http:\/\/\S+)/, 120_000);
  } catch (e) {
    await stopChild(child);
    await pgDb?.drop();
    rmSync(dataDir, { recursive: true, force: true });
    throw e;
  }
  // Keep draining the pipes so the child never blocks on a full one.
  child.stdout?.resume();
  child.stderr?.on('data', (c: Buffer) => process.stderr.write(c));
  const url = (line.match(/http:\/\/\S+/) as RegExpMatchArray)[0];
  const credentials = JSON.parse(
    readFileSync(path.join(dataDir, 'demo-credentials.json'), 'utf8'),
  ) as DemoCredentials;
  return {
    url,
    dataDir,
    engine: pgDb ? 'postgres' : 'pglite',
    credentials,
    pid: child.pid ?? 0,
    token(actor) {
      const a = credentials.actors[actor];
      if (!a) throw new Error(`no demo actor ${actor}`);
      return a.token;
    },
    async stop() {
      await stopChild(child);
      await pgDb?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A free loopback TCP port (for peers that cannot be told to pick one themselves). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** JSON over HTTP with a bearer token; throws with the problem's code on a non-2xx. */
export async function api<T>(
  server: KibanServer,
  actor: string,
  method: string,
  route: string,
  body?: unknown,
): Promise<T> {
  const res = await fetch(server.url + route, {
    method,
    headers: {
      authorization: `Bearer ${server.token(actor)}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${text.slice(0, 500)}`);
  return (text ? JSON.parse(text) : null) as T;
}
