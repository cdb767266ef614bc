/**
 * Batch routes answer every item on its own, as the single route would have: the item's
 * result carries the single route's status and, for a refusal, what its problem document
 * would have said (code, detail, field errors) without the envelope.
 */
import { type TArray, type TProperties, type TSchema, Type } from '@sinclair/typebox';
import type { AppError, FieldError } from './errors.ts';

/** Items in one batch request at most, on every batch route. */
export const BATCH_ITEM_LIMIT = 1000;

/** The body of a batch route: `{[field]: [item, …]}`, 1 to {@link BATCH_ITEM_LIMIT} items. */
export function batchBody<K extends string, T extends TSchema>(
  field: K,
  item: T,
  description: string,
) {
  const items = Type.Array(item, { minItems: 1, maxItems: BATCH_ITEM_LIMIT, description });
  return Type.Object({ [field]: items } as { [F in K]: TArray<T> }, {
    additionalProperties: false,
  });
}

const REFUSAL_FIELDS = {
  code: Type.Optional(Type.String({ description: 'why this item was refused' })),
  detail: Type.Optional(Type.String()),
  errors: Type.Optional(
    Type.Array(
      Type.Object(
        { pointer: Type.String(), message: Type.String() },
        { additionalProperties: false },
      ),
    ),
  ),
};

/** The schema of one item's result: `status`, the success fields, or the refusal's. */
export function batchItemResult<P extends TProperties>(
  singleRoute: string,
  item: string,
  success: P,
) {
  return Type.Object(
    {
      status: Type.Integer({
        description: `what ${singleRoute} would have answered for this ${item}`,
      }),
      ...success,
      ...REFUSAL_FIELDS,
    },
    { additionalProperties: false },
  );
}

export interface RefusedItem {
  status: number;
  code: string;
  detail: string;
  errors?: Pick<FieldError, 'pointer' | 'message'>[];
}

/** A refused item's result: the single route's problem, without the envelope. */
export function refusedItem(e: AppError): RefusedItem {
  return {
    status: e.status,
    code: e.code,
    detail: e.detail,
    ...(e.errors ? { errors: e.errors.map(({ pointer, message }) => ({ pointer, message })) } : {}),
  };
}
