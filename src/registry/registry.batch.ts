/**
 * Batch intake of 本人確認情報 change notifications: many notifications in one request,
 * applied all or nothing.
 *
 * The body streams in — NDJSON (one notification per line) or a JSON array — and is split
 * into items incrementally, each at most {@link BatchLimits.itemBytes}. The parsed items are
 * held (bounded by {@link BatchLimits.bodyBytes} and {@link BatchLimits.items}) so that a batch
 * made only of new records can be stored set-based (registry.bulk.ts: a handful of statements
 * for the whole batch, the same rows as below). Otherwise every item goes through
 * {@link RegistryService.submit} in body
 * order inside ONE transaction, so ordering, idempotency, validation, audit entries and
 * outbox events are exactly those of the single-notification route. Each item runs under a
 * savepoint: a refused item is rolled back to it and processing goes on, so that every bad
 * item is reported (items that depend on a refused one — a later sequence number of the same
 * municipality, a move of a person whose birth was refused — are refused as well, and
 * reported). If any item was refused the whole transaction is rolled back.
 */
import type { Readable } from 'node:stream';
import { checkScope } from '../platform/access.ts';
import type { Actor } from '../platform/actors.ts';
import type { AuditLog } from '../platform/audit.ts';
import type { Database, Tx } from '../platform/db.ts';
import { AppError, type FieldError, isAppError } from '../platform/errors.ts';
import type { Clock } from '../platform/clock.ts';
import { BulkIntake, type BulkLine } from './registry.bulk.ts';
import type { RegistryService } from './registry.service.ts';

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
  const fail = (line: number, code: string, errors: readonly FieldError[]): void => {
    report.failedLines++;
    for (const e of errors) {
      if (report.errors.length >= limits.errors) {
        report.truncated = true;
        break;
      }
      report.errors.push({ line, pointer: e.pointer, message: e.message, code });
    }
  };
  for await (const item of items) {
    report.lines++;
    if (report.results && report.lines > limits.results) report.results = null;
    if ('problem' in item) {
      fail(item.line, item.problem.code, [{ pointer: '/body', message: item.problem.message }]);
      if (item.fatal) break;
      continue;
    }
    let body: unknown;
    try {
      body = JSON.parse(item.text, rejectPrototypeKeys);
    } catch {
      // Never the parser's message: it quotes the text.
      fail(item.line, BATCH_ERROR.invalidJson, [
        { pointer: '/body', message: 'is not valid JSON' },
      ]);
      continue;
    }
    // Another municipality's notification is not looked at further: even its sequence
    // errors would tell the caller about that municipality.
    const scope = checkScope(actor, { municipalityCode: municipalityCodeOf(body) });
    if (!scope.ok) {
      report.denied ??= scope.code;
      fail(item.line, scope.code, [{ pointer: '/body/municipalityCode', message: scope.detail }]);
      continue;
    }
    await tx.query('SAVEPOINT batch_line');
    try {
      const result = await registry.submit(tx, actor, body, requestId);
      await tx.query('RELEASE SAVEPOINT batch_line');
      if (result.replay) report.replayed++;
      else report.accepted++;
      report.results?.push({
        line: item.line,
        residentCode: result.residentCode,
        version: result.version,
        replay: result.replay,
      });
    } catch (err) {
      if (!isAppError(err)) throw err;
      await tx.query('ROLLBACK TO SAVEPOINT batch_line');
      await tx.query('RELEASE SAVEPOINT batch_line');
      fail(item.line, err.code, err.errors ?? [{ pointer: '/body', message: err.detail }]);
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
  /** With a clock, batches of new records take the set-based path (registry.bulk.ts). */
  clock?: Clock;
}

/**
 * Reads every item (bounded by the batch limits) and tries the set-based path for new
 * records; on success fills `report` and returns true. Otherwise returns false with the items
 * read, for the per-line path; nothing has been written.
 */
async function tryBulk(
  bulk: BulkIntake,
  tx: Tx,
  actor: Actor,
  items: AsyncIterable<BatchItem>,
  requestId: string,
  limits: Pick<BatchLimits, 'results'>,
  report: BatchReport,
): Promise<{ done: true } | { done: false; items: BatchItem[] }> {
  const read: BatchItem[] = [];
  const lines: BulkLine[] = [];
  let usable = true;
  for await (const item of items) {
    read.push(item);
    if (!usable) continue;
    if ('problem' in item) {
      usable = false;
      continue;
    }
    try {
      lines.push({ line: item.line, body: JSON.parse(item.text, rejectPrototypeKeys) });
    } catch {
      usable = false;
    }
  }
  if (!usable) return { done: false, items: read };
  const accepted = await bulk.tryNewRecords(tx, actor, lines, requestId);
  if (!accepted) return { done: false, items: read };
  report.lines = read.length;
  report.accepted = accepted.length;
  report.results =
    read.length > limits.results ? null : accepted.map((a) => ({ ...a, replay: false }));
  return { done: true };
}

async function* replay(items: readonly BatchItem[]): AsyncIterable<BatchItem> {
  yield* items;
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
      const bulk = deps.clock
        ? await tryBulk(
            new BulkIntake(deps.clock, deps.audit),
            tx,
            actor,
            items,
            requestId,
            limits,
            report,
          )
        : null;
      if (!bulk?.done) {
        const rest = bulk ? replay(bulk.items) : items;
        await applyBatch(deps.registry, tx, actor, rest, requestId, limits, report);
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
