/**
 * Resident access: login with the authentication certificate (利用者証明用電子証明書, card or
 * smartphone) by signing a challenge, 15-minute sessions, logout, and disclosure (開示) of the
 * resident's own identity-record versions, of who received their data, and of their
 * certification records — never another resident's.
 */
import { sign as cryptoSign, X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { challengeMessage } from '../src/jpki/holder-proof.ts';
import type { Actor } from '../src/platform/actors.ts';
import { SESSION_LIFETIME_MS } from '../src/residents/residents.routes.ts';
import { createTestApp, type TestApp } from './support/app.ts';
import {
  type HeldCertificate,
  issueHeldCertificate,
  notifyIdentityChange,
  type RegisteredResident,
  registerJpkiResident,
} from './support/jpki.ts';

interface Challenge {
  challengeId: string;
  nonce: string;
  expiresAt: string;
}
interface Session {
  token: string;
  expiresAt: string;
  medium: 'card' | 'mobile';
}
interface Problem {
  code: string;
}
interface ProvisionEntry {
  seq: string;
  occurredAt: string;
  recipientType: string;
  recipientName: string;
  action: string;
  purpose: string | null;
  items: string[];
}
interface CertificateRecord {
  serial: string;
  kind: 'sign' | 'auth';
  medium: 'card' | 'mobile';
  status: 'good' | 'revoked' | 'expired';
  notAfter: string;
  revocation: { category: string; crlReason: string; revokedAt: string } | null;
}

describe('resident access', () => {
  let t: TestApp;
  let alice: RegisteredResident;
  let bob: RegisteredResident;
  const held: Record<string, HeldCertificate> = {};
  const h = (k: string): HeldCertificate => {
    const c = held[k];
    if (!c) throw new Error(`${k} was not issued`);
    return c;
  };

  beforeAll(async () => {
    t = await createTestApp({ jpki: true });
    alice = await registerJpkiResident(t, 'municipality', '131016', {
      name: '開示\u3000花子',
      birthDate: '1980-01-02',
    });
    bob = await registerJpkiResident(t, 'municipality', '131016', {
      name: '他人\u3000太郎',
      birthDate: '1975-06-07',
    });
    held['aliceOldSign'] = await issueHeldCertificate(t, 'municipality', alice, 'sign', 'card');
    // Alice moves within the city: her identity record gets a second version and her signing
    // certificate is voided (異動等失効情報, category registryChange).
    const moved = await notifyIdentityChange(t, 'municipality', {
      municipalityCode: '131016',
      changeReason: 'moveWithin',
      record: { ...alice.record, address: '東京都千代田区丸の内1丁目1番1号' },
    });
    expect(moved.statusCode, moved.body).toBe(201);
    alice = { ...alice, record: { ...alice.record, address: '東京都千代田区丸の内1丁目1番1号' } };
    await t.services.outbox.drain();
    held['aliceSign'] = await issueHeldCertificate(t, 'municipality', alice, 'sign', 'card');
    held['aliceAuth'] = await issueHeldCertificate(t, 'municipality', alice, 'auth', 'card');
    held['aliceMobileAuth'] = await issueHeldCertificate(
      t,
      'municipality',
      alice,
      'auth',
      'mobile',
      h('aliceSign'),
    );
    held['bobAuth'] = await issueHeldCertificate(t, 'municipality', bob, 'auth', 'card');
  });
  afterAll(async () => t.close());

  async function challenge(): Promise<Challenge> {
    const res = await t.app.inject({ method: 'POST', url: '/v1/resident/login-challenges' });
    expect(res.statusCode, res.body).toBe(201);
    return res.json<Challenge>();
  }

  /** Answers `c` with `cert` (signing the login message with its key unless told otherwise). */
  function answer(c: Challenge, cert: HeldCertificate, signWith = cert.key.privateKey) {
    const message = challengeMessage(
      'residentLogin',
      c.challengeId,
      Buffer.from(c.nonce, 'base64'),
      '',
    );
    return t.app.inject({
      method: 'POST',
      url: '/v1/resident/sessions',
      payload: {
        challengeId: c.challengeId,
        certificate: cert.der.toString('base64'),
        signature: cryptoSign('sha256', message, signWith).toString('base64'),
      },
    });
  }

  async function login(cert: HeldCertificate): Promise<Session> {
    const res = await answer(await challenge(), cert);
    expect(res.statusCode, res.body).toBe(201);
    return res.json<Session>();
  }

  const bearer = (s: Session) => ({ authorization: `Bearer ${s.token}` });
  const get = (s: Session, url: string) => t.app.inject({ url, headers: bearer(s) });

  async function deniedLogins(): Promise<{ reason: unknown; subject: string | null }[]> {
    const r = await t.database.db.query<{ details: { reason?: unknown }; subject: string | null }>(
      `SELECT details, subject FROM audit_log
        WHERE action = 'resident.login' AND outcome = 'denied' ORDER BY seq`,
    );
    return r.rows.map((x) => ({ reason: x.details.reason, subject: x.subject }));
  }

  it('logs in with the card authentication certificate: a 15-minute resident session', async () => {
    const s = await login(h('aliceAuth'));
    expect(s.medium).toBe('card');
    expect(new Date(s.expiresAt).getTime() - t.clock.now().getTime()).toBe(SESSION_LIFETIME_MS);
    const who = await get(s, '/v1/whoami');
    expect(who.statusCode, who.body).toBe(200);
    expect(who.json<{ type: string }>().type).toBe('resident');
    const logins = await t.database.db.query<{ subject: string; actor_type: string }>(
      `SELECT subject, actor_type FROM audit_log
        WHERE action = 'resident.login' AND outcome = 'success'`,
    );
    expect(logins.rows).toEqual([{ subject: alice.residentCode, actor_type: 'resident' }]);
  });

  it('logs in with the smartphone authentication certificate as the same resident', async () => {
    const card = await login(h('aliceAuth'));
    const phone = await login(h('aliceMobileAuth'));
    expect(phone.medium).toBe('mobile');
    const a = (await get(card, '/v1/whoami')).json<Actor>();
    const b = (await get(phone, '/v1/whoami')).json<Actor>();
    expect(b.name).toBe(a.name);
  });

  it('refuses a signing certificate, a foreign signature, and replayed challenges', async () => {
    const before = (await deniedLogins()).length;
    const wrongKind = await answer(await challenge(), h('aliceSign'));
    expect(wrongKind.statusCode).toBe(403);
    expect(wrongKind.json<Problem>().code).toBe('holder-proof.wrong-kind');
    // Alice's certificate, signed with Bob's key.
    const forged = await answer(await challenge(), h('aliceAuth'), h('bobAuth').key.privateKey);
    expect(forged.json<Problem>().code).toBe('holder-proof.bad-signature');
    // A challenge answered once cannot be answered again, successfully or not.
    const c = await challenge();
    expect((await answer(c, h('aliceAuth'))).statusCode).toBe(201);
    const replay = await answer(c, h('aliceAuth'));
    expect(replay.statusCode).toBe(409);
    expect(replay.json<Problem>().code).toBe('challenge.used');
    const spent = await challenge();
    expect((await answer(spent, h('aliceAuth'), h('bobAuth').key.privateKey)).statusCode).toBe(403);
    expect((await answer(spent, h('aliceAuth'))).json<Problem>().code).toBe('challenge.used');
    // Failed logins are audited with the reason only: no resident code, no certificate.
    const denied = (await deniedLogins()).slice(before);
    expect(denied).toEqual([
      { reason: 'holder-proof.wrong-kind', subject: null },
      { reason: 'holder-proof.bad-signature', subject: null },
      { reason: 'challenge.used', subject: null },
      { reason: 'holder-proof.bad-signature', subject: null },
      { reason: 'challenge.used', subject: null },
    ]);
  });

  it('refuses an expired challenge, a revoked and an expired certificate', async () => {
    const c = await challenge();
    t.clock.advance(5 * 60_000);
    const late = await answer(c, h('aliceAuth'));
    expect(late.statusCode).toBe(410);
    expect(late.json<Problem>().code).toBe('challenge.expired');

    const carol = await registerJpkiResident(t, 'municipality', '131016', {
      name: '失効\u3000三郎',
      birthDate: '1960-02-03',
    });
    const revoked = await issueHeldCertificate(t, 'municipality', carol, 'auth', 'card');
    const res = await t.app.inject({
      method: 'POST',
      url: `/v1/jpki/certificates/${revoked.serial}/revocation`,
      headers: t.auth('municipality'),
      payload: { reason: 'lossReport' },
    });
    expect(res.statusCode, res.body).toBe(201);
    expect((await answer(await challenge(), revoked)).json<Problem>().code).toBe(
      'holder-proof.revoked',
    );

    const now = t.clock.now();
    try {
      t.clock.set(new Date(new Date(new X509Certificate(h('bobAuth').der).validTo).getTime() + 1));
      expect((await answer(await challenge(), h('bobAuth'))).json<Problem>().code).toBe(
        'holder-proof.expired',
      );
    } finally {
      t.clock.set(now);
    }
  });

  it('a session ends after 15 minutes, and at logout', async () => {
    const s = await login(h('aliceAuth'));
    const other = await login(h('aliceAuth'));
    t.clock.advance(SESSION_LIFETIME_MS - 1000);
    expect((await get(s, '/v1/resident/me/certificates')).statusCode).toBe(200);
    t.clock.advance(1000);
    const expired = await get(s, '/v1/resident/me/certificates');
    expect(expired.statusCode).toBe(401);
    expect(expired.json<Problem>().code).toBe('auth.token-invalid');

    const a = await login(h('aliceAuth'));
    const b = await login(h('aliceMobileAuth'));
    const out = await t.app.inject({
      method: 'DELETE',
      url: '/v1/resident/sessions/current',
      headers: bearer(a),
    });
    expect(out.statusCode, out.body).toBe(204);
    expect((await get(a, '/v1/whoami')).statusCode).toBe(401);
    // Only that session ended.
    expect((await get(b, '/v1/whoami')).statusCode).toBe(200);
    expect(other.token).not.toBe(a.token);
  });

  it('discloses every version of my identity record, newest first, and only mine', async () => {
    const s = await login(h('aliceAuth'));
    const res = await get(s, '/v1/resident/me/identity-records');
    expect(res.statusCode, res.body).toBe(200);
    const { versions } = res.json<{
      versions: {
        residentCode: string;
        version: number;
        changeReason: string;
        changeDate: string;
        address: string;
      }[];
    }>();
    expect(versions.map((v) => [v.version, v.changeReason])).toEqual([
      [2, 'moveWithin'],
      [1, 'birth'],
    ]);
    expect(versions[0]?.address).toBe('東京都千代田区丸の内1丁目1番1号');
    expect(versions.every((v) => v.residentCode === alice.residentCode)).toBe(true);
    expect(res.body).not.toContain(bob.residentCode);
    const bobSession = await login(h('bobAuth'));
    const bobs = (await get(bobSession, '/v1/resident/me/identity-records')).json<{
      versions: { residentCode: string }[];
    }>();
    expect(bobs.versions.map((v) => v.residentCode)).toEqual([bob.residentCode]);
  });

  it('discloses who received my data and for what purpose — not internal processing, not others', async () => {
    const db = t.database.db;
    const actorNamed = async (name: string): Promise<Actor> => {
      const a = await t.services.actors.byName(db, name);
      if (!a) throw new Error(name);
      return a;
    };
    const agency = await actorNamed('nationalAgency');
    const verifier = await actorNamed('signatureVerifier');
    // A municipality reads Alice's record through the API (audited by the registry).
    const read = await t.app.inject({
      url: `/v1/registry/identity-records/${alice.residentCode}`,
      headers: t.auth('municipality'),
    });
    expect(read.statusCode, read.body).toBe(200);
    await db.transaction(async (tx) => {
      await t.services.audit.append(tx, agency, {
        action: 'registry.provision',
        subjectType: 'resident',
        subject: alice.residentCode,
        purpose: 'pensionBenefits',
        details: { channel: 'lookup', items: ['name', 'address'] },
      });
      await t.services.audit.append(tx, agency, {
        action: 'registry.provision',
        subjectType: 'resident',
        subject: alice.residentCode,
        purpose: 'taxation',
        outcome: 'denied',
        details: { channel: 'lookup', items: [] },
      });
      await t.services.audit.append(tx, verifier, {
        action: 'jpki.certified-basic-four.provide',
        subjectType: 'resident',
        subject: alice.residentCode,
        details: { verifierId: verifier.verifierId, verifierKind: verifier.type, serial: '1' },
      });
      await t.services.audit.append(tx, agency, {
        action: 'registry.provision',
        subjectType: 'resident',
        subject: bob.residentCode,
        purpose: 'pensionBenefits',
        details: { channel: 'search', items: ['name'] },
      });
    });
    const verifierName = await db.query<{ legal_name: string }>(
      'SELECT legal_name FROM verifiers WHERE id = $1',
      [verifier.verifierId],
    );

    const s = await login(h('aliceAuth'));
    const res = await get(s, '/v1/resident/me/provisions');
    expect(res.statusCode, res.body).toBe(200);
    const page = res.json<{ entries: ProvisionEntry[]; nextAfterSeq: string | null }>();
    expect(
      page.entries.map((e) => [e.action, e.recipientType, e.recipientName, e.purpose, e.items]),
    ).toEqual([
      [
        'registry.identity-record.read',
        'municipality',
        agencyOr(await actorNamed('municipality')),
        'residentRegistryAdministration',
        ['identityRecord'],
      ],
      [
        'registry.provision',
        'nationalAgency',
        agencyOr(agency),
        'pensionBenefits',
        ['name', 'address'],
      ],
      [
        'jpki.certified-basic-four.provide',
        'signatureVerifier',
        verifierName.rows[0]?.legal_name,
        null,
        ['certifiedBasicFour'],
      ],
    ]);
    expect(page.nextAfterSeq).toBeNull();
    // Internal processing (the notifications, the issuance reads) is not listed.
    const all = await db.query<{ n: string }>(
      "SELECT count(*)::text AS n FROM audit_log WHERE subject = $1 AND actor_type <> 'resident'",
      [alice.residentCode],
    );
    expect(Number(all.rows[0]?.n)).toBeGreaterThan(page.entries.length + 1);

    // Paged: one at a time gives the same entries.
    const seen: string[] = [];
    let after: string | null = '0';
    while (after !== null) {
      const res: Awaited<ReturnType<typeof get>> = await get(
        s,
        `/v1/resident/me/provisions?limit=1&afterSeq=${after}`,
      );
      const p = res.json<{ entries: ProvisionEntry[]; nextAfterSeq: string | null }>();
      seen.push(...p.entries.map((e) => e.seq));
      after = p.nextAfterSeq;
    }
    expect(seen).toEqual(page.entries.map((e) => e.seq));

    const bobs = (await get(await login(h('bobAuth')), '/v1/resident/me/provisions')).json<{
      entries: ProvisionEntry[];
    }>();
    expect(bobs.entries.map((e) => [e.action, e.purpose, e.items])).toEqual([
      ['registry.provision', 'pensionBenefits', ['name']],
    ]);
  });

  it('discloses my certificates with their status and revocations, and only mine', async () => {
    const s = await login(h('aliceAuth'));
    const res = await get(s, '/v1/resident/me/certificates');
    expect(res.statusCode, res.body).toBe(200);
    const { certificates } = res.json<{ certificates: CertificateRecord[] }>();
    const bySerial = new Map(certificates.map((c) => [c.serial, c]));
    expect([...bySerial.keys()].sort()).toEqual(
      ['aliceOldSign', 'aliceSign', 'aliceAuth', 'aliceMobileAuth'].map((k) => h(k).serial).sort(),
    );
    expect(bySerial.get(h('aliceOldSign').serial)).toMatchObject({
      kind: 'sign',
      medium: 'card',
      status: 'revoked',
      revocation: { category: 'registryChange', crlReason: 'affiliationChanged' },
    });
    expect(bySerial.get(h('aliceAuth').serial)).toMatchObject({
      kind: 'auth',
      medium: 'card',
      status: 'good',
      revocation: null,
    });
    expect(bySerial.get(h('aliceMobileAuth').serial)).toMatchObject({
      kind: 'auth',
      medium: 'mobile',
      status: 'good',
    });
    expect(res.body).not.toContain(`"${h('bobAuth').serial}"`);
  });

  it('audits every disclosure read under the resident, with their resident code', async () => {
    const r = await t.database.db.query<{
      subject: string;
      actor_type: string;
      purpose: string;
      details: { what: string };
    }>(
      `SELECT subject, actor_type, purpose, details FROM audit_log
        WHERE action = 'resident.disclosure.read' ORDER BY seq`,
    );
    const whats = r.rows.map((x) => `${x.subject}:${x.details.what}`);
    expect(whats).toContain(`${alice.residentCode}:identity-records`);
    expect(whats).toContain(`${alice.residentCode}:provisions`);
    expect(whats).toContain(`${alice.residentCode}:certificates`);
    expect(whats).toContain(`${bob.residentCode}:identity-records`);
    expect(r.rows.every((x) => x.actor_type === 'resident' && x.purpose === 'disclosure')).toBe(
      true,
    );
  });

  it('refuses a resident credential bound to no person', async () => {
    const res = await t.app.inject({
      url: '/v1/resident/me/identity-records',
      headers: t.auth('resident'),
    });
    expect(res.statusCode).toBe(403);
    expect(res.json<Problem>().code).toBe('resident.not-logged-in');
    // Other actor types never reach disclosure.
    const muni = await t.app.inject({
      url: '/v1/resident/me/provisions',
      headers: t.auth('municipality'),
    });
    expect(muni.json<Problem>().code).toBe('auth.forbidden');
  });
});

/** The display name the disclosure shows for a non-verifier actor. */
function agencyOr(a: Actor): string {
  return a.displayName;
}
