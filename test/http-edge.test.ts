/**
 * The HTTP edge as a client sees it: every error is an RFC 9457 problem document with a
 * stable `code`, internal detail never leaves the process (neither in responses nor in
 * logs), the OpenAPI description matches the routes, and responses carry only declared
 * fields.
 */
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { safeErrorForLog } from '../src/platform/errors.ts';
import { createTestApp, type TestApp } from './support/app.ts';

const PROBLEM_JSON = /^application\/problem\+json/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  detail: string;
  requestId: string;
  errors?: { pointer: string; message: string }[];
}

type Injected = LightMyRequestResponse;

/** Asserts the response is a well-formed problem document with this status and code. */
function problem(res: Injected, status: number, code: string): Problem {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.headers['content-type']).toMatch(PROBLEM_JSON);
  const p = res.json<Problem>();
  expect(p).toMatchObject({ status, code, type: `urn:kiban:problem:${code}` });
  expect(typeof p.title).toBe('string');
  expect(typeof p.detail).toBe('string');
  expect(p.requestId).toBe(res.headers['x-request-id']);
  return p;
}

const pointers = (p: Problem): string[] => (p.errors ?? []).map((e) => e.pointer);

/** Captures the app's log lines (the root pino logger and every request child share it). */
function captureLogs(t: TestApp): string[] {
  const lines: string[] = [];
  const log = t.app.log as unknown as Record<symbol, unknown>;
  log[pino.symbols.streamSym] = { write: (s: string) => void lines.push(s) };
  return lines;
}

