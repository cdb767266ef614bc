/**
 * Issuance (電子証明書の発行, 第3条/第22条), side by side with the raw signing rate: signing
 * certificates issued per second through the full path of a running `kiban start`
 * (`POST /v1/jpki/certificates`: the basic-4 read from the register with its audit entry,
 * profile checks, serial, issuance record, the CA's RSA-2048 signature, storage, the audit
 * entry), every certificate for its own fresh key pair (generated before the timed part).
 * {@link IN_FLIGHT} requests are in flight: a national CA serves the counters of 1,741
 * municipalities at once, and a server is measured at the load that saturates it (concurrent
 * requests share transactions: group commit, ADR 0013). One extra round at four in flight —
 * one municipality's few counters — is reported in the detail. The peers, measured in the
 * same run for the same seconds: RSA-2048 PKCS#1 v1.5 signatures per second by node:crypto
 * (async, on libuv's threadpool, four in flight, which already keeps both cores busy) and by
 * `openssl speed -multi 2 rsa2048`. The ratio says how much of the cost is the signature
 * itself.
 *
 *   node --import tsx bench/issuance.ts [--quick] [--certificates N]
 */
import { execFile } from 'node:child_process';
import { generateKeyPair as generateKeyPairCb, sign as signCb } from 'node:crypto';
import os from 'node:os';
import { parseArgs, promisify } from 'node:util';
import { pool, registerResidents } from './support/residents.ts';
import { type BenchResult, median, round } from './support/result.ts';
import { api, startKiban } from './support/server.ts';

const generateKeyPair = promisify(generateKeyPairCb);
const sign = promisify(signCb);
const run = promisify(execFile);

/** Requests in flight in the measured rounds. */
export const IN_FLIGHT = 64;
/** Requests in flight in the extra round reported in the detail. */
const FEW_IN_FLIGHT = 4;

export interface IssuanceOptions {
  quick: boolean;
  databaseUrl?: string;
  certificates?: number;
}

/** node:crypto RSA-2048 signatures per second, `inFlight` at a time, for about `seconds`. */
async function nodeSignRate(seconds: number, inFlight: number): Promise<number> {
  const { privateKey } = await generateKeyPair('rsa', { modulusLength: 2048 });
  const data = Buffer.alloc(512, 7);
  let n = 0;
  const until = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < until) {
        await sign('sha256', data, privateKey);
        n++;
      }
    }),
  );
  return n / ((performance.now() - t0) / 1000);
}

/** `openssl speed -multi N -seconds S rsa2048`: the summary's RSA-2048 sign/s. */
async function opensslSignRate(seconds: number): Promise<number> {
  const multi = Math.min(2, os.cpus().length);
  const { stdout } = await run(
    'openssl',
    ['speed', '-multi', String(multi), '-seconds', String(seconds), 'rsa2048'],
    { maxBuffer: 1 << 20 },
  );
  // "rsa 2048 bits 0.000707s 0.000021s   1414.2  47619.0"  (sign, verify, sign/s, verify/s)
  const m = /^rsa\s+2048 bits\s+\S+\s+\S+\s+([\d.]+)\s+[\d.]+\s*$/m.exec(stdout);
  if (!m?.[1]) throw new Error(`no rsa 2048 line in openssl speed output:\n${stdout}`);
  return Number(m[1]);
}

export async function benchIssuance(opts: IssuanceOptions): Promise<BenchResult[]> {
  const total = opts.certificates ?? (opts.quick ? 400 : 1200);
  const rounds = opts.quick ? 2 : 3;
  const perRound = Math.floor(total / rounds);
  const few = opts.quick ? 40 : 90;
  const server = await startKiban(opts.databaseUrl ? { databaseUrl: opts.databaseUrl } : {});
  try {
    const { residents } = await registerResidents(server, perRound * rounds + few, 1);
    const keys = await pool(residents, 4, async () => {
      const { publicKey } = await generateKeyPair('rsa', { modulusLength: 2048 });
      return publicKey.export({ type: 'spki', format: 'pem' });
    });
    /** Issues for residents [from, from + count) with `inFlight` requests; certificates/s. */
    const issue = async (from: number, count: number, inFlight: number): Promise<number> => {
      const t0 = performance.now();
      await pool(residents.slice(from, from + count), inFlight, (res, i) =>
        api(server, 'municipality', 'POST', '/v1/jpki/certificates', {
          kind: 'sign',
          medium: 'card',
          residentCode: res.residentCode,
          publicKey: keys[from + i],
        }),
      );
      return count / ((performance.now() - t0) / 1000);
    };
    const fewRate = await issue(perRound * rounds, few, FEW_IN_FLIGHT);
    const ours: number[] = [];
    const nodeRates: number[] = [];
    const opensslRates: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const issueRound = async (): Promise<number> => {
        const rate = await issue(r * perRound, perRound, IN_FLIGHT);
        ours.push(rate);
        return perRound / rate;
      };
      // Alternate: the peers run for as long as our round took (at least a second).
      if (r % 2 === 0) {
        const s = Math.max(1, await issueRound());
        nodeRates.push(await nodeSignRate(s, 4));
        opensslRates.push(await opensslSignRate(Math.max(1, Math.round(s))));
      } else {
        const s = Math.max(1, Math.round(perRound / (ours[0] ?? 50)));
        opensslRates.push(await opensslSignRate(s));
        nodeRates.push(await nodeSignRate(s, 4));
        await issueRound();
      }
    }
    const k = median(ours);
    const nodeRate = median(nodeRates);
    const opensslRate = median(opensslRates);
    const suffix = server.engine === 'postgres' ? '-postgres' : '';
    const detail =
      `${perRound} signing certificates per round, ${rounds} rounds, ${IN_FLIGHT} requests in ` +
      `flight over HTTP to kiban start (software key store, RSA-2048 CA key); with ` +
      `${FEW_IN_FLIGHT} in flight (one round of ${few}, before the others): ${round(fewRate)}/s; ` +
      `raw RSA-2048 sign/s in the same run: node:crypto ${round(nodeRate)} (4 in flight), ` +
      `openssl speed -multi 2 ${round(opensslRate)}; ${server.engine}`;
    return [
      {
        name: `issuance${suffix}`,
        unit: 'certificates/s',
        kiban: round(k),
        peer: round(nodeRate),
        ratio: round(k / nodeRate),
        target: 'ratio >= 0.5 of raw RSA-2048 signing (node:crypto, same machine)',
        met: k / nodeRate >= 0.5,
        detail,
      },
      {
        name: `issuance-vs-openssl-speed${suffix}`,
        unit: 'certificates/s',
        kiban: round(k),
        peer: round(opensslRate),
        ratio: round(k / opensslRate),
        target: 'ratio >= 0.5 of raw RSA-2048 signing (openssl speed -multi 2)',
        met: k / opensslRate >= 0.5,
        detail,
      },
    ];
  } finally {
    await server.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      certificates: { type: 'string' },
    },
  });
  const results = await benchIssuance({
    quick: values.quick ?? false,
    ...(process.env['DATABASE_URL'] ? { databaseUrl: process.env['DATABASE_URL'] } : {}),
    ...(values.certificates ? { certificates: Number(values.certificates) } : {}),
  });
  console.log(JSON.stringify(results, null, 2));
}
