/**
 * 特定利用者証明検証者証明符号 (公的個人認証法 第38条の3): designation tokens of designated
 * authentication verifiers (`designatedAuthVerifier`).
 *
 * - 第3項: the agency and the verifier conclude an agreement (取決め) in advance → an agency
 *   operator (role `ca`) records it as a designation of a registered 利用者証明検証者;
 * - 第1項/第2項: the designated verifier may ask for a token showing that it is a
 *   特定利用者証明検証者, and the agency provides it → issued either by an operator on the
 *   verifier's request made outside the system, or requested by the verifier's own
 *   `authVerifier` credential; the token (256 random bits) is shown once, only its SHA-256 is
 *   stored; operators revoke it;
 * - "示す符号": the token exists to be shown, so whoever the verifier shows it to can check it
 *   (`verify`): it answers whether the token is a live token of a designation in force and
 *   names the designated verifier. What else the 総務省令 attaches to it is outside the seeds.
 *
 * Every issuance and revocation is audited (`jpki.designation-token.issue` / `.revoke`) and each
 * issuance is counted (`designationToken`) for the 第41条 report, in the same transaction.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Actor } from '../platform/actors.ts';
import type { AuditLog } from '../platform/audit.ts';
import type { Clock } from '../platform/clock.ts';
import type { Database, Queryable } from '../platform/db.ts';
import { AppError } from '../platform/errors.ts';
import type { ProvisionLedger } from '../verifiers/provisions.ts';
import type { Verifier, VerifierService } from '../verifiers/verifiers.service.ts';
import { jstDateOf } from './validity.ts';

const TOKEN_PREFIX = 'kdt_';

export const hashDesignationToken = (token: string): Buffer =>
  createHash('sha256').update(token, 'utf8').digest();

export interface DesignationToken {
  id: string;
  issuedAt: string;
  requestedVia: 'operator' | 'verifier';
  revokedAt: string | null;
  revocationReason: string | null;
}

export interface Designation {
  id: string;
  verifierId: string;
  agreementReference: string;
  agreedOn: string;
  validFrom: string;
  validUntil: string | null;
  createdAt: string;
  tokens: DesignationToken[];
}

export interface NewDesignation {
  verifierId: string;
  agreementReference: string;
  agreedOn: string;
  validFrom: string;
  validUntil?: string | null | undefined;
}

export interface TokenCheck {
  designated: boolean;
  /** Present when designated. */
  designationId?: string;
  verifierId?: string;
  legalName?: string;
  validUntil?: string | null;
}

interface DesignationRow {
  [key: string]: unknown;
  id: string;
  verifier_id: string;
  agreement_reference: string;
  agreed_on: string;
  valid_from: string;
  valid_until: string | null;
  created_at: Date;
}
interface TokenRow {
  [key: string]: unknown;
  id: string;
  designation_id: string;
  issued_at: Date;
  requested_via: 'operator' | 'verifier';
  revoked_at: Date | null;
  revocation_reason: string | null;
}

const DESIGNATION_COLUMNS = `d.id, d.verifier_id, d.agreement_reference, d.agreed_on::text AS agreed_on,
  d.valid_from::text AS valid_from, d.valid_until::text AS valid_until, d.created_at`;

const inForce = (d: { validFrom: string; validUntil: string | null }, today: string): boolean =>
  today >= d.validFrom && (d.validUntil === null || today <= d.validUntil);

export class DesignationService {
  constructor(
    private readonly clock: Clock,
    private readonly audit: AuditLog,
    private readonly verifiers: VerifierService,
    private readonly provisions: ProvisionLedger,
  ) {}

