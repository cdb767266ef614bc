/**
 * Report routes: JSON by default; CSV (UTF-8, CRLF, header row) with `?format=csv` or
 * `Accept: text/csv`. Agency operators only: the registry role for registry reports, the ca
 * role for the JPKI report, auditors for all of them.
 */
import { Type } from '@sinclair/typebox';
import type { AuditLog } from '../platform/audit.ts';
import type { Database } from '../platform/db.ts';
import type { App } from '../platform/http.ts';
import {
  jpkiProvisionCsv,
  migrationStatisticsCsv,
  registryProvisionCsv,
  type ReportService,
} from './reports.service.ts';

export interface ReportRouteDeps {
  db: Database;
  audit: AuditLog;
  reports: ReportService;
}

const Format = Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('csv')]));
const FiscalYearQuery = Type.Object(
  { fiscalYear: Type.Integer({ minimum: 2000, maximum: 2200 }), format: Format },
  { additionalProperties: false },
);
const MonthQuery = Type.Object(
  { month: Type.String({ pattern: '^[0-9]{4}-(0[1-9]|1[0-2])$' }), format: Format },
  { additionalProperties: false },
);
const PeriodView = Type.Object(
  { from: Type.String(), to: Type.String() },
  { additionalProperties: false },
);

const RegistryProvisionView = Type.Object(
  {
    report: Type.Literal('registryProvision'),
    fiscalYear: Type.Integer(),
    period: PeriodView,
    rows: Type.Array(
      Type.Object(
        {
          agency: Type.String(),
          agencyDisplayName: Type.String(),
          purpose: Type.String(),
          channel: Type.String(),
          count: Type.Integer(),
        },
        { additionalProperties: false },
      ),
    ),
    total: Type.Integer(),
    source: Type.Object(
      {
        firstSeq: Type.Union([Type.String(), Type.Null()]),
        lastSeq: Type.Union([Type.String(), Type.Null()]),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

const JpkiProvisionView = Type.Object(
  {
    report: Type.Literal('jpkiProvision'),
    fiscalYear: Type.Integer(),
    period: PeriodView,
    rows: Type.Array(
      Type.Object(
        {
          verifierKind: Type.String(),
          provisionKind: Type.String(),
          verifiers: Type.Integer(),
          count: Type.Integer(),
        },
        { additionalProperties: false },
      ),
    ),
    totals: Type.Record(Type.String(), Type.Integer()),
    source: Type.Object(
      {
        table: Type.Literal('verifier_provisions'),
        firstDay: Type.Union([Type.String(), Type.Null()]),
        lastDay: Type.Union([Type.String(), Type.Null()]),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

const MigrationView = Type.Object(
  {
    report: Type.Literal('migrationStatistics'),
    month: Type.String(),
    period: PeriodView,
    rows: Type.Array(
      Type.Object(
        {
          originCode: Type.String(),
          originPrefectureCode: Type.String(),
          destinationCode: Type.String(),
          destinationPrefectureCode: Type.String(),
          count: Type.Integer(),
        },
        { additionalProperties: false },
      ),
    ),
    byPrefecture: Type.Array(
      Type.Object(
        {
          originPrefectureCode: Type.String(),
          destinationPrefectureCode: Type.String(),
          count: Type.Integer(),
        },
        { additionalProperties: false },
      ),
    ),
    total: Type.Integer(),
  },
  { additionalProperties: false },
);

const wantsCsv = (format: string | undefined, accept: string | undefined): boolean =>
  format === 'csv' || (format === undefined && /\btext\/csv\b/.test(accept ?? ''));

const CSV_TYPE = 'text/csv; charset=utf-8';
/** The CSV form (text/csv): a header row and one row per record. */
const Csv = Type.String({
  description: 'text/csv; charset=utf-8 (with format=csv or Accept: text/csv)',
});

export async function reportRoutes(app: App, deps: ReportRouteDeps): Promise<void> {
  const { db, reports } = deps;

  app.get(
    '/v1/reports/registry-provision',
    {
      config: {
        access: { grants: [{ type: 'agencyOperator', roles: ['registry', 'auditor'] }] },
      },
      schema: {
        tags: ['reports'],
        summary:
          '機構保存本人確認情報等の提供の状況に関する報告書 (業務方法書 第4条(6)) for a fiscal year',
        querystring: FiscalYearQuery,
        response: { 200: Type.Union([RegistryProvisionView, Csv]) },
      },
    },
    async (request, reply) => {
      const r = await db.transaction(async (tx) => {
        const report = await reports.registryProvision(tx, request.query.fiscalYear);
        await deps.audit.append(tx, request.actor!, {
          action: 'report.registry-provision.read',
          requestId: String(request.id),
          details: { fiscalYear: request.query.fiscalYear },
        });
        return report;
      });
      if (wantsCsv(request.query.format, request.headers.accept)) {
        return reply.type(CSV_TYPE).send(registryProvisionCsv(r));
      }
      return r;
    },
  );

  app.get(
    '/v1/reports/jpki-provision',
    {
      config: { access: { grants: [{ type: 'agencyOperator', roles: ['ca', 'auditor'] }] } },
      schema: {
        tags: ['reports'],
        summary:
          'JPKI provision report (業務方法書 第5条(12), 公的個人認証法 第41条) for a fiscal year, by verifier kind',
        querystring: FiscalYearQuery,
        response: { 200: Type.Union([JpkiProvisionView, Csv]) },
      },
    },
    async (request, reply) => {
      const r = await db.transaction(async (tx) => {
        const report = await reports.jpkiProvision(tx, request.query.fiscalYear);
        await deps.audit.append(tx, request.actor!, {
          action: 'report.jpki-provision.read',
          requestId: String(request.id),
          details: { fiscalYear: request.query.fiscalYear },
        });
        return report;
      });
      if (wantsCsv(request.query.format, request.headers.accept)) {
        return reply.type(CSV_TYPE).send(jpkiProvisionCsv(r));
      }
      return r;
    },
  );

  app.get(
    '/v1/reports/migration-statistics',
    {
      config: {
        access: { grants: [{ type: 'agencyOperator', roles: ['registry', 'auditor'] }] },
      },
      schema: {
        tags: ['reports'],
        summary: '住民基本台帳人口移動報告: moves between municipalities in a month',
        querystring: MonthQuery,
        response: { 200: Type.Union([MigrationView, Csv]) },
      },
    },
    async (request, reply) => {
      const r = await db.transaction(async (tx) => {
        const report = await reports.migrationStatistics(tx, request.query.month);
        await deps.audit.append(tx, request.actor!, {
          action: 'report.migration-statistics.read',
          requestId: String(request.id),
          details: { month: request.query.month },
        });
        return report;
      });
      if (wantsCsv(request.query.format, request.headers.accept)) {
        return reply.type(CSV_TYPE).send(migrationStatisticsCsv(r));
      }
      return r;
    },
  );
}
