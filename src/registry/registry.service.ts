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
import type { AuditActor, AuditEntryInput, AuditLog } from '../platform/audit.ts';
import type { Clock } from '../platform/clock.ts';
import type { Queryable, Tx } from '../platform/db.ts';
import { AppError, type FieldError } from '../platform/errors.ts';
import { appendEvents, type NewOutboxEvent } from '../platform/outbox.ts';
import type { NumberingService } from '../numbering/numbering.service.ts';
import type { ResidentCodeInfo, ResidentCodePool } from './resident-codes.ts';
import {
  type Accepted,
  type BasicItem,
  type DecisionCode,
  decideChange,
  japanDateOf,
  parseNotification,
  type RecordState,
  type Rejected,
  type RegistryNotification,
} from './registry.rules.ts';
import {
  type NotificationWrite,
  type PersonWrite,
  type RegistryStore,
  type SequenceClaim,
  type StoredVersion,
  stateOf,
  type NewVersion,
} from './registry.store.ts';

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

// ---------------------------------------------------------------------------------------------
// Deciding one notification
// ---------------------------------------------------------------------------------------------

/**
 * What deciding a notification needs to know. Each method is one read of the per-line path
 * (RegistryStore, ResidentCodePool, NumberingService) and refuses with the same AppError: for
 * one notification it reads the database ({@link RegistryService.submit}); for a batch it
 * answers from what was read up front plus the batch's own earlier lines (registry.bulk.ts).
 */
export interface IntakeView {
  /** Refuses a code that is not a municipality or ward keeping a register. */
  assertKeepsRegister(code: string, pointer: string): Promise<void>;
  /** The notifying municipality's identity stream: replay, conflict, gap or new. */
  claimSequence(municipalityCode: string, sequence: number, body: unknown): Promise<SequenceClaim>;
  /** The person whose record carries (or carried) this resident code. */
  personByCode(residentCode: string): Promise<string | null>;
  lockPerson(personId: string): Promise<void>;
  latest(personId: string): Promise<StoredVersion | null>;
  /** The active My Number held by this resident code. */
  activeFor(residentCode: string): Promise<string | null>;
  /** True when both codes are wards (区) of the same 指定都市. */
  sameDesignatedCity(a: string, b: string): Promise<boolean>;
  residentCodeInfo(code: string): Promise<ResidentCodeInfo | null>;
  /** True if `myNumber` was issued for (and is still held by) this resident code. */
  isIssuedFor(myNumber: string, residentCode: string): Promise<boolean>;
}

/** A notification accepted by the rules, not yet stored. */
export interface DecidedChange {
  n: RegistryNotification;
  /** Hash of the body, kept to recognise a replay. */
  hash: Buffer;
  /** The person the change applies to; null for a new person. */
  personId: string | null;
  /** The person's latest stored version before this change. */
  latest: StoredVersion | null;
  /** What the rules saw (the latest version, with a renumbered My Number if any). */
  state: RecordState | null;
  decision: Accepted;
}

export type Intake =
  { kind: 'replay'; result: SubmitResult } | { kind: 'change'; change: DecidedChange };

const invalidNotification = (errors: FieldError[]): AppError =>
  new AppError(
    'badRequest',
    'registry.invalid-notification',
    'the notification has invalid fields',
    {
      errors: prefixed(errors),
    },
  );

const retiredCode = (): AppError =>
  new AppError(
    'conflict',
    'registry.resident-code-retired',
    'this resident code was replaced by a resident-code change; use the current code',
    { errors: [{ pointer: '/body/record/residentCode', message: 'retired code' }] },
  );

const refusal = (decision: Rejected): AppError =>
  new AppError(DECISION_STATUS[decision.code] ?? 'conflict', decision.code, decision.detail, {
    ...(decision.pointer
      ? { errors: [{ pointer: `/body${decision.pointer}`, message: decision.detail }] }
      : {}),
  });

/**
 * Decides one identity-record notification against `view`, in the order every check has
 * always run: fields, register-keeping municipalities, sequence (replays end here), the
 * person (locked) and their latest version, renumbering, the rules, and for a new record (or
 * a resident-code change) the code and My Number handed out for it. Throws the AppError of
 * the first refusal; writes nothing.
 */
