import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  corporateNumberCheckDigit,
  isValidCorporateNumber,
  isValidMyNumber,
  isValidResidentCode,
  myNumberCheckDigit,
  residentCodeCheckDigit,
} from './check-digits.ts';

/*
 * Which single-digit changes can go undetected — the reasoning behind the precise properties.
 *
 * Modulus 11 (住民票コード, 個人番号). Changing body digit Pn from a to a' (a ≠ a') changes
 * r = Σ Pn·Qn mod 11 by Qn·(a' − a) mod 11. 11 is prime, Qn ∈ {2, …, 7} and 1 ≤ |a' − a| ≤ 9,
 * so neither factor is a multiple of 11 and the new r' always differs from r. The map
 * r ↦ check digit sends 2, …, 10 to 9, …, 1 (injective) but sends BOTH 0 and 1 to 0. Hence a
 * body change goes undetected exactly when {r, r'} = {0, 1}: the check digit is 0 and
 * Qn·(a' − a) ≡ +1 (from r = 0) or −1 (from r = 1) mod 11. Example: 00000000000 (r = 0) and
 * 00000000060 (6·2 = 12, r = 1) are both valid 住民票コード. Changing the check digit itself
 * is always detected: each body has exactly one valid check digit. So every single-digit
 * error is detected when the check digit is not 0, and never more than the r ∈ {0, 1} cases
 * escape when it is.
 *
 * Modulus 9 (法人番号). Changing base digit Pn from a to a' changes the sum by Qn·(a' − a),
 * Qn ∈ {1, 2}, both coprime to 9, so the sum mod 9 is unchanged iff a' − a ≡ 0 (mod 9), i.e.
 * iff {a, a'} = {0, 9}. Those substitutions go undetected; all others, and every change of
 * the leading check digit, are detected.
 */

/** Spec-literal weights, written out left to right, independent of the implementation. */
const RESIDENT_WEIGHTS = [5, 4, 3, 2, 7, 6, 5, 4, 3, 2];
const MY_NUMBER_WEIGHTS = [6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2];

function weightedMod11(body: string, weights: readonly number[]): number {
  let sum = 0;
  for (let i = 0; i < weights.length; i++) sum += Number(body.charAt(i)) * weights[i]!;
  return sum % 11;
}

function digitString(length: number): fc.Arbitrary<string> {
  return fc
    .array(fc.integer({ min: 0, max: 9 }), { minLength: length, maxLength: length })
    .map((ds) => ds.join(''));
}

/** Replaces the digit at `pos` by a different digit (`shift` ∈ 1..9 steps on, mod 10). */
function substitute(s: string, pos: number, shift: number): string {
  const next = (Number(s.charAt(pos)) + shift) % 10;
  return s.slice(0, pos) + String(next) + s.slice(pos + 1);
}

/** Every string that differs from `s` in exactly one digit. */
function allSubstitutions(s: string): string[] {
  const out: string[] = [];
  for (let pos = 0; pos < s.length; pos++) {
    for (let shift = 1; shift <= 9; shift++) out.push(substitute(s, pos, shift));
  }
  return out;
}

const BAD_INPUTS: [string, unknown][] = [
  ['empty', ''],
  ['letters', 'abcdefghijklm'],
  ['a space', ' '],
  ['a sign', '+'],
  ['a newline', '\n'],
];

