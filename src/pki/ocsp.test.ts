import { createHash, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  issueWithOpenssl,
  makeOpensslCa,
  makeTempDir,
  type TempDir,
  type TestCertificate,
} from '../../test/support/openssl.ts';
import {
  contextTag,
  DerError,
  explicit,
  integer,
  NULL,
  oid,
  octetString,
  parseDer,
  sequence,
  TAG,
  tlv,
} from './der.ts';
import {
  buildOcspResponse,
  certIdFor,
  keyHashOf,
  OCSP_OIDS,
  type OcspCertStatus,
  ocspErrorResponse,
  type OcspRequest,
  OcspRequestError,
  type OcspResponseInput,
  parseOcspRequest,
  parseOcspResponse,
  responseStatusOf,
} from './ocsp.ts';

const MINUTE = 60_000;
const now = new Date(Math.floor(Date.now() / 1000) * 1000);
const thisUpdate = new Date(now.getTime() - MINUTE);
const nextUpdate = new Date(now.getTime() + 24 * 60 * MINUTE);
const revokedAt = new Date('2026-03-04T05:06:07Z');

const LEAF_SERIAL = 0x1234n;
const LEAF2_SERIAL = 0x1235n;
const UNKNOWN_SERIAL = 0x123456789n;

let dir: TempDir;
let ca: TestCertificate;
let responder: TestCertificate; // delegated, RSA
let ecResponder: TestCertificate; // delegated, P-256
let leaf: TestCertificate;
let leaf2: TestCertificate;

const leafExtensions = [
  'basicConstraints = critical,CA:FALSE',
  'keyUsage = critical,digitalSignature',
  'authorityKeyIdentifier = keyid',
];
const responderExtensions = [
  ...leafExtensions,
  'extendedKeyUsage = OCSPSigning',
  'noCheck = ignored',
];

beforeAll(() => {
  dir = makeTempDir('kiban-ocsp-');
  ca = makeOpensslCa(dir);
  responder = issueWithOpenssl(dir, ca, {
    name: 'responder',
    subject: '/CN=Test OCSP Responder',
    serial: 0x99n,
    extensions: responderExtensions,
  });
  ecResponder = issueWithOpenssl(dir, ca, {
    name: 'ec-responder',
    subject: '/CN=Test OCSP Responder P-256',
    serial: 0x9an,
    extensions: responderExtensions,
    key: 'ec-p256',
  });
  leaf = issueWithOpenssl(dir, ca, {
    name: 'leaf',
    subject: '/CN=Leaf',
    serial: LEAF_SERIAL,
    extensions: leafExtensions,
  });
  leaf2 = issueWithOpenssl(dir, ca, {
    name: 'leaf2',
    subject: '/CN=Leaf 2',
    serial: LEAF2_SERIAL,
    extensions: leafExtensions,
  });
});
afterAll(() => dir?.remove());

const output = (r: { stdout: string; stderr: string }): string => r.stdout + r.stderr;

/** An OCSP request made by `openssl ocsp ... -reqout`. */
function opensslRequest(name: string, args: string[]): Buffer {
  const r = dir.run(['ocsp', ...args, '-reqout', dir.file(name)]);
  if (r.status !== 0) throw new Error(output(r));
  return dir.read(name);
}

/** Answers a parsed request: status per serial (unknown when absent), signed by `by`. */
function respond(
  req: OcspRequest,
  statuses: ReadonlyMap<bigint, OcspCertStatus>,
  options: { by?: TestCertificate; nonce?: Buffer | null; certs?: Buffer[] } = {},
): Promise<Buffer> {
  const by = options.by ?? responder;
  const input: OcspResponseInput = {
    responderKeyHash: keyHashOf(by.parts.spki),
    producedAt: now,
    responses: req.requests.map((r) => ({
      certId: r.certId,
      status: statuses.get(r.serial) ?? { type: 'unknown' },
      thisUpdate,
      nextUpdate,
    })),
    nonce: options.nonce === undefined ? req.nonce : options.nonce,
    certs: options.certs ?? [by.der],
  };
  return buildOcspResponse(input, by.signer);
}

const STATUSES = new Map<bigint, OcspCertStatus>([
  [LEAF_SERIAL, { type: 'good' }],
  [LEAF2_SERIAL, { type: 'revoked', revokedAt, reason: 'keyCompromise' }],
]);

