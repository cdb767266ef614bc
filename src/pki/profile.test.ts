import { generateKeyPairSync, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { algorithmIdentifier } from './algorithms.ts';
import { explicit, integer, oid, sequence, tlv, utf8String, x509Time } from './der.ts';
import { AUTH_PROFILE, CA_PROFILE, SIGN_PROFILE } from '../jpki/jpki.profiles.ts';
import { checkTbsAgainstProfile, type CertificateProfile } from './profile.ts';

/** The JPKI profiles serve as realistic examples of the generic check. */
const JPKI_PROFILES = {
  signCa: CA_PROFILE,
  authCa: CA_PROFILE,
  signing: SIGN_PROFILE,
  authentication: AUTH_PROFILE,
};
import {
  authorityInfoAccess,
  authorityKeyIdentifier,
  basicConstraints,
  buildTbsCertificate,
  certificateFromPem,
  CertificateCheckError,
  certificatePolicies,
  crlDistributionPoints,
  encodeName,
  type Extension,
  extendedKeyUsage,
  issueCertificate,
  issuerAltName,
  keyIdentifier,
  keyUsage,
  type NameAttribute,
  OIDS,
  parseCertificate,
  subjectAltName,
  subjectKeyIdentifier,
  type TbsCertificateInput,
} from './x509.ts';

const rsa = (bits: number) => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  return { privateKey, spki: publicKey.export({ type: 'spki', format: 'der' }) };
};

const ca = rsa(2048);
const leaf = rsa(2048);
const caDn = encodeName([
  { type: 'C', value: 'JP' },
  { type: 'O', value: 'JPKI' },
  { type: 'OU', value: 'JPKI for digital signature' },
  { type: 'OU', value: 'Kiban Test Agency' },
]);
const caSerial = 1000n;
const now = new Date('2025-06-14T01:02:03Z');

// Personal values: none of these may appear in a problem message.
const PERSONAL = {
  name: '山田　花子',
  dob: '419900415',
  sex: '2',
  address: '東京都渋谷区宇田川町１番１号',
  prefecture: 'Tokyo-to',
  city: 'Shibuya-ku',
  id: '2025061410101099999000000042',
};

const subjectAttrs: NameAttribute[] = [
  { type: 'C', value: 'JP' },
  { type: 'L', value: PERSONAL.prefecture },
  { type: 'L', value: PERSONAL.city },
  { type: 'CN', value: PERSONAL.id },
];

const otherNames = [
  { otherName: { oid: OIDS.jpkiName, value: PERSONAL.name } },
  { otherName: { oid: OIDS.jpkiDateOfBirth, value: PERSONAL.dob } },
  { otherName: { oid: OIDS.jpkiSex, value: PERSONAL.sex } },
  { otherName: { oid: OIDS.jpkiAddress, value: PERSONAL.address } },
  { otherName: { oid: OIDS.jpkiNameSubstitution, value: '00000' } },
  { otherName: { oid: OIDS.jpkiAddressSubstitution, value: '0'.repeat(14) } },
];

function signingExtensions(spki = leaf.spki): Extension[] {
  return [
    keyUsage(['digitalSignature', 'nonRepudiation']),
    subjectAltName(otherNames),
    certificatePolicies(
      [{ oid: '1.2.392.200149.8.5.1.0.20', cpsUri: 'http://jpki.example/cps' }],
      true,
    ),
    issuerAltName([{ directoryName: caDn }]),
    crlDistributionPoints([
      [
        {
          directoryName: encodeName([...subjectAttrs.slice(0, 3), { type: 'CN', value: 'CRLDP' }]),
        },
        { uri: 'http://crl.jpki.example/13113.crl' },
      ],
    ]),
    authorityKeyIdentifier({ keyId: keyIdentifier(ca.spki), issuer: caDn, serial: caSerial }),
    subjectKeyIdentifier(spki),
  ];
}

function input(over: Partial<TbsCertificateInput> = {}): TbsCertificateInput {
  return {
    serial: 123456789n,
    signatureAlgorithm: 'sha256WithRSAEncryption',
    issuer: caDn,
    notBefore: now,
    notAfter: new Date('2030-04-15T14:59:59Z'),
    subject: encodeName(subjectAttrs),
    spki: leaf.spki,
    extensions: signingExtensions(),
    ...over,
  };
}

