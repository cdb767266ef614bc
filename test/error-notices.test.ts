import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_NOTICE_CONSUMER } from '../src/registry/error-notices.ts';
import { createTestApp, type TestApp } from './support/app.ts';
import { newResident, type Resident } from './support/registry.ts';

interface NoticeView {
  id: string;
  prefectureCode: string;
  municipalityCode: string;
  kind: string;
  residentCodes: string[];
  detail: string;
  status: string;
  acknowledgedAt: string | null;
  acknowledgedBy: string | null;
}

/** 誤りに関する通報: the detectors, the prefecture's list and its acknowledgement. */
describe('error notices', () => {
  let t: TestApp;
  const TOKYO = '131016';
  const CHUO = '131024';
  const YOKOHAMA_NAKA = '141046';
  const ACTOR_OF: Record<string, string> = {
    [TOKYO]: 'municipality',
    [YOKOHAMA_NAKA]: 'municipality2',
    [CHUO]: 'prefecture',
  };
  const sequences: Record<string, number> = {};

  const identity = async (municipalityCode: string, body: Record<string, unknown>) => {
    const sequence = (sequences[municipalityCode] ?? 0) + 1;
    const res = await t.app.inject({
      method: 'POST',
      url: '/v1/registry/notifications',
      headers: t.auth(ACTOR_OF[municipalityCode] ?? ''),
      payload: { municipalityCode, sequence, ...body },
    });
    expect(res.statusCode, res.body).toBe(201);
    sequences[municipalityCode] = sequence;
  };

  interface Person {
    name: string;
    nameKana: string;
    birthDate: string;
    sex: 'male' | 'female';
  }
  const ADDRESS: Record<string, string> = {
    [TOKYO]: '東京都千代田区千代田1番1号',
    [YOKOHAMA_NAKA]: '神奈川県横浜市中区港町1丁目1番地',
    [CHUO]: '東京都中央区日本橋1丁目1番1号',
  };
  const recordOf = (r: Resident, p: Person, municipalityCode: string) => ({
    residentCode: r.residentCode,
    myNumber: r.myNumber,
    ...p,
    address: ADDRESS[municipalityCode] ?? '',
  });
  /** Draws a code in `municipalityCode` and registers a birth there. */
  const born = async (municipalityCode: string, p: Person): Promise<Resident> => {
    const r = await newResident(t, ACTOR_OF[municipalityCode] ?? '');
    await identity(municipalityCode, {
      changeReason: 'birth',
      changeDate: p.birthDate,
      record: recordOf(r, p, municipalityCode),
    });
    return r;
  };
  const notices = async (): Promise<NoticeView[]> =>
    (
      await t.database.db.query<{ id: string }>('SELECT id FROM error_notices ORDER BY id')
    ).rows.map((row) => ({ id: row.id }) as NoticeView);
  const list = (actor: string, query = '') =>
    t.app.inject({ url: `/v1/registry/error-notices${query}`, headers: t.auth(actor) });
  const listed = async (actor: string, query = ''): Promise<NoticeView[]> => {
    const res = await list(actor, query);
    expect(res.statusCode, res.body).toBe(200);
    return res.json<{ notices: NoticeView[] }>().notices;
  };
  const acknowledge = (actor: string, id: string) =>
    t.app.inject({
      method: 'POST',
      url: `/v1/registry/error-notices/${id}/acknowledgement`,
      headers: t.auth(actor),
    });

  const ICHIRO: Person = {
    name: '鈴木　一郎',
    nameKana: 'スズキ　イチロウ',
    birthDate: '2026-03-01',
    sex: 'male',
  };
  let a: Resident;
  let b: Resident;
  let moved: Resident;
  let mismatched: Resident;

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => t.close());

  it('(a) flags the same basic data newly registered in two municipalities, to both prefectures', async () => {
    a = await born(TOKYO, ICHIRO);
    // The same person, the name written with an ASCII space between the parts.
    b = await born(YOKOHAMA_NAKA, { ...ICHIRO, name: '鈴木 一郎' });
    // Not the same: another given name; the other sex.
    await born(YOKOHAMA_NAKA, { ...ICHIRO, name: '鈴木　二郎', nameKana: 'スズキ　ジロウ' });
    await born(YOKOHAMA_NAKA, { ...ICHIRO, sex: 'female' });
    expect(await notices()).toEqual([]);

    const results = await t.services.outbox.drain();
    expect(results[0]).toMatchObject({ delivered: 4, failed: 0, parked: 0 });
    const found = await listed('operator');
    expect(
      found.map((n) => [n.kind, n.prefectureCode, n.municipalityCode, n.residentCodes]),
    ).toEqual([
      ['doubleRegistration', '13', TOKYO, [a.residentCode, b.residentCode]],
      ['doubleRegistration', '14', YOKOHAMA_NAKA, [b.residentCode, a.residentCode]],
    ]);
    expect(found[0]?.detail).toContain(YOKOHAMA_NAKA);
    expect(found[1]?.detail).toContain(TOKYO);
    expect(found.every((n) => n.status === 'open')).toBe(true);
  });

  it('(b) flags a move-in that closed a move-out declared for another municipality', async () => {
    const KEN: Person = {
      name: '高橋　健',
      nameKana: 'タカハシ　ケン',
      birthDate: '2026-03-05',
      sex: 'male',
    };
    const moveOutTo = async (r: Resident, p: Person, destination: string) =>
      identity(TOKYO, {
        changeReason: 'moveOut',
        changeDate: '2026-03-20',
        plannedMoveOutDate: '2026-03-25',
        destination: { municipalityCode: destination },
        record: recordOf(r, p, TOKYO),
      });
    moved = await born(TOKYO, KEN);
    await moveOutTo(moved, KEN, YOKOHAMA_NAKA);
    // 中央区 (its prefecture relays) receives the person who said they were going to Yokohama.
    await identity(CHUO, {
      changeReason: 'moveIn',
      changeDate: '2026-03-26',
      record: recordOf(moved, KEN, CHUO),
    });
    // As declared: no notice.
    const SHO: Person = { ...KEN, name: '高橋　翔', nameKana: 'タカハシ　ショウ' };
    const asDeclared = await born(TOKYO, SHO);
    await moveOutTo(asDeclared, SHO, YOKOHAMA_NAKA);
    await identity(YOKOHAMA_NAKA, {
      changeReason: 'moveIn',
      changeDate: '2026-03-26',
      record: recordOf(asDeclared, SHO, YOKOHAMA_NAKA),
    });

    await t.services.outbox.drain();
    const found = (await listed('operator')).filter((n) => n.kind === 'moveOutDestinationMismatch');
    expect(found.map((n) => [n.prefectureCode, n.municipalityCode, n.residentCodes])).toEqual([
      ['13', TOKYO, [moved.residentCode]],
    ]);
    expect(found[0]?.detail).toContain(YOKOHAMA_NAKA);
    expect(found[0]?.detail).toContain(CHUO);
  });

  it('(c) flags a supplement record that disagrees with the identity record, at intake', async () => {
    const MAKOTO: Person = {
      name: '伊藤　誠',
      nameKana: 'イトウ　マコト',
      birthDate: '2026-03-06',
      sex: 'male',
    };
    mismatched = await born(TOKYO, MAKOTO);
    const fields: Record<string, unknown> = recordOf(mismatched, MAKOTO, TOKYO);
    delete fields['myNumber'];
    const res = await t.app.inject({
      method: 'POST',
      url: '/v1/registry/supplement-notifications',
      headers: t.auth('municipality2'),
      payload: {
        municipalityCode: YOKOHAMA_NAKA,
        sequence: 1,
        changeReason: 'entry',
        changeDate: '2026-03-10',
        record: { ...fields, name: '伊藤　誡', birthDate: '2026-03-07' },
      },
    });
    expect(res.statusCode, res.body).toBe(201);
    const found = (await listed('prefecture2')).filter(
      (n) => n.kind === 'supplementIdentityMismatch',
    );
    expect(found.map((n) => [n.prefectureCode, n.municipalityCode, n.residentCodes])).toEqual([
      ['14', YOKOHAMA_NAKA, [mismatched.residentCode]],
    ]);
    expect(found[0]?.detail).toMatch(/in: name, birthDate$/);
    // The birth itself raised nothing.
    await t.services.outbox.drain();
    expect(await notices()).toHaveLength(4);
  });

  it('never puts a name, a date of birth or a My Number into a notice', async () => {
    const rows = await t.database.db.query<{ detail: string }>('SELECT detail FROM error_notices');
    const text = JSON.stringify(rows.rows);
    for (const secret of ['鈴木', '高橋', '伊藤', '誡', '2026-03-0', a.myNumber, moved.myNumber]) {
      expect(text).not.toContain(secret);
    }
  });

  it('lists each prefecture its own notices; operators all, or one prefecture’s', async () => {
    const tokyo = await listed('prefecture');
    expect(tokyo.map((n) => [n.kind, n.municipalityCode])).toEqual([
      ['doubleRegistration', TOKYO],
      ['moveOutDestinationMismatch', TOKYO],
    ]);
    const kanagawa = await listed('prefecture2');
    expect(kanagawa.map((n) => [n.kind, n.municipalityCode])).toEqual([
      ['doubleRegistration', YOKOHAMA_NAKA],
      ['supplementIdentityMismatch', YOKOHAMA_NAKA],
    ]);
    expect(await listed('prefecture', '?prefectureCode=13')).toEqual(tokyo);
    expect(await listed('opAuditor', '?prefectureCode=14')).toEqual(kanagawa);
    expect(await listed('opRegistry')).toHaveLength(4);

    const other = await list('prefecture2', '?prefectureCode=13');
    expect(other.statusCode).toBe(403);
    expect(other.json()).toMatchObject({ code: 'auth.other-prefecture' });
    for (const actor of ['municipality', 'opCa', 'nationalAgency', 'signatureVerifier']) {
      const res = await list(actor);
      expect(res.statusCode, actor).toBe(403);
      expect(res.json(), actor).toMatchObject({ code: 'auth.forbidden' });
    }
    const bad = await list('operator', '?status=closed');
    expect(bad.statusCode).toBe(400);
  });

  it('pages oldest first with `after`', async () => {
    const first = await list('operator', '?limit=3');
    const page = first.json<{ notices: NoticeView[]; next: string | null }>();
    expect(page.notices).toHaveLength(3);
    expect(page.next).toBe(page.notices[2]?.id);
    const rest = await list('operator', `?limit=3&after=${page.next ?? ''}`);
    const second = rest.json<{ notices: NoticeView[]; next: string | null }>();
    expect(second.notices).toHaveLength(1);
    expect(second.next).toBeNull();
  });

  it('lets the addressed prefecture acknowledge a notice, once, and nobody else', async () => {
    const [mine] = await listed('prefecture', '?status=open');
    const id = mine?.id ?? '';
    const ack = await acknowledge('prefecture', id);
    expect(ack.statusCode, ack.body).toBe(200);
    const acknowledged = ack.json<NoticeView>();
    expect(acknowledged).toMatchObject({
      id,
      status: 'acknowledged',
      acknowledgedBy: 'prefecture',
    });
    expect(acknowledged.acknowledgedAt).toBe(t.clock.now().toISOString());

    t.clock.advance(60_000);
    const again = await acknowledge('prefecture', id);
    expect(again.statusCode).toBe(200);
    expect(again.json()).toEqual(acknowledged);

    const notAddressed = await acknowledge('prefecture2', id);
    expect(notAddressed.statusCode).toBe(404);
    expect(notAddressed.json()).toMatchObject({ code: 'registry.error-notice-not-found' });
    expect((await acknowledge('prefecture', '999999')).statusCode).toBe(404);
    for (const actor of ['operator', 'municipality', 'opRegistry']) {
      const res = await acknowledge(actor, id);
      expect(res.statusCode, actor).toBe(403);
      expect(res.json(), actor).toMatchObject({ code: 'auth.forbidden' });
    }

    expect((await listed('prefecture', '?status=acknowledged')).map((n) => n.id)).toEqual([id]);
    expect((await listed('prefecture', '?status=open')).map((n) => n.kind)).toEqual([
      'moveOutDestinationMismatch',
    ]);
    expect(await listed('prefecture2', '?status=acknowledged')).toEqual([]);
  });

  it('audits every list and every acknowledgement, refused ones included', async () => {
    const acks = await t.database.db.query<{
      actor_name: string;
      outcome: string;
      details: Record<string, unknown>;
    }>(
      `SELECT actor_name, outcome, details FROM audit_log
        WHERE action = 'registry.error-notice.acknowledge' ORDER BY seq`,
    );
    expect(
      acks.rows.map((r) => [r.actor_name, r.outcome, r.details['alreadyAcknowledged'] ?? null]),
    ).toEqual([
      ['prefecture', 'success', false],
      ['prefecture', 'success', true],
      ['prefecture2', 'denied', null],
      ['prefecture', 'denied', null],
    ]);
    const lists = await t.database.db.query<{
      actor_name: string;
      subject: string | null;
      details: { count: number; noticeIds: string[] };
    }>(
      `SELECT actor_name, subject, details FROM audit_log
        WHERE action = 'registry.error-notices.list' AND actor_name = 'prefecture2' ORDER BY seq`,
    );
    expect(lists.rows[0]).toMatchObject({ subject: '14', details: { count: 2 } });
    expect(lists.rows[0]?.details.noticeIds).toHaveLength(2);
  });

  it('records each finding once, however often the consumer runs', async () => {
    const before = await notices();
    const again = await t.services.outbox.drain();
    expect(again[0]).toMatchObject({ delivered: 0, failed: 0 });
    expect(await notices()).toEqual(before);

    // Re-delivery of every event (a cursor reset) finds the same things and records nothing new.
    await t.database.db.query('UPDATE outbox_consumers SET cursor = 0 WHERE name = $1', [
      ERROR_NOTICE_CONSUMER,
    ]);
    const replayed = await t.services.outbox.drain();
    expect(replayed[0]?.delivered).toBeGreaterThan(5);
    expect(await notices()).toEqual(before);
    expect((await listed('prefecture', '?status=acknowledged')).length).toBe(1);
  });

  it('(a) does not flag namesakes registered more than 30 days apart', async () => {
    const start = t.clock.now();
    try {
      const HANAKO: Person = {
        name: '田中　花子',
        nameKana: 'タナカ　ハナコ',
        birthDate: '2026-03-02',
        sex: 'female',
      };
      await born(TOKYO, HANAKO);
      t.clock.advance(31 * 86_400_000);
      await born(YOKOHAMA_NAKA, HANAKO);
      const before = (await notices()).length;
      await t.services.outbox.drain();
      expect((await notices()).length).toBe(before);
    } finally {
      t.clock.set(start);
    }
  });

  it('(a) flags namesakes registered exactly 30 days apart, and not a millisecond more', async () => {
    const start = t.clock.now();
    try {
      const JIRO: Person = {
        name: '佐藤 次郎',
        nameKana: 'サトウ　ジロウ',
        birthDate: '2026-03-03',
        sex: 'male',
      };
      const SABURO: Person = { ...JIRO, name: '佐藤　三郎', nameKana: 'サトウ　サブロウ' };
      const before = (await notices()).length;
      // Both new registrations of a pair reach the detector in one run of events.
      const first = await born(TOKYO, JIRO);
      t.clock.advance(30 * 86_400_000);
      // The other spelling of the space (全角) does not make another name.
      const second = await born(YOKOHAMA_NAKA, { ...JIRO, name: '佐藤　次郎' });
      await born(TOKYO, SABURO);
      t.clock.advance(30 * 86_400_000 + 1);
      await born(YOKOHAMA_NAKA, SABURO);
      await t.services.outbox.drain();
      const found = await t.database.db.query<{
        resident_codes: string[];
        municipality_code: string;
      }>('SELECT resident_codes, municipality_code FROM error_notices ORDER BY id');
      expect(found.rows.length).toBe(before + 2);
      expect(found.rows.slice(before)).toEqual(
        expect.arrayContaining([
          { municipality_code: TOKYO, resident_codes: [first.residentCode, second.residentCode] },
          {
            municipality_code: YOKOHAMA_NAKA,
            resident_codes: [second.residentCode, first.residentCode],
          },
        ]),
      );
    } finally {
      t.clock.set(start);
    }
  });
});
