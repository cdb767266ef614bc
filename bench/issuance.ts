/**
 * Issuance (電子証明書の発行, 第3条/第22条), side by side with the raw signing rate: signing
 * certificates issued per second through the full path of a running `kiban start`
 * (`POST /v1/jpki/certificates`: the basic-4 read from the register with its audit entry,
 * profile checks, serial, issuance record, the CA's RSA-2048 signature, storage, the audit
 * entry), every certificate for its own subject key (made before the timed part, see
 * {@link publicKeys}).
 * {@link IN_FLIGHT} requests are in flight: a national CA serves the counters of 1,741
 * municipalities at once, and a server is measured at the load that saturates it (concurrent
 * requests share transactions: group commit, ADR 0013). One extra round at four in flight —
 * one municipality's few counters — is reported in the detail. Each round is followed by one
 * through `POST /v1/jpki/certificates:batch` ({@link BATCH_SIZE} per request, two requests in
 * flight: municipalities setting up deliveries of cards), reported as `issuance-batch`. The peers, measured in the
 * same run for the same seconds: RSA-2048 PKCS#1 v1.5 signatures per second by node:crypto
 * (async, on libuv's threadpool, four in flight, which already keeps both cores busy) and by
 * `openssl speed -multi 2 rsa2048`. The ratio says how much of the cost is the signature
 * itself.
 *
 *   node --import tsx bench/issuance.ts [--quick] [--certificates N]
 */
import { execFile } from 'node:child_process';
import { generateKeyPair as generateKeyPairCb, randomBytes, sign as signCb } from 'node:crypto';
import os from 'node:os';
import { parseArgs, promisify } from 'node:util';
import { bitString, integer, NULL, oid, sequence, toPem, unsignedInteger } from '../src/pki/der.ts';
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
/** Certificates per request on the batch route (a delivery of cards). */
export const BATCH_SIZE = 200;
/** Batch requests in flight (two municipalities at once). */
const BATCHES_IN_FLIGHT = 2;

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

/**
 * `n` distinct subject keys as the publicKey route takes them (SPKI PEM, RSA, 2,048-bit
 * modulus, e = 65537), each for one certificate. The moduli are random odd 2,048-bit numbers,
 * not products of two primes: the CA cannot tell the difference without factoring, does the
 * same work for them, and nobody needs the private keys here — while generating thousands of
 * real key pairs would take minutes of the run (and compete with the server for the cores).
 */
function publicKeys(n: number): string[] {
  return Array.from({ length: n }, () => {
    const modulus = randomBytes(256);
    modulus[0]! |= 0x80;
    modulus[255]! |= 0x01;
    const spki = sequence(
      sequence(oid('1.2.840.113549.1.1.1'), NULL),
      bitString(sequence(unsignedInteger(modulus), integer(65537))),
    );
    return toPem(spki, 'PUBLIC KEY');
  });
}

