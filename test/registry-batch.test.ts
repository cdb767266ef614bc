import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../src/platform/errors.ts';
import { type App, createEdge } from '../src/platform/http.ts';
import {
  applyBatch,
  type BatchItem,
  emptyReport,
  jsonArrayItems,
  ndjsonItems,
} from '../src/registry/registry.batch.ts';
import { identityRecordRoutes } from '../src/registry/registry.routes.ts';
import { appendEvents } from '../src/platform/outbox.ts';
import { createTestApp, type TestApp } from './support/app.ts';
import { testEngine } from './support/database.ts';
import { meetHeldRow } from './support/locks.ts';
import { baseRecord, newResident, type Resident } from './support/registry.ts';

const anyString: unknown = expect.any(String);
const URL_BATCH = '/v1/registry/notifications:batch';
const NDJSON = 'application/x-ndjson';
const CHIYODA = '131016'; // municipality
const CHUO = '131024'; // in prefecture 13, no actor of its own
const NAKA = '141046'; // municipality2

interface LineError {
  line: number;
  pointer: string;
  message: string;
  code: string;
}
interface BatchProblem {
  status: number;
  code: string;
  failedLines: number;
  truncated?: boolean;
  errors: LineError[];
}

/** A changed address inside each municipality, for moveWithin. */
const ADDRESS: Record<string, [string, string]> = {
  [CHIYODA]: ['東京都千代田区千代田1番1号', '東京都千代田区九段南1丁目2番1号'],
  [CHUO]: ['東京都中央区築地1丁目1番1号', '東京都中央区銀座1丁目2番3号'],
  [NAKA]: ['神奈川県横浜市中区港町1丁目1番地', '神奈川県横浜市中区山下町2番地'],
};

async function collect(
  split: typeof ndjsonItems,
  chunks: (string | Buffer)[],
  limits = { itemBytes: 64, items: 100 },
): Promise<BatchItem[]> {
  async function* gen(): AsyncGenerator<Buffer> {
    for (const s of chunks) yield Buffer.isBuffer(s) ? s : Buffer.from(s);
  }
  const out: BatchItem[] = [];
  for await (const item of split(gen(), limits)) out.push(item);
  return out;
}

