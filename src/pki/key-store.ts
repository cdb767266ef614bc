/**
 * The agency's key store: custody of the CA keys (発行者署名符号 and the other 署名符号 of
 * the 認証局) and of the secret keys such as the 個人番号 generation key.
 *
 * {@link KeyCustody} is the backend-neutral contract; {@link KeyStore} implements it with two
 * backends, chosen per key and recorded in `key_store.backend`:
 *
 * - `software`: keys are generated here, wrapped with AES-256-GCM under the installation's
 *   {@link MasterKey} and kept in the `key_store` table; key material is never written
 *   anywhere in clear and never leaves as bytes — callers get a secret `KeyObject` or a
 *   {@link Signer} whose private key stays inside a closure. Each wrapped entry is bound to
 *   its row by the additional authenticated data `label \0 algorithm \0 purpose`: an entry
 *   copied under another label, or with its algorithm or purpose edited, no longer unwraps.
 * - `pkcs11`: RSA key pairs generated inside an HSM ({@link Pkcs11Token}) and never leaving
 *   it; the row holds the key's CKA_ID (`token_key_id`) and its public key. Before a key is
 *   first used, the token's key under that CKA_ID must carry the row's label (CKA_LABEL) and
 *   public key, so a swapped or re-initialised token, or an edited row, fails loudly.
 */
import {
  constants,
  createHash,
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  generateKeyPair,
  type KeyObject,
  randomBytes,
  sign as cryptoSign,
} from 'node:crypto';
import type { Clock } from '../platform/clock.ts';
import type { Queryable, Tx } from '../platform/db.ts';
import { AppError } from '../platform/errors.ts';
import type { MasterKey } from './master-key.ts';
import { Pkcs11KeyNotFoundError, type Pkcs11Token } from './pkcs11.ts';

export type KeyAlgorithm = 'aes-256' | 'rsa-2048' | 'rsa-3072' | 'ec-p256';
export type KeyPairAlgorithm = Exclude<KeyAlgorithm, 'aes-256'>;
export type SignatureHash = 'sha256' | 'sha384';
/** Where a key lives: wrapped under the master key here, or inside a PKCS#11 token (HSM). */
export type KeyBackend = 'software' | 'pkcs11';

/** Key pair algorithms a PKCS#11 token generates for the key store. */
export const PKCS11_KEY_PAIR_ALGORITHMS: readonly KeyPairAlgorithm[] = ['rsa-2048', 'rsa-3072'];

export const KEY_PAIR_ALGORITHMS: readonly KeyPairAlgorithm[] = ['rsa-2048', 'rsa-3072', 'ec-p256'];

/** Labels as the `key_store.label` CHECK constraint allows them. */
export const KEY_LABEL_PATTERN = /^[a-z0-9][a-z0-9./_-]{0,127}$/;

/**
 * Signs with a private key held by the key store. The private key is not reachable from this
 * object; only signatures and the public key come out.
 */
export interface Signer {
  readonly label: string;
  readonly algorithm: KeyPairAlgorithm;
  readonly publicKey: KeyObject;
  /**
   * RSA keys: RSASSA-PKCS1-v1_5; EC keys: ECDSA with a DER-encoded (X9.62 Ecdsa-Sig-Value)
   * signature. `data` is the message itself, hashed here (or in the HSM) with `hash`.
   * Asynchronous: software keys sign on libuv's threadpool, HSM keys in the token.
   */
  sign(data: Buffer, hash: SignatureHash): Promise<Buffer>;
}

/** What may be said about a key without touching its material. */
export interface KeyDescription {
  label: string;
  algorithm: KeyAlgorithm;
  purpose: string;
  createdAt: Date;
  /** SubjectPublicKeyInfo DER for key pairs; null for secret keys. */
  publicKey: Buffer | null;
  /**
   * The id of what guards the key: the master key's id (`software`), or `pkcs11:<token
   * serial>` for the token the key was generated in (`pkcs11`).
   */
  kekId: string;
  backend: KeyBackend;
}

export interface NewKeySpec {
  label: string;
  /** What the key is for (e.g. `my-number-generation`, `発行者署名符号`); free text. */
  purpose: string;
}

