/**
 * The set-based path of batch intake of 本人確認情報 change notifications (住基法第30条の7):
 * a run of notifications is checked with a handful of queries and stored with one statement
 * per table — persons, notifications, versions, outbox events, audit entries — instead of
 * some twenty statements per notification.
 *
 * It decides nothing the per-line path would decide differently, because it runs the very same
 * decision ({@link decideIntake}: parsing, register-keeping municipalities, sequence, the
 * person and their latest version, renumbering, the rules of registry.rules.ts, the code and
 * My Number handed out for a new record) line by line, in line order. Only the answers to its
 * questions come from elsewhere: what the database held when the run began, read up front
 * with one query per kind of question, plus what the run's own earlier accepted lines
 * changed. A refused line changes nothing, so later lines are decided as if it were absent —
 * as under the per-line path's savepoints.
 *
 * What a run cannot answer from memory — a 住民票コードの変更 (residentCodeChange retires a code
 * and moves the My Number to its successor) — never enters a run: registry.batch.ts sends such
 * a line through {@link RegistryService.submit} between two runs.
 */
import { randomUUID } from 'node:crypto';
import type { AuditActor, AuditLog } from '../platform/audit.ts';
import type { Clock } from '../platform/clock.ts';
import { pgArray, type Tx } from '../platform/db.ts';
import { type AppError, isAppError } from '../platform/errors.ts';
import { appendEvents } from '../platform/outbox.ts';
import { japanDateOf } from './registry.rules.ts';
import { type ResidentCodeInfo, residentCodeInfos } from './resident-codes.ts';
import {
  type ChangeRecords,
  changeRecords,
  type DecidedChange,
  decideIntake,
  type IntakeView,
  type SubmitResult,
} from './registry.service.ts';
import {
  bodyHash,
  KEEPS_REGISTER,
  type LocalGovernmentFacts,
  type NotificationRow,
  type PersonWrite,
  RegistryStore,
  sameDesignatedCityOf,
  type SequenceClaim,
  sequenceClaim,
  type StoredVersion,
  unknownMunicipality,
} from './registry.store.ts';

/** One line of a batch, already read: its number and the parsed JSON body. */
export interface BulkLine {
  line: number;
  body: unknown;
}

/** A line's outcome: its result, or the refusal the per-line path would have thrown. */
export type LineOutcome = { ok: true; result: SubmitResult } | { ok: false; error: AppError };

/** A decided run: every line's outcome in line order, and what stores the accepted ones. */
export interface BulkPlan {
  outcomes: LineOutcome[];
  /** One per accepted line, in line order. */
  records: ChangeRecords[];
  /** Each changed person's row after the run, in order of first change. */
  persons: Map<string, PersonWrite>;
  /** Persons the run creates (the others exist and are updated). */
  created: Set<string>;
}

const MUNICIPALITY_CODE = /^[0-9]{6}$/;
const RESIDENT_CODE = /^[0-9]{11}$/;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** A body that asks for a 住民票コードの変更: it goes through the per-line path. */
export const isResidentCodeChange = (body: unknown): boolean =>
  isObject(body) && body['changeReason'] === 'residentCodeChange';

/** The body's `municipalityCode`, when it has the shape of one. */
export function municipalityOf(body: unknown): string | null {
  const m = isObject(body) ? body['municipalityCode'] : undefined;
  return typeof m === 'string' && MUNICIPALITY_CODE.test(m) ? m : null;
}

/**
 * The keys a line may ask about, read from the raw body: enough for every valid notification
 * (whose values these are), harmless for an invalid one (asked about, never used).
 */
function keysOf(body: unknown): {
  municipality: string | null;
  sequence: number | null;
  residentCode: string | null;
  destination: string | null;
} {
  const record = isObject(body) ? body['record'] : undefined;
  const dest = isObject(body) ? body['destination'] : undefined;
  const sequence = isObject(body) ? body['sequence'] : undefined;
  const code = isObject(record) ? record['residentCode'] : undefined;
  return {
    municipality: municipalityOf(body),
    sequence: typeof sequence === 'number' && Number.isSafeInteger(sequence) ? sequence : null,
    residentCode: typeof code === 'string' && RESIDENT_CODE.test(code) ? code : null,
    destination: municipalityOf(dest),
  };
}

