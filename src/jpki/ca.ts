/**
 * The JPKI certification authorities (認証局): one self-signed root per kind (署名用 /
 * 利用者証明用), re-keyed by adding generations that stay valid side by side, each with its
 * own delegated OCSP responder. The CA private keys (発行者署名符号) live in the key store —
 * software-wrapped or in a PKCS#11 token — and never leave it.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { JpkiConfig } from '../config.ts';
import type { AuditActor, AuditLog } from '../platform/audit.ts';
import type { Clock } from '../platform/clock.ts';
import type { Database, Queryable, Tx } from '../platform/db.ts';
import { AppError } from '../platform/errors.ts';
import { type TbsSigner, tbsSigner } from '../pki/algorithms.ts';
import { parseDer, readBitString, wholeSeconds } from '../pki/der.ts';
import type { KeyCustody } from '../pki/key-store.ts';
import { checkTbsAgainstProfile, type CertificateProfile } from '../pki/profile.ts';
import {
  assembleCertificate,
  authorityKeyIdentifier,
  basicConstraints,
  buildTbsCertificate,
  crlDistributionPoints,
  extendedKeyUsage,
  keyIdentifier,
  keyUsage,
  OIDS,
  ocspNoCheck,
  parseCertificate,
  subjectAltName,
  subjectKeyIdentifier,
} from '../pki/x509.ts';
import {
  CA_PROFILE,
  caJapaneseName,
  caName,
  type CertificateKind,
  RESPONDER_PROFILE,
  responderName,
} from './jpki.profiles.ts';
import { caNotAfter } from './validity.ts';

export interface CaGeneration {
  kind: CertificateKind;
  generation: number;
  keyLabel: string;
  serial: bigint;
  subject: Buffer;
  /** subjectKeyIdentifier: names the issuer key in every certificate and CRL it signs. */
  keyId: Buffer;
  certificate: Buffer;
  /** The BIT STRING value of the CA's public key, for OCSP issuerKeyHash. */
  publicKey: Buffer;
  spki: Buffer;
  notBefore: Date;
  notAfter: Date;
  compromisedAt: Date | null;
}

export interface OcspResponder {
  serial: bigint;
  kind: CertificateKind;
  generation: number;
  keyLabel: string;
  /** SHA-1 of the responder's public key (ResponderID byKey). */
  keyHash: Buffer;
  certificate: Buffer;
  notBefore: Date;
  notAfter: Date;
}

type CaRow = {
  kind: CertificateKind;
  generation: number;
  key_label: string;
  serial: string;
  subject: Uint8Array;
  key_id: Uint8Array;
  certificate: Uint8Array;
  not_before: Date;
  not_after: Date;
  compromised_at: Date | null;
};

function toGeneration(r: CaRow): CaGeneration {
  const certificate = Buffer.from(r.certificate);
  const parsed = parseCertificate(certificate);
  return {
    kind: r.kind,
    generation: r.generation,
    keyLabel: r.key_label,
    serial: BigInt(r.serial),
    subject: Buffer.from(r.subject),
    keyId: Buffer.from(r.key_id),
    certificate,
    spki: parsed.spki,
    publicKey: subjectPublicKeyBits(parsed.spki),
    notBefore: r.not_before,
    notAfter: r.not_after,
    compromisedAt: r.compromised_at,
  };
}

/** The subjectPublicKey BIT STRING value (without the unused-bits octet) of an SPKI. */
export function subjectPublicKeyBits(spki: Buffer): Buffer {
  return readBitString(parseDer(spki).children[1], 'subjectPublicKey').bytes;
}

export const sha1 = (b: Buffer): Buffer => createHash('sha1').update(b).digest();

const SELECT_CA = `SELECT kind, generation, key_label, serial, subject, key_id, certificate,
  not_before, not_after, compromised_at FROM jpki_cas`;

/** Responder certificates live this long and are replaced when a third of it is left. */
const RESPONDER_DAYS = 90;
const RESPONDER_RENEW_DAYS = 30;

export class CaService {
  readonly #generations = new Map<string, CaGeneration>();

  constructor(
    private readonly clock: Clock,
    private readonly keys: () => KeyCustody,
    private readonly audit: AuditLog,
    private readonly config: JpkiConfig,
    private readonly keyBackend: 'software' | 'pkcs11',
  ) {}

  /** Every CA generation, oldest first. */
  async list(db: Queryable): Promise<CaGeneration[]> {
    const r = await db.query<CaRow>(`${SELECT_CA} ORDER BY kind, generation`);
    return r.rows.map((row) => this.#cached(row));
  }

  #cached(row: CaRow): CaGeneration {
    const key = `${row.kind}/${row.generation}/${row.compromised_at?.toISOString() ?? ''}`;
    let g = this.#generations.get(key);
    if (!g) {
      g = toGeneration(row);
      this.#generations.set(key, g);
    }
    return g;
  }

  async get(db: Queryable, kind: CertificateKind, generation: number): Promise<CaGeneration> {
    const r = await db.query<CaRow>(`${SELECT_CA} WHERE kind = $1 AND generation = $2`, [
      kind,
      generation,
    ]);
    const row = r.rows[0];
    if (!row) throw new AppError('notFound', 'jpki.ca-not-found', 'no such CA generation');
    return this.#cached(row);
  }

