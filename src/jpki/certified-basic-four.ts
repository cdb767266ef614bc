/**
 * 特定署名用電子証明書記録情報の提供 (公的個人認証法 第18条第3項, `certifiedBasicFour`): a
 * 署名検証者等 (signature or organisational signature verifier) presents the serial of a signing
 * certificate and receives the serial and the holder's 基本4情報 (第7条第3号: 氏名, 生年月日,
 * 性別, 住所) — only when the certificate is a signing certificate this CA issued that has not
 * lost its effect (第15条/第16条の14: not revoked, not expired; its CA key not compromised) and
 * the holder (署名利用者) has consented (`jpki_consents`, see consent.ts).
 *
 * The law gives the values "recorded in" the certificate; the service reads them from the
 * registry's current record and checks that they are exactly what the certificate records
 * (same otherName strings): a signing certificate whose holder's 基本4情報 changed is void
 * (第12条) even before the registry-driven revocation is written, so the two agree whenever a
 * provision is allowed, and a disagreement is refused (`record-changed`) rather than answered
 * with stale or unrecorded values.
 *
 * Refusals and what they may say: the checks run in an order that never reveals more than the
 * verifier could already learn — existence and kind of a serial (serials are sequential and
 * shared), revocation and expiry (OCSP and the certificate itself) — before the holder's consent
 * is looked at; the consent state is revealed only for a valid signing certificate, and the
 * registry state only to a verifier the holder consented to. Every request is audited
 * (`jpki.certified-basic-four.provide`, refusals with outcome `denied` and details.reason, no
 * basic-4 value ever) and each provision counted (`certifiedBasicFour`) in the same transaction.
 */
import type { Actor } from '../platform/actors.ts';
import type { AuditLog } from '../platform/audit.ts';
import type { Clock } from '../platform/clock.ts';
import type { Database } from '../platform/db.ts';
import { AppError, type ErrorKind } from '../platform/errors.ts';
import { decodeGeneralNames, extension, OIDS, parseCertificate } from '../pki/x509.ts';
import type { Sex } from '../registry/registry.rules.ts';
import type { RegistryService } from '../registry/registry.service.ts';
import type { ProvisionLedger } from '../verifiers/provisions.ts';
import type { VerifierKind, VerifierService } from '../verifiers/verifiers.service.ts';
import { signingCertificateOtherNames } from './basic-four.ts';
import { type HeldCertificate, invalidity, issuedCertificate } from './linked-serials.ts';

export interface CertifiedBasicFour {
  serial: bigint;
  name: string;
  birthDate: string;
  sex: Sex;
  address: string;
}

type Refusal =
  | 'unknown-certificate'
  | 'not-signing-certificate'
  | 'revoked'
  | 'expired'
  | 'no-consent'
  | 'record-changed';

const REFUSALS: Record<Refusal, { kind: ErrorKind; detail: string }> = {
  'unknown-certificate': {
    kind: 'notFound',
    detail: 'no certificate with this serial was issued by this CA',
  },
  'not-signing-certificate': {
    kind: 'unprocessable',
    detail: 'the serial is not that of a signing certificate (署名用電子証明書)',
  },
  revoked: { kind: 'unprocessable', detail: 'the certificate has been revoked' },
  expired: { kind: 'unprocessable', detail: 'the certificate has expired' },
  'no-consent': {
    kind: 'forbidden',
    detail: 'the holder has not consented to this provision (第18条第3項)',
  },
  'record-changed': {
    kind: 'conflict',
    detail:
      'the holder’s record no longer matches the certificate; it is void (第12条) — check its status',
  },
};

const SIGNATURE_VERIFIER_KINDS: readonly VerifierKind[] = [
  'signatureVerifier',
  'organisationalSignatureVerifier',
];

/** The otherName strings of a certificate's subjectAltName, in order. */
function recordedOtherNames(der: Buffer): string[] {
  const san = extension(parseCertificate(der), OIDS.subjectAltName);
  if (!san) return [];
  const out: string[] = [];
  for (const n of decodeGeneralNames(san.value)) {
    if ('otherName' in n) out.push(`${n.otherName.oid}=${n.otherName.value}`);
  }
  return out;
}

export class CertifiedBasicFourService {
  constructor(
    private readonly clock: Clock,
    private readonly audit: AuditLog,
    private readonly registry: RegistryService,
    private readonly verifiers: VerifierService,
    private readonly provisions: ProvisionLedger,
  ) {}

  async provide(
    db: Database,
    actor: Actor,
    serial: bigint,
    requestId: string,
  ): Promise<CertifiedBasicFour> {
    const result = await db.transaction(async (tx) => {
      const verifier = await this.verifiers.forActor(tx, actor);
      const verifierKind = SIGNATURE_VERIFIER_KINDS.find((k) => k === actor.type);
      if (!verifierKind) {
        throw new AppError(
          'forbidden',
          'certified-basic-four.not-signature-verifier',
          'certified basic-4 information is provided to 署名検証者等 only',
        );
      }
      const base = { verifierId: verifier.id, verifierKind, serial: serial.toString() };
      const refuse = async (
        reason: Refusal,
        held: HeldCertificate | null,
      ): Promise<{ refused: Refusal }> => {
        await this.audit.append(tx, actor, {
          action: 'jpki.certified-basic-four.provide',
          ...(held
            ? { subjectType: 'resident', subject: held.residentCode }
            : { subjectType: 'certificate', subject: serial.toString() }),
          purpose: 'certifiedBasicFour',
          outcome: 'denied',
          requestId,
          details: { ...base, reason },
        });
        return { refused: reason };
      };
      const held = await issuedCertificate(tx, serial);
      if (!held) return refuse('unknown-certificate', null);
      if (held.kind !== 'sign') return refuse('not-signing-certificate', null);
      const bad = invalidity(held, this.clock.now());
      if (bad) return refuse(bad, held);
      const consent = await tx.query<{ state: string }>(
        'SELECT state FROM jpki_consents WHERE person_id = $1',
        [held.personId],
      );
      if (consent.rows[0]?.state !== 'given') return refuse('no-consent', held);
      const latest = await this.registry.latestOf(tx, held.personId);
      if (!latest || latest.status !== 'current') return refuse('record-changed', held);
      const r = latest.record;
      const expected = signingCertificateOtherNames(r).map((o) => `${o.oid}=${o.value}`);
      const recorded = recordedOtherNames(held.certificate);
      if (expected.length !== recorded.length || expected.some((v, i) => v !== recorded[i])) {
        return refuse('record-changed', held);
      }
      await this.provisions.count(tx, {
        verifierId: verifier.id,
        verifierKind,
        kind: 'certifiedBasicFour',
      });
      await this.audit.append(tx, actor, {
        action: 'jpki.certified-basic-four.provide',
        subjectType: 'resident',
        // The holder's current code (a resident-code change does not void the certificate).
        subject: r.residentCode,
        purpose: 'certifiedBasicFour',
        requestId,
        details: base,
      });
      return {
        provided: {
          serial: held.serial,
          name: r.name,
          birthDate: r.birthDate,
          sex: r.sex,
          address: r.address,
        },
      };
    });
    if ('refused' in result) {
      const x = REFUSALS[result.refused];
      throw new AppError(x.kind, `certified-basic-four.${result.refused}`, x.detail);
    }
    return result.provided;
  }
}
