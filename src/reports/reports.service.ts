/**
 * Reports computed from the logs, never from counters kept on the side, so the same logs always
 * give the same figures (and the same bytes):
 *
 * - 機構保存本人確認情報等の提供の状況に関する報告書 (業務方法書 第4条(6)): provisions to national
 *   agencies in a fiscal year, per agency, purpose and channel — from the audit log
 *   (`registry.provision`, successful entries only);
 * - the JPKI provision report (業務方法書 第5条(12), 公的個人認証法 第41条): revocation information
 *   (OCSP), revocation-list files (CRL), certified basic-4, linked serial numbers and
 *   designation tokens provided in a fiscal year, per verifier kind — from the provision
 *   ledger (`verifier_provisions`, one row per verifier, kind and JST day);
 * - 住民基本台帳人口移動報告 (monthly migration statistics): moves between municipalities in a
 *   month, by origin and destination — from the identity-record versions (a version whose
 *   municipality differs from the person's previous version is a move; its 異動日 dates it).
 *
 * Fiscal years run from 1 April to 31 March, Japan time. Rows are sorted on every key column
 * so the order never depends on the database.
 */
import type { Queryable } from '../platform/db.ts';
import { AppError } from '../platform/errors.ts';

export interface Period {
  /** First day, inclusive (JST calendar date). */
  from: string;
  /** Last day, inclusive (JST calendar date). */
  to: string;
}

export function fiscalYearPeriod(fiscalYear: number): Period {
  return { from: `${fiscalYear}-04-01`, to: `${fiscalYear + 1}-03-31` };
}

export function monthPeriod(month: string): Period {
  const m = /^(\d{4})-(\d{2})$/.exec(month);
  const year = Number(m?.[1]);
  const mon = Number(m?.[2]);
  if (!m || mon < 1 || mon > 12) {
    throw new AppError('badRequest', 'report.bad-month', 'month must look like 2026-10');
  }
  const last = new Date(Date.UTC(year, mon, 0)).getUTCDate();
  return { from: `${month}-01`, to: `${month}-${String(last).padStart(2, '0')}` };
}

/** [from 00:00 JST, day after `to` 00:00 JST) as instants. */
function instants(p: Period): [Date, Date] {
  const start = new Date(`${p.from}T00:00:00+09:00`);
  const end = new Date(new Date(`${p.to}T00:00:00+09:00`).getTime() + 86_400_000);
  return [start, end];
}

export interface RegistryProvisionRow {
  agency: string;
  agencyDisplayName: string;
  purpose: string;
  channel: string;
  count: number;
}

export interface RegistryProvisionReport {
  report: 'registryProvision';
  fiscalYear: number;
  period: Period;
  rows: RegistryProvisionRow[];
  total: number;
  /** The audit entries the figures come from (null when there were none). */
  source: { firstSeq: string | null; lastSeq: string | null };
}

export interface JpkiProvisionRow {
  verifierKind: string;
  provisionKind: string;
  verifiers: number;
  count: number;
}

export interface JpkiProvisionReport {
  report: 'jpkiProvision';
  fiscalYear: number;
  period: Period;
  rows: JpkiProvisionRow[];
  totals: Record<string, number>;
  source: { table: 'verifier_provisions'; firstDay: string | null; lastDay: string | null };
}

export interface MigrationRow {
  originCode: string;
  originPrefectureCode: string;
  destinationCode: string;
  destinationPrefectureCode: string;
  count: number;
}

export interface MigrationStatistics {
  report: 'migrationStatistics';
  month: string;
  period: Period;
  rows: MigrationRow[];
  byPrefecture: {
    originPrefectureCode: string;
    destinationPrefectureCode: string;
    count: number;
  }[];
  total: number;
}

export const PROVISION_KIND_ORDER = [
  'ocsp',
  'crl',
  'certifiedBasicFour',
  'linkedSerial',
  'designationToken',
] as const;

export class ReportService {
  async registryProvision(db: Queryable, fiscalYear: number): Promise<RegistryProvisionReport> {
    const period = fiscalYearPeriod(fiscalYear);
    const [start, end] = instants(period);
    const r = await db.query<{
      agency: string;
      display_name: string | null;
      purpose: string | null;
      channel: string | null;
      count: string;
      first_seq: string;
      last_seq: string;
    }>(
      `SELECT l.actor_name AS agency, a.display_name, l.purpose, l.details->>'channel' AS channel,
              count(*)::text AS count, min(l.seq)::text AS first_seq, max(l.seq)::text AS last_seq
         FROM audit_log l LEFT JOIN actors a ON a.id = l.actor_id
        WHERE l.action = 'registry.provision' AND l.outcome = 'success'
          AND l.occurred_at >= $1 AND l.occurred_at < $2
        GROUP BY l.actor_name, a.display_name, l.purpose, l.details->>'channel'`,
      [start, end],
    );
    const rows = r.rows
      .map((x) => ({
        agency: x.agency,
        agencyDisplayName: x.display_name ?? x.agency,
        purpose: x.purpose ?? '',
        channel: x.channel ?? '',
        count: Number(x.count),
      }))
      .sort(
        (a, b) => cmp(a.agency, b.agency) || cmp(a.purpose, b.purpose) || cmp(a.channel, b.channel),
      );
    const seqs = r.rows.flatMap((x) => [BigInt(x.first_seq), BigInt(x.last_seq)]);
    return {
      report: 'registryProvision',
      fiscalYear,
      period,
      rows,
      total: rows.reduce((n, x) => n + x.count, 0),
      source: {
        firstSeq: seqs.length ? seqs.reduce((a, b) => (a < b ? a : b)).toString() : null,
        lastSeq: seqs.length ? seqs.reduce((a, b) => (a > b ? a : b)).toString() : null,
      },
    };
  }

