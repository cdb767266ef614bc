/**
 * Holder proof: the holder of a JPKI certificate proves it by signing a server-issued,
 * single-use challenge with the certificate's private key (署名利用者符号 / 利用者証明利用者符号)
 * — the way real JPKI login (利用者証明用電子証明書, 公的個人認証法 第22条) and the consent to the
 * certified basic-4 provision (第18条第3項) work.
 *
 * A proof holds only for a certificate this CA issued (same DER as the issuance record), of the
 * expected kind, not revoked, within its validity now, and whose CA generation is not
 * compromised.
 */
import { type KeyObject, X509Certificate, randomBytes, randomUUID, verify } from 'node:crypto';
import type { Clock } from '../platform/clock.ts';
import type { Queryable } from '../platform/db.ts';
import { AppError } from '../platform/errors.ts';
import type { CertificateKind, Medium } from './jpki.profiles.ts';
import { UNREVOKED } from './registry-revocation.ts';

export type ChallengePurpose = 'residentLogin' | 'consent';
export const CHALLENGE_PURPOSES: readonly ChallengePurpose[] = ['residentLogin', 'consent'];

/** How long a challenge may be answered. */
export const CHALLENGE_LIFETIME_MS = 5 * 60_000;

export interface IssuedChallenge {
  challengeId: string;
  /** Base64 of 32 random bytes. */
  nonce: string;
  expiresAt: string;
}

export class ChallengeService {
  constructor(private readonly clock: Clock) {}

  async issue(db: Queryable, purpose: ChallengePurpose): Promise<IssuedChallenge> {
    const id = randomUUID();
    const nonce = randomBytes(32);
    const now = this.clock.now();
    const expiresAt = new Date(now.getTime() + CHALLENGE_LIFETIME_MS);
    await db.query(
      `INSERT INTO jpki_challenges (id, purpose, nonce, created_at, expires_at)
       VALUES ($1, $2, $3, $4, $5)`,
      [id, purpose, nonce, now, expiresAt],
    );
    // Expired challenges are of no use to anyone: drop them as new ones are made.
    await db.query('DELETE FROM jpki_challenges WHERE expires_at < $1', [
      new Date(now.getTime() - CHALLENGE_LIFETIME_MS),
    ]);
    return { challengeId: id, nonce: nonce.toString('base64'), expiresAt: expiresAt.toISOString() };
  }

  /**
   * Marks the challenge used (in the caller's transaction, so a failed proof that rolls back
   * leaves it usable only if the caller chooses so) and returns its nonce.
   */
  async consume(tx: Queryable, challengeId: string, purpose: ChallengePurpose): Promise<Buffer> {
    // Not a challenge id at all: the same answer as an unknown one, without asking the database.
    if (!new RegExp(CHALLENGE_ID_PATTERN).test(challengeId)) {
      throw new AppError('notFound', 'challenge.unknown', 'no such challenge');
    }
    const found = await tx.query<{
      purpose: string;
      nonce: Buffer | Uint8Array;
      expires_at: Date | string;
      used_at: Date | string | null;
    }>('SELECT purpose, nonce, expires_at, used_at FROM jpki_challenges WHERE id = $1 FOR UPDATE', [
      challengeId,
    ]);
    const row = found.rows[0];
    if (!row) throw new AppError('notFound', 'challenge.unknown', 'no such challenge');
    if (row.purpose !== purpose) {
      throw new AppError(
        'badRequest',
        'challenge.wrong-purpose',
        `this challenge is not for ${purpose}`,
      );
    }
    if (row.used_at !== null) {
      throw new AppError('conflict', 'challenge.used', 'this challenge has been answered already');
    }
    if (new Date(row.expires_at).getTime() <= this.clock.now().getTime()) {
      throw new AppError(
        'gone',
        'challenge.expired',
        'this challenge has expired; ask for a new one',
      );
    }
    await tx.query('UPDATE jpki_challenges SET used_at = $2 WHERE id = $1', [
      challengeId,
      this.clock.now(),
    ]);
    return Buffer.from(row.nonce);
  }
}

/** Challenge ids are UUIDs; anything else is refused before touching the database. */
export const CHALLENGE_ID_PATTERN =
  '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';

