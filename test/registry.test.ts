import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from './support/app.ts';
import { baseRecord, newResident, type Resident } from './support/registry.ts';

describe('identity-record intake and reads', () => {
  let t: TestApp;
  let r: Resident;
  beforeAll(async () => {
    t = await createTestApp();
    r = await newResident(t, 'municipality');
  });
  afterAll(async () => t.close());

  const post = (actor: string, payload: object) =>
    t.app.inject({
      method: 'POST',
      url: '/v1/registry/notifications',
      headers: t.auth(actor),
      payload,
    });
  const read = (actor: string, code: string, history = false) =>
    t.app.inject({
      url: `/v1/registry/identity-records/${code}${history ? '?history=true' : ''}`,
      headers: t.auth(actor),
    });

  let birth: Record<string, unknown>;

  it('registers a birth (201) and replays it identically (200)', async () => {
    birth = {
      municipalityCode: '131016',
      sequence: 1,
      changeReason: 'birth',
      changeDate: '2026-03-20',
      record: baseRecord(r),
    };
    const first = await post('municipality', birth);
    expect(first.statusCode, first.body).toBe(201);
    expect(first.json()).toEqual({ residentCode: r.residentCode, version: 1 });
    const replay = await post('municipality', birth);
    expect(replay.statusCode).toBe(200);
    expect(replay.json()).toEqual({ residentCode: r.residentCode, version: 1 });
  });

  it('refuses a different body under a used sequence, and a gap', async () => {
    const conflict = await post('municipality', {
      ...birth,
      record: { ...baseRecord(r), name: '山田　花' },
    });
    expect(conflict.statusCode).toBe(409);
    expect(conflict.json()).toMatchObject({ code: 'registry.sequence-conflict' });
    const gap = await post('municipality', {
      ...birth,
      sequence: 99,
      changeReason: 'moveWithin',
      changeDate: '2026-03-25',
      record: { ...baseRecord(r), address: '東京都千代田区九段南1丁目2番1号' },
    });
    expect(gap.statusCode).toBe(409);
    expect(gap.json()).toMatchObject({ code: 'registry.sequence-gap', expectedSequence: 2 });
  });

  it('refuses a second birth and a municipality posting for another', async () => {
    const again = await post('municipality', { ...birth, sequence: 2 });
    expect(again.statusCode).toBe(409);
    expect(again.json()).toMatchObject({ code: 'registry.record-exists' });
    const other = await post('municipality2', { ...birth, sequence: 1 });
    expect(other.statusCode).toBe(403);
    expect(other.json()).toMatchObject({ code: 'auth.other-municipality' });
  });

  it('reports invalid fields precisely without echoing personal data', async () => {
    const bad = await post('municipality', {
      ...birth,
      sequence: 2,
      record: { ...baseRecord(r), myNumber: '123456789010', birthDate: '2026-02-30' },
    });
    expect(bad.statusCode).toBe(400);
    const p = bad.json<{ code: string; errors: { pointer: string }[] }>();
    expect(p.code).toBe('registry.invalid-notification');
    expect(p.errors.map((e) => e.pointer)).toEqual(
      expect.arrayContaining(['/body/record/myNumber', '/body/record/birthDate']),
    );
    expect(bad.body).not.toContain('123456789010');
    expect(bad.body).not.toContain('山田');
  });

  it('records a move within, a name change, a move out and a move in elsewhere', async () => {
    // Refused notifications do not use up a sequence number: the next one is 2.
    const base = { municipalityCode: '131016', record: baseRecord(r) };
    const moved = { ...baseRecord(r), address: '東京都千代田区九段南1丁目2番1号' };
    const steps = [
      { ...base, sequence: 2, changeReason: 'moveWithin', changeDate: '2026-03-25', record: moved },
      {
        ...base,
        sequence: 3,
        changeReason: 'nameChange',
        changeDate: '2026-03-26',
        record: { ...moved, name: '佐藤　花子', nameKana: 'サトウ　ハナコ' },
      },
      {
        ...base,
        sequence: 4,
        changeReason: 'moveOut',
        changeDate: '2026-03-27',
        plannedMoveOutDate: '2026-03-31',
        destination: { municipalityCode: '141046' },
        record: { ...moved, name: '佐藤　花子', nameKana: 'サトウ　ハナコ' },
      },
    ];
    for (const [i, step] of steps.entries()) {
      const res = await post('municipality', step);
      expect(res.statusCode, res.body).toBe(201);
      expect(res.json()).toEqual({ residentCode: r.residentCode, version: i + 2 });
    }
    const moveIn = await post('municipality2', {
      municipalityCode: '141046',
      sequence: 1,
      changeReason: 'moveIn',
      changeDate: '2026-04-01',
      record: {
        ...moved,
        name: '佐藤　花子',
        nameKana: 'サトウ　ハナコ',
        address: '神奈川県横浜市中区港町1丁目1番地',
      },
    });
    expect(moveIn.statusCode, moveIn.body).toBe(201);
    expect(moveIn.json()).toEqual({ residentCode: r.residentCode, version: 5 });
  });

  it('lets only the holding municipality read the current version', async () => {
    const holder = await read('municipality2', r.residentCode);
    expect(holder.statusCode).toBe(200);
    expect(holder.json()).toMatchObject({
      residentCode: r.residentCode,
      myNumber: r.myNumber,
      name: '佐藤　花子',
      municipalityCode: '141046',
      status: 'current',
      version: 5,
      changeReason: 'moveIn',
      changedItems: ['address'],
    });
    const former = await read('municipality', r.residentCode);
    expect(former.statusCode).toBe(404);
    const verifier = await read('signatureVerifier', r.residentCode);
    expect(verifier.statusCode).toBe(403);
    const historyByMunicipality = await read('municipality2', r.residentCode, true);
    expect(historyByMunicipality.statusCode).toBe(403);
  });

  it('gives operators every version, oldest first, and closes the move-out', async () => {
    const h = await read('operator', r.residentCode, true);
    expect(h.statusCode).toBe(200);
    const versions = h.json<{ versions: Record<string, unknown>[] }>().versions;
    expect(versions.map((v) => [v['version'], v['changeReason'], v['status']])).toEqual([
      [1, 'birth', 'current'],
      [2, 'moveWithin', 'current'],
      [3, 'nameChange', 'current'],
      [4, 'moveOut', 'movingOut'],
      [5, 'moveIn', 'current'],
    ]);
    expect(versions[1]?.['changedItems']).toEqual(['address']);
    expect(versions[2]?.['changedItems']).toEqual(['name']);
    expect(versions[3]).toMatchObject({
      plannedMoveOutDate: '2026-03-31',
      destination: { municipalityCode: '141046' },
    });
  });

  it('audits every read, including refused ones, without the My Number', async () => {
    const rows = await t.database.db.query<{ actor_name: string; outcome: string; action: string }>(
      `SELECT actor_name, outcome, action FROM audit_log
        WHERE subject = $1 AND action LIKE 'registry.identity-record.%' ORDER BY seq`,
      [r.residentCode],
    );
    expect(rows.rows).toEqual([
      { actor_name: 'municipality2', outcome: 'success', action: 'registry.identity-record.read' },
      { actor_name: 'municipality', outcome: 'denied', action: 'registry.identity-record.read' },
      {
        actor_name: 'operator',
        outcome: 'success',
        action: 'registry.identity-record.read-history',
      },
    ]);
    const leak = await t.database.db.query(
      "SELECT 1 FROM audit_log WHERE details::text LIKE '%' || $1 || '%' OR subject = $1",
      [r.myNumber],
    );
    expect(leak.rows).toEqual([]);
  });

  it('appends one resident.changed event per accepted change, naming items not values', async () => {
    const events = await t.database.db.query<{ payload: Record<string, unknown> }>(
      "SELECT payload FROM outbox_events WHERE topic = 'resident.changed' AND key = $1 ORDER BY id",
      [r.residentCode],
    );
    expect(events.rows.map((e) => [e.payload['changeReason'], e.payload['changedItems']])).toEqual([
      ['birth', []],
      ['moveWithin', ['address']],
      ['nameChange', ['name']],
      ['moveOut', []],
      ['moveIn', ['address']],
    ]);
    const text = JSON.stringify(events.rows);
    expect(text).not.toContain(r.myNumber);
    expect(text).not.toContain('佐藤');
  });

  it('removes the record on death; nothing moves it afterwards', async () => {
    const death = await post('municipality2', {
      municipalityCode: '141046',
      sequence: 2,
      changeReason: 'death',
      changeDate: '2026-04-01',
      record: {
        ...baseRecord(r),
        name: '佐藤　花子',
        nameKana: 'サトウ　ハナコ',
        address: '神奈川県横浜市中区港町1丁目1番地',
      },
    });
    expect(death.statusCode, death.body).toBe(201);
    const after = await post('municipality2', {
      municipalityCode: '141046',
      sequence: 3,
      changeReason: 'moveWithin',
      changeDate: '2026-04-01',
      record: {
        ...baseRecord(r),
        name: '佐藤　花子',
        nameKana: 'サトウ　ハナコ',
        address: '神奈川県横浜市中区山下町1番地',
      },
    });
    expect(after.statusCode).toBe(409);
    expect(after.json()).toMatchObject({ code: 'registry.record-removed' });
  });

  it('refuses a birth whose code or My Number does not belong together', async () => {
    const a = await newResident(t, 'municipality');
    const b = await newResident(t, 'municipality');
    const mixed = await post('municipality', {
      municipalityCode: '131016',
      sequence: 5,
      changeReason: 'birth',
      changeDate: '2026-03-20',
      record: { ...baseRecord(a), myNumber: b.myNumber },
    });
    expect(mixed.statusCode).toBe(409);
    expect(mixed.json()).toMatchObject({ code: 'registry.my-number-not-issued' });
  });
});
