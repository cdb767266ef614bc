/** Key pairs, PKCS#10 requests and smartphone applications for JPKI tests. */
import { createHash, generateKeyPairSync, type KeyObject, sign as cryptoSign } from 'node:crypto';
import { bitString, integer, NULL, oid, sequence, tlv } from '../../src/pki/der.ts';
import { encodeName } from '../../src/pki/x509.ts';

export interface TestKey {
  privateKey: KeyObject;
  spki: Buffer;
  publicKeyPem: string;
}

export function rsaKey(bits = 2048): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  return {
    privateKey,
    spki: publicKey.export({ type: 'spki', format: 'der' }),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** A PKCS#10 request (PEM) for `key`, signed with sha256WithRSAEncryption by `signWith`. */
export function csrPem(key: TestKey, signWith: KeyObject = key.privateKey): string {
  const info = sequence(
    integer(0),
    encodeName([{ type: 'CN', value: 'applicant' }]),
    key.spki,
    tlv(0xa0, Buffer.alloc(0)),
  );
  const signature = cryptoSign('sha256', info, signWith);
  const der = sequence(info, sequence(oid('1.2.840.113549.1.1.11'), NULL), bitString(signature));
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN CERTIFICATE REQUEST-----\n${b64}\n-----END CERTIFICATE REQUEST-----\n`;
}

/** The body of `POST /v1/jpki/mobile-certificates`, signed with the card signing key. */
export function mobileApplication(opts: {
  kind: 'sign' | 'auth';
  phone: TestKey;
  cardKey: KeyObject;
  cardCertificate: string;
  record: { name: string; birthDate: string; sex: 'male' | 'female'; address: string };
  signedAt: Date;
  devicePublicKeySha256?: string;
}): Record<string, string> {
  const document = Buffer.from(
    JSON.stringify({
      type: 'kiban.jpki.mobile-application/v1',
      kind: opts.kind,
      name: opts.record.name,
      birthDate: opts.record.birthDate,
      sex: opts.record.sex,
      address: opts.record.address,
      devicePublicKeySha256:
        opts.devicePublicKeySha256 ?? createHash('sha256').update(opts.phone.spki).digest('hex'),
      signedAt: opts.signedAt.toISOString(),
    }),
    'utf8',
  );
  return {
    kind: opts.kind,
    csr: csrPem(opts.phone),
    cardCertificate: opts.cardCertificate,
    document: document.toString('base64'),
    signature: cryptoSign('sha256', document, opts.cardKey).toString('base64'),
  };
}
