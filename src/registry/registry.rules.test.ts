import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { myNumberCheckDigit, residentCodeCheckDigit } from '../numbering/check-digits.ts';
import { withCheckDigit } from '../platform/local-government-code.ts';
import {
  ADDRESS_MAX,
  CHANGE_REASONS,
  CHANGE_REASON_TERMS,
  DECISION_CODES,
  type ChangeReason,
  type Decision,
  type DecisionCode,
  type IdentityRecordFields,
  NAME_KANA_MAX,
  NAME_MAX,
  type RecordState,
  type RegistryNotification,
  type RemovalCause,
  addressProblem,
  daysBetween,
  decideChange,
  isCalendarDate,
  japanDateOf,
  nameKanaProblem,
  nameProblem,
  parseNotification,
  validateNotificationFields,
} from './registry.rules.ts';

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

const rc = (body10: string): string => body10 + residentCodeCheckDigit(body10);
const mn = (body11: string): string => body11 + myNumberCheckDigit(body11);
/** A code with the wrong check digit. */
const corrupt = (code: string): string =>
  code.slice(0, -1) + String((Number(code.slice(-1)) + 1) % 10);

const CHIYODA = withCheckDigit('13101');
const CHUO = withCheckDigit('13102');
const MINATO = withCheckDigit('13103');
const SAPPORO_CHUO_KU = withCheckDigit('01101');
const SAPPORO_KITA_KU = withCheckDigit('01102');
const TOKYO_PREFECTURE = withCheckDigit('13000');

const TODAY = '2026-04-01';
const CHANGE_DATE = '2026-03-01';
const RC = rc('1234567890');
const RC_NEW = rc('9876543210');
const MN = mn('12345678901');
const MN_OTHER = mn('10987654321');

const PERSON: IdentityRecordFields = {
  residentCode: RC,
  myNumber: MN,
  name: '山田　太郎',
  nameKana: 'ヤマダ　タロウ',
  birthDate: '1990-05-15',
  sex: 'male',
  address: '東京都千代田区千代田１番１号',
};

/** The extra members each reason needs to be well formed. */
function extrasFor(reason: ChangeReason): Partial<RegistryNotification> {
  switch (reason) {
    case 'moveOut':
      return { plannedMoveOutDate: '2026-03-10', destination: { municipalityCode: CHUO } };
    case 'emigration':
      return { plannedMoveOutDate: '2026-03-10', destination: { abroad: true } };
    case 'residentCodeChange':
      return { previousResidentCode: RC };
    default:
      return {};
  }
}

/** A well-formed notification from 千代田区; `rec` overrides record fields. */
function note(
  changeReason: ChangeReason,
  over: Partial<RegistryNotification> = {},
  rec: Partial<IdentityRecordFields> = {},
): RegistryNotification {
  const record = {
    ...PERSON,
    ...(changeReason === 'residentCodeChange' ? { residentCode: RC_NEW } : {}),
    ...rec,
  };
  return {
    municipalityCode: CHIYODA,
    sequence: 1,
    changeReason,
    changeDate: CHANGE_DATE,
    record,
    ...extrasFor(changeReason),
    ...over,
  };
}

const currentAt = (
  municipalityCode: string,
  rec: Partial<IdentityRecordFields> = {},
): RecordState => ({ status: 'current', municipalityCode, record: { ...PERSON, ...rec } });

const movingOutAt = (municipalityCode: string, destination: string = CHUO): RecordState => ({
  status: 'movingOut',
  municipalityCode,
  record: { ...PERSON },
  plannedMoveOutDate: '2026-02-20',
  destination: { municipalityCode: destination },
});

const removedAt = (municipalityCode: string, removalCause: RemovalCause): RecordState => ({
  status: 'removed',
  municipalityCode,
  record: { ...PERSON },
  removalCause,
});

/** A mutable JSON copy of a notification, for malforming. */
function body(
  n: RegistryNotification = note('moveWithin', {}, { address: '東京都千代田区丸の内１' }),
): {
  [k: string]: unknown;
  record: { [k: string]: unknown };
} {
  return JSON.parse(JSON.stringify(n)) as {
    [k: string]: unknown;
    record: { [k: string]: unknown };
  };
}

const validate = (b: unknown, today: string = TODAY) => validateNotificationFields(b, today);
const pointersOf = (b: unknown, today?: string): string[] =>
  validate(b, today).map((e) => e.pointer);

function expectOk(d: Decision): Extract<Decision, { ok: true }> {
  if (!d.ok)
    throw new Error(`expected acceptance, got ${d.code} at ${d.pointer ?? '-'}: ${d.detail}`);
  return d;
}

function expectRejected(d: Decision, code: DecisionCode, pointer?: string): void {
  expect(d.ok).toBe(false);
  if (d.ok) return;
  expect(d.code).toBe(code);
  if (pointer !== undefined) expect(d.pointer).toBe(pointer);
}

// ---------------------------------------------------------------------------------------------
// Vocabulary
// ---------------------------------------------------------------------------------------------

describe('CHANGE_REASONS', () => {
  it('is the closed glossary list plus 住民票コードの変更, each with its legal term', () => {
    expect([...CHANGE_REASONS].sort()).toEqual(
      [
        'birth',
        'death',
        'emigration',
        'moveIn',
        'moveOut',
        'moveWithin',
        'nameChange',
        'officialCorrection',
        'officialEntry',
        'officialRemoval',
        'residentCodeChange',
      ].sort(),
    );
    expect(CHANGE_REASON_TERMS.moveWithin).toBe('転居');
    expect(CHANGE_REASON_TERMS.residentCodeChange).toBe('住民票コードの変更');
    expect(Object.keys(CHANGE_REASON_TERMS).sort()).toEqual([...CHANGE_REASONS].sort());
  });
});

describe('dates', () => {
  it.each([
    ['2024-02-29', true],
    ['2023-02-29', false],
    ['2000-02-29', true],
    ['1900-02-29', false],
    ['2024-13-01', false],
    ['2024-00-10', false],
    ['2024-04-31', false],
    ['2024-04-30', true],
    ['2024-01-00', false],
    ['2024-1-01', false],
    ['2024/01/01', false],
    ['2024-01-01T00:00:00Z', false],
    ['２０２４-01-01', false],
  ])('isCalendarDate(%s) is %s', (s, ok) => {
    expect(isCalendarDate(s)).toBe(ok);
  });

  it('counts days across leap days and years', () => {
    expect(daysBetween('2024-02-28', '2024-03-01')).toBe(2);
    expect(daysBetween('2023-02-28', '2023-03-01')).toBe(1);
    expect(daysBetween('2026-03-01', '2026-01-30')).toBe(-30);
    expect(daysBetween('1970-01-01', '2000-01-01')).toBe(10957);
  });

  it('takes the Japan date of an instant (UTC+9)', () => {
    expect(japanDateOf(new Date('2026-03-31T14:59:59Z'))).toBe('2026-03-31');
    expect(japanDateOf(new Date('2026-03-31T15:00:00Z'))).toBe('2026-04-01');
  });
});

// ---------------------------------------------------------------------------------------------
// Field validation
// ---------------------------------------------------------------------------------------------

