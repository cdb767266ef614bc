/**
 * The set-based batch path (src/registry/registry.bulk.ts) gives what the per-line path gives:
 * the same refusals (codes, pointers, messages, in line order) and, when a batch commits, the
 * same persons, versions, notifications, outbox events, audit entries, resident codes and My
 * Numbers. Two fresh databases hold the same resident codes and My Numbers; one takes batches,
 * the other the same notifications one at a time — through the single route, or through the
 * per-line batch path — and their contents are compared row for row.
 */
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Actor } from '../src/platform/actors.ts';
import { verifyAuditChain } from '../src/platform/audit.ts';
import { type FieldError, isAppError } from '../src/platform/errors.ts';
import {
  type BatchAccepted,
  type BatchLineError,
  DEFAULT_BATCH_LIMITS,
  intakeBatch,
  StreamedBatch,
} from '../src/registry/registry.batch.ts';
import {
  type ChangeReason,
  decideChange,
  type IdentityRecordFields,
  type RecordState,
  type RegistryNotification,
} from '../src/registry/registry.rules.ts';
import { pgArray } from '../src/platform/db.ts';
import { createTestApp, type TestApp } from './support/app.ts';

const CHIYODA = '131016';
const CHUO = '131024';
/** Two wards of 横浜市 (one 指定都市) and a city of the same prefecture. */
const TSURUMI = '141011';
const NAKA = '141046';
const YOKOSUKA = '142018';
const YOKOHAMA_WARDS = new Set([TSURUMI, NAKA]);

type Body = object;

interface Drawn {
  code: string;
  myNumber: string;
}

const FAMILY = [
  ['山田', 'ヤマダ'],
  ['佐藤', 'サトウ'],
  ['鈴木', 'スズキ'],
  ['高橋', 'タカハシ'],
  ['田中', 'タナカ'],
] as const;
const GIVEN = [
  ['花子', 'ハナコ'],
  ['太郎', 'タロウ'],
  ['陽子', 'ヨウコ'],
  ['健一', 'ケンイチ'],
] as const;
const TOWN: Record<string, string> = {
  [CHIYODA]: '東京都千代田区千代田',
  [CHUO]: '東京都中央区銀座',
  [TSURUMI]: '神奈川県横浜市鶴見区鶴見中央',
  [NAKA]: '神奈川県横浜市中区山下町',
  [YOKOSUKA]: '神奈川県横須賀市小川町',
};

const address = (m: string, n: number): string => `${TOWN[m] ?? '東京都'}${(n % 9) + 1}番${n}号`;

function record(d: Drawn, i: number, m: string): IdentityRecordFields {
  const [family, familyKana] = FAMILY[i % FAMILY.length] ?? FAMILY[0];
  const [given, givenKana] = GIVEN[i % GIVEN.length] ?? GIVEN[0];
  return {
    residentCode: d.code,
    myNumber: d.myNumber,
    name: `${family}\u3000${given}`,
    nameKana: `${familyKana}\u3000${givenKana}`,
    birthDate: `19${50 + (i % 40)}-0${(i % 9) + 1}-1${i % 10}`,
    sex: i % 2 ? 'male' : 'female',
    address: address(m, i + 1),
  };
}

const note = (
  municipalityCode: string,
  sequence: number,
  changeReason: string,
  rec: IdentityRecordFields,
  extra: Body = {},
): Body => ({
  municipalityCode,
  sequence,
  changeReason,
  changeDate: '2026-03-30',
  record: { ...rec },
  ...extra,
});

/** What one notification came to: its result, or its refusal as a batch reports it. */
type Outcome =
  | { ok: true; residentCode: string; version: number; replay: boolean }
  | { ok: false; code: string; errors: { pointer: string; message: string }[] };

interface Side {
  t: TestApp;
  actor: (name: string) => Promise<Actor>;
}

