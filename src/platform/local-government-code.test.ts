import { readFileSync } from 'node:fs';
import { describe, it, expect } from 'vitest';
import {
  isValidLocalGovernmentCode,
  localGovernmentCheckDigit,
  withCheckDigit,
} from './local-government-code.ts';
import {
  MUNICIPALITY_KINDS,
  parseLocalGovernmentsCsv,
  type LocalGovernment,
} from './local-governments-csv.ts';

const VECTORS: [string, string][] = [
  ['13101', '131016'], // 千代田区
  ['14104', '141046'], // 横浜市中区
  ['01100', '011002'], // 札幌市
  ['13000', '130001'], // 東京都
  ['01000', '010006'], // 北海道
  ['27000', '270008'], // 大阪府
  ['27100', '271004'], // 大阪市
  ['27109', '271098'], // 大阪市天王寺区
];

describe('全国地方公共団体コード check digit', () => {
  it.each(VECTORS)('%s → %s', (body, code) => {
    expect(localGovernmentCheckDigit(body)).toBe(code.charAt(5));
    expect(withCheckDigit(body)).toBe(code);
    expect(isValidLocalGovernmentCode(code)).toBe(true);
  });

  it('maps r = 0 to 1 and r = 1 to 0', () => {
    // The two cases where c = 11 − r is 10 or more.
    expect(localGovernmentCheckDigit('00000')).toBe('1'); // r = 0 → c = 11 → 1
    expect(localGovernmentCheckDigit('00006')).toBe('0'); // 6·2 = 12, r = 1 → c = 10 → 0
  });

  it('rejects a wrong check digit', () => {
    for (const [, code] of VECTORS) {
      const wrong = code.slice(0, 5) + String((Number(code.charAt(5)) + 1) % 10);
      expect(isValidLocalGovernmentCode(wrong)).toBe(false);
    }
  });

  it.each([
    ['13101'], // 5 digits
    ['1310160'], // 7 digits
    ['１３１０１６'], // full-width digits
    ['13101６'],
    [''],
    ['13101a'],
    [' 131016'],
    ['131016\n'],
    ['+31016'],
  ])('rejects %j', (code) => {
    expect(isValidLocalGovernmentCode(code)).toBe(false);
  });

  it('throws on a body that is not five ASCII digits', () => {
    expect(() => localGovernmentCheckDigit('1310')).toThrow(RangeError);
    expect(() => localGovernmentCheckDigit('131016')).toThrow(RangeError);
    expect(() => localGovernmentCheckDigit('１３１０１')).toThrow(RangeError);
    expect(() => withCheckDigit('abcde')).toThrow(RangeError);
  });
});

