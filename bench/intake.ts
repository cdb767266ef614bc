/**
 * Registry intake (本人確認情報の通知, 住基法第30条の6/第30条の7): identity-record
 * notifications per second through the batch API of a running `kiban start`
 * (`POST /v1/registry/notifications:batch`, NDJSON), new residents (職権記載) of one
 * municipality (then, reported in the detail, the same residents' address changes), on PGlite
 * and, with a database URL, PostgreSQL; projected to a national load of 124 million
 * notifications.
 *
 * The peer, in the same run and on the same engine, is the database's own ingest rate for the
 * same documents: each batch's lines inserted as jsonb rows with one multi-row INSERT into a
 * scratch table (no rules, no history, no audit, no events). The ratio says what the registry's
 * work costs over merely storing the notifications.
 *
 *   node --import tsx bench/intake.ts [--quick] [--batches N] [--batch-size N]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { benchRecord, drawResidents, postBatch } from './support/residents.ts';
import { type BenchResult, median, round } from './support/result.ts';
import { freshPostgresDatabase, startKiban } from './support/server.ts';

export interface IntakeOptions {
  quick: boolean;
  databaseUrl?: string;
  batches?: number;
  batchSize?: number;
}

const NATION = 124_000_000;

/** The peer's storage: a scratch table in a database of the same engine. */
interface Store {
  insert(lines: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

async function pgliteStore(): Promise<Store> {
  const dir = mkdtempSync(path.join(tmpdir(), 'kiban-bench-intake-peer-'));
  const db = new PGlite(dir);
  await db.exec('CREATE TABLE notifications (id bigserial PRIMARY KEY, body jsonb NOT NULL)');
  return {
    async insert(lines) {
      await db.query('INSERT INTO notifications (body) SELECT unnest($1::jsonb[])', [lines]);
    },
    async close() {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function postgresStore(url: string): Promise<Store> {
  const fresh = await freshPostgresDatabase(url, 'peer');
  const client = new pg.Client({ connectionString: fresh.url });
  await client.connect();
  await client.query('CREATE TABLE notifications (id bigserial PRIMARY KEY, body jsonb NOT NULL)');
  return {
    async insert(lines) {
      await client.query('INSERT INTO notifications (body) SELECT unnest($1::jsonb[])', [lines]);
    },
    async close() {
      await client.end();
      await fresh.drop();
    },
  };
}

export async function benchIntake(opts: IntakeOptions): Promise<BenchResult[]> {
  const batches = opts.batches ?? (opts.quick ? 2 : 3);
  const batchSize = opts.batchSize ?? (opts.quick ? 500 : 2000);
  const server = await startKiban(opts.databaseUrl ? { databaseUrl: opts.databaseUrl } : {});
  const peer = opts.databaseUrl ? await postgresStore(opts.databaseUrl) : await pgliteStore();
  try {
    // Codes and My Numbers first (not timed): what a municipality holds before it notifies.
    const drawn = await drawResidents(server, batches * batchSize);
    // For the rounds of two municipalities at once (at the end): more residents of 千代田区
    // and residents of a second municipality, 横浜市中区.
    const drawnMore = await drawResidents(server, batches * batchSize);
    const drawnElsewhere = await drawResidents(server, batches * batchSize, 'municipality2');
    const kiban: number[] = [];
    const theirs: number[] = [];
    let sequence = 1;
    /** Batch `b`'s notifications: its residents' records, `address` overriding theirs. */
    const batchLines = (
      b: number,
      changeReason: string,
      changeDate: string,
      address?: (j: number) => string,
    ) =>
      drawn.slice(b * batchSize, (b + 1) * batchSize).map((d, j) => ({
        municipalityCode: '131016',
        sequence: sequence++,
        changeReason,
        changeDate,
        record: {
          ...benchRecord(b * batchSize + j, d.residentCode, d.myNumber),
          ...(address ? { address: address(j) } : {}),
        },
      }));
    for (let b = 0; b < batches; b++) {
      const lines = batchLines(b, 'officialEntry', '2026-01-05');
      const texts = lines.map((l) => JSON.stringify(l));
      // Alternate which side goes first.
      const ours = async (): Promise<void> => {
        const t0 = performance.now();
        const r = await postBatch(server, lines);
        if (r.accepted !== lines.length) throw new Error(`batch accepted ${r.accepted}`);
        kiban.push(lines.length / ((performance.now() - t0) / 1000));
      };
      const store = async (): Promise<void> => {
        const t0 = performance.now();
        await peer.insert(texts);
        theirs.push(lines.length / ((performance.now() - t0) / 1000));
      };
      if (b % 2 === 0) {
        await ours();
        await store();
      } else {
        await store();
        await ours();
      }
    }
    // The same residents' address changes (転居, moveWithin), batch by batch: the day-to-day
    // traffic after a first load. Reported in the detail; the target is on first records.
    const moves: number[] = [];
    for (let b = 0; b < batches; b++) {
      const lines = batchLines(
        b,
        'moveWithin',
        '2026-02-01',
        (j) => `東京都千代田区丸の内${(j % 3) + 1}丁目${(j % 97) + 1}番`,
      );
      const t0 = performance.now();
      const r = await postBatch(server, lines);
      if (r.accepted !== lines.length) throw new Error(`move batch accepted ${r.accepted}`);
      moves.push(lines.length / ((performance.now() - t0) / 1000));
    }
    // Two municipalities at once (intake partitioned, as the nation's 1,741 send), each round
    // one batch of new residents from each in parallel; the combined rate. Distinct basic data
    // (the i-th synthetic person), so no double registration is found between them.
    const parallel: number[] = [];
    const sequences = { '131016': sequence, '141046': 1 };
    const newResidents = (
      code: '131016' | '141046',
      drawnHere: readonly { residentCode: string; myNumber: string }[],
      b: number,
      offset: number,
      address: (j: number) => string,
    ) =>
      drawnHere.slice(b * batchSize, (b + 1) * batchSize).map((d, j) => ({
        municipalityCode: code,
        sequence: sequences[code]++,
        changeReason: 'officialEntry',
        changeDate: '2026-01-05',
        record: {
          ...benchRecord(offset + b * batchSize + j, d.residentCode, d.myNumber),
          address: address(j),
        },
      }));
    for (let b = 0; b < batches; b++) {
      const here = newResidents(
        '131016',
        drawnMore,
        b,
        batches * batchSize,
        (j) => benchRecord(j, '', '').address,
      );
      const there = newResidents(
        '141046',
        drawnElsewhere,
        b,
        2 * batches * batchSize,
        (j) => `神奈川県横浜市中区港町${(j % 5) + 1}丁目${(j % 97) + 1}番地`,
      );
      const t0 = performance.now();
      const answers = await Promise.all([
        postBatch(server, here),
        postBatch(server, there, 'municipality2'),
      ]);
      if (answers.some((a) => a.accepted !== batchSize)) throw new Error('parallel batch refused');
      parallel.push((2 * batchSize) / ((performance.now() - t0) / 1000));
    }
    const rate = median(kiban);
    const peerRate = median(theirs);
    const engine = server.engine;
    const want = engine === 'postgres' ? 20_000 : 5_000;
    return [
      {
        name: `intake-${engine}`,
        unit: 'notifications/s',
        kiban: round(rate),
        peer: round(peerRate),
        ratio: round(rate / peerRate),
        target: `>= ${want.toLocaleString('en')} notifications/s on ${engine}`,
        met: rate >= want,
        detail:
          `${batches} batches of ${batchSize} new residents (officialEntry) through ` +
          `POST /v1/registry/notifications:batch (NDJSON), median of the batches; peer: the same ` +
          `lines as jsonb rows in one INSERT per batch, same engine; 124 million notifications ` +
          `would take ${round(NATION / rate / 3600)} h at this rate (${round(NATION / peerRate / 3600)} h ` +
          `for the bare inserts); per batch ${kiban.map((k) => round(k)).join(', ')}/s — the first ` +
          `batch meets no backlog, later ones share the database with the outbox consumers ` +
          `working through the events of the earlier ones; then the same residents' address ` +
          `changes (moveWithin), ${batches} batches of ${batchSize}: median ` +
          `${round(median(moves))}/s (per batch ${moves.map((m) => round(m)).join(', ')}/s); ` +
          `two municipalities at once (a batch of new residents from 千代田区 beside one from ` +
          `横浜市中区, ${batches} rounds): median ` +
          `${round(median(parallel))}/s combined (per round ${parallel.map((p) => round(p)).join(', ')}/s)`,
        parallel: { clients: 2, kiban: round(median(parallel)) },
      },
    ];
  } finally {
    await peer.close();
    await server.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      batches: { type: 'string' },
      'batch-size': { type: 'string' },
    },
  });
  const results = await benchIntake({
    quick: values.quick ?? false,
    ...(process.env['DATABASE_URL'] ? { databaseUrl: process.env['DATABASE_URL'] } : {}),
    ...(values.batches ? { batches: Number(values.batches) } : {}),
    ...(values['batch-size'] ? { batchSize: Number(values['batch-size']) } : {}),
  });
  console.log(JSON.stringify(results, null, 2));
}
