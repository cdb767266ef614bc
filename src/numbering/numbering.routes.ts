/**
 * Numbering routes: 個人番号とすべき番号の生成及び市町村長に対する通知 (業務方法書第6条第1号).
 */
import { Type } from '@sinclair/typebox';
import type { Actor } from '../platform/actors.ts';
import type { AuditLog } from '../platform/audit.ts';
import type { Database, Queryable } from '../platform/db.ts';
import { AppError } from '../platform/errors.ts';
import type { App } from '../platform/http.ts';
import { ResidentCode } from '../registry/registry.routes.ts';
import type { ResidentCodePool } from '../registry/resident-codes.ts';
import { isValidResidentCode } from './check-digits.ts';
import type { NumberingService } from './numbering.service.ts';

export interface NumberingRouteDeps {
  db: Database;
  audit: AuditLog;
  residentCodes: ResidentCodePool;
  numbering: NumberingService;
}

const MyNumberRequest = Type.Union([
  Type.Object({ residentCode: ResidentCode }, { additionalProperties: false }),
  Type.Object(
    {
      residentCode: ResidentCode,
      renumber: Type.Literal(true),
      reason: Type.String({ minLength: 1, maxLength: 500 }),
    },
    { additionalProperties: false },
  ),
]);

const MyNumberResponse = Type.Object(
  { myNumber: Type.String({ pattern: '^[0-9]{12}$', description: '個人番号 (12 digits)' }) },
  { additionalProperties: false },
);

/**
 * A municipality may ask for the My Number of a code its own pool handed out. The code must be
 * in use: not still pooled and not retired.
 */
async function assertUsableCode(
  db: Queryable,
  pool: ResidentCodePool,
  actor: Actor,
  code: string,
): Promise<void> {
  if (!isValidResidentCode(code)) {
    throw new AppError(
      'badRequest',
      'resident-code.bad-check-digit',
      'the resident code fails its check digit',
      {
        errors: [{ pointer: '/body/residentCode', message: 'check digit does not match' }],
      },
    );
  }
  const info = await pool.info(db, code);
  if (!info) throw new AppError('notFound', 'resident-code.not-found', 'no such resident code');
  if (info.municipalityCode !== actor.municipalityCode) {
    throw new AppError(
      'forbidden',
      'resident-code.other-municipality',
      'this resident code belongs to another municipality',
    );
  }
  if (info.state === 'pooled') {
    throw new AppError('conflict', 'resident-code.not-issued', 'this code has not been handed out');
  }
  if (info.state === 'retired') {
    throw new AppError(
      'conflict',
      'resident-code.retired',
      'this code was retired by a resident-code change',
    );
  }
}

export async function numberingRoutes(app: App, deps: NumberingRouteDeps): Promise<void> {
  app.post(
    '/v1/numbering/my-numbers',
    {
      config: { access: { grants: ['municipality'] } },
      schema: {
        tags: ['numbering'],
        summary: '個人番号の生成: the My Number for a resident code (or a new one: 個人番号の変更)',
        description:
          'Returns the My Number generated from the resident code (番号法第8条), creating it on the first request (201) and returning the same number afterwards (200). With `renumber: true` and a `reason`, retires the number and issues a fresh one (番号法第7条第2項).',
        body: MyNumberRequest,
        response: { 200: MyNumberResponse, 201: MyNumberResponse },
      },
    },
    async (request, reply) => {
      const actor = request.actor;
      if (!actor?.municipalityCode) {
        throw new AppError(
          'forbidden',
          'auth.forbidden',
          'only a municipality requests My Numbers',
        );
      }
      const municipalityCode = actor.municipalityCode;
      const body = request.body;
      const result = await deps.db.transaction(async (tx) => {
        await assertUsableCode(tx, deps.residentCodes, actor, body.residentCode);
        if ('renumber' in body) {
          const r = await deps.numbering.renumber(
            tx,
            body.residentCode,
            municipalityCode,
            body.reason,
          );
          await deps.audit.append(tx, actor, {
            action: 'numbering.my-number.renumber',
            subjectType: 'resident',
            subject: body.residentCode,
            requestId: String(request.id),
          });
          return { myNumber: r.myNumber, created: true };
        }
        const r = await deps.numbering.issue(tx, body.residentCode, municipalityCode);
        await deps.audit.append(tx, actor, {
          action: r.created ? 'numbering.my-number.generate' : 'numbering.my-number.read',
          subjectType: 'resident',
          subject: body.residentCode,
          requestId: String(request.id),
        });
        return r;
      });
      return reply.code(result.created ? 201 : 200).send({ myNumber: result.myNumber });
    },
  );
}
