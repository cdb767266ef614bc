/**
 * The HTTP edge: Fastify with one JSON schema per route (which also generates
 * `/openapi.json`), bearer-token authentication, per-route access rules, RFC 9457 problem
 * documents for every error, request-size limits and structured logs without personal data.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Actor, ActorStore } from './actors.ts';
import { type AccessRule, checkScope, describeRule, grantAllows } from './access.ts';
import type { AuditLog } from './audit.ts';
import type { Database } from './db.ts';
import { AppError, type FieldError, isAppError, safeErrorForLog, toProblem } from './errors.ts';
import type { LogLevel } from '../config.ts';
import { verifierRefusalError } from '../verifiers/kinds.ts';

// ajv-formats is CommonJS: its default export arrives wrapped under ESM.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: AccessRule;
  }
  interface FastifyRequest {
    actor: Actor | null;
  }
  interface FastifyInstance {
    /** Every registered route with its access rule (permission-matrix tests, docs). */
    routeTable: RouteEntry[];
  }
}

export interface RouteEntry {
  method: string;
  url: string;
  access: AccessRule | null;
}

export type App = FastifyInstance<
  Server,
  IncomingMessage,
  ServerResponse,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

export const ProblemSchema = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    code: Type.String({ description: 'Stable machine-readable error code' }),
    detail: Type.String(),
    requestId: Type.Optional(Type.String()),
    errors: Type.Optional(
      Type.Array(
        Type.Object({
          pointer: Type.String(),
          message: Type.String(),
          line: Type.Optional(Type.Integer()),
        }),
      ),
    ),
  },
  { $id: 'Problem', additionalProperties: true, description: 'RFC 9457 problem details' },
);

export interface EdgeDeps {
  db: Database;
  actors: ActorStore;
  audit: AuditLog;
  logLevel: LogLevel;
  bodyLimitBytes: number;
  publicUrl: string;
  version: string;
}

const PROBLEM_JSON = 'application/problem+json; charset=utf-8';

function sendProblem(reply: FastifyReply, err: AppError): FastifyReply {
  if (err.kind === 'unauthorized') reply.header('www-authenticate', 'Bearer realm="kiban"');
  if (err.code === DATABASE_CONTENTION) reply.header('retry-after', '1');
  return reply
    .code(err.status)
    .type(PROBLEM_JSON)
    .send(toProblem(err, String(reply.request.id)));
}

/**
 * SQLSTATEs of a transaction the database rolled back in a conflict with a concurrent one:
 * serialization failure, deadlock detected, lock not available. Nothing of it was kept, and
 * the same request sent again normally succeeds: the client is told so (503, Retry-After),
 * not handed an internal error.
 */
const CONTENTION_SQLSTATES: ReadonlySet<string> = new Set(['40001', '40P01', '55P03']);
export const DATABASE_CONTENTION = 'database.contention';

const sqlState = (err: unknown): string | null => {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : null;
};

/** Converts anything thrown in a request into an AppError; internal text never leaves. */
function classify(err: FastifyError | Error): AppError {
  if (isAppError(err)) return err;
  const fe = err as FastifyError;
  if (fe.validation) {
    const errors: FieldError[] = fe.validation.map((v) => ({
      pointer:
        (fe.validationContext ? `/${fe.validationContext}` : '') +
        (v.instancePath || '') +
        (v.keyword === 'required' && typeof v.params['missingProperty'] === 'string'
          ? `/${v.params['missingProperty']}`
          : v.keyword === 'additionalProperties' &&
              typeof v.params['additionalProperty'] === 'string'
            ? `/${v.params['additionalProperty']}`
            : ''),
      message: v.message ?? 'is invalid',
    }));
    return new AppError('badRequest', 'request.invalid', 'the request does not match the schema', {
      errors,
    });
  }
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AppError('payloadTooLarge', 'request.too-large', 'the request body is too large');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new AppError(
        'unsupportedMediaType',
        'request.unsupported-media-type',
        'send application/json',
      );
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new AppError('badRequest', 'request.malformed-json', 'the body is not valid JSON');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new AppError('badRequest', 'request.bad-length', 'content-length does not match');
    default:
      break;
  }
  const state = sqlState(err);
  if (state !== null && CONTENTION_SQLSTATES.has(state)) {
    return new AppError(
      'unavailable',
      DATABASE_CONTENTION,
      'the request met a concurrent change and was rolled back; send it again',
    );
  }
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new AppError('badRequest', 'request.bad', 'the request could not be processed');
  }
  return new AppError('internal', 'internal', 'an internal error occurred; quote the requestId');
}

