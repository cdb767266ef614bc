/**
 * Platform routes: liveness/readiness, who-am-I, the local-government master, actors and
 * the audit log.
 */
import { Type, type Static } from '@sinclair/typebox';
import { anyActor } from './access.ts';
import {
  ACTOR_TYPES,
  OPERATOR_ROLES,
  type Actor,
  type ActorStore,
  type ActorType,
  type OperatorRole,
} from './actors.ts';
import { type AuditEntry, type AuditLog, verifyAuditChain } from './audit.ts';
import type { Database } from './db.ts';
import { AppError } from './errors.ts';
import type { App } from './http.ts';
import { isValidLocalGovernmentCode } from './local-government-code.ts';
import { LOCAL_GOVERNMENT_KINDS } from './local-governments-csv.ts';
import { migrationStatus } from './migrations.ts';
import { isVerifierKind } from '../verifiers/kinds.ts';

export interface PlatformRouteDeps {
  db: Database;
  actors: ActorStore;
  audit: AuditLog;
}

const LocalGovernmentCode = Type.String({
  pattern: '^[0-9]{6}$',
  description: '全国地方公共団体コード (6 digits incl. check digit)',
  examples: ['131016'],
});

const ActorView = Type.Object(
  {
    name: Type.String(),
    type: Type.Union(ACTOR_TYPES.map((t) => Type.Literal(t))),
    displayName: Type.String(),
    roles: Type.Array(Type.Union(OPERATOR_ROLES.map((r) => Type.Literal(r)))),
    municipalityCode: Type.Union([Type.String(), Type.Null()]),
    prefectureCode: Type.Union([Type.String(), Type.Null()]),
    purposes: Type.Array(Type.String()),
    status: Type.Union([Type.Literal('active'), Type.Literal('suspended')]),
    verifierId: Type.Union([Type.String(), Type.Null()], {
      description: 'the verifier a verifier credential acts for (GET /v1/verifiers/{verifierId})',
    }),
  },
  { $id: 'Actor', additionalProperties: false },
);
type ActorView = Static<typeof ActorView>;

const actorView = (a: Actor): ActorView => ({
  name: a.name,
  type: a.type,
  displayName: a.displayName,
  roles: a.roles,
  municipalityCode: a.municipalityCode,
  prefectureCode: a.prefectureCode,
  purposes: a.purposes,
  status: a.status,
  verifierId: a.verifierId,
});

const NewActorBody = Type.Object(
  {
    name: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' }),
    type: Type.Union(ACTOR_TYPES.map((t) => Type.Literal(t))),
    displayName: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    municipalityCode: Type.Optional(LocalGovernmentCode),
    prefectureCode: Type.Optional(Type.String({ pattern: '^[0-9]{2}$' })),
    purposes: Type.Optional(
      Type.Array(Type.String({ pattern: '^[A-Za-z0-9.-]{1,64}$' }), { maxItems: 100 }),
    ),
  },
  { additionalProperties: false },
);

/** Which operator role may register which actor type over the API. */
const REGISTERING_ROLE: Partial<Record<ActorType, OperatorRole>> = {
  prefecture: 'registry',
  municipality: 'registry',
  nationalAgency: 'registry',
  resident: 'registry',
  // Verifier credentials are bound to a registered verifier: POST /v1/verifiers/{id}/credentials.
};

const LocalGovernmentView = Type.Object(
  {
    code: Type.String(),
    prefectureCode: Type.String(),
    kind: Type.Union(LOCAL_GOVERNMENT_KINDS.map((k) => Type.Literal(k))),
    name: Type.String(),
    district: Type.Union([Type.String(), Type.Null()]),
    nameKana: Type.String(),
    parentCode: Type.Union([Type.String(), Type.Null()]),
  },
  { $id: 'LocalGovernment', additionalProperties: false },
);

