/**
 * 文字 in JPKI certificates: the 基本4情報 of a 署名用電子証明書 carry only characters of JIS X 0208
 * (levels 1 and 2, with its non-kanji rows) and JIS X 0212 (補助漢字). Any other character is
 * replaced by a substitute character and flagged in a substitution map, one `0`/`1` per
 * character (J-LIS certificate profile; see `docs/JPKI-PROFILE.md`, "Signing certificate").
 *
 * The character sets are derived from the platform's own EUC-JP decoder (WHATWG Encoding
 * Standard), which maps JIS X 0208 as two bytes 0xA1–0xFE × 0xA1–0xFE and JIS X 0212 as
 * 0x8F followed by two such bytes. The WHATWG tables are the Microsoft ones, which also carry
 * vendor extensions that are NOT part of either standard; they are excluded by row:
 *
 * - JIS X 0208 row 13 (NEC special characters: ①, ㈱, ㍉ …) and rows 89–92 (NEC-selected IBM
 *   extensions: 髙, 﨑, ⅰ …). The standard rows are 1–8 (non-kanji) and 16–84 (kanji).
 * - JIS X 0212 row 83 (IBM extensions placed there by eucJP-ms: ⅰ–ⅹ, Ⅰ–Ⅹ, ㈱). The standard rows
 *   are 1–77.
 *
 * The Microsoft tables map a few JIS X 0208 row-1/2 characters to full-width compatibility code
 * points (～ U+FF5E, ∥ U+2225, － U+FF0D, ￠ ￡ ￢, ― U+2015) where the JIS X 0221 / Unicode
 * JIS0208.TXT mapping uses 〜 U+301C, ‖ U+2016, − U+2212, ¢ £ ¬ and — U+2014. Both spellings name
 * the same JIS X 0208 character, and text typed on different systems carries either, so both
 * count as members ({@link JIS_X_0208_STANDARD_MAPPINGS}); the text itself is left as written.
 */
import { TextDecoder } from 'node:util';

/** 〓 (U+3013 GETA MARK), the substitute character; it is itself in JIS X 0208 (row 2, cell 14). */
export const SUBSTITUTE_CHARACTER = '〓';

/**
 * Code points that the JIS X 0221 / Unicode JIS0208.TXT mapping gives to JIS X 0208 characters
 * which the EUC-JP decoder maps elsewhere (to the code point in the comment).
 */
export const JIS_X_0208_STANDARD_MAPPINGS: readonly string[] = [
  '\u2014', // — EM DASH (1-29, decoder: U+2015 HORIZONTAL BAR)
  '\u301C', // 〜 WAVE DASH (1-33, decoder: U+FF5E FULLWIDTH TILDE)
  '\u2016', // ‖ DOUBLE VERTICAL LINE (1-34, decoder: U+2225 PARALLEL TO)
  '\u2212', // − MINUS SIGN (1-61, decoder: U+FF0D FULLWIDTH HYPHEN-MINUS)
  '\u00A2', // ¢ CENT SIGN (1-81, decoder: U+FFE0)
  '\u00A3', // £ POUND SIGN (1-82, decoder: U+FFE1)
  '\u00AC', // ¬ NOT SIGN (2-44, decoder: U+FFE2)
];

/** The code points of JIS X 0208 and JIS X 0212 as the EUC-JP decoder maps them. */
export interface JisCharacterSets {
  /** JIS X 0208 rows 1–8 and 16–84 (6,879 characters in the standard). */
  readonly x0208: ReadonlySet<number>;
  /** JIS X 0212 rows 1–77 (6,067 characters in the standard). */
  readonly x0212: ReadonlySet<number>;
}

const FIRST_BYTE = 0xa1;
const LAST_BYTE = 0xfe;
const EUC_JP_SS3 = 0x8f;

let sets: JisCharacterSets | undefined;
let members: ReadonlySet<number> | undefined;

function decodeRows(
  decoder: TextDecoder,
  prefix: readonly number[],
  isStandardRow: (row: number) => boolean,
): Set<number> {
  const out = new Set<number>();
  for (let lead = FIRST_BYTE; lead <= LAST_BYTE; lead++) {
    if (!isStandardRow(lead - 0xa0)) continue;
    for (let trail = FIRST_BYTE; trail <= LAST_BYTE; trail++) {
      const text = decoder.decode(new Uint8Array([...prefix, lead, trail]));
      const chars = [...text];
      if (chars.length !== 1 || text === '\uFFFD') continue;
      out.add(text.codePointAt(0)!);
    }
  }
  return out;
}

/** The JIS X 0208 and JIS X 0212 sets, built on first use by decoding every EUC-JP sequence. */
export function jisCharacterSets(): JisCharacterSets {
  if (sets === undefined) {
    const decoder = new TextDecoder('euc-jp');
    sets = {
      x0208: decodeRows(decoder, [], (row) => (row >= 1 && row <= 8) || (row >= 16 && row <= 84)),
      x0212: decodeRows(decoder, [EUC_JP_SS3], (row) => row >= 1 && row <= 77),
    };
  }
  return sets;
}

function memberSet(): ReadonlySet<number> {
  if (members === undefined) {
    const { x0208, x0212 } = jisCharacterSets();
    const all = new Set<number>([...x0208, ...x0212]);
    for (const ch of JIS_X_0208_STANDARD_MAPPINGS) all.add(ch.codePointAt(0)!);
    members = all;
  }
  return members;
}

/**
 * Whether `ch`, a single code point, is a character of JIS X 0208 or JIS X 0212 (and so may
 * appear in a JPKI certificate unchanged). False for anything that is not exactly one code point.
 */
export function isJisX0208OrX0212(ch: string): boolean {
  const chars = [...ch];
  return chars.length === 1 && memberSet().has(ch.codePointAt(0)!);
}

/** A certificate text and its substitution map (one `0`/`1` per code point of `text`). */
export interface JpkiText {
  text: string;
  substitutionMap: string;
}

const ASCII_SPACE = 0x20;
const IDEOGRAPHIC_SPACE = 0x3000;
const FULL_WIDTH_OFFSET = 0xff01 - 0x21;

/**
 * Converts `s` to the characters a JPKI certificate may carry.
 *
 * First ASCII graphic characters U+0021–U+007E become their full-width forms (U+FF01–U+FF5E)
 * and the ASCII space becomes U+3000 (JIS X 0208 has no half-width forms). Then each code
 * point is kept when it is in JIS X 0208 or JIS X 0212 (map digit `0`) or else replaced by
 * {@link SUBSTITUTE_CHARACTER} (map digit `1`). The result has exactly as many code points as
 * `s`, and the map as many digits. Note that ＂ (from `"`) and ＇ (from `'`) are not in either
 * standard (JIS X 0208 has only “ ” ‘ ’), so they are substituted.
 */
export function toJpkiText(s: string): JpkiText {
  let text = '';
  let substitutionMap = '';
  for (const ch of s) {
    let cp = ch.codePointAt(0)!;
    if (cp === ASCII_SPACE) cp = IDEOGRAPHIC_SPACE;
    else if (cp >= 0x21 && cp <= 0x7e) cp += FULL_WIDTH_OFFSET;
    if (memberSet().has(cp)) {
      text += String.fromCodePoint(cp);
      substitutionMap += '0';
    } else {
      text += SUBSTITUTE_CHARACTER;
      substitutionMap += '1';
    }
  }
  return { text, substitutionMap };
}
