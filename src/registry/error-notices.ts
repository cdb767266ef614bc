/**
 * 誤りに関する通報 (業務方法書第4条第2号: the agency's duty under 住民基本台帳法 to tell a
 * prefecture of errors in the 本人確認情報 and 附票本人確認情報 it sent): when the agency finds, in
 * received data, an inconsistency that intake could not refuse outright, it tells the
 * prefecture (都道府県知事) concerned, which has the municipality check its register.
 *
 * Detectors, each run after an accepted change:
 * - `doubleRegistration` (二重記載の疑い): a person newly registered (birth, officialEntry or a
 *   move-in from nowhere) with the same name, date of birth and sex as another person newly
 *   registered in a different municipality within {@link DOUBLE_REGISTRATION_WINDOW_DAYS} days
 *   — one notice to each municipality's prefecture;
 * - `moveOutDestinationMismatch` (転出先と異なる市町村への転入): a move-in (or officialEntry)
 *   that closed a move-out whose declared destination was another municipality — notice to
 *   the prefecture of the municipality that took the move-out (its 転出先 is now wrong);
 * - `supplementIdentityMismatch` (附票と本人確認情報の不一致): a supplement record whose name, date
 *   of birth or sex disagrees with the person's live identity record — raised by the supplement
 *   intake (supplement.service.ts), to the prefecture of the municipality keeping the 附票.
 *
 * The first two run as the outbox consumer `registry.error-notices` on `resident.changed`,
 * reading the person's versions from the registry store: the intake transaction stays as it
 * is, and a finding is recorded exactly once (a `source_key` per finding makes re-delivery
 * harmless). Notices name items, municipalities and resident codes — never a name, a date of
 * birth, an address or a My Number.
 */
import { Type } from '@sinclair/typebox';
import type { AuditLog } from '../platform/audit.ts';
import type { Clock } from '../platform/clock.ts';
import type { Database, Queryable, Tx } from '../platform/db.ts';
import { AppError } from '../platform/errors.ts';
import type { App } from '../platform/http.ts';
import type { ConsumerDefinition, OutboxEvent } from '../platform/outbox.ts';
import { RESIDENT_CHANGED } from './registry.service.ts';
import { pgArray } from '../platform/db.ts';
import type { RegistryStore, StoredVersion } from './registry.store.ts';

export const ERROR_NOTICE_CONSUMER = 'registry.error-notices';

export const ERROR_NOTICE_KINDS = [
  'doubleRegistration',
  'moveOutDestinationMismatch',
  'supplementIdentityMismatch',
] as const;
export type ErrorNoticeKind = (typeof ERROR_NOTICE_KINDS)[number];

/** The Japanese term of each kind of notice. */
export const ERROR_NOTICE_KIND_TERMS: Readonly<Record<ErrorNoticeKind, string>> = {
  doubleRegistration: '二重記載の疑い',
  moveOutDestinationMismatch: '転出先と異なる市町村への転入',
  supplementIdentityMismatch: '附票本人確認情報と本人確認情報の不一致',
};

export const ERROR_NOTICE_STATUSES = ['open', 'acknowledged', 'resolved'] as const;
export type ErrorNoticeStatus = (typeof ERROR_NOTICE_STATUSES)[number];

/**
 * Two new registrations of one person happen within the periods the law gives for the
 * underlying notices: 14 days for a 出生届 (戸籍法第49条) and for a 転入届 (住基法第22条). Two
 * registrations of the same event therefore fall within 28 days of each other; 30 days is the
 * round bound. Namesakes born on the same day and registered further apart are not flagged.
 */
export const DOUBLE_REGISTRATION_WINDOW_DAYS = 30;

/** Changes that create a person: version 1 by one of these reasons. */
const NEW_REGISTRATION_REASONS = ['birth', 'officialEntry', 'moveIn'];

