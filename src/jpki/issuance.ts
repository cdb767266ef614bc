/**
 * Issuance of JPKI certificates (電子証明書の発行, 公的個人認証法第3条/第22条 for the card,
 * 第16条の2/第35条の2 for a smartphone) and the issuance record (発行記録, 第8条/第27条).
 *
 * The order is fixed (DESIGN.md habit 3): prepare the to-be-signed certificate → check it
 * against its profile → allocate the serial and write the record ('pending') in one
 * transaction → sign once, outside any transaction → store the DER ('issued') and supersede
 * the holder's previous certificate of the same kind and medium in a second transaction.
 * A crash between the two leaves a visible 'pending' record; {@link IssuanceService.abandonStale}
 * settles it. No signed certificate ever exists without its record.
 */
import { createHash, createPublicKey, verify as cryptoVerify } from 'node:crypto';
import type { Config } from '../config.ts';
import type { Actor } from '../platform/actors.ts';
import type { AuditActor, AuditEntryInput, AuditLog } from '../platform/audit.ts';
import type { Clock } from '../platform/clock.ts';
import {
  advisoryLockKey,
  type ArrayElement,
  type Database,
  pgArray,
  type Tx,
} from '../platform/db.ts';
import { AppError } from '../platform/errors.ts';
import { batchOrEach, GroupCommit, type Outcome } from '../platform/group-commit.ts';
import type { TbsSigner } from '../pki/algorithms.ts';
import { DerError, fromPem, toPem, wholeSeconds } from '../pki/der.ts';
import { csrFromPem, parseCsr, verifyProofOfPossession } from '../pki/csr.ts';
import {
  assembleCertificate,
  authorityInfoAccess,
  authorityKeyIdentifier,
  buildTbsCertificate,
  certificatePolicies,
  crlDistributionPoints,
  encodeName,
  type Extension,
  extendedKeyUsage,
  issuerAltName,
  keyUsage,
  OIDS,
  parseCertificate,
  spkiFromPem,
  spkiInfo,
  subjectAltName,
  subjectKeyIdentifier,
} from '../pki/x509.ts';
import type { RegistryService } from '../registry/registry.service.ts';
import type { StoredVersion } from '../registry/registry.store.ts';
import { signingCertificateOtherNames } from './basic-four.ts';
import { assertProfile, type CaGeneration, type CaService, nextSerials, opaqueId } from './ca.ts';
import {
  caJapaneseName,
  type CertificateKind,
  crlDistributionPointName,
  type Medium,
  PROFILE_OF,
  policyOid,
} from './jpki.profiles.ts';
import type { PartitionNames } from './partitions.ts';
import { addYears, type RevocationService } from './revocation.ts';
import { certificateNotAfter, jstDateOf } from './validity.ts';

/** The key a certificate is issued for: a PKCS#10 request, or a bare SPKI PEM. */
export type KeySource = { csr: string } | { publicKey: string };

export interface CardIssuanceRequest {
  kind: CertificateKind;
  residentCode: string;
  key: KeySource;
}

/**
 * 移動端末設備用電子証明書の発行の申請 (第16条の2第2項): the applicant's 基本4情報,
 * the phone's public key (bound by its hash), signed with the card signing key.
 */
export interface MobileApplication {
  kind: CertificateKind;
  /** PKCS#10 made by the phone: proves possession of the phone's key. */
  csr: string;
  /** The card signing certificate (PEM) whose key signed `document`. */
  cardCertificate: string;
  /** base64 of the UTF-8 JSON application document (see {@link MobileApplicationDocument}). */
  document: string;
  /** base64 RSASSA-PKCS1-v1_5 / SHA-256 signature over the document bytes. */
  signature: string;
}

export interface MobileApplicationDocument {
  type: 'kiban.jpki.mobile-application/v1';
  kind: CertificateKind;
  name: string;
  birthDate: string;
  sex: 'male' | 'female';
  address: string;
  /** hex SHA-256 of the phone key's SubjectPublicKeyInfo DER. */
  devicePublicKeySha256: string;
  /** When the applicant signed (ISO 8601); accepted within {@link APPLICATION_FRESHNESS_MS}. */
  signedAt: string;
}

export const APPLICATION_FRESHNESS_MS = 15 * 60 * 1000;

export interface IssuedCertificate {
  serial: string;
  certificate: string;
}

/**
 * Concurrent card requests handled in one transaction at most (group commit). 256 rather
 * than 64 since the batch route fills batches: A/B with the card batch benchmark, PGlite
 * ~450/s → ~650/s, PostgreSQL ~630/s → ~720/s; at most 64 requests are in flight on the
 * single route in the benchmark, so that figure does not move.
 */