async function side(): Promise<Side> {
  const t = await createTestApp();
  return {
    t,
    actor: async (name) => {
      const a = await t.services.actors.byName(t.database.db, name);
      if (!a) throw new Error(`no actor ${name}`);
      return a;
    },
  };
}

/** Codes (and My Numbers, unless `numbers` is false) handed out on `from`. */
async function draw(from: TestApp, m: string, n: number, numbers = true): Promise<Drawn[]> {
  return from.database.db.transaction(async (tx) => {
    const codes = await from.services.residentCodes.handOut(tx, m, n);
    const out: Drawn[] = [];
    for (const code of codes) {
      const myNumber = numbers ? (await from.services.numbering.issue(tx, code, m)).myNumber : '';
      out.push({ code, myNumber });
    }
    return out;
  });
}

/** Makes `to` hold the resident codes and My Numbers `from` holds (same rows). */
async function mirror(from: TestApp, to: TestApp): Promise<void> {
  const codes = await from.database.db.query('SELECT * FROM resident_codes');
  const numbers = await from.database.db.query('SELECT * FROM my_numbers');
  await to.database.db.transaction(async (tx) => {
    await tx.query(
      `UPDATE resident_codes r SET state = j.state, issued_at = j.issued_at,
              retired_at = j.retired_at, successor_code = j.successor_code
         FROM json_populate_recordset(NULL::resident_codes, $1::json) j WHERE r.code = j.code`,
      [JSON.stringify(codes.rows)],
    );
    await tx.query(
      `INSERT INTO resident_codes
       SELECT * FROM json_populate_recordset(NULL::resident_codes, $1::json)
       ON CONFLICT (code) DO NOTHING`,
      [JSON.stringify(codes.rows)],
    );
    await tx.query(
      `UPDATE my_numbers m SET holder_code = j.holder_code, retired_at = j.retired_at,
              retire_reason = j.retire_reason
         FROM json_populate_recordset(NULL::my_numbers, $1::json) j
        WHERE m.my_number = j.my_number`,
      [JSON.stringify(numbers.rows)],
    );
    await tx.query(
      `INSERT INTO my_numbers SELECT * FROM json_populate_recordset(NULL::my_numbers, $1::json)
       ON CONFLICT (my_number) DO NOTHING`,
      [JSON.stringify(numbers.rows)],
    );
  });
}

/** One notification through `POST /v1/registry/notifications`. */
async function single(t: TestApp, actor: string, body: Body): Promise<Outcome> {
  const res = await t.app.inject({
    method: 'POST',
    url: '/v1/registry/notifications',
    headers: t.auth(actor),
    payload: body,
  });
  if (res.statusCode === 200 || res.statusCode === 201) {
    const r = res.json<{ residentCode: string; version: number }>();
    return { ok: true, ...r, replay: res.statusCode === 200 };
  }
  const p = res.json<{
    code: string;
    detail: string;
    errors?: { pointer: string; message: string }[];
  }>();
  return {
    ok: false,
    code: p.code,
    errors: (p.errors ?? [{ pointer: '/body', message: p.detail }]).map((e) => ({
      pointer: e.pointer,
      message: e.message,
    })),
  };
}

/** The batch errors the outcomes of lines 1…n amount to. */
const errorsOf = (outcomes: readonly Outcome[]): BatchLineError[] =>
  outcomes.flatMap((o, i) =>
    o.ok
      ? []
      : o.errors.map((e) => ({
          line: i + 1,
          pointer: e.pointer,
          message: e.message,
          code: o.code,
        })),
  );

const ndjson = (lines: readonly (Body | string)[]): string =>
  lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n');

type BatchOutcome =
  | { ok: true; accepted: BatchAccepted }
  | { ok: false; code: string; errors: FieldError[] | undefined; failedLines: unknown };

