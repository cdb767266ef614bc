/**
 * The JPKI certification authority through the real HTTP app, with the openssl 3 CLI as the
 * interop oracle: the CA certificates, card issuance and its refusals, supersession, the
 * revocation route, CRLs partitioned by municipality (and the ARL), the OCSP responder
 * running on a real port, and the 5th-birthday validity end to end.
 *
 * openssl checks certificates, CRLs and OCSP responses against the real clock, so the interop
 * app runs on a FakeClock set to the real current time (whole seconds) and never moves it
 * ahead of real time before the last openssl check. The validity checks have their own app on
 * fixed dates and use openssl only to print notAfter.
 */
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServices } from '../src/app.ts';
import { verifyAuditChain } from '../src/platform/audit.ts';
import { FakeClock } from '../src/platform/clock.ts';
import { CLI_ACTOR } from '../src/platform/install.ts';
import { parseCrlSummary } from '../src/pki/crl.ts';
import { fromPem, parseDer, toPem } from '../src/pki/der.ts';
import { parseOcspResponse } from '../src/pki/ocsp.ts';
import {
  certificateOtherNames,
  decodeName,
  extension,
  OIDS,
  parseCertificate,
  subjectAltNamesOf,
} from '../src/pki/x509.ts';
import { BATCH_ITEM_LIMIT } from '../src/platform/batch-items.ts';
import { createTestApp, type TestApp } from './support/app.ts';
import {
  issueCardCertificate,
  notifyIdentityChange,
  ocspRequestFor,
  opensslAsync,
  registerJpkiResident,
  type RegisteredResident,
} from './support/jpki.ts';
import { makeTempDir, type TempDir } from './support/openssl.ts';
import { csrPem, rsaKey } from './support/pki.ts';
import { newResident } from './support/registry.ts';

/** The real current time in whole seconds: what openssl checks validity against. */
const realNow = (): Date => new Date(Math.floor(Date.now() / 1000) * 1000);

/** `YYYY-MM-DD` in Japan (UTC+9, no daylight saving) — computed here, not by src/. */
const jstDate = (d: Date): string => new Date(d.getTime() + 9 * 3600e3).toISOString().slice(0, 10);

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** How `openssl x509 -enddate` prints a `YYYY-MM-DD` date at 14:59:59Z. */
const opensslEnd = (date: string): string => {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  return `${MONTHS[m - 1]} ${String(d).padStart(2, ' ')} 14:59:59 ${y} GMT`;
};

interface Issued {
  serial: string;
  certificate: string;
}

type Reason = 'request' | 'lossReport' | 'recordError';

const CA_PEM = /^-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE-----\n?$/;

/** The `X509v3 …:` / `Authority Information Access:` headings of `openssl x509 -text`, in order. */
const extensionHeadings = (text: string): string[] =>
  [...text.matchAll(/^ {12}((?:X509v3 [^:\n]+|Authority Information Access):[^\n]*)$/gm)].map((m) =>
    m[1]!.trim(),
  );