/** The `previousResidentCode` of a residentCodeChange body, when it has the shape of one. */
function previousResidentCodeOf(body: unknown): string | null {
  const code = isObject(body) ? body['previousResidentCode'] : undefined;
  return typeof code === 'string' && RESIDENT_CODE.test(code) ? code : null;
}

/** Answers read up front for a set of keys; a key not read ahead is a programming error. */
class ReadAhead<V> {
  constructor(
    private readonly what: string,
    private readonly keys: ReadonlySet<string>,
    private readonly found: ReadonlyMap<string, V>,
  ) {}
  get(key: string): V | null {
    if (!this.keys.has(key)) throw new Error(`set-based intake: ${this.what} was not read ahead`);
    return this.found.get(key) ?? null;
  }
}

/** What the database held when the run began, for the keys its lines may ask about. */
interface Known {
  localGovernments: ReadAhead<LocalGovernmentFacts>;
  notifications: ReadAhead<NotificationRow>;
  lastSequence: ReadAhead<number>;
  persons: ReadAhead<string>;
  /** Persons locked (FOR UPDATE) and read: their latest version. */
  latest: ReadAhead<StoredVersion>;
  residentCodes: ReadAhead<ResidentCodeInfo>;
  activeMyNumbers: ReadAhead<string>;
}

const place = (municipalityCode: string, sequence: number): string =>
  `${municipalityCode}:${sequence}`;

/**
 * The view {@link decideIntake} sees during a run: the database as read up front, overlaid
 * with the run's accepted lines (their notifications, sequence numbers, persons, versions).
 */
class RunView implements IntakeView {
  private readonly notifications = new Map<
    string,
    Pick<NotificationRow, 'bodyHash' | 'residentCode' | 'version'>
  >();
  private readonly nextSequence = new Map<string, number>();
  private readonly newPersons = new Map<string, string>();
  private readonly latestVersions = new Map<string, StoredVersion>();

  constructor(private readonly known: Known) {}

  async assertKeepsRegister(code: string, pointer: string): Promise<void> {
    const kind = this.known.localGovernments.get(code)?.kind;
    if (!kind || !KEEPS_REGISTER.has(kind)) throw unknownMunicipality(pointer);
  }

  async claimSequence(m: string, sequence: number, body: unknown): Promise<SequenceClaim> {
    const key = place(m, sequence);
    const prior = this.notifications.get(key) ?? this.known.notifications.get(key);
    const expected = prior
      ? 0
      : (this.nextSequence.get(m) ?? (this.known.lastSequence.get(m) ?? 0) + 1);
    return sequenceClaim(prior, bodyHash(body), sequence, expected);
  }

  async personByCode(code: string): Promise<string | null> {
    return this.newPersons.get(code) ?? this.known.persons.get(code);
  }

  async lockPerson(personId: string): Promise<void> {
    // Locked up front, in id order; a person the run creates is its own.
    if (!this.latestVersions.has(personId)) this.known.latest.get(personId);
  }

  async latest(personId: string): Promise<StoredVersion | null> {
    return this.latestVersions.get(personId) ?? this.known.latest.get(personId);
  }

  async activeFor(code: string): Promise<string | null> {
    return this.known.activeMyNumbers.get(code);
  }

  async sameDesignatedCity(a: string, b: string): Promise<boolean> {
    const lgs = this.known.localGovernments;
    return sameDesignatedCityOf((code) => lgs.get(code), a, b);
  }

  async residentCodeInfo(code: string): Promise<ResidentCodeInfo | null> {
    return this.known.residentCodes.get(code);
  }

  async isIssuedFor(myNumber: string, code: string): Promise<boolean> {
    return this.known.activeMyNumbers.get(code) === myNumber;
  }

