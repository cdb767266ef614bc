/**
 * Issuance and revocation meet registry work and each other on the same holders and
 * certificates without deadlocking (PostgreSQL only: PGlite runs one transaction at a time).
 * Each test holds a row in another transaction the way a registry change or a revocation does
 * first, starts the work under test, waits until it waits for that row, then lets the other
 * transaction go on to what it does next (the audit chain, the revocation epoch, another
 * person): both must commit, and no transaction may be lost to a deadlock on the way. Taken in
 * the other order, PostgreSQL kills one of them after deadlock_timeout (each test fails so on
 * the code before its fix; checked).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tx } from '../src/platform/db.ts';
import { ChangeFeed } from '../src/platform/change-feed.ts';
import { CLI_ACTOR } from '../src/platform/install.ts';
import { toPem } from '../src/pki/der.ts';
import { createTestApp, type TestApp } from './support/app.ts';
import { testEngine } from './support/database.ts';
import { meetHeldRow } from './support/locks.ts';
import {
  issueHeldCertificate,
  notifyIdentityChange,
  type RegisteredResident,
  registerJpkiResident,
} from './support/jpki.ts';
import { mobileApplication, rsaKey } from './support/pki.ts';

describe.skipIf(testEngine() !== 'postgres')('JPKI lock order (PostgreSQL)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ jpki: true });
  });
  afterAll(async () => t?.close());

  const personOf = async (r: RegisteredResident): Promise<string> => {
    const row = await t.database.db.query<{ id: string }>(
      'SELECT id FROM persons WHERE resident_code = $1',
      [r.residentCode],
    );
    const id = row.rows[0]?.id;
    if (!id) throw new Error('no person for the resident');
    return id;
  };

  const meet = <T>(
    hold: (tx: Tx) => Promise<unknown>,
    then: (tx: Tx) => Promise<unknown>,
    request: () => Promise<T>,
  ): Promise<T> => meetHeldRow(t.database.db, hold, then, request);

  it('a smartphone application waits for the holder without holding the audit chain', async () => {
    const r = await registerJpkiResident(t, 'municipality', '131016', {
      name: '順序\u3000一子',
      birthDate: '1980-02-03',
    });
    const card = await issueHeldCertificate(t, 'municipality', r, 'sign', 'card');
    const phone = rsaKey();
    const person = await personOf(r);
    const res = await meet(
      (tx) => tx.query('SELECT 1 FROM persons WHERE id = $1 FOR UPDATE', [person]),
      async (tx) => {
        // What a registry change to the holder does next: audit.
        await t.services.audit.append(tx, CLI_ACTOR, {
          action: 'test.lock-order',
          subjectType: 'system',
        });
      },
      () =>
        t.app.inject({
          method: 'POST',
          url: '/v1/jpki/mobile-certificates',
          payload: mobileApplication({
            kind: 'sign',
            phone,
            cardKey: card.key.privateKey,
            cardCertificate: toPem(card.der, 'CERTIFICATE'),
            record: r.record,
            signedAt: t.clock.now(),
          }),
        }),
    );
    expect(res.statusCode, res.body).toBe(201);
  });

  it('a card batch takes its holders in person id order, as registry batches do', async () => {
    const a = await registerJpkiResident(t, 'municipality', '131016', {
      name: '順序\u3000二子',
      birthDate: '1981-03-04',
    });
    const b = await registerJpkiResident(t, 'municipality', '131016', {
      name: '順序\u3000三子',
      birthDate: '1982-04-05',
    });
    const ids = { a: await personOf(a), b: await personOf(b) };
    const [low, high] = ids.a < ids.b ? [a, b] : [b, a];
    const [lowId, highId] = ids.a < ids.b ? [ids.a, ids.b] : [ids.b, ids.a];
    // The other transaction holds the lower person and then wants the higher one (id order);
    // the batch names the higher holder first.
    const res = await meet(
      (tx) => tx.query('SELECT 1 FROM persons WHERE id = $1 FOR UPDATE', [lowId]),
      async (tx) => {
        await tx.query('SELECT 1 FROM persons WHERE id = $1 FOR UPDATE', [highId]);
      },
      () =>
        t.app.inject({
          method: 'POST',
          url: '/v1/jpki/certificates:batch',
          headers: t.auth('municipality'),
          payload: {
            certificates: [high, low].map((r) => ({
              kind: 'auth',
              medium: 'card',
              residentCode: r.residentCode,
              publicKey: rsaKey().publicKeyPem,
            })),
          },
        }),
    );
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json<{ issued: number }>().issued).toBe(2);
  });

  it('due revocations lock every certificate they revoke before the first revocation', async () => {
    const held: { serial: string; person: string }[] = [];
    for (const [i, name] of ['順序\u3000四子', '順序\u3000五子'].entries()) {
      const r = await registerJpkiResident(t, 'municipality', '131016', {
        name,
        birthDate: `1983-0${i + 1}-06`,
      });
      const c = await issueHeldCertificate(t, 'municipality', r, 'auth', 'card');
      held.push({ serial: c.serial, person: await personOf(r) });
    }
    held.sort((a, b) => (BigInt(a.serial) < BigInt(b.serial) ? -1 : 1));
    for (const h of held) {
      await t.database.db.query(
        `INSERT INTO jpki_scheduled_revocations (serial, person_id, reason, due_at, cause, created_at)
         VALUES ($1, $2, 'moveOutLapse', $3, 'test:lock-order', $3)`,
        [h.serial, h.person, new Date(t.clock.now().getTime() - 1000)],
      );
    }
    // The other transaction holds the later certificate, as a revocation of it does first, and
    // then advances the revocation epoch, as it does next.
    const done = await meet(
      (tx) =>
        tx.query('SELECT 1 FROM jpki_certificates WHERE serial = $1 FOR UPDATE', [held[1]!.serial]),
      async (tx) => {
        await ChangeFeed.advance(tx, 'jpki.revocations');
      },
      () => t.services.jpki.registryRevocation.processDue(t.database.db),
    );
    expect(done).toEqual(held.map((h) => h.serial));
  });

  it('a run of registry changes locks its holders before the first revocation', async () => {
    const moving = await registerJpkiResident(t, 'municipality', '131016', {
      name: '順序\u3000六子',
      birthDate: '1984-05-07',
    });
    const leaving = await registerJpkiResident(t, 'municipality', '131016', {
      name: '順序\u3000七子',
      birthDate: '1985-06-08',
    });
    const sign = await issueHeldCertificate(t, 'municipality', moving, 'sign', 'card');
    const auth = await issueHeldCertificate(t, 'municipality', leaving, 'auth', 'card');
    await t.services.outbox.drain();
    // In one run: the first change revokes a signing certificate at once (the epoch and the
    // audit chain), the second schedules the lapse of an authentication certificate (a row
    // that refers to its person).
    const moved = await notifyIdentityChange(t, 'municipality', {
      municipalityCode: '131016',
      changeReason: 'moveWithin',
      record: { ...moving.record, address: '東京都千代田区千代田2番2号' },
    });
    expect(moved.statusCode, moved.body).toBe(201);
    const planned = new Date(t.clock.now().getTime() + 10 * 86_400_000).toISOString().slice(0, 10);
    const out = await notifyIdentityChange(t, 'municipality', {
      municipalityCode: '131016',
      changeReason: 'moveOut',
      plannedMoveOutDate: planned,
      destination: { municipalityCode: '141046' },
      record: leaving.record,
    });
    expect(out.statusCode, out.body).toBe(201);
    const person = await personOf(leaving);
    // The other transaction holds the leaving person, as a registry change does, then audits.
    const results = await meet(
      (tx) => tx.query('SELECT 1 FROM persons WHERE id = $1 FOR UPDATE', [person]),
      async (tx) => {
        await t.services.audit.append(tx, CLI_ACTOR, {
          action: 'test.lock-order',
          subjectType: 'system',
        });
      },
      () => t.services.outbox.drain(),
    );
    expect(results.every((r) => r.failed === 0 && r.parked === 0)).toBe(true);
    const state = await t.database.db.query<{ serial: string; revoked: boolean; due: boolean }>(
      `SELECT c.serial::text AS serial,
              EXISTS (SELECT 1 FROM jpki_revocations r WHERE r.serial = c.serial) AS revoked,
              EXISTS (SELECT 1 FROM jpki_scheduled_revocations s WHERE s.serial = c.serial) AS due
         FROM jpki_certificates c WHERE c.serial = ANY($1::bigint[]) ORDER BY c.serial`,
      [[sign.serial, auth.serial]],
    );
    expect(Object.fromEntries(state.rows.map((r) => [r.serial, [r.revoked, r.due]]))).toEqual({
      [sign.serial]: [true, false],
      [auth.serial]: [false, true],
    });
  });

  it('revoking a card certificate locks the smartphone certificate it cascades to first', async () => {
    const r = await registerJpkiResident(t, 'municipality', '131016', {
      name: '順序\u3000八子',
      birthDate: '1986-07-09',
    });
    const card = await issueHeldCertificate(t, 'municipality', r, 'sign', 'card');
    const phone = await issueHeldCertificate(t, 'municipality', r, 'sign', 'mobile', card);
    // The other transaction holds the smartphone certificate, as its own revocation does
    // first, and then advances the revocation epoch, as it does next.
    const res = await meet(
      (tx) =>
        tx.query('SELECT 1 FROM jpki_certificates WHERE serial = $1 FOR UPDATE', [phone.serial]),
      async (tx) => {
        await ChangeFeed.advance(tx, 'jpki.revocations');
      },
      () =>
        t.app.inject({
          method: 'POST',
          url: `/v1/jpki/certificates/${card.serial}/revocation`,
          headers: t.auth('municipality'),
          payload: { reason: 'request' },
        }),
    );
    expect(res.statusCode, res.body).toBe(201);
    const cascaded = await t.database.db.query<{ category: string }>(
      'SELECT category FROM jpki_revocations WHERE serial = $1',
      [phone.serial],
    );
    expect(cascaded.rows).toEqual([{ category: 'cardCertificateRevoked' }]);
  });
});