export const ISSUANCE_BATCH = 256;

/** What a pending issuance record is made from. */
interface RecordSpec {
  holder: StoredVersion;
  kind: CertificateKind;
  medium: Medium;
  spki: Buffer;
  ca: CaGeneration;
  notAfter: Date;
  authorisedBy: bigint | null;
  actor: AuditActor;
  requestId: string;
}

/** A card request waiting for its batch. */
interface CardItem {
  actor: Actor;
  req: CardIssuanceRequest;
  spki: Buffer;
  requestId: string;
}

/** A signed certificate waiting to be stored with its batch. */
interface StoreItem {
  actor: AuditActor;
  prepared: Prepared;
  certificate: Buffer;
  requestId: string;
}

interface Stages {
  prepare: GroupCommit<CardItem, Prepared>;
  store: GroupCommit<StoreItem, boolean>;
}

const SIGN_KEY_USAGE = keyUsage(['digitalSignature', 'nonRepudiation']);
const AUTH_KEY_USAGE = keyUsage(['digitalSignature']);
const AUTH_EXTENDED_KEY_USAGE = extendedKeyUsage([OIDS.clientAuth]);

/** Pending records older than this are abandoned by the scheduled sweep. */
export const PENDING_TIMEOUT_MS = 10 * 60 * 1000;

interface Prepared {
  serial: bigint;
  tbs: Buffer;
  ca: CaGeneration;
  /** The CA's signer, read in the transaction that recorded the certificate. */
  signer: TbsSigner;
  personId: string;
  residentCode: string;
  municipalityCode: string;
  kind: CertificateKind;
  medium: Medium;
}

const badKey = (detail: string, pointer: string): AppError =>
  new AppError('badRequest', 'jpki.bad-key', detail, { errors: [{ pointer, message: detail }] });

/**
 * Reads and checks the subject key; returns its SPKI DER. `at` is the JSON pointer of the
 * object holding the key in the request body (for the errors' pointers).
 */
export function subjectKeyOf(key: KeySource, at = '/body'): Buffer {
  let spki: Buffer;
  if ('csr' in key) {
    let csr;
    try {
      csr = parseCsr(csrFromPem(key.csr));
    } catch (e) {
      if (e instanceof DerError)
        throw badKey('csr is not a well-formed PKCS#10 request', `${at}/csr`);
      throw e;
    }
    let ok = false;
    try {
      ok = verifyProofOfPossession(csr);
    } catch {
      ok = false;
    }
    if (!ok) {
      throw badKey(
        'the csr signature does not verify with its own key (no proof of possession)',
        `${at}/csr`,
      );
    }
    spki = csr.spki;
  } else {
    try {
      spki = spkiFromPem(key.publicKey);
    } catch {
      throw badKey('publicKey is not a PEM SubjectPublicKeyInfo', `${at}/publicKey`);
    }
  }
  const pointer = 'csr' in key ? `${at}/csr` : `${at}/publicKey`;
  let info;
  try {
    info = spkiInfo(spki);
  } catch {
    throw badKey('the public key cannot be read', pointer);
  }
  if (
    info.type !== 'rsa' ||
    info.bits < 2048 ||
    info.bits > 4096 ||
    info.publicExponent !== 65537n
  ) {
    throw badKey('JPKI keys are RSA of 2048 to 4096 bits with exponent 65537', pointer);
  }
  return spki;
}

export class IssuanceService {
  /** Partitions (`kind/generation/municipality`) known to have a published CRL. */
  readonly #published = new Set<string>();
  /** Extensions shared by every certificate of a kind, medium, CA generation and partition. */
  readonly #sharedExtensions = new Map<
    string,
    Record<'policies' | 'ian' | 'crldp' | 'aki' | 'aia', Extension>
  >();
  /** The group-commit stages, one pair per database. */
  readonly #stages = new WeakMap<Database, Stages>();

  constructor(
    private readonly clock: Clock,
    private readonly config: Pick<Config, 'jpki' | 'publicUrl'>,
    private readonly cas: CaService,
    private readonly registry: RegistryService,
    private readonly revocations: RevocationService,
    private readonly partitions: PartitionNames,
    private readonly audit: AuditLog,
    /** Called after a certificate is stored, e.g. to publish a new CRL partition. */
    private readonly afterIssue: (c: {
      kind: CertificateKind;
      generation: number;
      municipalityCode: string;
    }) => Promise<void> = async () => undefined,
  ) {}

