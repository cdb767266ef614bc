/**
 * A closed-loop HTTP load generator for the side-by-side benchmarks: `concurrency` workers,
 * each sending its next request as soon as the previous answer has been read, over loopback,
 * with or without keep-alive. The same generator drives both sides of a comparison, so its
 * own cost weighs on both alike. Every run is bounded by a request count AND a time limit.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { quantile } from './result.ts';

export interface LoadSpec {
  url: string;
  /** Request bodies, sent in rotation (POST). */
  bodies: readonly Buffer[];
  headers?: Record<string, string>;
  contentType: string;
  concurrency: number;
  keepAlive: boolean;
  /** Stop after this many requests… */
  maxRequests: number;
  /** …or after this long, whichever comes first. */
  maxMs: number;
  /** Requests sent (and not counted) before timing starts. */
  warmup?: number;
  /** Checks an answer; a false is counted as a failure. Called on a sample only. */
  check?: (status: number, body: Buffer, index: number) => boolean;
}

export interface LoadResult {
  requests: number;
  failures: number;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
}

function send(
  agent: http.Agent,
  url: URL,
  body: Buffer,
  headers: Record<string, string>,
): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        agent,
        hostname: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        headers: { ...headers, 'content-length': String(body.length) },
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const url = new URL(spec.url);
  const agent = new http.Agent({
    keepAlive: spec.keepAlive,
    maxSockets: spec.concurrency,
    // Without keep-alive every request opens and closes its own connection.
  });
  const headers = {
    'content-type': spec.contentType,
    connection: spec.keepAlive ? 'keep-alive' : 'close',
    ...(spec.headers ?? {}),
  };
  let next = 0;
  const take = (): number => next++;
  // Warm-up: connections, caches, JIT on both sides.
  const warm = spec.warmup ?? 0;
  await Promise.all(
    Array.from({ length: Math.min(spec.concurrency, Math.max(1, warm)) }, async () => {
      while (next < warm) {
        const i = take();
        await send(agent, url, spec.bodies[i % spec.bodies.length] as Buffer, headers);
      }
    }),
  );
  next = 0;
  const latencies: number[] = [];
  let failures = 0;
  const started = performance.now();
  const deadline = started + spec.maxMs;
  await Promise.all(
    Array.from({ length: spec.concurrency }, async () => {
      for (;;) {
        if (performance.now() >= deadline) return;
        const i = take();
        if (i >= spec.maxRequests) return;
        const body = spec.bodies[i % spec.bodies.length] as Buffer;
        const t0 = performance.now();
        try {
          const res = await send(agent, url, body, headers);
          latencies.push(performance.now() - t0);
          // Check every answer's status; check content on a sample (1 in 64).
          if (res.status !== 200) failures++;
          else if (spec.check && i % 64 === 0 && !spec.check(res.status, res.body, i)) failures++;
        } catch {
          latencies.push(performance.now() - t0);
          failures++;
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  return {
    requests: latencies.length,
    failures,
    seconds,
    perSecond: latencies.length / seconds,
    p50Ms: latencies.length ? quantile(latencies, 0.5) : Number.NaN,
    p99Ms: latencies.length ? quantile(latencies, 0.99) : Number.NaN,
  };
}
