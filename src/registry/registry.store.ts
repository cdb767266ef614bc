/**
 * Storage of 本人確認情報 (identity records) at the national server: persons, their versions
 * and the notifications that produced them. Plain SQL; the rules live in registry.rules.ts.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../platform/audit.ts';
import type { Queryable } from '../platform/db.ts';
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
    await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [
      `notifications:${stream}:${municipalityCode}`,
    ]);
    const hash = createHash('sha256').update(canonicalJson(body)).digest();
    const prior = await this.notification(tx, stream, municipalityCode, sequence);
    if (prior) {
      if (prior.bodyHash.equals(hash)) {
        return { kind: 'replay', residentCode: prior.residentCode, version: prior.version };
      }
      throw new AppError(
        'conflict',
        'registry.sequence-conflict',
        'this sequence number was already used for a different notification',
      );
    }
    const expected = (await this.lastSequence(tx, stream, municipalityCode)) + 1;
    if (sequence !== expected) {
      throw new AppError(
        'conflict',
        'registry.sequence-gap',
        `notifications must arrive in sequence: expected ${expected}`,
        { extensions: { expectedSequence: expected } },
      );
    }
    return { kind: 'new', hash };
  }

  /**
   * Refuses a code that is not a municipality or ward keeping a register (prefectures and
   * designated cities as a whole do not).
   */
  async assertKeepsRegister(
    db: Queryable,
    code: string,
    pointer: string,
    detail = 'not a municipality or ward that keeps a resident register',
  ): Promise<void> {
    const kind = await this.localGovernmentKind(db, code);
    if (!kind || !KEEPS_REGISTER.has(kind)) {
      throw new AppError('badRequest', 'registry.unknown-municipality', detail, {
        errors: [{ pointer, message: 'unknown or not register-keeping' }],
      });
    }
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

  async updatePerson(
    tx: Queryable,
    p: {
      id: string;
      residentCode: string;
      municipalityCode: string;
      status: string;
      version: number;
      at: Date;
    },
  ): Promise<void> {
    await tx.query(
      `UPDATE persons SET resident_code = $2, municipality_code = $3, status = $4,
                          latest_version = $5, updated_at = $6
        WHERE id = $1`,
      [p.id, p.residentCode, p.municipalityCode, p.status, p.version, p.at],
    );
  }

  async insertNotification(
    tx: Queryable,
    n: {
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
    },
  ): Promise<string> {
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

  async insertVersion(
    tx: Queryable,
    v: Omit<StoredVersion, 'recordedAt'> & { notificationId: string; at: Date },
  ): Promise<void> {
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
}
