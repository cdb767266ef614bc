/**
 * X.509 v3 certificates (RFC 5280) as bytes: written by appending DER chunks (no object
 * model), and read back by a strict, bounded parser.
 *
 * String types follow the real JPKI certificates (reference/jpki-ca/*.pem, checked with
 * `openssl asn1parse`): countryName is a PrintableString, every other attribute (O, OU, L, CN,
 * including the Japanese directoryName in subjectAltName/issuerAltName) is a UTF8String, and
 * the otherName values in subjectAltName are `[0] EXPLICIT UTF8String`. So {@link encodeName}
 * writes C as PrintableString, serialNumber as PrintableString (X.520 allows nothing else) and
 * everything else as UTF8String unless `encoding: 'printable'` is asked for.
 */
import { createHash, createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { algorithmIdentifier, type SignatureAlgorithmName, type TbsSigner } from './algorithms.ts';
import {
  bitString,
  boolean,
  contextTag,
  DerError,
  type DerNode,
  expectTag,
  explicit,
  fromPem,
  ia5String,
  implicit,
  integer,
  namedBits,
  NULL,
  octetString,
  oid,
  parseDer,
  printableString,
  readBitString,
  readBoolean,
  readInteger,
  readOctetString,
  readOid,
  readString,
  readTime,
  sequence,
  setOf,
  TAG,
  tlv,
  utf8String,
  x509Time,
} from './der.ts';

// ---------------------------------------------------------------------------------------------
// Object identifiers
// ---------------------------------------------------------------------------------------------

export const OIDS = {
  // Name attributes (X.520)
  countryName: '2.5.4.6',
  organizationName: '2.5.4.10',
  organizationalUnitName: '2.5.4.11',
  localityName: '2.5.4.7',
  stateOrProvinceName: '2.5.4.8',
  commonName: '2.5.4.3',
  serialNumber: '2.5.4.5',
  // Certificate extensions (RFC 5280 §4.2)
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  issuerAltName: '2.5.29.18',
  basicConstraints: '2.5.29.19',
  cRLDistributionPoints: '2.5.29.31',
  certificatePolicies: '2.5.29.32',
  anyPolicy: '2.5.29.32.0',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
  ocspNoCheck: '1.3.6.1.5.5.7.48.1.5',
  // Extended key usages
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  codeSigning: '1.3.6.1.5.5.7.3.3',
  emailProtection: '1.3.6.1.5.5.7.3.4',
  timeStamping: '1.3.6.1.5.5.7.3.8',
  OCSPSigning: '1.3.6.1.5.5.7.3.9',
  // Access methods and policy qualifiers
  ocsp: '1.3.6.1.5.5.7.48.1',
  caIssuers: '1.3.6.1.5.5.7.48.2',
  cps: '1.3.6.1.5.5.7.2.1',
  // Keys
  rsaEncryption: '1.2.840.113549.1.1.1',
  ecPublicKey: '1.2.840.10045.2.1',
  prime256v1: '1.2.840.10045.3.1.7',
  secp384r1: '1.3.132.0.34',
  // Signature algorithms
  md5WithRSAEncryption: '1.2.840.113549.1.1.4',
  sha1WithRSAEncryption: '1.2.840.113549.1.1.5',
  sha256WithRSAEncryption: '1.2.840.113549.1.1.11',
  sha384WithRSAEncryption: '1.2.840.113549.1.1.12',
  sha512WithRSAEncryption: '1.2.840.113549.1.1.13',
  ecdsaWithSHA1: '1.2.840.10045.4.1',
  ecdsaWithSHA256: '1.2.840.10045.4.3.2',
  ecdsaWithSHA384: '1.2.840.10045.4.3.3',
  // PKCS#9
  extensionRequest: '1.2.840.113549.1.9.14',
  // JPKI subjectAltName otherNames (JPKI-PROFILE.md, in the order the certificates carry them)
  jpkiName: '1.2.392.200149.8.5.5.1',
  jpkiDateOfBirth: '1.2.392.200149.8.5.5.4',
  jpkiSex: '1.2.392.200149.8.5.5.3',
  jpkiAddress: '1.2.392.200149.8.5.5.5',
  jpkiNameSubstitution: '1.2.392.200149.8.5.5.2',
  jpkiAddressSubstitution: '1.2.392.200149.8.5.5.6',
} as const;

const OID_NAMES = new Map<string, string>(Object.entries(OIDS).map(([k, v]) => [v, k]));

/** The {@link OIDS} name of `dotted`, or `dotted` itself. */
export const oidName = (dotted: string): string => OID_NAMES.get(dotted) ?? dotted;

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

export type NameAttributeType = 'C' | 'O' | 'OU' | 'L' | 'CN' | 'ST' | 'serialNumber';

export type NameAttribute = {
  type: NameAttributeType;
  value: string;
  /** Default: PrintableString for C and serialNumber (always), UTF8String otherwise. */
  encoding?: 'printable' | 'utf8';
};

const NAME_ATTRIBUTES: Record<NameAttributeType, { oid: string; max: number }> = {
  // Upper bounds from RFC 5280 Appendix A (characters).
  C: { oid: OIDS.countryName, max: 2 },
  O: { oid: OIDS.organizationName, max: 64 },
  OU: { oid: OIDS.organizationalUnitName, max: 64 },
  L: { oid: OIDS.localityName, max: 128 },
  CN: { oid: OIDS.commonName, max: 64 },
  ST: { oid: OIDS.stateOrProvinceName, max: 128 },
  serialNumber: { oid: OIDS.serialNumber, max: 64 },
};

const NAME_TYPES = new Map<string, NameAttributeType>(
  Object.entries(NAME_ATTRIBUTES).map(([k, v]) => [v.oid, k as NameAttributeType]),
);

/**
 * A Name (RDNSequence) with one attribute per RDN, in the given order. Throws RangeError on
 * empty or over-long values and on characters a PrintableString cannot hold. Messages name
 * the attribute type only, never the value.
 */
export function encodeName(attrs: readonly NameAttribute[]): Buffer {
  return sequence(
    ...attrs.map((a) => {
      const spec = NAME_ATTRIBUTES[a.type];
      if (!spec) throw new RangeError(`unsupported name attribute ${String(a.type)}`);
      const length = [...a.value].length;
      if (length === 0 || length > spec.max) {
        throw new RangeError(`name attribute ${a.type} must have 1..${spec.max} characters`);
      }
      if (a.type === 'C' && !/^[A-Z]{2}$/.test(a.value)) {
        throw new RangeError('name attribute C must be two capital letters');
      }
      const printable = a.type === 'C' || a.type === 'serialNumber' || a.encoding === 'printable';
      let value: Buffer;
      try {
        value = printable ? printableString(a.value) : utf8String(a.value);
      } catch {
        throw new RangeError(`name attribute ${a.type} is not a valid PrintableString`);
      }
      return setOf(sequence(oid(spec.oid), value));
    }),
  );
}

/**
 * The attributes of a Name, in order (multi-valued RDNs are flattened). Throws DerError on
 * attribute types or string types outside {@link NameAttribute}.
 */
export function decodeName(der: Buffer): NameAttribute[] {
  const root = expectTag(parseDer(der, { maxDepth: 8, maxNodes: 2000 }), TAG.sequence, 'Name');
  return decodeNameNode(root);
}

function decodeNameNode(root: DerNode): NameAttribute[] {
  const out: NameAttribute[] = [];
  for (const rdn of root.children) {
    expectTag(rdn, TAG.set, 'RelativeDistinguishedName');
    if (rdn.children.length === 0) throw new DerError('RelativeDistinguishedName: empty');
    for (const atv of rdn.children) {
      expectTag(atv, TAG.sequence, 'AttributeTypeAndValue');
      if (atv.children.length !== 2) throw new DerError('AttributeTypeAndValue: bad shape');
      const typeOid = readOid(atv.children[0], 'AttributeType');
      const type = NAME_TYPES.get(typeOid);
      if (!type) throw new DerError(`unsupported name attribute ${typeOid}`);
      const v = atv.children[1]!;
      if (v.tag !== TAG.printableString && v.tag !== TAG.utf8String) {
        throw new DerError(`name attribute ${type}: unsupported string type`);
      }
      out.push({
        type,
        value: v.tag === TAG.utf8String ? utf8Text(v.content, type) : printableText(v, type),
        encoding: v.tag === TAG.printableString ? 'printable' : 'utf8',
      });
    }
  }
  return out;
}

/** `C=JP, O=JPKI, …` (for display and logs that may show names). */
export const formatName = (attrs: readonly NameAttribute[]): string =>
  attrs.map((a) => `${a.type}=${a.value}`).join(', ');

// ---------------------------------------------------------------------------------------------
// GeneralName
// ---------------------------------------------------------------------------------------------

export type GeneralName =
  | { otherName: { oid: string; value: string /* [0] EXPLICIT UTF8String */ } }
  | { directoryName: Buffer /* encoded Name */ }
  | { uri: string }
  | { dnsName: string };

/** One GeneralName (RFC 5280 §4.2.1.6). */
export function encodeGeneralName(name: GeneralName): Buffer {
  if ('otherName' in name) {
    // otherName [0] IMPLICIT OtherName: SEQUENCE { type-id OID, value [0] EXPLICIT ANY }
    return tlv(contextTag(0, true), [
      oid(name.otherName.oid),
      explicit(0, utf8String(name.otherName.value)),
    ]);
  }
  if ('directoryName' in name) {
    // directoryName [4] Name: EXPLICIT, Name being a CHOICE.
    expectTag(parseDer(name.directoryName), TAG.sequence, 'directoryName');
    return explicit(4, name.directoryName);
  }
  if ('uri' in name) {
    if (name.uri.length === 0) throw new RangeError('empty URI');
    return implicit(6, ia5String(name.uri));
  }
  if ('dnsName' in name) {
    if (name.dnsName.length === 0) throw new RangeError('empty dNSName');
    return implicit(2, ia5String(name.dnsName));
  }
  throw new RangeError('unsupported GeneralName');
}

/** GeneralNames ::= SEQUENCE SIZE (1..MAX) OF GeneralName. */
export function encodeGeneralNames(names: readonly GeneralName[]): Buffer {
  if (names.length === 0) throw new RangeError('GeneralNames must not be empty');
  return sequence(...names.map(encodeGeneralName));
}

/**
 * A GeneralName as read back: the four kinds we write, or `unsupported` for anything else
 * (rfc822Name, iPAddress, …, and otherNames whose value is not `[0] EXPLICIT UTF8String`).
 */
export type DecodedGeneralName = GeneralName | { unsupported: { tag: number; der: Buffer } };

function decodeGeneralNameNode(n: DerNode): DecodedGeneralName {
  const unsupported = { unsupported: { tag: n.tag, der: n.bytes } };
  switch (n.tag) {
    case contextTag(0, true): {
      if (n.children.length !== 2) throw new DerError('otherName: bad shape');
      const typeId = readOid(n.children[0], 'otherName type-id');
      const wrapper = expectTag(n.children[1], contextTag(0, true), 'otherName value');
      const inner = wrapper.children;
      if (inner.length !== 1 || inner[0]!.tag !== TAG.utf8String) return unsupported;
      return { otherName: { oid: typeId, value: utf8Text(inner[0]!.content, 'otherName') } };
    }
    case contextTag(4, true): {
      if (n.children.length !== 1) throw new DerError('directoryName: bad shape');
      return { directoryName: expectTag(n.children[0], TAG.sequence, 'directoryName').bytes };
    }
    case contextTag(6, false):
      return { uri: ia5Text(n.content, 'uniformResourceIdentifier') };
    case contextTag(2, false):
      return { dnsName: ia5Text(n.content, 'dNSName') };
    default:
      return unsupported;
  }
}

function printableText(n: DerNode, what: string): string {
  const text = readString(n, what);
  if (!/^[A-Za-z0-9 '()+,\-./:=?]*$/.test(text)) throw new DerError(`${what}: bad PrintableString`);
  return text;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Strict UTF-8 (malformed sequences are an error, not U+FFFD). */
function utf8Text(b: Buffer, what: string): string {
  try {
    return UTF8.decode(b);
  } catch {
    throw new DerError(`${what}: malformed UTF-8`);
  }
}

function ia5Text(b: Buffer, what: string): string {
  for (const c of b) if (c > 0x7f) throw new DerError(`${what}: not an IA5String`);
  return b.toString('latin1');
}

const EXT_LIMITS = { maxDepth: 16, maxNodes: 5000 };

/** Decodes a GeneralNames value (e.g. a subjectAltName extnValue). */
export function decodeGeneralNames(der: Buffer): DecodedGeneralName[] {
  return decodeGeneralNamesNode(parseDer(der, EXT_LIMITS), 'GeneralNames');
}

function decodeGeneralNamesNode(node: DerNode, what: string): DecodedGeneralName[] {
  if (node.children.length === 0) throw new DerError(`${what}: empty`);
  return node.children.map(decodeGeneralNameNode);
}

// ---------------------------------------------------------------------------------------------
// Extensions
// ---------------------------------------------------------------------------------------------

export interface Extension {
  oid: string;
  critical: boolean;
  /** The extnValue content: the DER inside the OCTET STRING. */
  value: Buffer;
}

export const KEY_USAGE_BITS = {
  digitalSignature: 0,
  nonRepudiation: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
  encipherOnly: 7,
  decipherOnly: 8,
} as const;

export type KeyUsageBit = keyof typeof KEY_USAGE_BITS;

export function keyUsage(bits: readonly KeyUsageBit[], critical = true): Extension {
  if (bits.length === 0) throw new RangeError('keyUsage needs at least one bit');
  return {
    oid: OIDS.keyUsage,
    critical,
    value: namedBits(bits.map((b) => KEY_USAGE_BITS[b])),
  };
}

/** CA:FALSE is an empty SEQUENCE (cA DEFAULT FALSE is omitted in DER). */
export function basicConstraints(
  bc: { ca: boolean; pathLength?: number },
  critical = true,
): Extension {
  const items: Buffer[] = [];
  if (bc.ca) items.push(boolean(true));
  if (bc.pathLength !== undefined) {
    if (!bc.ca) throw new RangeError('pathLength is only allowed for CA certificates');
    if (!Number.isSafeInteger(bc.pathLength) || bc.pathLength < 0) {
      throw new RangeError('bad pathLength');
    }
    items.push(integer(bc.pathLength));
  }
  return { oid: OIDS.basicConstraints, critical, value: sequence(...items) };
}

/** The subjectPublicKey BIT STRING value of a SubjectPublicKeyInfo (without unused-bits). */
function subjectPublicKeyBits(spki: Buffer): Buffer {
  const root = expectTag(parseDer(spki, { maxDepth: 4, maxNodes: 16 }), TAG.sequence, 'SPKI');
  if (root.children.length !== 2) throw new DerError('SubjectPublicKeyInfo: bad shape');
  expectTag(root.children[0], TAG.sequence, 'SubjectPublicKeyInfo algorithm');
  const bits = readBitString(root.children[1], 'subjectPublicKey');
  if (bits.unusedBits !== 0) throw new DerError('subjectPublicKey: partial byte');
  return bits.bytes;
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING value. */
export const keyIdentifier = (spki: Buffer): Buffer =>
  createHash('sha1').update(subjectPublicKeyBits(spki)).digest();

export function subjectKeyIdentifier(spki: Buffer): Extension {
  return {
    oid: OIDS.subjectKeyIdentifier,
    critical: false,
    value: octetString(keyIdentifier(spki)),
  };
}

/**
 * keyIdentifier [0], authorityCertIssuer [1] (GeneralNames holding the issuer's issuer Name
 * as a directoryName) and authorityCertSerialNumber [2]; the last two go together.
 */
export function authorityKeyIdentifier(aki: {
  keyId: Buffer;
  issuer?: Buffer;
  serial?: bigint;
}): Extension {
  if ((aki.issuer === undefined) !== (aki.serial === undefined)) {
    throw new RangeError('authorityCertIssuer and authorityCertSerialNumber go together');
  }
  const items = [tlv(contextTag(0, false), aki.keyId)];
  if (aki.issuer !== undefined && aki.serial !== undefined) {
    items.push(implicit(1, encodeGeneralNames([{ directoryName: aki.issuer }])));
    items.push(implicit(2, integer(aki.serial)));
  }
  return { oid: OIDS.authorityKeyIdentifier, critical: false, value: sequence(...items) };
}

export function subjectAltName(names: readonly GeneralName[], critical = false): Extension {
  return { oid: OIDS.subjectAltName, critical, value: encodeGeneralNames(names) };
}

export function issuerAltName(names: readonly GeneralName[]): Extension {
  return { oid: OIDS.issuerAltName, critical: false, value: encodeGeneralNames(names) };
}

export interface PolicyInformation {
  oid: string;
  /** A CPS pointer qualifier (id-qt-cps, IA5String). */
  cpsUri?: string;
}

export function certificatePolicies(
  policies: readonly PolicyInformation[],
  critical: boolean,
): Extension {
  if (policies.length === 0) throw new RangeError('certificatePolicies must not be empty');
  return {
    oid: OIDS.certificatePolicies,
    critical,
    value: sequence(
      ...policies.map((p) =>
        p.cpsUri === undefined
          ? sequence(oid(p.oid))
          : sequence(oid(p.oid), sequence(sequence(oid(OIDS.cps), ia5String(p.cpsUri)))),
      ),
    ),
  };
}

/** Each point is a DistributionPoint with a fullName (all names reach the same CRL). */
export function crlDistributionPoints(points: readonly (readonly GeneralName[])[]): Extension {
  if (points.length === 0) throw new RangeError('cRLDistributionPoints must not be empty');
  return {
    oid: OIDS.cRLDistributionPoints,
    critical: false,
    // DistributionPoint { distributionPoint [0] EXPLICIT (CHOICE) { fullName [0] IMPLICIT } }
    value: sequence(
      ...points.map((names) => sequence(explicit(0, implicit(0, encodeGeneralNames(names))))),
    ),
  };
}

export function extendedKeyUsage(oids: readonly string[], critical = false): Extension {
  if (oids.length === 0) throw new RangeError('extendedKeyUsage must not be empty');
  return { oid: OIDS.extKeyUsage, critical, value: sequence(...oids.map((o) => oid(o))) };
}

export function authorityInfoAccess(aia: { ocsp?: string[]; caIssuers?: string[] }): Extension {
  const items = [
    ...(aia.ocsp ?? []).map((u) => sequence(oid(OIDS.ocsp), encodeGeneralName({ uri: u }))),
    ...(aia.caIssuers ?? []).map((u) =>
      sequence(oid(OIDS.caIssuers), encodeGeneralName({ uri: u })),
    ),
  ];
  if (items.length === 0) throw new RangeError('authorityInfoAccess must not be empty');
  return { oid: OIDS.authorityInfoAccess, critical: false, value: sequence(...items) };
}

/** id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1): value NULL. */
export const ocspNoCheck = (): Extension => ({
  oid: OIDS.ocspNoCheck,
  critical: false,
  value: NULL,
});

function encodeExtension(e: Extension): Buffer {
  return e.critical
    ? sequence(oid(e.oid), boolean(true), octetString(e.value))
    : sequence(oid(e.oid), octetString(e.value));
}

// ---------------------------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------------------------

export interface TbsCertificateInput {
  /** Positive, at most 20 octets encoded (RFC 5280 §4.1.2.2). */
  serial: bigint;
  signatureAlgorithm: SignatureAlgorithmName;
  /** Encoded issuer Name. */
  issuer: Buffer;
  /** Whole seconds. */
  notBefore: Date;
  notAfter: Date;
  /** Encoded subject Name. */
  subject: Buffer;
  /** SubjectPublicKeyInfo DER, copied as is. */
  spki: Buffer;
  /** Written in this order. */
  extensions: readonly Extension[];
}

/** The INTEGER content length of a positive serial. */
const serialOctets = (serial: bigint): number => integer(serial).length - 2;

function assertSequence(der: Buffer, what: string): void {
  try {
    expectTag(parseDer(der, EXT_LIMITS), TAG.sequence, what);
  } catch (e) {
    throw new RangeError(`${what} is not a DER SEQUENCE: ${(e as Error).message}`);
  }
}

/**
 * A version 3 TBSCertificate. Extensions are written in the given order; with none, the
 * `[3]` field is left out. Throws RangeError on a bad serial, reversed dates, duplicate
 * extensions or inputs that are not DER.
 */
export function buildTbsCertificate(input: TbsCertificateInput): Buffer {
  if (input.serial <= 0n || serialOctets(input.serial) > 20) {
    throw new RangeError('serial must be positive and at most 20 octets');
  }
  if (input.notAfter.getTime() < input.notBefore.getTime()) {
    throw new RangeError('notAfter is before notBefore');
  }
  assertSequence(input.issuer, 'issuer');
  assertSequence(input.subject, 'subject');
  subjectPublicKeyBits(input.spki);
  const seen = new Set<string>();
  for (const e of input.extensions) {
    if (seen.has(e.oid)) throw new RangeError(`duplicate extension ${oidName(e.oid)}`);
    seen.add(e.oid);
    try {
      parseDer(e.value, EXT_LIMITS);
    } catch (err) {
      throw new RangeError(`extension ${oidName(e.oid)}: ${(err as Error).message}`);
    }
  }
  const fields = [
    explicit(0, integer(2)),
    integer(input.serial),
    algorithmIdentifier(input.signatureAlgorithm),
    input.issuer,
    sequence(x509Time(input.notBefore), x509Time(input.notAfter)),
    input.subject,
    input.spki,
  ];
  if (input.extensions.length > 0) {
    fields.push(explicit(3, sequence(...input.extensions.map(encodeExtension))));
  }
  return sequence(...fields);
}

/** Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }. */
export function assembleCertificate(
  tbs: Buffer,
  algorithm: SignatureAlgorithmName,
  signature: Buffer,
): Buffer {
  return sequence(tbs, algorithmIdentifier(algorithm), bitString(signature));
}

/** Thrown by {@link issueCertificate} when the pre-signing check reports problems. */
export class CertificateCheckError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`certificate rejected before signing: ${problems.join('; ')}`);
    this.name = 'CertificateCheckError';
  }
}

/**
 * Builds the TBSCertificate, runs `check` on it (e.g. a profile check; any problem aborts
 * with {@link CertificateCheckError} before anything is signed), signs once and assembles.
 */
export async function issueCertificate(
  input: TbsCertificateInput,
  signer: TbsSigner,
  check?: (tbs: Buffer) => readonly string[],
): Promise<Buffer> {
  if (signer.algorithm !== input.signatureAlgorithm) {
    throw new RangeError(
      `signer uses ${signer.algorithm}, the certificate says ${input.signatureAlgorithm}`,
    );
  }
  const tbs = buildTbsCertificate(input);
  if (check) {
    const problems = check(tbs);
    if (problems.length > 0) throw new CertificateCheckError(problems);
  }
  return assembleCertificate(tbs, input.signatureAlgorithm, await signer.sign(tbs));
}

// ---------------------------------------------------------------------------------------------
// Reading certificates
// ---------------------------------------------------------------------------------------------

export interface ParsedTbsCertificate {
  /** The raw TBSCertificate bytes (a view into the parsed buffer). */
  tbs: Buffer;
  /** 1, 2 or 3 (the version as people write it, not the encoded 0..2). */
  version: number;
  serial: bigint;
  /** OID of the TBSCertificate's signature field. */
  signatureAlgorithm: string;
  /** The raw AlgorithmIdentifier of that field (to check its parameters). */
  signatureAlgorithmId: Buffer;
  /** Raw Name DER. */
  issuer: Buffer;
  notBefore: Date;
  notAfter: Date;
  subject: Buffer;
  spki: Buffer;
  /** In certificate order. */
  extensions: Extension[];
}

export interface ParsedCertificate extends ParsedTbsCertificate {
  /** The signature bytes (BIT STRING value without the unused-bits octet). */
  signatureValue: Buffer;
}

export interface CertificateLimits {
  /** Largest input accepted (default 64 KiB). */
  maxBytes: number;
  maxDepth: number;
  maxNodes: number;
}

const CERT_LIMITS: CertificateLimits = { maxBytes: 65536, maxDepth: 16, maxNodes: 10_000 };

function readAlgorithmId(node: DerNode | undefined, what: string): string {
  const alg = expectTag(node, TAG.sequence, what);
  if (alg.children.length < 1 || alg.children.length > 2) throw new DerError(`${what}: bad shape`);
  return readOid(alg.children[0], what);
}

/** RFC 5280 §4.1.2.5: UTCTime for 1950..2049, GeneralizedTime otherwise. */
function readValidityTime(node: DerNode | undefined, what: string): Date {
  const d = readTime(node, what);
  const y = d.getUTCFullYear();
  const utc = y >= 1950 && y < 2050;
  if ((node!.tag === TAG.utcTime) !== utc) {
    throw new DerError(`${what}: must be ${utc ? 'UTCTime' : 'GeneralizedTime'} for that year`);
  }
  return d;
}

function parseTbsNode(t: DerNode): ParsedTbsCertificate {
  expectTag(t, TAG.sequence, 'TBSCertificate');
  const c = t.children;
  let i = 0;
  let version = 1;
  if (c[0]?.tag === contextTag(0, true)) {
    if (c[0].children.length !== 1) throw new DerError('version: bad shape');
    const v = readInteger(c[0].children[0], 'version');
    if (v === 0n) throw new DerError('version: v1 must not be encoded (DEFAULT)');
    if (v !== 1n && v !== 2n) throw new DerError('version: unknown');
    version = Number(v) + 1;
    i++;
  }
  const serial = readInteger(c[i++], 'serialNumber');
  const sigNode = c[i++];
  const signatureAlgorithm = readAlgorithmId(sigNode, 'signature');
  const issuer = expectTag(c[i++], TAG.sequence, 'issuer');
  const validity = expectTag(c[i++], TAG.sequence, 'validity');
  if (validity.children.length !== 2) throw new DerError('validity: bad shape');
  const notBefore = readValidityTime(validity.children[0], 'notBefore');
  const notAfter = readValidityTime(validity.children[1], 'notAfter');
  const subject = expectTag(c[i++], TAG.sequence, 'subject');
  const spki = expectTag(c[i++], TAG.sequence, 'subjectPublicKeyInfo');
  // issuerUniqueID [1] and subjectUniqueID [2] (v2/v3) are skipped.
  for (const n of [1, 2]) {
    if (c[i]?.tag === contextTag(n, false) || c[i]?.tag === contextTag(n, true)) {
      if (version < 2) throw new DerError('unique identifiers need version 2 or 3');
      i++;
    }
  }
  const extensions: Extension[] = [];
  if (c[i]?.tag === contextTag(3, true)) {
    if (version !== 3) throw new DerError('extensions need version 3');
    const wrapper = c[i++]!;
    if (wrapper.children.length !== 1) throw new DerError('extensions: bad shape');
    const list = expectTag(wrapper.children[0], TAG.sequence, 'extensions');
    if (list.children.length === 0) throw new DerError('extensions: empty');
    const seen = new Set<string>();
    for (const e of list.children) {
      expectTag(e, TAG.sequence, 'Extension');
      if (e.children.length < 2 || e.children.length > 3)
        throw new DerError('Extension: bad shape');
      const extOid = readOid(e.children[0], 'extnID');
      if (seen.has(extOid)) throw new DerError(`duplicate extension ${oidName(extOid)}`);
      seen.add(extOid);
      let critical = false;
      if (e.children.length === 3) {
        critical = readBoolean(e.children[1], 'critical');
        if (!critical) throw new DerError('critical: FALSE must not be encoded (DEFAULT)');
      }
      const value = readOctetString(e.children[e.children.length - 1], 'extnValue');
      extensions.push({ oid: extOid, critical, value });
    }
  }
  if (i !== c.length) throw new DerError('TBSCertificate: unexpected fields');
  return {
    tbs: t.bytes,
    version,
    serial,
    signatureAlgorithm,
    signatureAlgorithmId: sigNode!.bytes,
    issuer: issuer.bytes,
    notBefore,
    notAfter,
    subject: subject.bytes,
    spki: spki.bytes,
    extensions,
  };
}

function checkSize(der: Buffer, max: number, what: string): void {
  if (der.length > max) throw new DerError(`${what} larger than ${max} bytes`);
}

/** Parses a TBSCertificate on its own (strict and bounded like {@link parseCertificate}). */
export function parseTbsCertificate(
  der: Buffer,
  limits: Partial<CertificateLimits> = {},
): ParsedTbsCertificate {
  const lim = { ...CERT_LIMITS, ...limits };
  checkSize(der, lim.maxBytes, 'TBSCertificate');
  return parseTbsNode(parseDer(der, lim));
}

/**
 * Parses a DER certificate: definite minimal lengths, no trailing bytes, DEFAULT values not
 * encoded, no duplicate extensions, the two signature algorithm fields identical. Throws
 * DerError.
 */
export function parseCertificate(
  der: Buffer,
  limits: Partial<CertificateLimits> = {},
): ParsedCertificate {
  const lim = { ...CERT_LIMITS, ...limits };
  checkSize(der, lim.maxBytes, 'certificate');
  const root = expectTag(parseDer(der, lim), TAG.sequence, 'Certificate');
  if (root.children.length !== 3) throw new DerError('Certificate: bad shape');
  const tbs = parseTbsNode(root.children[0]!);
  readAlgorithmId(root.children[1], 'signatureAlgorithm');
  if (!root.children[1]!.bytes.equals(tbs.signatureAlgorithmId)) {
    throw new DerError('signatureAlgorithm differs from the TBSCertificate signature field');
  }
  const sig = readBitString(root.children[2], 'signatureValue');
  if (sig.unusedBits !== 0) throw new DerError('signatureValue: partial byte');
  return { ...tbs, signatureValue: sig.bytes };
}

/** The DER of the first CERTIFICATE block in `pem`. */
export const certificateFromPem = (pem: string): Buffer => fromPem(pem, 'CERTIFICATE');

// ---------------------------------------------------------------------------------------------
// Extension readers (undefined when the extension is absent; DerError when malformed)
// ---------------------------------------------------------------------------------------------

type HasExtensions = { readonly extensions: readonly Extension[] };

export const extension = (cert: HasExtensions, extOid: string): Extension | undefined =>
  cert.extensions.find((e) => e.oid === extOid);

function extensionNode(cert: HasExtensions, extOid: string): DerNode | undefined {
  const e = extension(cert, extOid);
  return e && parseDer(e.value, EXT_LIMITS);
}

export function subjectKeyId(cert: HasExtensions): Buffer | undefined {
  const n = extensionNode(cert, OIDS.subjectKeyIdentifier);
  return n && readOctetString(n, 'subjectKeyIdentifier');
}

/** The keyIdentifier of authorityKeyIdentifier. */
export function authorityKeyId(cert: HasExtensions): Buffer | undefined {
  const n = extensionNode(cert, OIDS.authorityKeyIdentifier);
  if (!n) return undefined;
  expectTag(n, TAG.sequence, 'authorityKeyIdentifier');
  const k = n.children.find((c) => c.tag === contextTag(0, false));
  return k?.content;
}

/** subjectAltName entries, in order. */
export function subjectAltNamesOf(cert: HasExtensions): DecodedGeneralName[] | undefined {
  const n = extensionNode(cert, OIDS.subjectAltName);
  return n && decodeGeneralNamesNode(expectTag(n, TAG.sequence, 'subjectAltName'), 'SAN');
}

/** The otherName entries of subjectAltName in order; DerError if one is not a UTF8String. */
export function certificateOtherNames(cert: HasExtensions): { oid: string; value: string }[] {
  const out: { oid: string; value: string }[] = [];
  for (const g of subjectAltNamesOf(cert) ?? []) {
    if ('otherName' in g) out.push({ oid: g.otherName.oid, value: g.otherName.value });
    else if ('unsupported' in g && g.unsupported.tag === contextTag(0, true)) {
      throw new DerError('subjectAltName otherName: value is not a UTF8String');
    }
  }
  return out;
}

export function basicConstraintsOf(
  cert: HasExtensions,
): { ca: boolean; pathLength?: number } | undefined {
  const n = extensionNode(cert, OIDS.basicConstraints);
  if (!n) return undefined;
  expectTag(n, TAG.sequence, 'basicConstraints');
  const c = [...n.children];
  let ca = false;
  if (c[0]?.tag === TAG.boolean) {
    ca = readBoolean(c.shift(), 'cA');
    if (!ca) throw new DerError('cA: FALSE must not be encoded (DEFAULT)');
  }
  if (c.length === 0) return { ca };
  const pathLength = readInteger(c.shift(), 'pathLenConstraint');
  if (c.length > 0) throw new DerError('basicConstraints: bad shape');
  if (pathLength < 0n || pathLength > 0x7fffffffn) throw new DerError('pathLenConstraint: range');
  return { ca, pathLength: Number(pathLength) };
}

export function keyUsageOf(cert: HasExtensions): KeyUsageBit[] | undefined {
  const n = extensionNode(cert, OIDS.keyUsage);
  if (!n) return undefined;
  const { bytes, unusedBits } = readBitString(n, 'keyUsage');
  const total = bytes.length * 8 - unusedBits;
  return (Object.entries(KEY_USAGE_BITS) as [KeyUsageBit, number][])
    .filter(([, bit]) => bit < total && (bytes[bit >> 3]! & (0x80 >> (bit & 7))) !== 0)
    .map(([name]) => name);
}

export function extKeyUsageOf(cert: HasExtensions): string[] | undefined {
  const n = extensionNode(cert, OIDS.extKeyUsage);
  if (!n) return undefined;
  expectTag(n, TAG.sequence, 'extKeyUsage');
  return n.children.map((c) => readOid(c, 'KeyPurposeId'));
}

/** Policies with their CPS URI (other qualifiers are ignored). */
export function policiesOf(cert: HasExtensions): PolicyInformation[] | undefined {
  const n = extensionNode(cert, OIDS.certificatePolicies);
  if (!n) return undefined;
  expectTag(n, TAG.sequence, 'certificatePolicies');
  return n.children.map((p) => {
    expectTag(p, TAG.sequence, 'PolicyInformation');
    const info: PolicyInformation = { oid: readOid(p.children[0], 'policyIdentifier') };
    if (p.children.length > 2) throw new DerError('PolicyInformation: bad shape');
    if (p.children[1]) {
      for (const q of expectTag(p.children[1], TAG.sequence, 'policyQualifiers').children) {
        expectTag(q, TAG.sequence, 'PolicyQualifierInfo');
        if (readOid(q.children[0], 'policyQualifierId') === OIDS.cps) {
          info.cpsUri = ia5Text(expectTag(q.children[1], TAG.ia5String, 'cPSuri').content, 'CPS');
        }
      }
    }
    return info;
  });
}

/** Each distribution point's fullName (points with a relative name or none are skipped). */
export function crlDistributionPointsOf(cert: HasExtensions): DecodedGeneralName[][] | undefined {
  const n = extensionNode(cert, OIDS.cRLDistributionPoints);
  if (!n) return undefined;
  expectTag(n, TAG.sequence, 'cRLDistributionPoints');
  const out: DecodedGeneralName[][] = [];
  for (const dp of n.children) {
    expectTag(dp, TAG.sequence, 'DistributionPoint');
    const name = dp.children.find((c) => c.tag === contextTag(0, true));
    const full = name?.children[0];
    if (full?.tag === contextTag(0, true)) out.push(decodeGeneralNamesNode(full, 'fullName'));
  }
  return out;
}

export function authorityInfoAccessOf(
  cert: HasExtensions,
): { ocsp: string[]; caIssuers: string[] } | undefined {
  const n = extensionNode(cert, OIDS.authorityInfoAccess);
  if (!n) return undefined;
  const out = { ocsp: [] as string[], caIssuers: [] as string[] };
  for (const ad of expectTag(n, TAG.sequence, 'authorityInfoAccess').children) {
    expectTag(ad, TAG.sequence, 'AccessDescription');
    const method = readOid(ad.children[0], 'accessMethod');
    const loc = ad.children[1] && decodeGeneralNameNode(ad.children[1]);
    if (!loc || !('uri' in loc)) continue;
    if (method === OIDS.ocsp) out.ocsp.push(loc.uri);
    else if (method === OIDS.caIssuers) out.caIssuers.push(loc.uri);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Keys and signatures
// ---------------------------------------------------------------------------------------------

/** Thrown for signature algorithms we do not verify (MD5, SHA-1, PSS, unknown). */
export class UnsupportedAlgorithmError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsupportedAlgorithmError';
  }
}

const VERIFY_ALGORITHMS: Record<string, { hash: string; key: 'rsa' | 'ec' }> = {
  [OIDS.sha256WithRSAEncryption]: { hash: 'sha256', key: 'rsa' },
  [OIDS.sha384WithRSAEncryption]: { hash: 'sha384', key: 'rsa' },
  [OIDS.sha512WithRSAEncryption]: { hash: 'sha512', key: 'rsa' },
  [OIDS.ecdsaWithSHA256]: { hash: 'sha256', key: 'ec' },
  [OIDS.ecdsaWithSHA384]: { hash: 'sha384', key: 'ec' },
};

const WEAK_ALGORITHMS = new Set<string>([
  '1.2.840.113549.1.1.2', // md2WithRSAEncryption
  OIDS.md5WithRSAEncryption,
  OIDS.sha1WithRSAEncryption,
  '1.3.14.3.2.29', // sha1WithRSASignature (OIW)
  OIDS.ecdsaWithSHA1,
  '1.2.840.10040.4.3', // dsa-with-sha1
]);

function publicKeyOf(spki: Buffer): KeyObject {
  subjectPublicKeyBits(spki);
  try {
    return createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch {
    throw new DerError('not a valid SubjectPublicKeyInfo');
  }
}

/**
 * Verifies `signature` over `data` with the AlgorithmIdentifier `algorithmId` (raw DER) and
 * the key `spki`. RSA algorithms take NULL or absent parameters, ECDSA none. Returns false for
 * a wrong signature or a key of the wrong type; throws {@link UnsupportedAlgorithmError} for
 * MD5/SHA-1 and any algorithm not listed, DerError for malformed inputs.
 */
export function verifySignature(
  algorithmId: Buffer,
  data: Buffer,
  signature: Buffer,
  spki: Buffer,
): boolean {
  const alg = expectTag(parseDer(algorithmId, EXT_LIMITS), TAG.sequence, 'AlgorithmIdentifier');
  const algOid = readAlgorithmId(alg, 'AlgorithmIdentifier');
  if (WEAK_ALGORITHMS.has(algOid)) {
    throw new UnsupportedAlgorithmError(
      `signature algorithm ${oidName(algOid)} is not accepted: MD5 and SHA-1 are broken`,
    );
  }
  const spec = VERIFY_ALGORITHMS[algOid];
  if (!spec) throw new UnsupportedAlgorithmError(`signature algorithm ${algOid} is not supported`);
  const params = alg.children[1];
  if (spec.key === 'rsa' && params && !params.bytes.equals(NULL)) {
    throw new DerError('RSA signature algorithm parameters must be NULL');
  }
  if (spec.key === 'ec' && params) throw new DerError('ECDSA parameters must be absent');
  const key = publicKeyOf(spki);
  if (key.asymmetricKeyType !== spec.key) return false;
  try {
    return cryptoVerify(spec.hash, data, { key, dsaEncoding: 'der' }, signature);
  } catch {
    return false;
  }
}

/** Whether `cert`'s signature verifies with the issuer's key. */
export function verifySignedBy(cert: ParsedCertificate, issuerSpki: Buffer): boolean {
  return verifySignature(cert.signatureAlgorithmId, cert.tbs, cert.signatureValue, issuerSpki);
}

/** The SubjectPublicKeyInfo DER of a `PUBLIC KEY` PEM block (checked with {@link spkiInfo}). */
export function spkiFromPem(pem: string): Buffer {
  const der = fromPem(pem, 'PUBLIC KEY');
  spkiInfo(der);
  return der;
}

export interface SpkiInfo {
  type: 'rsa' | 'ec';
  /** RSA modulus length, or the curve's field size (256, 384, 521). */
  bits: number;
  publicExponent?: bigint;
  /** NIST name: `P-256`, `P-384`, `P-521`. */
  curve?: string;
}

/**
 * An RSA key read without OpenSSL: `{rsaEncryption, NULL}` and `RSAPublicKey {n, e}` with a
 * positive modulus and an odd exponent > 1, accepted only when re-encoding it gives the very
 * same bytes (so it is canonical DER). Anything else answers null and goes the general way
 * ({@link publicKeyOf}), which decides what it is and how to refuse it. Certificate issuance
 * reads every subject key several times; OpenSSL's decoder costs half a millisecond a time.
 */
function canonicalRsaSpki(spki: Buffer): SpkiInfo | null {
  try {
    const root = parseDer(spki, { maxDepth: 4, maxNodes: 16 });
    const alg = root.children[0]?.children ?? [];
    if (alg.length !== 2 || readOid(alg[0], 'algorithm') !== OIDS.rsaEncryption) return null;
    const key = readBitString(root.children[1], 'subjectPublicKey');
    const rsa = parseDer(key.bytes, { maxDepth: 2, maxNodes: 4 });
    const n = readInteger(rsa.children[0], 'modulus');
    const e = readInteger(rsa.children[1], 'publicExponent');
    if (rsa.children.length !== 2 || n <= 0n || e <= 1n || e % 2n === 0n) return null;
    const again = sequence(
      sequence(oid(OIDS.rsaEncryption), NULL),
      bitString(sequence(integer(n), integer(e))),
    );
    if (!again.equals(spki)) return null;
    return { type: 'rsa', bits: n.toString(2).length, publicExponent: e };
  } catch {
    return null;
  }
}

const CURVES: Record<string, { name: string; bits: number }> = {
  prime256v1: { name: 'P-256', bits: 256 },
  secp384r1: { name: 'P-384', bits: 384 },
  secp521r1: { name: 'P-521', bits: 521 },
};

/**
 * Key type and size of a SubjectPublicKeyInfo. Throws DerError on anything that is not a
 * canonically encoded RSA or named-curve (P-256/384/521) EC key.
 */
export function spkiInfo(spki: Buffer): SpkiInfo {
  const rsa = canonicalRsaSpki(spki);
  if (rsa) return rsa;
  const key = publicKeyOf(spki);
  const canonical = key.export({ type: 'spki', format: 'der' });
  if (!canonical.equals(spki)) throw new DerError('SubjectPublicKeyInfo is not canonical DER');
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa' && d.modulusLength && d.publicExponent !== undefined) {
    return { type: 'rsa', bits: d.modulusLength, publicExponent: d.publicExponent };
  }
  if (key.asymmetricKeyType === 'ec') {
    const curve = CURVES[d.namedCurve ?? ''];
    if (!curve) throw new DerError('unsupported EC curve');
    return { type: 'ec', bits: curve.bits, curve: curve.name };
  }
  throw new DerError(`unsupported key type ${String(key.asymmetricKeyType)}`);
}
