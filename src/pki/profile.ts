/**
 * Certificate profiles as data, and the check run on every prepared TBSCertificate before it
 * is signed (a linter: it reports, the caller refuses to sign). Pass it to
 * `issueCertificate(input, signer, (tbs) => checkTbsAgainstProfile(tbs, profile, expect))`.
 *
 * Problem messages name fields, OIDs, key sizes and limits only — never a value taken from
 * the certificate (names, addresses, dates of birth, identifiers, serials, dates), so they can
 * be logged and shown to operators.
 */
import { algorithmIdentifier, type SignatureAlgorithmName } from './algorithms.ts';
import { integer, parseDer, readOid, TAG } from './der.ts';
import {
  authorityKeyId,
  basicConstraintsOf,
  extKeyUsageOf,
  keyIdentifier,
  keyUsageOf,
  type KeyUsageBit,
  type NameAttributeType,
  OIDS,
  oidName,
  parseTbsCertificate,
  type ParsedTbsCertificate,
  spkiInfo,
  subjectAltNamesOf,
  subjectKeyId,
} from './x509.ts';

export type ProfileKey =
  | { type: 'rsa'; minBits: number; maxBits: number; publicExponent?: bigint }
  | { type: 'ec'; curve: 'P-256' | 'P-384' | 'P-521' };

export interface CertificateProfile {
  name: string;
  signatureAlgorithm: SignatureAlgorithmName;
  /** The subject key must match one of these. */
  keys: ProfileKey[];
  /** Subject attribute types, one per RDN, exactly in this order. */
  subject: NameAttributeType[];
  maxValidityDays: number;
  /** UTC time of day of notAfter, `HH:MM:SS` (JPKI: `14:59:59` = 23:59:59 JST). */
  notAfterTimeOfDay?: string;
  /** Exactly these extensions, in this order, with this criticality. */
  extensions: { oid: string; critical: boolean }[];
  /** When set: exactly these keyUsage bits. */
  keyUsage?: KeyUsageBit[];
  /** When set: exactly these extendedKeyUsage OIDs, in order. */
  extKeyUsage?: string[];
  /** When set: basicConstraints cA must be this (absent counts as false). */
  ca?: boolean;
}

export interface ProfileExpectation {
  /** The issuer Name DER, compared byte for byte. */
  issuer: Buffer;
  now: Date;
  /** When set and the TBS has an authorityKeyIdentifier, its keyIdentifier must equal this. */
  issuerKeyId?: Buffer;
}

const DAY_MS = 86_400_000;

const NAME_TYPE_OIDS: Record<string, NameAttributeType> = {
  [OIDS.countryName]: 'C',
  [OIDS.organizationName]: 'O',
  [OIDS.organizationalUnitName]: 'OU',
  [OIDS.localityName]: 'L',
  [OIDS.commonName]: 'CN',
  [OIDS.stateOrProvinceName]: 'ST',
  [OIDS.serialNumber]: 'serialNumber',
};

/** Subject attribute types per RDN (multi-valued RDNs joined with `+`), values unread. */
function subjectShape(subject: Buffer): { types: string[]; countryPrintable: boolean } {
  const types: string[] = [];
  let countryPrintable = true;
  for (const rdn of parseDer(subject).children) {
    const parts = rdn.children.map((atv) => {
      const dotted = readOid(atv.children[0], 'AttributeType');
      const type = NAME_TYPE_OIDS[dotted] ?? dotted;
      if (type === 'C' && atv.children[1]?.tag !== TAG.printableString) countryPrintable = false;
      return type;
    });
    types.push(rdn.tag === TAG.set && parts.length > 0 ? parts.join('+') : '?');
  }
  return { types, countryPrintable };
}

function timeOfDay(d: Date): string {
  return d.toISOString().slice(11, 19);
}

function keyAllowed(spki: Buffer, keys: readonly ProfileKey[]): string | null {
  let info;
  try {
    info = spkiInfo(spki);
  } catch {
    return 'subject public key is not a supported RSA or EC key';
  }
  const ok = keys.some((k) =>
    k.type === 'rsa'
      ? info.type === 'rsa' &&
        info.bits >= k.minBits &&
        info.bits <= k.maxBits &&
        (k.publicExponent === undefined || info.publicExponent === k.publicExponent)
      : info.type === 'ec' && info.curve === k.curve,
  );
  if (ok) return null;
  const desc =
    info.type === 'rsa'
      ? `RSA ${info.bits} bits, exponent ${String(info.publicExponent)}`
      : `EC ${String(info.curve)}`;
  return `subject public key (${desc}) is not allowed by the profile`;
}

/** Runs `f`, turning a thrown error into a problem that names `field` only. */
function guarded(problems: string[], field: string, f: () => void): void {
  try {
    f();
  } catch {
    problems.push(`${field} is malformed`);
  }
}

/**
 * The problems of `tbs` against `profile` (empty = conforming). Checks version, serial,
 * signature algorithm (with its parameters), issuer, validity, subject shape, key, the exact
 * extension list with criticality and order, subjectKeyIdentifier = SHA-1 of the key,
 * optional keyUsage/extKeyUsage/cA values and that every subjectAltName otherName is a
 * UTF8String.
 */
