/**
 * The shape of `bench/results/latest.json` (issue #6): one entry per measured target, the
 * peer measured in the same run, `met` computed from the figures, never typed in.
 */
export interface BenchResult {
  /** Starts with `ocsp-`, `crl-`, `issuance`, `intake-`, `propagation` or `my-number`. */
  name: string;
  /** Unit of `kiban` and `peer` (e.g. `responses/s`, `s`, `ms`, `certificates/s`). */
  unit: string;
  kiban: number;
  /** The peer's figure in the same run, or null where there is no peer (latency targets). */
  peer: number | null;
  /** kiban / peer (or its inverse where the issue defines it so; see `target`). */
  ratio: number | null;
  /** The target in words, e.g. `ratio >= 5` or `p99 <= 10 ms`. */
  target: string;
  met: boolean;
  /** What was measured, with which settings; shown in docs/benchmarks.md. */
  detail?: string;
  /**
   * The same work from `clients` independent partitions at once (e.g. municipalities), in
   * `kiban`'s unit: what one machine gains by running partitions side by side.
   */
  parallel?: { clients: number; kiban: number };
}

/** The machine and versions a run measured on. */
export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  openssl: string;
  pglite: string;
  postgres: string | null;
}

/** `bench/results/latest.json`. */
export interface BenchReport {
  machine: Machine;
  mode: 'quick' | 'full';
  startedAt: string;
  minutes: number;
  results: BenchResult[];
  failures: { bench: string; error: string }[];
}

/** The median of a non-empty list. */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of nothing');
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1
    ? (s[mid] as number)
    : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** The q-quantile (0 < q < 1) of a non-empty list, nearest-rank. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) throw new Error('quantile of nothing');
  const s = [...values].sort((a, b) => a - b);
  const rank = Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1));
  return s[rank] as number;
}

/** Rounds for display and JSON: 3 significant figures past the integer part. */
export function round(n: number): number {
  if (!Number.isFinite(n)) return n;
  const abs = Math.abs(n);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return Number(n.toFixed(digits));
}