  /** What an accepted line changed, as the next line's questions must see it. */
  accept(change: DecidedChange, records: ChangeRecords): void {
    const { n } = change;
    const { person, version } = records;
    this.notifications.set(place(n.municipalityCode, n.sequence), {
      bodyHash: change.hash,
      residentCode: person.residentCode,
      version: person.version,
    });
    this.nextSequence.set(n.municipalityCode, n.sequence + 1);
    if (!change.personId) this.newPersons.set(person.residentCode, person.id);
    this.latestVersions.set(person.id, storedVersionOf(version));
  }
}

/** A version row as {@link RegistryStore.latest} would read it back. */
function storedVersionOf(v: ChangeRecords['version']): StoredVersion {
  const dest = v.destination;
  return {
    personId: v.personId,
    version: v.version,
    record: { ...v.record },
    municipalityCode: v.municipalityCode,
    status: v.status,
    removalCause: v.removalCause,
    changeReason: v.changeReason,
    changeDate: v.changeDate,
    plannedMoveOutDate: v.plannedMoveOutDate,
    destination:
      dest && 'abroad' in dest
        ? { abroad: true }
        : dest && 'municipalityCode' in dest
          ? { municipalityCode: dest.municipalityCode }
          : null,
    changedItems: [...v.changedItems],
    closesMoveOutAt: v.closesMoveOutAt,
    recordedAt: v.at,
  };
}

const keySet = (values: Iterable<string | null>): Set<string> => {
  const out = new Set<string>();
  for (const v of values) if (v !== null) out.add(v);
  return out;
};

export class BulkIntake {
  private readonly registry = new RegistryStore();

  constructor(
    private readonly clock: Clock,
    private readonly audit: AuditLog,
  ) {}

  /**
   * Takes the identity-stream locks ({@link RegistryStore.claimSequence}) of every
   * municipality a batch notifies for, once, in code order.
   */
  async lockStreams(tx: Tx, bodies: Iterable<unknown>): Promise<void> {
    const codes = keySet([...bodies].map(municipalityOf));
    await this.registry.lockStreams(tx, 'identity', codes);
  }

  /**
   * For a batch split into runs by a residentCodeChange: locks, before anything is stored, the
   * persons every line names by resident code (in id order) and the active My Numbers a code
   * change moves. The runs lock them again as they come (a no-op then); without this, a later
   * run would lock its persons while the batch already holds the outbox and audit locks the
   * earlier runs took, and a notification holding one of those persons while it waits for
   * those locks (a move-in from another municipality, a 附票 update) would deadlock with it.
   */
  async lockAheadOfRuns(tx: Tx, bodies: readonly unknown[]): Promise<void> {
    const previous = keySet(bodies.map(previousResidentCodeOf));
    const codes = keySet([...bodies.map((b) => keysOf(b).residentCode), ...previous]);
    const persons = await this.registry.personsByCodes(tx, codes);
    await this.registry.lockPersons(tx, persons.values());
    if (previous.size > 0) {
      await tx.query(
        `SELECT 1 FROM my_numbers WHERE holder_code = ANY($1::bpchar[]) AND retired_at IS NULL
          ORDER BY my_number FOR UPDATE`,
        [pgArray([...previous])],
      );
    }
  }

  /**
   * Decides every line of a run in line order, as the per-line path would one after another.
   * Takes the locks of the persons concerned and writes nothing; the caller holds the stream
   * locks ({@link lockStreams}). No line may be a residentCodeChange.
   */
  async decide(
    tx: Tx,
    actor: AuditActor,
    lines: readonly BulkLine[],
    requestId: string | undefined,
  ): Promise<BulkPlan> {
    if (lines.some((l) => isResidentCodeChange(l.body))) {
      throw new Error('set-based intake: a residentCodeChange goes through the per-line path');
    }
    const now = this.clock.now();
    const today = japanDateOf(now);
    const view = new RunView(await this.readAhead(tx, lines));
    const plan: BulkPlan = { outcomes: [], records: [], persons: new Map(), created: new Set() };
    for (const { body } of lines) {
      try {
        const intake = await decideIntake(view, body, today);
        if (intake.kind === 'replay') {
          plan.outcomes.push({ ok: true, result: intake.result });
          continue;
        }
        const change = intake.change;
        const id = change.personId ?? randomUUID();
        const records = changeRecords(change, id, actor, requestId, now);
        view.accept(change, records);
        if (!change.personId) plan.created.add(id);
        plan.persons.set(id, records.person);
        plan.records.push(records);
        plan.outcomes.push({ ok: true, result: records.result });
      } catch (err) {
        if (!isAppError(err)) throw err;
        plan.outcomes.push({ ok: false, error: err });
      }
    }
    return plan;
  }

