/**
 * JPKI services to verifiers and holders beyond revocation status:
 *
 * - 本人同意 (第18条第3項): consent challenges and signed consent decisions (public: the holder
 *   proves possession of a signing key);
 * - 特定署名用電子証明書記録情報 (第18条第3項): certified basic-4 to 署名検証者等;
 * - 対応…発行の番号 (第18条第4項, 第5項, 第37条第3項): linked serials;
 * - 特定利用者証明検証者証明符号 (第38条の3): designations (agreements) and designation tokens.
 *
 * Request bodies of these routes carry certificate serials and signatures, never basic-4
 * values; responses list every field.
 */
import { Type } from '@sinclair/typebox';
import { Base64, ChallengeView } from './holder-proof.schemas.ts';
import type { Services } from '../app.ts';
import type { App } from '../platform/http.ts';
import { CONSENT_DECISIONS, type ConsentService } from './consent.ts';
import type { CertifiedBasicFourService } from './certified-basic-four.ts';
import type { DesignationService } from './designation.ts';
import { LINKS, type LinkedSerialService } from './linked-serials.ts';

/** The services of this module, as the composition root builds them. */
export interface VerifierServicesDeps {
  consents: ConsentService;
  certifiedBasicFour: CertifiedBasicFourService;
  linkedSerials: LinkedSerialService;
  designations: DesignationService;
}

const Serial = Type.String({ pattern: '^[1-9][0-9]{0,18}$', description: '発行の番号 (decimal)' });
const Uuid = Type.String({ format: 'uuid' });
const IsoDate = Type.String({ format: 'date', description: 'YYYY-MM-DD (JST)' });
const ConsentBody = Type.Object(
  {
    challengeId: Type.String({ minLength: 1, maxLength: 100 }),
    certificate: Base64(16_384, 'base64 DER of the holder’s signing certificate (card or mobile)'),
    signature: Base64(
      2048,
      'base64 RSASSA-PKCS1-v1_5 SHA-256 signature over the challenge message',
    ),
    decision: Type.Union(
      CONSENT_DECISIONS.map((d) => Type.Literal(d)),
      { description: 'given: 同意する; withdrawn: 同意を撤回する' },
    ),
  },
  { additionalProperties: false },
);

const ConsentResult = Type.Object(
  {
    decision: Type.Union(CONSENT_DECISIONS.map((d) => Type.Literal(d))),
    decidedAt: Type.String({ format: 'date-time' }),
    medium: Type.Union([Type.Literal('card'), Type.Literal('mobile')]),
    appliesTo: Type.Literal('holder', {
      description:
        'the consent is the holder’s: it covers their card and mobile signing certificates',
    }),
  },
  { additionalProperties: false },
);

const BasicFourResult = Type.Object(
  {
    serial: Serial,
    name: Type.String({ description: '氏名' }),
    birthDate: Type.String({ format: 'date', description: '生年月日' }),
    sex: Type.Union([Type.Literal('male'), Type.Literal('female')], { description: '性別' }),
    address: Type.String({ description: '住所' }),
  },
  { additionalProperties: false },
);

const Link = Type.Union(
  LINKS.map((l) => Type.Literal(l)),
  {
    description:
      'cardSignToMobileSign: 第18条第4項 (署名検証者); signToAuth: 第18条第5項 (card certificates, a 署名検証者 that is also a 利用者証明検証者); cardAuthToMobileAuth: 第37条第3項 (利用者証明検証者). Either end may be presented.',
  },
);

const LinkedResult = Type.Object(
  {
    serial: Serial,
    link: Link,
    linkedSerial: Serial,
    linkedKind: Type.Union([Type.Literal('sign'), Type.Literal('auth')]),
    linkedMedium: Type.Union([Type.Literal('card'), Type.Literal('mobile')]),
    linkedNotAfter: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: false },
);

const NewDesignationBody = Type.Object(
  {
    verifierId: Uuid,
    agreementReference: Type.String({
      minLength: 1,
      maxLength: 100,
      description: '取決め (第38条の3第3項) reference',
    }),
    agreedOn: IsoDate,
    validFrom: IsoDate,
    validUntil: Type.Optional(Type.Union([IsoDate, Type.Null()])),
  },
  { additionalProperties: false },
);

