/**
 * 異動等失効情報 through the outbox: registry changes void certificates as 第12条 / 第31条
 * say, the 30-day move-out lapse is scheduled, and mobile certificates follow their card
 * certificate (第16条の13 / 第35条の13).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../src/platform/clock.ts';
import { createTestApp, type TestApp } from './support/app.ts';
import {
  issueCardCertificate,
  notifyIdentityChange,
  opensslAsync,
  type RegisteredResident,
  registerJpkiResident,
} from './support/jpki.ts';
import { mobileApplication, rsaKey, type TestKey } from './support/pki.ts';

interface Held {
  sign: string;
  auth: string;
  signKey: TestKey;
  signPem: string;
  authPem: string;
}

async function issueBoth(t: TestApp, r: RegisteredResident, actor = 'municipality'): Promise<Held> {
  const signKey = rsaKey();
  const sign = await issueCardCertificate(t, actor, {
    kind: 'sign',
    residentCode: r.residentCode,
    publicKey: signKey.publicKeyPem,
  });
  const auth = await issueCardCertificate(t, actor, {
    kind: 'auth',
    residentCode: r.residentCode,
    publicKey: rsaKey().publicKeyPem,
  });
  expect(sign.statusCode, sign.body).toBe(201);
  expect(auth.statusCode, auth.body).toBe(201);
  const s = sign.json<{ serial: string; certificate: string }>();
  const a = auth.json<{ serial: string; certificate: string }>();
  return {
    sign: s.serial,
    auth: a.serial,
    signKey,
    signPem: s.certificate,
    authPem: a.certificate,
  };
}

async function revocation(
  t: TestApp,
  serial: string,
): Promise<{ category: string; crl_reason: string; cause: string | null } | null> {
  const r = await t.database.db.query<{
    category: string;
    crl_reason: string;
    cause: string | null;
  }>('SELECT category, crl_reason, cause FROM jpki_revocations WHERE serial = $1', [serial]);
  return r.rows[0] ?? null;
}

const MOVED_ADDRESS = '神奈川県横浜市中区港町1丁目1番地';

describe('registry-driven revocation (異動等失効情報)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ jpki: true, clock: new FakeClock('2026-04-01T01:00:00Z') });
  });
  afterAll(async () => t.close());

  const deliver = async (): Promise<void> => {
    const results = await t.services.outbox.drain();
    expect(results.every((r) => r.failed === 0 && r.parked === 0)).toBe(true);
  };

  it('an address change within the municipality voids the signing certificate only', async () => {
    const r = await registerJpkiResident(t, 'municipality', '131016', { name: '転居　一郎' });
    const held = await issueBoth(t, r);
    const moved = await notifyIdentityChange(t, 'municipality', {
      municipalityCode: '131016',
      changeReason: 'moveWithin',
      record: { ...r.record, address: '東京都千代田区丸の内1丁目1番1号' },
    });
    expect(moved.statusCode, moved.body).toBe(201);
    await deliver();
    const record = await revocation(t, held.sign);
    expect(record).toMatchObject({ category: 'registryChange', crl_reason: 'affiliationChanged' });
    expect(record?.cause).toMatch(/^event:\d+$/);
    expect(await revocation(t, held.auth)).toBeNull();
    // Delivered once: draining again changes nothing.
    await deliver();
    const n = await t.database.db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM jpki_revocations WHERE serial = ANY($1::bigint[])',
      [[held.sign, held.auth]],
    );
    expect(n.rows[0]?.n).toBe(1);
  });

  it('a change of none of the four items (the reading only) voids nothing', async () => {
    const r = await registerJpkiResident(t, 'municipality', '131016', { name: '読方　二郎' });
    const held = await issueBoth(t, r);
    const fixed = await notifyIdentityChange(t, 'municipality', {
      municipalityCode: '131016',
      changeReason: 'officialCorrection',
      record: { ...r.record, nameKana: 'ヨミカタ　ジロウ' },
    });
    expect(fixed.statusCode, fixed.body).toBe(201);
    await deliver();
    expect(await revocation(t, held.sign)).toBeNull();
    expect(await revocation(t, held.auth)).toBeNull();
  });

  it('death voids both, and a name change voids the card and (cascade) the mobile signing certificate', async () => {
    const dead = await registerJpkiResident(t, 'municipality', '131016', { name: '死亡　三郎' });
    const deadHeld = await issueBoth(t, dead);
    const died = await notifyIdentityChange(t, 'municipality', {
      municipalityCode: '131016',
      changeReason: 'death',
      record: dead.record,
    });
    expect(died.statusCode, died.body).toBe(201);

    const r = await registerJpkiResident(t, 'municipality', '131016', { name: '改名　四郎' });
    const held = await issueBoth(t, r);
    const mobile = await t.app.inject({
      method: 'POST',
      url: '/v1/jpki/mobile-certificates',
      payload: mobileApplication({
        kind: 'sign',
        phone: rsaKey(),
        cardKey: held.signKey.privateKey,
        cardCertificate: held.signPem,
        record: r.record,
        signedAt: t.clock.now(),
      }),
    });
    expect(mobile.statusCode, mobile.body).toBe(201);
    const mobileSerial = mobile.json<{ serial: string }>().serial;
    const renamed = await notifyIdentityChange(t, 'municipality', {
      municipalityCode: '131016',
      changeReason: 'nameChange',
      record: { ...r.record, name: '改名　史郎' },
    });
    expect(renamed.statusCode, renamed.body).toBe(201);
    await deliver();

    expect(await revocation(t, deadHeld.sign)).toMatchObject({ category: 'registryChange' });
    expect(await revocation(t, deadHeld.auth)).toMatchObject({ category: 'registryChange' });
    expect(await revocation(t, held.sign)).toMatchObject({ category: 'registryChange' });
    expect(await revocation(t, held.auth)).toBeNull();
    expect(await revocation(t, mobileSerial)).toEqual({
      category: 'cardCertificateRevoked',
      crl_reason: 'cessationOfOperation',
      cause: `certificate:${held.sign}`,
    });
  });

  it('a move-out lapses the authentication certificate after 30 days with no move-in', async () => {
    t.clock.set('2026-05-01T01:00:00Z');
    const r = await registerJpkiResident(t, 'municipality', '131016', { name: '転出　五郎' });
    const held = await issueBoth(t, r);
    const out = await notifyIdentityChange(t, 'municipality', {
      municipalityCode: '131016',
      changeReason: 'moveOut',
      plannedMoveOutDate: '2026-05-10',
      destination: { municipalityCode: '141046' },
      record: r.record,
    });
    expect(out.statusCode, out.body).toBe(201);
    await deliver();
    expect(await revocation(t, held.auth)).toBeNull();
    // 30 days after 10 May is 9 June; the lapse falls at 00:00 JST on 10 June.
    t.clock.set('2026-06-09T14:59:59Z');
    expect(await t.services.jpki.registryRevocation.processDue(t.database.db)).toEqual([]);
    t.clock.set('2026-06-09T15:00:00Z');
    expect(await t.services.jpki.registryRevocation.processDue(t.database.db)).toEqual([held.auth]);
    expect(await revocation(t, held.auth)).toMatchObject({ category: 'registryChange' });
    // The address has not changed (no move-in): the signing certificate stays valid.
    expect(await revocation(t, held.sign)).toBeNull();
  });

  it('a move-in on day 29 cancels the lapse; the new address voids the signing certificate', async () => {
    t.clock.set('2026-07-01T01:00:00Z');
    const r = await registerJpkiResident(t, 'municipality', '131016', { name: '転入　六郎' });
    const held = await issueBoth(t, r);
    const out = await notifyIdentityChange(t, 'municipality', {
      municipalityCode: '131016',
      changeReason: 'moveOut',
      plannedMoveOutDate: '2026-07-05',
      destination: { municipalityCode: '141046' },
      record: r.record,
    });
    expect(out.statusCode, out.body).toBe(201);
    await deliver();
    t.clock.set('2026-08-03T01:00:00Z'); // day 29 after 5 July
    const moveIn = await notifyIdentityChange(t, 'municipality2', {
      municipalityCode: '141046',
      changeReason: 'moveIn',
      record: { ...r.record, address: MOVED_ADDRESS },
    });
    expect(moveIn.statusCode, moveIn.body).toBe(201);
    await deliver();
    expect(await revocation(t, held.sign)).toMatchObject({ category: 'registryChange' });
    t.clock.set('2026-09-01T00:00:00Z');
    expect(await t.services.jpki.registryRevocation.processDue(t.database.db)).toEqual([]);
    expect(await revocation(t, held.auth)).toBeNull();
  });

  it('a move-out whose planned date is over 30 days past voids the authentication certificate at once', async () => {
    t.clock.set('2026-10-01T01:00:00Z');
    const r = await registerJpkiResident(t, 'municipality', '131016', { name: '遅届　七郎' });
    const held = await issueBoth(t, r);
    t.clock.set('2026-11-20T01:00:00Z');
    const out = await notifyIdentityChange(t, 'municipality', {
      municipalityCode: '131016',
      changeReason: 'moveOut',
      // Relayed late: notice given on 12 October, arriving at the national server on 20 November.
      changeDate: '2026-10-12',
      plannedMoveOutDate: '2026-10-10',
      destination: { municipalityCode: '141046' },
      record: r.record,
    });
    expect(out.statusCode, out.body).toBe(201);
    await deliver();
    expect(await revocation(t, held.auth)).toMatchObject({ category: 'registryChange' });
  });

  it('a run mixing holders and residents without certificates acts as event by event', async () => {
    t.clock.set('2026-10-01T01:00:00Z');
    const scheduled = async (personOf: RegisteredResident): Promise<number> => {
      const r = await t.database.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM jpki_scheduled_revocations s
           JOIN jpki_certificates c ON c.serial = s.serial
          WHERE c.resident_code = $1`,
        [personOf.residentCode],
      );
      return r.rows[0]!.n;
    };
    const moveOut = (r: RegisteredResident) =>
      notifyIdentityChange(t, 'municipality', {
        municipalityCode: '131016',
        changeReason: 'moveOut',
        plannedMoveOutDate: '2026-10-05',
        destination: { municipalityCode: '141046' },
        record: r.record,
      });
    const moveIn = (r: RegisteredResident) =>
      notifyIdentityChange(t, 'municipality2', {
        municipalityCode: '141046',
        changeReason: 'moveIn',
        record: { ...r.record, address: MOVED_ADDRESS },
      });
    // D held certificates, moved out (a lapse is scheduled), then had both revoked on request:
    // D now holds none, and its move-in must still cancel the scheduled lapse.
    const d = await registerJpkiResident(t, 'municipality', '131016', { name: '取消　四郎' });
    const dHeld = await issueBoth(t, d);
    expect((await moveOut(d)).statusCode).toBe(201);
    await deliver();
    expect(await scheduled(d)).toBe(1);
    for (const serial of [dHeld.sign, dHeld.auth]) {
      const revoked = await t.app.inject({
        method: 'POST',
        url: `/v1/jpki/certificates/${serial}/revocation`,
        headers: t.auth('municipality'),
        payload: { reason: 'request' },
      });
      expect(revoked.statusCode, revoked.body).toBe(201);
    }
    // One run: A (a holder) moves out and in again; B and C hold nothing; D moves in.
    const a = await registerJpkiResident(t, 'municipality', '131016', { name: '一連　一郎' });
    const aHeld = await issueBoth(t, a);
    const b = await registerJpkiResident(t, 'municipality', '131016', { name: '一連　二郎' });
    const c = await registerJpkiResident(t, 'municipality', '131016', { name: '一連　三郎' });
    await deliver();
    expect((await moveOut(a)).statusCode).toBe(201);
    const bMoved = await notifyIdentityChange(t, 'municipality', {
      municipalityCode: '131016',
      changeReason: 'moveWithin',
      record: { ...b.record, address: '東京都千代田区丸の内1丁目1番1号' },
    });
    expect(bMoved.statusCode, bMoved.body).toBe(201);
    expect((await moveOut(c)).statusCode).toBe(201);
    expect((await moveIn(a)).statusCode).toBe(201);
    expect((await moveIn(c)).statusCode).toBe(201);
    expect((await moveIn(d)).statusCode).toBe(201);
    await deliver();
    // A: the new address voids the signing certificate; the move-in cancelled the lapse.
    expect(await revocation(t, aHeld.sign)).toMatchObject({ category: 'registryChange' });
    expect(await revocation(t, aHeld.auth)).toBeNull();
    expect(await scheduled(a)).toBe(0);
    // D: the lapse is cancelled although D holds no valid certificate.
    expect(await scheduled(d)).toBe(0);
    // B and C: nothing to void, nothing scheduled.
    const others = await t.database.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM jpki_certificates WHERE resident_code = ANY($1::bpchar[])`,
      [[b.residentCode, c.residentCode]],
    );
    expect(others.rows[0]!.n).toBe(0);
    t.clock.set('2026-12-01T00:00:00Z');
    expect(await t.services.jpki.registryRevocation.processDue(t.database.db)).toEqual([]);
    expect(await revocation(t, aHeld.auth)).toBeNull();
  });

  it('emigration keeping the card: the signing certificate lapses on the departure date, the authentication one stays', async () => {
    t.clock.set('2027-01-05T01:00:00Z');
    const r = await registerJpkiResident(t, 'municipality', '131016', { name: '国外　八郎' });
    const held = await issueBoth(t, r);
    const out = await notifyIdentityChange(t, 'municipality', {
      municipalityCode: '131016',
      changeReason: 'emigration',
      plannedMoveOutDate: '2027-01-20',
      destination: { abroad: true },
      record: r.record,
    });
    expect(out.statusCode, out.body).toBe(201);
    await deliver();
    expect(await revocation(t, held.sign)).toBeNull();
    t.clock.set('2027-01-19T14:59:59Z');
    expect(await t.services.jpki.registryRevocation.processDue(t.database.db)).toEqual([]);
    t.clock.set('2027-01-19T15:00:00Z'); // 00:00 JST on the departure date
    expect(await t.services.jpki.registryRevocation.processDue(t.database.db)).toEqual([held.sign]);
    expect(await revocation(t, held.auth)).toBeNull();
  });
});

describe('the spine end to end: an address change, then openssl ocsp', () => {
  let t: TestApp;
  let dir: string;
  beforeAll(async () => {
    t = await createTestApp({
      jpki: true,
      clock: new FakeClock(new Date(Math.floor(Date.now() / 1000) * 1000)),
      env: { KIBAN_OUTBOX_IDLE_MS: '50' },
    });
    dir = mkdtempSync(path.join(tmpdir(), 'kiban-spine-'));
  });
  afterAll(async () => {
    await t.services.outbox.stop();
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the signing certificate is revoked, the authentication certificate stays good', async () => {
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    t.services.outbox.start();
    const address = t.app.server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const r = await registerJpkiResident(t, 'municipality', '131016', { name: '背骨　九郎' });
    const held = await issueBoth(t, r);
    const cas = (await t.app.inject({ method: 'GET', url: '/v1/jpki/ca' })).json<{
      cas: { kind: string; certificate: string }[];
    }>().cas;
    for (const kind of ['sign', 'auth']) {
      writeFileSync(
        path.join(dir, `${kind}-ca.pem`),
        cas.find((c) => c.kind === kind)!.certificate,
      );
    }
    writeFileSync(path.join(dir, 'sign.pem'), held.signPem);
    writeFileSync(path.join(dir, 'auth.pem'), held.authPem);
    const ocsp = (kind: 'sign' | 'auth', verifier: string) =>
      opensslAsync(
        [
          'ocsp',
          '-issuer',
          `${kind}-ca.pem`,
          '-cert',
          `${kind}.pem`,
          '-url',
          `http://127.0.0.1:${port}/ocsp/${kind}`,
          '-header',
          `Authorization=Bearer ${t.tokens[verifier]}`,
          '-CAfile',
          `${kind}-ca.pem`,
        ],
        { cwd: dir },
      );
    expect((await ocsp('sign', 'signatureVerifier')).stdout).toContain('sign.pem: good');

    const moved = await t.app.inject({
      method: 'POST',
      url: '/v1/registry/notifications',
      headers: t.auth('municipality'),
      payload: {
        municipalityCode: '131016',
        sequence: 2,
        changeReason: 'moveWithin',
        changeDate: '2026-11-01',
        record: { ...r.record, address: '東京都千代田区丸の内2丁目2番2号' },
      },
    });
    expect(moved.statusCode, moved.body).toBe(201);
    // The runner is woken by the accepted notification; wait for the revocation record.
    for (let i = 0; i < 100 && !(await revocation(t, held.sign)); i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const sign = await ocsp('sign', 'signatureVerifier');
    expect(sign.stdout + sign.stderr).toContain('Response verify OK');
    expect(sign.stdout).toContain('sign.pem: revoked');
    expect(sign.stdout).toContain('Reason: affiliationChanged');
    const auth = await ocsp('auth', 'authVerifier');
    expect(auth.stdout).toContain('auth.pem: good');
  });
});
