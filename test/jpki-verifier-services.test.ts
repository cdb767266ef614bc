/**
 * JPKI services to verifiers: 本人同意 (consent, by card or mobile signing certificate),
 * 特定署名用電子証明書記録情報 (certified basic-4, 第18条第3項), linked serials (第18条第4項,
 * 第5項, 第37条第3項) and designation tokens (第38条の3).
 */
import { sign as cryptoSign, type KeyObject } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashDesignationToken } from '../src/jpki/designation.ts';
import { challengeMessage } from '../src/jpki/holder-proof.ts';
import { fromPem } from '../src/pki/der.ts';
import { FakeClock } from '../src/platform/clock.ts';
import { CLI_ACTOR } from '../src/platform/install.ts';
import { createTestApp, type TestApp } from './support/app.ts';
import {
  issueCardCertificate,
  notifyIdentityChange,
  type RegisteredResident,
  registerJpkiResident,
} from './support/jpki.ts';
import { mobileApplication, rsaKey, type TestKey } from './support/pki.ts';

interface Cert {
  serial: string;
  pem: string;
  key: TestKey;
}
interface Holder {
  r: RegisteredResident;
  cardSign: Cert;
  cardAuth: Cert;
  mobileSign: Cert;
  mobileAuth: Cert;
}
interface Problem {
  code: string;
}

/** A valid 法人番号 from a 12-digit base (check digit first: 9 − Σ P_n×Q_n mod 9). */
function corporateNumber(base: string): string {
  const digits = [...base].reverse().map(Number);
  const sum = digits.reduce((s, p, i) => s + p * (i % 2 === 0 ? 1 : 2), 0);
  return `${9 - (sum % 9)}${base}`;
}

