/**
 * Residents for the benchmarks, made through the public API as a municipality would: resident
 * codes from its pool, the My Number generated for each, and the notifications (職権記載)
 * sent through the batch route. Records differ in name, birth date, sex and address.
 */
import { api, type KibanServer } from './server.ts';

export interface BenchResident {
  residentCode: string;
  myNumber: string;
  municipalityCode: string;
  /** The notification that registered the resident (a JSON object). */
  record: Record<string, string>;
}

const FAMILY = ['山田', '佐藤', '鈴木', '高橋', '田中', '伊藤', '渡辺', '中村', '小林', '加藤'];
const FAMILY_KANA = [
  'ヤマダ',
  'サトウ',
  'スズキ',
  'タカハシ',
  'タナカ',
  'イトウ',
  'ワタナベ',
  'ナカムラ',
  'コバヤシ',
  'カトウ',
];
const GIVEN = ['花子', '太郎', '陽子', '健一', '美咲', '大輔', '直美', '翔太'];
const GIVEN_KANA = [
  'ハナコ',
  'タロウ',
  'ヨウコ',
  'ケンイチ',
  'ミサキ',
  'ダイスケ',
  'ナオミ',
  'ショウタ',
];

/** The i-th synthetic person's basic-4 for a resident of 千代田区 (131016). */
export function benchRecord(i: number, residentCode: string, myNumber: string) {
  const f = i % FAMILY.length;
  const g = Math.floor(i / FAMILY.length) % GIVEN.length;
  const birth = new Date(Date.UTC(1950, 0, 1) + (i % 20_000) * 86_400_000);
  return {
    residentCode,
    myNumber,
    name: `${FAMILY[f]}\u3000${GIVEN[g]}`,
    nameKana: `${FAMILY_KANA[f]}\u3000${GIVEN_KANA[g]}`,
    birthDate: birth.toISOString().slice(0, 10),
    sex: g % 2 === 0 ? 'female' : 'male',
    address: `東京都千代田区千代田${(i % 9) + 1}番${(i % 97) + 1}号`,
  };
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function pool<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i] as T, i);
      }
    }),
  );
  return out;
}

/** Hands out `n` resident codes and generates their My Numbers (not yet registered). */
export async function drawResidents(
  server: KibanServer,
  n: number,
  actor = 'municipality',
): Promise<{ residentCode: string; myNumber: string }[]> {
  const codes: string[] = [];
  while (codes.length < n) {
    const r = await api<{ residentCodes: string[] }>(
      server,
      actor,
      'POST',
      '/v1/registry/resident-codes',
      { count: Math.min(1000, n - codes.length) },
    );
    codes.push(...r.residentCodes);
  }
  // The batch route (1,000 codes per request), as a municipality numbering a first load does.
  const out: { residentCode: string; myNumber: string }[] = [];
  for (let i = 0; i < codes.length; i += 1000) {
    const slice = codes.slice(i, i + 1000);
    const r = await api<{ results: { status: number; myNumber?: string }[] }>(
      server,
      actor,
      'POST',
      '/v1/numbering/my-numbers:batch',
      { residentCodes: slice },
    );
    slice.forEach((residentCode, j) => {
      const myNumber = r.results[j]?.myNumber;
      if (!myNumber) throw new Error(`my-numbers:batch refused item ${j}`);
      out.push({ residentCode, myNumber });
    });
  }
  return out;
}

/** Sends NDJSON lines through the batch route; returns the server's answer. */
export async function postBatch(
  server: KibanServer,
  lines: readonly unknown[],
  actor = 'municipality',
): Promise<{ lines: number; accepted: number; replayed: number }> {
  const res = await fetch(`${server.url}/v1/registry/notifications:batch`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${server.token(actor)}`,
      'content-type': 'application/x-ndjson',
    },
    body: lines.map((l) => JSON.stringify(l)).join('\n'),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`batch: ${res.status} ${text.slice(0, 800)}`);
  return JSON.parse(text) as { lines: number; accepted: number; replayed: number };
}

/**
 * Registers `n` residents of 千代田区 (the demo municipality): codes, My Numbers, then one
 * batch per `batchSize` notifications with sequence numbers from `firstSequence`.
 */
export async function registerResidents(
  server: KibanServer,
  n: number,
  firstSequence: number,
  batchSize = 5000,
): Promise<{ residents: BenchResident[]; nextSequence: number }> {
  const drawn = await drawResidents(server, n);
  const residents: BenchResident[] = [];
  let seq = firstSequence;
  for (let start = 0; start < drawn.length; start += batchSize) {
    const slice = drawn.slice(start, start + batchSize);
    const lines = slice.map((d, j) => {
      const record = benchRecord(start + j, d.residentCode, d.myNumber);
      residents.push({ ...d, municipalityCode: '131016', record });
      return {
        municipalityCode: '131016',
        sequence: seq++,
        changeReason: 'officialEntry',
        changeDate: '2026-01-05',
        record,
      };
    });
    const r = await postBatch(server, lines);
    if (r.accepted !== slice.length) throw new Error(`batch accepted ${r.accepted}`);
  }
  return { residents, nextSequence: seq };
}
