/**
 * Batch intake of 本人確認情報 change notifications: many notifications in one request,
 * applied all or nothing.
 *
 * The body streams in — NDJSON (one notification per line) or a JSON array — and is split
 * into items incrementally, each at most {@link BatchLimits.itemBytes}. Every item is applied
 * as {@link RegistryService.submit} would apply it, in body order inside ONE transaction, so
 * ordering, idempotency, validation, audit entries and outbox events are exactly those of the
 * single-notification route. A refused item writes nothing and processing goes on, so that
 * every bad item is reported (items that depend on a refused one — a later sequence number of
 * the same municipality, a move of a person whose birth was refused — are refused as well, and
 * reported). If any item was refused the whole transaction is rolled back.
 *
 * Two paths give that outcome:
 * - set-based ({@link applyBatchSetBased}, the route's): the items are held (bounded by
 *   {@link BatchLimits.bodyBytes} and {@link BatchLimits.items}) and decided line by line in
 *   memory against what a handful of queries read up front, then stored with one statement
 *   per table (registry.bulk.ts); a residentCodeChange goes through `submit` between runs;
 * - per-line ({@link applyBatch}): every item through `submit` as it arrives, each under a
 *   savepoint that a refusal rolls back to.
 */
import type { Readable } from 'node:stream';
import { checkScope } from '../platform/access.ts';
import type { Actor } from '../platform/actors.ts';
import type { AuditLog } from '../platform/audit.ts';
import type { Database, Tx } from '../platform/db.ts';
import { AppError, type FieldError, isAppError } from '../platform/errors.ts';
import type { Clock } from '../platform/clock.ts';
import { BulkIntake, type BulkLine, isResidentCodeChange } from './registry.bulk.ts';
import type { RegistryService, SubmitResult } from './registry.service.ts';

export interface BatchLimits {
  /** Largest request body in bytes, counted as it streams in. */
  bodyBytes: number;
  /** Longest NDJSON line or JSON-array element in bytes (line break excluded). */
  itemBytes: number;
  /** Most NDJSON lines (blank ones included) or JSON-array elements. */
  items: number;
  /** Most per-item errors listed in a rejection; `failedLines` always counts them all. */
  errors: number;
  /** A batch of at most this many notifications gets a per-line result list. */
  results: number;
}

/**
 * A batch is one transaction that holds the audit-chain head and the municipality's sequence
 * lock until it commits, so its size bounds how long other audited writes wait. 50,000 lines
 * (minutes, not hours) keeps that bounded; larger loads are sent as consecutive batches.
 */
export const DEFAULT_BATCH_LIMITS: BatchLimits = {
  bodyBytes: 64 * 1024 * 1024,
  itemBytes: 64 * 1024,
  items: 50_000,
  errors: 1000,
  results: 1000,
};

export type BatchFormat = 'ndjson' | 'json';

/**
 * The request body of a batch as the content-type parser hands it over: the raw stream,
 * not yet read.
 */
export class StreamedBatch {
  /** Set once the stream has been read to its end. */
  finished = false;
  constructor(
    readonly format: BatchFormat,
    readonly stream: Readable,
  ) {}
}

/** One item of a batch: its text, or why it cannot be read. `line` counts from 1. */
export type BatchItem =
  { line: number; text: string } | { line: number; problem: ItemProblem; fatal?: boolean };

interface ItemProblem {
  code: string;
  message: string;
}

/** One refused item; `pointer` is relative to the item, as on the single route (`/body…`). */
export interface BatchLineError {
  line: number;
  pointer: string;
  message: string;
  code: string;
}

export interface BatchLineResult {
  line: number;
  residentCode: string;
  version: number;
  replay: boolean;
}

export interface BatchReport {
  /** Items read (non-blank NDJSON lines, or array elements). */
  lines: number;
  /** Items stored as a new version. */
  accepted: number;
  /** Items that were identical replays of already accepted notifications. */
  replayed: number;
  /** Per-item results, while there are at most {@link BatchLimits.results} items. */
  results: BatchLineResult[] | null;
  failedLines: number;
  errors: BatchLineError[];
  truncated: boolean;
  /** The scope code of the first item for another municipality or prefecture, if any. */
  denied: string | null;
}

