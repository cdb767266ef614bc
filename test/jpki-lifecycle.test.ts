/**
 * The JPKI CA through its life: smartphone issuance authorised by the card signing key
 * (第16条の2), issuer key compromise with mass revocation and public announcement (第14条),
 * CA rollover, recovery of issuance interrupted between recording and storing, CA keys in a
 * PKCS#11 token (SoftHSM2), a CRL of 100,000 entries checked by openssl, and the `kiban ca`,
 * `kiban crl` and `kiban jpki` commands.
 *
 * Artefacts checked by openssl are made with a FakeClock set to the real current time (whole
 * seconds), because openssl checks validity against the real clock.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { CaGeneration } from '../src/jpki/ca.ts';
import type { CertificateKind } from '../src/jpki/jpki.profiles.ts';
import { FakeClock } from '../src/platform/clock.ts';
import { type Database, openDatabase } from '../src/platform/db.ts';
import { CLI_ACTOR } from '../src/platform/install.ts';
import { parseCrlSummary } from '../src/pki/crl.ts';
import { fromPem, parseDer, readOid, sequence } from '../src/pki/der.ts';
import { certIdFor, type OcspCertStatus, parseOcspResponse } from '../src/pki/ocsp.ts';
import {
  authorityKeyId,
  extension,
  OIDS,
  parseCertificate,
  type ParsedCertificate,
} from '../src/pki/x509.ts';
import { createTestApp, type TestApp } from './support/app.ts';
import { makeTempDir, type TempDir } from './support/openssl.ts';
import { csrPem, mobileApplication, rsaKey, type TestKey } from './support/pki.ts';
import { baseRecord, newResident, type Resident } from './support/registry.ts';
import { createSoftHsmToken, SOFTHSM_MODULE, type SoftHsmToken } from './support/softhsm.ts';

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** The real current time in whole seconds: what openssl checks validity against. */
const realNow = (): FakeClock => new FakeClock(new Date(Math.floor(Date.now() / 1000) * 1000));

type Municipality = 'municipality' | 'municipality2';
const CODE_OF: Record<Municipality, string> = { municipality: '131016', municipality2: '141046' };

interface Registered extends Resident {
  record: ReturnType<typeof baseRecord>;
}

const sequences = new WeakMap<TestApp, Map<string, number>>();

/** Registers a newborn in the actor's municipality (a `birth` notification). */
async function registerResident(t: TestApp, actor: Municipality, n: number): Promise<Registered> {
  const municipalityCode = CODE_OF[actor];
  const r = await newResident(t, actor);
  let seq = sequences.get(t);
  if (!seq) sequences.set(t, (seq = new Map<string, number>()));
  const sequence = (seq.get(municipalityCode) ?? 0) + 1;
  seq.set(municipalityCode, sequence);
  const record = {
    ...baseRecord(r),
    name: `試験\u3000${'一二三四五六七八九'[n % 9]}子`,
    birthDate: `2026-0${1 + (n % 9)}-1${n % 10}`,
  };
  const res = await t.app.inject({
    method: 'POST',
    url: '/v1/registry/notifications',
    headers: t.auth(actor),
    payload: {
      municipalityCode,
      sequence,
      changeReason: 'birth',
      changeDate: record.birthDate,
      record,
    },
  });
  expect(res.statusCode, res.body).toBe(201);
  return { ...r, record };
}

interface Issued {
  serial: string;
  certificate: string;
  der: Buffer;
  parsed: ParsedCertificate;
}

function issuedFrom(body: { serial: string; certificate: string }): Issued {
  const der = fromPem(body.certificate, 'CERTIFICATE');
  return { ...body, der, parsed: parseCertificate(der) };
}

/** POST /v1/jpki/certificates (card) with a CSR for `key`; returns the raw response. */
function requestCard(
  t: TestApp,
  residentCode: string,
  kind: CertificateKind,
  key: TestKey,
  actor: Municipality = 'municipality',
) {
  return t.app.inject({
    method: 'POST',
    url: '/v1/jpki/certificates',
    headers: t.auth(actor),
    payload: { kind, medium: 'card', residentCode, csr: csrPem(key) },
  });
}

async function issueCard(
  t: TestApp,
  residentCode: string,
  kind: CertificateKind,
  key: TestKey = rsaKey(),
  actor: Municipality = 'municipality',
): Promise<Issued> {
  const res = await requestCard(t, residentCode, kind, key, actor);
  expect(res.statusCode, res.body).toBe(201);
  return issuedFrom(res.json<{ serial: string; certificate: string }>());
}

function postMobile(t: TestApp, body: Record<string, string>) {
  return t.app.inject({ method: 'POST', url: '/v1/jpki/mobile-certificates', payload: body });
}

async function revokeViaApi(t: TestApp, serial: string, reason = 'request'): Promise<void> {
  const res = await t.app.inject({
    method: 'POST',
    url: `/v1/jpki/certificates/${serial}/revocation`,
    headers: t.auth('municipality'),
    payload: { reason },
  });
  expect(res.statusCode, res.body).toBe(201);
}

const VERIFIER_OF: Record<CertificateKind, string> = {
  sign: 'signatureVerifier',
  auth: 'authVerifier',
};

/** Asks the responder about `serial` under `ca` (CertID with SHA-1, no nonce). */
async function ocsp(
  t: TestApp,
  ca: CaGeneration,
  serial: string | bigint,
): Promise<{ status: OcspCertStatus; der: Buffer; responderKeyHash: Buffer | null }> {
  const { certId } = certIdFor(ca.subject, ca.spki, BigInt(serial), 'sha1');
  const res = await t.app.inject({
    method: 'POST',
    url: `/ocsp/${ca.kind}`,
    headers: { ...t.auth(VERIFIER_OF[ca.kind]), 'content-type': 'application/ocsp-request' },
    payload: sequence(sequence(sequence(sequence(certId)))),
  });
  expect(res.statusCode).toBe(200);
  const der = res.rawPayload;
  const parsed = parseOcspResponse(der);
  expect(parsed.status).toBe('successful');
  const single = parsed.basic?.responses[0];
  if (!single) throw new Error('no SingleResponse');
  return { status: single.status, der, responderKeyHash: parsed.basic?.responderKeyHash ?? null };
}

