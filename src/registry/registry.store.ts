/**
 * Storage of 本人確認情報 (identity records) at the national server: persons, their versions
 * and the notifications that produced them. Plain SQL; the rules live in registry.rules.ts.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../platform/audit.ts';
import { advisoryLockKey, pgArray, type Queryable } from '../platform/db.ts';
import { AppError } from '../platform/errors.ts';
import type {
  BasicItem,
  Destination,
  IdentityRecordFields,
  RecordState,
  RemovalCause,
  Sex,
} from './registry.rules.ts';

export interface StoredVersion {
  personId: string;
  version: number;
  record: IdentityRecordFields;
  municipalityCode: string;
  status: RecordState['status'];
  removalCause: RemovalCause | null;
  changeReason: string;
  changeDate: string;
  plannedMoveOutDate: string | null;
  destination: Destination | null;
  changedItems: BasicItem[];
  closesMoveOutAt: string | null;
  recordedAt: Date;
}

interface VersionRow {
  [key: string]: unknown;
  person_id: string;
  version: number;
  resident_code: string;
  my_number: string;
  name: string;
  name_kana: string;
  birth_date: string;
  sex: Sex;
  address: string;
  municipality_code: string;
  status: RecordState['status'];
  removal_cause: RemovalCause | null;
  change_reason: string;
  change_date: string;
  planned_move_out_date: string | null;
  destination_municipality_code: string | null;
  destination_abroad: boolean;
  changed_items: BasicItem[];
  closes_move_out_at: string | null;
  recorded_at: Date;
}

/** Register-keeping local governments: not prefectures, not designated cities as a whole. */
export const KEEPS_REGISTER: ReadonlySet<string> = new Set([
  'city',
  'town',
  'village',
  'specialWard',
  'designatedCityWard',
]);

const toVersion = (r: VersionRow): StoredVersion => ({
  personId: r.person_id,
  version: r.version,
  record: {
    residentCode: r.resident_code,
    myNumber: r.my_number,
    name: r.name,
    nameKana: r.name_kana,
    birthDate: r.birth_date,
    sex: r.sex,
    address: r.address,
  },
  municipalityCode: r.municipality_code,
  status: r.status,
  removalCause: r.removal_cause,
  changeReason: r.change_reason,
  changeDate: r.change_date,
  plannedMoveOutDate: r.planned_move_out_date,
  destination: r.destination_abroad
    ? { abroad: true }
    : r.destination_municipality_code
      ? { municipalityCode: r.destination_municipality_code }
      : null,
  changedItems: r.changed_items,
  closesMoveOutAt: r.closes_move_out_at,
  recordedAt: r.recorded_at,
});

/** The rules' view of a stored version. */
export function stateOf(v: StoredVersion): RecordState {
  if (v.status === 'current') {
    return { status: 'current', municipalityCode: v.municipalityCode, record: v.record };
  }
  if (v.status === 'movingOut') {
    const destination = v.destination && 'municipalityCode' in v.destination ? v.destination : null;
    if (!destination || !v.plannedMoveOutDate) {
      throw new Error('stored move-out version lacks its destination or planned date');
    }
    return {
      status: 'movingOut',
      municipalityCode: v.municipalityCode,
      record: v.record,
      plannedMoveOutDate: v.plannedMoveOutDate,
      destination,
    };
  }
  if (!v.removalCause) throw new Error('stored removed version lacks its cause');
  return {
    status: 'removed',
    municipalityCode: v.municipalityCode,
    record: v.record,
    removalCause: v.removalCause,
    ...(v.plannedMoveOutDate ? { plannedMoveOutDate: v.plannedMoveOutDate } : {}),
    ...(v.destination ? { destination: v.destination } : {}),
  };
}

export interface NotificationRow {
  id: string;
  bodyHash: Buffer;
  residentCode: string;
  version: number;
}

/** What a notification's place in its municipality's sequence turned out to be. */
export type SequenceClaim =
  { kind: 'new'; hash: Buffer } | { kind: 'replay'; residentCode: string; version: number };

/** SHA-256 of the canonical JSON of a notification body: what a replay must match. */
export const bodyHash = (body: unknown): Buffer =>
  createHash('sha256').update(canonicalJson(body)).digest();

/** The advisory-lock key of a municipality's notification stream. */
export const streamLockKey = (
  stream: 'identity' | 'supplement',
  municipalityCode: string,
): string => `notifications:${stream}:${municipalityCode}`;

