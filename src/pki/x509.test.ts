import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TbsSigner } from './algorithms.ts';
import { boolean, DerError, octetString, oid, sequence, tlv, toPem, wholeSeconds } from './der.ts';
import {
  assembleCertificate,
  authorityInfoAccess,
  authorityInfoAccessOf,
  authorityKeyId,
  authorityKeyIdentifier,
  basicConstraints,
  basicConstraintsOf,
  buildTbsCertificate,
  certificateFromPem,
  certificateOtherNames,
  certificatePolicies,
  CertificateCheckError,
  crlDistributionPoints,
  crlDistributionPointsOf,
  decodeGeneralNames,
  decodeName,
  encodeGeneralNames,
  encodeName,
  extendedKeyUsage,
  extension,
  extKeyUsageOf,
  issueCertificate,
  issuerAltName,
  keyIdentifier,
  keyUsage,
  keyUsageOf,
  type NameAttribute,
  ocspNoCheck,
  OIDS,
  parseCertificate,
  parseTbsCertificate,
  policiesOf,
  spkiFromPem,
  spkiInfo,
  subjectAltName,
  subjectKeyId,
  subjectKeyIdentifier,
  UnsupportedAlgorithmError,
  verifySignature,
  verifySignedBy,
} from './x509.ts';

const REF = '/work/shared/reference/jpki-ca';
const refDer = (file: string): Buffer =>
  certificateFromPem(readFileSync(path.join(REF, file), 'utf8'));

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'kiban-x509-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function openssl(args: string[]): string {
  return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

let fileNo = 0;
function writePem(der: Buffer, label = 'CERTIFICATE'): string {
  const file = path.join(dir, `f${++fileNo}.pem`);
  writeFileSync(file, toPem(der, label));
  return file;
}

const certText = (der: Buffer): string =>
  openssl(['x509', '-in', writePem(der), '-noout', '-text', '-nameopt', 'utf8']);

/**
 * `openssl x509 -text` with the values that legitimately differ between two certificates of
 * the same shape masked: serial, dates, every hex dump (modulus, key ids, signature; runs of
 * hex lines collapse to one), AKI keyid/serial, plus `extra` value patterns.
 */
function normalise(text: string, extra: [RegExp, string][] = []): string[] {
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    let line = raw
      .replace(/(Serial Number:).*/, '$1 <serial>')
      .replace(/(Not Before|Not After) ?:.*/, '$1: <time>')
      .replace(/^(\s*)([0-9a-fA-F]{2}:)+[0-9a-fA-F]{0,2}$/, '$1<hex>')
      .replace(/(keyid|serial):[0-9A-F:]+/, '$1:<hex>');
    for (const [re, to] of extra) line = line.replace(re, to);
    if (line.trim() === '<hex>' && out.at(-1) === line) continue;
    out.push(line);
  }
  return out;
}

function rsaKey(): { privateKey: KeyObject; spki: Buffer } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { privateKey, spki: publicKey.export({ type: 'spki', format: 'der' }) };
}

const rsaSigner = (privateKey: KeyObject): TbsSigner => ({
  algorithm: 'sha256WithRSAEncryption',
  sign: async (tbs) => sign('sha256', tbs, privateKey),
});

// The real CA's names.
const SIGN_CA_DN: NameAttribute[] = [
  { type: 'C', value: 'JP' },
  { type: 'O', value: 'JPKI' },
  { type: 'OU', value: 'JPKI for digital signature' },
  { type: 'OU', value: 'Japan Agency for Local Authority Information Systems' },
];
const JA_DN: NameAttribute[] = [
  { type: 'C', value: 'JP' },
  { type: 'O', value: '公的個人認証サービス' },
  { type: 'OU', value: '公的個人認証サービス署名用' },
  { type: 'OU', value: '地方公共団体情報システム機構' },
];

function caExtensions(dn: Buffer, spki: Buffer) {
  return [
    keyUsage(['keyCertSign', 'cRLSign']),
    subjectAltName([{ directoryName: encodeName(JA_DN) }]),
    basicConstraints({ ca: true }),
    crlDistributionPoints([[{ directoryName: dn }]]),
    subjectKeyIdentifier(spki),
  ];
}

