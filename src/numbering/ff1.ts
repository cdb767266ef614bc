/**
 * FF1 format-preserving encryption (フォーマット保持暗号化, NIST SP 800-38G), with the domain
 * and length constraints of SP 800-38G Rev. 1: 2 ≤ radix ≤ 2^16, radix^minlen ≥ 1,000,000 and
 * 2 ≤ minlen ≤ maxlen < 2^32, and a tweak of at most `maxTweakLength` bytes.
 *
 * The block cipher CIPH is AES-128/192/256 (chosen by the key length) and PRF is AES-CBC-MAC
 * with a zero IV, chained by hand over one reused `aes-*-ecb` cipher whose padding is off:
 * with padding off, each `update` of whole blocks returns exactly their encryption and keeps
 * no state between calls, so one key schedule serves every block. `final` is never called.
 *
 * Speed-ups that do not change the result: CIPH(P) is cached per (length, tweak length); the
 * CBC-MAC state after P and the whole blocks of Q that hold only tweak and padding is computed
 * once per call, not once per round; NUM_radix values are kept as BigInts across rounds
 * instead of being turned back into numeral strings. The batch helpers run many inputs of one
 * length in lock step so that each AES step of a round is a single `update` over all their
 * blocks; the per-call cost of `update` (about 0.5 µs) otherwise dominates.
 *
 * FF1 only keeps lengths and alphabets; it is deterministic for a given key and tweak, so equal
 * inputs give equal outputs. Error messages never echo the input.
 */
import { createCipheriv, KeyObject, type Cipher } from 'node:crypto';

export interface FF1Options {
  /**
   * Shortest numeral string accepted (minlen). Default: the smallest length ≥ 2 with
   * radix^minlen ≥ 1,000,000 (6 for radix 10). A smaller value is refused.
   */
  minLength?: number;
  /** Longest numeral string accepted (maxlen), below 2^32. Default 2^32 − 1. */
  maxLength?: number;
  /** Longest tweak accepted, in bytes (maxTlen), below 2^32. Default 256. */
  maxTweakLength?: number;
}

const MIN_DOMAIN_SIZE = 1_000_000;
const MAX_RADIX = 2 ** 16;
const LENGTH_LIMIT = 2 ** 32; // maxlen and maxTlen must be below this (4-byte fields of P)
const DEFAULT_MAX_TWEAK_LENGTH = 256;
const POWER_CACHE_SIZE = 128;
const P_CACHE_SIZE = 64;
/** Inputs processed in lock step by the batch helpers. */
export const BATCH_SIZE = 1024;
const EMPTY = Buffer.alloc(0);

/** The smallest m ≥ 2 with radix^m ≥ 1,000,000. */
function smallestMinLength(radix: number): number {
  let m = 1;
  let size = radix;
  while (m < 2 || size < MIN_DOMAIN_SIZE) {
    m++;
    size *= radix;
  }
  return m;
}

function isLength(x: unknown): x is number {
  return Number.isInteger(x) && (x as number) >= 0 && (x as number) < LENGTH_LIMIT;
}

export class FF1 {
  readonly radix: number;
  readonly minLength: number;
  readonly maxLength: number;
  readonly maxTweakLength: number;
  readonly #bigRadix: bigint;
  readonly #cipher: Cipher;
  readonly #powers: bigint[] = [];
  readonly #pBlocks = new Map<string, Buffer>();

