/**
 * 本人同意 (公的個人認証法 第18条第3項「当該特定署名用電子証明書記録情報の提供に係る署名利用者の
 * 同意」): the holder gives or withdraws consent to the certified basic-4 provision by signing a
 * server-issued challenge with the private key of a signing certificate (署名用電子証明書).
 *
 * Reading of the law: the consent is the 署名利用者's — the person's — not one certificate's.
 * It is kept per person, so a decision signed with the card signing certificate or with the
 * smartphone signing certificate applies to both (seed 002 (６): 提供可否の変更を「マイナンバー
 * カード・スマートフォンのいずれの電子証明書でも」), and it carries over to the holder's later
 * signing certificates until changed. Each decision is appended to `jpki_consent_history`
 * (append-only) and the current state kept in `jpki_consents`.
 *
 * The signed message is {@link challengeMessage}('consent', id, nonce, 'consent=given' |
 * 'consent=withdrawn'), so a signature for one decision cannot be replayed for the other, and
 * the challenge is single-use: it is consumed even when the proof fails (the failure is
 * audited with outcome `denied` in the same committed transaction).
 */
import type { Services } from '../app.ts';
import type { AuditLog } from '../platform/audit.ts';
import type { Clock } from '../platform/clock.ts';
import type { Database, Queryable } from '../platform/db.ts';
import { type AppError, isAppError } from '../platform/errors.ts';
import { challengeMessage, proveHolder } from './holder-proof.ts';
import { HOLDER_ACTOR } from './linked-serials.ts';

export const CONSENT_DECISIONS = ['given', 'withdrawn'] as const;
export type ConsentDecision = (typeof CONSENT_DECISIONS)[number];

export interface ConsentRecord {
  decision: ConsentDecision;
  decidedAt: string;
  /** The medium of the signing certificate that signed the decision. */
  medium: 'card' | 'mobile';
}

export interface ConsentSubmission {
  challengeId: string;
  certificate: Buffer;
  signature: Buffer;
  decision: ConsentDecision;
}

/** The statement a consent decision signs (part of the signed challenge message). */
export const consentStatement = (decision: ConsentDecision): string => `consent=${decision}`;

export class ConsentService {
  constructor(
    private readonly clock: Clock,
    private readonly audit: AuditLog,
  ) {}

  /** Records a signed decision; returns the new current state. */
  async decide(
    db: Database,
    /** The holder-proof checks read the JPKI services (CAs, certificate records). */
    services: Services,
    s: ConsentSubmission,
    requestId: string,
  ): Promise<ConsentRecord> {
    const outcome = await db.transaction<{ failed: AppError } | { recorded: ConsentRecord }>(
      async (tx) => {
        const nonce = await services.challenges.consume(tx, s.challengeId, 'consent');
        const message = challengeMessage(
          'consent',
          s.challengeId,
          nonce,
          consentStatement(s.decision),
        );
        let holder: Awaited<ReturnType<typeof proveHolder>>;
        try {
          holder = await proveHolder(tx, services, {
            kind: 'sign',
            certificate: s.certificate,
            message,
            signature: s.signature,
          });
        } catch (err) {
          if (!isAppError(err)) throw err;
          // Keep the challenge consumed and the attempt on record; no personal data.
          await this.audit.append(tx, HOLDER_ACTOR, {
            action: `jpki.consent.${s.decision === 'given' ? 'give' : 'withdraw'}`,
            subjectType: 'system',
            subject: 'consent',
            outcome: 'denied',
            requestId,
            details: { reason: err.code },
          });
          return { failed: err };
        }
        const now = this.clock.now();
        const inserted = await tx.query<{ id: string }>(
          `INSERT INTO jpki_consent_history (person_id, decision, serial, medium, challenge_id,
                                           decided_at, request_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id::text AS id`,
          [
            holder.personId,
            s.decision,
            holder.serial.toString(),
            holder.medium,
            s.challengeId,
            now,
            requestId,
          ],
        );
        await tx.query(
          `INSERT INTO jpki_consents (person_id, state, history_id, changed_at)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (person_id) DO UPDATE
           SET state = EXCLUDED.state, history_id = EXCLUDED.history_id,
               changed_at = EXCLUDED.changed_at`,
          [holder.personId, s.decision, inserted.rows[0]!.id, now],
        );
        await this.audit.append(tx, HOLDER_ACTOR, {
          action: `jpki.consent.${s.decision === 'given' ? 'give' : 'withdraw'}`,
          subjectType: 'resident',
          subject: holder.residentCode,
          requestId,
          details: { serial: holder.serial.toString(), medium: holder.medium },
        });
        return {
          recorded: { decision: s.decision, decidedAt: now.toISOString(), medium: holder.medium },
        };
      },
    );
    if ('failed' in outcome) throw outcome.failed;
    return outcome.recorded;
  }

  /** The holder's current consent, or null when they never decided. */
  async current(db: Queryable, personId: string): Promise<ConsentDecision | null> {
    const r = await db.query<{ state: ConsentDecision }>(
      'SELECT state FROM jpki_consents WHERE person_id = $1',
      [personId],
    );
    return r.rows[0]?.state ?? null;
  }
}