const crldpName = (ou: string, cn: string): Buffer =>
  encodeName([
    { type: 'C', value: 'JP' },
    { type: 'O', value: 'JPKI' },
    { type: 'OU', value: 'JPKI for digital signature' },
    { type: 'OU', value: 'CRL Distribution Points' },
    { type: 'OU', value: ou },
    { type: 'CN', value: cn },
  ]);

/** The six JPKI otherNames in the order of JPKI-PROFILE.md. */
function jpkiOtherNames(p: {
  name: string;
  dob: string;
  sex: string;
  address: string;
  nameMap?: string;
  addressMap?: string;
}): { otherName: { oid: string; value: string } }[] {
  const nameMap = p.nameMap ?? '0'.repeat([...p.name].length);
  const addressMap = p.addressMap ?? '0'.repeat([...p.address].length);
  return [
    { otherName: { oid: OIDS.jpkiName, value: p.name } },
    { otherName: { oid: OIDS.jpkiDateOfBirth, value: p.dob } },
    { otherName: { oid: OIDS.jpkiSex, value: p.sex } },
    { otherName: { oid: OIDS.jpkiAddress, value: p.address } },
    { otherName: { oid: OIDS.jpkiNameSubstitution, value: nameMap } },
    { otherName: { oid: OIDS.jpkiAddressSubstitution, value: addressMap } },
  ];
}

describe('names', () => {
  it('encodes C as PrintableString and the rest as UTF8String, like the real CAs', () => {
    const ref = parseCertificate(refDer('sign_ca_2023.pem'));
    expect(encodeName(SIGN_CA_DN).equals(ref.subject)).toBe(true);
    expect(encodeName(SIGN_CA_DN).equals(ref.issuer)).toBe(true);
    expect(decodeName(ref.subject)).toEqual(
      SIGN_CA_DN.map((a) => ({ ...a, encoding: a.type === 'C' ? 'printable' : 'utf8' })),
    );
  });

  it('honours encoding: printable and forces PrintableString for serialNumber', () => {
    const der = encodeName([
      { type: 'CN', value: 'abc', encoding: 'printable' },
      { type: 'serialNumber', value: '123' },
      { type: 'ST', value: 'Tokyo' },
    ]);
    expect(decodeName(der).map((a) => a.encoding)).toEqual(['printable', 'printable', 'utf8']);
  });

  it('keeps one attribute per RDN in the given order (no sorting)', () => {
    const attrs: NameAttribute[] = [
      { type: 'CN', value: 'z' },
      { type: 'C', value: 'JP' },
      { type: 'L', value: 'a' },
    ];
    expect(decodeName(encodeName(attrs)).map((a) => a.type)).toEqual(['CN', 'C', 'L']);
  });

  it('rejects bad values without echoing them', () => {
    expect(() => encodeName([{ type: 'C', value: 'jp' }])).toThrow(RangeError);
    expect(() => encodeName([{ type: 'C', value: 'JPN' }])).toThrow(RangeError);
    expect(() => encodeName([{ type: 'CN', value: '' }])).toThrow(RangeError);
    expect(() => encodeName([{ type: 'CN', value: 'x'.repeat(65) }])).toThrow(RangeError);
    expect(() => encodeName([{ type: 'L', value: 'あ'.repeat(128) }])).not.toThrow();
    expect(() => encodeName([{ type: 'O', value: '秘密の名前', encoding: 'printable' }])).toThrow(
      /^name attribute O is not a valid PrintableString$/,
    );
  });

  it('rejects unknown attribute and string types when decoding', () => {
    const uid = sequence(tlv(0x31, sequence(oid('0.9.2342.19200300.100.1.1'), tlv(0x0c, []))));
    expect(() => decodeName(uid)).toThrow(DerError);
    const bmp = sequence(
      tlv(0x31, sequence(oid(OIDS.commonName), tlv(0x1e, Buffer.from([0, 65])))),
    );
    expect(() => decodeName(bmp)).toThrow(DerError);
  });
});

