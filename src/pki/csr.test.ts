import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csrFromPem, parseCsr, verifyProofOfPossession } from './csr.ts';
import {
  DerError,
  integer,
  NULL,
  octetString,
  oid,
  parseDer,
  sequence,
  setOf,
  tlv,
} from './der.ts';
import { decodeName, OIDS, spkiInfo, UnsupportedAlgorithmError } from './x509.ts';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'kiban-csr-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
/** `openssl req -new` with a fresh key; returns the PEM text. */
function opensslReq(keyArgs: string[], extra: string[] = []): string {
  const out = path.join(dir, `req${++n}.pem`);
  execFileSync(
    'openssl',
    [
      'req',
      '-new',
      ...keyArgs,
      '-nodes',
      '-keyout',
      path.join(dir, `key${n}.pem`),
      '-subj',
      '/C=JP/CN=csr-test',
      '-out',
      out,
      ...extra,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return readFileSync(out, 'utf8');
}

const RSA = ['-newkey', 'rsa:2048'];
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];

let rsaPem: string;
let ecPem: string;
beforeAll(() => {
  rsaPem = opensslReq(RSA);
  ecPem = opensslReq(EC);
});

/** Rebuilds a CSR from its parts (to splice keys or algorithms). */
function rebuild(
  der: Buffer,
  change: { spki?: Buffer; alg?: Buffer; sig?: Buffer; attrs?: Buffer },
): Buffer {
  const root = parseDer(der);
  const [info, alg, sig] = root.children;
  const [version, subject, spki, attrs] = info!.children;
  return sequence(
    sequence(
      version!.bytes,
      subject!.bytes,
      change.spki ?? spki!.bytes,
      change.attrs ?? attrs!.bytes,
    ),
    change.alg ?? alg!.bytes,
    change.sig ? tlv(0x03, [Buffer.from([0]), change.sig]) : sig!.bytes,
  );
}

describe('parseCsr and verifyProofOfPossession', () => {
  it('accepts an RSA-2048 request made by openssl', () => {
    const csr = parseCsr(csrFromPem(rsaPem));
    expect(csr.signatureAlgorithm).toBe(OIDS.sha256WithRSAEncryption);
    expect(decodeName(csr.subject)).toEqual([
      { type: 'C', value: 'JP', encoding: 'printable' },
      { type: 'CN', value: 'csr-test', encoding: 'utf8' },
    ]);
    expect(spkiInfo(csr.spki)).toMatchObject({ type: 'rsa', bits: 2048, publicExponent: 65537n });
    expect(verifyProofOfPossession(csr)).toBe(true);
  });

  it('accepts an EC P-256 request made by openssl', () => {
    const csr = parseCsr(csrFromPem(ecPem));
    expect(csr.signatureAlgorithm).toBe(OIDS.ecdsaWithSHA256);
    expect(spkiInfo(csr.spki)).toEqual({ type: 'ec', bits: 256, curve: 'P-256' });
    expect(verifyProofOfPossession(csr)).toBe(true);
  });

  it('accepts SHA-384 and SHA-512 requests', () => {
    for (const [keyArgs, digest, alg] of [
      [RSA, '-sha384', OIDS.sha384WithRSAEncryption],
      [RSA, '-sha512', OIDS.sha512WithRSAEncryption],
      [EC, '-sha384', OIDS.ecdsaWithSHA384],
    ] as const) {
      const csr = parseCsr(csrFromPem(opensslReq([...keyArgs], [digest])));
      expect(csr.signatureAlgorithm).toBe(alg);
      expect(verifyProofOfPossession(csr)).toBe(true);
    }
  });

  it('reads the legacy NEW CERTIFICATE REQUEST label and requested extensions', () => {
    const pem = opensslReq(EC, ['-newhdr', '-addext', 'subjectAltName=DNS:example.jp']);
    expect(pem).toContain('-----BEGIN NEW CERTIFICATE REQUEST-----');
    const csr = parseCsr(csrFromPem(pem));
    expect(verifyProofOfPossession(csr)).toBe(true);
    expect(csr.attributes.map((a) => a.oid)).toEqual([OIDS.extensionRequest]);
    expect(csr.requestedExtensions).toEqual([
      {
        oid: OIDS.subjectAltName,
        critical: false,
        value: Buffer.from('300c820a6578616d706c652e6a70', 'hex'),
      },
    ]);
    expect(() => csrFromPem('no request here')).toThrow(DerError);
  });

  it('fails when a signature byte is flipped', () => {
    for (const pem of [rsaPem, ecPem]) {
      const csr = parseCsr(csrFromPem(pem));
      const sig = Buffer.from(csr.signatureValue);
      sig[sig.length >> 1]! ^= 0x01;
      expect(verifyProofOfPossession(parseCsr(rebuild(csrFromPem(pem), { sig })))).toBe(false);
    }
  });

  it('fails when the public key of another key pair is spliced in', () => {
    const other = (type: 'rsa' | 'ec'): Buffer =>
      (type === 'rsa'
        ? generateKeyPairSync('rsa', { modulusLength: 2048 })
        : generateKeyPairSync('ec', { namedCurve: 'P-256' })
      ).publicKey.export({ type: 'spki', format: 'der' });
    const rsaSpliced = parseCsr(rebuild(csrFromPem(rsaPem), { spki: other('rsa') }));
    expect(verifyProofOfPossession(rsaSpliced)).toBe(false);
    const ecSpliced = parseCsr(rebuild(csrFromPem(ecPem), { spki: other('ec') }));
    expect(verifyProofOfPossession(ecSpliced)).toBe(false);
    // An EC key under an RSA signature.
    const crossed = parseCsr(rebuild(csrFromPem(rsaPem), { spki: other('ec') }));
    expect(verifyProofOfPossession(crossed)).toBe(false);
  });

  it('rejects a SHA-1 signed request with a clear error', () => {
    const csr = parseCsr(csrFromPem(opensslReq(RSA, ['-sha1'])));
    expect(csr.signatureAlgorithm).toBe(OIDS.sha1WithRSAEncryption);
    expect(() => verifyProofOfPossession(csr)).toThrow(UnsupportedAlgorithmError);
    expect(() => verifyProofOfPossession(csr)).toThrow(/sha1WithRSAEncryption.*SHA-1/);
  });

  it('rejects MD5 and unknown algorithms', () => {
    const md5 = sequence(oid(OIDS.md5WithRSAEncryption), NULL);
    const csr = parseCsr(rebuild(csrFromPem(rsaPem), { alg: md5 }));
    expect(() => verifyProofOfPossession(csr)).toThrow(/MD5/);
    const sha224 = sequence(oid('1.2.840.113549.1.1.14'), NULL);
    expect(() =>
      verifyProofOfPossession(parseCsr(rebuild(csrFromPem(rsaPem), { alg: sha224 }))),
    ).toThrow(UnsupportedAlgorithmError);
  });

  it('rejects truncated, padded and oversized input with DerError', () => {
    const der = csrFromPem(rsaPem);
    for (const cut of [1, 10, der.length >> 1, der.length - 1]) {
      expect(() => parseCsr(der.subarray(0, cut))).toThrow(DerError);
    }
    expect(() => parseCsr(Buffer.concat([der, Buffer.from([0])]))).toThrow(DerError);
    const bigAttr = sequence(oid('1.2.3.4'), setOf(octetString(Buffer.alloc(17 * 1024))));
    const oversized = rebuild(der, { attrs: tlv(0xa0, bigAttr) });
    expect(() => parseCsr(oversized, { maxBytes: 64 * 1024 })).not.toThrow();
    expect(oversized.length).toBeGreaterThan(16 * 1024);
    expect(() => parseCsr(oversized)).toThrow(/larger than 16384 bytes/);
    expect(() => parseCsr(der, { maxBytes: 100 })).toThrow(DerError);
    expect(() => parseCsr(der, { maxNodes: 5 })).toThrow(DerError);
    expect(() => parseCsr(Buffer.alloc(0))).toThrow(DerError);
  });

  it('rejects structural deviations', () => {
    const der = csrFromPem(ecPem);
    const root = parseDer(der);
    const [info, alg, sig] = root.children;
    const [, subject, spki, attrs] = info!.children;
    const withInfo = (...fields: Buffer[]): Buffer =>
      sequence(sequence(...fields), alg!.bytes, sig!.bytes);
    expect(() => parseCsr(withInfo(integer(1), subject!.bytes, spki!.bytes, attrs!.bytes))).toThrow(
      /version/,
    );
    expect(() => parseCsr(withInfo(integer(0), subject!.bytes, spki!.bytes))).toThrow(DerError);
    const dup = tlv(0xa0, [
      sequence(oid('1.2.3.4'), setOf(NULL)),
      sequence(oid('1.2.3.4'), setOf(NULL)),
    ]);
    expect(() => parseCsr(withInfo(integer(0), subject!.bytes, spki!.bytes, dup))).toThrow(
      /duplicate/,
    );
    expect(() => parseCsr(sequence(info!.bytes, alg!.bytes))).toThrow(DerError);
  });
});