/** A batch through intakeBatch: set-based (with a clock) or per-line (without). */
async function batch(
  s: Side,
  actorName: string,
  text: string,
  setBased: boolean,
): Promise<BatchOutcome> {
  const { t } = s;
  try {
    const accepted = await intakeBatch(
      {
        db: t.database.db,
        audit: t.services.audit,
        registry: t.services.registry,
        clock: t.clock,
        perLine: !setBased,
      },
      await s.actor(actorName),
      new StreamedBatch('ndjson', Readable.from([text])),
      'req-compare',
      DEFAULT_BATCH_LIMITS,
    );
    return { ok: true, accepted };
  } catch (err) {
    if (!isAppError(err)) throw err;
    return {
      ok: false,
      code: err.code,
      errors: err.errors,
      failedLines: err.extensions?.['failedLines'],
    };
  }
}

/**
 * What the database holds, with what must differ between two databases (person ids, row ids,
 * actor ids, request ids) replaced by what identifies it in both (the person's first resident
 * code, a notification's place in its sequence, the actor's name).
 */
async function contents(t: TestApp) {
  const db = t.database.db;
  const people = await db.query<{ id: string; first: string }>(
    `SELECT person_id AS id, resident_code AS first FROM identity_record_versions WHERE version = 1`,
  );
  const first = new Map(people.rows.map((p) => [p.id, p.first]));
  const person = (id: unknown): string => first.get(String(id)) ?? `unknown ${String(id)}`;
  const persons = await db.query<Record<string, unknown>>(
    `SELECT id, resident_code, municipality_code, status, latest_version, updated_at
       FROM persons ORDER BY resident_code`,
  );
  const versions = await db.query<Record<string, unknown>>(
    `SELECT v.person_id, v.version, v.resident_code, v.my_number, v.name, v.name_kana,
            v.birth_date, v.sex, v.address, v.municipality_code, v.status, v.removal_cause,
            v.change_reason, v.change_date, v.planned_move_out_date,
            v.destination_municipality_code, v.destination_abroad, v.changed_items,
            v.closes_move_out_at, n.municipality_code AS notified_by, n.sequence, v.recorded_at
       FROM identity_record_versions v JOIN registry_notifications n ON n.id = v.notification_id
      ORDER BY n.id`,
  );
  const notifications = await db.query<Record<string, unknown>>(
    `SELECT n.stream, n.municipality_code, n.sequence, encode(n.body_hash, 'hex') AS hash,
            n.change_reason, n.relayed_by, n.relayed_at, n.received_at, a.name AS actor,
            n.person_id, n.version, n.resident_code
       FROM registry_notifications n LEFT JOIN actors a ON a.id = n.actor_id ORDER BY n.id`,
  );
  const events = await db.query<{
    key: string;
    payload: Record<string, unknown>;
    created_at: Date;
  }>(
    `SELECT key, payload, created_at FROM outbox_events WHERE topic = 'resident.changed' ORDER BY id`,
  );
  const audit = await db.query<Record<string, unknown>>(
    `SELECT occurred_at, actor_type, actor_name, action, subject_type, subject, purpose, outcome,
            details
       FROM audit_log WHERE action = 'registry.notification.accept' ORDER BY seq`,
  );
  const codes = await db.query(
    `SELECT code, municipality_code, state, successor_code, retired_at FROM resident_codes
      ORDER BY code`,
  );
  const numbers = await db.query(
    'SELECT my_number, holder_code, retired_at, retire_reason FROM my_numbers ORDER BY my_number',
  );
  const withPerson = (rows: Record<string, unknown>[], key: string) =>
    rows.map(({ [key]: id, ...rest }) => ({ person: person(id), ...rest }));
  return {
    persons: withPerson(persons.rows, 'id'),
    versions: withPerson(versions.rows, 'person_id'),
    notifications: withPerson(notifications.rows, 'person_id'),
    events: events.rows.map((e) => {
      const { personId, ...payload } = e.payload;
      return { key: e.key, person: person(personId), payload, createdAt: e.created_at };
    }),
    audit: audit.rows,
    codes: codes.rows,
    numbers: numbers.rows,
  };
}