describe('general names and extensions', () => {
  it('round-trips GeneralNames', () => {
    const names = [
      { otherName: { oid: OIDS.jpkiName, value: '山田　花子' } },
      { directoryName: encodeName(JA_DN) },
      { uri: 'http://crl.example/a.crl' },
      { dnsName: 'ocsp.example' },
    ];
    expect(decodeGeneralNames(encodeGeneralNames(names))).toEqual(names);
    expect(() => encodeGeneralNames([])).toThrow(RangeError);
    expect(() => encodeGeneralNames([{ uri: 'http://例え.jp/' }])).toThrow(RangeError);
    expect(() => encodeGeneralNames([{ directoryName: Buffer.from([1, 2]) }])).toThrow();
  });

  it('writes the documented encodings', () => {
    expect(keyUsage(['keyCertSign', 'cRLSign']).value.toString('hex')).toBe('03020106');
    expect(keyUsage(['digitalSignature', 'nonRepudiation']).value.toString('hex')).toBe('030206c0');
    expect(keyUsage(['decipherOnly']).value.toString('hex')).toBe('0303070080');
    expect(basicConstraints({ ca: false })).toEqual({
      oid: OIDS.basicConstraints,
      critical: true,
      value: Buffer.from('3000', 'hex'),
    });
    expect(basicConstraints({ ca: true, pathLength: 0 }).value.toString('hex')).toBe(
      '30060101ff020100',
    );
    expect(() => basicConstraints({ ca: false, pathLength: 1 })).toThrow(RangeError);
    expect(ocspNoCheck().value.toString('hex')).toBe('0500');
    expect(extendedKeyUsage([OIDS.OCSPSigning]).value.toString('hex')).toBe(
      '300a06082b06010505070309',
    );
    expect(() => authorityKeyIdentifier({ keyId: Buffer.alloc(20), serial: 1n })).toThrow(
      RangeError,
    );
  });

  it('reproduces every extension of the real sign CA byte for byte (SKI from its key)', () => {
    const ref = parseCertificate(refDer('sign_ca_2023.pem'));
    const ours = caExtensions(encodeName(SIGN_CA_DN), ref.spki);
    expect(ours).toEqual(ref.extensions);
  });

  it('reproduces every extension of the dummy signing certificate byte for byte', () => {
    const ref = parseCertificate(refDer('dummy_sign_cert_example.pem'));
    // The dummy carries the real certificate's SKI (and substitution maps whose lengths do
    // not match its dummy name and address), not values derived from its own key and text.
    const dummySki = Buffer.from('981C886817603EE4E1461E04DAFB92816CD06753', 'hex');
    expect(keyIdentifier(ref.spki).equals(dummySki)).toBe(false);
    const ours = [
      keyUsage(['digitalSignature', 'nonRepudiation']),
      subjectAltName(
        jpkiOtherNames({
          name: 'なかもと　さとし',
          dob: '420081031',
          sex: '1',
          address: '東京都港区芝公園４丁目２番地８',
          nameMap: '0000',
          addressMap: '0'.repeat(41),
        }),
      ),
      certificatePolicies(
        [{ oid: '1.2.392.200149.8.5.1.1.20', cpsUri: 'http://www.jpki.go.jp/cps.html' }],
        true,
      ),
      issuerAltName([{ directoryName: encodeName(JA_DN) }]),
      crlDistributionPoints([[{ directoryName: crldpName('Tokyo-to', 'Shibuya-ku CRLDP') }]]),
      authorityKeyIdentifier({
        keyId: Buffer.from('4DE017DE4B7F473DCD867A62D38B134ACE83558A', 'hex'),
        issuer: encodeName(SIGN_CA_DN),
        serial: 0x0132c4abn,
      }),
      { oid: OIDS.subjectKeyIdentifier, critical: false, value: octetString(dummySki) },
    ];
    expect(ours).toEqual(ref.extensions);
  });

  it('reads authorityInfoAccess and extended key usage back', () => {
    const aia = authorityInfoAccess({
      ocsp: ['http://ocsp.example/'],
      caIssuers: ['http://ca.example/ca.cer'],
    });
    const eku = extendedKeyUsage([OIDS.clientAuth]);
    const holder = { extensions: [aia, eku] };
    expect(authorityInfoAccessOf(holder)).toEqual({
      ocsp: ['http://ocsp.example/'],
      caIssuers: ['http://ca.example/ca.cer'],
    });
    expect(extKeyUsageOf(holder)).toEqual([OIDS.clientAuth]);
    expect(keyUsageOf(holder)).toBeUndefined();
  });
});

