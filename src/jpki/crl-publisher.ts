/**
 * 失効情報ファイル (第16条/第35条): full CRLs, made periodically and kept for the retention
 * period. Per CA generation there is one CRL per municipality partition that has ever had a
 * certificate from that generation (matching each certificate's cRLDistributionPoints) and
 * an ARL (authority revocation list) for CA certificates.
 *
 * Partition CRLs carry a critical issuingDistributionPoint naming the same distribution point
 * as the certificates, so a verifier cannot mistake one municipality's list for another's.
 */
import type { Config } from '../config.ts';
import type { AuditActor, AuditLog } from '../platform/audit.ts';
import type { Clock } from '../platform/clock.ts';
import type { Database, Queryable } from '../platform/db.ts';
import { wholeSeconds } from '../pki/der.ts';
import { buildCrl, type CrlEntry, type IssuingDistributionPointInput } from '../pki/crl.ts';
import { encodeGeneralName } from '../pki/x509.ts';
import type { CaGeneration, CaService } from './ca.ts';
import { crlUrl } from './issuance.ts';
import {
  type CertificateKind,
  CERTIFICATE_KINDS,
  crlDistributionPointName,
} from './jpki.profiles.ts';
import type { PartitionNames } from './partitions.ts';
import { addYears, type PublishedReason } from './revocation.ts';

export interface PublishOptions {
  kinds?: readonly CertificateKind[];
  /** Only these CA generations (default: every generation whose certificate is still valid). */
  generation?: number;
  /** Only these partitions (municipality codes or 'arl'); default all. */
  partitions?: readonly string[];
}

export interface PublishReport {
  crls: number;
  entries: number;
  byCa: { kind: CertificateKind; generation: number; crls: number; entries: number }[];
}

export interface StoredCrl {
  crlNumber: string;
  der: Buffer;
  thisUpdate: Date;
  nextUpdate: Date;
}

type EntryRow = {
  municipality_code: string;
  serial: string;
  revoked_at: Date;
  crl_reason: PublishedReason;
};

export class CrlPublisher {
  constructor(
    private readonly clock: Clock,
    private readonly config: Pick<Config, 'jpki' | 'publicUrl'>,
    private readonly cas: CaService,
    private readonly partitions: PartitionNames,
    private readonly audit: AuditLog,
  ) {}

  /** Publishes the CRLs (and ARLs) of every live CA generation. */
  async publish(
    db: Database,
    actor: AuditActor,
    options: PublishOptions = {},
  ): Promise<PublishReport> {
    const report: PublishReport = { crls: 0, entries: 0, byCa: [] };
    const now = this.clock.now();
    for (const ca of await this.cas.list(db)) {
      if (options.kinds && !options.kinds.includes(ca.kind)) continue;
      if (options.generation !== undefined && options.generation !== ca.generation) continue;
      if (ca.notAfter.getTime() <= now.getTime()) continue;
      const r = await this.#publishCa(db, ca, options.partitions);
      report.byCa.push({ kind: ca.kind, generation: ca.generation, ...r });
      report.crls += r.crls;
      report.entries += r.entries;
    }
    await db.transaction((tx) =>
      this.audit.append(tx, actor, {
        action: 'jpki.crl.publish',
        subjectType: 'system',
        details: { crls: report.crls, entries: report.entries },
      }),
    );
    return report;
  }

