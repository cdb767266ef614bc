/**
 * 全国地方公共団体コード (nationwide local public entity code) check digit.
 *
 * The code is assigned by 総務省 (Ministry of Internal Affairs and Communications) as
 * 「全国地方公共団体コード」 and standardised as JIS X 0402. It has six digits: a five-digit body
 * (two digits for the prefecture, three for the municipality; prefectures themselves use
 * `000`) followed by a check digit computed with modulus 11:
 *
 * - multiply the body digits, left to right, by the weights 6, 5, 4, 3, 2 and sum them;
 * - r = sum mod 11, c = 11 − r;
 * - the check digit is c, or c − 10 when c ≥ 10 (so r = 0 gives 1 and r = 1 gives 0).
 *
 * Examples: 13101 (千代田区) → 131016, 13000 (東京都) → 130001, 01100 (札幌市) → 011002.
 *
 * All functions are pure and accept ASCII digits only; full-width digits such as `１３１０１`
 * are rejected rather than normalised.
 */

const WEIGHTS = [6, 5, 4, 3, 2] as const;
const BODY_PATTERN = /^[0-9]{5}$/;
const CODE_PATTERN = /^[0-9]{6}$/;

function checkDigitOf(body5: string): string {
  let sum = 0;
  for (let i = 0; i < WEIGHTS.length; i++) {
    sum += (body5.charCodeAt(i) - 48) * WEIGHTS[i]!;
  }
  const c = 11 - (sum % 11);
  return String(c >= 10 ? c - 10 : c);
}

/**
 * The check digit (sixth digit) of a 全国地方公共団体コード for a five-digit body.
 * @throws RangeError unless `body5` is exactly five ASCII digits.
 */
export function localGovernmentCheckDigit(body5: string): string {
  if (!BODY_PATTERN.test(body5)) {
    throw new RangeError('local government code body must be exactly 5 ASCII digits');
  }
  return checkDigitOf(body5);
}

/**
 * The six-digit 全国地方公共団体コード for a five-digit body (body followed by its check digit).
 * @throws RangeError unless `body5` is exactly five ASCII digits.
 */
export function withCheckDigit(body5: string): string {
  return body5 + localGovernmentCheckDigit(body5);
}

/**
 * Whether `code6` is exactly six ASCII digits whose last digit is the correct check digit.
 * Never throws.
 */
export function isValidLocalGovernmentCode(code6: string): boolean {
  if (!CODE_PATTERN.test(code6)) return false;
  return checkDigitOf(code6.slice(0, 5)) === code6.charAt(5);
}