export interface NewKeyPairSpec extends NewKeySpec {
  algorithm: KeyPairAlgorithm;
  /**
   * `software` (default) or `pkcs11`: generated inside the key store's HSM — for the CA's
   * 発行者署名符号 — which supports {@link PKCS11_KEY_PAIR_ALGORITHMS} only.
   */
  backend?: KeyBackend;
}

export interface KeyStoreOptions {
  /** The HSM that holds (and may generate) `pkcs11` keys. Opened and closed by the caller. */
  hsm?: Pkcs11Token;
}

/**
 * Custody of the agency's keys, whatever holds them (software wrapping, PKCS#11 token).
 * Keys are created once and never change; labels are never reused.
 */
export interface KeyCustody {
  /**
   * Generates an AES-256 key under `label`.
   * @throws AppError conflict `key.exists` when the label is taken.
   */
  createSymmetricKey(tx: Tx, spec: NewKeySpec): Promise<KeyDescription>;
  /**
   * Generates a key pair under `label`, in software or (`backend: 'pkcs11'`) inside the HSM.
   * @returns the public key as SubjectPublicKeyInfo DER.
   * @throws AppError conflict `key.exists` when the label is taken; AppError unprocessable
   *   `key.hsm-unavailable` for `pkcs11` without an HSM; AppError badRequest
   *   `key.invalid-algorithm` for an algorithm the backend does not support.
   */
  createKeyPair(tx: Tx, spec: NewKeyPairSpec): Promise<Buffer>;
  /**
   * The secret key `label` (algorithm `aes-256`) as a KeyObject for node:crypto.
   * @throws AppError notFound `key.not-found`; AppError unprocessable `key.wrong-algorithm`.
   */
  secretKey(db: Queryable, label: string): Promise<KeyObject>;
  /**
   * A signer for the key pair `label`.
   * @throws AppError notFound `key.not-found`; AppError unprocessable `key.wrong-algorithm`;
   *   KeyUnwrapError when the key cannot be used (see its `reason`).
   */
  signer(db: Queryable, label: string): Promise<Signer>;
  exists(db: Queryable, label: string): Promise<boolean>;
  /** @throws AppError notFound `key.not-found` */
  describe(db: Queryable, label: string): Promise<KeyDescription>;
}

/**
 * Why a stored key cannot be used:
 * - `wrong-master-key`: wrapped under another installation's master key;
 * - `corrupted`: the wrapped entry or its row was damaged or tampered with;
 * - `hsm-unavailable`: a `pkcs11` key, but the key store has no HSM;
 * - `hsm-key-mismatch`: the HSM has no key under the row's CKA_ID, or one whose label or
 *   public key is not the row's (a swapped or re-initialised token, or an edited row).
 */
export type KeyUnwrapReason =
  'wrong-master-key' | 'corrupted' | 'hsm-unavailable' | 'hsm-key-mismatch';

/**
 * A stored key could not be unwrapped (or, for an HSM key, attached). Deliberately not an
 * AppError: it is an installation fault whose text (key labels, master key ids, token
 * labels) is for the operator's log, not for clients.
 */
export class KeyUnwrapError extends Error {
  constructor(
    readonly label: string,
    readonly reason: KeyUnwrapReason,
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? {} : { cause: options.cause });
    this.name = 'KeyUnwrapError';
  }
}

/** A `key_store` row; the wrap columns are set for `software` rows only (CHECK constraint). */
type KeyRow = {
  label: string;
  algorithm: KeyAlgorithm;
  purpose: string;
  backend: KeyBackend;
  wrapped_key: Uint8Array | null;
  wrap_iv: Uint8Array | null;
  wrap_tag: Uint8Array | null;
  token_key_id: string | null;
  kek_id: string;
  public_key: Uint8Array | null;
  created_at: Date;
};

type DescribedRow = Pick<
  KeyRow,
  'label' | 'algorithm' | 'purpose' | 'backend' | 'kek_id' | 'public_key' | 'created_at'
>;

type Unwrapped = { kind: 'secret'; key: KeyObject } | { kind: 'pair'; signer: Signer };

const SELECT_KEY = `SELECT label, algorithm, purpose, backend, wrapped_key, wrap_iv, wrap_tag,
  token_key_id, kek_id, public_key, created_at FROM key_store WHERE label = $1`;