  /**
   * Stores a plan's accepted lines: one statement per table (persons inserted and updated at
   * their last version of the run; notifications, versions, events and audit entries in line
   * order), the same rows the per-line path writes one line at a time.
   */
  async store(tx: Tx, actor: AuditActor, plan: BulkPlan): Promise<void> {
    if (plan.records.length === 0) return;
    const persons = [...plan.persons.values()];
    await this.registry.insertPersons(
      tx,
      persons.filter((p) => plan.created.has(p.id)),
    );
    await this.registry.updatePersons(
      tx,
      persons.filter((p) => !plan.created.has(p.id)),
    );
    await this.registry.insertChanges(tx, plan.records);
    await appendEvents(
      tx,
      this.clock,
      plan.records.map((r) => r.event),
    );
    await this.audit.appendMany(
      tx,
      actor,
      plan.records.map((r) => r.audit),
    );
  }

  /**
   * Reads, with one query each, what the run's lines may ask: local governments, prior
   * notifications at their places and each municipality's last sequence number, the persons
   * carrying (or having carried) their resident codes — locked in id order — and their latest
   * versions, the codes' pool entries and active My Numbers.
   */
  private async readAhead(tx: Tx, lines: readonly BulkLine[]): Promise<Known> {
    const keys = lines.map((l) => keysOf(l.body));
    const municipalities = keySet(keys.map((k) => k.municipality));
    const lgCodes = keySet([...municipalities, ...keys.map((k) => k.destination)]);
    const places = new Map<string, { municipalityCode: string; sequence: number }>();
    for (const { municipality, sequence } of keys) {
      if (municipality !== null && sequence !== null) {
        places.set(place(municipality, sequence), { municipalityCode: municipality, sequence });
      }
    }
    const codes = keySet(keys.map((k) => k.residentCode));

    const lgs = await this.registry.localGovernments(tx, lgCodes);
    const notifications = await this.registry.notificationsAt(tx, 'identity', [...places.values()]);
    const last = await this.registry.lastSequences(tx, 'identity', municipalities);
    const persons = await this.registry.personsByCodes(tx, codes);
    const personIds = new Set(persons.values());
    await this.registry.lockPersons(tx, personIds);
    const latest = await this.registry.latestOfMany(tx, personIds);
    // Persons recorded elsewhere (a move-in, a ward of the same city): their municipalities.
    const elsewhere = keySet([...latest.values()].map((v) => v.municipalityCode));
    for (const code of lgCodes) elsewhere.delete(code);
    for (const [code, lg] of await this.registry.localGovernments(tx, elsewhere)) {
      lgs.set(code, lg);
    }
    // Codes of no person with a version: a new record's code, checked against its pool.
    const unheld = keySet(
      [...codes].filter((c) => {
        const id = persons.get(c);
        return id === undefined || !latest.has(id);
      }),
    );
    const infos = await residentCodeInfos(tx, unheld);
    const active = await this.registry.activeMyNumbers(tx, codes);
    return {
      localGovernments: new ReadAhead(
        'a local government',
        keySet([...lgCodes, ...elsewhere]),
        lgs,
      ),
      notifications: new ReadAhead('a notification', new Set(places.keys()), notifications),
      lastSequence: new ReadAhead('a sequence', municipalities, last),
      persons: new ReadAhead('a person', codes, persons),
      latest: new ReadAhead('a latest version', personIds, latest),
      residentCodes: new ReadAhead('a resident code', unheld, infos),
      activeMyNumbers: new ReadAhead('a My Number', codes, active),
    };
  }
}