/** Two fresh sides for the enclosing describe, opened before its tests and closed after. */
function twoSides(): { a: Side; b: Side } {
  // Filled in by beforeAll, before any test of the describe reads it.
  const sides = {} as { a: Side; b: Side };
  beforeAll(async () => {
    sides.a = await side();
    sides.b = await side();
  });
  afterAll(async () => {
    await sides.a.t.close();
    await sides.b.t.close();
  });
  return sides;
}

describe('set-based batch intake against the single route', () => {
  // a takes batches; b takes the same notifications one by one.
  const sides = twoSides();

  it('sends batch-sized arrays as literals that read back unchanged', async () => {
    const texts = ['山田\u3000花子', 'a"b', 'c\\d', '{e,f}', 'NULL', '', ' g ', '𠮷', null];
    const r = await sides.a.t.database.db.query<{
      t: (string | null)[];
      n: number[];
      b: boolean[];
    }>('SELECT $1::text[] AS t, $2::int[] AS n, $3::boolean[] AS b', [
      pgArray(texts),
      pgArray([1, -2, 3]),
      pgArray([true, false]),
    ]);
    expect(r.rows[0]).toEqual({ t: texts, n: [1, -2, 3], b: [true, false] });
    const hash = Buffer.from('00ff10', 'hex');
    const h = await sides.a.t.database.db.query<{ h: string }>(
      "SELECT encode(($1::bytea[])[1], 'hex') AS h",
      [pgArray([hash])],
    );
    expect(h.rows[0]?.h).toBe('00ff10');
  });

  it('refuses the same lines for the same reasons, and stores the same rows', async () => {
    const [p1, p2, p3, n1, n2, n4] = (await draw(sides.a.t, CHIYODA, 6)) as [
      Drawn,
      Drawn,
      Drawn,
      Drawn,
      Drawn,
      Drawn,
    ];
    const [q1, n3, z] = (await draw(sides.a.t, CHUO, 3)) as [Drawn, Drawn, Drawn];
    const [r1, r2] = (await draw(sides.a.t, CHIYODA, 2, false)) as [Drawn, Drawn];
    await mirror(sides.a.t, sides.b.t);

    // Before the batch, on both sides: three residents of 千代田区 and one of 中央区.
    const rec = {
      p1: record(p1, 0, CHIYODA),
      p2: record(p2, 1, CHIYODA),
      p3: record(p3, 2, CHIYODA),
      q1: record(q1, 3, CHUO),
      n1: record(n1, 4, CHIYODA),
      n2: record(n2, 5, CHIYODA),
      n3: record(n3, 6, CHUO),
      n4: record(n4, 7, CHIYODA),
    };
    const prior = [
      note(CHIYODA, 1, 'birth', rec.p1),
      note(CHIYODA, 2, 'officialEntry', rec.p2),
      note(CHIYODA, 3, 'birth', rec.p3),
      note(CHUO, 1, 'moveIn', rec.q1),
    ];
    for (const s of [sides.a, sides.b]) {
      for (const body of prior)
        expect(await single(s.t, 'prefecture', body)).toMatchObject({ ok: true });
    }
    // 個人番号の変更 of P1 (番号法第7条第2項): the batch carries the new number.
    const renumbered = await sides.a.t.database.db.transaction((tx) =>
      sides.a.t.services.numbering.renumber(tx, p1.code, CHIYODA, 'leaked'),
    );
    await mirror(sides.a.t, sides.b.t);
    const p1New = { ...rec.p1, myNumber: renumbered.myNumber, address: address(CHIYODA, 40) };
    const n1Moved = { ...rec.n1, address: address(CHIYODA, 41) };
    const p2Coded = { ...rec.p2, residentCode: r2.code };
    const n2InChuo = { ...rec.n2, address: address(CHUO, 42) };
    const n1Coded = { ...n1Moved, residentCode: r1.code };

    const lines: Body[] = [
      /* 1 */ note(CHIYODA, 4, 'birth', rec.n1),
      /* 2 */ note(CHIYODA, 5, 'officialEntry', rec.n2),
      /* 3 */ note(CHIYODA, 6, 'moveWithin', p1New),
      /* 4 */ { ...prior[1] }, // a replay of a stored notification
      /* 5 */ note(CHIYODA, 4, 'birth', rec.n1), // a replay of line 1
      /* 6 */ note(CHUO, 2, 'birth', { ...rec.n3, myNumber: n4.myNumber }), // refused …
      /* 7 */ note(CHUO, 3, 'moveWithin', { ...rec.q1, address: address(CHUO, 43) }), // … its sequence
      /* 8 */ note(CHIYODA, 7, 'moveWithin', n1Moved), // a person born in this batch
      /* 9 */ note(CHIYODA, 8, 'residentCodeChange', p2Coded, { previousResidentCode: p2.code }),
      /* 10 */ note(CHIYODA, 9, 'moveWithin', { ...p2Coded, address: address(CHIYODA, 44) }),
      /* 11 */ note(CHIYODA, 10, 'moveWithin', { ...rec.p2, address: address(CHIYODA, 45) }),
      /* 12 */ note(CHIYODA, 10, 'moveOut', rec.n2, {
        plannedMoveOutDate: '2026-04-10',
        destination: { municipalityCode: CHUO },
      }),
      /* 13 */ note(CHUO, 2, 'moveIn', n2InChuo),
      /* 14 */ note(CHUO, 3, 'officialCorrection', { ...rec.n3, name: '田中\u3000一郎' }), // … its person
      /* 15 */ note(CHIYODA, 5, 'officialEntry', { ...rec.n2, name: '田中\u3000二郎' }),
      /* 16 */ note(CHIYODA, 11, 'death', rec.p3),
      /* 17 */ note(CHIYODA, 12, 'birth', rec.n4),
      /* 18 */ note(CHUO, 3, 'moveWithin', { ...rec.q1, address: address(CHUO, 46) }),
      /* 19 */ note(CHIYODA, 13, 'nameChange', {
        ...p1New,
        name: '鈴木\u3000花子',
        nameKana: 'スズキ\u3000ハナコ',
      }),
      /* 20 */ note(CHIYODA, 14, 'moveWithin', { ...rec.p3, address: address(CHIYODA, 47) }),
      /* 21 */ note(CHIYODA, 14, 'officialEntry', n1Moved),
      /* 22 */ note(CHIYODA, 14, 'birth', record(z, 8, CHIYODA)),
      /* 23 */ note(CHIYODA, 14, 'moveWithin', { ...rec.n4, address: address(CHIYODA, 48) }),
      /* 24 */ note(CHIYODA, 15, 'residentCodeChange', n1Coded, { previousResidentCode: n1.code }),
      /* 25 */ note(CHIYODA, 16, 'moveWithin', { ...n1Coded, address: address(CHIYODA, 49) }),
    ];

    // One by one through the single route.
    const outcomes: Outcome[] = [];
    for (const body of lines) outcomes.push(await single(sides.b.t, 'prefecture', body));
    expect(outcomes.flatMap((o, i) => (o.ok ? [] : [`${i + 1} ${o.code}`]))).toEqual([
      '6 registry.my-number-not-issued',
      '7 registry.sequence-gap',
      '11 registry.resident-code-retired',
      '14 registry.record-not-found',
      '15 registry.sequence-conflict',
      '20 registry.record-removed',
      '21 registry.record-exists',
      '22 registry.resident-code-not-issued',
    ]);

    /** `bodies` as one batch from the prefecture, to the side that takes batches. */
    const postBatch = (bodies: readonly Body[]) =>
      sides.a.t.app.inject({
        method: 'POST',
        url: '/v1/registry/notifications:batch',
        headers: { ...sides.a.t.auth('prefecture'), 'content-type': 'application/x-ndjson' },
        payload: ndjson(bodies),
      });

    // The same lines as one batch: the same refusals, in line order; nothing stored.
    const before = await contents(sides.a.t);
    const refused = await postBatch(lines);
    expect(refused.statusCode, refused.body).toBe(422);
    expect(refused.json()).toMatchObject({
      code: 'registry.batch-rejected',
      failedLines: 8,
      errors: errorsOf(outcomes),
    });
    expect(await contents(sides.a.t)).toEqual(before);

    // The accepted lines as one batch: the same results and, row for row, the same database.
    const accepted = lines.filter((_, i) => outcomes[i]?.ok);
    const res = await postBatch(accepted);
    expect(res.statusCode, res.body).toBe(200);
    const results = res.json<{ results: unknown[] }>().results;
    expect(results).toEqual(
      outcomes
        .flatMap((o) =>
          o.ok ? [{ residentCode: o.residentCode, version: o.version, replay: o.replay }] : [],
        )
        .map((r, i) => ({ line: i + 1, ...r })),
    );
    const got = await contents(sides.a.t);
    const want = await contents(sides.b.t);
    expect(got.versions.length).toBe(4 + 15);
    expect(got).toEqual(want);
    expect(await verifyAuditChain(sides.a.t.database.db)).toMatchObject({ ok: true });
  });
});