describe('JPKI through the HTTP app, checked with openssl', () => {
  let t: TestApp;
  let dir: TempDir;
  let signCaPem: string;
  let authCaPem: string;
  /** The main holder in 千代田区 (131016). */
  let holder: RegisteredResident;
  let holderSign: Issued;
  let holderAuth: Issued;

  beforeAll(async () => {
    t = await createTestApp({ jpki: true, clock: new FakeClock(realNow()) });
    dir = makeTempDir('kiban-jpki-');
    const cas = (await t.app.inject({ url: '/v1/jpki/ca' })).json<{
      cas: { kind: string; certificate: string }[];
    }>().cas;
    signCaPem = cas.find((c) => c.kind === 'sign')!.certificate;
    authCaPem = cas.find((c) => c.kind === 'auth')!.certificate;
    dir.write('sign-ca.pem', signCaPem);
    dir.write('auth-ca.pem', authCaPem);
    holder = await registerJpkiResident(t, 'municipality', '131016', {
      name: '渡邊　恵美',
      nameKana: 'ワタナベ　エミ',
      birthDate: '1975-07-14',
      sex: 'male',
      address: '東京都千代田区霞が関2丁目1番2号',
    });
  });
  afterAll(async () => {
    await t?.close();
    dir?.remove();
  });

  // -------------------------------------------------------------------------------------------
  // Small helpers over the app
  // -------------------------------------------------------------------------------------------

  const issue = async (
    residentCode: string,
    kind: 'sign' | 'auth',
    key: { publicKey: string } | { csr: string } = { publicKey: rsaKey().publicKeyPem },
    actor = 'municipality',
  ): Promise<Issued> => {
    const r = await issueCardCertificate(t, actor, { kind, residentCode, ...key });
    expect(r.statusCode, r.body).toBe(201);
    return r.json<Issued>();
  };

  const revoke = (serial: string, reason: Reason, actor: string | null = 'municipality') =>
    t.app.inject({
      method: 'POST',
      url: `/v1/jpki/certificates/${serial}/revocation`,
      headers: actor === null ? {} : t.auth(actor),
      payload: { reason },
    });

  const verifierOf = (kind: 'sign' | 'auth'): string =>
    kind === 'sign' ? 'signatureVerifier' : 'authVerifier';

  /** The status the OCSP route gives (via inject, no nonce). */
  const ocspStatus = async (kind: 'sign' | 'auth', serial: string) => {
    const r = await t.app.inject({
      method: 'POST',
      url: `/ocsp/${kind}`,
      headers: { ...t.auth(verifierOf(kind)), 'content-type': 'application/ocsp-request' },
      payload: ocspRequestFor(kind === 'sign' ? signCaPem : authCaPem, BigInt(serial)),
    });
    expect(r.statusCode, r.body).toBe(200);
    const parsed = parseOcspResponse(r.rawPayload);
    expect(parsed.status).toBe('successful');
    return parsed.basic!.responses[0]!.status;
  };

  const getCrl = (kind: 'sign' | 'auth', file: string, actor: string | null = verifierOf(kind)) =>
    t.app.inject({ url: `/crl/${kind}/${file}`, headers: actor === null ? {} : t.auth(actor) });

  /** Fetches a CRL with the right verifier and writes it as PEM; returns the path and DER. */
  const saveCrl = async (kind: 'sign' | 'auth', file: string, name: string) => {
    const r = await getCrl(kind, file);
    expect(r.statusCode, r.body).toBe(200);
    expect(r.headers['content-type']).toBe('application/pkix-crl');
    return { path: dir.write(name, toPem(r.rawPayload, 'X509 CRL')), der: r.rawPayload };
  };

  const publishCrls = () => t.services.jpki.crls.publish(t.database.db, CLI_ACTOR);

  const auditRows = async (action: string, subject: string) =>
    (
      await t.database.db.query<{
        actor_name: string;
        outcome: string;
        details: Record<string, unknown>;
      }>(
        `SELECT actor_name, outcome, details FROM audit_log
          WHERE action = $1 AND subject = $2 ORDER BY seq`,
        [action, subject],
      )
    ).rows;

  // -------------------------------------------------------------------------------------------
  // 1. The CA certificates
  // -------------------------------------------------------------------------------------------

  describe('GET /v1/jpki/ca', () => {
    it('is public and lists generation 1 of both CAs as PEM', async () => {
      const r = await t.app.inject({ url: '/v1/jpki/ca' });
      expect(r.statusCode, r.body).toBe(200);
      const { cas } = r.json<{
        cas: {
          kind: string;
          generation: number;
          certificate: string;
          notAfter: string;
          compromised: boolean;
        }[];
      }>();
      expect(cas.map((c) => [c.kind, c.generation, c.compromised]).sort()).toEqual([
        ['auth', 1, false],
        ['sign', 1, false],
      ]);
      for (const c of cas) {
        expect(c.certificate).toMatch(CA_PEM);
        expect(c.notAfter).toMatch(/T14:59:59\.000Z$/);
      }
      expect(cas.find((c) => c.kind === 'sign')!.certificate).toBe(signCaPem);
      expect(cas.find((c) => c.kind === 'auth')!.certificate).toBe(authCaPem);
    });

    it('has the shape of the real J-LIS roots (openssl x509 -text)', () => {
      const org = t.config.jpki.organisation;
      for (const [kind, ou] of [
        ['sign', 'JPKI for digital signature'],
        ['auth', 'JPKI for user authentication'],
      ] as const) {
        const x = dir.run(['x509', '-in', `${kind}-ca.pem`, '-noout', '-text', '-nameopt', 'utf8']);
        expect(x.status, x.stderr).toBe(0);
        const dn = `C=JP, O=JPKI, OU=${ou}, OU=${org}`;
        expect(x.stdout).toContain(`Subject: ${dn}\n`);
        expect(x.stdout).toContain(`Issuer: ${dn}\n`);
        expect(x.stdout).toMatch(/Signature Algorithm: sha256WithRSAEncryption/);
        expect(x.stdout).toContain('Public-Key: (2048 bit)');
        expect(x.stdout).toContain('Exponent: 65537 (0x10001)');
        expect(x.stdout).toMatch(/Not After : [A-Z][a-z]{2} [ 0-9]\d 14:59:59 \d{4} GMT/);
        expect(extensionHeadings(x.stdout)).toEqual([
          'X509v3 Key Usage: critical',
          'X509v3 Subject Alternative Name:',
          'X509v3 Basic Constraints: critical',
          'X509v3 CRL Distribution Points:',
          'X509v3 Subject Key Identifier:',
        ]);
        expect(x.stdout).toMatch(/X509v3 Key Usage: critical\n\s+Certificate Sign, CRL Sign\n/);
        expect(x.stdout).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:TRUE\n/);
        // The ARL distribution point is the CA's own name.
        expect(x.stdout).toContain(`DirName:C = JP, O = JPKI, OU = ${ou}, OU = ${org}\n`);
        // Self-signed and accepted as a trust anchor.
        const v = dir.run(['verify', '-CAfile', `${kind}-ca.pem`, `${kind}-ca.pem`]);
        expect(v.stdout, v.stderr).toContain(`${kind}-ca.pem: OK`);
      }
    });

    it('names the CA in Japanese in subjectAltName (openssl truncates that DirName)', () => {
      for (const [pem, ou] of [
        [signCaPem, '公的個人認証サービス署名用'],
        [authCaPem, '公的個人認証サービス利用者証明用'],
      ] as const) {
        const ca = parseCertificate(fromPem(pem, 'CERTIFICATE'));
        const san = subjectAltNamesOf(ca);
        expect(san).toHaveLength(1);
        const dn = san![0]!;
        expect('directoryName' in dn).toBe(true);
        if (!('directoryName' in dn)) return;
        expect(decodeName(dn.directoryName).map((a) => `${a.type}=${a.value}`)).toEqual([
          'C=JP',
          'O=公的個人認証サービス',
          `OU=${ou}`,
          `OU=${t.config.jpki.organisationJa}`,
        ]);
        expect(extension(ca, OIDS.authorityKeyIdentifier)).toBeUndefined();
        expect(extension(ca, OIDS.authorityInfoAccess)).toBeUndefined();
      }
    });
  });

  // -------------------------------------------------------------------------------------------
  // 2. Card issuance
  // -------------------------------------------------------------------------------------------

  describe('POST /v1/jpki/certificates (card)', () => {
    // The holder's keys, made by openssl: a bare public key for the signing certificate (as the
    // municipal terminal writes it onto the card) and a PKCS#10 request for the authentication one.
    beforeAll(() => {
      for (const k of ['sign', 'auth']) {
        const g = dir.run([
          'genpkey',
          '-algorithm',
          'RSA',
          '-pkeyopt',
          'rsa_keygen_bits:2048',
          '-out',
          `${k}.key`,
        ]);
        expect(g.status, g.stderr).toBe(0);
      }
      const pub = dir.run(['pkey', '-in', 'sign.key', '-pubout', '-out', 'sign.pub']);
      expect(pub.status, pub.stderr).toBe(0);
      const req = dir.run([
        'req',
        '-new',
        '-key',
        'auth.key',
        '-subj',
        '/CN=x',
        '-out',
        'auth.csr',
      ]);
      expect(req.status, req.stderr).toBe(0);
    });

    it('answers 201 {serial, certificate} for a public key (sign) and a CSR (auth), serials increasing', async () => {
      const sign = await issueCardCertificate(t, 'municipality', {
        kind: 'sign',
        residentCode: holder.residentCode,
        publicKey: dir.read('sign.pub').toString('utf8'),
      });
      expect(sign.statusCode, sign.body).toBe(201);
      holderSign = sign.json<Issued>();
      const auth = await issueCardCertificate(t, 'municipality', {
        kind: 'auth',
        residentCode: holder.residentCode,
        csr: dir.read('auth.csr').toString('utf8'),
      });
      expect(auth.statusCode, auth.body).toBe(201);
      holderAuth = auth.json<Issued>();
      for (const c of [holderSign, holderAuth]) {
        expect(Object.keys(c).sort()).toEqual(['certificate', 'serial']);
        expect(c.serial).toMatch(/^[1-9][0-9]*$/);
        expect(c.certificate).toMatch(CA_PEM);
      }
      expect(BigInt(holderAuth.serial)).toBeGreaterThan(BigInt(holderSign.serial));
      // One counter for every JPKI certificate: the serial in the certificate is the one returned.
      expect(parseCertificate(fromPem(holderSign.certificate, 'CERTIFICATE')).serial).toBe(
        BigInt(holderSign.serial),
      );
      dir.write('holder-sign.pem', holderSign.certificate);
      dir.write('holder-auth.pem', holderAuth.certificate);
    });

    it('certifies the submitted keys, and openssl verifies both against their CA only', () => {
      for (const [cert, key] of [
        ['holder-sign.pem', 'sign.key'],
        ['holder-auth.pem', 'auth.key'],
      ] as const) {
        const fromCert = dir.run(['x509', '-in', cert, '-noout', '-pubkey']);
        const fromKey = dir.run(['pkey', '-in', key, '-pubout']);
        expect(fromCert.stdout).toBe(fromKey.stdout);
      }
      const s = dir.run(['verify', '-CAfile', 'sign-ca.pem', 'holder-sign.pem']);
      expect(s.stdout, s.stderr).toBe('holder-sign.pem: OK\n');
      const a = dir.run(['verify', '-CAfile', 'auth-ca.pem', 'holder-auth.pem']);
      expect(a.stdout, a.stderr).toBe('holder-auth.pem: OK\n');
      const crossed = dir.run(['verify', '-CAfile', 'auth-ca.pem', 'holder-sign.pem']);
      expect(crossed.status).not.toBe(0);
    });

    it('writes the six otherNames in profile order from the registry, and the profile extensions', () => {
      const x = dir.run(['x509', '-in', 'holder-sign.pem', '-noout', '-text', '-nameopt', 'utf8']);
      expect(x.status, x.stderr).toBe(0);
      const address = '東京都千代田区霞が関２丁目１番２号';
      expect(x.stdout).toContain(
        [
          'othername: 1.2.392.200149.8.5.5.1::渡邊　恵美',
          'othername: 1.2.392.200149.8.5.5.4::319750714',
          'othername: 1.2.392.200149.8.5.5.3::1',
          `othername: 1.2.392.200149.8.5.5.5::${address}`,
          'othername: 1.2.392.200149.8.5.5.2::00000',
          `othername: 1.2.392.200149.8.5.5.6::${'0'.repeat([...address].length)}`,
        ].join(', ') + '\n',
      );
      expect(x.stdout).toMatch(/Subject: C=JP, L=Tokyo-to, L=Chiyoda-ku, CN=\d{14}13101\w+\n/);
      expect(extensionHeadings(x.stdout)).toEqual([
        'X509v3 Key Usage: critical',
        'X509v3 Subject Alternative Name:',
        'X509v3 Certificate Policies: critical',
        'X509v3 Issuer Alternative Name:',
        'X509v3 CRL Distribution Points:',
        'X509v3 Authority Key Identifier:',
        'X509v3 Subject Key Identifier:',
      ]);
      expect(x.stdout).toMatch(/Key Usage: critical\n\s+Digital Signature, Non Repudiation\n/);
      expect(x.stdout).toContain(`Policy: ${t.config.jpki.policies.signCard}\n`);
      expect(t.config.jpki.policies.signCard).toBe('2.999.8.5.1.1.20');
      expect(x.stdout).toContain(`CPS: ${t.config.jpki.cpsUrl}`);
      expect(x.stdout).toContain(
        'DirName:C = JP, O = JPKI, OU = JPKI for digital signature, OU = CRL Distribution Points, OU = Tokyo-to, CN = Chiyoda-ku CRLDP\n',
      );
      expect(x.stdout).toContain(`URI:${t.config.publicUrl}/crl/sign/131016.crl?generation=1\n`);
      expect(x.stdout).toMatch(
        /Authority Key Identifier: \n\s+keyid:[0-9A-F:]+\n\s+DirName:.*\n\s+serial:/,
      );
    });

    it('substitutes characters outside JIS X 0208/0212 and flags them in the map', async () => {
      const r = await registerJpkiResident(t, 'municipality', '131016', {
        name: '𠮷野　髙子',
        birthDate: '2000-02-29',
      });
      const c = await issue(r.residentCode, 'sign');
      const cert = parseCertificate(fromPem(c.certificate, 'CERTIFICATE'));
      expect(certificateOtherNames(cert).map((o) => o.value)).toEqual([
        '〓野　〓子',
        '420000229',
        '2',
        '東京都千代田区千代田１番１号',
        '10010',
        '0'.repeat(14),
      ]);
    });

    it('gives the authentication certificate no personal data, clientAuth and an OCSP URL', () => {
      const x = dir.run(['x509', '-in', 'holder-auth.pem', '-noout', '-text', '-nameopt', 'utf8']);
      expect(x.status, x.stderr).toBe(0);
      expect(x.stdout).toMatch(/Subject: C=JP, CN=[A-Z2-9]{23}\n/);
      expect(extensionHeadings(x.stdout)).toEqual([
        'X509v3 Key Usage: critical',
        'X509v3 Extended Key Usage:',
        'X509v3 Certificate Policies: critical',
        'X509v3 Issuer Alternative Name:',
        'X509v3 CRL Distribution Points:',
        'Authority Information Access:',
        'X509v3 Authority Key Identifier:',
        'X509v3 Subject Key Identifier:',
      ]);
      expect(x.stdout).not.toContain('Subject Alternative Name');
      expect(x.stdout).toMatch(/Extended Key Usage: \n\s+TLS Web Client Authentication\n/);
      expect(x.stdout).toContain(`OCSP - URI:${t.config.publicUrl}/ocsp/auth\n`);
      expect(x.stdout).toContain(`Policy: ${t.config.jpki.policies.authCard}\n`);
      expect(t.config.jpki.policies.authCard).toBe('2.999.8.5.1.3.30');
      for (const personal of ['渡邊', '恵美', 'ワタナベ', '霞が関', '霞', '1975', '19750714']) {
        expect(x.stdout).not.toContain(personal);
      }
    });

    it('runs to 14:59:59Z of the 5th birthday after issuance', () => {
      const today = jstDate(t.clock.now());
      const year = Number(today.slice(0, 4)) + (today.slice(5) < '07-14' ? 4 : 5);
      for (const f of ['holder-sign.pem', 'holder-auth.pem']) {
        const e = dir.run(['x509', '-in', f, '-noout', '-enddate']);
        expect(e.stdout).toBe(`notAfter=${opensslEnd(`${year}-07-14`)}\n`);
      }
    });
  });

  // -------------------------------------------------------------------------------------------
  // 3. Refusals
  // -------------------------------------------------------------------------------------------

  describe('refusals', () => {
    /** Every problem body seen here; none may carry the holder's personal data. */
    const bodies: string[] = [];
    const refused = async (
      actor: string | null,
      body: Parameters<typeof issueCardCertificate>[2],
      status: number,
      code?: string,
    ) => {
      const r = await issueCardCertificate(t, actor, body);
      bodies.push(r.body);
      expect(r.statusCode, r.body).toBe(status);
      if (code) expect(r.json<{ code: string }>().code).toBe(code);
      return r;
    };

    it('answers another municipality 404 for a resident it does not hold, and audits the denial', async () => {
      await refused(
        'municipality2',
        { kind: 'sign', residentCode: holder.residentCode, publicKey: rsaKey().publicKeyPem },
        404,
        'jpki.resident-not-found',
      );
      const rows = await auditRows('jpki.certificate.read-basic-four', holder.residentCode);
      expect(rows.map((r) => [r.actor_name, r.outcome])).toContainEqual([
        'municipality2',
        'denied',
      ]);
    });

    it('answers 404 for an unknown resident', async () => {
      const unregistered = await newResident(t, 'municipality');
      await refused(
        'municipality',
        { kind: 'auth', residentCode: unregistered.residentCode, publicKey: rsaKey().publicKeyPem },
        404,
        'jpki.resident-not-found',
      );
      const rows = await auditRows('jpki.certificate.read-basic-four', unregistered.residentCode);
      expect(rows.map((r) => [r.actor_name, r.outcome])).toEqual([['municipality', 'denied']]);
    });

    it('refuses a resident whose record was removed (death) with 409', async () => {
      const r = await registerJpkiResident(t, 'municipality', '131016', {
        name: '故人　太郎',
        sex: 'male',
      });
      const death = await notifyIdentityChange(t, 'municipality', {
        municipalityCode: '131016',
        changeReason: 'death',
        record: r.record,
      });
      expect(death.statusCode, death.body).toBe(201);
      const res = await refused(
        'municipality',
        { kind: 'sign', residentCode: r.residentCode, publicKey: rsaKey().publicKeyPem },
        409,
        'jpki.resident-not-current',
      );
      expect(res.body).not.toContain('故人');
    });

    it('refuses bad keys with 400', async () => {
      const base = { kind: 'sign' as const, residentCode: holder.residentCode };
      const key = rsaKey();
      // A CSR signed by another key: no proof of possession.
      await refused(
        'municipality',
        { ...base, csr: csrPem(key, rsaKey().privateKey) },
        400,
        'jpki.bad-key',
      );
      await refused(
        'municipality',
        { ...base, csr: csrPem(key), publicKey: key.publicKeyPem },
        400,
        'jpki.key-source',
      );
      await refused('municipality', base, 400, 'jpki.key-source');
      await refused(
        'municipality',
        { ...base, publicKey: rsaKey(1024).publicKeyPem },
        400,
        'jpki.bad-key',
      );
      await refused(
        'municipality',
        { ...base, publicKey: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n' },
        400,
        'jpki.bad-key',
      );
    });

    it('refuses a public key that already has a certificate with 409', async () => {
      await refused(
        'municipality',
        {
          kind: 'auth',
          residentCode: holder.residentCode,
          publicKey: dir.read('sign.pub').toString('utf8'),
        },
        409,
        'jpki.key-reused',
      );
    });

    it('issues one certificate when two requests race with the same new key', async () => {
      // Another resident: the holder's certificates stay as the tests after this expect.
      const r = await registerJpkiResident(t, 'municipality', '131016', {
        name: '競合　花子',
        sex: 'female',
      });
      const publicKey = rsaKey().publicKeyPem;
      const both = await Promise.all(
        (['sign', 'auth'] as const).map((kind) =>
          issueCardCertificate(t, 'municipality', {
            kind,
            residentCode: r.residentCode,
            publicKey,
          }),
        ),
      );
      expect(both.map((r) => r.statusCode).sort()).toEqual([201, 409]);
      const lost = both.find((r) => r.statusCode === 409);
      expect(lost?.json<{ code: string }>().code).toBe('jpki.key-reused');
    });

    it('answers each request of a concurrent burst on its own (group commit)', async () => {
      // Registered one after the other (notifications of one municipality are numbered).
      const fresh: RegisteredResident[] = [];
      for (const given of ['一', '二', '三', '四', '五', '六']) {
        fresh.push(
          await registerJpkiResident(t, 'municipality', '131016', { name: `一括\u3000${given}` }),
        );
      }
      const db = t.database.db;
      const here = (await t.services.actors.byName(db, 'municipality'))!;
      const elsewhere = (await t.services.actors.byName(db, 'municipality2'))!;
      const reusedKey = rsaKey().publicKeyPem;
      const requests = [
        ...fresh.map((r) => ({ actor: here, residentCode: r.residentCode, key: rsaKey() })),
        // The first holder again, with another key: one certificate supersedes the other.
        { actor: here, residentCode: fresh[0]!.residentCode, key: rsaKey() },
        // Not this municipality's resident, and a code nobody holds: not found, each.
        { actor: elsewhere, residentCode: fresh[1]!.residentCode, key: rsaKey() },
        { actor: here, residentCode: '99999999999', key: rsaKey() },
        // One key in two requests: exactly one of them gets it.
        { actor: here, residentCode: fresh[2]!.residentCode, key: { publicKeyPem: reusedKey } },
        { actor: here, residentCode: fresh[3]!.residentCode, key: { publicKeyPem: reusedKey } },
      ];
      // Called in one go (no HTTP in front), so each burst reaches the service in one turn of
      // the event loop and is prepared as one batch.
      const burst = (qs: typeof requests, from: number) =>
        Promise.allSettled(
          qs.map((q, i) =>
            t.services.jpki.issuance.issueForCard(
              db,
              q.actor,
              {
                kind: 'auth',
                residentCode: q.residentCode,
                key: { publicKey: q.key.publicKeyPem },
              },
              `burst-${from + i}`,
            ),
          ),
        );
      const codeOf = (a: PromiseSettledResult<unknown>): string =>
        a.status === 'fulfilled' ? 'issued' : (a.reason as { code: string }).code;
      // Without the raced key the batch goes through whole; the raced pair makes its batch
      // fail, and each request of it is redone alone.
      const answers = [
        ...(await burst(requests.slice(0, 9), 0)),
        ...(await burst(requests.slice(9), 9)),
      ];
      expect(answers.map(codeOf)).toEqual([
        ...Array<string>(7).fill('issued'),
        'jpki.resident-not-found',
        'jpki.resident-not-found',
        ...(codeOf(answers[9]!) === 'issued'
          ? ['issued', 'jpki.key-reused']
          : ['jpki.key-reused', 'issued']),
      ]);
      const issued = answers.flatMap((a) => (a.status === 'fulfilled' ? [a.value] : []));
      expect(new Set(issued.map((c) => c.serial)).size).toBe(8);

      // The holder asked twice holds one valid certificate; the other is superseded by it.
      const twice = [answers[0]!, answers[6]!].map(
        (a) => (a as PromiseFulfilledResult<Issued>).value.serial,
      );
      const revoked = await db.query<{ serial: string; superseded_by: string }>(
        `SELECT serial::text AS serial, superseded_by::text AS superseded_by
           FROM jpki_revocations WHERE serial = ANY($1::bigint[])`,
        [twice],
      );
      expect(revoked.rows).toHaveLength(1);
      expect(twice.filter((s) => s !== revoked.rows[0]!.serial)).toEqual([
        revoked.rows[0]!.superseded_by,
      ]);

      // Every read of the basic-4 is audited once, in a chain that still verifies: denied for
      // the two not found; none for the key that lost (its transaction rolled back).
      const reads = await db.query<{ outcome: string; n: number }>(
        `SELECT outcome, count(*)::int AS n FROM audit_log
          WHERE action = 'jpki.certificate.read-basic-four' AND request_id LIKE 'burst-%'
          GROUP BY outcome ORDER BY outcome`,
      );
      expect(reads.rows).toEqual([
        { outcome: 'denied', n: 2 },
        { outcome: 'success', n: 8 },
      ]);
      expect((await verifyAuditChain(db)).ok).toBe(true);
      // Every issued certificate verifies against its CA with openssl.
      for (const [i, c] of issued.entries()) {
        dir.write(`burst-${i}.pem`, c.certificate);
        const v = dir.run(['verify', '-CAfile', 'auth-ca.pem', `burst-${i}.pem`]);
        expect(v.stdout, v.stderr).toBe(`burst-${i}.pem: OK\n`);
      }
    });

    /** POST /v1/jpki/certificates:batch as the municipality; the body joins `bodies`. */
    const postCardBatch = async (certificates: readonly object[]) => {
      const r = await t.app.inject({
        method: 'POST',
        url: '/v1/jpki/certificates:batch',
        headers: t.auth('municipality'),
        payload: { certificates },
      });
      bodies.push(r.body);
      return r;
    };

    it('answers each request of a batch (POST /v1/jpki/certificates:batch) on its own, in body order', async () => {
      const fresh: RegisteredResident[] = [];
      for (const given of ['甲', '乙', '丙']) {
        fresh.push(
          await registerJpkiResident(t, 'municipality', '131016', { name: `交付\u3000${given}` }),
        );
      }
      const [a, b, c] = fresh as [RegisteredResident, RegisteredResident, RegisteredResident];
      // c already holds a signing certificate, issued on the single route.
      const earlierKey = rsaKey();
      const earlier = await issue(c.residentCode, 'sign', { publicKey: earlierKey.publicKeyPem });
      const keys = Array.from({ length: 4 }, () => rsaKey());
      const certificates = [
        {
          kind: 'sign',
          medium: 'card',
          residentCode: a.residentCode,
          publicKey: keys[0]!.publicKeyPem,
        },
        { kind: 'auth', medium: 'card', residentCode: a.residentCode, csr: csrPem(keys[1]!) },
        {
          kind: 'sign',
          medium: 'card',
          residentCode: b.residentCode,
          publicKey: keys[2]!.publicKeyPem,
        },
        {
          kind: 'auth',
          medium: 'card',
          residentCode: '99999999999',
          publicKey: rsaKey().publicKeyPem,
        },
        {
          kind: 'auth',
          medium: 'card',
          residentCode: c.residentCode,
          publicKey: rsaKey().publicKeyPem,
          csr: csrPem(rsaKey()),
        },
        { kind: 'auth', medium: 'card', residentCode: c.residentCode, publicKey: 'not a key' },
        {
          kind: 'auth',
          medium: 'card',
          residentCode: c.residentCode,
          publicKey: earlierKey.publicKeyPem,
        },
        {
          kind: 'sign',
          medium: 'card',
          residentCode: c.residentCode,
          publicKey: keys[3]!.publicKeyPem,
        },
      ];
      const r = await postCardBatch(certificates);
      expect(r.statusCode, r.body).toBe(200);
      type Result = {
        status: number;
        serial?: string;
        certificate?: string;
        code?: string;
        detail?: string;
        errors?: { pointer: string; message: string }[];
      };
      const answer = r.json<{ issued: number; refused: number; results: Result[] }>();
      expect(answer.results.map((x) => [x.status, x.code ?? null])).toEqual([
        [201, null],
        [201, null],
        [201, null],
        [404, 'jpki.resident-not-found'],
        [400, 'jpki.key-source'],
        [400, 'jpki.bad-key'],
        [409, 'jpki.key-reused'],
        [201, null],
      ]);
      expect([answer.issued, answer.refused]).toEqual([4, 4]);
      expect(answer.results[4]!.errors?.map((e) => e.pointer)).toEqual(['/body/certificates/4']);
      expect(answer.results[5]!.errors?.map((e) => e.pointer)).toEqual([
        '/body/certificates/5/publicKey',
      ]);
      for (const x of answer.results) {
        expect(Object.keys(x).sort()).toEqual(
          x.status === 201
            ? ['certificate', 'serial', 'status']
            : x.errors
              ? ['code', 'detail', 'errors', 'status']
              : ['code', 'detail', 'status'],
        );
      }
      // Each certificate certifies its own request's key, and openssl verifies it.
      const issuedAt = [0, 1, 2, 7];
      const keyOf = [keys[0]!, keys[1]!, keys[2]!, keys[3]!];
      for (const [k, i] of issuedAt.entries()) {
        const x = answer.results[i]!;
        const der = fromPem(x.certificate!, 'CERTIFICATE');
        const cert = parseCertificate(der);
        expect(cert.serial).toBe(BigInt(x.serial!));
        expect(cert.spki.equals(keyOf[k]!.spki)).toBe(true);
        const kind = certificates[i]!.kind;
        dir.write(`batch-${i}.pem`, x.certificate!);
        const v = dir.run(['verify', '-CAfile', `${kind}-ca.pem`, `batch-${i}.pem`]);
        expect(v.stdout, v.stderr).toBe(`batch-${i}.pem: OK\n`);
      }
      // As on the single route: c's new signing certificate supersedes the earlier one.
      expect(await ocspStatus('sign', earlier.serial)).toMatchObject({ type: 'revoked' });
      const superseded = await t.database.db.query<{ superseded_by: string }>(
        `SELECT superseded_by::text AS superseded_by FROM jpki_revocations WHERE serial = $1`,
        [earlier.serial],
      );
      expect(superseded.rows).toEqual([{ superseded_by: answer.results[7]!.serial }]);
      // Audited as the single route would: one issue entry per certificate, a basic-4 read per
      // request that reached the register (denied for the resident not found), one chain.
      for (const i of issuedAt) {
        expect(await auditRows('jpki.certificate.issue', answer.results[i]!.serial!)).toHaveLength(
          1,
        );
      }
      const unknown = await auditRows('jpki.certificate.read-basic-four', '99999999999');
      expect(unknown.at(-1)?.outcome).toBe('denied');
      expect((await verifyAuditChain(t.database.db)).ok).toBe(true);
    });

    it('refuses an empty batch, one over the limit, and a malformed request, as a whole (400)', async () => {
      const one = {
        kind: 'auth',
        medium: 'card',
        residentCode: holder.residentCode,
        publicKey: rsaKey().publicKeyPem,
      };
      for (const certificates of [
        [],
        Array<typeof one>(BATCH_ITEM_LIMIT + 1).fill(one),
        [one, { ...one, kind: 'both' }],
      ]) {
        const r = await postCardBatch(certificates);
        expect(r.statusCode, r.body).toBe(400);
        expect(r.json<{ code: string }>().code).toBe('request.invalid');
      }
    });

    it('lets only municipalities issue (403 for verifiers and others, 401 without a token)', async () => {
      const body = {
        kind: 'sign' as const,
        residentCode: holder.residentCode,
        publicKey: rsaKey().publicKeyPem,
      };
      for (const actor of ['signatureVerifier', 'authVerifier', 'nationalAgency', 'opCa']) {
        await refused(actor, body, 403, 'auth.forbidden');
      }
      await refused(null, body, 401, 'auth.token-missing');
    });

    it('never puts the resident’s name, address or birth date into a problem body', () => {
      expect(bodies.length).toBeGreaterThan(10);
      const text = bodies.join('\n');
      for (const personal of [
        holder.record.name,
        '渡邊',
        holder.record.nameKana,
        holder.record.address,
        '霞が関',
        '霞',
        holder.record.birthDate,
        '19750714',
      ]) {
        expect(text).not.toContain(personal);
      }
    });

    it('left the holder’s certificates as they were', async () => {
      expect(await ocspStatus('sign', holderSign.serial)).toEqual({ type: 'good' });
      expect(await ocspStatus('auth', holderAuth.serial)).toEqual({ type: 'good' });
    });
  });

  // -------------------------------------------------------------------------------------------
  // 4. Supersession
  // -------------------------------------------------------------------------------------------

  describe('OCSP answers held in memory', () => {
    const ocspDer = async (serial: string): Promise<Buffer> => {
      const r = await t.app.inject({
        method: 'POST',
        url: '/ocsp/sign',
        headers: { ...t.auth('signatureVerifier'), 'content-type': 'application/ocsp-request' },
        payload: ocspRequestFor(signCaPem, BigInt(serial)),
      });
      expect(r.statusCode, r.body).toBe(200);
      return r.rawPayload;
    };

    it('answers a repeated request with the response signed the first time', async () => {
      const r = await registerJpkiResident(t, 'municipality', '131016', { name: '記憶　一郎' });
      const cert = await issue(r.residentCode, 'sign');
      await t.services.changes.poll();
      const first = await ocspDer(cert.serial);
      t.clock.advance(5_000);
      const again = await ocspDer(cert.serial);
      // Same bytes (producedAt included) five seconds later: not signed again.
      expect(again.equals(first)).toBe(true);
    });

    it('follows a revocation made by another process within one poll of the change epochs', async () => {
      const r = await registerJpkiResident(t, 'municipality', '131016', { name: '別処　二郎' });
      const cert = await issue(r.residentCode, 'sign');
      expect(await ocspStatus('sign', cert.serial)).toEqual({ type: 'good' });
      // A second set of services on the same database stands for another process: its
      // revocation never calls this process's hooks, only advances the epoch.
      const other = buildServices({ config: t.config, db: t.database.db, clock: t.clock });
      await t.database.db.transaction((tx) =>
        other.jpki.revocations.revoke(tx, CLI_ACTOR, {
          serial: BigInt(cert.serial),
          category: 'lossReport',
        }),
      );
      await t.services.changes.poll();
      expect(await ocspStatus('sign', cert.serial)).toMatchObject({
        type: 'revoked',
        reason: 'keyCompromise',
      });
    });
  });

  describe('supersession', () => {
    it('revokes the previous signing certificate as superseded; the auth one is untouched', async () => {
      const r = await registerJpkiResident(t, 'municipality', '131016', { name: '更新　一郎' });
      const sign1 = await issue(r.residentCode, 'sign');
      const auth1 = await issue(r.residentCode, 'auth');
      const sign2 = await issue(r.residentCode, 'sign');
      expect(BigInt(sign2.serial)).toBeGreaterThan(BigInt(auth1.serial));

      const old = await ocspStatus('sign', sign1.serial);
      expect(old).toMatchObject({ type: 'revoked', reason: 'superseded' });
      expect(await ocspStatus('sign', sign2.serial)).toEqual({ type: 'good' });
      expect(await ocspStatus('auth', auth1.serial)).toEqual({ type: 'good' });

      const rec = await t.database.db.query<{
        category: string;
        crl_reason: string;
        superseded_by: string | null;
      }>(
        'SELECT category, crl_reason, superseded_by::text AS superseded_by FROM jpki_revocations WHERE serial = $1',
        [sign1.serial],
      );
      expect(rec.rows).toEqual([
        { category: 'request', crl_reason: 'superseded', superseded_by: sign2.serial },
      ]);

      // The next CRL lists it with reason superseded; openssl agrees.
      await publishCrls();
      const crl = await saveCrl('sign', '131016.crl', 'superseded.crl.pem');
      const entries = parseCrlSummary(crl.der).entries;
      expect(entries).toContainEqual(
        expect.objectContaining({ serial: BigInt(sign1.serial), reason: 'superseded' }),
      );
      expect(entries.map((e) => e.serial)).not.toContain(BigInt(sign2.serial));
      const authCrl = parseCrlSummary((await saveCrl('auth', '131016.crl', 'a.crl.pem')).der);
      expect(authCrl.entries.map((e) => e.serial)).not.toContain(BigInt(auth1.serial));

      dir.write('sup1.pem', sign1.certificate);
      dir.write('sup2.pem', sign2.certificate);
      const v1 = dir.run([
        'verify',
        '-crl_check',
        '-CAfile',
        'sign-ca.pem',
        '-CRLfile',
        crl.path,
        'sup1.pem',
      ]);
      expect(v1.stderr).toContain('certificate revoked');
      const v2 = dir.run([
        'verify',
        '-crl_check',
        '-CAfile',
        'sign-ca.pem',
        '-CRLfile',
        crl.path,
        'sup2.pem',
      ]);
      expect(v2.stdout, v2.stderr).toBe('sup2.pem: OK\n');
      const text = dir.run(['crl', '-in', crl.path, '-noout', '-text']).stdout;
      expect(text).toMatch(
        new RegExp(
          `Serial Number: 0*${BigInt(sign1.serial).toString(16).toUpperCase()}\\n[^\\n]*\\n[^\\n]*\\n[^\\n]*\\n\\s+Superseded\\n`,
        ),
      );
    });
  });

  // -------------------------------------------------------------------------------------------
  // 5. The revocation route
  // -------------------------------------------------------------------------------------------

  describe('POST /v1/jpki/certificates/{serial}/revocation', () => {
    let a: RegisteredResident;
    let aSign: Issued;
    let aAuth: Issued;
    let bSign: Issued;
    beforeAll(async () => {
      a = await registerJpkiResident(t, 'municipality', '131016', { name: '失効　花子' });
      aSign = await issue(a.residentCode, 'sign');
      aAuth = await issue(a.residentCode, 'auth');
      const b = await registerJpkiResident(t, 'municipality', '131016', { name: '誤記　次郎' });
      bSign = await issue(b.residentCode, 'sign');
    });

    it('records a request as cessationOfOperation (201), and refuses a second revocation (409)', async () => {
      const r = await revoke(aSign.serial, 'request');
      expect(r.statusCode, r.body).toBe(201);
      expect(r.json()).toEqual({
        serial: aSign.serial,
        reason: 'request',
        crlReason: 'cessationOfOperation',
        revokedAt: t.clock.now().toISOString(),
      });
      const again = await revoke(aSign.serial, 'lossReport');
      expect(again.statusCode, again.body).toBe(409);
      expect(again.json()).toMatchObject({ code: 'jpki.already-revoked' });
      expect(await ocspStatus('sign', aSign.serial)).toMatchObject({
        type: 'revoked',
        reason: 'cessationOfOperation',
      });
    });

    it('answers another municipality 404; a CA operator may revoke (lossReport → keyCompromise)', async () => {
      const other = await revoke(aAuth.serial, 'request', 'municipality2');
      expect(other.statusCode, other.body).toBe(404);
      expect(other.json()).toMatchObject({ code: 'jpki.certificate-not-found' });
      expect(other.body).not.toContain('失効');
      expect(await ocspStatus('auth', aAuth.serial)).toEqual({ type: 'good' });

      const r = await revoke(aAuth.serial, 'lossReport', 'opCa');
      expect(r.statusCode, r.body).toBe(201);
      expect(r.json()).toMatchObject({ reason: 'lossReport', crlReason: 'keyCompromise' });
      expect(await ocspStatus('auth', aAuth.serial)).toMatchObject({
        type: 'revoked',
        reason: 'keyCompromise',
      });
    });

    it('records recordError as affiliationChanged and a notice to the holder', async () => {
      const r = await revoke(bSign.serial, 'recordError');
      expect(r.statusCode, r.body).toBe(201);
      expect(r.json()).toMatchObject({ reason: 'recordError', crlReason: 'affiliationChanged' });
      const notices = await t.database.db.query<{ reason: string; delivered: boolean }>(
        `SELECT reason, delivered_at IS NOT NULL AS delivered FROM jpki_holder_notices
          WHERE serial = $1`,
        [bSign.serial],
      );
      expect(notices.rows).toEqual([{ reason: 'recordError', delivered: false }]);
    });

    it('audits every revocation as jpki.certificate.revoke', async () => {
      expect(await auditRows('jpki.certificate.revoke', aSign.serial)).toEqual([
        expect.objectContaining({
          actor_name: 'municipality',
          outcome: 'success',
          details: expect.objectContaining({
            category: 'request',
            crlReason: 'cessationOfOperation',
          }) as unknown,
        }),
      ]);
      expect(await auditRows('jpki.certificate.revoke', aAuth.serial)).toEqual([
        expect.objectContaining({
          actor_name: 'opCa',
          details: expect.objectContaining({ category: 'lossReport' }) as unknown,
        }),
      ]);
      expect(await auditRows('jpki.certificate.revoke', bSign.serial)).toEqual([
        expect.objectContaining({
          details: expect.objectContaining({ category: 'recordError' }) as unknown,
        }),
      ]);
    });

    it('refuses unknown serials, bad bodies, verifiers and anonymous callers', async () => {
      const unknown = await revoke('99999999', 'request', 'opCa');
      expect(unknown.statusCode).toBe(404);
      expect(unknown.json()).toMatchObject({ code: 'jpki.certificate-not-found' });
      expect((await revoke('99999999', 'request')).statusCode).toBe(404);
      expect((await revoke('0', 'request', 'opCa')).statusCode).toBe(400);
      const bad = await t.app.inject({
        method: 'POST',
        url: `/v1/jpki/certificates/${holderSign.serial}/revocation`,
        headers: t.auth('municipality'),
        payload: { reason: 'issuerKeyCompromise' },
      });
      expect(bad.statusCode).toBe(400);
      const verifier = await revoke(holderSign.serial, 'request', 'signatureVerifier');
      expect(verifier.statusCode).toBe(403);
      expect((await revoke(holderSign.serial, 'request', null)).statusCode).toBe(401);
      expect(await ocspStatus('sign', holderSign.serial)).toEqual({ type: 'good' });
    });
  });

  // -------------------------------------------------------------------------------------------
  // 6. CRLs
  // -------------------------------------------------------------------------------------------

  describe('CRLs (失効情報ファイル)', () => {
    let c: Issued;
    let elsewhere: Issued;
    let crlBefore: { path: string; der: Buffer };
    beforeAll(async () => {
      const r = await registerJpkiResident(t, 'municipality', '131016', { name: '検証　三郎' });
      c = await issue(r.residentCode, 'sign');
      const y = await registerJpkiResident(t, 'municipality2', '141046', {
        name: '横浜　四郎',
        address: '神奈川県横浜市中区港町1丁目1番地',
      });
      elsewhere = await issue(y.residentCode, 'sign', undefined, 'municipality2');
      dir.write('crl-leaf.pem', c.certificate);
      dir.write('yokohama.pem', elsewhere.certificate);
      await publishCrls();
    });

    it('serves a partition CRL to signature verifiers only', async () => {
      crlBefore = await saveCrl('sign', '131016.crl', 'before.crl.pem');
      const anonymous = await getCrl('sign', '131016.crl', null);
      expect(anonymous.statusCode).toBe(401);
      const wrong = await getCrl('sign', '131016.crl', 'authVerifier');
      expect(wrong.statusCode).toBe(403);
      expect(wrong.json()).toMatchObject({ code: 'jpki.wrong-verifier' });
      expect((await getCrl('auth', '131016.crl', 'signatureVerifier')).statusCode).toBe(403);
      expect((await getCrl('auth', '131016.crl')).statusCode).toBe(200);
      for (const actor of ['municipality', 'nationalAgency', 'resident']) {
        expect((await getCrl('sign', '131016.crl', actor)).statusCode).toBe(403);
      }
      expect((await getCrl('sign', '999999.crl')).statusCode).toBe(404);
      expect((await getCrl('sign', 'index.html')).statusCode).toBe(404);
    });

    it('is served at the URL the certificate names', async () => {
      const dp = dir.run([
        'x509',
        '-in',
        'crl-leaf.pem',
        '-noout',
        '-ext',
        'crlDistributionPoints',
      ]);
      const url = /URI:(\S+)/.exec(dp.stdout)?.[1];
      expect(url).toBe(`${t.config.publicUrl}/crl/sign/131016.crl?generation=1`);
      const r = await t.app.inject({
        url: new URL(url!).pathname + new URL(url!).search,
        headers: t.auth('signatureVerifier'),
      });
      expect(r.statusCode).toBe(200);
      expect(r.rawPayload.equals(crlBefore.der)).toBe(true);
    });

    it('passes openssl verify -crl_check before revocation', () => {
      const v = dir.run([
        'verify',
        '-crl_check',
        '-CAfile',
        'sign-ca.pem',
        '-CRLfile',
        crlBefore.path,
        'crl-leaf.pem',
      ]);
      expect(v.stdout, v.stderr).toBe('crl-leaf.pem: OK\n');
      const text = dir.run([
        'crl',
        '-in',
        crlBefore.path,
        '-noout',
        '-text',
        '-CAfile',
        'sign-ca.pem',
      ]);
      expect(text.stderr).toContain('verify OK');
      expect(text.stdout).toMatch(/Next Update: /);
    });

    it('carries an issuing distribution point equal to the certificate’s CRL distribution point', () => {
      const cert = parseCertificate(fromPem(c.certificate, 'CERTIFICATE'));
      const crldp = extension(cert, OIDS.cRLDistributionPoints)!;
      // CRLDistributionPoints { DistributionPoint { [0] distributionPoint } }
      const certDp = parseDer(crldp.value).children[0]!.children[0]!;
      const idp = parseCrlSummary(crlBefore.der).issuingDistributionPoint!;
      // IssuingDistributionPoint { [0] distributionPoint, [1] onlyContainsUserCerts }
      const crlDp = parseDer(idp).children[0]!;
      expect(crlDp.bytes.equals(certDp.bytes)).toBe(true);
      const text = dir.run(['crl', '-in', crlBefore.path, '-noout', '-text']).stdout;
      expect(text).toContain('X509v3 Issuing Distribution Point: critical');
      expect(text).toContain('Only User Certificates');
      expect(text).toContain(
        'DirName:C = JP, O = JPKI, OU = JPKI for digital signature, OU = CRL Distribution Points, OU = Tokyo-to, CN = Chiyoda-ku CRLDP',
      );
    });

    it('is not accepted by openssl for a certificate of another municipality', async () => {
      const wrongScope = dir.run([
        'verify',
        '-crl_check',
        '-CAfile',
        'sign-ca.pem',
        '-CRLfile',
        crlBefore.path,
        'yokohama.pem',
      ]);
      expect(wrongScope.status).not.toBe(0);
      expect(wrongScope.stderr).toContain('different CRL scope');
      const own = await saveCrl('sign', '141046.crl', 'yokohama.crl.pem');
      const ok = dir.run([
        'verify',
        '-crl_check',
        '-CAfile',
        'sign-ca.pem',
        '-CRLfile',
        own.path,
        'yokohama.pem',
      ]);
      expect(ok.stdout, ok.stderr).toBe('yokohama.pem: OK\n');
    });

    it('lists a revocation in the next CRL: openssl then reports "certificate revoked"', async () => {
      const r = await revoke(c.serial, 'request');
      expect(r.statusCode, r.body).toBe(201);
      // The published file does not change until the next publication.
      const unchanged = await getCrl('sign', '131016.crl');
      expect(unchanged.rawPayload.equals(crlBefore.der)).toBe(true);

      const report = await publishCrls(); // what `kiban crl publish` runs
      expect(report.crls).toBeGreaterThan(0);
      const after = await saveCrl('sign', '131016.crl', 'after.crl.pem');
      const v = dir.run([
        'verify',
        '-crl_check',
        '-CAfile',
        'sign-ca.pem',
        '-CRLfile',
        after.path,
        'crl-leaf.pem',
      ]);
      expect(v.status).not.toBe(0);
      expect(v.stderr).toContain('error 23 at 0 depth lookup: certificate revoked');
      const summary = parseCrlSummary(after.der);
      expect(summary.entries).toContainEqual(
        expect.objectContaining({ serial: BigInt(c.serial), reason: 'cessationOfOperation' }),
      );
      expect(summary.crlNumber!).toBeGreaterThan(parseCrlSummary(crlBefore.der).crlNumber!);
      const text = dir.run(['crl', '-in', after.path, '-noout', '-text']).stdout;
      expect(text).toContain('Cessation Of Operation');
    });

    it('serves the ARL, which openssl verifies and scopes to CA certificates', async () => {
      const arl = await saveCrl('sign', 'arl.crl', 'arl.crl.pem');
      const checked = dir.run([
        'crl',
        '-in',
        arl.path,
        '-noout',
        '-text',
        '-CAfile',
        'sign-ca.pem',
      ]);
      expect(checked.status, checked.stderr).toBe(0);
      expect(checked.stderr).toContain('verify OK');
      expect(checked.stdout).toContain('Only CA Certificates');
      expect(checked.stdout).toContain('No Revoked Certificates.');
      // Whole-chain checking with the ARL for the root and the partition CRL for the leaf.
      const partition = await saveCrl('sign', '131016.crl', 'p.crl.pem');
      dir.write('both.crl.pem', Buffer.concat([dir.read('arl.crl.pem'), dir.read('p.crl.pem')]));
      const all = dir.run([
        'verify',
        '-crl_check_all',
        '-CAfile',
        'sign-ca.pem',
        '-CRLfile',
        'both.crl.pem',
        'holder-sign.pem',
      ]);
      expect(all.stdout, all.stderr).toBe('holder-sign.pem: OK\n');
      expect(partition.der.length).toBeGreaterThan(0);
      // The ARL alone does not cover an end-entity certificate.
      const leafWithArl = dir.run([
        'verify',
        '-crl_check',
        '-CAfile',
        'sign-ca.pem',
        '-CRLfile',
        arl.path,
        'holder-sign.pem',
      ]);
      expect(leafWithArl.stderr).toContain('different CRL scope');
      expect((await getCrl('auth', 'arl.crl')).statusCode).toBe(200);
    });
  });

  // -------------------------------------------------------------------------------------------
  // 7. OCSP against the running responder
  // -------------------------------------------------------------------------------------------

  describe('OCSP responder on a real port', () => {
    let base: string;
    let leaf: Issued;
    let leafAuth: Issued;

    const ocsp = (args: readonly string[]) => opensslAsync(args, { cwd: dir.path });
    const query = (
      kind: 'sign' | 'auth',
      cert: string,
      extra: readonly string[] = [],
      actor = verifierOf(kind),
      path = `/ocsp/${kind}`,
    ) =>
      ocsp([
        'ocsp',
        '-issuer',
        `${kind}-ca.pem`,
        '-cert',
        cert,
        '-url',
        `${base}${path}`,
        '-header',
        `Authorization=Bearer ${t.tokens[actor]!}`,
        '-CAfile',
        `${kind}-ca.pem`,
        '-timeout',
        '30',
        ...extra,
      ]);

    beforeAll(async () => {
      await t.app.listen({ port: 0, host: '127.0.0.1' });
      base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
      const r = await registerJpkiResident(t, 'municipality', '131016', { name: '応答　五郎' });
      leaf = await issue(r.residentCode, 'sign');
      leafAuth = await issue(r.residentCode, 'auth');
      dir.write('ocsp-leaf.pem', leaf.certificate);
      dir.write('ocsp-auth.pem', leafAuth.certificate);
    });

    it('answers good, with and without a nonce, signed by a delegated responder', async () => {
      const withNonce = await query('sign', 'ocsp-leaf.pem');
      expect(withNonce.status, withNonce.stderr + withNonce.stdout).toBe(0);
      expect(withNonce.stderr + withNonce.stdout).toContain('Response verify OK');
      expect(withNonce.stdout).toContain('ocsp-leaf.pem: good');
      expect(withNonce.stderr).not.toContain('WARNING'); // the nonce was echoed
      const noNonce = await query('sign', 'ocsp-leaf.pem', ['-no_nonce']);
      expect(noNonce.stderr + noNonce.stdout).toContain('Response verify OK');
      expect(noNonce.stdout).toContain('ocsp-leaf.pem: good');
      const auth = await query('auth', 'ocsp-auth.pem');
      expect(auth.stderr + auth.stdout).toContain('Response verify OK');
      expect(auth.stdout).toContain('ocsp-auth.pem: good');
      // The signer is the generation's responder certificate, not the CA key.
      const text = await query('sign', 'ocsp-leaf.pem', ['-resp_text', '-no_nonce']);
      expect(text.stdout).toContain('OCSP Signing');
      expect(text.stdout).toContain('OCSP No Check');
    });

    it('reports a revocation at once (no CRL publication), with its reason', async () => {
      const r = await revoke(leaf.serial, 'lossReport');
      expect(r.statusCode, r.body).toBe(201);
      for (const extra of [[], ['-no_nonce']]) {
        const q = await query('sign', 'ocsp-leaf.pem', extra);
        expect(q.stderr + q.stdout).toContain('Response verify OK');
        expect(q.stdout).toContain('ocsp-leaf.pem: revoked');
        expect(q.stdout).toContain('Reason: keyCompromise');
        expect(q.stdout).toMatch(/Revocation Time: /);
      }
      // The authentication certificate of the same holder stays good.
      const auth = await query('auth', 'ocsp-auth.pem', ['-no_nonce']);
      expect(auth.stdout).toContain('ocsp-auth.pem: good');
    });

    it('answers the GET form (base64 of the request in the path)', async () => {
      for (const [name, nonce] of [
        ['get', ['-no_nonce']],
        ['get-nonce', []],
      ] as const) {
        const made = await ocsp([
          'ocsp',
          '-issuer',
          'sign-ca.pem',
          '-cert',
          'ocsp-leaf.pem',
          ...nonce,
          '-reqout',
          `${name}.req`,
        ]);
        expect(made.status, made.stderr).toBe(0);
        const b64 = dir.read(`${name}.req`).toString('base64');
        const res = await fetch(`${base}/ocsp/sign/${encodeURIComponent(b64)}`, {
          headers: t.auth('signatureVerifier'),
        });
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')).toBe('application/ocsp-response');
        dir.write(`${name}.resp`, Buffer.from(await res.arrayBuffer()));
      }
      const plain = await ocsp([
        'ocsp',
        '-respin',
        'get.resp',
        '-issuer',
        'sign-ca.pem',
        '-cert',
        'ocsp-leaf.pem',
        '-CAfile',
        'sign-ca.pem',
        '-no_nonce',
      ]);
      expect(plain.stderr + plain.stdout).toContain('Response verify OK');
      expect(plain.stdout).toContain('ocsp-leaf.pem: revoked');
      expect(plain.stdout).toContain('Reason: keyCompromise');
      // With a nonce: check the response against the request itself (-reqin, no -cert).
      const nonced = await ocsp([
        'ocsp',
        '-reqin',
        'get-nonce.req',
        '-respin',
        'get-nonce.resp',
        '-CAfile',
        'sign-ca.pem',
        '-resp_text',
      ]);
      expect(nonced.stderr + nonced.stdout).toContain('Response verify OK');
      expect(nonced.stderr).not.toContain('nonce');
      expect(nonced.stdout).toContain('Cert Status: revoked');
      expect(nonced.stdout).toContain('OCSP Nonce');
    });

    it('answers unknown for a serial it never issued', async () => {
      const q = await ocsp([
        'ocsp',
        '-issuer',
        'sign-ca.pem',
        '-serial',
        '987654321',
        '-url',
        `${base}/ocsp/sign`,
        '-header',
        `Authorization=Bearer ${t.tokens['signatureVerifier']!}`,
        '-CAfile',
        'sign-ca.pem',
      ]);
      expect(q.stderr + q.stdout).toContain('Response verify OK');
      expect(q.stdout).toContain('987654321: unknown');
    });

    it('refuses the wrong kind of verifier (403) and anonymous callers (401)', async () => {
      const q = await query('sign', 'ocsp-leaf.pem', [], 'authVerifier');
      expect(q.status).not.toBe(0);
      expect(q.stdout).not.toContain('ocsp-leaf.pem:');
      const body = ocspRequestFor(signCaPem, BigInt(leaf.serial));
      const post = (headers: Record<string, string>) =>
        t.app.inject({
          method: 'POST',
          url: '/ocsp/sign',
          headers: { ...headers, 'content-type': 'application/ocsp-request' },
          payload: body,
        });
      const wrong = await post(t.auth('authVerifier'));
      expect(wrong.statusCode).toBe(403);
      expect(wrong.json()).toMatchObject({ code: 'jpki.wrong-verifier' });
      expect((await post({})).statusCode).toBe(401);
      expect((await post(t.auth('municipality'))).statusCode).toBe(403);
      const get = await t.app.inject({
        url: `/ocsp/sign/${encodeURIComponent(body.toString('base64'))}`,
        headers: t.auth('authVerifier'),
      });
      expect(get.statusCode).toBe(403);
    });

    it('answers a certificate of the other CA "unauthorized"', async () => {
      const q = await query(
        'auth',
        'ocsp-auth.pem',
        ['-no_nonce'],
        'signatureVerifier',
        '/ocsp/sign',
      );
      expect(q.stdout + q.stderr).toMatch(/Responder Error: unauthorized \(6\)/);
    });

    it('answers a garbage body with an OCSP malformedRequest response', async () => {
      const r = await t.app.inject({
        method: 'POST',
        url: '/ocsp/sign',
        headers: { ...t.auth('signatureVerifier'), 'content-type': 'application/ocsp-request' },
        payload: Buffer.from('this is not DER'),
      });
      expect(r.statusCode).toBe(200);
      expect(r.headers['content-type']).toBe('application/ocsp-response');
      expect(parseOcspResponse(r.rawPayload)).toEqual({ status: 'malformedRequest', basic: null });
      expect(r.rawPayload.toString('hex')).toBe('30030a0101');
      const get = await t.app.inject({
        url: `/ocsp/sign/${encodeURIComponent('not base64!')}`,
        headers: t.auth('signatureVerifier'),
      });
      expect(get.statusCode).toBe(200);
      expect(parseOcspResponse(get.rawPayload).status).toBe('malformedRequest');
    });

    it('reuses the pre-signed no-nonce response until something changes, then re-signs', async () => {
      const r = await registerJpkiResident(t, 'municipality', '131016', { name: '事前　六郎' });
      const p = await issue(r.residentCode, 'sign');
      const request = ocspRequestFor(signCaPem, BigInt(p.serial));
      const post = async (body: Buffer) => {
        const res = await fetch(`${base}/ocsp/sign`, {
          method: 'POST',
          headers: { ...t.auth('signatureVerifier'), 'content-type': 'application/ocsp-request' },
          body,
        });
        expect(res.status).toBe(200);
        return Buffer.from(await res.arrayBuffer());
      };
      // Any revocation still to be seen by the change feed is seen now: one seen while the
      // first answer is being signed would (rightly) keep it from being cached.
      await t.services.changes.poll();
      const first = await post(request);
      const second = await post(request);
      expect(second.equals(first)).toBe(true);
      const responder = t.services.jpki.ocsp;
      const again = await responder.respond(t.database.db, 'sign', request);
      expect(again.source).toBe('cache');
      expect(again.der.equals(first)).toBe(true);

      // Requests with a nonce are signed live and echo their nonce.
      const nonced = await query('sign', 'ocsp-leaf.pem', ['-respout', 'live.resp']);
      expect(nonced.stdout).toContain('ocsp-leaf.pem: revoked');
      expect(parseOcspResponse(dir.read('live.resp')).basic!.nonce).not.toBeNull();

      // A revocation changes the status: the next no-nonce answer is signed afresh, then reused.
      expect((await revoke(p.serial, 'request')).statusCode).toBe(201);
      await t.services.changes.poll();
      const revoked = await post(request);
      expect(revoked.equals(first)).toBe(false);
      expect(parseOcspResponse(revoked).basic!.responses[0]!.status).toMatchObject({
        type: 'revoked',
        reason: 'cessationOfOperation',
      });
      const cached = await responder.respond(t.database.db, 'sign', request);
      expect(cached.source).toBe('cache');
      expect(cached.der.equals(revoked)).toBe(true);
      dir.write('pre-signed.resp', revoked);
      dir.write('pre-signed.pem', p.certificate);
      const checked = await ocsp([
        'ocsp',
        '-respin',
        'pre-signed.resp',
        '-issuer',
        'sign-ca.pem',
        '-cert',
        'pre-signed.pem',
        '-CAfile',
        'sign-ca.pem',
        '-no_nonce',
      ]);
      expect(checked.stderr + checked.stdout).toContain('Response verify OK');
      expect(checked.stdout).toContain('pre-signed.pem: revoked');

      // With the clock moved on (well within the response's validity) and nothing changed, the
      // very same pre-signed bytes come back: producedAt stays where it was.
      t.clock.advance(60_000);
      const later = await post(request);
      expect(later.equals(revoked)).toBe(true);
      expect(parseOcspResponse(later).basic!.producedAt.getTime()).toBeLessThan(
        t.clock.now().getTime(),
      );
    });
  });
});