export const BATCH_ERROR = {
  invalidJson: 'registry.batch-invalid-json',
  lineTooLong: 'registry.batch-line-too-long',
  malformed: 'registry.batch-malformed',
  tooManyLines: 'registry.batch-too-many-lines',
  empty: 'registry.batch-empty',
  rejected: 'registry.batch-rejected',
} as const;

const tooLarge = (limit: number): AppError =>
  new AppError('payloadTooLarge', 'request.too-large', `a batch is at most ${limit} bytes`);

/**
 * The stream's chunks, refusing the request once more than `maxBytes` have arrived. Stopping
 * early leaves the stream undestroyed (the socket must survive to carry the answer).
 */
export async function* limitedChunks(
  batch: StreamedBatch,
  maxBytes: number,
): AsyncGenerator<Buffer> {
  let total = 0;
  for await (const chunk of batch.stream.iterator({ destroyOnReturn: false })) {
    const buf: Buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    total += buf.length;
    if (total > maxBytes) throw tooLarge(maxBytes);
    yield buf;
  }
  batch.finished = true;
}

/** Collects one item's bytes up to a limit; past it, only remembers that it was too long. */
class ItemBuffer {
  private parts: Buffer[] = [];
  private size = 0;
  tooLong = false;
  constructor(private readonly limit: number) {}
  get empty(): boolean {
    return this.size === 0 && !this.tooLong;
  }
  append(bytes: Buffer): void {
    if (this.tooLong || bytes.length === 0) return;
    this.size += bytes.length;
    if (this.size > this.limit) {
      this.tooLong = true;
      this.parts = [];
    } else {
      this.parts.push(bytes);
    }
  }
  take(): Buffer {
    const out = this.parts.length === 1 ? (this.parts[0] as Buffer) : Buffer.concat(this.parts);
    this.parts = [];
    this.size = 0;
    this.tooLong = false;
    return out;
  }
}

const decoder = new TextDecoder('utf-8', { fatal: true });

function decodeItem(bytes: Buffer, line: number): BatchItem {
  try {
    // The decoder drops a leading byte-order mark.
    return { line, text: decoder.decode(bytes) };
  } catch {
    return { line, problem: { code: BATCH_ERROR.invalidJson, message: 'is not valid UTF-8' } };
  }
}

const lineTooLong = (limit: number): ItemProblem => ({
  code: BATCH_ERROR.lineTooLong,
  message: `is longer than ${limit} bytes`,
});

const tooManyLines = (limit: number): AppError =>
  new AppError('payloadTooLarge', BATCH_ERROR.tooManyLines, `a batch has at most ${limit} lines`);

/**
 * NDJSON items: one per line (LF or CRLF). Blank lines are skipped but counted, so `line` is
 * the line number a text editor shows.
 */
export async function* ndjsonItems(
  chunks: AsyncIterable<Buffer>,
  limits: Pick<BatchLimits, 'itemBytes' | 'items'>,
): AsyncGenerator<BatchItem> {
  const buffer = new ItemBuffer(limits.itemBytes + 1); // room for a CR before the LF
  let line = 0;
  const finishLine = (): BatchItem | null => {
    line++;
    if (line > limits.items) throw tooManyLines(limits.items);
    if (buffer.tooLong) {
      buffer.take();
      return { line, problem: lineTooLong(limits.itemBytes) };
    }
    let bytes = buffer.take();
    if (bytes.length > 0 && bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, -1);
    if (bytes.length > limits.itemBytes) return { line, problem: lineTooLong(limits.itemBytes) };
    const item = decodeItem(bytes, line);
    return 'text' in item && item.text.trim() === '' ? null : item;
  };
  for await (const chunk of chunks) {
    let pos = 0;
    while (pos < chunk.length) {
      const nl = chunk.indexOf(0x0a, pos);
      buffer.append(chunk.subarray(pos, nl === -1 ? chunk.length : nl));
      if (nl === -1) break;
      pos = nl + 1;
      const item = finishLine();
      if (item) yield item;
    }
  }
  // A last line without a line break.
  if (!buffer.empty) {
    const item = finishLine();
    if (item) yield item;
  }
}

const UTF8_BOM = [0xef, 0xbb, 0xbf];

const isJsonSpace = (b: number): boolean => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;

