import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  caNotAfter,
  certificateNotAfter,
  endOfJstDay,
  fifthBirthdayAfter,
  jstDateOf,
} from './validity.ts';

const iso = (d: Date): string => d.toISOString();

const tokyoDate = new Intl.DateTimeFormat('en-CA', {
  timeZone: 'Asia/Tokyo',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
});

/** `YYYY-MM-DD` plus whole years, 29 February → 28 February in a common year. */
function plusYears(date: string, years: number): string {
  const y = Number(date.slice(0, 4)) + years;
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  const md = date.slice(5) === '02-29' && !leap ? '02-28' : date.slice(5);
  return `${String(y).padStart(4, '0')}-${md}`;
}

const dateString = (min: string, max: string) =>
  fc
    .date({
      min: new Date(`${min}T00:00:00Z`),
      max: new Date(`${max}T00:00:00Z`),
      noInvalidDate: true,
    })
    .map((d) => d.toISOString().slice(0, 10));

describe('jstDateOf', () => {
  it('takes the date in Japan, nine hours ahead of UTC', () => {
    expect(jstDateOf(new Date('2024-04-01T14:59:59.999Z'))).toBe('2024-04-01');
    expect(jstDateOf(new Date('2024-04-01T15:00:00Z'))).toBe('2024-04-02');
    expect(jstDateOf(new Date('2023-12-31T15:00:00Z'))).toBe('2024-01-01');
    expect(jstDateOf(new Date('2024-02-28T15:30:00Z'))).toBe('2024-02-29');
  });

  it('agrees with the Asia/Tokyo time zone', () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date('1960-01-01'), max: new Date('2100-01-01'), noInvalidDate: true }),
        (d) => {
          expect(jstDateOf(d)).toBe(tokyoDate.format(d));
        },
      ),
    );
  });

  it('throws on an invalid Date', () => {
    expect(() => jstDateOf(new Date(Number.NaN))).toThrow(RangeError);
  });
});

describe('endOfJstDay', () => {
  it('is 23:59:59 JST, 14:59:59Z of the same date', () => {
    expect(iso(endOfJstDay('2033-07-15'))).toBe('2033-07-15T14:59:59.000Z');
    expect(jstDateOf(endOfJstDay('2024-02-29'))).toBe('2024-02-29');
    expect(jstDateOf(new Date(endOfJstDay('2024-02-29').getTime() + 1000))).toBe('2024-03-01');
  });

  it('throws on a malformed date', () => {
    expect(() => endOfJstDay('2023-02-29')).toThrow(RangeError);
    expect(() => endOfJstDay('2023-7-1')).toThrow(RangeError);
  });
});

describe('fifthBirthdayAfter', () => {
  it.each([
    // birthDate, issuedOn, expected
    ['1980-06-15', '2024-03-10', '2028-06-15'], // birthday later in the year of issuance
    ['1980-06-15', '2024-09-10', '2029-06-15'], // birthday already passed
    ['1980-06-15', '2024-06-15', '2029-06-15'], // issued on the birthday: it does not count
    ['1980-06-15', '2024-06-14', '2028-06-15'], // the day before: the next day is the first
    ['1980-06-15', '2024-06-16', '2029-06-15'],
    ['1980-01-01', '2024-12-31', '2029-01-01'],
    ['1980-12-31', '2024-12-31', '2029-12-31'],
    ['2024-04-01', '2024-04-01', '2029-04-01'], // issued on the day of birth
  ])('born %s, issued %s → %s', (birth, issued, expected) => {
    expect(fifthBirthdayAfter(birth, issued)).toBe(expected);
  });

  it.each([
    // 29 February births: 28 February in a common year, 29 February in a leap year.
    ['2000-02-29', '2023-03-01', '2028-02-29'], // birthdays 2024, 2025, 2026, 2027, 2028
    ['2000-02-29', '2024-01-10', '2028-02-29'], // birthdays 2024 … 2028
    ['2000-02-29', '2024-02-29', '2029-02-28'], // issued on the birthday
    ['2000-02-29', '2024-02-28', '2028-02-29'],
    ['2000-02-29', '2025-02-28', '2030-02-28'], // 28 Feb 2025 is the birthday itself
    ['2000-02-29', '2025-02-27', '2029-02-28'],
    ['2000-02-29', '2025-03-01', '2030-02-28'],
    ['2000-02-29', '2027-06-01', '2032-02-29'],
    ['2000-02-29', '2095-06-01', '2100-02-28'], // 2100 is not a leap year
  ])('born %s, issued %s → %s', (birth, issued, expected) => {
    expect(fifthBirthdayAfter(birth, issued)).toBe(expected);
  });

  it('refuses malformed dates and an issuance before birth', () => {
    expect(() => fifthBirthdayAfter('1980-02-30', '2024-01-01')).toThrow(RangeError);
    expect(() => fifthBirthdayAfter('1980-01-01', '2024-1-1')).toThrow(RangeError);
    expect(() => fifthBirthdayAfter('2024-01-02', '2024-01-01')).toThrow(RangeError);
  });

  it('has exactly five birthdays in (issuedOn, result]', () => {
    fc.assert(
      fc.property(
        dateString('1868-01-01', '2030-12-31'),
        fc.integer({ min: 0, max: 60_000 }),
        (birth, days) => {
          const issued = new Date(Date.parse(`${birth}T00:00:00Z`) + days * 86_400_000)
            .toISOString()
            .slice(0, 10);
          const fifth = fifthBirthdayAfter(birth, issued);
          const age = (y: number) => plusYears(birth, y - Number(birth.slice(0, 4)));
          const fifthYear = Number(fifth.slice(0, 4));
          expect(fifth).toBe(age(fifthYear));
          expect(fifth > issued).toBe(true);
          expect(age(fifthYear - 4) > issued).toBe(true);
          expect(age(fifthYear - 5) <= issued).toBe(true);
        },
      ),
    );
  });
});

