/**
 * Romanised local-government names for JPKI certificates. The subject of a 署名用電子証明書
 * names the holder's prefecture and municipality as `L=<prefecture>, L=<municipality>`, and its
 * cRLDistributionPoints directoryName as `OU=<Prefecture>, CN=<City> CRLDP` (real examples:
 * `Tokyo-to`, `Shibuya-ku`, `Hokkaido`; see `docs/JPKI-PROFILE.md`). These attributes are
 * PrintableStrings, so the result is ASCII letters, hyphens and single spaces only.
 *
 * Spelling: ヘボン式 (modified Hepburn) without macrons, as in the real certificates' `Tokyo-to`
 * and `Hokkaido`: long vowels are not written (トウキョウ → Tokyo, オオサカ → Osaka, チュウオウ →
 * Chuo), ン is always `n` (グンマ → Gunma, シンバシ → Shinbashi, never Shimbashi), and no
 * apostrophes are used.
 */
import type { LocalGovernment } from '../platform/local-governments-csv.ts';

/** Two-kana combinations (a kana followed by a small kana), checked before single kana. */
// prettier-ignore
const DIGRAPHS: Readonly<Record<string, string>> = {
  キャ: 'kya', キュ: 'kyu', キョ: 'kyo', ギャ: 'gya', ギュ: 'gyu', ギョ: 'gyo',
  シャ: 'sha', シュ: 'shu', ショ: 'sho', シェ: 'she', ジャ: 'ja', ジュ: 'ju', ジョ: 'jo', ジェ: 'je',
  チャ: 'cha', チュ: 'chu', チョ: 'cho', チェ: 'che', ヂャ: 'ja', ヂュ: 'ju', ヂョ: 'jo',
  ニャ: 'nya', ニュ: 'nyu', ニョ: 'nyo', ヒャ: 'hya', ヒュ: 'hyu', ヒョ: 'hyo',
  ビャ: 'bya', ビュ: 'byu', ビョ: 'byo', ピャ: 'pya', ピュ: 'pyu', ピョ: 'pyo',
  ミャ: 'mya', ミュ: 'myu', ミョ: 'myo', リャ: 'rya', リュ: 'ryu', リョ: 'ryo',
  イェ: 'ye', ウィ: 'wi', ウェ: 'we', ウォ: 'wo', クァ: 'kwa', グァ: 'gwa',
  ツァ: 'tsa', ツィ: 'tsi', ツェ: 'tse', ツォ: 'tso', ティ: 'ti', ディ: 'di', デュ: 'dyu',
  トゥ: 'tu', ドゥ: 'du', ファ: 'fa', フィ: 'fi', フェ: 'fe', フォ: 'fo', フュ: 'fyu',
  ヴァ: 'va', ヴィ: 'vi', ヴェ: 've', ヴォ: 'vo', ヴュ: 'vyu',
};

/** Single kana, including small kana standing alone. */
// prettier-ignore
const MONOGRAPHS: Readonly<Record<string, string>> = {
  ア: 'a', イ: 'i', ウ: 'u', エ: 'e', オ: 'o',
  カ: 'ka', キ: 'ki', ク: 'ku', ケ: 'ke', コ: 'ko', ガ: 'ga', ギ: 'gi', グ: 'gu', ゲ: 'ge', ゴ: 'go',
  サ: 'sa', シ: 'shi', ス: 'su', セ: 'se', ソ: 'so', ザ: 'za', ジ: 'ji', ズ: 'zu', ゼ: 'ze', ゾ: 'zo',
  タ: 'ta', チ: 'chi', ツ: 'tsu', テ: 'te', ト: 'to', ダ: 'da', ヂ: 'ji', ヅ: 'zu', デ: 'de', ド: 'do',
  ナ: 'na', ニ: 'ni', ヌ: 'nu', ネ: 'ne', ノ: 'no',
  ハ: 'ha', ヒ: 'hi', フ: 'fu', ヘ: 'he', ホ: 'ho', バ: 'ba', ビ: 'bi', ブ: 'bu', ベ: 'be', ボ: 'bo',
  パ: 'pa', ピ: 'pi', プ: 'pu', ペ: 'pe', ポ: 'po',
  マ: 'ma', ミ: 'mi', ム: 'mu', メ: 'me', モ: 'mo', ヤ: 'ya', ユ: 'yu', ヨ: 'yo',
  ラ: 'ra', リ: 'ri', ル: 'ru', レ: 're', ロ: 'ro', ワ: 'wa', ヰ: 'i', ヱ: 'e', ヲ: 'o', ン: 'n',
  ヴ: 'vu', ヷ: 'va', ヸ: 'vi', ヹ: 've', ヺ: 'vo',
  ァ: 'a', ィ: 'i', ゥ: 'u', ェ: 'e', ォ: 'o', ャ: 'ya', ュ: 'yu', ョ: 'yo', ヮ: 'wa',
  ヵ: 'ka', ヶ: 'ke',
};

const SMALL_TSU = 'ッ';
const PROLONGED_SOUND_MARK = 'ー';

/** The syllables of `kana`, each romanised; ッ and ー are kept as markers for the next pass. */
function syllables(kana: string): string[] {
  const chars = [...kana];
  const out: string[] = [];
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    const pair = DIGRAPHS[ch + (chars[i + 1] ?? '')];
    if (pair !== undefined) {
      out.push(pair);
      i++;
    } else if (ch === SMALL_TSU || ch === PROLONGED_SOUND_MARK) {
      out.push(ch);
    } else {
      const single = MONOGRAPHS[ch];
      if (single !== undefined) out.push(single);
      // Anything else (not katakana) has no romanisation and is dropped.
    }
  }
  return out;
}

