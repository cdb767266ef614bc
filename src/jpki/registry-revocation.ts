/**
 * 異動等失効情報: revocation driven by the registry (機構保存本人確認情報), consuming
 * `resident.changed` from the outbox in the same transaction as the consumer's cursor, so each
 * change is acted on exactly once.
 *
 * - Signing certificates (card and mobile, 第12条 / 第16条の11): voided when name, date of
 *   birth, sex or address is changed (記載の修正) or the record is removed (消除). The
 *   総務省令's 軽微な修正 exception is applied as: a change that alters none of the four items
 *   (a reading, a resident-code change) voids nothing. Corrections of the address caused by
 *   renaming of areas or lot numbers (行政区画・町名・地番の変更) would be minor too; the
 *   registry does not record that cause yet, so such a change still voids the certificate.
 * - Emigration keeping the card (国外転出, 第12条第2号 with the supplement record continuing):
 *   the signing certificate is voided on the departure date; the authentication certificate
 *   is not.
 * - Authentication certificates (第31条 / 第35条の11): voided when the record is removed other
 *   than by emigration (death, 職権消除), or when 30 days pass after the planned move-out date
 *   with no move-in (scheduled; a move-in within the 30 days cancels it; a move-out whose
 *   planned date is already more than 30 days past voids at once).
 * - The cascade (第16条の13 / 第35条の13): a card certificate voided for categories 1–4 voids
 *   the holder's mobile certificate of the same kind (`cardCertificateRevoked`).
 */
import type { AuditActor } from '../platform/audit.ts';
import type { Clock } from '../platform/clock.ts';
import { type Database, pgArray, type Tx } from '../platform/db.ts';
import type { ConsumerDefinition, OutboxEvent } from '../platform/outbox.ts';
import { RESIDENT_CHANGED } from '../registry/registry.service.ts';
import type { RevocationCategory, RevocationHook, RevocationService } from './revocation.ts';

export const REGISTRY_REVOCATION_CONSUMER = 'jpki.registry-revocation';

/** Days after the planned move-out date after which the authentication certificate lapses. */
export const MOVE_OUT_GRACE_DAYS = 30;

const CONSUMER_ACTOR: AuditActor = { id: null, type: 'system', name: REGISTRY_REVOCATION_CONSUMER };

interface Change {
  personId: string;
  /** The version the event announces (1: the person's first record). */
  version: number | null;
  changedItems: string[];
  status: 'current' | 'movingOut' | 'removed';
  removal: string | null;
  plannedMoveOutDate: string | null;
}

function changeOf(payload: unknown): Change {
  const p = (typeof payload === 'object' && payload !== null ? payload : {}) as Record<
    string,
    unknown
  >;
  const status = p['status'];
  if (
    typeof p['personId'] !== 'string' ||
    !Array.isArray(p['changedItems']) ||
    (status !== 'current' && status !== 'movingOut' && status !== 'removed')
  ) {
    throw new Error('resident.changed event without personId, changedItems or status');
  }
  return {
    personId: p['personId'],
    version: typeof p['version'] === 'number' ? p['version'] : null,
    changedItems: p['changedItems'].filter((x): x is string => typeof x === 'string'),
    status,
    removal: typeof p['removal'] === 'string' ? p['removal'] : null,
    plannedMoveOutDate:
      typeof p['plannedMoveOutDate'] === 'string' ? p['plannedMoveOutDate'] : null,
  };
}

/**
 * A person's first record, as it is (現存): nothing it voids — a certificate issued since is
 * for this very record, and no lapse can be pending before it. No query needed.
 */
function isFirstRecord(change: Change): boolean {
  return (
    change.version === 1 &&
    change.status === 'current' &&
    change.changedItems.length === 0 &&
    change.removal === null
  );
}

/** 00:00 JST of `date` + `days`, as an instant. */
function startOfJstDay(date: string, days = 0): Date {
  const d = new Date(`${date}T00:00:00+09:00`);
  d.setUTCDate(d.getUTCDate() + days);
  return d;
}

/** Certificate `c` is issued and not revoked (expiry is checked where it matters). */
export const UNREVOKED = `c.state = 'issued'
  AND NOT EXISTS (SELECT 1 FROM jpki_revocations r WHERE r.serial = c.serial)`;

type Held = { serial: string; kind: 'sign' | 'auth'; medium: 'card' | 'mobile' };

/** Categories 1–4 of 第16条の13: a card certificate voided for these voids the mobile one. */
const CASCADING: readonly RevocationCategory[] = [
  'request',
  'lossReport',
  'registryChange',
  'recordError',
  'issuerKeyCompromise',
];