describe('batch splitters', () => {
  it('splits NDJSON across chunk borders, counting blank lines and dropping CRs', async () => {
    const items = await collect(ndjsonItems, ['{"a":1}\r\n\n  \n{"b"', ':2}\n{"c":3}']);
    expect(items).toEqual([
      { line: 1, text: '{"a":1}' },
      { line: 4, text: '{"b":2}' },
      { line: 5, text: '{"c":3}' },
    ]);
    // One UTF-8 character split across chunks; a BOM at the start.
    const kana = Buffer.from('\uFEFF{"n":"ヤ"}\n');
    const split = await collect(ndjsonItems, [kana.subarray(0, 9), kana.subarray(9)]);
    expect(split).toEqual([{ line: 1, text: '{"n":"ヤ"}' }]);
  });

  it('reports an over-long line and invalid UTF-8 without stopping', async () => {
    const items = await collect(ndjsonItems, [
      `{"x":"${'a'.repeat(100)}"}\n`,
      Buffer.from([0x7b, 0xff, 0x7d, 0x0a]),
      '{"ok":1}',
    ]);
    expect(items).toEqual([
      { line: 1, problem: { code: 'registry.batch-line-too-long', message: anyString } },
      { line: 2, problem: { code: 'registry.batch-invalid-json', message: 'is not valid UTF-8' } },
      { line: 3, text: '{"ok":1}' },
    ]);
  });

  it('refuses more lines than the limit', async () => {
    await expect(
      collect(ndjsonItems, ['{}\n{}\n{}\n'], { itemBytes: 64, items: 2 }),
    ).rejects.toMatchObject({ code: 'registry.batch-too-many-lines', status: 413 });
  });

  it('finds JSON-array elements through strings, escapes and nesting, across chunks', async () => {
    const body = ' [ {"a":"],[\\"{"} ,\n {"b":[1,{"c":"}"}]},3, "x" ] \n';
    for (const cut of [1, 5, 9, 17, 30]) {
      const items = await collect(jsonArrayItems, [body.slice(0, cut), body.slice(cut)]);
      expect(items.map((i) => ('text' in i ? (JSON.parse(i.text) as unknown) : i))).toEqual([
        { a: '],["{' },
        { b: [1, { c: '}' }] },
        3,
        'x',
      ]);
      expect(items.map((i) => i.line)).toEqual([1, 2, 3, 4]);
    }
    expect(await collect(jsonArrayItems, ['[]'])).toEqual([]);
  });

  it('reports broken array structure as a fatal item, and a long element as its own', async () => {
    const fatal = (line: number) => ({
      line,
      problem: { code: 'registry.batch-malformed', message: anyString },
      fatal: true,
    });
    expect(await collect(jsonArrayItems, ['{"a":1}'])).toEqual([fatal(1)]);
    expect(await collect(jsonArrayItems, [''])).toEqual([fatal(1)]);
    expect(await collect(jsonArrayItems, ['[{"a":1},'])).toEqual([
      { line: 1, text: '{"a":1}' },
      fatal(2),
    ]);
    expect(await collect(jsonArrayItems, ['[{"a":1},]'])).toEqual([
      { line: 1, text: '{"a":1}' },
      fatal(2),
    ]);
    expect(await collect(jsonArrayItems, ['[{"a":1}] x'])).toEqual([
      { line: 1, text: '{"a":1}' },
      fatal(2),
    ]);
    expect(await collect(jsonArrayItems, ['[{"a":"'])).toEqual([fatal(1)]);
    const items = await collect(jsonArrayItems, [`[{"x":"${'a'.repeat(100)}"},{"y":1}]`]);
    expect(items).toEqual([
      { line: 1, problem: { code: 'registry.batch-line-too-long', message: anyString } },
      { line: 2, text: '{"y":1}' },
    ]);
  });
});

