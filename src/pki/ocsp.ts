/**
 * OCSP (RFC 6960) codec: a strict, bounded request parser for untrusted input, a response
 * builder (BasicOCSPResponse, ResponderID byKey), error responses, CertID computation for
 * pre-signed responses, and a reader of responses for tests and monitoring.
 *
 * Request policy:
 * - The size is checked before parsing; only DER is accepted (definite, minimal lengths, no
 *   trailing bytes), with depth and element-count limits.
 * - Unsigned requests are the norm (RFC 6960 §4.1.2). A signed request is accepted but its
 *   requestorName and optionalSignature are ignored: the responder answers everyone alike, so
 *   the signature would authorise nothing. (Answer `sigRequired` at the HTTP layer if that
 *   policy ever changes.)
 * - Nonce (RFC 8954): the extnValue must be an OCTET STRING of 1–32 octets; the extnValue
 *   content is kept verbatim and echoed in the response.
 * - Unknown non-critical extensions are ignored, unknown critical ones are rejected, in
 *   requestExtensions and singleRequestExtensions alike.
 */
import { createHash } from 'node:crypto';
import { algorithmIdentifier, type TbsSigner } from './algorithms.ts';
import { CRL_REASONS, crlReasonOf, type CrlReason } from './crl.ts';
import {
  bitString,
  contextTag,
  DerError,
  type DerNode,
  enumerated,
  explicit,
  generalizedTime,
  integer,
  NULL,
  oid,
  octetString,
  parseDer,
  readBitString,
  readBoolean,
  readEnumerated,
  readInteger,
  readOctetString,
  readOid,
  readTime,
  sequence,
  TAG,
  tlv,
  wholeSeconds,
} from './der.ts';

export const OCSP_OIDS = {
  basic: '1.3.6.1.5.5.7.48.1.1',
  nonce: '1.3.6.1.5.5.7.48.1.2',
  acceptableResponses: '1.3.6.1.5.5.7.48.1.4',
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
} as const;

export type OcspHashAlgorithm = 'sha1' | 'sha256';

const HASH_LENGTH: Record<OcspHashAlgorithm, number> = { sha1: 20, sha256: 32 };
const HASH_BY_OID = new Map<string, OcspHashAlgorithm>([
  [OCSP_OIDS.sha1, 'sha1'],
  [OCSP_OIDS.sha256, 'sha256'],
]);

export const OCSP_RESPONSE_STATUS = {
  successful: 0,
  malformedRequest: 1,
  internalError: 2,
  tryLater: 3,
  sigRequired: 5,
  unauthorized: 6,
} as const;

export type OcspResponseStatus = keyof typeof OCSP_RESPONSE_STATUS;
export type OcspErrorStatus = Exclude<OcspResponseStatus, 'successful'>;

const STATUS_BY_CODE = new Map<number, OcspResponseStatus>(
  Object.entries(OCSP_RESPONSE_STATUS).map(([name, code]) => [code, name as OcspResponseStatus]),
);

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

/** A rejected request. `reason` is short and never echoes the input bytes. */
export class OcspRequestError extends Error {
  constructor(
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`malformed OCSP request: ${reason}`, options);
    this.name = 'OcspRequestError';
  }
}

export interface OcspRequestLimits {
  /** Largest request accepted, checked before parsing (default 4096). */
  maxBytes: number;
  /** Most Request entries in the requestList (default 8). */
  maxRequests: number;
}

export interface OcspCertIdRequest {
  /** The exact CertID bytes received (echo them in the SingleResponse). */
  certId: Buffer;
  hashAlgorithm: OcspHashAlgorithm;
  issuerNameHash: Buffer;
  issuerKeyHash: Buffer;
  serial: bigint;
}

export interface OcspRequest {
  requests: OcspCertIdRequest[];
  /** The nonce extnValue content (an encoded OCTET STRING) to echo, or null. */
  nonce: Buffer | null;
}

function fail(reason: string): never {
  throw new OcspRequestError(reason);
}

interface RequestExtension {
  critical: boolean;
  value: Buffer;
}

/** Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension; repeated OIDs are rejected. */
function requestExtensions(node: DerNode | undefined, what: string): Map<string, RequestExtension> {
  if (!node || node.tag !== TAG.sequence || node.children.length === 0) fail(`bad ${what}`);
  const out = new Map<string, RequestExtension>();
  for (const ext of node.children) {
    const c = ext.children;
    if (ext.tag !== TAG.sequence || c.length < 2 || c.length > 3) fail(`bad ${what}`);
    const id = readOid(c[0], 'extnID');
    // An explicitly encoded DEFAULT FALSE is not DER, but it is harmless: accepted.
    const critical = c.length === 3 ? readBoolean(c[1], 'critical') : false;
    if (out.has(id)) fail(`repeated extension in ${what}`);
    out.set(id, { critical, value: readOctetString(c[c.length - 1], 'extnValue') });
  }
  return out;
}

/** The single explicit child of `[n]`, or a failure. */
function explicitChild(node: DerNode, what: string): DerNode {
  if (node.children.length !== 1) fail(`bad ${what}`);
  return node.children[0]!;
}

function readCertId(node: DerNode | undefined): OcspCertIdRequest {
  if (!node || node.tag !== TAG.sequence || node.children.length !== 4) fail('bad CertID');
  const [alg, nameHash, keyHash, serialNode] = node.children as [
    DerNode,
    DerNode,
    DerNode,
    DerNode,
  ];
  if (alg.tag !== TAG.sequence || alg.children.length < 1 || alg.children.length > 2) {
    fail('bad hashAlgorithm');
  }
  const hashAlgorithm = HASH_BY_OID.get(readOid(alg.children[0], 'hashAlgorithm'));
  if (!hashAlgorithm) fail('unsupported CertID hash algorithm');
  const params = alg.children[1];
  if (params && !params.bytes.equals(NULL)) fail('bad hashAlgorithm parameters');
  const issuerNameHash = readOctetString(nameHash, 'issuerNameHash');
  const issuerKeyHash = readOctetString(keyHash, 'issuerKeyHash');
  const length = HASH_LENGTH[hashAlgorithm];
  if (issuerNameHash.length !== length || issuerKeyHash.length !== length) {
    fail('CertID hash length does not match its algorithm');
  }
  const serial = readInteger(serialNode, 'serialNumber');
  if (serial <= 0n) fail('serialNumber not positive');
  if (serialNode.content.length > 20) fail('serialNumber longer than 20 octets');
  return {
    certId: Buffer.from(node.bytes),
    hashAlgorithm,
    issuerNameHash: Buffer.from(issuerNameHash),
    issuerKeyHash: Buffer.from(issuerKeyHash),
    serial,
  };
}

/** The RFC 8954 Nonce ::= OCTET STRING (SIZE(1..32)) inside an extnValue. */
function readNonce(value: Buffer): Buffer {
  let inner: DerNode;
  try {
    inner = parseDer(value, { maxDepth: 1, maxNodes: 1 });
  } catch {
    fail('nonce is not an OCTET STRING');
  }
  if (inner.tag !== TAG.octetString) fail('nonce is not an OCTET STRING');
  if (inner.content.length < 1 || inner.content.length > 32) fail('nonce not 1 to 32 octets');
  return Buffer.from(value);
}

function readAcceptableResponses(value: Buffer): void {
  const node = parseDer(value, { maxDepth: 2, maxNodes: 64 });
  if (node.tag !== TAG.sequence) fail('bad acceptable responses');
  const types = node.children.map((c) => readOid(c, 'acceptable response type'));
  if (!types.includes(OCSP_OIDS.basic)) fail('basic responses are not acceptable to the client');
}

/**
 * Parses an OCSPRequest strictly (see the module comment for the policy). Throws only
 * {@link OcspRequestError}.
 */
export function parseOcspRequest(
  der: Buffer,
  limits: Partial<OcspRequestLimits> = {},
): OcspRequest {
  const lim: OcspRequestLimits = { maxBytes: 4096, maxRequests: 8, ...limits };
  if (der.length > lim.maxBytes) fail('request too large');
  if (der.length === 0) fail('empty request');
  try {
    return readRequest(parseDer(der, { maxDepth: 24, maxNodes: lim.maxBytes }), lim);
  } catch (err) {
    if (err instanceof DerError) throw new OcspRequestError('malformed DER', { cause: err });
    throw err;
  }
}

