/**
 * My Number generation (個人番号の生成, 番号法第8条): My Numbers generated and stored per
 * second through a running `kiban start` (`POST /v1/numbering/my-numbers`, one resident code
 * per request as a municipality asks, eight in flight: FF1 over the resident code under the
 * agency's key, check digit, uniqueness, storage, audit), against the bare generator (the same
 * FF1 and check digit, in memory, no storage) for the same time. Reported with a projection to
 * numbering 124 million residents; the issue sets no target for it. Each round is followed
 * by one through `POST /v1/numbering/my-numbers:batch` (1,000 codes per request, two in
 * flight), reported as `my-number-generation-batch`.
 *
 *   node --import tsx bench/my-number.ts [--quick]
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { MyNumberGenerator } from '../src/numbering/numbering.service.ts';
import { pool } from './support/residents.ts';
import { type BenchResult, median, round } from './support/result.ts';
import { api, startKiban } from './support/server.ts';

export interface MyNumberOptions {
  quick: boolean;
  databaseUrl?: string;
}

const NATION = 124_000_000;
/** Resident codes per request on the batch route. */
const BATCH = 1000;

/** The bare generator: candidates per second for about `seconds` (codes as the pool makes). */
function bareRate(seconds: number, codes: readonly string[]): number {
  const g = new MyNumberGenerator(randomBytes(32));
  let n = 0;
  const t0 = performance.now();
  const until = t0 + seconds * 1000;
  while (performance.now() < until) {
    for (let i = 0; i < 100; i++) g.candidate(codes[(n + i) % codes.length]!, 0);
    n += 100;
  }
  return n / ((performance.now() - t0) / 1000);
}

export async function benchMyNumber(opts: MyNumberOptions): Promise<BenchResult[]> {
  const perRound = opts.quick ? 300 : 1000;
  const rounds = opts.quick ? 2 : 3;
  const perBatchRound = opts.quick ? 2000 : 5000;
  const server = await startKiban(opts.databaseUrl ? { databaseUrl: opts.databaseUrl } : {});
  try {
    const codes: string[] = [];
    const needed = (perRound + perBatchRound) * rounds;
    while (codes.length < needed) {
      const r = await api<{ residentCodes: string[] }>(
        server,
        'municipality',
        'POST',
        '/v1/registry/resident-codes',
        { count: Math.min(1000, needed - codes.length) },
      );
      codes.push(...r.residentCodes);
    }
    const ours: number[] = [];
    const oursBatched: number[] = [];
    const bare: number[] = [];
    /** Codes [from, from + count) through the batch route, BATCH per request, two in flight. */
    const generateInBatches = async (from: number, count: number): Promise<number> => {
      const starts: number[] = [];
      for (let i = from; i < from + count; i += BATCH) starts.push(i);
      const t0 = performance.now();
      await pool(starts, 2, async (start) => {
        const answer = await api<{ generated: number }>(
          server,
          'municipality',
          'POST',
          '/v1/numbering/my-numbers:batch',
          { residentCodes: codes.slice(start, Math.min(start + BATCH, from + count)) },
        );
        if (answer.generated !== Math.min(BATCH, from + count - start)) {
          throw new Error(`batch: ${answer.generated} generated`);
        }
      });
      const seconds = (performance.now() - t0) / 1000;
      oursBatched.push(count / seconds);
      return seconds;
    };
    for (let r = 0; r < rounds; r++) {
      const slice = codes.slice(r * perRound, (r + 1) * perRound);
      const generate = async (): Promise<number> => {
        const t0 = performance.now();
        const made = await pool(slice, 8, (residentCode) =>
          api<{ myNumber: string }>(server, 'municipality', 'POST', '/v1/numbering/my-numbers', {
            residentCode,
          }),
        );
        if (made.some((m) => !/^\d{12}$/.test(m.myNumber))) throw new Error('not a My Number');
        const seconds = (performance.now() - t0) / 1000;
        ours.push(slice.length / seconds);
        return seconds;
      };
      const batched = (): Promise<number> =>
        generateInBatches(perRound * rounds + r * perBatchRound, perBatchRound);
      // Alternate; the bare generator runs at least a second.
      if (r % 2 === 0)
        bare.push(bareRate(Math.max(1, (await generate()) + (await batched())), slice));
      else {
        bare.push(bareRate(1, slice));
        await generate();
        await batched();
      }
    }
    const k = median(ours);
    const kBatched = median(oursBatched);
    const b = median(bare);
    const suffix = server.engine === 'postgres' ? '-postgres' : '';
    return [
      {
        name: `my-number-generation${suffix}`,
        unit: 'My Numbers/s',
        kiban: round(k),
        peer: round(b),
        ratio: round(k / b),
        target: 'reported (no target); projection in the detail',
        met: true,
        detail:
          `${perRound} resident codes per round, ${rounds} rounds, one POST ` +
          `/v1/numbering/my-numbers each, 8 in flight; peer: the bare FF1 generator and check ` +
          `digit in memory; numbering 124 million residents would take ` +
          `${round(NATION / k / 3600)} h through the API at this rate (the bare generator: ` +
          `${round(NATION / b / 3600)} h); ${server.engine}`,
      },
      {
        name: `my-number-generation-batch${suffix}`,
        unit: 'My Numbers/s',
        kiban: round(kBatched),
        peer: round(b),
        ratio: round(kBatched / b),
        target: 'reported (no target); projection in the detail',
        met: true,
        detail:
          `${perBatchRound} resident codes per round, ${rounds} rounds, through ` +
          `POST /v1/numbering/my-numbers:batch, ${BATCH} per request, 2 in flight (each round ` +
          `right after the single-request round); numbering 124 million residents would take ` +
          `${round(NATION / kBatched / 3600)} h at this rate; ${server.engine}`,
      },
    ];
  } finally {
    await server.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
  const results = await benchMyNumber({
    quick: values.quick ?? false,
    ...(process.env['DATABASE_URL'] ? { databaseUrl: process.env['DATABASE_URL'] } : {}),
  });
  console.log(JSON.stringify(results, null, 2));
}