export const sequenceConflict = (): AppError =>
  new AppError(
    'conflict',
    'registry.sequence-conflict',
    'this sequence number was already used for a different notification',
  );

export const sequenceGap = (expected: number): AppError =>
  new AppError(
    'conflict',
    'registry.sequence-gap',
    `notifications must arrive in sequence: expected ${expected}`,
    { extensions: { expectedSequence: expected } },
  );

/**
 * What {@link RegistryStore.claimSequence} decides once it knows the prior notification at
 * this place in the sequence (if any) and the number expected next.
 */
export function sequenceClaim(
  prior: Pick<NotificationRow, 'bodyHash' | 'residentCode' | 'version'> | null,
  hash: Buffer,
  sequence: number,
  expected: number,
): SequenceClaim {
  if (prior) {
    if (prior.bodyHash.equals(hash)) {
      return { kind: 'replay', residentCode: prior.residentCode, version: prior.version };
    }
    throw sequenceConflict();
  }
  if (sequence !== expected) throw sequenceGap(expected);
  return { kind: 'new', hash };
}

export const DEFAULT_KEEPS_REGISTER_DETAIL =
  'not a municipality or ward that keeps a resident register';

export const unknownMunicipality = (
  pointer: string,
  detail = DEFAULT_KEEPS_REGISTER_DETAIL,
): AppError =>
  new AppError('badRequest', 'registry.unknown-municipality', detail, {
    errors: [{ pointer, message: 'unknown or not register-keeping' }],
  });

/** A local government as the registry's checks see it. */
export interface LocalGovernmentFacts {
  kind: string;
  parentCode: string | null;
}

/**
 * {@link RegistryStore.sameDesignatedCity} over local governments already read (`lookup`
 * answers null for an unknown code): two distinct codes, both wards (区), of one parent city.
 */
export function sameDesignatedCityOf(
  lookup: (code: string) => LocalGovernmentFacts | null,
  a: string,
  b: string,
): boolean {
  const wards = [...new Set([a, b])]
    .map(lookup)
    .filter((lg): lg is LocalGovernmentFacts => lg?.kind === 'designatedCityWard');
  const parents = new Set(wards.map((lg) => lg.parentCode).filter((p) => p !== null));
  return wards.length === 2 && parents.size === 1;
}

/** A person row as the set-based intake writes it. */
export interface PersonWrite {
  id: string;
  residentCode: string;
  municipalityCode: string;
  status: string;
  version: number;
  at: Date;
}

/** A notification row as intake writes it. */
export interface NotificationWrite {
  stream: 'identity' | 'supplement';
  municipalityCode: string;
  sequence: number;
  bodyHash: Buffer;
  changeReason: string;
  relayedBy: string;
  at: Date;
  actorId: string | null;
  personId: string;
  version: number;
  residentCode: string;
}

/** A version row as intake writes it. */
export type VersionWrite = Omit<StoredVersion, 'recordedAt'> & { notificationId: string; at: Date };

/** Distinct values in code-point order: the order locks are taken in. */
const distinct = (values: Iterable<string>): string[] => [...new Set(values)].sort();

/** A version row as intake writes it, before its notification has an id. */
export type NewVersion = Omit<VersionWrite, 'notificationId'>;

/** The one time a set of rows is written at: a batch run is stored at one instant. */
function sharedTime(rows: readonly { at: Date }[]): Date {
  const at = rows[0]?.at;
  if (!at || rows.some((r) => r.at.getTime() !== at.getTime())) {
    throw new Error('rows written together must share one time');
  }
  return at;
}

const personColumns = (rows: readonly PersonWrite[]): string[] => [
  pgArray(rows.map((p) => p.id)),
  pgArray(rows.map((p) => p.residentCode)),
  pgArray(rows.map((p) => p.municipalityCode)),
  pgArray(rows.map((p) => p.status)),
  pgArray(rows.map((p) => p.version)),
];

