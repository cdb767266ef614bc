/**
 * Verifier routes (署名検証者等 / 利用者証明検証者, 公的個人認証法 第17条・第18条・第36条・第37条):
 * agency operators with the `ca` role register and manage verifiers; auditors may read them
 * and their provision counts (提供の状況, 第41条) with the fee computed from the fee rules.
 */
import { Type } from '@sinclair/typebox';
import type { Actor } from '../platform/actors.ts';
import type { Database, Tx } from '../platform/db.ts';
import { AppError } from '../platform/errors.ts';
import type { App } from '../platform/http.ts';
import {
  AgreementBody,
  CredentialBody,
  CredentialView,
  FeeRulesView,
  NewVerifierBody,
  ProvisionQuery,
  ProvisionReportView,
  ReasonBody,
  TerminationView,
  VerifierDetail,
  VerifierId,
  VerifierListQuery,
  VerifierView,
} from './verifiers.schemas.ts';
import type { Verifier, VerifierService } from './verifiers.service.ts';

export interface VerifierRouteDeps {
  db: Database;
  verifiers: VerifierService;
}

const manage = { grants: [{ type: 'agencyOperator', roles: ['ca'] }] } as const;
const read = { grants: [{ type: 'agencyOperator', roles: ['ca', 'auditor'] }] } as const;
const Params = Type.Object({ verifierId: VerifierId }, { additionalProperties: false });

const notFound = (): AppError =>
  new AppError('notFound', 'verifier.not-found', 'no verifier has this id');

