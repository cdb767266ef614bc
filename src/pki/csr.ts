/**
 * PKCS#10 certification requests (RFC 2986): a strict, bounded parser for untrusted input and
 * the proof-of-possession check (the request is signed by the key it carries).
 *
 * CertificationRequest ::= SEQUENCE {
 *   certificationRequestInfo SEQUENCE { version INTEGER (0), subject Name,
 *     subjectPKInfo SubjectPublicKeyInfo, attributes [0] IMPLICIT SET OF Attribute },
 *   signatureAlgorithm AlgorithmIdentifier, signature BIT STRING }
 */
import {
  contextTag,
  DerError,
  type DerNode,
  expectTag,
  fromPem,
  parseDer,
  readBitString,
  readInteger,
  readOid,
  TAG,
} from './der.ts';
import { type Extension, OIDS, verifySignature } from './x509.ts';

export interface CsrAttribute {
  oid: string;
  /** The encoded values (each a complete TLV), in order. */
  values: Buffer[];
}

export interface ParsedCsr {
  /** The raw CertificationRequestInfo bytes: what the signature covers. */
  info: Buffer;
  /** Raw subject Name DER (may be an empty SEQUENCE). */
  subject: Buffer;
  /** Raw SubjectPublicKeyInfo DER. */
  spki: Buffer;
  /** OID of the signature algorithm. */
  signatureAlgorithm: string;
  /** The raw AlgorithmIdentifier. */
  signatureAlgorithmId: Buffer;
  /** BIT STRING value without the unused-bits octet. */
  signatureValue: Buffer;
  attributes: CsrAttribute[];
  /** The extensions of a PKCS#9 extensionRequest attribute, if any (in order). */
  requestedExtensions: Extension[];
}

export interface CsrLimits {
  /** Largest input accepted (default 16 KiB). */
  maxBytes: number;
  maxDepth: number;
  maxNodes: number;
}

const DEFAULT_LIMITS: CsrLimits = { maxBytes: 16 * 1024, maxDepth: 16, maxNodes: 2000 };

function readAlgorithm(node: DerNode | undefined, what: string): string {
  const alg = expectTag(node, TAG.sequence, what);
  if (alg.children.length < 1 || alg.children.length > 2) throw new DerError(`${what}: bad shape`);
  return readOid(alg.children[0], what);
}

function readExtensionRequest(values: readonly DerNode[]): Extension[] {
  if (values.length !== 1) throw new DerError('extensionRequest: exactly one value expected');
  const out: Extension[] = [];
  const seen = new Set<string>();
  for (const e of expectTag(values[0], TAG.sequence, 'extensionRequest').children) {
    expectTag(e, TAG.sequence, 'Extension');
    if (e.children.length < 2 || e.children.length > 3) throw new DerError('Extension: bad shape');
    const extOid = readOid(e.children[0], 'extnID');
    if (seen.has(extOid)) throw new DerError('extensionRequest: duplicate extension');
    seen.add(extOid);
    let critical = false;
    if (e.children.length === 3) {
      const b = expectTag(e.children[1], TAG.boolean, 'critical').content;
      if (b.length !== 1 || (b[0] !== 0 && b[0] !== 0xff)) throw new DerError('critical: bad');
      critical = b[0] === 0xff;
    }
    const value = expectTag(e.children[e.children.length - 1], TAG.octetString, 'extnValue');
    out.push({ oid: extOid, critical, value: value.content });
  }
  return out;
}

/**
 * Parses a DER PKCS#10 request. Strict (DER, version 0, attributes present, nothing extra)
 * and bounded (size, depth, element count). Throws DerError. The signature is not checked
 * here: call {@link verifyProofOfPossession}.
 */
export function parseCsr(der: Buffer, limits: Partial<CsrLimits> = {}): ParsedCsr {
  const lim = { ...DEFAULT_LIMITS, ...limits };
  if (der.length > lim.maxBytes) throw new DerError(`CSR larger than ${lim.maxBytes} bytes`);
  const root = expectTag(parseDer(der, lim), TAG.sequence, 'CertificationRequest');
  if (root.children.length !== 3) throw new DerError('CertificationRequest: bad shape');
  const [infoNode, algNode, sigNode] = root.children as [DerNode, DerNode, DerNode];

  const info = expectTag(infoNode, TAG.sequence, 'CertificationRequestInfo');
  if (info.children.length !== 4) throw new DerError('CertificationRequestInfo: bad shape');
  const [version, subject, spki, attrs] = info.children as [DerNode, DerNode, DerNode, DerNode];
  if (readInteger(version, 'version') !== 0n) throw new DerError('version: must be 0 (v1)');
  expectTag(subject, TAG.sequence, 'subject');
  expectTag(spki, TAG.sequence, 'subjectPKInfo');
  if (spki.children.length !== 2) throw new DerError('subjectPKInfo: bad shape');
  expectTag(spki.children[0], TAG.sequence, 'subjectPKInfo algorithm');
  expectTag(spki.children[1], TAG.bitString, 'subjectPublicKey');
  expectTag(attrs, contextTag(0, true), 'attributes');

  const attributes: CsrAttribute[] = [];
  let requestedExtensions: Extension[] = [];
  const seen = new Set<string>();
  for (const a of attrs.children) {
    expectTag(a, TAG.sequence, 'Attribute');
    if (a.children.length !== 2) throw new DerError('Attribute: bad shape');
    const type = readOid(a.children[0], 'Attribute type');
    if (seen.has(type)) throw new DerError('duplicate attribute');
    seen.add(type);
    const values = expectTag(a.children[1], TAG.set, 'Attribute values').children;
    if (values.length === 0) throw new DerError('Attribute values: empty');
    attributes.push({ oid: type, values: values.map((v) => v.bytes) });
    if (type === OIDS.extensionRequest) requestedExtensions = readExtensionRequest(values);
  }

  const signatureAlgorithm = readAlgorithm(algNode, 'signatureAlgorithm');
  const sig = readBitString(sigNode, 'signature');
  if (sig.unusedBits !== 0) throw new DerError('signature: partial byte');
  if (sig.bytes.length === 0) throw new DerError('signature: empty');

  return {
    info: info.bytes,
    subject: subject.bytes,
    spki: spki.bytes,
    signatureAlgorithm,
    signatureAlgorithmId: algNode.bytes,
    signatureValue: sig.bytes,
    attributes,
    requestedExtensions,
  };
}

/**
 * Whether the request's signature over the raw CertificationRequestInfo verifies with the key
 * it carries. Accepts sha256/384/512WithRSAEncryption and ecdsa-with-SHA256/384; throws
 * UnsupportedAlgorithmError for MD5/SHA-1 (and anything else), DerError for a malformed key.
 */
export function verifyProofOfPossession(csr: ParsedCsr): boolean {
  return verifySignature(csr.signatureAlgorithmId, csr.info, csr.signatureValue, csr.spki);
}

/** The DER of the first `CERTIFICATE REQUEST` (or legacy `NEW CERTIFICATE REQUEST`) block. */
export function csrFromPem(pem: string): Buffer {
  try {
    return fromPem(pem, 'CERTIFICATE REQUEST');
  } catch (e) {
    if (!pem.includes('-----BEGIN NEW CERTIFICATE REQUEST-----')) throw e;
    return fromPem(pem, 'NEW CERTIFICATE REQUEST');
  }
}
