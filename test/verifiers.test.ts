/**
 * Verifiers (署名検証者 / 団体署名検証者 / 利用者証明検証者) through the real HTTP app: registration
 * with the 法人番号 check digit, credentials bound to a verifier, suspension / resumption /
 * termination and agreement dates enforced at the edge (OCSP refused with the verifier.* code),
 * OCSP and CRL provisions counted per verifier and kind (buffered, flushed every second), and
 * the fee computed per day across the end of the OCSP free period (2025-12-31, seed 002).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { corporateNumberCheckDigit } from '../src/numbering/check-digits.ts';
import { FakeClock } from '../src/platform/clock.ts';
import type { Database } from '../src/platform/db.ts';
import { CLI_ACTOR } from '../src/platform/install.ts';
import { parseOcspResponse } from '../src/pki/ocsp.ts';
import { DEMO_VERIFIER_ID } from '../src/verifiers/demo.ts';
import { ProvisionLedger } from '../src/verifiers/provisions.ts';
import { createTestApp, type TestApp } from './support/app.ts';
import { issueCardCertificate, ocspRequestFor, registerJpkiResident } from './support/jpki.ts';
import { rsaKey } from './support/pki.ts';

interface VerifierJson {
  id: string;
  legalName: string;
  corporateNumber: string;
  kinds: string[];
  contact: { name: string; email: string; phone: string };
  agreementFrom: string;
  agreementUntil: string | null;
  status: string;
  statusReason: string | null;
  createdAt: string;
  endedAt: string | null;
}

interface Problem {
  status: number;
  code: string;
  detail: string;
}

interface ReportJson {
  verifierId: string;
  from: string;
  to: string;
  days: {
    day: string;
    verifierKind: string;
    provisionKind: string;
    count: number;
    feeRuleId: string | null;
    yenPerUnit: number | null;
    fee: number | null;
  }[];
  totals: {
    verifierKind: string;
    provisionKind: string;
    count: number;
    fee: number;
    unpricedCount: number;
  }[];
  fee: { yen: number; complete: boolean };
}

/** A valid 法人番号 from a 12-digit base (check digit computed, first). */
const corporate = (base12: string): string => corporateNumberCheckDigit(base12) + base12;

let serialBase = 400000000000;
const nextCorporate = (): string => corporate(String(serialBase++));

const registration = (over: Record<string, unknown> = {}) => ({
  legalName: '検証サービス株式会社',
  corporateNumber: nextCorporate(),
  kinds: ['signatureVerifier', 'authVerifier'],
  contact: { name: '認証窓口', email: 'pki@example.invalid', phone: '03-1234-5678' },
  agreementFrom: '2020-04-01',
  ...over,
});

/** JST date of an instant, computed here independently of src/. */
const jst = (d: Date): string => new Date(d.getTime() + 9 * 3600e3).toISOString().slice(0, 10);