export class RegistryStore {
  /**
   * Per municipality and stream, notifications are applied strictly in sequence order: takes
   * the municipality's stream lock for the rest of the transaction, then returns the original
   * result for an identical replay, refuses a reused sequence with another body
   * (`registry.sequence-conflict`) and a gap (`registry.sequence-gap`, naming the expected
   * number), or lets a new notification through with its body hash.
   */
  async claimSequence(
    tx: Queryable,
    stream: 'identity' | 'supplement',
    municipalityCode: string,
    sequence: number,
    body: unknown,
  ): Promise<SequenceClaim> {
    await tx.query(`SELECT pg_advisory_xact_lock(${advisoryLockKey('$1')})`, [
      streamLockKey(stream, municipalityCode),
    ]);
    const hash = bodyHash(body);
    const prior = await this.notification(tx, stream, municipalityCode, sequence);
    const expected = prior ? 0 : (await this.lastSequence(tx, stream, municipalityCode)) + 1;
    return sequenceClaim(prior, hash, sequence, expected);
  }

  /**
   * Refuses a code that is not a municipality or ward keeping a register (prefectures and
   * designated cities as a whole do not).
   */
  async assertKeepsRegister(
    db: Queryable,
    code: string,
    pointer: string,
    detail = DEFAULT_KEEPS_REGISTER_DETAIL,
  ): Promise<void> {
    const kind = await this.localGovernmentKind(db, code);
    if (!kind || !KEEPS_REGISTER.has(kind)) throw unknownMunicipality(pointer, detail);
  }

  /** The person whose record carries (or carried) this resident code. */
  async personByCode(db: Queryable, residentCode: string): Promise<string | null> {
    const current = await db.query<{ id: string }>(
      'SELECT id FROM persons WHERE resident_code = $1',
      [residentCode],
    );
    if (current.rows[0]) return current.rows[0].id;
    const past = await db.query<{ person_id: string }>(
      'SELECT person_id FROM identity_record_versions WHERE resident_code = $1 LIMIT 1',
      [residentCode],
    );
    return past.rows[0]?.person_id ?? null;
  }

  /** Locks the person row for the rest of the transaction (one change at a time). */
  async lockPerson(tx: Queryable, personId: string): Promise<void> {
    await tx.query('SELECT 1 FROM persons WHERE id = $1 FOR UPDATE', [personId]);
  }

  async latest(db: Queryable, personId: string): Promise<StoredVersion | null> {
    const r = await db.query<VersionRow>(
      `SELECT v.* FROM identity_record_versions v JOIN persons p
           ON p.id = v.person_id AND p.latest_version = v.version
        WHERE p.id = $1`,
      [personId],
    );
    return r.rows[0] ? toVersion(r.rows[0]) : null;
  }

  /**
   * The latest version of the person who holds `residentCode` now (persons.resident_code is
   * always the latest version's code); null for a retired or unknown code. One query.
   */
  async latestByCurrentCode(db: Queryable, residentCode: string): Promise<StoredVersion | null> {
    const r = await db.query<VersionRow>(
      `SELECT v.* FROM persons p JOIN identity_record_versions v
           ON v.person_id = p.id AND v.version = p.latest_version
        WHERE p.resident_code = $1`,
      [residentCode],
    );
    return r.rows[0] ? toVersion(r.rows[0]) : null;
  }

  /** {@link latestByCurrentCode} for several codes; retired and unknown codes are absent. */
  async latestByCurrentCodes(
    db: Queryable,
    residentCodes: Iterable<string>,
  ): Promise<Map<string, StoredVersion>> {
    const list = distinct(residentCodes);
    const out = new Map<string, StoredVersion>();
    if (list.length === 0) return out;
    const r = await db.query<VersionRow & { current_code: string }>(
      `SELECT v.*, p.resident_code AS current_code FROM persons p JOIN identity_record_versions v
           ON v.person_id = p.id AND v.version = p.latest_version
        WHERE p.resident_code = ANY($1::bpchar[])`,
      [pgArray(list)],
    );
    for (const row of r.rows) out.set(row.current_code, toVersion(row));
    return out;
  }

  /** The versions at `personId:version` places (outbox consumers); absent ones are left out. */
  async versionsAt(
    db: Queryable,
    places: readonly { personId: string; version: number }[],
  ): Promise<Map<string, StoredVersion>> {
    const out = new Map<string, StoredVersion>();
    if (places.length === 0) return out;
    const r = await db.query<VersionRow>(
      `SELECT v.* FROM identity_record_versions v
        WHERE (v.person_id, v.version) IN (SELECT * FROM unnest($1::uuid[], $2::int[]))`,
      [pgArray(places.map((p) => p.personId)), pgArray(places.map((p) => p.version))],
    );
    for (const row of r.rows) out.set(`${row.person_id}:${row.version}`, toVersion(row));
    return out;
  }