describe('validateNotificationFields: shape', () => {
  it.each(CHANGE_REASONS)('accepts a well-formed %s notification', (reason) => {
    expect(validate(note(reason))).toEqual([]);
  });

  it('refuses a non-object body at the root pointer', () => {
    for (const b of [null, 'x', 42, [], true]) {
      expect(validate(b)).toEqual([{ pointer: '', message: 'must be a JSON object' }]);
    }
  });

  it('reports every missing member at its pointer', () => {
    expect(pointersOf({})).toEqual([
      '/municipalityCode',
      '/sequence',
      '/changeReason',
      '/changeDate',
      '/record',
    ]);
    const b = body();
    b.record = {};
    expect(pointersOf(b)).toEqual([
      '/record/residentCode',
      '/record/myNumber',
      '/record/name',
      '/record/nameKana',
      '/record/address',
      '/record/birthDate',
      '/record/sex',
    ]);
  });

  it('refuses unknown members, escaping the pointer (RFC 6901)', () => {
    const b = body();
    b['extra'] = 1;
    b['a/b~c'] = 1;
    b.record['household'] = 'x';
    expect(pointersOf(b)).toEqual(['/extra', '/a~1b~0c', '/record/household']);
  });

  it('refuses a record that is not an object, and non-string text fields', () => {
    const b: Record<string, unknown> = body();
    b['record'] = [];
    expect(pointersOf(b)).toEqual(['/record']);
    const c = body();
    c.record['name'] = 42;
    c.record['address'] = null;
    expect(validate(c)).toEqual([
      { pointer: '/record/name', message: 'must be a string' },
      { pointer: '/record/address', message: 'must be a string' },
    ]);
  });

  it('throws on a malformed today (a programming error)', () => {
    expect(() => validate(note('birth'), '2026-02-30')).toThrow(RangeError);
  });

  it('parseNotification returns the typed notification or the errors', () => {
    const ok = parseNotification(note('death'), TODAY);
    expect(ok.ok && ok.notification.changeReason).toBe('death');
    const bad = parseNotification({ ...note('death'), sequence: 0 }, TODAY);
    expect(bad.ok ? [] : bad.errors.map((e) => e.pointer)).toEqual(['/sequence']);
  });
});

describe('validateNotificationFields: numbers and codes', () => {
  it.each([
    ['a wrong check digit', corrupt(RC)],
    ['10 digits', RC.slice(0, 10)],
    ['full-width digits', '１２３４５６７８９０１'],
    ['a number, not a string', 12345678901],
  ])('refuses a resident code with %s', (_what, value) => {
    const b = body();
    b.record['residentCode'] = value;
    expect(validate(b)).toEqual([
      {
        pointer: '/record/residentCode',
        message: 'must be 11 digits ending in a valid check digit',
      },
    ]);
  });

  it.each([
    ['a wrong check digit', corrupt(MN)],
    ['11 digits', MN.slice(0, 11)],
    ['a resident code in its place', RC],
  ])('refuses a My Number with %s', (_what, value) => {
    const b = body();
    b.record['myNumber'] = value;
    expect(pointersOf(b)).toEqual(['/record/myNumber']);
  });

  it('checks previousResidentCode: required, valid, different, and only for residentCodeChange', () => {
    expect(pointersOf(note('residentCodeChange', { previousResidentCode: corrupt(RC) }))).toEqual([
      '/previousResidentCode',
    ]);
    const missing = body(note('residentCodeChange'));
    delete missing['previousResidentCode'];
    expect(pointersOf(missing)).toEqual(['/previousResidentCode']);
    expect(validate(note('residentCodeChange', {}, { residentCode: RC }))).toEqual([
      { pointer: '/record/residentCode', message: 'must differ from previousResidentCode' },
    ]);
    expect(pointersOf(note('nameChange', { previousResidentCode: RC_NEW }))).toEqual([
      '/previousResidentCode',
    ]);
  });

  it.each([
    [
      'a wrong check digit',
      corrupt(CHIYODA),
      'must be a 6-digit local government code with a valid check digit',
    ],
    ['five digits', '13101', 'must be a 6-digit local government code with a valid check digit'],
    ['a prefecture', TOKYO_PREFECTURE, 'must be a municipality code, not a prefecture code'],
  ])('refuses a municipality code with %s', (_what, code, message) => {
    expect(validate(note('birth', { municipalityCode: code }))).toEqual([
      { pointer: '/municipalityCode', message },
    ]);
  });

  it('accepts a designated-city ward code', () => {
    expect(validate(note('birth', { municipalityCode: SAPPORO_CHUO_KU }))).toEqual([]);
  });

  it.each([0, -1, 1.5, '1', Number.MAX_SAFE_INTEGER + 1])('refuses sequence %s', (sequence) => {
    expect(pointersOf({ ...note('birth'), sequence })).toEqual(['/sequence']);
  });

  it('refuses an unknown change reason, listing the known ones', () => {
    const [e] = validate({ ...note('birth'), changeReason: 'marriage' });
    expect(e?.pointer).toBe('/changeReason');
    expect(e?.message).toContain('residentCodeChange');
    expect(e?.message).not.toContain('marriage');
  });

  it.each(['male', 'female'])('accepts sex %s', (sex) => {
    expect(validate({ ...note('birth'), record: { ...PERSON, sex } })).toEqual([]);
  });

  it.each(['other', 'M', '', 1])('refuses sex %s', (sex) => {
    expect(pointersOf({ ...note('birth'), record: { ...PERSON, sex } })).toEqual(['/record/sex']);
  });
});