describe('HTTP edge', () => {
  let t: TestApp;
  let logs: string[];
  const seen: Injected[] = [];
  const inject = async (opts: InjectOptions): Promise<Injected> => {
    const res = await t.app.inject(opts);
    seen.push(res);
    return res;
  };

  beforeAll(async () => {
    t = await createTestApp({ env: { KIBAN_LOG_LEVEL: 'info' } });
    logs = captureLogs(t);
  });
  afterAll(async () => t.close());

  const operator = () => t.auth('operator');
  const postActor = (payload: unknown) =>
    inject({ method: 'POST', url: '/v1/actors', headers: operator(), payload: payload as object });

  describe('request validation', () => {
    it('rejects a body with a wrong type with JSON pointers to the fields', async () => {
      const p = problem(
        await postActor({ name: { first: 'x' }, type: 42, municipalityCode: '131016' }),
        400,
        'request.invalid',
      );
      expect(pointers(p)).toContain('/body/name');
      expect(pointers(p)).toContain('/body/type');
      for (const e of p.errors ?? []) expect(e.message.length).toBeGreaterThan(0);
    });

    it('does not coerce body types: a number is not accepted for a string', async () => {
      const p = problem(await postActor({ name: 12345, type: 'resident' }), 400, 'request.invalid');
      expect(pointers(p)).toEqual(['/body/name']);
      const r = await inject({ url: '/v1/actors/12345', headers: operator() });
      problem(r, 404, 'actor.not-found');
    });

    it('names a missing field', async () => {
      const p = problem(await postActor({ type: 'resident' }), 400, 'request.invalid');
      expect(pointers(p)).toEqual(['/body/name']);
    });

    it('names a field the schema does not declare', async () => {
      const p = problem(
        await postActor({ name: 'extra-field', type: 'resident', token: 'kbn_x' }),
        400,
        'request.invalid',
      );
      expect(pointers(p)).toEqual(['/body/token']);
      // Nothing was created.
      const r = await inject({ url: '/v1/actors/extra-field', headers: operator() });
      problem(r, 404, 'actor.not-found');
    });

    it('rejects a value that breaks a pattern', async () => {
      const p = problem(
        await postActor({ name: 'bad code', type: 'municipality', municipalityCode: '13101' }),
        400,
        'request.invalid',
      );
      expect(pointers(p).sort()).toEqual(['/body/municipalityCode', '/body/name']);
    });

    it('rejects malformed JSON', async () => {
      const res = await inject({
        method: 'POST',
        url: '/v1/actors',
        headers: { ...operator(), 'content-type': 'application/json' },
        payload: '{"name": "x", "type": ',
      });
      const p = problem(res, 400, 'request.malformed-json');
      expect(JSON.stringify(p)).not.toContain('Unexpected');
      const empty = await inject({
        method: 'POST',
        url: '/v1/actors',
        headers: { ...operator(), 'content-type': 'application/json' },
        payload: '',
      });
      problem(empty, 400, 'request.malformed-json');
    });

    it('rejects a body that is not JSON with 415', async () => {
      for (const contentType of ['text/plain', 'application/xml', 'multipart/form-data; b=x']) {
        const res = await inject({
          method: 'POST',
          url: '/v1/actors',
          headers: { ...operator(), 'content-type': contentType },
          payload: '<actor name="x"/>',
        });
        problem(res, 415, 'request.unsupported-media-type');
      }
    });

    it('rejects bad query parameters with pointers into the query string', async () => {
      const lg = problem(
        await inject({ url: '/v1/local-governments?limit=0&kind=castle', headers: operator() }),
        400,
        'request.invalid',
      );
      expect(pointers(lg)).toContain('/querystring/limit');
      expect(pointers(lg)).toContain('/querystring/kind');
      const notANumber = problem(
        await inject({ url: '/v1/local-governments?offset=abc', headers: operator() }),
        400,
        'request.invalid',
      );
      expect(pointers(notANumber)).toEqual(['/querystring/offset']);
      const audit = problem(
        await inject({ url: '/v1/audit/entries?afterSeq=-1', headers: operator() }),
        400,
        'request.invalid',
      );
      expect(pointers(audit)).toEqual(['/querystring/afterSeq']);
    });

    it('rejects a bad path parameter', async () => {
      const p = problem(
        await inject({ url: '/v1/local-governments/13101X', headers: operator() }),
        400,
        'request.invalid',
      );
      expect(pointers(p)).toEqual(['/params/code']);
    });

    it('answers an unknown route with route.not-found', async () => {
      problem(await inject({ url: '/v1/nothing-here' }), 404, 'route.not-found');
      problem(
        await inject({ url: '/v1/nothing-here', headers: operator() }),
        404,
        'route.not-found',
      );
      problem(await inject({ method: 'DELETE', url: '/v1/actors' }), 404, 'route.not-found');
    });
  });

  describe('internal errors', () => {
    it('never show their message to the client', async () => {
      const spy = vi
        .spyOn(t.services.actors, 'list')
        .mockRejectedValue(new Error('SECRET internal detail 123456789012'));
      try {
        const res = await inject({ url: '/v1/actors', headers: operator() });
        const p = problem(res, 500, 'internal');
        expect(res.body).not.toContain('SECRET');
        expect(res.body).not.toContain('123456789012');
        expect(p.detail).toContain('requestId');
        // The operator can find the log line by the request id.
        const line = logs.find((l) => l.includes('"internal error"'));
        expect(line).toBeDefined();
        expect(JSON.parse(line ?? '{}')).toMatchObject({ level: 50, requestId: p.requestId });
      } finally {
        spy.mockRestore();
      }
    });

    it('keep row values of a PostgreSQL error out of the log', async () => {
      const pgError = Object.assign(
        new Error('duplicate key value violates unique constraint "actors_name_key"'),
        {
          code: '23505',
          severity: 'ERROR',
          table: 'actors',
          constraint: 'actors_name_key',
          detail: 'Key (name)=(SECRET-yamada-taro) already exists.',
          where: 'SQL statement with SECRET-where',
        },
      );
      const safe = safeErrorForLog(pgError);
      expect(safe).toEqual({
        type: 'Error',
        message: 'postgres error 23505',
        code: '23505',
        severity: 'ERROR',
        table: 'actors',
        constraint: 'actors_name_key',
      });
      const spy = vi.spyOn(t.services.actors, 'list').mockRejectedValue(pgError);
      const before = logs.length;
      try {
        const res = await inject({ url: '/v1/actors', headers: operator() });
        problem(res, 500, 'internal');
        expect(res.body).not.toContain('SECRET');
        const written = logs.slice(before).join('');
        expect(written).toContain('23505');
        expect(written).not.toContain('SECRET');
        expect(written).not.toContain('duplicate key value');
      } finally {
        spy.mockRestore();
      }
    });

    it('answer a transaction lost to a deadlock or serialization failure with 503 and Retry-After', async () => {
      for (const code of ['40P01', '40001', '55P03']) {
        const pgError = Object.assign(new Error('deadlock detected'), {
          code,
          severity: 'ERROR',
          detail: 'Process 1 waits for ShareLock on transaction 2; SECRET-row',
        });
        const spy = vi.spyOn(t.services.actors, 'list').mockRejectedValue(pgError);
        const before = logs.length;
        try {
          const res = await inject({ url: '/v1/actors', headers: operator() });
          const p = problem(res, 503, 'database.contention');
          expect(p.detail).toMatch(/send it again/);
          expect(res.headers['retry-after']).toBe('1');
          expect(res.body).not.toContain('SECRET');
          const written = logs.slice(before);
          const line = written.find((l) => l.includes(code));
          expect(JSON.parse(line ?? '{}')).toMatchObject({ level: 40, requestId: p.requestId });
          expect(written.join('')).not.toContain('SECRET');
        } finally {
          spy.mockRestore();
        }
      }
      // Any other database error stays an internal error.
      const spy = vi
        .spyOn(t.services.actors, 'list')
        .mockRejectedValue(Object.assign(new Error('x'), { code: '23505' }));
      try {
        const res = await inject({ url: '/v1/actors', headers: operator() });
        problem(res, 500, 'internal');
        expect(res.headers['retry-after']).toBeUndefined();
      } finally {
        spy.mockRestore();
      }
    });

    it('safeErrorForLog reduces anything thrown to a few known fields', () => {
      expect(safeErrorForLog('a string with SECRET')).toEqual({ type: 'string' });
      expect(safeErrorForLog({ detail: 'SECRET' })).toEqual({ type: 'object' });
    });
  });

  describe('logs', () => {
    it('log every request by route pattern, with no credentials, URL values or bodies', async () => {
      const before = logs.length;
      const token = t.tokens['municipality'] ?? '';
      await inject({ url: '/v1/whoami', headers: t.auth('municipality') });
      await inject({ url: '/v1/whoami', headers: { authorization: 'Bearer kbn_SECRETTOKEN' } });
      await inject({
        url: '/v1/municipalities/131016/audit-entries?limit=3',
        headers: t.auth('municipality'),
      });
      await postActor({ name: 'log-check', type: 'resident', displayName: '山田 太郎' });
      const written = logs.slice(before).map((l) => JSON.parse(l) as Record<string, unknown>);
      const requests = written.filter((l) => l['msg'] === 'request');
      expect(requests.map((r) => [r['route'], r['status']])).toEqual([
        ['/v1/whoami', 200],
        ['/v1/whoami', 401],
        ['/v1/municipalities/:municipalityCode/audit-entries', 200],
        ['/v1/actors', 201],
      ]);
      for (const r of requests) expect(r['requestId']).toMatch(UUID);
      const text = logs.slice(before).join('');
      for (const secret of [token, 'SECRETTOKEN', 'Bearer', 'authorization', '山田', '131016']) {
        expect(text).not.toContain(secret);
      }
    });
  });

  describe('body size limit', () => {
    let small: TestApp;
    beforeAll(async () => {
      small = await createTestApp({ env: { KIBAN_BODY_LIMIT: '2048' } });
    });
    afterAll(async () => small.close());

    const post = async (name: string, size: number) => {
      const head = `{"name": "${name}", "type": "resident"`;
      // Whitespace is valid JSON: the body stays valid, only its size changes.
      const payload = `${head}${' '.repeat(size - head.length - 1)}}`;
      expect(Buffer.byteLength(payload)).toBe(size);
      return small.app.inject({
        method: 'POST',
        url: '/v1/actors',
        headers: { ...small.auth('operator'), 'content-type': 'application/json' },
        payload,
      });
    };

    it('accepts a valid body of exactly the limit', async () => {
      expect(small.config.bodyLimitBytes).toBe(2048);
      expect((await post('at-limit', 2048)).statusCode).toBe(201);
    });

    it('refuses a valid body over the limit with 413 request.too-large', async () => {
      problem(await post('just-over', 2049), 413, 'request.too-large');
      const res = await post('over-limit', 3000);
      problem(res, 413, 'request.too-large');
      const r = await small.app.inject({
        url: '/v1/actors/over-limit',
        headers: small.auth('operator'),
      });
      expect(r.statusCode).toBe(404);
    });
  });

  describe('service endpoints', () => {
    it('/healthz says ok', async () => {
      const res = await inject({ url: '/healthz' });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ status: 'ok' });
    });

    it('/readyz is ready with no pending migration, and 503 when one is missing', async () => {
      const ready = await inject({ url: '/readyz' });
      expect(ready.statusCode).toBe(200);
      expect(ready.json()).toMatchObject({
        status: 'ready',
        database: t.database.engine,
        migrations: { pending: 0 },
      });
      const db = t.database.db;
      const saved = await db.query<{ version: number; name: string; checksum: string }>(
        'SELECT version, name, checksum FROM schema_migrations ORDER BY version DESC LIMIT 1',
      );
      const row = saved.rows[0];
      if (!row) throw new Error('no migrations recorded');
      await db.query(
        'DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)',
      );
      try {
        const p = problem(await inject({ url: '/readyz' }), 503, 'not-ready.migrations');
        expect(p.detail).toContain('1 migration');
      } finally {
        await db.query(
          'INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)',
          [row.version, row.name, row.checksum],
        );
      }
      expect((await inject({ url: '/readyz' })).statusCode).toBe(200);
    });

    it('/openapi.json describes every route, with bearer security on every non-public route', async () => {
      const res = await inject({ url: '/openapi.json' });
      expect(res.statusCode).toBe(200);
      const doc = res.json<{
        openapi: string;
        info: { title: string; version: string };
        components: { securitySchemes: Record<string, unknown>; schemas: Record<string, unknown> };
        paths: Record<
          string,
          Record<
            string,
            { security?: unknown; description?: string; responses: Record<string, unknown> }
          >
        >;
      }>();
      expect(doc.openapi).toBe('3.1.0');
      expect(doc.info.title).toBe('Kiban API');
      expect(doc.components.securitySchemes['bearer']).toEqual({ type: 'http', scheme: 'bearer' });
      expect(Object.keys(doc.components.schemas)).toEqual(
        expect.arrayContaining(['Problem', 'Actor']),
      );
      const routes = t.app.routeTable.filter(
        (r) => !r.url.startsWith('/docs') && r.url !== '/openapi.json',
      );
      expect(routes.length).toBeGreaterThan(5);
      for (const r of routes) {
        // ':name' is a path parameter; '::' is an escaped literal colon (…/notifications:batch).
        // A trailing '*' (the OCSP GET request in the path) is described as '{*}'.
        const p = r.url
          .replace(/(?<!:):([A-Za-z]+)/g, '{$1}')
          .replace(/::/g, ':')
          .replace(/\/\*$/, '/{*}');
        const op = doc.paths[p]?.[r.method.toLowerCase()];
        expect(op, `${r.method} ${r.url}`).toBeDefined();
        if (!op) continue;
        expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(['4XX', '5XX']));
        if (r.access && !r.access.public) {
          expect(op.security, r.url).toEqual([{ bearer: [] }]);
          // Who may call it, stated once.
          expect(op.description?.match(/Allowed: /g)?.length, r.url).toBe(1);
        } else {
          expect(op.security, r.url).toBeUndefined();
        }
      }
      // Only the routes of the table (plus nothing hidden such as /docs) are described.
      const described = Object.entries(doc.paths).flatMap(([p, ops]) =>
        Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`),
      );
      expect(described.length).toBe(routes.length);
    });

    it('/docs serves the API documentation as HTML', async () => {
      let res = await inject({ url: '/docs' });
      for (let hops = 0; res.statusCode >= 300 && res.statusCode < 400 && hops < 3; hops++) {
        const location = String(res.headers['location']);
        res = await inject({ url: new URL(location, 'http://x/docs/').pathname });
      }
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.body).toMatch(/<html/i);
      const spec = await inject({ url: '/docs/json' });
      expect(spec.statusCode).toBe(200);
      expect(spec.json<{ openapi: string }>().openapi).toBe('3.1.0');
    });
  });

  describe('responses', () => {
    const ACTOR_VIEW_KEYS = [
      'displayName',
      'municipalityCode',
      'name',
      'prefectureCode',
      'purposes',
      'roles',
      'status',
      'type',
      'verifierId',
    ];

    it('GET /v1/whoami returns exactly the declared actor fields', async () => {
      const res = await inject({ url: '/v1/whoami', headers: t.auth('municipality') });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      const me = res.json<Record<string, unknown>>();
      expect(Object.keys(me).sort()).toEqual(ACTOR_VIEW_KEYS);
      expect(me).toMatchObject({ name: 'municipality', municipalityCode: '131016' });
      for (const token of Object.values(t.tokens)) expect(res.body).not.toContain(token);
      expect(res.body).not.toMatch(/"id"|token|hash/i);
    });

    it('GET /v1/actors lists actors without ids or credentials', async () => {
      const res = await inject({ url: '/v1/actors', headers: operator() });
      expect(res.statusCode).toBe(200);
      const { actors } = res.json<{ actors: Record<string, unknown>[] }>();
      expect(actors.length).toBeGreaterThanOrEqual(Object.keys(t.tokens).length);
      for (const a of actors) expect(Object.keys(a).sort()).toEqual(ACTOR_VIEW_KEYS);
      for (const token of Object.values(t.tokens)) expect(res.body).not.toContain(token);
      expect(res.body).not.toMatch(/"id"|token_hash|tokenHash/);
    });

    it('carry a request id and safe headers on every response, errors included', async () => {
      expect(seen.length).toBeGreaterThan(20);
      const statuses = new Set(seen.map((r) => r.statusCode));
      for (const s of [200, 201, 400, 401, 404, 415, 500, 503]) expect(statuses).toContain(s);
      const ids = seen.map((r) => String(r.headers['x-request-id']));
      for (const id of ids) expect(id).toMatch(UUID);
      expect(new Set(ids).size).toBe(ids.length);
      for (const r of seen) {
        expect(r.headers['x-content-type-options']).toBe('nosniff');
        expect(r.headers['cache-control']).toBeDefined();
      }
    });

    it('honour no client-supplied request id', async () => {
      const res = await inject({ url: '/healthz', headers: { 'x-request-id': 'forged' } });
      expect(res.headers['x-request-id']).toMatch(UUID);
    });
  });
});
