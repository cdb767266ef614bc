/** Schemas shared by every route that takes a holder proof (resident login, consent). */
import { Type } from '@sinclair/typebox';

/** Base64 text of at most `maxLength` characters (a DER certificate, a signature). */
export const Base64 = (maxLength: number, description?: string) =>
  Type.String({
    minLength: 4,
    maxLength,
    pattern: '^[A-Za-z0-9+/]+={0,2}$',
    ...(description ? { description } : {}),
  });

/** A challenge as issued: sign challengeMessage(purpose, challengeId, nonce, statement). */
export const ChallengeView = Type.Object(
  {
    challengeId: Type.String(),
    nonce: Type.String({ description: 'base64 of 32 random bytes' }),
    expiresAt: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: false },
);
