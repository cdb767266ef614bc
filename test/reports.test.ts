/**
 * Reports from the logs: the registry provision report (業務方法書 第4条(6)), the JPKI provision
 * report (第5条(12), 公的個人認証法 第41条) and the monthly migration statistics — figures
 * checked against hand-computed expectations, CSV checked byte for byte, fiscal-year
 * boundaries in Japan time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../src/platform/clock.ts';
import { DEMO_VERIFIER_ID } from '../src/verifiers/demo.ts';
import { createTestApp, type TestApp } from './support/app.ts';
import { notifyIdentityChange, registerJpkiResident } from './support/jpki.ts';

const MOVED = '神奈川県横浜市中区港町1丁目1番地';

describe('reports', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ clock: new FakeClock('2026-09-30T03:00:00Z') });
  });
  afterAll(async () => t.close());

  const get = (url: string, actor = 'operator', headers: Record<string, string> = {}) =>
    t.app.inject({ method: 'GET', url, headers: { ...t.auth(actor), ...headers } });

  it('monthly migration statistics count moves between municipalities by origin and destination', async () => {
    // September: one move 131016 → 141046 (not in October's figures).
    const early = await registerJpkiResident(t, 'municipality', '131016', { name: '九月　一郎' });
    await notifyIdentityChange(t, 'municipality', {
      municipalityCode: '131016',
      changeReason: 'moveOut',
      plannedMoveOutDate: '2026-09-30',
      destination: { municipalityCode: '141046' },
      record: early.record,
    });
    const septIn = await notifyIdentityChange(t, 'municipality2', {
      municipalityCode: '141046',
      changeReason: 'moveIn',
      record: { ...early.record, address: MOVED },
    });
    expect(septIn.statusCode, septIn.body).toBe(201);

    // October: two moves 131016 → 141046, one move within 131016 (not a migration).
    t.clock.set('2026-10-10T03:00:00Z');
    for (const name of ['十月　二郎', '十月　三郎']) {
      const r = await registerJpkiResident(t, 'municipality', '131016', { name });
      const out = await notifyIdentityChange(t, 'municipality', {
        municipalityCode: '131016',
        changeReason: 'moveOut',
        plannedMoveOutDate: '2026-10-12',
        destination: { municipalityCode: '141046' },
        record: r.record,
      });
      expect(out.statusCode, out.body).toBe(201);
      const moveIn = await notifyIdentityChange(t, 'municipality2', {
        municipalityCode: '141046',
        changeReason: 'moveIn',
        record: { ...r.record, address: MOVED },
      });
      expect(moveIn.statusCode, moveIn.body).toBe(201);
    }
    const within = await registerJpkiResident(t, 'municipality', '131016', { name: '転居　四郎' });
    const moved = await notifyIdentityChange(t, 'municipality', {
      municipalityCode: '131016',
      changeReason: 'moveWithin',
      record: { ...within.record, address: '東京都千代田区丸の内1丁目1番1号' },
    });
    expect(moved.statusCode, moved.body).toBe(201);

    const oct = await get('/v1/reports/migration-statistics?month=2026-10');
    expect(oct.statusCode, oct.body).toBe(200);
    expect(oct.json()).toEqual({
      report: 'migrationStatistics',
      month: '2026-10',
      period: { from: '2026-10-01', to: '2026-10-31' },
      rows: [
        {
          originCode: '131016',
          originPrefectureCode: '13',
          destinationCode: '141046',
          destinationPrefectureCode: '14',
          count: 2,
        },
      ],
      byPrefecture: [{ originPrefectureCode: '13', destinationPrefectureCode: '14', count: 2 }],
      total: 2,
    });
    const sept = await get('/v1/reports/migration-statistics?month=2026-09');
    expect(sept.json<{ total: number }>().total).toBe(1);

    const csv = await get('/v1/reports/migration-statistics?month=2026-10&format=csv');
    expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(csv.body).toBe(
      'month,originPrefectureCode,originCode,destinationPrefectureCode,destinationCode,count\r\n' +
        '2026-10,13,131016,14,141046,2\r\n',
    );
    // Reproducible: the same logs give the same bytes; Accept: text/csv works as well.
    const again = await get('/v1/reports/migration-statistics?month=2026-10', 'opAuditor', {
      accept: 'text/csv',
    });
    expect(again.body).toBe(csv.body);
    expect((await get('/v1/reports/migration-statistics?month=2026-13')).statusCode).toBe(400);
  });

  it('the registry provision report counts successful provisions per agency, purpose and channel in the fiscal year (JST)', async () => {
    const agency = await t.services.actors.byName(t.database.db, 'nationalAgency');
    if (!agency) throw new Error('no nationalAgency actor');
    const provide = async (
      at: string,
      channel: string,
      outcome: 'success' | 'denied' = 'success',
    ) => {
      t.clock.set(at);
      await t.database.db.transaction((tx) =>
        t.services.audit.append(tx, agency, {
          action: 'registry.provision',
          subjectType: 'resident',
          subject: '12345678901',
          purpose: 'pensionBenefits',
          outcome,
          details: { channel },
        }),
      );
    };
    // 31 March 2026 23:59 JST belongs to FY2025; 1 April 2026 00:00 JST to FY2026.
    await provide('2026-03-31T14:59:59Z', 'lookup');
    await provide('2026-03-31T15:00:00Z', 'lookup');
    await provide('2026-06-01T00:00:00Z', 'lookup');
    await provide('2026-06-02T00:00:00Z', 'bulk');
    await provide('2026-06-03T00:00:00Z', 'bulk');
    await provide('2026-06-04T00:00:00Z', 'search', 'denied');
    // 31 March 2027 23:59 JST is still FY2026; 1 April 2027 00:00 JST is not.
    await provide('2027-03-31T14:59:59Z', 'search');
    await provide('2027-03-31T15:00:00Z', 'search');

    const fy = await get('/v1/reports/registry-provision?fiscalYear=2026', 'opRegistry');
    expect(fy.statusCode, fy.body).toBe(200);
    const report = fy.json<{
      rows: { agency: string; purpose: string; channel: string; count: number }[];
      total: number;
      period: { from: string; to: string };
      source: { firstSeq: string | null; lastSeq: string | null };
    }>();
    expect(report.period).toEqual({ from: '2026-04-01', to: '2027-03-31' });
    expect(report.rows.map((r) => [r.agency, r.purpose, r.channel, r.count])).toEqual([
      ['nationalAgency', 'pensionBenefits', 'bulk', 2],
      ['nationalAgency', 'pensionBenefits', 'lookup', 2],
      ['nationalAgency', 'pensionBenefits', 'search', 1],
    ]);
    expect(report.total).toBe(5);
    expect(report.source.firstSeq).not.toBeNull();
    const fy2025 = await get('/v1/reports/registry-provision?fiscalYear=2025', 'opAuditor');
    expect(fy2025.json<{ total: number }>().total).toBe(1);
    const csv = await get(
      '/v1/reports/registry-provision?fiscalYear=2026&format=csv',
      'opRegistry',
    );
    expect(csv.body).toBe(
      'fiscalYear,agency,agencyDisplayName,purpose,channel,count\r\n' +
        '2026,nationalAgency,国の機関等 (demo),pensionBenefits,bulk,2\r\n' +
        '2026,nationalAgency,国の機関等 (demo),pensionBenefits,lookup,2\r\n' +
        '2026,nationalAgency,国の機関等 (demo),pensionBenefits,search,1\r\n',
    );
  });

  it('the JPKI provision report sums the provision ledger by verifier kind within the fiscal year', async () => {
    const count = async (
      day: string,
      verifierKind: 'signatureVerifier' | 'authVerifier',
      kind: 'ocsp' | 'crl' | 'certifiedBasicFour',
      n: number,
    ) => {
      t.clock.set(`${day}T03:00:00Z`);
      await t.database.db.transaction((tx) =>
        t.services.provisions.count(tx, { verifierId: DEMO_VERIFIER_ID, verifierKind, kind, n }),
      );
    };
    await count('2026-03-31', 'signatureVerifier', 'ocsp', 1000); // FY2025
    await count('2026-04-01', 'signatureVerifier', 'ocsp', 7);
    await count('2026-04-02', 'signatureVerifier', 'ocsp', 5);
    await count('2026-05-01', 'signatureVerifier', 'crl', 2);
    await count('2026-05-01', 'signatureVerifier', 'certifiedBasicFour', 3);
    await count('2027-03-31', 'authVerifier', 'ocsp', 11);
    await count('2027-04-01', 'authVerifier', 'ocsp', 500); // FY2027

    const res = await get('/v1/reports/jpki-provision?fiscalYear=2026', 'opCa');
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({
      report: 'jpkiProvision',
      fiscalYear: 2026,
      period: { from: '2026-04-01', to: '2027-03-31' },
      rows: [
        { verifierKind: 'authVerifier', provisionKind: 'ocsp', verifiers: 1, count: 11 },
        { verifierKind: 'signatureVerifier', provisionKind: 'ocsp', verifiers: 1, count: 12 },
        { verifierKind: 'signatureVerifier', provisionKind: 'crl', verifiers: 1, count: 2 },
        {
          verifierKind: 'signatureVerifier',
          provisionKind: 'certifiedBasicFour',
          verifiers: 1,
          count: 3,
        },
      ],
      totals: { ocsp: 23, crl: 2, certifiedBasicFour: 3, linkedSerial: 0, designationToken: 0 },
      source: { table: 'verifier_provisions', firstDay: '2026-04-01', lastDay: '2027-03-31' },
    });
    const csv = await get('/v1/reports/jpki-provision?fiscalYear=2026', 'opAuditor', {
      accept: 'text/csv',
    });
    expect(csv.body).toBe(
      'fiscalYear,verifierKind,provisionKind,verifiers,count\r\n' +
        '2026,authVerifier,ocsp,1,11\r\n' +
        '2026,signatureVerifier,ocsp,1,12\r\n' +
        '2026,signatureVerifier,crl,1,2\r\n' +
        '2026,signatureVerifier,certifiedBasicFour,1,3\r\n',
    );
  });

  it('audits every report read', async () => {
    const r = await t.database.db.query<{ action: string; n: string }>(
      `SELECT action, count(*)::text AS n FROM audit_log
        WHERE action LIKE 'report.%' GROUP BY action ORDER BY action`,
    );
    expect(r.rows.map((x) => x.action)).toEqual([
      'report.jpki-provision.read',
      'report.migration-statistics.read',
      'report.registry-provision.read',
    ]);
  });
});
