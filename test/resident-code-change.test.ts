import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from './support/app.ts';
import { baseRecord, newResident, type Resident } from './support/registry.ts';

describe('住民票コードの変更 (住基法第30条の4)', () => {
  let t: TestApp;
  let r: Resident;
  let newCode: string;
  beforeAll(async () => {
    t = await createTestApp();
    r = await newResident(t, 'municipality');
    const born = await post({
      municipalityCode: '131016',
      sequence: 1,
      changeReason: 'birth',
      changeDate: '2026-03-20',
      record: baseRecord(r),
    });
    expect(born.statusCode, born.body).toBe(201);
    const codes = await t.app.inject({
      method: 'POST',
      url: '/v1/registry/resident-codes',
      headers: t.auth('municipality'),
      payload: { count: 1 },
    });
    newCode = codes.json<{ residentCodes: string[] }>().residentCodes[0] ?? '';
  });
  afterAll(async () => t.close());

  function post(payload: object) {
    return t.app.inject({
      method: 'POST',
      url: '/v1/registry/notifications',
      headers: t.auth('municipality'),
      payload,
    });
  }

  it('retires the old code, links it to the new one, and keeps the My Number', async () => {
    const change = await post({
      municipalityCode: '131016',
      sequence: 2,
      changeReason: 'residentCodeChange',
      changeDate: '2026-03-30',
      previousResidentCode: r.residentCode,
      record: { ...baseRecord(r), residentCode: newCode },
    });
    expect(change.statusCode, change.body).toBe(201);
    expect(change.json()).toEqual({ residentCode: newCode, version: 2 });

    const codes = await t.database.db.query<{
      code: string;
      state: string;
      successor_code: string | null;
    }>(
      'SELECT code, state, successor_code FROM resident_codes WHERE code IN ($1, $2) ORDER BY state',
      [r.residentCode, newCode],
    );
    expect(codes.rows).toEqual([
      { code: newCode, state: 'issued', successor_code: null },
      { code: r.residentCode, state: 'retired', successor_code: newCode },
    ]);
    // The person keeps the My Number, now held under the new code.
    const n = await t.app.inject({
      method: 'POST',
      url: '/v1/numbering/my-numbers',
      headers: t.auth('municipality'),
      payload: { residentCode: newCode },
    });
    expect(n.statusCode).toBe(200);
    expect(n.json()).toEqual({ myNumber: r.myNumber });
  });

  it('reads the record under the new code, with its history', async () => {
    const h = await t.app.inject({
      url: `/v1/registry/identity-records/${newCode}?history=true`,
      headers: t.auth('operator'),
    });
    const versions = h.json<{ versions: { residentCode: string; changeReason: string }[] }>()
      .versions;
    expect(versions.map((v) => [v.residentCode, v.changeReason])).toEqual([
      [r.residentCode, 'birth'],
      [newCode, 'residentCodeChange'],
    ]);
  });

  it('refuses further changes under the retired code, and never hands it out again', async () => {
    const stale = await post({
      municipalityCode: '131016',
      sequence: 3,
      changeReason: 'moveWithin',
      changeDate: '2026-03-31',
      record: { ...baseRecord(r), address: '東京都千代田区九段南1丁目2番1号' },
    });
    expect(stale.statusCode).toBe(409);
    expect(stale.json()).toMatchObject({ code: 'registry.resident-code-retired' });
    const retiredAgain = await t.app.inject({
      method: 'POST',
      url: '/v1/numbering/my-numbers',
      headers: t.auth('municipality'),
      payload: { residentCode: r.residentCode },
    });
    expect(retiredAgain.statusCode).toBe(409);
    expect(retiredAgain.json()).toMatchObject({ code: 'resident-code.retired' });
    // Draw many more codes: the retired one never comes back.
    const more = await t.app.inject({
      method: 'POST',
      url: '/v1/registry/resident-codes',
      headers: t.auth('municipality'),
      payload: { count: 1000 },
    });
    expect(more.json<{ residentCodes: string[] }>().residentCodes).not.toContain(r.residentCode);
  });
});