const profile = JPKI_PROFILES.signing;
const expectation = { issuer: caDn, now, issuerKeyId: keyIdentifier(ca.spki) };
const check = (tbs: Buffer, p: CertificateProfile = profile): string[] => {
  const problems = checkTbsAgainstProfile(tbs, p, expectation);
  for (const m of problems) {
    // (The one-character sex code cannot be told apart from any digit.)
    for (const v of Object.values(PERSONAL)) if (v.length > 1) expect(m).not.toContain(v);
    expect(m).not.toContain('123456789');
    expect(m).not.toMatch(/2030|1990/);
  }
  return problems;
};
const checkInput = (over: Partial<TbsCertificateInput>): string[] =>
  check(buildTbsCertificate(input(over)));

function withExtensions(f: (exts: Extension[]) => Extension[]): string[] {
  return checkInput({ extensions: f(signingExtensions()) });
}

describe('checkTbsAgainstProfile', () => {
  it('passes a conforming signing certificate', () => {
    expect(check(buildTbsCertificate(input()))).toEqual([]);
  });

  it('reports extensions out of order', () => {
    const problems = withExtensions((e) => [e[0]!, e[1]!, e[3]!, e[2]!, e[4]!, e[5]!, e[6]!]);
    expect(problems).toEqual([
      'extensions are out of order: expected keyUsage, subjectAltName, certificatePolicies, ' +
        'issuerAltName, cRLDistributionPoints, authorityKeyIdentifier, subjectKeyIdentifier; ' +
        'got keyUsage, subjectAltName, issuerAltName, certificatePolicies, ' +
        'cRLDistributionPoints, authorityKeyIdentifier, subjectKeyIdentifier',
    ]);
  });

  it('reports a missing extension', () => {
    expect(withExtensions((e) => e.slice(0, 6))).toEqual([
      'extension subjectKeyIdentifier is missing',
    ]);
  });

  it('reports an extension the profile does not have', () => {
    expect(withExtensions((e) => [...e, extendedKeyUsage([OIDS.clientAuth])])).toEqual([
      'extension extKeyUsage is not in the profile',
    ]);
  });

  it('reports wrong criticality', () => {
    const problems = withExtensions((e) => {
      const out = [...e];
      out[2] = { ...out[2]!, critical: false };
      out[0] = { ...out[0]!, critical: false };
      return out;
    });
    expect(problems).toEqual([
      'extension keyUsage must be critical',
      'extension certificatePolicies must be critical',
    ]);
    const nonCritical = withExtensions((e) => [
      e[0]!,
      subjectAltName(otherNames, true),
      ...e.slice(2),
    ]);
    expect(nonCritical).toEqual(['extension subjectAltName must not be critical']);
  });

  it('reports a 1024-bit key (and the SKI follows the key)', () => {
    const small = rsa(1024);
    expect(checkInput({ spki: small.spki, extensions: signingExtensions(small.spki) })).toEqual([
      'subject public key (RSA 1024 bits, exponent 65537) is not allowed by the profile',
    ]);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({
      type: 'spki',
      format: 'der',
    });
    expect(checkInput({ spki: ec, extensions: signingExtensions(ec) })).toEqual([
      'subject public key (EC P-256) is not allowed by the profile',
    ]);
    const withEc: CertificateProfile = { ...profile, keys: [{ type: 'ec', curve: 'P-256' }] };
    expect(
      check(buildTbsCertificate(input({ spki: ec, extensions: signingExtensions(ec) })), withEc),
    ).toEqual([]);
  });

  it('reports a subjectKeyIdentifier that is not the key hash', () => {
    const other = rsa(2048);
    expect(withExtensions((e) => [...e.slice(0, 6), subjectKeyIdentifier(other.spki)])).toEqual([
      'subjectKeyIdentifier is not the SHA-1 of the subject public key',
    ]);
  });

  it('reports a bad time of day', () => {
    expect(checkInput({ notAfter: new Date('2030-04-15T19:00:00Z') })).toEqual([
      'notAfter time of day is not 14:59:59 UTC',
    ]);
  });

  it('reports a validity that is too long, reversed or starting far from now', () => {
    expect(checkInput({ notAfter: new Date('2030-06-16T14:59:59Z') })).toEqual([
      'validity is longer than 1828 days',
    ]);
    expect(checkInput({ notBefore: new Date('2025-06-16T00:00:00Z') })).toEqual([
      'notBefore is more than 1 day away from now',
    ]);
    expect(checkInput({ notBefore: new Date('2025-06-12T00:00:00Z') })).toEqual([
      'notBefore is more than 1 day away from now',
    ]);
    // buildTbsCertificate refuses reversed dates, so write one by hand.
    const reversed = rawTbs({ notBefore: new Date('2025-06-14T14:59:59Z'), notAfter: now });
    expect(check(reversed)).toEqual([
      'notBefore is after notAfter',
      'notAfter time of day is not 14:59:59 UTC',
    ]);
  });

  it('reports a wrong issuer', () => {
    const otherCa = encodeName([
      { type: 'C', value: 'JP' },
      { type: 'O', value: 'Someone else' },
    ]);
    expect(checkInput({ issuer: otherCa })).toEqual(['issuer differs from the issuing CA']);
    expect(
      checkInput({
        extensions: [
          ...signingExtensions().slice(0, 5),
          authorityKeyIdentifier({
            keyId: keyIdentifier(leaf.spki),
            issuer: caDn,
            serial: caSerial,
          }),
          subjectKeyIdentifier(leaf.spki),
        ],
      }),
    ).toEqual(["authorityKeyIdentifier is not the issuing CA's key identifier"]);
  });

  it('reports the subject shape without its values', () => {
    const swapped = [subjectAttrs[0]!, subjectAttrs[3]!, subjectAttrs[1]!, subjectAttrs[2]!];
    expect(checkInput({ subject: encodeName(swapped) })).toEqual([
      'subject attributes are C, CN, L, L, expected C, L, L, CN',
    ]);
    expect(checkInput({ subject: encodeName(subjectAttrs.slice(0, 3)) })).toEqual([
      'subject attributes are C, L, L, expected C, L, L, CN',
    ]);
    const multi = sequence(
      tlv(0x31, [
        sequence(oid(OIDS.countryName), Buffer.from('13024a50', 'hex')),
        sequence(oid(OIDS.commonName), utf8String(PERSONAL.id)),
      ]),
    );
    expect(checkInput({ subject: multi })).toEqual([
      'subject attributes are C+CN, expected C, L, L, CN',
    ]);
  });

  it('reports signature algorithm deviations', () => {
    expect(checkInput({ signatureAlgorithm: 'ecdsaWithSHA256' })).toEqual([
      'signature algorithm is not sha256WithRSAEncryption with NULL parameters',
    ]);
    const noNull = rawTbs({ alg: sequence(oid(OIDS.sha256WithRSAEncryption)) });
    expect(check(noNull)).toEqual([
      'signature algorithm is not sha256WithRSAEncryption with NULL parameters',
    ]);
  });

  it('reports version and serial problems', () => {
    expect(check(rawTbs({ serial: integer(0) }))).toEqual(['serial is not positive']);
    expect(check(rawTbs({ serial: integer(1n << 160n) }))).toEqual([
      'serial is longer than 20 octets',
    ]);
    expect(check(rawTbs({ serial: tlv(0x02, Buffer.from([0xff])) }))).toEqual([
      'serial is not positive',
    ]);
    expect(check(rawTbs({ version: integer(1) }))).toEqual([
      'TBSCertificate does not parse: extensions need version 3',
    ]);
  });

  it('reports otherName values that are not UTF8Strings', () => {
    const printableOtherName = tlv(0xa0, [
      oid(OIDS.jpkiSex),
      explicit(0, Buffer.from('130132', 'hex')), // PrintableString "2"
    ]);
    const san: Extension = {
      oid: OIDS.subjectAltName,
      critical: false,
      value: sequence(printableOtherName),
    };
    expect(withExtensions((e) => [e[0]!, san, ...e.slice(2)])).toEqual([
      'subjectAltName otherName value is not a UTF8String',
    ]);
  });

  it('checks keyUsage bits, extendedKeyUsage and cA when the profile pins them', () => {
    expect(withExtensions((e) => [keyUsage(['digitalSignature']), ...e.slice(1)])).toEqual([
      'keyUsage is not digitalSignature, nonRepudiation',
    ]);
    const withBc: CertificateProfile = {
      ...profile,
      extensions: [...profile.extensions, { oid: OIDS.basicConstraints, critical: true }],
    };
    const tbs = buildTbsCertificate(
      input({ extensions: [...signingExtensions(), basicConstraints({ ca: true })] }),
    );
    expect(check(tbs, withBc)).toEqual(['basicConstraints cA is not false']);
  });

  it('reports garbage without throwing', () => {
    expect(check(Buffer.from('3003020101', 'hex'))[0]).toMatch(/^TBSCertificate does not parse/);
    expect(check(Buffer.alloc(0))[0]).toMatch(/^TBSCertificate does not parse/);
  });
});

