/**
 * Intake of 附票本人確認情報 change notifications at the national server (住基法第30条の41〜第30条の42;
 * 業務方法書第4条第3号: 機構保存附票本人確認情報), and reads of the stored records.
 *
 * Same flow as identity records (registry.service.ts), on the `supplement` stream of
 * `registry_notifications`: validated (supplement.rules.ts), ordered and de-duplicated by the
 * notifying municipality's `sequence`, linked to a known person by resident code, decided
 * against the 附票 that municipality keeps, and stored as a new version — with an audit entry
 * and a `supplement.changed` outbox event in the same transaction. A supplement record whose
 * basic data disagrees with the person's live identity record raises an error notice
 * (誤りに関する通報, error-notices.ts).
 */
import { type AuditActor, type AuditLog } from '../platform/audit.ts';
import type { Clock } from '../platform/clock.ts';
import type { Queryable, Tx } from '../platform/db.ts';
import { AppError } from '../platform/errors.ts';
import { appendEvents } from '../platform/outbox.ts';
import type { ErrorNoticeService } from './error-notices.ts';
import { type BasicItem, type Sex, japanDateOf } from './registry.rules.ts';
import { prefixed } from './registry.service.ts';
import type { RegistryStore } from './registry.store.ts';
import {
  type SupplementChangeReason,
  type SupplementDecisionCode,
  type SupplementRecordFields,
  type SupplementState,
  type SupplementStatus,
  decideSupplementChange,
  isAbroad,
  parseSupplementNotification,
} from './supplement.rules.ts';

export const SUPPLEMENT_CHANGED = 'supplement.changed';

/** Payload of the `supplement.changed` outbox event: what changed, never the values. */
export interface SupplementChangedEvent {
  personId: string;
  residentCode: string;
  /** Set when this change replaced the resident code on the 附票 (after 住民票コードの変更). */
  previousResidentCode: string | null;
  version: number;
  /** The municipality keeping the 附票 (本籍地). */
  municipalityCode: string;
  changeReason: SupplementChangeReason;
  changeDate: string;
  /** Basic-4 items whose value changed (`address` includes moving abroad or back). */
  changedItems: BasicItem[];
  /** Whether the person is now recorded as a 国外転出者. */
  abroad: boolean;
  status: SupplementStatus;
}

export interface StoredSupplementVersion {
  personId: string;
  version: number;
  municipalityCode: string;
  record: SupplementRecordFields;
  status: SupplementStatus;
  changeReason: SupplementChangeReason;
  changeDate: string;
  changedItems: BasicItem[];
  previousResidentCode: string | null;
  recordedAt: Date;
}

interface VersionRow {
  [key: string]: unknown;
  person_id: string;
  version: number;
  municipality_code: string;
  resident_code: string;
  name: string;
  name_kana: string;
  birth_date: string;
  sex: Sex;
  address: string | null;
  abroad: boolean;
  overseas_country: string | null;
  overseas_address: string | null;
  status: SupplementStatus;
  change_reason: SupplementChangeReason;
  change_date: string;
  changed_items: BasicItem[];
  previous_resident_code: string | null;
  recorded_at: Date;
}

function toVersion(r: VersionRow): StoredSupplementVersion {
  const record: SupplementRecordFields = {
    residentCode: r.resident_code,
    name: r.name,
    nameKana: r.name_kana,
    birthDate: r.birth_date,
    sex: r.sex,
  };
  if (r.abroad && r.overseas_country !== null) {
    record.overseasAddress =
      r.overseas_address === null
        ? { country: r.overseas_country }
        : { country: r.overseas_country, address: r.overseas_address };
  } else if (r.address !== null) {
    record.address = r.address;
  }
  return {
    personId: r.person_id,
    version: r.version,
    municipalityCode: r.municipality_code,
    record,
    status: r.status,
    changeReason: r.change_reason,
    changeDate: r.change_date,
    changedItems: r.changed_items,
    previousResidentCode: r.previous_resident_code,
    recordedAt: r.recorded_at,
  };
}

/** Storage of supplement-record versions (plain SQL). */
export class SupplementStore {
  /** The latest version of the 附票 `municipalityCode` keeps for the person, if any. */
  async latestAt(
    db: Queryable,
    personId: string,
    municipalityCode: string,
  ): Promise<StoredSupplementVersion | null> {
    const r = await db.query<VersionRow>(
      `SELECT * FROM supplement_record_versions WHERE person_id = $1 AND municipality_code = $2
        ORDER BY version DESC LIMIT 1`,
      [personId, municipalityCode],
    );
    return r.rows[0] ? toVersion(r.rows[0]) : null;
  }

