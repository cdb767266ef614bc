/**
 * Renders `docs/benchmarks.md` from a run's report: the table of every target with its peer,
 * the machine and versions, what each figure measured, the hand-written reading of the figures
 * (`bench/commentary.md`, kept beside the code that produces them), and scaling past one
 * machine with the figures of this run.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { BenchReport, BenchResult } from './result.ts';
import { ROOT } from './server.ts';

const fmt = (n: number | null): string =>
  n === null ? '—' : n >= 1000 ? Math.round(n).toLocaleString('en') : String(n);

function table(results: readonly BenchResult[]): string {
  const rows = results.map(
    (r) =>
      `| \`${r.name}\` | ${fmt(r.kiban)} | ${fmt(r.peer)} | ${r.ratio ?? '—'} | ${r.unit} | ${r.target} | ${r.met ? 'yes' : '**no**'} |`,
  );
  return [
    '| benchmark | Kiban | peer | ratio | unit | target | met |',
    '| --- | ---: | ---: | ---: | --- | --- | --- |',
    ...rows,
  ].join('\n');
}

const round2 = (n: number): string => n.toFixed(2);

const find = (report: BenchReport, name: string): BenchResult | undefined =>
  report.results.find((r) => r.name === name);

function scaling(report: BenchReport): string {
  const ocsp = find(report, 'ocsp-no-nonce-keepalive');
  const nonce = find(report, 'ocsp-nonce-keepalive');
  const crl = find(report, 'crl-1m-time');
  const intakePg = find(report, 'intake-postgres');
  const pgliteIntake = find(report, 'intake-pglite');
  const intake = intakePg ?? pgliteIntake;
  const cores = report.machine.cores;
  const lines = [
    '## Scaling past one machine',
    '',
    'Every figure above is one process (or one pair of processes) on one ' +
      `${cores}-core machine. The parts that carry a national load scale out as follows.`,
    '',
    '- **OCSP responders are stateless.** A responder needs the CA certificates, its own ' +
      'delegated responder key and read access to the certificate and revocation tables; ' +
      'it keeps pre-signed answers in memory and follows revocations by polling one tiny ' +
      'table of change epochs (`change_epochs`, every 50 ms). So any number of responder ' +
      'processes can run against PostgreSQL read replicas behind a load balancer; a replica ' +
      'lagging by L ms delays a revocation by L ms plus one poll.' +
      (ocsp
        ? ` One process answered ${fmt(ocsp.kiban)} requests/s without a nonce here` +
          (nonce ? ` and ${fmt(nonce.kiban)}/s with one (each signed live)` : '') +
          ', so answering the whole population of 100 million cards once an hour ' +
          `(about 28,000 requests/s) takes about ${Math.ceil(28_000 / ocsp.kiban)} such processes.`
        : ''),
    '- **CRLs are static files.** They are generated once per period and partition, signed, ' +
      'and served as immutable bytes: put them behind any HTTP cache or CDN; the origin is hit ' +
      'once per partition per period.' +
      (crl ? ` Writing a CRL of a million entries took ${crl.kiban} s here.` : ''),
    '- **Intake partitions by prefecture.** Notifications are ordered per municipality (its ' +
      'sequence numbers) and a person belongs to one municipality at a time, so intake can run ' +
      'as one writer per prefecture (47 partitions) — separate processes, and at the top end ' +
      'separate PostgreSQL primaries holding their prefectures, with moves between prefectures ' +
      'handed over through the outbox.' +
      (intake
        ? ` One writer took ${fmt(intake.kiban)} notifications/s here (${intake.name})` +
          (intake.parallel
            ? `, and ${intake.parallel.clients} municipalities sending at once ` +
              `${fmt(intake.parallel.kiban)}/s together on the same ${cores} cores ` +
              `(×${round2(intake.parallel.kiban / intake.kiban)}: the writers' JavaScript and ` +
              "the database's work overlap instead of taking turns)"
            : '') +
          `; ${Math.max(1, Math.ceil(124_000_000 / intake.kiban / 3600 / 2))} writers in ` +
          'parallel, each with its share of cores and database, would register the whole ' +
          'nation in under two hours.' +
          (pgliteIntake?.parallel
            ? " PGlite runs in the server's own thread, so partitions there share its one core " +
              `(${fmt(pgliteIntake.kiban)}/s alone, ${fmt(pgliteIntake.parallel.kiban)}/s for ` +
              'two at once): partitioned intake is a PostgreSQL deployment.'
            : '')
        : ''),
    '- **The CA itself does not need to scale out:** issuance is bounded by the signing key ' +
      '(one HSM partition per CA generation) and runs at the pace cards are made.',
  ];
  return lines.join('\n');
}

export function renderMarkdown(report: BenchReport): string {
  const m = report.machine;
  const commentary = readFileSync(path.join(ROOT, 'bench', 'commentary.md'), 'utf8').trim();
  const details = report.results
    .filter((r) => r.detail)
    .map((r) => `- \`${r.name}\`: ${r.detail}`)
    .join('\n');
  const failures = report.failures.length
    ? [
        '',
        '## Benchmarks that failed in this run',
        '',
        ...report.failures.map((f) => `- ${f.bench}: ${f.error.split('\n')[0]}`),
      ].join('\n')
    : '';
  return `# Benchmarks

<!-- Generated by \`npm run bench\` (bench/run.ts) from bench/results/latest.json; the
     reading of the figures is bench/commentary.md. Do not edit by hand. -->

Every figure is measured side by side with a peer in the same run — sides alternating, medians
of rounds — and reported as a ratio, because these machines are noisy. No timing is asserted
in the test suite. \`npm run bench\` runs the full set (about 15 minutes);
\`npm run bench -- --quick\` a smaller one (under 3 minutes). With \`DATABASE_URL\` set, every
database-bound benchmark also runs on PostgreSQL (entries ending \`-postgres\`).

This run: **${report.mode}**, started ${report.startedAt}, ${report.minutes} minutes.

| machine | |
| --- | --- |
| CPU | ${m.cpu} × ${m.cores} |
| memory | ${m.memoryGiB} GiB |
| OS | ${m.os} |
| Node.js | ${m.node} |
| OpenSSL | ${m.openssl} |
| PGlite | ${m.pglite} |
| PostgreSQL | ${m.postgres ?? 'not measured (DATABASE_URL not set)'} |

Settings: the server is \`kiban start\` on a fresh data directory (PGlite) or a fresh
PostgreSQL database, as a user runs it, log level \`warn\`, everything else at its defaults;
load comes over loopback from a closed-loop generator in the benchmark process, every loop
bounded in requests and time.

## Results

${table(report.results)}

## What each figure measured

${details}
${failures}

${commentary}

${scaling(report)}
`;
}