  async history(db: Queryable, personId: string): Promise<StoredVersion[]> {
    const r = await db.query<VersionRow>(
      'SELECT * FROM identity_record_versions WHERE person_id = $1 ORDER BY version',
      [personId],
    );
    return r.rows.map(toVersion);
  }

  async notification(
    db: Queryable,
    stream: 'identity' | 'supplement',
    municipalityCode: string,
    sequence: number,
  ): Promise<NotificationRow | null> {
    const r = await db.query<{
      id: string;
      body_hash: Uint8Array;
      resident_code: string;
      version: number;
    }>(
      `SELECT id, body_hash, resident_code, version FROM registry_notifications
        WHERE stream = $1 AND municipality_code = $2 AND sequence = $3`,
      [stream, municipalityCode, sequence],
    );
    const row = r.rows[0];
    return row
      ? {
          id: row.id,
          bodyHash: Buffer.from(row.body_hash),
          residentCode: row.resident_code,
          version: row.version,
        }
      : null;
  }

  async lastSequence(
    db: Queryable,
    stream: 'identity' | 'supplement',
    municipalityCode: string,
  ): Promise<number> {
    const r = await db.query<{ n: string | null }>(
      'SELECT max(sequence) AS n FROM registry_notifications WHERE stream = $1 AND municipality_code = $2',
      [stream, municipalityCode],
    );
    return Number(r.rows[0]?.n ?? 0);
  }

  /** True when both codes are wards (区) of the same designated city (指定都市). */
  async sameDesignatedCity(db: Queryable, a: string, b: string): Promise<boolean> {
    const r = await db.query<{ same: boolean }>(
      `SELECT count(DISTINCT parent_code) = 1 AND count(*) = 2 AS same FROM local_governments
        WHERE code IN ($1, $2) AND kind = 'designatedCityWard'`,
      [a, b],
    );
    return r.rows[0]?.same ?? false;
  }

  /** Kind of a local government, or null when the code is unknown. */
  async localGovernmentKind(db: Queryable, code: string): Promise<string | null> {
    const r = await db.query<{ kind: string }>(
      'SELECT kind FROM local_governments WHERE code = $1',
      [code],
    );
    return r.rows[0]?.kind ?? null;
  }

  async insertPerson(
    tx: Queryable,
    p: { id: string; residentCode: string; municipalityCode: string; status: string; at: Date },
  ): Promise<void> {
    await tx.query(
      `INSERT INTO persons (id, resident_code, municipality_code, status, latest_version, updated_at)
       VALUES ($1, $2, $3, $4, 1, $5)`,
      [p.id, p.residentCode, p.municipalityCode, p.status, p.at],
    );
  }

  async updatePerson(tx: Queryable, p: PersonWrite): Promise<void> {
    await tx.query(
      `UPDATE persons SET resident_code = $2, municipality_code = $3, status = $4,
                          latest_version = $5, updated_at = $6
        WHERE id = $1`,
      [p.id, p.residentCode, p.municipalityCode, p.status, p.version, p.at],
    );
  }

  async insertNotification(tx: Queryable, n: NotificationWrite): Promise<string> {
    const r = await tx.query<{ id: string }>(
      `INSERT INTO registry_notifications (stream, municipality_code, sequence, body_hash,
          change_reason, relayed_by, relayed_at, received_at, actor_id, person_id, version,
          resident_code)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9, $10, $11) RETURNING id`,
      [
        n.stream,
        n.municipalityCode,
        n.sequence,
        n.bodyHash,
        n.changeReason,
        n.relayedBy,
        n.at,
        n.actorId,
        n.personId,
        n.version,
        n.residentCode,
      ],
    );
    const id = r.rows[0]?.id;
    if (!id) throw new Error('notification insert returned no id');
    return id;
  }

