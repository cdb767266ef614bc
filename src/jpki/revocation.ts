/**
 * Revocation records (失効情報), effective the moment they are written: OCSP reads them
 * directly, and the next CRL of the certificate's partition lists them. Expiry (有効期間の満了)
 * is derived from notAfter and never recorded.
 *
 * Legal categories (GLOSSARY.md) and the RFC 5280 reason each is published with:
 * - `request` 失効申請等情報 (第11条/第30条): cessationOfOperation, or superseded when a new
 *   certificate of the same kind and medium replaced it;
 * - `lossReport` (the same articles: 紛失): keyCompromise;
 * - `registryChange` 異動等失効情報 (第12条/第31条; recorded from the registry, next issue):
 *   affiliationChanged;
 * - `recordError` 記録誤り等に係る情報 (第13条/第32条): affiliationChanged — the contents
 *   are wrong — and the holder is notified (a holder notice is recorded);
 * - `issuerKeyCompromise` 発行者署名符号の漏えい等 (第14条/第33条): cACompromise, with a
 *   public announcement (公示);
 * - `cardCertificateRevoked` (第16条の13/第35条の13, next issue): cessationOfOperation.
 */
import { ChangeFeed } from '../platform/change-feed.ts';
import type { AuditActor, AuditLog } from '../platform/audit.ts';
import type { Clock } from '../platform/clock.ts';
import { type Database, pgArray, type Queryable, type Tx } from '../platform/db.ts';
import { AppError } from '../platform/errors.ts';
import type { CaGeneration, CaService } from './ca.ts';

export const REVOCATION_CATEGORIES = [
  'request',
  'lossReport',
  'registryChange',
  'recordError',
  'issuerKeyCompromise',
  'cardCertificateRevoked',
] as const;
export type RevocationCategory = (typeof REVOCATION_CATEGORIES)[number];

export type PublishedReason =
  | 'unspecified'
  | 'keyCompromise'
  | 'cACompromise'
  | 'affiliationChanged'
  | 'superseded'
  | 'cessationOfOperation';

export const DEFAULT_REASON: Record<RevocationCategory, PublishedReason> = {
  request: 'cessationOfOperation',
  lossReport: 'keyCompromise',
  registryChange: 'affiliationChanged',
  recordError: 'affiliationChanged',
  issuerKeyCompromise: 'cACompromise',
  cardCertificateRevoked: 'cessationOfOperation',
};

export interface RevocationInput {
  serial: bigint;
  category: RevocationCategory;
  /** Defaults to {@link DEFAULT_REASON} of the category. */
  crlReason?: PublishedReason;
  supersededBy?: bigint;
  requestId?: string;
  /** What caused it when no person asked (`event:<id>`, `certificate:<serial>`). */
  cause?: string;
}

export interface RevocationRecord {
  serial: string;
  category: RevocationCategory;
  crlReason: PublishedReason;
  revokedAt: Date;
}

/** Something to run in the same transaction after a certificate is revoked (e.g. the mobile cascade). */
export type RevocationHook = (
  tx: Tx,
  actor: AuditActor,
  revoked: RevocationRecord & { personId: string; kind: string; medium: string },
) => Promise<void>;

export function addYears(d: Date, years: number): string {
  const x = new Date(d.getTime());
  x.setUTCFullYear(x.getUTCFullYear() + years);
  return x.toISOString().slice(0, 10);
}

export class RevocationService {
  readonly #hooks: RevocationHook[] = [];

  constructor(
    private readonly clock: Clock,
    private readonly audit: AuditLog,
    private readonly retentionYears: number,
  ) {}

  /** Registers a hook run after every revocation, inside its transaction. */
  onRevoked(hook: RevocationHook): void {
    this.#hooks.push(hook);
  }

  /**
   * Locks, in serial order, the issued certificates among `serials` and the smartphone
   * certificates of the same holder and kind as any card certificate among them (what a
   * revocation cascades to, 第16条の13 / 第35条の13). A transaction revoking several
   * certificates takes them all here first: every revocation then advances the revocation
   * epoch and appends to the audit chain, both held to the commit, and a certificate locked
   * after them could be held by a revocation waiting for them.
   */
  async lockCertificates(tx: Queryable, serials: readonly string[]): Promise<void> {
    if (serials.length === 0) return;
    await tx.query(
      `SELECT 1 FROM jpki_certificates c
        WHERE c.state = 'issued'
          AND (c.serial = ANY($1::bigint[])
               OR (c.medium = 'mobile' AND (c.person_id, c.kind) IN (
                     SELECT person_id, kind FROM jpki_certificates
                      WHERE serial = ANY($1::bigint[]) AND medium = 'card')))
        ORDER BY c.serial FOR UPDATE OF c`,
      [pgArray(serials)],
    );
  }

