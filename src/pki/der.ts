/**
 * A small DER (ITU-T X.690 Distinguished Encoding Rules) writer and strict reader.
 *
 * Why our own: certificates, CRLs and OCSP responses are written by appending byte chunks
 * (no object tree, no re-parse), which is what makes a million-entry CRL take seconds instead
 * of hours (MEASURED-STACK.md §2.2). The reader is strict (definite, minimal lengths; no
 * trailing bytes) and bounded (depth and node count), because it parses untrusted input
 * such as OCSP requests and PKCS#10 requests.
 */

// ---------------------------------------------------------------------------------------------
// Tags
// ---------------------------------------------------------------------------------------------

export const TAG = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  null: 0x05,
  oid: 0x06,
  enumerated: 0x0a,
  utf8String: 0x0c,
  printableString: 0x13,
  ia5String: 0x16,
  utcTime: 0x17,
  generalizedTime: 0x18,
  sequence: 0x30,
  set: 0x31,
} as const;

/** Context-specific tag byte `[n]`, primitive or constructed (n < 31). */
export function contextTag(n: number, constructed: boolean): number {
  if (n < 0 || n > 30) throw new RangeError(`context tag [${n}] out of range`);
  return 0x80 | (constructed ? 0x20 : 0) | n;
}

// ---------------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------------

