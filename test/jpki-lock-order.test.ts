/**
 * Issuance meets registry work on the same holders without deadlocking (PostgreSQL only: PGlite
 * runs one transaction at a time). Each test holds a persons row in another transaction the
 * way a registry change does, starts an issuance, waits until the issuance waits for that
 * row, then lets the other transaction go on to what a registry change does next (the audit
 * chain, another person): both must commit. Taken in the other order, PostgreSQL would kill one
 * of them after deadlock_timeout.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Tx } from '../src/platform/db.ts';
import { CLI_ACTOR } from '../src/platform/install.ts';
import { toPem } from '../src/pki/der.ts';
import { createTestApp, type TestApp } from './support/app.ts';
import { testEngine } from './support/database.ts';
import {
  issueHeldCertificate,
  type RegisteredResident,
  registerJpkiResident,
} from './support/jpki.ts';
import { mobileApplication, rsaKey } from './support/pki.ts';

describe.skipIf(testEngine() !== 'postgres')('issuance lock order (PostgreSQL)', () => {
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

  /**
   * Runs `then` in a transaction that first locks `personId` FOR UPDATE, and `request` once it
   * holds it; `then` goes on only when `request` waits for that transaction. Answers what
   * `request` answered, after checking that no transaction was lost to a deadlock on the way
   * (issuance redoes a failed batch item by item, which would hide one from the answer).
   */
  async function meet<T>(
    personId: string,
    then: (tx: Tx) => Promise<void>,
    request: () => Promise<T>,
  ): Promise<T> {
    const db = t.database.db;
    const lost: unknown[] = [];
    const transaction = db.transaction.bind(db);
    const spy = vi.spyOn(db, 'transaction').mockImplementation((fn) =>
      transaction(fn).catch((err: unknown) => {
        lost.push((err as { code?: unknown }).code);
        throw err;
      }),
    );
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let holding!: (pid: number) => void;
    const held = new Promise<number>((resolve) => (holding = resolve));
    const other = db.transaction(async (tx) => {
      const me = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      await tx.query('SELECT 1 FROM persons WHERE id = $1 FOR UPDATE', [personId]);
      holding(me.rows[0]!.pid);
      await released;
      await then(tx);
    });
    const pid = await held;
    const answer = request();
    try {
      for (let tries = 0; ; tries++) {
        const waiting = await db.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))',
          [pid],
        );
        if ((waiting.rows[0]?.n ?? 0) > 0) break;
        if (tries > 400) throw new Error('the request never waited for the held person');
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    } finally {
      release();
    }
    try {
      await other;
      return await answer;
    } finally {
      spy.mockRestore();
      expect(lost).toEqual([]);
    }
  }

  it('a smartphone application waits for the holder without holding the audit chain', async () => {
    const r = await registerJpkiResident(t, 'municipality', '131016', {
      name: '順序\u3000一子',
      birthDate: '1980-02-03',
    });
    const card = await issueHeldCertificate(t, 'municipality', r, 'sign', 'card');
    const phone = rsaKey();
    const res = await meet(
      await personOf(r),
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
      lowId,
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
});
