/**
 * Reads of a resident's registry data (本人確認情報, 附票本人確認情報): operators read history,
 * others only the current view; every read is audited in its own committed transaction,
 * refused ones too; a refusal is a 404 whether the record is unknown or held elsewhere, since
 * where a person lives (or keeps a 本籍) is itself personal data.
 */
import type { Actor } from '../platform/actors.ts';
import type { AuditLog } from '../platform/audit.ts';
import type { Database, Queryable } from '../platform/db.ts';
import { AppError } from '../platform/errors.ts';

export async function auditedResidentRead<V, R>(
  deps: { db: Database; audit: AuditLog },
  req: { actor: Actor; residentCode: string; history: boolean; requestId: string },
  what: {
    /** `identity-record` or `supplement-record`: names the audit action. */
    kind: string;
    /** Loads the versions and the one this actor may see (undefined: not allowed). */
    load: (tx: Queryable) => Promise<{ versions: V[]; shown: V | undefined } | null>;
    view: (v: V) => R;
    notFoundDetail: string;
  },
): Promise<R | { versions: R[] }> {
  const { actor, residentCode, history } = req;
  if (history && actor.type !== 'agencyOperator') {
    throw new AppError(
      'forbidden',
      'registry.history-operators-only',
      'only agency operators read history',
    );
  }
  const found = await deps.db.transaction(async (tx) => {
    const loaded = await what.load(tx);
    const shown = loaded?.shown;
    await deps.audit.append(tx, actor, {
      action: `registry.${what.kind}.${history ? 'read-history' : 'read'}`,
      subjectType: 'resident',
      subject: residentCode,
      purpose:
        actor.type === 'agencyOperator' ? 'agencyOperation' : 'residentRegistryAdministration',
      outcome: shown !== undefined ? 'success' : 'denied',
      requestId: req.requestId,
    });
    return loaded && shown !== undefined ? { versions: loaded.versions, shown } : null;
  });
  if (!found) throw new AppError('notFound', 'registry.record-not-found', what.notFoundDetail);
  return history ? { versions: found.versions.map(what.view) } : what.view(found.shown);
}