/**
 * JSON-array items: the elements of one top-level array, found by a scanner that follows
 * strings (with escapes) and bracket depth. `line` is the element's position, from 1. Each
 * element is parsed on its own, so a malformed element is reported and the next one is read
 * on; a break in the array's own structure (no `[`, a missing `,`, an unclosed array, text
 * after the `]`) ends the batch with a fatal item.
 */
export async function* jsonArrayItems(
  chunks: AsyncIterable<Buffer>,
  limits: Pick<BatchLimits, 'itemBytes' | 'items'>,
): AsyncGenerator<BatchItem> {
  type State = 'start' | 'first' | 'next' | 'element' | 'end';
  // Widened on purpose: the checker does not follow the assignments inside the loop.
  let state = 'start' as State;
  let index = 0;
  let depth = 0;
  let inString = false;
  let escaped = false;
  let at = 0; // bytes seen, for the byte-order mark
  const buffer = new ItemBuffer(limits.itemBytes);
  const fatal = (line: number, message: string): BatchItem => ({
    line,
    problem: { code: BATCH_ERROR.malformed, message },
    fatal: true,
  });
  const finishElement = (): BatchItem =>
    buffer.tooLong
      ? (buffer.take(), { line: index, problem: lineTooLong(limits.itemBytes) })
      : decodeItem(buffer.take(), index);

  for await (const chunk of chunks) {
    let start = state === 'element' ? 0 : -1;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i] as number;
      switch (state) {
        case 'start':
          if (b === 0x5b) state = 'first';
          else if (!isJsonSpace(b) && !(at + i < 3 && b === UTF8_BOM[at + i])) {
            yield fatal(1, 'the body must be a JSON array');
            return;
          }
          break;
        case 'first':
        case 'next':
          if (isJsonSpace(b)) break;
          if (b === 0x5d) {
            if (state === 'next') {
              yield fatal(index + 1, 'expected an element after the comma');
              return;
            }
            state = 'end';
            break;
          }
          index++;
          if (index > limits.items) throw tooManyLines(limits.items);
          state = 'element';
          depth = 0;
          inString = false;
          escaped = false;
          start = i;
          i--; // scan this byte as part of the element
          break;
        case 'element':
          if (inString) {
            if (escaped) escaped = false;
            else if (b === 0x5c) escaped = true;
            else if (b === 0x22) inString = false;
          } else if (b === 0x22) {
            inString = true;
          } else if (b === 0x7b || b === 0x5b) {
            depth++;
          } else if ((b === 0x2c || b === 0x5d) && depth === 0) {
            buffer.append(chunk.subarray(start, i));
            start = -1;
            state = b === 0x2c ? 'next' : 'end';
            yield finishElement();
          } else if ((b === 0x7d || b === 0x5d) && depth > 0) {
            depth--;
          }
          break;
        case 'end':
          if (!isJsonSpace(b)) {
            yield fatal(index + 1, 'unexpected text after the closing bracket');
            return;
          }
          break;
      }
    }
    if (state === 'element' && start >= 0) buffer.append(chunk.subarray(start));
    at += chunk.length;
  }
  if (state === 'start') yield fatal(1, 'the body must be a JSON array');
  else if (state !== 'end') {
    yield fatal(state === 'element' ? index : index + 1, 'the array is not closed');
  }
}

/** `JSON.parse` reviver with the edge's protection against prototype poisoning. */
function rejectPrototypeKeys(key: string, value: unknown): unknown {
  if (
    key === '__proto__' ||
    (key === 'constructor' && value !== null && typeof value === 'object' && 'prototype' in value)
  ) {
    throw new SyntaxError('forbidden key');
  }
  return value;
}

const municipalityCodeOf = (body: unknown): string | undefined =>
  body !== null &&
  typeof body === 'object' &&
  'municipalityCode' in body &&
  typeof body.municipalityCode === 'string'
    ? body.municipalityCode
    : undefined;

export function emptyReport(): BatchReport {
  return {
    lines: 0,
    accepted: 0,
    replayed: 0,
    results: [],
    failedLines: 0,
    errors: [],
    truncated: false,
    denied: null,
  };
}

/** Counts one more item; past the limit, the per-line results are dropped. */
function countLine(report: BatchReport, limits: Pick<BatchLimits, 'results'>): void {
  report.lines++;
  if (report.results && report.lines > limits.results) report.results = null;
}