async function fetchCrl(
  t: TestApp,
  kind: CertificateKind,
  file: string,
  generation?: number,
): Promise<Buffer> {
  const res = await t.app.inject({
    url: `/crl/${kind}/${file}.crl${generation ? `?generation=${generation}` : ''}`,
    headers: t.auth(VERIFIER_OF[kind]),
  });
  expect(res.statusCode, res.body).toBe(200);
  expect(res.headers['content-type']).toBe('application/pkix-crl');
  return res.rawPayload;
}

const policyOidsOf = (cert: ParsedCertificate): { oids: string[]; critical: boolean } => {
  const ext = extension(cert, OIDS.certificatePolicies);
  if (!ext) throw new Error('no certificatePolicies');
  return {
    oids: parseDer(ext.value).children.map((p) => readOid(p.children[0], 'policyIdentifier')),
    critical: ext.critical,
  };
};

const hexSha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

let fileCounter = 0;
/** `openssl verify` of a leaf against one CA (optionally with a CRL and -crl_check). */
function opensslVerify(
  dir: TempDir,
  caDer: Buffer,
  leaf: Issued | Buffer,
  crlDer?: Buffer,
): { ok: boolean; output: string } {
  const n = ++fileCounter;
  const ca = dir.writePem(`ca-${n}.pem`, caDer, 'CERTIFICATE');
  const cert = dir.writePem(
    `leaf-${n}.pem`,
    Buffer.isBuffer(leaf) ? leaf : leaf.der,
    'CERTIFICATE',
  );
  const args = ['verify', '-CAfile', ca];
  if (crlDer) args.push('-crl_check', '-CRLfile', dir.writePem(`crl-${n}.pem`, crlDer, 'X509 CRL'));
  const r = dir.run([...args, cert]);
  return { ok: r.status === 0 && r.stdout.includes(': OK'), output: r.stdout + r.stderr };
}

/** `openssl crl -CAfile` signature check of a DER CRL. */
function opensslCrlVerify(dir: TempDir, caDer: Buffer, crlDer: Buffer): string {
  const n = ++fileCounter;
  const ca = dir.writePem(`ca-${n}.pem`, caDer, 'CERTIFICATE');
  const crl = dir.write(`crl-${n}.der`, crlDer);
  const r = dir.run(['crl', '-inform', 'DER', '-in', crl, '-CAfile', ca, '-noout']);
  return r.stdout + r.stderr;
}

async function rowsOf(t: TestApp, sql: string, params: unknown[] = []) {
  return (await t.database.db.query<Record<string, unknown>>(sql, params)).rows;
}

// ---------------------------------------------------------------------------------------------
// 1. Smartphone issuance (第16条の2 / 第35条の2)
// ---------------------------------------------------------------------------------------------

