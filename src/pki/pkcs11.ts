/**
 * A thin wrapper over `pkcs11js` for the one thing the key store needs from an HSM: RSA key
 * pairs generated inside a PKCS#11 token, whose private half — for the CA, the
 * 発行者署名符号 — never leaves it, and RSASSA-PKCS1-v1_5 signatures made with them.
 *
 * One {@link Pkcs11Token} is one logged-in user on one token. Signing uses the asynchronous
 * (threadpool) form of `C_Sign` on a small pool of read/write sessions; a session runs one
 * operation at a time and callers queue when every session is busy. Short synchronous calls
 * (object search, attribute reads) run on a separate control session that no asynchronous
 * operation ever uses.
 *
 * A PKCS#11 library is process-wide state: it is initialised once per process however many
 * tokens are opened through it, and finalised when the last of them closes.
 */
import { createHmac, createPublicKey, randomBytes, timingSafeEqual } from 'node:crypto';
import { realpathSync } from 'node:fs';
import pkcs11js from 'pkcs11js';

export interface Pkcs11Config {
  /** Path of the PKCS#11 library, e.g. `/usr/lib/softhsm/libsofthsm2.so`. */
  module: string;
  /** The token's label (CK_TOKEN_INFO.label, without its space padding). */
  tokenLabel: string;
  /** The user PIN. Used once to log in, then dropped. */
  pin: string;
  /** Sessions in the signing pool (default 4). */
  sessions?: number;
}

export interface Pkcs11TokenInfo {
  label: string;
  serial: string;
  manufacturer: string;
  model: string;
}

export type Pkcs11Hash = 'sha256' | 'sha384';
export type Pkcs11RsaBits = 2048 | 3072;

export interface Pkcs11KeyPair {
  /** CKA_ID of both halves, as lowercase hex (16 random bytes). */
  keyId: string;
  /** The public key as SubjectPublicKeyInfo DER. */
  spki: Buffer;
}

/**
 * A PKCS#11 call failed, or the token could not be used. `ckr` is the Cryptoki return value's
 * name (`CKR_PIN_INCORRECT` …) when the library returned one, null otherwise. The message
 * never carries the PIN or any other argument of the failed call.
 */
export class Pkcs11Error extends Error {
  constructor(
    message: string,
    /** The Cryptoki return value's name, e.g. `CKR_PIN_INCORRECT`. */
    readonly ckr: string | null = null,
    /** The PKCS#11 function (or wrapper step) that failed, e.g. `C_Login`. */
    readonly operation: string | null = null,
  ) {
    super(message);
    this.name = 'Pkcs11Error';
  }
}

/** No key pair with the given CKA_ID is on the token. */
export class Pkcs11KeyNotFoundError extends Pkcs11Error {
  constructor(
    readonly keyId: string,
    tokenLabel: string,
  ) {
    super(`no private key with CKA_ID ${keyId} on PKCS#11 token "${tokenLabel}"`);
    this.name = 'Pkcs11KeyNotFoundError';
  }
}

type Handle = pkcs11js.Handle;
type Library = pkcs11js.PKCS11;

const DEFAULT_SESSIONS = 4;
const MAX_SESSIONS = 64;
/** Room for an RSA signature up to 4096 bits; C_Sign returns the used part. */
const SIGNATURE_BUFFER = 512;
const KEY_ID_BYTES = 16;
const KEY_ID_PATTERN = /^(?:[0-9a-f]{2}){1,64}$/;

const MECHANISMS: Readonly<Record<Pkcs11Hash, number>> = {
  sha256: pkcs11js.CKM_SHA256_RSA_PKCS,
  sha384: pkcs11js.CKM_SHA384_RSA_PKCS,
};

/** The name of a Cryptoki error thrown by pkcs11js (`CKR_…`), if it is one. */
function ckrOf(err: unknown): string | null {
  if (!(err instanceof Error)) return null;
  return /\b(CKR_[A-Z0-9_]+)\b/.exec(err.message)?.[1] ?? null;
}

