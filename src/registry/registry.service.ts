/**
 * Intake of 本人確認情報 change notifications at the national server (住基法第30条の7;
 * 業務方法書第4条第3号), and reads of the stored records.
 *
 * A notification is validated (registry.rules.ts), ordered and de-duplicated by the notifying
 * municipality's `sequence`, checked against the resident-code pools and issued My Numbers,
 * decided against the person's latest version, and stored as a new version — with an audit
 * entry and a `resident.changed` outbox event in the same transaction.
 */
import { randomUUID } from 'node:crypto';
import type { AuditActor, AuditLog } from '../platform/audit.ts';
import type { Clock } from '../platform/clock.ts';
import type { Queryable, Tx } from '../platform/db.ts';
import { AppError, type FieldError } from '../platform/errors.ts';
import { appendEvents } from '../platform/outbox.ts';
import type { NumberingService } from '../numbering/numbering.service.ts';
import type { ResidentCodePool } from './resident-codes.ts';
import {
  type BasicItem,
  type DecisionCode,
  decideChange,
  japanDateOf,
  parseNotification,
  type RecordState,
  type RegistryNotification,
} from './registry.rules.ts';
import { type RegistryStore, type StoredVersion, stateOf } from './registry.store.ts';

export const RESIDENT_CHANGED = 'resident.changed';

/** Payload of the `resident.changed` outbox event: what changed, never the values. */
export interface ResidentChangedEvent {
  personId: string;
  residentCode: string;
  previousResidentCode: string | null;
  version: number;
  municipalityCode: string;
  changeReason: string;
  changeDate: string;
  /** Basic-4 items (name, birthDate, sex, address) whose value changed. */
  changedItems: BasicItem[];
  status: RecordState['status'];
  removal: string | null;
  plannedMoveOutDate: string | null;
  destination: { municipalityCode: string } | { abroad: true } | null;
}

export interface SubmitResult {
  residentCode: string;
  version: number;
  /** True when this was an identical replay of an accepted notification. */
  replay: boolean;
}

const DECISION_STATUS: Partial<Record<DecisionCode, 'notFound' | 'badRequest'>> = {
  'registry.record-not-found': 'notFound',
  'registry.invalid-notification': 'badRequest',
};

/** Field errors of a notification, located in the request (`/body/…`). */
export const prefixed = (errors: FieldError[]): FieldError[] =>
  errors.map((e) => ({ ...e, pointer: `/body${e.pointer}` }));

export class RegistryService {
  constructor(
    private readonly clock: Clock,
    private readonly store: RegistryStore,
    private readonly residentCodes: ResidentCodePool,
    private readonly numbering: NumberingService,
    private readonly audit: AuditLog,
  ) {}