describe('TBSCertificate', () => {
  it('rebuilds the real certificates exactly from their fields (signature reused)', () => {
    for (const file of ['sign_ca_2023.pem', 'auth_ca_2023.pem', 'dummy_sign_cert_example.pem']) {
      const der = refDer(file);
      const ref = parseCertificate(der);
      const tbs = buildTbsCertificate({
        serial: ref.serial,
        signatureAlgorithm: 'sha256WithRSAEncryption',
        issuer: ref.issuer,
        notBefore: ref.notBefore,
        notAfter: ref.notAfter,
        subject: ref.subject,
        spki: ref.spki,
        extensions: ref.extensions,
      });
      expect(tbs.equals(ref.tbs)).toBe(true);
      expect(
        assembleCertificate(tbs, 'sha256WithRSAEncryption', ref.signatureValue).equals(der),
      ).toBe(true);
    }
  });

  it('validates its inputs', () => {
    const ref = parseCertificate(refDer('sign_ca_2023.pem'));
    const base = {
      serial: 1n,
      signatureAlgorithm: 'sha256WithRSAEncryption' as const,
      issuer: ref.issuer,
      notBefore: new Date('2024-01-01T00:00:00Z'),
      notAfter: new Date('2025-01-01T00:00:00Z'),
      subject: ref.subject,
      spki: ref.spki,
      extensions: [],
    };
    expect(() => buildTbsCertificate({ ...base, serial: 0n })).toThrow(RangeError);
    expect(() => buildTbsCertificate({ ...base, serial: 1n << 159n })).toThrow(RangeError);
    expect(() => buildTbsCertificate({ ...base, serial: (1n << 159n) - 1n })).not.toThrow();
    expect(() => buildTbsCertificate({ ...base, notAfter: new Date('2023-01-01Z') })).toThrow();
    const ku = keyUsage(['cRLSign']);
    expect(() => buildTbsCertificate({ ...base, extensions: [ku, ku] })).toThrow(/duplicate/);
    expect(() => buildTbsCertificate({ ...base, spki: Buffer.from('3000', 'hex') })).toThrow();
    // No extensions: the [3] field is left out.
    expect(parseTbsCertificate(buildTbsCertificate(base)).extensions).toEqual([]);
  });

  it('writes GeneralizedTime from 2050', () => {
    const ref = parseCertificate(refDer('sign_ca_2023.pem'));
    const tbs = buildTbsCertificate({
      serial: 5n,
      signatureAlgorithm: 'sha256WithRSAEncryption',
      issuer: ref.issuer,
      notBefore: new Date('2049-12-31T23:59:59Z'),
      notAfter: new Date('2050-01-01T00:00:00Z'),
      subject: ref.subject,
      spki: ref.spki,
      extensions: [],
    });
    expect(tbs.includes(Buffer.from('170d3439313233313233353935395a', 'hex'))).toBe(true);
    expect(tbs.includes(Buffer.from('180f32303530303130313030303030305a', 'hex'))).toBe(true);
    const back = parseTbsCertificate(tbs);
    expect(back.notAfter.toISOString()).toBe('2050-01-01T00:00:00.000Z');
  });
});