  async insertVersion(tx: Queryable, v: VersionWrite): Promise<void> {
    const dest = v.destination;
    await tx.query(
      `INSERT INTO identity_record_versions (person_id, version, resident_code, my_number, name,
          name_kana, birth_date, sex, address, municipality_code, status, removal_cause,
          change_reason, change_date, planned_move_out_date, destination_municipality_code,
          destination_abroad, changed_items, closes_move_out_at, notification_id, recorded_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
               $19, $20, $21)`,
      [
        v.personId,
        v.version,
        v.record.residentCode,
        v.record.myNumber,
        v.record.name,
        v.record.nameKana,
        v.record.birthDate,
        v.record.sex,
        v.record.address,
        v.municipalityCode,
        v.status,
        v.removalCause,
        v.changeReason,
        v.changeDate,
        v.plannedMoveOutDate,
        dest && 'municipalityCode' in dest ? dest.municipalityCode : null,
        dest !== null && 'abroad' in dest,
        v.changedItems,
        v.closesMoveOutAt,
        v.notificationId,
        v.at,
      ],
    );
  }

  // -------------------------------------------------------------------------------------------
  // Set-based twins of the reads and writes above, for batch intake (registry.bulk.ts): one
  // statement for many keys. `char(n)` columns are compared with `= ANY($1::bpchar[])`, which
  // keeps their indexes usable (a `text[]` would cast the column and scan the table).
  // -------------------------------------------------------------------------------------------

  /** The stream locks {@link claimSequence} takes, for several municipalities, in code order. */
  async lockStreams(
    tx: Queryable,
    stream: 'identity' | 'supplement',
    municipalityCodes: Iterable<string>,
  ): Promise<void> {
    const keys = distinct([...municipalityCodes].map((m) => streamLockKey(stream, m)));
    if (keys.length === 0) return;
    // Taken in the order the subquery sorts them (as seed.ts does), so two batches never
    // wait for each other's locks in a cycle.
    await tx.query(
      `SELECT pg_advisory_xact_lock(${advisoryLockKey('k')})
         FROM (SELECT unnest($1::text[]) AS k ORDER BY 1) AS ordered`,
      [pgArray(keys)],
    );
  }

  /** Kind and parent of each known local government among `codes`. */
  async localGovernments(
    db: Queryable,
    codes: Iterable<string>,
  ): Promise<Map<string, LocalGovernmentFacts>> {
    const list = distinct(codes);
    const out = new Map<string, LocalGovernmentFacts>();
    if (list.length === 0) return out;
    const r = await db.query<{ code: string; kind: string; parent_code: string | null }>(
      'SELECT code, kind, parent_code FROM local_governments WHERE code = ANY($1::bpchar[])',
      [pgArray(list)],
    );
    for (const row of r.rows) out.set(row.code, { kind: row.kind, parentCode: row.parent_code });
    return out;
  }

  /** {@link notification} for several places `municipalityCode:sequence` of one stream. */
  async notificationsAt(
    db: Queryable,
    stream: 'identity' | 'supplement',
    places: readonly { municipalityCode: string; sequence: number }[],
  ): Promise<Map<string, NotificationRow>> {
    const out = new Map<string, NotificationRow>();
    if (places.length === 0) return out;
    const r = await db.query<{
      id: string;
      municipality_code: string;
      sequence: string;
      body_hash: Uint8Array;
      resident_code: string;
      version: number;
    }>(
      `SELECT id, municipality_code, sequence, body_hash, resident_code, version
         FROM registry_notifications
        WHERE stream = $1
          AND (municipality_code, sequence) IN
              (SELECT * FROM unnest($2::bpchar[], $3::bigint[]))`,
      [
        stream,
        pgArray(places.map((p) => p.municipalityCode)),
        pgArray(places.map((p) => p.sequence)),
      ],
    );
    for (const row of r.rows) {
      out.set(`${row.municipality_code}:${Number(row.sequence)}`, {
        id: row.id,
        bodyHash: Buffer.from(row.body_hash),
        residentCode: row.resident_code,
        version: row.version,
      });
    }
    return out;
  }

  /** {@link lastSequence} of several municipalities (0 when none). */
  async lastSequences(
    db: Queryable,
    stream: 'identity' | 'supplement',
    municipalityCodes: Iterable<string>,
  ): Promise<Map<string, number>> {
    const list = distinct(municipalityCodes);
    const out = new Map<string, number>();
    if (list.length === 0) return out;
    // One max() per municipality, each answered from the end of the unique index.
    const r = await db.query<{ m: string; n: string | null }>(
      `SELECT m, (SELECT max(sequence) FROM registry_notifications
                   WHERE stream = $1 AND municipality_code = m) AS n
         FROM unnest($2::bpchar[]) AS m`,
      [stream, pgArray(list)],
    );
    for (const row of r.rows) out.set(row.m, Number(row.n ?? 0));
    return out;
  }