describe('batch intake of identity-record notifications', () => {
  let t: TestApp;
  /** The next sequence number per municipality. */
  const nextSeq: Record<string, number> = { [CHIYODA]: 1, [CHUO]: 1, [NAKA]: 1 };
  const seq = (m: string): number => nextSeq[m]!++;

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => t.close());

  /** Draws codes and My Numbers through the services (fast, for any municipality). */
  async function residents(municipalityCode: string, n: number): Promise<Resident[]> {
    return t.database.db.transaction(async (tx) => {
      const out: Resident[] = [];
      for (let left = n; left > 0; left -= 1000) {
        const codes = await t.services.residentCodes.handOut(
          tx,
          municipalityCode,
          Math.min(left, 1000),
        );
        for (const residentCode of codes) {
          const { myNumber } = await t.services.numbering.issue(tx, residentCode, municipalityCode);
          out.push({ residentCode, myNumber });
        }
      }
      return out;
    });
  }

  const birth = (m: string, r: Resident, sequence = seq(m)) => ({
    municipalityCode: m,
    sequence,
    changeReason: 'birth',
    changeDate: '2026-03-20',
    record: { ...baseRecord(r), address: ADDRESS[m]![0] },
  });
  const moveWithin = (m: string, r: Resident, sequence = seq(m)) => ({
    municipalityCode: m,
    sequence,
    changeReason: 'moveWithin',
    changeDate: '2026-03-25',
    record: { ...baseRecord(r), address: ADDRESS[m]![1] },
  });

  const ndjson = (lines: (object | string)[], eol = '\n'): string =>
    lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join(eol) + eol;

  const postBatch = (
    actor: string,
    payload: string | Readable,
    contentType = NDJSON,
    app: App = t.app,
  ) =>
    app.inject({
      method: 'POST',
      url: URL_BATCH,
      headers: { ...t.auth(actor), 'content-type': contentType },
      payload,
    });

  /** Rows that a batch would write, for these residents, plus whole-table totals. */
  async function footprint(codes: string[]): Promise<Record<string, number>> {
    const one = async (sql: string, params: unknown[] = []): Promise<number> =>
      (await t.database.db.query<{ n: number }>(sql, params)).rows[0]?.n ?? -1;
    return {
      versions: await one(
        'SELECT count(*)::int AS n FROM identity_record_versions WHERE resident_code = ANY($1)',
        [codes],
      ),
      persons: await one('SELECT count(*)::int AS n FROM persons WHERE resident_code = ANY($1)', [
        codes,
      ]),
      notifications: await one(
        'SELECT count(*)::int AS n FROM registry_notifications WHERE resident_code = ANY($1)',
        [codes],
      ),
      events: await one('SELECT count(*)::int AS n FROM outbox_events WHERE key = ANY($1)', [
        codes,
      ]),
      audit: await one('SELECT count(*)::int AS n FROM audit_log WHERE subject = ANY($1)', [codes]),
      allVersions: await one('SELECT count(*)::int AS n FROM identity_record_versions'),
      allNotifications: await one('SELECT count(*)::int AS n FROM registry_notifications'),
      allEvents: await one('SELECT count(*)::int AS n FROM outbox_events'),
    };
  }

  let chiyoda: Resident[];
  let firstBatch: string;

  it('applies an NDJSON batch of births and later moves, in order, with versions', async () => {
    chiyoda = await residents(CHIYODA, 4);
    const [a, b, c, d] = chiyoda as [Resident, Resident, Resident, Resident];
    firstBatch = ndjson(
      [
        birth(CHIYODA, a),
        birth(CHIYODA, b),
        '',
        birth(CHIYODA, c),
        birth(CHIYODA, d),
        moveWithin(CHIYODA, a),
        '   ',
        moveWithin(CHIYODA, c),
      ],
      '\r\n',
    );
    const res = await postBatch('municipality', firstBatch);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({
      lines: 6,
      accepted: 6,
      replayed: 0,
      results: [
        { line: 1, residentCode: a.residentCode, version: 1, replay: false },
        { line: 2, residentCode: b.residentCode, version: 1, replay: false },
        { line: 4, residentCode: c.residentCode, version: 1, replay: false },
        { line: 5, residentCode: d.residentCode, version: 1, replay: false },
        { line: 6, residentCode: a.residentCode, version: 2, replay: false },
        { line: 8, residentCode: c.residentCode, version: 2, replay: false },
      ],
    });
    const read = await t.app.inject({
      url: `/v1/registry/identity-records/${a.residentCode}`,
      headers: t.auth('municipality'),
    });
    expect(read.json()).toMatchObject({
      version: 2,
      changeReason: 'moveWithin',
      address: ADDRESS[CHIYODA]![1],
    });
    // Exactly what the single route writes: one event and one accept entry per notification.
    const fp = await footprint(chiyoda.map((r) => r.residentCode));
    expect(fp).toMatchObject({ versions: 6, persons: 4, notifications: 6, events: 6 });
    const accepts = await t.database.db.query(
      "SELECT 1 FROM audit_log WHERE action = 'registry.notification.accept' AND subject = ANY($1)",
      [chiyoda.map((r) => r.residentCode)],
    );
    expect(accepts.rows).toHaveLength(6);
    const batchEntry = await t.database.db.query<{ outcome: string; details: unknown }>(
      "SELECT outcome, details FROM audit_log WHERE action = 'registry.notifications.batch' AND request_id = $1",
      [res.headers['x-request-id']],
    );
    expect(batchEntry.rows).toEqual([
      { outcome: 'success', details: { lines: 6, accepted: 6, replayed: 0 } },
    ]);
  });

  it('answers an identical re-submission with replays only, storing nothing new', async () => {
    const before = await footprint(chiyoda.map((r) => r.residentCode));
    const res = await postBatch('municipality', firstBatch);
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json<{ accepted: number; replayed: number; results: { replay: boolean }[] }>();
    expect(body).toMatchObject({ lines: 6, accepted: 0, replayed: 6 });
    expect(body.results.map((r) => r.replay)).toEqual([true, true, true, true, true, true]);
    const after = await footprint(chiyoda.map((r) => r.residentCode));
    expect(after).toEqual(before);
  });

  it('rejects a batch with bad lines, lists exactly those and their dependents, stores nothing', async () => {
    // The prefecture relays for two of its municipalities.
    const [a1, a2] = (await residents(CHIYODA, 2)) as [Resident, Resident];
    const [b1, b2, b3] = (await residents(CHUO, 3)) as [Resident, Resident, Resident];
    const sA = nextSeq[CHIYODA]!;
    const sB = nextSeq[CHUO]!;
    const badDigit = `${a2.myNumber.slice(0, 11)}${(Number(a2.myNumber[11]) + 1) % 10}`;
    const lines = (fixed: boolean) => [
      birth(CHIYODA, a1, sA), // 1
      birth(CHUO, b1, sB), // 2
      fixed // 3: an invalid check digit
        ? birth(CHIYODA, a2, sA + 1)
        : { ...birth(CHIYODA, a2, sA + 1), record: { ...baseRecord(a2), myNumber: badDigit } },
      birth(CHUO, b2, sB + 1), // 4
      moveWithin(CHUO, b1, sB + 2), // 5
      birth(CHUO, b3, sB + 3), // 6
      moveWithin(CHUO, b2, fixed ? sB + 4 : sB + 5), // 7: a sequence gap
      moveWithin(CHIYODA, a1, sA + 2), // 8: depends on line 3 (Chiyoda's next sequence)
    ];
    const codes = [a1, a2, b1, b2, b3].map((r) => r.residentCode);
    const before = await footprint(codes);
    expect(before).toMatchObject({ versions: 0, notifications: 0, events: 0, audit: 0 });
    const auditBefore = await t.database.db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM audit_log',
    );

    const res = await postBatch('prefecture', ndjson(lines(false)));
    expect(res.statusCode, res.body).toBe(422);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    const p = res.json<BatchProblem>();
    expect(p).toMatchObject({ code: 'registry.batch-rejected', failedLines: 3 });
    expect(p.truncated).toBeUndefined();
    expect(p.errors).toEqual([
      {
        line: 3,
        pointer: '/body/record/myNumber',
        message: 'must be 12 digits ending in a valid check digit',
        code: 'registry.invalid-notification',
      },
      {
        line: 7,
        pointer: '/body',
        message: `notifications must arrive in sequence: expected ${sB + 4}`,
        code: 'registry.sequence-gap',
      },
      {
        line: 8,
        pointer: '/body',
        message: `notifications must arrive in sequence: expected ${sA + 1}`,
        code: 'registry.sequence-gap',
      },
    ]);
    for (const secret of [badDigit, a1.myNumber, '山田', 'ヤマダ', ADDRESS[CHUO]![0]]) {
      expect(res.body).not.toContain(secret);
    }

    // Nothing from the batch was stored; the only trace is the audited rejection.
    expect(await footprint(codes)).toEqual(before);
    const audit = await t.database.db.query<{
      action: string;
      outcome: string;
      actor_name: string;
      details: unknown;
    }>('SELECT action, outcome, actor_name, details FROM audit_log WHERE seq > $1 ORDER BY seq', [
      auditBefore.rows[0]?.n ?? 0,
    ]);
    expect(audit.rows).toEqual([
      {
        action: 'registry.notifications.batch',
        outcome: 'failed',
        actor_name: 'prefecture',
        details: { lines: 8, failedLines: 3, reason: 'registry.batch-rejected' },
      },
    ]);

    // The sequence numbers were not used up: the corrected batch goes through as is.
    const fixed = await postBatch('prefecture', ndjson(lines(true)));
    expect(fixed.statusCode, fixed.body).toBe(200);
    expect(fixed.json()).toMatchObject({ lines: 8, accepted: 8, replayed: 0 });
    nextSeq[CHIYODA] = sA + 3;
    nextSeq[CHUO] = sB + 5;
  });

  it('accepts a JSON array', async () => {
    const [n1, n2] = (await residents(NAKA, 2)) as [Resident, Resident];
    const array = [birth(NAKA, n1), birth(NAKA, n2), moveWithin(NAKA, n2)];
    const res = await postBatch(
      'municipality2',
      JSON.stringify(array, null, 2),
      'application/json',
    );
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({
      lines: 3,
      accepted: 3,
      replayed: 0,
      results: [
        { line: 1, residentCode: n1.residentCode, version: 1, replay: false },
        { line: 2, residentCode: n2.residentCode, version: 1, replay: false },
        { line: 3, residentCode: n2.residentCode, version: 2, replay: false },
      ],
    });
    // A bad element is reported by its position in the array.
    const [n3] = (await residents(NAKA, 1)) as [Resident];
    const s = nextSeq[NAKA]!;
    const bad = await postBatch(
      'municipality2',
      `[${JSON.stringify(birth(NAKA, n3, s))}, {"municipalityCode": "${NAKA}", "sequence": ${s + 1}}]`,
      'application/json; charset=utf-8',
    );
    expect(bad.statusCode, bad.body).toBe(422);
    const p = bad.json<BatchProblem>();
    expect(p.failedLines).toBe(1);
    expect(new Set(p.errors.map((e) => e.line))).toEqual(new Set([2]));
    expect(p.errors.map((e) => e.pointer)).toEqual(
      expect.arrayContaining(['/body/changeReason', '/body/record']),
    );
    const broken = await postBatch('municipality2', '{"not":"an array"}', 'application/json');
    expect(broken.statusCode).toBe(422);
    expect(broken.json<BatchProblem>().errors).toEqual([
      {
        line: 1,
        pointer: '/body',
        message: 'the body must be a JSON array',
        code: 'registry.batch-malformed',
      },
    ]);
  });

  it('refuses the whole batch when a line is for a municipality outside the caller’s scope', async () => {
    const [own] = (await residents(CHIYODA, 1)) as [Resident];
    const [foreign] = (await residents(NAKA, 1)) as [Resident];
    const before = await footprint([own.residentCode, foreign.residentCode]);
    const s = nextSeq[CHIYODA]!;
    const res = await postBatch(
      'municipality',
      ndjson([birth(CHIYODA, own, s), birth(NAKA, foreign, nextSeq[NAKA])]),
    );
    expect(res.statusCode, res.body).toBe(403);
    expect(res.json<BatchProblem>()).toMatchObject({
      code: 'auth.other-municipality',
      failedLines: 1,
      errors: [
        {
          line: 2,
          pointer: '/body/municipalityCode',
          message: 'a municipality may act only for itself',
          code: 'auth.other-municipality',
        },
      ],
    });
    expect(await footprint([own.residentCode, foreign.residentCode])).toEqual(before);
    const denied = await t.database.db.query<{ action: string; details: unknown }>(
      "SELECT action, details FROM audit_log WHERE request_id = $1 AND outcome = 'denied'",
      [res.headers['x-request-id']],
    );
    expect(denied.rows).toEqual([
      {
        action: 'POST /v1/registry/notifications::batch',
        details: { reason: 'auth.other-municipality' },
      },
    ]);

    // A prefecture relays only for its own municipalities.
    const relayed = await postBatch('prefecture', ndjson([birth(NAKA, foreign, nextSeq[NAKA])]));
    expect(relayed.statusCode).toBe(403);
    expect(relayed.json<BatchProblem>()).toMatchObject({
      code: 'auth.other-prefecture',
      errors: [{ line: 1, code: 'auth.other-prefecture' }],
    });
    const ok = await postBatch('prefecture2', ndjson([birth(NAKA, foreign)]));
    expect(ok.statusCode, ok.body).toBe(200);
    // Actors without the grant are refused before the body is read.
    for (const actor of ['operator', 'nationalAgency', 'resident']) {
      const res2 = await postBatch(actor, ndjson([birth(CHIYODA, own, s)]));
      expect(res2.statusCode, actor).toBe(403);
      expect(res2.json()).toMatchObject({ code: 'auth.forbidden' });
    }
    const anonymous = await t.app.inject({
      method: 'POST',
      url: URL_BATCH,
      headers: { 'content-type': NDJSON },
      payload: '{}\n',
    });
    expect(anonymous.statusCode).toBe(401);
  });

  it('reports invalid JSON, over-long lines and poisoned keys by line, without echoing them', async () => {
    const [r] = (await residents(CHIYODA, 1)) as [Resident];
    const s = nextSeq[CHIYODA]!;
    const longName = `"${'山'.repeat(30_000)}"`; // 90 kB of UTF-8: over the 64 KiB line limit
    const res = await postBatch(
      'municipality',
      ndjson([
        birth(CHIYODA, r, s),
        '{"municipalityCode": "131016", 山田',
        `{"municipalityCode":"131016","sequence":${s + 1},"record":{"name":${longName}}}`,
        `{"municipalityCode":"131016","__proto__":{"polluted":true}}`,
        '[1, 2',
        '42',
      ]),
    );
    expect(res.statusCode, res.body.slice(0, 300)).toBe(422);
    expect(res.json<BatchProblem>()).toMatchObject({
      failedLines: 5,
      errors: [
        {
          line: 2,
          pointer: '/body',
          message: 'is not valid JSON',
          code: 'registry.batch-invalid-json',
        },
        {
          line: 3,
          pointer: '/body',
          message: 'is longer than 65536 bytes',
          code: 'registry.batch-line-too-long',
        },
        {
          line: 4,
          pointer: '/body',
          message: 'is not valid JSON',
          code: 'registry.batch-invalid-json',
        },
        {
          line: 5,
          pointer: '/body',
          message: 'is not valid JSON',
          code: 'registry.batch-invalid-json',
        },
        {
          line: 6,
          pointer: '/body',
          message: 'must be a JSON object',
          code: 'registry.invalid-notification',
        },
      ],
    });
    expect(res.body).not.toContain('山田');
    expect(await footprint([r.residentCode])).toMatchObject({ versions: 0, notifications: 0 });
  });

  it('caps the error list and counts every failed line', async () => {
    const lines = Array.from({ length: 1005 }, () => 'x');
    const res = await postBatch('municipality', ndjson(lines));
    expect(res.statusCode).toBe(422);
    const p = res.json<BatchProblem>();
    expect(p.failedLines).toBe(1005);
    expect(p.truncated).toBe(true);
    expect(p.errors).toHaveLength(1000);
    expect(p.errors.at(-1)?.line).toBe(1000);
  });

  it('refuses an empty batch and other media types; the single route still works', async () => {
    const empty = await postBatch('municipality', '\n\n');
    expect(empty.statusCode).toBe(400);
    expect(empty.json()).toMatchObject({ code: 'registry.batch-empty' });
    const emptyArray = await postBatch('municipality', '[ ]', 'application/json');
    expect(emptyArray.json()).toMatchObject({ code: 'registry.batch-empty' });
    const text = await postBatch('municipality', '{}', 'text/plain');
    expect(text.statusCode).toBe(415);
    const otherVerb = await t.app.inject({
      method: 'POST',
      url: '/v1/registry/notifications:other',
      headers: { ...t.auth('municipality'), 'content-type': NDJSON },
      payload: '{}\n',
    });
    expect(otherVerb.statusCode).toBe(404);

    const r = await newResident(t, 'municipality');
    const single = await t.app.inject({
      method: 'POST',
      url: '/v1/registry/notifications',
      headers: t.auth('municipality'),
      payload: birth(CHIYODA, r),
    });
    expect(single.statusCode, single.body).toBe(201);
    expect(single.json()).toEqual({ residentCode: r.residentCode, version: 1 });
    // The single route's ordinary JSON parser is untouched by the batch route's stream parser.
    const malformed = await t.app.inject({
      method: 'POST',
      url: '/v1/registry/notifications',
      headers: { ...t.auth('municipality'), 'content-type': 'application/json' },
      payload: '{"a":',
    });
    expect(malformed.json()).toMatchObject({ code: 'request.malformed-json' });
  });

  it('documents the route under its real path in OpenAPI', async () => {
    const doc = (await t.app.inject({ url: '/openapi.json' })).json<{
      paths: Record<string, { post?: { requestBody?: { content: Record<string, unknown> } } }>;
    }>();
    const op = doc.paths[URL_BATCH]?.post;
    expect(op).toBeDefined();
    expect(Object.keys(op?.requestBody?.content ?? {}).sort()).toEqual([
      'application/json',
      'application/x-ndjson',
    ]);
    expect(Object.keys(doc.paths).some((p) => p.includes('{batch}') || p.includes('::'))).toBe(
      false,
    );
  });

  it('keeps the transaction usable after a line whose SQL failed (savepoints)', async () => {
    const actor = await t.services.actors.byName(t.database.db, 'municipality');
    if (!actor) throw new Error('no municipality actor');
    // A stand-in registry: line 2 runs a failing statement, as a constraint violation would.
    const registry = {
      submit: async (tx: Parameters<typeof applyBatch>[1], _a: unknown, body: unknown) => {
        const n = (body as { n: number }).n;
        await tx.query('INSERT INTO batch_probe VALUES ($1)', [n]);
        if (n === 2) {
          await tx.query('SELECT 1 / 0').catch(() => undefined);
          throw new AppError('conflict', 'probe.failed', 'line 2 fails');
        }
        return { residentCode: String(n), version: 1, replay: false };
      },
    };
    async function* items(): AsyncGenerator<BatchItem> {
      for (const n of [1, 2, 3]) {
        yield { line: n, text: JSON.stringify({ municipalityCode: CHIYODA, n }) };
      }
    }
    const report = emptyReport();
    const stored = await t.database.db.transaction(async (tx) => {
      await tx.query('CREATE TEMPORARY TABLE batch_probe (n int) ON COMMIT DROP');
      await applyBatch(registry, tx, actor, items(), 'req', { errors: 10, results: 10 }, report);
      return (await tx.query<{ n: number }>('SELECT n FROM batch_probe ORDER BY n')).rows;
    });
    expect(stored).toEqual([{ n: 1 }, { n: 3 }]);
    expect(report).toMatchObject({ lines: 3, accepted: 2, failedLines: 1 });
    expect(report.errors).toEqual([
      { line: 2, pointer: '/body', message: 'line 2 fails', code: 'probe.failed' },
    ]);
  });

  describe('with small limits', () => {
    let small: App;
    beforeAll(async () => {
      small = await createEdge({
        db: t.database.db,
        actors: t.services.actors,
        audit: t.services.audit,
        logLevel: 'silent',
        bodyLimitBytes: t.config.bodyLimitBytes,
        publicUrl: 'http://localhost',
        version: 'test',
      });
      await identityRecordRoutes(small, {
        ...t.services,
        batchLimits: { bodyBytes: 64 * 1024, items: 50 },
      });
      await small.ready();
    });
    afterAll(async () => small.close());

    it('refuses a declared length over the limit before reading the body', async () => {
      const res = await postBatch('municipality', 'x'.repeat(70 * 1024), NDJSON, small);
      expect(res.statusCode).toBe(413);
      expect(res.json()).toMatchObject({ code: 'request.too-large' });
      expect(res.headers['connection']).toBe('close');
    });

    it('stops reading a streamed body once it passes the limit', async () => {
      let pulled = 0;
      const endless = new Readable({
        read() {
          if (pulled > 64 * 1024 * 1024) return void this.push(null);
          pulled += 16 * 1024;
          this.push(Buffer.from(`${' '.repeat(16 * 1024 - 1)}\n`));
        },
      });
      const res = await postBatch('municipality', endless, NDJSON, small);
      expect(res.statusCode).toBe(413);
      expect(res.json()).toMatchObject({ code: 'request.too-large' });
      expect(res.headers['connection']).toBe('close');
      // Read as far as the limit (plus what the stream had buffered), not to the end.
      expect(pulled).toBeLessThan(256 * 1024);
      endless.destroy();
    });

    it('refuses more lines than the limit', async () => {
      const res = await postBatch('municipality', '\n'.repeat(60), NDJSON, small);
      expect(res.statusCode).toBe(413);
      expect(res.json()).toMatchObject({ code: 'registry.batch-too-many-lines' });
    });
  });

  it(
    'applies a large streamed batch (5,000 births) in one transaction',
    { timeout: 600_000 },
    async () => {
      const n = 5000;
      const prepared = performance.now();
      const people = await residents(CHIYODA, n);
      const setupMs = performance.now() - prepared;
      const first = nextSeq[CHIYODA]!;
      nextSeq[CHIYODA] = first + n;
      // Streamed in 64 KiB chunks, as a socket would deliver it.
      async function* body(): AsyncGenerator<Buffer> {
        let pending = '';
        for (const [i, r] of people.entries()) {
          pending += `${JSON.stringify(birth(CHIYODA, r, first + i))}\n`;
          if (pending.length >= 16 * 1024) {
            yield Buffer.from(pending);
            pending = '';
          }
        }
        if (pending) yield Buffer.from(pending);
      }
      const started = performance.now();
      const res = await postBatch('municipality', Readable.from(body()));
      const ms = performance.now() - started;
      expect(res.statusCode, res.body.slice(0, 500)).toBe(200);
      expect(res.json()).toEqual({ lines: n, accepted: n, replayed: 0 });
      const fp = await footprint(people.map((r) => r.residentCode));
      expect(fp).toMatchObject({ versions: n, notifications: n, events: n, audit: n });
      console.log(
        `[${t.database.engine}] ${n}-line batch: ${Math.round(ms)} ms (${(ms / n).toFixed(2)} ms/line); setup of codes and My Numbers ${Math.round(setupMs)} ms`,
      );
    },
  );

  it.skipIf(testEngine() !== 'postgres')(
    'meets a person another transaction holds without deadlocking, residentCodeChange and all',
    async () => {
      // A residentCodeChange splits a batch into runs stored one after another. Were the
      // persons of a later run locked only when it came, the batch would wait for a person
      // while holding the outbox and audit locks the earlier lines took, and a transaction
      // holding that person and waiting for the outbox lock would close a cycle (PostgreSQL
      // then kills one of the two). Only PostgreSQL runs two transactions at once.
      const db = t.database.db;
      const [p, q] = (await residents(CHIYODA, 2)) as [Resident, Resident];
      const [fresh] = await db.transaction((tx) =>
        t.services.residentCodes.handOut(tx, CHIYODA, 1),
      );
      const born = await postBatch('municipality', ndjson([birth(CHIYODA, p), birth(CHIYODA, q)]));
      expect(born.statusCode, born.body).toBe(200);
      const qPerson = (
        await db.query<{ id: string }>('SELECT id FROM persons WHERE resident_code = $1', [
          q.residentCode,
        ])
      ).rows[0]?.id;
      expect(qPerson).toBeDefined();

      const res = await meetHeldRow(
        db,
        (tx) => tx.query('SELECT 1 FROM persons WHERE id = $1 FOR UPDATE', [qPerson]),
        (tx) => appendEvents(tx, t.clock, [{ topic: 'lock-order-probe', payload: {} }]),
        () =>
          postBatch(
            'municipality',
            ndjson([
              {
                municipalityCode: CHIYODA,
                sequence: seq(CHIYODA),
                changeReason: 'residentCodeChange',
                changeDate: '2026-03-25',
                record: {
                  ...baseRecord({ ...p, residentCode: fresh! }),
                  address: ADDRESS[CHIYODA]![0],
                },
                previousResidentCode: p.residentCode,
              },
              moveWithin(CHIYODA, q),
            ]),
          ),
      );
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toMatchObject({ lines: 2, accepted: 2, replayed: 0 });
    },
  );
});