  async nextVersion(db: Queryable, personId: string): Promise<number> {
    const r = await db.query<{ v: number }>(
      'SELECT coalesce(max(version), 0) + 1 AS v FROM supplement_record_versions WHERE person_id = $1',
      [personId],
    );
    return Number(r.rows[0]?.v ?? 1);
  }

  async history(db: Queryable, personId: string): Promise<StoredSupplementVersion[]> {
    const r = await db.query<VersionRow>(
      'SELECT * FROM supplement_record_versions WHERE person_id = $1 ORDER BY version',
      [personId],
    );
    return r.rows.map(toVersion);
  }

  async insertVersion(
    tx: Queryable,
    v: Omit<StoredSupplementVersion, 'recordedAt'> & { notificationId: string; at: Date },
  ): Promise<void> {
    const o = v.record.overseasAddress;
    await tx.query(
      `INSERT INTO supplement_record_versions (person_id, version, municipality_code,
          resident_code, name, name_kana, birth_date, sex, address, abroad, overseas_country,
          overseas_address, status, change_reason, change_date, changed_items,
          previous_resident_code, notification_id, recorded_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
               $19)`,
      [
        v.personId,
        v.version,
        v.municipalityCode,
        v.record.residentCode,
        v.record.name,
        v.record.nameKana,
        v.record.birthDate,
        v.record.sex,
        o ? null : (v.record.address ?? null),
        o !== undefined,
        o?.country ?? null,
        o?.address ?? null,
        v.status,
        v.changeReason,
        v.changeDate,
        v.changedItems,
        v.previousResidentCode,
        v.notificationId,
        v.at,
      ],
    );
  }
}

/** Latest version of each municipality's 附票 for the person. */
function latestByMunicipality(
  versions: readonly StoredSupplementVersion[],
): Map<string, StoredSupplementVersion> {
  const latest = new Map<string, StoredSupplementVersion>();
  for (const v of versions) {
    const seen = latest.get(v.municipalityCode);
    if (!seen || seen.version < v.version) latest.set(v.municipalityCode, v);
  }
  return latest;
}

/**
 * Who holds the person's 附票: every municipality whose latest version is current (two while a
 * 転籍 is in flight), or — when none is — the one that removed it last.
 */
export function holders(versions: readonly StoredSupplementVersion[]): {
  /** The version a municipality of `holders` reads (its own latest). */
  byMunicipality: Map<string, StoredSupplementVersion>;
  /** The version an operator reads: the newest current one, else the newest. */
  effective: StoredSupplementVersion | undefined;
} {
  const latest = [...latestByMunicipality(versions).values()];
  const live = latest.filter((v) => v.status === 'current');
  const pool = live.length > 0 ? live : latest;
  const newest = (vs: StoredSupplementVersion[]) =>
    vs.reduce<StoredSupplementVersion | undefined>(
      (a, v) => (a === undefined || v.version > a.version ? v : a),
      undefined,
    );
  const effective = newest(pool);
  const keepers = live.length > 0 ? live : effective ? [effective] : [];
  return { byMunicipality: new Map(keepers.map((v) => [v.municipalityCode, v])), effective };
}

export interface SupplementSubmitResult {
  residentCode: string;
  version: number;
  /** True when this was an identical replay of an accepted notification. */
  replay: boolean;
}

const DECISION_STATUS: Partial<Record<SupplementDecisionCode, 'notFound'>> = {
  'registry.supplement-not-found': 'notFound',
};

/** Register-keeping local governments (戸籍 and 附票 alike): not prefectures or whole cities. */

/** Items compared between a supplement record and the identity record (基本4情報 less 住所). */
const COMPARED_ITEMS = ['name', 'birthDate', 'sex'] as const;

export class SupplementService {
  constructor(
    private readonly clock: Clock,
    private readonly registry: RegistryStore,
    private readonly store: SupplementStore,
    private readonly errorNotices: ErrorNoticeService,
    private readonly audit: AuditLog,
  ) {}

