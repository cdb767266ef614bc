/**
 * Routes for the provision of 機構保存本人確認情報 to national agencies (住民基本台帳法 第30条の9).
 * Nothing personal travels in a URL: the resident code and the basic-4 are in the body.
 *
 * - `POST /v1/provision/lookups`   by resident code;
 * - `POST /v1/provision/searches`  by the basic-4 (name + date of birth, narrowed by sex/address);
 * - `POST /v1/provision/bulk`      NDJSON in, NDJSON out: one result line per request line, in order;
 * - `GET  /v1/provision/purposes`  the legal purposes (data) and the caller's registrations.
 */
import { Type } from '@sinclair/typebox';
import type { Database } from '../platform/db.ts';
import { AppError, isAppError } from '../platform/errors.ts';
import type { App } from '../platform/http.ts';
import { ResidentCode } from './registry.routes.ts';
import {
  PROVISION_ITEMS,
  type ProvidedRecord,
  type ProvisionService,
  SEARCH_LIMIT,
} from './provision.service.ts';

export interface ProvisionRouteDeps {
  db: Database;
  provision: ProvisionService;
}

/** Bulk limits: lines per file and bytes per file. */
export const BULK_MAX_LINES = 10_000;
export const BULK_MAX_BYTES = 16 * 1024 * 1024;
const BULK_MAX_LINE_BYTES = 2048;