/**
 * The key store: software keys wrapped under the master key, and — given an HSM — keys held
 * by a PKCS#11 token, all recorded in `key_store`.
 */
export class KeyStore implements KeyCustody {
  readonly #masterKey: MasterKey;
  readonly #clock: Clock;
  readonly #hsm: Pkcs11Token | null;
  /**
   * Unwrapped keys (and checked HSM signers) per label, each with a fingerprint of the row it
   * came from. Every lookup still reads the row (one primary-key probe): a key read inside a
   * transaction that later rolls back must not outlive it, and an altered row must fail as it
   * would uncached.
   */
  readonly #cache = new Map<string, { fingerprint: string; value: Unwrapped }>();

  constructor(masterKey: MasterKey, clock: Clock, options: KeyStoreOptions = {}) {
    this.#masterKey = masterKey;
    this.#clock = clock;
    this.#hsm = options.hsm ?? null;
  }

  async createSymmetricKey(tx: Tx, spec: NewKeySpec): Promise<KeyDescription> {
    checkSpec(spec);
    await this.#ensureFree(tx, spec.label);
    const key = randomBytes(32);
    try {
      return await this.#insert(tx, spec.label, 'aes-256', spec.purpose, key, null);
    } finally {
      key.fill(0);
    }
  }

  async createKeyPair(tx: Tx, spec: NewKeyPairSpec): Promise<Buffer> {
    checkSpec(spec);
    if (!KEY_PAIR_ALGORITHMS.includes(spec.algorithm)) {
      throw new AppError(
        'badRequest',
        'key.invalid-algorithm',
        `key pair algorithm must be one of ${KEY_PAIR_ALGORITHMS.join(', ')}`,
      );
    }
    const backend = spec.backend ?? 'software';
    if (backend === 'pkcs11') return this.#createHsmKeyPair(tx, spec);
    if (backend !== 'software') {
      throw new AppError(
        'badRequest',
        'key.invalid-backend',
        'key backend must be software or pkcs11',
      );
    }
    // Fail before generating: an RSA-3072 key takes a noticeable moment.
    await this.#ensureFree(tx, spec.label);
    const { publicKey, privateKey } = await generatePair(spec.algorithm);
    const spki = publicKey.export({ type: 'spki', format: 'der' });
    const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
    try {
      await this.#insert(tx, spec.label, spec.algorithm, spec.purpose, pkcs8, spki);
    } finally {
      pkcs8.fill(0);
    }
    return spki;
  }

  async secretKey(db: Queryable, label: string): Promise<KeyObject> {
    const value = await this.#load(db, label, 'secret');
    if (value.kind !== 'secret') throw new Error('unreachable: key kind checked by #load');
    return value.key;
  }

  async signer(db: Queryable, label: string): Promise<Signer> {
    const value = await this.#load(db, label, 'pair');
    if (value.kind !== 'pair') throw new Error('unreachable: key kind checked by #load');
    return value.signer;
  }

  async exists(db: Queryable, label: string): Promise<boolean> {
    const r = await db.query('SELECT 1 FROM key_store WHERE label = $1', [label]);
    return r.rows.length > 0;
  }

  async describe(db: Queryable, label: string): Promise<KeyDescription> {
    const r = await db.query<DescribedRow>(
      `SELECT label, algorithm, purpose, backend, kek_id, public_key, created_at
         FROM key_store WHERE label = $1`,
      [label],
    );
    const row = r.rows[0];
    if (!row) throw notFound(label);
    return describeRow(row);
  }