describe('verifiers', () => {
  let t: TestApp;
  let db: Database;
  let signCaPem: string;
  let authCaPem: string;
  let signSerial: string;
  let authSerial: string;

  // 2025-12-31 14:00 JST: the last day of the OCSP free period (seed 002).
  const clock = new FakeClock('2025-12-31T05:00:00Z');

  beforeAll(async () => {
    t = await createTestApp({ jpki: true, clock });
    db = t.database.db;
    const cas = (await t.app.inject({ url: '/v1/jpki/ca' })).json<{
      cas: { kind: string; certificate: string }[];
    }>().cas;
    signCaPem = cas.find((c) => c.kind === 'sign')!.certificate;
    authCaPem = cas.find((c) => c.kind === 'auth')!.certificate;
    const holder = await registerJpkiResident(t, 'municipality', '131016', {
      birthDate: '1980-05-05',
    });
    const issue = async (kind: 'sign' | 'auth') => {
      const r = await issueCardCertificate(t, 'municipality', {
        kind,
        residentCode: holder.residentCode,
        publicKey: rsaKey().publicKeyPem,
      });
      expect(r.statusCode, r.body).toBe(201);
      return r.json<{ serial: string }>().serial;
    };
    signSerial = await issue('sign');
    authSerial = await issue('auth');
  });
  afterAll(async () => t?.close());

  const post = (url: string, payload: unknown, actor: string | null = 'opCa') =>
    t.app.inject({
      method: 'POST',
      url,
      headers: actor === null ? {} : t.auth(actor),
      payload: payload as Record<string, unknown>,
    });
  const get = (url: string, actor = 'opCa') => t.app.inject({ url, headers: t.auth(actor) });
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

  const register = async (over: Record<string, unknown> = {}): Promise<VerifierJson> => {
    const r = await post('/v1/verifiers', registration(over));
    expect(r.statusCode, r.body).toBe(201);
    return r.json<VerifierJson>();
  };
  const credential = async (verifierId: string, kind: string, name: string): Promise<string> => {
    const r = await post(`/v1/verifiers/${verifierId}/credentials`, { kind, name });
    expect(r.statusCode, r.body).toBe(201);
    return r.json<{ token: string }>().token;
  };

  /** OCSP by POST with a bearer token: the HTTP status, and the cert status when 200. */
  const ocsp = async (token: string, kind: 'sign' | 'auth') => {
    const r = await t.app.inject({
      method: 'POST',
      url: `/ocsp/${kind}`,
      headers: { ...bearer(token), 'content-type': 'application/ocsp-request' },
      payload: ocspRequestFor(
        kind === 'sign' ? signCaPem : authCaPem,
        BigInt(kind === 'sign' ? signSerial : authSerial),
      ),
    });
    if (r.statusCode !== 200) return { http: r.statusCode, code: r.json<Problem>().code };
    const parsed = parseOcspResponse(r.rawPayload);
    return { http: 200, cert: parsed.basic?.responses[0]?.status.type };
  };

  describe('registration', () => {
    it('registers a verifier with a valid 法人番号 and logs the action', async () => {
      // 7000012050002: a real, public 法人番号 (国税庁).
      const v = await register({ corporateNumber: '7000012050002', legalName: '国税庁 (test)' });
      expect(v).toEqual({
        id: expect.stringMatching(/^[0-9a-f-]{36}$/) as unknown,
        legalName: '国税庁 (test)',
        corporateNumber: '7000012050002',
        kinds: ['signatureVerifier', 'authVerifier'],
        contact: { name: '認証窓口', email: 'pki@example.invalid', phone: '03-1234-5678' },
        agreementFrom: '2020-04-01',
        agreementUntil: null,
        status: 'active',
        statusReason: null,
        createdAt: clock.now().toISOString(),
        endedAt: null,
      });
      const detail = await get(`/v1/verifiers/${v.id}`, 'opAuditor');
      expect(detail.statusCode, detail.body).toBe(200);
      expect(detail.json<{ actions: { action: string; actorName: string }[] }>().actions).toEqual([
        expect.objectContaining({ action: 'register', actorName: 'opCa' }),
      ]);
      const audit = await db.query<{ actor_name: string; details: Record<string, unknown> }>(
        "SELECT actor_name, details FROM audit_log WHERE action = 'verifier.register' AND details->>'verifierId' = $1",
        [v.id],
      );
      expect(audit.rows).toHaveLength(1);
      expect(audit.rows[0]?.actor_name).toBe('opCa');
      // The same corporation again while the first registration lives: conflict.
      const again = await post('/v1/verifiers', registration({ corporateNumber: '7000012050002' }));
      expect(again.statusCode).toBe(409);
      expect(again.json<Problem>().code).toBe('verifier.already-registered');
    });

    it('refuses a 法人番号 whose check digit is wrong, and malformed ones', async () => {
      for (const bad of ['2835678256246', '8000012050002', '6000012050002']) {
        const r = await post('/v1/verifiers', registration({ corporateNumber: bad }));
        expect(r.statusCode, bad).toBe(400);
        expect(r.json<Problem>().code).toBe('verifier.bad-corporate-number');
      }
      for (const bad of ['700001205000', '70000120500021', '７000012050002', 'T7000012050002']) {
        const r = await post('/v1/verifiers', registration({ corporateNumber: bad }));
        expect(r.statusCode, bad).toBe(400);
        expect(r.json<Problem>().code).toBe('request.invalid');
      }
      // The public test vectors (docs/NUMBERS.md) pass.
      for (const good of ['7010705000725', '1010601008968']) {
        await register({ corporateNumber: good });
      }
    });

    it('refuses missing, unknown or repeated kinds and inverted agreement dates', async () => {
      for (const kinds of [[], ['designatedAuthVerifier'], ['authVerifier', 'authVerifier']]) {
        const r = await post('/v1/verifiers', registration({ kinds }));
        expect(r.statusCode, JSON.stringify(kinds)).toBe(400);
        expect(r.json<Problem>().code).toBe('request.invalid');
      }
      const inverted = await post(
        '/v1/verifiers',
        registration({ agreementFrom: '2026-04-01', agreementUntil: '2026-03-31' }),
      );
      expect(inverted.statusCode).toBe(400);
      expect(inverted.json<Problem>().code).toBe('verifier.bad-agreement');
      const notADate = await post('/v1/verifiers', registration({ agreementFrom: '2026-02-30' }));
      expect(notADate.statusCode).toBe(400);
      const org = await register({ kinds: ['organisationalSignatureVerifier'] });
      expect(org.kinds).toEqual(['organisationalSignatureVerifier']);
    });

    it('lists verifiers by status and kind; only ca operators register', async () => {
      const list = await get('/v1/verifiers?kind=organisationalSignatureVerifier', 'opAuditor');
      expect(list.statusCode).toBe(200);
      const kinds = list.json<{ verifiers: VerifierJson[] }>().verifiers.map((v) => v.kinds);
      expect(kinds.length).toBeGreaterThan(0);
      for (const k of kinds) expect(k).toContain('organisationalSignatureVerifier');
      const byAuditor = await post('/v1/verifiers', registration(), 'opAuditor');
      expect(byAuditor.statusCode).toBe(403);
      expect(byAuditor.json<Problem>().code).toBe('auth.forbidden');
      const unknown = await get('/v1/verifiers/00000000-0000-4000-8000-000000000000');
      expect(unknown.statusCode).toBe(404);
      expect(unknown.json<Problem>().code).toBe('verifier.not-found');
    });

    it('keeps the action log append-only', async () => {
      await expect(db.query('UPDATE verifier_actions SET reason = $1', ['x'])).rejects.toThrow(
        /append-only/,
      );
      await expect(db.query('DELETE FROM verifier_actions')).rejects.toThrow(/append-only/);
    });
  });

  describe('credentials', () => {
    it('issues a credential of a held kind, bound to the verifier, shown once', async () => {
      const v = await register({ kinds: ['signatureVerifier'] });
      const r = await post(`/v1/verifiers/${v.id}/credentials`, {
        kind: 'signatureVerifier',
        name: 'cred-sign-1',
      });
      expect(r.statusCode, r.body).toBe(201);
      const body = r.json<{ verifierId: string; name: string; kind: string; token: string }>();
      expect(body).toEqual({
        verifierId: v.id,
        name: 'cred-sign-1',
        kind: 'signatureVerifier',
        token: expect.stringMatching(/^kbn_/) as unknown,
      });
      const me = await t.app.inject({ url: '/v1/whoami', headers: bearer(body.token) });
      expect(me.statusCode).toBe(200);
      expect(me.json<{ type: string; verifierId: string }>()).toMatchObject({
        type: 'signatureVerifier',
        verifierId: v.id,
      });
      const stored = await db.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM api_tokens t JOIN actors a ON a.id = t.actor_id WHERE a.name = $1',
        ['cred-sign-1'],
      );
      expect(stored.rows[0]?.n).toBe(1);
      expect(JSON.stringify((await get(`/v1/verifiers/${v.id}`)).json())).not.toContain(body.token);
    });

    it('refuses a kind the verifier does not hold, and duplicate names', async () => {
      const v = await register({ kinds: ['signatureVerifier'] });
      const r = await post(`/v1/verifiers/${v.id}/credentials`, {
        kind: 'authVerifier',
        name: 'cred-wrong-kind',
      });
      expect(r.statusCode).toBe(400);
      expect(r.json<Problem>().code).toBe('verifier.kind-not-held');
      const dup = await post(`/v1/verifiers/${v.id}/credentials`, {
        kind: 'signatureVerifier',
        name: 'signatureVerifier',
      });
      expect(dup.statusCode).toBe(409);
      expect(dup.json<Problem>().code).toBe('actor.name-taken');
    });

    it('no verifier credential without a verifier (POST /v1/actors and the store)', async () => {
      for (const type of ['signatureVerifier', 'organisationalSignatureVerifier', 'authVerifier']) {
        const r = await post('/v1/actors', { name: `loose-${type}`, type }, 'operator');
        expect(r.statusCode, type).toBe(403);
        expect(r.json<Problem>().code).toBe('actor.type-not-permitted');
      }
      await expect(
        db.transaction((tx) =>
          t.services.actors.create(tx, { name: 'loose', type: 'authVerifier' }),
        ),
      ).rejects.toMatchObject({ code: 'actor.invalid' });
      await expect(
        db.query(
          `INSERT INTO actors (id, name, type, display_name, created_at)
           VALUES ('00000000-0000-4000-8000-0000000000aa', 'raw', 'authVerifier', 'raw', now())`,
        ),
      ).rejects.toThrow(/actors_verifier_required/);
    });

    it('binds the demo credentials to the demo verifier', async () => {
      const me = await t.app.inject({ url: '/v1/whoami', headers: t.auth('authVerifier') });
      expect(me.json<{ verifierId: string }>().verifierId).toBe(DEMO_VERIFIER_ID);
      const demo = await get(`/v1/verifiers/${DEMO_VERIFIER_ID}`);
      expect(demo.json<{ verifier: VerifierJson }>().verifier.kinds).toEqual([
        'signatureVerifier',
        'authVerifier',
      ]);
    });
  });

  describe('standing: suspension, agreement dates, termination', () => {
    it('suspends (OCSP 403 verifier.suspended), resumes, and audits each step', async () => {
      const v = await register();
      const sign = await credential(v.id, 'signatureVerifier', 'std-sign');
      const auth = await credential(v.id, 'authVerifier', 'std-auth');
      expect(await ocsp(sign, 'sign')).toEqual({ http: 200, cert: 'good' });
      const s = await post(`/v1/verifiers/${v.id}/suspension`, { reason: '契約条件の確認中' });
      expect(s.statusCode, s.body).toBe(200);
      expect(s.json<VerifierJson>()).toMatchObject({
        status: 'suspended',
        statusReason: '契約条件の確認中',
      });
      expect(await ocsp(sign, 'sign')).toEqual({ http: 403, code: 'verifier.suspended' });
      expect(await ocsp(auth, 'auth')).toEqual({ http: 403, code: 'verifier.suspended' });
      // Every route, not only OCSP.
      const me = await t.app.inject({ url: '/v1/whoami', headers: bearer(sign) });
      expect(me.statusCode).toBe(403);
      expect(me.json<Problem>().code).toBe('verifier.suspended');
      const denied = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM audit_log
          WHERE outcome = 'denied' AND actor_name = 'std-sign'
            AND details->>'reason' = 'verifier.suspended'`,
      );
      expect(denied.rows[0]?.n).toBe(2);
      const twice = await post(`/v1/verifiers/${v.id}/suspension`, { reason: 'again' });
      expect(twice.statusCode).toBe(409);
      expect(twice.json<Problem>().code).toBe('verifier.already-suspended');
      // The contract other contexts use.
      const actor = await t.services.actors.byName(db, 'std-sign');
      await expect(t.services.verifiers.forActor(db, actor!)).rejects.toMatchObject({
        code: 'verifier.suspended',
        kind: 'forbidden',
      });
      const r = await post(`/v1/verifiers/${v.id}/resumption`, { reason: '確認完了' });
      expect(r.statusCode, r.body).toBe(200);
      expect(r.json<VerifierJson>()).toMatchObject({ status: 'active', statusReason: null });
      expect(await ocsp(sign, 'sign')).toEqual({ http: 200, cert: 'good' });
      expect(await ocsp(auth, 'auth')).toEqual({ http: 200, cert: 'good' });
      expect((await t.services.verifiers.forActor(db, actor!)).id).toBe(v.id);
      const notSuspended = await post(`/v1/verifiers/${v.id}/resumption`, { reason: 'again' });
      expect(notSuspended.json<Problem>().code).toBe('verifier.not-suspended');
      const actions = (await get(`/v1/verifiers/${v.id}`))
        .json<{ actions: { action: string; reason: string | null }[] }>()
        .actions.map((a) => [a.action, a.reason]);
      expect(actions).toEqual([
        ['register', null],
        ['credential', null],
        ['credential', null],
        ['suspend', '契約条件の確認中'],
        ['resume', '確認完了'],
      ]);
      const audited = await db.query<{ action: string }>(
        `SELECT action FROM audit_log WHERE details->>'verifierId' = $1 AND outcome = 'success'
          ORDER BY seq`,
        [v.id],
      );
      expect(audited.rows.map((a) => a.action)).toEqual([
        'verifier.register',
        'verifier.credential',
        'verifier.credential',
        'verifier.suspend',
        'verifier.resume',
      ]);
    });

    it('serves only within the agreement dates (JST days, inclusive)', async () => {
      const today = jst(clock.now());
      expect(today).toBe('2025-12-31');
      // Starts tomorrow: not yet.
      const v = await register({ agreementFrom: '2026-01-01' });
      const sign = await credential(v.id, 'signatureVerifier', 'agr-sign');
      expect(await ocsp(sign, 'sign')).toEqual({ http: 403, code: 'verifier.outside-agreement' });
      // Ends today: served until 23:59:59 JST.
      const change = await post(`/v1/verifiers/${v.id}/agreement`, {
        agreementFrom: '2025-01-01',
        agreementUntil: '2025-12-31',
        reason: '契約日の訂正',
      });
      expect(change.statusCode, change.body).toBe(200);
      expect(change.json<VerifierJson>()).toMatchObject({
        agreementFrom: '2025-01-01',
        agreementUntil: '2025-12-31',
      });
      expect(await ocsp(sign, 'sign')).toEqual({ http: 200, cert: 'good' });
      const saved = clock.now();
      try {
        clock.set('2025-12-31T14:59:59Z'); // 23:59:59 JST
        expect(await ocsp(sign, 'sign')).toEqual({ http: 200, cert: 'good' });
        clock.set('2025-12-31T15:00:00Z'); // 2026-01-01 00:00 JST
        expect(await ocsp(sign, 'sign')).toEqual({
          http: 403,
          code: 'verifier.outside-agreement',
        });
      } finally {
        clock.set(saved);
      }
      const bad = await post(`/v1/verifiers/${v.id}/agreement`, {
        agreementFrom: '2026-01-02',
        agreementUntil: '2026-01-01',
        reason: 'x',
      });
      expect(bad.json<Problem>().code).toBe('verifier.bad-agreement');
    });

    it('ends a verifier for good: its tokens die and nothing more is issued', async () => {
      const v = await register();
      const sign = await credential(v.id, 'signatureVerifier', 'end-sign');
      const auth = await credential(v.id, 'authVerifier', 'end-auth');
      const other = await register();
      const otherSign = await credential(other.id, 'signatureVerifier', 'end-other');
      const ended = await post(`/v1/verifiers/${v.id}/termination`, { reason: '契約終了' });
      expect(ended.statusCode, ended.body).toBe(200);
      const body = ended.json<{ verifier: VerifierJson; tokensRevoked: number }>();
      expect(body.tokensRevoked).toBe(2);
      expect(body.verifier).toMatchObject({
        status: 'ended',
        statusReason: '契約終了',
        endedAt: clock.now().toISOString(),
      });
      for (const [token, kind] of [
        [sign, 'sign'],
        [auth, 'auth'],
      ] as const) {
        const r = await ocsp(token, kind);
        expect(r).toEqual({ http: 401, code: 'auth.token-invalid' });
      }
      expect(await ocsp(otherSign, 'sign')).toEqual({ http: 200, cert: 'good' });
      const detail = (await get(`/v1/verifiers/${v.id}`)).json<{
        credentials: { name: string; activeTokens: number }[];
      }>();
      expect(detail.credentials).toEqual([
        { name: 'end-auth', kind: 'authVerifier', activeTokens: 0 },
        { name: 'end-sign', kind: 'signatureVerifier', activeTokens: 0 },
      ]);
      for (const [url, payload] of [
        [`/v1/verifiers/${v.id}/credentials`, { kind: 'authVerifier', name: 'end-late' }],
        [`/v1/verifiers/${v.id}/suspension`, { reason: 'x' }],
        [`/v1/verifiers/${v.id}/resumption`, { reason: 'x' }],
        [`/v1/verifiers/${v.id}/termination`, { reason: 'x' }],
        [
          `/v1/verifiers/${v.id}/agreement`,
          { agreementFrom: '2020-01-01', agreementUntil: null, reason: 'x' },
        ],
      ] as const) {
        const r = await post(url, payload);
        expect(r.statusCode, url).toBe(409);
        expect(r.json<Problem>().code, url).toBe('verifier.ended');
      }
      // A token issued by other means for an ended verifier's actor is still refused.
      const actor = await t.services.actors.byName(db, 'end-sign');
      const { token } = await t.services.actors.createToken(db, actor!.id);
      expect(await ocsp(token, 'sign')).toEqual({ http: 403, code: 'verifier.ended' });
      // The corporation may register anew once the old registration ended.
      await register({ corporateNumber: v.corporateNumber });
    });

    it('refuses a verifier credential bound to no verifier (made before verifiers existed)', async () => {
      // Simulates an actor row from before migration 0006 (the NOT VALID check lets it stay).
      await db.query('ALTER TABLE actors DROP CONSTRAINT actors_verifier_required');
      try {
        await db.query(
          `INSERT INTO actors (id, name, type, display_name, created_at)
           VALUES ('00000000-0000-4000-8000-0000000000bb', 'legacy-sign', 'signatureVerifier',
                   'legacy', now())`,
        );
      } finally {
        await db.query(
          `ALTER TABLE actors ADD CONSTRAINT actors_verifier_required CHECK (
             type NOT IN ('signatureVerifier', 'organisationalSignatureVerifier', 'authVerifier')
             OR verifier_id IS NOT NULL) NOT VALID`,
        );
      }
      const { token } = await t.services.actors.createToken(
        db,
        '00000000-0000-4000-8000-0000000000bb',
      );
      expect(await ocsp(token, 'sign')).toEqual({ http: 403, code: 'verifier.not-registered' });
    });

    it('refuses a reason that could carry a My Number', async () => {
      const v = await register();
      const r = await post(`/v1/verifiers/${v.id}/suspension`, { reason: 'ref 123456789012' });
      expect(r.statusCode).toBe(400);
      expect(r.json<Problem>().code).toBe('verifier.bad-reason');
    });
  });

  describe('provision counting and fees', () => {
    it('counts OCSP and CRL provisions per verifier and kind, without a write per request', async () => {
      const v = await register({ kinds: ['signatureVerifier', 'authVerifier'] });
      const other = await register({ kinds: ['signatureVerifier'] });
      const sign = await credential(v.id, 'signatureVerifier', 'cnt-sign');
      const auth = await credential(v.id, 'authVerifier', 'cnt-auth');
      const otherSign = await credential(other.id, 'signatureVerifier', 'cnt-other');
      const ledger = t.services.provisions;
      const stored = async () =>
        Number(
          (
            await db.query<{ n: string }>(
              `SELECT coalesce(sum(count), 0)::text AS n FROM verifier_provisions
                WHERE verifier_id = ANY ($1::uuid[])`,
              [[v.id, other.id]],
            )
          ).rows[0]?.n,
        );
      await ledger.flush(db);
      expect(ledger.pending).toBe(0);
      const started = Date.now();
      const flushesBefore = ledger.flushes;
      for (let i = 0; i < 3; i++) expect((await ocsp(sign, 'sign')).http).toBe(200);
      for (let i = 0; i < 2; i++) expect((await ocsp(auth, 'auth')).http).toBe(200);
      expect((await ocsp(otherSign, 'sign')).http).toBe(200);
      // By GET too.
      const req = ocspRequestFor(signCaPem, BigInt(signSerial)).toString('base64');
      const byGet = await t.app.inject({
        url: `/ocsp/sign/${encodeURIComponent(req)}`,
        headers: bearer(sign),
      });
      expect(byGet.statusCode).toBe(200);
      // A malformed request gets an OCSP error, not a status: not a provision.
      const malformed = await t.app.inject({
        method: 'POST',
        url: '/ocsp/sign',
        headers: { ...bearer(sign), 'content-type': 'application/ocsp-request' },
        payload: Buffer.from([0x30, 0x00]),
      });
      expect(malformed.statusCode).toBe(200);
      expect(parseOcspResponse(malformed.rawPayload).status).toBe('malformedRequest');
      // CA operators are not verifiers: not counted.
      const byOperator = await t.app.inject({
        method: 'POST',
        url: '/ocsp/sign',
        headers: { ...t.auth('opCa'), 'content-type': 'application/ocsp-request' },
        payload: ocspRequestFor(signCaPem, BigInt(signSerial)),
      });
      expect(byOperator.statusCode).toBe(200);
      // CRL downloads with a verifier token.
      const crl = await t.app.inject({ url: '/crl/sign/131016.crl', headers: bearer(sign) });
      expect(crl.statusCode, crl.body).toBe(200);
      const missing = await t.app.inject({ url: '/crl/sign/999999.crl', headers: bearer(sign) });
      expect(missing.statusCode).toBe(404);
      // Buffered: 8 provisions, written by the once-a-second flush, not one write per request
      // (the timer may have run meanwhile; every count is either written or still pending).
      const seconds = Math.ceil((Date.now() - started) / 1000);
      expect(ledger.flushes - flushesBefore).toBeLessThanOrEqual(seconds + 1);
      expect(ledger.pending + (await stored())).toBe(8);
      await ledger.flush(db);
      expect(ledger.pending).toBe(0);
      expect(await stored()).toBe(8);
      const report = await get(
        `/v1/verifiers/${v.id}/provisions?from=2025-12-31&to=2025-12-31`,
        'opAuditor',
      );
      expect(report.statusCode, report.body).toBe(200);
      const days = report
        .json<ReportJson>()
        .days.map((d) => [d.verifierKind, d.provisionKind, d.count]);
      expect(days).toEqual([
        ['authVerifier', 'ocsp', 2],
        ['signatureVerifier', 'crl', 1],
        ['signatureVerifier', 'ocsp', 4],
      ]);
      const others = (
        await get(`/v1/verifiers/${other.id}/provisions?from=2025-12-01&to=2026-01-31`)
      ).json<ReportJson>();
      expect(others.days.map((d) => [d.provisionKind, d.count])).toEqual([['ocsp', 1]]);
    });

    it('flushes noted counts by itself within about a second', async () => {
      const v = await register({ kinds: ['authVerifier'] });
      const auth = await credential(v.id, 'authVerifier', 'timer-auth');
      expect((await ocsp(auth, 'auth')).http).toBe(200);
      const deadline = Date.now() + 5000;
      let n = 0;
      while (Date.now() < deadline) {
        const r = await db.query<{ n: string }>(
          'SELECT coalesce(sum(count), 0)::text AS n FROM verifier_provisions WHERE verifier_id = $1',
          [v.id],
        );
        n = Number(r.rows[0]?.n);
        if (n > 0) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(n).toBe(1);
    });

    it('puts counts back when a flush fails and never adds them twice', async () => {
      const v = await register({ kinds: ['authVerifier'] });
      const down: Database = {
        ...db,
        transaction: () => Promise.reject(new Error('database down')),
      };
      const ledger = new ProvisionLedger(clock, down, () => undefined, 3_600_000);
      ledger.note({ verifierId: v.id, verifierKind: 'authVerifier', kind: 'ocsp', n: 5 });
      await expect(ledger.flush(down)).rejects.toThrow(/database down/);
      expect(ledger.pending).toBe(5);
      ledger.note({ verifierId: v.id, verifierKind: 'authVerifier', kind: 'ocsp' });
      await ledger.close(db);
      await ledger.flush(db);
      const r = await db.query<{ count: string }>(
        'SELECT count FROM verifier_provisions WHERE verifier_id = $1',
        [v.id],
      );
      expect(r.rows.map((x) => x.count)).toEqual(['6']);
    });

    it('prices each day by the rule in force: OCSP free until 2025-12-31, CRL always', async () => {
      const saved = clock.now();
      const v = await register();
      const sign = await credential(v.id, 'signatureVerifier', 'fee-sign');
      const auth = await credential(v.id, 'authVerifier', 'fee-auth');
      try {
        clock.set('2025-12-31T14:59:00Z'); // 23:59 JST, last free day
        for (let i = 0; i < 2; i++) expect((await ocsp(sign, 'sign')).http).toBe(200);
        expect((await ocsp(auth, 'auth')).http).toBe(200);
        clock.set('2025-12-31T15:00:00Z'); // 2026-01-01 00:00 JST
        for (let i = 0; i < 3; i++) expect((await ocsp(sign, 'sign')).http).toBe(200);
        const crl = await t.app.inject({ url: '/crl/sign/131016.crl', headers: bearer(sign) });
        expect(crl.statusCode).toBe(200);
        await t.services.provisions.flush(db);
        // Counted in the caller's transaction (the certified basic-4 path): no amount in the seeds.
        await db.transaction((tx) =>
          t.services.provisions.count(tx, {
            verifierId: v.id,
            verifierKind: 'signatureVerifier',
            kind: 'certifiedBasicFour',
            n: 2,
          }),
        );
      } finally {
        clock.set(saved);
      }
      const r = await get(`/v1/verifiers/${v.id}/provisions?from=2025-12-01&to=2026-01-31`);
      expect(r.statusCode, r.body).toBe(200);
      const report = r.json<ReportJson>();
      expect(report.days).toEqual([
        {
          day: '2025-12-31',
          verifierKind: 'authVerifier',
          provisionKind: 'ocsp',
          count: 1,
          feeRuleId: 'ocsp.free-2023',
          yenPerUnit: 0,
          fee: 0,
        },
        {
          day: '2025-12-31',
          verifierKind: 'signatureVerifier',
          provisionKind: 'ocsp',
          count: 2,
          feeRuleId: 'ocsp.free-2023',
          yenPerUnit: 0,
          fee: 0,
        },
        {
          day: '2026-01-01',
          verifierKind: 'signatureVerifier',
          provisionKind: 'certifiedBasicFour',
          count: 2,
          feeRuleId: 'certified-basic-four',
          yenPerUnit: null,
          fee: null,
        },
        {
          day: '2026-01-01',
          verifierKind: 'signatureVerifier',
          provisionKind: 'crl',
          count: 1,
          feeRuleId: 'crl.free',
          yenPerUnit: 0,
          fee: 0,
        },
        {
          day: '2026-01-01',
          verifierKind: 'signatureVerifier',
          provisionKind: 'ocsp',
          count: 3,
          feeRuleId: 'ocsp.after-free',
          yenPerUnit: null,
          fee: null,
        },
      ]);
      expect(report.totals).toEqual(
        expect.arrayContaining([
          {
            verifierKind: 'signatureVerifier',
            provisionKind: 'ocsp',
            count: 5,
            fee: 0,
            unpricedCount: 3,
          },
          {
            verifierKind: 'authVerifier',
            provisionKind: 'ocsp',
            count: 1,
            fee: 0,
            unpricedCount: 0,
          },
        ]),
      );
      expect(report.fee).toEqual({ yen: 0, complete: false });
      // Only the free period: complete.
      const dec = (
        await get(`/v1/verifiers/${v.id}/provisions?from=2025-12-31&to=2025-12-31`)
      ).json<ReportJson>();
      expect(dec.fee).toEqual({ yen: 0, complete: true });
      const inverted = await get(`/v1/verifiers/${v.id}/provisions?from=2026-02-01&to=2026-01-01`);
      expect(inverted.statusCode).toBe(400);
      expect(inverted.json<Problem>().code).toBe('verifier.bad-period');
    });

    it('publishes the fee rules as data and never invents an amount', async () => {
      const r = await get('/v1/verifier-fee-rules', 'opAuditor');
      expect(r.statusCode).toBe(200);
      const rules = r.json<{
        rules: {
          id: string;
          provisionKind: string;
          validFrom: string | null;
          validUntil: string | null;
          yenPerUnit: number | null;
        }[];
      }>().rules;
      expect(rules.find((x) => x.id === 'ocsp.free-2023')).toMatchObject({
        provisionKind: 'ocsp',
        validFrom: '2023-01-01',
        validUntil: '2025-12-31',
        yenPerUnit: 0,
      });
      // The seeds set no amount other than "free".
      for (const x of rules) expect([0, null]).toContain(x.yenPerUnit);
      // No two rules of a kind overlap.
      for (const a of rules) {
        for (const b of rules) {
          if (a === b || a.provisionKind !== b.provisionKind) continue;
          const overlap =
            (a.validUntil === null || b.validFrom === null || b.validFrom <= a.validUntil) &&
            (b.validUntil === null || a.validFrom === null || a.validFrom <= b.validUntil);
          expect(overlap, `${a.id} / ${b.id}`).toBe(false);
        }
      }
    });
  });

  it('registers the demo verifier through install as the CLI', async () => {
    const r = await db.query<{ actor_name: string }>(
      "SELECT actor_name FROM verifier_actions WHERE verifier_id = $1 AND action = 'register'",
      [DEMO_VERIFIER_ID],
    );
    expect(r.rows.map((x) => x.actor_name)).toEqual([CLI_ACTOR.name]);
  });
});