  /**
   * @param key AES key of 16, 24 or 32 bytes (AES-128, -192, -256), as bytes or as a secret
   *   KeyObject (from the key store). It is handed to OpenSSL once (which keeps the key
   *   schedule); this object keeps no JavaScript copy of it.
   * @param radix the base of the numerals, 2 ≤ radix ≤ 65536.
   * @throws RangeError when the key, radix or options break SP 800-38G's constraints.
   */
  constructor(key: Uint8Array | KeyObject, radix: number, options: FF1Options = {}) {
    const keyLength =
      key instanceof KeyObject
        ? key.type === 'secret'
          ? (key.symmetricKeySize ?? 0)
          : 0
        : key instanceof Uint8Array
          ? key.length
          : 0;
    if (![16, 24, 32].includes(keyLength)) {
      throw new RangeError('FF1 key must be 16, 24 or 32 bytes (AES-128, AES-192, AES-256)');
    }
    if (!Number.isInteger(radix) || radix < 2 || radix > MAX_RADIX) {
      throw new RangeError(`FF1 radix must be an integer from 2 to ${MAX_RADIX}`);
    }
    const floor = smallestMinLength(radix);
    const minLength = options.minLength ?? floor;
    const maxLength = options.maxLength ?? LENGTH_LIMIT - 1;
    const maxTweakLength = options.maxTweakLength ?? DEFAULT_MAX_TWEAK_LENGTH;
    if (!isLength(minLength) || minLength < floor) {
      throw new RangeError(
        `FF1 minLength must be an integer ≥ ${floor} so that radix^minLength ≥ 1,000,000`,
      );
    }
    if (!isLength(maxLength) || maxLength < minLength) {
      throw new RangeError('FF1 maxLength must be an integer from minLength to 2^32 − 1');
    }
    if (!isLength(maxTweakLength)) {
      throw new RangeError('FF1 maxTweakLength must be an integer from 0 to 2^32 − 1');
    }
    this.radix = radix;
    this.minLength = minLength;
    this.maxLength = maxLength;
    this.maxTweakLength = maxTweakLength;
    this.#bigRadix = BigInt(radix);
    this.#cipher = createCipheriv(`aes-${keyLength * 8}-ecb`, key, null);
    this.#cipher.setAutoPadding(false);
  }

  /**
   * FF1.Encrypt. A string is read in the alphabet 0-9a-z (lower case; radix ≤ 36 only) and
   * the result is a string; an array holds numerals 0 ≤ x < radix and the result is an array.
   * @throws RangeError on a bad length, numeral or tweak length; TypeError on a string input
   *   with radix > 36.
   */
  encrypt(x: string, tweak: Uint8Array): string;
  encrypt(x: readonly number[], tweak: Uint8Array): number[];
  encrypt(x: string | readonly number[], tweak: Uint8Array): string | number[] {
    return typeof x === 'string'
      ? this.#applyString(x, tweak, false)
      : this.#applyNumerals(x, tweak, false);
  }

  /** FF1.Decrypt, the inverse of {@link encrypt}, with the same input forms. */
  decrypt(x: string, tweak: Uint8Array): string;
  decrypt(x: readonly number[], tweak: Uint8Array): number[];
  decrypt(x: string | readonly number[], tweak: Uint8Array): string | number[] {
    return typeof x === 'string'
      ? this.#applyString(x, tweak, true)
      : this.#applyNumerals(x, tweak, true);
  }

  /**
   * Encrypts a string of ASCII decimal digits into another of the same length (leading zeros
   * kept). Requires radix 10.
   */
  encryptDecimal(s: string, tweak: Uint8Array = EMPTY): string {
    this.#assertDecimal();
    return this.#applyString(s, tweak, false);
  }

  /** The inverse of {@link encryptDecimal}. Requires radix 10. */
  decryptDecimal(s: string, tweak: Uint8Array = EMPTY): string {
    this.#assertDecimal();
    return this.#applyString(s, tweak, true);
  }

  /**
   * {@link encryptDecimal} for many inputs under one tweak; the result is in input order. Much
   * faster per input than one call each: every AES step of a round is a single `update` over
   * up to {@link BATCH_SIZE} inputs of the same length. All inputs are checked first.
   */
  encryptDecimalBatch(values: readonly string[], tweak: Uint8Array = EMPTY): string[] {
    this.#assertDecimal();
    return this.#applyStrings(values, tweak, false);
  }

  /** The inverse of {@link encryptDecimalBatch}. */
  decryptDecimalBatch(values: readonly string[], tweak: Uint8Array = EMPTY): string[] {
    this.#assertDecimal();
    return this.#applyStrings(values, tweak, true);
  }

