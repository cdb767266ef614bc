/**
 * Loads the local-government master (全国地方公共団体コード) shipped in
 * `master-data/local-governments.csv` into `local_governments`. Idempotent: rows are upserted,
 * so `kiban init` after a data update brings the table up to date. Every code's check digit is
 * validated by the parser before anything is written.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Queryable } from './db.ts';
import {
  LOCAL_GOVERNMENT_KINDS,
  type LocalGovernment,
  type LocalGovernmentKind,
  parseLocalGovernmentsCsv,
} from './local-governments-csv.ts';

export const LOCAL_GOVERNMENTS_CSV = fileURLToPath(
  new URL('../../master-data/local-governments.csv', import.meta.url),
);

export function readLocalGovernments(file: string = LOCAL_GOVERNMENTS_CSV): LocalGovernment[] {
  return parseLocalGovernmentsCsv(readFileSync(file, 'utf8'));
}

export async function loadLocalGovernments(
  tx: Queryable,
  rows: readonly LocalGovernment[] = readLocalGovernments(),
): Promise<number> {
  const col = <K extends keyof LocalGovernment>(k: K) => rows.map((r) => r[k]);
  const r = await tx.query(
    `INSERT INTO local_governments (code, prefecture_code, kind, name, district, name_kana, parent_code)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
     ON CONFLICT (code) DO UPDATE SET
       prefecture_code = EXCLUDED.prefecture_code, kind = EXCLUDED.kind, name = EXCLUDED.name,
       district = EXCLUDED.district, name_kana = EXCLUDED.name_kana, parent_code = EXCLUDED.parent_code`,
    [
      col('code'),
      col('prefectureCode'),
      col('kind'),
      col('name'),
      col('district'),
      col('nameKana'),
      col('parentCode'),
    ],
  );
  return r.rowCount;
}

const isKind = (k: string): k is LocalGovernmentKind =>
  (LOCAL_GOVERNMENT_KINDS as readonly string[]).includes(k);

/** The local-government master as loaded into this database (what intake checks against). */
export async function loadLocalGovernmentsFrom(db: Queryable): Promise<LocalGovernment[]> {
  const r = await db.query<{
    code: string;
    prefecture_code: string;
    kind: string;
    name: string;
    district: string | null;
    name_kana: string;
    parent_code: string | null;
  }>(
    'SELECT code, prefecture_code, kind, name, district, name_kana, parent_code FROM local_governments ORDER BY code',
  );
  return r.rows.map((row) => {
    if (!isKind(row.kind)) throw new Error(`local government ${row.code} has kind ${row.kind}`);
    return {
      code: row.code,
      prefectureCode: row.prefecture_code,
      kind: row.kind,
      name: row.name,
      district: row.district,
      nameKana: row.name_kana,
      parentCode: row.parent_code,
    };
  });
}