describe('JPKI profiles against real and built certificates', () => {
  const ref = (f: string) =>
    parseCertificate(
      certificateFromPem(readFileSync(`/work/shared/reference/jpki-ca/${f}`, 'utf8')),
    );

  it('the real CA certificates conform to the CA profiles', () => {
    const sign = ref('sign_ca_2023.pem');
    expect(
      checkTbsAgainstProfile(sign.tbs, JPKI_PROFILES.signCa, {
        issuer: sign.subject,
        now: sign.notBefore,
      }),
    ).toEqual([]);
    const auth = ref('auth_ca_2023.pem');
    expect(
      checkTbsAgainstProfile(auth.tbs, JPKI_PROFILES.authCa, {
        issuer: auth.subject,
        now: auth.notBefore,
      }),
    ).toEqual([]);
  });

  it('the dummy signing certificate deviates only where it is a dummy', () => {
    const d = ref('dummy_sign_cert_example.pem');
    expect(
      checkTbsAgainstProfile(d.tbs, JPKI_PROFILES.signing, { issuer: d.issuer, now: d.notBefore }),
    ).toEqual([
      'notAfter time of day is not 14:59:59 UTC',
      'subjectKeyIdentifier is not the SHA-1 of the subject public key',
    ]);
  });

  it('an authentication certificate built to the profile passes', () => {
    const tbs = buildTbsCertificate(
      input({
        subject: encodeName([
          { type: 'C', value: 'JP' },
          { type: 'CN', value: '12345678901234567890ABC' },
        ]),
        extensions: [
          keyUsage(['digitalSignature']),
          extendedKeyUsage([OIDS.clientAuth]),
          certificatePolicies([{ oid: '1.2.392.200149.8.5.1.0.30' }], true),
          issuerAltName([{ directoryName: caDn }]),
          crlDistributionPoints([[{ uri: 'http://crl.jpki.example/auth/13113.crl' }]]),
          authorityInfoAccess({ ocsp: ['http://ocsp.jpki.example/'] }),
          authorityKeyIdentifier({ keyId: keyIdentifier(ca.spki), issuer: caDn, serial: caSerial }),
          subjectKeyIdentifier(leaf.spki),
        ],
      }),
    );
    expect(check(tbs, JPKI_PROFILES.authentication)).toEqual([]);
    expect(check(buildTbsCertificate(input()), JPKI_PROFILES.authentication)).toContain(
      'extension subjectAltName is not in the profile',
    );
  });

  it('gates issueCertificate: nothing is signed when the check fails', async () => {
    const signer = {
      algorithm: 'sha256WithRSAEncryption' as const,
      sign: async (tbs: Buffer) => sign('sha256', tbs, ca.privateKey),
    };
    const gate = (tbs: Buffer) => checkTbsAgainstProfile(tbs, profile, expectation);
    const der = await issueCertificate(input(), signer, gate);
    expect(parseCertificate(der).serial).toBe(123456789n);
    const bad = input({ notAfter: new Date('2030-04-15T19:00:00Z') });
    await expect(issueCertificate(bad, signer, gate)).rejects.toThrow(CertificateCheckError);
    await expect(issueCertificate(bad, signer, gate)).rejects.toThrow(/time of day/);
  });
});

/** A TBSCertificate written by hand, for shapes buildTbsCertificate refuses to write. */
function rawTbs(o: {
  version?: Buffer;
  serial?: Buffer;
  alg?: Buffer;
  notBefore?: Date;
  notAfter?: Date;
}): Buffer {
  const i = input();
  return sequence(
    explicit(0, o.version ?? integer(2)),
    o.serial ?? integer(i.serial),
    o.alg ?? algorithmIdentifier('sha256WithRSAEncryption'),
    i.issuer,
    sequence(x509Time(o.notBefore ?? i.notBefore), x509Time(o.notAfter ?? i.notAfter)),
    i.subject,
    i.spki,
    explicit(
      3,
      sequence(
        ...i.extensions.map((e) =>
          e.critical
            ? sequence(oid(e.oid), Buffer.from('0101ff', 'hex'), tlv(0x04, e.value))
            : sequence(oid(e.oid), tlv(0x04, e.value)),
        ),
      ),
    ),
  );
}