const Purpose = Type.String({ pattern: '^[A-Za-z0-9.-]{1,64}$', description: '利用目的 code' });
const DateString = Type.String({ pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' });
const Sex = Type.Union([Type.Literal('male'), Type.Literal('female')]);

const ProvidedView = Type.Object(
  Object.fromEntries(PROVISION_ITEMS.map((i) => [i, Type.Optional(Type.String())])),
  { additionalProperties: false, description: 'only the items the purpose may receive' },
);

const LookupBody = Type.Object(
  { purpose: Purpose, residentCode: ResidentCode },
  { additionalProperties: false },
);
const SearchBody = Type.Object(
  {
    purpose: Purpose,
    name: Type.String({ minLength: 1, maxLength: 60 }),
    birthDate: DateString,
    sex: Type.Optional(Sex),
    address: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  },
  { additionalProperties: false },
);

type BulkLine =
  | { ref: string; purpose: string; residentCode: string }
  | {
      ref: string;
      purpose: string;
      name: string;
      birthDate: string;
      sex?: 'male' | 'female';
      address?: string;
    };

const str = (o: Record<string, unknown>, k: string): string | undefined =>
  typeof o[k] === 'string' ? o[k] : undefined;

/** Checks one bulk line; returns the request or an error code (never echoing its content). */
function parseBulkLine(text: string): BulkLine | { error: string; ref: string | null } {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { error: 'provision.bulk-line-not-json', ref: null };
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) {
    return { error: 'provision.bulk-line-not-object', ref: null };
  }
  const o = v as Record<string, unknown>;
  const ref = str(o, 'ref');
  if (!ref || !/^[A-Za-z0-9._-]{1,64}$/.test(ref))
    return { error: 'provision.bulk-bad-ref', ref: null };
  const purpose = str(o, 'purpose');
  if (!purpose) return { error: 'provision.bulk-missing-purpose', ref };
  const known = new Set(['ref', 'purpose', 'residentCode', 'name', 'birthDate', 'sex', 'address']);
  if (Object.keys(o).some((k) => !known.has(k)))
    return { error: 'provision.bulk-unknown-field', ref };
  const residentCode = str(o, 'residentCode');
  if (residentCode !== undefined) {
    if (!/^[0-9]{11}$/.test(residentCode) || 'name' in o || 'birthDate' in o) {
      return { error: 'provision.bulk-bad-lookup', ref };
    }
    return { ref, purpose, residentCode };
  }
  const name = str(o, 'name');
  const birthDate = str(o, 'birthDate');
  const sex = str(o, 'sex');
  const address = str(o, 'address');
  if (
    !name ||
    name.length > 60 ||
    !birthDate ||
    !/^[0-9]{4}-[0-9]{2}-[0-9]{2}$/.test(birthDate) ||
    (sex !== undefined && sex !== 'male' && sex !== 'female') ||
    (address !== undefined && (address.length === 0 || address.length > 200))
  ) {
    return { error: 'provision.bulk-bad-search', ref };
  }
  return {
    ref,
    purpose,
    name,
    birthDate,
    ...(sex === 'male' || sex === 'female' ? { sex } : {}),
    ...(address !== undefined ? { address } : {}),
  };
}

export async function provisionRoutes(app: App, deps: ProvisionRouteDeps): Promise<void> {
  const { db, provision } = deps;
  const agencies = { grants: ['nationalAgency'] as const };

  app.get(
    '/v1/provision/purposes',
    {
      config: {
        access: {
          grants: ['nationalAgency', { type: 'agencyOperator', roles: ['registry', 'auditor'] }],
        },
      },
      schema: {
        tags: ['provision'],
        summary: 'The legal purposes (住基法 第30条の9, 別表第一) and the items each may receive',
        response: {
          200: Type.Object({
            purposes: Type.Array(
              Type.Object(
                {
                  code: Type.String(),
                  nameJa: Type.String(),
                  legalBasis: Type.String(),
                  items: Type.Array(Type.String()),
                  registered: Type.Boolean(),
                },
                { additionalProperties: false },
              ),
            ),
          }),
        },
      },
    },
    async (request) => ({
      purposes: [...provision.purposes.values()].map((p) => ({
        code: p.code,
        nameJa: p.nameJa,
        legalBasis: p.legalBasis,
        items: [...p.items],
        registered: request.actor!.purposes.includes(p.code),
      })),
    }),
  );

  app.post(
    '/v1/provision/lookups',
    {
      config: { access: agencies },
      schema: {
        tags: ['provision'],
        summary:
          '機構保存本人確認情報 of the person holding a resident code, for a registered purpose',
        body: LookupBody,
        response: { 200: ProvidedView },
      },
    },
    async (request) => {
      const found = await db.transaction((tx) =>
        provision.lookup(tx, request.actor!, {
          purpose: request.body.purpose,
          residentCode: request.body.residentCode,
          requestId: String(request.id),
        }),
      );
      if (!found) {
        throw new AppError('notFound', 'provision.not-found', 'no person holds that resident code');
      }
      return found;
    },
  );

  app.post(
    '/v1/provision/searches',
    {
      config: { access: agencies },
      schema: {
        tags: ['provision'],
        summary: `Search by the basic-4 (name and date of birth; sex and address narrow it); at most ${SEARCH_LIMIT} matches`,
        body: SearchBody,
        response: {
          200: Type.Object(
            { matches: Type.Array(ProvidedView), capped: Type.Boolean() },
            { additionalProperties: false },
          ),
        },
      },
    },
    async (request) => {
      const b = request.body;
      return db.transaction((tx) =>
        provision.search(tx, request.actor!, {
          purpose: b.purpose,
          criteria: { name: b.name, birthDate: b.birthDate, sex: b.sex, address: b.address },
          requestId: String(request.id),
        }),
      );
    },
  );

  await app.register(async (scope: App) => {
    scope.addContentTypeParser(
      'application/x-ndjson',
      { parseAs: 'string', bodyLimit: BULK_MAX_BYTES },
      (_request, body, done) => done(null, body),
    );
    scope.post(
      '/v1/provision/bulk',
      {
        bodyLimit: BULK_MAX_BYTES,
        config: { access: agencies },
        schema: {
          tags: ['provision'],
          summary: `Bulk provision: NDJSON in (one lookup or search per line, each with a ref), NDJSON out in the same order; at most ${BULK_MAX_LINES} lines`,
          consumes: ['application/x-ndjson'],
          body: Type.String({ description: 'application/x-ndjson' }),
          response: { 200: Type.String({ description: 'application/x-ndjson' }) },
        },
      },
      async (request, reply) => {
        const lines = request.body
          .split('\n')
          .filter((l, i, all) => l !== '' || i < all.length - 1);
        if (lines.length === 0) {
          throw new AppError('badRequest', 'provision.bulk-empty', 'the file has no lines');
        }
        if (lines.length > BULK_MAX_LINES) {
          throw new AppError(
            'payloadTooLarge',
            'provision.bulk-too-many-lines',
            `at most ${BULK_MAX_LINES} lines per file`,
          );
        }
        const actor = request.actor!;
        const requestId = String(request.id);
        const out = await db.transaction(async (tx) => {
          const results: string[] = [];
          for (const [i, raw] of lines.entries()) {
            const line = i + 1;
            const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
            if (Buffer.byteLength(text) > BULK_MAX_LINE_BYTES) {
              results.push(
                JSON.stringify({ line, ref: null, error: 'provision.bulk-line-too-long' }),
              );
              continue;
            }
            const req = parseBulkLine(text);
            if ('error' in req) {
              results.push(JSON.stringify({ line, ref: req.ref, error: req.error }));
              continue;
            }
            try {
              let result:
                { record: ProvidedRecord | null } | { matches: ProvidedRecord[]; capped: boolean };
              if ('residentCode' in req) {
                const record = await provision.lookup(tx, actor, {
                  purpose: req.purpose,
                  residentCode: req.residentCode,
                  channel: 'bulk',
                  requestId,
                });
                result = { record };
              } else {
                result = await provision.search(tx, actor, {
                  purpose: req.purpose,
                  criteria: req,
                  channel: 'bulk',
                  requestId,
                });
              }
              results.push(JSON.stringify({ line, ref: req.ref, ...result }));
            } catch (err) {
              if (!isAppError(err) || err.kind === 'internal') throw err;
              results.push(JSON.stringify({ line, ref: req.ref, error: err.code }));
            }
          }
          return results;
        });
        return reply.type('application/x-ndjson').send(out.join('\n') + '\n');
      },
    );
  });
}