/** Records a refused item and its errors (the list is capped; `failedLines` is not). */
function recordRefusal(
  report: BatchReport,
  limits: Pick<BatchLimits, 'errors'>,
  line: number,
  code: string,
  errors: readonly FieldError[],
): void {
  report.failedLines++;
  for (const e of errors) {
    if (report.errors.length >= limits.errors) {
      report.truncated = true;
      break;
    }
    report.errors.push({ line, pointer: e.pointer, message: e.message, code });
  }
}

const recordError = (
  report: BatchReport,
  limits: Pick<BatchLimits, 'errors'>,
  line: number,
  err: AppError,
): void =>
  recordRefusal(
    report,
    limits,
    line,
    err.code,
    err.errors ?? [{ pointer: '/body', message: err.detail }],
  );

function recordResult(report: BatchReport, line: number, result: SubmitResult): void {
  if (result.replay) report.replayed++;
  else report.accepted++;
  report.results?.push({
    line,
    residentCode: result.residentCode,
    version: result.version,
    replay: result.replay,
  });
}

/** An item refused before the registry looks at it. */
interface ItemRefusal {
  line: number;
  code: string;
  errors: FieldError[];
  /** The scope code, when the item is for a municipality outside the actor's scope. */
  denied?: string;
  /** The body's structure is broken: no item follows. */
  fatal?: boolean;
}

/**
 * The checks made before the registry sees an item: it was read, it is JSON, and it is for a
 * municipality in the actor's scope. Another municipality's notification is not looked at
 * further: even its sequence errors would tell the caller about that municipality.
 */
function screen(actor: Actor, item: BatchItem): BulkLine | ItemRefusal {
  if ('problem' in item) {
    return {
      line: item.line,
      code: item.problem.code,
      errors: [{ pointer: '/body', message: item.problem.message }],
      ...(item.fatal ? { fatal: true } : {}),
    };
  }
  let body: unknown;
  try {
    body = JSON.parse(item.text, rejectPrototypeKeys);
  } catch {
    // Never the parser's message: it quotes the text.
    return {
      line: item.line,
      code: BATCH_ERROR.invalidJson,
      errors: [{ pointer: '/body', message: 'is not valid JSON' }],
    };
  }
  const scope = checkScope(actor, { municipalityCode: municipalityCodeOf(body) });
  if (!scope.ok) {
    return {
      line: item.line,
      code: scope.code,
      errors: [{ pointer: '/body/municipalityCode', message: scope.detail }],
      denied: scope.code,
    };
  }
  return { line: item.line, body };
}

function recordItemRefusal(
  report: BatchReport,
  limits: Pick<BatchLimits, 'errors'>,
  refusal: ItemRefusal,
): void {
  if (refusal.denied) report.denied ??= refusal.denied;
  recordRefusal(report, limits, refusal.line, refusal.code, refusal.errors);
}

/**
 * One notification through `registry.submit` under a savepoint: a refusal rolls back what the
 * line wrote and is recorded; the transaction stays usable.
 */
async function submitLine(
  registry: Pick<RegistryService, 'submit'>,
  tx: Tx,
  actor: Actor,
  { line, body }: BulkLine,
  requestId: string,
  limits: Pick<BatchLimits, 'errors'>,
  report: BatchReport,
): Promise<void> {
  await tx.query('SAVEPOINT batch_line');
  try {
    const result = await registry.submit(tx, actor, body, requestId);
    await tx.query('RELEASE SAVEPOINT batch_line');
    recordResult(report, line, result);
  } catch (err) {
    if (!isAppError(err)) throw err;
    await tx.query('ROLLBACK TO SAVEPOINT batch_line');
    await tx.query('RELEASE SAVEPOINT batch_line');
    recordError(report, limits, line, err);
  }
}

/**
 * Applies every item through `registry.submit` inside `tx`, each under a savepoint, and
 * records the outcome in `report` (which is complete even when this throws part-way).
 * Items for a municipality outside the actor's scope are refused without being looked at.
 */