/** Turns what pkcs11js threw into a {@link Pkcs11Error} that says only which call failed how. */
function toPkcs11Error(err: unknown, operation: string): Pkcs11Error {
  if (err instanceof Pkcs11Error) return err;
  const ckr = ckrOf(err);
  if (ckr !== null) return new Pkcs11Error(`${operation} failed: ${ckr}`, ckr, operation);
  // Not a Cryptoki return value (a failed dlopen, a bad argument): the library's own text,
  // which names paths and types but never argument values.
  const detail = err instanceof Error ? err.message.split('\n')[0] : String(err);
  return new Pkcs11Error(`${operation} failed: ${detail}`, null, operation);
}

function call<T>(operation: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw toPkcs11Error(err, operation);
  }
}

const unpad = (s: string): string => s.replace(/[\s\0]+$/u, '');

/**
 * A loaded PKCS#11 library. C_Initialize, C_Finalize and the login state act on the whole
 * process, so every token object opened through one library shares them: `users` counts the
 * token objects logged in per slot (only the last one logs out), with an HMAC of the PIN the
 * first of them logged in with, under a per-library random key — C_Login answers
 * CKR_USER_ALREADY_LOGGED_IN without checking the PIN, so later opens are checked against it.
 */
type LoadedModule = {
  key: string;
  lib: Library;
  refs: number;
  ownsInit: boolean;
  pinKey: Buffer;
  users: Map<string, { count: number; pin: Buffer }>;
};

/** Loaded PKCS#11 libraries by real path. */
const modules = new Map<string, LoadedModule>();

function acquireModule(path: string): LoadedModule {
  let key: string;
  try {
    key = realpathSync(path);
  } catch {
    throw new Pkcs11Error(`PKCS#11 module ${path} does not exist`, null, 'load');
  }
  const loaded = modules.get(key);
  if (loaded) {
    loaded.refs++;
    return loaded;
  }
  const lib = new pkcs11js.PKCS11();
  call('load', () => lib.load(key));
  let ownsInit = true;
  try {
    // CKF_OS_LOCKING_OK: the library must lock for itself, since the asynchronous calls run
    // on libuv's threadpool, several at a time. Without it concurrent C_Sign calls on
    // different sessions crash the process.
    lib.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  } catch (err) {
    if (ckrOf(err) === 'CKR_CRYPTOKI_ALREADY_INITIALIZED') {
      // Initialised by someone else in this process: theirs to finalise.
      ownsInit = false;
    } else {
      try {
        lib.close();
      } catch {
        // already failing
      }
      throw toPkcs11Error(err, 'C_Initialize');
    }
  }
  const module: LoadedModule = {
    key,
    lib,
    refs: 1,
    ownsInit,
    pinKey: randomBytes(32),
    users: new Map(),
  };
  modules.set(key, module);
  return module;
}

function releaseModule(key: string): void {
  const loaded = modules.get(key);
  if (!loaded) return;
  loaded.refs--;
  if (loaded.refs > 0) return;
  modules.delete(key);
  try {
    if (loaded.ownsInit) loaded.lib.C_Finalize();
  } finally {
    loaded.lib.close();
  }
}

type Waiter = { resolve: (session: Handle) => void; reject: (err: Error) => void };

/**
 * A logged-in PKCS#11 token. Open with {@link Pkcs11Token.open}; close with
 * {@link Pkcs11Token.close} once no more signatures are needed.
 */
export class Pkcs11Token {
  readonly #lib: Library;
  readonly #moduleKey: string;
  readonly #slotKey: string;
  readonly #slot: Handle;
  readonly #info: Pkcs11TokenInfo;
  /** For short synchronous calls only; never used by an asynchronous operation. */
  readonly #control: Handle;
  /** Every pool session (idle or busy). */
  readonly #sessions: Handle[];
  readonly #idle: Handle[];
  readonly #waiters: Waiter[] = [];
  /**
   * Private key handles per CKA_ID (hex). Token objects keep their handle across sessions. A
   * handle that goes stale is not looked up again by CKA_ID behind the caller's back: a key
   * that disappeared from under a running process keeps failing until the token is reopened
   * (and the key store checks the key against its record again).
   */
  readonly #keys = new Map<string, Handle>();
  #busy = 0;
  #drained: (() => void) | null = null;
  #closing: Promise<void> | null = null;