describe('mobile issuance authorised by the card signing key', () => {
  let t: TestApp;
  let dir: TempDir;
  let holder: Registered;
  let cardKey: TestKey;
  let card: Issued;
  let signCa: CaGeneration;
  let firstMobile: Issued;

  const application = (
    over: Partial<Parameters<typeof mobileApplication>[0]> = {},
  ): Record<string, string> =>
    mobileApplication({
      kind: 'sign',
      phone: rsaKey(),
      cardKey: cardKey.privateKey,
      cardCertificate: card.certificate,
      record: holder.record,
      signedAt: t.clock.now(),
      ...over,
    });

  const expectRefused = async (body: Record<string, string>, code: string): Promise<void> => {
    const before = await rowsOf(t, 'SELECT count(*)::int AS n FROM jpki_certificates');
    const res = await postMobile(t, body);
    expect(res.statusCode, res.body).toBe(403);
    expect(res.json()).toMatchObject({ code });
    // A refused application leaves no issuance record.
    expect(await rowsOf(t, 'SELECT count(*)::int AS n FROM jpki_certificates')).toEqual(before);
  };

  beforeAll(async () => {
    t = await createTestApp({ jpki: true, clock: realNow() });
    dir = makeTempDir('kiban-jpki-mobile-');
    holder = await registerResident(t, 'municipality', 1);
    cardKey = rsaKey();
    card = await issueCard(t, holder.residentCode, 'sign', cardKey);
    signCa = await t.services.jpki.cas.current(t.database.db, 'sign');
  });
  afterAll(async () => {
    await t.close();
    dir.remove();
  });

  it('issues a mobile signing certificate for the phone key (201), shaped and valid', async () => {
    const phone = rsaKey();
    const body = application({ phone });
    // The document is exactly the MobileApplicationDocument the holder signed.
    expect(JSON.parse(Buffer.from(body['document'] ?? '', 'base64').toString('utf8'))).toEqual({
      type: 'kiban.jpki.mobile-application/v1',
      kind: 'sign',
      name: holder.record.name,
      birthDate: holder.record.birthDate,
      sex: holder.record.sex,
      address: holder.record.address,
      devicePublicKeySha256: hexSha256(phone.spki),
      signedAt: t.clock.now().toISOString(),
    });
    const res = await postMobile(t, body);
    expect(res.statusCode, res.body).toBe(201);
    firstMobile = issuedFrom(res.json());
    expect(BigInt(firstMobile.serial)).toBeGreaterThan(BigInt(card.serial));
    expect(firstMobile.parsed.spki.equals(phone.spki)).toBe(true);
    expect(policyOidsOf(firstMobile.parsed)).toEqual({
      oids: ['2.999.8.5.1.2.20'],
      critical: true,
    });
    expect(policyOidsOf(card.parsed).oids).toEqual(['2.999.8.5.1.1.20']);
    // Validity follows the card certificate.
    expect(firstMobile.parsed.notAfter.toISOString()).toBe(card.parsed.notAfter.toISOString());
    expect(authorityKeyId(firstMobile.parsed)?.equals(signCa.keyId)).toBe(true);
    const v = opensslVerify(dir, signCa.certificate, firstMobile);
    expect(v.ok, v.output).toBe(true);
    const rows = await rowsOf(
      t,
      'SELECT medium, kind, state, authorised_by::text AS a FROM jpki_certificates WHERE serial = $1',
      [firstMobile.serial],
    );
    expect(rows).toEqual([{ medium: 'mobile', kind: 'sign', state: 'issued', a: card.serial }]);
  });

  it('a second phone supersedes the first mobile certificate, not the card certificate', async () => {
    const res = await postMobile(t, application());
    expect(res.statusCode, res.body).toBe(201);
    const second = issuedFrom(res.json());
    const revoked = await rowsOf(
      t,
      `SELECT serial::text AS serial, crl_reason, superseded_by::text AS by
         FROM jpki_revocations ORDER BY serial`,
    );
    expect(revoked).toEqual([
      { serial: firstMobile.serial, crl_reason: 'superseded', by: second.serial },
    ]);
    expect((await ocsp(t, signCa, firstMobile.serial)).status).toMatchObject({
      type: 'revoked',
      reason: 'superseded',
    });
    expect((await ocsp(t, signCa, card.serial)).status).toEqual({ type: 'good' });
    expect((await ocsp(t, signCa, second.serial)).status).toEqual({ type: 'good' });
  });

  it('refuses a document signed by another key (forged)', async () => {
    await expectRefused(application({ cardKey: rsaKey().privateKey }), 'jpki.mobile-bad-signature');
  });

  it('refuses basic-4 information that differs from the registry record', async () => {
    await expectRefused(
      application({ record: { ...holder.record, address: '東京都千代田区千代田2番2号' } }),
      'jpki.mobile-basic-four-mismatch',
    );
    await expectRefused(
      application({ record: { ...holder.record, name: '別人\u3000花子' } }),
      'jpki.mobile-basic-four-mismatch',
    );
  });

  it('refuses a document that names another device key', async () => {
    await expectRefused(
      application({ devicePublicKeySha256: hexSha256(rsaKey().spki) }),
      'jpki.mobile-key-not-bound',
    );
  });

  it('refuses a stale application (signed more than 15 minutes ago)', async () => {
    const stale = new Date(t.clock.now().getTime() - 16 * 60e3);
    await expectRefused(application({ signedAt: stale }), 'jpki.mobile-bad-document');
  });

  it('refuses mobile auth while the holder has no card authentication certificate', async () => {
    await expectRefused(application({ kind: 'auth' }), 'jpki.mobile-no-card-auth-certificate');
  });

  it('refuses an application made with the card authentication certificate', async () => {
    const authKey = rsaKey();
    const authCard = await issueCard(t, holder.residentCode, 'auth', authKey);
    await expectRefused(
      application({ cardKey: authKey.privateKey, cardCertificate: authCard.certificate }),
      'jpki.mobile-not-a-card-signing-certificate',
    );
  });

  it('issues mobile auth once the holder has a card authentication certificate', async () => {
    const res = await postMobile(t, application({ kind: 'auth' }));
    expect(res.statusCode, res.body).toBe(201);
    const mobileAuth = issuedFrom(res.json());
    expect(policyOidsOf(mobileAuth.parsed).oids).toEqual(['2.999.8.5.1.4.30']);
    const authCa = await t.services.jpki.cas.current(t.database.db, 'auth');
    expect(authorityKeyId(mobileAuth.parsed)?.equals(authCa.keyId)).toBe(true);
    const v = opensslVerify(dir, authCa.certificate, mobileAuth);
    expect(v.ok, v.output).toBe(true);
  });

  it('refuses an application signed with a revoked card certificate', async () => {
    await revokeViaApi(t, card.serial);
    await expectRefused(application(), 'jpki.mobile-card-certificate-revoked');
  });
});

// ---------------------------------------------------------------------------------------------
// 2. 発行者署名符号の漏えい等 (第14条/第33条)
// ---------------------------------------------------------------------------------------------

