/**
 * Linked serial numbers for verifiers (公的個人認証法):
 *
 * - 対応署名用電子証明書の発行の番号 (第18条第4項, `cardSignToMobileSign`): to a 署名検証者,
 *   card signing ↔ mobile signing certificate of the same holder, both directions (第1号: card →
 *   mobile, 第2号: mobile → card);
 * - 対応証明書の発行の番号 (第18条第5項, `signToAuth`): to a 署名検証者 that is also a 利用者証明
 *   検証者 (第36条第2項), card authentication ↔ card signing certificate, both directions
 *   (第1号: auth → sign, 第2号: sign → auth) — the article names 個人番号カード用 certificates
 *   only, so mobile certificates are refused;
 * - 対応利用者証明用電子証明書の発行の番号 (第37条第3項, `cardAuthToMobileAuth`): to a 利用者証明
 *   検証者, card authentication ↔ mobile authentication certificate, both directions.
 *
 * The link names a pair; the direction follows from the certificate presented. 第18条第4項
 * names the 署名検証者 only (not 署名検証者等), so a 団体署名検証者 gets no linked serial.
 * The law requires the returned certificate's 有効期間 not to have elapsed; this service also
 * leaves out revoked ones (効力を失った certificates, 第15条/第16条の14/第34条/第35条の14), and
 * requires the presented certificate to be valid too: a verifier learns nothing about a holder
 * whose certificate it could no longer rely on. Every provision is counted (`linkedSerial`) and
 * audited (`jpki.linked-serial.provide`, subject = the holder's resident code) in one transaction.
 */
import type { Actor } from '../platform/actors.ts';
import type { AuditActor, AuditLog } from '../platform/audit.ts';
import type { Clock } from '../platform/clock.ts';
import type { Database, Queryable } from '../platform/db.ts';
import { AppError } from '../platform/errors.ts';
import type { ProvisionLedger } from '../verifiers/provisions.ts';
import type { VerifierKind, VerifierService } from '../verifiers/verifiers.service.ts';
import type { CertificateKind } from './jpki.profiles.ts';

export const LINKS = ['cardSignToMobileSign', 'signToAuth', 'cardAuthToMobileAuth'] as const;
export type Link = (typeof LINKS)[number];

export type Medium = 'card' | 'mobile';

/** One JPKI end-entity certificate as the verifier services see it. */
export interface HeldCertificate {
  serial: bigint;
  kind: CertificateKind;
  medium: Medium;
  personId: string;
  residentCode: string;
  certificate: Buffer;
  notAfter: Date;
  revoked: boolean;
  /** The issuing CA generation's key was compromised (第14条/第33条). */
  caCompromised: boolean;
}

interface HeldRow {
  [key: string]: unknown;
  serial: string;
  kind: CertificateKind;
  medium: Medium;
  person_id: string;
  resident_code: string;
  certificate: Uint8Array;
  not_after: Date;
  revoked: boolean;
  ca_compromised: boolean;
}

const HELD_COLUMNS = `c.serial::text AS serial, c.kind, c.medium, c.person_id, c.resident_code,
  c.certificate, c.not_after,
  EXISTS (SELECT 1 FROM jpki_revocations r WHERE r.serial = c.serial) AS revoked,
  (ca.compromised_at IS NOT NULL) AS ca_compromised`;

const heldOf = (r: HeldRow): HeldCertificate => ({
  serial: BigInt(r.serial),
  kind: r.kind,
  medium: r.medium,
  personId: r.person_id,
  residentCode: r.resident_code,
  // PGlite returns bytea as a Uint8Array; the DER reader needs a Buffer.
  certificate: Buffer.from(r.certificate),
  notAfter: r.not_after,
  revoked: r.revoked,
  caCompromised: r.ca_compromised,
});

/**
 * An issued end-entity certificate by serial, or null (unknown, pending, abandoned, or a CA /
 * OCSP-responder serial).
 */
export async function issuedCertificate(
  db: Queryable,
  serial: bigint,
): Promise<HeldCertificate | null> {
  const r = await db.query<HeldRow>(
    `SELECT ${HELD_COLUMNS}
       FROM jpki_certificates c
       JOIN jpki_cas ca ON ca.kind = c.kind AND ca.generation = c.ca_generation
      WHERE c.serial = $1 AND c.state = 'issued'`,
    [serial.toString()],
  );
  const row = r.rows[0];
  return row ? heldOf(row) : null;
}

/** Why a certificate cannot be relied on now, or null when it is valid. */
export function invalidity(c: HeldCertificate, now: Date): 'revoked' | 'expired' | null {
  if (c.revoked || c.caCompromised) return 'revoked';
  if (c.notAfter.getTime() <= now.getTime()) return 'expired';
  return null;
}

interface LinkRule {
  /** The credential kind that may ask (第18条第4項/第5項: 署名検証者; 第37条第3項: 利用者証明検証者). */
  askedBy: VerifierKind;
  /** The verifier must also hold this kind (第18条第5項: 利用者証明検証者である署名検証者). */
  alsoHolds: VerifierKind | null;
  /** The two ends of the pair. */
  ends: readonly [End, End];
  article: string;
}
interface End {
  kind: CertificateKind;
  medium: Medium;
}

