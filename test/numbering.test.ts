import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isValidMyNumber, isValidResidentCode } from '../src/numbering/check-digits.ts';
import { BATCH_ITEM_LIMIT } from '../src/platform/batch-items.ts';
import {
  MY_NUMBER_KEY_LABEL,
  MyNumberGenerator,
  NumberingService,
} from '../src/numbering/numbering.service.ts';
import { createTestApp, type TestApp } from './support/app.ts';

describe('resident codes and My Numbers through the API', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => t.close());

  const drawCodes = async (actor: string, count: number): Promise<string[]> => {
    const r = await t.app.inject({
      method: 'POST',
      url: '/v1/registry/resident-codes',
      headers: t.auth(actor),
      payload: { count },
    });
    expect(r.statusCode).toBe(201);
    return r.json<{ residentCodes: string[] }>().residentCodes;
  };
  const askMyNumber = (actor: string, payload: object) =>
    t.app.inject({
      method: 'POST',
      url: '/v1/numbering/my-numbers',
      headers: t.auth(actor),
      payload,
    });

  it('hands out valid, never-repeated codes, refilling the pool', async () => {
    const first = await drawCodes('municipality', 300);
    const second = await drawCodes('municipality', 300);
    const other = await drawCodes('municipality2', 50);
    const all = [...first, ...second, ...other];
    expect(new Set(all).size).toBe(all.length);
    for (const c of all) expect(isValidResidentCode(c)).toBe(true);
    const states = await t.database.db.query<{ state: string; n: number }>(
      "SELECT state, count(*)::int AS n FROM resident_codes WHERE state = 'issued' GROUP BY state",
    );
    expect(states.rows[0]?.n).toBe(650);
  });

  it('shows no order by municipality: handed-out codes are not sorted', async () => {
    const codes = await drawCodes('municipality', 100);
    const sorted = [...codes].sort();
    expect(codes).not.toEqual(sorted);
    // Leading digits spread over the whole space, not a block per municipality.
    expect(new Set(codes.map((c) => c[0])).size).toBeGreaterThan(5);
  });

  it('refuses bad counts and other actor types', async () => {
    for (const count of [0, 1001, 2.5, '3']) {
      const r = await t.app.inject({
        method: 'POST',
        url: '/v1/registry/resident-codes',
        headers: t.auth('municipality'),
        payload: { count },
      });
      expect(r.statusCode).toBe(400);
    }
    for (const actor of ['operator', 'prefecture', 'signatureVerifier', 'nationalAgency']) {
      const r = await t.app.inject({
        method: 'POST',
        url: '/v1/registry/resident-codes',
        headers: t.auth(actor),
        payload: { count: 1 },
      });
      expect(r.statusCode).toBe(403);
    }
  });

  it('generates a My Number once and returns the same one again', async () => {
    const [code] = await drawCodes('municipality', 1);
    const first = await askMyNumber('municipality', { residentCode: code });
    expect(first.statusCode).toBe(201);
    const { myNumber } = first.json<{ myNumber: string }>();
    expect(isValidMyNumber(myNumber)).toBe(true);
    const again = await askMyNumber('municipality', { residentCode: code });
    expect(again.statusCode).toBe(200);
    expect(again.json()).toEqual({ myNumber });
    // The number is stored, never recomputed: it is in the table with its key and tweak.
    const row = await t.database.db.query<{ tweak: number; key_label: string }>(
      'SELECT tweak, key_label FROM my_numbers WHERE my_number = $1',
      [myNumber],
    );
    expect(row.rows).toEqual([{ tweak: 0, key_label: 'numbering/my-number/1' }]);
  });

  it('never writes the My Number into the audit log', async () => {
    const [code] = await drawCodes('municipality', 1);
    const r = await askMyNumber('municipality', { residentCode: code });
    const { myNumber } = r.json<{ myNumber: string }>();
    const hits = await t.database.db.query(
      `SELECT seq FROM audit_log WHERE action LIKE '%' || $1 || '%' OR subject = $1
          OR details::text LIKE '%' || $1 || '%'`,
      [myNumber],
    );
    expect(hits.rows).toEqual([]);
    const entry = await t.database.db.query<{ action: string; subject: string }>(
      "SELECT action, subject FROM audit_log WHERE action = 'numbering.my-number.generate' AND subject = $1",
      [code],
    );
    expect(entry.rows).toHaveLength(1);
  });

  it('renumbers: a fresh number, the old one retired and never issued again', async () => {
    const [code] = await drawCodes('municipality', 1);
    const old = (await askMyNumber('municipality', { residentCode: code })).json<{
      myNumber: string;
    }>().myNumber;
    const r = await askMyNumber('municipality', {
      residentCode: code,
      renumber: true,
      reason: 'leaked (番号法第7条第2項)',
    });
    expect(r.statusCode).toBe(201);
    const fresh = r.json<{ myNumber: string }>().myNumber;
    expect(fresh).not.toBe(old);
    expect(isValidMyNumber(fresh)).toBe(true);
    const again = await askMyNumber('municipality', { residentCode: code });
    expect(again.json()).toEqual({ myNumber: fresh });
    const rows = await t.database.db.query<{ my_number: string; retired: boolean }>(
      'SELECT my_number, retired_at IS NOT NULL AS retired FROM my_numbers WHERE generated_from = $1 ORDER BY tweak',
      [code],
    );
    expect(rows.rows).toEqual([
      { my_number: old, retired: true },
      { my_number: fresh, retired: false },
    ]);
  });

  it('refuses a renumber without a reason, or before any number exists', async () => {
    const [code] = await drawCodes('municipality', 1);
    const noReason = await askMyNumber('municipality', { residentCode: code, renumber: true });
    expect(noReason.statusCode).toBe(400);
    const early = await askMyNumber('municipality', {
      residentCode: code,
      renumber: true,
      reason: 'x',
    });
    expect(early.statusCode).toBe(409);
    expect(early.json()).toMatchObject({ code: 'my-number.not-issued' });
  });

  it('refuses codes that are unknown, pooled, of another municipality or badly checked', async () => {
    const [theirs] = await drawCodes('municipality2', 1);
    const other = await askMyNumber('municipality', { residentCode: theirs });
    expect(other.statusCode).toBe(403);
    expect(other.json()).toMatchObject({ code: 'resident-code.other-municipality' });

    const pooled = await t.database.db.query<{ code: string }>(
      "SELECT code FROM resident_codes WHERE state = 'pooled' AND municipality_code = '131016' LIMIT 1",
    );
    const p = await askMyNumber('municipality', { residentCode: pooled.rows[0]?.code });
    expect(p.statusCode).toBe(409);
    expect(p.json()).toMatchObject({ code: 'resident-code.not-issued' });

    const unknown = await askMyNumber('municipality', { residentCode: '12345678903' });
    expect([404, 409, 403]).toContain(unknown.statusCode);

    const bad = await askMyNumber('municipality', { residentCode: '12345678904' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'resident-code.bad-check-digit' });
    // The error never echoes the submitted code.
    expect(bad.body).not.toContain('12345678904');

    const verifier = await askMyNumber('signatureVerifier', { residentCode: theirs });
    expect(verifier.statusCode).toBe(403);
  });

  const askBatch = (actor: string, residentCodes: readonly string[]) =>
    t.app.inject({
      method: 'POST',
      url: '/v1/numbering/my-numbers:batch',
      headers: t.auth(actor),
      payload: { residentCodes },
    });
  interface BatchResult {
    status: number;
    myNumber?: string;
    code?: string;
    errors?: { pointer: string }[];
  }

  it('numbers a batch of codes (POST /v1/numbering/my-numbers:batch), each as the single route would', async () => {
    const db = t.database.db;
    const fresh = await drawCodes('municipality', 40);
    const [earlier] = await drawCodes('municipality', 1);
    const before = await askMyNumber('municipality', { residentCode: earlier });
    expect(before.statusCode).toBe(201);
    const [theirs] = await drawCodes('municipality2', 1);
    const pooled = await db.query<{ code: string }>(
      "SELECT code FROM resident_codes WHERE state = 'pooled' AND municipality_code = '131016' LIMIT 1",
    );
    const body = [...fresh, earlier!, theirs!, pooled.rows[0]!.code, '12345678904', fresh[0]!];
    const r = await askBatch('municipality', body);
    expect(r.statusCode, r.body).toBe(200);
    const answer = r.json<{
      generated: number;
      existing: number;
      refused: number;
      results: BatchResult[];
    }>();
    expect(answer.results.map((x) => [x.status, x.code ?? null])).toEqual([
      ...fresh.map(() => [201, null]),
      [200, null],
      [403, 'resident-code.other-municipality'],
      [409, 'resident-code.not-issued'],
      [400, 'resident-code.bad-check-digit'],
      [200, null],
    ]);
    expect([answer.generated, answer.existing, answer.refused]).toEqual([40, 2, 3]);
    expect(answer.results[43]!.errors?.map((e) => e.pointer)).toEqual(['/body/residentCodes/43']);
    expect(r.body).not.toContain('12345678904');
    expect(answer.results[40]!.myNumber).toBe(before.json<{ myNumber: string }>().myNumber);
    expect(answer.results[44]!.myNumber).toBe(answer.results[0]!.myNumber);
    const numbers = answer.results.slice(0, 40).map((x) => x.myNumber!);
    expect(new Set(numbers).size).toBe(40);
    for (const n of numbers) expect(isValidMyNumber(n)).toBe(true);
    // The single route answers the same numbers afterwards.
    for (const [i, code] of fresh.slice(0, 3).entries()) {
      const again = await askMyNumber('municipality', { residentCode: code });
      expect(again.statusCode).toBe(200);
      expect(again.json<{ myNumber: string }>().myNumber).toBe(numbers[i]);
    }
    // Audited as the single route: generated, read again, the other municipality's denied.
    const audit = await db.query<{ action: string; outcome: string; n: number }>(
      `SELECT action, outcome, count(*)::int AS n FROM audit_log WHERE request_id = $1
        GROUP BY action, outcome ORDER BY action, outcome`,
      [r.headers['x-request-id']],
    );
    expect(audit.rows).toEqual([
      { action: 'numbering.my-number.generate', outcome: 'denied', n: 1 },
      { action: 'numbering.my-number.generate', outcome: 'success', n: 40 },
      { action: 'numbering.my-number.read', outcome: 'success', n: 2 },
    ]);
    const logged = await db.query<{ text: string }>(
      'SELECT details::text || subject AS text FROM audit_log WHERE request_id = $1',
      [r.headers['x-request-id']],
    );
    for (const row of logged.rows) for (const n of numbers) expect(row.text).not.toContain(n);
  });

  it('refuses an empty batch, one over the limit, and other actors', async () => {
    const [code] = await drawCodes('municipality', 1);
    for (const codes of [[], Array<string>(BATCH_ITEM_LIMIT + 1).fill(code!)]) {
      const r = await askBatch('municipality', codes);
      expect(r.statusCode, r.body).toBe(400);
    }
    for (const actor of ['operator', 'prefecture', 'signatureVerifier']) {
      expect((await askBatch(actor, [code!])).statusCode).toBe(403);
    }
  });

  it('moves a colliding candidate to its next tweak, within a batch and against earlier numbers', async () => {
    const db = t.database.db;
    const codes = await drawCodes('municipality', 5);
    // A generator whose first candidate is one number for every code: one code gets it, the
    // others their second candidate (tweak 1).
    const clash = '000000000000';
    const fake = Object.assign(Object.create(MyNumberGenerator.prototype) as MyNumberGenerator, {
      keyLabel: MY_NUMBER_KEY_LABEL,
      candidate: (code: string, attempt: number) =>
        attempt === 0 ? clash : `${code}${attempt % 10}`,
    });
    const numbering = new NumberingService(t.clock, async () => fake);
    const got = await db.transaction((tx) => numbering.issueMany(tx, codes, '131016'));
    const values = codes.map((c) => got.get(c)!.myNumber);
    expect(values.filter((v) => v === clash)).toHaveLength(1);
    const winner = codes[values.indexOf(clash)]!;
    for (const c of codes.filter((x) => x !== winner)) expect(got.get(c)!.myNumber).toBe(`${c}1`);
    const tweaks = await db.query<{ code: string; tweak: number }>(
      `SELECT generated_from AS code, tweak FROM my_numbers WHERE generated_from = ANY($1::bpchar[])`,
      [`{${codes.join(',')}}`],
    );
    expect(tweaks.rows.filter((r) => r.tweak === 1)).toHaveLength(4);
    // Against a number issued before: all of a later batch move on.
    const later = await drawCodes('municipality', 2);
    const next = await db.transaction((tx) => numbering.issueMany(tx, later, '131016'));
    expect(later.map((c) => next.get(c)!.myNumber)).toEqual(later.map((c) => `${c}1`));
  });

  it('concurrent first requests for one code get one number', async () => {
    const [code] = await drawCodes('municipality', 1);
    const replies = await Promise.all(
      Array.from({ length: 6 }, () => askMyNumber('municipality', { residentCode: code })),
    );
    const numbers = new Set(replies.map((r) => r.json<{ myNumber: string }>().myNumber));
    expect(numbers.size).toBe(1);
    expect(replies.filter((r) => r.statusCode === 201)).toHaveLength(1);
  });
});