describe('issuer key compromise (kiban ca compromise)', () => {
  let t: TestApp;
  let dir: TempDir;
  let db: Database;
  let a: Registered;
  let b: Registered;
  let signGen1: CaGeneration;
  let authGen1: CaGeneration;
  let signA: Issued;
  let signB: Issued;
  let authA: Issued;
  let mobileA: Issued;
  let cardKeyA: TestKey;

  beforeAll(async () => {
    t = await createTestApp({ jpki: true, clock: realNow() });
    db = t.database.db;
    dir = makeTempDir('kiban-jpki-compromise-');
    a = await registerResident(t, 'municipality', 2);
    b = await registerResident(t, 'municipality2', 3);
    cardKeyA = rsaKey();
    signA = await issueCard(t, a.residentCode, 'sign', cardKeyA);
    signB = await issueCard(t, b.residentCode, 'sign', rsaKey(), 'municipality2');
    authA = await issueCard(t, a.residentCode, 'auth');
    const m = await postMobile(
      t,
      mobileApplication({
        kind: 'sign',
        phone: rsaKey(),
        cardKey: cardKeyA.privateKey,
        cardCertificate: signA.certificate,
        record: a.record,
        signedAt: t.clock.now(),
      }),
    );
    expect(m.statusCode, m.body).toBe(201);
    mobileA = issuedFrom(m.json());
    signGen1 = await t.services.jpki.cas.get(db, 'sign', 1);
    authGen1 = await t.services.jpki.cas.get(db, 'auth', 1);
  });
  afterAll(async () => {
    await t.close();
    dir.remove();
  });

  it('revokes every certificate of the generation with cACompromise and announces it', async () => {
    const { revocations, cas, crls } = t.services.jpki;
    // The compromise is recorded while another certificate is being signed with that key
    // (recorded 'pending' before, stored after): that certificate is never handed out.
    const c = await registerResident(t, 'municipality', 9);
    const signerFor = cas.signerFor.bind(cas);
    let r: { revoked: number; announcementId: string } | undefined;
    // The CA's signer is read when the certificate is recorded; the compromise runs when it signs.
    const spy = vi.spyOn(cas, 'signerFor').mockImplementationOnce(async (q, ca) => {
      const signer = await signerFor(q, ca);
      return {
        algorithm: signer.algorithm,
        sign: async (tbs: Buffer) => {
          r = await revocations.issuerKeyCompromise(db, cas, CLI_ACTOR, signGen1);
          return signer.sign(tbs);
        },
      };
    });
    const inFlight = await requestCard(t, c.residentCode, 'sign', rsaKey());
    spy.mockRestore();
    expect(inFlight.statusCode, inFlight.body).toBe(503);
    expect(inFlight.json()).toMatchObject({ code: 'jpki.issuance-abandoned' });
    expect(
      await rowsOf(
        t,
        `SELECT state FROM jpki_certificates
          WHERE person_id = (SELECT id FROM persons WHERE resident_code = $1)`,
        [c.residentCode],
      ),
    ).toEqual([{ state: 'abandoned' }]);
    if (!r) throw new Error('the compromise did not run');
    expect(r.revoked).toBe(3);
    const rows = await rowsOf(
      t,
      `SELECT serial::text AS serial, category, crl_reason FROM jpki_revocations ORDER BY serial`,
    );
    expect(rows).toEqual(
      [signA, signB, mobileA]
        .map((c) => c.serial)
        .sort((x, y) => Number(BigInt(x) - BigInt(y)))
        .map((serial) => ({ serial, category: 'issuerKeyCompromise', crl_reason: 'cACompromise' })),
    );
    // 公示: public, no credential needed.
    const ann = await t.app.inject({ url: '/v1/jpki/announcements' });
    expect(ann.statusCode).toBe(200);
    const list = ann.json<{ announcements: Record<string, unknown>[] }>().announcements;
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({
      id: r.announcementId,
      category: 'issuerKeyCompromise',
      kind: 'sign',
      generation: 1,
      revokedCount: 3,
      announcedAt: t.clock.now().toISOString(),
    });
    expect(String(list[0]?.['text'])).toContain('3件');
    // A second compromise of the same key is refused.
    await expect(revocations.issuerKeyCompromise(db, cas, CLI_ACTOR, signGen1)).rejects.toThrow(
      /already recorded as compromised/,
    );

    for (const c of [signA, signB, mobileA]) {
      expect((await ocsp(t, signGen1, c.serial)).status).toEqual({
        type: 'revoked',
        revokedAt: t.clock.now(),
        reason: 'cACompromise',
      });
    }

    // The CLI republishes that generation's CRLs: each partition lists its certificates, the
    // ARL lists the CA certificate itself.
    await crls.publish(db, CLI_ACTOR, { kinds: ['sign'], generation: 1 });
    const tokyo = parseCrlSummary(await fetchCrl(t, 'sign', '131016'));
    expect(tokyo.entries.map((e) => [e.serial.toString(), e.reason])).toEqual([
      [signA.serial, 'cACompromise'],
      [mobileA.serial, 'cACompromise'],
    ]);
    const yokohamaDer = await fetchCrl(t, 'sign', '141046');
    const yokohama = parseCrlSummary(yokohamaDer);
    expect(yokohama.entries.map((e) => [e.serial.toString(), e.reason])).toEqual([
      [signB.serial, 'cACompromise'],
    ]);
    const arlDer = await fetchCrl(t, 'sign', 'arl');
    const arl = parseCrlSummary(arlDer);
    expect(arl.entries).toEqual([
      { serial: signGen1.serial, revokedAt: t.clock.now(), reason: 'cACompromise' },
    ]);
    expect(arl.authorityKeyId?.equals(signGen1.keyId)).toBe(true);
    expect(opensslCrlVerify(dir, signGen1.certificate, arlDer)).toContain('verify OK');
    expect(opensslCrlVerify(dir, signGen1.certificate, yokohamaDer)).toContain('verify OK');
    const v = opensslVerify(dir, signGen1.certificate, signB, yokohamaDer);
    expect(v.ok).toBe(false);
    expect(v.output).toContain('certificate revoked');
  });

  it('refuses new signing certificates (422 jpki.no-active-ca) until a rollover', async () => {
    const before = await rowsOf(t, 'SELECT count(*)::int AS n FROM jpki_certificates');
    const res = await requestCard(t, a.residentCode, 'sign', rsaKey());
    expect(res.statusCode, res.body).toBe(422);
    expect(res.json()).toMatchObject({ code: 'jpki.no-active-ca' });
    expect(await rowsOf(t, 'SELECT count(*)::int AS n FROM jpki_certificates')).toEqual(before);
    // The authentication CA is a different key: it keeps issuing.
    const auth = await issueCard(t, b.residentCode, 'auth', rsaKey(), 'municipality2');
    expect(authorityKeyId(auth.parsed)?.equals(authGen1.keyId)).toBe(true);
  });

  it('issues again from generation 2 after rollover; generation 1 stays published', async () => {
    const gen2 = await t.services.jpki.cas.rollover(db, 'sign', CLI_ACTOR);
    expect(gen2.generation).toBe(2);
    expect(gen2.keyId.equals(signGen1.keyId)).toBe(false);
    const fresh = await issueCard(t, a.residentCode, 'sign');
    expect(authorityKeyId(fresh.parsed)?.equals(gen2.keyId)).toBe(true);
    expect(fresh.parsed.issuer.equals(signGen1.subject)).toBe(true);
    const ok = opensslVerify(dir, gen2.certificate, fresh);
    expect(ok.ok, ok.output).toBe(true);
    // Not against the compromised key.
    expect(opensslVerify(dir, signGen1.certificate, fresh).ok).toBe(false);
    expect((await ocsp(t, gen2, fresh.serial)).status).toEqual({ type: 'good' });
    // The new certificate's serial is unknown under the old key and vice versa.
    expect((await ocsp(t, signGen1, fresh.serial)).status).toEqual({ type: 'unknown' });
    expect((await ocsp(t, gen2, signA.serial)).status).toEqual({ type: 'unknown' });

    const list = await t.app.inject({ url: '/v1/jpki/ca' });
    expect(list.statusCode).toBe(200);
    const cas = list.json<{
      cas: { kind: string; generation: number; compromised: boolean; certificate: string }[];
    }>().cas;
    expect(cas.map((c) => [c.kind, c.generation, c.compromised])).toEqual([
      ['auth', 1, false],
      ['sign', 1, true],
      ['sign', 2, false],
    ]);
    expect(fromPem(cas[2]?.certificate ?? '', 'CERTIFICATE').equals(gen2.certificate)).toBe(true);

    // The newest CRL of the partition is generation 2's (published at its first certificate);
    // generation 1's stays fetchable by number.
    const newest = parseCrlSummary(await fetchCrl(t, 'sign', '131016'));
    expect(newest.authorityKeyId?.equals(gen2.keyId)).toBe(true);
    expect(newest.entries).toEqual([]);
    const oldDer = await fetchCrl(t, 'sign', '131016', 1);
    const old = parseCrlSummary(oldDer);
    expect(old.authorityKeyId?.equals(signGen1.keyId)).toBe(true);
    expect(old.entries.map((e) => e.serial.toString())).toEqual([signA.serial, mobileA.serial]);
    expect(opensslCrlVerify(dir, signGen1.certificate, oldDer)).toContain('verify OK');
  });

  it('leaves the authentication CA and its certificates alone', async () => {
    expect((await ocsp(t, authGen1, authA.serial)).status).toEqual({ type: 'good' });
    const v = opensslVerify(dir, authGen1.certificate, authA);
    expect(v.ok, v.output).toBe(true);
    const authRevoked = await rowsOf(
      t,
      "SELECT count(*)::int AS n FROM jpki_revocations WHERE kind = 'auth'",
    );
    expect(authRevoked).toEqual([{ n: 0 }]);
    expect((await t.services.jpki.cas.get(db, 'auth', 1)).compromisedAt).toBeNull();
  });
});