  async jpkiProvision(db: Queryable, fiscalYear: number): Promise<JpkiProvisionReport> {
    const period = fiscalYearPeriod(fiscalYear);
    const r = await db.query<{
      verifier_kind: string;
      provision_kind: string;
      verifiers: string;
      count: string;
      first_day: string;
      last_day: string;
    }>(
      `SELECT verifier_kind, provision_kind, count(DISTINCT verifier_id)::text AS verifiers,
              sum(count)::text AS count, min(day)::text AS first_day, max(day)::text AS last_day
         FROM verifier_provisions
        WHERE day >= $1::date AND day <= $2::date AND count > 0
        GROUP BY verifier_kind, provision_kind`,
      [period.from, period.to],
    );
    const order = (k: string): number =>
      (PROVISION_KIND_ORDER as readonly string[]).indexOf(k) + 1 || 99;
    const rows = r.rows
      .map((x) => ({
        verifierKind: x.verifier_kind,
        provisionKind: x.provision_kind,
        verifiers: Number(x.verifiers),
        count: Number(x.count),
      }))
      .sort(
        (a, b) =>
          cmp(a.verifierKind, b.verifierKind) || order(a.provisionKind) - order(b.provisionKind),
      );
    const totals: Record<string, number> = {};
    for (const k of PROVISION_KIND_ORDER) totals[k] = 0;
    for (const row of rows)
      totals[row.provisionKind] = (totals[row.provisionKind] ?? 0) + row.count;
    const days = r.rows.flatMap((x) => [x.first_day, x.last_day]).sort();
    return {
      report: 'jpkiProvision',
      fiscalYear,
      period,
      rows,
      totals,
      source: {
        table: 'verifier_provisions',
        firstDay: days[0] ?? null,
        lastDay: days[days.length - 1] ?? null,
      },
    };
  }

  async migrationStatistics(db: Queryable, month: string): Promise<MigrationStatistics> {
    const period = monthPeriod(month);
    const r = await db.query<{ origin: string; destination: string; count: string }>(
      `SELECT p.municipality_code AS origin, v.municipality_code AS destination,
              count(*)::text AS count
         FROM identity_record_versions v
         JOIN identity_record_versions p ON p.person_id = v.person_id AND p.version = v.version - 1
        WHERE v.municipality_code <> p.municipality_code
          AND v.change_date >= $1::date AND v.change_date <= $2::date
        GROUP BY p.municipality_code, v.municipality_code`,
      [period.from, period.to],
    );
    const rows = r.rows
      .map((x) => ({
        originCode: x.origin,
        originPrefectureCode: x.origin.slice(0, 2),
        destinationCode: x.destination,
        destinationPrefectureCode: x.destination.slice(0, 2),
        count: Number(x.count),
      }))
      .sort((a, b) => cmp(a.originCode, b.originCode) || cmp(a.destinationCode, b.destinationCode));
    const pref = new Map<string, number>();
    for (const row of rows) {
      const key = `${row.originPrefectureCode}>${row.destinationPrefectureCode}`;
      pref.set(key, (pref.get(key) ?? 0) + row.count);
    }
    const byPrefecture = [...pref.entries()]
      .map(([key, count]) => {
        const [o = '', d = ''] = key.split('>');
        return { originPrefectureCode: o, destinationPrefectureCode: d, count };
      })
      .sort(
        (a, b) =>
          cmp(a.originPrefectureCode, b.originPrefectureCode) ||
          cmp(a.destinationPrefectureCode, b.destinationPrefectureCode),
      );
    return {
      report: 'migrationStatistics',
      month,
      period,
      rows,
      byPrefecture,
      total: rows.reduce((n, x) => n + x.count, 0),
    };
  }
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** RFC 4180 CSV: a header row, then one row per record; fields quoted when they need it. */
export function toCsv(
  header: readonly string[],
  rows: readonly (readonly (string | number)[])[],
): string {
  const field = (v: string | number): string => {
    const s = String(v);
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [header, ...rows].map((r) => r.map(field).join(',')).join('\r\n') + '\r\n';
}

export function registryProvisionCsv(r: RegistryProvisionReport): string {
  return toCsv(
    ['fiscalYear', 'agency', 'agencyDisplayName', 'purpose', 'channel', 'count'],
    r.rows.map((x) => [r.fiscalYear, x.agency, x.agencyDisplayName, x.purpose, x.channel, x.count]),
  );
}

export function jpkiProvisionCsv(r: JpkiProvisionReport): string {
  return toCsv(
    ['fiscalYear', 'verifierKind', 'provisionKind', 'verifiers', 'count'],
    r.rows.map((x) => [r.fiscalYear, x.verifierKind, x.provisionKind, x.verifiers, x.count]),
  );
}

export function migrationStatisticsCsv(r: MigrationStatistics): string {
  return toCsv(
    [
      'month',
      'originPrefectureCode',
      'originCode',
      'destinationPrefectureCode',
      'destinationCode',
      'count',
    ],
    r.rows.map((x) => [
      r.month,
      x.originPrefectureCode,
      x.originCode,
      x.destinationPrefectureCode,
      x.destinationCode,
      x.count,
    ]),
  );
}