  /** 取決め (第38条の3第3項): records the agreement with a registered 利用者証明検証者. */
  async create(
    db: Database,
    actor: Actor,
    input: NewDesignation,
    requestId: string,
  ): Promise<Designation> {
    const until = input.validUntil ?? null;
    if (until !== null && until < input.validFrom) {
      throw new AppError('badRequest', 'designation.bad-dates', 'validUntil is before validFrom', {
        errors: [{ pointer: '/body/validUntil', message: 'before validFrom' }],
      });
    }
    if (input.agreedOn > input.validFrom) {
      throw new AppError(
        'badRequest',
        'designation.bad-dates',
        'the agreement must be concluded before it takes effect (あらかじめ, 第38条の3第3項)',
        { errors: [{ pointer: '/body/agreedOn', message: 'after validFrom' }] },
      );
    }
    return db.transaction(async (tx) => {
      const verifier = await this.verifiers.get(tx, input.verifierId);
      if (!verifier) {
        throw new AppError('notFound', 'designation.verifier-unknown', 'no such verifier');
      }
      if (!verifier.kinds.includes('authVerifier')) {
        throw new AppError(
          'conflict',
          'designation.not-auth-verifier',
          'only a 利用者証明検証者 (authVerifier) can be designated (第38条の3)',
        );
      }
      if (verifier.status === 'ended') {
        throw new AppError('conflict', 'designation.verifier-ended', 'the verifier has ended');
      }
      const id = randomUUID();
      const inserted = await tx.query<DesignationRow>(
        `INSERT INTO jpki_designations (id, verifier_id, agreement_reference, agreed_on, valid_from,
                                        valid_until, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (verifier_id, agreement_reference) DO NOTHING
         RETURNING ${DESIGNATION_COLUMNS.replaceAll('d.', '')}`,
        [
          id,
          verifier.id,
          input.agreementReference,
          input.agreedOn,
          input.validFrom,
          input.validUntil ?? null,
          actor.id,
          this.clock.now(),
        ],
      );
      const row = inserted.rows[0];
      if (!row) {
        throw new AppError(
          'conflict',
          'designation.duplicate',
          'this verifier already has a designation with this agreement reference',
        );
      }
      await this.audit.append(tx, actor, {
        action: 'jpki.designation.create',
        subjectType: 'actor',
        subject: verifier.id,
        requestId,
        details: { designationId: id, verifierId: verifier.id },
      });
      return { ...this.#designation(row), tokens: [] };
    });
  }

  async list(
    db: Queryable,
    filter: { verifierId?: string | undefined } = {},
  ): Promise<Designation[]> {
    const ds = await db.query<DesignationRow>(
      `SELECT ${DESIGNATION_COLUMNS} FROM jpki_designations d
        WHERE ($1::uuid IS NULL OR d.verifier_id = $1::uuid)
        ORDER BY d.created_at, d.id`,
      [filter.verifierId ?? null],
    );
    const ts = await db.query<TokenRow>(
      `SELECT t.id, t.designation_id, t.issued_at, t.requested_via, t.revoked_at, t.revocation_reason
         FROM jpki_designation_tokens t
         JOIN jpki_designations d ON d.id = t.designation_id
        WHERE ($1::uuid IS NULL OR d.verifier_id = $1::uuid)
        ORDER BY t.issued_at, t.id`,
      [filter.verifierId ?? null],
    );
    return ds.rows.map((d) => ({
      ...this.#designation(d),
      tokens: ts.rows.filter((t) => t.designation_id === d.id).map((t) => this.#token(t)),
    }));
  }

  /**
   * 特定利用者証明検証者証明符号の提供 (第38条の3第2項) by an operator, for a designation in force
   * today whose verifier may be served. The token is returned once.
   */
  async issueByOperator(
    db: Database,
    actor: Actor,
    designationId: string,
    requestId: string,
  ): Promise<{ token: string; tokenId: string; designationId: string; issuedAt: string }> {
    return db.transaction(async (tx) => {
      const d = await this.#designationById(tx, designationId);
      if (!d) throw new AppError('notFound', 'designation.unknown', 'no such designation');
      const verifier = await this.verifiers.get(tx, d.verifierId);
      this.#assertServable(verifier, d);
      return this.#issue(tx, actor, d, 'operator', requestId);
    });
  }

  /**
   * The designated verifier asks for its token itself (第38条の3第1項) with an `authVerifier`
   * credential: the newest designation of its verifier in force today.
   */
  async issueToVerifier(
    db: Database,
    actor: Actor,
    requestId: string,
  ): Promise<{ token: string; tokenId: string; designationId: string; issuedAt: string }> {
    return db.transaction(async (tx) => {
      const verifier = await this.verifiers.forActor(tx, actor);
      const today = jstDateOf(this.clock.now());
      const r = await tx.query<DesignationRow>(
        `SELECT ${DESIGNATION_COLUMNS} FROM jpki_designations d
          WHERE d.verifier_id = $1 AND d.valid_from <= $2::date
            AND (d.valid_until IS NULL OR d.valid_until >= $2::date)
          ORDER BY d.valid_from DESC, d.created_at DESC LIMIT 1`,
        [verifier.id, today],
      );
      const row = r.rows[0];
      if (!row) {
        throw new AppError(
          'forbidden',
          'designation.not-designated',
          'this verifier has no designation (第38条の3第3項の取決め) in force',
        );
      }
      return this.#issue(tx, actor, this.#designation(row), 'verifier', requestId);
    });
  }

  async revoke(
    db: Database,
    actor: Actor,
    p: { designationId: string; tokenId: string; reason: string },
    requestId: string,
  ): Promise<DesignationToken> {
    return db.transaction(async (tx) => {
      const r = await tx.query<TokenRow & { verifier_id: string }>(
        `SELECT t.id, t.designation_id, t.issued_at, t.requested_via, t.revoked_at,
                t.revocation_reason, d.verifier_id
           FROM jpki_designation_tokens t JOIN jpki_designations d ON d.id = t.designation_id
          WHERE t.id = $1 AND t.designation_id = $2 FOR UPDATE OF t`,
        [p.tokenId, p.designationId],
      );
      const row = r.rows[0];
      if (!row) throw new AppError('notFound', 'designation-token.unknown', 'no such token');
      if (row.revoked_at) {
        throw new AppError('conflict', 'designation-token.revoked', 'the token is already revoked');
      }
      const now = this.clock.now();
      await tx.query(
        `UPDATE jpki_designation_tokens SET revoked_at = $2, revoked_by = $3, revocation_reason = $4
          WHERE id = $1`,
        [row.id, now, actor.id, p.reason],
      );
      await this.audit.append(tx, actor, {
        action: 'jpki.designation-token.revoke',
        subjectType: 'token',
        subject: row.id,
        requestId,
        details: {
          verifierId: row.verifier_id,
          verifierKind: 'authVerifier',
          designationId: row.designation_id,
          tokenId: row.id,
        },
      });
      return this.#token({ ...row, revoked_at: now, revocation_reason: p.reason });
    });
  }

  /**
   * Whether a token shows a 特定利用者証明検証者 now: live (not revoked), its designation in
   * force today, and its verifier servable. Anything else is `{ designated: false }` — the
   * answer does not say why, so a guessed or stolen token teaches nothing.
   */
  async verify(db: Queryable, token: string): Promise<TokenCheck> {
    if (!token.startsWith(TOKEN_PREFIX)) return { designated: false };
    const r = await db.query<DesignationRow & { revoked_at: Date | null }>(
      `SELECT ${DESIGNATION_COLUMNS}, t.revoked_at
         FROM jpki_designation_tokens t JOIN jpki_designations d ON d.id = t.designation_id
        WHERE t.token_sha256 = $1`,
      [hashDesignationToken(token)],
    );
    const row = r.rows[0];
    if (!row || row.revoked_at) return { designated: false };
    const d = this.#designation(row);
    const verifier = await this.verifiers.get(db, d.verifierId);
    if (!verifier || verifier.status !== 'active' || !verifier.kinds.includes('authVerifier')) {
      return { designated: false };
    }
    if (!inForce(d, jstDateOf(this.clock.now()))) return { designated: false };
    return {
      designated: true,
      designationId: d.id,
      verifierId: verifier.id,
      legalName: verifier.legalName,
      validUntil: d.validUntil,
    };
  }

  #assertServable(verifier: Verifier | null, d: Omit<Designation, 'tokens'>): void {
    if (!verifier || verifier.status !== 'active') {
      throw new AppError(
        'conflict',
        'designation.verifier-not-active',
        'the designated verifier is not active',
      );
    }
    if (!inForce(d, jstDateOf(this.clock.now()))) {
      throw new AppError(
        'conflict',
        'designation.not-in-force',
        'the designation is not in force today',
      );
    }
  }

  async #issue(
    tx: Queryable,
    actor: Actor,
    d: Omit<Designation, 'tokens'>,
    via: 'operator' | 'verifier',
    requestId: string,
  ): Promise<{ token: string; tokenId: string; designationId: string; issuedAt: string }> {
    const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const tokenId = randomUUID();
    const now = this.clock.now();
    await tx.query(
      `INSERT INTO jpki_designation_tokens (id, designation_id, token_sha256, requested_via,
                                            issued_by, issued_at)
       VALUES ($1, $2, $3, $4, $5, $6)`,
      [tokenId, d.id, hashDesignationToken(token), via, actor.id, now],
    );
    await this.provisions.count(tx, {
      verifierId: d.verifierId,
      verifierKind: 'authVerifier',
      kind: 'designationToken',
    });
    await this.audit.append(tx, actor, {
      action: 'jpki.designation-token.issue',
      subjectType: 'token',
      subject: tokenId,
      requestId,
      details: {
        verifierId: d.verifierId,
        verifierKind: 'authVerifier',
        designationId: d.id,
        tokenId,
        requestedVia: via,
      },
    });
    return { token, tokenId, designationId: d.id, issuedAt: now.toISOString() };
  }

  async #designationById(db: Queryable, id: string): Promise<Omit<Designation, 'tokens'> | null> {
    const r = await db.query<DesignationRow>(
      `SELECT ${DESIGNATION_COLUMNS} FROM jpki_designations d WHERE d.id = $1`,
      [id],
    );
    const row = r.rows[0];
    return row ? this.#designation(row) : null;
  }

  #designation(r: DesignationRow): Omit<Designation, 'tokens'> {
    return {
      id: r.id,
      verifierId: r.verifier_id,
      agreementReference: r.agreement_reference,
      agreedOn: r.agreed_on,
      validFrom: r.valid_from,
      validUntil: r.valid_until,
      createdAt: r.created_at.toISOString(),
    };
  }

  #token(t: TokenRow): DesignationToken {
    return {
      id: t.id,
      issuedAt: t.issued_at.toISOString(),
      requestedVia: t.requested_via,
      revokedAt: t.revoked_at ? t.revoked_at.toISOString() : null,
      revocationReason: t.revocation_reason,
    };
  }
}