describe('validateNotificationFields: dates', () => {
  const withDates = (changeDate: string, birthDate: string = PERSON.birthDate) =>
    note('birth', { changeDate }, { birthDate });

  it('accepts 29 February in a leap year and refuses it otherwise', () => {
    expect(validate(withDates('2024-03-01', '2024-02-29'))).toEqual([]);
    expect(validate(withDates('2000-03-01', '2000-02-29'))).toEqual([]);
    expect(pointersOf(withDates('2024-03-01', '2023-02-29'))).toEqual(['/record/birthDate']);
    expect(pointersOf(withDates('2024-03-01', '1900-02-29'))).toEqual(['/record/birthDate']);
    expect(pointersOf(withDates('2023-02-29'))).toEqual(['/changeDate']);
  });

  it.each(['2024-13-01', '2024-04-31', '2024-4-1', '20240401', ''])(
    'refuses the non-date %j',
    (d) => {
      expect(validate(withDates(d))).toContainEqual({
        pointer: '/changeDate',
        message: 'must be a real calendar date written YYYY-MM-DD',
      });
      expect(pointersOf(withDates(CHANGE_DATE, d))).toEqual(['/record/birthDate']);
    },
  );

  it('refuses a change date after today (Japan), accepts today', () => {
    expect(validate(withDates('2026-04-02'))).toEqual([
      { pointer: '/changeDate', message: 'must not be after today (Japan time)' },
    ]);
    expect(validate(withDates(TODAY))).toEqual([]);
  });

  it('refuses a birth after the change date; the same day is fine', () => {
    expect(validate(withDates('2026-03-01', '2026-03-02'))).toEqual([
      { pointer: '/record/birthDate', message: 'must not be after changeDate' },
    ]);
    expect(validate(withDates('2026-03-01', '2026-03-01'))).toEqual([]);
  });

  it('refuses a birth after today when the change date itself is bad', () => {
    expect(pointersOf(withDates('2026-05-01', '2026-04-15'))).toEqual([
      '/changeDate',
      '/record/birthDate',
    ]);
  });

  it('refuses a birth before 明治 (1868-01-01) and accepts that day', () => {
    expect(pointersOf(withDates(CHANGE_DATE, '1867-12-31'))).toEqual(['/record/birthDate']);
    expect(validate(withDates(CHANGE_DATE, '1868-01-01'))).toEqual([]);
  });

  describe('plannedMoveOutDate (住民基本台帳法第24条)', () => {
    const moveOutPlanned = (plannedMoveOutDate: string, changeDate = CHANGE_DATE) =>
      note('moveOut', { plannedMoveOutDate, changeDate });

    it.each([
      ['30 days before', '2026-01-30', true],
      ['31 days before', '2026-01-29', false],
      ['the same day', '2026-03-01', true],
      ['60 days after (beyond today)', '2026-04-30', true],
      ['61 days after', '2026-05-01', false],
    ])('%s the change date: accepted %s', (_what, planned, ok) => {
      expect(pointersOf(moveOutPlanned(planned))).toEqual(ok ? [] : ['/plannedMoveOutDate']);
    });

    it('is required for moveOut and emigration', () => {
      for (const reason of ['moveOut', 'emigration'] as const) {
        const b = body(note(reason));
        delete b['plannedMoveOutDate'];
        expect(pointersOf(b)).toEqual(['/plannedMoveOutDate']);
      }
    });

    it.each(CHANGE_REASONS.filter((r) => r !== 'moveOut' && r !== 'emigration'))(
      'is refused for %s',
      (reason) => {
        expect(pointersOf(note(reason, { plannedMoveOutDate: CHANGE_DATE }))).toEqual([
          '/plannedMoveOutDate',
        ]);
      },
    );

    it('may not precede the birth date', () => {
      const n = note('moveOut', { plannedMoveOutDate: '2026-02-27' }, { birthDate: '2026-02-28' });
      expect(validate(n)).toEqual([
        { pointer: '/plannedMoveOutDate', message: 'must not be before birthDate' },
      ]);
    });

    it('must be a real date', () => {
      expect(pointersOf(moveOutPlanned('2026-02-30'))).toEqual(['/plannedMoveOutDate']);
    });
  });

  describe('destination', () => {
    it('is required for moveOut, optional for emigration', () => {
      const b = body(note('moveOut'));
      delete b['destination'];
      expect(pointersOf(b)).toEqual(['/destination']);
      const e = body(note('emigration'));
      delete e['destination'];
      expect(validate(e)).toEqual([]);
    });

    it('accepts abroad for moveOut', () => {
      expect(validate(note('moveOut', { destination: { abroad: true } }))).toEqual([]);
    });

    it('must be abroad for emigration', () => {
      expect(pointersOf(note('emigration', { destination: { municipalityCode: CHUO } }))).toEqual([
        '/destination',
      ]);
    });

    it('must differ from the notifier for a move-out', () => {
      expect(validate(note('moveOut', { destination: { municipalityCode: CHIYODA } }))).toEqual([
        {
          pointer: '/destination/municipalityCode',
          message:
            'must differ from municipalityCode; a move inside one municipality is moveWithin',
        },
      ]);
    });

    it.each([
      ['abroad: false', { abroad: false }, '/destination/abroad'],
      ['both members', { abroad: true, municipalityCode: CHUO }, '/destination'],
      ['an unknown member', { country: 'US' }, '/destination'],
      ['an empty object', {}, '/destination'],
      ['a string', 'abroad', '/destination'],
      ['a bad code', { municipalityCode: corrupt(CHUO) }, '/destination/municipalityCode'],
      ['a prefecture', { municipalityCode: TOKYO_PREFECTURE }, '/destination/municipalityCode'],
    ])('refuses %s', (_what, destination, pointer) => {
      expect(pointersOf({ ...note('moveOut'), destination })).toEqual([pointer]);
    });

    it.each(CHANGE_REASONS.filter((r) => r !== 'moveOut' && r !== 'emigration'))(
      'is refused for %s',
      (reason) => {
        expect(pointersOf(note(reason, { destination: { abroad: true } }))).toEqual([
          '/destination',
        ]);
      },
    );
  });
});

describe('validateNotificationFields: name (氏名)', () => {
  it.each([
    ['kanji with an ideographic space', '山田　太郎'],
    ['kanji with an ASCII space', '山田 太郎'],
    ['a surrogate-pair kanji (Ext B 𠮷)', '𠮷田　花子'],
    ['an Ext A kanji', '㐂田'],
    ['a compatibility ideograph (U+FA11 﨑)', '山﨑　一'],
    ['a compatibility-supplement ideograph (U+2F800)', '\u{2F800}田'],
    ['髙 (U+9AD9)', '髙橋　一郎'],
    ['々', '佐々木　健'],
    ['〆', '〆木'],
    ['ヵ and ヶ', '一ヶ谷　ヵ'],
    ['hiragana', 'さくら'],
    ['hiragana iteration mark ゞ', 'みすゞ'],
    ['katakana with ー and ・', 'ルーシー・スミス'],
    ['＝', 'ジャン＝ピエール'],
    ['ASCII letters', 'John Smith'],
    ['full-width letters', 'ＪＯＨＮ　ＳＭＩＴＨ'],
    ['one character', '一'],
  ])('accepts %s', (_what, name) => {
    expect(nameProblem(name)).toBeNull();
    expect(validate({ ...note('birth'), record: { ...PERSON, name } })).toEqual([]);
  });

  it.each([
    ['an ASCII digit', '太郎2', /digit/],
    ['a full-width digit', '太郎２', /digit/],
    ['a circled numeral', '太郎①', /numeral/],
    ['half-width katakana', 'ﾀﾛｳ', /half-width katakana/],
    ['half-width ･', 'ｼﾞｮﾝ･ｽﾐｽ', /half-width katakana/],
    ['an emoji', '太郎😀', /emoji/],
    ['a flag (regional indicators)', '太郎🇯🇵', /emoji/],
    ['a control character', '太\u0007郎', /control/],
    ['a tab', '山田\t太郎', /control/],
    ['a newline', '山田\n太郎', /control/],
    ['a zero-width space', '山田\u200b太郎', /control/],
    ['a right-to-left override', '山田\u202e太郎', /control/],
    ['an unpaired surrogate', '山\ud842田', /surrogate/],
    ['a private-use character', '山\ue000田', /private-use/],
    ['a no-break space', '山田\u00a0太郎', /not allowed/],
    ['a hyphen', 'Smith-Jones', /not allowed/],
    ['an apostrophe', "O'Brien", /not allowed/],
    ['punctuation', '太郎!', /not allowed/],
    ['an ideographic full stop', '山田。', /not allowed/],
  ])('refuses %s', (_what, name, message) => {
    expect(nameProblem(name)).toMatch(message);
  });

  it.each([
    ['a leading space', ' 山田', /begin or end/],
    ['a trailing ideographic space', '山田　', /begin or end/],
    ['two ASCII spaces', '山田  太郎', /another space/],
    ['an ASCII and an ideographic space', '山田 　太郎', /another space/],
    ['a leading ・', '・スミス', /begin or end/],
    ['a trailing ＝', 'ジャン＝', /begin or end/],
    ['・ next to a space', 'ジョン ・スミス', /another space/],
    ['only a space', ' ', /begin or end/],
  ])('refuses %s', (_what, name, message) => {
    expect(nameProblem(name)).toMatch(message);
  });

  it('counts the length in code points: 60 accepted, 61 refused, also for 𠮷', () => {
    expect(nameProblem('山'.repeat(NAME_MAX))).toBeNull();
    expect(nameProblem('山'.repeat(NAME_MAX + 1))).toMatch(/at most 60/);
    expect('𠮷'.repeat(NAME_MAX).length).toBe(120); // UTF-16 units
    expect(nameProblem('𠮷'.repeat(NAME_MAX))).toBeNull();
    expect(nameProblem('𠮷'.repeat(NAME_MAX + 1))).toMatch(/at most 60/);
    expect(nameProblem('')).toBe('must not be empty');
  });

  it('reports the position of the refused character, never the character', () => {
    const p = nameProblem('山田太郎7');
    expect(p).toBe('character 5 is a digit or numeral; names have none');
    expect(nameProblem('𠮷田😀')).toBe('character 3 is an emoji or pictograph');
  });
});

