/**
 * CRL generation, side by side: our streaming DER writer (`src/pki/crl.ts` buildCrl) against
 * `openssl ca -gencrl` over an index of the same revoked entries, same RSA-2048 CA key.
 * Each side runs as its own child process under `/usr/bin/time -v`, so wall time and peak
 * memory (maximum resident set size) are measured the same way; the sides alternate and the
 * median of the rounds is reported. Usage:
 *
 *   node --import tsx bench/crl.ts [--entries 1000000] [--rounds 3]
 *
 * (The child mode `--child DIR N` builds one CRL and is what the parent runs.)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createPrivateKey, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { selfSignedRsa } from './support/openssl.ts';
import { buildCrl, type CrlEntry } from '../src/pki/crl.ts';
import { parseCertificate, subjectKeyId } from '../src/pki/x509.ts';

const HERE = fileURLToPath(import.meta.url);
const BASE_SERIAL = 0x1000000000n;
const REVOKED_AT = Date.UTC(2026, 0, 1);

function entryAt(i: number): CrlEntry {
  return {
    serial: BASE_SERIAL + BigInt(i),
    revokedAt: new Date(REVOKED_AT + i * 1000),
    reason: i % 3 === 0 ? 'keyCompromise' : null,
  };
}

/** YYMMDDHHMMSSZ, as openssl's index.txt writes times. */
function utcTime(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCFullYear() % 100)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
}

function setUp(dir: string, n: number): void {
  selfSignedRsa(
    path.join(dir, 'ca.key'),
    path.join(dir, 'ca.pem'),
    '/C=JP/O=Kiban bench/CN=CRL bench CA',
    3650,
  );
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const e = entryAt(i);
    const reason = e.reason === 'keyCompromise' ? ',keyCompromise' : '';
    lines.push(
      `R\t${utcTime(REVOKED_AT + 5 * 365 * 86_400_000)}\t${utcTime(e.revokedAt.getTime())}${reason}\t${e.serial.toString(16).toUpperCase()}\tunknown\t/CN=holder${i}`,
    );
  }
  writeFileSync(path.join(dir, 'index.txt'), lines.join('\n') + '\n');
  writeFileSync(path.join(dir, 'crlnumber'), '01\n');
  writeFileSync(
    path.join(dir, 'ca.cnf'),
    [
      '[ ca ]',
      'default_ca = bench',
      '[ bench ]',
      `dir = ${dir}`,
      'database = $dir/index.txt',
      'crlnumber = $dir/crlnumber',
      'certificate = $dir/ca.pem',
      'private_key = $dir/ca.key',
      'default_md = sha256',
      'default_crl_days = 2',
      'crl_extensions = crl_ext',
      '[ crl_ext ]',
      'authorityKeyIdentifier = keyid:always',
      '',
    ].join('\n'),
  );
}

/** Child: build our CRL of `n` entries with the CA key in `dir`, write it to ours.crl. */
async function child(dir: string, n: number): Promise<void> {
  const caPem = readFileSync(path.join(dir, 'ca.pem'), 'utf8');
  const der = Buffer.from(caPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  const cert = parseCertificate(der);
  const ski = subjectKeyId(cert);
  if (!ski) throw new Error('CA certificate has no subjectKeyIdentifier');
  const key = createPrivateKey(readFileSync(path.join(dir, 'ca.key')));
  function* entries(): Generator<CrlEntry> {
    for (let i = 0; i < n; i++) yield entryAt(i);
  }
  const crl = await buildCrl(
    {
      issuer: cert.subject,
      thisUpdate: new Date(),
      nextUpdate: new Date(Date.now() + 2 * 86_400_000),
      crlNumber: 1n,
      authorityKeyId: ski,
      entries: entries(),
    },
    {
      algorithm: 'sha256WithRSAEncryption',
      sign: async (tbs) => sign('sha256', tbs, key),
    },
  );
  writeFileSync(path.join(dir, 'ours.crl'), crl);
}

interface Measured {
  seconds: number;
  maxRssMiB: number;
}

function timed(cmd: string, args: string[]): Measured {
  const r = spawnSync('/usr/bin/time', ['-v', cmd, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr.slice(-2000)}`);
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(
    r.stderr,
  );
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  if (!wall || !rss) throw new Error('could not read /usr/bin/time -v output');
  const seconds = Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]);
  return { seconds, maxRssMiB: Number(rss[1]) / 1024 };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
};

export interface CrlComparison {
  entries: number;
  rounds: number;
  kiban: { seconds: number; maxRssMiB: number };
  openssl: { seconds: number; maxRssMiB: number };
  /** kiban seconds / openssl seconds (≤ 1.0 means we are no slower). */
  ratio: number;
}

export function compareCrl(n: number, rounds: number): CrlComparison {
  const dir = mkdtempSync(path.join(tmpdir(), 'kiban-bench-crl-'));
  try {
    setUp(dir, n);
    const ours: Measured[] = [];
    const theirs: Measured[] = [];
    for (let r = 0; r < rounds; r++) {
      // Alternate which side goes first, so drift on a noisy machine hits both.
      const runOurs = () =>
        ours.push(timed(process.execPath, ['--import', 'tsx', HERE, '--child', dir, String(n)]));
      const runTheirs = () =>
        theirs.push(
          timed('openssl', [
            'ca',
            '-gencrl',
            '-config',
            path.join(dir, 'ca.cnf'),
            '-out',
            path.join(dir, 'openssl.crl'),
          ]),
        );
      if (r % 2 === 0) {
        runOurs();
        runTheirs();
      } else {
        runTheirs();
        runOurs();
      }
    }
    // Both files must be valid CRLs of the same size, signed by the CA.
    for (const [file, form] of [
      ['ours.crl', 'DER'],
      ['openssl.crl', 'PEM'],
    ] as const) {
      execFileSync(
        'openssl',
        [
          'crl',
          '-inform',
          form,
          '-in',
          path.join(dir, file),
          '-noout',
          '-CAfile',
          path.join(dir, 'ca.pem'),
        ],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
      );
    }
    const kiban = {
      seconds: median(ours.map((m) => m.seconds)),
      maxRssMiB: median(ours.map((m) => m.maxRssMiB)),
    };
    const openssl = {
      seconds: median(theirs.map((m) => m.seconds)),
      maxRssMiB: median(theirs.map((m) => m.maxRssMiB)),
    };
    return { entries: n, rounds, kiban, openssl, ratio: kiban.seconds / openssl.seconds };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const args = process.argv.slice(2);
if (args[0] === '--child') {
  await child(args[1] ?? '', Number(args[2]));
} else if (process.argv[1] === HERE) {
  const flag = (name: string, fallback: number): number => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) : fallback;
  };
  const result = compareCrl(flag('--entries', 100_000), flag('--rounds', 3));
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}
