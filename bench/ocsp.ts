/**
 * OCSP, side by side: our responder (`POST /ocsp/sign` of a running `kiban start`) against
 * `openssl ocsp -index … -port … -multi 2`, answering for the same CA certificate, the same
 * issued serials and the same revoked set, driven by the same load generator at the same
 * concurrency, with and without keep-alive, with requests without and with a nonce. Both
 * responders sign with RSA-2048. The sides alternate; medians of the rounds are reported.
 *
 *   node --import tsx bench/ocsp.ts [--quick] [--certificates N] [--concurrency C]
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { generateKeyPair as generateKeyPairCb } from 'node:crypto';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const generateKeyPair = promisify(generateKeyPairCb);
import { selfSignedRsa } from './support/openssl.ts';
import { parseOcspResponse } from '../src/pki/ocsp.ts';
import { type LoadResult, runLoad } from './support/loadgen.ts';
import { type BenchResident, registerResidents, pool } from './support/residents.ts';
import { type BenchResult, median, round } from './support/result.ts';
import {
  api,
  freePort,
  type KibanServer,
  startKiban,
  stopChild,
  waitForLine,
} from './support/server.ts';

export interface OcspBenchOptions {
  quick: boolean;
  databaseUrl?: string;
  certificates?: number;
  concurrency?: number;
}

export interface Issued {
  serial: bigint;
  revoked: boolean;
  resident: BenchResident;
}

/** YYMMDDHHMMSSZ, as openssl's index.txt writes times. */
const indexTime = (d: Date): string => d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';

const hexSerial = (s: bigint): string => {
  const h = s.toString(16).toUpperCase();
  return h.length % 2 ? `0${h}` : h;
};

/**
 * Registers `n` fresh residents, issues each a signing certificate (card) and revokes every
 * `revokeEvery`-th (lossReport); 0 revokes none.
 */
export async function issueCertificates(
  server: KibanServer,
  n: number,
  revokeEvery = 10,
): Promise<{ issued: Issued[]; nextSequence: number }> {
  const { residents, nextSequence } = await registerResidents(server, n, 1);
  // Every certificate needs its own key pair (the CA refuses a reused key).
  const keys = await pool(residents, 4, async () => {
    const { publicKey } = await generateKeyPair('rsa', { modulusLength: 2048 });
    return publicKey.export({ type: 'spki', format: 'pem' });
  });
  const issued = await pool(residents, 4, async (r, i) => {
    const c = await api<{ serial: string }>(
      server,
      'municipality',
      'POST',
      '/v1/jpki/certificates',
      {
        kind: 'sign',
        medium: 'card',
        residentCode: r.residentCode,
        publicKey: keys[i],
      },
    );
    return {
      serial: BigInt(c.serial),
      revoked: revokeEvery > 0 && i % revokeEvery === 3,
      resident: r,
    };
  });
  await pool(
    issued.filter((c) => c.revoked),
    4,
    (c) =>
      api(server, 'municipality', 'POST', `/v1/jpki/certificates/${c.serial}/revocation`, {
        reason: 'lossReport',
      }),
  );
  return { issued, nextSequence };
}

/** The openssl side: an index of the same serials and a responder key of the same size. */
export function prepareOpenssl(dir: string, caPem: string, issued: Issued[]): void {
  writeFileSync(path.join(dir, 'ca.pem'), caPem);
  const expiry = indexTime(new Date(Date.now() + 365 * 86_400_000));
  const revokedAt = indexTime(new Date());
  writeFileSync(
    path.join(dir, 'index.txt'),
    issued
      .map((c) =>
        c.revoked
          ? `R\t${expiry}\t${revokedAt},keyCompromise\t${hexSerial(c.serial)}\tunknown\t/CN=${c.serial}\n`
          : `V\t${expiry}\t\t${hexSerial(c.serial)}\tunknown\t/CN=${c.serial}\n`,
      )
      .join(''),
  );
  writeFileSync(path.join(dir, 'index.txt.attr'), 'unique_subject = no\n');
  selfSignedRsa(
    path.join(dir, 'resp.key'),
    path.join(dir, 'resp.pem'),
    '/C=JP/O=Kiban bench/CN=openssl OCSP responder',
    30,
  );
}

