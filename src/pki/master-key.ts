/**
 * The installation's master key (KEK): 32 bytes that wrap every key in the key store
 * (発行者署名符号 and the other CA keys, the 個人番号 generation key …) with AES-256-GCM.
 *
 * It comes from KIBAN_MASTER_KEY (base64) or from a file holding the base64 text, created by
 * {@link ensureMasterKeyFile} with mode 0600. The key lives in memory only as a `KeyObject`;
 * nothing here logs, returns or serialises it. Its {@link MasterKey.id} — a one-way digest —
 * is stored beside every wrapped entry so that "this database was wrapped under another master
 * key" can be told apart from "this entry was corrupted".
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createSecretKey,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import {
  closeSync,
  fchmodSync,
  fstatSync,
  fsyncSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { inspect } from 'node:util';

export const MASTER_KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Domain separation for the key id: the id is never a plain hash of the key. */
const ID_LABEL = 'kiban/master-key-id/v1\0';

/** The three parts of an AES-256-GCM wrapped value. */
export interface WrappedValue {
  /** 12 random bytes, fresh for every wrap. */
  iv: Buffer;
  /** The 16-byte GCM authentication tag. */
  tag: Buffer;
  ciphertext: Buffer;
}

export interface MasterKey {
  /**
   * First 16 hex characters of SHA-256 over a fixed label and the key: names the key without
   * revealing it, so entries can record which master key wrapped them.
   */
  readonly id: string;
  /** Encrypts `plain` with AES-256-GCM, authenticating `aad` alongside it. */
  wrap(plain: Buffer, aad: Buffer): WrappedValue;
  /**
   * Decrypts a value from {@link wrap}.
   * @throws Error when authentication fails: another key, another `aad`, or altered bytes.
   */
  unwrap(wrapped: WrappedValue, aad: Buffer): Buffer;
}

class SoftwareMasterKey implements MasterKey {
  readonly id: string;
  readonly #key: KeyObject;

  constructor(bytes: Uint8Array) {
    if (bytes.length !== MASTER_KEY_BYTES) {
      throw new Error(`a master key must be exactly ${MASTER_KEY_BYTES} bytes`);
    }
    this.id = createHash('sha256').update(ID_LABEL).update(bytes).digest('hex').slice(0, 16);
    this.#key = createSecretKey(bytes);
  }

  wrap(plain: Buffer, aad: Buffer): WrappedValue {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(aad);
    const ciphertext = Buffer.concat([cipher.update(plain), cipher.final()]);
    return { iv, tag: cipher.getAuthTag(), ciphertext };
  }

  unwrap(wrapped: WrappedValue, aad: Buffer): Buffer {
    if (wrapped.iv.length !== IV_BYTES || wrapped.tag.length !== TAG_BYTES) {
      throw new Error('wrapped value has a malformed iv or tag');
    }
    // authTagLength pins the tag to 16 bytes: GCM must never accept a truncated tag.
    const decipher = createDecipheriv('aes-256-gcm', this.#key, wrapped.iv, {
      authTagLength: TAG_BYTES,
    });
    decipher.setAAD(aad);
    decipher.setAuthTag(wrapped.tag);
    const plain = decipher.update(wrapped.ciphertext);
    try {
      return Buffer.concat([plain, decipher.final()]);
    } catch (err) {
      throw new Error(
        'master key: authentication failed (wrong key, wrong context or altered data)',
        {
          cause: err,
        },
      );
    } finally {
      // Buffer.concat copied it (or threw): the partial plaintext is not needed any more.
      plain.fill(0);
    }
  }

  /** Logging or serialising the master key shows its id only. */
  toJSON(): { masterKeyId: string } {
    return { masterKeyId: this.id };
  }

  [inspect.custom](): string {
    return `MasterKey { id: '${this.id}' }`;
  }
}

/** A master key from raw bytes (tests, tools). The caller may wipe `bytes` afterwards. */
export function masterKeyFromBytes(bytes: Uint8Array): MasterKey {
  return new SoftwareMasterKey(bytes);
}