export async function applyBatch(
  registry: Pick<RegistryService, 'submit'>,
  tx: Tx,
  actor: Actor,
  items: AsyncIterable<BatchItem>,
  requestId: string,
  limits: Pick<BatchLimits, 'errors' | 'results'>,
  report: BatchReport,
): Promise<void> {
  for await (const item of items) {
    countLine(report, limits);
    const screened = screen(actor, item);
    if ('code' in screened) {
      recordItemRefusal(report, limits, screened);
      if (screened.fatal) break;
      continue;
    }
    await submitLine(registry, tx, actor, screened, requestId, limits, report);
  }
}

/**
 * The items of a set-based batch, cut into runs: each run of notifications is decided and
 * stored set-based, and the line that ends it (a residentCodeChange) goes through
 * `registry.submit`.
 */
interface Run {
  /** The run's items in line order: refused ones, and notifications for the set-based path. */
  items: (BulkLine | ItemRefusal)[];
  /** The line after the run that takes the per-line path, if any. */
  perLine: BulkLine | null;
}

function runsOf(screened: readonly (BulkLine | ItemRefusal)[]): Run[] {
  let run: Run = { items: [], perLine: null };
  const runs = [run];
  for (const s of screened) {
    if ('code' in s || !isResidentCodeChange(s.body)) {
      run.items.push(s);
      continue;
    }
    run.perLine = s;
    run = { items: [], perLine: null };
    runs.push(run);
  }
  return runs;
}

/**
 * Applies items already read, with the outcome {@link applyBatch} would give them: the same
 * results, refusals (codes, pointers, messages, order) and — when it commits — the same rows,
 * events and audit entries. Runs of notifications are decided and stored set-based
 * (registry.bulk.ts); a residentCodeChange goes through `registry.submit` between two runs.
 *
 * `doomed`: the transaction will be rolled back whatever happens (the body broke off after
 * these items), so, like a batch with a refused line, a run need not be stored unless a
 * per-line line after it must see its rows.
 */
export async function applyBatchSetBased(
  bulk: BulkIntake,
  registry: Pick<RegistryService, 'submit'>,
  tx: Tx,
  actor: Actor,
  items: readonly BatchItem[],
  requestId: string,
  limits: Pick<BatchLimits, 'errors' | 'results'>,
  report: BatchReport,
  doomed = false,
): Promise<void> {
  const fatal = items.findIndex((i) => 'problem' in i && i.fatal);
  const screened = (fatal < 0 ? items : items.slice(0, fatal + 1)).map((i) => screen(actor, i));
  const lines = screened.filter((s): s is BulkLine => !('code' in s));
  await bulk.lockStreams(
    tx,
    lines.map((l) => l.body),
  );
  const runs = runsOf(screened);
  if (runs.some((r) => r.perLine !== null)) {
    await bulk.lockAheadOfRuns(
      tx,
      lines.map((l) => l.body),
    );
  }
  for (const run of runs) {
    const decided = run.items.filter((s): s is BulkLine => !('code' in s));
    const plan = decided.length > 0 ? await bulk.decide(tx, actor, decided, requestId) : null;
    let next = 0;
    for (const s of run.items) {
      countLine(report, limits);
      if ('code' in s) {
        recordItemRefusal(report, limits, s);
        continue;
      }
      const outcome = plan?.outcomes[next++];
      if (!outcome) throw new Error('set-based intake: a line without an outcome');
      if (outcome.ok) recordResult(report, s.line, outcome.result);
      else recordError(report, limits, s.line, outcome.error);
    }
    const rolledBack = doomed || report.failedLines > 0;
    if (plan && (run.perLine || !rolledBack)) await bulk.store(tx, actor, plan);
    if (run.perLine) {
      countLine(report, limits);
      await submitLine(registry, tx, actor, run.perLine, requestId, limits, report);
    }
  }
}

/** Thrown inside the transaction to roll it back; carries the finished report out. */
class BatchRollback extends Error {
  constructor(readonly report: BatchReport) {
    super('batch rejected');
  }
}

export interface BatchIntakeDeps {
  db: Database;
  audit: AuditLog;
  registry: RegistryService;
  clock: Clock;
  /**
   * Applies every item through `registry.submit` as it arrives (each under a savepoint)
   * instead of the set-based path: the reference the set-based path is tested against
   * (test/registry-setbased.test.ts); the route never sets it.
   */
  perLine?: boolean;
}

