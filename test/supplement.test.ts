import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from './support/app.ts';
import { baseRecord, newResident, type Resident } from './support/registry.ts';

/**
 * 附票本人確認情報: the person lives in 千代田区 (131016, `municipality`) while the 本籍 — and so
 * the 附票 — is in 横浜市中区 (141046, `municipality2`); later the 本籍 moves to 千代田区 (転籍).
 */
describe('supplement-record intake and reads', () => {
  let t: TestApp;
  let r: Resident;
  let newCode = '';

  const TOKYO = '131016';
  const YOKOHAMA_NAKA = '141046';
  const KUDAN = '東京都千代田区九段南1丁目2番1号';
  const YOKOHAMA_ADDRESS = '神奈川県横浜市中区港町1丁目1番地';
  const NEW_YORK = { country: 'US', address: '350 Fifth Avenue, New York, NY 10118' };

  const post = (actor: string, payload: object) =>
    t.app.inject({
      method: 'POST',
      url: '/v1/registry/supplement-notifications',
      headers: t.auth(actor),
      payload,
    });
  const postIdentity = async (actor: string, payload: object) => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/v1/registry/notifications',
      headers: t.auth(actor),
      payload,
    });
    expect(res.statusCode, res.body).toBe(201);
  };
  const read = (actor: string, code: string, history = false) =>
    t.app.inject({
      url: `/v1/registry/supplement-records/${code}${history ? '?history=true' : ''}`,
      headers: t.auth(actor),
    });

  /** The 附票 record: basic data as on the 住民票, and where the person lives. */
  const supp = (over: Record<string, unknown> = {}) => {
    const record: Record<string, unknown> = { ...baseRecord(r), ...over };
    delete record['myNumber'];
    return record;
  };
  const note = (
    sequence: number,
    changeReason: string,
    changeDate: string,
    record: object,
    municipalityCode = YOKOHAMA_NAKA,
  ) => ({ municipalityCode, sequence, changeReason, changeDate, record });

  beforeAll(async () => {
    t = await createTestApp();
    r = await newResident(t, 'municipality');
    await postIdentity('municipality', {
      municipalityCode: TOKYO,
      sequence: 1,
      changeReason: 'birth',
      changeDate: '2026-03-20',
      record: baseRecord(r),
    });
  });
  afterAll(async () => t.close());

  const entry = () => note(1, 'entry', '2026-03-20', supp());

  it('records an entry at the 本籍地 (201) and replays it identically (200)', async () => {
    const first = await post('municipality2', entry());
    expect(first.statusCode, first.body).toBe(201);
    expect(first.json()).toEqual({ residentCode: r.residentCode, version: 1 });
    const replay = await post('municipality2', entry());
    expect(replay.statusCode).toBe(200);
    expect(replay.json()).toEqual({ residentCode: r.residentCode, version: 1 });
  });

  it('refuses a different body under a used sequence, and a gap', async () => {
    const conflict = await post('municipality2', {
      ...entry(),
      record: supp({ name: '山田　花' }),
    });
    expect(conflict.statusCode).toBe(409);
    expect(conflict.json()).toMatchObject({ code: 'registry.sequence-conflict' });
    const gap = await post(
      'municipality2',
      note(9, 'addressChange', '2026-03-25', supp({ address: KUDAN })),
    );
    expect(gap.statusCode).toBe(409);
    expect(gap.json()).toMatchObject({ code: 'registry.sequence-gap', expectedSequence: 2 });
  });

  it('reports invalid fields precisely without echoing personal data', async () => {
    const bad = await post(
      'municipality2',
      note(
        2,
        'addressChange',
        '2026-03-25',
        supp({
          residentCode: `${r.residentCode.slice(0, 10)}${(Number(r.residentCode[10]) + 1) % 10}`,
          birthDate: '2026-02-30',
          nameKana: 'やまだ　はなこ',
          address: KUDAN,
          overseasAddress: { country: 'JP', address: 'Tokyo Secret Street 1' },
        }),
      ),
    );
    expect(bad.statusCode).toBe(400);
    const p = bad.json<{ code: string; errors: { pointer: string }[] }>();
    expect(p.code).toBe('registry.invalid-notification');
    expect(p.errors.map((e) => e.pointer).sort()).toEqual([
      '/body/record/birthDate',
      '/body/record/nameKana',
      '/body/record/overseasAddress',
      '/body/record/overseasAddress/country',
      '/body/record/residentCode',
    ]);
    for (const secret of ['やまだ', '山田', '九段', 'Secret', r.residentCode.slice(0, 10)]) {
      expect(bad.body).not.toContain(secret);
    }
    const emigrationWithoutAbroad = await post(
      'municipality2',
      note(2, 'emigration', '2026-03-25', supp()),
    );
    expect(emigrationWithoutAbroad.statusCode).toBe(400);
    expect(
      emigrationWithoutAbroad
        .json<{ errors: { pointer: string }[] }>()
        .errors.map((e) => e.pointer),
    ).toEqual(['/body/record/overseasAddress', '/body/record/address']);
  });

  it('refuses a resident code no person holds, and a municipality that keeps no 附票', async () => {
    const drawnOnly = await newResident(t, 'municipality2');
    const unknown = await post(
      'municipality2',
      note(2, 'entry', '2026-03-20', supp({ residentCode: drawnOnly.residentCode })),
    );
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({
      code: 'registry.resident-not-found',
      errors: [{ pointer: '/body/record/residentCode' }],
    });
    // 横浜市 as a whole keeps no register: its wards do. Its prefecture may relay for it.
    const city = await post('prefecture2', note(1, 'entry', '2026-03-20', supp(), '141003'));
    expect(city.statusCode).toBe(400);
    expect(city.json()).toMatchObject({ code: 'registry.unknown-municipality' });
  });

  it('lets only the municipality itself, or its prefecture, notify', async () => {
    const body = note(2, 'addressChange', '2026-03-25', supp({ address: KUDAN }));
    const otherMunicipality = await post('municipality', body);
    expect(otherMunicipality.statusCode).toBe(403);
    expect(otherMunicipality.json()).toMatchObject({ code: 'auth.other-municipality' });
    const otherPrefecture = await post('prefecture', body);
    expect(otherPrefecture.statusCode).toBe(403);
    expect(otherPrefecture.json()).toMatchObject({ code: 'auth.other-prefecture' });
    for (const actor of ['signatureVerifier', 'nationalAgency', 'operator', 'resident']) {
      const res = await post(actor, body);
      expect(res.statusCode, actor).toBe(403);
      expect(res.json(), actor).toMatchObject({ code: 'auth.forbidden' });
    }
    // Kanagawa relays for its ward.
    const relayed = await post('prefecture2', body);
    expect(relayed.statusCode, relayed.body).toBe(201);
    expect(relayed.json()).toEqual({ residentCode: r.residentCode, version: 2 });
  });

  it('follows the person abroad (国外転出) and back, with the identity record removed meanwhile', async () => {
    const moved = { ...baseRecord(r), address: KUDAN };
    await postIdentity('municipality', {
      municipalityCode: TOKYO,
      sequence: 2,
      changeReason: 'moveWithin',
      changeDate: '2026-03-25',
      record: moved,
    });
    await postIdentity('municipality', {
      municipalityCode: TOKYO,
      sequence: 3,
      changeReason: 'emigration',
      changeDate: '2026-03-27',
      plannedMoveOutDate: '2026-03-28',
      destination: { abroad: true },
      record: moved,
    });
    const abroad = supp({ address: undefined, overseasAddress: NEW_YORK });
    const emigration = await post('municipality2', note(3, 'emigration', '2026-03-28', abroad));
    expect(emigration.statusCode, emigration.body).toBe(201);
    expect(emigration.json()).toEqual({ residentCode: r.residentCode, version: 3 });

    const again = await post('municipality2', note(4, 'emigration', '2026-03-29', abroad));
    expect(again.statusCode).toBe(409);
    expect(again.json()).toMatchObject({ code: 'registry.already-abroad' });
    const notAbroadYet = await post(
      'municipality2',
      note(4, 'addressChange', '2026-03-29', supp({ address: KUDAN })),
    );
    expect(notAbroadYet.statusCode).toBe(409);
    expect(notAbroadYet.json()).toMatchObject({ code: 'registry.already-abroad' });

    const london = supp({ address: undefined, overseasAddress: { country: 'GB' } });
    const movedAbroad = await post(
      'municipality2',
      note(4, 'overseasAddressChange', '2026-03-30', london),
    );
    expect(movedAbroad.statusCode, movedAbroad.body).toBe(201);
    expect(movedAbroad.json()).toEqual({ residentCode: r.residentCode, version: 4 });

    await postIdentity('municipality2', {
      municipalityCode: YOKOHAMA_NAKA,
      sequence: 1,
      changeReason: 'moveIn',
      changeDate: '2026-03-31',
      record: { ...baseRecord(r), address: YOKOHAMA_ADDRESS },
    });
    const back = await post(
      'municipality2',
      note(5, 'returnToJapan', '2026-03-31', supp({ address: YOKOHAMA_ADDRESS })),
    );
    expect(back.statusCode, back.body).toBe(201);
    expect(back.json()).toEqual({ residentCode: r.residentCode, version: 5 });
    const notAbroad = await post(
      'municipality2',
      note(6, 'returnToJapan', '2026-03-31', supp({ address: KUDAN })),
    );
    expect(notAbroad.statusCode).toBe(409);
    expect(notAbroad.json()).toMatchObject({ code: 'registry.not-abroad' });
  });

  it('lets only the municipality keeping the 附票 read it', async () => {
    const keeper = await read('municipality2', r.residentCode);
    expect(keeper.statusCode, keeper.body).toBe(200);
    expect(keeper.json()).toEqual({
      residentCode: r.residentCode,
      name: '山田　花子',
      nameKana: 'ヤマダ　ハナコ',
      birthDate: '2026-03-20',
      sex: 'female',
      address: YOKOHAMA_ADDRESS,
      overseasAddress: null,
      abroad: false,
      version: 5,
      municipalityCode: YOKOHAMA_NAKA,
      status: 'current',
      changeReason: 'returnToJapan',
      changeDate: '2026-03-31',
      changedItems: ['address'],
      previousResidentCode: null,
      recordedAt: expect.any(String) as unknown,
    });
    // Where the person lived is not where the 附票 is kept.
    const residence = await read('municipality', r.residentCode);
    expect(residence.statusCode).toBe(404);
    expect(residence.json()).toMatchObject({ code: 'registry.record-not-found' });
    expect((await read('municipality2', r.residentCode, true)).statusCode).toBe(403);
    for (const actor of ['signatureVerifier', 'prefecture', 'nationalAgency', 'opCa']) {
      expect((await read(actor, r.residentCode)).statusCode, actor).toBe(403);
    }
    const unknown = await read('opRegistry', '12345678901');
    expect(unknown.statusCode).toBe(404);
    expect((await read('opAuditor', r.residentCode)).json()).toMatchObject({ version: 5 });
  });

  it('gives operators every version, oldest first, with the address abroad', async () => {
    const h = await read('operator', r.residentCode, true);
    expect(h.statusCode).toBe(200);
    const versions = h.json<{ versions: Record<string, unknown>[] }>().versions;
    expect(
      versions.map((v) => [v['version'], v['changeReason'], v['abroad'], v['changedItems']]),
    ).toEqual([
      [1, 'entry', false, []],
      [2, 'addressChange', false, ['address']],
      [3, 'emigration', true, ['address']],
      [4, 'overseasAddressChange', true, ['address']],
      [5, 'returnToJapan', false, ['address']],
    ]);
    expect(versions[2]).toMatchObject({ address: null, overseasAddress: { ...NEW_YORK } });
    expect(versions[3]).toMatchObject({ overseasAddress: { country: 'GB', address: null } });
  });

  it('appends one supplement.changed event per acceptance, naming items, not values', async () => {
    const events = await t.database.db.query<{ payload: Record<string, unknown> }>(
      "SELECT payload FROM outbox_events WHERE topic = 'supplement.changed' AND key = $1 ORDER BY id",
      [r.residentCode],
    );
    expect(
      events.rows.map((e) => [
        e.payload['changeReason'],
        e.payload['changedItems'],
        e.payload['abroad'],
        e.payload['municipalityCode'],
      ]),
    ).toEqual([
      ['entry', [], false, YOKOHAMA_NAKA],
      ['addressChange', ['address'], false, YOKOHAMA_NAKA],
      ['emigration', ['address'], true, YOKOHAMA_NAKA],
      ['overseasAddressChange', ['address'], true, YOKOHAMA_NAKA],
      ['returnToJapan', ['address'], false, YOKOHAMA_NAKA],
    ]);
    const text = JSON.stringify(events.rows);
    for (const secret of ['山田', 'Fifth', '"US"', '"GB"', '横浜', r.myNumber]) {
      expect(text).not.toContain(secret);
    }
  });

  it('audits every acceptance and every read, refused ones included', async () => {
    const accepted = await t.database.db.query<{
      actor_name: string;
      details: { sequence: number };
    }>(
      `SELECT actor_name, details FROM audit_log
        WHERE subject = $1 AND action = 'registry.supplement-notification.accept' ORDER BY seq`,
      [r.residentCode],
    );
    expect(accepted.rows.map((a) => [a.actor_name, a.details.sequence])).toEqual([
      ['municipality2', 1],
      ['prefecture2', 2],
      ['municipality2', 3],
      ['municipality2', 4],
      ['municipality2', 5],
    ]);
    const reads = await t.database.db.query<{
      actor_name: string;
      outcome: string;
      action: string;
    }>(
      `SELECT actor_name, outcome, action FROM audit_log
        WHERE subject = $1 AND action LIKE 'registry.supplement-record.%' ORDER BY seq`,
      [r.residentCode],
    );
    expect(reads.rows).toEqual([
      {
        actor_name: 'municipality2',
        outcome: 'success',
        action: 'registry.supplement-record.read',
      },
      { actor_name: 'municipality', outcome: 'denied', action: 'registry.supplement-record.read' },
      { actor_name: 'opAuditor', outcome: 'success', action: 'registry.supplement-record.read' },
      {
        actor_name: 'operator',
        outcome: 'success',
        action: 'registry.supplement-record.read-history',
      },
    ]);
    // The refused history read and the wrong actor types are audited by the edge.
    const denied = await t.database.db.query<{ actor_name: string }>(
      `SELECT actor_name FROM audit_log
        WHERE action = 'GET /v1/registry/supplement-records/:residentCode' AND outcome = 'denied'
        ORDER BY seq`,
    );
    expect(denied.rows.map((d) => d.actor_name)).toEqual([
      'municipality2',
      'signatureVerifier',
      'prefecture',
      'nationalAgency',
      'opCa',
    ]);
    const leak = await t.database.db.query(
      "SELECT 1 FROM audit_log WHERE details::text LIKE '%' || $1 || '%' OR subject = $1",
      [r.myNumber],
    );
    expect(leak.rows).toEqual([]);
  });

  it('keeps two 附票 while a 転籍 is in flight, then only the new one', async () => {
    const current = supp({ address: YOKOHAMA_ADDRESS });
    const newHonseki = await post('municipality', note(1, 'entry', '2026-04-01', current, TOKYO));
    expect(newHonseki.statusCode, newHonseki.body).toBe(201);
    expect(newHonseki.json()).toEqual({ residentCode: r.residentCode, version: 6 });
    expect((await read('municipality', r.residentCode)).json()).toMatchObject({
      version: 6,
      municipalityCode: TOKYO,
    });
    expect((await read('municipality2', r.residentCode)).json()).toMatchObject({ version: 5 });

    const altered = await post(
      'municipality2',
      note(6, 'removal', '2026-04-01', { ...current, name: '山田　次郎' }),
    );
    expect(altered.statusCode).toBe(409);
    expect(altered.json()).toMatchObject({
      code: 'registry.immutable-field',
      errors: [{ pointer: '/body/record/name' }],
    });
    const removal = await post('municipality2', note(6, 'removal', '2026-04-01', current));
    expect(removal.statusCode, removal.body).toBe(201);
    expect(removal.json()).toEqual({ residentCode: r.residentCode, version: 7 });

    expect((await read('municipality2', r.residentCode)).statusCode).toBe(404);
    expect((await read('municipality', r.residentCode)).json()).toMatchObject({ version: 6 });
    expect((await read('operator', r.residentCode)).json()).toMatchObject({
      version: 6,
      municipalityCode: TOKYO,
      status: 'current',
    });
    const afterRemoval = await post(
      'municipality2',
      note(7, 'nameChange', '2026-04-01', { ...current, name: '佐藤　花子' }),
    );
    expect(afterRemoval.statusCode).toBe(409);
    expect(afterRemoval.json()).toMatchObject({ code: 'registry.supplement-removed' });
    const neverKept = await post(
      'prefecture',
      note(1, 'nameChange', '2026-04-01', { ...current, name: '佐藤　花子' }, '131024'),
    );
    expect(neverKept.statusCode).toBe(404);
    expect(neverKept.json()).toMatchObject({ code: 'registry.supplement-not-found' });
  });

  it('takes the new resident code by officialCorrection after a 住民票コードの変更', async () => {
    const drawn = await t.app.inject({
      method: 'POST',
      url: '/v1/registry/resident-codes',
      headers: t.auth('municipality2'),
      payload: { count: 1 },
    });
    newCode = drawn.json<{ residentCodes: string[] }>().residentCodes[0] ?? '';
    await postIdentity('municipality2', {
      municipalityCode: YOKOHAMA_NAKA,
      sequence: 2,
      changeReason: 'residentCodeChange',
      changeDate: '2026-04-01',
      previousResidentCode: r.residentCode,
      record: { ...baseRecord(r), residentCode: newCode, address: YOKOHAMA_ADDRESS },
    });
    const current = supp({ address: YOKOHAMA_ADDRESS });
    const retired = await post(
      'municipality',
      note(2, 'nameChange', '2026-04-01', { ...current, name: '佐藤　花子' }, TOKYO),
    );
    expect(retired.statusCode).toBe(409);
    expect(retired.json()).toMatchObject({ code: 'registry.resident-code-retired' });
    const recoded = { ...current, residentCode: newCode };
    const byNameChange = await post(
      'municipality',
      note(2, 'nameChange', '2026-04-01', { ...recoded, name: '佐藤　花子' }, TOKYO),
    );
    expect(byNameChange.statusCode).toBe(409);
    expect(byNameChange.json()).toMatchObject({
      code: 'registry.immutable-field',
      errors: [{ pointer: '/body/record/residentCode' }],
    });
    const corrected = await post(
      'municipality',
      note(2, 'officialCorrection', '2026-04-01', recoded, TOKYO),
    );
    expect(corrected.statusCode, corrected.body).toBe(201);
    expect(corrected.json()).toEqual({ residentCode: newCode, version: 8 });
    expect((await read('municipality', newCode)).json()).toMatchObject({
      residentCode: newCode,
      previousResidentCode: r.residentCode,
      changedItems: [],
      version: 8,
    });
    // The retired code still finds the person's history for operators.
    const h = await read('operator', r.residentCode, true);
    expect(h.json<{ versions: unknown[] }>().versions).toHaveLength(8);
  });

  it('raised no error notice: the 附票 always agreed with the identity record', async () => {
    const n = await t.database.db.query('SELECT 1 FROM error_notices');
    expect(n.rows).toEqual([]);
  });
});
