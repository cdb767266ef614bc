/**
 * Certificate revocation lists (RFC 5280 §5; 失効情報ファイル).
 *
 * {@link buildCrl} streams: each entry is encoded straight into 1 MiB chunks while the total
 * length is counted, and the headers are prepended at the end — no object tree and no
 * re-parse, so a million entries take seconds (MEASURED-STACK.md §2.2, approach D).
 * {@link parseCrlSummary} reads a CRL back strictly for tests and monitoring, walking the entry
 * list element by element instead of building one tree for the whole CRL.
 */
import { algorithmIdentifier, type TbsSigner } from './algorithms.ts';
import {
  bitString,
  boolean,
  contextTag,
  DerError,
  type DerNode,
  explicit,
  header,
  integer,
  oid,
  octetString,
  parseDer,
  readBitString,
  readBoolean,
  readEnumerated,
  readHeader,
  readInteger,
  readOctetString,
  readOid,
  readTime,
  sequence,
  TAG,
  tlv,
  toPem,
  wholeSeconds,
  x509Time,
} from './der.ts';

/** CRLReason codes (RFC 5280 §5.3.1); 7 is not used. */
export const CRL_REASONS = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  removeFromCRL: 8,
  privilegeWithdrawn: 9,
  aACompromise: 10,
} as const;

export type CrlReason = keyof typeof CRL_REASONS;

const REASON_BY_CODE = new Map<number, CrlReason>(
  Object.entries(CRL_REASONS).map(([name, code]) => [code, name as CrlReason]),
);

/** The reason named by a CRLReason code, or undefined for codes RFC 5280 does not define. */
export const crlReasonOf = (code: number): CrlReason | undefined => REASON_BY_CODE.get(code);

export const CRL_OIDS = {
  reasonCode: '2.5.29.21',
  cRLNumber: '2.5.29.20',
  authorityKeyIdentifier: '2.5.29.35',
  issuingDistributionPoint: '2.5.29.28',
} as const;

export interface CrlEntry {
  serial: bigint;
  revokedAt: Date;
  /** `unspecified` and null both write no reasonCode extension (RFC 5280 §5.3.1 SHOULD). */
  reason: CrlReason | null;
}

export interface IssuingDistributionPointInput {
  /**
   * The content of the `[0] fullName` GeneralNames, i.e. the concatenated GeneralName
   * encodings — normally the same names as the certificates' CRL distribution point.
   */
  fullName?: Buffer;
  onlyContainsUserCerts?: boolean;
  onlyContainsCACerts?: boolean;
}

export interface CrlInput {
  /** The issuer's encoded Name (the CA certificate's subject, byte for byte). */
  issuer: Buffer;
  thisUpdate: Date;
  nextUpdate: Date;
  crlNumber: bigint;
  /** The CA's subject key identifier. */
  authorityKeyId: Buffer;
  /** Written as a critical extension when given. */
  issuingDistributionPoint?: IssuingDistributionPointInput;
  /** Written in the order given; the caller sorts and guarantees unique serials. */
  entries: Iterable<CrlEntry> | AsyncIterable<CrlEntry>;
}

// ---------------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------------

const extension = (id: string, critical: boolean, value: Buffer): Buffer =>
  critical
    ? sequence(oid(id), boolean(true), octetString(value))
    : sequence(oid(id), octetString(value));

/** crlEntryExtensions holding only a reasonCode, per reason; null for "write none". */
const REASON_EXTENSIONS = new Map<CrlReason, Buffer | null>(
  (Object.keys(CRL_REASONS) as CrlReason[]).map((r) => [
    r,
    r === 'unspecified'
      ? null
      : sequence(
          extension(CRL_OIDS.reasonCode, false, tlv(TAG.enumerated, Buffer.from([CRL_REASONS[r]]))),
        ),
  ]),
);

const CHUNK_SIZE = 1 << 20;
const DAY_MS = 86_400_000;

function twoDigits(b: Buffer, p: number, n: number): number {
  b[p] = 0x30 + Math.floor(n / 10);
  b[p + 1] = 0x30 + (n % 10);
  return p + 2;
}

/** 2 (SEQUENCE) + 22 (INTEGER of 20 octets) + 17 (GeneralizedTime) + 14 (reasonCode). */
const MAX_ENTRY_SIZE = 2 + 22 + 17 + 14;

