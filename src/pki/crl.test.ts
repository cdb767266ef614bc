import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  issueWithOpenssl,
  makeOpensslCa,
  makeTempDir,
  type TempDir,
  type TestCertificate,
} from '../../test/support/openssl.ts';
import {
  buildCrl,
  CRL_OIDS,
  type CrlEntry,
  type CrlInput,
  crlToPem,
  parseCrlSummary,
} from './crl.ts';
import {
  contextTag,
  DerError,
  explicit,
  fromPem,
  oid,
  parseDer,
  sequence,
  setOf,
  TAG,
  tlv,
  utf8String,
} from './der.ts';

const HOUR = 3_600_000;
const now = new Date(Math.floor(Date.now() / 1000) * 1000);
const thisUpdate = new Date(now.getTime() - HOUR);
const nextUpdate = new Date(now.getTime() + 7 * 24 * HOUR);

const LEAF_SERIAL = 0x1234n;
const DP_LEAF_SERIAL = 0x5678n;
const CRL_URI = 'http://crl.example/ca.crl';

let dir: TempDir;
let ca: TestCertificate;
let leaf: TestCertificate; // no CRL distribution point
let dpLeaf: TestCertificate; // CRLDP fullName = URI + directoryName

beforeAll(() => {
  dir = makeTempDir('kiban-crl-');
  ca = makeOpensslCa(dir);
  leaf = issueWithOpenssl(dir, ca, {
    name: 'leaf',
    subject: '/CN=Leaf',
    serial: LEAF_SERIAL,
    extensions: [
      'basicConstraints = critical,CA:FALSE',
      'keyUsage = critical,digitalSignature',
      'authorityKeyIdentifier = keyid',
    ],
  });
  dpLeaf = issueWithOpenssl(dir, ca, {
    name: 'dp-leaf',
    subject: '/CN=Leaf with CRLDP',
    serial: DP_LEAF_SERIAL,
    extensions: [
      'basicConstraints = critical,CA:FALSE',
      'keyUsage = critical,digitalSignature',
      'authorityKeyIdentifier = keyid',
      'crlDistributionPoints = crldp',
    ],
    extraConfig: [
      '[crldp]',
      `fullname = URI:${CRL_URI}, dirName:dp_dn`,
      '[dp_dn]',
      'O = Kiban Test',
      'CN = CRL 1',
    ],
  });
});
afterAll(() => dir?.remove());

/** The CA's subject key identifier (from its SKI extension). */
const caKeyId = (): Buffer => {
  const ski = ca.parts.extensions.get('2.5.29.14');
  if (!ski) throw new Error('CA has no SKI');
  return parseDer(ski.value).content;
};

const crlOf = (entries: CrlInput['entries'], extra: Partial<CrlInput> = {}): Promise<Buffer> =>
  buildCrl(
    {
      issuer: ca.parts.subject,
      thisUpdate,
      nextUpdate,
      crlNumber: 7n,
      authorityKeyId: caKeyId(),
      entries,
      ...extra,
    },
    ca.signer,
  );

/** Writes the CRL as DER and PEM; returns the file names. */
function writeCrl(name: string, der: Buffer): { der: string; pem: string } {
  return { der: dir.write(`${name}.der`, der), pem: dir.write(`${name}.pem`, crlToPem(der)) };
}

const verifyWithCrl = (crlPem: string, cert: TestCertificate) =>
  dir.run(['verify', '-crl_check', '-CAfile', ca.certPath, '-CRLfile', crlPem, cert.certPath]);

const output = (r: { stdout: string; stderr: string }): string => r.stdout + r.stderr;