/** DER OCSP requests (one certificate each), made by openssl for both sides. */
export function makeRequests(dir: string, issued: Issued[], nonce: boolean): Buffer[] {
  return issued.map((c, i) => {
    const out = path.join(dir, `req-${nonce ? 'n' : 'x'}-${i}.der`);
    execFileSync(
      'openssl',
      [
        'ocsp',
        '-issuer',
        path.join(dir, 'ca.pem'),
        '-serial',
        `0x${c.serial.toString(16)}`,
        nonce ? '-nonce' : '-no_nonce',
        '-reqout',
        out,
      ],
      { stdio: 'ignore' },
    );
    return readFileSync(out);
  });
}

async function startOpensslOcsp(dir: string): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(
    'openssl',
    [
      'ocsp',
      '-index',
      'index.txt',
      '-port',
      String(port),
      '-rsigner',
      'resp.pem',
      '-rkey',
      'resp.key',
      '-CA',
      'ca.pem',
      '-multi',
      '2',
      '-nmin',
      '60',
    ],
    // Not `detached`: with -multi openssl makes itself a process-group leader (setpgid), which
    // fails, silently (it logs to syslog) with exit 1, when it already leads a session. Its
    // group is stopped as a whole by stopChild(…, true).
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  // Wait for its ACCEPT line (on stdout), never by probing the port: openssl 3.0's responder
  // child spins at 100 % CPU after a connection that closes without a request.
  await waitForLine(child, /ACCEPT/, 10_000);
  child.stdout?.resume();
  child.stderr?.resume();
  return { port, child };
}

/**
 * The harness's own ceiling: a Node.js server that reads each request and answers fixed bytes
 * of the same size as an OCSP response, doing nothing else. No responder driven by this load
 * generator on this machine can go faster.
 */
async function startCeiling(size: number): Promise<{ url: string; child: ChildProcess }> {
  const script = `
    const body = Buffer.alloc(${size}, 1);
    const srv = require('node:http').createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/ocsp-response', 'content-length': body.length });
        res.end(body);
      });
    });
    srv.listen(0, '127.0.0.1', () => console.log('ceiling on ' + srv.address().port));`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  const line = await waitForLine(child, /ceiling on \d+/, 10_000);
  child.stdout?.resume();
  child.stderr?.resume();
  return { url: `http://127.0.0.1:${line.split(' ').pop() ?? ''}/`, child };
}

interface Scenario {
  keepAlive: boolean;
  nonce: boolean;
}

type Side = 'kiban' | 'openssl' | 'ceiling';

const scenarioName = (s: Scenario): string =>
  `${s.nonce ? 'nonce' : 'no-nonce'}-${s.keepAlive ? 'keepalive' : 'new-connection'}`;