const AuditEntryView = Type.Object(
  {
    seq: Type.String(),
    occurredAt: Type.String({ format: 'date-time' }),
    actorType: Type.String(),
    actorName: Type.String(),
    action: Type.String(),
    subjectType: Type.Union([Type.String(), Type.Null()]),
    subject: Type.Union([Type.String(), Type.Null()]),
    purpose: Type.Union([Type.String(), Type.Null()]),
    outcome: Type.String(),
    requestId: Type.Union([Type.String(), Type.Null()]),
    details: Type.Record(Type.String(), Type.Unknown()),
    hash: Type.String(),
  },
  { $id: 'AuditEntry', additionalProperties: false },
);

const AuditPage = Type.Object({
  entries: Type.Array(Type.Ref(AuditEntryView)),
  nextAfterSeq: Type.Union([Type.String(), Type.Null()]),
});

const AuditQuery = Type.Object({
  afterSeq: Type.Optional(Type.String({ pattern: '^[0-9]{1,19}$' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
  subjectType: Type.Optional(Type.String({ maxLength: 40 })),
  subject: Type.Optional(Type.String({ maxLength: 100 })),
});

const auditView = (e: AuditEntry) => ({
  seq: e.seq,
  occurredAt: e.occurredAt,
  actorType: e.actorType,
  actorName: e.actorName,
  action: e.action,
  subjectType: e.subjectType,
  subject: e.subject,
  purpose: e.purpose,
  outcome: e.outcome,
  requestId: e.requestId,
  details: e.details,
  hash: e.hash,
});

const page = (entries: AuditEntry[], limit: number) => ({
  entries: entries.map(auditView),
  nextAfterSeq: entries.length === limit ? (entries[entries.length - 1]?.seq ?? null) : null,
});

export async function platformRoutes(app: App, deps: PlatformRouteDeps): Promise<void> {
  app.addSchema(ActorView);
  app.addSchema(LocalGovernmentView);
  app.addSchema(AuditEntryView);

  app.get(
    '/healthz',
    {
      config: { access: { public: true, why: 'liveness probe' } },
      schema: {
        tags: ['system'],
        summary: 'Liveness: the process is up',
        response: { 200: Type.Object({ status: Type.Literal('ok') }) },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      config: { access: { public: true, why: 'readiness probe' } },
      schema: {
        tags: ['system'],
        summary: 'Readiness: database reachable and every migration applied',
        response: {
          200: Type.Object({
            status: Type.Literal('ready'),
            database: Type.String(),
            migrations: Type.Object({ applied: Type.Integer(), pending: Type.Integer() }),
          }),
        },
      },
    },
    async () => {
      let status;
      try {
        status = await migrationStatus(deps.db);
      } catch {
        throw new AppError('unavailable', 'not-ready.database', 'the database is not reachable');
      }
      if (status.pending > 0) {
        throw new AppError(
          'unavailable',
          'not-ready.migrations',
          `${status.pending} migration(s) not applied; run kiban init`,
        );
      }
      return {
        status: 'ready' as const,
        database: deps.db.engine,
        migrations: { applied: status.applied, pending: status.pending },
      };
    },
  );

  app.get(
    '/v1/whoami',
    {
      config: { access: { grants: anyActor } },
      schema: {
        tags: ['platform'],
        summary: 'The actor this token belongs to',
        response: { 200: Type.Ref(ActorView) },
      },
    },
    async (request) => {
      if (!request.actor) throw new AppError('unauthorized', 'auth.token-missing', 'no actor');
      return actorView(request.actor);
    },
  );

  app.get(
    '/v1/local-governments',
    {
      config: { access: { grants: anyActor } },
      schema: {
        tags: ['platform'],
        summary: 'Prefectures, municipalities and wards (全国地方公共団体コード)',
        querystring: Type.Object({
          prefectureCode: Type.Optional(Type.String({ pattern: '^[0-9]{2}$' })),
          kind: Type.Optional(Type.Union(LOCAL_GOVERNMENT_KINDS.map((k) => Type.Literal(k)))),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 2000, default: 100 })),
          offset: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
        }),
        response: {
          200: Type.Object({
            total: Type.Integer(),
            items: Type.Array(Type.Ref(LocalGovernmentView)),
          }),
        },
      },
    },
    async (request) => {
      const q = request.query;
      const where = `($1::text IS NULL OR prefecture_code = $1) AND ($2::text IS NULL OR kind = $2)`;
      const params = [q.prefectureCode ?? null, q.kind ?? null];
      const [count, rows] = await Promise.all([
        deps.db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM local_governments WHERE ${where}`,
          params,
        ),
        deps.db.query<LocalGovernmentRow>(
          `SELECT ${LG_COLUMNS} FROM local_governments WHERE ${where} ORDER BY code LIMIT $3 OFFSET $4`,
          [...params, q.limit ?? 100, q.offset ?? 0],
        ),
      ]);
      return { total: count.rows[0]?.n ?? 0, items: rows.rows.map(lgView) };
    },
  );

  app.get(
    '/v1/local-governments/:code',
    {
      config: { access: { grants: anyActor } },
      schema: {
        tags: ['platform'],
        summary: 'One prefecture, municipality or ward',
        params: Type.Object({ code: LocalGovernmentCode }),
        response: { 200: Type.Ref(LocalGovernmentView) },
      },
    },
    async (request) => {
      const { code } = request.params;
      if (!isValidLocalGovernmentCode(code)) {
        throw new AppError(
          'badRequest',
          'local-government.bad-check-digit',
          `${code} fails its check digit`,
          {
            errors: [{ pointer: '/params/code', message: 'check digit does not match' }],
          },
        );
      }
      const r = await deps.db.query<LocalGovernmentRow>(
        `SELECT ${LG_COLUMNS} FROM local_governments WHERE code = $1`,
        [code],
      );
      const row = r.rows[0];
      if (!row)
        throw new AppError('notFound', 'local-government.not-found', `no local government ${code}`);
      return lgView(row);
    },
  );

  app.get(
    '/v1/actors',
    {
      config: {
        access: { grants: [{ type: 'agencyOperator', roles: OPERATOR_ROLES }] },
      },
      schema: {
        tags: ['platform'],
        summary: 'Registered actors (never their tokens)',
        response: { 200: Type.Object({ actors: Type.Array(Type.Ref(ActorView)) }) },
      },
    },
    async () => ({ actors: (await deps.actors.list(deps.db)).map(actorView) }),
  );

  app.get(
    '/v1/actors/:name',
    {
      config: {
        access: { grants: [{ type: 'agencyOperator', roles: OPERATOR_ROLES }] },
      },
      schema: {
        tags: ['platform'],
        summary: 'One registered actor',
        params: Type.Object({ name: Type.String({ maxLength: 64 }) }),
        response: { 200: Type.Ref(ActorView) },
      },
    },
    async (request) => {
      const actor = await deps.actors.byName(deps.db, request.params.name);
      if (!actor) throw new AppError('notFound', 'actor.not-found', 'no such actor');
      return actorView(actor);
    },
  );

  app.post(
    '/v1/actors',
    {
      config: {
        access: { grants: [{ type: 'agencyOperator', roles: ['registry', 'ca'] }] },
      },
      schema: {
        tags: ['platform'],
        summary: 'Register an actor (tokens are issued with the CLI: kiban token create)',
        description:
          'Operators with the registry role register prefectures, municipalities, national agencies and residents. Verifier credentials are issued for a registered verifier (POST /v1/verifiers/{verifierId}/credentials, ca role). Agency operators are created only with the CLI.',
        body: NewActorBody,
        response: { 201: Type.Ref(ActorView) },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const operator = request.actor!;
      const needed = REGISTERING_ROLE[body.type];
      if (isVerifierKind(body.type)) {
        throw new AppError(
          'forbidden',
          'actor.type-not-permitted',
          `a ${body.type} credential is issued for a registered verifier: POST /v1/verifiers/{verifierId}/credentials`,
        );
      }
      if (!needed || !operator.roles.includes(needed)) {
        throw new AppError(
          'forbidden',
          'actor.type-not-permitted',
          needed
            ? `registering a ${body.type} needs the ${needed} role`
            : `a ${body.type} can only be created with the CLI`,
        );
      }
      const actor = await deps.db.transaction(async (tx) => {
        const created = await deps.actors.create(tx, {
          name: body.name,
          type: body.type,
          ...(body.displayName ? { displayName: body.displayName } : {}),
          ...(body.municipalityCode ? { municipalityCode: body.municipalityCode } : {}),
          ...(body.prefectureCode ? { prefectureCode: body.prefectureCode } : {}),
          ...(body.purposes ? { purposes: body.purposes } : {}),
        });
        await deps.audit.append(tx, operator, {
          action: 'actor.create',
          subjectType: 'actor',
          subject: created.name,
          requestId: String(request.id),
          details: { type: created.type },
        });
        return created;
      });
      return reply.code(201).send(actorView(actor));
    },
  );

  app.get(
    '/v1/audit/entries',
    {
      config: { access: { grants: [{ type: 'agencyOperator', roles: ['auditor'] }] } },
      schema: {
        tags: ['audit'],
        summary: 'Audit log entries in order (seed 003); reading them is itself audited',
        querystring: AuditQuery,
        response: { 200: AuditPage },
      },
    },
    async (request) => {
      const q = request.query;
      const limit = q.limit ?? 100;
      return deps.db.transaction(async (tx) => {
        const entries = await deps.audit.list(tx, {
          limit,
          ...(q.afterSeq ? { afterSeq: q.afterSeq } : {}),
          ...(q.subjectType ? { subjectType: q.subjectType } : {}),
          ...(q.subject ? { subject: q.subject } : {}),
        });
        await deps.audit.append(tx, request.actor!, {
          action: 'audit.read',
          subjectType: 'system',
          requestId: String(request.id),
          details: { returned: entries.length },
        });
        return page(entries, limit);
      });
    },
  );

  app.get(
    '/v1/municipalities/:municipalityCode/audit-entries',
    {
      config: {
        access: {
          grants: ['municipality', { type: 'agencyOperator', roles: ['auditor'] }],
          scope: (req) => ({
            municipalityCode: (req.params as { municipalityCode: string }).municipalityCode,
          }),
        },
      },
      schema: {
        tags: ['audit'],
        summary: "What this municipality's own credentials did (its access record)",
        params: Type.Object({ municipalityCode: LocalGovernmentCode }),
        querystring: Type.Object({
          afterSeq: Type.Optional(Type.String({ pattern: '^[0-9]{1,19}$' })),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
        }),
        response: { 200: AuditPage },
      },
    },
    async (request) => {
      const limit = request.query.limit ?? 100;
      const entries = await deps.audit.list(deps.db, {
        limit,
        actorMunicipalityCode: request.params.municipalityCode,
        ...(request.query.afterSeq ? { afterSeq: request.query.afterSeq } : {}),
      });
      return page(entries, limit);
    },
  );

  app.get(
    '/v1/audit/verification',
    {
      config: { access: { grants: [{ type: 'agencyOperator', roles: ['auditor'] }] } },
      schema: {
        tags: ['audit'],
        summary: 'Recompute the hash chain and report the first broken entry, if any',
        response: {
          200: Type.Object({
            ok: Type.Boolean(),
            entries: Type.Integer(),
            brokenAt: Type.Optional(Type.String()),
            reason: Type.Optional(Type.String()),
            lastSeq: Type.Optional(Type.String()),
          }),
        },
      },
    },
    async (request) => {
      const result = await verifyAuditChain(deps.db);
      await deps.db.transaction((tx) =>
        deps.audit.append(tx, request.actor!, {
          action: 'audit.verify',
          subjectType: 'system',
          requestId: String(request.id),
          details: { ok: result.ok, entries: result.entries },
        }),
      );
      return result;
    },
  );
}

interface LocalGovernmentRow {
  [key: string]: unknown;
  code: string;
  prefecture_code: string;
  kind: (typeof LOCAL_GOVERNMENT_KINDS)[number];
  name: string;
  district: string | null;
  name_kana: string;
  parent_code: string | null;
}

const LG_COLUMNS = 'code, prefecture_code, kind, name, district, name_kana, parent_code';

const lgView = (r: LocalGovernmentRow) => ({
  code: r.code,
  prefectureCode: r.prefecture_code,
  kind: r.kind,
  name: r.name,
  district: r.district,
  nameKana: r.name_kana,
  parentCode: r.parent_code,
});