/** Encodes revokedCertificates entries into large chunks, counting their total length. */
class EntryWriter {
  readonly chunks: Buffer[] = [];
  length = 0;
  count = 0;
  private buf: Buffer = Buffer.allocUnsafe(CHUNK_SIZE);
  private pos = 0;
  /** The current day (ms since the epoch / 86,400,000) and its time encoding up to the date. */
  private day = Number.NaN;
  private dayPrefix: Buffer = Buffer.alloc(0);

  add(entry: CrlEntry): void {
    const { serial } = entry;
    if (typeof serial !== 'bigint' || serial < 0n) {
      throw new RangeError('CRL entry serial must be a non-negative bigint');
    }
    let hex = serial.toString(16);
    if (hex.length % 2) hex = '0' + hex;
    const pad = parseInt(hex[0]!, 16) >= 8 ? 1 : 0;
    const serialLength = hex.length / 2 + pad;
    if (serialLength > 20) throw new RangeError('CRL entry serial longer than 20 octets');

    const ms = entry.revokedAt.getTime();
    if (!Number.isFinite(ms)) throw new RangeError('CRL entry revokedAt is not a valid date');
    const day = Math.floor(ms / DAY_MS);
    if (day !== this.day) {
      // x509Time picks UTCTime or GeneralizedTime by year, so the prefix is fixed per day.
      const midnight = x509Time(new Date(day * DAY_MS));
      this.dayPrefix = midnight.subarray(0, midnight.length - 7); // drop "000000Z"
      this.day = day;
    }
    const prefix = this.dayPrefix;
    const timeLength = prefix.length + 7;

    let ext: Buffer | null = null;
    if (entry.reason !== null) {
      const e = REASON_EXTENSIONS.get(entry.reason);
      if (e === undefined) throw new RangeError('unknown CRL reason');
      if (entry.reason === 'removeFromCRL') {
        throw new RangeError('removeFromCRL belongs in delta CRLs only');
      }
      ext = e;
    }

    const inner = 2 + serialLength + timeLength + (ext ? ext.length : 0);
    if (this.pos + 2 + inner > this.buf.length) this.flush();
    const b = this.buf;
    let p = this.pos;
    b[p++] = TAG.sequence;
    b[p++] = inner; // < 0x80: see MAX_ENTRY_SIZE
    b[p++] = TAG.integer;
    b[p++] = serialLength;
    if (pad) b[p++] = 0;
    p += b.write(hex, p, 'hex');
    p += prefix.copy(b, p);
    const seconds = Math.floor((ms - day * DAY_MS) / 1000);
    p = twoDigits(b, p, Math.floor(seconds / 3600));
    p = twoDigits(b, p, Math.floor(seconds / 60) % 60);
    p = twoDigits(b, p, seconds % 60);
    b[p++] = 0x5a; // 'Z'
    if (ext) p += ext.copy(b, p);
    this.length += p - this.pos;
    this.pos = p;
    this.count++;
  }

  private flush(): void {
    if (this.pos > 0) this.chunks.push(this.buf.subarray(0, this.pos));
    this.buf = Buffer.allocUnsafe(CHUNK_SIZE);
    this.pos = 0;
  }

  finish(): Buffer[] {
    if (this.pos > 0) this.chunks.push(this.buf.subarray(0, this.pos));
    this.pos = 0;
    return this.chunks;
  }
}

// Load-time guard for the single-byte entry length written above.
if (MAX_ENTRY_SIZE - 2 >= 0x80) throw new Error('CRL entry length must fit one byte');

function isAsyncIterable<T>(x: Iterable<T> | AsyncIterable<T>): x is AsyncIterable<T> {
  return typeof (x as Partial<AsyncIterable<T>>)[Symbol.asyncIterator] === 'function';
}

function integerContentLength(v: bigint): number {
  return integer(v).length - 2;
}

