/**
 * Residents (住民): log in with the authentication certificate (利用者証明用電子証明書) and see
 * their own data — disclosure (開示) of their identity-record versions (本人確認情報, 機構規程
 * 第4条(8), 第5条(23)), who received their data and for what purpose, and their certification
 * records (認証業務情報の開示).
 *
 * Login is the real JPKI pattern: the server issues a challenge; the holder signs
 * {@link challengeMessage}('residentLogin', id, nonce, '') with the auth key on the card or the
 * smartphone; the certificate must be valid now. The session is a `resident` actor bound to the
 * person (one per person) with a bearer token that lives 15 minutes — the ordinary edge
 * authenticates it, so every rule that holds for tokens holds for sessions.
 */
import { Type } from '@sinclair/typebox';
import { Base64, ChallengeView } from '../jpki/holder-proof.schemas.ts';
import { type Actor, type ActorStore, hashToken } from '../platform/actors.ts';
import type { AuditActor, AuditLog } from '../platform/audit.ts';
import type { Clock } from '../platform/clock.ts';
import type { Database, Queryable } from '../platform/db.ts';
import { AppError, isAppError } from '../platform/errors.ts';
import type { App } from '../platform/http.ts';
import { IdentityRecordView, identityRecordView } from '../registry/registry.routes.ts';
import type { RegistryService } from '../registry/registry.service.ts';
import {
  CHALLENGE_ID_PATTERN,
  type ChallengeService,
  challengeMessage,
  proveHolder,
} from '../jpki/holder-proof.ts';

/** How long a resident session token lives. */
export const SESSION_LIFETIME_MS = 15 * 60_000;

/**
 * Audit actions that mean "someone other than the holder received or read this resident's
 * data" — what the disclosure of provisions (提供状況の開示) lists, with what each one gives
 * when the audit entry names no items. Only successful entries count (a refused request
 * received nothing). Internal processing is not a receipt and is not listed: a municipality's
 * notification being accepted (registry.notification.accept), the 機構 reading the basic-4
 * to issue the holder's own certificate (jpki.certificate.read-basic-four), My Number
 * generation, revocations, the holder's own consent and designation tokens, and the holder's
 * own disclosure reads.
 */
export const RECEIPT_ACTIONS: Readonly<Record<string, readonly string[]>> = {
  // 国の機関等への本人確認情報の提供 (住基法 第30条の9 ff.)
  'registry.provision': ['identityRecord'],
  // 署名検証者等 / 利用者証明検証者への提供 (公的個人認証法)
  'jpki.certified-basic-four.provide': ['certifiedBasicFour'],
  'jpki.linked-serial.provide': ['linkedSerial'],
  // Reads by municipalities, prefectures and 機構 operators (registry and 附票)
  'registry.identity-record.read': ['identityRecord'],
  'registry.identity-record.read-history': ['identityRecordHistory'],
  'registry.supplement-record.read': ['supplementRecord'],
  'registry.supplement-record.read-history': ['supplementRecordHistory'],
  'numbering.my-number.read': ['myNumber'],
};

export interface ResidentRouteDeps {
  db: Database;
  clock: Clock;
  audit: AuditLog;
  actors: ActorStore;
  registry: RegistryService;
  challenges: ChallengeService;
}

const LOGIN_ACTOR: AuditActor = { id: null, type: 'system', name: 'resident-login' };

const SessionBody = Type.Object(
  {
    challengeId: Type.String({ pattern: CHALLENGE_ID_PATTERN }),
    certificate: Base64(16384),
    signature: Base64(2048),
  },
  { additionalProperties: false },
);

const SessionView = Type.Object(
  {
    token: Type.String(),
    expiresAt: Type.String({ format: 'date-time' }),
    medium: Type.Union([Type.Literal('card'), Type.Literal('mobile')]),
  },
  { additionalProperties: false },
);

const ProvisionEntryView = Type.Object(
  {
    seq: Type.String(),
    occurredAt: Type.String({ format: 'date-time' }),
    recipientType: Type.String(),
    recipientName: Type.String(),
    action: Type.String(),
    purpose: Type.Union([Type.String(), Type.Null()]),
    items: Type.Array(Type.String()),
  },
  { additionalProperties: false },
);