/** OpenSSL's ASN1_TIME_print form, e.g. `Mar  4 05:06:07 2026 GMT`. */
function opensslTime(d: Date): string {
  const month = d.toLocaleString('en-US', { month: 'short', timeZone: 'UTC' });
  const day = String(d.getUTCDate()).padStart(2, ' ');
  return `${month} ${day} ${d.toISOString().slice(11, 19)} ${d.getUTCFullYear()} GMT`;
}

/** `openssl ocsp -respin` checking statuses of the given certs (and serials), without nonce. */
function checkResponse(resp: Buffer, targets: string[], extra: string[] = []) {
  const file = dir.write(`resp-${randomBytes(4).toString('hex')}.der`, resp);
  return dir.run([
    'ocsp',
    '-respin',
    file,
    '-issuer',
    ca.certPath,
    ...targets,
    '-CAfile',
    ca.certPath,
    '-no_nonce',
    ...extra,
  ]);
}

describe('parseOcspRequest on requests made by openssl', () => {
  it('reads a sha1 CertID with a nonce, byte-identical to certIdFor', () => {
    const der = opensslRequest('req-nonce.der', ['-issuer', ca.certPath, '-cert', leaf.certPath]);
    const req = parseOcspRequest(der);
    expect(req.requests).toHaveLength(1);
    const [r] = req.requests;
    const expected = certIdFor(ca.parts.subject, ca.parts.spki, LEAF_SERIAL, 'sha1');
    expect(r!.hashAlgorithm).toBe('sha1');
    expect(r!.serial).toBe(LEAF_SERIAL);
    expect(r!.certId.equals(expected.certId)).toBe(true);
    expect(r!.issuerNameHash.equals(createHash('sha1').update(ca.parts.subject).digest())).toBe(
      true,
    );
    expect(r!.issuerKeyHash.equals(createHash('sha1').update(ca.parts.publicKey).digest())).toBe(
      true,
    );
    // OpenSSL sends a 16-octet nonce wrapped in an OCTET STRING (RFC 8954).
    expect(req.nonce).not.toBeNull();
    expect(req.nonce!.subarray(0, 2).toString('hex')).toBe('0410');
    expect(req.nonce!.length).toBe(18);
    expect(der.includes(req.nonce!)).toBe(true);
  });

  it('reads -no_nonce, -serial, several -cert and a -sha256 CertID', () => {
    const plain = parseOcspRequest(
      opensslRequest('req-plain.der', [
        '-issuer',
        ca.certPath,
        '-cert',
        leaf.certPath,
        '-no_nonce',
      ]),
    );
    expect(plain.nonce).toBeNull();

    const multi = parseOcspRequest(
      opensslRequest('req-multi.der', [
        '-issuer',
        ca.certPath,
        '-cert',
        leaf.certPath,
        '-cert',
        leaf2.certPath,
        '-serial',
        '0x' + UNKNOWN_SERIAL.toString(16),
        '-no_nonce',
      ]),
    );
    expect(multi.requests.map((r) => r.serial)).toEqual([
      LEAF_SERIAL,
      LEAF2_SERIAL,
      UNKNOWN_SERIAL,
    ]);

    // The digest option applies to the -cert/-serial options after it.
    const sha256 = parseOcspRequest(
      opensslRequest('req-sha256.der', [
        '-sha256',
        '-issuer',
        ca.certPath,
        '-cert',
        leaf.certPath,
        '-no_nonce',
      ]),
    );
    const [r] = sha256.requests;
    expect(r!.hashAlgorithm).toBe('sha256');
    expect(r!.issuerNameHash).toHaveLength(32);
    expect(
      r!.certId.equals(certIdFor(ca.parts.subject, ca.parts.spki, LEAF_SERIAL, 'sha256').certId),
    ).toBe(true);
  });

  it('accepts a signed request (requestorName and signature are ignored)', () => {
    const der = opensslRequest('req-signed.der', [
      '-issuer',
      ca.certPath,
      '-cert',
      leaf.certPath,
      '-signer',
      leaf.certPath,
      '-signkey',
      leaf.keyPath,
    ]);
    expect(parseDer(der).children[1]?.tag).toBe(contextTag(0, true));
    const req = parseOcspRequest(der);
    expect(req.requests[0]!.serial).toBe(LEAF_SERIAL);
    expect(req.nonce).not.toBeNull();
  });
});