/** The DER header (tag and definite length) for `length` content bytes. */
export function header(tag: number, length: number): Buffer {
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError('bad DER length');
  if (length < 0x80) return Buffer.from([tag, length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256);
  return Buffer.from([tag, 0x80 | bytes.length, ...bytes]);
}

/** One TLV: `tag` with `content` (one buffer or several, concatenated). */
export function tlv(tag: number, content: Buffer | readonly Buffer[]): Buffer {
  if (Buffer.isBuffer(content)) return Buffer.concat([header(tag, content.length), content]);
  let length = 0;
  for (const c of content) length += c.length;
  const h = header(tag, length);
  return Buffer.concat([h, ...content], h.length + length);
}

export const sequence = (...items: Buffer[]): Buffer => tlv(TAG.sequence, items);

/** SET OF: DER sorts the encoded elements. */
export function setOf(...items: Buffer[]): Buffer {
  return tlv(
    TAG.set,
    [...items].sort((a, b) => Buffer.compare(a, b)),
  );
}

/** `[n] EXPLICIT`: wraps a complete encoding. */
export const explicit = (n: number, inner: Buffer | readonly Buffer[]): Buffer =>
  tlv(contextTag(n, true), inner);

/**
 * `[n] IMPLICIT`: replaces the tag of a complete encoding, keeping its constructed bit.
 * Only for single-byte tags.
 */
export function implicit(n: number, encoded: Buffer): Buffer {
  const out = Buffer.from(encoded);
  out[0] = contextTag(n, (encoded[0]! & 0x20) !== 0);
  return out;
}

export const NULL = Buffer.from([TAG.null, 0]);

export const boolean = (v: boolean): Buffer => Buffer.from([TAG.boolean, 1, v ? 0xff : 0]);

/** Minimal content bytes of a non-negative INTEGER (X.509 never needs negative ones here). */
function integerContent(v: bigint): Buffer {
  if (v < 0n) throw new RangeError('negative INTEGERs are not written');
  if (v === 0n) return Buffer.from([0]);
  let hex = v.toString(16);
  if (hex.length % 2) hex = '0' + hex;
  const bytes = Buffer.from(hex, 'hex');
  return bytes[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes;
}

export const integer = (v: bigint | number): Buffer => tlv(TAG.integer, integerContent(BigInt(v)));

/** INTEGER from an unsigned big-endian magnitude (e.g. an RSA modulus or a serial's bytes). */
export function unsignedInteger(magnitude: Buffer): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const m = magnitude.subarray(i);
  return tlv(TAG.integer, m[0]! & 0x80 ? [Buffer.from([0]), m] : m);
}

export const enumerated = (v: number): Buffer => tlv(TAG.enumerated, integerContent(BigInt(v)));

const oidCache = new Map<string, Buffer>();

/** OBJECT IDENTIFIER from dotted form; encodings are cached. */
export function oid(dotted: string): Buffer {
  const hit = oidCache.get(dotted);
  if (hit) return hit;
  const arcs = dotted.split('.').map((a) => {
    if (!/^(0|[1-9][0-9]*)$/.test(a)) throw new RangeError(`bad OID ${dotted}`);
    return BigInt(a);
  });
  if (arcs.length < 2 || arcs[0]! > 2n || (arcs[0]! < 2n && arcs[1]! > 39n)) {
    throw new RangeError(`bad OID ${dotted}`);
  }
  const bytes: number[] = [];
  const push = (arc: bigint): void => {
    const groups: number[] = [Number(arc & 0x7fn)];
    for (let a = arc >> 7n; a > 0n; a >>= 7n) groups.unshift(Number(a & 0x7fn) | 0x80);
    bytes.push(...groups);
  };
  push(arcs[0]! * 40n + arcs[1]!);
  for (const a of arcs.slice(2)) push(a);
  const out = tlv(TAG.oid, Buffer.from(bytes));
  oidCache.set(dotted, out);
  return out;
}

export const octetString = (b: Buffer): Buffer => tlv(TAG.octetString, b);

export const bitString = (b: Buffer, unusedBits = 0): Buffer =>
  tlv(TAG.bitString, [Buffer.from([unusedBits]), b]);

/**
 * A NamedBitList BIT STRING (e.g. KeyUsage) from bit numbers (0 = most significant bit of
 * the first byte). DER drops trailing zero bits.
 */
export function namedBits(bits: readonly number[]): Buffer {
  if (bits.length === 0) return bitString(Buffer.alloc(0));
  const highest = Math.max(...bits);
  const bytes = Buffer.alloc(Math.floor(highest / 8) + 1);
  for (const b of bits) bytes[b >> 3]! |= 0x80 >> (b & 7);
  return bitString(bytes, 7 - (highest & 7));
}

export const utf8String = (s: string): Buffer => tlv(TAG.utf8String, Buffer.from(s, 'utf8'));

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/** PrintableString; throws on characters outside its repertoire. */
export function printableString(s: string): Buffer {
  if (!PRINTABLE.test(s)) throw new RangeError('not a PrintableString');
  return tlv(TAG.printableString, Buffer.from(s, 'latin1'));
}

export function ia5String(s: string): Buffer {
  // eslint-disable-next-line no-control-regex
  if (!/^[\x00-\x7f]*$/.test(s)) throw new RangeError('not an IA5String');
  return tlv(TAG.ia5String, Buffer.from(s, 'latin1'));
}

const pad2 = (n: number): string => String(n).padStart(2, '0');

function timeDigits(d: Date, fourDigitYear: boolean): string {
  if (d.getUTCMilliseconds() !== 0) throw new RangeError('DER times have whole seconds');
  const y = d.getUTCFullYear();
  return (
    (fourDigitYear ? String(y).padStart(4, '0') : pad2(y % 100)) +
    pad2(d.getUTCMonth() + 1) +
    pad2(d.getUTCDate()) +
    pad2(d.getUTCHours()) +
    pad2(d.getUTCMinutes()) +
    pad2(d.getUTCSeconds()) +
    'Z'
  );
}

export const generalizedTime = (d: Date): Buffer =>
  tlv(TAG.generalizedTime, Buffer.from(timeDigits(d, true), 'latin1'));

/** RFC 5280 Time: UTCTime through 2049, GeneralizedTime from 2050. */
export function x509Time(d: Date): Buffer {
  const y = d.getUTCFullYear();
  if (y >= 1950 && y < 2050) return tlv(TAG.utcTime, Buffer.from(timeDigits(d, false), 'latin1'));
  return generalizedTime(d);
}

/** Truncates to whole seconds (DER times carry no fraction here). */
export const wholeSeconds = (d: Date): Date => new Date(Math.floor(d.getTime() / 1000) * 1000);

// ---------------------------------------------------------------------------------------------
// Strict, bounded reader
// ---------------------------------------------------------------------------------------------

export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DerError';
  }
}

export interface DerLimits {
  /** Deepest nesting accepted (default 32). */
  maxDepth: number;
  /** Most TLVs in one parse (default 100,000). */
  maxNodes: number;
}

export interface DerNode {
  /** The identifier octet (single-byte tags only). */
  readonly tag: number;
  readonly constructed: boolean;
  /** The whole TLV. */
  readonly bytes: Buffer;
  /** The content octets. */
  readonly content: Buffer;
  /** Children of a constructed node, in order; empty for primitives. */
  readonly children: readonly DerNode[];
}

/**
 * Parses one complete DER value occupying all of `buf`. Throws {@link DerError} on indefinite
 * or non-minimal lengths, multi-byte tags, truncation, trailing bytes or exceeded limits.
 */
export function parseDer(buf: Buffer, limits: Partial<DerLimits> = {}): DerNode {
  const lim: DerLimits = { maxDepth: 32, maxNodes: 100_000, ...limits };
  const state = { nodes: 0 };
  const [node, end] = readNode(buf, 0, buf.length, 0, lim, state);
  if (end !== buf.length) throw new DerError('trailing bytes after the DER value');
  return node;
}