export interface NewErrorNotice {
  kind: ErrorNoticeKind;
  /** The municipality whose data is in question; the notice goes to its prefecture. */
  municipalityCode: string;
  residentCodes: string[];
  /** Without personal data: items, municipality codes, sequence numbers. */
  detail: string;
  /** Identifies the finding; the same finding for the same municipality is recorded once. */
  sourceKey: string;
}

export interface ErrorNotice {
  id: string;
  prefectureCode: string;
  municipalityCode: string;
  kind: ErrorNoticeKind;
  residentCodes: string[];
  detail: string;
  foundAt: Date;
  status: ErrorNoticeStatus;
  acknowledgedAt: Date | null;
  /** Name of the acknowledging actor. */
  acknowledgedBy: string | null;
}

interface NoticeRow {
  [key: string]: unknown;
  id: string;
  prefecture_code: string;
  municipality_code: string;
  kind: ErrorNoticeKind;
  resident_codes: string[];
  detail: string;
  found_at: Date;
  status: ErrorNoticeStatus;
  acknowledged_at: Date | null;
  acknowledged_by_name: string | null;
}

const toNotice = (r: NoticeRow): ErrorNotice => ({
  id: r.id,
  prefectureCode: r.prefecture_code,
  municipalityCode: r.municipality_code,
  kind: r.kind,
  residentCodes: r.resident_codes,
  detail: r.detail,
  foundAt: r.found_at,
  status: r.status,
  acknowledgedAt: r.acknowledged_at,
  acknowledgedBy: r.acknowledged_by_name,
});

const SELECT_NOTICE = `SELECT n.id, n.prefecture_code, n.municipality_code, n.kind, n.resident_codes,
       n.detail, n.found_at, n.status, n.acknowledged_at, a.name AS acknowledged_by_name
  FROM error_notices n LEFT JOIN actors a ON a.id = n.acknowledged_by`;

/** The fields of `resident.changed` the detectors use; everything else is read from the store. */
function residentChangedRef(payload: unknown): { personId: string; version: number } {
  if (typeof payload === 'object' && payload !== null) {
    const p = payload as Record<string, unknown>;
    if (typeof p['personId'] === 'string' && typeof p['version'] === 'number') {
      return { personId: p['personId'], version: p['version'] };
    }
  }
  throw new Error('resident.changed event without personId and version');
}

/** Names compared for double registration ignore the spaces between parts (ASCII or 全角). */
const NAME_SPACES = ' \u3000';
const normalisedName = (name: string): string => name.replace(/[ \u3000]/g, '');

/** A new registration, as the double-registration notice names it. */
interface RegisteredSide {
  residentCode: string;
  municipalityCode: string;
}
/** Another new registration with the same basic data (a row of the detector's query). */
interface RegisteredElsewhere {
  resident_code: string;
  municipality_code: string;
}
const sideOf = (v: StoredVersion): RegisteredSide => ({
  residentCode: v.record.residentCode,
  municipalityCode: v.municipalityCode,
});

export class ErrorNoticeService {
  constructor(
    private readonly clock: Clock,
    private readonly registry: RegistryStore,
  ) {}

  /** The outbox consumer that runs the identity-record detectors. */
  consumer(): ConsumerDefinition {
    return {
      name: ERROR_NOTICE_CONSUMER,
      topics: [RESIDENT_CHANGED],
      handle: (event, tx) => this.onResidentChanged(tx, event),
      handleRun: (events, tx) => this.onResidentChangedRun(tx, events),
    };
  }

  /** Records a notice; `false` when the same finding was already recorded. */
  async raise(tx: Queryable, notice: NewErrorNotice): Promise<boolean> {
    const r = await tx.query(
      `INSERT INTO error_notices (prefecture_code, municipality_code, kind, resident_codes, detail,
                                  source_key, found_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (source_key, municipality_code) DO NOTHING`,
      [
        notice.municipalityCode.slice(0, 2),
        notice.municipalityCode,
        notice.kind,
        notice.residentCodes,
        notice.detail,
        notice.sourceKey,
        this.clock.now(),
      ],
    );
    return r.rowCount > 0;
  }