  /** A key pair generated inside the HSM, recorded with its CKA_ID and no key material. */
  async #createHsmKeyPair(tx: Tx, spec: NewKeyPairSpec): Promise<Buffer> {
    const hsm = this.#hsm;
    if (!hsm) {
      throw new AppError(
        'unprocessable',
        'key.hsm-unavailable',
        'no HSM is configured: key pairs can only be created with the software backend',
      );
    }
    if (!PKCS11_KEY_PAIR_ALGORITHMS.includes(spec.algorithm)) {
      throw new AppError(
        'badRequest',
        'key.invalid-algorithm',
        `HSM key pair algorithm must be one of ${PKCS11_KEY_PAIR_ALGORITHMS.join(', ')}`,
      );
    }
    await this.#ensureFree(tx, spec.label);
    const { keyId, spki } = await hsm.generateRsaKeyPair({
      label: spec.label,
      bits: spec.algorithm === 'rsa-2048' ? 2048 : 3072,
    });
    const kekId = `pkcs11:${hsm.info().serial}`;
    const createdAt = this.#clock.now();
    let inserted = false;
    try {
      const r = await tx.query(
        `INSERT INTO key_store
           (label, algorithm, purpose, backend, token_key_id, kek_id, public_key, created_at)
         VALUES ($1, $2, $3, 'pkcs11', $4, $5, $6, $7)
         ON CONFLICT (label) DO NOTHING`,
        [spec.label, spec.algorithm, spec.purpose, keyId, kekId, spki, createdAt],
      );
      inserted = r.rowCount !== 0;
    } finally {
      // A key that no row names would only clutter the token. (If `tx` rolls back later, the
      // key stays behind in the token, unnamed by any row and never used.)
      if (!inserted) destroyQuietly(hsm, keyId);
    }
    if (!inserted) throw conflict(spec.label);
    return spki;
  }

  async #ensureFree(tx: Tx, label: string): Promise<void> {
    if (await this.exists(tx, label)) throw conflict(label);
  }

  async #insert(
    tx: Tx,
    label: string,
    algorithm: KeyAlgorithm,
    purpose: string,
    material: Buffer,
    publicKey: Buffer | null,
  ): Promise<KeyDescription> {
    const wrapped = this.#masterKey.wrap(material, aadFor(label, algorithm, purpose));
    const createdAt = this.#clock.now();
    // ON CONFLICT: a concurrent creator of the same label loses cleanly, without aborting tx.
    const r = await tx.query(
      `INSERT INTO key_store
         (label, algorithm, purpose, wrapped_key, wrap_iv, wrap_tag, kek_id, public_key, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
       ON CONFLICT (label) DO NOTHING`,
      [
        label,
        algorithm,
        purpose,
        wrapped.ciphertext,
        wrapped.iv,
        wrapped.tag,
        this.#masterKey.id,
        publicKey,
        createdAt,
      ],
    );
    if (r.rowCount === 0) throw conflict(label);
    return {
      label,
      algorithm,
      purpose,
      createdAt,
      publicKey,
      kekId: this.#masterKey.id,
      backend: 'software',
    };
  }

  async #load(db: Queryable, label: string, want: Unwrapped['kind']): Promise<Unwrapped> {
    const row = (await db.query<KeyRow>(SELECT_KEY, [label])).rows[0];
    if (!row) throw notFound(label);
    const kind: Unwrapped['kind'] = row.algorithm === 'aes-256' ? 'secret' : 'pair';
    if (kind !== want) {
      throw new AppError(
        'unprocessable',
        'key.wrong-algorithm',
        `key ${label} is ${row.algorithm}, not ${want === 'secret' ? 'a secret key' : 'a key pair'}`,
      );
    }
    const fingerprint = fingerprintOf(row);
    const cached = this.#cache.get(label);
    if (cached && cached.fingerprint === fingerprint) return cached.value;
    const value = row.backend === 'pkcs11' ? this.#attach(row) : this.#unwrap(row);
    this.#cache.set(label, { fingerprint, value });
    return value;
  }

  /**
   * A signer for an HSM key, once the token's key under the row's CKA_ID has proven to be the
   * row's: same CKA_LABEL (binds the key to its label, as the AAD does for wrapped keys) and
   * same public key, of the row's algorithm.
   */
  #attach(row: KeyRow): Unwrapped {
    const { label, algorithm } = row;
    const hsm = this.#hsm;
    if (!hsm) {
      throw new KeyUnwrapError(
        label,
        'hsm-unavailable',
        `key ${label} is held by PKCS#11 token ${row.kek_id}, but no HSM is configured`,
      );
    }
    if (algorithm === 'aes-256' || row.token_key_id === null || row.public_key === null) {
      throw new KeyUnwrapError(
        label,
        'corrupted',
        `key ${label} is corrupted or was tampered with`,
      );
    }
    const keyId = row.token_key_id;
    const token = hsm.info();
    const mismatch = (what: string, cause?: unknown): KeyUnwrapError =>
      new KeyUnwrapError(
        label,
        'hsm-key-mismatch',
        `key ${label}: PKCS#11 token "${token.label}" (serial ${token.serial}) ${what} ` +
          `(CKA_ID ${keyId}, recorded for ${row.kek_id})`,
        { cause },
      );
    let spki: Buffer;
    let tokenLabel: string;
    try {
      spki = hsm.publicKey(keyId);
      tokenLabel = hsm.keyLabel(keyId);
    } catch (err) {
      if (err instanceof Pkcs11KeyNotFoundError || err instanceof RangeError) {
        throw mismatch('has no such key', err);
      }
      throw err;
    }
    if (tokenLabel !== label) throw mismatch(`holds the key under label "${tokenLabel}"`);
    if (!spki.equals(toBuffer(row.public_key))) throw mismatch('holds another public key');
    const publicKey = createPublicKey({ key: spki, format: 'der', type: 'spki' });
    if (!matchesAlgorithm(publicKey, algorithm)) throw mismatch(`holds no ${algorithm} key`);
    return { kind: 'pair', signer: makeHsmSigner(label, algorithm, hsm, keyId, publicKey) };
  }

  #unwrap(row: KeyRow): Unwrapped {
    const { label, algorithm } = row;
    if (row.kek_id !== this.#masterKey.id) {
      throw new KeyUnwrapError(
        label,
        'wrong-master-key',
        `key ${label} was wrapped with master key ${row.kek_id}, ` +
          `this installation has ${this.#masterKey.id}`,
      );
    }
    const corrupted = (cause?: unknown): KeyUnwrapError =>
      new KeyUnwrapError(label, 'corrupted', `key ${label} is corrupted or was tampered with`, {
        cause,
      });
    if (row.wrap_iv === null || row.wrap_tag === null || row.wrapped_key === null) {
      throw corrupted();
    }
    let material: Buffer;
    try {
      material = this.#masterKey.unwrap(
        {
          iv: toBuffer(row.wrap_iv),
          tag: toBuffer(row.wrap_tag),
          ciphertext: toBuffer(row.wrapped_key),
        },
        aadFor(label, algorithm, row.purpose),
      );
    } catch (err) {
      throw corrupted(err);
    }
    try {
      if (algorithm === 'aes-256') {
        if (material.length !== 32) throw corrupted();
        return { kind: 'secret', key: createSecretKey(material) };
      }
      let privateKey: KeyObject;
      try {
        privateKey = createPrivateKey({ key: material, format: 'der', type: 'pkcs8' });
      } catch (err) {
        throw corrupted(err);
      }
      if (!matchesAlgorithm(privateKey, algorithm)) throw corrupted();
      const publicKey = createPublicKey(privateKey);
      // public_key is outside the authenticated data: it must be the private key's own half.
      const spki = publicKey.export({ type: 'spki', format: 'der' });
      if (row.public_key === null || !spki.equals(toBuffer(row.public_key))) throw corrupted();
      return { kind: 'pair', signer: makeSigner(label, algorithm, privateKey, publicKey) };
    } finally {
      material.fill(0);
    }
  }
}