// ---------------------------------------------------------------------------------------------
// 3. Rollover without compromise
// ---------------------------------------------------------------------------------------------

describe('CA rollover without compromise', () => {
  let t: TestApp;
  let dir: TempDir;
  let db: Database;

  beforeAll(async () => {
    t = await createTestApp({ jpki: true, clock: realNow() });
    db = t.database.db;
    dir = makeTempDir('kiban-jpki-rollover-');
  });
  afterAll(async () => {
    await t.close();
    dir.remove();
  });

  it('keeps generation 1 certificates valid and answered while generation 2 issues', async () => {
    const { cas } = t.services.jpki;
    const c = await registerResident(t, 'municipality', 4);
    const d = await registerResident(t, 'municipality', 5);
    const gen1 = await cas.get(db, 'sign', 1);
    const old = await issueCard(t, c.residentCode, 'sign');
    // The responder has read the CA list before the rollover.
    expect((await ocsp(t, gen1, old.serial)).status).toEqual({ type: 'good' });
    const gen2 = await cas.rollover(db, 'sign', CLI_ACTOR);
    expect((await cas.current(db, 'sign')).generation).toBe(2);
    const fresh = await issueCard(t, d.residentCode, 'sign');

    expect(authorityKeyId(old.parsed)?.equals(gen1.keyId)).toBe(true);
    expect(authorityKeyId(fresh.parsed)?.equals(gen2.keyId)).toBe(true);
    const v1 = opensslVerify(dir, gen1.certificate, old);
    expect(v1.ok, v1.output).toBe(true);
    const v2 = opensslVerify(dir, gen2.certificate, fresh);
    expect(v2.ok, v2.output).toBe(true);
    // Same subject, different keys: each certificate chains only to its own generation.
    expect(opensslVerify(dir, gen2.certificate, old).ok).toBe(false);

    // The responder picks the generation from issuerKeyHash and answers with its responder.
    const r1 = await ocsp(t, gen1, old.serial);
    const r2 = await ocsp(t, gen2, fresh.serial);
    expect(r1.status).toEqual({ type: 'good' });
    expect(r2.status).toEqual({ type: 'good' });
    const responder1 = await cas.responder(db, gen1);
    const responder2 = await cas.responder(db, gen2);
    expect(r1.responderKeyHash?.equals(responder1!.keyHash)).toBe(true);
    expect(r2.responderKeyHash?.equals(responder2!.keyHash)).toBe(true);
    // openssl agrees, checking the responder chain to each generation.
    for (const [n, ca, cert, resp] of [
      [1, gen1, old, r1.der],
      [2, gen2, fresh, r2.der],
    ] as const) {
      const caPath = dir.writePem(`roll-ca${n}.pem`, ca.certificate, 'CERTIFICATE');
      const leafPath = dir.writePem(`roll-leaf${n}.pem`, cert.der, 'CERTIFICATE');
      const respPath = dir.write(`roll-resp${n}.der`, resp);
      const o = dir.run([
        'ocsp',
        '-respin',
        respPath,
        '-issuer',
        caPath,
        '-CAfile',
        caPath,
        '-cert',
        leafPath,
      ]);
      expect(o.stdout + o.stderr).toContain('Response verify OK');
      expect(o.stdout).toContain(`${leafPath}: good`);
    }
  });

  it('serves the newest CRL of a partition, whatever the number of publications', async () => {
    const { crls } = t.services.jpki;
    // cRLNumbers past 9 (ordering them as text would serve "9" after "10").
    for (let i = 0; i < 10; i++) {
      await crls.publish(db, CLI_ACTOR, { kinds: ['sign'], generation: 1, partitions: ['131016'] });
    }
    const newest = await rowsOf(
      t,
      `SELECT max(crl_number)::text AS n FROM jpki_crls
        WHERE kind = 'sign' AND generation = 1 AND partition = '131016'`,
    );
    expect(BigInt(String(newest[0]?.['n']))).toBeGreaterThanOrEqual(10n);
    const served = parseCrlSummary(await fetchCrl(t, 'sign', '131016', 1));
    expect(served.crlNumber?.toString()).toBe(newest[0]?.['n']);
  });
});

