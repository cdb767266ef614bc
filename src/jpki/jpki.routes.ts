/**
 * JPKI routes: the CA certificates and announcements (public), issuance and revocation
 * (municipalities, the CA operators), and the revocation data for registered verifiers only
 * (第18条/第37条: CRLs and OCSP need a verifier credential).
 */
import { Type } from '@sinclair/typebox';
import type { Actor } from '../platform/actors.ts';
import type { AuditLog } from '../platform/audit.ts';
import type { Database } from '../platform/db.ts';
import { AppError, isAppError } from '../platform/errors.ts';
import {
  BATCH_ITEM_LIMIT,
  batchBody,
  batchItemResult,
  refusedItem,
} from '../platform/batch-items.ts';
import type { App } from '../platform/http.ts';
import { toPem } from '../pki/der.ts';
import { ResidentCode } from '../registry/registry.routes.ts';
import type { RegistryService } from '../registry/registry.service.ts';
import type { CaService } from './ca.ts';
import type { CrlPublisher } from './crl-publisher.ts';
import type { CardIssuanceRequest, IssuanceService } from './issuance.ts';
import type { CertificateKind } from './jpki.profiles.ts';
import type { OcspResponderService } from './ocsp-responder.ts';
import type { RegistryRevocation } from './registry-revocation.ts';
import type { RevocationService } from './revocation.ts';
import type { ProvisionLedger } from '../verifiers/provisions.ts';

export interface JpkiRouteDeps {
  db: Database;
  audit: AuditLog;
  registry: RegistryService;
  jpki: JpkiServices;
  /** Counts OCSP/CRL provisions per verifier (buffered: no database write per request). */
  provisions: ProvisionLedger;
}

/** The JPKI context's services, as the composition root builds them. */
export interface JpkiServices {
  cas: CaService;
  issuance: IssuanceService;
  revocations: RevocationService;
  crls: CrlPublisher;
  ocsp: OcspResponderService;
  registryRevocation: RegistryRevocation;
}

const Kind = Type.Union([Type.Literal('sign'), Type.Literal('auth')], {
  description: 'sign: 署名用電子証明書; auth: 利用者証明用電子証明書',
});
const Pem = (description: string) => Type.String({ minLength: 1, maxLength: 16_384, description });
const Serial = Type.String({ pattern: '^[1-9][0-9]{0,18}$', description: '発行の番号 (decimal)' });

const CardIssuance = Type.Object(
  {
    kind: Kind,
    medium: Type.Literal('card', {
      description: '個人番号カード用 (mobile: see /v1/jpki/mobile-certificates)',
    }),
    residentCode: ResidentCode,
    csr: Type.Optional(Pem('PKCS#10 request (PEM); its signature proves possession of the key')),
    publicKey: Type.Optional(
      Pem('SubjectPublicKeyInfo (PEM), as when the terminal writes the key onto the card'),
    ),
  },
  { additionalProperties: false },
);

const CardBatch = batchBody(
  'certificates',
  CardIssuance,
  'each as the body of POST /v1/jpki/certificates (a delivery of cards, both kinds for each)',
);

const CardBatchResult = batchItemResult('POST /v1/jpki/certificates', 'request', {
  serial: Type.Optional(Serial),
  certificate: Type.Optional(Type.String({ description: 'PEM (status 201)' })),
});

const CardBatchIssued = Type.Object(
  {
    issued: Type.Integer(),
    refused: Type.Integer(),
    results: Type.Array(CardBatchResult, { description: 'one per request, in body order' }),
  },
  { additionalProperties: false },
);

