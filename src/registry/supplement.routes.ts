/**
 * Supplement-record routes (附票連携システム 附票全国サーバ): intake of 附票本人確認情報 change
 * notifications and reads of 機構保存附票本人確認情報.
 */
import { auditedResidentRead } from './audited-read.ts';
import { Type } from '@sinclair/typebox';
import type { AuditLog } from '../platform/audit.ts';
import type { Database } from '../platform/db.ts';
import type { App } from '../platform/http.ts';
import { ResidentCode } from './registry.routes.ts';
import {
  type StoredSupplementVersion,
  type SupplementService,
  holders,
} from './supplement.service.ts';
import { SUPPLEMENT_CHANGE_REASONS } from './supplement.rules.ts';

export interface SupplementRouteDeps {
  db: Database;
  audit: AuditLog;
  supplement: SupplementService;
}

const Sex = Type.Union([Type.Literal('male'), Type.Literal('female')]);
const DateString = Type.String({ description: 'YYYY-MM-DD', examples: ['2026-04-01'] });

const OverseasAddress = Type.Object(
  {
    country: Type.String({
      description: 'ISO 3166-1 alpha-2 code of the country of residence (not JP)',
      examples: ['US'],
    }),
    address: Type.Optional(Type.String({ description: 'the address abroad (optional)' })),
  },
  { description: '国外転出者: where the person lives abroad' },
);

const RecordFields = {
  residentCode: Type.String({ description: '住民票コード' }),
  name: Type.String({ description: '氏名' }),
  nameKana: Type.String({ description: '氏名の振り仮名 (full-width katakana)' }),
  birthDate: DateString,
  sex: Sex,
};

/**
 * The documented shape of a supplement notification. Field content (check digits, dates,
 * character sets, country codes, which of address / overseasAddress the reason needs) is
 * checked by supplement.rules.ts, which reports every problem precisely.
 */
const SupplementNotificationBody = Type.Object(
  {
    municipalityCode: Type.String({
      description: '全国地方公共団体コード of the municipality keeping the 附票 (本籍地)',
    }),
    sequence: Type.Integer({
      minimum: 1,
      description: 'the municipality’s running number on its supplement stream',
    }),
    changeReason: Type.String({ description: `異動事由: ${SUPPLEMENT_CHANGE_REASONS.join(', ')}` }),
    changeDate: DateString,
    record: Type.Object({
      ...RecordFields,
      address: Type.Optional(Type.String({ description: '住所 in Japan' })),
      overseasAddress: Type.Optional(OverseasAddress),
    }),
  },
  { description: '附票本人確認情報 change notification' },
);

const NotificationResult = Type.Object(
  { residentCode: Type.String(), version: Type.Integer() },
  { additionalProperties: false },
);

const SupplementRecordView = Type.Object(
  {
    ...RecordFields,
    address: Type.Union([Type.String(), Type.Null()]),
    overseasAddress: Type.Union([
      Type.Object(
        { country: Type.String(), address: Type.Union([Type.String(), Type.Null()]) },
        { additionalProperties: false },
      ),
      Type.Null(),
    ]),
    abroad: Type.Boolean({ description: '国外転出者' }),
    version: Type.Integer(),
    municipalityCode: Type.String({ description: 'the municipality keeping the 附票' }),
    status: Type.Union([Type.Literal('current'), Type.Literal('removed')]),
    changeReason: Type.String(),
    changeDate: DateString,
    changedItems: Type.Array(Type.String()),
    previousResidentCode: Type.Union([Type.String(), Type.Null()]),
    recordedAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'SupplementRecord', additionalProperties: false },
);

export const supplementRecordView = (v: StoredSupplementVersion) => ({
  residentCode: v.record.residentCode,
  name: v.record.name,
  nameKana: v.record.nameKana,
  birthDate: v.record.birthDate,
  sex: v.record.sex,
  address: v.record.address ?? null,
  overseasAddress: v.record.overseasAddress
    ? {
        country: v.record.overseasAddress.country,
        address: v.record.overseasAddress.address ?? null,
      }
    : null,
  abroad: v.record.overseasAddress !== undefined,
  version: v.version,
  municipalityCode: v.municipalityCode,
  status: v.status,
  changeReason: v.changeReason,
  changeDate: v.changeDate,
  changedItems: v.changedItems,
  previousResidentCode: v.previousResidentCode,
  recordedAt: v.recordedAt.toISOString(),
});

const bodyMunicipality = (req: { body: unknown }) => {
  const b = req.body;
  const code =
    b && typeof b === 'object' && 'municipalityCode' in b && typeof b.municipalityCode === 'string'
      ? b.municipalityCode
      : undefined;
  return { municipalityCode: code };
};

export async function supplementRoutes(app: App, deps: SupplementRouteDeps): Promise<void> {
  app.addSchema(SupplementRecordView);

  app.post(
    '/v1/registry/supplement-notifications',
    {
      config: { access: { grants: ['municipality', 'prefecture'], scope: bodyMunicipality } },
      schema: {
        tags: ['registry'],
        summary:
          '附票本人確認情報の通知: one supplement-record change (本籍地 municipality → prefecture → agency)',
        description:
          'Creates a new version of the 附票 the notifying municipality keeps for the person, who must be known by the resident code. Per municipality, `sequence` runs 1, 2, 3 … on the supplement stream: an identical replay returns the original result (200), a different body under a used sequence is a 409 `registry.sequence-conflict`, and a gap is a 409 `registry.sequence-gap` naming `expectedSequence`.',
        body: SupplementNotificationBody,
        response: { 200: NotificationResult, 201: NotificationResult },
      },
    },
    async (request, reply) => {
      const actor = request.actor!;
      const result = await deps.db.transaction((tx) =>
        deps.supplement.submit(tx, actor, request.body, String(request.id)),
      );
      return reply
        .code(result.replay ? 200 : 201)
        .send({ residentCode: result.residentCode, version: result.version });
    },
  );

  app.get(
    '/v1/registry/supplement-records/:residentCode',
    {
      config: {
        access: {
          grants: ['municipality', { type: 'agencyOperator', roles: ['registry', 'auditor'] }],
        },
      },
      schema: {
        tags: ['registry'],
        summary: '機構保存附票本人確認情報: the 附票 record (or every version, operators only)',
        description:
          'A municipality keeping the 附票 reads its own latest version; operators read the newest kept version, or with `history=true` every version of every municipality, oldest first.',
        params: Type.Object({ residentCode: ResidentCode }),
        querystring: Type.Object({ history: Type.Optional(Type.Boolean({ default: false })) }),
        response: {
          200: Type.Union([
            Type.Ref(SupplementRecordView),
            Type.Object({ versions: Type.Array(Type.Ref(SupplementRecordView)) }),
          ]),
        },
      },
    },
    async (request) => {
      const actor = request.actor!;
      const { residentCode } = request.params;
      return auditedResidentRead(
        deps,
        {
          actor,
          residentCode,
          history: request.query.history ?? false,
          requestId: String(request.id),
        },
        {
          kind: 'supplement-record',
          load: async (tx) => {
            const record = await deps.supplement.read(tx, residentCode);
            if (!record) return null;
            const held = holders(record.versions);
            const shown =
              actor.type === 'agencyOperator'
                ? held.effective
                : actor.municipalityCode
                  ? held.byMunicipality.get(actor.municipalityCode)
                  : undefined;
            return { versions: record.versions, shown };
          },
          view: supplementRecordView,
          notFoundDetail: 'no supplement record kept by this actor for that code',
        },
      );
    },
  );
}