function makeSigner(
  label: string,
  algorithm: KeyPairAlgorithm,
  privateKey: KeyObject,
  publicKey: KeyObject,
): Signer {
  const isRsa = algorithm !== 'ec-p256';
  const key = isRsa
    ? { key: privateKey, padding: constants.RSA_PKCS1_PADDING }
    : { key: privateKey, dsaEncoding: 'der' as const };
  return Object.freeze({
    label,
    algorithm,
    publicKey,
    async sign(data: Buffer, hash: SignatureHash): Promise<Buffer> {
      checkHash(hash);
      // The callback form runs on libuv's threadpool, so signatures use every core.
      return new Promise<Buffer>((resolve, reject) => {
        cryptoSign(hash, data, key, (err, signature) => {
          if (err) reject(err);
          else resolve(signature);
        });
      });
    },
  });
}

/** A signer whose private key is in the HSM; RSASSA-PKCS1-v1_5, hashed by the token. */
function makeHsmSigner(
  label: string,
  algorithm: KeyPairAlgorithm,
  hsm: Pkcs11Token,
  keyId: string,
  publicKey: KeyObject,
): Signer {
  return Object.freeze({
    label,
    algorithm,
    publicKey,
    async sign(data: Buffer, hash: SignatureHash): Promise<Buffer> {
      checkHash(hash);
      return hsm.sign(keyId, data, hash);
    },
  });
}