  /** {@link personByCode} for several codes; codes no person carries or carried are absent. */
  async personsByCodes(db: Queryable, codes: Iterable<string>): Promise<Map<string, string>> {
    const list = distinct(codes);
    const out = new Map<string, string>();
    if (list.length === 0) return out;
    const current = await db.query<{ id: string; resident_code: string }>(
      'SELECT id, resident_code FROM persons WHERE resident_code = ANY($1::bpchar[])',
      [pgArray(list)],
    );
    for (const row of current.rows) out.set(row.resident_code, row.id);
    const rest = list.filter((c) => !out.has(c));
    if (rest.length === 0) return out;
    const past = await db.query<{ person_id: string; resident_code: string }>(
      `SELECT DISTINCT ON (resident_code) resident_code, person_id
         FROM identity_record_versions WHERE resident_code = ANY($1::bpchar[])`,
      [pgArray(rest)],
    );
    for (const row of past.rows) out.set(row.resident_code, row.person_id);
    return out;
  }

  /** {@link lockPerson} for several persons, in id order. */
  async lockPersons(tx: Queryable, personIds: Iterable<string>): Promise<void> {
    const list = distinct(personIds);
    if (list.length === 0) return;
    await tx.query('SELECT 1 FROM persons WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE', [
      list,
    ]);
  }

  /** {@link latest} for several persons; persons without a version are absent. */
  async latestOfMany(
    db: Queryable,
    personIds: Iterable<string>,
  ): Promise<Map<string, StoredVersion>> {
    const list = distinct(personIds);
    const out = new Map<string, StoredVersion>();
    if (list.length === 0) return out;
    const r = await db.query<VersionRow>(
      `SELECT v.* FROM identity_record_versions v JOIN persons p
           ON p.id = v.person_id AND p.latest_version = v.version
        WHERE p.id = ANY($1::uuid[])`,
      [pgArray(list)],
    );
    for (const row of r.rows) out.set(row.person_id, toVersion(row));
    return out;
  }

  /**
   * The active My Number held by each of `codes` (NumberingService.activeFor, which also
   * answers isIssuedFor: a code holds at most one active number).
   */
  async activeMyNumbers(db: Queryable, codes: Iterable<string>): Promise<Map<string, string>> {
    const list = distinct(codes);
    const out = new Map<string, string>();
    if (list.length === 0) return out;
    const r = await db.query<{ holder_code: string; my_number: string }>(
      `SELECT holder_code, my_number FROM my_numbers
        WHERE holder_code = ANY($1::bpchar[]) AND retired_at IS NULL`,
      [pgArray(list)],
    );
    for (const row of r.rows) out.set(row.holder_code, row.my_number);
    return out;
  }

  /** {@link insertPerson} for several persons, each at its given latest version. */
  async insertPersons(tx: Queryable, rows: readonly PersonWrite[]): Promise<void> {
    if (rows.length === 0) return;
    await tx.query(
      `INSERT INTO persons (id, resident_code, municipality_code, status, latest_version, updated_at)
       SELECT id, code, m, s, v, $6
         FROM unnest($1::uuid[], $2::bpchar[], $3::bpchar[], $4::text[], $5::int[])
              AS u(id, code, m, s, v)`,
      [...personColumns(rows), sharedTime(rows)],
    );
  }

  /** {@link updatePerson} for several persons. */
  async updatePersons(tx: Queryable, rows: readonly PersonWrite[]): Promise<void> {
    if (rows.length === 0) return;
    await tx.query(
      `UPDATE persons p SET resident_code = u.code, municipality_code = u.m, status = u.s,
                            latest_version = u.v, updated_at = $6
         FROM unnest($1::uuid[], $2::bpchar[], $3::bpchar[], $4::text[], $5::int[])
              AS u(id, code, m, s, v)
        WHERE p.id = u.id`,
      [...personColumns(rows), sharedTime(rows)],
    );
  }

