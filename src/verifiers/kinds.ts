/**
 * Verifier kinds and the rule deciding whether a verifier may be served now. Kept free of
 * database access so that the actor lookup (src/platform/actors.ts) can apply it to the row it
 * already joined, at no extra query.
 *
 * - 署名検証者 (公的個人認証法 第17条第1項各号) → `signatureVerifier`;
 * - 団体署名検証者 (署名検証者等 of 第17条第4項, organisations verifying for their members)
 *   → `organisationalSignatureVerifier`;
 * - 利用者証明検証者 (第36条) → `authVerifier`.
 */
import { AppError } from '../platform/errors.ts';

export const VERIFIER_KINDS = [
  'signatureVerifier',
  'organisationalSignatureVerifier',
  'authVerifier',
] as const;
export type VerifierKind = (typeof VERIFIER_KINDS)[number];

export const isVerifierKind = (v: string): v is VerifierKind =>
  (VERIFIER_KINDS as readonly string[]).includes(v);

export const VERIFIER_STATUSES = ['active', 'suspended', 'ended'] as const;
export type VerifierStatus = (typeof VERIFIER_STATUSES)[number];

/** Why a verifier credential may not be served now; each is a 403 problem code. */
export type VerifierRefusal =
  | 'verifier.not-registered'
  | 'verifier.suspended'
  | 'verifier.ended'
  | 'verifier.outside-agreement';

/** What the rule needs to know of a verifier: its status and agreement dates (JST, inclusive). */
export interface VerifierStanding {
  status: string;
  agreementFrom: string;
  agreementUntil: string | null;
}

const JST_OFFSET_MS = 9 * 3600e3;

/** The calendar date in Japan (JST, UTC+9, no DST) of an instant, as YYYY-MM-DD. */
export function jstDay(at: Date): string {
  return new Date(at.getTime() + JST_OFFSET_MS).toISOString().slice(0, 10);
}

/**
 * Whether a verifier may be served on `today` (JST date): null when it may, else the refusal.
 * A verifier-kind credential bound to no verifier (`null`) is `verifier.not-registered`.
 * Order: ended, suspended, then the agreement dates.
 */
export function verifierRefusal(v: VerifierStanding | null, today: string): VerifierRefusal | null {
  if (!v) return 'verifier.not-registered';
  if (v.status === 'ended') return 'verifier.ended';
  if (v.status !== 'active') return 'verifier.suspended';
  if (today < v.agreementFrom) return 'verifier.outside-agreement';
  if (v.agreementUntil !== null && today > v.agreementUntil) return 'verifier.outside-agreement';
  return null;
}

const REFUSAL_DETAIL: Record<VerifierRefusal, string> = {
  'verifier.not-registered':
    'this credential is not bound to a registered verifier (署名検証者等 / 利用者証明検証者)',
  'verifier.suspended': 'the verifier this credential acts for is suspended',
  'verifier.ended': 'the verifier this credential acts for has ended its registration',
  'verifier.outside-agreement':
    'the verifier this credential acts for is outside the dates of its agreement',
};

/** The 403 for a refusal (the edge turns it into problem+json). */
export function verifierRefusalError(code: VerifierRefusal): AppError {
  return new AppError('forbidden', code, REFUSAL_DETAIL[code]);
}