function readRequest(root: DerNode, lim: OcspRequestLimits): OcspRequest {
  if (root.tag !== TAG.sequence || root.children.length < 1 || root.children.length > 2) {
    fail('bad OCSPRequest');
  }
  const [tbs, signature] = root.children;
  if (!tbs || tbs.tag !== TAG.sequence) fail('bad TBSRequest');
  // optionalSignature [0] EXPLICIT Signature: accepted, ignored (module comment).
  if (signature && signature.tag !== contextTag(0, true)) fail('bad optionalSignature');

  const fields = tbs.children;
  let i = 0;
  if (fields[i]?.tag === contextTag(0, true)) {
    if (readInteger(explicitChild(fields[i++]!, 'version'), 'version') !== 0n) {
      fail('unsupported version');
    }
  }
  // requestorName [1] EXPLICIT GeneralName: ignored.
  if (fields[i]?.tag === contextTag(1, true)) explicitChild(fields[i++]!, 'requestorName');
  const list = fields[i++];
  if (!list || list.tag !== TAG.sequence) fail('bad requestList');
  if (list.children.length === 0) fail('no requests');
  if (list.children.length > lim.maxRequests) fail('too many requests');

  let nonce: Buffer | null = null;
  if (fields[i]?.tag === contextTag(2, true)) {
    const exts = requestExtensions(explicitChild(fields[i++]!, 'requestExtensions'), 'extensions');
    for (const [id, ext] of exts) {
      if (id === OCSP_OIDS.nonce) nonce = readNonce(ext.value);
      else if (id === OCSP_OIDS.acceptableResponses) readAcceptableResponses(ext.value);
      else if (ext.critical) fail('unsupported critical extension');
    }
  }
  if (i !== fields.length) fail('unexpected field in TBSRequest');

  const requests = list.children.map((req) => {
    if (req.tag !== TAG.sequence || req.children.length < 1 || req.children.length > 2) {
      fail('bad Request');
    }
    const single = req.children[1];
    if (single) {
      if (single.tag !== contextTag(0, true)) fail('bad Request');
      const exts = requestExtensions(explicitChild(single, 'single extensions'), 'extensions');
      for (const ext of exts.values()) {
        if (ext.critical) fail('unsupported critical single request extension');
      }
    }
    return readCertId(req.children[0]);
  });
  return { requests, nonce };
}

// ---------------------------------------------------------------------------------------------
// CertID
// ---------------------------------------------------------------------------------------------

/** The subjectPublicKey BIT STRING value of an encoded SubjectPublicKeyInfo. */
function publicKeyBits(spki: Buffer): Buffer {
  const node = parseDer(spki);
  if (node.tag !== TAG.sequence || node.children.length !== 2) {
    throw new DerError('bad SubjectPublicKeyInfo');
  }
  const { bytes, unusedBits } = readBitString(node.children[1], 'subjectPublicKey');
  if (unusedBits !== 0) throw new DerError('subjectPublicKey: partial octet');
  return bytes;
}

/**
 * ResponderID byKey / issuerKeyHash input: the SHA-1 (or SHA-256) of the subjectPublicKey
 * BIT STRING value (excluding tag, length and unused-bits octet) of `spki`.
 */
export function keyHashOf(spki: Buffer, hash: OcspHashAlgorithm = 'sha1'): Buffer {
  return createHash(hash).update(publicKeyBits(spki)).digest();
}

/**
 * The CertID a client would send for `serial` under the issuer (its encoded subject Name and
 * SubjectPublicKeyInfo), with NULL hash parameters as OpenSSL writes them. Responders match
 * CertIDs by value, so a response keyed by this CertID answers requests with absent
 * parameters too.
 */