describe('a CA and a leaf shaped like the real ones', () => {
  const ca = rsaKey();
  const leafKey = rsaKey();
  const caDn = encodeName(SIGN_CA_DN);
  const caSerial = 0x67c6a22n;
  const now = wholeSeconds(new Date());
  const tenYears = new Date(now.getTime() + 3652 * 86400_000);
  tenYears.setUTCHours(14, 59, 59, 0);
  const caSpki = ca.spki;
  let caDer: Buffer;
  let leafDer: Buffer;

  const leafSubject = encodeName([
    { type: 'C', value: 'JP' },
    { type: 'L', value: 'Tokyo-to' },
    { type: 'L', value: 'Shibuya-ku' },
    { type: 'CN', value: '2024061410101099999000000001' },
  ]);
  const person = {
    name: '山田　花子',
    dob: '419900415',
    sex: '2',
    address: '東京都渋谷区宇田川町１番１号',
  };

  beforeAll(async () => {
    caDer = await issueCertificate(
      {
        serial: caSerial,
        signatureAlgorithm: 'sha256WithRSAEncryption',
        issuer: caDn,
        notBefore: now,
        notAfter: tenYears,
        subject: caDn,
        spki: caSpki,
        extensions: caExtensions(caDn, caSpki),
      },
      rsaSigner(ca.privateKey),
    );
    const fiveYears = new Date(now.getTime() + 1826 * 86400_000);
    fiveYears.setUTCHours(14, 59, 59, 0);
    leafDer = await issueCertificate(
      {
        serial: 0x67c6a23n,
        signatureAlgorithm: 'sha256WithRSAEncryption',
        issuer: caDn,
        notBefore: now,
        notAfter: fiveYears,
        subject: leafSubject,
        spki: leafKey.spki,
        extensions: [
          keyUsage(['digitalSignature', 'nonRepudiation']),
          subjectAltName(jpkiOtherNames(person)),
          certificatePolicies(
            [{ oid: '1.2.392.200149.8.5.1.0.20', cpsUri: 'http://jpki.example/cps.html' }],
            true,
          ),
          issuerAltName([{ directoryName: encodeName(JA_DN) }]),
          crlDistributionPoints([
            [
              { directoryName: crldpName('Tokyo-to', 'Shibuya-ku CRLDP') },
              { uri: 'http://crl.jpki.example/sign/13113.crl' },
            ],
          ]),
          authorityKeyIdentifier({ keyId: keyIdentifier(caSpki), issuer: caDn, serial: caSerial }),
          subjectKeyIdentifier(leafKey.spki),
        ],
      },
      rsaSigner(ca.privateKey),
    );
  });

  it('CA: openssl -text matches the real sign CA line for line (values masked)', () => {
    const ours = certText(caDer);
    const real = certText(refDer('sign_ca_2023.pem'));
    expect(normalise(ours)).toEqual(normalise(real));
    expect(ours).toMatch(/Not After : .* 14:59:59 \d{4} GMT/);
  });

  it('leaf: openssl verify accepts it under the CA', () => {
    const out = openssl(['verify', '-CAfile', writePem(caDer), writePem(leafDer)]);
    expect(out.trim()).toMatch(/: OK$/);
  });

  it('leaf: openssl prints the six otherNames in order with the Japanese text intact', () => {
    const text = certText(leafDer);
    const expected = jpkiOtherNames(person)
      .map((g) => `othername: ${g.otherName.oid}::${g.otherName.value}`)
      .join(', ');
    expect(text).toContain(expected);
    expect(text).toContain('othername: 1.2.392.200149.8.5.5.1::山田　花子, ');
  });

  it('leaf: openssl -text matches the dummy certificate (values masked)', () => {
    const ours = certText(leafDer);
    const real = certText(refDer('dummy_sign_cert_example.pem'));
    const values: [RegExp, string][] = [
      [/(othername: [0-9.]+::)[^,]*/g, '$1<value>'],
      [/(Subject: .*CN=).*/, '$1<id>'],
      [/(Policy: ).*/, '$1<policy>'],
      [/(CPS: ).*/, '$1<url>'],
    ];
    // Ours carries an HTTP URI next to the directoryName in the CRL distribution point.
    const withoutUri = normalise(ours, values).filter((l) => !/^\s+URI:http:\/\/crl\./.test(l));
    expect(withoutUri).toEqual(normalise(real, values));
    expect(ours).toContain('URI:http://crl.jpki.example/sign/13113.crl');
  });

  it('parses back what it wrote', () => {
    const c = parseCertificate(caDer);
    const l = parseCertificate(leafDer);
    expect(c.version).toBe(3);
    expect(c.serial).toBe(caSerial);
    expect(c.signatureAlgorithm).toBe(OIDS.sha256WithRSAEncryption);
    expect(c.notBefore).toEqual(now);
    expect(c.notAfter).toEqual(tenYears);
    expect(c.spki.equals(caSpki)).toBe(true);
    expect(basicConstraintsOf(c)).toEqual({ ca: true });
    expect(keyUsageOf(c)).toEqual(['keyCertSign', 'cRLSign']);
    expect(subjectKeyId(c)).toEqual(keyIdentifier(caSpki));
    expect(verifySignedBy(c, caSpki)).toBe(true);

    expect(l.issuer.equals(caDn)).toBe(true);
    expect(decodeName(l.subject).map((a) => a.type)).toEqual(['C', 'L', 'L', 'CN']);
    expect(certificateOtherNames(l)).toEqual(
      jpkiOtherNames(person).map((g) => ({ oid: g.otherName.oid, value: g.otherName.value })),
    );
    expect(authorityKeyId(l)).toEqual(keyIdentifier(caSpki));
    expect(subjectKeyId(l)).toEqual(keyIdentifier(leafKey.spki));
    expect(policiesOf(l)).toEqual([
      { oid: '1.2.392.200149.8.5.1.0.20', cpsUri: 'http://jpki.example/cps.html' },
    ]);
    expect(crlDistributionPointsOf(l)).toEqual([
      [
        { directoryName: crldpName('Tokyo-to', 'Shibuya-ku CRLDP') },
        { uri: 'http://crl.jpki.example/sign/13113.crl' },
      ],
    ]);
    expect(basicConstraintsOf(l)).toBeUndefined();
    expect(verifySignedBy(l, caSpki)).toBe(true);
    expect(verifySignedBy(l, leafKey.spki)).toBe(false);
  });

  it('runs the pre-signing check and signs nothing when it fails', async () => {
    let signed = 0;
    const signer: TbsSigner = {
      algorithm: 'sha256WithRSAEncryption',
      sign: async (tbs) => {
        signed++;
        return sign('sha256', tbs, ca.privateKey);
      },
    };
    const input = {
      serial: 9n,
      signatureAlgorithm: 'sha256WithRSAEncryption' as const,
      issuer: caDn,
      notBefore: now,
      notAfter: tenYears,
      subject: caDn,
      spki: caSpki,
      extensions: [],
    };
    await expect(issueCertificate(input, signer, () => ['bad'])).rejects.toBeInstanceOf(
      CertificateCheckError,
    );
    expect(signed).toBe(0);
    await issueCertificate(input, signer, () => []);
    expect(signed).toBe(1);
    await expect(
      issueCertificate(input, { ...signer, algorithm: 'ecdsaWithSHA256' }),
    ).rejects.toThrow(RangeError);
  });

  it('issues with ECDSA P-256', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const spki = publicKey.export({ type: 'spki', format: 'der' });
    const der = await issueCertificate(
      {
        serial: 77n,
        signatureAlgorithm: 'ecdsaWithSHA256',
        issuer: caDn,
        notBefore: now,
        notAfter: tenYears,
        subject: caDn,
        spki,
        extensions: [basicConstraints({ ca: true }), subjectKeyIdentifier(spki)],
      },
      { algorithm: 'ecdsaWithSHA256', sign: async (tbs) => sign('sha256', tbs, privateKey) },
    );
    const c = parseCertificate(der);
    expect(c.signatureAlgorithm).toBe(OIDS.ecdsaWithSHA256);
    expect(c.signatureAlgorithmId.toString('hex')).toBe('300a06082a8648ce3d040302');
    expect(verifySignedBy(c, spki)).toBe(true);
    expect(verifySignedBy(c, caSpki)).toBe(false);
    expect(openssl(['verify', '-CAfile', writePem(der), writePem(der)]).trim()).toMatch(/: OK$/);
  });
});