const TokenSummary = Type.Object(
  {
    id: Uuid,
    issuedAt: Type.String({ format: 'date-time' }),
    requestedVia: Type.Union([Type.Literal('operator'), Type.Literal('verifier')]),
    revokedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    revocationReason: Type.Union([Type.String(), Type.Null()]),
  },
  { additionalProperties: false },
);

const DesignationResult = Type.Object(
  {
    id: Uuid,
    verifierId: Uuid,
    agreementReference: Type.String(),
    agreedOn: Type.String({ format: 'date' }),
    validFrom: Type.String({ format: 'date' }),
    validUntil: Type.Union([Type.String({ format: 'date' }), Type.Null()]),
    createdAt: Type.String({ format: 'date-time' }),
    tokens: Type.Array(TokenSummary),
  },
  { additionalProperties: false },
);

const IssuedToken = Type.Object(
  {
    token: Type.String({ description: 'shown once; only its SHA-256 is kept' }),
    tokenId: Uuid,
    designationId: Uuid,
    issuedAt: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: false },
);

const TokenCheckResult = Type.Object(
  {
    designated: Type.Boolean(),
    designationId: Type.Optional(Uuid),
    verifierId: Type.Optional(Uuid),
    legalName: Type.Optional(Type.String()),
    validUntil: Type.Optional(Type.Union([Type.String({ format: 'date' }), Type.Null()])),
  },
  { additionalProperties: false },
);

const caOperators = { type: 'agencyOperator', roles: ['ca'] } as const;