export function checkTbsAgainstProfile(
  tbs: Buffer,
  profile: CertificateProfile,
  expect: ProfileExpectation,
): string[] {
  let t: ParsedTbsCertificate;
  try {
    t = parseTbsCertificate(tbs);
  } catch (e) {
    // DerError messages name fields and OIDs only.
    return [`TBSCertificate does not parse: ${(e as Error).message}`];
  }
  const problems: string[] = [];

  if (t.version !== 3) problems.push('version is not 3');
  if (t.serial <= 0n) problems.push('serial is not positive');
  else if (integer(t.serial).length - 2 > 20) problems.push('serial is longer than 20 octets');

  if (!t.signatureAlgorithmId.equals(algorithmIdentifier(profile.signatureAlgorithm))) {
    problems.push(
      `signature algorithm is not ${profile.signatureAlgorithm}` +
        (profile.signatureAlgorithm === 'sha256WithRSAEncryption' ? ' with NULL parameters' : ''),
    );
  }
  if (!t.issuer.equals(expect.issuer)) problems.push('issuer differs from the issuing CA');

  const nb = t.notBefore.getTime();
  const na = t.notAfter.getTime();
  if (nb > na) problems.push('notBefore is after notAfter');
  if (Math.abs(nb - expect.now.getTime()) > DAY_MS) {
    problems.push('notBefore is more than 1 day away from now');
  }
  if (na - nb > profile.maxValidityDays * DAY_MS) {
    problems.push(`validity is longer than ${profile.maxValidityDays} days`);
  }
  if (
    profile.notAfterTimeOfDay !== undefined &&
    timeOfDay(t.notAfter) !== profile.notAfterTimeOfDay
  ) {
    problems.push(`notAfter time of day is not ${profile.notAfterTimeOfDay} UTC`);
  }

  guarded(problems, 'subject', () => {
    const { types, countryPrintable } = subjectShape(t.subject);
    if (types.join(',') !== profile.subject.join(',')) {
      problems.push(
        `subject attributes are ${types.join(', ') || '(none)'}, expected ${profile.subject.join(', ')}`,
      );
    }
    if (!countryPrintable) problems.push('subject C is not a PrintableString');
  });

  const keyProblem = keyAllowed(t.spki, profile.keys);
  if (keyProblem) problems.push(keyProblem);

  checkExtensionList(t, profile, problems);

  if (t.extensions.some((e) => e.oid === OIDS.subjectKeyIdentifier)) {
    guarded(problems, 'subjectKeyIdentifier', () => {
      if (!subjectKeyId(t)!.equals(keyIdentifier(t.spki))) {
        problems.push('subjectKeyIdentifier is not the SHA-1 of the subject public key');
      }
    });
  }
  if (expect.issuerKeyId && t.extensions.some((e) => e.oid === OIDS.authorityKeyIdentifier)) {
    guarded(problems, 'authorityKeyIdentifier', () => {
      const k = authorityKeyId(t);
      if (!k?.equals(expect.issuerKeyId!)) {
        problems.push("authorityKeyIdentifier is not the issuing CA's key identifier");
      }
    });
  }
  if (t.extensions.some((e) => e.oid === OIDS.subjectAltName)) {
    guarded(problems, 'subjectAltName', () => {
      for (const g of subjectAltNamesOf(t)!) {
        if ('unsupported' in g && g.unsupported.tag === 0xa0) {
          problems.push('subjectAltName otherName value is not a UTF8String');
        }
      }
    });
  }
  if (profile.keyUsage && t.extensions.some((e) => e.oid === OIDS.keyUsage)) {
    guarded(problems, 'keyUsage', () => {
      const got = [...keyUsageOf(t)!].sort().join(',');
      if (got !== [...profile.keyUsage!].sort().join(',')) {
        problems.push(`keyUsage is not ${profile.keyUsage!.join(', ')}`);
      }
    });
  }
  if (profile.extKeyUsage && t.extensions.some((e) => e.oid === OIDS.extKeyUsage)) {
    guarded(problems, 'extendedKeyUsage', () => {
      if (extKeyUsageOf(t)!.join(',') !== profile.extKeyUsage!.join(',')) {
        problems.push(`extendedKeyUsage is not ${profile.extKeyUsage!.map(oidName).join(', ')}`);
      }
    });
  }
  if (profile.ca !== undefined) {
    guarded(problems, 'basicConstraints', () => {
      const ca = basicConstraintsOf(t)?.ca ?? false;
      if (ca !== profile.ca) problems.push(`basicConstraints cA is not ${String(profile.ca)}`);
    });
  }
  return problems;
}

function checkExtensionList(
  t: ParsedTbsCertificate,
  profile: CertificateProfile,
  problems: string[],
): void {
  const want = new Map(profile.extensions.map((e) => [e.oid, e.critical]));
  const got = t.extensions.map((e) => e.oid);
  for (const e of profile.extensions) {
    if (!got.includes(e.oid)) problems.push(`extension ${oidName(e.oid)} is missing`);
  }
  for (const e of t.extensions) {
    const critical = want.get(e.oid);
    if (critical === undefined) problems.push(`extension ${oidName(e.oid)} is not in the profile`);
    else if (critical !== e.critical) {
      problems.push(`extension ${oidName(e.oid)} must ${critical ? '' : 'not '}be critical`);
    }
  }
  // Duplicates are rejected by parseTbsCertificate already (RFC 5280 §4.2).
  const present = got.filter((o) => want.has(o));
  const expected = profile.extensions.map((e) => e.oid).filter((o) => got.includes(o));
  if (present.join(',') !== expected.join(',')) {
    problems.push(
      `extensions are out of order: expected ${expected.map(oidName).join(', ')}; got ${present
        .map(oidName)
        .join(', ')}`,
    );
  }
}
