/**
 * The 基本4情報 (氏名, 生年月日, 性別, 住所) a 署名用電子証明書 records (電子署名等に係る地方公共団体情報
 * システム機構の認証業務に関する法律 (公的個人認証法) 第7条), as the six subjectAltName `otherName`
 * values of the J-LIS certificate profile (see `docs/JPKI-PROFILE.md`, "Signing certificate").
 *
 * Pure: from the holder's recorded identity fields to the exact strings the certificate carries.
 */
import type { Sex } from '../registry/registry.rules.ts';
import { isCalendarDate } from '../registry/registry.rules.ts';
import { toJpkiText } from './jis.ts';

/** The otherName type-ids of the 基本4情報 and the two substitution maps (J-LIS arc 1.2.392.200149.8.5.5). */
export const JPKI_OTHER_NAME_OIDS = {
  name: '1.2.392.200149.8.5.5.1',
  nameSubstitutionMap: '1.2.392.200149.8.5.5.2',
  sex: '1.2.392.200149.8.5.5.3',
  birthDate: '1.2.392.200149.8.5.5.4',
  address: '1.2.392.200149.8.5.5.5',
  addressSubstitutionMap: '1.2.392.200149.8.5.5.6',
} as const;

/** One subjectAltName otherName: its type-id and its `[0] EXPLICIT UTF8String` value. */
export interface OtherNameEntry {
  oid: string;
  value: string;
}

/** The identity fields a signing certificate is made from (as recorded in the 住民票). */
export interface BasicFourInformation {
  /** 氏名; parts separated by an ASCII or ideographic space, `・` or `＝`. */
  name: string;
  /** 生年月日, `YYYY-MM-DD` (Gregorian). */
  birthDate: string;
  sex: Sex;
  /** 住所, at most 200 code points. */
  address: string;
}

/** The longest 住所 a certificate may carry, in characters (code points). */
export const CERTIFICATE_ADDRESS_MAX = 200;

/** Era digit of the certificate's 生年月日: 1 明治 … 5 令和, 0 when no era can be given. */
export type EraDigit = '0' | '1' | '2' | '3' | '4' | '5';

/**
 * First Gregorian day of each era (元号), latest first. 明治 was proclaimed on 1868-10-23 and
 * applied from 慶応4年1月1日 (1868-01-25); every day of 1868 counts as 明治 here, matching the
 * registry's earliest birth date (`EARLIEST_BIRTH_DATE`, 1868-01-01). The others: 大正 from
 * 1912-07-30, 昭和 from 1926-12-25, 平成 from 1989-01-08 (元号を改める政令, 昭和64年政令第1号),
 * 令和 from 2019-05-01 (元号を改める政令, 平成31年政令第143号).
 */
const ERA_STARTS: ReadonlyArray<readonly [string, EraDigit]> = [
  ['2019-05-01', '5'],
  ['1989-01-08', '4'],
  ['1926-12-25', '3'],
  ['1912-07-30', '2'],
  ['1868-01-01', '1'],
];

/**
 * The era digit of a `YYYY-MM-DD` date: `1` 明治, `2` 大正, `3` 昭和, `4` 平成, `5` 令和, and `0`
 * for a date before 1868 that no era digit can place. Throws a RangeError on a string that is
 * not a real calendar date.
 */
export function eraDigitOf(birthDate: string): EraDigit {
  if (!isCalendarDate(birthDate)) throw new RangeError('birthDate must be a YYYY-MM-DD date');
  for (const [start, digit] of ERA_STARTS) if (birthDate >= start) return digit;
  return '0';
}

/** 性別 code of the certificate: `1` male, `2` female, `3` unknown (not used by the registry). */
export function sexCode(sex: Sex | 'unknown'): '1' | '2' | '3' {
  switch (sex) {
    case 'male':
      return '1';
    case 'female':
      return '2';
    case 'unknown':
      return '3';
  }
}

/** The certificate's 生年月日: era digit + Gregorian `YYYYMMDD` (2008-10-31 → `420081031`). */
export function certificateBirthDate(birthDate: string): string {
  return eraDigitOf(birthDate) + birthDate.replaceAll('-', '');
}

/**
 * The six otherName entries of a signing certificate's subjectAltName, in the order real
 * certificates carry them: 氏名, 生年月日, 性別, 住所, name substitution map, address
 * substitution map.
 *
 * - 氏名: the recorded name, every separating space (ASCII or ideographic) written as U+3000
 *   (the profile's "surname U+3000 given name"), through {@link toJpkiText}.
 * - 生年月日: {@link certificateBirthDate}.
 * - 性別: {@link sexCode}.
 * - 住所: through {@link toJpkiText}; at most {@link CERTIFICATE_ADDRESS_MAX} characters.
 *
 * Throws a RangeError when the name or address is empty, the address is too long, or the
 * birth date is not a calendar date. Messages never carry the values.
 */
export function signingCertificateOtherNames(record: BasicFourInformation): OtherNameEntry[] {
  if (record.name.length === 0) throw new RangeError('name must not be empty');
  if (record.address.length === 0) throw new RangeError('address must not be empty');
  if ([...record.address].length > CERTIFICATE_ADDRESS_MAX) {
    throw new RangeError(
      `address must be at most ${CERTIFICATE_ADDRESS_MAX} characters (code points)`,
    );
  }
  // toJpkiText turns the ASCII space into U+3000 as well; done here too so the rule is visible.
  const name = toJpkiText(record.name.replaceAll(' ', '\u3000'));
  const address = toJpkiText(record.address);
  return [
    { oid: JPKI_OTHER_NAME_OIDS.name, value: name.text },
    { oid: JPKI_OTHER_NAME_OIDS.birthDate, value: certificateBirthDate(record.birthDate) },
    { oid: JPKI_OTHER_NAME_OIDS.sex, value: sexCode(record.sex) },
    { oid: JPKI_OTHER_NAME_OIDS.address, value: address.text },
    { oid: JPKI_OTHER_NAME_OIDS.nameSubstitutionMap, value: name.substitutionMap },
    { oid: JPKI_OTHER_NAME_OIDS.addressSubstitutionMap, value: address.substitutionMap },
  ];
}