describe('certificateNotAfter', () => {
  it('ends at 23:59:59 JST of the 5th birthday after issuance', () => {
    expect(iso(certificateNotAfter('1980-06-15', new Date('2024-03-10T02:00:00Z')))).toBe(
      '2028-06-15T14:59:59.000Z',
    );
  });

  it('uses the JST date of issuance', () => {
    // 23:30 JST on 14 June: the birthday is tomorrow, the first of the five.
    expect(iso(certificateNotAfter('1980-06-15', new Date('2024-06-14T14:30:00Z')))).toBe(
      '2028-06-15T14:59:59.000Z',
    );
    // 00:30 JST on 15 June (still 14 June in UTC): issued on the birthday, which does not count.
    expect(iso(certificateNotAfter('1980-06-15', new Date('2024-06-14T15:30:00Z')))).toBe(
      '2029-06-15T14:59:59.000Z',
    );
  });

  it('never runs past the cap (the card’s own expiry)', () => {
    const issued = new Date('2024-03-10T02:00:00Z');
    const cardExpiry = new Date('2026-01-20T14:59:59Z');
    expect(iso(certificateNotAfter('1980-06-15', issued, cardExpiry))).toBe(
      '2026-01-20T14:59:59.000Z',
    );
    const lateCap = new Date('2034-01-20T14:59:59Z');
    expect(iso(certificateNotAfter('1980-06-15', issued, lateCap))).toBe(
      '2028-06-15T14:59:59.000Z',
    );
    const returned = certificateNotAfter('1980-06-15', issued, cardExpiry);
    expect(returned).not.toBe(cardExpiry);
  });

  it('ends 14:59:59Z, after issuance, within (4, 5] years of the JST issuance date', () => {
    fc.assert(
      fc.property(
        dateString('1900-01-01', '2030-12-31'),
        fc.date({ min: new Date('2000-01-01'), max: new Date('2090-01-01'), noInvalidDate: true }),
        (birth, issuedAt) => {
          fc.pre(jstDateOf(issuedAt) >= birth);
          const notAfter = certificateNotAfter(birth, issuedAt);
          const issuedOn = jstDateOf(issuedAt);
          expect(iso(notAfter)).toMatch(/T14:59:59\.000Z$/);
          expect(notAfter.getTime()).toBeGreaterThan(issuedAt.getTime());
          expect(jstDateOf(notAfter) <= plusYears(issuedOn, 5)).toBe(true);
          expect(jstDateOf(notAfter) > plusYears(issuedOn, 4)).toBe(true);
          expect(notAfter.getTime() - issuedAt.getTime()).toBeLessThan(6 * 366 * 86_400_000);
        },
      ),
    );
  });

  it('is the earlier of the birthday rule and the cap', () => {
    fc.assert(
      fc.property(
        dateString('1900-01-01', '2020-12-31'),
        fc.date({ min: new Date('2021-01-01'), max: new Date('2080-01-01'), noInvalidDate: true }),
        fc.integer({ min: 0, max: 4000 }),
        (birth, issuedAt, capDays) => {
          const cap = new Date(issuedAt.getTime() + capDays * 86_400_000);
          const uncapped = certificateNotAfter(birth, issuedAt);
          const capped = certificateNotAfter(birth, issuedAt, cap);
          expect(capped.getTime()).toBe(Math.min(uncapped.getTime(), cap.getTime()));
        },
      ),
    );
  });
});

describe('caNotAfter', () => {
  it('matches the real 2023 J-LIS CAs', () => {
    expect(iso(caNotAfter(new Date('2023-07-16T01:01:04Z'), 10))).toBe('2033-07-15T14:59:59.000Z');
    expect(iso(caNotAfter(new Date('2023-07-16T00:50:27Z'), 10))).toBe('2033-07-15T14:59:59.000Z');
  });

  it('starts from the JST date of notBefore', () => {
    // 2023-07-15T15:30Z is 00:30 JST on 16 July.
    expect(iso(caNotAfter(new Date('2023-07-15T15:30:00Z'), 10))).toBe('2033-07-15T14:59:59.000Z');
    expect(iso(caNotAfter(new Date('2023-07-15T14:30:00Z'), 10))).toBe('2033-07-14T14:59:59.000Z');
  });

  it('crosses month and year boundaries', () => {
    expect(iso(caNotAfter(new Date('2024-03-01T03:00:00Z'), 1))).toBe('2025-02-28T14:59:59.000Z');
    expect(iso(caNotAfter(new Date('2023-03-01T03:00:00Z'), 1))).toBe('2024-02-29T14:59:59.000Z');
    expect(iso(caNotAfter(new Date('2024-01-01T03:00:00Z'), 5))).toBe('2028-12-31T14:59:59.000Z');
  });

  it('ends a 29 February period on 28 February', () => {
    const leapDay = new Date('2024-02-29T03:00:00Z');
    expect(iso(caNotAfter(leapDay, 1))).toBe('2025-02-28T14:59:59.000Z'); // anniversary 1 March
    expect(iso(caNotAfter(leapDay, 4))).toBe('2028-02-28T14:59:59.000Z'); // anniversary 29 Feb
    expect(iso(caNotAfter(leapDay, 10))).toBe('2034-02-28T14:59:59.000Z');
  });

  it('refuses a non-positive or fractional number of years', () => {
    const t = new Date('2023-07-16T01:01:04Z');
    for (const years of [0, -1, 1.5, Number.NaN]) {
      expect(() => caNotAfter(t, years)).toThrow(RangeError);
    }
  });
});