describe('validateNotificationFields: reading (氏名の振り仮名)', () => {
  it.each([
    ['katakana with an ideographic space', 'ヤマダ　タロウ'],
    ['katakana with an ASCII space', 'ヤマダ タロウ'],
    ['ー and ・', 'ルーシー・スミス'],
    ['ヴ ヵ ヶ ヺ', 'ヴヵヶヺ'],
    ['small kana', 'ァィゥェォッャュョヮ'],
  ])('accepts %s', (_what, kana) => {
    expect(nameKanaProblem(kana)).toBeNull();
  });

  it.each([
    ['hiragana', 'やまだ', /hiragana/],
    ['half-width katakana', 'ﾔﾏﾀﾞ', /half-width/],
    ['kanji', '山田', /not allowed/],
    ['Latin letters', 'Yamada', /not allowed/],
    ['a digit', 'ヤマダ1', /digit/],
    ['ヽ', 'ヤヽ', /not allowed/],
    ['＝', 'ジャン＝ピエール', /not allowed/],
    ['two spaces', 'ヤマダ  タロウ', /another space/],
    ['a trailing space', 'ヤマダ ', /begin or end/],
    ['an emoji', 'ヤマダ😀', /emoji/],
  ])('refuses %s', (_what, kana, message) => {
    expect(nameKanaProblem(kana)).toMatch(message);
  });

  it('allows 100 code points and refuses 101', () => {
    expect(nameKanaProblem('ア'.repeat(NAME_KANA_MAX))).toBeNull();
    expect(nameKanaProblem('ア'.repeat(NAME_KANA_MAX + 1))).toMatch(/at most 100/);
    expect(nameKanaProblem('')).toBe('must not be empty');
  });

  it('is reported at /record/nameKana', () => {
    expect(pointersOf({ ...note('birth'), record: { ...PERSON, nameKana: 'やまだ' } })).toEqual([
      '/record/nameKana',
    ]);
  });
});