describe('buildCrl checked by openssl', () => {
  it('signs a CRL with three entries whose reasons openssl reads (none for unspecified)', async () => {
    const revokedAt = new Date(now.getTime() - 2 * HOUR);
    const der = await crlOf([
      { serial: 0x1001n, revokedAt, reason: 'keyCompromise' },
      { serial: 0x1002n, revokedAt, reason: 'superseded' },
      { serial: 0x1003n, revokedAt, reason: 'unspecified' },
    ]);
    const files = writeCrl('three', der);
    const r = dir.run([
      'crl',
      '-inform',
      'DER',
      '-in',
      files.der,
      '-noout',
      '-text',
      '-CAfile',
      ca.certPath,
    ]);
    expect(r.status).toBe(0);
    expect(output(r)).toContain('verify OK');
    const text = r.stdout;
    expect(text).toContain('Version 2 (0x1)');
    expect(text).toMatch(/CRL Number: \n\s+7\n/);
    expect(text).toContain('X509v3 Authority Key Identifier');
    const blocks = text.split('Serial Number: ').slice(1);
    expect(blocks).toHaveLength(3);
    expect(blocks[0]).toMatch(/^1001\n/);
    expect(blocks[0]).toContain('Key Compromise');
    expect(blocks[1]).toMatch(/^1002\n/);
    expect(blocks[1]).toContain('Superseded');
    expect(blocks[2]).toMatch(/^1003\n/);
    expect(blocks[2]).not.toContain('CRL entry extensions');
    expect(blocks[2]).not.toContain('Unspecified');

    const summary = parseCrlSummary(der);
    expect(summary.version).toBe(2);
    expect(summary.issuer.equals(ca.parts.subject)).toBe(true);
    expect(summary.thisUpdate).toEqual(thisUpdate);
    expect(summary.nextUpdate).toEqual(nextUpdate);
    expect(summary.crlNumber).toBe(7n);
    expect(summary.authorityKeyId?.equals(caKeyId())).toBe(true);
    expect(summary.issuingDistributionPoint).toBeNull();
    expect(summary.signatureAlgorithm).toBe('1.2.840.113549.1.1.11');
    expect(summary.entries).toEqual([
      { serial: 0x1001n, revokedAt, reason: 'keyCompromise' },
      { serial: 0x1002n, revokedAt, reason: 'superseded' },
      { serial: 0x1003n, revokedAt, reason: null },
    ]);
  });

  it('revokes an openssl-issued leaf once its serial is listed (verify -crl_check)', async () => {
    const before = writeCrl('before', await crlOf([]));
    const r1 = verifyWithCrl(before.pem, leaf);
    expect(r1.status, output(r1)).toBe(0);
    expect(r1.stdout).toContain(': OK');

    const revokedAt = new Date(now.getTime() - 2 * HOUR);
    const after = writeCrl(
      'after',
      await crlOf([
        { serial: 0x1000n, revokedAt, reason: 'superseded' },
        { serial: LEAF_SERIAL, revokedAt, reason: 'keyCompromise' },
      ]),
    );
    const r2 = verifyWithCrl(after.pem, leaf);
    expect(r2.status).not.toBe(0);
    expect(output(r2)).toContain('error 23');
    expect(output(r2)).toContain('certificate revoked');
    // Without an IDP the CRL also covers a certificate that names a distribution point.
    const r3 = verifyWithCrl(after.pem, dpLeaf);
    expect(r3.status, output(r3)).toBe(0);
  });

  it('writes an empty CRL without revokedCertificates, and openssl verifies it', async () => {
    const der = await crlOf([]);
    const tbs = parseDer(der).children[0]!;
    // version, signature, issuer, thisUpdate, nextUpdate, [0] crlExtensions — no SEQUENCE OF.
    expect(tbs.children.map((c) => c.tag)).toEqual([
      TAG.integer,
      TAG.sequence,
      TAG.sequence,
      TAG.utcTime,
      TAG.utcTime,
      contextTag(0, true),
    ]);
    const files = writeCrl('empty', der);
    const r = dir.run(['crl', '-in', files.pem, '-noout', '-CAfile', ca.certPath]);
    expect(r.status).toBe(0);
    expect(output(r)).toContain('verify OK');
    expect(parseCrlSummary(der).entryCount).toBe(0);
  });

  it('builds a 100,000-entry CRL from an async iterable that openssl verifies and counts', async () => {
    const revokedAt = new Date(now.getTime() - 24 * HOUR);
    const base = 0x20000001a1b2c3d4e5f60718n << 32n;
    async function* entries(): AsyncGenerator<CrlEntry> {
      for (let i = 0; i < 99_999; i++) {
        yield {
          serial: base + BigInt(i),
          revokedAt: new Date(revokedAt.getTime() + i * 1000),
          reason: i % 3 === 0 ? 'keyCompromise' : null,
        };
      }
      yield { serial: LEAF_SERIAL, revokedAt, reason: 'cessationOfOperation' };
    }
    const der = await crlOf(entries());
    const files = writeCrl('big', der);
    const r = dir.run([
      'crl',
      '-inform',
      'DER',
      '-in',
      files.der,
      '-noout',
      '-CAfile',
      ca.certPath,
    ]);
    expect(r.status).toBe(0);
    expect(output(r)).toContain('verify OK');
    const text = dir.run(['crl', '-in', files.pem, '-noout', '-text']);
    expect(text.status).toBe(0);
    expect(text.stdout.match(/Serial Number: /g)).toHaveLength(100_000);
    expect(text.stdout.match(/Key Compromise/g)).toHaveLength(33_333);
    const v = verifyWithCrl(files.pem, leaf);
    expect(output(v)).toContain('certificate revoked');

    const summary = parseCrlSummary(der);
    expect(summary.entryCount).toBe(100_000);
    expect(summary.entries[1]).toEqual({
      serial: base + 1n,
      revokedAt: new Date(revokedAt.getTime() + 1000),
      reason: null,
    });
    expect(summary.entries[99_999]).toEqual({
      serial: LEAF_SERIAL,
      revokedAt,
      reason: 'cessationOfOperation',
    });
    expect(() => parseCrlSummary(der, { maxEntries: 99_999 })).toThrow(DerError);
    expect(() => parseCrlSummary(der, { maxBytes: der.length - 1 })).toThrow(DerError);
  });
});

