import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  JIS_X_0208_STANDARD_MAPPINGS,
  SUBSTITUTE_CHARACTER,
  isJisX0208OrX0212,
  jisCharacterSets,
  toJpkiText,
} from './jis.ts';

const cp = (ch: string): number => ch.codePointAt(0)!;

describe('jisCharacterSets', () => {
  it('holds exactly the characters of the two standards', () => {
    const { x0208, x0212 } = jisCharacterSets();
    // JIS X 0208:1997: 524 non-kanji (rows 1–8) + 2,965 level-1 + 3,390 level-2 kanji.
    expect(x0208.size).toBe(6879);
    // JIS X 0212:1990: 266 non-kanji + 5,801 kanji.
    expect(x0212.size).toBe(6067);
    // The decoder maps JIS X 0212 2-55 (TILDE) to U+FF5E, the same code point as 0208's 1-33.
    expect([...x0212].filter((c) => x0208.has(c)).map((c) => String.fromCodePoint(c))).toEqual([
      '～',
    ]);
  });

  it('is built once', () => {
    expect(jisCharacterSets()).toBe(jisCharacterSets());
  });

  it('places known characters in the right standard', () => {
    const { x0208, x0212 } = jisCharacterSets();
    for (const ch of ['亜', '〓', '４', '　', 'ア', 'ぁ', 'Ω', 'Я', '凜', '熙', '々', '〆']) {
      expect(x0208.has(cp(ch)), ch).toBe(true);
    }
    for (const ch of ['丂', '¦', '№', '鷗', '伃', 'é']) expect(x0212.has(cp(ch)), ch).toBe(true);
    expect(x0208.has(cp('丂'))).toBe(false);
  });

  it('leaves out the vendor extensions the decoder also knows', () => {
    const { x0208, x0212 } = jisCharacterSets();
    // NEC row 13, NEC-selected IBM extensions (rows 89–92) and the eucJP-ms IBM row 83 of 0212.
    for (const ch of ['①', '㈱', '㍉', '髙', '﨑', 'ⅰ', 'Ⅰ', '＂', '＇', '∮']) {
      expect(x0208.has(cp(ch)) || x0212.has(cp(ch)), ch).toBe(false);
    }
    expect(new TextDecoder('euc-jp').decode(new Uint8Array([0xfc, 0xe2]))).toBe('髙');
  });
});

describe('isJisX0208OrX0212', () => {
  it('accepts members of either standard', () => {
    for (const ch of ['亜', '丂', '〓', '４', '～', 'ー', '・', '＝']) {
      expect(isJisX0208OrX0212(ch), ch).toBe(true);
    }
  });

  it('accepts the JIS X 0221 mappings of the characters the decoder maps elsewhere', () => {
    for (const ch of JIS_X_0208_STANDARD_MAPPINGS) expect(isJisX0208OrX0212(ch), ch).toBe(true);
    expect(isJisX0208OrX0212('〜')).toBe(true);
  });

  it('rejects everything else', () => {
    for (const ch of ['\u{20BB7}', '髙', '😀', '①', 'A', ' ', 'ｱ', '€', '\u{E000}']) {
      expect(isJisX0208OrX0212(ch), ch).toBe(false);
    }
  });

  it('rejects strings that are not exactly one code point', () => {
    expect(isJisX0208OrX0212('')).toBe(false);
    expect(isJisX0208OrX0212('亜亜')).toBe(false);
    expect(isJisX0208OrX0212('葛\u{E0100}')).toBe(false);
  });
});

describe('toJpkiText', () => {
  it('keeps JIS text unchanged', () => {
    expect(toJpkiText('東京都港区芝公園４丁目２番地８')).toEqual({
      text: '東京都港区芝公園４丁目２番地８',
      substitutionMap: '0'.repeat(15),
    });
  });

  it('widens ASCII and the ASCII space', () => {
    expect(toJpkiText('1-2-3 Abc~')).toEqual({
      text: '１－２－３　Ａｂｃ～',
      substitutionMap: '0000000000',
    });
  });

  it('substitutes and flags characters outside both standards', () => {
    expect(toJpkiText('𠮷野髙子')).toEqual({
      text: `${SUBSTITUTE_CHARACTER}野${SUBSTITUTE_CHARACTER}子`,
      substitutionMap: '1010',
    });
    expect(toJpkiText('"a"')).toEqual({ text: '〓ａ〓', substitutionMap: '101' });
    expect(toJpkiText('ｱ😀')).toEqual({ text: '〓〓', substitutionMap: '11' });
  });

  it('returns empty text for empty input', () => {
    expect(toJpkiText('')).toEqual({ text: '', substitutionMap: '' });
  });

  it('gives one map digit per code point, and only JIS characters in the text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        const { text, substitutionMap } = toJpkiText(s);
        const chars = [...text];
        expect(chars.length).toBe([...s].length);
        expect(substitutionMap).toMatch(/^[01]*$/);
        expect(substitutionMap.length).toBe(chars.length);
        chars.forEach((ch, i) => {
          expect(isJisX0208OrX0212(ch)).toBe(true);
          if (substitutionMap[i] === '1') expect(ch).toBe(SUBSTITUTE_CHARACTER);
        });
      }),
    );
  });

  it('is the identity on strings of JIS characters', () => {
    const { x0208, x0212 } = jisCharacterSets();
    const pool = [...x0208, ...x0212].map((c) => String.fromCodePoint(c));
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...pool), { maxLength: 30 }), (chars) => {
        const s = chars.join('');
        expect(toJpkiText(s)).toEqual({ text: s, substitutionMap: '0'.repeat(chars.length) });
      }),
    );
  });
});
