import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { LocalGovernment } from '../platform/local-governments-csv.ts';
import { readLocalGovernments } from '../platform/master-data.ts';
import { kanaToRomaji, localGovernmentRomaji } from './romaji.ts';

/**
 * Safe in an X.509 PrintableString and shaped like the real subjects: one or two capitalised
 * words, each with an optional lower-case suffix (`Tokyo-to`, `Hokkaido`, `Sapporo-shi Chuo-ku`).
 */
const ROMAJI_PATTERN = /^[A-Z][A-Za-z]*(-[a-z]+)?( [A-Z][A-Za-z]*(-[a-z]+)?)?$/;

const rows = readLocalGovernments();
const byCode = new Map(rows.map((r) => [r.code, r]));

function lg(code: string): LocalGovernment {
  const row = byCode.get(code);
  if (row === undefined) throw new Error(`no local government ${code}`);
  return row;
}

function parentOf(row: LocalGovernment): LocalGovernment | undefined {
  return row.kind === 'designatedCityWard' && row.parentCode !== null
    ? byCode.get(row.parentCode)
    : undefined;
}

function romajiOf(code: string): string {
  const row = lg(code);
  return localGovernmentRomaji(row, parentOf(row));
}

function fake(over: Partial<LocalGovernment>): LocalGovernment {
  return {
    code: '999999',
    prefectureCode: '13',
    kind: 'city',
    name: '架空市',
    district: null,
    nameKana: 'カクウシ',
    parentCode: '130001',
    ...over,
  };
}

describe('kanaToRomaji', () => {
  it.each([
    ['トウキョウ', 'tokyo'],
    ['オオサカ', 'osaka'],
    ['キョウト', 'kyoto'],
    ['ホッカイドウ', 'hokkaido'],
    ['チュウオウ', 'chuo'],
    ['リュウオウ', 'ryuo'],
    ['グンマ', 'gunma'],
    ['シンバシ', 'shinbashi'],
    ['ニイガタ', 'niigata'],
    ['セイヨ', 'seiyo'],
    ['サッポロ', 'sapporo'],
    ['ハッチョウ', 'hatcho'],
    ['ベップ', 'beppu'],
    ['ッ', ''],
    ['オヂヤ', 'ojiya'],
    ['ヌマヅ', 'numazu'],
    ['ヲ', 'o'],
    ['ラーメン', 'ramen'],
    ['コーヒー', 'kohi'],
    ['ジュウ', 'ju'],
    ['キュウシュウ', 'kyushu'],
    ['ファミリー', 'famiri'],
    ['ヴァイオリン', 'vaiorin'],
    ['シェ', 'she'],
    ['テンエイ', 'tenei'],
    ['ウオヌマ', 'uonuma'],
    ['ショウオウ', 'shoo'],
    ['トウオン', 'toon'],
    ['オオウチ', 'ouchi'],
    ['スオウオオシマ', 'suooshima'],
    ['カンオンジ', 'kanonji'],
    ['ャ', 'ya'],
    ['', ''],
  ])('%s → %s', (kana, romaji) => {
    expect(kanaToRomaji(kana)).toBe(romaji);
  });

  it('gives lower-case ASCII letters for any katakana', () => {
    fc.assert(
      fc.property(
        fc.string({
          unit: fc.integer({ min: 0x30a1, max: 0x30fc }).map((c) => String.fromCodePoint(c)),
        }),
        (kana) => {
          expect(kanaToRomaji(kana)).toMatch(/^[a-z]*$/);
        },
      ),
    );
  });
});