/** The IssuingDistributionPoint extension value (RFC 5280 §5.2.5). */
function issuingDistributionPoint(idp: IssuingDistributionPointInput): Buffer {
  const fields: Buffer[] = [];
  if (idp.fullName !== undefined) {
    if (idp.fullName.length === 0) throw new RangeError('IDP fullName must name something');
    // distributionPoint [0] DistributionPointName (a CHOICE, so explicit) → fullName [0].
    fields.push(explicit(0, tlv(contextTag(0, true), idp.fullName)));
  }
  if (idp.onlyContainsUserCerts && idp.onlyContainsCACerts) {
    throw new RangeError('IDP: at most one of onlyContainsUserCerts and onlyContainsCACerts');
  }
  // BOOLEAN DEFAULT FALSE: DER writes only TRUE.
  if (idp.onlyContainsUserCerts) fields.push(Buffer.from([contextTag(1, false), 1, 0xff]));
  if (idp.onlyContainsCACerts) fields.push(Buffer.from([contextTag(2, false), 1, 0xff]));
  if (fields.length === 0) throw new RangeError('IDP must not be an empty SEQUENCE');
  return sequence(...fields);
}

/**
 * Builds and signs a v2 CRL. revokedCertificates is omitted when there are no entries;
 * crlExtensions are AKI (keyIdentifier only), cRLNumber and, when given, a critical
 * issuingDistributionPoint. All times are truncated to whole seconds (UTCTime through 2049).
 * Throws RangeError on invalid input (negative or over-long serials, removeFromCRL, …).
 */
export async function buildCrl(input: CrlInput, signer: TbsSigner): Promise<Buffer> {
  if (input.issuer[0] !== TAG.sequence) throw new RangeError('issuer must be an encoded Name');
  if (input.authorityKeyId.length === 0) throw new RangeError('authorityKeyId is empty');
  if (input.crlNumber < 0n || integerContentLength(input.crlNumber) > 20) {
    throw new RangeError('cRLNumber must be 0..2^159');
  }
  const thisUpdate = wholeSeconds(input.thisUpdate);
  const nextUpdate = wholeSeconds(input.nextUpdate);
  if (!(nextUpdate.getTime() > thisUpdate.getTime())) {
    throw new RangeError('nextUpdate must be later than thisUpdate');
  }
  const extensions = [
    extension(
      CRL_OIDS.authorityKeyIdentifier,
      false,
      sequence(tlv(contextTag(0, false), input.authorityKeyId)),
    ),
    extension(CRL_OIDS.cRLNumber, false, integer(input.crlNumber)),
  ];
  if (input.issuingDistributionPoint) {
    extensions.push(
      extension(
        CRL_OIDS.issuingDistributionPoint,
        true,
        issuingDistributionPoint(input.issuingDistributionPoint),
      ),
    );
  }

  const writer = new EntryWriter();
  if (isAsyncIterable(input.entries)) {
    for await (const e of input.entries) writer.add(e);
  } else {
    for (const e of input.entries) writer.add(e);
  }
  const chunks = writer.finish();

  const algorithm = algorithmIdentifier(signer.algorithm);
  const head = [
    integer(1), // v2
    algorithm,
    input.issuer,
    x509Time(thisUpdate),
    x509Time(nextUpdate),
  ];
  const tail = explicit(0, sequence(...extensions));
  const parts = [...head];
  if (writer.count > 0) parts.push(header(TAG.sequence, writer.length), ...chunks);
  parts.push(tail);
  let tbsLength = 0;
  for (const p of parts) tbsLength += p.length;
  const tbsHeader = header(TAG.sequence, tbsLength);
  const tbs = Buffer.concat([tbsHeader, ...parts], tbsHeader.length + tbsLength);
  chunks.length = 0;

  const signature = bitString(await signer.sign(tbs));
  const bodyLength = tbs.length + algorithm.length + signature.length;
  const outer = header(TAG.sequence, bodyLength);
  return Buffer.concat([outer, tbs, algorithm, signature], outer.length + bodyLength);
}

/** PEM with the RFC 7468 label `X509 CRL` (OpenSSL rejects `CRL`). */
export const crlToPem = (der: Buffer): string => toPem(der, 'X509 CRL');

// ---------------------------------------------------------------------------------------------
// Strict reader (tests and monitoring)
// ---------------------------------------------------------------------------------------------

export interface CrlParseLimits {
  /** Largest CRL accepted (default 64 MiB; a million entries take about 36 MB). */
  maxBytes: number;
  /** Most revokedCertificates entries accepted (default 2,000,000). */
  maxEntries: number;
}

