/**
 * Holder proof: single-use challenges and the proof that the caller holds the private key of
 * a valid JPKI certificate this CA issued (card and smartphone, signing and authentication).
 */
import { createPrivateKey, sign as cryptoSign, X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CHALLENGE_LIFETIME_MS,
  challengeMessage,
  proveHolder,
  type ChallengePurpose,
} from '../src/jpki/holder-proof.ts';
import { isAppError } from '../src/platform/errors.ts';
import { createTestApp, type TestApp } from './support/app.ts';
import {
  type HeldCertificate,
  issueHeldCertificate,
  type RegisteredResident,
  registerJpkiResident,
} from './support/jpki.ts';
import { makeTempDir, opensslOk } from './support/openssl.ts';
import { rsaKey } from './support/pki.ts';

/** The AppError code (and HTTP status) a promise rejects with. */
async function failure(p: Promise<unknown>): Promise<{ code: string; status: number }> {
  try {
    await p;
  } catch (err) {
    if (isAppError(err)) return { code: err.code, status: err.status };
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('ChallengeService', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => t.close());

  const consume = (id: string, purpose: ChallengePurpose) =>
    t.database.db.transaction((tx) => t.services.challenges.consume(tx, id, purpose));

  it('issues 32 random bytes for five minutes and hands them back once', async () => {
    const db = t.database.db;
    const a = await t.services.challenges.issue(db, 'residentLogin');
    const b = await t.services.challenges.issue(db, 'residentLogin');
    expect(Buffer.from(a.nonce, 'base64')).toHaveLength(32);
    expect(a.nonce).not.toBe(b.nonce);
    expect(a.challengeId).not.toBe(b.challengeId);
    expect(new Date(a.expiresAt).getTime() - t.clock.now().getTime()).toBe(CHALLENGE_LIFETIME_MS);
    expect((await consume(a.challengeId, 'residentLogin')).toString('base64')).toBe(a.nonce);
    expect(await failure(consume(a.challengeId, 'residentLogin'))).toEqual({
      code: 'challenge.used',
      status: 409,
    });
  });

  it('refuses the wrong purpose without spending the challenge', async () => {
    const c = await t.services.challenges.issue(t.database.db, 'consent');
    expect(await failure(consume(c.challengeId, 'residentLogin'))).toEqual({
      code: 'challenge.wrong-purpose',
      status: 400,
    });
    expect((await consume(c.challengeId, 'consent')).toString('base64')).toBe(c.nonce);
  });

  it('refuses an unknown challenge and one answered after five minutes', async () => {
    expect(await failure(consume('00000000-0000-4000-8000-000000000000', 'consent'))).toEqual({
      code: 'challenge.unknown',
      status: 404,
    });
    const c = await t.services.challenges.issue(t.database.db, 'residentLogin');
    t.clock.advance(CHALLENGE_LIFETIME_MS - 1);
    const late = await t.services.challenges.issue(t.database.db, 'residentLogin');
    t.clock.advance(1);
    expect(await failure(consume(c.challengeId, 'residentLogin'))).toEqual({
      code: 'challenge.expired',
      status: 410,
    });
    expect((await consume(late.challengeId, 'residentLogin')).toString('base64')).toBe(late.nonce);
  });

  it('a failed transaction does not spend the challenge', async () => {
    const c = await t.services.challenges.issue(t.database.db, 'consent');
    await expect(
      t.database.db.transaction(async (tx) => {
        await t.services.challenges.consume(tx, c.challengeId, 'consent');
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    expect((await consume(c.challengeId, 'consent')).toString('base64')).toBe(c.nonce);
  });

  it('binds purpose, challenge, nonce and statement into the signed bytes', () => {
    const nonce = Buffer.alloc(32, 7);
    const id = '11111111-1111-4111-8111-111111111111';
    const given = challengeMessage('consent', id, nonce, 'consent=given');
    expect(given.toString('utf8')).toBe(
      `kiban-challenge/v1\nconsent\n${id}\n${nonce.toString('base64')}\nconsent=given`,
    );
    const variants = [
      challengeMessage('consent', id, nonce, 'consent=withdrawn'),
      challengeMessage('residentLogin', id, nonce, 'consent=given'),
      challengeMessage('consent', id.replace('1', '2'), nonce, 'consent=given'),
      challengeMessage('consent', id, Buffer.alloc(32, 8), 'consent=given'),
    ];
    for (const v of variants) expect(v.equals(given)).toBe(false);
  });
});

describe('proveHolder', () => {
  let t: TestApp;
  let holder: RegisteredResident;
  const held: Partial<
    Record<'cardSign' | 'cardAuth' | 'mobileSign' | 'mobileAuth', HeldCertificate>
  > = {};
  const message = Buffer.from('kiban-challenge/v1\nresidentLogin\nprobe\nAAAA\n', 'utf8');

  beforeAll(async () => {
    t = await createTestApp({ jpki: true });
    holder = await registerJpkiResident(t, 'municipality', '131016');
    held.cardSign = await issueHeldCertificate(t, 'municipality', holder, 'sign', 'card');
    held.cardAuth = await issueHeldCertificate(t, 'municipality', holder, 'auth', 'card');
    held.mobileSign = await issueHeldCertificate(
      t,
      'municipality',
      holder,
      'sign',
      'mobile',
      held.cardSign,
    );
    held.mobileAuth = await issueHeldCertificate(
      t,
      'municipality',
      holder,
      'auth',
      'mobile',
      held.cardSign,
    );
  });
  afterAll(async () => t.close());

  const get = (k: keyof typeof held): HeldCertificate => {
    const h = held[k];
    if (!h) throw new Error(`${k} was not issued`);
    return h;
  };
  const prove = (
    kind: 'sign' | 'auth',
    h: { der: Buffer; key: { privateKey: HeldCertificate['key']['privateKey'] } },
    opts: { message?: Buffer; signature?: Buffer } = {},
  ) =>
    t.database.db.transaction((tx) =>
      proveHolder(tx, t.services, {
        kind,
        certificate: h.der,
        message: opts.message ?? message,
        signature: opts.signature ?? cryptoSign('sha256', message, h.key.privateKey),
      }),
    );

  it.each([
    ['cardSign', 'sign', 'card'],
    ['cardAuth', 'auth', 'card'],
    ['mobileSign', 'sign', 'mobile'],
    ['mobileAuth', 'auth', 'mobile'],
  ] as const)('accepts the %s certificate and says whose it is', async (k, kind, medium) => {
    const h = get(k);
    const proven = await prove(kind, h);
    const personRow = await t.database.db.query<{ person_id: string }>(
      'SELECT person_id FROM identity_record_versions WHERE resident_code = $1 LIMIT 1',
      [holder.residentCode],
    );
    expect(proven).toEqual({
      serial: BigInt(h.serial),
      personId: personRow.rows[0]?.person_id,
      residentCode: holder.residentCode,
      medium,
      kind,
      notAfter: new Date(new X509Certificate(h.der).validTo).toISOString(),
    });
  });

  it('refuses a certificate of the other kind', async () => {
    expect(await failure(prove('auth', get('cardSign')))).toEqual({
      code: 'holder-proof.wrong-kind',
      status: 403,
    });
    expect(await failure(prove('sign', get('mobileAuth')))).toEqual({
      code: 'holder-proof.wrong-kind',
      status: 403,
    });
  });

  it('refuses a signature by another key, over other bytes, or malformed', async () => {
    const h = get('cardAuth');
    const other = rsaKey();
    expect(
      await failure(
        prove('auth', h, { signature: cryptoSign('sha256', message, other.privateKey) }),
      ),
    ).toEqual({ code: 'holder-proof.bad-signature', status: 403 });
    expect(
      await failure(prove('auth', h, { message: Buffer.concat([message, Buffer.from('x')]) })),
    ).toEqual({ code: 'holder-proof.bad-signature', status: 403 });
    expect(await failure(prove('auth', h, { signature: Buffer.from('short') }))).toEqual({
      code: 'holder-proof.bad-signature',
      status: 403,
    });
  });

  it('refuses a certificate this CA did not issue, even one reusing an issued serial', async () => {
    const dir = makeTempDir('kiban-holder-proof-');
    try {
      const serial = get('cardAuth').serial;
      opensslOk(
        [
          'req',
          '-x509',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-keyout',
          'key.pem',
          '-out',
          'cert.der',
          '-outform',
          'DER',
          '-subj',
          '/CN=not-jpki',
          '-days',
          '30',
          '-set_serial',
          serial,
        ],
        { cwd: dir.path },
      );
      const der = dir.read('cert.der');
      const key = createPrivateKey(dir.read('key.pem'));
      expect(await failure(prove('auth', { der, key: { privateKey: key } }))).toEqual({
        code: 'holder-proof.unknown-certificate',
        status: 403,
      });
    } finally {
      dir.remove();
    }
    expect(
      await failure(
        t.database.db.transaction((tx) =>
          proveHolder(tx, t.services, {
            kind: 'auth',
            certificate: Buffer.from('not a certificate'),
            message,
            signature: Buffer.alloc(256),
          }),
        ),
      ),
    ).toEqual({ code: 'holder-proof.bad-certificate', status: 400 });
  });

  it('refuses a revoked certificate', async () => {
    const h = await issueHeldCertificate(t, 'municipality', holder, 'auth', 'card');
    expect((await prove('auth', h)).serial).toBe(BigInt(h.serial));
    const res = await t.app.inject({
      method: 'POST',
      url: `/v1/jpki/certificates/${h.serial}/revocation`,
      headers: t.auth('municipality'),
      payload: { reason: 'lossReport' },
    });
    expect(res.statusCode, res.body).toBe(201);
    expect(await failure(prove('auth', h))).toEqual({
      code: 'holder-proof.revoked',
      status: 403,
    });
    // Issuing that certificate superseded the earlier card auth certificate: revoked too.
    expect(await failure(prove('auth', get('cardAuth')))).toEqual({
      code: 'holder-proof.revoked',
      status: 403,
    });
  });

  it('refuses a certificate outside its validity (FakeClock)', async () => {
    const h = get('mobileSign');
    const validTo = new Date(new X509Certificate(h.der).validTo);
    const before = t.clock.now();
    try {
      t.clock.set(new Date(validTo.getTime() - 1000));
      expect((await prove('sign', h)).serial).toBe(BigInt(h.serial));
      t.clock.set(new Date(validTo.getTime() + 1000));
      expect(await failure(prove('sign', h))).toEqual({
        code: 'holder-proof.expired',
        status: 403,
      });
    } finally {
      t.clock.set(before);
    }
  });

  it('refuses every certificate of a compromised CA generation', async () => {
    const other = await registerJpkiResident(t, 'municipality', '131016', {
      name: '別人\u3000次郎',
      birthDate: '1990-05-05',
    });
    const h = await issueHeldCertificate(t, 'municipality', other, 'auth', 'card');
    const s = await issueHeldCertificate(t, 'municipality', other, 'sign', 'card');
    expect((await prove('auth', h)).serial).toBe(BigInt(h.serial));
    const db = t.database.db;
    const ca = await t.services.jpki.cas.current(db, 'auth');
    // Only the mark: the certificates are not revoked one by one here.
    await db.transaction((tx) => t.services.jpki.cas.markCompromised(tx, ca));
    expect(await failure(prove('auth', h))).toEqual({ code: 'holder-proof.revoked', status: 403 });
    expect((await prove('sign', s)).kind).toBe('sign');
  });
});