  private constructor(init: {
    lib: Library;
    moduleKey: string;
    slot: Handle;
    info: Pkcs11TokenInfo;
    control: Handle;
    sessions: Handle[];
  }) {
    this.#lib = init.lib;
    this.#moduleKey = init.moduleKey;
    this.#slot = init.slot;
    this.#slotKey = init.slot.toString('hex');
    this.#info = init.info;
    this.#control = init.control;
    this.#sessions = init.sessions;
    this.#idle = [...init.sessions];
  }

  /**
   * Loads the module (once per process), finds the token labelled `config.tokenLabel`, logs
   * in as the user and opens the session pool.
   * @throws Pkcs11Error when the module cannot be loaded, no token has that label, or the
   *   login fails (`CKR_PIN_INCORRECT`, `CKR_PIN_LOCKED` …).
   */
  static open(config: Pkcs11Config): Pkcs11Token {
    const poolSize = config.sessions ?? DEFAULT_SESSIONS;
    if (!Number.isInteger(poolSize) || poolSize < 1 || poolSize > MAX_SESSIONS) {
      throw new RangeError(`sessions must be an integer from 1 to ${MAX_SESSIONS}`);
    }
    const loaded = acquireModule(config.module);
    const { key: moduleKey, lib } = loaded;
    const opened: Handle[] = [];
    try {
      const slot = findSlot(lib, config.tokenLabel, config.module);
      const slotKey = slot.toString('hex');
      const tokenInfo = call('C_GetTokenInfo', () => lib.C_GetTokenInfo(slot));
      const flags = pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION;
      for (let i = 0; i <= poolSize; i++) {
        opened.push(call('C_OpenSession', () => lib.C_OpenSession(slot, flags)));
      }
      const [control, ...sessions] = opened as [Handle, ...Handle[]];
      const pin = createHmac('sha256', loaded.pinKey).update(config.pin, 'utf8').digest();
      const user = loaded.users.get(slotKey);
      if (user) {
        if (!timingSafeEqual(user.pin, pin)) {
          throw new Pkcs11Error(
            'C_Login failed: CKR_PIN_INCORRECT',
            'CKR_PIN_INCORRECT',
            'C_Login',
          );
        }
        user.count++;
      } else {
        // One login serves every session of this application on the token.
        try {
          lib.C_Login(control, pkcs11js.CKU_USER, config.pin);
        } catch (err) {
          // Logged in by other code in this process, outside this wrapper: nothing to compare.
          if (ckrOf(err) !== 'CKR_USER_ALREADY_LOGGED_IN') throw toPkcs11Error(err, 'C_Login');
        }
        loaded.users.set(slotKey, { count: 1, pin });
      }
      return new Pkcs11Token({
        lib,
        moduleKey,
        slot,
        control,
        sessions,
        info: {
          label: unpad(tokenInfo.label),
          serial: unpad(tokenInfo.serialNumber),
          manufacturer: unpad(tokenInfo.manufacturerID),
          model: unpad(tokenInfo.model),
        },
      });
    } catch (err) {
      for (const session of opened) {
        try {
          lib.C_CloseSession(session);
        } catch {
          // already failing
        }
      }
      releaseModule(moduleKey);
      throw err;
    }
  }