export function certIdFor(
  issuerName: Buffer,
  issuerSpki: Buffer,
  serial: bigint,
  hash: OcspHashAlgorithm,
): { certId: Buffer; issuerNameHash: Buffer; issuerKeyHash: Buffer } {
  if (serial <= 0n) throw new RangeError('serial must be positive');
  const issuerNameHash = createHash(hash).update(issuerName).digest();
  const issuerKeyHash = keyHashOf(issuerSpki, hash);
  const certId = sequence(
    sequence(oid(OCSP_OIDS[hash]), NULL),
    octetString(issuerNameHash),
    octetString(issuerKeyHash),
    integer(serial),
  );
  return { certId, issuerNameHash, issuerKeyHash };
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

export type OcspCertStatus =
  | { type: 'good' }
  | { type: 'revoked'; revokedAt: Date; reason: CrlReason | null }
  | { type: 'unknown' };

export interface OcspSingleResponseInput {
  /** The CertID exactly as requested (or from {@link certIdFor}). */
  certId: Buffer;
  status: OcspCertStatus;
  thisUpdate: Date;
  nextUpdate: Date | null;
}

export interface OcspResponseInput {
  /** ResponderID byKey: SHA-1 of the responder's subjectPublicKey BIT STRING value. */
  responderKeyHash: Buffer;
  producedAt: Date;
  responses: OcspSingleResponseInput[];
  /** The request's nonce extnValue content ({@link OcspRequest.nonce}), echoed verbatim. */
  nonce: Buffer | null;
  /** DER certificates for `certs`, e.g. the delegated responder certificate. */
  certs: Buffer[];
}

const GOOD = Buffer.from([contextTag(0, false), 0]); // [0] IMPLICIT NULL
const UNKNOWN = Buffer.from([contextTag(2, false), 0]); // [2] IMPLICIT UnknownInfo (NULL)

function certStatus(status: OcspCertStatus): Buffer {
  switch (status.type) {
    case 'good':
      return GOOD;
    case 'unknown':
      return UNKNOWN;
    case 'revoked': {
      const { reason } = status;
      const fields = [generalizedTime(validTime(status.revokedAt, 'revokedAt'))];
      if (reason !== null) {
        const code = CRL_REASONS[reason] as number | undefined;
        if (code === undefined) throw new RangeError('unknown revocation reason');
        if (reason === 'removeFromCRL') throw new RangeError('removeFromCRL is not a revocation');
        fields.push(explicit(0, enumerated(code)));
      }
      return tlv(contextTag(1, true), fields); // [1] IMPLICIT RevokedInfo
    }
    default:
      throw new RangeError('unknown certificate status');
  }
}

function validTime(d: Date, what: string): Date {
  if (!Number.isFinite(d.getTime())) throw new RangeError(`${what} is not a valid date`);
  return wholeSeconds(d);
}

function singleResponse(r: OcspSingleResponseInput): Buffer {
  if (r.certId[0] !== TAG.sequence) throw new RangeError('certId must be an encoded CertID');
  const thisUpdate = validTime(r.thisUpdate, 'thisUpdate');
  const fields = [r.certId, certStatus(r.status), generalizedTime(thisUpdate)];
  if (r.nextUpdate !== null) {
    const nextUpdate = validTime(r.nextUpdate, 'nextUpdate');
    if (nextUpdate.getTime() <= thisUpdate.getTime()) {
      throw new RangeError('nextUpdate must be later than thisUpdate');
    }
    fields.push(explicit(0, generalizedTime(nextUpdate)));
  }
  return sequence(...fields);
}

/**
 * Builds and signs a complete OCSPResponse (successful, id-pkix-ocsp-basic) with ResponderID
 * byKey. Times are GeneralizedTime truncated to whole seconds. Throws RangeError on invalid
 * input.
 */
export async function buildOcspResponse(
  input: OcspResponseInput,
  signer: TbsSigner,
): Promise<Buffer> {
  if (input.responderKeyHash.length !== 20) throw new RangeError('responderKeyHash is SHA-1');
  if (input.responses.length === 0) throw new RangeError('no responses');
  const fields = [
    explicit(2, octetString(input.responderKeyHash)), // ResponderID byKey [2] KeyHash
    generalizedTime(validTime(input.producedAt, 'producedAt')),
    sequence(...input.responses.map(singleResponse)),
  ];
  if (input.nonce !== null) {
    fields.push(explicit(1, sequence(sequence(oid(OCSP_OIDS.nonce), octetString(input.nonce)))));
  }
  const tbs = sequence(...fields);
  const basicFields = [
    tbs,
    algorithmIdentifier(signer.algorithm),
    bitString(await signer.sign(tbs)),
  ];
  if (input.certs.length > 0) basicFields.push(explicit(0, sequence(...input.certs)));
  const basic = sequence(...basicFields);
  return sequence(
    enumerated(OCSP_RESPONSE_STATUS.successful),
    explicit(0, sequence(oid(OCSP_OIDS.basic), octetString(basic))),
  );
}

const ERROR_RESPONSES = new Map<OcspErrorStatus, Buffer>(
  (Object.keys(OCSP_RESPONSE_STATUS) as OcspResponseStatus[])
    .filter((s): s is OcspErrorStatus => s !== 'successful')
    .map((s) => [s, sequence(enumerated(OCSP_RESPONSE_STATUS[s]))]),
);

/** An unsigned OCSPResponse carrying only an error status (no responseBytes). */
export function ocspErrorResponse(status: OcspErrorStatus): Buffer {
  const der = ERROR_RESPONSES.get(status);
  if (!der) throw new RangeError('not an OCSP error status');
  return Buffer.from(der);
}

// ---------------------------------------------------------------------------------------------
// Reading responses (tests and monitoring)
// ---------------------------------------------------------------------------------------------

export interface ParsedSingleResponse {
  certId: Buffer;
  hashAlgorithm: OcspHashAlgorithm;
  issuerNameHash: Buffer;
  issuerKeyHash: Buffer;
  serial: bigint;
  status: OcspCertStatus;
  thisUpdate: Date;
  nextUpdate: Date | null;
}

export interface ParsedBasicResponse {
  /** ResponderID byKey, or null when the responder is named byName. */
  responderKeyHash: Buffer | null;
  /** ResponderID byName (encoded Name), or null. */
  responderName: Buffer | null;
  producedAt: Date;
  responses: ParsedSingleResponse[];
  /** The nonce extnValue content, or null. */
  nonce: Buffer | null;
  /** The signed ResponseData, the signature algorithm OID and the signature. */
  tbs: Buffer;
  signatureAlgorithm: string;
  signature: Buffer;
  certs: Buffer[];
}

export interface ParsedOcspResponse {
  status: OcspResponseStatus;
  /** Present exactly when status is successful. */
  basic: ParsedBasicResponse | null;
}

/** The responseStatus of an OCSPResponse. Throws {@link DerError}. */
export function responseStatusOf(der: Buffer): OcspResponseStatus {
  return parseOcspResponse(der).status;
}

function readSingleResponse(node: DerNode): ParsedSingleResponse {
  if (node.tag !== TAG.sequence) throw new DerError('bad SingleResponse');
  const [certIdNode, statusNode, thisUpdateNode, ...rest] = node.children;
  if (!certIdNode || !statusNode) throw new DerError('bad SingleResponse');
  let id: OcspCertIdRequest;
  try {
    id = readCertId(certIdNode);
  } catch (err) {
    if (err instanceof OcspRequestError) throw new DerError(`CertID: ${err.reason}`);
    throw err;
  }
  let status: OcspCertStatus;
  if (statusNode.bytes.equals(GOOD)) status = { type: 'good' };
  else if (statusNode.bytes.equals(UNKNOWN)) status = { type: 'unknown' };
  else if (statusNode.tag === contextTag(1, true)) {
    const [time, reasonNode, extra] = statusNode.children;
    if (extra) throw new DerError('bad RevokedInfo');
    let reason: CrlReason | null = null;
    if (reasonNode) {
      if (reasonNode.tag !== contextTag(0, true) || reasonNode.children.length !== 1) {
        throw new DerError('bad revocationReason');
      }
      const r = crlReasonOf(readEnumerated(reasonNode.children[0], 'revocationReason'));
      if (r === undefined) throw new DerError('revocationReason: undefined reason');
      reason = r;
    }
    status = { type: 'revoked', revokedAt: readGeneralizedTime(time, 'revocationTime'), reason };
  } else throw new DerError('bad CertStatus');
  let nextUpdate: Date | null = null;
  let i = 0;
  if (rest[i]?.tag === contextTag(0, true)) {
    const wrapped = rest[i++]!;
    if (wrapped.children.length !== 1) throw new DerError('bad nextUpdate');
    nextUpdate = readGeneralizedTime(wrapped.children[0], 'nextUpdate');
  }
  if (rest[i]?.tag === contextTag(1, true)) i++; // singleExtensions: not interpreted
  if (i !== rest.length) throw new DerError('bad SingleResponse');
  return {
    ...id,
    status,
    thisUpdate: readGeneralizedTime(thisUpdateNode, 'thisUpdate'),
    nextUpdate,
  };
}

function readGeneralizedTime(node: DerNode | undefined, what: string): Date {
  if (node?.tag !== TAG.generalizedTime) throw new DerError(`${what}: not GeneralizedTime`);
  return readTime(node, what);
}

/**
 * Reads an OCSPResponse (ours or another responder's) strictly enough for tests and
 * monitoring. Does not verify the signature. Throws {@link DerError}.
 */
export function parseOcspResponse(der: Buffer): ParsedOcspResponse {
  const root = parseDer(der);
  if (root.tag !== TAG.sequence || root.children.length < 1 || root.children.length > 2) {
    throw new DerError('bad OCSPResponse');
  }
  const status = STATUS_BY_CODE.get(readEnumerated(root.children[0], 'responseStatus'));
  if (!status) throw new DerError('responseStatus: undefined value');
  const bytesNode = root.children[1];
  if (status !== 'successful') {
    if (bytesNode) throw new DerError('responseBytes in an error response');
    return { status, basic: null };
  }
  if (bytesNode?.tag !== contextTag(0, true) || bytesNode.children.length !== 1) {
    throw new DerError('bad responseBytes');
  }
  const rb = bytesNode.children[0]!;
  if (rb.tag !== TAG.sequence || rb.children.length !== 2) throw new DerError('bad ResponseBytes');
  if (readOid(rb.children[0], 'responseType') !== OCSP_OIDS.basic) {
    throw new DerError('responseType: not id-pkix-ocsp-basic');
  }
  const basicNode = parseDer(readOctetString(rb.children[1], 'response'));
  const [tbs, alg, sig, certsNode, extra] = basicNode.children;
  if (basicNode.tag !== TAG.sequence || !tbs || !alg || !sig || extra) {
    throw new DerError('bad BasicOCSPResponse');
  }
  if (tbs.tag !== TAG.sequence || alg.tag !== TAG.sequence) {
    throw new DerError('bad BasicOCSPResponse');
  }
  const f = tbs.children;
  let i = 0;
  if (f[i]?.tag === contextTag(0, true)) {
    const v = f[i++]!;
    if (v.children.length !== 1 || readInteger(v.children[0], 'version') !== 0n) {
      throw new DerError('version: not v1');
    }
  }
  const rid = f[i++];
  let responderKeyHash: Buffer | null = null;
  let responderName: Buffer | null = null;
  if (rid?.tag === contextTag(2, true) && rid.children.length === 1) {
    responderKeyHash = readOctetString(rid.children[0], 'ResponderID byKey');
  } else if (rid?.tag === contextTag(1, true) && rid.children.length === 1) {
    responderName = expectSequence(rid.children[0], 'ResponderID byName').bytes;
  } else throw new DerError('bad ResponderID');
  const producedAt = readGeneralizedTime(f[i++], 'producedAt');
  const list = expectSequence(f[i++], 'responses');
  let nonce: Buffer | null = null;
  if (f[i]?.tag === contextTag(1, true)) {
    const wrapper = f[i++]!;
    const exts = expectSequence(wrapper.children[0], 'responseExtensions');
    for (const ext of exts.children) {
      const c = ext.children;
      if (c.length >= 2 && readOid(c[0], 'extnID') === OCSP_OIDS.nonce) {
        nonce = readOctetString(c[c.length - 1], 'nonce');
      }
    }
  }
  if (i !== f.length) throw new DerError('bad ResponseData');
  let certs: Buffer[] = [];
  if (certsNode) {
    if (certsNode.tag !== contextTag(0, true) || certsNode.children.length !== 1) {
      throw new DerError('bad certs');
    }
    certs = expectSequence(certsNode.children[0], 'certs').children.map((c) => c.bytes);
  }
  return {
    status,
    basic: {
      responderKeyHash,
      responderName,
      producedAt,
      responses: list.children.map(readSingleResponse),
      nonce,
      tbs: tbs.bytes,
      signatureAlgorithm: readOid(alg.children[0], 'signatureAlgorithm'),
      signature: readBitString(sig, 'signature').bytes,
      certs,
    },
  };
}

function expectSequence(node: DerNode | undefined, what: string): DerNode {
  if (node?.tag !== TAG.sequence) throw new DerError(`${what}: not a SEQUENCE`);
  return node;
}
