/**
 * 機構保存本人確認情報の提供 to national agencies (住民基本台帳法 第30条の9): by resident code, by
 * the basic-4, and in bulk (NDJSON); only for registered legal purposes, only the purpose's
 * items, every provision audited with its purpose, nothing personal in errors.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../src/platform/clock.ts';
import { createTestApp, type TestApp } from './support/app.ts';
import { type RegisteredResident, registerJpkiResident } from './support/jpki.ts';

interface Problem {
  code: string;
  detail: string;
}

describe('provision to national agencies', () => {
  let t: TestApp;
  let hanako: RegisteredResident;
  let twin: RegisteredResident;
  beforeAll(async () => {
    t = await createTestApp({ clock: new FakeClock('2026-10-01T03:00:00Z') });
    hanako = await registerJpkiResident(t, 'municipality', '131016', {
      name: '提供　花子',
      birthDate: '1980-05-05',
      sex: 'female',
    });
    // Same name and date of birth, another sex and address: search narrows by them.
    twin = await registerJpkiResident(t, 'municipality', '131016', {
      name: '提供　花子',
      birthDate: '1980-05-05',
      sex: 'male',
      address: '東京都千代田区丸の内1丁目1番1号',
    });
    // The demo agency is registered for pensionBenefits; give another one passportIssuance only.
    await t.database.db.transaction(async (tx) => {
      const a = await t.services.actors.create(tx, {
        name: 'passportAgency',
        type: 'nationalAgency',
        purposes: ['passportIssuance'],
      });
      t.tokens['passportAgency'] = (await t.services.actors.createToken(tx, a.id)).token;
    });
  });
  afterAll(async () => t.close());

  const post = (url: string, actor: string, payload: unknown) =>
    t.app.inject({ method: 'POST', url, headers: t.auth(actor), payload: payload as object });

  it('gives the current record by resident code, with the purpose’s items, and audits it', async () => {
    const res = await post('/v1/provision/lookups', 'nationalAgency', {
      purpose: 'pensionBenefits',
      residentCode: hanako.residentCode,
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({
      residentCode: hanako.residentCode,
      myNumber: hanako.myNumber,
      name: '提供　花子',
      nameKana: hanako.record.nameKana,
      birthDate: '1980-05-05',
      sex: 'female',
      address: hanako.record.address,
      status: 'current',
      changeReason: 'birth',
      changeDate: '2026-10-01',
    });
    const audit = await t.database.db.query<{
      subject: string;
      purpose: string;
      details: { channel: string };
    }>(
      `SELECT subject, purpose, details FROM audit_log
        WHERE action = 'registry.provision' AND outcome = 'success' ORDER BY seq`,
    );
    expect(audit.rows.map((r) => [r.subject, r.purpose, r.details.channel])).toEqual([
      [hanako.residentCode, 'pensionBenefits', 'lookup'],
    ]);
  });

  it('gives a purpose without the My Number only the items it may receive', async () => {
    const res = await post('/v1/provision/lookups', 'passportAgency', {
      purpose: 'passportIssuance',
      residentCode: hanako.residentCode,
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(Object.keys(res.json<Record<string, string>>())).not.toContain('myNumber');
  });

  it('refuses an unregistered or unknown purpose, and another actor type', async () => {
    const notRegistered = await post('/v1/provision/lookups', 'nationalAgency', {
      purpose: 'passportIssuance',
      residentCode: hanako.residentCode,
    });
    expect(notRegistered.statusCode).toBe(403);
    expect(notRegistered.json<Problem>().code).toBe('provision.purpose-not-registered');
    const unknown = await post('/v1/provision/lookups', 'nationalAgency', {
      purpose: 'curiosity',
      residentCode: hanako.residentCode,
    });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json<Problem>().code).toBe('provision.unknown-purpose');
    const municipality = await post('/v1/provision/lookups', 'municipality', {
      purpose: 'pensionBenefits',
      residentCode: hanako.residentCode,
    });
    expect(municipality.statusCode).toBe(403);
    expect(notRegistered.body + unknown.body).not.toContain(hanako.residentCode);
  });

  it('says not found for a code nobody holds, without echoing it', async () => {
    const res = await post('/v1/provision/lookups', 'nationalAgency', {
      purpose: 'pensionBenefits',
      residentCode: '99999999999',
    });
    expect(res.statusCode).toBe(404);
    expect(res.json<Problem>().code).toBe('provision.not-found');
    expect(res.body).not.toContain('99999999999');
  });

  it('searches by the basic-4: name (spaces ignored) and date of birth, narrowed by sex', async () => {
    const both = await post('/v1/provision/searches', 'nationalAgency', {
      purpose: 'pensionBenefits',
      name: '提供 花子',
      birthDate: '1980-05-05',
    });
    expect(both.statusCode, both.body).toBe(200);
    const found = both.json<{ matches: { residentCode: string }[]; capped: boolean }>();
    expect(found.capped).toBe(false);
    expect(found.matches.map((m) => m.residentCode).sort()).toEqual(
      [hanako.residentCode, twin.residentCode].sort(),
    );
    const one = await post('/v1/provision/searches', 'nationalAgency', {
      purpose: 'pensionBenefits',
      name: '提供　花子',
      birthDate: '1980-05-05',
      sex: 'male',
    });
    expect(one.json<{ matches: { residentCode: string }[] }>().matches).toEqual([
      expect.objectContaining({ residentCode: twin.residentCode }),
    ]);
    const none = await post('/v1/provision/searches', 'nationalAgency', {
      purpose: 'pensionBenefits',
      name: '提供　花子',
      birthDate: '1980-05-06',
    });
    expect(none.json()).toEqual({ matches: [], capped: false });
  });

  it('answers a bulk NDJSON file line by line, in order, with per-line errors', async () => {
    const file = [
      { ref: 'a1', purpose: 'pensionBenefits', residentCode: hanako.residentCode },
      { ref: 'a2', purpose: 'pensionBenefits', residentCode: '99999999999' },
      { ref: 'a3', purpose: 'passportIssuance', residentCode: hanako.residentCode },
      {
        ref: 'a4',
        purpose: 'pensionBenefits',
        name: '提供　花子',
        birthDate: '1980-05-05',
        sex: 'male',
      },
    ]
      .map((l) => JSON.stringify(l))
      .concat(['not json', JSON.stringify({ ref: 'a6', purpose: 'pensionBenefits', extra: 1 })])
      .join('\n');
    const res = await t.app.inject({
      method: 'POST',
      url: '/v1/provision/bulk',
      headers: { ...t.auth('nationalAgency'), 'content-type': 'application/x-ndjson' },
      payload: file,
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/x-ndjson/);
    const lines = res.body
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => [l['line'], l['ref'], l['error'] ?? null])).toEqual([
      [1, 'a1', null],
      [2, 'a2', null],
      [3, 'a3', 'provision.purpose-not-registered'],
      [4, 'a4', null],
      [5, null, 'provision.bulk-line-not-json'],
      [6, 'a6', 'provision.bulk-unknown-field'],
    ]);
    expect(lines[0]).toMatchObject({ record: { residentCode: hanako.residentCode } });
    expect(lines[1]).toMatchObject({ record: null });
    expect(lines[3]).toMatchObject({ matches: [{ residentCode: twin.residentCode }] });
    const bulk = await t.database.db.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM audit_log
        WHERE action = 'registry.provision' AND outcome = 'success' AND details->>'channel' = 'bulk'`,
    );
    expect(Number(bulk.rows[0]?.n)).toBe(2);
  });

  it('lists the purposes with the caller’s registrations', async () => {
    const res = await t.app.inject({
      method: 'GET',
      url: '/v1/provision/purposes',
      headers: t.auth('nationalAgency'),
    });
    expect(res.statusCode, res.body).toBe(200);
    const p = res.json<{ purposes: { code: string; registered: boolean }[] }>().purposes;
    expect(p.find((x) => x.code === 'pensionBenefits')?.registered).toBe(true);
    expect(p.find((x) => x.code === 'passportIssuance')?.registered).toBe(false);
  });
});