  async onResidentChanged(tx: Tx, event: OutboxEvent): Promise<void> {
    const ref = residentChangedRef(event.payload);
    const history = await this.registry.history(tx, ref.personId);
    const v = history.find((h) => h.version === ref.version);
    if (!v) throw new Error('resident.changed names a version that is not stored');
    if (v.version === 1 && NEW_REGISTRATION_REASONS.includes(v.changeReason)) {
      await this.detectDoubleRegistration(tx, v);
    }
    if (v.closesMoveOutAt !== null) {
      const before = history.find((h) => h.version === v.version - 1);
      if (before) await this.detectDestinationMismatch(tx, before, v);
    }
  }

  /**
   * {@link onResidentChanged} for a run of events, with one query: for every version the run
   * names, what the detectors need of it — its code and municipality, whether it closes a
   * move-out, and (for a new registration) the other new registrations with the same basic
   * data within the window, found by the database next to the data. The versions around a
   * move-in are read only for the few events that close a move-out. Notices are then raised
   * event by event, in order.
   */
  async onResidentChangedRun(tx: Tx, events: readonly OutboxEvent[]): Promise<void> {
    const refs = events.map((e) => residentChangedRef(e.payload));
    const r = await tx.query<{
      person_id: string;
      version: number;
      resident_code: string;
      municipality_code: string;
      closes: boolean;
      other_code: string | null;
      other_municipality: string | null;
    }>(
      // LATERAL: each new registration probes the (birth_date, sex) index of first versions,
      // as the single-event query does; other versions skip the probe (a constant false).
      `SELECT c.person_id, c.version, c.resident_code, c.municipality_code,
              c.closes_move_out_at IS NOT NULL AS closes,
              o.resident_code AS other_code, o.municipality_code AS other_municipality
         FROM identity_record_versions c
         LEFT JOIN LATERAL (
              SELECT v.resident_code, v.municipality_code FROM identity_record_versions v
               WHERE c.version = 1 AND c.change_reason = ANY($3::text[])
                 AND v.version = 1 AND v.birth_date = c.birth_date AND v.sex = c.sex
                 AND translate(v.name, $4, '') = translate(c.name, $4, '')
                 AND v.change_reason = ANY($3::text[])
                 AND v.person_id <> c.person_id AND v.municipality_code <> c.municipality_code
                 AND v.recorded_at BETWEEN c.recorded_at - make_interval(secs => $5)
                                       AND c.recorded_at + make_interval(secs => $5)) AS o
           ON true
        WHERE (c.person_id, c.version) IN (SELECT * FROM unnest($1::uuid[], $2::int[]))
        ORDER BY c.person_id, c.version, o.resident_code`,
      [
        pgArray(refs.map((ref) => ref.personId)),
        pgArray(refs.map((ref) => ref.version)),
        NEW_REGISTRATION_REASONS,
        NAME_SPACES,
        DOUBLE_REGISTRATION_WINDOW_DAYS * 86_400,
      ],
    );
    const found = new Map<
      string,
      { side: RegisteredSide; closes: boolean; others: RegisteredElsewhere[] }
    >();
    for (const row of r.rows) {
      const key = `${row.person_id}:${row.version}`;
      let entry = found.get(key);
      if (!entry) {
        const side = { residentCode: row.resident_code, municipalityCode: row.municipality_code };
        entry = { side, closes: row.closes, others: [] };
        found.set(key, entry);
      }
      if (row.other_code !== null && row.other_municipality !== null) {
        entry.others.push({
          resident_code: row.other_code,
          municipality_code: row.other_municipality,
        });
      }
    }
    const entries = refs.map((ref) => {
      const entry = found.get(`${ref.personId}:${ref.version}`);
      if (!entry) throw new Error('resident.changed names a version that is not stored');
      return { ref, ...entry };
    });
    const closing = entries.filter((e) => e.closes).map((e) => e.ref);
    const versions = await this.registry.versionsAt(
      tx,
      closing.flatMap((ref) => [ref, { personId: ref.personId, version: ref.version - 1 }]),
    );
    for (const { ref, side, closes, others } of entries) {
      await this.raiseDoubleRegistration(tx, side, others);
      if (closes) {
        const v = versions.get(`${ref.personId}:${ref.version}`);
        const before = versions.get(`${ref.personId}:${ref.version - 1}`);
        if (v && before) await this.detectDestinationMismatch(tx, before, v);
      }
    }
  }

