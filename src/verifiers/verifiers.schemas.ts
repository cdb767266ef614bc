/** Request and response schemas of the verifier routes (TypeBox; every field listed). */
import { Type } from '@sinclair/typebox';
import { VERIFIER_KINDS, VERIFIER_STATUSES } from './kinds.ts';
import { PROVISION_KINDS } from './provisions.ts';

export const VerifierKindSchema = Type.Union(
  VERIFIER_KINDS.map((k) => Type.Literal(k)),
  {
    description:
      'signatureVerifier: 署名検証者; organisationalSignatureVerifier: 団体署名検証者; authVerifier: 利用者証明検証者',
  },
);
const ProvisionKindSchema = Type.Union(PROVISION_KINDS.map((k) => Type.Literal(k)));
const Day = (description: string) => Type.String({ format: 'date', description });

export const VerifierId = Type.String({ format: 'uuid' });

const Contact = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200, description: 'contact person or desk' }),
    email: Type.String({ format: 'email', maxLength: 254 }),
    phone: Type.String({ pattern: '^[0-9+() -]{6,30}$' }),
  },
  { additionalProperties: false },
);

export const NewVerifierBody = Type.Object(
  {
    legalName: Type.String({ minLength: 1, maxLength: 200, description: '法人等の名称' }),
    corporateNumber: Type.String({
      pattern: '^[0-9]{13}$',
      description: '法人番号: 13 digits, the first is the check digit',
      examples: ['7000012050002'],
    }),
    kinds: Type.Array(VerifierKindSchema, { minItems: 1, maxItems: 3, uniqueItems: true }),
    contact: Contact,
    agreementFrom: Day('first day of the agreement (JST), inclusive'),
    agreementUntil: Type.Optional(
      Type.Union([Day('last day of the agreement (JST), inclusive'), Type.Null()]),
    ),
  },
  { additionalProperties: false },
);

export const VerifierView = Type.Object(
  {
    id: VerifierId,
    legalName: Type.String(),
    corporateNumber: Type.String(),
    kinds: Type.Array(VerifierKindSchema),
    contact: Contact,
    agreementFrom: Type.String({ format: 'date' }),
    agreementUntil: Type.Union([Type.String({ format: 'date' }), Type.Null()]),
    status: Type.Union(VERIFIER_STATUSES.map((s) => Type.Literal(s))),
    statusReason: Type.Union([Type.String(), Type.Null()]),
    createdAt: Type.String({ format: 'date-time' }),
    endedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  },
  { $id: 'Verifier', additionalProperties: false },
);

export const VerifierDetail = Type.Object(
  {
    verifier: Type.Ref(VerifierView),
    credentials: Type.Array(
      Type.Object(
        { name: Type.String(), kind: VerifierKindSchema, activeTokens: Type.Integer() },
        { additionalProperties: false },
      ),
    ),
    actions: Type.Array(
      Type.Object(
        {
          id: Type.String(),
          action: Type.String(),
          actorName: Type.String(),
          reason: Type.Union([Type.String(), Type.Null()]),
          details: Type.Record(Type.String(), Type.Unknown()),
          occurredAt: Type.String({ format: 'date-time' }),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

export const ReasonBody = Type.Object(
  { reason: Type.String({ minLength: 1, maxLength: 500 }) },
  { additionalProperties: false },
);

export const AgreementBody = Type.Object(
  {
    agreementFrom: Day('first day of the agreement (JST), inclusive'),
    agreementUntil: Type.Union([Day('last day (JST), inclusive'), Type.Null()]),
    reason: Type.String({ minLength: 1, maxLength: 500 }),
  },
  { additionalProperties: false },
);

export const CredentialBody = Type.Object(
  {
    kind: VerifierKindSchema,
    name: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' }),
    displayName: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  },
  { additionalProperties: false },
);

export const CredentialView = Type.Object(
  {
    verifierId: VerifierId,
    name: Type.String(),
    kind: VerifierKindSchema,
    token: Type.String({ description: 'bearer token, shown once; only its hash is stored' }),
  },
  { additionalProperties: false },
);

export const TerminationView = Type.Object(
  { verifier: Type.Ref(VerifierView), tokensRevoked: Type.Integer() },
  { additionalProperties: false },
);

export const VerifierListQuery = Type.Object(
  {
    status: Type.Optional(Type.Union(VERIFIER_STATUSES.map((s) => Type.Literal(s)))),
    kind: Type.Optional(VerifierKindSchema),
  },
  { additionalProperties: false },
);

export const ProvisionQuery = Type.Object(
  {
    from: Day('first day (JST), inclusive'),
    to: Day('last day (JST), inclusive'),
  },
  { additionalProperties: false },
);

const Yen = Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]);

export const ProvisionReportView = Type.Object(
  {
    verifierId: VerifierId,
    from: Type.String({ format: 'date' }),
    to: Type.String({ format: 'date' }),
    days: Type.Array(
      Type.Object(
        {
          day: Type.String({ format: 'date' }),
          verifierKind: VerifierKindSchema,
          provisionKind: ProvisionKindSchema,
          count: Type.Integer(),
          feeRuleId: Type.Union([Type.String(), Type.Null()]),
          yenPerUnit: Yen,
          fee: Yen,
        },
        { additionalProperties: false },
      ),
    ),
    totals: Type.Array(
      Type.Object(
        {
          verifierKind: VerifierKindSchema,
          provisionKind: ProvisionKindSchema,
          count: Type.Integer(),
          fee: Type.Integer({ description: 'sum over the priced days (yen)' }),
          unpricedCount: Type.Integer({
            description: 'provisions on days whose amount the seeds do not set',
          }),
        },
        { additionalProperties: false },
      ),
    ),
    fee: Type.Object(
      {
        yen: Type.Integer(),
        complete: Type.Boolean({ description: 'false when some provisions have no amount' }),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

export const FeeRulesView = Type.Object(
  {
    rules: Type.Array(
      Type.Object(
        {
          id: Type.String(),
          provisionKind: ProvisionKindSchema,
          validFrom: Type.Union([Type.String({ format: 'date' }), Type.Null()]),
          validUntil: Type.Union([Type.String({ format: 'date' }), Type.Null()]),
          yenPerUnit: Yen,
          source: Type.String(),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