/**
 * Romanises full-width katakana in modified Hepburn without macrons, lower case.
 *
 * - ー is dropped, and long vowels are shortened: `ou` → `o`, `oo` → `o`, `uu` → `u`; `ei` and
 *   `ii` stay (トウキョウ → tokyo, オオサカ → osaka, チュウオウ → chuo, セイ → sei, ニイガタ → niigata).
 *   Shortening works on kana, one lengthening vowel per syllable, so vowels of the next word
 *   survive (ショウオウ → shoo, トウオン → toon, サンヨウオノダ → sanyoonoda, オオウチ → ouchi).
 * - ッ doubles the next consonant, `ch` becoming `tch` (サッポロ → sapporo, ハッチョウ → hatcho);
 *   before a vowel, ン or at the end it is dropped.
 * - ン is always `n` (グンマ → gunma, シンバシ → shinbashi), with no apostrophe before a vowel.
 * - ヂ → ji, ヅ → zu, ヲ → o; a small ャュョ (and ァィゥェォ) combines with the kana before it.
 *
 * Characters that are not katakana are dropped.
 */
export function kanaToRomaji(kana: string): string {
  let out = '';
  let previous = '';
  let previousWasLong = false;
  let geminate = false;
  for (const s of syllables(kana)) {
    if (s === SMALL_TSU) {
      geminate = true;
      continue;
    }
    if (s === PROLONGED_SOUND_MARK) {
      previousWasLong = true;
      continue;
    }
    // A bare ウ after an o- or u-syllable, or a bare オ after an o-syllable, lengthens it; a
    // syllable already lengthened does not absorb another vowel (ショウオウ → shoo, トウオン → toon).
    const lengthens =
      !previousWasLong &&
      ((s === 'u' && (previous.endsWith('o') || previous.endsWith('u'))) ||
        (s === 'o' && previous.endsWith('o')));
    if (lengthens) {
      previousWasLong = true;
      geminate = false;
      continue;
    }
    if (geminate && /^[bcdfghjkmprstvwz]/.test(s)) out += s.startsWith('ch') ? 't' : s[0];
    geminate = false;
    out += s;
    previous = s;
    previousWasLong = false;
  }
  return out;
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** Suffix of each kind of name: the kanji, its possible readings and their romaji. */
const SUFFIXES: Readonly<Record<string, ReadonlyArray<readonly [string, string]>>> = {
  都: [['ト', '-to']],
  道: [['', '']], // 北海道: "Hokkaido", the 道 part of the word
  府: [['フ', '-fu']],
  県: [['ケン', '-ken']],
  市: [['シ', '-shi']],
  区: [['ク', '-ku']],
  町: [
    ['マチ', '-machi'],
    ['チョウ', '-cho'],
  ],
  村: [
    ['ムラ', '-mura'],
    ['ソン', '-son'],
  ],
};

/**
 * The romanised name of one 地方公共団体 given its kanji name and reading, or null when the
 * reading does not end with a reading of the name's suffix or leaves an empty stem.
 */
function withSuffix(name: string, kana: string): string | null {
  const options = SUFFIXES[name.slice(-1)];
  if (options === undefined) return null;
  for (const [suffixKana, suffixRomaji] of options) {
    if (!kana.endsWith(suffixKana)) continue;
    const stem = kanaToRomaji(kana.slice(0, kana.length - suffixKana.length));
    if (stem === '') return null;
    return capitalise(stem) + suffixRomaji;
  }
  return null;
}

/**
 * The romanised name of a prefecture or municipality for a certificate subject (`L=`) or CRL
 * distribution point (`OU=`, `CN=`), e.g. 東京都 → `Tokyo-to`, 北海道 → `Hokkaido`, 渋谷区 →
 * `Shibuya-ku`, 群馬県 → `Gunma-ken`.
 *
 * The suffix follows the name's last kanji and the reading's tail: 都 `-to`, 道 none, 府 `-fu`,
 * 県 `-ken`, 市 `-shi`, 区 `-ku`, 町 `-machi` when read マチ else `-cho`, 村 `-mura` when read
 * ムラ else `-son`. The stem is the rest of the reading, romanised by {@link kanaToRomaji} and
 * capitalised. A ward of a designated city (行政区, kind `designatedCityWard`) becomes
 * `<City>-shi <Ward>-ku` (札幌市中央区 → `Sapporo-shi Chuo-ku`), its reading split after the
 * reading of `parent`, the city.
 *
 * Never throws: when the name cannot be split cleanly (no parent for a ward, a reading that
 * does not match the suffix), the result is the whole reading romanised and capitalised. The
 * result always matches `/^[A-Z][A-Za-z]*(-[a-z]+)?( [A-Z][A-Za-z]*(-[a-z]+)?)?$/`; a reading
 * that romanises to nothing at all (only ー or ッ; the master data has none) gives `Unknown`.
 */
export function localGovernmentRomaji(lg: LocalGovernment, parent?: LocalGovernment): string {
  if (lg.kind === 'designatedCityWard' && parent !== undefined) {
    const city = withSuffix(parent.name, parent.nameKana);
    const ward =
      lg.name.startsWith(parent.name) && lg.nameKana.startsWith(parent.nameKana)
        ? withSuffix(lg.name.slice(parent.name.length), lg.nameKana.slice(parent.nameKana.length))
        : null;
    if (city !== null && ward !== null) return `${city} ${ward}`;
  } else if (lg.kind !== 'designatedCityWard') {
    const whole = withSuffix(lg.name, lg.nameKana);
    if (whole !== null) return whole;
  }
  const fallback = capitalise(kanaToRomaji(lg.nameKana));
  return fallback === '' ? 'Unknown' : fallback;
}