  /** (a) the same basic data newly registered elsewhere under another resident code. */
  private async detectDoubleRegistration(tx: Tx, v: StoredVersion): Promise<void> {
    const windowMs = DOUBLE_REGISTRATION_WINDOW_DAYS * 86_400_000;
    const others = await tx.query<{ resident_code: string; municipality_code: string }>(
      `SELECT resident_code, municipality_code FROM identity_record_versions
        WHERE version = 1 AND birth_date = $1 AND sex = $2
          AND translate(name, $9, '') = $3
          AND change_reason = ANY($4::text[])
          AND person_id <> $5 AND municipality_code <> $6
          AND recorded_at BETWEEN $7 AND $8
        ORDER BY resident_code`,
      [
        v.record.birthDate,
        v.record.sex,
        normalisedName(v.record.name),
        NEW_REGISTRATION_REASONS,
        v.personId,
        v.municipalityCode,
        new Date(v.recordedAt.getTime() - windowMs),
        new Date(v.recordedAt.getTime() + windowMs),
        NAME_SPACES,
      ],
    );
    await this.raiseDoubleRegistration(tx, sideOf(v), others.rows);
  }

  /** Raises (a) on both sides for each of `others` found for the new registration `v`. */
  private async raiseDoubleRegistration(
    tx: Tx,
    v: RegisteredSide,
    others: readonly RegisteredElsewhere[],
  ): Promise<void> {
    for (const other of others) {
      const pair = [v.residentCode, other.resident_code].sort().join(',');
      const sides = [
        { here: v.municipalityCode, codes: [v.residentCode, other.resident_code] },
        { here: other.municipality_code, codes: [other.resident_code, v.residentCode] },
      ];
      for (const [i, side] of sides.entries()) {
        const there = sides[1 - i]?.here ?? '';
        await this.raise(tx, {
          kind: 'doubleRegistration',
          municipalityCode: side.here,
          residentCodes: side.codes,
          detail: `possible double registration (二重記載): a person with the same name, date of birth and sex was newly registered in ${there} under another resident code within ${DOUBLE_REGISTRATION_WINDOW_DAYS} days`,
          sourceKey: `doubleRegistration:${pair}`,
        });
      }
    }
  }

  /** (b) a move-in closing a move-out that had declared another destination. */
  private async detectDestinationMismatch(
    tx: Tx,
    before: StoredVersion,
    v: StoredVersion,
  ): Promise<void> {
    const declared =
      before.status === 'movingOut' &&
      before.destination &&
      'municipalityCode' in before.destination
        ? before.destination.municipalityCode
        : null;
    if (declared === null || declared === v.municipalityCode) return;
    await this.raise(tx, {
      kind: 'moveOutDestinationMismatch',
      municipalityCode: before.municipalityCode,
      residentCodes: [v.record.residentCode],
      detail: `the move-out (転出) notified by this municipality declared ${declared} as destination, but the resident's ${v.changeReason} was recorded by ${v.municipalityCode}; the destination on the removed record needs correcting`,
      sourceKey: `moveOutDestinationMismatch:${v.personId}:${v.version}`,
    });
  }

