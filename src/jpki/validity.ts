/**
 * 有効期間 of JPKI certificates. A 署名用電子証明書 or 利用者証明用電子証明書 is valid from its issuance
 * until the holder's 5th birthday after the date of issuance (公的個人認証法第5条 (署名用) and
 * 第24条 (利用者証明用) leave the period to 総務省令, which sets it in 同法施行規則), and never
 * beyond the expiry of the card that holds it. Every JPKI notAfter is 23:59:59 JST of a calendar day, i.e.
 * `14:59:59Z` (see `docs/JPKI-PROFILE.md`).
 *
 * Japan has used UTC+9 without daylight saving since 1952, so JST is a fixed offset here.
 * Pure: dates in, dates out; no clock.
 */
import { isCalendarDate } from '../registry/registry.rules.ts';

const JST_OFFSET_MS = 9 * 3_600_000;
const CERTIFICATE_YEARS = 5;

interface Ymd {
  y: number;
  m: number;
  d: number;
}

function isLeapYear(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

function parse(date: string, what: string): Ymd {
  if (!isCalendarDate(date)) throw new RangeError(`${what} must be a YYYY-MM-DD date`);
  return { y: Number(date.slice(0, 4)), m: Number(date.slice(5, 7)), d: Number(date.slice(8, 10)) };
}

function format({ y, m, d }: Ymd): string {
  if (y < 1 || y > 9999) throw new RangeError('date out of range (years 0001–9999)');
  return `${String(y).padStart(4, '0')}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
}

function daysInMonth(y: number, m: number): number {
  if (m === 2) return isLeapYear(y) ? 29 : 28;
  return m === 4 || m === 6 || m === 9 || m === 11 ? 30 : 31;
}

function dayBefore({ y, m, d }: Ymd): Ymd {
  if (d > 1) return { y, m, d: d - 1 };
  if (m > 1) return { y, m: m - 1, d: daysInMonth(y, m - 1) };
  return { y: y - 1, m: 12, d: 31 };
}

function assertValidInstant(instant: Date, what: string): void {
  if (Number.isNaN(instant.getTime())) throw new RangeError(`${what} must be a valid Date`);
}

/** The calendar date in Japan (Asia/Tokyo, UTC+9, no daylight saving) at `instant`, `YYYY-MM-DD`. */
export function jstDateOf(instant: Date): string {
  assertValidInstant(instant, 'instant');
  return new Date(instant.getTime() + JST_OFFSET_MS).toISOString().slice(0, 10);
}

/** The last second of the JST day `date` (23:59:59 JST), i.e. `<date>T14:59:59Z`. */
export function endOfJstDay(date: string): Date {
  parse(date, 'date');
  return new Date(`${date}T14:59:59Z`);
}

/**
 * The birthday of someone born on `birth` in year `y`. A 29 February birthday falls on
 * 28 February in a common year. 年齢計算ニ関スル法律 (明治35年法律第50号) reckons age from the day
 * of birth by 民法第143条, whose 第2項 says that a period reckoned in years whose last month has
 * no day corresponding to its start ends on the last day of that month
 * ("その月の末日に満了する"); for a 29 February start that is 28 February in a common year.
 */
function birthdayIn(birth: Ymd, y: number): Ymd {
  if (birth.m === 2 && birth.d === 29 && !isLeapYear(y)) return { y, m: 2, d: 28 };
  return { y, m: birth.m, d: birth.d };
}

/**
 * The holder's 5th birthday strictly after `issuedOn` (both `YYYY-MM-DD`). A certificate issued
 * on a birthday does not count that birthday, so it runs to the same day five years on. A
 * 29 February birthday is 28 February in a common year and 29 February in a leap year (民法第143条
 * 第2項, applied to age by 年齢計算ニ関スル法律: the anniversary period ends on the last day of
 * February). Throws a RangeError on a malformed date or an issuance before the birth.
 */
export function fifthBirthdayAfter(birthDate: string, issuedOn: string): string {
  const birth = parse(birthDate, 'birthDate');
  parse(issuedOn, 'issuedOn');
  if (issuedOn < birthDate) throw new RangeError('issuedOn must not be before birthDate');
  const year = Number(issuedOn.slice(0, 4));
  const firstYear = format(birthdayIn(birth, year)) > issuedOn ? year : year + 1;
  return format(birthdayIn(birth, firstYear + CERTIFICATE_YEARS - 1));
}

/**
 * notAfter of a holder's certificate issued at `issuedAt`: 23:59:59 JST of the 5th birthday
 * after the JST date of issuance, and no later than `cap` (the card's own expiry) when given.
 */
export function certificateNotAfter(birthDate: string, issuedAt: Date, cap?: Date): Date {
  const end = endOfJstDay(fifthBirthdayAfter(birthDate, jstDateOf(issuedAt)));
  if (cap === undefined) return end;
  assertValidInstant(cap, 'cap');
  return cap.getTime() < end.getTime() ? new Date(cap.getTime()) : end;
}

/**
 * notAfter of a CA certificate valid `years` whole years from `notBefore`: 23:59:59 JST of the
 * day before the anniversary of notBefore's JST date (the real 2023 J-LIS CAs: notBefore
 * 2023-07-16T01:01:04Z → notAfter 2033-07-15T14:59:59Z), the issuance day counting as the
 * period's first day. A 29 February notBefore has its anniversary on 1 March in a common year,
 * so the period ends on 28 February whether or not the final year is a leap year — the same
 * day 民法第143条第2項 gives ("その月の末日" when the final year has no 29 February).
 */
export function caNotAfter(notBefore: Date, years: number): Date {
  if (!Number.isSafeInteger(years) || years < 1) {
    throw new RangeError('years must be a positive integer');
  }
  const start = parse(jstDateOf(notBefore), 'notBefore');
  const y = start.y + years;
  const anniversary =
    start.m === 2 && start.d === 29 && !isLeapYear(y)
      ? { y, m: 3, d: 1 }
      : { y, m: start.m, d: start.d };
  return endOfJstDay(format(dayBefore(anniversary)));
}