const CertificateRecordView = Type.Object(
  {
    serial: Type.String(),
    kind: Type.Union([Type.Literal('sign'), Type.Literal('auth')]),
    medium: Type.Union([Type.Literal('card'), Type.Literal('mobile')]),
    caGeneration: Type.Integer(),
    notBefore: Type.String({ format: 'date-time' }),
    notAfter: Type.String({ format: 'date-time' }),
    issuedAt: Type.String({ format: 'date-time' }),
    status: Type.Union([Type.Literal('good'), Type.Literal('revoked'), Type.Literal('expired')]),
    revocation: Type.Union([
      Type.Null(),
      Type.Object(
        {
          category: Type.String(),
          crlReason: Type.String(),
          revokedAt: Type.String({ format: 'date-time' }),
        },
        { additionalProperties: false },
      ),
    ]),
  },
  { additionalProperties: false },
);

const iso = (v: Date | string): string => new Date(v).toISOString();

/** The items an entry gave: `details.items` when the entry names them, else the action's. */
function itemsOf(action: string, details: unknown): string[] {
  const raw: unknown = typeof details === 'string' ? JSON.parse(details) : details;
  if (raw !== null && typeof raw === 'object' && 'items' in raw && Array.isArray(raw.items)) {
    const named = raw.items.filter((x): x is string => typeof x === 'string');
    if (named.length > 0) return named;
  }
  return [...(RECEIPT_ACTIONS[action] ?? [])];
}

/** The person a resident actor stands for; refuses a resident credential bound to nobody. */
async function personOf(db: Queryable, actor: Actor): Promise<string> {
  const r = await db.query<{ person_id: string | null }>(
    'SELECT person_id FROM actors WHERE id = $1',
    [actor.id],
  );
  const personId = r.rows[0]?.person_id ?? null;
  if (!personId) {
    throw new AppError(
      'forbidden',
      'resident.not-logged-in',
      'this credential is not a resident session; log in with your authentication certificate',
    );
  }
  return personId;
}

/** Every resident code the person has held (a resident-code change keeps the history). */
async function codesOf(db: Queryable, personId: string): Promise<string[]> {
  const r = await db.query<{ resident_code: string }>(
    'SELECT DISTINCT resident_code FROM identity_record_versions WHERE person_id = $1',
    [personId],
  );
  return r.rows.map((x) => x.resident_code);
}