describe('buildOcspResponse checked by openssl', () => {
  it('answers good, revoked (keyCompromise, time) and unknown, signed by a delegated responder', async () => {
    const req = parseOcspRequest(
      opensslRequest('req-three.der', [
        '-issuer',
        ca.certPath,
        '-cert',
        leaf.certPath,
        '-cert',
        leaf2.certPath,
        '-serial',
        '0x' + UNKNOWN_SERIAL.toString(16),
        '-no_nonce',
      ]),
    );
    const resp = await respond(req, STATUSES);
    const r = checkResponse(resp, [
      '-cert',
      leaf.certPath,
      '-cert',
      leaf2.certPath,
      '-serial',
      '0x' + UNKNOWN_SERIAL.toString(16),
    ]);
    expect(r.status, output(r)).toBe(0);
    expect(output(r)).toContain('Response verify OK');
    expect(r.stdout).toContain(`${leaf.certPath}: good`);
    expect(r.stdout).toContain(`${leaf2.certPath}: revoked`);
    expect(r.stdout).toContain('Reason: keyCompromise');
    expect(r.stdout).toContain(`Revocation Time: ${opensslTime(revokedAt)}`);
    expect(r.stdout).toContain(`0x${UNKNOWN_SERIAL.toString(16)}: unknown`);
    expect(r.stdout).toContain(`This Update: ${opensslTime(thisUpdate)}`);
    expect(r.stdout).toContain(`Next Update: ${opensslTime(nextUpdate)}`);

    const parsed = parseOcspResponse(resp);
    expect(parsed.status).toBe('successful');
    const basic = parsed.basic!;
    expect(basic.responderKeyHash!.equals(keyHashOf(responder.parts.spki))).toBe(true);
    expect(
      basic.responderKeyHash!.equals(createHash('sha1').update(responder.parts.publicKey).digest()),
    ).toBe(true);
    expect(basic.producedAt).toEqual(now);
    expect(basic.nonce).toBeNull();
    expect(basic.certs).toHaveLength(1);
    expect(basic.certs[0]!.equals(responder.der)).toBe(true);
    expect(basic.responses.map((s) => [s.serial, s.status])).toEqual([
      [LEAF_SERIAL, { type: 'good' }],
      [LEAF2_SERIAL, { type: 'revoked', revokedAt, reason: 'keyCompromise' }],
      [UNKNOWN_SERIAL, { type: 'unknown' }],
    ]);
    expect(basic.responses[0]!.thisUpdate).toEqual(thisUpdate);
    expect(basic.responses[0]!.nextUpdate).toEqual(nextUpdate);
    expect(responseStatusOf(resp)).toBe('successful');
  });

  it('writes RevokedInfo without a reason for null, and unspecified only when passed', async () => {
    const req = parseOcspRequest(
      opensslRequest('req-leaf2.der', [
        '-issuer',
        ca.certPath,
        '-cert',
        leaf2.certPath,
        '-no_nonce',
      ]),
    );
    const noReason = await respond(
      req,
      new Map([[LEAF2_SERIAL, { type: 'revoked', revokedAt, reason: null }]]),
    );
    const r1 = checkResponse(noReason, ['-cert', leaf2.certPath]);
    expect(output(r1)).toContain('Response verify OK');
    expect(r1.stdout).toContain(`${leaf2.certPath}: revoked`);
    expect(r1.stdout).not.toContain('Reason:');
    expect(parseOcspResponse(noReason).basic!.responses[0]!.status).toEqual({
      type: 'revoked',
      revokedAt,
      reason: null,
    });

    const unspecified = await respond(
      req,
      new Map([[LEAF2_SERIAL, { type: 'revoked', revokedAt, reason: 'unspecified' }]]),
    );
    const r2 = checkResponse(unspecified, ['-cert', leaf2.certPath]);
    expect(r2.stdout).toContain('Reason: unspecified');
  });

  it('answers a sha256 CertID that openssl matches', async () => {
    const req = parseOcspRequest(
      opensslRequest('req-sha256b.der', [
        '-sha256',
        '-issuer',
        ca.certPath,
        '-cert',
        leaf.certPath,
        '-no_nonce',
      ]),
    );
    const resp = await respond(req, STATUSES);
    const r = checkResponse(resp, ['-sha256', '-cert', leaf.certPath]);
    expect(r.status, output(r)).toBe(0);
    expect(output(r)).toContain('Response verify OK');
    expect(r.stdout).toContain(`${leaf.certPath}: good`);
  });

  it('pre-signs by serial with certIdFor, matching a later openssl request', async () => {
    const { certId } = certIdFor(ca.parts.subject, ca.parts.spki, LEAF2_SERIAL, 'sha1');
    const resp = await buildOcspResponse(
      {
        responderKeyHash: keyHashOf(responder.parts.spki),
        producedAt: now,
        responses: [{ certId, status: STATUSES.get(LEAF2_SERIAL)!, thisUpdate, nextUpdate: null }],
        nonce: null,
        certs: [responder.der],
      },
      responder.signer,
    );
    const r = checkResponse(resp, ['-cert', leaf2.certPath]);
    expect(output(r)).toContain('Response verify OK');
    expect(r.stdout).toContain(`${leaf2.certPath}: revoked`);
    expect(r.stdout).not.toContain('Next Update');
    expect(parseOcspResponse(resp).basic!.responses[0]!.nextUpdate).toBeNull();
  });

  it('is verified when signed by the CA itself (no certs) and by a P-256 responder', async () => {
    const req = parseOcspRequest(
      opensslRequest('req-leaf.der', ['-issuer', ca.certPath, '-cert', leaf.certPath, '-no_nonce']),
    );
    const byCa = await respond(req, STATUSES, { by: ca, certs: [] });
    const r1 = checkResponse(byCa, ['-cert', leaf.certPath], ['-VAfile', ca.certPath]);
    expect(r1.status, output(r1)).toBe(0);
    expect(output(r1)).toContain('Response verify OK');

    const byEc = await respond(req, STATUSES, { by: ecResponder });
    expect(parseOcspResponse(byEc).basic!.signatureAlgorithm).toBe('1.2.840.10045.4.3.2');
    const r2 = checkResponse(byEc, ['-cert', leaf.certPath]);
    expect(r2.status, output(r2)).toBe(0);
    expect(output(r2)).toContain('Response verify OK');
    expect(r2.stdout).toContain(`${leaf.certPath}: good`);
  });

  it('echoes the nonce: openssl -reqin verifies it, and reports a wrong or missing one', async () => {
    const reqFile = 'req-nonce2.der';
    const req = parseOcspRequest(
      opensslRequest(reqFile, ['-issuer', ca.certPath, '-cert', leaf.certPath]),
    );
    expect(req.nonce).not.toBeNull();
    const check = (resp: Buffer, name: string) =>
      dir.run([
        'ocsp',
        '-reqin',
        dir.file(reqFile),
        '-respin',
        dir.write(name, resp),
        '-CAfile',
        ca.certPath,
      ]);

    const good = await respond(req, STATUSES);
    expect(parseOcspResponse(good).basic!.nonce!.equals(req.nonce!)).toBe(true);
    const r1 = check(good, 'resp-nonce.der');
    expect(r1.status, output(r1)).toBe(0);
    expect(output(r1)).toContain('Response verify OK');
    expect(output(r1)).not.toMatch(/nonce/i);

    const wrongNonce = Buffer.from(req.nonce!);
    wrongNonce[wrongNonce.length - 1]! ^= 1;
    const r2 = check(await respond(req, STATUSES, { nonce: wrongNonce }), 'resp-wrong-nonce.der');
    expect(r2.status).not.toBe(0);
    expect(output(r2)).toContain('Nonce Verify error');

    const r3 = check(await respond(req, STATUSES, { nonce: null }), 'resp-no-nonce.der');
    expect(output(r3)).toContain('WARNING: no nonce in response');
  });

  it('writes unsigned error responses that openssl reports', () => {
    const der = ocspErrorResponse('malformedRequest');
    expect(der.toString('hex')).toBe('30030a0101');
    expect(ocspErrorResponse('tryLater').toString('hex')).toBe('30030a0103');
    expect(ocspErrorResponse('sigRequired').toString('hex')).toBe('30030a0105');
    expect(ocspErrorResponse('unauthorized').toString('hex')).toBe('30030a0106');
    expect(responseStatusOf(ocspErrorResponse('internalError'))).toBe('internalError');
    expect(parseOcspResponse(der)).toEqual({ status: 'malformedRequest', basic: null });
    const r = dir.run(['ocsp', '-respin', dir.write('err.der', der), '-resp_text']);
    expect(output(r)).toContain('Responder Error: malformedrequest (1)');
  });

  it('rejects invalid input', async () => {
    const { certId } = certIdFor(ca.parts.subject, ca.parts.spki, LEAF_SERIAL, 'sha1');
    const base: OcspResponseInput = {
      responderKeyHash: keyHashOf(responder.parts.spki),
      producedAt: now,
      responses: [{ certId, status: { type: 'good' }, thisUpdate, nextUpdate }],
      nonce: null,
      certs: [],
    };
    const build = (patch: Partial<OcspResponseInput>) =>
      buildOcspResponse({ ...base, ...patch }, responder.signer);
    await expect(build({ responderKeyHash: Buffer.alloc(32) })).rejects.toThrow(RangeError);
    await expect(build({ responses: [] })).rejects.toThrow(RangeError);
    await expect(
      build({
        responses: [{ certId, status: { type: 'good' }, thisUpdate, nextUpdate: thisUpdate }],
      }),
    ).rejects.toThrow(/nextUpdate/);
    await expect(
      build({
        responses: [
          {
            certId,
            status: { type: 'revoked', revokedAt, reason: 'removeFromCRL' },
            thisUpdate,
            nextUpdate,
          },
        ],
      }),
    ).rejects.toThrow(RangeError);
    expect(() => certIdFor(ca.parts.subject, ca.parts.spki, 0n, 'sha1')).toThrow(RangeError);
  });
});