  /** The token's label, serial number, manufacturer and model, without padding. */
  info(): Pkcs11TokenInfo {
    return { ...this.#info };
  }

  /**
   * Generates an RSA key pair inside the token (public exponent 65537). The private key is
   * a token object that is private, sensitive, not extractable and may only sign; both halves
   * get the same fresh random CKA_ID and the given CKA_LABEL.
   */
  async generateRsaKeyPair(spec: { label: string; bits: Pkcs11RsaBits }): Promise<Pkcs11KeyPair> {
    if (spec.bits !== 2048 && spec.bits !== 3072) {
      throw new RangeError(`RSA key size must be 2048 or 3072, not ${String(spec.bits)}`);
    }
    if (spec.label.length === 0) throw new RangeError('a key label must not be empty');
    const lib = this.#lib;
    const id = randomBytes(KEY_ID_BYTES);
    const keyId = id.toString('hex');
    const common = [
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_RSA },
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_ID, value: id },
      { type: pkcs11js.CKA_LABEL, value: spec.label },
    ];
    const publicTemplate: pkcs11js.Template = [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
      ...common,
      { type: pkcs11js.CKA_PRIVATE, value: false },
      { type: pkcs11js.CKA_VERIFY, value: true },
      { type: pkcs11js.CKA_ENCRYPT, value: false },
      { type: pkcs11js.CKA_WRAP, value: false },
      { type: pkcs11js.CKA_MODULUS_BITS, value: spec.bits },
      { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: Buffer.from([0x01, 0x00, 0x01]) },
    ];
    const privateTemplate: pkcs11js.Template = [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
      ...common,
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      { type: pkcs11js.CKA_EXTRACTABLE, value: false },
      { type: pkcs11js.CKA_SIGN, value: true },
      { type: pkcs11js.CKA_DECRYPT, value: false },
      { type: pkcs11js.CKA_UNWRAP, value: false },
    ];
    const pair = await this.#withSession(
      (session) =>
        new Promise<pkcs11js.KeyPair>((resolve, reject) => {
          lib.C_GenerateKeyPair(
            session,
            { mechanism: pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN },
            publicTemplate,
            privateTemplate,
            (err, keys) => {
              if (err) reject(toPkcs11Error(err, 'C_GenerateKeyPair'));
              else resolve(keys);
            },
          );
        }),
    );
    try {
      // The token must have honoured the template: check rather than trust.
      const [sensitive, extractable] = this.#attributes(pair.privateKey, [
        pkcs11js.CKA_SENSITIVE,
        pkcs11js.CKA_EXTRACTABLE,
      ]);
      if (sensitive?.[0] !== 1 || extractable?.[0] !== 0) {
        throw new Pkcs11Error(
          `token "${this.#info.label}" created a private key that is not sensitive and ` +
            'non-extractable',
          null,
          'C_GenerateKeyPair',
        );
      }
      const spki = this.#spkiOf(pair.privateKey, pair.publicKey);
      this.#keys.set(keyId, pair.privateKey);
      return { keyId, spki };
    } catch (err) {
      this.#destroy([pair.privateKey, pair.publicKey]);
      throw err;
    }
  }

  /**
   * The public key of the key pair with CKA_ID `keyId`, as SubjectPublicKeyInfo DER, read
   * from the private key object itself (so it is the half that matches what signs), or from
   * its public key object when the token keeps no public attributes on private keys.
   * @throws Pkcs11KeyNotFoundError when the token has no private key with that CKA_ID.
   */
  publicKey(keyId: string): Buffer {
    const privateKey = this.#privateKey(keyId);
    return this.#spkiOf(privateKey, null, keyId);
  }

  /**
   * The CKA_LABEL of the private key with CKA_ID `keyId`.
   * @throws Pkcs11KeyNotFoundError when the token has no private key with that CKA_ID.
   */
  keyLabel(keyId: string): string {
    const [label] = this.#attributes(this.#privateKey(keyId), [pkcs11js.CKA_LABEL]);
    return (label ?? Buffer.alloc(0)).toString('utf8');
  }

  /**
   * Destroys both halves of the key pair with CKA_ID `keyId` (no-op when absent). Meant for
   * undoing a generation whose key was never recorded; a CA key in use is never destroyed.
   */
  destroyKeyPair(keyId: string): void {
    checkKeyId(keyId);
    this.#checkOpen();
    this.#keys.delete(keyId);
    this.#destroy(this.#find([{ type: pkcs11js.CKA_ID, value: Buffer.from(keyId, 'hex') }], 16));
  }

  /**
   * Signs `data` with the private key `keyId`: RSASSA-PKCS1-v1_5 over the `hash` digest
   * (CKM_SHA256_RSA_PKCS / CKM_SHA384_RSA_PKCS; the token hashes).
   * @throws Pkcs11KeyNotFoundError; Pkcs11Error from the token.
   */
  async sign(keyId: string, data: Buffer, hash: Pkcs11Hash): Promise<Buffer> {
    const mechanism = Object.hasOwn(MECHANISMS, hash) ? MECHANISMS[hash] : undefined;
    if (mechanism === undefined) throw new RangeError(`unsupported hash ${String(hash)}`);
    const lib = this.#lib;
    const input = Buffer.isBuffer(data) ? data : Buffer.from(data);
    const key = this.#privateKey(keyId);
    return this.#withSession(
      (session) =>
        new Promise<Buffer>((resolve, reject) => {
          // Any failure from here on may leave an operation active on the session.
          const fail = (err: unknown, operation: string): void =>
            reject(new TaintedSession(toPkcs11Error(err, operation)));
          try {
            lib.C_SignInit(session, { mechanism }, key);
          } catch (err) {
            fail(err, 'C_SignInit');
            return;
          }
          try {
            lib.C_Sign(session, input, Buffer.alloc(SIGNATURE_BUFFER), (err, signature) => {
              if (err) fail(err, 'C_Sign');
              else resolve(signature);
            });
          } catch (err) {
            fail(err, 'C_Sign');
          }
        }),
    );
  }

  /**
   * Waits for the operations in progress, rejects the queued ones, logs out (when no other
   * token object in this process is logged in to the same token), closes the sessions and
   * finalises the library when this was its last user. Idempotent: later calls return the
   * same promise.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    for (const waiter of this.#waiters.splice(0)) waiter.reject(closedError(this.#info.label));
    if (this.#busy > 0) {
      await new Promise<void>((resolve) => (this.#drained = resolve));
    }
    const lib = this.#lib;
    const users = modules.get(this.#moduleKey)?.users;
    const user = users?.get(this.#slotKey);
    const remaining = user ? --user.count : 0;
    if (remaining === 0) users?.delete(this.#slotKey);
    try {
      if (remaining === 0) {
        try {
          lib.C_Logout(this.#control);
        } catch (err) {
          if (ckrOf(err) !== 'CKR_USER_NOT_LOGGED_IN') throw toPkcs11Error(err, 'C_Logout');
        }
      }
    } finally {
      try {
        for (const session of [this.#control, ...this.#sessions]) {
          try {
            lib.C_CloseSession(session);
          } catch {
            // A session the token already dropped; the rest must still close.
          }
        }
      } finally {
        this.#keys.clear();
        releaseModule(this.#moduleKey);
      }
    }
  }

  #checkOpen(): void {
    if (this.#closing) throw closedError(this.#info.label);
  }

  /**
   * Runs `fn` on a pool session of its own; queues while every session is busy. `#busy`
   * counts sessions handed out, including one passed straight to a queued caller.
   */
  async #withSession<T>(fn: (session: Handle) => Promise<T>): Promise<T> {
    this.#checkOpen();
    let session = this.#idle.pop();
    if (session) this.#busy++;
    else {
      session = await new Promise<Handle>((resolve, reject) =>
        this.#waiters.push({ resolve, reject }),
      );
    }
    let current = session;
    try {
      return await fn(session);
    } catch (err) {
      if (err instanceof TaintedSession) {
        // An operation may still be active on it: replace the session rather than reuse it.
        current = this.#replace(session);
        throw err.error;
      }
      throw err;
    } finally {
      this.#release(current);
    }
  }

  #release(session: Handle): void {
    const waiter = this.#closing ? undefined : this.#waiters.shift();
    if (waiter) {
      waiter.resolve(session); // stays busy: handed over
      return;
    }
    this.#busy--;
    this.#idle.push(session);
    if (this.#busy === 0 && this.#drained) {
      this.#drained();
      this.#drained = null;
    }
  }

  #replace(session: Handle): Handle {
    const lib = this.#lib;
    try {
      lib.C_CloseSession(session);
    } catch {
      // it is being dropped anyway
    }
    let fresh: Handle;
    try {
      fresh = lib.C_OpenSession(this.#slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
    } catch {
      // Keep the pool its size; the next operation on this handle reports the token's error.
      return session;
    }
    const i = this.#sessions.indexOf(session);
    if (i >= 0) this.#sessions[i] = fresh;
    return fresh;
  }

  #privateKey(keyId: string): Handle {
    checkKeyId(keyId);
    this.#checkOpen();
    const cached = this.#keys.get(keyId);
    if (cached) return cached;
    const [handle] = this.#find(
      [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
        { type: pkcs11js.CKA_ID, value: Buffer.from(keyId, 'hex') },
      ],
      2,
    );
    if (!handle) throw new Pkcs11KeyNotFoundError(keyId, this.#info.label);
    this.#keys.set(keyId, handle);
    return handle;
  }

  #find(template: pkcs11js.Template, max: number): Handle[] {
    const lib = this.#lib;
    const session = this.#control;
    call('C_FindObjectsInit', () => lib.C_FindObjectsInit(session, template));
    try {
      return call('C_FindObjects', () => lib.C_FindObjects(session, max));
    } finally {
      call('C_FindObjectsFinal', () => lib.C_FindObjectsFinal(session));
    }
  }

  #attributes(object: Handle, types: number[]): (Buffer | undefined)[] {
    const result = call('C_GetAttributeValue', () =>
      this.#lib.C_GetAttributeValue(
        this.#control,
        object,
        types.map((type) => ({ type })),
      ),
    );
    return types.map((type) => result.find((a) => a.type === type)?.value);
  }

  /** SPKI DER from CKA_MODULUS and CKA_PUBLIC_EXPONENT. */
  #spkiOf(privateKey: Handle, publicKey: Handle | null, keyId?: string): Buffer {
    let n: Buffer | undefined;
    let e: Buffer | undefined;
    try {
      [n, e] = this.#attributes(privateKey, [pkcs11js.CKA_MODULUS, pkcs11js.CKA_PUBLIC_EXPONENT]);
    } catch (err) {
      // A token that keeps no public attributes on private keys: use the public key object.
      const ckr = err instanceof Pkcs11Error ? err.ckr : null;
      if (ckr !== 'CKR_ATTRIBUTE_TYPE_INVALID' && ckr !== 'CKR_ATTRIBUTE_SENSITIVE') throw err;
    }
    if (!n?.length || !e?.length) {
      const pub =
        publicKey ??
        (keyId === undefined
          ? undefined
          : this.#find(
              [
                { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
                { type: pkcs11js.CKA_ID, value: Buffer.from(keyId, 'hex') },
              ],
              1,
            )[0]);
      if (pub) {
        [n, e] = this.#attributes(pub, [pkcs11js.CKA_MODULUS, pkcs11js.CKA_PUBLIC_EXPONENT]);
      }
    }
    if (!n?.length || !e?.length) {
      throw new Pkcs11Error(
        `token "${this.#info.label}" gave no RSA modulus and exponent for the key`,
        null,
        'C_GetAttributeValue',
      );
    }
    const key = createPublicKey({
      key: { kty: 'RSA', n: base64UrlUnsigned(n), e: base64UrlUnsigned(e) },
      format: 'jwk',
    });
    return key.export({ type: 'spki', format: 'der' });
  }

  #destroy(objects: Handle[]): void {
    for (const object of objects) {
      try {
        this.#lib.C_DestroyObject(this.#control, object);
      } catch {
        // best effort: the object may be gone already
      }
    }
  }
}