export interface MasterKeySource {
  /** Base64 of 32 bytes (KIBAN_MASTER_KEY). Takes precedence over the file when non-empty. */
  env?: string | null;
  /** Path of the master key file (KIBAN_MASTER_KEY_FILE, default <data dir>/master.key). */
  file: string;
}

/**
 * Loads the master key: from `env` when given, else from `file`. The file must be a regular
 * file not readable or writable by group or other (mode & 0o077 = 0, as ssh demands of private
 * keys) and hold base64 of exactly 32 bytes, optionally followed by a newline.
 *
 * @throws Error with a message naming the source and the problem — never the key.
 */
export function loadMasterKey(source: MasterKeySource): MasterKey {
  if (source.env) return fromBase64(source.env, 'KIBAN_MASTER_KEY');
  const text = readKeyFile(source.file);
  return fromBase64(text, `master key file ${source.file}`);
}

function readKeyFile(file: string): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new Error(
        `master key file ${file} does not exist: run \`kiban init\` to create it, ` +
          'or set KIBAN_MASTER_KEY',
      );
    }
    throw new Error(`master key file ${file} cannot be opened (${code ?? 'error'})`);
  }
  try {
    // fstat on the open descriptor: the checked file is the file read.
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error(`master key file ${file} is not a regular file`);
    // POSIX permission bits mean nothing on Windows; there, ACLs are the operator's job.
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
      throw new Error(
        `master key file ${file} has mode ${mode}: it must not be accessible by group or ` +
          `others (chmod 600 ${file})`,
      );
    }
    if (st.size > 1024) throw new Error(`master key file ${file} is too large to be a key`);
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/** Standard or URL-safe base64 of 32 bytes: 43 characters and an optional '='. */
const BASE64_32 = /^[A-Za-z0-9+/_-]{43}=?$/;

function fromBase64(text: string, where: string): MasterKey {
  // One trailing newline (LF or CRLF) is allowed; anything else is not part of a key file.
  const trimmed = text.replace(/\r?\n$/, '');
  if (!BASE64_32.test(trimmed)) {
    throw new Error(`${where} must be base64 of exactly ${MASTER_KEY_BYTES} bytes`);
  }
  const bytes = Buffer.from(trimmed, 'base64');
  try {
    if (bytes.length !== MASTER_KEY_BYTES) {
      throw new Error(`${where} must be base64 of exactly ${MASTER_KEY_BYTES} bytes`);
    }
    return new SoftwareMasterKey(bytes);
  } finally {
    bytes.fill(0);
  }
}

/**
 * Creates the master key file with 32 random bytes (base64 and a newline) and mode 0600 when
 * it does not exist; an existing file is never touched, whatever its content or mode.
 *
 * The key is written to a temporary file (mode 0600) in the same directory, flushed, and then
 * hard-linked into place — link fails instead of overwriting a file another process created
 * meanwhile. Filesystems without hard links fall back to rename. Missing parent directories
 * are created with mode 0700.
 */
export function ensureMasterKeyFile(file: string): { created: boolean } {
  if (pathExists(file)) return { created: false };
  const dir = path.dirname(file);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const key = randomBytes(MASTER_KEY_BYTES);
  const text = Buffer.from(`${key.toString('base64')}\n`, 'utf8');
  key.fill(0);
  try {
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      fchmodSync(fd, 0o600); // exactly 0600, whatever the umask
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    text.fill(0);
    let created: boolean;
    try {
      linkSync(tmp, file);
      created = true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') {
        created = false;
      } else if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP') {
        // No hard links here: rename is still atomic, with a tiny window for a racing creator.
        if (pathExists(file)) {
          created = false;
        } else {
          renameSync(tmp, file);
          created = true;
        }
      } else {
        throw err;
      }
    }
    syncDir(dir);
    return { created };
  } finally {
    text.fill(0);
    rmSync(tmp, { force: true });
  }
}

function pathExists(file: string): boolean {
  try {
    lstatSync(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** Makes the new directory entry durable; not every platform can open a directory. */
function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // best effort
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