  async list(
    db: Queryable,
    filter: {
      prefectureCode?: string;
      status?: ErrorNoticeStatus;
      afterId?: string;
      limit: number;
    },
  ): Promise<ErrorNotice[]> {
    const r = await db.query<NoticeRow>(
      `${SELECT_NOTICE}
        WHERE ($1::text IS NULL OR n.prefecture_code = $1)
          AND ($2::text IS NULL OR n.status = $2)
          AND n.id > $3
        ORDER BY n.id LIMIT $4`,
      [filter.prefectureCode ?? null, filter.status ?? null, filter.afterId ?? '0', filter.limit],
    );
    return r.rows.map(toNotice);
  }

  async get(
    db: Queryable,
    id: string,
    options: { lock?: boolean } = {},
  ): Promise<ErrorNotice | null> {
    const r = await db.query<NoticeRow>(
      `${SELECT_NOTICE} WHERE n.id = $1${options.lock ? ' FOR UPDATE OF n' : ''}`,
      [id],
    );
    return r.rows[0] ? toNotice(r.rows[0]) : null;
  }

  /** Marks an open notice acknowledged; an acknowledged one is returned as it is. */
  async acknowledge(
    tx: Tx,
    notice: ErrorNotice,
    actorId: string,
  ): Promise<{ notice: ErrorNotice; changed: boolean }> {
    if (notice.status === 'resolved') {
      throw new AppError(
        'conflict',
        'registry.error-notice-resolved',
        'the notice is already resolved',
      );
    }
    if (notice.status === 'acknowledged') return { notice, changed: false };
    await tx.query(
      `UPDATE error_notices SET status = 'acknowledged', acknowledged_at = $2, acknowledged_by = $3
        WHERE id = $1 AND status = 'open'`,
      [notice.id, this.clock.now(), actorId],
    );
    const updated = await this.get(tx, notice.id);
    if (!updated) throw new Error('acknowledged notice vanished');
    return { notice: updated, changed: true };
  }
}

// ---------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------

const NoticeId = Type.String({ pattern: '^[1-9][0-9]{0,17}$', description: 'notice id' });
const Status = Type.Union(ERROR_NOTICE_STATUSES.map((s) => Type.Literal(s)));

const ErrorNoticeView = Type.Object(
  {
    id: NoticeId,
    prefectureCode: Type.String({ description: '都道府県コード (2 digits) the notice goes to' }),
    municipalityCode: Type.String({ description: 'the municipality whose data is in question' }),
    kind: Type.Union(ERROR_NOTICE_KINDS.map((k) => Type.Literal(k))),
    residentCodes: Type.Array(Type.String(), { description: '住民票コード involved' }),
    detail: Type.String({ description: 'what was found, without personal data' }),
    foundAt: Type.String({ format: 'date-time' }),
    status: Status,
    acknowledgedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    acknowledgedBy: Type.Union([Type.String(), Type.Null()]),
  },
  { $id: 'ErrorNotice', additionalProperties: false },
);

const noticeView = (n: ErrorNotice) => ({
  id: n.id,
  prefectureCode: n.prefectureCode,
  municipalityCode: n.municipalityCode,
  kind: n.kind,
  residentCodes: n.residentCodes,
  detail: n.detail,
  foundAt: n.foundAt.toISOString(),
  status: n.status,
  acknowledgedAt: n.acknowledgedAt?.toISOString() ?? null,
  acknowledgedBy: n.acknowledgedBy,
});

export interface ErrorNoticeRouteDeps {
  db: Database;
  audit: AuditLog;
  errorNotices: ErrorNoticeService;
}

const notFound = (): AppError =>
  new AppError('notFound', 'registry.error-notice-not-found', 'no notice addressed to this actor');