/**
 * Every item of the body (bounded by the batch limits), and the error that broke the reading
 * off, if one did: the items before it are applied all the same, as the per-line path applies
 * each item as it arrives.
 */
async function readItems(
  items: AsyncIterable<BatchItem>,
): Promise<{ read: BatchItem[]; error: Error | null }> {
  const read: BatchItem[] = [];
  try {
    for await (const item of items) read.push(item);
    return { read, error: null };
  } catch (err) {
    const error =
      err instanceof Error ? err : new Error('the batch body could not be read', { cause: err });
    return { read, error };
  }
}

export interface BatchAccepted {
  lines: number;
  accepted: number;
  replayed: number;
  results?: BatchLineResult[];
}

const isAbort = (err: unknown): boolean =>
  err instanceof Error &&
  ['ECONNRESET', 'ERR_STREAM_PREMATURE_CLOSE'].includes((err as NodeJS.ErrnoException).code ?? '');

/**
 * Reads, applies and commits a batch, or rolls it back and throws: 422
 * `registry.batch-rejected` listing the refused items, 403 (the scope code) when any item
 * was for a municipality outside the actor's scope, 413 past a limit. A rejection is
 * audited outside the rolled-back transaction.
 */
export async function intakeBatch(
  deps: BatchIntakeDeps,
  actor: Actor,
  batch: StreamedBatch,
  requestId: string,
  limits: BatchLimits,
): Promise<BatchAccepted> {
  const report = emptyReport();
  const chunks = limitedChunks(batch, limits.bodyBytes);
  const items =
    batch.format === 'ndjson' ? ndjsonItems(chunks, limits) : jsonArrayItems(chunks, limits);
  const subject = actor.municipalityCode ?? actor.prefectureCode ?? undefined;
  const auditFailure = (reason: string): Promise<unknown> =>
    deps.db.transaction((tx) =>
      deps.audit.append(tx, actor, {
        action: 'registry.notifications.batch',
        subjectType: 'localGovernment',
        ...(subject ? { subject } : {}),
        outcome: 'failed',
        requestId,
        details: { lines: report.lines, failedLines: report.failedLines, reason },
      }),
    );
  try {
    await deps.db.transaction(async (tx) => {
      if (!deps.perLine) {
        const { read, error } = await readItems(items);
        const bulk = new BulkIntake(deps.clock, deps.audit);
        await applyBatchSetBased(
          bulk,
          deps.registry,
          tx,
          actor,
          read,
          requestId,
          limits,
          report,
          error !== null,
        );
        if (error !== null) throw error;
      } else {
        await applyBatch(deps.registry, tx, actor, items, requestId, limits, report);
      }
      if (report.failedLines > 0) throw new BatchRollback(report);
      if (report.lines === 0) {
        throw new AppError('badRequest', BATCH_ERROR.empty, 'the batch holds no notification');
      }
      await deps.audit.append(tx, actor, {
        action: 'registry.notifications.batch',
        subjectType: 'localGovernment',
        ...(subject ? { subject } : {}),
        requestId,
        details: { lines: report.lines, accepted: report.accepted, replayed: report.replayed },
      });
    });
  } catch (err) {
    if (err instanceof BatchRollback) {
      await auditFailure(report.denied ?? BATCH_ERROR.rejected);
      const extensions = {
        failedLines: report.failedLines,
        ...(report.truncated ? { truncated: true } : {}),
      };
      // Asking for another municipality is refused as such (and audited as a denial by the
      // edge); the list still names every refused line.
      throw report.denied
        ? new AppError(
            'forbidden',
            report.denied,
            'the batch holds notifications outside your scope',
            {
              errors: report.errors,
              extensions,
            },
          )
        : new AppError(
            'unprocessable',
            BATCH_ERROR.rejected,
            `${report.failedLines} of ${report.lines} lines were refused; nothing was stored`,
            { errors: report.errors, extensions },
          );
    }
    if (isAppError(err)) {
      await auditFailure(err.code);
      throw err;
    }
    if (isAbort(err)) {
      throw new AppError('badRequest', 'request.aborted', 'the request body ended early', {
        cause: err,
      });
    }
    throw err;
  }
  return {
    lines: report.lines,
    accepted: report.accepted,
    replayed: report.replayed,
    ...(report.results ? { results: report.results } : {}),
  };
}