export async function decideIntake(
  view: IntakeView,
  body: unknown,
  today: string,
): Promise<Intake> {
  const parsed = parseNotification(body, today);
  if (!parsed.ok) throw invalidNotification(parsed.errors);
  const n = parsed.notification;
  await view.assertKeepsRegister(n.municipalityCode, '/body/municipalityCode');
  if (n.destination && 'municipalityCode' in n.destination) {
    await view.assertKeepsRegister(
      n.destination.municipalityCode,
      '/body/destination/municipalityCode',
    );
  }

  const claim = await view.claimSequence(n.municipalityCode, n.sequence, body);
  if (claim.kind === 'replay') {
    return {
      kind: 'replay',
      result: { residentCode: claim.residentCode, version: claim.version, replay: true },
    };
  }

  const lookupCode =
    n.changeReason === 'residentCodeChange' && n.previousResidentCode
      ? n.previousResidentCode
      : n.record.residentCode;
  const personId = await view.personByCode(lookupCode);
  let latest: StoredVersion | null = null;
  if (personId) {
    await view.lockPerson(personId);
    latest = await view.latest(personId);
    if (latest && latest.record.residentCode !== lookupCode) throw retiredCode();
  }

  let state = latest ? stateOf(latest) : null;
  // After renumbering (番号法第7条第2項) the record carries the person's new My Number.
  if (state && n.record.myNumber !== state.record.myNumber) {
    const renumbered = (await view.activeFor(state.record.residentCode)) === n.record.myNumber;
    if (renumbered) state = { ...state, record: { ...state.record, myNumber: n.record.myNumber } };
  }

  const sameDesignatedCity = state
    ? await view.sameDesignatedCity(state.municipalityCode, n.municipalityCode)
    : false;
  const decision = decideChange(state, n, { sameDesignatedCity });
  if (!decision.ok) throw refusal(decision);

  // A new record, or a resident-code change, must use a freshly handed-out code.
  if (!state || n.changeReason === 'residentCodeChange') await assertFreshCode(view, n);
  return { kind: 'change', change: { n, hash: claim.hash, personId, latest, state, decision } };
}

/**
 * A new record (or a resident-code change) must use a code handed out from the notifying
 * municipality's pool that no person holds, and the My Number issued for it.
 */