export async function verifierRoutes(app: App, deps: VerifierRouteDeps): Promise<void> {
  const { db, verifiers } = deps;
  app.addSchema(VerifierView);
  const VerifierRef = Type.Ref(VerifierView);

  app.post(
    '/v1/verifiers',
    {
      config: { access: manage },
      schema: {
        tags: ['verifiers'],
        summary: 'Register a verifier (署名検証者 / 団体署名検証者 / 利用者証明検証者)',
        description:
          '法人番号 with its check digit; one or more kinds; contact; agreement dates (JST, inclusive). A corporation is registered once until that registration ends.',
        body: NewVerifierBody,
        response: { 201: VerifierRef },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const v = await db.transaction((tx) =>
        verifiers.register(
          tx,
          request.actor!,
          {
            legalName: b.legalName,
            corporateNumber: b.corporateNumber,
            kinds: b.kinds,
            contact: b.contact,
            agreementFrom: b.agreementFrom,
            agreementUntil: b.agreementUntil ?? null,
          },
          String(request.id),
        ),
      );
      return reply.code(201).send(v);
    },
  );

  app.get(
    '/v1/verifiers',
    {
      config: { access: read },
      schema: {
        tags: ['verifiers'],
        summary: 'Registered verifiers',
        querystring: VerifierListQuery,
        response: { 200: Type.Object({ verifiers: Type.Array(VerifierRef) }) },
      },
    },
    async (request) => ({
      verifiers: await verifiers.list(db, {
        ...(request.query.status ? { status: request.query.status } : {}),
        ...(request.query.kind ? { kind: request.query.kind } : {}),
      }),
    }),
  );

  app.get(
    '/v1/verifiers/:verifierId',
    {
      config: { access: read },
      schema: {
        tags: ['verifiers'],
        summary: 'One verifier, its credentials and the log of what operators did to it',
        params: Params,
        response: { 200: VerifierDetail },
      },
    },
    async (request) => {
      const id = request.params.verifierId;
      const verifier = await verifiers.get(db, id);
      if (!verifier) throw notFound();
      return {
        verifier,
        credentials: await verifiers.credentials(db, id),
        actions: await verifiers.actions(db, id),
      };
    },
  );

  app.post(
    '/v1/verifiers/:verifierId/credentials',
    {
      config: { access: manage },
      schema: {
        tags: ['verifiers'],
        summary: 'Issue a credential: an actor of one of the verifier’s kinds and its token',
        description:
          'The token is shown once. A kind the verifier is not registered as is refused (verifier.kind-not-held); an ended verifier gets none.',
        params: Params,
        body: CredentialBody,
        response: { 201: CredentialView },
      },
    },
    async (request, reply) => {
      const { verifierId } = request.params;
      const issued = await db.transaction((tx) =>
        verifiers.issueCredential(
          tx,
          request.actor!,
          verifierId,
          {
            kind: request.body.kind,
            name: request.body.name,
            ...(request.body.displayName ? { displayName: request.body.displayName } : {}),
          },
          String(request.id),
        ),
      );
      return reply.code(201).send({
        verifierId,
        name: issued.actor.name,
        kind: request.body.kind,
        token: issued.token,
      });
    },
  );

  const stateChange = (
    path: string,
    summary: string,
    change: (
      tx: Tx,
      actor: Actor,
      id: string,
      reason: string,
      requestId: string,
    ) => Promise<Verifier>,
  ): void => {
    app.post(
      `/v1/verifiers/:verifierId/${path}`,
      {
        config: { access: manage },
        schema: {
          tags: ['verifiers'],
          summary,
          params: Params,
          body: ReasonBody,
          response: { 200: VerifierRef },
        },
      },
      async (request) =>
        db.transaction((tx) =>
          change(
            tx,
            request.actor!,
            request.params.verifierId,
            request.body.reason,
            String(request.id),
          ),
        ),
    );
  };

  stateChange(
    'suspension',
    'Suspend a verifier: its credentials are refused (verifier.suspended) until resumed',
    (tx, actor, id, reason, rid) => verifiers.suspend(tx, actor, id, reason, rid),
  );
  stateChange('resumption', 'Resume a suspended verifier', (tx, actor, id, reason, rid) =>
    verifiers.resume(tx, actor, id, reason, rid),
  );

  app.post(
    '/v1/verifiers/:verifierId/termination',
    {
      config: { access: manage },
      schema: {
        tags: ['verifiers'],
        summary: 'End a verifier for good: every token of its credentials is revoked',
        params: Params,
        body: ReasonBody,
        response: { 200: TerminationView },
      },
    },
    async (request) =>
      db.transaction((tx) =>
        verifiers.terminate(
          tx,
          request.actor!,
          request.params.verifierId,
          request.body.reason,
          String(request.id),
        ),
      ),
  );

  app.post(
    '/v1/verifiers/:verifierId/agreement',
    {
      config: { access: manage },
      schema: {
        tags: ['verifiers'],
        summary: 'Change the agreement dates (renewed, extended or shortened agreement)',
        description:
          'Outside its agreement dates a verifier’s credentials are refused (verifier.outside-agreement).',
        params: Params,
        body: AgreementBody,
        response: { 200: VerifierRef },
      },
    },
    async (request) =>
      db.transaction((tx) =>
        verifiers.changeAgreement(
          tx,
          request.actor!,
          request.params.verifierId,
          request.body,
          String(request.id),
        ),
      ),
  );

  app.get(
    '/v1/verifiers/:verifierId/provisions',
    {
      config: { access: read },
      schema: {
        tags: ['verifiers'],
        summary:
          'Provisions to a verifier per day (JST), kind it acted as and provision kind, with the fee',
        description:
          'Each day is priced by the fee rule in force that day (GET /v1/verifier-fee-rules); a day whose amount the seeds do not set counts as unpriced, never as free. OCSP/CRL counts lag by up to a second.',
        params: Params,
        querystring: ProvisionQuery,
        response: { 200: ProvisionReportView },
      },
    },
    async (request) =>
      verifiers.provisions(db, request.params.verifierId, request.query.from, request.query.to),
  );

  app.get(
    '/v1/verifier-fee-rules',
    {
      config: { access: read },
      schema: {
        tags: ['verifiers'],
        summary: '電子証明書失効情報提供手数料 and other provision fees, as data (seed 002)',
        response: { 200: FeeRulesView },
      },
    },
    async () => ({ rules: await verifiers.feeRules(db) }),
  );
}
