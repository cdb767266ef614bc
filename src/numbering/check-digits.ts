/**
 * Check digits (検査数字 / 検査用数字) of the three national numbers.
 *
 * - 住民票コード (resident code): 11 digits, a 10-digit body followed by a check digit
 *   (住民基本台帳法施行規則 第1条; 平成14年総務省告示第436号).
 * - 個人番号 (My Number): 12 digits, an 11-digit body followed by a check digit
 *   (平成26年総務省令第85号 第5条).
 * - 法人番号 (corporate number): 13 digits, the check digit FIRST, followed by a 12-digit base
 *   (法人番号の指定等に関する省令 (平成26年財務省令第70号) 第2条).
 *
 * The two modulus-11 schemes number the body digits from the right (n = 1 is the last body
 * digit) and weight the n-th digit Pn by Qn = n + 1 for 1 ≤ n ≤ 6 and n − 5 for n ≥ 7
 * (2, 3, 4, 5, 6, 7, 2, 3, 4, 5, 6 from the right); with r = Σ Pn·Qn mod 11 the check digit is
 * 0 when r ≤ 1 and 11 − r otherwise, so it is always a single digit. The modulus-9 scheme
 * weights the base by Qn = 1 (n odd) and 2 (n even) from the right and puts 9 − (Σ mod 9),
 * always 1–9, in front.
 *
 * Numbers are strings (leading zeros are legal). Only ASCII digits are accepted; full-width
 * digits such as `１２３` are rejected rather than normalised. The `is*` functions never
 * throw; the `*CheckDigit` functions throw a RangeError on malformed input. Error messages
 * never echo the input, which may be a My Number.
 */

function isAsciiDigits(s: unknown, length: number): s is string {
  if (typeof s !== 'string' || s.length !== length) return false;
  for (let i = 0; i < length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

function assertAsciiDigits(s: unknown, length: number, what: string): asserts s is string {
  if (!isAsciiDigits(s, length)) {
    throw new RangeError(`${what} must be exactly ${length} ASCII digits`);
  }
}

/** The modulus-11 check digit shared by 住民票コード and 個人番号 (body already validated). */
function mod11CheckDigit(body: string): string {
  const len = body.length;
  let sum = 0;
  for (let n = 1; n <= len; n++) {
    const p = body.charCodeAt(len - n) - 48;
    const q = n <= 6 ? n + 1 : n - 5;
    sum += p * q;
  }
  const r = sum % 11;
  return String(r <= 1 ? 0 : 11 - r);
}

/** The modulus-9 check digit of a 法人番号 (base already validated). */
function mod9CheckDigit(base: string): string {
  const len = base.length;
  let sum = 0;
  for (let n = 1; n <= len; n++) {
    const p = base.charCodeAt(len - n) - 48;
    sum += n % 2 === 1 ? p : 2 * p;
  }
  return String(9 - (sum % 9));
}

/**
 * The check digit (11th digit) of a 住民票コード for its 10-digit body
 * (住民基本台帳法施行規則 第1条; 平成14年総務省告示第436号).
 * @throws RangeError unless `body10` is exactly 10 ASCII digits.
 */
export function residentCodeCheckDigit(body10: string): string {
  assertAsciiDigits(body10, 10, 'resident code body');
  return mod11CheckDigit(body10);
}

/**
 * Whether `s` is exactly 11 ASCII digits whose last digit is the 住民票コード check digit of
 * the first ten. Never throws.
 */
export function isValidResidentCode(s: string): boolean {
  if (!isAsciiDigits(s, 11)) return false;
  return mod11CheckDigit(s.slice(0, 10)) === s.charAt(10);
}

/**
 * The check digit (12th digit) of a 個人番号 for its 11-digit body
 * (平成26年総務省令第85号 第5条).
 * @throws RangeError unless `body11` is exactly 11 ASCII digits.
 */
export function myNumberCheckDigit(body11: string): string {
  assertAsciiDigits(body11, 11, 'My Number body');
  return mod11CheckDigit(body11);
}

/**
 * Whether `s` is exactly 12 ASCII digits whose last digit is the 個人番号 check digit of the
 * first eleven. Never throws.
 */
export function isValidMyNumber(s: string): boolean {
  if (!isAsciiDigits(s, 12)) return false;
  return mod11CheckDigit(s.slice(0, 11)) === s.charAt(11);
}

/**
 * The check digit (FIRST digit, always 1–9) of a 法人番号 for its 12-digit base
 * (法人番号の指定等に関する省令 (平成26年財務省令第70号) 第2条).
 * @throws RangeError unless `base12` is exactly 12 ASCII digits.
 */
export function corporateNumberCheckDigit(base12: string): string {
  assertAsciiDigits(base12, 12, 'corporate number base');
  return mod9CheckDigit(base12);
}

/**
 * Whether `s` is exactly 13 ASCII digits whose first digit is the 法人番号 check digit of the
 * remaining twelve. Never throws.
 */
export function isValidCorporateNumber(s: string): boolean {
  if (!isAsciiDigits(s, 13)) return false;
  return mod9CheckDigit(s.slice(1)) === s.charAt(0);
}
