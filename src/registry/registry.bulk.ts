/**
 * The set-based path of batch intake for new records (職権記載・出生・転入 of persons the
 * national server does not know yet): the bulk of a first load and of daily intake. Where
 * every line of a batch is such a record and every check passes, the whole batch is checked
 * with a handful of queries and stored with one statement per table — persons, notifications,
 * versions, outbox events, audit entries — instead of some twenty statements per line.
 *
 * It decides nothing the per-line path would decide differently: the same parsing and rules
 * (registry.rules.ts), the same checks as {@link RegistryService.submit} for a record with no
 * prior state (register-keeping municipality, the municipality's sequence, resident code
 * handed out to it and unused, My Number issued for it), the same rows, events and audit
 * entries in the same order. When anything is not plainly acceptable — a line that does not
 * parse, a known person, a replay, a gap, a code or number not issued, a destination, a
 * resident-code change — it declines (returns null) before writing anything, and the caller
 * runs the per-line path, which reports each refusal exactly as before.
 */
import { createHash, randomUUID } from 'node:crypto';
import { checkScope } from '../platform/access.ts';
import type { Actor } from '../platform/actors.ts';
import { type AuditEntryInput, type AuditLog, canonicalJson } from '../platform/audit.ts';
import type { Clock } from '../platform/clock.ts';
import type { Tx } from '../platform/db.ts';
import { appendEvents } from '../platform/outbox.ts';
import {
  type BasicItem,
  decideChange,
  japanDateOf,
  parseNotification,
  type RegistryNotification,
} from './registry.rules.ts';
import { RESIDENT_CHANGED, type ResidentChangedEvent } from './registry.service.ts';
import { KEEPS_REGISTER } from './registry.store.ts';

/** One line of a batch, already read: its number and the parsed JSON body. */
export interface BulkLine {
  line: number;
  body: unknown;
}

export interface BulkAccepted {
  line: number;
  residentCode: string;
  version: number;
}

interface Planned {
  line: number;
  n: RegistryNotification;
  hash: Buffer;
  personId: string;
  status: string;
  changedItems: BasicItem[];
}

export class BulkIntake {
  constructor(
    private readonly clock: Clock,
    private readonly audit: AuditLog,
  ) {}