  /**
   * 個人番号カード用: requested by the resident's municipality. Concurrent requests share their
   * transactions (group commit, {@link ISSUANCE_BATCH} at most): one transaction records the
   * pending certificates of a batch, each is signed on its own, one transaction stores them.
   * A request is never kept waiting for company: a lone request goes at once.
   */
  async issueForCard(
    db: Database,
    actor: Actor,
    req: CardIssuanceRequest,
    requestId: string,
    at = '/body',
  ): Promise<IssuedCertificate> {
    const spki = subjectKeyOf(req.key, at);
    const prepared = await this.#stagesOf(db).prepare.submit({ actor, req, spki, requestId });
    return this.#signAndStore(db, actor, prepared, requestId);
  }

  /**
   * 個人番号カード用, many cards at once (a municipality setting up a delivery of cards before
   * hand-over): each request goes exactly as {@link issueForCard} would — same checks, audit
   * entries, records and answers — and is answered on its own; one refused request does not
   * stop the others. All of them enter the group-commit stages together, so they are recorded
   * and stored {@link ISSUANCE_BATCH} at a time while earlier ones are signed.
   */
  async issueForCards(
    db: Database,
    actor: Actor,
    requests: readonly {
      req: CardIssuanceRequest;
      /** its JSON pointer in the body */ at: string;
    }[],
    requestId: string,
  ): Promise<Outcome<IssuedCertificate>[]> {
    return Promise.all(
      requests.map(async ({ req, at }): Promise<Outcome<IssuedCertificate>> => {
        try {
          return { ok: true, value: await this.issueForCard(db, actor, req, requestId, at) };
        } catch (error) {
          return { ok: false, error };
        }
      }),
    );
  }