describe('parseCertificate on the real certificates', () => {
  it('reads the sign CA', () => {
    const c = parseCertificate(refDer('sign_ca_2023.pem'));
    expect(c.version).toBe(3);
    expect(c.serial).toBe(0x67c6a21n);
    expect(c.signatureAlgorithm).toBe(OIDS.sha256WithRSAEncryption);
    expect(c.signatureAlgorithmId.toString('hex')).toBe('300d06092a864886f70d01010b0500');
    expect(c.notBefore.toISOString()).toBe('2023-07-16T00:50:27.000Z');
    expect(c.notAfter.toISOString()).toBe('2033-07-15T14:59:59.000Z');
    expect(c.extensions.map((e) => [e.oid, e.critical])).toEqual([
      [OIDS.keyUsage, true],
      [OIDS.subjectAltName, false],
      [OIDS.basicConstraints, true],
      [OIDS.cRLDistributionPoints, false],
      [OIDS.subjectKeyIdentifier, false],
    ]);
    expect(subjectKeyId(c)?.toString('hex')).toBe('d21ea55895617e93adbf966b941ab4edf653f08f');
    expect(keyIdentifier(c.spki).toString('hex')).toBe('d21ea55895617e93adbf966b941ab4edf653f08f');
    expect(extension(c, OIDS.subjectAltName)).toBeDefined();
    expect(certificateOtherNames(c)).toEqual([]);
    expect(crlDistributionPointsOf(c)).toEqual([[{ directoryName: c.subject }]]);
    expect(spkiInfo(c.spki)).toEqual({ type: 'rsa', bits: 2048, publicExponent: 65537n });
    expect(c.signatureValue).toHaveLength(256);
    expect(verifySignedBy(c, c.spki)).toBe(true);
  });

  it('reads the auth CA and verifies its self-signature', () => {
    const c = parseCertificate(refDer('auth_ca_2023.pem'));
    expect(c.serial).toBe(114393094n);
    expect(decodeName(c.subject)[2]).toEqual({
      type: 'OU',
      value: 'JPKI for user authentication',
      encoding: 'utf8',
    });
    expect(verifySignedBy(c, c.spki)).toBe(true);
    const sign = parseCertificate(refDer('sign_ca_2023.pem'));
    expect(verifySignedBy(c, sign.spki)).toBe(false);
  });

  it('reads the dummy signing certificate', () => {
    const c = parseCertificate(refDer('dummy_sign_cert_example.pem'));
    expect(c.serial).toBe(1n);
    expect(decodeName(c.subject)).toEqual([
      { type: 'C', value: 'JP', encoding: 'printable' },
      { type: 'L', value: 'Tokyo-to', encoding: 'utf8' },
      { type: 'L', value: 'Shibuya-ku', encoding: 'utf8' },
      { type: 'CN', value: '2020010110101012345123456789', encoding: 'utf8' },
    ]);
    expect(certificateOtherNames(c).map((o) => o.oid)).toEqual([
      OIDS.jpkiName,
      OIDS.jpkiDateOfBirth,
      OIDS.jpkiSex,
      OIDS.jpkiAddress,
      OIDS.jpkiNameSubstitution,
      OIDS.jpkiAddressSubstitution,
    ]);
    expect(certificateOtherNames(c)[0]!.value).toBe('なかもと　さとし');
    expect(authorityKeyId(c)?.toString('hex')).toBe('4de017de4b7f473dcd867a62d38b134ace83558a');
    expect(policiesOf(c)).toEqual([
      { oid: '1.2.392.200149.8.5.1.1.20', cpsUri: 'http://www.jpki.go.jp/cps.html' },
    ]);
    expect(keyUsageOf(c)).toEqual(['digitalSignature', 'nonRepudiation']);
    expect(extKeyUsageOf(c)).toBeUndefined();
    // The dummy was signed by another (older) key, not the 2023 CA.
    expect(verifySignedBy(c, parseCertificate(refDer('sign_ca_2023.pem')).spki)).toBe(false);
  });
});