describe('住民票コード (resident code)', () => {
  const VECTORS: [string, string][] = [
    ['1234567890', '12345678903'],
    ['2472705960', '24727059608'],
    ['1234567892', '12345678920'],
    ['1234567897', '12345678970'],
  ];

  it.each(VECTORS)('%s → %s', (body, code) => {
    expect(residentCodeCheckDigit(body)).toBe(code.charAt(10));
    expect(isValidResidentCode(code)).toBe(true);
    const r = weightedMod11(body, RESIDENT_WEIGHTS);
    expect(String(r <= 1 ? 0 : 11 - r)).toBe(code.charAt(10));
  });

  it('rejects every other check digit for the vectors', () => {
    for (const [body, code] of VECTORS) {
      for (let d = 0; d <= 9; d++) {
        const candidate = body + String(d);
        expect(isValidResidentCode(candidate)).toBe(candidate === code);
      }
    }
  });

  it.each([
    ['10 digits', '1234567890'],
    ['12 digits', '123456789031'],
    ['full-width digits', '１２３４５６７８９０３'],
    ['one full-width digit', '1234567890３'],
    ['a trailing newline', '12345678903\n'],
    ['a leading space', ' 2345678903'],
    ['a hyphen', '1234-567890'],
  ])('rejects %s', (_label, s) => {
    expect(isValidResidentCode(s)).toBe(false);
  });

  it('never throws on non-strings', () => {
    for (const v of [undefined, null, 12345678903, 12345678903n, ['12345678903'], {}]) {
      expect(isValidResidentCode(v as string)).toBe(false);
    }
  });

  it('throws RangeError on a malformed body', () => {
    for (const body of ['123456789', '12345678901', '１２３４５６７８９０', '123456789a', '']) {
      expect(() => residentCodeCheckDigit(body)).toThrow(RangeError);
    }
    expect(() => residentCodeCheckDigit(1234567890 as unknown as string)).toThrow(RangeError);
  });

  it('keeps leading zeros', () => {
    expect(residentCodeCheckDigit('0000000000')).toBe('0');
    expect(isValidResidentCode('00000000000')).toBe(true);
    expect(isValidResidentCode('0000000000')).toBe(false);
  });

  it('misses exactly the predicted single-digit changes of 00000000000 (r = 0)', () => {
    // Undetected iff Qn·a' ≡ 1 (mod 11): a' = Qn⁻¹ mod 11 at each body position.
    const inverse: Record<number, number> = { 2: 6, 3: 4, 4: 3, 5: 9, 6: 2, 7: 8 };
    const expected = RESIDENT_WEIGHTS.map((w, pos) => {
      const d = String(inverse[w]);
      return '0'.repeat(pos) + d + '0'.repeat(10 - pos);
    });
    expect(expected).toContain('00000000060');
    const undetected = allSubstitutions('00000000000').filter(isValidResidentCode);
    expect(undetected.sort()).toEqual(expected.sort());
  });

  it('validates any body followed by its check digit (property)', () => {
    fc.assert(
      fc.property(digitString(10), (body) => {
        const check = residentCodeCheckDigit(body);
        expect(check).toMatch(/^[0-9]$/);
        expect(isValidResidentCode(body + check)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('detects a single-digit change unless r moves between 0 and 1 (property)', () => {
    fc.assert(
      fc.property(
        digitString(10),
        fc.integer({ min: 0, max: 10 }),
        fc.integer({ min: 1, max: 9 }),
        (body, pos, shift) => {
          const code = body + residentCodeCheckDigit(body);
          const changed = substitute(code, pos, shift);
          let expectValid = false;
          if (pos < 10) {
            const r = weightedMod11(body, RESIDENT_WEIGHTS);
            const r2 = weightedMod11(changed.slice(0, 10), RESIDENT_WEIGHTS);
            expect(r2).not.toBe(r);
            expectValid = r <= 1 && r2 <= 1;
          }
          if (code.charAt(10) !== '0') expect(expectValid).toBe(false);
          expect(isValidResidentCode(changed)).toBe(expectValid);
        },
      ),
      { numRuns: 5000 },
    );
  });
});

describe('個人番号 (My Number)', () => {
  const VALID = [
    '123456789018',
    '023456789013',
    '111111111118',
    '000111111111',
    '548836529885',
    '983205673214',
    '621498320257',
    '465281266333',
  ];
  const INVALID = [
    '123456789010',
    '123456789011',
    '123456789012',
    '123456789013',
    '123456789014',
    '123456789015',
    '123456789016',
    '123456789017',
    '123456789019',
    '983205673210',
    '621498320258',
  ];

  it.each(VALID)('accepts %s', (n) => {
    expect(isValidMyNumber(n)).toBe(true);
    expect(myNumberCheckDigit(n.slice(0, 11))).toBe(n.charAt(11));
  });

  it.each(INVALID)('rejects %s', (n) => {
    expect(isValidMyNumber(n)).toBe(false);
    expect(myNumberCheckDigit(n.slice(0, 11))).not.toBe(n.charAt(11));
  });

  it.each([
    ['11 digits', '12345678901'],
    ['13 digits', '1234567890180'],
    ['full-width digits', '１２３４５６７８９０１８'],
    ['one full-width digit', '12345678901８'],
    ['a trailing newline', '123456789018\n'],
    ['hyphens', '1234-5678-9018'],
    ['a resident code', '12345678903'],
    ...BAD_INPUTS.map(([label, v]): [string, string] => [label, v as string]),
  ])('rejects %s', (_label, s) => {
    expect(isValidMyNumber(s)).toBe(false);
  });

  it('never throws on non-strings', () => {
    for (const v of [undefined, null, 123456789018, 123456789018n, ['123456789018'], {}]) {
      expect(isValidMyNumber(v as string)).toBe(false);
    }
  });

  it('throws RangeError on a malformed body', () => {
    for (const body of [
      '1234567890',
      '123456789018',
      '１２３４５６７８９０１',
      '1234567890x',
      '',
    ]) {
      expect(() => myNumberCheckDigit(body)).toThrow(RangeError);
    }
  });

  it('does not echo the input in the error', () => {
    expect(() => myNumberCheckDigit('1234567890')).toThrow(/^My Number body must be/);
    try {
      myNumberCheckDigit('9832056732');
    } catch (e) {
      expect(String(e)).not.toContain('9832056732');
    }
  });

  it('misses exactly the predicted single-digit changes of 000000000000 (r = 0)', () => {
    const inverse: Record<number, number> = { 2: 6, 3: 4, 4: 3, 5: 9, 6: 2, 7: 8 };
    const expected = MY_NUMBER_WEIGHTS.map((w, pos) => {
      const d = String(inverse[w]);
      return '0'.repeat(pos) + d + '0'.repeat(11 - pos);
    });
    const undetected = allSubstitutions('000000000000').filter(isValidMyNumber);
    expect(undetected.sort()).toEqual(expected.sort());
  });

  it('validates any body followed by its check digit (property)', () => {
    fc.assert(
      fc.property(digitString(11), (body) => {
        const check = myNumberCheckDigit(body);
        expect(check).toMatch(/^[0-9]$/);
        expect(isValidMyNumber(body + check)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('detects a single-digit change unless r moves between 0 and 1 (property)', () => {
    fc.assert(
      fc.property(
        digitString(11),
        fc.integer({ min: 0, max: 11 }),
        fc.integer({ min: 1, max: 9 }),
        (body, pos, shift) => {
          const n = body + myNumberCheckDigit(body);
          const changed = substitute(n, pos, shift);
          let expectValid = false;
          if (pos < 11) {
            const r = weightedMod11(body, MY_NUMBER_WEIGHTS);
            const r2 = weightedMod11(changed.slice(0, 11), MY_NUMBER_WEIGHTS);
            expect(r2).not.toBe(r);
            expectValid = r <= 1 && r2 <= 1;
          }
          if (n.charAt(11) !== '0') expect(expectValid).toBe(false);
          expect(isValidMyNumber(changed)).toBe(expectValid);
        },
      ),
      { numRuns: 5000 },
    );
  });
});

describe('法人番号 (corporate number)', () => {
  const VALID = ['7010705000725', '1010601008968', '5835678256246'];

  it.each(VALID)('accepts %s', (n) => {
    expect(isValidCorporateNumber(n)).toBe(true);
    expect(corporateNumberCheckDigit(n.slice(1))).toBe(n.charAt(0));
  });

  it('rejects 2835678256246 and every other leading digit of the valid vectors', () => {
    expect(isValidCorporateNumber('2835678256246')).toBe(false);
    for (const n of VALID) {
      for (let d = 0; d <= 9; d++) {
        const candidate = String(d) + n.slice(1);
        expect(isValidCorporateNumber(candidate)).toBe(candidate === n);
      }
    }
  });

  it('puts the check digit first, not last', () => {
    // 7010705000725 is valid; the same digits rotated to put "7" last are not.
    expect(isValidCorporateNumber('0107050007257')).toBe(false);
  });

  it.each([
    ['12 digits', '701070500072'],
    ['14 digits', '70107050007250'],
    ['full-width digits', '７０１０７０５０００７２５'],
    ['one full-width digit', '７010705000725'],
    ['a trailing newline', '7010705000725\n'],
    ['a My Number', '123456789018'],
    ...BAD_INPUTS.map(([label, v]): [string, string] => [label, v as string]),
  ])('rejects %s', (_label, s) => {
    expect(isValidCorporateNumber(s)).toBe(false);
  });

  it('never throws on non-strings', () => {
    for (const v of [undefined, null, 7010705000725, ['7010705000725'], {}]) {
      expect(isValidCorporateNumber(v as string)).toBe(false);
    }
  });

  it('throws RangeError on a malformed base', () => {
    for (const base of [
      '01070500072',
      '0107050007250',
      '０１０７０５０００７２５',
      '01070500072x',
    ]) {
      expect(() => corporateNumberCheckDigit(base)).toThrow(RangeError);
    }
  });

  it('misses exactly the 0 ↔ 9 changes in the base of 9000000000000', () => {
    expect(corporateNumberCheckDigit('000000000000')).toBe('9');
    const expected = Array.from(
      { length: 12 },
      (_, i) => '9' + '0'.repeat(i) + '9' + '0'.repeat(11 - i),
    );
    const undetected = allSubstitutions('9000000000000').filter(isValidCorporateNumber);
    expect(undetected.sort()).toEqual(expected.sort());
  });

  it('validates any base preceded by its check digit, which is 1–9 (property)', () => {
    fc.assert(
      fc.property(digitString(12), (base) => {
        const check = corporateNumberCheckDigit(base);
        expect(check).toMatch(/^[1-9]$/);
        expect(isValidCorporateNumber(check + base)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('detects a single-digit change unless it swaps 0 and 9 in the base (property)', () => {
    fc.assert(
      fc.property(
        digitString(12),
        fc.integer({ min: 0, max: 12 }),
        fc.integer({ min: 1, max: 9 }),
        (base, pos, shift) => {
          const n = corporateNumberCheckDigit(base) + base;
          const changed = substitute(n, pos, shift);
          const pair = [n.charAt(pos), changed.charAt(pos)].sort().join('');
          const expectValid = pos > 0 && pair === '09';
          expect(isValidCorporateNumber(changed)).toBe(expectValid);
        },
      ),
      { numRuns: 5000 },
    );
  });
});
