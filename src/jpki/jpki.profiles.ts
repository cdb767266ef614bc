/**
 * The shapes of JPKI certificates (JPKI-PROFILE.md): the CA names, and the certificate
 * profiles checked on every prepared certificate before the CA signs it. Profiles are data;
 * the builders in issuance.ts and ca.ts must produce exactly what is listed here.
 */
import type { JpkiConfig } from '../config.ts';
import type { CertificateProfile } from '../pki/profile.ts';
import { encodeName, OIDS } from '../pki/x509.ts';

/** 署名用 / 利用者証明用. */
export type CertificateKind = 'sign' | 'auth';
export const CERTIFICATE_KINDS: readonly CertificateKind[] = ['sign', 'auth'];
/** 個人番号カード用 / 移動端末設備用. */
export type Medium = 'card' | 'mobile';

const KIND_OU: Record<CertificateKind, string> = {
  sign: 'JPKI for digital signature',
  auth: 'JPKI for user authentication',
};
const KIND_OU_JA: Record<CertificateKind, string> = {
  sign: '公的個人認証サービス署名用',
  auth: '公的個人認証サービス利用者証明用',
};

/** The CA's subject and issuer: `C=JP, O=JPKI, OU=<kind>, OU=<agency>` (no CN). */
export function caName(kind: CertificateKind, cfg: Pick<JpkiConfig, 'organisation'>): Buffer {
  return encodeName([
    { type: 'C', value: 'JP' },
    { type: 'O', value: 'JPKI' },
    { type: 'OU', value: KIND_OU[kind] },
    { type: 'OU', value: cfg.organisation },
  ]);
}

/** The Japanese directoryName in the CA's subjectAltName and the leaves' issuerAltName. */
export function caJapaneseName(
  kind: CertificateKind,
  cfg: Pick<JpkiConfig, 'organisationJa'>,
): Buffer {
  return encodeName([
    { type: 'C', value: 'JP' },
    { type: 'O', value: '公的個人認証サービス' },
    { type: 'OU', value: KIND_OU_JA[kind] },
    { type: 'OU', value: cfg.organisationJa },
  ]);
}

/**
 * A municipality's CRL distribution point name:
 * `C=JP, O=JPKI, OU=<kind>, OU=CRL Distribution Points, OU=<Prefecture>, CN=<City> CRLDP`.
 */
export function crlDistributionPointName(
  kind: CertificateKind,
  prefectureRomaji: string,
  municipalityRomaji: string,
): Buffer {
  return encodeName([
    { type: 'C', value: 'JP' },
    { type: 'O', value: 'JPKI' },
    { type: 'OU', value: KIND_OU[kind] },
    { type: 'OU', value: 'CRL Distribution Points' },
    { type: 'OU', value: prefectureRomaji },
    { type: 'CN', value: `${municipalityRomaji} CRLDP` },
  ]);
}

/** The responder's subject: the CA's name plus `CN=OCSP Responder <generation>`. */
export function responderName(
  kind: CertificateKind,
  generation: number,
  cfg: Pick<JpkiConfig, 'organisation'>,
): Buffer {
  return encodeName([
    { type: 'C', value: 'JP' },
    { type: 'O', value: 'JPKI' },
    { type: 'OU', value: KIND_OU[kind] },
    { type: 'OU', value: cfg.organisation },
    { type: 'CN', value: `OCSP Responder ${generation}` },
  ]);
}

export function policyOid(
  cfg: Pick<JpkiConfig, 'policies'>,
  kind: CertificateKind,
  medium: Medium,
): string {
  const p = cfg.policies;
  if (kind === 'sign') return medium === 'card' ? p.signCard : p.signMobile;
  return medium === 'card' ? p.authCard : p.authMobile;
}

const RSA_KEYS: CertificateProfile['keys'] = [
  { type: 'rsa', minBits: 2048, maxBits: 4096, publicExponent: 65537n },
];
const CA_KEYS: CertificateProfile['keys'] = [
  { type: 'rsa', minBits: 2048, maxBits: 4096, publicExponent: 65537n },
];