describe('parseCertificate strictness', () => {
  const der = refDer('sign_ca_2023.pem');
  const ref = parseCertificate(der);
  const rebuild = (tbsFields: Buffer[], alg = ref.signatureAlgorithmId): Buffer =>
    sequence(sequence(...tbsFields), alg, tlv(0x03, [Buffer.from([0]), ref.signatureValue]));
  const fields = (): Buffer[] => [
    Buffer.from('a003020102', 'hex'),
    Buffer.from('0204067c6a21', 'hex'),
    ref.signatureAlgorithmId,
    ref.issuer,
    Buffer.from('301e170d3233303731363030353032375a170d3333303731353134353935395a', 'hex'),
    ref.subject,
    ref.spki,
  ];
  const extsWith = (...exts: Buffer[]): Buffer => tlv(0xa3, sequence(...exts));
  const ext = (o: string, value: Buffer, critical?: boolean): Buffer =>
    critical === undefined
      ? sequence(oid(o), octetString(value))
      : sequence(oid(o), boolean(critical), octetString(value));

  it('accepts the rebuilt original', () => {
    const exts = ref.extensions.map((e) => ext(e.oid, e.value, e.critical ? true : undefined));
    expect(rebuild([...fields(), extsWith(...exts)]).equals(der)).toBe(true);
  });

  it('rejects trailing bytes, truncation and oversized input', () => {
    expect(() => parseCertificate(Buffer.concat([der, Buffer.from([0])]))).toThrow(DerError);
    expect(() => parseCertificate(der.subarray(0, der.length - 1))).toThrow(DerError);
    expect(() => parseCertificate(der, { maxBytes: 1000 })).toThrow(DerError);
    expect(() => parseCertificate(der, { maxNodes: 20 })).toThrow(DerError);
  });

  it('rejects DEFAULT values that are encoded', () => {
    const v1 = fields();
    v1[0] = Buffer.from('a003020100', 'hex');
    expect(() => parseCertificate(rebuild(v1))).toThrow(/DEFAULT/);
    const falseCritical = extsWith(ext(OIDS.keyUsage, Buffer.from('03020106', 'hex'), false));
    expect(() => parseCertificate(rebuild([...fields(), falseCritical]))).toThrow(/DEFAULT/);
  });

  it('rejects duplicate extensions, mismatched algorithms and v1 with extensions', () => {
    const ku = ext(OIDS.keyUsage, Buffer.from('03020106', 'hex'), true);
    expect(() => parseCertificate(rebuild([...fields(), extsWith(ku, ku)]))).toThrow(/duplicate/);
    const other = sequence(oid(OIDS.sha384WithRSAEncryption), Buffer.from('0500', 'hex'));
    expect(() => parseCertificate(rebuild(fields(), other))).toThrow(/differs/);
    expect(() => parseCertificate(rebuild([...fields().slice(1), extsWith(ku)]))).toThrow(
      /version 3/,
    );
    expect(() => parseCertificate(rebuild([...fields(), tlv(0xa3, sequence())]))).toThrow(DerError);
  });
});