describe('parseLocalGovernmentsCsv', () => {
  const header = 'code,prefectureCode,kind,name,district,nameKana,parentCode';
  const tokyo = '130001,13,prefecture,東京都,,トウキョウト,';

  it('parses typed rows', () => {
    const rows = parseLocalGovernmentsCsv(
      `${header}\n${tokyo}\n134023,13,village,青ヶ島村,,アオガシマムラ,130001\n`,
    );
    expect(rows).toEqual<LocalGovernment[]>([
      {
        code: '130001',
        prefectureCode: '13',
        kind: 'prefecture',
        name: '東京都',
        district: null,
        nameKana: 'トウキョウト',
        parentCode: null,
      },
      {
        code: '134023',
        prefectureCode: '13',
        kind: 'village',
        name: '青ヶ島村',
        district: null,
        nameKana: 'アオガシマムラ',
        parentCode: '130001',
      },
    ]);
  });

  it('accepts quoted fields', () => {
    const rows = parseLocalGovernmentsCsv(
      `${header}\n"130001",13,prefecture,"東京都",,トウキョウト,`,
    );
    expect(rows[0]?.name).toBe('東京都');
  });

  it.each([
    ['a bad header', 'code,prefectureCode,kind,name,nameKana,parentCode\n', 'line 1'],
    [
      'a wrong column count',
      `${header}\n${tokyo}\n131016,13,specialWard,千代田区,チヨダク,130001`,
      'line 3',
    ],
    ['an unknown kind', `${header}\n131016,13,ward,千代田区,,チヨダク,130001`, 'line 2'],
    ['a wrong check digit', `${header}\n131017,13,specialWard,千代田区,,チヨダク,130001`, 'line 2'],
    [
      'a wrong parent check digit',
      `${header}\n131016,13,specialWard,千代田区,,チヨダク,130002`,
      'line 2',
    ],
    ['a duplicate code', `${header}\n${tokyo}\n${tokyo}`, 'line 3'],
    ['half-width kana', `${header}\n131016,13,specialWard,千代田区,,ﾁﾖﾀﾞｸ,130001`, 'line 2'],
    [
      'a mismatched prefecture',
      `${header}\n131016,14,specialWard,千代田区,,チヨダク,130001`,
      'line 2',
    ],
    ['a blank line', `${header}\n\n${tokyo}`, 'line 2'],
  ])('rejects %s, naming the line', (_label, text, line) => {
    expect(() => parseLocalGovernmentsCsv(text)).toThrow(new RegExp(`^${line}:`));
  });
});

describe('master-data/local-governments.csv', () => {
  const text = readFileSync(
    new URL('../../master-data/local-governments.csv', import.meta.url),
    'utf8',
  );
  const rows = parseLocalGovernmentsCsv(text);
  const byCode = new Map(rows.map((r) => [r.code, r]));
  const countKind = (kind: LocalGovernment['kind']): number =>
    rows.filter((r) => r.kind === kind).length;

  it('has the 総務省 totals', () => {
    expect(countKind('prefecture')).toBe(47);
    expect(rows.filter((r) => MUNICIPALITY_KINDS.has(r.kind))).toHaveLength(1741);
    expect(countKind('specialWard')).toBe(23);
    expect(countKind('designatedCity')).toBe(20);
    expect(countKind('designatedCityWard')).toBe(171);
  });

  it('is LF-only with a trailing newline and sorted by code', () => {
    expect(text).not.toContain('\r');
    expect(text.endsWith('\n')).toBe(true);
    const codes = rows.map((r) => r.code);
    expect(codes).toEqual([...codes].sort());
  });

  it('has valid, unique codes whose parents exist', () => {
    expect(rows.every((r) => isValidLocalGovernmentCode(r.code))).toBe(true);
    expect(byCode.size).toBe(rows.length);
    for (const r of rows) {
      if (r.kind === 'prefecture') {
        expect(r.parentCode).toBeNull();
        continue;
      }
      const parent = r.parentCode === null ? undefined : byCode.get(r.parentCode);
      expect(parent, `${r.code} ${r.name}`).toBeDefined();
      expect(parent?.kind).toBe(r.kind === 'designatedCityWard' ? 'designatedCity' : 'prefecture');
      expect(parent?.prefectureCode).toBe(r.prefectureCode);
    }
  });

  it('has known entries', () => {
    expect(byCode.get('131016')).toMatchObject({
      name: '千代田区',
      prefectureCode: '13',
      kind: 'specialWard',
      parentCode: '130001',
    });
    expect(byCode.get('141046')).toMatchObject({
      name: '横浜市中区',
      kind: 'designatedCityWard',
      parentCode: '141003',
    });
    expect(byCode.get('141003')).toMatchObject({
      name: '横浜市',
      kind: 'designatedCity',
      nameKana: 'ヨコハマシ',
    });
    expect(byCode.get('130001')).toMatchObject({ name: '東京都', kind: 'prefecture' });
    expect(byCode.get('103446')).toMatchObject({
      name: '榛東村',
      district: '北群馬郡',
      nameKana: 'シントウムラ',
      kind: 'village',
    });
  });
});
