import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/support/database.ts';
import {
  type AuditActor,
  type AuditEntry,
  type AuditEntryInput,
  AuditLog,
  assertNoPersonalData,
  canonicalJson,
  entryBody,
  entryHash,
  GENESIS_HASH,
  verifyAuditChain,
} from './audit.ts';
import { FakeClock } from './clock.ts';
import type { Queryable } from './db.ts';

const SYSTEM: AuditActor = { id: null, type: 'system', name: 'test-runner' };
const OPERATOR: AuditActor = { id: randomUUID(), type: 'agencyOperator', name: 'opAuditor' };

const count = async (db: Queryable): Promise<number> =>
  Number((await db.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_log')).rows[0]?.n);

const head = async (db: Queryable): Promise<{ last_seq: string; last_hash: string }> => {
  const r = await db.query<{ last_seq: string; last_hash: string }>(
    'SELECT last_seq, last_hash FROM audit_chain WHERE id',
  );
  if (!r.rows[0]) throw new Error('no chain head');
  return r.rows[0];
};

/** Five entries with every optional column filled, so any column edit changes something. */
function sampleInputs(): AuditEntryInput[] {
  return [1, 2, 3, 4, 5].map((i) => ({
    action: `resident.read.${i}`,
    subjectType: 'resident',
    subject: `1234567890${i}`, // 11-digit resident code (住民票コード)
    purpose: 'pensionBenefits',
    outcome: 'success',
    requestId: `req-${i}`,
    details: { items: ['name', 'address'], count: i, ok: true, note: null },
  }));
}

describe('AuditLog.append / appendMany', () => {
  let t: TestDatabase;
  const clock = new FakeClock('2026-04-01T09:00:00.123Z');
  const audit = new AuditLog(clock);
  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(async () => t?.close());

  it('appends a first entry linked to the genesis hash; details round-trip', async () => {
    const details = {
      reason: '期限切れ',
      count: 3,
      ratio: 0.5,
      ok: false,
      none: null,
      items: ['氏名', '住所', 'a"b\\c'],
    };
    const entry = await t.db.transaction((tx) =>
      audit.append(tx, OPERATOR, {
        action: 'resident.read',
        subjectType: 'resident',
        subject: '12345678901',
        purpose: 'pensionBenefits',
        requestId: 'req-1',
        details,
      }),
    );
    expect(entry).toMatchObject({
      seq: '1',
      occurredAt: '2026-04-01T09:00:00.123Z',
      actorId: OPERATOR.id,
      actorType: 'agencyOperator',
      actorName: 'opAuditor',
      outcome: 'success',
      prevHash: GENESIS_HASH,
    });
    expect(entry.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(entry.hash).toBe(entryHash(GENESIS_HASH, entry));

    const [stored] = await audit.list(t.db, { limit: 10 });
    expect(stored).toEqual(entry);
    expect(stored?.details).toEqual(details);
    expect(await head(t.db)).toEqual({ last_seq: '1', last_hash: entry.hash });
  });

  it('appends a batch with contiguous seqs, each linked to its predecessor', async () => {
    clock.advance(1000);
    const first = (await audit.list(t.db, { limit: 1 }))[0];
    const batch = await t.db.transaction((tx) => audit.appendMany(tx, SYSTEM, sampleInputs()));
    expect(batch.map((e) => e.seq)).toEqual(['2', '3', '4', '5', '6']);
    let prev = first?.hash;
    for (const e of batch) {
      expect(e.prevHash).toBe(prev);
      expect(e.hash).toBe(entryHash(e.prevHash, e));
      expect(e.actorId).toBeNull();
      prev = e.hash;
    }
    const stored = await audit.list(t.db, { afterSeq: '1', limit: 100 });
    expect(stored).toEqual(batch);
    expect(await head(t.db)).toEqual({ last_seq: '6', last_hash: prev });
  });

  it('defaults optional fields and treats an empty batch as a no-op', async () => {
    const e = await t.db.transaction((tx) => audit.append(tx, SYSTEM, { action: 'system.tick' }));
    expect(e).toMatchObject({
      seq: '7',
      subjectType: null,
      subject: null,
      purpose: null,
      requestId: null,
      outcome: 'success',
      details: {},
    });
    const before = await head(t.db);
    expect(await t.db.transaction((tx) => audit.appendMany(tx, SYSTEM, []))).toEqual([]);
    expect(await head(t.db)).toEqual(before);
  });

  it('filters list() by subject and actor', async () => {
    const bySubject = await audit.list(t.db, {
      limit: 100,
      subjectType: 'resident',
      subject: '12345678903',
    });
    expect(bySubject.map((e) => e.seq)).toEqual(['4']);
    const byActor = await audit.list(t.db, { limit: 100, actorId: OPERATOR.id ?? '' });
    expect(byActor.map((e) => e.seq)).toEqual(['1']);
  });

  it('verifies the intact chain, also when paging', async () => {
    const all = await audit.list(t.db, { limit: 100 });
    const last = all[all.length - 1];
    const expected = { ok: true, entries: 7, lastSeq: '7', lastHash: last?.hash };
    expect(await verifyAuditChain(t.db)).toEqual(expected);
    const progress: number[] = [];
    expect(
      await verifyAuditChain(t.db, { pageSize: 3, onProgress: (n) => progress.push(n) }),
    ).toEqual(expected);
    expect(progress).toEqual([3, 6, 7]);
    // A page size that divides the chain exactly ends on an empty page.
    expect(await verifyAuditChain(t.db, { pageSize: 7 })).toEqual(expected);
  });

  it('an append in a transaction that then throws leaves no entry and no gap', async () => {
    const before = await head(t.db);
    const n = await count(t.db);
    await expect(
      t.db.transaction(async (tx) => {
        await audit.append(tx, SYSTEM, { action: 'resident.update', subject: '12345678901' });
        throw new Error('work failed after the audit append');
      }),
    ).rejects.toThrow('work failed');
    expect(await count(t.db)).toBe(n);
    expect(await head(t.db)).toEqual(before);
    expect((await verifyAuditChain(t.db)).ok).toBe(true);
    const next = await t.db.transaction((tx) => audit.append(tx, SYSTEM, { action: 'after' }));
    expect(next.seq).toBe(String(Number(before.last_seq) + 1));
    expect(next.prevHash).toBe(before.last_hash);
    expect(await verifyAuditChain(t.db)).toMatchObject({ ok: true, lastSeq: next.seq });
  });

  it('refuses an entry carrying a My Number without touching the chain', async () => {
    const before = await head(t.db);
    await expect(
      t.db.transaction((tx) =>
        audit.append(tx, SYSTEM, { action: 'resident.read', details: { mn: '123456789012' } }),
      ),
    ).rejects.toThrow(/12-digit/);
    expect(await head(t.db)).toEqual(before);
  });
});

describe('verifyAuditChain tamper detection', () => {
  let t: TestDatabase;
  const clock = new FakeClock('2026-04-01T09:00:00Z');
  const audit = new AuditLog(clock);
  let entries: AuditEntry[] = [];

  const q = (sql: string, params: unknown[] = []) => t.db.query(sql, params);

  beforeAll(async () => {
    t = await createTestDatabase();
    await t.db.transaction((tx) => audit.append(tx, OPERATOR, { action: 'actor.create' }));
    clock.advance(60_000);
    await t.db.transaction((tx) => audit.appendMany(tx, SYSTEM, sampleInputs().slice(0, 4)));
    entries = await audit.list(t.db, { limit: 100 });
    expect(entries.map((e) => e.seq)).toEqual(['1', '2', '3', '4', '5']);
    await q('CREATE TABLE audit_log_backup AS SELECT * FROM audit_log');
    await q('CREATE TABLE audit_chain_backup AS SELECT * FROM audit_chain');
  });
  afterAll(async () => t?.close());

  // Every test starts from the intact chain (restored here, and proven intact).
  beforeEach(async () => {
    await t.db.transaction(async (tx) => {
      await tx.query('DELETE FROM audit_log');
      await tx.query('INSERT INTO audit_log SELECT * FROM audit_log_backup');
      await tx.query(
        'UPDATE audit_chain c SET last_seq = b.last_seq, last_hash = b.last_hash FROM audit_chain_backup b',
      );
    });
    expect(await verifyAuditChain(t.db)).toMatchObject({ ok: true, entries: 5, lastSeq: '5' });
  });

  const edits: [string, string][] = [
    ['action', "action = 'resident.forged'"],
    ['subject', "subject = '98765432109'"],
    ['details (changed value)', `details = jsonb_set(details, '{count}', '999')`],
    ['details (added key)', `details = details || '{"extra": "x"}'::jsonb`],
    ['details (removed key)', `details = details - 'items'`],
    ['subject_type', "subject_type = 'actor'"],
    ['purpose', "purpose = 'taxation'"],
    ['outcome', "outcome = 'denied'"],
    ['request_id', "request_id = 'req-x'"],
    ['actor_name', "actor_name = 'someone-else'"],
    ['actor_type', "actor_type = 'cli'"],
    ['actor_id', `actor_id = '${randomUUID()}'`],
    ['occurred_at', "occurred_at = occurred_at + interval '1 second'"],
  ];

  it.each(edits)('(a) an edited %s is found at that entry', async (_column, set) => {
    const r = await q(`UPDATE audit_log SET ${set} WHERE seq = 3`);
    expect(r.rowCount).toBe(1);
    const v = await verifyAuditChain(t.db);
    expect(v).toMatchObject({ ok: false, brokenAt: '3', entries: 2 });
    if (!v.ok) expect(v.reason).toMatch(/does not match its hash/);
  });

  it('(b) an edit with a recomputed hash breaks the link to the next entry', async () => {
    const victim = entries[2];
    if (!victim) throw new Error('no entry 3');
    const forged = { ...victim, action: 'resident.forged' };
    const forgedHash = entryHash(victim.prevHash, forged);
    await q('UPDATE audit_log SET action = $2, hash = $3 WHERE seq = $1', [
      '3',
      forged.action,
      forgedHash,
    ]);
    const v = await verifyAuditChain(t.db);
    expect(v).toMatchObject({ ok: false, brokenAt: '4', entries: 3 });
    if (!v.ok) expect(v.reason).toMatch(/prev_hash/);
  });

  it('(b) an edit with a recomputed hash on the last entry breaks the chain head', async () => {
    const victim = entries[4];
    if (!victim) throw new Error('no entry 5');
    const forged = { ...victim, subject: '98765432109' };
    await q('UPDATE audit_log SET subject = $2, hash = $3 WHERE seq = $1', [
      '5',
      forged.subject,
      entryHash(victim.prevHash, forged),
    ]);
    const v = await verifyAuditChain(t.db);
    expect(v).toMatchObject({ ok: false, entries: 5 });
    if (!v.ok) expect(v.reason).toMatch(/chain head/);
  });

  it('(c) a deleted middle entry is found as missing', async () => {
    await q('DELETE FROM audit_log WHERE seq = 3');
    const v = await verifyAuditChain(t.db);
    expect(v).toMatchObject({ ok: false, brokenAt: '3', entries: 2 });
    if (!v.ok) expect(v.reason).toMatch(/missing/);
  });

  it('(c) a deleted entry at a page boundary is found as missing', async () => {
    await q('DELETE FROM audit_log WHERE seq = 3');
    expect(await verifyAuditChain(t.db, { pageSize: 2 })).toMatchObject({
      ok: false,
      brokenAt: '3',
    });
  });

  it('(c) a deleted first entry is found as missing', async () => {
    await q('DELETE FROM audit_log WHERE seq = 1');
    expect(await verifyAuditChain(t.db)).toMatchObject({ ok: false, brokenAt: '1', entries: 0 });
  });

  it.each([
    ['the last entry', 5, '4'],
    ['the last two entries', 4, '3'],
    ['every entry', 1, '1'],
  ])('(d) deleting %s is found through the chain head', async (_what, from, brokenAt) => {
    await q('DELETE FROM audit_log WHERE seq >= $1', [from]);
    const v = await verifyAuditChain(t.db);
    expect(v).toMatchObject({ ok: false, brokenAt, entries: from - 1 });
    if (!v.ok) expect(v.reason).toMatch(/chain head/);
  });

  it('(d) an entry forged onto the end behind the head is found', async () => {
    const last = entries[4];
    if (!last) throw new Error('no entry 5');
    const base = { ...last, seq: '6', action: 'forged.append' };
    const hash = entryHash(last.hash, base);
    await q(
      `INSERT INTO audit_log (seq, occurred_at, actor_id, actor_type, actor_name, action,
                              subject_type, subject, purpose, outcome, request_id, details,
                              prev_hash, hash)
       SELECT 6, occurred_at, actor_id, actor_type, actor_name, $1, subject_type, subject,
              purpose, outcome, request_id, details, $2, $3
         FROM audit_log WHERE seq = 5`,
      ['forged.append', last.hash, hash],
    );
    const v = await verifyAuditChain(t.db);
    // The forged entry itself links correctly; only the head gives it away.
    expect(v).toMatchObject({ ok: false, entries: 6 });
    if (!v.ok) expect(v.reason).toMatch(/chain head/);
  });

  it('(d) an altered chain head is found', async () => {
    await q("UPDATE audit_chain SET last_hash = repeat('f', 64) WHERE id");
    expect(await verifyAuditChain(t.db)).toMatchObject({ ok: false, brokenAt: '5' });
  });

  const CONTENT_COLUMNS = [
    'occurred_at',
    'actor_id',
    'actor_type',
    'actor_name',
    'action',
    'subject_type',
    'subject',
    'purpose',
    'outcome',
    'request_id',
    'details',
    'prev_hash',
    'hash',
  ];
  const swap = (columns: string[]) =>
    t.db.query(
      `UPDATE audit_log a SET ${columns.map((c) => `${c} = b.${c}`).join(', ')}
         FROM audit_log_backup b
        WHERE (a.seq = 2 AND b.seq = 3) OR (a.seq = 3 AND b.seq = 2)`,
    );

  it('(e) two entries with their whole rows swapped are found', async () => {
    expect((await swap(CONTENT_COLUMNS)).rowCount).toBe(2);
    const v = await verifyAuditChain(t.db);
    expect(v).toMatchObject({ ok: false, brokenAt: '2', entries: 1 });
  });

  it('(e) two entries with their contents swapped (hashes kept) are found', async () => {
    expect((await swap(['action', 'subject', 'details', 'request_id'])).rowCount).toBe(2);
    expect(await verifyAuditChain(t.db)).toMatchObject({ ok: false, brokenAt: '2' });
  });
});

describe('assertNoPersonalData', () => {
  const ok = (input: AuditEntryInput) => expect(() => assertNoPersonalData(input)).not.toThrow();
  const refused = (input: AuditEntryInput) =>
    expect(() => assertNoPersonalData(input)).toThrow(/12-digit/);

  it('refuses a 12-digit number anywhere in the entry', () => {
    refused({ action: 'resident.read', subject: '123456789012' });
    refused({ action: 'resident.read', subjectType: 'resident', subject: 'mn:123456789012' });
    refused({ action: 'lookup 123456789012' });
    refused({ action: 'resident.read', purpose: 'x123456789012' });
    refused({ action: 'resident.read', details: { value: '123456789012' } });
    refused({ action: 'resident.read', details: { values: ['a', 'no 123456789012.'] } });
    refused({ action: 'resident.read', details: { myNumber: 123456789012 } });
  });

  it('does not exempt details or action of certificate entries', () => {
    ok({ action: 'certificate.revoke', subjectType: 'certificate', subject: '123456789012' });
    refused({
      action: 'certificate.issue',
      subjectType: 'certificate',
      subject: '000000000042',
      details: { holder: '123456789012' },
    });
    refused({ action: 'certificate.issue 123456789012', subjectType: 'certificate' });
  });

  it('accepts 11-digit resident codes, longer digit runs and ordinary details', () => {
    ok({ action: 'resident.read', subjectType: 'resident', subject: '12345678901' });
    ok({ action: 'resident.read', details: { codes: ['12345678901', '98765432109'] } });
    ok({ action: 'bulk', details: { serial: '1234567890123', count: 12, ratio: 0.25 } });
    ok({ action: 'bulk', details: { at: '2026-04-01T09:00:00.000Z', ok: true, none: null } });
  });

  it('accepts UUIDs whose last group happens to be all digits', () => {
    ok({
      action: 'token.create',
      subjectType: 'actor',
      subject: 'municipality',
      details: { tokenId: '3f2b8c1e-9a4d-4e2f-8b1a-123456789012' },
    });
    ok({ action: 'actor.read', subject: 'c0ffee00-0000-4000-8000-000000000000' });
    // A My Number next to a UUID is still found.
    refused({
      action: 'x',
      details: { v: '3f2b8c1e-9a4d-4e2f-8b1a-123456789012 123456789012' },
    });
  });
});

describe('canonicalJson', () => {
  it('does not depend on key order, at any depth', () => {
    const a = { b: 1, a: { d: [1, { y: 2, x: 1 }], c: null }, s: '千代田' };
    const b = { s: '千代田', a: { c: null, d: [1, { x: 1, y: 2 }] }, b: 1 };
    expect(canonicalJson(a)).toBe(canonicalJson(b));
    expect(canonicalJson(a)).toBe('{"a":{"c":null,"d":[1,{"x":1,"y":2}]},"b":1,"s":"千代田"}');
  });

  it('keeps array order and drops undefined members', () => {
    expect(canonicalJson([2, 1])).not.toBe(canonicalJson([1, 2]));
    expect(canonicalJson({ a: 1, b: undefined })).toBe(canonicalJson({ a: 1 }));
    expect(canonicalJson(undefined)).toBe('null');
  });

  it('makes entryHash independent of the order of detail keys', () => {
    const base = {
      seq: '1',
      occurredAt: '2026-04-01T00:00:00.000Z',
      actorId: null,
      actorType: 'system',
      actorName: 'x',
      action: 'a',
      subjectType: null,
      subject: null,
      purpose: null,
      outcome: 'success' as const,
      requestId: null,
    };
    const h1 = entryHash(GENESIS_HASH, { ...base, details: { a: 1, b: ['x'] } });
    const h2 = entryHash(GENESIS_HASH, { ...base, details: { b: ['x'], a: 1 } });
    expect(h1).toBe(h2);
    expect(entryHash(GENESIS_HASH, { ...base, details: { a: 2, b: ['x'] } })).not.toBe(h1);
    expect(entryHash('1'.repeat(64), { ...base, details: { a: 1, b: ['x'] } })).not.toBe(h1);
  });

  it('hashes the text canonicalJson gives the entry, so chains written before still verify', () => {
    const e = {
      seq: '42',
      occurredAt: '2026-12-06T01:02:03.004Z',
      actorId: null,
      actorType: 'municipality',
      actorName: '千代田区 "demo"',
      action: 'registry.notification.batch',
      subjectType: 'municipality',
      subject: '131016',
      purpose: null,
      outcome: 'success' as const,
      requestId: 'req-1',
      details: { lines: 2000, z: [1, { b: 2, a: '\\' }], a: null },
    };
    // The stored fields of an entry (hash and prevHash included) do not enter its body.
    const stored = { ...e, prevHash: GENESIS_HASH, hash: 'f'.repeat(64) };
    expect(entryBody(stored)).toBe(canonicalJson(e));
    // Computed by the key-sorting implementation this one replaced (stop 13).
    expect(entryHash(GENESIS_HASH, stored)).toBe(
      '5280a27e9075c9e0377955f6a202be0a1751fa4e30b1c661f75a877cde5cf6c8',
    );
  });
});

describe('concurrent appends', () => {
  let t: TestDatabase;
  const audit = new AuditLog(new FakeClock());
  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(async () => t?.close());

  it('an empty chain verifies', async () => {
    expect(await verifyAuditChain(t.db)).toEqual({
      ok: true,
      entries: 0,
      lastSeq: '0',
      lastHash: GENESIS_HASH,
    });
  });

  it('20 concurrent transactions produce one valid chain numbered 1..20', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        t.db.transaction(async (tx) => {
          // Open the transaction first so that, on PostgreSQL, the appends really overlap.
          await tx.query('SELECT 1');
          return audit.append(tx, SYSTEM, { action: `concurrent.${i}` });
        }),
      ),
    );
    const seqs = results.map((e) => Number(e.seq)).sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(new Set(results.map((e) => e.action)).size).toBe(20);
    expect(await count(t.db)).toBe(20);
    expect(await verifyAuditChain(t.db)).toMatchObject({ ok: true, entries: 20, lastSeq: '20' });
  });

  it('concurrent batches interleave without gaps', async () => {
    await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        t.db.transaction(async (tx) => {
          await tx.query('SELECT 1');
          return audit.appendMany(tx, SYSTEM, [
            { action: `batch.${i}.a` },
            { action: `batch.${i}.b` },
            { action: `batch.${i}.c` },
          ]);
        }),
      ),
    );
    const all = await audit.list(t.db, { afterSeq: '20', limit: 100 });
    expect(all.map((e) => e.seq)).toEqual(Array.from({ length: 18 }, (_, i) => String(21 + i)));
    // Each batch is contiguous: a, b, c of one transaction follow each other.
    for (let i = 0; i < all.length; i += 3) {
      const prefix = all[i]?.action.slice(0, -1);
      expect(all.slice(i, i + 3).map((e) => e.action)).toEqual(
        ['a', 'b', 'c'].map((s) => prefix + s),
      );
    }
    expect(await verifyAuditChain(t.db)).toMatchObject({ ok: true, entries: 38 });
  });
});