describe('signatures and keys', () => {
  it('rejects weak or unknown algorithms with a clear error', () => {
    const c = parseCertificate(refDer('sign_ca_2023.pem'));
    const sha1 = sequence(oid(OIDS.sha1WithRSAEncryption), Buffer.from('0500', 'hex'));
    expect(() => verifySignature(sha1, c.tbs, c.signatureValue, c.spki)).toThrow(
      UnsupportedAlgorithmError,
    );
    expect(() => verifySignature(sha1, c.tbs, c.signatureValue, c.spki)).toThrow(/SHA-1/);
    const pss = sequence(oid('1.2.840.113549.1.1.10'), sequence());
    expect(() => verifySignature(pss, c.tbs, c.signatureValue, c.spki)).toThrow(
      UnsupportedAlgorithmError,
    );
    const noNull = sequence(oid(OIDS.sha256WithRSAEncryption));
    expect(verifySignature(noNull, c.tbs, c.signatureValue, c.spki)).toBe(true);
    const flipped = Buffer.from(c.signatureValue);
    flipped[10]! ^= 1;
    expect(verifySignature(c.signatureAlgorithmId, c.tbs, flipped, c.spki)).toBe(false);
  });

  it('describes keys and rejects garbage', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey;
    const pem = ec.export({ type: 'spki', format: 'pem' }) as string;
    const spki = spkiFromPem(pem);
    expect(spkiInfo(spki)).toEqual({ type: 'ec', bits: 384, curve: 'P-384' });
    expect(() => spkiInfo(Buffer.from('garbage'))).toThrow(DerError);
    expect(() => spkiInfo(Buffer.from('3000', 'hex'))).toThrow(DerError);
    const ed = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'der' });
    expect(() => spkiInfo(ed)).toThrow(DerError);
    const k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey;
    expect(() => spkiInfo(k1.export({ type: 'spki', format: 'der' }))).toThrow(DerError);
    expect(() => spkiFromPem('no pem here')).toThrow(DerError);
  });

  it('reads RSA keys as OpenSSL does, and refuses a non-canonical encoding', () => {
    for (const [modulusLength, publicExponent] of [
      [2048, 65537],
      [3072, 65537],
      [2056, 3],
    ] as const) {
      const key = generateKeyPairSync('rsa', { modulusLength, publicExponent }).publicKey;
      const spki = key.export({ type: 'spki', format: 'der' });
      expect(spkiInfo(spki)).toEqual({
        type: 'rsa',
        bits: key.asymmetricKeyDetails?.modulusLength,
        publicExponent: key.asymmetricKeyDetails?.publicExponent,
      });
      // The same key without the NULL parameters, and with a long-form length: refused.
      const alg = sequence(oid(OIDS.rsaEncryption));
      const noNull = sequence(alg, spki.subarray(4 + 15)); // 4: SEQUENCE header, 15: algorithm
      expect(() => spkiInfo(noNull)).toThrow(DerError);
      const longForm = Buffer.concat([Buffer.from([0x30, 0x83, 0x00]), spki.subarray(2)]);
      expect(() => spkiInfo(longForm)).toThrow(DerError);
    }
  });

  it('computes the key identifier as SHA-1 of the subjectPublicKey bits', () => {
    const { spki } = rsaKey();
    const bits = spki.subarray(spki.length - 270); // 2048-bit key: 270-byte RSAPublicKey
    expect(keyIdentifier(spki)).toEqual(createHash('sha1').update(bits).digest());
  });
});