describe('issuingDistributionPoint against the certificate CRLDP (openssl 3.0)', () => {
  const uri = (s: string): Buffer => tlv(contextTag(6, false), Buffer.from(s, 'latin1'));
  const dpName = (): Buffer =>
    explicit(
      4,
      sequence(
        setOf(sequence(oid('2.5.4.10'), utf8String('Kiban Test'))),
        setOf(sequence(oid('2.5.4.3'), utf8String('CRL 1'))),
      ),
    );
  const fullName = (): Buffer => Buffer.concat([uri(CRL_URI), dpName()]);
  const revoked = (serial: bigint): CrlEntry => ({
    serial,
    revokedAt: new Date(now.getTime() - HOUR),
    reason: 'keyCompromise',
  });

  async function verdict(
    name: string,
    cert: TestCertificate,
    idp: NonNullable<CrlInput['issuingDistributionPoint']>,
    entries: CrlEntry[],
  ): Promise<string> {
    const files = writeCrl(name, await crlOf(entries, { issuingDistributionPoint: idp }));
    const r = verifyWithCrl(files.pem, cert);
    if (r.status === 0) return 'OK';
    const m = /error (\d+) at \d+ depth lookup: (.*)/.exec(output(r));
    return m ? `error ${m[1]}: ${m[2]}` : output(r);
  }

  it('our fullName encoding equals the CRLDP fullName openssl wrote into the leaf', () => {
    const crldp = dpLeaf.parts.extensions.get('2.5.29.31');
    expect(crldp).toBeDefined();
    // CRLDistributionPoints → DistributionPoint → [0] distributionPoint → [0] fullName
    const names = parseDer(crldp!.value).children[0]!.children[0]!.children[0]!;
    expect(names.tag).toBe(contextTag(0, true));
    expect(names.content.equals(fullName())).toBe(true);
  });

  it('writes the IDP as a critical extension that openssl parses', async () => {
    const der = await crlOf([], {
      issuingDistributionPoint: { fullName: fullName(), onlyContainsUserCerts: true },
    });
    const exts = parseDer(der).children[0]!.children.at(-1)!.children[0]!.children;
    const idp = exts.find((e) =>
      e.children[0]!.bytes.equals(oid(CRL_OIDS.issuingDistributionPoint)),
    );
    expect(idp?.children[1]!.bytes.toString('hex')).toBe('0101ff');
    const files = writeCrl('idp-text', der);
    const r = dir.run(['crl', '-in', files.pem, '-noout', '-text', '-CAfile', ca.certPath]);
    expect(output(r)).toContain('verify OK');
    expect(r.stdout).toContain('X509v3 Issuing Distribution Point: critical');
    expect(r.stdout).toContain(`URI:${CRL_URI}`);
    expect(r.stdout).toContain('DirName:O = Kiban Test, CN = CRL 1');
    expect(r.stdout).toContain('Only User Certificates');
    expect(parseCrlSummary(der).issuingDistributionPoint).not.toBeNull();
  });

  it('matching fullName: OK before the serial is listed, revoked after', async () => {
    const idp = { fullName: fullName(), onlyContainsUserCerts: true };
    expect(await verdict('idp-ok', dpLeaf, idp, [revoked(0x1n)])).toBe('OK');
    expect(await verdict('idp-rev', dpLeaf, idp, [revoked(DP_LEAF_SERIAL)])).toBe(
      'error 23: certificate revoked',
    );
  });

  it('one common name is enough: an IDP naming only the URI matches', async () => {
    const idp = { fullName: uri(CRL_URI) };
    expect(await verdict('idp-uri-ok', dpLeaf, idp, [])).toBe('OK');
    expect(await verdict('idp-uri-rev', dpLeaf, idp, [revoked(DP_LEAF_SERIAL)])).toBe(
      'error 23: certificate revoked',
    );
  });

  it('a different fullName, or a certificate without CRLDP, is outside the CRL scope (error 44)', async () => {
    const other = { fullName: uri('http://crl.example/other.crl') };
    expect(await verdict('idp-other', dpLeaf, other, [revoked(DP_LEAF_SERIAL)])).toBe(
      'error 44: different CRL scope',
    );
    const idp = { fullName: fullName() };
    expect(await verdict('idp-nodp', leaf, idp, [revoked(LEAF_SERIAL)])).toBe(
      'error 44: different CRL scope',
    );
  });

  it('an IDP with only onlyContainsUserCerts (no fullName) covers certificates without CRLDP', async () => {
    const idp = { onlyContainsUserCerts: true };
    expect(await verdict('idp-flag-ok', leaf, idp, [])).toBe('OK');
    expect(await verdict('idp-flag-rev', leaf, idp, [revoked(LEAF_SERIAL)])).toBe(
      'error 23: certificate revoked',
    );
    expect(await verdict('idp-flag-dp', dpLeaf, idp, [revoked(DP_LEAF_SERIAL)])).toBe(
      'error 23: certificate revoked',
    );
  });

  it('onlyContainsCACerts puts an end-entity certificate out of scope', async () => {
    const idp = { fullName: fullName(), onlyContainsCACerts: true };
    expect(await verdict('idp-ca-only', dpLeaf, idp, [revoked(DP_LEAF_SERIAL)])).toBe(
      'error 44: different CRL scope',
    );
  });
});

