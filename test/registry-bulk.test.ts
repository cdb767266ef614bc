/**
 * The set-based path of batch intake (src/registry/registry.bulk.ts) must store exactly what
 * the per-line path stores: the same rows, events and audit entries, line for line. Two
 * batches of new records — one taken by the set-based path, one forced through the per-line
 * path — are compared after replacing what necessarily differs (ids, codes, numbers, times).
 */
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Actor } from '../src/platform/actors.ts';
import {
  intakeBatch,
  StreamedBatch,
  DEFAULT_BATCH_LIMITS,
} from '../src/registry/registry.batch.ts';
import { createTestApp, type TestApp } from './support/app.ts';
import { newResident, type Resident } from './support/registry.ts';
import { nextNotificationSequence } from './support/jpki.ts';

const CHIYODA = '131016';

describe('set-based intake of new records', () => {
  let t: TestApp;
  let actor: Actor;

  beforeAll(async () => {
    t = await createTestApp();
    const a = await t.services.actors.byName(t.database.db, 'municipality');
    if (!a) throw new Error('no municipality actor');
    actor = a;
  });
  afterAll(async () => {
    await t.close();
  });

  const residents = async (n: number): Promise<Resident[]> => {
    const out: Resident[] = [];
    for (let i = 0; i < n; i++) out.push(await newResident(t, 'municipality'));
    return out;
  };

  const lines = async (people: Resident[]) => {
    let seq = await nextNotificationSequence(t, CHIYODA);
    return people.map((r, i) => ({
      municipalityCode: CHIYODA,
      sequence: seq++,
      changeReason: i % 2 ? 'birth' : 'officialEntry',
      changeDate: '2026-03-20',
      record: {
        residentCode: r.residentCode,
        myNumber: r.myNumber,
        name: `山田\u3000${['花子', '太郎', '陽子'][i % 3]}`,
        nameKana: `ヤマダ\u3000${['ハナコ', 'タロウ', 'ヨウコ'][i % 3]}`,
        birthDate: '2026-03-20',
        sex: i % 2 ? 'male' : 'female',
        address: `東京都千代田区千代田${i + 1}番1号`,
      },
    }));
  };

  const send = (body: unknown[], setBased: boolean) =>
    intakeBatch(
      {
        db: t.database.db,
        audit: t.services.audit,
        registry: t.services.registry,
        clock: t.clock,
        perLine: !setBased,
      },
      actor,
      new StreamedBatch('ndjson', Readable.from([body.map((b) => JSON.stringify(b)).join('\n')])),
      'req-bulk',
      DEFAULT_BATCH_LIMITS,
    );

  /** What was stored for these residents, with what must differ replaced by line numbers. */
  const stored = async (people: Resident[]) => {
    const db = t.database.db;
    const codes = people.map((p) => p.residentCode);
    const line = (code: string) => codes.indexOf(code);
    const persons = await db.query<Record<string, unknown>>(
      `SELECT resident_code, municipality_code, status, latest_version FROM persons
        WHERE resident_code = ANY($1::text[]) ORDER BY resident_code`,
      [codes],
    );
    const versions = await db.query<Record<string, unknown>>(
      `SELECT v.resident_code, v.version, v.name, v.name_kana, v.birth_date::text, v.sex,
              v.address, v.municipality_code, v.status, v.removal_cause, v.change_reason,
              v.change_date::text, v.planned_move_out_date, v.destination_municipality_code,
              v.destination_abroad, v.changed_items, v.closes_move_out_at,
              n.sequence - (SELECT min(sequence) FROM registry_notifications x
                             WHERE x.resident_code = ANY($1::text[])) AS seq_offset,
              n.change_reason AS n_reason, n.relayed_by, n.version AS n_version,
              n.actor_id IS NOT NULL AS has_actor, v.my_number = m.my_number AS number_matches
         FROM identity_record_versions v
         JOIN registry_notifications n ON n.id = v.notification_id
         JOIN my_numbers m ON m.holder_code = v.resident_code
        WHERE v.resident_code = ANY($1::text[])`,
      [codes],
    );
    const events = await db.query<{ key: string; payload: Record<string, unknown> }>(
      `SELECT key, payload FROM outbox_events WHERE key = ANY($1::text[]) ORDER BY id`,
      [codes],
    );
    const audit = await db.query<{
      subject: string;
      action: string;
      details: Record<string, unknown>;
    }>(
      `SELECT subject, action, subject_type, outcome, request_id, details FROM audit_log
        WHERE subject = ANY($1::text[]) AND action = 'registry.notification.accept' ORDER BY seq`,
      [codes],
    );
    const strip = (r: Record<string, unknown>) => {
      const { resident_code: code, ...rest } = r;
      return { line: line(String(code)), ...rest };
    };
    return {
      persons: persons.rows.map(strip).sort((a, b) => a.line - b.line),
      versions: versions.rows.map(strip).sort((a, b) => a.line - b.line),
      events: events.rows.map((e) => {
        const { personId, residentCode, ...payload } = e.payload;
        expect(typeof personId).toBe('string');
        return { line: line(e.key), same: residentCode === e.key, payload };
      }),
      audit: audit.rows.map((a) => {
        const { sequence, ...details } = a.details;
        expect(typeof sequence).toBe('number');
        return { ...a, subject: line(a.subject), details };
      }),
    };
  };

  it('stores what the per-line path stores, line for line', async () => {
    const bulkPeople = await residents(6);
    const bulk = await send(await lines(bulkPeople), true);
    const linePeople = await residents(6);
    const perLine = await send(await lines(linePeople), false);
    expect(bulk).toEqual({ ...perLine, results: bulk.results });
    expect(bulk.results?.map((r) => r.line)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(bulk.results?.map((r) => r.residentCode)).toEqual(bulkPeople.map((p) => p.residentCode));
    const a = await stored(bulkPeople);
    const b = await stored(linePeople);
    expect(a.persons).toHaveLength(6);
    expect(a.versions).toHaveLength(6);
    expect(a.events).toHaveLength(6);
    expect(a.audit).toHaveLength(6);
    expect(a).toEqual(b);
  });

  it('reports each refused line of a batch of new records, and stores nothing', async () => {
    const people = await residents(3);
    const body = await lines(people);
    // The second line's My Number belongs to the third resident.
    body[1]!.record.myNumber = people[2]!.myNumber;
    await expect(send(body, true)).rejects.toMatchObject({
      code: 'registry.batch-rejected',
      // …and the third, which depends on the second's sequence number.
      errors: [
        expect.objectContaining({ line: 2, code: 'registry.my-number-not-issued' }),
        expect.objectContaining({ line: 3, code: 'registry.sequence-gap' }),
      ],
    });
    const none = await t.database.db.query(
      'SELECT 1 FROM persons WHERE resident_code = ANY($1::text[])',
      [people.map((p) => p.residentCode)],
    );
    expect(none.rows).toHaveLength(0);
  });
});