export interface CrlSummaryEntry {
  serial: bigint;
  revokedAt: Date;
  /** null when the entry carries no reasonCode. */
  reason: CrlReason | null;
}

export interface CrlSummary {
  version: 1 | 2;
  /** Dotted OID of the signature algorithm (checked equal to the TBS copy). */
  signatureAlgorithm: string;
  /** The encoded issuer Name. */
  issuer: Buffer;
  thisUpdate: Date;
  nextUpdate: Date | null;
  crlNumber: bigint | null;
  authorityKeyId: Buffer | null;
  /** The issuingDistributionPoint extnValue content, when present. */
  issuingDistributionPoint: Buffer | null;
  entryCount: number;
  entries: CrlSummaryEntry[];
  /** The signed TBSCertList bytes and the signature, for verifying with the CA's key. */
  tbs: Buffer;
  signature: Buffer;
}

interface Element {
  readonly start: number;
  readonly contentStart: number;
  readonly end: number;
  readonly tag: number;
}

function* elements(buf: Buffer, start: number, end: number): Generator<Element> {
  let pos = start;
  while (pos < end) {
    const h = readHeader(buf, pos, end);
    yield { start: pos, contentStart: h.contentStart, end: h.end, tag: h.tag };
    pos = h.end;
  }
}

const nodeOf = (buf: Buffer, e: Element): DerNode => parseDer(buf.subarray(e.start, e.end));

interface ParsedExtension {
  critical: boolean;
  value: Buffer;
}

/** Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension, strictly (no DEFAULT FALSE, no repeats). */
function readExtensions(node: DerNode | undefined, what: string): Map<string, ParsedExtension> {
  if (!node || node.tag !== TAG.sequence || node.children.length === 0) {
    throw new DerError(`${what}: bad Extensions`);
  }
  const out = new Map<string, ParsedExtension>();
  for (const ext of node.children) {
    const c = ext.children;
    if (ext.tag !== TAG.sequence || c.length < 2 || c.length > 3) {
      throw new DerError(`${what}: bad Extension`);
    }
    const id = readOid(c[0], `${what} extnID`);
    let critical = false;
    if (c.length === 3) {
      critical = readBoolean(c[1], `${what} critical`);
      if (!critical) throw new DerError(`${what}: DEFAULT FALSE encoded`);
    }
    if (out.has(id)) throw new DerError(`${what}: repeated extension`);
    out.set(id, { critical, value: readOctetString(c[c.length - 1], `${what} extnValue`) });
  }
  return out;
}

function readEntry(buf: Buffer, e: Element, version: 1 | 2): CrlSummaryEntry {
  const node = parseDer(buf.subarray(e.start, e.end), { maxNodes: 64 });
  const c = node.children;
  if (node.tag !== TAG.sequence || c.length < 2 || c.length > 3) {
    throw new DerError('bad revokedCertificates entry');
  }
  const serial = readInteger(c[0], 'userCertificate');
  const revokedAt = readTime(c[1], 'revocationDate');
  let reason: CrlReason | null = null;
  if (c[2]) {
    if (version !== 2) throw new DerError('crlEntryExtensions in a v1 CRL');
    for (const [id, ext] of readExtensions(c[2], 'crlEntryExtensions')) {
      if (id === CRL_OIDS.reasonCode) {
        const r = crlReasonOf(readEnumerated(parseDer(ext.value), 'reasonCode'));
        if (r === undefined) throw new DerError('reasonCode: undefined reason');
        reason = r;
      } else if (ext.critical) throw new DerError('unknown critical CRL entry extension');
    }
  }
  return { serial, revokedAt, reason };
}

/**
 * Reads a DER CRL strictly (DER lengths, field order and tags, no trailing bytes, known
 * critical extensions only). Does not verify the signature; `tbs` and `signature` are
 * returned for that. Throws {@link DerError}.
 */