function readNode(
  buf: Buffer,
  start: number,
  limit: number,
  depth: number,
  lim: DerLimits,
  state: { nodes: number },
): [DerNode, number] {
  if (depth > lim.maxDepth) throw new DerError('DER nesting too deep');
  if (++state.nodes > lim.maxNodes) throw new DerError('too many DER elements');
  if (start + 2 > limit) throw new DerError('truncated DER');
  const tag = buf[start]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte DER tags are not supported');
  let pos = start + 1;
  const first = buf[pos++]!;
  let length: number;
  if (first < 0x80) length = first;
  else {
    const n = first & 0x7f;
    if (n === 0) throw new DerError('indefinite length is not DER');
    if (n > 4) throw new DerError('DER length too large');
    if (pos + n > limit) throw new DerError('truncated DER length');
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + buf[pos + i]!;
    if (buf[pos] === 0 || length < 0x80) throw new DerError('non-minimal DER length');
    pos += n;
  }
  const end = pos + length;
  if (end > limit) throw new DerError('truncated DER content');
  const constructed = (tag & 0x20) !== 0;
  const children: DerNode[] = [];
  if (constructed) {
    let p = pos;
    while (p < end) {
      const [child, next] = readNode(buf, p, end, depth + 1, lim, state);
      children.push(child);
      p = next;
    }
  }
  return [
    {
      tag,
      constructed,
      bytes: buf.subarray(start, end),
      content: buf.subarray(pos, end),
      children,
    },
    end,
  ];
}

/** Where one TLV lies in a buffer, as read by {@link readHeader}. */
export interface DerHeader {
  readonly tag: number;
  readonly constructed: boolean;
  /** Offset of the first content octet. */
  readonly contentStart: number;
  /** Offset just past the TLV. */
  readonly end: number;
}

/**
 * Reads only the header of the TLV at `pos` (which must end by `limit`), with the same
 * strictness as {@link parseDer}, without descending into it. For walking a very long
 * SEQUENCE OF (e.g. a CRL's entries) element by element instead of building one tree.
 */
export function readHeader(buf: Buffer, pos: number, limit: number = buf.length): DerHeader {
  if (pos < 0 || limit > buf.length || pos + 2 > limit) throw new DerError('truncated DER');
  const tag = buf[pos]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte DER tags are not supported');
  let p = pos + 1;
  const first = buf[p++]!;
  let length = first;
  if (first >= 0x80) {
    const n = first & 0x7f;
    if (n === 0) throw new DerError('indefinite length is not DER');
    if (n > 4) throw new DerError('DER length too large');
    if (p + n > limit) throw new DerError('truncated DER length');
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + buf[p + i]!;
    if (buf[p] === 0 || length < 0x80) throw new DerError('non-minimal DER length');
    p += n;
  }
  if (p + length > limit) throw new DerError('truncated DER content');
  return { tag, constructed: (tag & 0x20) !== 0, contentStart: p, end: p + length };
}

/** Asserts the node's tag; `what` names it in the error. */
export function expectTag(node: DerNode | undefined, tag: number, what: string): DerNode {
  if (!node) throw new DerError(`${what}: missing`);
  if (node.tag !== tag) {
    throw new DerError(
      `${what}: expected tag 0x${tag.toString(16)}, got 0x${node.tag.toString(16)}`,
    );
  }
  return node;
}

export function readInteger(node: DerNode | undefined, what: string): bigint {
  const c = expectTag(node, TAG.integer, what).content;
  if (c.length === 0) throw new DerError(`${what}: empty INTEGER`);
  if (c.length > 1 && ((c[0] === 0 && !(c[1]! & 0x80)) || (c[0] === 0xff && c[1]! & 0x80))) {
    throw new DerError(`${what}: non-minimal INTEGER`);
  }
  let v = BigInt('0x' + c.toString('hex'));
  if (c[0]! & 0x80) v -= 1n << BigInt(c.length * 8);
  return v;
}

/** A non-negative ENUMERATED (e.g. CRLReason, OCSPResponseStatus) up to 2^31 - 1. */
export function readEnumerated(node: DerNode | undefined, what: string): number {
  const c = expectTag(node, TAG.enumerated, what).content;
  if (c.length === 0 || c.length > 4 || c[0]! & 0x80) throw new DerError(`${what}: bad ENUMERATED`);
  if (c.length > 1 && c[0] === 0 && !(c[1]! & 0x80)) {
    throw new DerError(`${what}: non-minimal ENUMERATED`);
  }
  return c.readUIntBE(0, c.length);
}