describe('My Number generation (番号法第8条)', () => {
  const key = Buffer.alloc(32, 7);
  const gen = new MyNumberGenerator(key);

  it('is unique, valid and deterministic over a large sample of distinct codes', () => {
    const seen = new Map<string, string>();
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9]{10}$/), (body) => {
        // Residents codes carry their own check digit; any 11-digit input must map 1:1.
        const code = `${body}0`;
        const n = gen.candidate(code, 0);
        expect(isValidMyNumber(n)).toBe(true);
        expect(gen.candidate(code, 0)).toBe(n);
        const prior = seen.get(n);
        if (prior !== undefined) expect(prior).toBe(code);
        seen.set(n, code);
      }),
      { numRuns: 20_000 },
    );
  });

  it('depends on the key and the attempt (tweak)', () => {
    const other = new MyNumberGenerator(Buffer.alloc(32, 8));
    const code = '12345678903';
    expect(other.candidate(code, 0)).not.toBe(gen.candidate(code, 0));
    expect(gen.candidate(code, 1)).not.toBe(gen.candidate(code, 0));
  });

  it('shows no regularity: consecutive resident codes give unrelated numbers', () => {
    const codes = ['1234567890', '1234567891', '1234567892'].map((b) => `${b}0`);
    const numbers = codes.map((c) => gen.candidate(c, 0));
    // No shared 6-digit prefix and no constant difference between neighbours.
    expect(new Set(numbers.map((n) => n.slice(0, 6))).size).toBe(3);
    const d1 = BigInt(numbers[1] ?? '0') - BigInt(numbers[0] ?? '0');
    const d2 = BigInt(numbers[2] ?? '0') - BigInt(numbers[1] ?? '0');
    expect(d1).not.toBe(d2);
  });
});
