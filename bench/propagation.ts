/**
 * Revocation propagation (異動等失効情報, 第12条第1項第4号): how long after a municipality's
 * address-change notification (転居, `moveWithin`) is accepted the resident's signing
 * certificate answers "revoked" on OCSP. The full path of a running `kiban start`: registry
 * intake → outbox event `resident.changed` → JPKI registry-revocation consumer → revocation
 * (change epoch) → OCSP, whose pre-signed "good" answer for the serial is held in memory by
 * then (each serial is asked once before its change).
 *
 * One change at a time, OCSP polled every `pollMs` (without a nonce, as relying parties ask);
 * each wait bounded. No peer: the target is absolute (p99 ≤ 200 ms).
 *
 *   node --import tsx bench/propagation.ts [--quick] [--residents N]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseOcspResponse } from '../src/pki/ocsp.ts';
import { issueCertificates, makeRequests } from './ocsp.ts';
import { type BenchResult, median, quantile, round } from './support/result.ts';
import { api, startKiban } from './support/server.ts';

export interface PropagationOptions {
  quick: boolean;
  databaseUrl?: string;
  residents?: number;
}

const MAX_WAIT_MS = 5_000;

/** Today in Japan, YYYY-MM-DD (a change date may not lie in the future). */
const jstToday = (): string => new Date(Date.now() + 9 * 3_600_000).toISOString().slice(0, 10);

export async function benchPropagation(opts: PropagationOptions): Promise<BenchResult[]> {
  const n = opts.residents ?? (opts.quick ? 20 : 200);
  const pollMs = 2;
  const server = await startKiban(opts.databaseUrl ? { databaseUrl: opts.databaseUrl } : {});
  const dir = mkdtempSync(path.join(tmpdir(), 'kiban-bench-propagation-'));
  try {
    const { issued, nextSequence } = await issueCertificates(server, n, 0);
    const cas = await api<{ cas: { kind: string; generation: number; certificate: string }[] }>(
      server,
      'operator',
      'GET',
      '/v1/jpki/ca',
    );
    const caPem = cas.cas.find((c) => c.kind === 'sign' && c.generation === 1)?.certificate;
    if (!caPem) throw new Error('no signing CA');
    writeFileSync(path.join(dir, 'ca.pem'), caPem);
    const requests = makeRequests(dir, issued, false);
    const verifier = { authorization: `Bearer ${server.token('signatureVerifier')}` };
    const statusOf = async (i: number): Promise<string> => {
      const res = await fetch(`${server.url}/ocsp/sign`, {
        method: 'POST',
        headers: { ...verifier, 'content-type': 'application/ocsp-request' },
        body: requests[i],
      });
      if (res.status !== 200) throw new Error(`OCSP answered ${res.status}`);
      const parsed = parseOcspResponse(Buffer.from(await res.arrayBuffer()));
      return parsed.basic?.responses[0]?.status.type ?? 'none';
    };
    // Every serial is asked once first, so its "good" answer is held in memory.
    for (let i = 0; i < issued.length; i++) {
      if ((await statusOf(i)) !== 'good') throw new Error(`certificate ${i} is not good`);
    }
    const latencies: number[] = [];
    const accepts: number[] = [];
    let sequence = nextSequence;
    const changeDate = jstToday();
    for (let i = 0; i < issued.length; i++) {
      const c = issued[i]!;
      const sent = performance.now();
      await api(server, 'municipality', 'POST', '/v1/registry/notifications', {
        municipalityCode: c.resident.municipalityCode,
        sequence: sequence++,
        changeReason: 'moveWithin',
        changeDate,
        record: {
          ...c.resident.record,
          address: `東京都千代田区丸の内${(i % 3) + 1}丁目${i + 1}番`,
        },
      });
      const accepted = performance.now();
      accepts.push(accepted - sent);
      for (;;) {
        const status = await statusOf(i);
        if (status === 'revoked') break;
        if (performance.now() - accepted > MAX_WAIT_MS) {
          throw new Error(`certificate ${i} still ${status} ${MAX_WAIT_MS} ms after the change`);
        }
        await new Promise((r) => setTimeout(r, pollMs));
      }
      latencies.push(performance.now() - accepted);
    }
    const p50 = median(latencies);
    const p99 = quantile(latencies, 0.99);
    const suffix = server.engine === 'postgres' ? '-postgres' : '';
    return [
      {
        name: `propagation-p99${suffix}`,
        unit: 'ms',
        kiban: round(p99),
        peer: null,
        ratio: null,
        target: 'p99 <= 200 ms from the notification accepted to OCSP "revoked"',
        met: p99 <= 200,
        detail:
          `${n} address changes (moveWithin) one at a time through POST /v1/registry/notifications; ` +
          `OCSP (no nonce) polled every ${pollMs} ms; p50 ${round(p50)} ms, max ` +
          `${round(Math.max(...latencies))} ms; the notification itself took p50 ` +
          `${round(median(accepts))} ms; ${server.engine}, default outbox and change-feed settings`,
      },
    ];
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      residents: { type: 'string' },
    },
  });
  const results = await benchPropagation({
    quick: values.quick ?? false,
    ...(process.env['DATABASE_URL'] ? { databaseUrl: process.env['DATABASE_URL'] } : {}),
    ...(values.residents ? { residents: Number(values.residents) } : {}),
  });
  console.log(JSON.stringify(results, null, 2));
}
