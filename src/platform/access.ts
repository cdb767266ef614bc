/**
 * Who may call a route. Every route declares an {@link AccessRule}; the HTTP edge refuses to
 * register a route without one and enforces it before the handler runs.
 */
import type { Actor, ActorType, OperatorRole } from './actors.ts';

/** An actor type, or agency operators holding at least one of the given roles. */
export type ActorGrant = ActorType | { type: 'agencyOperator'; roles: readonly OperatorRole[] };

/** Which municipality / prefecture a request acts for, read from the validated request. */
export interface RequestScope {
  municipalityCode?: string | undefined;
  prefectureCode?: string | undefined;
}

export type AccessRule =
  | { public: true; why: string }
  | {
      public?: false;
      grants: readonly ActorGrant[];
      /**
       * Reads the municipality (or prefecture) the request acts for. A municipality actor may
       * only act for its own code; a prefecture actor only for its own prefecture.
       */
      scope?: (request: { params: unknown; body: unknown; query: unknown }) => RequestScope;
    };

export const anyActor: readonly ActorGrant[] = [
  'agencyOperator',
  'prefecture',
  'municipality',
  'nationalAgency',
  'signatureVerifier',
  'organisationalSignatureVerifier',
  'authVerifier',
  'resident',
];

export function grantAllows(grant: ActorGrant, actor: Actor): boolean {
  if (typeof grant === 'string') return grant === actor.type;
  return actor.type === 'agencyOperator' && grant.roles.some((r) => actor.roles.includes(r));
}

export type ScopeDecision = { ok: true } | { ok: false; code: string; detail: string };

/** Checks that an actor acts only for its own municipality or prefecture. */
export function checkScope(actor: Actor, scope: RequestScope): ScopeDecision {
  if (actor.type === 'municipality') {
    if (scope.municipalityCode !== undefined && scope.municipalityCode !== actor.municipalityCode) {
      return {
        ok: false,
        code: 'auth.other-municipality',
        detail: 'a municipality may act only for itself',
      };
    }
    if (scope.prefectureCode !== undefined && scope.prefectureCode !== actor.prefectureCode) {
      return {
        ok: false,
        code: 'auth.other-prefecture',
        detail: 'a municipality may act only within its own prefecture',
      };
    }
  }
  if (actor.type === 'prefecture') {
    const pref = scope.prefectureCode ?? scope.municipalityCode?.slice(0, 2);
    if (pref !== undefined && pref !== actor.prefectureCode) {
      return {
        ok: false,
        code: 'auth.other-prefecture',
        detail: 'a prefecture may act only for itself and its municipalities',
      };
    }
  }
  return { ok: true };
}

export function describeRule(rule: AccessRule): string {
  if (rule.public) return 'public';
  return rule.grants
    .map((g) => (typeof g === 'string' ? g : `agencyOperator(${g.roles.join('|')})`))
    .join(', ');
}