// ---------------------------------------------------------------------------------------------
// 5th-birthday validity, end to end on fixed dates
// ---------------------------------------------------------------------------------------------

describe('validity to the 5th birthday after issuance (end to end)', () => {
  let t: TestApp;
  let dir: TempDir;
  beforeAll(async () => {
    // 2027-03-01 09:00 JST.
    t = await createTestApp({ jpki: true, clock: new FakeClock('2027-03-01T00:00:00Z') });
    dir = makeTempDir('kiban-jpki-validity-');
  });
  afterAll(async () => {
    await t?.close();
    dir?.remove();
  });

  const issueFor = async (r: RegisteredResident, kind: 'sign' | 'auth') => {
    const res = await issueCardCertificate(t, 'municipality', {
      kind,
      residentCode: r.residentCode,
      publicKey: rsaKey().publicKeyPem,
    });
    expect(res.statusCode, res.body).toBe(201);
    const pem = res.json<Issued>().certificate;
    const file = dir.write(`${kind}-${r.residentCode}.pem`, pem);
    return {
      notAfter: parseCertificate(fromPem(pem, 'CERTIFICATE')).notAfter,
      printed: dir.run(['x509', '-in', file, '-noout', '-enddate']).stdout,
    };
  };

  it('born on 29 February: the 5th birthday falls on 29 February 2032', async () => {
    // Issued 2027-03-01: birthdays 2028-02-29, 2029-02-28, 2030-02-28, 2031-02-28, 2032-02-29.
    const r = await registerJpkiResident(t, 'municipality', '131016', {
      name: '閏年　花子',
      birthDate: '2000-02-29',
    });
    for (const kind of ['sign', 'auth'] as const) {
      const c = await issueFor(r, kind);
      expect(c.notAfter.toISOString()).toBe('2032-02-29T14:59:59.000Z');
      expect(c.printed).toBe(`notAfter=${opensslEnd('2032-02-29')}\n`);
    }
  });

  it('issued on the birthday (in Japan): that birthday does not count', async () => {
    // 2027-06-14T15:00Z is 2027-06-15 00:00 JST — the holder's birthday in Japan, not in UTC.
    t.clock.set('2027-06-14T15:00:00Z');
    const r = await registerJpkiResident(t, 'municipality', '131016', {
      name: '誕生　太郎',
      sex: 'male',
      birthDate: '1990-06-15',
    });
    const c = await issueFor(r, 'sign');
    expect(c.notAfter.toISOString()).toBe('2032-06-15T14:59:59.000Z');
    expect(c.printed).toBe(`notAfter=${opensslEnd('2032-06-15')}\n`);
  });

  it('born on 29 February and issued on 28 February of a common year (not the birthday)', async () => {
    t.clock.set('2029-02-28T03:00:00Z');
    const r = await registerJpkiResident(t, 'municipality', '131016', {
      name: '閏日　次郎',
      sex: 'male',
      birthDate: '2004-02-29',
    });
    // 28 February is the birthday in a common year (民法第143条第2項), so it does not count:
    // 2030-02-28, 2031-02-28, 2032-02-29, 2033-02-28, 2034-02-28.
    const c = await issueFor(r, 'auth');
    expect(c.notAfter.toISOString()).toBe('2034-02-28T14:59:59.000Z');
  });
});