export async function benchOcsp(opts: OcspBenchOptions): Promise<BenchResult[]> {
  const certificates = opts.certificates ?? (opts.quick ? 60 : 400);
  const concurrency = opts.concurrency ?? 16;
  const rounds = opts.quick ? 2 : 3;
  const maxMs = opts.quick ? 1000 : 4000;
  const server = await startKiban(opts.databaseUrl ? { databaseUrl: opts.databaseUrl } : {});
  const dir = mkdtempSync(path.join(tmpdir(), 'kiban-bench-ocsp-'));
  let peer: { port: number; child: ChildProcess } | null = null;
  let ceiling: { url: string; child: ChildProcess } | null = null;
  try {
    const { issued } = await issueCertificates(server, certificates);
    const cas = await api<{ cas: { kind: string; generation: number; certificate: string }[] }>(
      server,
      'operator',
      'GET',
      '/v1/jpki/ca',
    );
    const caPem = cas.cas.find((c) => c.kind === 'sign' && c.generation === 1)?.certificate;
    if (!caPem) throw new Error('no signing CA');
    prepareOpenssl(dir, caPem, issued);
    const requests = {
      plain: makeRequests(dir, issued, false),
      nonce: makeRequests(dir, issued, true),
    };
    peer = await startOpensslOcsp(dir);
    const sample = await fetch(`${server.url}/ocsp/sign`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${server.token('signatureVerifier')}`,
        'content-type': 'application/ocsp-request',
      },
      body: requests.plain[0],
    });
    ceiling = await startCeiling((await sample.arrayBuffer()).byteLength);

    // Both sides must answer each certificate's true status; checked on a sample of answers.
    const check = (_status: number, body: Buffer, i: number): boolean => {
      try {
        const r = parseOcspResponse(body);
        const s = r.basic?.responses[0]?.status.type;
        const want = (issued[i % issued.length] as Issued).revoked ? 'revoked' : 'good';
        return s === want;
      } catch {
        return false;
      }
    };
    const sides = {
      kiban: {
        url: `${server.url}/ocsp/sign`,
        headers: { authorization: `Bearer ${server.token('signatureVerifier')}` },
      },
      openssl: { url: `http://127.0.0.1:${peer.port}/`, headers: {} },
      ceiling: { url: ceiling.url, headers: {} },
    };
    const scenarios: Scenario[] = [
      { keepAlive: true, nonce: false },
      { keepAlive: false, nonce: false },
      { keepAlive: true, nonce: true },
      { keepAlive: false, nonce: true },
    ];
    const results: BenchResult[] = [];
    const suffix = server.engine === 'postgres' ? '-postgres' : '';
    for (const s of scenarios) {
      const runs: Record<Side, LoadResult[]> = { kiban: [], openssl: [], ceiling: [] };
      for (let r = 0; r < rounds; r++) {
        // Alternate which side goes first; the ceiling is measured without a nonce only.
        const order: Side[] = r % 2 ? ['openssl', 'kiban'] : ['kiban', 'openssl'];
        if (!s.nonce) order.push('ceiling');
        for (const side of order) {
          const res = await runLoad({
            ...sides[side],
            bodies: s.nonce ? requests.nonce : requests.plain,
            contentType: 'application/ocsp-request',
            concurrency,
            keepAlive: s.keepAlive,
            maxRequests: 1_000_000,
            maxMs,
            warmup: 200,
            ...(side === 'ceiling' ? {} : { check }),
          });
          if (res.failures > 0) {
            throw new Error(`${side} ${scenarioName(s)}: ${res.failures} wrong or failed answers`);
          }
          runs[side].push(res);
        }
      }
      const k = {
        rate: median(runs.kiban.map((x) => x.perSecond)),
        p50: median(runs.kiban.map((x) => x.p50Ms)),
        p99: median(runs.kiban.map((x) => x.p99Ms)),
      };
      const o = {
        rate: median(runs.openssl.map((x) => x.perSecond)),
        p50: median(runs.openssl.map((x) => x.p50Ms)),
        p99: median(runs.openssl.map((x) => x.p99Ms)),
      };
      const ratio = k.rate / o.rate;
      const want = s.nonce ? 0.8 : 5;
      const top = runs.ceiling.length ? median(runs.ceiling.map((x) => x.perSecond)) : null;
      const detail =
        `${certificates} certificates (10 % revoked), concurrency ${concurrency}, ` +
        `${s.keepAlive ? 'keep-alive' : 'a new connection per request'}, ` +
        `${s.nonce ? 'nonce in every request (signed live)' : 'no nonce'}, ` +
        `median of ${rounds} rounds of ≤ ${maxMs / 1000} s; ` +
        `kiban p50 ${round(k.p50)} ms p99 ${round(k.p99)} ms, ` +
        `openssl p50 ${round(o.p50)} ms p99 ${round(o.p99)} ms; ` +
        (top
          ? `harness ceiling (a do-nothing Node.js server, same load generator) ${round(top)}/s, ` +
            `Kiban at ${Math.round((100 * k.rate) / top)} % of it, 5× openssl would be ` +
            `${Math.round((500 * o.rate) / top)} % of it; `
          : '') +
        server.engine;
      results.push({
        name: `ocsp-${scenarioName(s)}${suffix}`,
        unit: 'responses/s',
        kiban: round(k.rate),
        peer: round(o.rate),
        ratio: round(ratio),
        target: `ratio >= ${want} (vs openssl ocsp -multi 2)`,
        met: ratio >= want,
        detail,
      });
      if (!s.nonce) {
        results.push({
          name: `ocsp-${scenarioName(s)}-p99${suffix}`,
          unit: 'ms',
          kiban: round(k.p99),
          peer: round(o.p99),
          ratio: round(k.p99 / o.p99),
          target: 'kiban p99 <= 10 ms at that load',
          met: k.p99 <= 10,
          detail,
        });
      }
    }
    return results;
  } finally {
    if (peer) await stopChild(peer.child, true);
    if (ceiling) await stopChild(ceiling.child);
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      certificates: { type: 'string' },
      concurrency: { type: 'string' },
    },
  });
  const results = await benchOcsp({
    quick: values.quick ?? false,
    ...(process.env['DATABASE_URL'] ? { databaseUrl: process.env['DATABASE_URL'] } : {}),
    ...(values.certificates ? { certificates: Number(values.certificates) } : {}),
    ...(values.concurrency ? { concurrency: Number(values.concurrency) } : {}),
  });
  console.log(JSON.stringify(results, null, 2));
}
