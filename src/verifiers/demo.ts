/**
 * The demo verifier: a fictitious business registered as 署名検証者 and 利用者証明検証者 that
 * the demo and test verifier credentials (`signatureVerifier`, `authVerifier`) act for.
 * Created by `kiban init --demo` and by the test app; idempotent.
 */
import type { ActorStore } from '../platform/actors.ts';
import type { AuditActor, AuditLog } from '../platform/audit.ts';
import type { Clock } from '../platform/clock.ts';
import type { Queryable } from '../platform/db.ts';
import { isVerifierKind } from './kinds.ts';
import { type NewVerifier, VerifierService } from './verifiers.service.ts';

export const DEMO_VERIFIER_ID = 'd3e0f1a2-5b6c-4d7e-8f90-a1b2c3d4e5f6';

export const DEMO_VERIFIER: NewVerifier & { id: string } = {
  id: DEMO_VERIFIER_ID,
  legalName: 'デモ検証サービス株式会社 (demo)',
  // A valid 法人番号 test vector (docs/NUMBERS.md), not a real registration.
  corporateNumber: '5835678256246',
  kinds: ['signatureVerifier', 'authVerifier'],
  contact: { name: 'デモ窓口', email: 'verifier@example.invalid', phone: '03-0000-0000' },
  agreementFrom: '2016-01-01',
  agreementUntil: null,
};

/**
 * Registers the demo verifier when missing and binds to it the named verifier credentials
 * that are not bound yet (actors created before verifiers existed).
 */
export async function ensureDemoVerifier(
  tx: Queryable,
  deps: { clock: Clock; audit: AuditLog; actors: ActorStore },
  actor: AuditActor,
  bind: readonly { name: string; type: string }[] = [],
): Promise<string> {
  const service = new VerifierService(deps.clock, deps.audit, deps.actors);
  if (!(await service.get(tx, DEMO_VERIFIER_ID))) {
    await service.register(tx, actor, DEMO_VERIFIER);
  }
  const names = bind.filter((a) => isVerifierKind(a.type)).map((a) => a.name);
  if (names.length > 0) {
    await tx.query(
      `UPDATE actors SET verifier_id = $1
        WHERE verifier_id IS NULL AND name = ANY ($2::text[])
          AND type IN ('signatureVerifier', 'authVerifier')`,
      [DEMO_VERIFIER_ID, names],
    );
  }
  return DEMO_VERIFIER_ID;
}