export async function benchIssuance(opts: IssuanceOptions): Promise<BenchResult[]> {
  const total = opts.certificates ?? (opts.quick ? 300 : 1200);
  const rounds = opts.quick ? 2 : 3;
  const perRound = Math.floor(total / rounds);
  const few = opts.quick ? 40 : 90;
  // Two requests in flight even in a quick round.
  const batchSize = Math.min(BATCH_SIZE, Math.ceil(perRound / BATCHES_IN_FLIGHT));
  // Residents [0, single) for single requests, then the few-in-flight round, then batches.
  const single = perRound * rounds;
  const batched = single + few;
  const keys = publicKeys(batched + single);
  const server = await startKiban(opts.databaseUrl ? { databaseUrl: opts.databaseUrl } : {});
  try {
    const { residents } = await registerResidents(server, batched + single, 1);
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
    /** The same through POST /v1/jpki/certificates:batch, {@link BATCH_SIZE} per request. */
    const issueInBatches = async (from: number, count: number): Promise<number> => {
      const starts: number[] = [];
      for (let i = from; i < from + count; i += batchSize) starts.push(i);
      const t0 = performance.now();
      await pool(starts, BATCHES_IN_FLIGHT, async (start) => {
        const end = Math.min(start + batchSize, from + count);
        const answer = await api<{ issued: number; results: { status: number; code?: string }[] }>(
          server,
          'municipality',
          'POST',
          '/v1/jpki/certificates:batch',
          {
            certificates: residents.slice(start, end).map((res, k) => ({
              kind: 'sign',
              medium: 'card',
              residentCode: res.residentCode,
              publicKey: keys[start + k],
            })),
          },
        );
        if (answer.issued !== end - start) {
          const refused = answer.results.find((r) => r.status !== 201);
          throw new Error(`batch: ${answer.issued} of ${end - start} issued (${refused?.code})`);
        }
      });
      return count / ((performance.now() - t0) / 1000);
    };
    const fewRate = await issue(perRound * rounds, few, FEW_IN_FLIGHT);
    const ours: number[] = [];
    const oursBatched: number[] = [];
    const nodeRates: number[] = [];
    const opensslRates: number[] = [];
    for (let r = 0; r < rounds; r++) {
      // Both ways of issuing, back to back; returns the seconds they took.
      const issueRound = async (): Promise<number> => {
        const rate = await issue(r * perRound, perRound, IN_FLIGHT);
        ours.push(rate);
        const batchedRate = await issueInBatches(batched + r * perRound, perRound);
        oursBatched.push(batchedRate);
        return perRound / rate + perRound / batchedRate;
      };
      // Alternate: the peers run for as long as our round took (at least a second).
      if (r % 2 === 0) {
        const s = Math.max(1, await issueRound());
        nodeRates.push(await nodeSignRate(s, 4));
        opensslRates.push(await opensslSignRate(Math.max(1, Math.round(s))));
      } else {
        const s = Math.max(
          1,
          Math.round(perRound / (ours[0] ?? 50) + perRound / (oursBatched[0] ?? 50)),
        );
        opensslRates.push(await opensslSignRate(s));
        nodeRates.push(await nodeSignRate(s, 4));
        await issueRound();
      }
    }
    const k = median(ours);
    const kBatched = median(oursBatched);
    const nodeRate = median(nodeRates);
    const opensslRate = median(opensslRates);
    const suffix = server.engine === 'postgres' ? '-postgres' : '';
    const detail =
      `${perRound} signing certificates per round, ${rounds} rounds, ${IN_FLIGHT} requests in ` +
      `flight over HTTP to kiban start (software key store, RSA-2048 CA key); with ` +
      `${FEW_IN_FLIGHT} in flight (one round of ${few}, before the others): ${round(fewRate)}/s; ` +
      `raw RSA-2048 sign/s in the same run: node:crypto ${round(nodeRate)} (4 in flight), ` +
      `openssl speed -multi 2 ${round(opensslRate)}; ${server.engine}`;
    const batchDetail =
      `${perRound} signing certificates per round, ${rounds} rounds, through ` +
      `POST /v1/jpki/certificates:batch, ${batchSize} per request, ${BATCHES_IN_FLIGHT} ` +
      `requests in flight (each round right after the single-request round); the same ` +
      `peers: node:crypto ${round(nodeRate)} (4 in flight), openssl speed -multi 2 ` +
      `${round(opensslRate)}; ${server.engine}`;
    /** One entry: `rate` against a raw signing rate, the target being half of it. */
    const entry = (
      name: string,
      rate: number,
      peer: number,
      peerName: string,
      text: string,
    ): BenchResult => ({
      name: `${name}${suffix}`,
      unit: 'certificates/s',
      kiban: round(rate),
      peer: round(peer),
      ratio: round(rate / peer),
      target: `ratio >= 0.5 of raw RSA-2048 signing (${peerName})`,
      met: rate / peer >= 0.5,
      detail: text,
    });
    const NODE = 'node:crypto, same machine';
    return [
      entry('issuance', k, nodeRate, NODE, detail),
      entry('issuance-vs-openssl-speed', k, opensslRate, 'openssl speed -multi 2', detail),
      entry('issuance-batch', kBatched, nodeRate, NODE, batchDetail),
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
