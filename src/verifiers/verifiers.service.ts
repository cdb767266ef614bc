/**
 * Verifiers (署名検証者 / 団体署名検証者 = 署名検証者等, 公的個人認証法 第17条・第18条;
 * 利用者証明検証者, 第36条・第37条): the businesses and bodies the agency gives revocation
 * information and the other JPKI provisions to, under an agreement with dates.
 *
 * Agency operators with the `ca` role register them (legal name, 法人番号 with its check digit,
 * kinds, contact, agreement dates), issue their credentials (actors of a verifier kind bound
 * by `actors.verifier_id`), suspend, resume and end them. Every action is written to the
 * append-only `verifier_actions` and to the audit log in the same transaction.
 */
import { randomUUID } from 'node:crypto';
import type { Actor, ActorStore } from '../platform/actors.ts';
import type { AuditActor, AuditLog } from '../platform/audit.ts';
import type { Clock } from '../platform/clock.ts';
import type { Queryable } from '../platform/db.ts';
import { AppError } from '../platform/errors.ts';
import { isValidCorporateNumber } from '../numbering/check-digits.ts';
import {
  isVerifierKind,
  jstDay,
  VERIFIER_KINDS,
  type VerifierKind,
  verifierRefusal,
  verifierRefusalError,
  type VerifierStatus,
} from './kinds.ts';
import { PROVISION_KINDS, type ProvisionKind } from './provisions.ts';

export { VERIFIER_KINDS, type VerifierKind } from './kinds.ts';

export interface VerifierContact {
  name: string;
  email: string;
  phone: string;
}

export interface Verifier {
  id: string;
  legalName: string;
  /** 法人番号 (13 digits, check digit first). */
  corporateNumber: string;
  kinds: VerifierKind[];
  contact: VerifierContact;
  /** First day (JST) of the agreement, inclusive. */
  agreementFrom: string;
  /** Last day (JST) of the agreement, inclusive; null = open-ended. */
  agreementUntil: string | null;
  status: VerifierStatus;
  statusReason: string | null;
  createdAt: string;
  endedAt: string | null;
}

export interface NewVerifier {
  /** A fixed id (the demo verifier); a random one otherwise. */
  id?: string;
  legalName: string;
  corporateNumber: string;
  kinds: readonly string[];
  contact: VerifierContact;
  agreementFrom: string;
  agreementUntil?: string | null;
}

export interface VerifierAction {
  id: string;
  action: string;
  actorName: string;
  reason: string | null;
  details: Record<string, unknown>;
  occurredAt: string;
}

export interface FeeRule {
  id: string;
  provisionKind: ProvisionKind;
  validFrom: string | null;
  validUntil: string | null;
  /** Yen per provision; null = no amount set by the seeds. */
  yenPerUnit: number | null;
  source: string;
}

export interface ProvisionDay {
  day: string;
  verifierKind: VerifierKind;
  provisionKind: ProvisionKind;
  count: number;
  /** The fee rule in force that day, or null when none covers it. */
  feeRuleId: string | null;
  yenPerUnit: number | null;
  /** count × yenPerUnit; null when the amount is not set. */
  fee: number | null;
}

export interface ProvisionTotal {
  verifierKind: VerifierKind;
  provisionKind: ProvisionKind;
  count: number;
  /** Sum of the priced days. */
  fee: number;
  /** Provisions on days without an amount (their fee is unknown, not zero). */
  unpricedCount: number;
}

export interface ProvisionReport {
  verifierId: string;
  from: string;
  to: string;
  days: ProvisionDay[];
  totals: ProvisionTotal[];
  /** Sum of the priced fees; `complete` is false when some provisions have no amount. */
  fee: { yen: number; complete: boolean };
}

interface VerifierRow {
  [key: string]: unknown;
  id: string;
  legal_name: string;
  corporate_number: string;
  kinds: string[];
  contact_name: string;
  contact_email: string;
  contact_phone: string;
  agreement_from: string;
  agreement_until: string | null;
  status: string;
  status_reason: string | null;
  created_at: Date;
  ended_at: Date | null;
}