  #assertDecimal(): void {
    if (this.radix !== 10) throw new TypeError('FF1 decimal helpers need radix 10');
  }

  #applyString(x: string, tweak: Uint8Array, decrypt: boolean): string {
    return this.#applyStrings([x], tweak, decrypt)[0]!;
  }

  #applyStrings(xs: readonly string[], tweak: Uint8Array, decrypt: boolean): string[] {
    if (this.radix > 36) throw new TypeError('FF1 string input needs radix ≤ 36');
    if (!isArray(xs)) throw new TypeError('FF1 batch input must be an array of strings');
    this.#checkTweak(tweak);
    const byLength = new Map<number, number[]>();
    for (let k = 0; k < xs.length; k++) {
      const x = xs[k];
      if (typeof x !== 'string') throw new TypeError('FF1 input must be a string or an array');
      const n = this.#checkLength(x.length);
      for (let i = 0; i < n; i++) {
        if (numeralOf(x.charCodeAt(i)) >= this.radix) {
          throw new RangeError(
            `FF1 input has a character outside the radix-${this.radix} alphabet`,
          );
        }
      }
      const group = byLength.get(n);
      if (group === undefined) byLength.set(n, [k]);
      else group.push(k);
    }
    const out = new Array<string>(xs.length);
    for (const [n, indices] of byLength) {
      const u = n >>> 1;
      for (let start = 0; start < indices.length; start += BATCH_SIZE) {
        const chunk = indices.slice(start, start + BATCH_SIZE);
        const as = chunk.map((k) => this.#parse(xs[k]!, 0, u));
        const bs = chunk.map((k) => this.#parse(xs[k]!, u, n));
        this.#rounds(n, as, bs, tweak, decrypt);
        for (let c = 0; c < chunk.length; c++) {
          out[chunk[c]!] = this.#format(as[c]!, u) + this.#format(bs[c]!, n - u);
        }
      }
    }
    return out;
  }

  #applyNumerals(x: readonly number[], tweak: Uint8Array, decrypt: boolean): number[] {
    if (!isArray(x)) throw new TypeError('FF1 input must be a string or an array');
    this.#checkTweak(tweak);
    const n = this.#checkLength(x.length);
    const u = n >>> 1;
    const as = [this.#numOf(x, 0, u)];
    const bs = [this.#numOf(x, u, n)];
    this.#rounds(n, as, bs, tweak, decrypt);
    return [...this.#digitsOf(as[0]!, u), ...this.#digitsOf(bs[0]!, n - u)];
  }

  #checkTweak(tweak: Uint8Array): void {
    if (!(tweak instanceof Uint8Array)) throw new TypeError('FF1 tweak must be a Uint8Array');
    if (tweak.length > this.maxTweakLength) {
      throw new RangeError(`FF1 tweak must be at most ${this.maxTweakLength} bytes`);
    }
  }

  /** Checks the input length n against minLength and maxLength; returns n. */
  #checkLength(n: number): number {
    if (n < this.minLength || n > this.maxLength) {
      throw new RangeError(
        `FF1 input must have from ${this.minLength} to ${this.maxLength} numerals`,
      );
    }
    return n;
  }

  /**
   * Steps 1–7 of FF1.Encrypt (Algorithm 7) or FF1.Decrypt (Algorithm 8) for several inputs of
   * the same length n under one tweak, in lock step: as[k] = NUM(X_k[1..u]) and
   * bs[k] = NUM(X_k[u+1..n]) are replaced by the final NUM values of A and B. Each AES step
   * of a round is one `update` over all inputs' blocks.
   */
  #rounds(n: number, as: bigint[], bs: bigint[], tweak: Uint8Array, decrypt: boolean): void {
    const count = as.length;
    const t = tweak.length;
    const u = n >>> 1;
    const v = n - u;
    const bytes = this.#byteLength(v); // b = ⌈⌈v·LOG(radix)⌉ / 8⌉
    const d = 4 * Math.ceil(bytes / 4) + 4;
    const pad = (((-t - bytes - 1) % 16) + 16) % 16;
    // Q = T ‖ [0]^pad ‖ [i]^1 ‖ [NUM(B)]^b. Only the blocks from the one holding [i] on change
    // between rounds; the CBC-MAC state after P and the blocks before them is computed once.
    const fixed = t + pad;
    const q = Buffer.alloc(fixed + 1 + bytes);
    q.set(tweak, 0);
    const prefix = fixed - (fixed % 16);
    let head = this.#cipherP(n, u, t);
    if (prefix > 0) head = this.#cbcMac(head, q.subarray(0, prefix));
    const tailLength = q.length - prefix;
    const tails = Buffer.alloc(count * tailLength);
    const heads = Buffer.alloc(count * 16);
    for (let k = 0; k < count; k++) {
      q.copy(tails, k * tailLength, prefix);
      head.copy(heads, k * 16);
    }
    const iAt = fixed - prefix;
    const numAt = tailLength - bytes;
    const x = Buffer.alloc(count * 16);
    const modU = this.#power(u);
    const modV = this.#power(v);
    for (let round = 0; round < 10; round++) {
      const i = decrypt ? 9 - round : round;
      for (let k = 0; k < count; k++) {
        const at = k * tailLength;
        tails[at + iAt] = i;
        writeBigUIntBE(tails, decrypt ? as[k]! : bs[k]!, at + numAt, bytes);
      }
      // R = PRF(P ‖ Q), block by block for all inputs at once.
      let r = heads;
      for (let off = 0; off < tailLength; off += 16) {
        for (let k = 0; k < count; k++) {
          const rAt = k * 16;
          const qAt = k * tailLength + off;
          for (let j = 0; j < 16; j++) x[rAt + j] = r[rAt + j]! ^ tails[qAt + j]!;
        }
        r = this.#cipher.update(x);
      }
      const ys = this.#numS(r, count, d);
      const mod = i % 2 === 0 ? modU : modV;
      for (let k = 0; k < count; k++) {
        const a = as[k]!;
        const b = bs[k]!;
        const y = ys[k]!;
        if (decrypt) {
          let c = (b - y) % mod;
          if (c < 0n) c += mod;
          bs[k] = a;
          as[k] = c;
        } else {
          as[k] = b;
          bs[k] = (a + y) % mod;
        }
      }
    }
  }

  /** CIPH_K(P) for P = [1]^1 ‖ [2]^1 ‖ [1]^1 ‖ [radix]^3 ‖ [10]^1 ‖ [u mod 256]^1 ‖ [n]^4 ‖ [t]^4. */
  #cipherP(n: number, u: number, t: number): Buffer {
    const key = `${n}:${t}`;
    const cached = this.#pBlocks.get(key);
    if (cached !== undefined) return cached;
    const p = Buffer.alloc(16);
    p[0] = 1;
    p[1] = 2;
    p[2] = 1;
    p.writeUIntBE(this.radix, 3, 3);
    p[6] = 10;
    p[7] = u % 256;
    p.writeUInt32BE(n, 8);
    p.writeUInt32BE(t, 12);
    const block = this.#cipher.update(p);
    if (this.#pBlocks.size >= P_CACHE_SIZE) this.#pBlocks.clear();
    this.#pBlocks.set(key, block);
    return block;
  }

  /** CBC-MAC continuing from `state` over `data` (a whole number of blocks). */
  #cbcMac(state: Buffer, data: Buffer): Buffer {
    const x = Buffer.alloc(16);
    let y = state;
    for (let off = 0; off < data.length; off += 16) {
      for (let j = 0; j < 16; j++) x[j] = y[j]! ^ data[off + j]!;
      y = this.#cipher.update(x);
    }
    return y;
  }

  /**
   * y = NUM(S) for each input's R (16 bytes each in `r`), where S is the first d bytes of
   * R ‖ CIPH(R ⊕ [1]^16) ‖ … ‖ CIPH(R ⊕ [⌈d/16⌉ − 1]^16).
   */
  #numS(r: Buffer, count: number, d: number): bigint[] {
    const ys = new Array<bigint>(count);
    if (d <= 16) {
      for (let k = 0; k < count; k++) {
        ys[k] =
          d === 8
            ? r.readBigUInt64BE(k * 16)
            : BigInt('0x' + r.toString('hex', k * 16, k * 16 + d));
      }
      return ys;
    }
    const extra = Math.ceil(d / 16) - 1;
    const blocks = Buffer.alloc(count * extra * 16);
    for (let k = 0; k < count; k++) {
      for (let j = 1; j <= extra; j++) {
        const off = (k * extra + j - 1) * 16;
        r.copy(blocks, off, k * 16, k * 16 + 16);
        blocks.writeUInt32BE((blocks.readUInt32BE(off + 12) ^ j) >>> 0, off + 12);
      }
    }
    const encrypted = this.#cipher.update(blocks);
    for (let k = 0; k < count; k++) {
      const s =
        r.toString('hex', k * 16, k * 16 + 16) +
        encrypted.toString('hex', k * extra * 16, (k + 1) * extra * 16);
      ys[k] = BigInt('0x' + s.slice(0, 2 * d));
    }
    return ys;
  }

  /** radix^m. */
  #power(m: number): bigint {
    if (m >= POWER_CACHE_SIZE) return this.#bigRadix ** BigInt(m);
    let p = this.#powers[m];
    if (p === undefined) {
      p = this.#bigRadix ** BigInt(m);
      this.#powers[m] = p;
    }
    return p;
  }

  /**
   * b = ⌈⌈v·LOG(radix)⌉ / 8⌉, computed exactly: ⌈v·log2(radix)⌉ is the bit length of
   * radix^v − 1 (v·log2(radix) is an integer only when radix is a power of 2, and then
   * radix^v − 1 has exactly that many bits), so no floating-point logarithm is involved.
   */
  #byteLength(v: number): number {
    return Math.ceil((this.#power(v) - 1n).toString(2).length / 8);
  }

  /** NUM_radix of the string numerals x[start..end) (already checked against the radix). */
  #parse(x: string, start: number, end: number): bigint {
    if (this.radix === 10) return BigInt(x.slice(start, end));
    return this.#accumulate((i) => numeralOf(x.charCodeAt(i)), start, end);
  }

  /** STR^m_radix(x) in the alphabet 0-9a-z. */
  #format(x: bigint, m: number): string {
    return x.toString(this.radix).padStart(m, '0');
  }

  /** NUM_radix of the numerals x[start..end). */
  #numOf(x: readonly number[], start: number, end: number): bigint {
    const radix = this.radix;
    return this.#accumulate(
      (i) => {
        const digit = x[i];
        if (digit === undefined || !Number.isInteger(digit) || digit < 0 || digit >= radix) {
          throw new RangeError(`FF1 numerals must be integers from 0 to ${radix - 1}`);
        }
        return digit;
      },
      start,
      end,
    );
  }

  /** Σ numeral(i)·radix^(end−1−i), in chunks that stay exact as doubles. */
  #accumulate(numeral: (i: number) => number, start: number, end: number): bigint {
    const radix = this.radix;
    let acc = 0n;
    let chunk = 0;
    let scale = 1;
    for (let i = start; i < end; i++) {
      chunk = chunk * radix + numeral(i);
      scale *= radix;
      if (scale * radix > Number.MAX_SAFE_INTEGER) {
        acc = acc * BigInt(scale) + BigInt(chunk);
        chunk = 0;
        scale = 1;
      }
    }
    return acc * BigInt(scale) + BigInt(chunk);
  }

  /** STR^m_radix(x) as numerals. */
  #digitsOf(x: bigint, m: number): number[] {
    const out = new Array<number>(m);
    for (let k = m - 1; k >= 0; k--) {
      out[k] = Number(x % this.#bigRadix);
      x /= this.#bigRadix;
    }
    return out;
  }
}

/** Array.isArray without its narrowing (which turns a readonly array type into any[]). */
function isArray(x: unknown): boolean {
  return Array.isArray(x);
}

/** The value of a character of the alphabet 0-9a-z, or 2^16 (above any radix) for others. */
function numeralOf(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 122) return c - 87;
  return MAX_RADIX;
}

/** Writes x as a `length`-byte big-endian unsigned integer at `offset` (x < 256^length). */
function writeBigUIntBE(buf: Buffer, x: bigint, offset: number, length: number): void {
  if (length <= 6) {
    buf.writeUIntBE(Number(x), offset, length);
    return;
  }
  for (let k = offset + length - 1; k >= offset; k--) {
    buf[k] = Number(x & 0xffn);
    x >>= 8n;
  }
}