/** Best effort: a failure to clean up must not hide the error that made it necessary. */
function destroyQuietly(hsm: Pkcs11Token, keyId: string): void {
  try {
    hsm.destroyKeyPair(keyId);
  } catch {
    // the orphan stays in the token, unnamed by any row
  }
}

function checkHash(hash: SignatureHash): void {
  if (hash !== 'sha256' && hash !== 'sha384') {
    throw new Error(`unsupported signature hash ${String(hash)}`);
  }
}

function generatePair(
  algorithm: KeyPairAlgorithm,
): Promise<{ publicKey: KeyObject; privateKey: KeyObject }> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, publicKey: KeyObject, privateKey: KeyObject): void => {
      if (err) reject(err);
      else resolve({ publicKey, privateKey });
    };
    if (algorithm === 'ec-p256') {
      generateKeyPair('ec', { namedCurve: 'prime256v1' }, done);
    } else {
      const modulusLength = algorithm === 'rsa-2048' ? 2048 : 3072;
      generateKeyPair('rsa', { modulusLength, publicExponent: 0x10001 }, done);
    }
  });
}

function matchesAlgorithm(key: KeyObject, algorithm: KeyPairAlgorithm): boolean {
  const d = key.asymmetricKeyDetails;
  switch (algorithm) {
    case 'rsa-2048':
      return key.asymmetricKeyType === 'rsa' && d?.modulusLength === 2048;
    case 'rsa-3072':
      return key.asymmetricKeyType === 'rsa' && d?.modulusLength === 3072;
    case 'ec-p256':
      return key.asymmetricKeyType === 'ec' && d?.namedCurve === 'prime256v1';
  }
}

/** `label \0 algorithm \0 purpose`: binds a wrapped entry to its row. */
function aadFor(label: string, algorithm: KeyAlgorithm, purpose: string): Buffer {
  return Buffer.from(`${label}\0${algorithm}\0${purpose}`, 'utf8');
}

/**
 * A digest of every column that takes part in unwrapping or in attaching an HSM key (cache
 * validation only). A null column is hashed apart from an empty one.
 */
function fingerprintOf(row: KeyRow): string {
  const h = createHash('sha256');
  for (const part of [
    row.label,
    row.algorithm,
    row.purpose,
    row.backend,
    row.kek_id,
    row.wrap_iv,
    row.wrap_tag,
    row.wrapped_key,
    row.token_key_id,
    row.public_key,
  ]) {
    const len = Buffer.alloc(4);
    if (part === null) {
      len.writeUInt32BE(0xffffffff);
      h.update(len);
      continue;
    }
    const bytes = typeof part === 'string' ? Buffer.from(part, 'utf8') : part;
    len.writeUInt32BE(bytes.length);
    h.update(len).update(bytes);
  }
  return h.digest('hex');
}

function describeRow(row: DescribedRow): KeyDescription {
  return {
    label: row.label,
    algorithm: row.algorithm,
    purpose: row.purpose,
    createdAt: row.created_at,
    publicKey: row.public_key === null ? null : Buffer.from(row.public_key),
    kekId: row.kek_id,
    backend: row.backend,
  };
}

function checkSpec(spec: NewKeySpec): void {
  if (!KEY_LABEL_PATTERN.test(spec.label)) {
    throw new AppError(
      'badRequest',
      'key.invalid-label',
      'a key label is 1–128 characters of a-z, 0-9 and ./_- starting with a letter or digit',
    );
  }
  if (spec.purpose.length === 0 || spec.purpose.length > 200 || /\p{Cc}/u.test(spec.purpose)) {
    throw new AppError(
      'badRequest',
      'key.invalid-purpose',
      'a key purpose is 1–200 characters without control characters',
    );
  }
}

/** bytea arrives as Uint8Array (PGlite) or Buffer (pg); view it as a Buffer without copying. */
function toBuffer(v: Uint8Array): Buffer {
  return Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

const notFound = (label: string): AppError =>
  new AppError('notFound', 'key.not-found', `no key with label ${label}`);

const conflict = (label: string): AppError =>
  new AppError('conflict', 'key.exists', `a key with label ${label} already exists`);
