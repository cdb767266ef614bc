/**
 * Registry routes (住民基本台帳ネットワークシステム 全国サーバ).
 */
import type { Clock } from '../platform/clock.ts';
import { Type } from '@sinclair/typebox';
import type { AuditLog } from '../platform/audit.ts';
import type { Database } from '../platform/db.ts';
import { AppError } from '../platform/errors.ts';
import type { App } from '../platform/http.ts';
import type { ResidentCodePool } from './resident-codes.ts';
import {
  BATCH_ERROR,
  type BatchFormat,
  type BatchLimits,
  DEFAULT_BATCH_LIMITS,
  intakeBatch,
  StreamedBatch,
} from './registry.batch.ts';
import type { RegistryService } from './registry.service.ts';
import type { StoredVersion } from './registry.store.ts';
import { auditedResidentRead } from './audited-read.ts';

export interface RegistryRouteDeps {
  db: Database;
  audit: AuditLog;
  residentCodes: ResidentCodePool;
  clock: Clock;
}

export const ResidentCode = Type.String({
  pattern: '^[0-9]{11}$',
  description: '住民票コード: 11 digits (10 random + check digit)',
});

export async function registryRoutes(app: App, deps: RegistryRouteDeps): Promise<void> {
  app.post(
    '/v1/registry/resident-codes',
    {
      config: { access: { grants: ['municipality'] } },
      schema: {
        tags: ['registry'],
        summary:
          '住民票コードの指定: hand out never-used resident codes from this municipality’s pool',
        description:
          'The agency allots each municipality a pool of random, never-used codes and refills it as needed (住基法第30条の2). A code is handed out once and never reused.',
        body: Type.Object(
          { count: Type.Integer({ minimum: 1, maximum: 1000 }) },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object(
            { residentCodes: Type.Array(ResidentCode) },
            { additionalProperties: false },
          ),
        },
      },
    },
    async (request, reply) => {
      const actor = request.actor;
      if (!actor?.municipalityCode) {
        throw new AppError('forbidden', 'auth.forbidden', 'only a municipality draws codes');
      }
      const municipalityCode = actor.municipalityCode;
      const codes = await deps.db.transaction(async (tx) => {
        const handed = await deps.residentCodes.handOut(tx, municipalityCode, request.body.count);
        await deps.audit.append(tx, actor, {
          action: 'registry.resident-codes.hand-out',
          subjectType: 'localGovernment',
          subject: municipalityCode,
          requestId: String(request.id),
          details: { count: handed.length },
        });
        return handed;
      });
      return reply.code(201).send({ residentCodes: codes });
    },
  );
}

const NotificationResult = Type.Object(
  { residentCode: Type.String(), version: Type.Integer() },
  { additionalProperties: false },
);

const Sex = Type.Union([Type.Literal('male'), Type.Literal('female')]);
const DateString = Type.String({ description: 'YYYY-MM-DD', examples: ['2026-04-01'] });
const Destination = Type.Union([
  Type.Object({ municipalityCode: Type.String() }, { additionalProperties: false }),
  Type.Object({ abroad: Type.Literal(true) }, { additionalProperties: false }),
]);

const RecordFields = {
  residentCode: Type.String({ description: '住民票コード' }),
  myNumber: Type.String({ description: '個人番号' }),
  name: Type.String({ description: '氏名' }),
  nameKana: Type.String({ description: '氏名の振り仮名 (full-width katakana)' }),
  birthDate: DateString,
  sex: Sex,
  address: Type.String({ description: '住所' }),
};

/**
 * The documented shape of a notification. Field content (check digits, dates, character
 * sets, lengths) is checked by registry.rules.ts, which reports every problem precisely.
 */
export const NotificationBody = Type.Object(
  {
    municipalityCode: Type.String({ description: '全国地方公共団体コード of the notifier' }),
    sequence: Type.Integer({ minimum: 1, description: 'the municipality’s running number' }),
    changeReason: Type.String({
      description:
        '異動事由: birth, moveIn, moveOut, moveWithin, death, nameChange, officialEntry, officialRemoval, officialCorrection, emigration, residentCodeChange',
    }),
    changeDate: DateString,
    record: Type.Object(RecordFields),
    plannedMoveOutDate: Type.Optional(DateString),
    destination: Type.Optional(Destination),
    previousResidentCode: Type.Optional(Type.String()),
  },
  { description: '本人確認情報 change notification' },
);