const COLUMNS = `id, legal_name, corporate_number, kinds, contact_name, contact_email, contact_phone,
  agreement_from, agreement_until, status, status_reason, created_at, ended_at`;

const toStatus = (s: string): VerifierStatus =>
  s === 'ended' ? 'ended' : s === 'suspended' ? 'suspended' : 'active';

function toVerifier(r: VerifierRow): Verifier {
  return {
    id: r.id,
    legalName: r.legal_name,
    corporateNumber: r.corporate_number,
    kinds: r.kinds.filter(isVerifierKind),
    contact: { name: r.contact_name, email: r.contact_email, phone: r.contact_phone },
    agreementFrom: r.agreement_from,
    agreementUntil: r.agreement_until,
    status: toStatus(r.status),
    statusReason: r.status_reason,
    createdAt: r.created_at.toISOString(),
    endedAt: r.ended_at ? r.ended_at.toISOString() : null,
  };
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DATE_RE = /^\d{4}-\d{2}-\d{2}$/;

/** A real calendar date written YYYY-MM-DD. */
export function isIsoDate(s: string): boolean {
  if (!DATE_RE.test(s)) return false;
  const d = new Date(`${s}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === s;
}

const notFound = (): AppError =>
  new AppError('notFound', 'verifier.not-found', 'no verifier has this id');

const isProvisionKind = (v: string): v is ProvisionKind =>
  (PROVISION_KINDS as readonly string[]).includes(v);

/** Suspension and resumption: from which status, to which, and the refusal otherwise. */
const STANDING_CHANGES = {
  suspend: {
    from: 'active',
    to: 'suspended',
    refusal: { code: 'verifier.already-suspended', detail: 'the verifier is already suspended' },
  },
  resume: {
    from: 'suspended',
    to: 'active',
    refusal: { code: 'verifier.not-suspended', detail: 'the verifier is not suspended' },
  },
} as const;

export class VerifierService {
  constructor(
    private readonly clock: Clock,
    private readonly audit: AuditLog,
    private readonly actors: ActorStore,
  ) {}

  async get(db: Queryable, id: string): Promise<Verifier | null> {
    if (!UUID_RE.test(id)) return null;
    const r = await db.query<VerifierRow>(`SELECT ${COLUMNS} FROM verifiers WHERE id = $1`, [id]);
    return r.rows[0] ? toVerifier(r.rows[0]) : null;
  }

  async list(
    db: Queryable,
    filter: { status?: VerifierStatus; kind?: VerifierKind } = {},
  ): Promise<Verifier[]> {
    const r = await db.query<VerifierRow>(
      `SELECT ${COLUMNS} FROM verifiers
        WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR $2 = ANY (kinds))
        ORDER BY legal_name, id`,
      [filter.status ?? null, filter.kind ?? null],
    );
    return r.rows.map(toVerifier);
  }

  /**
   * The verifier an actor acts for, if it may be served now; otherwise a 403 with
   * `verifier.not-registered` | `verifier.suspended` | `verifier.ended` |
   * `verifier.outside-agreement`.
   */
  async forActor(db: Queryable, actor: Pick<Actor, 'type' | 'verifierId'>): Promise<Verifier> {
    if (!isVerifierKind(actor.type) || !actor.verifierId) {
      throw verifierRefusalError('verifier.not-registered');
    }
    const v = await this.get(db, actor.verifierId);
    const refusal = verifierRefusal(v, jstDay(this.clock.now()));
    if (refusal || !v) throw verifierRefusalError(refusal ?? 'verifier.not-registered');
    if (!v.kinds.includes(actor.type)) throw verifierRefusalError('verifier.not-registered');
    return v;
  }

  /** 署名検証者等 / 利用者証明検証者の登録. */
  async register(
    tx: Queryable,
    operator: AuditActor,
    input: NewVerifier,
    requestId?: string,
  ): Promise<Verifier> {
    const problems: { pointer: string; message: string }[] = [];
    const legalName = input.legalName.trim();
    if (legalName.length === 0) problems.push({ pointer: '/legalName', message: 'is empty' });
    if (!isValidCorporateNumber(input.corporateNumber)) {
      throw new AppError(
        'badRequest',
        'verifier.bad-corporate-number',
        'the 法人番号 must be 13 digits whose first digit is the check digit of the other twelve',
        { errors: [{ pointer: '/body/corporateNumber', message: 'check digit does not match' }] },
      );
    }
    const kinds = [...new Set(input.kinds)];
    if (kinds.length === 0 || !kinds.every(isVerifierKind)) {
      throw new AppError(
        'badRequest',
        'verifier.bad-kinds',
        `kinds must be a non-empty subset of ${VERIFIER_KINDS.join(', ')}`,
      );
    }
    const until = input.agreementUntil ?? null;
    this.checkAgreement(input.agreementFrom, until);
    if (problems.length > 0) {
      throw new AppError('badRequest', 'verifier.invalid', 'the verifier is invalid', {
        errors: problems.map((p) => ({ pointer: `/body${p.pointer}`, message: p.message })),
      });
    }
    const taken = await tx.query(
      "SELECT 1 FROM verifiers WHERE corporate_number = $1 AND status <> 'ended'",
      [input.corporateNumber],
    );
    const duplicate = () =>
      new AppError(
        'conflict',
        'verifier.already-registered',
        'a verifier with this 法人番号 is registered and not ended',
      );
    if (taken.rows.length > 0) throw duplicate();
    const id = input.id ?? randomUUID();
    const now = this.clock.now();
    const ordered = VERIFIER_KINDS.filter((k) => kinds.includes(k));
    await tx
      .query(
        `INSERT INTO verifiers (id, legal_name, corporate_number, kinds, contact_name, contact_email,
                                contact_phone, agreement_from, agreement_until, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
        [
          id,
          legalName,
          input.corporateNumber,
          ordered,
          input.contact.name,
          input.contact.email,
          input.contact.phone,
          input.agreementFrom,
          until,
          now,
        ],
      )
      .catch((err: unknown) => {
        const e = err as { code?: unknown };
        throw e.code === '23505' ? duplicate() : err;
      });
    await this.record(tx, operator, id, 'register', null, requestId, {
      kinds: ordered,
      agreementFrom: input.agreementFrom,
      agreementUntil: until,
    });
    const created = await this.get(tx, id);
    if (!created) throw new Error('verifier vanished after insert');
    return created;
  }

  /**
   * Creates a credential: an actor of `kind` bound to the verifier, and its token (returned
   * once, only its hash is stored). The verifier must hold that kind and not have ended.
   */
  async issueCredential(
    tx: Queryable,
    operator: AuditActor,
    verifierId: string,
    input: { kind: string; name: string; displayName?: string },
    requestId?: string,
  ): Promise<{ actor: Actor; token: string; tokenId: string }> {
    const v = await this.lockedOrThrow(tx, verifierId);
    if (v.status === 'ended') {
      throw new AppError(
        'conflict',
        'verifier.ended',
        'the verifier has ended; it gets no credentials',
      );
    }
    if (!isVerifierKind(input.kind) || !v.kinds.includes(input.kind)) {
      throw new AppError(
        'badRequest',
        'verifier.kind-not-held',
        `the verifier is registered as ${v.kinds.join(', ')}, not as ${input.kind}`,
        { errors: [{ pointer: '/body/kind', message: 'not a kind this verifier holds' }] },
      );
    }
    const actor = await this.actors.create(tx, {
      name: input.name,
      type: input.kind,
      displayName: input.displayName ?? `${v.legalName} (${input.kind})`,
      verifierId,
    });
    const { id: tokenId, token } = await this.actors.createToken(tx, actor.id, {
      label: 'verifier',
    });
    await this.record(tx, operator, verifierId, 'credential', null, requestId, {
      kind: input.kind,
      actorName: actor.name,
      tokenId,
    });
    return { actor, token, tokenId };
  }

  /** 一時停止: the verifier's credentials are refused until it is resumed. */
  async suspend(
    tx: Queryable,
    operator: AuditActor,
    id: string,
    reason: string,
    requestId?: string,
  ): Promise<Verifier> {
    return this.changeStanding(tx, operator, id, 'suspend', reason, requestId);
  }

  /** 一時停止の解除. */
  async resume(
    tx: Queryable,
    operator: AuditActor,
    id: string,
    reason: string,
    requestId?: string,
  ): Promise<Verifier> {
    return this.changeStanding(tx, operator, id, 'resume', reason, requestId);
  }

  /**
   * The one place that decides suspension and resumption: suspend only an active verifier,
   * resume only a suspended one; an ended verifier stays ended.
   */
  private async changeStanding(
    tx: Queryable,
    operator: AuditActor,
    id: string,
    action: 'suspend' | 'resume',
    reason: string,
    requestId?: string,
  ): Promise<Verifier> {
    const rule = STANDING_CHANGES[action];
    checkReason(reason);
    const v = await this.lockedOrThrow(tx, id);
    if (v.status === 'ended') {
      throw new AppError('conflict', 'verifier.ended', 'the verifier has ended');
    }
    if (v.status !== rule.from) {
      throw new AppError('conflict', rule.refusal.code, rule.refusal.detail);
    }
    await tx.query('UPDATE verifiers SET status = $2, status_reason = $3 WHERE id = $1', [
      id,
      rule.to,
      rule.to === 'suspended' ? reason : null,
    ]);
    this.actors.changed();
    await this.record(tx, operator, id, action, reason, requestId);
    return this.getOrThrow(tx, id);
  }

  /** Ends the registration for good and revokes every token of its credentials. */
  async terminate(
    tx: Queryable,
    operator: AuditActor,
    id: string,
    reason: string,
    requestId?: string,
  ): Promise<{ verifier: Verifier; tokensRevoked: number }> {
    checkReason(reason);
    const v = await this.lockedOrThrow(tx, id);
    if (v.status === 'ended') {
      throw new AppError('conflict', 'verifier.ended', 'the verifier has already ended');
    }
    const now = this.clock.now();
    await tx.query(
      "UPDATE verifiers SET status = 'ended', status_reason = $2, ended_at = $3 WHERE id = $1",
      [id, reason, now],
    );
    const revoked = await tx.query(
      `UPDATE api_tokens SET revoked_at = $2
        WHERE revoked_at IS NULL AND actor_id IN (SELECT id FROM actors WHERE verifier_id = $1)`,
      [id, now],
    );
    this.actors.changed();
    await this.record(tx, operator, id, 'terminate', reason, requestId, {
      tokensRevoked: revoked.rowCount,
    });
    return { verifier: await this.getOrThrow(tx, id), tokensRevoked: revoked.rowCount };
  }

  /** Changes the agreement dates (a renewed or shortened agreement). */
  async changeAgreement(
    tx: Queryable,
    operator: AuditActor,
    id: string,
    input: { agreementFrom: string; agreementUntil: string | null; reason: string },
    requestId?: string,
  ): Promise<Verifier> {
    checkReason(input.reason);
    const v = await this.lockedOrThrow(tx, id);
    if (v.status === 'ended') {
      throw new AppError('conflict', 'verifier.ended', 'the verifier has ended');
    }
    this.checkAgreement(input.agreementFrom, input.agreementUntil);
    await tx.query('UPDATE verifiers SET agreement_from = $2, agreement_until = $3 WHERE id = $1', [
      id,
      input.agreementFrom,
      input.agreementUntil,
    ]);
    this.actors.changed();
    await this.record(tx, operator, id, 'agreement', input.reason, requestId, {
      agreementFrom: input.agreementFrom,
      agreementUntil: input.agreementUntil,
      previousFrom: v.agreementFrom,
      previousUntil: v.agreementUntil,
    });
    return this.getOrThrow(tx, id);
  }

  /** The verifier's credentials (actors) and how many live tokens each holds. */
  async credentials(
    db: Queryable,
    id: string,
  ): Promise<{ name: string; kind: VerifierKind; activeTokens: number }[]> {
    const r = await db.query<{ name: string; type: string; active: number }>(
      `SELECT a.name, a.type,
              (SELECT count(*)::int FROM api_tokens t
                WHERE t.actor_id = a.id AND t.revoked_at IS NULL
                  AND (t.expires_at IS NULL OR t.expires_at > $2)) AS active
         FROM actors a WHERE a.verifier_id = $1 ORDER BY a.name`,
      [id, this.clock.now()],
    );
    return r.rows.flatMap((a) =>
      isVerifierKind(a.type) ? [{ name: a.name, kind: a.type, activeTokens: a.active }] : [],
    );
  }

  async actions(db: Queryable, id: string): Promise<VerifierAction[]> {
    const r = await db.query<{
      id: string;
      action: string;
      actor_name: string;
      reason: string | null;
      details: Record<string, unknown>;
      occurred_at: Date;
    }>(
      `SELECT id::text AS id, action, actor_name, reason, details, occurred_at
         FROM verifier_actions WHERE verifier_id = $1 ORDER BY verifier_actions.id`,
      [id],
    );
    return r.rows.map((a) => ({
      id: a.id,
      action: a.action,
      actorName: a.actor_name,
      reason: a.reason,
      details: a.details,
      occurredAt: a.occurred_at.toISOString(),
    }));
  }

  async feeRules(db: Queryable): Promise<FeeRule[]> {
    const r = await db.query<{
      id: string;
      provision_kind: string;
      valid_from: string | null;
      valid_until: string | null;
      yen_per_unit: number | null;
      source: string;
    }>(
      `SELECT id, provision_kind, valid_from, valid_until, yen_per_unit, source
         FROM verifier_fee_rules ORDER BY provision_kind, valid_from NULLS FIRST, id`,
    );
    return r.rows.flatMap((f) =>
      isProvisionKind(f.provision_kind)
        ? [
            {
              id: f.id,
              provisionKind: f.provision_kind,
              validFrom: f.valid_from,
              validUntil: f.valid_until,
              yenPerUnit: f.yen_per_unit,
              source: f.source,
            },
          ]
        : [],
    );
  }

  /**
   * Provision counts per day, verifier kind and provision kind between two JST dates
   * (inclusive), each day priced by the fee rule in force that day.
   */
  async provisions(db: Queryable, id: string, from: string, to: string): Promise<ProvisionReport> {
    if (!isIsoDate(from) || !isIsoDate(to) || from > to) {
      throw new AppError(
        'badRequest',
        'verifier.bad-period',
        'from and to must be dates YYYY-MM-DD with from ≤ to',
      );
    }
    if (!(await this.get(db, id))) throw notFound();
    const rules = await this.feeRules(db);
    const r = await db.query<{
      day: string;
      verifier_kind: string;
      provision_kind: string;
      count: string;
    }>(
      `SELECT day, verifier_kind, provision_kind, count FROM verifier_provisions
        WHERE verifier_id = $1 AND day BETWEEN $2::date AND $3::date
        ORDER BY day, verifier_kind, provision_kind`,
      [id, from, to],
    );
    const days: ProvisionDay[] = [];
    const totals = new Map<string, ProvisionTotal>();
    for (const row of r.rows) {
      if (!isVerifierKind(row.verifier_kind) || !isProvisionKind(row.provision_kind)) continue;
      const count = Number(row.count);
      const rule = ruleFor(rules, row.provision_kind, row.day);
      const yen = rule?.yenPerUnit ?? null;
      const fee = yen === null ? null : yen * count;
      days.push({
        day: row.day,
        verifierKind: row.verifier_kind,
        provisionKind: row.provision_kind,
        count,
        feeRuleId: rule?.id ?? null,
        yenPerUnit: yen,
        fee,
      });
      const key = `${row.verifier_kind}|${row.provision_kind}`;
      const t = totals.get(key) ?? {
        verifierKind: row.verifier_kind,
        provisionKind: row.provision_kind,
        count: 0,
        fee: 0,
        unpricedCount: 0,
      };
      t.count += count;
      if (fee === null) t.unpricedCount += count;
      else t.fee += fee;
      totals.set(key, t);
    }
    const all = [...totals.values()];
    return {
      verifierId: id,
      from,
      to,
      days,
      totals: all,
      fee: {
        yen: all.reduce((s, t) => s + t.fee, 0),
        complete: all.every((t) => t.unpricedCount === 0),
      },
    };
  }

  private checkAgreement(from: string, until: string | null): void {
    if (!isIsoDate(from) || (until !== null && !isIsoDate(until))) {
      throw new AppError('badRequest', 'verifier.bad-agreement', 'agreement dates are YYYY-MM-DD');
    }
    if (until !== null && until < from) {
      throw new AppError(
        'badRequest',
        'verifier.bad-agreement',
        'the agreement cannot end before it starts',
      );
    }
  }

  private async lockedOrThrow(tx: Queryable, id: string): Promise<Verifier> {
    if (!UUID_RE.test(id)) throw notFound();
    const r = await tx.query<VerifierRow>(
      `SELECT ${COLUMNS} FROM verifiers WHERE id = $1 FOR UPDATE`,
      [id],
    );
    if (!r.rows[0]) throw notFound();
    return toVerifier(r.rows[0]);
  }

  private async getOrThrow(tx: Queryable, id: string): Promise<Verifier> {
    const v = await this.get(tx, id);
    if (!v) throw notFound();
    return v;
  }

  private async record(
    tx: Queryable,
    operator: AuditActor,
    verifierId: string,
    action: 'register' | 'credential' | 'suspend' | 'resume' | 'terminate' | 'agreement',
    reason: string | null,
    requestId: string | undefined,
    details: Record<string, string | number | null | string[]> = {},
  ): Promise<void> {
    await tx.query(
      `INSERT INTO verifier_actions (verifier_id, action, actor_id, actor_name, reason, details,
                                     occurred_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [
        verifierId,
        action,
        operator.id,
        operator.name,
        reason,
        JSON.stringify(details),
        this.clock.now(),
      ],
    );
    await this.audit.append(tx, operator, {
      action: `verifier.${action}`,
      subjectType: 'system',
      subject: `verifier:${verifierId}`,
      ...(requestId ? { requestId } : {}),
      details: { verifierId, ...(reason !== null ? { reason } : {}), ...details },
    });
  }
}

/**
 * Reasons go to the audit log, which refuses anything that could be a My Number: say so
 * clearly instead of failing there.
 */
function checkReason(reason: string): void {
  if (reason.trim().length === 0 || /(?<![0-9])[0-9]{12}(?![0-9])/.test(reason)) {
    throw new AppError(
      'badRequest',
      'verifier.bad-reason',
      'give a reason in words (no 12-digit numbers: they could be a My Number)',
    );
  }
}

/** The fee rule of a provision kind in force on a day (dates inclusive; null = open). */
export function ruleFor(
  rules: readonly FeeRule[],
  kind: ProvisionKind,
  day: string,
): FeeRule | null {
  return (
    rules.find(
      (r) =>
        r.provisionKind === kind &&
        (r.validFrom === null || r.validFrom <= day) &&
        (r.validUntil === null || day <= r.validUntil),
    ) ?? null
  );
}
