/**
 * `npm run bench` (about 15 minutes) and `npm run bench -- --quick` (under 3): every benchmark
 * side by side with its peer, on PGlite and — when DATABASE_URL is set — PostgreSQL; writes
 * `bench/results/latest.json` and regenerates `docs/benchmarks.md`.
 *
 * A benchmark that fails is reported (and the run exits 1) after the others have run; its
 * entries are missing from the results rather than made up.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { compareCrl } from './crl.ts';
import { benchIntake } from './intake.ts';
import { benchIssuance } from './issuance.ts';
import { benchMyNumber } from './my-number.ts';
import { benchOcsp } from './ocsp.ts';
import { benchPropagation } from './propagation.ts';
import { renderMarkdown } from './support/report.ts';
import { type BenchReport, type BenchResult, type Machine, round } from './support/result.ts';
import { ROOT } from './support/server.ts';

async function machine(databaseUrl: string | undefined): Promise<Machine> {
  const pkg = (name: string): string => {
    const file = path.join(ROOT, 'node_modules', name, 'package.json');
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    return typeof parsed === 'object' && parsed && 'version' in parsed
      ? String(parsed.version)
      : 'unknown';
  };
  let postgres: string | null = null;
  if (databaseUrl) {
    const c = new pg.Client({ connectionString: databaseUrl });
    await c.connect();
    try {
      postgres =
        (await c.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]
          ?.v ?? null;
    } finally {
      await c.end();
    }
  }
  return {
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    openssl: execFileSync('openssl', ['version'], { encoding: 'utf8' }).trim(),
    pglite: pkg('@electric-sql/pglite'),
    postgres,
  };
}

function crlResults(quick: boolean): BenchResult[] {
  const rounds = quick ? 1 : 3;
  const out: BenchResult[] = [];
  for (const entries of quick ? [100_000, 1_000_000] : [100_000, 1_000_000]) {
    const c = compareCrl(entries, rounds);
    const label = entries === 1_000_000 ? '1m' : '100k';
    const detail =
      `${entries.toLocaleString('en')} revoked entries, same RSA-2048 CA key, each side a child ` +
      `process under /usr/bin/time -v, median of ${rounds} round(s); Kiban ${round(c.kiban.seconds)} s ` +
      `${round(c.kiban.maxRssMiB)} MiB, openssl ca -gencrl ${round(c.openssl.seconds)} s ` +
      `${round(c.openssl.maxRssMiB)} MiB; both CRLs verified by openssl crl`;
    out.push({
      name: `crl-${label}-time`,
      unit: 's',
      kiban: round(c.kiban.seconds),
      peer: round(c.openssl.seconds),
      ratio: round(c.ratio),
      target: entries === 1_000_000 ? 'ratio <= 1.0 (vs openssl ca -gencrl)' : 'reported',
      met: entries === 1_000_000 ? c.ratio <= 1 : true,
      detail,
    });
    if (entries === 1_000_000) {
      out.push({
        name: `crl-${label}-memory`,
        unit: 'MiB',
        kiban: round(c.kiban.maxRssMiB),
        peer: round(c.openssl.maxRssMiB),
        ratio: round(c.kiban.maxRssMiB / c.openssl.maxRssMiB),
        target: 'peak memory <= 1 GiB (1024 MiB)',
        met: c.kiban.maxRssMiB <= 1024,
        detail,
      });
    }
  }
  return out;
}

export async function runAll(quick: boolean): Promise<BenchReport> {
  const started = Date.now();
  const databaseUrl = process.env['DATABASE_URL'] || undefined;
  const engines: (string | undefined)[] = [undefined, ...(databaseUrl ? [databaseUrl] : [])];
  const report: BenchReport = {
    machine: await machine(databaseUrl),
    mode: quick ? 'quick' : 'full',
    startedAt: new Date(started).toISOString(),
    minutes: 0,
    results: [],
    failures: [],
  };
  const step = async (bench: string, fn: () => Promise<BenchResult[]> | BenchResult[]) => {
    const t0 = Date.now();
    process.stderr.write(`bench: ${bench} …\n`);
    try {
      const results = await fn();
      report.results.push(...results);
      for (const r of results) {
        process.stderr.write(
          `  ${r.name}: ${r.kiban} ${r.unit}` +
            (r.peer === null ? '' : ` (peer ${r.peer}, ratio ${r.ratio})`) +
            ` — ${r.met ? 'met' : 'MISSED'} (${r.target})\n`,
        );
      }
    } catch (err) {
      const error = err instanceof Error ? (err.stack ?? err.message) : String(err);
      report.failures.push({ bench, error });
      process.stderr.write(`  FAILED: ${error}\n`);
    }
    process.stderr.write(`  (${round((Date.now() - t0) / 1000)} s)\n`);
  };
  const on = (url: string | undefined) => (url ? { databaseUrl: url } : {});
  const label = (url: string | undefined) => (url ? 'postgres' : 'pglite');
  for (const url of engines) {
    await step(`ocsp (${label(url)})`, () => benchOcsp({ quick, ...on(url) }));
  }
  await step('crl', () => crlResults(quick));
  for (const url of engines) {
    await step(`issuance (${label(url)})`, () => benchIssuance({ quick, ...on(url) }));
  }
  for (const url of engines) {
    await step(`intake (${label(url)})`, () => benchIntake({ quick, ...on(url) }));
  }
  for (const url of engines) {
    await step(`my-number (${label(url)})`, () => benchMyNumber({ quick, ...on(url) }));
  }
  for (const url of engines) {
    await step(`propagation (${label(url)})`, () => benchPropagation({ quick, ...on(url) }));
  }
  report.minutes = round((Date.now() - started) / 60_000);
  return report;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      // Regenerates docs/benchmarks.md from the last results (after editing commentary.md).
      render: { type: 'boolean', default: false },
    },
  });
  const dir = path.join(ROOT, 'bench', 'results');
  if (values.render) {
    const last = JSON.parse(readFileSync(path.join(dir, 'latest.json'), 'utf8')) as BenchReport;
    writeFileSync(path.join(ROOT, 'docs', 'benchmarks.md'), renderMarkdown(last));
    process.exit(0);
  }
  const report = await runAll(values.quick ?? false);
  mkdirSync(dir, { recursive: true });
  const json = `${JSON.stringify(report, null, 2)}\n`;
  writeFileSync(path.join(dir, 'latest.json'), json);
  writeFileSync(path.join(ROOT, 'docs', 'benchmarks.md'), renderMarkdown(report));
  process.stderr.write(
    `bench: wrote bench/results/latest.json and docs/benchmarks.md in ${report.minutes} min` +
      `${report.failures.length ? `; ${report.failures.length} benchmark(s) FAILED` : ''}\n`,
  );
  process.exitCode = report.failures.length ? 1 : 0;
}