export function parseCrlSummary(der: Buffer, limits: Partial<CrlParseLimits> = {}): CrlSummary {
  const lim: CrlParseLimits = { maxBytes: 64 * 1024 * 1024, maxEntries: 2_000_000, ...limits };
  if (der.length > lim.maxBytes) throw new DerError('CRL larger than the limit');
  const outer = readHeader(der, 0);
  if (outer.tag !== TAG.sequence || outer.end !== der.length) {
    throw new DerError('CertificateList: not one SEQUENCE');
  }
  const top = [...elements(der, outer.contentStart, outer.end)];
  const [tbsEl, algEl, sigEl] = top;
  if (top.length !== 3 || !tbsEl || !algEl || !sigEl || tbsEl.tag !== TAG.sequence) {
    throw new DerError('CertificateList: bad structure');
  }
  const outerAlg = nodeOf(der, algEl);
  const signature = readBitString(nodeOf(der, sigEl), 'signatureValue').bytes;

  const fields = [...elements(der, tbsEl.contentStart, tbsEl.end)];
  let i = 0;
  let version: 1 | 2 = 1;
  if (fields[i]?.tag === TAG.integer) {
    if (readInteger(nodeOf(der, fields[i++]!), 'version') !== 1n) {
      throw new DerError('version: not v2');
    }
    version = 2;
  }
  const tbsAlg = fields[i++];
  if (!tbsAlg || !der.subarray(tbsAlg.start, tbsAlg.end).equals(outerAlg.bytes)) {
    throw new DerError('signature: differs from signatureAlgorithm');
  }
  if (outerAlg.tag !== TAG.sequence) throw new DerError('signatureAlgorithm: bad');
  const signatureAlgorithm = readOid(outerAlg.children[0], 'signatureAlgorithm');
  const issuerEl = fields[i++];
  if (!issuerEl || issuerEl.tag !== TAG.sequence) throw new DerError('issuer: not a Name');
  const issuer = nodeOf(der, issuerEl).bytes;
  const thisUpdateEl = fields[i++];
  const thisUpdate = readTime(thisUpdateEl && nodeOf(der, thisUpdateEl), 'thisUpdate');
  let nextUpdate: Date | null = null;
  const isTime = (e: Element | undefined): boolean =>
    e?.tag === TAG.utcTime || e?.tag === TAG.generalizedTime;
  if (isTime(fields[i])) nextUpdate = readTime(nodeOf(der, fields[i++]!), 'nextUpdate');

  const entries: CrlSummaryEntry[] = [];
  if (fields[i]?.tag === TAG.sequence) {
    const list = fields[i++]!;
    if (list.contentStart === list.end) throw new DerError('revokedCertificates: empty SEQUENCE');
    for (const e of elements(der, list.contentStart, list.end)) {
      if (entries.length >= lim.maxEntries) throw new DerError('more CRL entries than the limit');
      entries.push(readEntry(der, e, version));
    }
  }

  let crlNumber: bigint | null = null;
  let authorityKeyId: Buffer | null = null;
  let idp: Buffer | null = null;
  if (fields[i]?.tag === contextTag(0, true)) {
    if (version !== 2) throw new DerError('crlExtensions in a v1 CRL');
    const wrapper = nodeOf(der, fields[i++]!);
    if (wrapper.children.length !== 1) throw new DerError('crlExtensions: bad [0]');
    for (const [id, ext] of readExtensions(wrapper.children[0], 'crlExtensions')) {
      if (id === CRL_OIDS.cRLNumber) {
        crlNumber = readInteger(parseDer(ext.value), 'cRLNumber');
        if (crlNumber < 0n) throw new DerError('cRLNumber: negative');
      } else if (id === CRL_OIDS.authorityKeyIdentifier) {
        const aki = parseDer(ext.value);
        if (aki.tag !== TAG.sequence) throw new DerError('authorityKeyIdentifier: bad');
        const keyId = aki.children.find((n) => n.tag === contextTag(0, false));
        authorityKeyId = keyId ? keyId.content : null;
      } else if (id === CRL_OIDS.issuingDistributionPoint) {
        if (parseDer(ext.value).tag !== TAG.sequence) {
          throw new DerError('issuingDistributionPoint: bad');
        }
        idp = ext.value;
      } else if (ext.critical) throw new DerError('unknown critical CRL extension');
    }
  }
  if (i !== fields.length) throw new DerError('TBSCertList: unexpected field');

  return {
    version,
    signatureAlgorithm,
    issuer,
    thisUpdate,
    nextUpdate,
    crlNumber,
    authorityKeyId,
    issuingDistributionPoint: idp,
    entryCount: entries.length,
    entries,
    tbs: der.subarray(tbsEl.start, tbsEl.end),
    signature,
  };
}