  async #publishCa(
    db: Database,
    ca: CaGeneration,
    only: readonly string[] | undefined,
  ): Promise<{ crls: number; entries: number }> {
    const thisUpdate = wholeSeconds(this.clock.now());
    const nextUpdate = new Date(thisUpdate.getTime() + this.config.jpki.crlValidityHours * 3600e3);
    const signer = await this.cas.signerFor(db, ca);
    const partitions = await db.query<{ municipality_code: string }>(
      `SELECT DISTINCT municipality_code FROM jpki_certificates
        WHERE kind = $1 AND ca_generation = $2 AND state = 'issued' ORDER BY municipality_code`,
      [ca.kind, ca.generation],
    );
    const wanted = partitions.rows
      .map((r) => r.municipality_code)
      .filter((code) => !only || only.includes(code));
    // Entries of unexpired certificates, by partition then serial (RFC 5280 §3.3: an entry may
    // be dropped once the certificate has expired); only the wanted partitions' entries are read.
    const rows = await db.query<EntryRow>(
      `SELECT c.municipality_code, r.serial::text AS serial, r.revoked_at, r.crl_reason
         FROM jpki_revocations r JOIN jpki_certificates c ON c.serial = r.serial
        WHERE r.kind = $1 AND r.ca_generation = $2 AND c.not_after > $3
          AND ($4::text[] IS NULL OR c.municipality_code = ANY($4::text[]))
        ORDER BY c.municipality_code, r.serial`,
      [ca.kind, ca.generation, thisUpdate, only ? wanted : null],
    );
    const byPartition = new Map<string, CrlEntry[]>();
    for (const row of rows.rows) {
      let list = byPartition.get(row.municipality_code);
      if (!list) byPartition.set(row.municipality_code, (list = []));
      list.push({ serial: BigInt(row.serial), revokedAt: row.revoked_at, reason: row.crl_reason });
    }
    const made: { partition: string; crlNumber: bigint; der: Buffer; entries: number }[] = [];
    const make = async (
      partition: string,
      issuingDistributionPoint: IssuingDistributionPointInput,
      entries: CrlEntry[],
    ): Promise<void> => {
      const crlNumber = await nextCrlNumber(db);
      const der = await buildCrl(
        {
          issuer: ca.subject,
          thisUpdate,
          nextUpdate,
          crlNumber,
          authorityKeyId: ca.keyId,
          issuingDistributionPoint,
          entries,
        },
        signer,
      );
      made.push({ partition, crlNumber, der, entries: entries.length });
    };
    for (const code of wanted) {
      const names = await this.partitions.of(db, code);
      if (!names) continue;
      const entries = byPartition.get(code) ?? [];
      const fullName = Buffer.concat([
        encodeGeneralName({
          directoryName: crlDistributionPointName(
            ca.kind,
            names.prefectureRomaji,
            names.municipalityRomaji,
          ),
        }),
        encodeGeneralName({ uri: crlUrl(this.config.publicUrl, ca.kind, ca.generation, code) }),
      ]);
      await make(code, { fullName, onlyContainsUserCerts: true }, entries);
    }
    if (!only || only.includes('arl')) {
      // ARL: CA certificates this key issued that are revoked — its own, once compromised.
      const entries: CrlEntry[] = ca.compromisedAt
        ? [{ serial: ca.serial, revokedAt: ca.compromisedAt, reason: 'cACompromise' }]
        : [];
      await make(
        'arl',
        { fullName: encodeGeneralName({ directoryName: ca.subject }), onlyContainsCACerts: true },
        entries,
      );
    }
    const retainUntil = addYears(nextUpdate, this.config.jpki.retentionYears);
    for (let i = 0; i < made.length; i += 500) {
      const batch = made.slice(i, i + 500);
      await db.query(
        `INSERT INTO jpki_crls (crl_number, kind, generation, partition, this_update, next_update,
           entries, der, retain_until)
         SELECT n, $1, $2, p, $3, $4, e, d, $5
           FROM unnest($6::bigint[], $7::text[], $8::int[], $9::bytea[]) AS t(n, p, e, d)`,
        [
          ca.kind,
          ca.generation,
          thisUpdate,
          nextUpdate,
          retainUntil,
          batch.map((m) => m.crlNumber.toString()),
          batch.map((m) => m.partition),
          batch.map((m) => m.entries),
          batch.map((m) => m.der),
        ],
      );
    }
    return { crls: made.length, entries: made.reduce((n, m) => n + m.entries, 0) };
  }

  /** The latest CRL of a partition (or 'arl'); generation defaults to the newest live one. */
  async latest(
    db: Queryable,
    kind: CertificateKind,
    partition: string,
    generation?: number,
  ): Promise<StoredCrl | null> {
    const r = await db.query<{
      crl_number: string;
      der: Uint8Array;
      this_update: Date;
      next_update: Date;
    }>(
      `SELECT crl_number::text AS crl_number, der, this_update, next_update FROM jpki_crls
        WHERE kind = $1 AND partition = $2 AND ($3::int IS NULL OR generation = $3)
        ORDER BY generation DESC, jpki_crls.crl_number DESC LIMIT 1`,
      [kind, partition, generation ?? null],
    );
    const row = r.rows[0];
    return row
      ? {
          crlNumber: row.crl_number,
          der: Buffer.from(row.der),
          thisUpdate: row.this_update,
          nextUpdate: row.next_update,
        }
      : null;
  }

  /** When the last full publication ran (null: never). */
  async lastPublished(db: Queryable): Promise<Date | null> {
    const r = await db.query<{ t: Date | null }>(
      "SELECT max(this_update) AS t FROM jpki_crls WHERE partition = 'arl'",
    );
    return r.rows[0]?.t ?? null;
  }

  /** Publishes when the interval has passed since the last publication. */
  async publishIfDue(db: Database, actor: AuditActor): Promise<PublishReport | null> {
    const last = await this.lastPublished(db);
    const due =
      !last ||
      this.clock.now().getTime() - last.getTime() >= this.config.jpki.crlIntervalHours * 3600e3;
    return due ? this.publish(db, actor) : null;
  }

  static readonly KINDS = CERTIFICATE_KINDS;
}

async function nextCrlNumber(db: Queryable): Promise<bigint> {
  const r = await db.query<{ n: string }>("SELECT nextval('jpki_crl_number')::text AS n");
  return BigInt(r.rows[0]!.n);
}