export async function verifierServicesRoutes(app: App, services: Services): Promise<void> {
  const { db } = services;
  const { consents, certifiedBasicFour, linkedSerials, designations } =
    services.jpkiVerifierServices;

  app.post(
    '/v1/jpki/consent-challenges',
    {
      config: {
        access: {
          public: true,
          why: 'the holder proves possession of the signing key by signing the challenge',
        },
      },
      schema: {
        tags: ['jpki'],
        summary: '本人同意: a single-use challenge (5 minutes) for a consent decision',
        response: { 201: ChallengeView },
      },
    },
    async (_request, reply) => reply.code(201).send(await services.challenges.issue(db, 'consent')),
  );

  app.post(
    '/v1/jpki/consents',
    {
      config: {
        access: {
          public: true,
          why: 'the holder authenticates by signing the challenge with a signing-certificate key',
        },
      },
      schema: {
        tags: ['jpki'],
        summary:
          '本人同意 (第18条第3項): give or withdraw consent to the certified basic-4 provision',
        description:
          'Sign challengeMessage("consent", challengeId, nonce, "consent=given" | "consent=withdrawn") with the private key of a valid signing certificate (card or smartphone). The decision is the holder’s: it applies to all their signing certificates.',
        body: ConsentBody,
        response: { 201: ConsentResult },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const recorded = await consents.decide(
        db,
        services,
        {
          challengeId: b.challengeId,
          certificate: Buffer.from(b.certificate, 'base64'),
          signature: Buffer.from(b.signature, 'base64'),
          decision: b.decision,
        },
        String(request.id),
      );
      return reply.code(201).send({ ...recorded, appliesTo: 'holder' as const });
    },
  );

  app.post(
    '/v1/jpki/certified-basic-four',
    {
      config: { access: { grants: ['signatureVerifier', 'organisationalSignatureVerifier'] } },
      schema: {
        tags: ['jpki'],
        summary:
          '特定署名用電子証明書記録情報 (第18条第3項): serial + 基本4情報 of a valid signing certificate whose holder consented',
        body: Type.Object({ serial: Serial }, { additionalProperties: false }),
        response: { 200: BasicFourResult },
      },
    },
    async (request) => {
      const r = await certifiedBasicFour.provide(
        db,
        request.actor!,
        BigInt(request.body.serial),
        String(request.id),
      );
      return { ...r, serial: r.serial.toString() };
    },
  );

  app.post(
    '/v1/jpki/linked-serials',
    {
      config: { access: { grants: ['signatureVerifier', 'authVerifier'] } },
      schema: {
        tags: ['jpki'],
        summary: '対応証明書の発行の番号 etc. (第18条第4項/第5項, 第37条第3項): the linked serial',
        body: Type.Object({ serial: Serial, link: Link }, { additionalProperties: false }),
        response: { 200: LinkedResult },
      },
    },
    async (request) => {
      const r = await linkedSerials.provide(
        db,
        request.actor!,
        { serial: BigInt(request.body.serial), link: request.body.link },
        String(request.id),
      );
      return {
        serial: r.serial.toString(),
        link: r.link,
        linkedSerial: r.linkedSerial.toString(),
        linkedKind: r.linkedKind,
        linkedMedium: r.linkedMedium,
        linkedNotAfter: r.linkedNotAfter.toISOString(),
      };
    },
  );

  app.post(
    '/v1/jpki/designations',
    {
      config: { access: { grants: [caOperators] } },
      schema: {
        tags: ['jpki'],
        summary: '特定利用者証明検証者 (第38条の3第3項): record the agreement with an authVerifier',
        body: NewDesignationBody,
        response: { 201: DesignationResult },
      },
    },
    async (request, reply) =>
      reply
        .code(201)
        .send(await designations.create(db, request.actor!, request.body, String(request.id))),
  );

  app.get(
    '/v1/jpki/designations',
    {
      config: { access: { grants: [{ type: 'agencyOperator', roles: ['ca', 'auditor'] }] } },
      schema: {
        tags: ['jpki'],
        summary: 'Designations and their tokens (never the token values)',
        querystring: Type.Object(
          { verifierId: Type.Optional(Uuid) },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object(
            { designations: Type.Array(DesignationResult) },
            { additionalProperties: false },
          ),
        },
      },
    },
    async (request) => ({
      designations: await designations.list(db, { verifierId: request.query.verifierId }),
    }),
  );

  app.post(
    '/v1/jpki/designations/:designationId/tokens',
    {
      config: { access: { grants: [caOperators] } },
      schema: {
        tags: ['jpki'],
        summary: '特定利用者証明検証者証明符号の提供 (第38条の3第2項): issue a token (shown once)',
        params: Type.Object({ designationId: Uuid }),
        response: { 201: IssuedToken },
      },
    },
    async (request, reply) =>
      reply
        .code(201)
        .send(
          await designations.issueByOperator(
            db,
            request.actor!,
            request.params.designationId,
            String(request.id),
          ),
        ),
  );

  app.post(
    '/v1/jpki/designations/:designationId/tokens/:tokenId/revocation',
    {
      config: { access: { grants: [caOperators] } },
      schema: {
        tags: ['jpki'],
        summary: 'Revoke a designation token',
        params: Type.Object({ designationId: Uuid, tokenId: Uuid }),
        body: Type.Object(
          { reason: Type.String({ minLength: 1, maxLength: 500 }) },
          { additionalProperties: false },
        ),
        response: { 201: TokenSummary },
      },
    },
    async (request, reply) =>
      reply.code(201).send(
        await designations.revoke(
          db,
          request.actor!,
          {
            designationId: request.params.designationId,
            tokenId: request.params.tokenId,
            reason: request.body.reason,
          },
          String(request.id),
        ),
      ),
  );

  app.post(
    '/v1/jpki/designation-tokens',
    {
      config: { access: { grants: ['authVerifier'] } },
      schema: {
        tags: ['jpki'],
        summary:
          '特定利用者証明検証者証明符号の求め (第38条の3第1項): a designated verifier asks for its token',
        response: { 201: IssuedToken },
      },
    },
    async (request, reply) =>
      reply
        .code(201)
        .send(await designations.issueToVerifier(db, request.actor!, String(request.id))),
  );

  app.post(
    '/v1/jpki/designation-tokens/verification',
    {
      config: {
        access: {
          public: true,
          why: 'the token exists to show that its bearer is a 特定利用者証明検証者 (第38条の3第1項)',
        },
      },
      schema: {
        tags: ['jpki'],
        summary: 'Check a designation token: is its bearer a designated auth verifier now?',
        body: Type.Object(
          { token: Type.String({ minLength: 1, maxLength: 200 }) },
          { additionalProperties: false },
        ),
        response: { 200: TokenCheckResult },
      },
    },
    async (request) => designations.verify(db, request.body.token),
  );
}