  /**
   * {@link insertNotification} and {@link insertVersion} for several changes, in one
   * statement: each version gets the id of its notification (found by the notification's place
   * in its sequence) without the ids travelling to the client and back. Notifications are
   * numbered in the order given.
   */
  async insertChanges(
    tx: Queryable,
    changes: readonly { notification: NotificationWrite; version: NewVersion }[],
  ): Promise<void> {
    if (changes.length === 0) return;
    const n = changes.map((c) => c.notification);
    const v = changes.map((c) => c.version);
    const at = sharedTime([...n, ...v]);
    const dest = (x: NewVersion) => x.destination;
    await tx.query(
      `WITH n AS (
         INSERT INTO registry_notifications (stream, municipality_code, sequence, body_hash,
             change_reason, relayed_by, relayed_at, received_at, actor_id, person_id, version,
             resident_code)
         SELECT s, m, seq, h, reason, rb, $9, $9, actor, pid, v, code
           FROM unnest($1::text[], $2::bpchar[], $3::bigint[], $4::bytea[], $5::text[],
                       $6::uuid[], $7::int[], $8::bpchar[], $10::uuid[], $30::bpchar[])
                WITH ORDINALITY AS u(s, m, seq, h, reason, pid, v, code, actor, rb, ord)
          ORDER BY ord
         RETURNING id, stream, municipality_code, sequence)
       INSERT INTO identity_record_versions (person_id, version, resident_code, my_number, name,
           name_kana, birth_date, sex, address, municipality_code, status, removal_cause,
           change_reason, change_date, planned_move_out_date, destination_municipality_code,
           destination_abroad, changed_items, closes_move_out_at, notification_id, recorded_at)
       SELECT x.pid, x.v, x.code, x.num, x.nm, x.kana, x.birth, x.sex, x.addr, x.vm, x.st,
              x.cause, x.reason, x.cdate, x.planned, x.dm, x.abroad, x.items::text[], x.closes,
              n.id, $9
         FROM unnest($1::text[], $2::bpchar[], $3::bigint[], $11::uuid[], $12::int[],
                     $13::bpchar[], $14::bpchar[], $15::text[], $16::text[], $17::date[],
                     $18::text[], $19::text[], $20::bpchar[], $21::text[], $22::text[],
                     $23::text[], $24::date[], $25::date[], $26::bpchar[], $27::boolean[],
                     $28::text[], $29::bpchar[])
              AS x(s, m, seq, pid, v, code, num, nm, kana, birth, sex, addr, vm, st, cause,
                   reason, cdate, planned, dm, abroad, items, closes)
         JOIN n ON n.stream = x.s AND n.municipality_code = x.m AND n.sequence = x.seq`,
      [
        pgArray(n.map((r) => r.stream)),
        pgArray(n.map((r) => r.municipalityCode)),
        pgArray(n.map((r) => r.sequence)),
        pgArray(n.map((r) => r.bodyHash)),
        pgArray(n.map((r) => r.changeReason)),
        pgArray(n.map((r) => r.personId)),
        pgArray(n.map((r) => r.version)),
        pgArray(n.map((r) => r.residentCode)),
        at,
        pgArray(n.map((r) => r.actorId)),
        pgArray(v.map((r) => r.personId)),
        pgArray(v.map((r) => r.version)),
        pgArray(v.map((r) => r.record.residentCode)),
        pgArray(v.map((r) => r.record.myNumber)),
        pgArray(v.map((r) => r.record.name)),
        pgArray(v.map((r) => r.record.nameKana)),
        pgArray(v.map((r) => r.record.birthDate)),
        pgArray(v.map((r) => r.record.sex)),
        pgArray(v.map((r) => r.record.address)),
        pgArray(v.map((r) => r.municipalityCode)),
        pgArray(v.map((r) => r.status)),
        pgArray(v.map((r) => r.removalCause)),
        pgArray(v.map((r) => r.changeReason)),
        pgArray(v.map((r) => r.changeDate)),
        pgArray(v.map((r) => r.plannedMoveOutDate)),
        pgArray(
          v.map((r) => {
            const d = dest(r);
            return d && 'municipalityCode' in d ? d.municipalityCode : null;
          }),
        ),
        pgArray(
          v.map((r) => {
            const d = dest(r);
            return d !== null && 'abroad' in d;
          }),
        ),
        // text[] literals: the items are fixed words (BASIC_ITEMS), nothing to quote.
        pgArray(v.map((r) => `{${r.changedItems.join(',')}}`)),
        pgArray(v.map((r) => r.closesMoveOutAt)),
        pgArray(n.map((r) => r.relayedBy)),
      ],
    );
  }
}