function bearerToken(request: FastifyRequest): string | null {
  const h = request.headers.authorization;
  if (!h) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m?.[1] ?? null;
}

export async function createEdge(deps: EdgeDeps): Promise<App> {
  const app = Fastify({
    bodyLimit: deps.bodyLimitBytes,
    genReqId: () => randomUUID(),
    logController: new LogController({
      requestIdLogLabel: 'requestId',
      disableRequestLogging: true,
    }),
    logger: {
      level: deps.logLevel,
      // Never log credentials or bodies; log the route pattern, not the URL.
      redact: ['req.headers.authorization', 'headers.authorization'],
      serializers: {
        err: (e: FastifyError) => {
          const safe = safeErrorForLog(e);
          const text = (k: string): string => (typeof safe[k] === 'string' ? safe[k] : '');
          return { ...safe, type: text('type'), message: text('message'), stack: text('stack') };
        },
      },
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // Bodies are validated exactly as sent (no type coercion: a number is not a string);
  // path, query and headers arrive as text and are coerced to their declared types.
  const ajvFor = (coerce: boolean): Ajv => {
    const ajv = new Ajv({
      allErrors: true,
      coerceTypes: coerce ? 'array' : false,
      removeAdditional: false,
      useDefaults: true,
      strict: false,
    });
    addFormats(ajv);
    return ajv;
  };
  const bodyAjv = ajvFor(false);
  const textAjv = ajvFor(true);
  const sharedAdded = new Set<string>();
  app.setValidatorCompiler(({ schema, httpPart }) => {
    for (const [id, shared] of Object.entries(app.getSchemas())) {
      if (sharedAdded.has(id)) continue;
      sharedAdded.add(id);
      bodyAjv.addSchema(shared as object, id);
      textAjv.addSchema(shared as object, id);
    }
    return (httpPart === 'body' ? bodyAjv : textAjv).compile(schema);
  });

  // JSON only: Fastify's built-in text/plain parser would hand a string to the body schema.
  app.removeContentTypeParser('text/plain');
  app.decorateRequest('actor', null);
  const routeTable: RouteEntry[] = [];
  app.decorate('routeTable', routeTable);
  app.addSchema(ProblemSchema);

  app.addHook('onRoute', (route) => {
    const access = route.config?.access;
    if (!access && !route.url.startsWith('/docs')) {
      throw new Error(`route ${String(route.method)} ${route.url} declares no access rule`);
    }
    for (const method of [route.method].flat()) {
      if (method !== 'HEAD') routeTable.push({ method, url: route.url, access: access ?? null });
    }
    const problemRef = Type.Ref(ProblemSchema);
    const schema = (route.schema ??= {});
    const response = (schema.response ??= {}) as Record<string, unknown>;
    for (const status of ['4xx', '5xx']) response[status] ??= problemRef;
    if (access && !access.public) {
      (schema as Record<string, unknown>)['security'] = [{ bearer: [] }];
      // onRoute also runs for the HEAD twin of a GET route, which shares this schema object.
      const allowed = `Allowed: ${describeRule(access)}.`;
      const desc = (schema as Record<string, unknown>)['description'];
      if (typeof desc !== 'string' || !desc.endsWith(allowed)) {
        (schema as Record<string, unknown>)['description'] =
          `${typeof desc === 'string' ? `${desc}\n\n` : ''}${allowed}`;
      }
    }
  });

  // Authentication and actor-type check run before the body is read.
  app.addHook('onRequest', async (request) => {
    const access = request.routeOptions.config.access;
    if (!access || access.public) return;
    const token = bearerToken(request);
    if (!token) {
      throw new AppError(
        'unauthorized',
        'auth.token-missing',
        'send Authorization: Bearer <token>',
      );
    }
    const actor = await deps.actors.authenticate(deps.db, token);
    if (!actor) {
      throw new AppError(
        'unauthorized',
        'auth.token-invalid',
        'the token is unknown, expired or revoked',
      );
    }
    request.actor = actor;
    // A verifier credential whose verifier is suspended, ended or outside its agreement
    // dates (joined in the token lookup) is refused on every route.
    if (actor.verifierRefusal) {
      await auditDenied(deps, request, actor, actor.verifierRefusal);
      throw verifierRefusalError(actor.verifierRefusal);
    }
    if (!access.grants.some((g) => grantAllows(g, actor))) {
      await auditDenied(deps, request, actor, 'actor type or role not permitted');
      throw new AppError('forbidden', 'auth.forbidden', 'this actor may not call this route');
    }
  });

  // Scope (which municipality / prefecture the request acts for) needs the validated body.
  app.addHook('preHandler', async (request) => {
    const access = request.routeOptions.config.access;
    if (!access || access.public || !access.scope || !request.actor) return;
    const decision = checkScope(
      request.actor,
      access.scope({ params: request.params, body: request.body, query: request.query }),
    );
    if (!decision.ok) {
      await auditDenied(deps, request, request.actor, decision.code);
      throw new AppError('forbidden', decision.code, decision.detail);
    }
  });

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', String(request.id));
    reply.header('cache-control', reply.getHeader('cache-control') ?? 'no-store');
    reply.header('x-content-type-options', 'nosniff');
  });

  const LOGS_INFO = new Set(['trace', 'debug', 'info']);
  app.addHook('onResponse', async (request, reply) => {
    // The hot paths (OCSP, CRL) run at thousands a second: build nothing when not logging.
    if (!LOGS_INFO.has(request.log.level)) return;
    request.log.info(
      {
        method: request.method,
        route: request.routeOptions.url ?? '(unmatched)',
        status: reply.statusCode,
        actor: request.actor?.name,
        ms: Math.round(reply.elapsedTime),
      },
      'request',
    );
  });

  app.setErrorHandler(async (err: FastifyError, request, reply) => {
    const appErr = classify(err);
    // A 403 raised by a handler (a domain permission rule) is audited like the edge's own.
    if (appErr.kind === 'forbidden' && request.actor && !deniedAudited.has(request)) {
      try {
        await auditDenied(deps, request, request.actor, appErr.code);
      } catch (auditErr) {
        request.log.error({ err: auditErr }, 'internal error: could not audit a denial');
        return sendProblem(reply, classify(new Error('audit failed')));
      }
    }
    if (appErr.kind === 'internal') {
      request.log.error({ err }, 'internal error');
    } else if (appErr.code === DATABASE_CONTENTION) {
      request.log.warn({ err }, 'rolled back in a conflict with a concurrent transaction');
    }
    return sendProblem(reply, appErr);
  });

  app.setNotFoundHandler(async (request, reply) =>
    sendProblem(
      reply,
      new AppError(
        'notFound',
        'route.not-found',
        `no route ${request.method} ${request.routeOptions.url ?? 'for this path'}`,
      ),
    ),
  );

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Kiban API',
        version: deps.version,
        description:
          'Kiban — national identity backbone (住基ネット, My Number, JPKI). Every /v1 route needs `Authorization: Bearer <token>`; errors are RFC 9457 problem documents with a stable `code`.',
      },
      servers: [{ url: deps.publicUrl }],
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      },
    },
    refResolver: {
      buildLocalReference: (json, _base, _frag, i) =>
        typeof json['$id'] === 'string' ? json['$id'] : `def-${i}`,
    },
  });
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    uiConfig: { docExpansion: 'list', deepLinking: true },
    staticCSP: true,
  });

  app.get(
    '/openapi.json',
    {
      config: { access: { public: true, why: 'API description' } },
      schema: { hide: true },
    },
    async () => app.swagger(),
  );

  return app;
}

/** Requests whose denial is already in the audit log (the edge's hooks record their own). */
const deniedAudited = new WeakSet<FastifyRequest>();

async function auditDenied(
  deps: EdgeDeps,
  request: FastifyRequest,
  actor: Actor,
  reason: string,
): Promise<void> {
  deniedAudited.add(request);
  await deps.db.transaction((tx) =>
    deps.audit.append(tx, actor, {
      action: `${request.method} ${request.routeOptions.url ?? ''}`,
      subjectType: 'system',
      outcome: 'denied',
      requestId: String(request.id),
      details: { reason },
    }),
  );
}