describe('buildCrl encoding', () => {
  const fakeSigner = {
    algorithm: 'sha256WithRSAEncryption' as const,
    sign: async () => Buffer.alloc(256, 0x5a),
  };
  const build = (entries: CrlEntry[], extra: Partial<CrlInput> = {}): Promise<Buffer> =>
    buildCrl(
      {
        issuer: sequence(setOf(sequence(oid('2.5.4.3'), utf8String('X')))),
        thisUpdate,
        nextUpdate,
        crlNumber: 1n,
        authorityKeyId: Buffer.alloc(20, 1),
        entries,
        ...extra,
      },
      fakeSigner,
    );
  const entryNodes = (der: Buffer) => parseDer(der).children[0]!.children[5]!.children;
  const at = new Date('2026-01-02T03:04:05Z');

  it('encodes serial 0x80 as 02 02 00 80 and keeps minimal INTEGERs', async () => {
    const der = await build([
      { serial: 0x80n, revokedAt: at, reason: null },
      { serial: 0x7fn, revokedAt: at, reason: null },
      { serial: 0xff00n, revokedAt: at, reason: null },
      { serial: (1n << 158n) + 1n, revokedAt: at, reason: null },
    ]);
    const serials = entryNodes(der).map((e) => e.children[0]!.bytes.toString('hex'));
    expect(serials[0]).toBe('02020080');
    expect(serials[1]).toBe('02017f');
    expect(serials[2]).toBe('020300ff00');
    expect(serials[3]).toBe('0214' + '4' + '0'.repeat(38) + '1');
    expect(der.includes(Buffer.from('3013' + '02020080' + '170d', 'hex'))).toBe(true);
  });

  it('writes no crlEntryExtensions for null or unspecified (never 30 00)', async () => {
    const der = await build([
      { serial: 1n, revokedAt: at, reason: null },
      { serial: 2n, revokedAt: at, reason: 'unspecified' },
      { serial: 3n, revokedAt: at, reason: 'certificateHold' },
    ]);
    const entries = entryNodes(der);
    expect(entries.map((e) => e.children.length)).toEqual([2, 2, 3]);
    expect(entries[2]!.children[2]!.bytes.toString('hex')).toBe('300c300a0603551d1504030a0106');
    expect(der.includes(Buffer.from('3000', 'hex'))).toBe(false);
  });

  it('truncates to whole seconds and writes GeneralizedTime from 2050', async () => {
    const der = await build([
      { serial: 1n, revokedAt: new Date('2050-01-01T00:00:00.999Z'), reason: null },
      { serial: 2n, revokedAt: new Date('2049-12-31T23:59:59.500Z'), reason: null },
    ]);
    const times = entryNodes(der).map((e) => e.children[1]!);
    expect(times[0]!.tag).toBe(TAG.generalizedTime);
    expect(times[0]!.content.toString()).toBe('20500101000000Z');
    expect(times[1]!.tag).toBe(TAG.utcTime);
    expect(times[1]!.content.toString()).toBe('491231235959Z');
    expect(parseCrlSummary(der).entries.map((e) => e.revokedAt.toISOString())).toEqual([
      '2050-01-01T00:00:00.000Z',
      '2049-12-31T23:59:59.000Z',
    ]);
  });

  it('rejects invalid input', async () => {
    const one = (e: Partial<CrlEntry>): CrlEntry[] => [
      { serial: 1n, revokedAt: at, reason: null, ...e },
    ];
    await expect(build(one({ serial: -1n }))).rejects.toThrow(RangeError);
    await expect(build(one({ serial: 1n << 159n }))).rejects.toThrow(/20 octets/);
    await expect(build(one({ revokedAt: new Date(Number.NaN) }))).rejects.toThrow(RangeError);
    await expect(build(one({ reason: 'removeFromCRL' }))).rejects.toThrow(/delta/);
    await expect(build([], { nextUpdate: thisUpdate })).rejects.toThrow(/nextUpdate/);
    await expect(
      build([], {
        issuingDistributionPoint: { onlyContainsCACerts: true, onlyContainsUserCerts: true },
      }),
    ).rejects.toThrow(RangeError);
    await expect(build([], { issuingDistributionPoint: {} })).rejects.toThrow(/empty/);
  });

  it('labels PEM as X509 CRL and round-trips', async () => {
    const der = await build([]);
    const pem = crlToPem(der);
    expect(pem.startsWith('-----BEGIN X509 CRL-----\n')).toBe(true);
    expect(fromPem(pem, 'X509 CRL').equals(der)).toBe(true);
  });

  it('parseCrlSummary is strict', async () => {
    const der = await build([{ serial: 1n, revokedAt: at, reason: 'keyCompromise' }]);
    expect(() => parseCrlSummary(Buffer.concat([der, Buffer.from([0])]))).toThrow(DerError);
    expect(() => parseCrlSummary(der.subarray(0, der.length - 1))).toThrow(DerError);
    // An empty revokedCertificates SEQUENCE is not DER for "no entries".
    const empty = await build([]);
    const tbs = parseDer(empty).children[0]!;
    const withEmptyList = sequence(
      sequence(
        ...tbs.children.slice(0, 5).map((c) => c.bytes),
        Buffer.from('3000', 'hex'),
        tbs.children[5]!.bytes,
      ),
      ...parseDer(empty)
        .children.slice(1)
        .map((c) => c.bytes),
    );
    expect(() => parseCrlSummary(withEmptyList)).toThrow(/empty/);
  });
});