// ---------------------------------------------------------------------------------------------
// Random batches: the set-based path against the per-line path
// ---------------------------------------------------------------------------------------------

/** A small deterministic PRNG (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

interface ModelPerson {
  code: string;
  myNumber: string;
  state: RecordState;
  retired: string[];
}

const typed = (
  municipalityCode: string,
  sequence: number,
  changeReason: ChangeReason,
  rec: IdentityRecordFields,
  extra: Pick<
    RegistryNotification,
    'plannedMoveOutDate' | 'destination' | 'previousResidentCode'
  > = {},
): RegistryNotification => ({
  municipalityCode,
  sequence,
  changeReason,
  changeDate: '2026-03-30',
  record: { ...rec },
  ...extra,
});

/**
 * Writes batches of notifications for some municipalities: mostly ones the rules accept (a
 * model of the records, decided with decideChange), mixed with replays, conflicts, gaps,
 * retired codes, wrong My Numbers, unknown persons, bad fields, bad JSON, blank lines and
 * resident-code changes. The model only steers the mix; what counts is that both paths agree.
 */
class Scenario {
  private readonly next = new Map<string, number>();
  private readonly persons: ModelPerson[] = [];
  private readonly accepted: RegistryNotification[] = [];
  private serial = 0;

  constructor(
    private readonly rnd: () => number,
    private readonly municipalities: readonly string[],
  ) {}