const MobileIssuance = Type.Object(
  {
    kind: Kind,
    csr: Pem("the phone key's PKCS#10 request (PEM)"),
    cardCertificate: Pem('the card signing certificate (PEM) whose key signed the application'),
    document: Type.String({
      minLength: 1,
      maxLength: 8192,
      description:
        'base64 of the UTF-8 JSON application: {type: "kiban.jpki.mobile-application/v1", kind, name, birthDate, sex, address, devicePublicKeySha256, signedAt}',
    }),
    signature: Type.String({
      minLength: 1,
      maxLength: 2048,
      description:
        'base64 RSASSA-PKCS1-v1_5 SHA-256 signature over the document bytes by the card signing key',
    }),
  },
  { additionalProperties: false },
);

const Issued = Type.Object(
  { serial: Serial, certificate: Type.String({ description: 'PEM' }) },
  { additionalProperties: false },
);

const Revocation = Type.Object(
  {
    reason: Type.Union(
      [Type.Literal('request'), Type.Literal('lossReport'), Type.Literal('recordError')],
      {
        description:
          'request: 失効申請 (第11条/第30条); lossReport: 紛失の届出; recordError: 記録誤り等 (第13条/第32条, the holder is notified)',
      },
    ),
  },
  { additionalProperties: false },
);

const Revoked = Type.Object(
  {
    serial: Serial,
    reason: Type.String(),
    crlReason: Type.String(),
    revokedAt: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: false },
);