  /**
   * Accepts one supplement-record notification. Call inside a transaction; `actor` is the
   * municipality keeping the 附票 (or its prefecture, relaying), already scoped by the edge.
   */
  async submit(
    tx: Tx,
    actor: AuditActor,
    body: unknown,
    requestId: string | undefined,
  ): Promise<SupplementSubmitResult> {
    const now = this.clock.now();
    const parsed = parseSupplementNotification(body, japanDateOf(now));
    if (!parsed.ok) {
      throw new AppError(
        'badRequest',
        'registry.invalid-notification',
        'the notification has invalid fields',
        { errors: prefixed(parsed.errors) },
      );
    }
    const n = parsed.notification;
    await this.registry.assertKeepsRegister(
      tx,
      n.municipalityCode,
      '/body/municipalityCode',
      'not a municipality or ward that keeps a 戸籍 and its 附票',
    );

    const claim = await this.registry.claimSequence(
      tx,
      'supplement',
      n.municipalityCode,
      n.sequence,
      body,
    );
    if (claim.kind === 'replay') {
      return { residentCode: claim.residentCode, version: claim.version, replay: true };
    }
    const hash = claim.hash;

    // The 附票 belongs to a person the national server knows (a 国外転出者's identity record is
    // removed, but the person remains).
    const pointer = '/body/record/residentCode';
    const personId = await this.registry.personByCode(tx, n.record.residentCode);
    if (!personId) {
      throw new AppError(
        'notFound',
        'registry.resident-not-found',
        'no person is known by this resident code',
        { errors: [{ pointer, message: 'unknown resident code' }] },
      );
    }
    await this.registry.lockPerson(tx, personId);
    const identity = await this.registry.latest(tx, personId);
    if (!identity) throw new Error('person without an identity-record version');
    if (identity.record.residentCode !== n.record.residentCode) {
      throw new AppError(
        'conflict',
        'registry.resident-code-retired',
        'this resident code was replaced by a resident-code change; use the current code',
        { errors: [{ pointer, message: 'retired code' }] },
      );
    }

    const held = await this.store.latestAt(tx, personId, n.municipalityCode);
    const state: SupplementState | null = held
      ? { status: held.status, municipalityCode: held.municipalityCode, record: held.record }
      : null;
    const decision = decideSupplementChange(state, n);
    if (!decision.ok) {
      throw new AppError(
        DECISION_STATUS[decision.code] ?? 'conflict',
        decision.code,
        decision.detail,
        { errors: [{ pointer: `/body${decision.pointer}`, message: decision.detail }] },
      );
    }

    const version = await this.store.nextVersion(tx, personId);
    const notificationId = await this.registry.insertNotification(tx, {
      stream: 'supplement',
      municipalityCode: n.municipalityCode,
      sequence: n.sequence,
      bodyHash: hash,
      changeReason: n.changeReason,
      relayedBy: n.municipalityCode.slice(0, 2),
      at: now,
      actorId: actor.id,
      personId,
      version,
      residentCode: n.record.residentCode,
    });
    const previousResidentCode = decision.previousResidentCode ?? null;
    await this.store.insertVersion(tx, {
      personId,
      version,
      municipalityCode: n.municipalityCode,
      record: decision.next.record,
      status: decision.next.status,
      changeReason: n.changeReason,
      changeDate: n.changeDate,
      changedItems: decision.changedItems,
      previousResidentCode,
      notificationId,
      at: now,
    });
    const event: SupplementChangedEvent = {
      personId,
      residentCode: n.record.residentCode,
      previousResidentCode,
      version,
      municipalityCode: n.municipalityCode,
      changeReason: n.changeReason,
      changeDate: n.changeDate,
      changedItems: decision.changedItems,
      abroad: isAbroad(decision.next.record),
      status: decision.next.status,
    };
    await appendEvents(tx, this.clock, [
      { topic: SUPPLEMENT_CHANGED, key: n.record.residentCode, payload: event },
    ]);
    await this.audit.append(tx, actor, {
      action: 'registry.supplement-notification.accept',
      subjectType: 'resident',
      subject: n.record.residentCode,
      requestId,
      details: {
        changeReason: n.changeReason,
        version,
        sequence: n.sequence,
        municipalityCode: n.municipalityCode,
      },
    });

    // 誤りに関する通報: the 附票 must agree with the live identity record on the basic data. A
    // removed identity record (国外転出者, death) is not compared: after emigration only the
    // 附票 follows a change of name.
    if (identity.status !== 'removed') {
      const differing = COMPARED_ITEMS.filter((k) => identity.record[k] !== n.record[k]);
      if (differing.length > 0) {
        await this.errorNotices.raise(tx, {
          kind: 'supplementIdentityMismatch',
          municipalityCode: n.municipalityCode,
          residentCodes: [n.record.residentCode],
          detail: `the supplement record (附票本人確認情報) notified under sequence ${n.sequence} disagrees with the current identity record (本人確認情報) in: ${differing.join(', ')}`,
          sourceKey: `supplementIdentityMismatch:${notificationId}`,
        });
      }
    }
    return { residentCode: n.record.residentCode, version, replay: false };
  }

  /** Every supplement version of the person known by `residentCode` (current or retired). */
  async read(
    db: Queryable,
    residentCode: string,
  ): Promise<{ personId: string; versions: StoredSupplementVersion[] } | null> {
    const personId = await this.registry.personByCode(db, residentCode);
    if (!personId) return null;
    const versions = await this.store.history(db, personId);
    return versions.length > 0 ? { personId, versions } : null;
  }
}
