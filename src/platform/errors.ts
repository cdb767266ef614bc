/**
 * Errors are typed values with a closed set of kinds; only the HTTP edge turns them into
 * RFC 9457 `application/problem+json`. `detail` is written for the client and must never
 * carry a My Number, basic-4 data or internal text.
 */

export const ERROR_KINDS = {
  badRequest: 400,
  unauthorized: 401,
  forbidden: 403,
  notFound: 404,
  methodNotAllowed: 405,
  conflict: 409,
  gone: 410,
  payloadTooLarge: 413,
  unsupportedMediaType: 415,
  unprocessable: 422,
  tooManyRequests: 429,
  internal: 500,
  unavailable: 503,
} as const;

export type ErrorKind = keyof typeof ERROR_KINDS;

/** One problem with one part of the input, located by a JSON pointer (RFC 6901). */
export interface FieldError {
  pointer: string;
  message: string;
  line?: number;
}

export class AppError extends Error {
  readonly kind: ErrorKind;
  /** Stable, machine-readable code, e.g. `auth.token-missing`. Clients branch on this. */
  readonly code: string;
  /** Client-safe explanation. */
  readonly detail: string;
  readonly errors: FieldError[] | undefined;
  /** Extra client-safe members for the problem document. */
  readonly extensions: Record<string, unknown> | undefined;

  constructor(
    kind: ErrorKind,
    code: string,
    detail: string,
    options: { errors?: FieldError[]; extensions?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(`${code}: ${detail}`, options.cause === undefined ? {} : { cause: options.cause });
    this.name = 'AppError';
    this.kind = kind;
    this.code = code;
    this.detail = detail;
    this.errors = options.errors;
    this.extensions = options.extensions;
  }

  get status(): number {
    return ERROR_KINDS[this.kind];
  }
}

export const isAppError = (e: unknown): e is AppError => e instanceof AppError;

const TITLES: Record<ErrorKind, string> = {
  badRequest: 'Bad request',
  unauthorized: 'Authentication required',
  forbidden: 'Not permitted',
  notFound: 'Not found',
  methodNotAllowed: 'Method not allowed',
  conflict: 'Conflict',
  gone: 'Gone',
  payloadTooLarge: 'Request body too large',
  unsupportedMediaType: 'Unsupported media type',
  unprocessable: 'Unprocessable request',
  tooManyRequests: 'Too many requests',
  internal: 'Internal error',
  unavailable: 'Service unavailable',
};

export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  code: string;
  detail: string;
  instance?: string;
  requestId?: string;
  errors?: FieldError[];
  [extension: string]: unknown;
}

export function problemType(code: string): string {
  return `urn:kiban:problem:${code}`;
}

export function toProblem(err: AppError, requestId?: string): ProblemDocument {
  return {
    ...(err.extensions ?? {}),
    type: problemType(err.code),
    title: TITLES[err.kind],
    status: err.status,
    code: err.code,
    detail: err.detail,
    ...(requestId ? { requestId } : {}),
    ...(err.errors ? { errors: err.errors } : {}),
  };
}

/**
 * A log-safe view of any thrown value. PostgreSQL errors carry row values in `detail`,
 * `where` and friends — those can hold personal data and are dropped here.
 */
export function safeErrorForLog(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { type: typeof err };
  const e = err as Error & Record<string, unknown>;
  const out: Record<string, unknown> = { type: e.name, message: e.message };
  if (typeof e['code'] === 'string') out['code'] = e['code'];
  for (const k of ['constraint', 'table', 'column', 'routine', 'severity'] as const) {
    if (typeof e[k] === 'string') out[k] = e[k];
  }
  if (isAppError(err)) {
    out['kind'] = err.kind;
    out['message'] = err.code;
  } else if (typeof e['code'] === 'string' && /^[0-9A-Z]{5}$/.test(e['code'])) {
    // PostgreSQL error: keep the SQLSTATE and names, not message text that may quote values.
    out['message'] = `postgres error ${e['code']}`;
  } else if (e.stack) {
    out['stack'] = e.stack;
  }
  return out;
}