const CaList = Type.Object(
  {
    cas: Type.Array(
      Type.Object(
        {
          kind: Kind,
          generation: Type.Integer(),
          serial: Serial,
          notBefore: Type.String({ format: 'date-time' }),
          notAfter: Type.String({ format: 'date-time' }),
          compromised: Type.Boolean(),
          certificate: Type.String({ description: 'PEM' }),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

const Announcements = Type.Object(
  {
    announcements: Type.Array(
      Type.Object(
        {
          id: Type.String(),
          category: Type.Literal('issuerKeyCompromise'),
          kind: Kind,
          generation: Type.Integer(),
          revokedCount: Type.Integer(),
          announcedAt: Type.String({ format: 'date-time' }),
          text: Type.String(),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

/**
 * 署名検証者 and 団体署名検証者 (署名検証者等, 第18条) read signing-certificate status,
 * 利用者証明検証者 (第37条) authentication status.
 */
const VERIFIER_OF: Record<CertificateKind, readonly Actor['type'][]> = {
  sign: ['signatureVerifier', 'organisationalSignatureVerifier'],
  auth: ['authVerifier'],
};

function assertVerifierFor(actor: Actor | null | undefined, kind: CertificateKind): void {
  if (!actor)
    throw new AppError('unauthorized', 'auth.token-missing', 'send Authorization: Bearer <token>');
  if (actor.type === 'agencyOperator') return;
  if (!VERIFIER_OF[kind].includes(actor.type)) {
    throw new AppError(
      'forbidden',
      'jpki.wrong-verifier',
      kind === 'sign'
        ? 'signing-certificate status is given to signature verifiers (署名検証者)'
        : 'authentication-certificate status is given to authentication verifiers (利用者証明検証者)',
    );
  }
}

const verifierAccess = {
  grants: [
    'signatureVerifier',
    'organisationalSignatureVerifier',
    'authVerifier',
    { type: 'agencyOperator', roles: ['ca'] },
  ],
} as const;

/** Neither or both of csr and publicKey. */
const keySourceError = (at: string): AppError =>
  new AppError('badRequest', 'jpki.key-source', 'send exactly one of csr or publicKey', {
    errors: [{ pointer: at, message: 'exactly one of csr, publicKey' }],
  });

export async function jpkiRoutes(app: App, deps: JpkiRouteDeps): Promise<void> {
  const { db } = deps;
  const { cas, issuance, revocations, crls, ocsp } = deps.jpki;

  app.addContentTypeParser(
    'application/ocsp-request',
    { parseAs: 'buffer', bodyLimit: 8192 },
    (_req, body, done) => done(null, body),
  );

  app.get(
    '/v1/jpki/ca',
    {
      config: {
        access: { public: true, why: 'CA certificates are trust anchors anyone may fetch' },
      },
      schema: {
        tags: ['jpki'],
        summary: 'Every JPKI CA certificate, all generations (認証局の自己署名証明書)',
        response: { 200: CaList },
      },
    },
    async () => ({
      cas: (await cas.list(db)).map((c) => ({
        kind: c.kind,
        generation: c.generation,
        serial: c.serial.toString(),
        notBefore: c.notBefore.toISOString(),
        notAfter: c.notAfter.toISOString(),
        compromised: c.compromisedAt !== null,
        certificate: toPem(c.certificate, 'CERTIFICATE'),
      })),
    }),
  );

  app.get(
    '/v1/jpki/announcements',
    {
      config: { access: { public: true, why: '公示 (第14条第2項/第33条第2項) is public by law' } },
      schema: {
        tags: ['jpki'],
        summary: 'Public announcements: issuer keys compromised and the certificates they voided',
        response: { 200: Announcements },
      },
    },
    async () => {
      const r = await db.query<{
        id: string;
        kind: CertificateKind;
        generation: number;
        revoked_count: string;
        announced_at: Date;
      }>(
        `SELECT id::text AS id, kind, generation, revoked_count::text AS revoked_count, announced_at
           FROM jpki_announcements ORDER BY jpki_announcements.id`,
      );
      return {
        announcements: r.rows.map((a) => ({
          id: a.id,
          category: 'issuerKeyCompromise' as const,
          kind: a.kind,
          generation: a.generation,
          revokedCount: Number(a.revoked_count),
          announcedAt: a.announced_at.toISOString(),
          text: `${a.kind === 'sign' ? '署名用' : '利用者証明用'}電子証明書発行者署名符号（第${a.generation}世代）の漏えい等により、当該符号で発行された電子証明書${a.revoked_count}件の効力が失われました。`,
        })),
      };
    },
  );

  app.post(
    '/v1/jpki/certificates',
    {
      config: { access: { grants: ['municipality'] } },
      schema: {
        tags: ['jpki'],
        summary:
          '個人番号カード用電子証明書の発行: a signing or authentication certificate for a resident',
        description:
          'By the resident’s municipality (住所地市町村長, 第3条/第22条). Exactly one of `csr` (proof of possession is checked) or `publicKey`. For `sign`, the 基本4情報 come from the registry. A new certificate supersedes the holder’s previous one of the same kind (revoked, reason superseded).',
        body: CardIssuance,
        response: { 201: Issued },
      },
    },
    async (request, reply) => {
      const body = request.body;
      if ((body.csr === undefined) === (body.publicKey === undefined)) {
        throw keySourceError('/body');
      }
      const issued = await issuance.issueForCard(
        db,
        request.actor!,
        {
          kind: body.kind,
          residentCode: body.residentCode,
          key: body.csr !== undefined ? { csr: body.csr } : { publicKey: body.publicKey! },
        },
        String(request.id),
      );
      return reply.code(201).send(issued);
    },
  );

  app.post(
    // `::` is a literal colon for the router: the URL is /v1/jpki/certificates:batch.
    '/v1/jpki/certificates::batch',
    {
      // A thousand requests with PKCS#10 of 4096-bit keys fit.
      bodyLimit: 4 * 1024 * 1024,
      config: { access: { grants: ['municipality'] } },
      schema: {
        tags: ['jpki'],
        summary: '個人番号カード用電子証明書の一括発行: certificates for many cards in one request',
        description: [
          `Up to ${BATCH_ITEM_LIMIT} requests, each exactly as the body of \`POST /v1/jpki/certificates\` and handled exactly as that route would (same checks, audit entries, issuance records and supersession), for a municipality setting up a delivery of cards at once.`,
          'Each request is answered on its own, in body order: `status` is what the single route would have answered (201 with `serial` and `certificate`, or the refusal’s status with its `code`, `detail` and `errors`). A refused request does not stop the others. The answer is 200 once every request has its result.',
        ].join('\n\n'),
        body: CardBatch,
        response: { 200: CardBatchIssued },
      },
    },
    async (request) => {
      const certificates = request.body.certificates;
      // Neither or both of csr and publicKey: refused here, as the single route does.
      const refused = new Map<number, AppError>();
      const toIssue: { req: CardIssuanceRequest; at: string }[] = [];
      for (const [index, c] of certificates.entries()) {
        const at = `/body/certificates/${index}`;
        if ((c.csr === undefined) === (c.publicKey === undefined)) {
          refused.set(index, keySourceError(at));
          continue;
        }
        const key = c.csr !== undefined ? { csr: c.csr } : { publicKey: c.publicKey ?? '' };
        toIssue.push({ req: { kind: c.kind, residentCode: c.residentCode, key }, at });
      }
      const outcomes = await issuance.issueForCards(
        db,
        request.actor!,
        toIssue,
        String(request.id),
      );
      let next = 0;
      const results = certificates.map((_, index) => {
        const error = refused.get(index);
        const outcome = error ? { ok: false as const, error } : outcomes[next++]!;
        if (outcome.ok) return { status: 201, ...outcome.value };
        if (isAppError(outcome.error)) return refusedItem(outcome.error);
        request.log.error({ err: outcome.error }, 'internal error in a card batch');
        return { status: 500, code: 'internal', detail: 'internal error; apply again' };
      });
      const issued = results.filter((r) => r.status === 201).length;
      return { issued, refused: results.length - issued, results };
    },
  );

  app.post(
    '/v1/jpki/mobile-certificates',
    {
      config: {
        access: {
          public: true,
          why: 'the applicant authenticates with their card signing key (第16条の2第2項, 第35条の2第2項)',
        },
      },
      schema: {
        tags: ['jpki'],
        summary:
          '移動端末設備用電子証明書の発行: a smartphone certificate, applied for with the card signing key',
        body: MobileIssuance,
        response: { 201: Issued },
      },
    },
    async (request, reply) => {
      const issued = await issuance.issueForMobile(
        db,
        { id: null, type: 'system', name: 'mobile-applicant' },
        request.body,
        String(request.id),
      );
      return reply.code(201).send(issued);
    },
  );

  app.post(
    '/v1/jpki/certificates/:serial/revocation',
    {
      config: { access: { grants: ['municipality', { type: 'agencyOperator', roles: ['ca'] }] } },
      schema: {
        tags: ['jpki'],
        summary: '失効: revoke a certificate (by the holder’s municipality or a CA operator)',
        params: Type.Object({ serial: Serial }),
        body: Revocation,
        response: { 201: Revoked },
      },
    },
    async (request, reply) => {
      const actor = request.actor!;
      const serial = BigInt(request.params.serial);
      const record = await db.transaction(async (tx) => {
        if (actor.type === 'municipality') {
          const holder = await tx.query<{ person_id: string }>(
            'SELECT person_id FROM jpki_certificates WHERE serial = $1',
            [serial.toString()],
          );
          const personId = holder.rows[0]?.person_id;
          const latest = personId ? await deps.registry.latestOf(tx, personId) : null;
          if (!latest || latest.municipalityCode !== actor.municipalityCode) {
            // Whether a serial exists elsewhere is not this municipality's business.
            throw new AppError(
              'notFound',
              'jpki.certificate-not-found',
              'no certificate of your residents has this serial',
            );
          }
        }
        return revocations.revoke(tx, actor, {
          serial,
          category: request.body.reason,
          requestId: String(request.id),
        });
      });
      return reply.code(201).send({
        serial: record.serial,
        reason: record.category,
        crlReason: record.crlReason,
        revokedAt: record.revokedAt.toISOString(),
      });
    },
  );

  app.post(
    '/v1/jpki/crls/publication',
    {
      config: { access: { grants: [{ type: 'agencyOperator', roles: ['ca'] }] } },
      schema: {
        tags: ['jpki'],
        summary:
          '失効情報ファイルの作成: publish every CRL partition and ARL now (the scheduler does it daily)',
        response: {
          201: Type.Object(
            {
              crls: Type.Integer(),
              entries: Type.Integer(),
              byCa: Type.Array(
                Type.Object(
                  {
                    kind: Kind,
                    generation: Type.Integer(),
                    crls: Type.Integer(),
                    entries: Type.Integer(),
                  },
                  { additionalProperties: false },
                ),
              ),
            },
            { additionalProperties: false },
          ),
        },
      },
    },
    async (request, reply) => reply.code(201).send(await crls.publish(db, request.actor!)),
  );

  const crlHandler = async (
    actor: Actor | null | undefined,
    kind: CertificateKind,
    file: string,
    generation: number | undefined,
  ): Promise<Buffer> => {
    assertVerifierFor(actor, kind);
    const m = /^(arl|[0-9]{6})\.crl$/.exec(file);
    if (!m)
      throw new AppError(
        'notFound',
        'jpki.crl-not-found',
        'CRLs are named <municipality code>.crl or arl.crl',
      );
    const crl = await crls.latest(db, kind, m[1]!, generation);
    if (!crl)
      throw new AppError(
        'notFound',
        'jpki.crl-not-found',
        'no CRL has been published for this partition',
      );
    return crl.der;
  };

  app.get(
    '/crl/:kind/:file',
    {
      config: { access: verifierAccess },
      schema: {
        tags: ['jpki'],
        summary: '失効情報ファイル: the latest CRL of a municipality partition, or the ARL (DER)',
        params: Type.Object({ kind: Kind, file: Type.String({ maxLength: 20 }) }),
        querystring: Type.Object({ generation: Type.Optional(Type.Integer({ minimum: 1 })) }),
      },
    },
    async (request, reply) => {
      const der = await crlHandler(
        request.actor,
        request.params.kind,
        request.params.file,
        request.query.generation,
      );
      deps.provisions.noteFor(request.actor, 'crl');
      return reply.type('application/pkix-crl').send(der);
    },
  );

  app.post(
    '/ocsp/:kind',
    {
      config: { access: verifierAccess },
      schema: {
        tags: ['jpki'],
        summary:
          'OCSP (RFC 6960) for verifiers: good / revoked / unknown, signed by the delegated responder',
        params: Type.Object({ kind: Kind }),
      },
    },
    async (request, reply) => {
      assertVerifierFor(request.actor, request.params.kind);
      if (!Buffer.isBuffer(request.body)) {
        throw new AppError(
          'unsupportedMediaType',
          'request.unsupported-media-type',
          'send application/ocsp-request',
        );
      }
      const answer = await ocsp.respond(db, request.params.kind, request.body);
      if (answer.source !== 'error') deps.provisions.noteFor(request.actor, 'ocsp');
      return reply.type('application/ocsp-response').send(answer.der);
    },
  );

  app.get(
    '/ocsp/:kind/*',
    {
      config: { access: verifierAccess },
      schema: {
        tags: ['jpki'],
        summary: 'OCSP by GET (RFC 6960 Appendix A.1): the base64 of the DER request in the path',
        params: Type.Object({ kind: Kind, '*': Type.String({ maxLength: 8192 }) }),
      },
    },
    async (request, reply) => {
      assertVerifierFor(request.actor, request.params.kind);
      let b64 = request.params['*'];
      try {
        if (b64.includes('%')) b64 = decodeURIComponent(b64);
      } catch {
        b64 = '';
      }
      const body = /^[A-Za-z0-9+/]*={0,2}$/.test(b64)
        ? Buffer.from(b64, 'base64')
        : Buffer.alloc(0);
      const answer = await ocsp.respond(db, request.params.kind, body);
      if (answer.source !== 'error') deps.provisions.noteFor(request.actor, 'ocsp');
      return reply.type('application/ocsp-response').send(answer.der);
    },
  );
}