describe('validateNotificationFields: address (住所)', () => {
  it.each([
    ['kanji with full-width digits and a hyphen', '東京都千代田区千代田１－１'],
    ['a building name in Latin letters', '東京都港区芝公園４丁目２－８ Tokyo Tower 101'],
    ['ASCII digits only', '1-2-3'],
    ['kana only', 'さっぽろ'],
    ['an ideographic space', '大阪府大阪市北区　梅田１'],
    ['200 code points of 𠮷', '𠮷'.repeat(ADDRESS_MAX)],
  ])('accepts %s', (_what, address) => {
    expect(addressProblem(address)).toBeNull();
  });

  it.each([
    ['an empty string', '', /empty/],
    ['201 code points', '東'.repeat(ADDRESS_MAX + 1), /at most 200/],
    ['a newline', '東京都\n千代田区', /control/],
    ['a zero-width joiner', '東京都\u200d千代田区', /control/],
    ['an emoji', '東京都🗼', /emoji/],
    ['a keycap sequence', '東京都1\ufe0f\u20e3', /emoji/],
    ['no kanji, kana or digit', 'Tokyo Tower', /at least one kanji, kana or digit/],
    ['a leading space', ' 東京都', /begin or end/],
    ['a trailing ideographic space', '東京都　', /begin or end/],
    ['a no-break space', '東京都\u00a0港区', /unusual space/],
    ['an unpaired surrogate', '東京\udc00', /surrogate/],
  ])('refuses %s', (_what, address, message) => {
    expect(addressProblem(address)).toMatch(message);
  });

  it('is reported at /record/address', () => {
    expect(pointersOf({ ...note('birth'), record: { ...PERSON, address: '' } })).toEqual([
      '/record/address',
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// Decisions
// ---------------------------------------------------------------------------------------------

describe('decideChange: birth (出生)', () => {
  it('creates a current record in the notifying municipality', () => {
    const d = expectOk(decideChange(null, note('birth')));
    expect(d.next).toEqual({ status: 'current', municipalityCode: CHIYODA, record: PERSON });
    expect(d.changedItems).toEqual([]);
    expect(d.closesMoveOutAt).toBeUndefined();
    expect(d.removal).toBeUndefined();
  });

  it.each([currentAt(CHIYODA), movingOutAt(CHIYODA), removedAt(CHIYODA, 'death')])(
    'refuses a second birth (state %#)',
    (state) => {
      expectRejected(
        decideChange(state, note('birth')),
        'registry.record-exists',
        '/record/residentCode',
      );
    },
  );
});

describe('decideChange: officialEntry (職権記載)', () => {
  it('creates a record when there is none', () => {
    const d = expectOk(decideChange(null, note('officialEntry')));
    expect(d.next.status).toBe('current');
  });

  it.each(['death', 'officialRemoval', 'emigration'] as const)(
    'reinstates a record removed for %s in the same municipality',
    (cause) => {
      const d = expectOk(decideChange(removedAt(CHIYODA, cause), note('officialEntry')));
      expect(d.next).toEqual({ status: 'current', municipalityCode: CHIYODA, record: PERSON });
      expect(d.changedItems).toEqual([]);
    },
  );

  it('records by office elsewhere a person removed by another municipality; address changes', () => {
    const d = expectOk(
      decideChange(
        removedAt(MINATO, 'officialRemoval'),
        note('officialEntry', {}, { address: '東京都千代田区永田町１' }),
      ),
    );
    expect(d.next.municipalityCode).toBe(CHIYODA);
    expect(d.changedItems).toEqual(['address']);
    expect(d.closesMoveOutAt).toBeUndefined();
  });

  it('records by office a resident who moved out elsewhere and did not file, closing the move-out', () => {
    const d = expectOk(
      decideChange(
        movingOutAt(MINATO, CHIYODA),
        note('officialEntry', {}, { address: '東京都千代田区永田町１' }),
      ),
    );
    expect(d.next).toEqual({
      status: 'current',
      municipalityCode: CHIYODA,
      record: { ...PERSON, address: '東京都千代田区永田町１' },
    });
    expect(d.closesMoveOutAt).toBe(MINATO);
    expect(d.changedItems).toEqual(['address']);
  });

  it('cancels a move-out at the same municipality (転出の取消し)', () => {
    const d = expectOk(decideChange(movingOutAt(CHIYODA), note('officialEntry')));
    expect(d.next).toEqual({ status: 'current', municipalityCode: CHIYODA, record: PERSON });
    expect(d.closesMoveOutAt).toBeUndefined();
    expect(d.changedItems).toEqual([]);
  });

  it.each([CHIYODA, MINATO])('refuses a record current in %s', (m) => {
    expectRejected(decideChange(currentAt(m), note('officialEntry')), 'registry.record-exists');
  });

  it('may not change the birth date or sex of a reinstated record', () => {
    expectRejected(
      decideChange(removedAt(CHIYODA, 'death'), note('officialEntry', {}, { sex: 'female' })),
      'registry.immutable-field',
      '/record/sex',
    );
  });

  it('refuses a reinstatement with another My Number', () => {
    expectRejected(
      decideChange(removedAt(CHIYODA, 'death'), note('officialEntry', {}, { myNumber: MN_OTHER })),
      'registry.my-number-mismatch',
      '/record/myNumber',
    );
  });
});

describe('decideChange: moveIn (転入)', () => {
  const newAddress = { address: '東京都千代田区永田町１' };

  it('creates a record for a first-time entrant from abroad (no record)', () => {
    const d = expectOk(decideChange(null, note('moveIn')));
    expect(d.next).toEqual({ status: 'current', municipalityCode: CHIYODA, record: PERSON });
    expect(d.changedItems).toEqual([]);
  });

  it('closes an open move-out at another municipality', () => {
    const d = expectOk(decideChange(movingOutAt(MINATO, CHIYODA), note('moveIn', {}, newAddress)));
    expect(d.next).toEqual({
      status: 'current',
      municipalityCode: CHIYODA,
      record: { ...PERSON, ...newAddress },
    });
    expect(d.closesMoveOutAt).toBe(MINATO);
    expect(d.changedItems).toEqual(['address']);
  });

  it('accepts a move-in where the move-out named another destination', () => {
    const d = expectOk(decideChange(movingOutAt(MINATO, CHUO), note('moveIn', {}, newAddress)));
    expect(d.closesMoveOutAt).toBe(MINATO);
  });

  it('lists address even when the text is identical, and a changed name', () => {
    const d = expectOk(
      decideChange(movingOutAt(MINATO, CHIYODA), note('moveIn', {}, { name: '鈴木　太郎' })),
    );
    expect(d.changedItems).toEqual(['name', 'address']);
  });

  it.each(['emigration', 'officialRemoval'] as const)(
    'brings back a record removed for %s',
    (cause) => {
      const d = expectOk(decideChange(removedAt(MINATO, cause), note('moveIn', {}, newAddress)));
      expect(d.next.status).toBe('current');
      expect(d.next.municipalityCode).toBe(CHIYODA);
      expect(d.changedItems).toEqual(['address']);
      expect(d.closesMoveOutAt).toBeUndefined();
    },
  );

  it('refuses a record removed on death', () => {
    expectRejected(
      decideChange(removedAt(MINATO, 'death'), note('moveIn')),
      'registry.record-removed',
      '/changeReason',
    );
  });

  it('refuses while the resident is current elsewhere', () => {
    expectRejected(
      decideChange(currentAt(MINATO), note('moveIn', {}, newAddress)),
      'registry.move-out-missing',
    );
  });

  it('refuses a resident already current here', () => {
    expectRejected(decideChange(currentAt(CHIYODA), note('moveIn')), 'registry.not-moving-out');
  });

  it('refuses closing a move-out by moving into the same municipality', () => {
    expectRejected(
      decideChange(movingOutAt(CHIYODA), note('moveIn')),
      'registry.same-municipality',
      '/municipalityCode',
    );
  });

  it.each([
    ['birthDate', { birthDate: '1990-05-16' }],
    ['sex', { sex: 'female' as const }],
  ])('may not change %s', (field, rec) => {
    expectRejected(
      decideChange(movingOutAt(MINATO), note('moveIn', {}, rec)),
      'registry.immutable-field',
      `/record/${field}`,
    );
  });

  it('refuses another My Number or resident code', () => {
    expectRejected(
      decideChange(movingOutAt(MINATO), note('moveIn', {}, { myNumber: MN_OTHER })),
      'registry.my-number-mismatch',
    );
    expectRejected(
      decideChange(movingOutAt(MINATO), note('moveIn', {}, { residentCode: RC_NEW })),
      'registry.resident-code-mismatch',
      '/record/residentCode',
    );
  });
});

describe('decideChange: moveOut (転出)', () => {
  it('opens a move-out with the planned date and destination', () => {
    const d = expectOk(decideChange(currentAt(CHIYODA), note('moveOut')));
    expect(d.next).toEqual({
      status: 'movingOut',
      municipalityCode: CHIYODA,
      record: PERSON,
      plannedMoveOutDate: '2026-03-10',
      destination: { municipalityCode: CHUO },
    });
    expect(d.changedItems).toEqual([]);
    expect(d.removal).toBeUndefined();
  });

  it('treats a move-out abroad as emigration', () => {
    const d = expectOk(
      decideChange(currentAt(CHIYODA), note('moveOut', { destination: { abroad: true } })),
    );
    expect(d.next).toEqual({
      status: 'removed',
      municipalityCode: CHIYODA,
      record: PERSON,
      removalCause: 'emigration',
      plannedMoveOutDate: '2026-03-10',
      destination: { abroad: true },
    });
    expect(d.removal).toBe('emigration');
  });

  it('refuses a destination equal to the notifier', () => {
    expectRejected(
      decideChange(
        currentAt(CHIYODA),
        note('moveOut', { destination: { municipalityCode: CHIYODA } }),
      ),
      'registry.same-municipality',
      '/destination/municipalityCode',
    );
  });

  it('refuses a second move-out while one is open', () => {
    expectRejected(
      decideChange(movingOutAt(CHIYODA), note('moveOut')),
      'registry.moving-out',
      '/changeReason',
    );
  });

  it('refuses a resident of another municipality', () => {
    expectRejected(
      decideChange(currentAt(MINATO), note('moveOut')),
      'registry.wrong-municipality',
      '/municipalityCode',
    );
  });

  it('refuses a removed or missing record', () => {
    expectRejected(
      decideChange(removedAt(CHIYODA, 'death'), note('moveOut')),
      'registry.record-removed',
    );
    expectRejected(
      decideChange(null, note('moveOut')),
      'registry.record-not-found',
      '/record/residentCode',
    );
  });

  it('may not change any item', () => {
    expectRejected(
      decideChange(currentAt(CHIYODA), note('moveOut', {}, { address: '東京都中央区銀座１' })),
      'registry.immutable-field',
      '/record/address',
    );
  });

  it('refuses a notification that skipped validation (no planned date / no destination)', () => {
    const noPlanned = note('moveOut', { plannedMoveOutDate: undefined });
    expectRejected(
      decideChange(currentAt(CHIYODA), noPlanned),
      'registry.invalid-notification',
      '/plannedMoveOutDate',
    );
    const noDestination = note('moveOut', { destination: undefined });
    expectRejected(
      decideChange(currentAt(CHIYODA), noDestination),
      'registry.invalid-notification',
      '/destination',
    );
  });
});

describe('decideChange: emigration (国外転出)', () => {
  it.each([currentAt(CHIYODA), movingOutAt(CHIYODA)])(
    'removes a live record (state %#) with cause emigration',
    (state) => {
      const d = expectOk(decideChange(state, note('emigration')));
      expect(d.next).toMatchObject({
        status: 'removed',
        municipalityCode: CHIYODA,
        removalCause: 'emigration',
        plannedMoveOutDate: '2026-03-10',
        destination: { abroad: true },
      });
      expect(d.removal).toBe('emigration');
      expect(d.changedItems).toEqual([]);
    },
  );

  it('accepts a notification without a destination', () => {
    const n = note('emigration', { destination: undefined });
    expect(expectOk(decideChange(currentAt(CHIYODA), n)).next.status).toBe('removed');
  });

  it('refuses a domestic destination that skipped validation', () => {
    expectRejected(
      decideChange(
        currentAt(CHIYODA),
        note('emigration', { destination: { municipalityCode: CHUO } }),
      ),
      'registry.invalid-notification',
    );
  });

  it('refuses a record held elsewhere, or already removed', () => {
    expectRejected(
      decideChange(movingOutAt(MINATO), note('emigration')),
      'registry.wrong-municipality',
    );
    expectRejected(
      decideChange(removedAt(CHIYODA, 'emigration'), note('emigration')),
      'registry.record-removed',
    );
  });
});

describe('decideChange: moveWithin (転居)', () => {
  const moved = { address: '東京都千代田区丸の内１' };

  it('changes the address', () => {
    const d = expectOk(decideChange(currentAt(CHIYODA), note('moveWithin', {}, moved)));
    expect(d.next).toEqual({
      status: 'current',
      municipalityCode: CHIYODA,
      record: { ...PERSON, ...moved },
    });
    expect(d.changedItems).toEqual(['address']);
  });

  it('must change the address', () => {
    expectRejected(
      decideChange(currentAt(CHIYODA), note('moveWithin')),
      'registry.no-change',
      '/record/address',
    );
  });

  it.each([
    ['name', { name: '山田　次郎' }],
    ['nameKana', { nameKana: 'ヤマダ　ジロウ' }],
    ['birthDate', { birthDate: '1991-01-01' }],
    ['sex', { sex: 'female' as const }],
  ])('may not change %s', (field, rec) => {
    expectRejected(
      decideChange(currentAt(CHIYODA), note('moveWithin', {}, { ...moved, ...rec })),
      'registry.immutable-field',
      `/record/${field}`,
    );
  });

  it('refuses a resident of another municipality', () => {
    expectRejected(
      decideChange(currentAt(MINATO), note('moveWithin', {}, moved)),
      'registry.wrong-municipality',
    );
  });

  it('refuses during a move-out and after removal', () => {
    expectRejected(
      decideChange(movingOutAt(CHIYODA), note('moveWithin', {}, moved)),
      'registry.moving-out',
    );
    expectRejected(
      decideChange(removedAt(CHIYODA, 'officialRemoval'), note('moveWithin', {}, moved)),
      'registry.record-removed',
      '/changeReason',
    );
  });

  it('moves between wards of one designated city when the store says so (区間異動)', () => {
    const n = note(
      'moveWithin',
      { municipalityCode: SAPPORO_KITA_KU },
      { address: '北海道札幌市北区北８条西１' },
    );
    expectRejected(decideChange(currentAt(SAPPORO_CHUO_KU), n), 'registry.wrong-municipality');
    const d = expectOk(decideChange(currentAt(SAPPORO_CHUO_KU), n, { sameDesignatedCity: true }));
    expect(d.next.municipalityCode).toBe(SAPPORO_KITA_KU);
    expect(d.changedItems).toEqual(['address']);
  });

  it('uses the designated-city flag only for moveWithin', () => {
    expectRejected(
      decideChange(
        currentAt(SAPPORO_CHUO_KU),
        note('nameChange', { municipalityCode: SAPPORO_KITA_KU }, { name: '山田　花子' }),
        {
          sameDesignatedCity: true,
        },
      ),
      'registry.wrong-municipality',
    );
  });
});

describe('decideChange: nameChange (氏名変更)', () => {
  it('changes the name and its reading', () => {
    const d = expectOk(
      decideChange(
        currentAt(CHIYODA),
        note('nameChange', {}, { name: '鈴木　太郎', nameKana: 'スズキ　タロウ' }),
      ),
    );
    expect(d.next.record.name).toBe('鈴木　太郎');
    expect(d.changedItems).toEqual(['name']);
  });

  it('changes only the reading: no basic-4 item changed', () => {
    const d = expectOk(
      decideChange(currentAt(CHIYODA), note('nameChange', {}, { nameKana: 'ヤマタ　タロウ' })),
    );
    expect(d.changedItems).toEqual([]);
    expect(d.next.record.nameKana).toBe('ヤマタ　タロウ');
  });

  it('must change the name or the reading', () => {
    expectRejected(
      decideChange(currentAt(CHIYODA), note('nameChange')),
      'registry.no-change',
      '/record/name',
    );
  });

  it.each([
    ['birthDate', { birthDate: '1990-05-16' }],
    ['sex', { sex: 'female' as const }],
    ['address', { address: '東京都千代田区丸の内１' }],
  ])('may not change %s', (field, rec) => {
    expectRejected(
      decideChange(currentAt(CHIYODA), note('nameChange', {}, { name: '鈴木　太郎', ...rec })),
      'registry.immutable-field',
      `/record/${field}`,
    );
  });

  it('refuses a resident held elsewhere, moving out or unknown', () => {
    const n = note('nameChange', {}, { name: '鈴木　太郎' });
    expectRejected(decideChange(currentAt(MINATO), n), 'registry.wrong-municipality');
    expectRejected(decideChange(movingOutAt(CHIYODA), n), 'registry.moving-out');
    expectRejected(decideChange(null, n), 'registry.record-not-found');
  });
});

describe.each(['death', 'officialRemoval'] as const)('decideChange: %s', (reason) => {
  it.each([currentAt(CHIYODA), movingOutAt(CHIYODA)])(
    'removes a live record (state %#)',
    (state) => {
      const d = expectOk(decideChange(state, note(reason)));
      expect(d.next).toEqual({
        status: 'removed',
        municipalityCode: CHIYODA,
        record: PERSON,
        removalCause: reason,
      });
      expect(d.removal).toBe(reason);
      expect(d.changedItems).toEqual([]);
    },
  );

  it('removes the record as it stands: no item may change', () => {
    expectRejected(
      decideChange(currentAt(CHIYODA), note(reason, {}, { name: '山田　次郎' })),
      'registry.immutable-field',
      '/record/name',
    );
  });

  it('refuses a record held elsewhere, already removed, or missing', () => {
    expectRejected(decideChange(currentAt(MINATO), note(reason)), 'registry.wrong-municipality');
    expectRejected(
      decideChange(removedAt(CHIYODA, 'death'), note(reason)),
      'registry.record-removed',
    );
    expectRejected(decideChange(null, note(reason)), 'registry.record-not-found');
  });

  it('refuses another My Number', () => {
    expectRejected(
      decideChange(currentAt(CHIYODA), note(reason, {}, { myNumber: MN_OTHER })),
      'registry.my-number-mismatch',
    );
  });
});

describe('decideChange: officialCorrection (職権修正)', () => {
  it('may change the birth date and sex, which nothing else may', () => {
    const d = expectOk(
      decideChange(
        currentAt(CHIYODA),
        note('officialCorrection', {}, { birthDate: '1990-05-16', sex: 'female' }),
      ),
    );
    expect(d.changedItems).toEqual(['birthDate', 'sex']);
    expect(d.next).toEqual({
      status: 'current',
      municipalityCode: CHIYODA,
      record: { ...PERSON, birthDate: '1990-05-16', sex: 'female' },
    });
  });

  it('may change every item at once', () => {
    const d = expectOk(
      decideChange(
        currentAt(CHIYODA),
        note(
          'officialCorrection',
          {},
          {
            name: '山田　太朗',
            nameKana: 'ヤマダ　タロ',
            birthDate: '1990-06-15',
            sex: 'female',
            address: '東京都千代田区千代田１番２号',
          },
        ),
      ),
    );
    expect(d.changedItems).toEqual(['name', 'birthDate', 'sex', 'address']);
  });

  it('keeps an open move-out open', () => {
    const state = movingOutAt(CHIYODA);
    const d = expectOk(
      decideChange(state, note('officialCorrection', {}, { nameKana: 'ヤマダ　タロー' })),
    );
    expect(d.next).toEqual({ ...state, record: { ...PERSON, nameKana: 'ヤマダ　タロー' } });
    expect(d.changedItems).toEqual([]);
  });

  it('must change something', () => {
    expectRejected(
      decideChange(currentAt(CHIYODA), note('officialCorrection')),
      'registry.no-change',
      '/record',
    );
  });

  it('may not change the resident code or the My Number', () => {
    expectRejected(
      decideChange(
        currentAt(CHIYODA),
        note('officialCorrection', {}, { residentCode: RC_NEW, sex: 'female' }),
      ),
      'registry.resident-code-mismatch',
    );
    expectRejected(
      decideChange(
        currentAt(CHIYODA),
        note('officialCorrection', {}, { myNumber: MN_OTHER, sex: 'female' }),
      ),
      'registry.my-number-mismatch',
    );
  });

  it('refuses a removed record or one held elsewhere', () => {
    const n = note('officialCorrection', {}, { sex: 'female' });
    expectRejected(decideChange(removedAt(CHIYODA, 'death'), n), 'registry.record-removed');
    expectRejected(decideChange(movingOutAt(MINATO), n), 'registry.wrong-municipality');
  });
});

describe('decideChange: residentCodeChange (住民票コードの変更, 第30条の4)', () => {
  it('moves the record to the new code and changes nothing else', () => {
    const d = expectOk(decideChange(currentAt(CHIYODA), note('residentCodeChange')));
    expect(d.next).toEqual({
      status: 'current',
      municipalityCode: CHIYODA,
      record: { ...PERSON, residentCode: RC_NEW },
    });
    expect(d.changedItems).toEqual([]);
  });

  it('needs the previous code to be the record’s code', () => {
    expectRejected(
      decideChange(
        currentAt(CHIYODA),
        note('residentCodeChange', { previousResidentCode: rc('5555555555') }),
      ),
      'registry.resident-code-mismatch',
      '/previousResidentCode',
    );
  });

  it('needs a new code', () => {
    expectRejected(
      decideChange(currentAt(CHIYODA), note('residentCodeChange', {}, { residentCode: RC })),
      'registry.no-change',
      '/record/residentCode',
    );
  });

  it.each([
    ['name', { name: '山田　次郎' }],
    ['address', { address: '東京都千代田区丸の内１' }],
    ['nameKana', { nameKana: 'ヤマダ　ジロウ' }],
  ])('may not change %s', (field, rec) => {
    expectRejected(
      decideChange(currentAt(CHIYODA), note('residentCodeChange', {}, rec)),
      'registry.immutable-field',
      `/record/${field}`,
    );
  });

  it('keeps the My Number', () => {
    expectRejected(
      decideChange(currentAt(CHIYODA), note('residentCodeChange', {}, { myNumber: MN_OTHER })),
      'registry.my-number-mismatch',
    );
  });

  it('refuses during a move-out, elsewhere, or without a record', () => {
    expectRejected(
      decideChange(movingOutAt(CHIYODA), note('residentCodeChange')),
      'registry.moving-out',
    );
    expectRejected(
      decideChange(currentAt(MINATO), note('residentCodeChange')),
      'registry.wrong-municipality',
    );
    expectRejected(
      decideChange(null, note('residentCodeChange')),
      'registry.record-not-found',
      '/previousResidentCode',
    );
  });

  it('refuses a notification without previousResidentCode that skipped validation', () => {
    const n = note('residentCodeChange', { previousResidentCode: undefined });
    expectRejected(decideChange(currentAt(CHIYODA), n), 'registry.invalid-notification');
  });
});

describe('decideChange: every stable code has a scenario', () => {
  const scenarios: Record<DecisionCode, [RecordState | null, RegistryNotification]> = {
    'registry.record-exists': [currentAt(CHIYODA), note('birth')],
    'registry.record-not-found': [null, note('death')],
    'registry.record-removed': [removedAt(CHIYODA, 'death'), note('death')],
    'registry.wrong-municipality': [currentAt(MINATO), note('death')],
    'registry.move-out-missing': [currentAt(MINATO), note('moveIn')],
    'registry.not-moving-out': [currentAt(CHIYODA), note('moveIn')],
    'registry.moving-out': [movingOutAt(CHIYODA), note('moveOut')],
    'registry.same-municipality': [movingOutAt(CHIYODA), note('moveIn')],
    'registry.immutable-field': [currentAt(CHIYODA), note('nameChange', {}, { sex: 'female' })],
    'registry.no-change': [currentAt(CHIYODA), note('officialCorrection')],
    'registry.resident-code-mismatch': [
      currentAt(CHIYODA, { residentCode: RC_NEW }),
      note('death'),
    ],
    'registry.my-number-mismatch': [currentAt(CHIYODA, { myNumber: MN_OTHER }), note('death')],
    'registry.invalid-notification': [
      currentAt(CHIYODA),
      { ...note('moveOut'), plannedMoveOutDate: undefined },
    ],
  };

  it('covers DECISION_CODES exactly', () => {
    expect(Object.keys(scenarios).sort()).toEqual([...DECISION_CODES].sort());
  });

  it.each(DECISION_CODES)('%s', (code) => {
    const [state, n] = scenarios[code];
    const d = decideChange(state, n);
    expectRejected(d, code);
    if (!d.ok) expect(d.detail.length).toBeGreaterThan(0);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

const chars = (from: number, to: number): fc.Arbitrary<string> =>
  fc.integer({ min: from, max: to }).map((cp) => String.fromCodePoint(cp));
const kanji = chars(0x4e00, 0x9fff);
const katakana = chars(0x30a1, 0x30f6);
const kanjiString = (min: number, max: number) =>
  fc.array(kanji, { minLength: min, maxLength: max }).map((a) => a.join(''));
const katakanaString = (min: number, max: number) =>
  fc.array(katakana, { minLength: min, maxLength: max }).map((a) => a.join(''));
const digits = (n: number) =>
  fc.array(fc.integer({ min: 0, max: 9 }), { minLength: n, maxLength: n }).map((a) => a.join(''));
const validName = fc
  .tuple(kanjiString(1, 8), kanjiString(1, 8))
  .map(([family, given]) => `${family}\u3000${given}`);
const validKana = fc
  .tuple(katakanaString(1, 10), katakanaString(1, 10))
  .map(([family, given]) => `${family}\u3000${given}`);
const validAddress = fc
  .tuple(kanjiString(2, 30), fc.integer({ min: 1, max: 99 }))
  .map(([a, n]) => `${a}${n}番`);
const municipality = fc
  .tuple(fc.integer({ min: 1, max: 47 }), fc.integer({ min: 100, max: 999 }))
  .map(([p, m]) => withCheckDigit(`${String(p).padStart(2, '0')}${m}`));

/** Every message and detail a body and a decision produce. */
function allTexts(b: unknown, state: RecordState | null = null): string[] {
  const texts = validate(b).map((e) => e.message);
  const parsed = b as RegistryNotification;
  if (typeof b === 'object' && b !== null && typeof parsed.record === 'object') {
    for (const reason of CHANGE_REASONS) {
      const d = decideChange(state, { ...parsed, changeReason: reason });
      if (!d.ok) texts.push(d.detail, d.pointer ?? '');
    }
  }
  return texts;
}

describe('messages never echo submitted values', () => {
  it('random text in name, reading and address never appears in any message', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', minLength: 8, maxLength: 120 }),
        fc.string({ unit: 'binary', minLength: 8, maxLength: 120 }),
        fc.string({ unit: 'binary', minLength: 8, maxLength: 250 }),
        (name, nameKana, address) => {
          const b = { ...note('birth'), record: { ...PERSON, name, nameKana, address } };
          for (const text of allTexts(b, currentAt(MINATO))) {
            for (const value of [name, nameKana, address]) expect(text.includes(value)).toBe(false);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('valid-looking but wrong data never appears in any message', () => {
    fc.assert(
      fc.property(
        kanjiString(3, 20),
        digits(11),
        digits(12),
        digits(6),
        fc.string({ unit: 'grapheme', minLength: 6, maxLength: 20 }),
        (name, residentCode, myNumber, municipalityCode, changeDate) => {
          const b = {
            ...note('moveOut'),
            municipalityCode,
            changeDate,
            plannedMoveOutDate: changeDate,
            record: { ...PERSON, name: `${name}1`, residentCode, myNumber },
          };
          for (const text of validate(b).map((e) => e.message)) {
            for (const value of [name, residentCode, myNumber, municipalityCode, changeDate]) {
              expect(text.includes(value)).toBe(false);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('rejection details never reveal the stored or submitted record, nor who holds it', () => {
    fc.assert(
      fc.property(
        validName,
        validName,
        validAddress,
        validAddress,
        municipality,
        digits(10),
        digits(11),
        (storedName, sentName, storedAddress, sentAddress, holder, rcBody, mnBody) => {
          const stored: IdentityRecordFields = {
            ...PERSON,
            name: storedName,
            address: storedAddress,
            residentCode: rc(rcBody),
            myNumber: mn(mnBody),
          };
          const states: RecordState[] = [
            { status: 'current', municipalityCode: holder, record: stored },
            { status: 'removed', municipalityCode: holder, record: stored, removalCause: 'death' },
          ];
          const secrets = [
            storedName,
            sentName,
            storedAddress,
            sentAddress,
            holder,
            stored.residentCode,
            stored.myNumber,
          ];
          for (const state of states) {
            for (const reason of CHANGE_REASONS) {
              const d = decideChange(
                state,
                note(reason, {}, { name: sentName, address: sentAddress }),
              );
              if (d.ok) continue;
              for (const s of secrets) expect(d.detail.includes(s)).toBe(false);
            }
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

/** `date` plus `days`, as YYYY-MM-DD (test-side arithmetic through Date, UTC). */
function addDays(date: string, days: number): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
}

type Step =
  | { kind: 'moveWithin'; gap: number; address: string }
  | { kind: 'nameChange'; gap: number; name: string; nameKana: string };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    kind: fc.constant('moveWithin' as const),
    gap: fc.integer({ min: 0, max: 400 }),
    address: validAddress,
  }),
  fc.record({
    kind: fc.constant('nameChange' as const),
    gap: fc.integer({ min: 0, max: 400 }),
    name: validName,
    nameKana: validKana,
  }),
);

describe('a life: birth → (moveWithin | nameChange)* → moveOut → moveIn elsewhere → death', () => {
  it('every notification is well formed and accepted, and the record ends removed', () => {
    fc.assert(
      fc.property(
        fc.record({
          from: municipality,
          to: municipality,
          rcBody: digits(10),
          mnBody: digits(11),
          birthDate: fc.integer({ min: 0, max: 20_000 }).map((d) => addDays('1950-01-01', d)),
          name: validName,
          nameKana: validKana,
          sex: fc.constantFrom('male' as const, 'female' as const),
          address: validAddress,
          steps: fc.array(step, { maxLength: 12 }),
          moveOutGap: fc.integer({ min: 0, max: 400 }),
          plannedOffset: fc.integer({ min: -30, max: 60 }),
          moveInGap: fc.integer({ min: 0, max: 14 }),
          newAddress: validAddress,
          deathGap: fc.integer({ min: 0, max: 4000 }),
        }),
        (life) => {
          fc.pre(life.from !== life.to);
          let record: IdentityRecordFields = {
            residentCode: rc(life.rcBody),
            myNumber: mn(life.mnBody),
            name: life.name,
            nameKana: life.nameKana,
            birthDate: life.birthDate,
            sex: life.sex,
            address: life.address,
          };
          const notes: RegistryNotification[] = [];
          let date = life.birthDate;
          let sequence = 1;
          const push = (
            changeReason: ChangeReason,
            municipalityCode: string,
            extra: Partial<RegistryNotification> = {},
          ): void => {
            notes.push({
              municipalityCode,
              sequence: sequence++,
              changeReason,
              changeDate: date,
              record,
              ...extra,
            });
          };

          push('birth', life.from);
          for (const s of life.steps) {
            date = addDays(date, s.gap);
            if (s.kind === 'moveWithin') {
              const address = s.address === record.address ? `${s.address}の2` : s.address;
              record = { ...record, address };
              push('moveWithin', life.from);
            } else {
              const name = s.name === record.name ? `${s.name}ノ` : s.name;
              record = { ...record, name, nameKana: s.nameKana };
              push('nameChange', life.from);
            }
          }
          date = addDays(date, life.moveOutGap);
          const offsetDate = addDays(date, life.plannedOffset);
          const planned = offsetDate < life.birthDate ? life.birthDate : offsetDate;
          push('moveOut', life.from, {
            plannedMoveOutDate: planned,
            destination: { municipalityCode: life.to },
          });
          date = addDays(date, life.moveInGap);
          record = { ...record, address: life.newAddress };
          push('moveIn', life.to);
          date = addDays(date, life.deathGap);
          push('death', life.to);
          const today = date;

          let state: RecordState | null = null;
          for (const n of notes) {
            expect(validateNotificationFields(n, today)).toEqual([]);
            const d = expectOk(decideChange(state, n));
            if (n.changeReason === 'moveWithin') expect(d.changedItems).toEqual(['address']);
            if (n.changeReason === 'moveIn') {
              expect(d.closesMoveOutAt).toBe(life.from);
              expect(d.changedItems).toContain('address');
            }
            state = d.next;
          }
          expect(state).toEqual({
            status: 'removed',
            municipalityCode: life.to,
            record,
            removalCause: 'death',
          });
        },
      ),
      { numRuns: 300 },
    );
  });
});