  #stagesOf(db: Database): Stages {
    let stages = this.#stages.get(db);
    if (!stages) {
      stages = {
        prepare: new GroupCommit((items) => this.#prepareCards(db, items), ISSUANCE_BATCH),
        store: new GroupCommit((items) => this.#storeAll(db, items), ISSUANCE_BATCH),
      };
      this.#stages.set(db, stages);
    }
    return stages;
  }

  /**
   * Records a batch of card requests in one transaction. If the transaction fails as a whole
   * (a key already in use, a lost connection …), each request is redone in its own, so the
   * failure lands on the request it belongs to and the others go on.
   */
  async #prepareCards(db: Database, items: CardItem[]): Promise<Outcome<Prepared>[]> {
    return batchOrEach(db, items, (tx, batch) => this.#prepareCardsIn(tx, batch));
  }

  async #prepareCardsIn(tx: Tx, items: readonly CardItem[]): Promise<Outcome<Prepared>[]> {
    const holders = await this.registry.holders(
      tx,
      items.map((item) => item.req.residentCode),
    );
    const now = wholeSeconds(this.clock.now());
    const outcomes = new Array<Outcome<Prepared>>(items.length);
    const audits: { actor: AuditActor; input: AuditEntryInput }[] = [];
    const toRecord: { index: number; spec: RecordSpec }[] = [];
    const cas = new Map<CertificateKind, CaGeneration>();
    for (const [index, { actor, req, spki, requestId }] of items.entries()) {
      const holder = holders.get(req.residentCode);
      const readBasicFour = (outcome: 'success' | 'denied'): void => {
        audits.push({
          actor,
          input: {
            action: 'jpki.certificate.read-basic-four',
            subjectType: 'resident',
            subject: req.residentCode,
            purpose: 'jpkiIssuance',
            outcome,
            requestId,
          },
        });
      };
      if (!holder || holder.municipalityCode !== actor.municipalityCode) {
        // Refused: the denied entry commits; the 404 reaches the caller after the commit.
        readBasicFour('denied');
        outcomes[index] = {
          ok: false,
          error: new AppError(
            'notFound',
            'jpki.resident-not-found',
            'no resident with this code is registered in your municipality',
          ),
        };
        continue;
      }
      if (holder.status !== 'current') {
        outcomes[index] = {
          ok: false,
          error: new AppError(
            'conflict',
            'jpki.resident-not-current',
            'certificates are issued only to residents whose record is current',
          ),
        };
        continue;
      }
      let ca = cas.get(req.kind);
      if (!ca) {
        ca = await this.cas.current(tx, req.kind);
        cas.set(req.kind, ca);
      }
      const notAfter = new Date(
        Math.min(
          certificateNotAfter(holder.record.birthDate, this.clock.now()).getTime(),
          ca.notAfter.getTime(),
        ),
      );
      const noValidity = validityLeft(notAfter, now);
      if (noValidity) {
        outcomes[index] = { ok: false, error: noValidity };
        continue;
      }
      readBasicFour('success');
      toRecord.push({
        index,
        spec: {
          holder,
          kind: req.kind,
          medium: 'card',
          spki,
          ca,
          notAfter,
          authorisedBy: null,
          actor,
          requestId,
        },
      });
    }
    const recorded = await this.#record(
      tx,
      toRecord.map((r) => r.spec),
      now,
    );
    toRecord.forEach((r, k) => (outcomes[r.index] = { ok: true, value: recorded[k]! }));
    // Audited last: the entries commit with the pending records (a failure above rolls both
    // back), and the audit chain's head stays locked only for the commit (ADR 0002).
    await this.audit.appendEach(tx, audits);
    // A refusal's entry commits synchronously; only a batch that goes on to sign, all of it,
    // commits with the next.
    if (recorded.length > 0 && recorded.length === audits.length) await commitsWithTheNext(tx);
    return outcomes;
  }

  /**
   * 移動端末設備用 (第16条の2 / 第35条の2): the application is authenticated by the card
   * signing key; the agency checks that card certificate is valid and the signature verifies,
   * then issues for the phone's key. One device per person: the new certificate supersedes the
   * previous mobile certificate of the same kind.
   */
  async issueForMobile(
    db: Database,
    actor: AuditActor,
    app: MobileApplication,
    requestId: string,
  ): Promise<IssuedCertificate> {
    const spki = subjectKeyOf({ csr: app.csr });
    const refuse = (code: string, detail: string): AppError =>
      new AppError('forbidden', `jpki.mobile-${code}`, detail);
    let cardDer: Buffer;
    let card;
    try {
      cardDer = fromPem(app.cardCertificate, 'CERTIFICATE');
      card = parseCertificate(cardDer);
    } catch {
      throw badKey('cardCertificate is not a PEM certificate', '/body/cardCertificate');
    }
    const documentBytes = Buffer.from(app.document, 'base64');
    const signature = Buffer.from(app.signature, 'base64');
    const signatureOk = (() => {
      try {
        return cryptoVerify(
          'sha256',
          documentBytes,
          createPublicKey({ key: card.spki, format: 'der', type: 'spki' }),
          signature,
        );
      } catch {
        return false;
      }
    })();
    const prepared = await db.transaction(async (tx) => {
      const held = await tx.query<{
        serial: string;
        kind: string;
        medium: string;
        person_id: string;
        certificate: Uint8Array | null;
        not_after: Date;
        revoked: boolean;
      }>(
        `SELECT c.serial, c.kind, c.medium, c.person_id, c.certificate, c.not_after,
                (r.serial IS NOT NULL) AS revoked
           FROM jpki_certificates c LEFT JOIN jpki_revocations r ON r.serial = c.serial
          WHERE c.serial = $1 AND c.state = 'issued'`,
        [card.serial.toString()],
      );
      const row = held.rows[0];
      const fail = async (code: string, detail: string): Promise<never> => {
        throw refuse(code, detail);
      };
      if (!row || !row.certificate || !Buffer.from(row.certificate).equals(cardDer)) {
        return fail(
          'unknown-card-certificate',
          'the card certificate was not issued by this agency',
        );
      }
      if (row.kind !== 'sign' || row.medium !== 'card') {
        return fail(
          'not-a-card-signing-certificate',
          'the application must be signed with the card signing key',
        );
      }
      if (row.revoked) {
        return fail(
          'card-certificate-revoked',
          'the card signing certificate has been revoked (第15条第1項)',
        );
      }
      if (row.not_after.getTime() <= this.clock.now().getTime()) {
        return fail('card-certificate-expired', 'the card signing certificate has expired');
      }
      if (!signatureOk) {
        return fail(
          'bad-signature',
          'the application signature does not verify with the card signing key',
        );
      }
      let doc: MobileApplicationDocument;
      try {
        doc = JSON.parse(documentBytes.toString('utf8')) as MobileApplicationDocument;
      } catch {
        return fail('bad-document', 'the application document is not JSON');
      }
      const signedAt = Date.parse(doc.signedAt);
      if (
        doc.type !== 'kiban.jpki.mobile-application/v1' ||
        doc.kind !== app.kind ||
        Number.isNaN(signedAt) ||
        Math.abs(signedAt - this.clock.now().getTime()) > APPLICATION_FRESHNESS_MS
      ) {
        return fail(
          'bad-document',
          'the application document is not a fresh application for this kind',
        );
      }
      if (doc.devicePublicKeySha256 !== createHash('sha256').update(spki).digest('hex')) {
        return fail('key-not-bound', 'the signed application does not name this phone key');
      }
      const latest = await this.registry.latestOf(tx, row.person_id);
      if (!latest || latest.status !== 'current') {
        return fail('resident-not-current', 'the holder is not a current resident');
      }
      const r = latest.record;
      if (
        doc.name !== r.name ||
        doc.birthDate !== r.birthDate ||
        doc.sex !== r.sex ||
        doc.address !== r.address
      ) {
        return fail(
          'basic-four-mismatch',
          'the notified 基本4情報 differ from the resident record',
        );
      }
      if (app.kind === 'auth') {
        // 第35条の2第1項: only a holder of a card authentication certificate who is also a
        // signing-certificate holder may apply.
        const auth = await tx.query(
          `SELECT 1 FROM jpki_certificates c LEFT JOIN jpki_revocations r ON r.serial = c.serial
            WHERE c.person_id = $1 AND c.kind = 'auth' AND c.medium = 'card' AND c.state = 'issued'
              AND r.serial IS NULL AND c.not_after > $2 LIMIT 1`,
          [row.person_id, this.clock.now()],
        );
        if (auth.rows.length === 0) {
          return fail(
            'no-card-auth-certificate',
            'a mobile authentication certificate needs a valid card authentication certificate',
          );
        }
      }
      const ca = await this.cas.current(tx, app.kind);
      const notAfter = new Date(Math.min(row.not_after.getTime(), ca.notAfter.getTime()));
      const now = wholeSeconds(this.clock.now());
      const noValidity = validityLeft(notAfter, now);
      if (noValidity) throw noValidity;
      const [recorded] = await this.#record(
        tx,
        [
          {
            holder: latest,
            kind: app.kind,
            medium: 'mobile',
            spki,
            ca,
            notAfter,
            authorisedBy: BigInt(row.serial),
            actor,
            requestId,
          },
        ],
        now,
      );
      // The read of the 基本4情報 above, audited last: the audit chain's lock is then held only
      // from here to the commit, after the record's foreign keys have locked the holder and the
      // card certificate (taken the other way round, a registry change to the same resident
      // could deadlock with this). A refusal rolls this transaction back and is audited as a
      // denial by the edge.
      await this.audit.append(tx, actor, {
        action: 'jpki.certificate.read-basic-four',
        subjectType: 'certificate',
        subject: row.serial,
        purpose: 'jpkiMobileIssuance',
        requestId,
      });
      return recorded!;
    });
    return this.#signAndStore(db, actor, prepared, requestId);
  }

  /**
   * Allocates serials, builds and checks each to-be-signed certificate against its profile,
   * and writes the pending issuance records, all of `specs` in one statement each.
   */
  async #record(tx: Tx, specs: readonly RecordSpec[], now: Date): Promise<Prepared[]> {
    if (specs.length === 0) return [];
    const serials = await nextSerials(tx, specs.length);
    // The signing key is read once per CA and batch, in this transaction: if it rolls back,
    // nothing is signed; if the key is compromised before the certificate is stored, the
    // pending record is abandoned and the signature discarded (see #storeIn).
    const signers = new Map<string, TbsSigner>();
    const prepared: Prepared[] = [];
    for (const [k, p] of specs.entries()) {
      const serial = serials[k]!;
      let signer = signers.get(p.ca.keyLabel);
      if (!signer) {
        signer = await this.cas.signerFor(tx, p.ca);
        signers.set(p.ca.keyLabel, signer);
      }
      const municipalityCode = p.holder.municipalityCode;
      const partition = await this.partitions.of(tx, municipalityCode);
      if (!partition) throw new Error(`municipality ${municipalityCode} has no CRL partition`);
      const extensions = this.#extensions(p.kind, p.medium, p.ca, partition, p.spki, p.holder);
      const subject =
        p.kind === 'sign'
          ? encodeName([
              { type: 'C', value: 'JP' },
              { type: 'L', value: partition.prefectureRomaji },
              { type: 'L', value: partition.municipalityRomaji },
              {
                type: 'CN',
                value: `${jstStamp(now)}${municipalityCode.slice(0, 5)}${opaqueId(9)}`,
              },
            ])
          : encodeName([
              { type: 'C', value: 'JP' },
              { type: 'CN', value: opaqueId(23) },
            ]);
      const tbs = buildTbsCertificate({
        serial,
        signatureAlgorithm: 'sha256WithRSAEncryption',
        issuer: p.ca.subject,
        notBefore: now,
        notAfter: p.notAfter,
        subject,
        spki: p.spki,
        extensions,
      });
      assertProfile(tbs, PROFILE_OF[p.kind], p.ca.subject, now);
      prepared.push({
        serial,
        tbs,
        ca: p.ca,
        signer,
        personId: p.holder.personId,
        residentCode: p.holder.record.residentCode,
        municipalityCode,
        kind: p.kind,
        medium: p.medium,
      });
    }
    const col = <T extends ArrayElement>(f: (p: RecordSpec, r: Prepared) => T): string =>
      pgArray(specs.map((p, k) => f(p, prepared[k]!)));
    await tx
      .query(
        `INSERT INTO jpki_certificates (serial, kind, medium, ca_generation, person_id, resident_code,
         municipality_code, state, tbs, public_key_sha256, not_before, not_after, authorised_by,
         requested_by, request_id, created_at, retain_until)
         SELECT serial, kind, medium, generation, person_id, resident_code, municipality_code,
                'pending', tbs, key_hash, $13, not_after, authorised_by, requested_by, request_id,
                $13, retain_until
           FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[], $5::uuid[], $6::bpchar[],
                       $7::bpchar[], $8::bytea[], $9::bytea[], $10::timestamptz[], $11::bigint[],
                       $12::uuid[], $14::text[], $15::date[])
             AS u(serial, kind, medium, generation, person_id, resident_code, municipality_code,
                  tbs, key_hash, not_after, authorised_by, requested_by, request_id, retain_until)
          -- The foreign keys lock each holder's persons row (KEY SHARE) as its row goes in: in
          -- person id order, the order registry batches lock persons in, so the two cannot
          -- deadlock over two shared holders.
          ORDER BY person_id`,
        [
          col((_, r) => r.serial.toString()),
          col((p) => p.kind),
          col((p) => p.medium),
          col((p) => p.ca.generation),
          col((_, r) => r.personId),
          col((_, r) => r.residentCode),
          col((_, r) => r.municipalityCode),
          col((_, r) => r.tbs),
          col((p) => createHash('sha256').update(p.spki).digest()),
          col((p) => p.notAfter.toISOString()),
          col((p) => p.authorisedBy?.toString() ?? null),
          col((p) => p.actor.id),
          now,
          col((p) => p.requestId),
          col((p) => addYears(p.notAfter, this.config.jpki.retentionYears)),
        ],
      )
      .catch((err: unknown) => {
        // A key already has a certificate (migration 0011): the transaction is rolled back.
        const e = err as { code?: unknown; constraint?: unknown };
        throw e.code === '23505' && e.constraint === 'jpki_certificates_key_in_use'
          ? new AppError(
              'conflict',
              'jpki.key-reused',
              'this public key already has a certificate; every certificate needs a fresh key pair',
            )
          : err;
      });
    return prepared;
  }

  /**
   * The certificate's extensions, in the order of the real certificates. Those that depend only
   * on the kind, medium, CA generation and partition are encoded once and reused.
   */
  #extensions(
    kind: CertificateKind,
    medium: Medium,
    ca: CaGeneration,
    partition: { prefectureRomaji: string; municipalityRomaji: string; municipalityCode: string },
    spki: Buffer,
    holder: StoredVersion,
  ): Extension[] {
    const key = `${kind}/${medium}/${ca.generation}/${partition.municipalityCode}`;
    let shared = this.#sharedExtensions.get(key);
    if (!shared) {
      const base = this.config.publicUrl;
      shared = {
        policies: certificatePolicies(
          [{ oid: policyOid(this.config.jpki, kind, medium), cpsUri: this.config.jpki.cpsUrl }],
          true,
        ),
        ian: issuerAltName([{ directoryName: caJapaneseName(kind, this.config.jpki) }]),
        crldp: crlDistributionPoints([
          [
            {
              directoryName: crlDistributionPointName(
                kind,
                partition.prefectureRomaji,
                partition.municipalityRomaji,
              ),
            },
            { uri: crlUrl(base, kind, ca.generation, partition.municipalityCode) },
          ],
        ]),
        aki: authorityKeyIdentifier({ keyId: ca.keyId, issuer: ca.subject, serial: ca.serial }),
        aia: authorityInfoAccess({ ocsp: [`${base}/ocsp/${kind}`] }),
      };
      this.#sharedExtensions.set(key, shared);
    }
    const { policies, ian, crldp, aki, aia } = shared;
    if (kind === 'sign') {
      return [
        SIGN_KEY_USAGE,
        subjectAltName(signingCertificateOtherNames(holder.record).map((o) => ({ otherName: o }))),
        policies,
        ian,
        crldp,
        aki,
        subjectKeyIdentifier(spki),
      ];
    }
    return [
      AUTH_KEY_USAGE,
      AUTH_EXTENDED_KEY_USAGE,
      policies,
      ian,
      crldp,
      aia,
      aki,
      subjectKeyIdentifier(spki),
    ];
  }

  async #signAndStore(
    db: Database,
    actor: AuditActor,
    p: Prepared,
    requestId: string,
  ): Promise<IssuedCertificate> {
    const certificate = assembleCertificate(p.tbs, p.signer.algorithm, await p.signer.sign(p.tbs));
    const firstInPartition = await this.#stagesOf(db).store.submit({
      actor,
      prepared: p,
      certificate,
      requestId,
    });
    if (firstInPartition) {
      await this.afterIssue({
        kind: p.kind,
        generation: p.ca.generation,
        municipalityCode: p.municipalityCode,
      });
    }
    return { serial: p.serial.toString(), certificate: toPem(certificate, 'CERTIFICATE') };
  }

  /** Stores a batch of signed certificates in one transaction; alone each, if that fails. */
  async #storeAll(db: Database, items: StoreItem[]): Promise<Outcome<boolean>[]> {
    // Two certificates of one holder, kind and medium are stored one after the other, so the
    // later supersedes the earlier.
    const together = new Set(items.map(holderKey)).size === items.length;
    return batchOrEach(db, items, (tx, batch) => this.#storeIn(tx, batch), together);
  }

  /**
   * Marks the certificates issued, supersedes each holder's previous certificate of the same
   * kind and medium, and audits the issuance. Answers, per certificate, whether it is the first
   * of its CRL partition (whose CRL is then published at once).
   */
  async #storeIn(tx: Tx, items: readonly StoreItem[]): Promise<Outcome<boolean>[]> {
    // One issuance per holder, kind and medium at a time decides what is superseded; the locks
    // are taken in one order, so two batches cannot deadlock.
    await tx.query(
      `SELECT pg_advisory_xact_lock(h)
         FROM (SELECT DISTINCT ${advisoryLockKey('k')} AS h FROM unnest($1::text[]) AS k ORDER BY 1 OFFSET 0) l`,
      [pgArray(items.map(holderKey))],
    );
    const now = this.clock.now();
    const stored = await tx.query<{ serial: string }>(
      `UPDATE jpki_certificates c SET state = 'issued', certificate = u.certificate, issued_at = $3
         FROM unnest($1::bigint[], $2::bytea[]) AS u(serial, certificate)
        WHERE c.serial = u.serial AND c.state = 'pending'
       RETURNING c.serial::text AS serial`,
      [
        pgArray(items.map((i) => i.prepared.serial.toString())),
        pgArray(items.map((i) => i.certificate)),
        now,
      ],
    );
    const storedSerials = new Set(stored.rows.map((r) => r.serial));
    const isStored = (i: StoreItem): boolean => storedSerials.has(i.prepared.serial.toString());
    const kept = items.filter(isStored);
    const previous = await tx.query<{ serial: string; key: string }>(
      `SELECT c.serial::text AS serial, 'jpki/' || c.person_id || '/' || c.kind || '/' || c.medium AS key
         FROM jpki_certificates c LEFT JOIN jpki_revocations r ON r.serial = c.serial
        WHERE (c.person_id, c.kind, c.medium) IN
              (SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[]))
          AND c.state = 'issued' AND c.serial <> ALL($4::bigint[]) AND r.serial IS NULL
          AND c.not_after > $5
        ORDER BY c.serial`,
      [
        pgArray(kept.map((i) => i.prepared.personId)),
        pgArray(kept.map((i) => i.prepared.kind)),
        pgArray(kept.map((i) => i.prepared.medium)),
        pgArray(kept.map((i) => i.prepared.serial.toString())),
        now,
      ],
    );
    // Every certificate the batch supersedes (and their smartphone cascades) before the first
    // revocation takes the revocation epoch and the audit chain.
    await this.revocations.lockCertificates(
      tx,
      previous.rows.map((r) => r.serial),
    );
    const audits: { actor: AuditActor; input: AuditEntryInput }[] = [];
    const firstSeen = new Set<string>();
    const outcomes: Outcome<boolean>[] = [];
    for (const item of items) {
      const p = item.prepared;
      if (!isStored(item)) {
        // Abandoned by the sweep while it was being signed: the certificate is discarded.
        outcomes.push({
          ok: false,
          error: new AppError(
            'unavailable',
            'jpki.issuance-abandoned',
            'issuance was abandoned while the certificate was being signed (it timed out, or the CA key was reported compromised); apply again',
          ),
        });
        continue;
      }
      const superseded = previous.rows.filter((r) => r.key === holderKey(item));
      for (const old of superseded) {
        await this.revocations.revoke(tx, item.actor, {
          serial: BigInt(old.serial),
          category: 'request',
          crlReason: 'superseded',
          supersededBy: p.serial,
          requestId: item.requestId,
        });
      }
      const partition = `${p.kind}/${p.ca.generation}/${p.municipalityCode}`;
      const first = !firstSeen.has(partition) && !(await this.#partitionPublished(tx, p));
      firstSeen.add(partition);
      audits.push({
        actor: item.actor,
        input: {
          action: 'jpki.certificate.issue',
          subjectType: 'certificate',
          subject: p.serial.toString(),
          outcome: 'success',
          requestId: item.requestId,
          details: {
            kind: p.kind,
            medium: p.medium,
            caGeneration: p.ca.generation,
            superseded: superseded.map((r) => r.serial),
          },
        },
      });
      outcomes.push({ ok: true, value: first });
    }
    await this.audit.appendEach(tx, audits);
    return outcomes;
  }

  /**
   * Whether a CRL of the certificate's partition has been published. Once one has, one always
   * is (CRLs are replaced, never withdrawn), so a yes is remembered.
   */
  async #partitionPublished(tx: Tx, p: Prepared): Promise<boolean> {
    const key = `${p.kind}/${p.ca.generation}/${p.municipalityCode}`;
    if (this.#published.has(key)) return true;
    const r = await tx.query(
      `SELECT 1 FROM jpki_crls WHERE kind = $1 AND generation = $2 AND partition = $3 LIMIT 1`,
      [p.kind, p.ca.generation, p.municipalityCode],
    );
    if (r.rows.length === 0) return false;
    this.#published.add(key);
    return true;
  }

  /**
   * Settles issuance that stopped between recording and storing (a crash, a lost connection):
   * pending records older than `olderThanMs` become 'abandoned'. Their certificate was never
   * handed to anyone, so OCSP answers "unknown" and no CRL lists them.
   */
  async abandonStale(
    db: Database,
    actor: AuditActor,
    olderThanMs = PENDING_TIMEOUT_MS,
  ): Promise<string[]> {
    return db.transaction(async (tx) => {
      const r = await tx.query<{ serial: string }>(
        `UPDATE jpki_certificates SET state = 'abandoned'
          WHERE state = 'pending' AND created_at < $1 RETURNING serial`,
        [new Date(this.clock.now().getTime() - olderThanMs)],
      );
      for (const row of r.rows) {
        await this.audit.append(tx, actor, {
          action: 'jpki.certificate.abandon',
          subjectType: 'certificate',
          subject: row.serial,
        });
      }
      return r.rows.map((x) => x.serial).sort((a, b) => Number(BigInt(a) - BigInt(b)));
    });
  }
}