export async function residentRoutes(app: App, deps: ResidentRouteDeps): Promise<void> {
  const { db } = deps;
  const residentOnly = { grants: ['resident'] as const };

  app.post(
    '/v1/resident/login-challenges',
    {
      config: { access: { public: true, why: 'a resident logs in by answering this challenge' } },
      schema: {
        tags: ['residents'],
        summary: 'A single-use challenge to sign with the authentication key (5 minutes)',
        response: { 201: ChallengeView },
      },
    },
    async (_request, reply) =>
      reply.code(201).send(await deps.challenges.issue(db, 'residentLogin')),
  );

  app.post(
    '/v1/resident/sessions',
    {
      config: {
        access: { public: true, why: 'authenticated by the signature of the auth certificate key' },
      },
      schema: {
        tags: ['residents'],
        summary:
          'Log in: the challenge signed (RSASSA-PKCS1-v1_5, SHA-256) with the key of a valid authentication certificate',
        description:
          'Sign challengeMessage("residentLogin", challengeId, nonce, "") = "kiban-challenge/v1\\nresidentLogin\\n<challengeId>\\n<nonce base64>\\n" (no trailing newline after the empty statement).',
        body: SessionBody,
        response: { 201: SessionView },
      },
    },
    async (request, reply) => {
      const body = request.body;
      try {
        // The challenge is spent whatever the outcome, so a failed answer cannot be retried.
        const nonce = await db.transaction((tx) =>
          deps.challenges.consume(tx, body.challengeId, 'residentLogin'),
        );
        const message = challengeMessage('residentLogin', body.challengeId, nonce, '');
        const session = await db.transaction(async (tx) => {
          const holder = await proveHolder(tx, deps, {
            kind: 'auth',
            certificate: Buffer.from(body.certificate, 'base64'),
            message,
            signature: Buffer.from(body.signature, 'base64'),
          });
          const actor = await residentActorFor(tx, deps, holder.personId);
          const expiresAt = new Date(deps.clock.now().getTime() + SESSION_LIFETIME_MS);
          const token = await deps.actors.createToken(tx, actor.id, {
            label: `session:${holder.medium}`,
            expiresAt,
          });
          await deps.audit.append(tx, actor, {
            action: 'resident.login',
            subjectType: 'resident',
            subject: holder.residentCode,
            requestId: String(request.id),
            details: { serial: holder.serial.toString(), medium: holder.medium },
          });
          return { token: token.token, expiresAt: expiresAt.toISOString(), medium: holder.medium };
        });
        return reply.code(201).send(session);
      } catch (err) {
        if (isAppError(err)) {
          const reason = err.code;
          await db.transaction((tx) =>
            deps.audit.append(tx, LOGIN_ACTOR, {
              action: 'resident.login',
              outcome: 'denied',
              requestId: String(request.id),
              details: { reason },
            }),
          );
        }
        throw err;
      }
    },
  );

  app.delete(
    '/v1/resident/sessions/current',
    {
      config: { access: residentOnly },
      schema: {
        tags: ['residents'],
        summary: 'Log out: ends the session whose token made this request',
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      const actor = request.actor!;
      const bearer = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '')?.[1] ?? '';
      await db.transaction(async (tx) => {
        await personOf(tx, actor);
        await tx.query(
          `UPDATE api_tokens SET revoked_at = $3
            WHERE actor_id = $1 AND token_hash = $2 AND revoked_at IS NULL`,
          [actor.id, hashToken(bearer), deps.clock.now()],
        );
        await deps.audit.append(tx, actor, {
          action: 'resident.logout',
          requestId: String(request.id),
        });
      });
      deps.actors.changed();
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/v1/resident/me/identity-records',
    {
      config: { access: residentOnly },
      schema: {
        tags: ['residents'],
        summary: '開示: every version of my identity record (本人確認情報), newest first',
        response: { 200: Type.Object({ versions: Type.Array(Type.Ref(IdentityRecordView)) }) },
      },
    },
    async (request) => {
      const actor = request.actor!;
      return db.transaction(async (tx) => {
        const personId = await personOf(tx, actor);
        const latest = await deps.registry.latestOf(tx, personId);
        if (!latest) return { versions: [] };
        const record = await deps.registry.read(tx, latest.record.residentCode);
        await disclosureAudit(
          deps,
          tx,
          actor,
          latest.record.residentCode,
          'identity-records',
          request.id,
        );
        return { versions: (record?.versions ?? []).slice().reverse().map(identityRecordView) };
      });
    },
  );

  app.get(
    '/v1/resident/me/provisions',
    {
      config: { access: residentOnly },
      schema: {
        tags: ['residents'],
        summary: '開示: who received my data, when and for what purpose (oldest first, paged)',
        querystring: Type.Object({
          afterSeq: Type.Optional(Type.String({ pattern: '^[0-9]{1,19}$' })),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
        }),
        response: {
          200: Type.Object({
            entries: Type.Array(ProvisionEntryView),
            nextAfterSeq: Type.Union([Type.String(), Type.Null()]),
          }),
        },
      },
    },
    async (request) => {
      const actor = request.actor!;
      const limit = request.query.limit ?? 100;
      return db.transaction(async (tx) => {
        const personId = await personOf(tx, actor);
        const codes = await codesOf(tx, personId);
        const r = await tx.query<{
          seq: string;
          occurred_at: Date | string;
          actor_type: string;
          actor_name: string;
          recipient_name: string;
          action: string;
          purpose: string | null;
          details: unknown;
        }>(
          `SELECT l.seq::text AS seq, l.occurred_at, l.actor_type, l.actor_name, l.action,
                  l.purpose, l.details,
                  COALESCE(v.legal_name, a.display_name, l.actor_name) AS recipient_name
             FROM audit_log l
             LEFT JOIN actors a ON a.id = l.actor_id
             LEFT JOIN verifiers v ON v.id = a.verifier_id
            WHERE l.subject_type = 'resident' AND l.subject = ANY($1::text[])
              AND l.action = ANY($2::text[]) AND l.outcome = 'success'
              AND l.actor_type <> 'resident' AND l.seq > $3::bigint
            ORDER BY l.seq LIMIT $4`,
          [codes, Object.keys(RECEIPT_ACTIONS), request.query.afterSeq ?? '0', limit],
        );
        const subject = codes[0];
        if (subject) await disclosureAudit(deps, tx, actor, subject, 'provisions', request.id);
        return {
          entries: r.rows.map((e) => ({
            seq: e.seq,
            occurredAt: iso(e.occurred_at),
            recipientType: e.actor_type,
            recipientName: e.recipient_name,
            action: e.action,
            purpose: e.purpose,
            items: itemsOf(e.action, e.details),
          })),
          nextAfterSeq: r.rows.length === limit ? (r.rows[r.rows.length - 1]?.seq ?? null) : null,
        };
      });
    },
  );

  app.get(
    '/v1/resident/me/certificates',
    {
      config: { access: residentOnly },
      schema: {
        tags: ['residents'],
        summary: '認証業務情報の開示: my certificates and their revocations',
        response: { 200: Type.Object({ certificates: Type.Array(CertificateRecordView) }) },
      },
    },
    async (request) => {
      const actor = request.actor!;
      return db.transaction(async (tx) => {
        const personId = await personOf(tx, actor);
        const r = await tx.query<{
          serial: string;
          kind: 'sign' | 'auth';
          medium: 'card' | 'mobile';
          ca_generation: number;
          not_before: Date | string;
          not_after: Date | string;
          issued_at: Date | string;
          resident_code: string;
          category: string | null;
          crl_reason: string | null;
          revoked_at: Date | string | null;
          compromised_at: Date | string | null;
        }>(
          `SELECT c.serial::text AS serial, c.kind, c.medium, c.ca_generation, c.not_before,
                  c.not_after, c.issued_at, c.resident_code, r.category, r.crl_reason,
                  r.revoked_at, ca.compromised_at
             FROM jpki_certificates c
             JOIN jpki_cas ca ON ca.kind = c.kind AND ca.generation = c.ca_generation
             LEFT JOIN jpki_revocations r ON r.serial = c.serial
            WHERE c.person_id = $1 AND c.state = 'issued'
            ORDER BY c.issued_at DESC, c.serial DESC`,
          [personId],
        );
        const now = deps.clock.now().getTime();
        const first = r.rows[0];
        if (first) {
          await disclosureAudit(deps, tx, actor, first.resident_code, 'certificates', request.id);
        }
        return {
          certificates: r.rows.map((c) => ({
            serial: c.serial,
            kind: c.kind,
            medium: c.medium,
            caGeneration: c.ca_generation,
            notBefore: iso(c.not_before),
            notAfter: iso(c.not_after),
            issuedAt: iso(c.issued_at),
            status:
              c.revoked_at !== null || c.compromised_at !== null
                ? ('revoked' as const)
                : new Date(c.not_after).getTime() < now
                  ? ('expired' as const)
                  : ('good' as const),
            revocation:
              c.revoked_at !== null && c.category !== null && c.crl_reason !== null
                ? { category: c.category, crlReason: c.crl_reason, revokedAt: iso(c.revoked_at) }
                : null,
          })),
        };
      });
    },
  );
}

async function disclosureAudit(
  deps: ResidentRouteDeps,
  tx: Queryable,
  actor: Actor,
  residentCode: string,
  what: string,
  requestId: string,
): Promise<void> {
  await deps.audit.append(tx, actor, {
    action: 'resident.disclosure.read',
    subjectType: 'resident',
    subject: residentCode,
    purpose: 'disclosure',
    requestId,
    details: { what },
  });
}

/**
 * The `resident` actor standing for this person (at most one: `actors.person_id` is unique),
 * created on first login. A suspended resident actor cannot log in.
 */
async function residentActorFor(
  tx: Queryable,
  deps: ResidentRouteDeps,
  personId: string,
): Promise<Actor> {
  const bound = await tx.query<{ name: string }>(
    "SELECT name FROM actors WHERE person_id = $1 AND type = 'resident'",
    [personId],
  );
  const name = bound.rows[0]?.name;
  const existing = name === undefined ? null : await deps.actors.byName(tx, name);
  if (existing) {
    if (existing.status !== 'active') {
      throw new AppError(
        'forbidden',
        'resident.suspended',
        'resident access for this person is suspended',
      );
    }
    return existing;
  }
  const actor = await deps.actors.create(tx, {
    name: `resident.${personId}`,
    type: 'resident',
    displayName: '住民 (本人)',
  });
  await tx.query('UPDATE actors SET person_id = $2 WHERE id = $1', [actor.id, personId]);
  return actor;
}