  /**
   * The generation that issues new certificates of `kind`: the newest one that is not
   * compromised and is valid now.
   */
  async current(db: Queryable, kind: CertificateKind): Promise<CaGeneration> {
    const now = this.clock.now();
    const r = await db.query<CaRow>(
      `${SELECT_CA} WHERE kind = $1 AND compromised_at IS NULL AND not_before <= $2 AND not_after > $2
        ORDER BY generation DESC LIMIT 1`,
      [kind, now],
    );
    const row = r.rows[0];
    if (!row) {
      throw new AppError(
        'unprocessable',
        'jpki.no-active-ca',
        `there is no usable ${kind} CA: run "kiban ca rollover ${kind}"`,
      );
    }
    return this.#cached(row);
  }

  async signerFor(db: Queryable, ca: CaGeneration): Promise<TbsSigner> {
    return tbsSigner(await this.keys().signer(db, ca.keyLabel));
  }

  /** Creates generation 1 of each kind that has none yet; returns what was created. */
  async ensureCas(db: Database, actor: AuditActor): Promise<CaGeneration[]> {
    const created: CaGeneration[] = [];
    for (const kind of ['sign', 'auth'] as const) {
      const r = await db.query('SELECT 1 FROM jpki_cas WHERE kind = $1 LIMIT 1', [kind]);
      if (r.rows.length === 0) created.push(await this.rollover(db, kind, actor));
    }
    return created;
  }

  /**
   * Adds a generation of `kind`: a new key pair in the key store, a self-signed root shaped
   * like the real ones, and its OCSP responder. Earlier generations stay valid.
   */
  async rollover(db: Database, kind: CertificateKind, actor: AuditActor): Promise<CaGeneration> {
    const latest = await db.query<{ g: number | null }>(
      'SELECT max(generation) AS g FROM jpki_cas WHERE kind = $1',
      [kind],
    );
    const generation = (latest.rows[0]?.g ?? 0) + 1;
    const keyLabel = `jpki/${kind}-ca/${generation}`;
    const now = wholeSeconds(this.clock.now());
    const subject = caName(kind, this.config);
    // Key generation happens in its own transaction: an HSM key cannot be rolled back, and
    // the certificate below is signed outside any transaction (PGlite has one connection).
    const spki = await db.transaction(async (tx) => {
      if (await this.keys().exists(tx, keyLabel)) {
        // A previous attempt created the key but not the certificate: reuse it.
        return (await this.keys().describe(tx, keyLabel)).publicKey!;
      }
      return this.keys().createKeyPair(tx, {
        label: keyLabel,
        algorithm: 'rsa-2048',
        purpose: `発行者署名符号 (${kind} CA generation ${generation})`,
        ...(this.keyBackend === 'pkcs11' ? { backend: 'pkcs11' as const } : {}),
      });
    });
    const serial = await nextSerial(db);
    const tbs = buildTbsCertificate({
      serial,
      signatureAlgorithm: 'sha256WithRSAEncryption',
      issuer: subject,
      notBefore: now,
      notAfter: caNotAfter(now, this.config.caValidityYears),
      subject,
      spki,
      extensions: [
        keyUsage(['keyCertSign', 'cRLSign']),
        subjectAltName([{ directoryName: caJapaneseName(kind, this.config) }]),
        basicConstraints({ ca: true }),
        crlDistributionPoints([[{ directoryName: subject }]]),
        subjectKeyIdentifier(spki),
      ],
    });
    assertProfile(tbs, CA_PROFILE, subject, now);
    const signer = tbsSigner(await this.keys().signer(db, keyLabel));
    const certificate = assembleCertificate(tbs, signer.algorithm, await signer.sign(tbs));
    const parsed = parseCertificate(certificate);
    const keyId = keyIdentifier(spki);
    await db.transaction(async (tx) => {
      await tx.query(
        `INSERT INTO jpki_cas (kind, generation, key_label, serial, subject, key_id, certificate,
           not_before, not_after, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)`,
        [
          kind,
          generation,
          keyLabel,
          serial.toString(),
          subject,
          keyId,
          certificate,
          parsed.notBefore,
          parsed.notAfter,
          now,
        ],
      );
      await this.audit.append(tx, actor, {
        action: 'jpki.ca.create',
        subjectType: 'ca',
        subject: `${kind}/${generation}`,
        details: { serial: serial.toString(), keyLabel, backend: this.keyBackend },
      });
    });
    const ca = await this.get(db, kind, generation);
    await this.ensureResponder(db, ca, actor);
    return ca;
  }