/**
 * Lets the transaction that records a pending certificate commit without waiting for its WAL
 * to reach disk. Nothing leaves the agency on the strength of that commit: the certificate is
 * handed out only after the storing transaction, which commits synchronously and so flushes
 * the WAL up to and including this one (PostgreSQL writes its WAL in order). A crash before
 * then loses a record, its audit entry and its serial together, and no certificate was
 * released — the same outcome as a crash just before this commit. Saves one of the two disk
 * flushes per certificate. Only the path that goes on to sign calls this; a refusal commits
 * its audit entry synchronously.
 */
async function commitsWithTheNext(tx: Tx): Promise<void> {
  await tx.query("SELECT set_config('synchronous_commit', 'off', true)");
}

/** The advisory lock key of a holder's certificates of one kind and medium. */
function holderKey({ prepared: p }: StoreItem): string {
  return `jpki/${p.personId}/${p.kind}/${p.medium}`;
}

/** The refusal for a certificate that would already be expired, or null. */
function validityLeft(notAfter: Date, now: Date): AppError | null {
  return notAfter.getTime() <= now.getTime()
    ? new AppError('conflict', 'jpki.no-validity-left', 'the certificate would already be expired')
    : null;
}

/** Where a partition's CRL is served (also written into certificates). */
export function crlUrl(
  base: string,
  kind: CertificateKind,
  generation: number,
  partition: string,
): string {
  return `${base}/crl/${kind}/${partition}.crl?generation=${generation}`;
}

/** `YYYYMMDDhhmmss` in JST: the leading part of a signing certificate's opaque CN. */
function jstStamp(d: Date): string {
  const j = new Date(d.getTime() + 9 * 3600e3).toISOString();
  return jstDateOf(d).replace(/-/g, '') + j.slice(11, 19).replace(/:/g, '');
}