// ---------------------------------------------------------------------------------------------
// Strictness
// ---------------------------------------------------------------------------------------------

const SHA1_ID = sequence(oid(OCSP_OIDS.sha1), NULL);
const certIdDer = (
  serial: bigint | Buffer = 0x1234n,
  alg: Buffer = SHA1_ID,
  hashLength = 20,
): Buffer =>
  sequence(
    alg,
    octetString(Buffer.alloc(hashLength, 1)),
    octetString(Buffer.alloc(hashLength, 2)),
    Buffer.isBuffer(serial) ? serial : integer(serial),
  );
const extension = (id: string, critical: boolean, value: Buffer): Buffer =>
  critical
    ? sequence(oid(id), Buffer.from([TAG.boolean, 1, 0xff]), octetString(value))
    : sequence(oid(id), octetString(value));
const nonceExt = (octets: number): Buffer =>
  extension(OCSP_OIDS.nonce, false, octetString(Buffer.alloc(octets, 7)));

function requestDer(
  options: {
    certIds?: Buffer[];
    extensions?: Buffer[];
    singleExtensions?: Buffer[];
    version?: bigint;
  } = {},
): Buffer {
  const requests = (options.certIds ?? [certIdDer()]).map((id) =>
    options.singleExtensions
      ? sequence(id, explicit(0, sequence(...options.singleExtensions)))
      : sequence(id),
  );
  const fields: Buffer[] = [];
  if (options.version !== undefined) fields.push(explicit(0, integer(options.version)));
  fields.push(sequence(...requests));
  if (options.extensions) fields.push(explicit(2, sequence(...options.extensions)));
  return sequence(sequence(...fields));
}