describe('localGovernmentRomaji', () => {
  it.each([
    ['010006', '北海道', 'Hokkaido'],
    ['130001', '東京都', 'Tokyo-to'],
    ['270008', '大阪府', 'Osaka-fu'],
    ['260002', '京都府', 'Kyoto-fu'],
    ['100005', '群馬県', 'Gunma-ken'],
    ['131130', '渋谷区', 'Shibuya-ku'],
    ['131016', '千代田区', 'Chiyoda-ku'],
    ['131024', '中央区', 'Chuo-ku'],
    ['011002', '札幌市', 'Sapporo-shi'],
    ['011011', '札幌市中央区', 'Sapporo-shi Chuo-ku'],
    ['271284', '大阪市中央区', 'Osaka-shi Chuo-ku'],
    ['401081', '北九州市八幡東区', 'Kitakyushu-shi Yahatahigashi-ku'],
    ['434035', '大津町 (オオヅマチ)', 'Ozu-machi'],
    ['253847', '竜王町 (リュウオウチョウ)', 'Ryuo-cho'],
    ['133647', '神津島村 (コウヅシマムラ)', 'Kozushima-mura'],
    ['313840', '日吉津村 (ヒエヅソン)', 'Hiezu-son'],
    ['336220', '勝央町 (ショウオウチョウ)', 'Shoo-cho'],
    ['382159', '東温市 (トウオンシ)', 'Toon-shi'],
  ])('%s %s → %s', (code, _name, romaji) => {
    expect(romajiOf(code)).toBe(romaji);
  });

  it('falls back to the whole reading when a ward has no parent to split by', () => {
    expect(localGovernmentRomaji(lg('011011'))).toBe('Sapporoshichuoku');
    expect(localGovernmentRomaji(lg('011011'), lg('271004'))).toBe('Sapporoshichuoku');
  });

  it('falls back to the whole reading when the reading does not fit the suffix', () => {
    expect(localGovernmentRomaji(fake({ name: '架空市', nameKana: 'カクウマチ' }))).toBe(
      'Kakumachi',
    );
    expect(localGovernmentRomaji(fake({ name: '架空郷', nameKana: 'カクウゴウ' }))).toBe('Kakugo');
    expect(localGovernmentRomaji(fake({ name: '市', nameKana: 'シ' }))).toBe('Shi');
    expect(localGovernmentRomaji(fake({ name: '架空市', nameKana: 'ーシ' }))).toBe('Shi');
    expect(localGovernmentRomaji(fake({ name: '架空市', nameKana: 'ー' }))).toBe('Unknown');
  });

  it('gives every local government in the master data a PrintableString-safe name', () => {
    const bad = rows
      .map((row) => ({ row, romaji: localGovernmentRomaji(row, parentOf(row)) }))
      .filter(({ romaji }) => !ROMAJI_PATTERN.test(romaji));
    expect(bad).toEqual([]);
    expect(rows.length).toBe(1959);
  });

  it('splits every designated-city ward into "<City>-shi <Ward>-ku"', () => {
    const wards = rows.filter((r) => r.kind === 'designatedCityWard');
    expect(wards.length).toBe(171);
    for (const ward of wards) {
      expect(localGovernmentRomaji(ward, parentOf(ward)), ward.name).toMatch(
        /^[A-Z][a-z]*-shi [A-Z][a-z]*-ku$/,
      );
    }
  });

  it('gives municipalities of one prefecture distinct names unless their readings are equal', () => {
    const seen = new Map<string, LocalGovernment[]>();
    for (const row of rows) {
      const key = `${row.prefectureCode} ${localGovernmentRomaji(row, parentOf(row))}`;
      seen.set(key, [...(seen.get(key) ?? []), row]);
    }
    const collisions = [...seen.values()].filter((group) => group.length > 1);
    const differentReadings = collisions.filter(
      (group) => new Set(group.map((r) => r.nameKana)).size > 1,
    );
    expect(differentReadings).toEqual([]);
    // Known: 江差町 (檜山郡) and 枝幸町 (枝幸郡), both in 北海道 and both read エサシチョウ, share
    // `Esashi-cho` — and so would share a per-municipality CRL distribution point name.
    expect(collisions.map((group) => group.map((r) => `${r.code} ${r.name}`))).toEqual([
      ['013617 江差町', '015148 枝幸町'],
    ]);
  });
});