  /**
   * Accepts one identity-record notification. Call inside a transaction; `actor` is the
   * municipality (or its prefecture, relaying) that the edge has already scoped, or the CLI
   * (synthetic data).
   */
  async submit(
    tx: Tx,
    actor: AuditActor,
    body: unknown,
    requestId: string | undefined,
  ): Promise<SubmitResult> {
    const now = this.clock.now();
    const parsed = parseNotification(body, japanDateOf(now));
    if (!parsed.ok) {
      throw new AppError(
        'badRequest',
        'registry.invalid-notification',
        'the notification has invalid fields',
        { errors: prefixed(parsed.errors) },
      );
    }
    const n = parsed.notification;
    await this.store.assertKeepsRegister(tx, n.municipalityCode, '/body/municipalityCode');
    if (n.destination && 'municipalityCode' in n.destination) {
      await this.store.assertKeepsRegister(
        tx,
        n.destination.municipalityCode,
        '/body/destination/municipalityCode',
      );
    }

    const claim = await this.store.claimSequence(
      tx,
      'identity',
      n.municipalityCode,
      n.sequence,
      body,
    );
    if (claim.kind === 'replay') {
      return { residentCode: claim.residentCode, version: claim.version, replay: true };
    }
    const hash = claim.hash;

    const lookupCode =
      n.changeReason === 'residentCodeChange' && n.previousResidentCode
        ? n.previousResidentCode
        : n.record.residentCode;
    const personId = await this.store.personByCode(tx, lookupCode);
    let latest: StoredVersion | null = null;
    if (personId) {
      await this.store.lockPerson(tx, personId);
      latest = await this.store.latest(tx, personId);
      if (latest && latest.record.residentCode !== lookupCode) {
        throw new AppError(
          'conflict',
          'registry.resident-code-retired',
          'this resident code was replaced by a resident-code change; use the current code',
          { errors: [{ pointer: '/body/record/residentCode', message: 'retired code' }] },
        );
      }
    }

    let state = latest ? stateOf(latest) : null;
    // After renumbering (番号法第7条第2項) the record carries the person's new My Number.
    if (state && n.record.myNumber !== state.record.myNumber) {
      const renumbered =
        (await this.numbering.activeFor(tx, state.record.residentCode)) === n.record.myNumber;
      if (renumbered)
        state = { ...state, record: { ...state.record, myNumber: n.record.myNumber } };
    }

    const sameDesignatedCity = state
      ? await this.store.sameDesignatedCity(tx, state.municipalityCode, n.municipalityCode)
      : false;
    const decision = decideChange(state, n, { sameDesignatedCity });
    if (!decision.ok) {
      throw new AppError(
        DECISION_STATUS[decision.code] ?? 'conflict',
        decision.code,
        decision.detail,
        {
          ...(decision.pointer
            ? { errors: [{ pointer: `/body${decision.pointer}`, message: decision.detail }] }
            : {}),
        },
      );
    }

    if (!state) await this.assertFreshCode(tx, n, n.record.residentCode);
    if (n.changeReason === 'residentCodeChange' && state) {
      await this.assertFreshCode(tx, n, n.record.residentCode);
      await this.residentCodes.retire(tx, state.record.residentCode, n.record.residentCode);
      await this.numbering.followCodeChange(tx, state.record.residentCode, n.record.residentCode);
    }

    const next = decision.next;
    const version = (latest?.version ?? 0) + 1;
    const id = personId ?? randomUUID();
    if (!personId) {
      await this.store.insertPerson(tx, {
        id,
        residentCode: next.record.residentCode,
        municipalityCode: next.municipalityCode,
        status: next.status,
        at: now,
      });
    } else {
      await this.store.updatePerson(tx, {
        id,
        residentCode: next.record.residentCode,
        municipalityCode: next.municipalityCode,
        status: next.status,
        version,
        at: now,
      });
    }
    const notificationId = await this.store.insertNotification(tx, {
      stream: 'identity',
      municipalityCode: n.municipalityCode,
      sequence: n.sequence,
      bodyHash: hash,
      changeReason: n.changeReason,
      relayedBy: n.municipalityCode.slice(0, 2),
      at: now,
      actorId: actor.id,
      personId: id,
      version,
      residentCode: next.record.residentCode,
    });
    const plannedMoveOutDate =
      'plannedMoveOutDate' in next ? (next.plannedMoveOutDate ?? null) : null;
    const destination = 'destination' in next ? (next.destination ?? null) : null;
    await this.store.insertVersion(tx, {
      personId: id,
      version,
      record: next.record,
      municipalityCode: next.municipalityCode,
      status: next.status,
      removalCause: next.status === 'removed' ? next.removalCause : null,
      changeReason: n.changeReason,
      changeDate: n.changeDate,
      plannedMoveOutDate,
      destination,
      changedItems: decision.changedItems,
      closesMoveOutAt: decision.closesMoveOutAt ?? null,
      notificationId,
      at: now,
    });
    const event: ResidentChangedEvent = {
      personId: id,
      residentCode: next.record.residentCode,
      previousResidentCode:
        n.changeReason === 'residentCodeChange' ? (n.previousResidentCode ?? null) : null,
      version,
      municipalityCode: next.municipalityCode,
      changeReason: n.changeReason,
      changeDate: n.changeDate,
      changedItems: decision.changedItems,
      status: next.status,
      removal: decision.removal ?? null,
      plannedMoveOutDate,
      destination,
    };
    await appendEvents(tx, this.clock, [
      { topic: RESIDENT_CHANGED, key: next.record.residentCode, payload: event },
    ]);
    await this.audit.append(tx, actor, {
      action: 'registry.notification.accept',
      subjectType: 'resident',
      subject: next.record.residentCode,
      requestId,
      details: {
        changeReason: n.changeReason,
        version,
        sequence: n.sequence,
        municipalityCode: n.municipalityCode,
      },
    });
    return { residentCode: next.record.residentCode, version, replay: false };
  }

  /** The current version, or every version, for a holder or an operator. */
  async read(
    db: Queryable,
    residentCode: string,
  ): Promise<{ personId: string; versions: StoredVersion[] } | null> {
    const personId = await this.store.personByCode(db, residentCode);
    if (!personId) return null;
    return { personId, versions: await this.store.history(db, personId) };
  }

  /**
   * The latest version of the person whose CURRENT resident code is `residentCode`; null
   * when no person holds that code now (unknown, or retired by a resident-code change).
   * For other contexts (JPKI issuance reads the 基本4情報 from here, never from a request).
   */
  async holder(db: Queryable, residentCode: string): Promise<StoredVersion | null> {
    const personId = await this.store.personByCode(db, residentCode);
    if (!personId) return null;
    const latest = await this.store.latest(db, personId);
    return latest && latest.record.residentCode === residentCode ? latest : null;
  }

  /** The latest version of a person by their internal id. */
  async latestOf(db: Queryable, personId: string): Promise<StoredVersion | null> {
    return this.store.latest(db, personId);
  }

  /**
   * A new record (or a resident-code change) must use a code handed out from the notifying
   * municipality's pool that no person holds, and the My Number issued for it.
   */
  private async assertFreshCode(
    db: Queryable,
    n: RegistryNotification,
    code: string,
  ): Promise<void> {
    const pointer = '/body/record/residentCode';
    const info = await this.residentCodes.info(db, code);
    if (!info || info.state !== 'issued' || info.municipalityCode !== n.municipalityCode) {
      throw new AppError(
        'conflict',
        'registry.resident-code-not-issued',
        'the resident code was not handed out to this municipality',
        { errors: [{ pointer, message: 'not handed out to this municipality' }] },
      );
    }
    if (await this.store.personByCode(db, code)) {
      throw new AppError(
        'conflict',
        'registry.resident-code-in-use',
        'the resident code is in use',
        {
          errors: [{ pointer, message: 'already in use' }],
        },
      );
    }
    const myNumberCode =
      n.changeReason === 'residentCodeChange' && n.previousResidentCode
        ? n.previousResidentCode
        : code;
    if (!(await this.numbering.isIssuedFor(db, n.record.myNumber, myNumberCode))) {
      throw new AppError(
        'conflict',
        'registry.my-number-not-issued',
        'the My Number was not issued for this resident code',
        { errors: [{ pointer: '/body/record/myNumber', message: 'not issued for this code' }] },
      );
    }
  }
}