  /** The newest responder of a generation, issuing a fresh one when it nears expiry. */
  async ensureResponder(db: Database, ca: CaGeneration, actor: AuditActor): Promise<OcspResponder> {
    const now = this.clock.now();
    const existing = await this.responder(db, ca);
    if (existing && existing.notAfter.getTime() - now.getTime() > RESPONDER_RENEW_DAYS * 86400e3) {
      return existing;
    }
    const serial = await nextSerial(db);
    const keyLabel = `jpki/${ca.kind}-ocsp/${ca.generation}/${serial}`;
    // Responder keys are software keys: they sign at OCSP rates and live 90 days.
    const spki = await db.transaction((tx) =>
      this.keys().createKeyPair(tx, {
        label: keyLabel,
        algorithm: 'rsa-2048',
        purpose: `OCSP responder for ${ca.kind} CA generation ${ca.generation}`,
      }),
    );
    const notBefore = wholeSeconds(now);
    const notAfter = new Date(
      Math.min(notBefore.getTime() + RESPONDER_DAYS * 86400e3, ca.notAfter.getTime()),
    );
    const tbs = buildTbsCertificate({
      serial,
      signatureAlgorithm: 'sha256WithRSAEncryption',
      issuer: ca.subject,
      notBefore,
      notAfter,
      subject: responderName(ca.kind, ca.generation, this.config),
      spki,
      extensions: [
        keyUsage(['digitalSignature']),
        extendedKeyUsage([OIDS.OCSPSigning]),
        ocspNoCheck(),
        authorityKeyIdentifier({ keyId: ca.keyId }),
        subjectKeyIdentifier(spki),
      ],
    });
    assertProfile(tbs, RESPONDER_PROFILE, ca.subject, now);
    const signer = await this.signerFor(db, ca);
    const certificate = assembleCertificate(tbs, signer.algorithm, await signer.sign(tbs));
    const keyHash = sha1(subjectPublicKeyBits(spki));
    await db.transaction(async (tx) => {
      await tx.query(
        `INSERT INTO jpki_ocsp_responders (serial, kind, generation, key_label, key_hash,
           certificate, not_before, not_after, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)`,
        [
          serial.toString(),
          ca.kind,
          ca.generation,
          keyLabel,
          keyHash,
          certificate,
          notBefore,
          notAfter,
          now,
        ],
      );
      await this.audit.append(tx, actor, {
        action: 'jpki.ocsp-responder.create',
        subjectType: 'ca',
        subject: `${ca.kind}/${ca.generation}`,
        details: { serial: serial.toString() },
      });
    });
    return {
      serial,
      kind: ca.kind,
      generation: ca.generation,
      keyLabel,
      keyHash,
      certificate,
      notBefore,
      notAfter,
    };
  }

  async responder(db: Queryable, ca: CaGeneration): Promise<OcspResponder | null> {
    const r = await db.query<{
      serial: string;
      key_label: string;
      key_hash: Uint8Array;
      certificate: Uint8Array;
      not_before: Date;
      not_after: Date;
    }>(
      `SELECT serial, key_label, key_hash, certificate, not_before, not_after
         FROM jpki_ocsp_responders WHERE kind = $1 AND generation = $2
        ORDER BY not_after DESC LIMIT 1`,
      [ca.kind, ca.generation],
    );
    const row = r.rows[0];
    if (!row) return null;
    return {
      serial: BigInt(row.serial),
      kind: ca.kind,
      generation: ca.generation,
      keyLabel: row.key_label,
      keyHash: Buffer.from(row.key_hash),
      certificate: Buffer.from(row.certificate),
      notBefore: row.not_before,
      notAfter: row.not_after,
    };
  }

  /** Marks a generation's key compromised (the caller revokes and announces). */
  async markCompromised(tx: Tx, ca: CaGeneration): Promise<Date> {
    const now = this.clock.now();
    const r = await tx.query(
      'UPDATE jpki_cas SET compromised_at = $3 WHERE kind = $1 AND generation = $2 AND compromised_at IS NULL',
      [ca.kind, ca.generation, now],
    );
    if (r.rowCount === 0) {
      throw new AppError(
        'conflict',
        'jpki.ca-already-compromised',
        'this CA key is already recorded as compromised',
      );
    }
    return now;
  }
}

/** The next 発行の番号 from the one counter shared by every JPKI certificate. */
export async function nextSerial(db: Queryable): Promise<bigint> {
  const [serial] = await nextSerials(db, 1);
  return serial!;
}

/** `count` serials from the one sequence, in one round trip (a batch of issuance). */
export async function nextSerials(db: Queryable, count: number): Promise<bigint[]> {
  if (count === 0) return [];
  const r = await db.query<{ n: string }>(
    "SELECT nextval('jpki_serial')::text AS n FROM generate_series(1, $1::int)",
    [count],
  );
  return r.rows.map((row) => BigInt(row.n));
}

/** A certificate that fails its profile is a bug: it is never signed. */
export function assertProfile(
  tbs: Buffer,
  profile: CertificateProfile,
  issuer: Buffer,
  now: Date,
): void {
  const problems = checkTbsAgainstProfile(tbs, profile, { issuer, now });
  if (problems.length > 0) {
    throw new Error(`certificate does not match profile ${profile.name}: ${problems.join('; ')}`);
  }
}

/** 23 characters from an unambiguous alphabet: the authentication certificate's CN. */
export function opaqueId(length = 23): string {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
  const bytes = randomBytes(length);
  let s = '';
  for (const b of bytes) s += alphabet[b % alphabet.length];
  return s;
}