export async function errorNoticeRoutes(app: App, deps: ErrorNoticeRouteDeps): Promise<void> {
  app.addSchema(ErrorNoticeView);

  app.get(
    '/v1/registry/error-notices',
    {
      config: {
        access: {
          grants: ['prefecture', { type: 'agencyOperator', roles: ['registry', 'auditor'] }],
          scope: (r) => ({
            prefectureCode: (r.query as { prefectureCode?: string }).prefectureCode,
          }),
        },
      },
      schema: {
        tags: ['registry'],
        summary: '誤りに関する通報: notices of inconsistencies found in received data',
        description:
          'A prefecture sees the notices addressed to it; operators see all, or one prefecture’s with `prefectureCode`. Oldest first; page with `after` (the last id seen).',
        querystring: Type.Object(
          {
            status: Type.Optional(Status),
            prefectureCode: Type.Optional(Type.String({ pattern: '^[0-9]{2}$' })),
            after: Type.Optional(NoticeId),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object(
            {
              notices: Type.Array(Type.Ref(ErrorNoticeView)),
              next: Type.Union([NoticeId, Type.Null()]),
            },
            { additionalProperties: false },
          ),
        },
      },
    },
    async (request) => {
      const actor = request.actor!;
      const q = request.query;
      const prefectureCode =
        actor.type === 'prefecture' ? (actor.prefectureCode ?? undefined) : q.prefectureCode;
      if (actor.type === 'prefecture' && prefectureCode === undefined) {
        throw new AppError('forbidden', 'auth.forbidden', 'the prefecture actor has no code');
      }
      const limit = q.limit ?? 100;
      const notices = await deps.db.transaction(async (tx) => {
        const found = await deps.errorNotices.list(tx, {
          limit,
          ...(prefectureCode !== undefined ? { prefectureCode } : {}),
          ...(q.status !== undefined ? { status: q.status } : {}),
          ...(q.after !== undefined ? { afterId: q.after } : {}),
        });
        await deps.audit.append(tx, actor, {
          action: 'registry.error-notices.list',
          subjectType: 'localGovernment',
          ...(prefectureCode !== undefined ? { subject: prefectureCode } : {}),
          purpose:
            actor.type === 'agencyOperator' ? 'agencyOperation' : 'residentRegistryAdministration',
          requestId: String(request.id),
          details: {
            count: found.length,
            status: q.status ?? null,
            noticeIds: found.map((n) => n.id),
          },
        });
        return found;
      });
      const last = notices[notices.length - 1];
      return {
        notices: notices.map(noticeView),
        next: notices.length === limit && last ? last.id : null,
      };
    },
  );

  app.post(
    '/v1/registry/error-notices/:id/acknowledgement',
    {
      config: { access: { grants: ['prefecture'] } },
      schema: {
        tags: ['registry'],
        summary: '誤りに関する通報の受領: the addressed prefecture acknowledges a notice',
        description:
          'Marks the notice acknowledged (idempotent: acknowledging again returns it unchanged). A notice addressed to another prefecture answers 404, like an unknown one.',
        params: Type.Object({ id: NoticeId }),
        response: { 200: Type.Ref(ErrorNoticeView) },
      },
    },
    async (request) => {
      const actor = request.actor!;
      const { id } = request.params;
      // The audit entry is committed whether or not the acknowledgement is allowed.
      const result = await deps.db.transaction(async (tx) => {
        const notice = await deps.errorNotices.get(tx, id, { lock: true });
        const addressed = notice !== null && notice.prefectureCode === actor.prefectureCode;
        if (!addressed) {
          await deps.audit.append(tx, actor, {
            action: 'registry.error-notice.acknowledge',
            subjectType: 'localGovernment',
            outcome: 'denied',
            requestId: String(request.id),
            details: { noticeId: id },
          });
          return null;
        }
        const done = await deps.errorNotices.acknowledge(tx, notice, actor.id);
        await deps.audit.append(tx, actor, {
          action: 'registry.error-notice.acknowledge',
          subjectType: 'localGovernment',
          subject: notice.municipalityCode,
          purpose: 'residentRegistryAdministration',
          requestId: String(request.id),
          details: { noticeId: id, kind: notice.kind, alreadyAcknowledged: !done.changed },
        });
        return done.notice;
      });
      if (!result) throw notFound();
      return noticeView(result);
    },
  );
}