export class RegistryRevocation {
  constructor(
    private readonly clock: Clock,
    private readonly revocations: RevocationService,
  ) {
    revocations.onRevoked(this.cascade);
  }

  consumer(): ConsumerDefinition {
    return {
      name: REGISTRY_REVOCATION_CONSUMER,
      topics: [RESIDENT_CHANGED],
      handle: (event, tx) => this.onResidentChanged(tx, event),
      handleRun: (events, tx) => this.onResidentChangedRun(tx, events),
    };
  }

  /**
   * A run of changes, leaving what {@link onResidentChanged} leaves event by event. Most
   * changed persons hold no valid certificate: for them a change can only cancel a scheduled
   * lapse, so they take one query for the run to find them and one to cancel. The changes of
   * persons who do hold one go through `onResidentChanged`, in order (persons are independent:
   * a change voids only its own person's certificates).
   */
  async onResidentChangedRun(tx: Tx, events: readonly OutboxEvent[]): Promise<void> {
    const relevant = events
      .map((event) => ({ event, change: changeOf(event.payload) }))
      .filter(({ change }) => !isFirstRecord(change));
    if (relevant.length === 0) return;
    const valid = await this.#validOf(
      tx,
      relevant.map((r) => r.change.personId),
    );
    const holding = new Set(valid.map((r) => r.person_id));
    const returned = new Set(
      relevant
        .filter((r) => !holding.has(r.change.personId) && r.change.status === 'current')
        .map((r) => r.change.personId),
    );
    if (returned.size > 0) {
      await tx.query(
        `DELETE FROM jpki_scheduled_revocations
          WHERE person_id = ANY($1::uuid[]) AND reason = 'moveOutLapse'`,
        [pgArray([...returned])],
      );
    }
    await this.#lockAhead(
      tx,
      [...holding],
      valid.map((r) => r.serial),
    );
    for (const { event, change } of relevant) {
      if (holding.has(change.personId)) await this.#onResidentChanged(tx, event);
    }
  }

  async onResidentChanged(tx: Tx, event: OutboxEvent): Promise<void> {
    const change = changeOf(event.payload);
    if (isFirstRecord(change)) return;
    const valid = await this.#validOf(tx, [change.personId]);
    await this.#lockAhead(
      tx,
      [change.personId],
      valid.map((r) => r.serial),
    );
    await this.#onResidentChanged(tx, event);
  }

  /**
   * What a change may touch, locked before the first revocation takes the revocation epoch and
   * the audit chain (both held to the commit): the persons (KEY SHARE, in id order: a scheduled
   * revocation refers to its person), their scheduled revocations and their valid certificates
   * with what those cascade to (in serial order). Locked later, one of them could be held by a
   * registry change or a revocation waiting for the epoch or the audit chain. `serials`: their
   * valid certificates, read just before ({@link #validOf}). The same order
   * as {@link processDue}: scheduled revocations, then certificates.
   */
  async #lockAhead(
    tx: Tx,
    personIds: readonly string[],
    serials: readonly string[],
  ): Promise<void> {
    if (personIds.length === 0) return;
    const ids = pgArray([...new Set(personIds)]);
    await tx.query('SELECT 1 FROM persons WHERE id = ANY($1::uuid[]) ORDER BY id FOR KEY SHARE', [
      ids,
    ]);
    await tx.query(
      `SELECT 1 FROM jpki_scheduled_revocations WHERE person_id = ANY($1::uuid[])
        ORDER BY serial FOR UPDATE`,
      [ids],
    );
    await this.revocations.lockCertificates(tx, serials);
  }

  /** The valid certificates of these persons. */
  async #validOf(
    tx: Tx,
    personIds: readonly string[],
  ): Promise<{ person_id: string; serial: string }[]> {
    const r = await tx.query<{ person_id: string; serial: string }>(
      `SELECT c.person_id, c.serial::text AS serial FROM jpki_certificates c
        WHERE c.person_id = ANY($1::uuid[]) AND c.not_after > $2 AND ${UNREVOKED}`,
      [pgArray([...new Set(personIds)]), this.clock.now()],
    );
    return r.rows;
  }

  async #onResidentChanged(tx: Tx, event: OutboxEvent): Promise<void> {
    const change = changeOf(event.payload);
    const cause = `event:${event.id}`;
    const now = this.clock.now();
    const held = await this.#valid(tx, change.personId);
    // A move-in (or any return to 'current') within the 30 days cancels the lapse.
    if (change.status === 'current') {
      await tx.query(
        `DELETE FROM jpki_scheduled_revocations WHERE person_id = $1 AND reason = 'moveOutLapse'`,
        [change.personId],
      );
    }
    for (const c of held) {
      const voids = this.#voids(c, change);
      if (voids === 'now' || (voids && voids.dueAt.getTime() <= now.getTime())) {
        await this.#revokeIfValid(tx, c.serial, cause);
      } else if (voids) {
        {
          await tx.query(
            `INSERT INTO jpki_scheduled_revocations (serial, person_id, reason, due_at, cause, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (serial) DO UPDATE SET reason = EXCLUDED.reason, due_at = EXCLUDED.due_at,
               cause = EXCLUDED.cause`,
            [c.serial, change.personId, voids.reason, voids.dueAt, cause, now],
          );
        }
      }
    }
  }

  /** Revokes unless already revoked (a mobile certificate may have gone with its card's). */
  async #revokeIfValid(tx: Tx, serial: string, cause: string): Promise<boolean> {
    const still = await tx.query(
      `SELECT 1 FROM jpki_certificates c WHERE c.serial = $1 AND ${UNREVOKED}`,
      [serial],
    );
    if (still.rows.length === 0) return false;
    await this.revocations.revoke(tx, CONSUMER_ACTOR, {
      serial: BigInt(serial),
      category: 'registryChange',
      cause,
    });
    return true;
  }

  /** What the change means for one valid certificate. */
  #voids(
    c: Held,
    change: Change,
  ): 'now' | { dueAt: Date; reason: 'moveOutLapse' | 'emigration' } | null {
    if (c.kind === 'sign') {
      if (change.status === 'removed' && change.removal === 'emigration') {
        return change.plannedMoveOutDate
          ? { dueAt: startOfJstDay(change.plannedMoveOutDate), reason: 'emigration' }
          : 'now';
      }
      if (change.status === 'removed' || change.changedItems.length > 0) return 'now';
      return null;
    }
    if (change.status === 'removed') return change.removal === 'emigration' ? null : 'now';
    if (change.status === 'movingOut' && change.plannedMoveOutDate) {
      return {
        dueAt: startOfJstDay(change.plannedMoveOutDate, MOVE_OUT_GRACE_DAYS + 1),
        reason: 'moveOutLapse',
      };
    }
    return null;
  }

  async #valid(tx: Tx, personId: string): Promise<Held[]> {
    const r = await tx.query<Held>(
      `SELECT c.serial::text AS serial, c.kind, c.medium FROM jpki_certificates c
        WHERE c.person_id = $1 AND c.not_after > $2 AND ${UNREVOKED}
        ORDER BY c.serial`,
      [personId, this.clock.now()],
    );
    return r.rows;
  }

  /**
   * Carries out scheduled revocations that are due (the 30-day lapse after a move-out,
   * emigration on the departure date). Run by the scheduler; returns the serials revoked.
   */
  async processDue(db: Database): Promise<string[]> {
    return db.transaction(async (tx) => {
      // Locked in serial order, then their certificates, before the first revocation takes the
      // revocation epoch and the audit chain (the order #lockAhead takes them in).
      const due = await tx.query<{ serial: string; cause: string }>(
        `SELECT s.serial::text AS serial, s.cause FROM jpki_scheduled_revocations s
          WHERE s.due_at <= $1 ORDER BY s.serial FOR UPDATE`,
        [this.clock.now()],
      );
      const serials = due.rows.map((r) => r.serial);
      await tx.query('DELETE FROM jpki_scheduled_revocations WHERE serial = ANY($1::bigint[])', [
        pgArray(serials),
      ]);
      await this.revocations.lockCertificates(tx, serials);
      const done: string[] = [];
      for (const row of due.rows) {
        if (await this.#revokeIfValid(tx, row.serial, row.cause)) done.push(row.serial);
      }
      return done;
    });
  }

  /** 第16条の13 / 第35条の13: the mobile certificate follows its card certificate. */
  readonly cascade: RevocationHook = async (tx, actor, revoked) => {
    if (revoked.medium !== 'card' || !CASCADING.includes(revoked.category)) return;
    const mobiles = await tx.query<{ serial: string }>(
      `SELECT c.serial::text AS serial FROM jpki_certificates c
        WHERE c.person_id = $1 AND c.kind = $2 AND c.medium = 'mobile' AND c.not_after > $3
          AND ${UNREVOKED}`,
      [revoked.personId, revoked.kind, this.clock.now()],
    );
    for (const m of mobiles.rows) {
      await this.revocations.revoke(tx, actor, {
        serial: BigInt(m.serial),
        category: 'cardCertificateRevoked',
        cause: `certificate:${revoked.serial}`,
      });
    }
  };
}