export const IdentityRecordView = Type.Object(
  {
    ...RecordFields,
    version: Type.Integer(),
    municipalityCode: Type.String(),
    status: Type.Union([
      Type.Literal('current'),
      Type.Literal('movingOut'),
      Type.Literal('removed'),
    ]),
    removalCause: Type.Union([Type.String(), Type.Null()]),
    changeReason: Type.String(),
    changeDate: DateString,
    plannedMoveOutDate: Type.Union([DateString, Type.Null()]),
    destination: Type.Union([Destination, Type.Null()]),
    changedItems: Type.Array(Type.String()),
    recordedAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'IdentityRecord', additionalProperties: false },
);

export const identityRecordView = (v: StoredVersion) => ({
  ...v.record,
  version: v.version,
  municipalityCode: v.municipalityCode,
  status: v.status,
  removalCause: v.removalCause,
  changeReason: v.changeReason,
  changeDate: v.changeDate,
  plannedMoveOutDate: v.plannedMoveOutDate,
  destination: v.destination,
  changedItems: v.changedItems,
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

export async function identityRecordRoutes(
  app: App,
  deps: RegistryRouteDeps & { registry: RegistryService; batchLimits?: Partial<BatchLimits> },
): Promise<void> {
  app.addSchema(IdentityRecordView);
  await notificationBatchRoutes(app, deps);

  app.post(
    '/v1/registry/notifications',
    {
      config: { access: { grants: ['municipality', 'prefecture'], scope: bodyMunicipality } },
      schema: {
        tags: ['registry'],
        summary:
          '本人確認情報の通知: one identity-record change (municipality → prefecture → agency)',
        description:
          'Creates a new version of the person’s record. Per municipality, `sequence` runs 1, 2, 3 …: an identical replay returns the original result (200), a different body under a used sequence is a 409 `registry.sequence-conflict`, and a gap is a 409 `registry.sequence-gap` naming `expectedSequence`.',
        body: NotificationBody,
        response: {
          200: NotificationResult,
          201: NotificationResult,
        },
      },
    },
    async (request, reply) => {
      const actor = request.actor!;
      const result = await deps.db.transaction((tx) =>
        deps.registry.submit(tx, actor, request.body, String(request.id)),
      );
      return reply
        .code(result.replay ? 200 : 201)
        .send({ residentCode: result.residentCode, version: result.version });
    },
  );

  app.get(
    '/v1/registry/identity-records/:residentCode',
    {
      config: {
        access: {
          grants: ['municipality', { type: 'agencyOperator', roles: ['registry', 'auditor'] }],
        },
      },
      schema: {
        tags: ['registry'],
        summary: '機構保存本人確認情報: the current record (or every version, operators only)',
        params: Type.Object({ residentCode: ResidentCode }),
        querystring: Type.Object({ history: Type.Optional(Type.Boolean({ default: false })) }),
        response: {
          200: Type.Union([
            Type.Ref(IdentityRecordView),
            Type.Object({ versions: Type.Array(Type.Ref(IdentityRecordView)) }),
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
          kind: 'identity-record',
          load: async (tx) => {
            const record = await deps.registry.read(tx, residentCode);
            if (!record) return null;
            const latest = record.versions[record.versions.length - 1];
            const allowed =
              actor.type === 'agencyOperator' ||
              latest?.municipalityCode === actor.municipalityCode;
            return { versions: record.versions, shown: allowed ? latest : undefined };
          },
          view: identityRecordView,
          notFoundDetail: 'no record held by this actor for that code',
        },
      );
    },
  );
}

const BatchLineResult = Type.Object(
  {
    line: Type.Integer(),
    residentCode: Type.String(),
    version: Type.Integer(),
    replay: Type.Boolean(),
  },
  { additionalProperties: false },
);

const BatchAccepted = Type.Object(
  {
    lines: Type.Integer({ description: 'notifications read (blank NDJSON lines not counted)' }),
    accepted: Type.Integer({ description: 'stored as a new version' }),
    replayed: Type.Integer({ description: 'identical replays of accepted notifications' }),
    results: Type.Optional(
      Type.Array(BatchLineResult, {
        description: `one entry per notification, in body order; only for batches of at most ${DEFAULT_BATCH_LIMITS.results} notifications`,
      }),
    ),
  },
  { additionalProperties: false },
);

const BatchProblem = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    code: Type.String(),
    detail: Type.String(),
    requestId: Type.Optional(Type.String()),
    failedLines: Type.Optional(Type.Integer({ description: 'every refused line, counted' })),
    truncated: Type.Optional(
      Type.Boolean({ description: `true when more than ${DEFAULT_BATCH_LIMITS.errors} errors` }),
    ),
    errors: Type.Optional(
      Type.Array(
        Type.Object(
          {
            line: Type.Integer({
              description:
                'NDJSON: the line number (blank lines counted); JSON: the element, from 1',
            }),
            pointer: Type.String({
              description: 'within the notification, as on the single route',
            }),
            message: Type.String(),
            code: Type.Optional(Type.String({ description: 'why this line was refused' })),
          },
          { additionalProperties: false },
        ),
      ),
    ),
  },
  {
    additionalProperties: true,
    description: 'RFC 9457 problem details, one error per refused line',
  },
);

/**
 * `POST /v1/registry/notifications:batch`. Its body is a stream: the route has its own
 * content-type parsers (in an encapsulated scope, so no other route is affected) that hand
 * the handler the unread request, and its own size limits.
 */
export async function notificationBatchRoutes(
  app: App,
  deps: RegistryRouteDeps & { registry: RegistryService; batchLimits?: Partial<BatchLimits> },
): Promise<void> {
  const limits: BatchLimits = { ...DEFAULT_BATCH_LIMITS, ...deps.batchLimits };
  await app.register(async (scope: App) => {
    const streamed =
      (format: BatchFormat) =>
      (
        request: { headers: Record<string, string | string[] | undefined> },
        payload: StreamedBatch['stream'],
        done: (err: Error | null, body?: unknown) => void,
      ): void => {
        // A declared length over the limit is refused before a byte is read.
        const declared = Number(request.headers['content-length']);
        if (Number.isFinite(declared) && declared > limits.bodyBytes) {
          done(
            new AppError(
              'payloadTooLarge',
              'request.too-large',
              `a batch is at most ${limits.bodyBytes} bytes`,
            ),
          );
          return;
        }
        done(null, new StreamedBatch(format, payload));
      };
    scope.removeContentTypeParser('application/json');
    scope.addContentTypeParser('application/json', streamed('json'));
    scope.addContentTypeParser('application/x-ndjson', streamed('ndjson'));

    scope.post(
      // `::` is a literal colon for the router: the URL is /v1/registry/notifications:batch.
      '/v1/registry/notifications::batch',
      {
        bodyLimit: limits.bodyBytes,
        config: { access: { grants: ['municipality', 'prefecture'] } },
        // The body is a stream; each notification in it is validated by the registry.
        validatorCompiler: () => () => true,
        schema: {
          tags: ['registry'],
          summary: '本人確認情報の一括通知: many identity-record changes, all or nothing',
          description: [
            'Applies every notification in body order in one transaction, exactly as `POST /v1/registry/notifications` would one after another (sequence order, identical replays, validation, audit, events).',
            `Send \`application/x-ndjson\` (one notification per line; blank lines are skipped but counted) or \`application/json\` (an array of notifications). Both are read as they stream in: at most ${limits.bodyBytes} bytes, ${limits.itemBytes} bytes per line or element and ${limits.items} lines.`,
            `If any line is refused nothing is stored, and the answer lists every refused line with its number, a pointer within that notification and the reason's \`code\` (up to ${limits.errors}; \`failedLines\` counts them all). A refused line makes later lines that depend on it (the same municipality's next sequence numbers, the same person's later changes) fail as well. The answer is 422 \`${BATCH_ERROR.rejected}\`, or 403 with the scope code (\`auth.other-municipality\`, \`auth.other-prefecture\`) when any line is for a municipality outside the caller's scope: a municipality sends only its own notifications, a prefecture those of its municipalities.`,
            `Other errors: 413 \`request.too-large\` or \`${BATCH_ERROR.tooManyLines}\`, 400 \`${BATCH_ERROR.empty}\`, 415 for other media types.`,
          ].join('\n\n'),
          body: {
            content: {
              'application/x-ndjson': {
                schema: Type.String({
                  description:
                    'NDJSON: one notification (the application/json element shape) per line',
                }),
              },
              'application/json': { schema: Type.Array(NotificationBody) },
            },
          },
          response: {
            200: BatchAccepted,
            403: BatchProblem,
            422: BatchProblem,
          },
        },
      },
      async (request, reply) => {
        const batch = request.body;
        if (!(batch instanceof StreamedBatch)) {
          throw new AppError(
            'unsupportedMediaType',
            'request.unsupported-media-type',
            'send application/x-ndjson or application/json',
          );
        }
        try {
          const result = await intakeBatch(deps, request.actor!, batch, String(request.id), limits);
          return await reply.code(200).send(result);
        } catch (err) {
          // Refused before the body was read to its end: the rest is not read, so the
          // connection cannot carry another request.
          if (!batch.finished) void reply.header('connection', 'close');
          throw err;
        }
      },
    );
  });
}