// ---------------------------------------------------------------------------------------------
// 4. A crash between recording and storing
// ---------------------------------------------------------------------------------------------

describe('issuance interrupted between recording and storing (kiban jpki recover)', () => {
  let t: TestApp;
  let db: Database;

  beforeAll(async () => {
    t = await createTestApp({ jpki: true, clock: realNow() });
    db = t.database.db;
  });
  afterAll(async () => t.close());

  it('leaves a visible pending record that recovery abandons, superseding nothing', async () => {
    const { cas, issuance } = t.services.jpki;
    const e = await registerResident(t, 'municipality', 6);
    const previous = await issueCard(t, e.residentCode, 'sign');
    const ca = await cas.current(db, 'sign');

    const key = rsaKey();
    // The signer is read with the pending record; the signature itself fails.
    const signerFor = cas.signerFor.bind(cas);
    const spy = vi.spyOn(cas, 'signerFor').mockImplementationOnce(async (q, c) => ({
      algorithm: (await signerFor(q, c)).algorithm,
      sign: () => Promise.reject(new Error('HSM unreachable')),
    }));
    const failed = await requestCard(t, e.residentCode, 'sign', key);
    spy.mockRestore();
    expect(failed.statusCode).toBe(500);
    expect(failed.body).not.toContain('HSM unreachable');

    const pending = await rowsOf(
      t,
      `SELECT serial::text AS serial, state, certificate, issued_at FROM jpki_certificates
        WHERE person_id = (SELECT person_id FROM jpki_certificates WHERE serial = $1)
          AND serial <> $1`,
      [previous.serial],
    );
    const serial = String(pending[0]?.['serial']);
    expect(pending).toEqual([{ serial, state: 'pending', certificate: null, issued_at: null }]);
    expect(BigInt(serial)).toBeGreaterThan(BigInt(previous.serial));
    expect((await ocsp(t, ca, serial)).status).toEqual({ type: 'unknown' });
    // The failed attempt superseded nothing.
    expect((await ocsp(t, ca, previous.serial)).status).toEqual({ type: 'good' });
    expect(await rowsOf(t, 'SELECT serial FROM jpki_revocations')).toEqual([]);

    // Recovery (what `kiban jpki recover` and the scheduler run), a second later.
    t.clock.advance(1000);
    expect(await issuance.abandonStale(db, CLI_ACTOR, 0)).toEqual([serial]);
    expect(
      await rowsOf(t, 'SELECT state FROM jpki_certificates WHERE serial = $1', [serial]),
    ).toEqual([{ state: 'abandoned' }]);
    const audit = await rowsOf(
      t,
      "SELECT actor_name, subject FROM audit_log WHERE action = 'jpki.certificate.abandon'",
    );
    expect(audit).toEqual([{ actor_name: CLI_ACTOR.name, subject: serial }]);
    expect(await issuance.abandonStale(db, CLI_ACTOR, 0)).toEqual([]);
    expect((await ocsp(t, ca, serial)).status).toEqual({ type: 'unknown' });
    expect((await ocsp(t, ca, previous.serial)).status).toEqual({ type: 'good' });

    // The same key may be used again once the attempt is abandoned; that issuance supersedes.
    const retry = issuedFrom((await requestCard(t, e.residentCode, 'sign', key)).json());
    expect(BigInt(retry.serial)).toBeGreaterThan(BigInt(serial));
    expect((await ocsp(t, ca, previous.serial)).status).toMatchObject({
      type: 'revoked',
      reason: 'superseded',
    });
  });
});

// ---------------------------------------------------------------------------------------------
// 5. CA keys in a PKCS#11 token (SoftHSM2)
// ---------------------------------------------------------------------------------------------