  private pick<T>(xs: readonly T[]): T {
    const x = xs[Math.floor(this.rnd() * xs.length)];
    if (x === undefined) throw new Error('empty choice');
    return x;
  }

  private seq(m: string): number {
    return this.next.get(m) ?? 1;
  }

  /** `count` lines (blank ones included), drawing new residents from `fresh`. */
  lines(
    count: number,
    fresh: Map<string, Drawn[]>,
    spare: Map<string, Drawn[]>,
  ): (Body | string)[] {
    const out: (Body | string)[] = [];
    while (out.length < count) {
      const line = this.line(fresh, spare);
      if (line !== null) out.push(line);
    }
    return out;
  }

  private line(fresh: Map<string, Drawn[]>, spare: Map<string, Drawn[]>): Body | string | null {
    const r = this.rnd();
    const m = this.pick(this.municipalities);
    const live = this.persons.filter((p) => p.state.status !== 'removed');
    const retired = this.persons.filter((p) => p.retired.length > 0);
    if (r < 0.3 || live.length === 0) return this.newPerson(m, fresh);
    if (r < 0.72) return this.change(this.pick(live));
    if (r < 0.76 && this.accepted.length > 0) return { ...this.pick(this.accepted) }; // a replay
    if (r < 0.79 && this.accepted.length > 0) {
      return { ...this.pick(this.accepted), changeDate: '2026-03-01' }; // a conflict
    }
    const p = this.pick(live);
    const pm = p.state.municipalityCode;
    if (r < 0.81) {
      const rec = { ...p.state.record, address: address(pm, this.serial++) };
      return typed(pm, this.seq(pm) + 2, 'moveWithin', rec); // a gap
    }
    if (r < 0.85) {
      const code = spare.get(pm)?.pop();
      return code ? this.apply(p, this.codeChange(p, code.code)) : null;
    }
    if (r < 0.87 && retired.length > 0) {
      const q = this.pick(retired);
      const qm = q.state.municipalityCode;
      const rec = { ...q.state.record, residentCode: q.retired[0] ?? q.code };
      return typed(qm, this.seq(qm), 'moveWithin', { ...rec, address: address(qm, this.serial++) });
    }
    if (r < 0.9) {
      const d = fresh.get(m)?.pop();
      if (!d) return null;
      const rec = { ...record(d, this.serial++, m), myNumber: p.myNumber };
      return typed(m, this.seq(m), 'birth', rec); // a My Number not issued for the code
    }
    if (r < 0.92) {
      const rec = { ...p.state.record, residentCode: '12345678903' };
      return typed(pm, this.seq(pm), 'officialCorrection', rec); // nobody's code
    }
    if (r < 0.94) return { ...typed(m, this.seq(m), 'birth', p.state.record), sex: 'x' };
    if (r < 0.95) return '{"municipalityCode": "131016", 山田';
    if (r < 0.96) return '';
    return this.apply(p, typed(pm, this.seq(pm), 'death', p.state.record));
  }