  /**
   * Records a revocation. Refuses a certificate that is not issued (`jpki.certificate-not-found`)
   * or already revoked (`jpki.already-revoked`).
   */
  async revoke(tx: Tx, actor: AuditActor, input: RevocationInput): Promise<RevocationRecord> {
    // With the certificates its cascade may revoke, before the epoch and the audit chain.
    await this.lockCertificates(tx, [input.serial.toString()]);
    const r = await tx.query<{
      kind: string;
      medium: string;
      ca_generation: number;
      person_id: string;
      not_after: Date;
      revoked: boolean;
    }>(
      `SELECT c.kind, c.medium, c.ca_generation, c.person_id, c.not_after,
              EXISTS (SELECT 1 FROM jpki_revocations r WHERE r.serial = c.serial) AS revoked
         FROM jpki_certificates c WHERE c.serial = $1 AND c.state = 'issued'`,
      [input.serial.toString()],
    );
    const cert = r.rows[0];
    if (!cert) {
      throw new AppError(
        'notFound',
        'jpki.certificate-not-found',
        'no issued certificate has this serial',
      );
    }
    if (cert.revoked) {
      throw new AppError('conflict', 'jpki.already-revoked', 'this certificate is already revoked');
    }
    const revokedAt = this.clock.now();
    const crlReason = input.crlReason ?? DEFAULT_REASON[input.category];
    // Every process's OCSP cache learns of it from this epoch (src/platform/change-feed.ts).
    const epoch = await ChangeFeed.advance(tx, 'jpki.revocations');
    await tx.query(
      `INSERT INTO jpki_revocations (serial, kind, ca_generation, category, crl_reason, revoked_at,
         superseded_by, requested_by, request_id, retain_until, cause, epoch)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)`,
      [
        input.serial.toString(),
        cert.kind,
        cert.ca_generation,
        input.category,
        crlReason,
        revokedAt,
        input.supersededBy?.toString() ?? null,
        actor.id,
        input.requestId ?? null,
        addYears(cert.not_after, this.retentionYears),
        input.cause ?? null,
        epoch,
      ],
    );
    if (input.category === 'recordError') {
      // 第13条第2項: the agency notifies the holder promptly; the notice is recorded here and
      // delivered by the municipality / the holder's portal.
      await tx.query(
        `INSERT INTO jpki_holder_notices (serial, person_id, reason, created_at)
         VALUES ($1, $2, 'recordError', $3)`,
        [input.serial.toString(), cert.person_id, revokedAt],
      );
    }
    await this.audit.append(tx, actor, {
      action: 'jpki.certificate.revoke',
      subjectType: 'certificate',
      subject: input.serial.toString(),
      outcome: 'success',
      ...(input.requestId ? { requestId: input.requestId } : {}),
      details: {
        category: input.category,
        crlReason,
        supersededBy: input.supersededBy?.toString() ?? null,
        cause: input.cause ?? null,
      },
    });
    const record: RevocationRecord = {
      serial: input.serial.toString(),
      category: input.category,
      crlReason,
      revokedAt,
    };
    for (const hook of this.#hooks) {
      await hook(tx, actor, {
        ...record,
        personId: cert.person_id,
        kind: cert.kind,
        medium: cert.medium,
      });
    }
    return record;
  }

  /**
   * 発行者署名符号の漏えい等 (第14条/第33条): marks the key compromised, revokes every
   * certificate it signed in one statement, and records the public announcement (公示).
   */
  async issuerKeyCompromise(
    db: Database,
    cas: CaService,
    actor: AuditActor,
    ca: CaGeneration,
  ): Promise<{ revoked: number; announcementId: string }> {
    return db.transaction(async (tx) => {
      const at = await cas.markCompromised(tx, ca);
      // Issuance recorded but not yet stored is abandoned: the certificate being signed with
      // this key is discarded when the issuer tries to store it, never handed out unrevoked.
      const abandoned = await tx.query(
        `UPDATE jpki_certificates SET state = 'abandoned'
          WHERE kind = $1 AND ca_generation = $2 AND state = 'pending'`,
        [ca.kind, ca.generation],
      );
      const epoch = await ChangeFeed.advance(tx, 'jpki.revocations');
      const r = await tx.query(
        `INSERT INTO jpki_revocations (serial, kind, ca_generation, category, crl_reason,
           revoked_at, requested_by, retain_until, epoch)
         SELECT c.serial, c.kind, c.ca_generation, 'issuerKeyCompromise', 'cACompromise', $3, $4,
                (c.not_after + make_interval(years => $5))::date, $6
           FROM jpki_certificates c
          WHERE c.kind = $1 AND c.ca_generation = $2 AND c.state = 'issued'
            AND NOT EXISTS (SELECT 1 FROM jpki_revocations x WHERE x.serial = c.serial)`,
        [ca.kind, ca.generation, at, actor.id, this.retentionYears, epoch],
      );
      const a = await tx.query<{ id: string }>(
        `INSERT INTO jpki_announcements (category, kind, generation, revoked_count, announced_at)
         VALUES ('issuerKeyCompromise', $1, $2, $3, $4) RETURNING id::text AS id`,
        [ca.kind, ca.generation, r.rowCount, at],
      );
      await this.audit.append(tx, actor, {
        action: 'jpki.ca.compromise',
        subjectType: 'ca',
        subject: `${ca.kind}/${ca.generation}`,
        details: {
          revoked: r.rowCount,
          abandoned: abandoned.rowCount,
          announcement: a.rows[0]!.id,
        },
      });
      return { revoked: r.rowCount, announcementId: a.rows[0]!.id };
    });
  }
}