/** A self-signed root, shaped like sign_ca_2023.pem / auth_ca_2023.pem. */
export const CA_PROFILE: CertificateProfile = {
  name: 'jpki-ca',
  signatureAlgorithm: 'sha256WithRSAEncryption',
  keys: CA_KEYS,
  subject: ['C', 'O', 'OU', 'OU'],
  maxValidityDays: 366 * 30,
  notAfterTimeOfDay: '14:59:59',
  extensions: [
    { oid: OIDS.keyUsage, critical: true },
    { oid: OIDS.subjectAltName, critical: false },
    { oid: OIDS.basicConstraints, critical: true },
    { oid: OIDS.cRLDistributionPoints, critical: false },
    { oid: OIDS.subjectKeyIdentifier, critical: false },
  ],
  keyUsage: ['keyCertSign', 'cRLSign'],
  ca: true,
};

/** 署名用電子証明書: the order of dummy_sign_cert_example.pem. */
export const SIGN_PROFILE: CertificateProfile = {
  name: 'jpki-sign',
  signatureAlgorithm: 'sha256WithRSAEncryption',
  keys: RSA_KEYS,
  subject: ['C', 'L', 'L', 'CN'],
  // To the holder's 5th birthday after issuance: at most 5 years and a day.
  maxValidityDays: 1828,
  notAfterTimeOfDay: '14:59:59',
  extensions: [
    { oid: OIDS.keyUsage, critical: true },
    { oid: OIDS.subjectAltName, critical: false },
    { oid: OIDS.certificatePolicies, critical: true },
    { oid: OIDS.issuerAltName, critical: false },
    { oid: OIDS.cRLDistributionPoints, critical: false },
    { oid: OIDS.authorityKeyIdentifier, critical: false },
    { oid: OIDS.subjectKeyIdentifier, critical: false },
  ],
  keyUsage: ['digitalSignature', 'nonRepudiation'],
  ca: false,
};

/** 利用者証明用電子証明書: no personal data at all. */
export const AUTH_PROFILE: CertificateProfile = {
  name: 'jpki-auth',
  signatureAlgorithm: 'sha256WithRSAEncryption',
  keys: RSA_KEYS,
  subject: ['C', 'CN'],
  maxValidityDays: 1828,
  notAfterTimeOfDay: '14:59:59',
  extensions: [
    { oid: OIDS.keyUsage, critical: true },
    { oid: OIDS.extKeyUsage, critical: false },
    { oid: OIDS.certificatePolicies, critical: true },
    { oid: OIDS.issuerAltName, critical: false },
    { oid: OIDS.cRLDistributionPoints, critical: false },
    { oid: OIDS.authorityInfoAccess, critical: false },
    { oid: OIDS.authorityKeyIdentifier, critical: false },
    { oid: OIDS.subjectKeyIdentifier, critical: false },
  ],
  keyUsage: ['digitalSignature'],
  extKeyUsage: [OIDS.clientAuth],
  ca: false,
};

/** The delegated OCSP responder (RFC 6960 §4.2.2.2): short-lived, never checked itself. */
export const RESPONDER_PROFILE: CertificateProfile = {
  name: 'jpki-ocsp-responder',
  signatureAlgorithm: 'sha256WithRSAEncryption',
  keys: RSA_KEYS,
  subject: ['C', 'O', 'OU', 'OU', 'CN'],
  maxValidityDays: 100,
  extensions: [
    { oid: OIDS.keyUsage, critical: true },
    { oid: OIDS.extKeyUsage, critical: false },
    { oid: OIDS.ocspNoCheck, critical: false },
    { oid: OIDS.authorityKeyIdentifier, critical: false },
    { oid: OIDS.subjectKeyIdentifier, critical: false },
  ],
  keyUsage: ['digitalSignature'],
  extKeyUsage: [OIDS.OCSPSigning],
  ca: false,
};

export const PROFILE_OF: Record<CertificateKind, CertificateProfile> = {
  sign: SIGN_PROFILE,
  auth: AUTH_PROFILE,
};