export const LINK_RULES: Record<Link, LinkRule> = {
  cardSignToMobileSign: {
    askedBy: 'signatureVerifier',
    alsoHolds: null,
    ends: [
      { kind: 'sign', medium: 'card' },
      { kind: 'sign', medium: 'mobile' },
    ],
    article: '第18条第4項',
  },
  signToAuth: {
    askedBy: 'signatureVerifier',
    alsoHolds: 'authVerifier',
    ends: [
      { kind: 'sign', medium: 'card' },
      { kind: 'auth', medium: 'card' },
    ],
    article: '第18条第5項',
  },
  cardAuthToMobileAuth: {
    askedBy: 'authVerifier',
    alsoHolds: null,
    ends: [
      { kind: 'auth', medium: 'card' },
      { kind: 'auth', medium: 'mobile' },
    ],
    article: '第37条第3項',
  },
};

export interface LinkedSerial {
  serial: bigint;
  link: Link;
  linkedSerial: bigint;
  linkedKind: CertificateKind;
  linkedMedium: Medium;
  linkedNotAfter: Date;
}

type Refusal =
  | 'not-entitled'
  | 'unknown-certificate'
  | 'wrong-certificate'
  | 'revoked'
  | 'expired'
  | 'no-linked-certificate';

const REFUSALS: Record<
  Refusal,
  { kind: 'forbidden' | 'notFound' | 'unprocessable'; detail: string }
> = {
  'not-entitled': {
    kind: 'forbidden',
    detail: 'this verifier is not entitled to this linked serial',
  },
  'unknown-certificate': {
    kind: 'notFound',
    detail: 'no certificate with this serial was issued by this CA',
  },
  'wrong-certificate': {
    kind: 'unprocessable',
    detail: 'the certificate is not one of the two certificates this link pairs',
  },
  revoked: { kind: 'unprocessable', detail: 'the certificate has been revoked' },
  expired: { kind: 'unprocessable', detail: 'the certificate has expired' },
  'no-linked-certificate': {
    kind: 'notFound',
    detail: 'the holder has no valid certificate at the other end of this link',
  },
};

export class LinkedSerialService {
  constructor(
    private readonly clock: Clock,
    private readonly audit: AuditLog,
    private readonly verifiers: VerifierService,
    private readonly provisions: ProvisionLedger,
  ) {}

  /**
   * The linked serial for a verifier credential, or an AppError `linked-serial.*`. A refusal
   * is audited (outcome denied, details.reason) in its own committed transaction.
   */
  async provide(
    db: Database,
    actor: Actor,
    req: { serial: bigint; link: Link },
    requestId: string,
  ): Promise<LinkedSerial> {
    const rule = LINK_RULES[req.link];
    const result = await db.transaction(async (tx) => {
      const verifier = await this.verifiers.forActor(tx, actor);
      const base = { verifierId: verifier.id, verifierKind: actor.type, link: req.link };
      const refuse = async (
        reason: Refusal,
        holder: HeldCertificate | null,
      ): Promise<{ refused: Refusal }> => {
        await this.audit.append(tx, actor, {
          action: 'jpki.linked-serial.provide',
          ...(holder
            ? { subjectType: 'resident', subject: holder.residentCode }
            : { subjectType: 'certificate', subject: req.serial.toString() }),
          outcome: 'denied',
          requestId,
          details: { ...base, serial: req.serial.toString(), reason },
        });
        return { refused: reason };
      };
      if (
        actor.type !== rule.askedBy ||
        (rule.alsoHolds !== null && !verifier.kinds.includes(rule.alsoHolds))
      ) {
        return refuse('not-entitled', null);
      }
      const presented = await issuedCertificate(tx, req.serial);
      if (!presented) return refuse('unknown-certificate', null);
      const at = rule.ends.findIndex(
        (e) => e.kind === presented.kind && e.medium === presented.medium,
      );
      if (at < 0) return refuse('wrong-certificate', null);
      const now = this.clock.now();
      const bad = invalidity(presented, now);
      if (bad) return refuse(bad, null);
      const other = rule.ends[1 - at]!;
      const r = await tx.query<HeldRow>(
        `SELECT ${HELD_COLUMNS}
           FROM jpki_certificates c
           JOIN jpki_cas ca ON ca.kind = c.kind AND ca.generation = c.ca_generation
          WHERE c.person_id = $1 AND c.kind = $2 AND c.medium = $3 AND c.state = 'issued'
            AND c.not_after > $4 AND ca.compromised_at IS NULL
            AND NOT EXISTS (SELECT 1 FROM jpki_revocations r WHERE r.serial = c.serial)
          ORDER BY c.serial DESC LIMIT 1`,
        [presented.personId, other.kind, other.medium, now],
      );
      const linkedRow = r.rows[0];
      if (!linkedRow) return refuse('no-linked-certificate', presented);
      const linked = heldOf(linkedRow);
      await this.provisions.count(tx, {
        verifierId: verifier.id,
        verifierKind: rule.askedBy,
        kind: 'linkedSerial',
      });
      await this.audit.append(tx, actor, {
        action: 'jpki.linked-serial.provide',
        subjectType: 'resident',
        subject: presented.residentCode,
        requestId,
        details: {
          ...base,
          serial: presented.serial.toString(),
          linkedSerial: linked.serial.toString(),
        },
      });
      return {
        provided: {
          serial: presented.serial,
          link: req.link,
          linkedSerial: linked.serial,
          linkedKind: linked.kind,
          linkedMedium: linked.medium,
          linkedNotAfter: linked.notAfter,
        },
      };
    });
    if ('refused' in result) {
      const r = REFUSALS[result.refused];
      throw new AppError(r.kind, `linked-serial.${result.refused}`, r.detail);
    }
    return result.provided;
  }
}

/** The audit actor of a request made by a certificate holder on a public route. */
export const HOLDER_ACTOR: AuditActor = { id: null, type: 'system', name: 'jpki-holder' };