/**
 * The exact bytes the holder signs: `kiban-challenge/v1`, the purpose, the challenge id, the
 * nonce (base64) and the statement, one per line, UTF-8, no trailing newline. The statement
 * binds what is being decided (e.g. `consent=given`), so a signature for one decision cannot be
 * replayed for another; it is empty for a login.
 */
export function challengeMessage(
  purpose: ChallengePurpose,
  challengeId: string,
  nonce: Buffer,
  statement: string,
): Buffer {
  return Buffer.from(
    ['kiban-challenge/v1', purpose, challengeId, nonce.toString('base64'), statement].join('\n'),
    'utf8',
  );
}

export interface ProvenHolder {
  serial: bigint;
  personId: string;
  residentCode: string;
  medium: Medium;
  kind: CertificateKind;
  notAfter: string;
}

const refuse = (code: string, detail: string): AppError =>
  new AppError('forbidden', `holder-proof.${code}`, detail);

/**
 * Checks that `signature` over `message` was made with the private key of `certificate`, a
 * valid certificate of `kind` this CA issued; returns whose it is.
 */
export async function proveHolder(
  tx: Queryable,
  deps: { clock: Clock },
  p: { kind: CertificateKind; certificate: Buffer; message: Buffer; signature: Buffer },
): Promise<ProvenHolder> {
  let x509: X509Certificate;
  let publicKey: KeyObject;
  try {
    x509 = new X509Certificate(p.certificate);
    publicKey = x509.publicKey;
  } catch {
    throw new AppError(
      'badRequest',
      'holder-proof.bad-certificate',
      'the certificate is not a DER X.509 certificate',
    );
  }
  let serial: bigint;
  try {
    serial = BigInt(`0x${x509.serialNumber}`);
  } catch {
    throw refuse(
      'unknown-certificate',
      'this certificate was not issued by this certification authority',
    );
  }
  const found = await tx.query<{
    kind: string;
    medium: string;
    person_id: string;
    resident_code: string;
    certificate: Buffer | Uint8Array | null;
    state: string;
    not_before: Date | string;
    not_after: Date | string;
    revoked: boolean;
    ca_compromised: boolean;
  }>(
    `SELECT c.kind, c.medium, c.person_id, c.resident_code, c.certificate, c.state,
            c.not_before, c.not_after,
            NOT (${UNREVOKED}) AS revoked,
            (ca.compromised_at IS NOT NULL) AS ca_compromised
       FROM jpki_certificates c
       JOIN jpki_cas ca ON ca.kind = c.kind AND ca.generation = c.ca_generation
      WHERE c.serial = $1`,
    [serial.toString()],
  );
  const row = found.rows[0];
  if (
    !row ||
    row.state !== 'issued' ||
    !row.certificate ||
    !Buffer.from(row.certificate).equals(p.certificate)
  ) {
    throw refuse(
      'unknown-certificate',
      'this certificate was not issued by this certification authority',
    );
  }
  if (row.kind !== p.kind) {
    throw refuse(
      'wrong-kind',
      p.kind === 'auth'
        ? 'an authentication certificate (利用者証明用電子証明書) is needed here'
        : 'a signing certificate (署名用電子証明書) is needed here',
    );
  }
  if (row.revoked || row.ca_compromised)
    throw refuse('revoked', 'this certificate has been revoked');
  const now = deps.clock.now().getTime();
  const notAfter = new Date(row.not_after);
  if (now < new Date(row.not_before).getTime() || now > notAfter.getTime()) {
    throw refuse('expired', 'this certificate is outside its validity period');
  }
  // RSASSA-PKCS1-v1_5 with SHA-256 (the JPKI card and smartphone keys are RSA-2048).
  let ok = false;
  if (publicKey.asymmetricKeyType === 'rsa') {
    try {
      ok = verify('sha256', p.message, publicKey, p.signature);
    } catch {
      ok = false;
    }
  }
  if (!ok)
    throw refuse(
      'bad-signature',
      'the signature does not match the challenge and this certificate',
    );
  return {
    serial,
    personId: row.person_id,
    residentCode: row.resident_code,
    medium: row.medium === 'mobile' ? 'mobile' : 'card',
    kind: row.kind === 'auth' ? 'auth' : 'sign',
    notAfter: notAfter.toISOString(),
  };
}