  private newPerson(m: string, fresh: Map<string, Drawn[]>): Body | null {
    const d = fresh.get(m)?.pop();
    if (!d) return null;
    const rec = record(d, this.serial++, m);
    const n = typed(m, this.seq(m), this.pick(['birth', 'officialEntry', 'moveIn'] as const), rec);
    this.take(n);
    this.persons.push({
      code: d.code,
      myNumber: d.myNumber,
      state: { status: 'current', municipalityCode: m, record: rec },
      retired: [],
    });
    return { ...n };
  }

  /** A change to `p`, accepted or not as the rules decide on the model. */
  private change(p: ModelPerson): Body {
    const here = p.state.municipalityCode;
    const others = this.municipalities.filter((x) => x !== here);
    const reason = this.pick([
      'moveWithin',
      'moveWithin',
      'nameChange',
      'officialCorrection',
      'moveOut',
      'moveIn',
      'emigration',
      'officialRemoval',
      'officialEntry',
    ] as const);
    const rec = { ...p.state.record };
    let m = here;
    let extra: Pick<RegistryNotification, 'plannedMoveOutDate' | 'destination'> = {};
    if (reason === 'moveWithin') {
      m = this.rnd() < 0.3 && others.length > 0 ? this.pick(others) : here;
      rec.address = address(m, this.serial++);
    } else if (reason === 'nameChange') {
      const [family, familyKana] = this.pick(FAMILY);
      const [given, givenKana] = this.pick(GIVEN);
      rec.name = `${family}\u3000${given}`;
      rec.nameKana = `${familyKana}\u3000${givenKana}`;
    } else if (reason === 'officialCorrection') {
      rec.address = address(here, this.serial++);
    } else if (reason === 'moveOut') {
      const to = others.length > 0 ? this.pick(others) : here;
      extra = { plannedMoveOutDate: '2026-04-15', destination: { municipalityCode: to } };
    } else if (reason === 'emigration') {
      extra = { plannedMoveOutDate: '2026-04-15', destination: { abroad: true } };
    } else if (reason === 'moveIn' || reason === 'officialEntry') {
      m =
        p.state.status === 'movingOut' && this.rnd() < 0.8
          ? p.state.destination.municipalityCode
          : this.pick(this.municipalities);
      rec.address = address(m, this.serial++);
    }
    return this.apply(p, typed(m, this.seq(m), reason, rec, extra));
  }