/** An operation failed in a way that may leave the session mid-operation. */
class TaintedSession extends Error {
  constructor(readonly error: Pkcs11Error) {
    super(error.message);
  }
}

function findSlot(lib: Library, label: string, module: string): Handle {
  const found: Handle[] = [];
  const present: string[] = [];
  for (const slot of call('C_GetSlotList', () => lib.C_GetSlotList(true))) {
    const info = call('C_GetTokenInfo', () => lib.C_GetTokenInfo(slot));
    if ((info.flags & pkcs11js.CKF_TOKEN_INITIALIZED) === 0) continue;
    const tokenLabel = unpad(info.label);
    present.push(JSON.stringify(tokenLabel));
    if (tokenLabel === label) found.push(slot);
  }
  if (found.length === 1 && found[0]) return found[0];
  throw new Pkcs11Error(
    found.length === 0
      ? `no PKCS#11 token labelled "${label}" in ${module} ` +
          `(tokens present: ${present.length > 0 ? present.join(', ') : 'none'})`
      : `${found.length} PKCS#11 tokens are labelled "${label}" in ${module}; labels must be unique`,
    null,
    'open',
  );
}

function checkKeyId(keyId: string): void {
  if (!KEY_ID_PATTERN.test(keyId)) throw new RangeError('a key id is lowercase hex (CKA_ID)');
}

function closedError(label: string): Pkcs11Error {
  return new Pkcs11Error(`PKCS#11 token "${label}" is closed`, null, 'closed');
}

/** An unsigned big-endian integer as JWK wants it: base64url without leading zero bytes. */
function base64UrlUnsigned(bytes: Buffer): string {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  return bytes.subarray(i).toString('base64url');
}