describe('JPKI verifier services', () => {
  let t: TestApp;
  const tokens: Record<string, string> = {};
  const verifierIds: Record<string, string> = {};
  let a: Holder;

  const as = (name: string) => ({
    authorization: `Bearer ${tokens[name] ?? t.tokens[name] ?? 'none'}`,
  });
  const post = (url: string, who: string | null, payload?: Record<string, unknown>) =>
    t.app.inject({
      method: 'POST',
      url,
      headers: who === null ? {} : as(who),
      ...(payload ? { payload } : {}),
    });

  async function card(r: RegisteredResident, kind: 'sign' | 'auth'): Promise<Cert> {
    const key = rsaKey();
    const res = await issueCardCertificate(t, 'municipality', {
      kind,
      residentCode: r.residentCode,
      publicKey: key.publicKeyPem,
    });
    expect(res.statusCode, res.body).toBe(201);
    const c = res.json<{ serial: string; certificate: string }>();
    return { serial: c.serial, pem: c.certificate, key };
  }

  async function mobile(h: { r: RegisteredResident; cardSign: Cert }, kind: 'sign' | 'auth') {
    const phone = rsaKey();
    const res = await post(
      '/v1/jpki/mobile-certificates',
      null,
      mobileApplication({
        kind,
        phone,
        cardKey: h.cardSign.key.privateKey,
        cardCertificate: h.cardSign.pem,
        record: h.r.record,
        signedAt: t.clock.now(),
      }),
    );
    expect(res.statusCode, res.body).toBe(201);
    const c = res.json<{ serial: string; certificate: string }>();
    return { serial: c.serial, pem: c.certificate, key: phone };
  }

  async function holder(): Promise<Holder> {
    const r = await registerJpkiResident(t, 'municipality', '131016');
    const cardSign = await card(r, 'sign');
    const cardAuth = await card(r, 'auth');
    const mobileSign = await mobile({ r, cardSign }, 'sign');
    const mobileAuth = await mobile({ r, cardSign }, 'auth');
    return { r, cardSign, cardAuth, mobileSign, mobileAuth };
  }

  async function challenge(): Promise<{ challengeId: string; nonce: Buffer }> {
    const res = await post('/v1/jpki/consent-challenges', null);
    expect(res.statusCode, res.body).toBe(201);
    const c = res.json<{ challengeId: string; nonce: string }>();
    return { challengeId: c.challengeId, nonce: Buffer.from(c.nonce, 'base64') };
  }

  const consentBody = (
    c: { challengeId: string; nonce: Buffer },
    cert: Cert,
    decision: 'given' | 'withdrawn',
    signed: 'given' | 'withdrawn' = decision,
    key: KeyObject = cert.key.privateKey,
  ) => ({
    challengeId: c.challengeId,
    certificate: fromPem(cert.pem, 'CERTIFICATE').toString('base64'),
    signature: cryptoSign(
      'sha256',
      challengeMessage('consent', c.challengeId, c.nonce, `consent=${signed}`),
      key,
    ).toString('base64'),
    decision,
  });

  async function consent(cert: Cert, decision: 'given' | 'withdrawn') {
    const res = await post(
      '/v1/jpki/consents',
      null,
      consentBody(await challenge(), cert, decision),
    );
    expect(res.statusCode, res.body).toBe(201);
    return res.json<{ decision: string; medium: string; appliesTo: string }>();
  }

  const basicFour = (who: string, serial: string) =>
    post('/v1/jpki/certified-basic-four', who, { serial });
  const linked = (who: string, serial: string, link: string) =>
    post('/v1/jpki/linked-serials', who, { serial, link });

  async function provisionCount(verifier: string, kind: string): Promise<number> {
    await t.services.provisions.flush(t.database.db);
    const r = await t.database.db.query<{ n: string | null }>(
      `SELECT sum(count)::text AS n FROM verifier_provisions
        WHERE verifier_id = $1 AND provision_kind = $2`,
      [verifierIds[verifier], kind],
    );
    return Number(r.rows[0]?.n ?? 0);
  }

  async function auditEntries(action: string) {
    const r = await t.database.db.query<{
      subject: string | null;
      outcome: string;
      details: Record<string, unknown>;
    }>(`SELECT subject, outcome, details FROM audit_log WHERE action = $1 ORDER BY seq`, [action]);
    return r.rows;
  }

  beforeAll(async () => {
    t = await createTestApp({ jpki: true, clock: new FakeClock('2026-04-01T01:00:00Z') });
    // Verifiers of every shape, each with the credentials of the kinds it holds.
    const specs: { name: string; base: string; kinds: string[] }[] = [
      { name: 'sigOnly', base: '000012050011', kinds: ['signatureVerifier'] },
      { name: 'both', base: '000012050022', kinds: ['signatureVerifier', 'authVerifier'] },
      { name: 'org', base: '000012050033', kinds: ['organisationalSignatureVerifier'] },
      { name: 'authOnly', base: '000012050044', kinds: ['authVerifier'] },
    ];
    await t.database.db.transaction(async (tx) => {
      for (const s of specs) {
        const v = await t.services.verifiers.register(tx, CLI_ACTOR, {
          legalName: `${s.name} 株式会社`,
          corporateNumber: corporateNumber(s.base),
          kinds: s.kinds,
          contact: { name: '窓口', email: 'v@example.invalid', phone: '03-0000-0000' },
          agreementFrom: '2026-01-01',
          agreementUntil: null,
        });
        verifierIds[s.name] = v.id;
        for (const kind of s.kinds) {
          const c = await t.services.verifiers.issueCredential(tx, CLI_ACTOR, v.id, {
            kind,
            name: `${s.name}-${kind}`,
          });
          tokens[`${s.name}-${kind}`] = c.token;
        }
      }
    });
    a = await holder();
  });
  afterAll(async () => t?.close());

  describe('consent and certified basic-4 (第18条第3項)', () => {
    it('refuses the basic-4 before the holder consented', async () => {
      const res = await basicFour('sigOnly-signatureVerifier', a.cardSign.serial);
      expect(res.statusCode).toBe(403);
      expect(res.json<Problem>().code).toBe('certified-basic-four.no-consent');
    });

    it('consent given with the card certificate covers the mobile one too', async () => {
      const given = await consent(a.cardSign, 'given');
      expect(given).toEqual(
        expect.objectContaining({ decision: 'given', medium: 'card', appliesTo: 'holder' }),
      );
      for (const [who, serial] of [
        ['sigOnly-signatureVerifier', a.cardSign.serial],
        ['sigOnly-signatureVerifier', a.mobileSign.serial],
        ['org-organisationalSignatureVerifier', a.cardSign.serial],
      ] as const) {
        const res = await basicFour(who, serial);
        expect(res.statusCode, res.body).toBe(200);
        expect(res.json()).toEqual({
          serial,
          name: a.r.record.name,
          birthDate: a.r.record.birthDate,
          sex: a.r.record.sex,
          address: a.r.record.address,
        });
      }
      expect(await provisionCount('sigOnly', 'certifiedBasicFour')).toBe(2);
      expect(await provisionCount('org', 'certifiedBasicFour')).toBe(1);
      const provided = (await auditEntries('jpki.certified-basic-four.provide')).filter(
        (e) => e.outcome === 'success',
      );
      expect(provided).toHaveLength(3);
      expect(provided[0]).toMatchObject({
        subject: a.r.residentCode,
        details: {
          verifierId: verifierIds.sigOnly,
          verifierKind: 'signatureVerifier',
          serial: a.cardSign.serial,
        },
      });
      // No basic-4 value in the audit log.
      const all = JSON.stringify(await auditEntries('jpki.certified-basic-four.provide'));
      expect(all).not.toContain(a.r.record.address);
      expect(all).not.toContain('山田');
    });

    it('consent withdrawn with the mobile certificate stops both', async () => {
      const withdrawn = await consent(a.mobileSign, 'withdrawn');
      expect(withdrawn).toMatchObject({ decision: 'withdrawn', medium: 'mobile' });
      for (const serial of [a.cardSign.serial, a.mobileSign.serial]) {
        const res = await basicFour('sigOnly-signatureVerifier', serial);
        expect(res.statusCode).toBe(403);
        expect(res.json<Problem>().code).toBe('certified-basic-four.no-consent');
      }
      const h = await t.database.db.query<{ decision: string; medium: string }>(
        `SELECT h.decision, h.medium FROM jpki_consent_history h
           JOIN jpki_certificates c ON c.serial = h.serial
          WHERE c.resident_code = $1 ORDER BY h.id`,
        [a.r.residentCode],
      );
      expect(h.rows).toEqual([
        { decision: 'given', medium: 'card' },
        { decision: 'withdrawn', medium: 'mobile' },
      ]);
      await expect(
        t.database.db.query('DELETE FROM jpki_consent_history WHERE decision = $1', ['given']),
      ).rejects.toThrow(/append-only/);
      const audited = await auditEntries('jpki.consent.withdraw');
      expect(audited.at(-1)).toMatchObject({ subject: a.r.residentCode, outcome: 'success' });
    });

    it('a challenge is single-use; a signature for the other decision is refused', async () => {
      const c = await challenge();
      const body = consentBody(c, a.cardSign, 'given');
      expect((await post('/v1/jpki/consents', null, body)).statusCode).toBe(201);
      const replay = await post('/v1/jpki/consents', null, body);
      expect(replay.statusCode).toBe(409);
      expect(replay.json<Problem>().code).toBe('challenge.used');

      // Signed "consent=given", submitted as "withdrawn": the signature does not verify.
      const c2 = await challenge();
      const swapped = await post(
        '/v1/jpki/consents',
        null,
        consentBody(c2, a.cardSign, 'withdrawn', 'given'),
      );
      expect(swapped.statusCode).toBeGreaterThanOrEqual(400);
      expect(swapped.json<Problem>().code).toBe('holder-proof.bad-signature');
      // The failed attempt burned the challenge, and consent is still given.
      const again = await post('/v1/jpki/consents', null, consentBody(c2, a.cardSign, 'withdrawn'));
      expect(again.statusCode).toBe(409);
      expect(again.json<Problem>().code).toBe('challenge.used');
      expect((await basicFour('sigOnly-signatureVerifier', a.cardSign.serial)).statusCode).toBe(
        200,
      );
      const denied = (await auditEntries('jpki.consent.withdraw')).filter(
        (e) => e.outcome === 'denied',
      );
      expect(denied.at(-1)?.details).toEqual({ reason: 'holder-proof.bad-signature' });
    });

    it('refuses consent signed with an authentication certificate or another key', async () => {
      const wrongKind = await post(
        '/v1/jpki/consents',
        null,
        consentBody(await challenge(), a.cardAuth, 'withdrawn'),
      );
      expect(wrongKind.statusCode).toBeGreaterThanOrEqual(400);
      expect(wrongKind.json<Problem>().code).toBe('holder-proof.wrong-kind');
      const otherKey = await post(
        '/v1/jpki/consents',
        null,
        consentBody(await challenge(), a.cardSign, 'withdrawn', 'withdrawn', rsaKey().privateKey),
      );
      expect(otherKey.json<Problem>().code).toBe('holder-proof.bad-signature');
      const unknown = await post('/v1/jpki/consents', null, {
        ...consentBody(await challenge(), a.cardSign, 'withdrawn'),
        challengeId: 'no-such-challenge',
      });
      expect(unknown.statusCode).toBe(404);
      expect(unknown.json<Problem>().code).toBe('challenge.unknown');
    });

    it('gives each refusal its code, and only to signature verifiers', async () => {
      const unknown = await basicFour('sigOnly-signatureVerifier', '999999');
      expect(unknown.statusCode).toBe(404);
      expect(unknown.json<Problem>().code).toBe('certified-basic-four.unknown-certificate');
      const auth = await basicFour('sigOnly-signatureVerifier', a.cardAuth.serial);
      expect(auth.statusCode).toBe(422);
      expect(auth.json<Problem>().code).toBe('certified-basic-four.not-signing-certificate');
      expect((await basicFour('authOnly-authVerifier', a.cardSign.serial)).statusCode).toBe(403);
      expect((await basicFour('municipality', a.cardSign.serial)).statusCode).toBe(403);
      expect((await post('/v1/jpki/certified-basic-four', null, { serial: '1' })).statusCode).toBe(
        401,
      );
      const denied = (await auditEntries('jpki.certified-basic-four.provide')).filter(
        (e) => e.outcome === 'denied',
      );
      expect(denied.map((e) => e.details.reason)).toEqual(
        expect.arrayContaining(['no-consent', 'unknown-certificate', 'not-signing-certificate']),
      );
    });

    it('a changed record is refused at once, then the certificate is revoked', async () => {
      const b = await holder();
      await consent(b.cardSign, 'given');
      expect((await basicFour('sigOnly-signatureVerifier', b.cardSign.serial)).statusCode).toBe(
        200,
      );
      const renamed = await notifyIdentityChange(t, 'municipality', {
        municipalityCode: '131016',
        changeReason: 'nameChange',
        record: { ...b.r.record, name: '改名　史郎' },
      });
      expect(renamed.statusCode, renamed.body).toBe(201);
      // Before the registry-driven revocation is written: the certificate no longer matches.
      // (the outbox runner is not started in tests: the consumer runs at drain()).
      const stale = await basicFour('sigOnly-signatureVerifier', b.cardSign.serial);
      expect(stale.statusCode).toBe(409);
      expect(stale.json<Problem>().code).toBe('certified-basic-four.record-changed');
      await t.services.outbox.drain();
      const revoked = await basicFour('sigOnly-signatureVerifier', b.cardSign.serial);
      expect(revoked.statusCode).toBe(422);
      expect(revoked.json<Problem>().code).toBe('certified-basic-four.revoked');
      // The mobile signing certificate went with the card one (第16条の13).
      const mobileRevoked = await basicFour('sigOnly-signatureVerifier', b.mobileSign.serial);
      expect(mobileRevoked.json<Problem>().code).toBe('certified-basic-four.revoked');
    });
  });

  describe('linked serials', () => {
    it('第18条第4項: card sign ↔ mobile sign for a signature verifier, both ways', async () => {
      const fromCard = await linked(
        'sigOnly-signatureVerifier',
        a.cardSign.serial,
        'cardSignToMobileSign',
      );
      expect(fromCard.statusCode, fromCard.body).toBe(200);
      expect(fromCard.json()).toMatchObject({
        serial: a.cardSign.serial,
        link: 'cardSignToMobileSign',
        linkedSerial: a.mobileSign.serial,
        linkedKind: 'sign',
        linkedMedium: 'mobile',
      });
      const fromMobile = await linked(
        'sigOnly-signatureVerifier',
        a.mobileSign.serial,
        'cardSignToMobileSign',
      );
      expect(fromMobile.json()).toMatchObject({
        linkedSerial: a.cardSign.serial,
        linkedMedium: 'card',
      });
      // 第18条第4項 names the 署名検証者 only: a 団体署名検証者 is refused at the edge.
      expect(
        (
          await linked(
            'org-organisationalSignatureVerifier',
            a.cardSign.serial,
            'cardSignToMobileSign',
          )
        ).statusCode,
      ).toBe(403);
      const wrong = await linked(
        'sigOnly-signatureVerifier',
        a.cardAuth.serial,
        'cardSignToMobileSign',
      );
      expect(wrong.statusCode).toBe(422);
      expect(wrong.json<Problem>().code).toBe('linked-serial.wrong-certificate');
      expect(await provisionCount('sigOnly', 'linkedSerial')).toBe(2);
    });

    it('第18条第5項: card sign ↔ card auth only for a signature verifier that is also an auth verifier', async () => {
      const refused = await linked('sigOnly-signatureVerifier', a.cardSign.serial, 'signToAuth');
      expect(refused.statusCode).toBe(403);
      expect(refused.json<Problem>().code).toBe('linked-serial.not-entitled');
      const asAuth = await linked('both-authVerifier', a.cardSign.serial, 'signToAuth');
      expect(asAuth.json<Problem>().code).toBe('linked-serial.not-entitled');

      const toAuth = await linked('both-signatureVerifier', a.cardSign.serial, 'signToAuth');
      expect(toAuth.statusCode, toAuth.body).toBe(200);
      expect(toAuth.json()).toMatchObject({
        linkedSerial: a.cardAuth.serial,
        linkedKind: 'auth',
        linkedMedium: 'card',
      });
      const toSign = await linked('both-signatureVerifier', a.cardAuth.serial, 'signToAuth');
      expect(toSign.json()).toMatchObject({ linkedSerial: a.cardSign.serial, linkedKind: 'sign' });
      // The article covers 個人番号カード用 certificates only.
      const fromMobile = await linked('both-signatureVerifier', a.mobileSign.serial, 'signToAuth');
      expect(fromMobile.json<Problem>().code).toBe('linked-serial.wrong-certificate');
      expect(await provisionCount('both', 'linkedSerial')).toBe(2);
      const audited = (await auditEntries('jpki.linked-serial.provide')).filter(
        (e) => e.outcome === 'success' && e.details.link === 'signToAuth',
      );
      expect(audited[0]).toMatchObject({
        subject: a.r.residentCode,
        details: {
          verifierId: verifierIds.both,
          verifierKind: 'signatureVerifier',
          link: 'signToAuth',
        },
      });
    });

    it('第37条第3項: card auth ↔ mobile auth for an auth verifier', async () => {
      const fromCard = await linked(
        'authOnly-authVerifier',
        a.cardAuth.serial,
        'cardAuthToMobileAuth',
      );
      expect(fromCard.statusCode, fromCard.body).toBe(200);
      expect(fromCard.json()).toMatchObject({
        linkedSerial: a.mobileAuth.serial,
        linkedMedium: 'mobile',
      });
      const fromMobile = await linked(
        'authOnly-authVerifier',
        a.mobileAuth.serial,
        'cardAuthToMobileAuth',
      );
      expect(fromMobile.json()).toMatchObject({
        linkedSerial: a.cardAuth.serial,
        linkedMedium: 'card',
      });
      const bySig = await linked(
        'sigOnly-signatureVerifier',
        a.cardAuth.serial,
        'cardAuthToMobileAuth',
      );
      expect(bySig.json<Problem>().code).toBe('linked-serial.not-entitled');
      const unknown = await linked('authOnly-authVerifier', '999999', 'cardAuthToMobileAuth');
      expect(unknown.statusCode).toBe(404);
      expect(unknown.json<Problem>().code).toBe('linked-serial.unknown-certificate');
      expect(await provisionCount('authOnly', 'linkedSerial')).toBe(2);
    });

    it('leaves out revoked certificates on both sides', async () => {
      const c = await holder();
      const revoked = await t.app.inject({
        method: 'POST',
        url: `/v1/jpki/certificates/${c.mobileAuth.serial}/revocation`,
        headers: t.auth('municipality'),
        payload: { reason: 'lossReport' },
      });
      expect(revoked.statusCode, revoked.body).toBe(201);
      const none = await linked('authOnly-authVerifier', c.cardAuth.serial, 'cardAuthToMobileAuth');
      expect(none.statusCode).toBe(404);
      expect(none.json<Problem>().code).toBe('linked-serial.no-linked-certificate');
      const presented = await linked(
        'authOnly-authVerifier',
        c.mobileAuth.serial,
        'cardAuthToMobileAuth',
      );
      expect(presented.statusCode).toBe(422);
      expect(presented.json<Problem>().code).toBe('linked-serial.revoked');
    });
  });

  describe('designation tokens (第38条の3)', () => {
    let designationId = '';
    let token = '';
    let tokenId = '';

    it('records an agreement only with an auth verifier', async () => {
      const notAuth = await post('/v1/jpki/designations', 'opCa', {
        verifierId: verifierIds.sigOnly,
        agreementReference: 'AGR-1',
        agreedOn: '2026-03-01',
        validFrom: '2026-03-15',
      });
      expect(notAuth.statusCode).toBe(409);
      expect(notAuth.json<Problem>().code).toBe('designation.not-auth-verifier');
      const late = await post('/v1/jpki/designations', 'opCa', {
        verifierId: verifierIds.authOnly,
        agreementReference: 'AGR-1',
        agreedOn: '2026-04-01',
        validFrom: '2026-03-15',
      });
      expect(late.json<Problem>().code).toBe('designation.bad-dates');
      const created = await post('/v1/jpki/designations', 'opCa', {
        verifierId: verifierIds.authOnly,
        agreementReference: 'AGR-1',
        agreedOn: '2026-03-01',
        validFrom: '2026-03-15',
        validUntil: '2027-03-31',
      });
      expect(created.statusCode, created.body).toBe(201);
      designationId = created.json<{ id: string }>().id;
      const dup = await post('/v1/jpki/designations', 'opCa', {
        verifierId: verifierIds.authOnly,
        agreementReference: 'AGR-1',
        agreedOn: '2026-03-01',
        validFrom: '2026-03-15',
      });
      expect(dup.json<Problem>().code).toBe('designation.duplicate');
      expect((await post('/v1/jpki/designations', 'opRegistry', {})).statusCode).toBe(403);
    });

    it('issues a token shown once, which shows the designation until revoked', async () => {
      const issued = await post(`/v1/jpki/designations/${designationId}/tokens`, 'opCa');
      expect(issued.statusCode, issued.body).toBe(201);
      ({ token, tokenId } = issued.json<{ token: string; tokenId: string }>());
      const check = await post('/v1/jpki/designation-tokens/verification', null, { token });
      expect(check.json()).toEqual({
        designated: true,
        designationId,
        verifierId: verifierIds.authOnly,
        legalName: 'authOnly 株式会社',
        validUntil: '2027-03-31',
      });
      // The verifier asks for its own token (第38条の3第1項).
      const own = await post('/v1/jpki/designation-tokens', 'authOnly-authVerifier');
      expect(own.statusCode, own.body).toBe(201);
      const notDesignated = await post('/v1/jpki/designation-tokens', 'both-authVerifier');
      expect(notDesignated.statusCode).toBe(403);
      expect(notDesignated.json<Problem>().code).toBe('designation.not-designated');

      const list = await t.app.inject({
        method: 'GET',
        url: `/v1/jpki/designations?verifierId=${verifierIds.authOnly}`,
        headers: t.auth('opAuditor'),
      });
      expect(list.statusCode, list.body).toBe(200);
      expect(list.body).not.toContain(token);
      const listed = list.json<{ designations: { tokens: { requestedVia: string }[] }[] }>();
      expect(listed.designations[0]?.tokens.map((x) => x.requestedVia).sort()).toEqual([
        'operator',
        'verifier',
      ]);
      // Only the hash is stored.
      const stored = await t.database.db.query<{ hex: string }>(
        "SELECT encode(token_sha256, 'hex') AS hex FROM jpki_designation_tokens WHERE id = $1",
        [tokenId],
      );
      expect(stored.rows[0]?.hex).toBe(hashDesignationToken(token).toString('hex'));
      expect(await provisionCount('authOnly', 'designationToken')).toBe(2);
    });

    it('revokes a token; a revoked or unknown token shows nothing', async () => {
      const revoked = await post(
        `/v1/jpki/designations/${designationId}/tokens/${tokenId}/revocation`,
        'opCa',
        { reason: 'agreement amended' },
      );
      expect(revoked.statusCode, revoked.body).toBe(201);
      expect(revoked.json()).toMatchObject({ id: tokenId, revocationReason: 'agreement amended' });
      const again = await post(
        `/v1/jpki/designations/${designationId}/tokens/${tokenId}/revocation`,
        'opCa',
        { reason: 'again' },
      );
      expect(again.json<Problem>().code).toBe('designation-token.revoked');
      for (const tk of [token, 'kdt_guess', 'x']) {
        const check = await post('/v1/jpki/designation-tokens/verification', null, { token: tk });
        expect(check.json()).toEqual({ designated: false });
      }
      expect((await auditEntries('jpki.designation-token.issue')).length).toBe(2);
      const revocations = await auditEntries('jpki.designation-token.revoke');
      expect(revocations).toHaveLength(1);
      expect(revocations[0]).toMatchObject({
        subject: tokenId,
        details: { verifierId: verifierIds.authOnly, tokenId, designationId },
      });
    });

    it('no token outside the agreement dates', async () => {
      t.clock.set(new Date('2027-04-01T01:00:00Z'));
      const late = await post(`/v1/jpki/designations/${designationId}/tokens`, 'opCa');
      expect(late.json<Problem>().code).toBe('designation.not-in-force');
      const own = await post('/v1/jpki/designation-tokens', 'authOnly-authVerifier');
      expect(own.json<Problem>().code).toBe('designation.not-designated');
    });
  });

  describe('verifier standing', () => {
    it('a suspended verifier gets neither basic-4 nor linked serials', async () => {
      await t.database.db.transaction((tx) =>
        t.services.verifiers.suspend(tx, CLI_ACTOR, verifierIds.sigOnly ?? '', 'probe'),
      );
      const bf = await basicFour('sigOnly-signatureVerifier', a.cardSign.serial);
      expect(bf.statusCode).toBe(403);
      expect(bf.json<Problem>().code).toBe('verifier.suspended');
      const ls = await linked(
        'sigOnly-signatureVerifier',
        a.cardSign.serial,
        'cardSignToMobileSign',
      );
      expect(ls.json<Problem>().code).toBe('verifier.suspended');
      await t.database.db.transaction((tx) =>
        t.services.verifiers.resume(tx, CLI_ACTOR, verifierIds.sigOnly ?? '', 'probe'),
      );
    });
  });

  describe('expiry (FakeClock)', () => {
    it('an expired certificate gets nothing', async () => {
      // The holder was born 2026-03-20: the certificates end on the fifth birthday.
      t.clock.set(new Date('2031-04-01T01:00:00Z'));
      const bf = await basicFour('sigOnly-signatureVerifier', a.cardSign.serial);
      expect(bf.statusCode).toBe(422);
      expect(bf.json<Problem>().code).toBe('certified-basic-four.expired');
      const ls = await linked('authOnly-authVerifier', a.cardAuth.serial, 'cardAuthToMobileAuth');
      expect(ls.json<Problem>().code).toBe('linked-serial.expired');
    });
  });
});