  private codeChange(p: ModelPerson, code: string): RegistryNotification {
    const m = p.state.municipalityCode;
    const rec = { ...p.state.record, residentCode: code };
    return typed(m, this.seq(m), 'residentCodeChange', rec, { previousResidentCode: p.code });
  }

  /** Follows `n` in the model when the rules accept it there; returns it as a body. */
  private apply(p: ModelPerson, n: RegistryNotification): Body {
    const same =
      p.state.municipalityCode !== n.municipalityCode &&
      YOKOHAMA_WARDS.has(p.state.municipalityCode) &&
      YOKOHAMA_WARDS.has(n.municipalityCode);
    const decision = decideChange(p.state, n, { sameDesignatedCity: same });
    if (n.sequence === this.seq(n.municipalityCode) && decision.ok) {
      this.take(n);
      p.state = decision.next;
      if (n.changeReason === 'residentCodeChange') {
        p.retired.push(p.code);
        p.code = n.record.residentCode;
      }
    }
    return { ...n };
  }

  private take(n: RegistryNotification): void {
    this.next.set(n.municipalityCode, n.sequence + 1);
    this.accepted.push(n);
  }
}

describe.each([
  { actor: 'prefecture', municipalities: [CHIYODA, CHUO], seed: 6 },
  { actor: 'prefecture2', municipalities: [TSURUMI, NAKA, YOKOSUKA], seed: 14 },
])(
  'set-based and per-line batch paths on random batches ($actor)',
  ({ actor, municipalities, seed }) => {
    // a takes the set-based path; b the per-line one.
    const sides = twoSides();

    it('agree on every refusal and store the same rows', { timeout: 300_000 }, async () => {
      const scenario = new Scenario(random(seed), municipalities);
      let stored = 0;
      let codeChanges = 0;
      for (let round = 0; round < 4; round++) {
        const fresh = new Map<string, Drawn[]>();
        const spare = new Map<string, Drawn[]>();
        for (const m of municipalities) {
          fresh.set(m, await draw(sides.a.t, m, 40));
          spare.set(m, await draw(sides.a.t, m, 4, false));
        }
        await mirror(sides.a.t, sides.b.t);
        const lines = scenario.lines(120, fresh, spare);
        const text = ndjson(lines);

        // As sent: both paths refuse the same lines (or both accept the batch).
        const before = await contents(sides.a.t);
        const setBased = await batch(sides.a, actor, text, true);
        const perLine = await batch(sides.b, actor, text, false);
        expect(setBased).toEqual(perLine);
        if (!setBased.ok) expect(await contents(sides.a.t)).toEqual(before);

        // Without the refused lines: both commit, with the same results and the same rows.
        const refused = new Set(setBased.ok ? [] : (setBased.errors ?? []).map((e) => e.line));
        const kept = text.split('\n').filter((l, i) => l.trim() !== '' && !refused.has(i + 1));
        const a2 = await batch(sides.a, actor, kept.join('\n'), true);
        const b2 = await batch(sides.b, actor, kept.join('\n'), false);
        expect(a2).toEqual(b2);
        expect(a2.ok, JSON.stringify(a2).slice(0, 2000)).toBe(true);
        if (a2.ok) stored += a2.accepted.accepted;
        codeChanges += kept.filter((l) => l.includes('"residentCodeChange"')).length;
        expect(await contents(sides.a.t)).toEqual(await contents(sides.b.t));
      }
      // The batches were what they claim: many stored changes, several resident-code changes.
      expect(stored).toBeGreaterThan(150);
      expect(codeChanges).toBeGreaterThan(2);
      expect(await verifyAuditChain(sides.a.t.database.db)).toMatchObject({ ok: true });
    });
  },
);
