/**
 * The `kiban` command end to end, as a user runs it: `node bin/kiban.js …` in a child
 * process, against PGlite in a temporary data directory or, with DATABASE_URL set, against a
 * fresh schema on that PostgreSQL server (selected through the connection string's
 * `options=-c search_path=…`, exactly as a user would).
 *
 * The cases of the first block run in order on one initialised installation (init once,
 * then reuse) to keep the file fast; each states what it relies on.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../src/platform/db.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = path.join(ROOT, 'bin', 'kiban.js');
const PG_URL = process.env['DATABASE_URL'] ?? null;
const engine = PG_URL ? 'postgres' : 'pglite';

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const children = new Set<ChildProcess>();

/** The user's environment without anything that would point the CLI elsewhere. */
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && k !== 'DATABASE_URL' && !k.startsWith('KIBAN_')) env[k] = v;
  }
  return env;
}

function spawnCli(args: string[], env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

function run(
  args: string[],
  env: Record<string, string> = baseEnv(),
  timeoutMs = 45_000,
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawnCli(args, env);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`kiban ${args.join(' ')} timed out\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

interface RunningServer {
  url: string;
  pid: number;
  output(): string;
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `kiban serve|start …` and waits for its "listening on" line. */
function startServer(args: string[], env: Record<string, string>): Promise<RunningServer> {
  return new Promise((resolve, reject) => {
    const child = spawnCli(args, env);
    let out = '';
    let exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
      child.on('close', (code, signal) => {
        exited = { code, signal };
        res(exited);
      }),
    );
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`kiban ${args.join(' ')} did not start\n${out}`));
    }, 45_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)\s/.exec(out);
      if (m?.[1] && child.pid) {
        clearTimeout(timer);
        resolve({
          url: m[1],
          pid: child.pid,
          output: () => out,
          stop: async () => {
            if (!exited) child.kill('SIGTERM');
            const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
            const r = await exit;
            clearTimeout(t);
            return r;
          },
        });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    void exit.then((r) => {
      clearTimeout(timer);
      reject(
        new Error(`kiban ${args.join(' ')} exited (${String(r.code)}) before listening\n${out}`),
      );
    });
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** One installation: a data directory and, on PostgreSQL, its own schema. */
interface Installation {
  dataDir: string;
  env: Record<string, string>;
  schema: string | null;
  open(): Promise<Database>;
  cleanup(): Promise<void>;
}

async function newInstallation(): Promise<Installation> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'kiban-cli-'));
  if (!PG_URL) {
    return {
      dataDir,
      env: baseEnv(),
      schema: null,
      open: () => openDatabase({ engine: 'pglite', dataDir: path.join(dataDir, 'pglite') }),
      cleanup: async () => rmSync(dataDir, { recursive: true, force: true }),
    };
  }
  const schema = `kiban_cli_${randomBytes(6).toString('hex')}`;
  const admin = await openDatabase({ engine: 'postgres', url: PG_URL, poolSize: 1 });
  await admin.query(`CREATE SCHEMA ${schema}`);
  const sep = PG_URL.includes('?') ? '&' : '?';
  const url = `${PG_URL}${sep}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  return {
    dataDir,
    env: { ...baseEnv(), DATABASE_URL: url },
    schema,
    open: () => openDatabase({ engine: 'postgres', url: PG_URL, schema, poolSize: 1 }),
    cleanup: async () => {
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
      await admin.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

interface Credentials {
  baseUrl: string;
  actors: Record<
    string,
    {
      type: string;
      token: string;
      displayName?: string;
      municipalityCode?: string;
      prefectureCode?: string;
      roles?: string[];
      purposes?: string[];
    }
  >;
}

const DEMO_NAMES = [
  'authVerifier',
  'municipality',
  'municipality2',
  'nationalAgency',
  'operator',
  'prefecture',
  'signatureVerifier',
];

const readCredentials = (dataDir: string): Credentials =>
  JSON.parse(readFileSync(path.join(dataDir, 'demo-credentials.json'), 'utf8')) as Credentials;

const tokensOf = (c: Credentials): Record<string, string> =>
  Object.fromEntries(Object.entries(c.actors).map(([k, v]) => [k, v.token]));

async function whoami(base: string, token?: string) {
  const res = await fetch(`${base}/v1/whoami`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  return { status: res.status, type: res.headers.get('content-type'), body: await res.json() };
}

afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
});

// The three blocks run side by side (each on its own installation); the cases inside the
// first one run in order.
describe.concurrent(`kiban CLI on ${engine}: one installation, step by step`, () => {
  let inst: Installation;
  const args = (...a: string[]) => [...a, '--data', inst.dataDir];
  let firstTokens: Record<string, string> = {};
  let renewedTokens: Record<string, string> = {};
  let cliToken = '';

  beforeAll(async () => {
    inst = await newInstallation();
  });
  afterAll(async () => inst.cleanup());

  it.sequential(
    'init --demo creates the database and writes the credentials contract (mode 0600)',
    async () => {
      const r = await run(args('init', '--demo'), inst.env);
      expect(r.stderr).not.toMatch(/error/i);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('migrations applied: 1');
      expect(r.stdout).toContain('demo actors: created');
      const file = path.join(inst.dataDir, 'demo-credentials.json');
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const c = readCredentials(inst.dataDir);
      expect(Object.keys(c).sort()).toEqual(['actors', 'baseUrl']);
      expect(c.baseUrl).toBe('http://127.0.0.1:8080');
      expect(Object.keys(c.actors).sort()).toEqual(DEMO_NAMES);
      for (const [name, a] of Object.entries(c.actors)) {
        expect(a.token, name).toMatch(/^kbn_[A-Za-z0-9_-]{43}$/);
        expect(typeof a.type, name).toBe('string');
      }
      expect(new Set(Object.values(tokensOf(c))).size).toBe(DEMO_NAMES.length);
      expect(c.actors['operator']).toMatchObject({
        type: 'agencyOperator',
        roles: ['registry', 'ca', 'cards', 'auditor'],
      });
      expect(c.actors['prefecture']).toMatchObject({ type: 'prefecture', prefectureCode: '13' });
      expect(c.actors['municipality']).toMatchObject({
        type: 'municipality',
        municipalityCode: '131016',
        prefectureCode: '13',
      });
      expect(c.actors['municipality2']).toMatchObject({
        type: 'municipality',
        municipalityCode: '141046',
        prefectureCode: '14',
      });
      expect(c.actors['nationalAgency']).toMatchObject({ type: 'nationalAgency' });
      expect(c.actors['signatureVerifier']).toMatchObject({ type: 'signatureVerifier' });
      expect(c.actors['authVerifier']).toMatchObject({ type: 'authVerifier' });
      expect(c.actors['prefecture']?.municipalityCode).toBeUndefined();
      firstTokens = tokensOf(c);

      if (inst.schema) {
        // The CLI really worked in the schema named by `options=-c search_path=…`.
        const db = await inst.open();
        try {
          const n = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM actors');
          expect(n.rows[0]?.n).toBe(DEMO_NAMES.length);
          const where = await db.query<{ schema: string }>(
            "SELECT table_schema AS schema FROM information_schema.tables WHERE table_name = 'audit_log' AND table_schema = $1",
            [inst.schema],
          );
          expect(where.rows).toEqual([{ schema: inst.schema }]);
        } finally {
          await db.close();
        }
      }
    },
  );

  it.sequential('a second init --demo keeps the same tokens', async () => {
    const r = await run(args('init', '--demo'), inst.env);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('migrations: up to date');
    expect(r.stdout).toContain('demo actors: present');
    expect(tokensOf(readCredentials(inst.dataDir))).toEqual(firstTokens);
  });

  it.sequential(
    're-running init --demo after the credentials file was deleted renews every token',
    async () => {
      unlinkSync(path.join(inst.dataDir, 'demo-credentials.json'));
      const r = await run(args('init', '--demo'), inst.env);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('demo actors: renewed');
      const c = readCredentials(inst.dataDir);
      expect(statSync(path.join(inst.dataDir, 'demo-credentials.json')).mode & 0o777).toBe(0o600);
      expect(Object.keys(c.actors).sort()).toEqual(DEMO_NAMES);
      renewedTokens = tokensOf(c);
      for (const name of DEMO_NAMES) expect(renewedTokens[name], name).not.toBe(firstTokens[name]);
      // Whether the old tokens still work is checked against the running server below.
    },
  );

  it.sequential('token create prints a new token (checked against the server below)', async () => {
    const r = await run(args('token', 'create', '--actor', 'municipality'), inst.env);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/token id [0-9a-f-]{36} for municipality/);
    cliToken = r.stdout.trim();
    expect(cliToken).toMatch(/^kbn_[A-Za-z0-9_-]{43}$/);
    const missing = await run(args('token', 'create', '--actor', 'nobody'), inst.env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no actor named nobody');
  });

  it.sequential(
    'actor create refuses an unknown municipality code with exit 1 and a clear message',
    async () => {
      const r = await run(
        args(
          'actor',
          'create',
          '--name',
          'x',
          '--type',
          'municipality',
          '--municipality-code',
          '999999',
        ),
        inst.env,
      );
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain('kiban actor: 999999 is not a municipality or ward');
      // That nothing was created is checked against the server below.
    },
  );

  it.sequential('audit verify reports an intact chain', async () => {
    const r = await run(args('audit', 'verify'), inst.env);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^audit chain OK: \d+ entries/);
  });

  it.sequential('serve answers health, docs and the API until SIGTERM', async () => {
    const server = await startServer(args('serve', '--port', '0'), inst.env);
    try {
      expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(server.url).not.toMatch(/:0$/);
      const base = server.url;

      const health = await fetch(`${base}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ status: 'ok' });
      const ready = await fetch(`${base}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({
        status: 'ready',
        database: engine,
        migrations: { pending: 0 },
      });
      const spec = await fetch(`${base}/openapi.json`);
      expect(spec.status).toBe(200);
      expect(((await spec.json()) as { openapi: string }).openapi).toBe('3.1.0');

      const refused = await fetch(`${base}/v1/actors/x`, {
        headers: { authorization: `Bearer ${renewedTokens['operator']}` },
      });
      expect(refused.status).toBe(404);
      const me = await whoami(base, renewedTokens['municipality']);
      expect(me.status).toBe(200);
      expect(me.body).toMatchObject({ name: 'municipality', municipalityCode: '131016' });
      expect((await whoami(base, cliToken)).status).toBe(200);
      const anonymous = await whoami(base);
      expect(anonymous.status).toBe(401);
      expect(anonymous.type).toMatch(/^application\/problem\+json/);
      expect(anonymous.body).toMatchObject({ code: 'auth.token-missing' });
      // The tokens replaced by the renewal no longer work; the renewed ones all do.
      for (const name of DEMO_NAMES) {
        const old = await whoami(base, firstTokens[name]);
        expect(old.status, name).toBe(401);
        expect(old.body, name).toMatchObject({ code: 'auth.token-invalid' });
        expect((await whoami(base, renewedTokens[name])).status, name).toBe(200);
      }

      const second = await run(args('audit', 'verify'), inst.env);
      if (engine === 'pglite') {
        // PGlite belongs to one process: a second kiban must refuse, naming the holder.
        expect(second.code).toBe(1);
        expect(second.stderr).toContain(`in use by process ${server.pid}`);
        expect(second.stderr).toContain(inst.dataDir);
        expect(existsSync(path.join(inst.dataDir, 'pglite', 'kiban.lock'))).toBe(true);
      } else {
        expect(second.code).toBe(0);
        expect(second.stdout).toContain('audit chain OK');
      }
    } finally {
      const exit = await server.stop();
      expect(exit).toEqual({ code: 0, signal: null });
    }
    // Request log lines are written, but never a credential.
    const output = server.output();
    expect(output).toContain('"msg":"request"');
    for (const token of [
      ...Object.values(firstTokens),
      ...Object.values(renewedTokens),
      cliToken,
    ]) {
      expect(output).not.toContain(token);
    }
    expect(output.toLowerCase()).not.toContain('authorization');
    if (engine === 'pglite') {
      // A clean shutdown releases the data directory.
      expect(existsSync(path.join(inst.dataDir, 'pglite', 'kiban.lock'))).toBe(false);
    }
  });

  it.sequential('audit verify finds an edited entry and exits 1', async () => {
    const db = await inst.open();
    try {
      const r = await db.query("UPDATE audit_log SET action = 'x' WHERE seq = 3");
      expect(r.rowCount).toBe(1);
    } finally {
      await db.close();
    }
    const r = await run(args('audit', 'verify'), inst.env);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('audit chain BROKEN at entry 3');
  });
});

describe.concurrent('kiban start', () => {
  let inst: Installation;
  beforeAll(async () => {
    inst = await newInstallation();
  });
  afterAll(async () => inst.cleanup());

  it('is what npm start runs', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    expect(pkg.scripts['start']).toBe('node bin/kiban.js start');
  });

  it('initialises a demo installation on first run, then serves it', async () => {
    const port = await freePort();
    const server = await startServer(
      ['start', '--data', inst.dataDir, '--port', String(port)],
      inst.env,
    );
    try {
      expect(server.url).toBe(`http://127.0.0.1:${port}`);
      expect(server.output()).toContain('demo actors: created');
      const file = path.join(inst.dataDir, 'demo-credentials.json');
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const c = readCredentials(inst.dataDir);
      expect(Object.keys(c.actors).sort()).toEqual(DEMO_NAMES);
      // The file points at the running service and its tokens work there.
      expect(c.baseUrl).toBe(server.url);
      const me = await whoami(c.baseUrl, c.actors['municipality2']?.token);
      expect(me.status).toBe(200);
      expect(me.body).toMatchObject({ municipalityCode: '141046', prefectureCode: '14' });
      expect((await fetch(`${c.baseUrl}/readyz`)).status).toBe(200);
    } finally {
      expect(await server.stop()).toEqual({ code: 0, signal: null });
    }
  });
});

describe.concurrent('kiban usage errors', () => {
  it('an unknown command exits 2 with the usage text', async () => {
    const [r, flag, none] = await Promise.all([
      run(['frobnicate']),
      run(['init', '--no-such-flag']),
      run([]),
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown command frobnicate');
    expect(r.stderr).toContain('Usage:');
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain('--no-such-flag');
    expect(flag.stderr).toContain('Usage:');
    expect(none.code).toBe(2);
    expect(none.stdout).toContain('Usage:');
  });

  it('an invalid configuration exits 2 naming each problem, before touching anything', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'kiban-cli-cfg-'));
    try {
      const r = await run(['serve', '--data', dataDir], {
        ...baseEnv(),
        KIBAN_PORT: 'abc',
        KIBAN_LOG_LEVEL: 'loud',
      });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('invalid configuration');
      expect(r.stderr).toContain('KIBAN_PORT');
      expect(r.stderr).toContain('"abc"');
      expect(r.stderr).toContain('KIBAN_LOG_LEVEL');
      expect(r.stdout).not.toContain('listening');
      expect(existsSync(path.join(dataDir, 'pglite'))).toBe(false);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('--version prints the package version', async () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      version: string;
    };
    const r = await run(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  });
});