describe('PKCS#11 CA end to end (SoftHSM2)', () => {
  let token: SoftHsmToken;
  let t: TestApp;
  let dir: TempDir;

  beforeAll(async () => {
    token = createSoftHsmToken('kiban-jpki-ca');
    dir = makeTempDir('kiban-jpki-hsm-');
    t = await createTestApp({
      jpki: true,
      clock: realNow(),
      env: {
        KIBAN_PKCS11_MODULE: SOFTHSM_MODULE,
        KIBAN_PKCS11_TOKEN: token.config.tokenLabel,
        KIBAN_PKCS11_PIN: token.config.pin,
      },
    });
  });
  afterAll(async () => {
    // The HSM session is closed with the app, before the token directory goes.
    await t?.close();
    token?.cleanup();
    dir?.remove();
  });

  it('creates the CA keys in the token, issues and publishes CRLs that openssl verifies', async () => {
    const keys = await rowsOf(
      t,
      `SELECT label, backend, wrapped_key IS NULL AS unwrapped, token_key_id IS NOT NULL AS in_token
         FROM key_store WHERE label LIKE 'jpki/%-ca/%' ORDER BY label`,
    );
    expect(keys).toEqual([
      { label: 'jpki/auth-ca/1', backend: 'pkcs11', unwrapped: true, in_token: true },
      { label: 'jpki/sign-ca/1', backend: 'pkcs11', unwrapped: true, in_token: true },
    ]);
    const db = t.database.db;
    const ca = await t.services.jpki.cas.get(db, 'sign', 1);
    // The root is self-signed through the token.
    const root = opensslVerify(dir, ca.certificate, ca.certificate);
    expect(root.ok, root.output).toBe(true);

    const holder = await registerResident(t, 'municipality', 7);
    const cert = await issueCard(t, holder.residentCode, 'sign');
    const v = opensslVerify(dir, ca.certificate, cert);
    expect(v.ok, v.output).toBe(true);

    await revokeViaApi(t, cert.serial, 'lossReport');
    await t.services.jpki.crls.publish(db, CLI_ACTOR, { kinds: ['sign'] });
    const crl = await fetchCrl(t, 'sign', '131016');
    expect(parseCrlSummary(crl).entries.map((e) => [e.serial.toString(), e.reason])).toEqual([
      [cert.serial, 'keyCompromise'],
    ]);
    expect(opensslCrlVerify(dir, ca.certificate, crl)).toContain('verify OK');
    const arl = await fetchCrl(t, 'sign', 'arl');
    expect(opensslCrlVerify(dir, ca.certificate, arl)).toContain('verify OK');
    const revoked = opensslVerify(dir, ca.certificate, cert, crl);
    expect(revoked.ok).toBe(false);
    expect(revoked.output).toContain('certificate revoked');
  });

  it('rolls over to a second generation whose key is also created in the token', async () => {
    const db = t.database.db;
    const gen2 = await t.services.jpki.cas.rollover(db, 'sign', CLI_ACTOR);
    expect(
      await rowsOf(t, 'SELECT backend, wrapped_key FROM key_store WHERE label = $1', [
        gen2.keyLabel,
      ]),
    ).toEqual([{ backend: 'pkcs11', wrapped_key: null }]);
    const holder = await registerResident(t, 'municipality', 10);
    const cert = await issueCard(t, holder.residentCode, 'sign');
    expect(authorityKeyId(cert.parsed)?.equals(gen2.keyId)).toBe(true);
    const v = opensslVerify(dir, gen2.certificate, cert);
    expect(v.ok, v.output).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// 6. A CRL of 100,000 entries
// ---------------------------------------------------------------------------------------------

describe('a 100,000-entry CRL partition', () => {
  const COUNT = 100_000;
  const FIRST = 10_000_001n;
  let t: TestApp;
  let dir: TempDir;

  beforeAll(async () => {
    t = await createTestApp({ jpki: true, clock: realNow() });
    dir = makeTempDir('kiban-jpki-bigcrl-');
  });
  afterAll(async () => {
    await t.close();
    dir.remove();
  });

  it('is published, served and verified by openssl', async () => {
    const db = t.database.db;
    const holder = await registerResident(t, 'municipality', 8);
    const real = await issueCard(t, holder.residentCode, 'sign');
    await revokeViaApi(t, real.serial);
    const row = (
      await db.query<{ person_id: string; not_after: Date }>(
        'SELECT person_id, not_after FROM jpki_certificates WHERE serial = $1',
        [real.serial],
      )
    ).rows[0]!;
    const now = t.clock.now();
    // Minimal issued certificates and their revocations, straight into the tables.
    await db.query(
      `INSERT INTO jpki_certificates (serial, kind, medium, ca_generation, person_id,
         resident_code, municipality_code, state, tbs, certificate, public_key_sha256,
         not_before, not_after, created_at, issued_at, retain_until)
       SELECT $1::bigint + g, 'sign', 'card', 1, $2, $3, '131016', 'issued', '\\x30'::bytea,
              '\\x30'::bytea, sha256(int8send($1::bigint + g)), $4, $5, $4, $4, '2100-01-01'
         FROM generate_series(0, $6::int - 1) AS g`,
      [FIRST.toString(), row.person_id, holder.residentCode, now, row.not_after, COUNT],
    );
    await db.query(
      `INSERT INTO jpki_revocations (serial, kind, ca_generation, category, crl_reason,
         revoked_at, retain_until, epoch)
       SELECT $1::bigint + g, 'sign', 1,
              (ARRAY['request', 'lossReport', 'recordError'])[g % 3 + 1],
              (ARRAY['cessationOfOperation', 'keyCompromise', 'affiliationChanged'])[g % 3 + 1],
              $2, '2100-01-01', 0
         FROM generate_series(0, $3::int - 1) AS g`,
      [FIRST.toString(), now, COUNT],
    );

    const report = await t.services.jpki.crls.publish(db, CLI_ACTOR, {
      kinds: ['sign'],
      partitions: ['131016'],
    });
    expect(report).toMatchObject({ crls: 1, entries: COUNT + 1 });
    const der = await fetchCrl(t, 'sign', '131016');
    const summary = parseCrlSummary(der);
    expect(summary.entryCount).toBe(COUNT + 1);
    expect(summary.entries[0]?.serial.toString()).toBe(real.serial);
    expect(summary.entries[COUNT]).toEqual({
      serial: FIRST + BigInt(COUNT - 1),
      revokedAt: now,
      reason: 'cessationOfOperation',
    });

    const ca = await t.services.jpki.cas.get(db, 'sign', 1);
    expect(opensslCrlVerify(dir, ca.certificate, der)).toContain('verify OK');
    const crlPath = dir.write('big.crl', der);
    const text = dir.run(['crl', '-inform', 'DER', '-in', crlPath, '-noout', '-text']);
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout.match(/Serial Number: /g)).toHaveLength(COUNT + 1);
    const revoked = opensslVerify(dir, ca.certificate, real, der);
    expect(revoked.ok).toBe(false);
    expect(revoked.output).toContain('certificate revoked');
  });
});

// ---------------------------------------------------------------------------------------------
// 7. The command line: kiban ca, kiban crl publish, kiban jpki recover
// ---------------------------------------------------------------------------------------------

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = path.join(ROOT, 'bin', 'kiban.js');
const PG_URL = process.env['DATABASE_URL'] ?? null;

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node bin/kiban.js …` as a user would (as test/cli.test.ts does). */
function kiban(args: string[], env: Record<string, string>): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`kiban ${args.join(' ')} timed out\n${stdout}\n${stderr}`));
    }, 45_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe(`kiban ca / crl / jpki commands on ${PG_URL ? 'postgres' : 'pglite'}`, () => {
  let dataDir: string;
  let env: Record<string, string>;
  let schema: string | null = null;
  let admin: Database | null = null;
  const args = (...a: string[]): string[] => [...a, '--data', dataDir];
  /** The installation's database, opened while no kiban process holds it. */
  const open = (): Promise<Database> =>
    PG_URL && schema
      ? openDatabase({ engine: 'postgres', url: PG_URL, schema, poolSize: 1 })
      : openDatabase({ engine: 'pglite', dataDir: path.join(dataDir, 'pglite') });
  const withDb = async <T>(fn: (db: Database) => Promise<T>): Promise<T> => {
    const db = await open();
    try {
      return await fn(db);
    } finally {
      await db.close();
    }
  };

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'kiban-jpki-cli-'));
    env = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (v !== undefined && k !== 'DATABASE_URL' && !k.startsWith('KIBAN_')) env[k] = v;
    }
    if (PG_URL) {
      schema = `kiban_jcli_${randomBytes(6).toString('hex')}`;
      admin = await openDatabase({ engine: 'postgres', url: PG_URL, poolSize: 1 });
      await admin.query(`CREATE SCHEMA ${schema}`);
      const sep = PG_URL.includes('?') ? '&' : '?';
      env['DATABASE_URL'] =
        `${PG_URL}${sep}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
    }
  });
  afterAll(async () => {
    if (admin && schema) {
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
      await admin.close();
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('init creates generation 1 of both CAs, with their keys', async () => {
    const r = await kiban(args('init'), env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/keys created: .*jpki\/sign-ca\/1/);
    expect(r.stdout).toMatch(/keys created: .*jpki\/auth-ca\/1/);
    const rows = await withDb(
      async (db) =>
        (
          await db.query<{ kind: string; generation: number; backend: string }>(
            `SELECT c.kind, c.generation, k.backend FROM jpki_cas c
               JOIN key_store k ON k.label = c.key_label ORDER BY c.kind, c.generation`,
          )
        ).rows,
    );
    expect(rows).toEqual([
      { kind: 'auth', generation: 1, backend: 'software' },
      { kind: 'sign', generation: 1, backend: 'software' },
    ]);
  });

  it('ca rollover sign adds generation 2; ca list shows every generation', async () => {
    const roll = await kiban(args('ca', 'rollover', 'sign'), env);
    expect(roll.code, roll.stderr).toBe(0);
    expect(roll.stdout).toMatch(
      /^created sign CA generation 2 \(serial \d+, key jpki\/sign-ca\/2\)$/m,
    );
    expect(roll.stdout).toContain('published 1 CRL(s) for it');
    const list = await kiban(args('ca', 'list'), env);
    expect(list.code, list.stderr).toBe(0);
    const lines = list.stdout.trim().split('\n');
    expect(lines.map((l) => l.split('\t').slice(0, 2))).toEqual([
      ['auth', 'generation 1'],
      ['sign', 'generation 1'],
      ['sign', 'generation 2'],
    ]);
    expect(list.stdout).not.toContain('COMPROMISED');
  });

  it('crl publish writes a CRL set for every live generation', async () => {
    const r = await kiban(args('crl', 'publish'), env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual([
      'auth generation 1: 1 CRL(s), 0 entries',
      'sign generation 1: 1 CRL(s), 0 entries',
      'sign generation 2: 1 CRL(s), 0 entries',
    ]);
    const arls = await withDb(
      async (db) =>
        (
          await db.query<{ kind: string; generation: number; n: number }>(
            `SELECT kind, generation, count(*)::int AS n FROM jpki_crls WHERE partition = 'arl'
              GROUP BY kind, generation ORDER BY kind, generation`,
          )
        ).rows,
    );
    // Rollover published generation 2's ARL once, crl publish once more.
    expect(arls).toEqual([
      { kind: 'auth', generation: 1, n: 1 },
      { kind: 'sign', generation: 1, n: 1 },
      { kind: 'sign', generation: 2, n: 2 },
    ]);
  });

  it('jpki recover abandons issuance left pending by a crash', async () => {
    // A holder and an issuance record left 'pending' an hour ago (the process died signing).
    const serial = await withDb(async (db) => {
      const code = `9${randomBytes(5).readUIntBE(0, 5).toString().padStart(10, '0').slice(0, 10)}`;
      const personId = randomUUID();
      const past = new Date(Date.now() - 3600e3);
      await db.query(
        `INSERT INTO resident_codes (code, municipality_code, state, pool_rank, allotted_at, issued_at)
         VALUES ($1, '131016', 'issued', 0, $2, $2)`,
        [code, past],
      );
      await db.query(
        `INSERT INTO persons (id, resident_code, municipality_code, status, latest_version, updated_at)
         VALUES ($1, $2, '131016', 'current', 1, $3)`,
        [personId, code, past],
      );
      const r = await db.query<{ serial: string }>(
        `INSERT INTO jpki_certificates (serial, kind, medium, ca_generation, person_id,
           resident_code, municipality_code, state, tbs, public_key_sha256, not_before, not_after,
           created_at, retain_until)
         VALUES (nextval('jpki_serial'), 'sign', 'card', 2, $1, $2, '131016', 'pending',
                 '\\x30'::bytea, sha256(uuid_send($1)), $3,
                 $3::timestamptz + interval '1 year', $3,
                 '2100-01-01')
         RETURNING serial::text AS serial`,
        [personId, code, past],
      );
      return r.rows[0]!.serial;
    });
    const r = await kiban(args('jpki', 'recover'), env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(`abandoned 1 interrupted issuance(s): serials ${serial}`);
    const state = await withDb(
      async (db) =>
        (
          await db.query<{ state: string }>(
            'SELECT state FROM jpki_certificates WHERE serial = $1',
            [serial],
          )
        ).rows,
    );
    expect(state).toEqual([{ state: 'abandoned' }]);
  });

  it('ca compromise fails with exit 1 for a generation that does not exist, then works', async () => {
    const r = await kiban(args('ca', 'compromise', 'sign', '9'), env);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim()).toBe('kiban ca: no such CA generation');
    // The real thing: nothing was issued by generation 1 here, so only the ARL lists anything
    // (the CA certificate itself).
    const ok = await kiban(args('ca', 'compromise', 'sign', '1'), env);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(
      /^sign CA generation 1: 0 certificate\(s\) revoked; announcement \d+$/m,
    );
    expect(ok.stdout).toContain('published 1 CRL(s) listing 1 entry');
    expect(ok.stdout).toContain('kiban ca rollover sign');
    const compromised = await withDb(
      async (db) =>
        (
          await db.query<{ generation: number }>(
            'SELECT generation FROM jpki_cas WHERE compromised_at IS NOT NULL',
          )
        ).rows,
    );
    expect(compromised).toEqual([{ generation: 1 }]);
  });
});