  /**
   * Stores every line as a new person's first version, or returns null (having written
   * nothing) when any line needs the per-line path.
   */
  async tryNewRecords(
    tx: Tx,
    actor: Actor,
    lines: readonly BulkLine[],
    requestId: string,
  ): Promise<BulkAccepted[] | null> {
    if (lines.length === 0) return null;
    const now = this.clock.now();
    const today = japanDateOf(now);
    const parsed: { line: number; n: RegistryNotification; body: unknown }[] = [];
    const codes = new Set<string>();
    for (const { line, body } of lines) {
      const p = parseNotification(body, today);
      if (!p.ok) return null;
      const n = p.notification;
      if (n.changeReason === 'residentCodeChange' || n.destination) return null;
      if (!checkScope(actor, { municipalityCode: n.municipalityCode }).ok) return null;
      if (codes.has(n.record.residentCode)) return null;
      codes.add(n.record.residentCode);
      parsed.push({ line, n, body });
    }
    const codeList = [...codes];
    const municipalities = [...new Set(parsed.map((p) => p.n.municipalityCode))].sort();

    const kinds = await tx.query<{ code: string; kind: string }>(
      'SELECT code, kind FROM local_governments WHERE code = ANY($1::text[])',
      [municipalities],
    );
    const kindOf = new Map(kinds.rows.map((r) => [r.code, r.kind]));
    if (municipalities.some((m) => !KEEPS_REGISTER.has(kindOf.get(m) ?? ''))) return null;

    // The same stream locks as claimSequence, taken in code order.
    for (const m of municipalities) {
      await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`notifications:identity:${m}`]);
    }
    const last = await tx.query<{ municipality_code: string; n: string }>(
      `SELECT municipality_code, max(sequence)::text AS n FROM registry_notifications
        WHERE stream = 'identity' AND municipality_code = ANY($1::text[])
        GROUP BY municipality_code`,
      [municipalities],
    );
    const expected = new Map(municipalities.map((m) => [m, 1]));
    for (const r of last.rows) expected.set(r.municipality_code, Number(r.n) + 1);
    for (const { n } of parsed) {
      // In sequence, no gap, nothing already used (a replay or a conflict): else per line.
      if (n.sequence !== expected.get(n.municipalityCode)) return null;
      expected.set(n.municipalityCode, n.sequence + 1);
    }

    const known = await tx.query<{ resident_code: string }>(
      `SELECT resident_code FROM persons WHERE resident_code = ANY($1::text[])
       UNION ALL
       SELECT resident_code FROM identity_record_versions WHERE resident_code = ANY($1::text[])
       LIMIT 1`,
      [codeList],
    );
    if (known.rows.length > 0) return null;
    const pool = await tx.query<{ code: string; municipality_code: string; state: string }>(
      'SELECT code, municipality_code, state FROM resident_codes WHERE code = ANY($1::text[])',
      [codeList],
    );
    const handedOut = new Map(pool.rows.map((r) => [r.code, r]));
    const numbers = await tx.query<{ my_number: string; holder_code: string }>(
      `SELECT my_number, holder_code FROM my_numbers
        WHERE holder_code = ANY($1::text[]) AND retired_at IS NULL`,
      [codeList],
    );
    const issued = new Set(numbers.rows.map((r) => `${r.holder_code}:${r.my_number}`));

    const planned: Planned[] = [];
    for (const { line, n, body } of parsed) {
      const code = handedOut.get(n.record.residentCode);
      if (!code || code.state !== 'issued' || code.municipality_code !== n.municipalityCode) {
        return null;
      }
      if (!issued.has(`${n.record.residentCode}:${n.record.myNumber}`)) return null;
      const decision = decideChange(null, n, { sameDesignatedCity: false });
      if (
        !decision.ok ||
        decision.next.status !== 'current' ||
        decision.removal ||
        decision.closesMoveOutAt
      ) {
        return null;
      }
      planned.push({
        line,
        n,
        hash: createHash('sha256').update(canonicalJson(body)).digest(),
        personId: randomUUID(),
        status: decision.next.status,
        changedItems: decision.changedItems,
      });
    }

    // Everything checks out: store it, one statement per table, in line order.
    const col = <T>(f: (p: Planned) => T): T[] => planned.map(f);
    await tx.query(
      `INSERT INTO persons (id, resident_code, municipality_code, status, latest_version, updated_at)
       SELECT id, code, m, s, 1, $5
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS u(id, code, m, s)`,
      [
        col((p) => p.personId),
        col((p) => p.n.record.residentCode),
        col((p) => p.n.municipalityCode),
        col((p) => p.status),
        now,
      ],
    );
    const inserted = await tx.query<{ id: string }>(
      `INSERT INTO registry_notifications (stream, municipality_code, sequence, body_hash,
          change_reason, relayed_by, relayed_at, received_at, actor_id, person_id, version,
          resident_code)
       SELECT 'identity', m, seq, h, reason, left(m, 2), $7, $7, $8, pid, 1, code
         FROM unnest($1::text[], $2::bigint[], $3::bytea[], $4::text[], $5::uuid[], $6::text[])
              WITH ORDINALITY AS u(m, seq, h, reason, pid, code, ord)
        ORDER BY ord
       RETURNING id`,
      [
        col((p) => p.n.municipalityCode),
        col((p) => p.n.sequence),
        col((p) => p.hash),
        col((p) => p.n.changeReason),
        col((p) => p.personId),
        col((p) => p.n.record.residentCode),
        now,
        actor.id,
      ],
    );
    if (inserted.rows.length !== planned.length) throw new Error('notification insert count');
    await tx.query(
      `INSERT INTO identity_record_versions (person_id, version, resident_code, my_number, name,
          name_kana, birth_date, sex, address, municipality_code, status, removal_cause,
          change_reason, change_date, planned_move_out_date, destination_municipality_code,
          destination_abroad, changed_items, closes_move_out_at, notification_id, recorded_at)
       SELECT pid, 1, code, num, nm, kana, birth::date, sex, addr, m, s, NULL, reason,
              cdate::date, NULL, NULL, false,
              ARRAY(SELECT jsonb_array_elements_text(items)), NULL, nid, $14
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[],
                     $13::bigint[], $15::jsonb[])
              AS u(pid, code, num, nm, kana, birth, sex, addr, m, s, reason, cdate, nid, items)`,
      [
        col((p) => p.personId),
        col((p) => p.n.record.residentCode),
        col((p) => p.n.record.myNumber),
        col((p) => p.n.record.name),
        col((p) => p.n.record.nameKana),
        col((p) => p.n.record.birthDate),
        col((p) => p.n.record.sex),
        col((p) => p.n.record.address),
        col((p) => p.n.municipalityCode),
        col((p) => p.status),
        col((p) => p.n.changeReason),
        col((p) => p.n.changeDate),
        inserted.rows.map((r) => r.id),
        now,
        col((p) => JSON.stringify(p.changedItems)),
      ],
    );
    await appendEvents(
      tx,
      this.clock,
      planned.map((p) => {
        const payload: ResidentChangedEvent = {
          personId: p.personId,
          residentCode: p.n.record.residentCode,
          previousResidentCode: null,
          version: 1,
          municipalityCode: p.n.municipalityCode,
          changeReason: p.n.changeReason,
          changeDate: p.n.changeDate,
          changedItems: p.changedItems,
          status: 'current',
          removal: null,
          plannedMoveOutDate: null,
          destination: null,
        };
        return { topic: RESIDENT_CHANGED, key: p.n.record.residentCode, payload };
      }),
    );
    await this.audit.appendMany(
      tx,
      actor,
      planned.map((p): AuditEntryInput => ({
        action: 'registry.notification.accept',
        subjectType: 'resident',
        subject: p.n.record.residentCode,
        requestId,
        details: {
          changeReason: p.n.changeReason,
          version: 1,
          sequence: p.n.sequence,
          municipalityCode: p.n.municipalityCode,
        },
      })),
    );
    return planned.map((p) => ({
      line: p.line,
      residentCode: p.n.record.residentCode,
      version: 1,
    }));
  }
}