export function readOid(node: DerNode | undefined, what: string): string {
  const c = expectTag(node, TAG.oid, what).content;
  if (c.length === 0 || c.length > 64) throw new DerError(`${what}: bad OID length`);
  const arcs: bigint[] = [];
  let v = 0n;
  for (let i = 0; i < c.length; i++) {
    const b = c[i]!;
    if (v === 0n && b === 0x80) throw new DerError(`${what}: non-minimal OID arc`);
    v = (v << 7n) | BigInt(b & 0x7f);
    if (!(b & 0x80)) {
      arcs.push(v);
      v = 0n;
    } else if (i === c.length - 1) throw new DerError(`${what}: truncated OID`);
  }
  const first = arcs[0]!;
  const head = first < 80n ? [first / 40n, first % 40n] : [2n, first - 80n];
  return [...head, ...arcs.slice(1)].join('.');
}

export function readOctetString(node: DerNode | undefined, what: string): Buffer {
  return expectTag(node, TAG.octetString, what).content;
}

/** BIT STRING content without the unused-bits octet; only whole-byte strings unless allowed. */
export function readBitString(
  node: DerNode | undefined,
  what: string,
): { bytes: Buffer; unusedBits: number } {
  const c = expectTag(node, TAG.bitString, what).content;
  if (c.length === 0 || c[0]! > 7 || (c.length === 1 && c[0] !== 0)) {
    throw new DerError(`${what}: bad BIT STRING`);
  }
  return { bytes: c.subarray(1), unusedBits: c[0]! };
}

export function readBoolean(node: DerNode | undefined, what: string): boolean {
  const c = expectTag(node, TAG.boolean, what).content;
  if (c.length !== 1 || (c[0] !== 0 && c[0] !== 0xff)) throw new DerError(`${what}: bad BOOLEAN`);
  return c[0] === 0xff;
}

/** UTCTime or GeneralizedTime in the RFC 5280 form (seconds, `Z`, no fraction). */
export function readTime(node: DerNode | undefined, what: string): Date {
  if (!node) throw new DerError(`${what}: missing`);
  const s = node.content.toString('latin1');
  let m: RegExpExecArray | null;
  let year: number;
  if (node.tag === TAG.utcTime && (m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s))) {
    const yy = Number(m[1]);
    year = yy < 50 ? 2000 + yy : 1900 + yy;
  } else if (
    node.tag === TAG.generalizedTime &&
    (m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s))
  ) {
    year = Number(m[1]);
  } else throw new DerError(`${what}: bad time`);
  // setUTCFullYear, not Date.UTC: the latter maps years 0..99 to 1900..1999.
  const d = new Date(0);
  d.setUTCFullYear(year, Number(m[2]) - 1, Number(m[3]));
  d.setUTCHours(Number(m[4]), Number(m[5]), Number(m[6]));
  // Out-of-range fields (month 13, 10:60, Feb 30) roll over silently in Date: re-format and
  // compare to reject them.
  if (Number.isNaN(d.getTime()) || timeDigits(d, node.tag === TAG.generalizedTime) !== s) {
    throw new DerError(`${what}: bad time`);
  }
  return d;
}

/** The text of a UTF8String, PrintableString or IA5String. */
export function readString(node: DerNode | undefined, what: string): string {
  if (!node) throw new DerError(`${what}: missing`);
  if (node.tag === TAG.utf8String) return node.content.toString('utf8');
  if (node.tag === TAG.printableString || node.tag === TAG.ia5String) {
    return node.content.toString('latin1');
  }
  throw new DerError(`${what}: not a string`);
}

// ---------------------------------------------------------------------------------------------
// PEM
// ---------------------------------------------------------------------------------------------

/** RFC 7468 PEM with 64-character lines. Use label `X509 CRL` for CRLs, never `CRL`. */
export function toPem(der: Buffer, label: string): string {
  const b64 = der.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/**
 * The DER inside the first PEM block labelled `label`; throws DerError when there is none or
 * the base64 is malformed.
 */
export function fromPem(pem: string, label: string): Buffer {
  const re = new RegExp(
    `-----BEGIN ${label}-----\\r?\\n([A-Za-z0-9+/=\\r\\n]+?)-----END ${label}-----`,
  );
  const m = re.exec(pem);
  if (!m) throw new DerError(`no "${label}" PEM block`);
  const b64 = m[1]!.replace(/[\r\n]/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) {
    throw new DerError(`malformed base64 in the "${label}" PEM block`);
  }
  return Buffer.from(b64, 'base64');
}