/** The OcspRequestError reason for `der`, or 'accepted'. */
function reasonFor(der: Buffer, limits?: { maxBytes?: number; maxRequests?: number }): string {
  try {
    parseOcspRequest(der, limits);
    return 'accepted';
  } catch (err) {
    if (err instanceof OcspRequestError) return err.reason;
    throw err;
  }
}

describe('parseOcspRequest strictness', () => {
  it('accepts the hand-built baseline, with and without an explicit v1 and NULL params', () => {
    expect(reasonFor(requestDer())).toBe('accepted');
    expect(reasonFor(requestDer({ version: 0n }))).toBe('accepted');
    expect(reasonFor(requestDer({ certIds: [certIdDer(1n, sequence(oid(OCSP_OIDS.sha1)))] }))).toBe(
      'accepted',
    );
    const req = parseOcspRequest(requestDer({ extensions: [nonceExt(32)] }));
    expect(req.nonce!.toString('hex')).toBe('0420' + '07'.repeat(32));
    expect(parseOcspRequest(requestDer({ extensions: [nonceExt(1)] })).nonce).toHaveLength(3);
  });

  it('rejects malformed DER', () => {
    const good = requestDer();
    expect(reasonFor(good.subarray(0, good.length - 1))).toBe('malformed DER');
    expect(reasonFor(Buffer.concat([good, Buffer.from([0])]))).toBe('malformed DER');
    // BER indefinite length
    const ber = Buffer.concat([Buffer.from([0x30, 0x80]), good.subarray(2), Buffer.from([0, 0])]);
    expect(reasonFor(ber)).toBe('malformed DER');
    expect(reasonFor(Buffer.alloc(0))).toBe('empty request');
    expect(reasonFor(Buffer.from('not der'))).toBe('malformed DER');
    const err = (() => {
      try {
        parseOcspRequest(Buffer.from([0x30, 0x05, 0x01]));
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(OcspRequestError);
    expect((err as OcspRequestError).cause).toBeInstanceOf(DerError);
  });

  it('limits the number of requests to maxRequests (8) and requires one', () => {
    const ids = (n: number) => Array.from({ length: n }, (_, i) => certIdDer(BigInt(i + 1)));
    expect(parseOcspRequest(requestDer({ certIds: ids(8) })).requests).toHaveLength(8);
    expect(reasonFor(requestDer({ certIds: ids(9) }))).toBe('too many requests');
    expect(reasonFor(requestDer({ certIds: ids(9) }), { maxRequests: 9 })).toBe('accepted');
    expect(reasonFor(requestDer({ certIds: [] }))).toBe('no requests');
    // openssl's own 9-entry request
    const args = ['-issuer', ca.certPath, '-no_nonce'];
    for (let i = 1; i <= 9; i++) args.push('-serial', String(i));
    expect(reasonFor(opensslRequest('req-nine.der', args))).toBe('too many requests');
  });

  it('checks the size before parsing (a 5 KB body)', () => {
    const big = requestDer({
      extensions: [extension('1.3.6.1.4.1.99999.1', false, Buffer.alloc(5000))],
    });
    expect(big.length).toBeGreaterThan(5000);
    expect(reasonFor(big)).toBe('request too large');
    expect(reasonFor(randomBytes(5 * 1024))).toBe('request too large');
    expect(reasonFor(big, { maxBytes: 8192 })).toBe('accepted');
  });

  it('requires a nonce of 1 to 32 octets inside an OCTET STRING', () => {
    expect(reasonFor(requestDer({ extensions: [nonceExt(33)] }))).toBe('nonce not 1 to 32 octets');
    expect(reasonFor(requestDer({ extensions: [nonceExt(0)] }))).toBe('nonce not 1 to 32 octets');
    // A bare nonce (pre-RFC 8954 style) is not an OCTET STRING.
    const bare = extension(OCSP_OIDS.nonce, false, Buffer.alloc(16, 0x41));
    expect(reasonFor(requestDer({ extensions: [bare] }))).toBe('nonce is not an OCTET STRING');
    expect(reasonFor(requestDer({ extensions: [nonceExt(8), nonceExt(8)] }))).toBe(
      'repeated extension in extensions',
    );
  });

  it('accepts sha1 and sha256 CertIDs only, with matching hash lengths', () => {
    expect(
      reasonFor(
        opensslRequest('req-md5.der', [
          '-md5',
          '-issuer',
          ca.certPath,
          '-cert',
          leaf.certPath,
          '-no_nonce',
        ]),
      ),
    ).toBe('unsupported CertID hash algorithm');
    const sha256 = sequence(oid(OCSP_OIDS.sha256), NULL);
    expect(reasonFor(requestDer({ certIds: [certIdDer(1n, sha256, 32)] }))).toBe('accepted');
    expect(reasonFor(requestDer({ certIds: [certIdDer(1n, sha256, 20)] }))).toBe(
      'CertID hash length does not match its algorithm',
    );
    const withParams = sequence(oid(OCSP_OIDS.sha1), octetString(Buffer.alloc(1)));
    expect(reasonFor(requestDer({ certIds: [certIdDer(1n, withParams)] }))).toBe(
      'bad hashAlgorithm parameters',
    );
  });

  it('requires a positive serial of at most 20 octets', () => {
    expect(reasonFor(requestDer({ certIds: [certIdDer(0n)] }))).toBe('serialNumber not positive');
    expect(reasonFor(requestDer({ certIds: [certIdDer(Buffer.from('0201ff', 'hex'))] }))).toBe(
      'serialNumber not positive',
    );
    expect(reasonFor(requestDer({ certIds: [certIdDer((1n << 159n) - 1n)] }))).toBe('accepted');
    expect(reasonFor(requestDer({ certIds: [certIdDer(1n << 159n)] }))).toBe(
      'serialNumber longer than 20 octets',
    );
  });

  it('ignores unknown non-critical extensions and rejects unknown critical ones', () => {
    const unknown = (critical: boolean) => extension('1.3.6.1.4.1.99999.2', critical, NULL);
    expect(reasonFor(requestDer({ extensions: [unknown(false)] }))).toBe('accepted');
    expect(reasonFor(requestDer({ extensions: [unknown(true)] }))).toBe(
      'unsupported critical extension',
    );
    expect(reasonFor(requestDer({ singleExtensions: [unknown(false)] }))).toBe('accepted');
    expect(reasonFor(requestDer({ singleExtensions: [unknown(true)] }))).toBe(
      'unsupported critical single request extension',
    );
    // A critical nonce is understood, hence accepted.
    const criticalNonce = extension(OCSP_OIDS.nonce, true, octetString(Buffer.alloc(4, 1)));
    expect(reasonFor(requestDer({ extensions: [criticalNonce] }))).toBe('accepted');
    // Acceptable response types must include id-pkix-ocsp-basic.
    const acceptable = (ids: string[]) =>
      extension(OCSP_OIDS.acceptableResponses, false, sequence(...ids.map((i) => oid(i))));
    expect(reasonFor(requestDer({ extensions: [acceptable([OCSP_OIDS.basic])] }))).toBe('accepted');
    expect(reasonFor(requestDer({ extensions: [acceptable(['1.3.6.1.4.1.99999.3'])] }))).toBe(
      'basic responses are not acceptable to the client',
    );
  });

  it('rejects versions other than v1 and stray fields', () => {
    expect(reasonFor(requestDer({ version: 1n }))).toBe('unsupported version');
    const good = parseDer(requestDer());
    const stray = sequence(sequence(...good.children[0]!.children.map((c) => c.bytes), NULL));
    expect(reasonFor(stray)).toBe('unexpected field in TBSRequest');
    const badSignatureTag = sequence(good.children[0]!.bytes, tlv(contextTag(1, true), NULL));
    expect(reasonFor(badSignatureTag)).toBe('bad optionalSignature');
  });

  it('never throws anything but OcspRequestError on random bytes (property)', () => {
    const isOk = (bytes: Uint8Array): boolean => {
      try {
        parseOcspRequest(Buffer.from(bytes));
        return true;
      } catch (err) {
        return err instanceof OcspRequestError;
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), isOk), { numRuns: 2000 });
    // Mutations of valid requests reach the deeper checks.
    const seeds = [
      requestDer({ extensions: [nonceExt(16)], singleExtensions: [nonceExt(2)], version: 0n }),
      opensslRequest('seed-signed.der', [
        '-issuer',
        ca.certPath,
        '-cert',
        leaf.certPath,
        '-signer',
        leaf.certPath,
        '-signkey',
        leaf.keyPath,
      ]),
      opensslRequest('seed-multi.der', [
        '-sha256',
        '-issuer',
        ca.certPath,
        '-cert',
        leaf.certPath,
        '-serial',
        '7',
      ]),
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...seeds),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 4,
        }),
        (seed, edits) => {
          const b = Buffer.from(seed);
          for (const [at, value] of edits) b[at % b.length] = value;
          return isOk(b);
        },
      ),
      { numRuns: 3000 },
    );
  });
});