async function assertFreshCode(view: IntakeView, n: RegistryNotification): Promise<void> {
  const code = n.record.residentCode;
  const pointer = '/body/record/residentCode';
  const info = await view.residentCodeInfo(code);
  if (!info || info.state !== 'issued' || info.municipalityCode !== n.municipalityCode) {
    throw new AppError(
      'conflict',
      'registry.resident-code-not-issued',
      'the resident code was not handed out to this municipality',
      { errors: [{ pointer, message: 'not handed out to this municipality' }] },
    );
  }
  if (await view.personByCode(code)) {
    throw new AppError('conflict', 'registry.resident-code-in-use', 'the resident code is in use', {
      errors: [{ pointer, message: 'already in use' }],
    });
  }
  const myNumberCode =
    n.changeReason === 'residentCodeChange' && n.previousResidentCode
      ? n.previousResidentCode
      : code;
  if (!(await view.isIssuedFor(n.record.myNumber, myNumberCode))) {
    throw new AppError(
      'conflict',
      'registry.my-number-not-issued',
      'the My Number was not issued for this resident code',
      { errors: [{ pointer: '/body/record/myNumber', message: 'not issued for this code' }] },
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Storing a decided change
// ---------------------------------------------------------------------------------------------

/** Everything that stores a decided change: its rows, its event, its audit entry. */
export interface ChangeRecords {
  /** The person row after the change (`version` is the new latest version). */
  person: PersonWrite;
  notification: NotificationWrite;
  version: NewVersion;
  event: NewOutboxEvent;
  audit: AuditEntryInput;
  result: SubmitResult;
}

/** The records of `change` stored for person `personId` at `at`. Pure. */
export function changeRecords(
  change: DecidedChange,
  personId: string,
  actor: AuditActor,
  requestId: string | undefined,
  at: Date,
): ChangeRecords {
  const { n, decision } = change;
  const next = decision.next;
  const version = (change.latest?.version ?? 0) + 1;
  const residentCode = next.record.residentCode;
  const plannedMoveOutDate =
    'plannedMoveOutDate' in next ? (next.plannedMoveOutDate ?? null) : null;
  const destination = 'destination' in next ? (next.destination ?? null) : null;
  const event: ResidentChangedEvent = {
    personId,
    residentCode,
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
  return {
    person: {
      id: personId,
      residentCode,
      municipalityCode: next.municipalityCode,
      status: next.status,
      version,
      at,
    },
    notification: {
      stream: 'identity',
      municipalityCode: n.municipalityCode,
      sequence: n.sequence,
      bodyHash: change.hash,
      changeReason: n.changeReason,
      relayedBy: n.municipalityCode.slice(0, 2),
      at,
      actorId: actor.id,
      personId,
      version,
      residentCode,
    },
    version: {
      personId,
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
      at,
    },
    event: { topic: RESIDENT_CHANGED, key: residentCode, payload: event },
    audit: {
      action: 'registry.notification.accept',
      subjectType: 'resident',
      subject: residentCode,
      requestId,
      details: {
        changeReason: n.changeReason,
        version,
        sequence: n.sequence,
        municipalityCode: n.municipalityCode,
      },
    },
    result: { residentCode, version, replay: false },
  };
}

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
    const intake = await decideIntake(this.viewOf(tx), body, japanDateOf(now));
    if (intake.kind === 'replay') return intake.result;
    const change = intake.change;
    const { n, state } = change;
    if (n.changeReason === 'residentCodeChange' && state) {
      await this.residentCodes.retire(tx, state.record.residentCode, n.record.residentCode);
      await this.numbering.followCodeChange(tx, state.record.residentCode, n.record.residentCode);
    }

    const id = change.personId ?? randomUUID();
    const records = changeRecords(change, id, actor, requestId, now);
    if (!change.personId) await this.store.insertPerson(tx, records.person);
    else await this.store.updatePerson(tx, records.person);
    const notificationId = await this.store.insertNotification(tx, records.notification);
    await this.store.insertVersion(tx, { ...records.version, notificationId });
    await appendEvents(tx, this.clock, [records.event]);
    await this.audit.append(tx, actor, records.audit);
    return records.result;
  }

  /** The per-line view: every question is one read of the database, in `db`. */
  private viewOf(db: Queryable): IntakeView {
    const { store, residentCodes, numbering } = this;
    return {
      assertKeepsRegister: (code, pointer) => store.assertKeepsRegister(db, code, pointer),
      claimSequence: (m, sequence, body) => store.claimSequence(db, 'identity', m, sequence, body),
      personByCode: (code) => store.personByCode(db, code),
      lockPerson: (personId) => store.lockPerson(db, personId),
      latest: (personId) => store.latest(db, personId),
      activeFor: (code) => numbering.activeFor(db, code),
      sameDesignatedCity: (a, b) => store.sameDesignatedCity(db, a, b),
      residentCodeInfo: (code) => residentCodes.info(db, code),
      isIssuedFor: (myNumber, code) => numbering.isIssuedFor(db, myNumber, code),
    };
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
    const latest = await this.store.latestByCurrentCode(db, residentCode);
    return latest && latest.record.residentCode === residentCode ? latest : null;
  }

  /** {@link holder} for several codes: a code without a current holder is absent. */
  async holders(
    db: Queryable,
    residentCodes: Iterable<string>,
  ): Promise<Map<string, StoredVersion>> {
    const found = await this.store.latestByCurrentCodes(db, residentCodes);
    for (const [code, v] of found) if (v.record.residentCode !== code) found.delete(code);
    return found;
  }

  /** The latest version of a person by their internal id. */
  async latestOf(db: Queryable, personId: string): Promise<StoredVersion | null> {
    return this.store.latest(db, personId);
  }
}
