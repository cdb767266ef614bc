/**
 * 本人確認情報の異動 at the national server of 住基ネット: the rules that decide whether an
 * identity-record change notification (本人確認情報の通知, 住民基本台帳法第30条の6 municipality →
 * prefecture, 第30条の7 prefecture → agency) is well formed and what it does to the person's
 * record. Every accepted notification becomes a new version of the stored record
 * (機構保存本人確認情報); nothing is overwritten.
 *
 * Pure: no database, no clock, no I/O. The store loads the person's latest state, passes it
 * here as plain data together with what it knows from master data, and writes the result.
 *
 * Messages and details never carry the submitted value (a name, an address or a My Number):
 * they say what is wrong and where (a JSON pointer), never what was sent.
 */
import type { FieldError } from '../platform/errors.ts';
import { isValidMyNumber, isValidResidentCode } from '../numbering/check-digits.ts';
import { isValidLocalGovernmentCode } from '../platform/local-government-code.ts';

// ---------------------------------------------------------------------------------------------
// Vocabulary
// ---------------------------------------------------------------------------------------------

/**
 * 異動事由 (change reasons), a closed list (GLOSSARY.md; extend only from the law).
 *
 * - `birth` 出生: recorded by office when the 出生届 (戸籍法第49条) is received
 *   (住民基本台帳法施行令第12条第2項).
 * - `moveIn` 転入 (住民基本台帳法第22条; foreign residents 第30条の46).
 * - `moveOut` 転出 (第24条): notified beforehand with the destination and planned date.
 * - `moveWithin` 転居 (第23条): a new address in the same municipality.
 * - `death` 死亡 (戸籍法第86条 → 施行令第12条第2項).
 * - `nameChange` 氏名変更 (from the 戸籍 — marriage, adoption, 戸籍法第107条 …).
 * - `officialEntry` 職権記載, `officialRemoval` 職権消除, `officialCorrection` 職権修正
 *   (施行令第12条).
 * - `emigration` 国外転出 (第24条 with a destination abroad).
 * - `residentCodeChange` 住民票コードの変更 (第30条の4): the record carries the new code, the
 *   notification the retired one in `previousResidentCode`.
 */
export const CHANGE_REASONS = [
  'birth',
  'moveIn',
  'moveOut',
  'moveWithin',
  'death',
  'nameChange',
  'officialEntry',
  'officialRemoval',
  'officialCorrection',
  'emigration',
  'residentCodeChange',
] as const;

export type ChangeReason = (typeof CHANGE_REASONS)[number];

/** The Japanese legal term of each change reason (for UIs, reports and documentation). */
export const CHANGE_REASON_TERMS: Readonly<Record<ChangeReason, string>> = {
  birth: '出生',
  moveIn: '転入',
  moveOut: '転出',
  moveWithin: '転居',
  death: '死亡',
  nameChange: '氏名変更',
  officialEntry: '職権記載',
  officialRemoval: '職権消除',
  officialCorrection: '職権修正',
  emigration: '国外転出',
  residentCodeChange: '住民票コードの変更',
};

export function isChangeReason(v: unknown): v is ChangeReason {
  return typeof v === 'string' && (CHANGE_REASONS as readonly string[]).includes(v);
}

/** 性別 as recorded in the 住民票 (住民基本台帳法第7条第3号). */
export const SEXES = ['male', 'female'] as const;
export type Sex = (typeof SEXES)[number];

/** The identity-record fields (本人確認情報, 住民基本台帳法第30条の6第1項) a notification carries. */
export interface IdentityRecordFields {
  /** 住民票コード, 11 digits with check digit. */
  residentCode: string;
  /** 個人番号, 12 digits with check digit. */
  myNumber: string;
  /** 氏名 */
  name: string;
  /** 氏名の振り仮名 (full-width katakana). */
  nameKana: string;
  /** 生年月日, YYYY-MM-DD (Gregorian). */
  birthDate: string;
  /** 性別 */
  sex: Sex;
  /** 住所 */
  address: string;
}

/** 基本4情報: the items whose change voids a signing certificate (GLOSSARY.md). */
export const BASIC_ITEMS = ['name', 'birthDate', 'sex', 'address'] as const;
export type BasicItem = (typeof BASIC_ITEMS)[number];

/** 転出先: another municipality, or abroad (国外). */
export type Destination = { municipalityCode: string } | { abroad: true };

/** A change notification as received from a municipality (relayed by its prefecture). */
export interface RegistryNotification {
  /** The notifying municipality (全国地方公共団体コード, 6 digits). */
  municipalityCode: string;
  /** The municipality's own running number for its notifications (≥ 1). */
  sequence: number;
  changeReason: ChangeReason;
  /** 異動年月日 (for moveOut / emigration: the day the notice was given). */
  changeDate: string;
  record: IdentityRecordFields;
  /** 転出の予定年月日: moveOut and emigration only. */
  plannedMoveOutDate?: string;
  /** 転出先: moveOut (required) and emigration (optional, abroad) only. */
  destination?: Destination;
  /** The retired 住民票コード: residentCodeChange only. */
  previousResidentCode?: string;
}

/** 消除 causes at the national server. */
export const REMOVAL_CAUSES = ['death', 'officialRemoval', 'emigration'] as const;
export type RemovalCause = (typeof REMOVAL_CAUSES)[number];

export const RECORD_STATUSES = ['current', 'movingOut', 'removed'] as const;
export type RecordStatus = (typeof RECORD_STATUSES)[number];

/** A resident of `municipalityCode`. */
export interface CurrentRecordState {
  status: 'current';
  municipalityCode: string;
  record: IdentityRecordFields;
}

/** `municipalityCode` accepted a 転出届 (第24条) to another municipality; no 転入 yet. */
export interface MovingOutRecordState {
  status: 'movingOut';
  municipalityCode: string;
  record: IdentityRecordFields;
  plannedMoveOutDate: string;
  destination: { municipalityCode: string };
}

/** 消除: removed by `municipalityCode` for `removalCause`. */
export interface RemovedRecordState {
  status: 'removed';
  municipalityCode: string;
  record: IdentityRecordFields;
  removalCause: RemovalCause;
  /** Emigration only: the planned departure and `{ abroad: true }`. */
  plannedMoveOutDate?: string;
  destination?: Destination;
}

/** The latest version of a person's record at the national server; `null` when none exists. */
export type RecordState = CurrentRecordState | MovingOutRecordState | RemovedRecordState;

// ---------------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------------

/**
 * Earliest accepted 生年月日: 1868-01-01, the Gregorian year in which 明治 began. The 明治 era
 * (the earliest era used in 住民票 birth dates) was proclaimed on 1868-10-23 and applied
 * retroactively from 慶応4年1月1日 (1868-01-25); starting at 1 January keeps the bound a round
 * year that contains all of 明治元年. Anyone born earlier would have been over 134 when 住基ネット
 * started in 2002, so an earlier date can only be a typing or era-conversion error.
 */
export const EARLIEST_BIRTH_DATE = '1868-01-01';

/**
 * The accepted 転出の予定年月日 relative to the notice's changeDate: from 30 days before to 60
 * days after.
 *
 * 住民基本台帳法第24条 requires the 転出届 "あらかじめ" (before the move) and sets no window.
 * Municipalities still accept a notice given after the move — late notice is punishable
 * (第52条第2項) but not void — so a planned date in the past is legitimate. 30 days back is the
 * same yardstick as the 転入届の特例 (第24条の2: the card-based move-in must be made within 30
 * days of the planned move-out date), and the backbone's own 30-day rule for authentication
 * certificates after a move-out; a planned date further back has already run out every period
 * that depends on it. 60 days ahead is not from the law: municipalities take notices a few
 * weeks ahead, and two months leaves room for that while catching a mistyped month or year.
 */
export const PLANNED_MOVE_OUT_DAYS_BEFORE_CHANGE = 30;
export const PLANNED_MOVE_OUT_DAYS_AFTER_CHANGE = 60;

/** Lengths in Unicode code points (so 𠮷, one surrogate pair, counts once). */
export const NAME_MAX = 60;
export const NAME_KANA_MAX = 100;
export const ADDRESS_MAX = 200;

// ---------------------------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------------------------

const DATE_PATTERN = /^([0-9]{4})-([0-9]{2})-([0-9]{2})$/;

function isLeapYear(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

function daysInMonth(y: number, m: number): number {
  if (m === 2) return isLeapYear(y) ? 29 : 28;
  return m === 4 || m === 6 || m === 9 || m === 11 ? 30 : 31;
}

/** Whether `s` is `YYYY-MM-DD` naming a real day of the proleptic Gregorian calendar. */
export function isCalendarDate(s: unknown): s is string {
  if (typeof s !== 'string') return false;
  const m = DATE_PATTERN.exec(s);
  if (!m) return false;
  const y = Number(m[1]);
  const mo = Number(m[2]);
  const d = Number(m[3]);
  return y >= 1 && mo >= 1 && mo <= 12 && d >= 1 && d <= daysInMonth(y, mo);
}

/** Days since 1970-01-01 of a valid calendar date (civil-from-days, no Date object). */
function dayNumber(s: string): number {
  let y = Number(s.slice(0, 4));
  const m = Number(s.slice(5, 7));
  const d = Number(s.slice(8, 10));
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** Days from `from` to `to` (both valid calendar dates). */
export function daysBetween(from: string, to: string): number {
  return dayNumber(to) - dayNumber(from);
}

/** The calendar date in Japan (UTC+9, no daylight saving) at `instant`, as YYYY-MM-DD. */
export function japanDateOf(instant: Date): string {
  return new Date(instant.getTime() + 9 * 3_600_000).toISOString().slice(0, 10);
}

// ---------------------------------------------------------------------------------------------
// Characters
// ---------------------------------------------------------------------------------------------

/** CJK ideographs: URO, Ext A, Ext B, compatibility ideographs and their supplement. */
function isIdeograph(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

/** 々 〆 */
const isIdeographicMark = (cp: number): boolean => cp === 0x3005 || cp === 0x3006;
/** ぁ–ゖ and the iteration marks ゝ ゞ. */
const isHiragana = (cp: number): boolean =>
  (cp >= 0x3041 && cp <= 0x3096) || cp === 0x309d || cp === 0x309e;
/** ァ–ヺ (includes ヵ ヶ). */
const isFullWidthKatakana = (cp: number): boolean => cp >= 0x30a1 && cp <= 0x30fa;
/** ヽ ヾ */
const isKatakanaIterationMark = (cp: number): boolean => cp === 0x30fd || cp === 0x30fe;
const PROLONGED_SOUND_MARK = 0x30fc; // ー
const MIDDLE_DOT = 0x30fb; // ・
const FULL_WIDTH_EQUALS = 0xff1d; // ＝
const ASCII_SPACE = 0x20;
const IDEOGRAPHIC_SPACE = 0x3000;
const isSpace = (cp: number): boolean => cp === ASCII_SPACE || cp === IDEOGRAPHIC_SPACE;
const isAsciiLetter = (cp: number): boolean =>
  (cp >= 0x41 && cp <= 0x5a) || (cp >= 0x61 && cp <= 0x7a);
const isFullWidthLetter = (cp: number): boolean =>
  (cp >= 0xff21 && cp <= 0xff3a) || (cp >= 0xff41 && cp <= 0xff5a);
/** U+FF61–U+FF9F: half-width katakana and half-width CJK punctuation. */
const isHalfWidthKatakana = (cp: number): boolean => cp >= 0xff61 && cp <= 0xff9f;
const isAsciiDigit = (cp: number): boolean => cp >= 0x30 && cp <= 0x39;
const isFullWidthDigit = (cp: number): boolean => cp >= 0xff10 && cp <= 0xff19;

const CONTROL = /^[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]$/u;
const SURROGATE = /^\p{Cs}$/u;
const PRIVATE_USE = /^\p{Co}$/u;
const NUMERAL = /^\p{N}$/u;
const SPACE_SEPARATOR = /^\p{Zs}$/u;
const EMOJI = /^[\p{Extended_Pictographic}\p{Regional_Indicator}\u{FE0F}\u{20E3}]$/u;

type Refusal = (position: number) => string;

/** The message for a character no text field accepts, or null. Checked before the allow-list. */
function commonRefusal(ch: string): Refusal | null {
  if (SURROGATE.test(ch)) return (p) => `character ${p} is an unpaired UTF-16 surrogate`;
  if (CONTROL.test(ch)) {
    return (p) => `character ${p} is a control or invisible formatting character`;
  }
  if (EMOJI.test(ch)) return (p) => `character ${p} is an emoji or pictograph`;
  if (PRIVATE_USE.test(ch)) return (p) => `character ${p} is a private-use character`;
  return null;
}

interface Spelling {
  max: number;
  isLetter: (cp: number) => boolean;
  isSeparator: (cp: number) => boolean;
  /** Message tail naming what the field allows. */
  allowed: string;
  /** Class-specific refusals checked before the generic one. */
  refuse: (cp: number, ch: string) => Refusal | null;
}

/**
 * Checks a name-like field: length in code points, the allow-list, and separators (spaces,
 * and ・ / ＝ where allowed) only between parts — never first, last or two in a row.
 */
function spellingProblem(s: string, rule: Spelling): string | null {
  const chars = [...s];
  if (chars.length === 0) return 'must not be empty';
  if (chars.length > rule.max) {
    return `must be at most ${rule.max} characters (counted in Unicode code points)`;
  }
  let previousWasSeparator = false;
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    const cp = ch.codePointAt(0)!;
    const position = i + 1;
    const refusal = commonRefusal(ch) ?? rule.refuse(cp, ch);
    if (refusal) return refusal(position);
    if (rule.isSeparator(cp)) {
      if (i === 0 || i === chars.length - 1) {
        return 'must not begin or end with a space or separator';
      }
      if (previousWasSeparator) {
        return `character ${position} follows another space or separator; put exactly one between parts`;
      }
      previousWasSeparator = true;
      continue;
    }
    if (!rule.isLetter(cp)) return `character ${position} is not allowed; ${rule.allowed}`;
    previousWasSeparator = false;
  }
  return null;
}

const NAME_SPELLING: Spelling = {
  max: NAME_MAX,
  isLetter: (cp) =>
    isIdeograph(cp) ||
    isIdeographicMark(cp) ||
    isHiragana(cp) ||
    isFullWidthKatakana(cp) ||
    isKatakanaIterationMark(cp) ||
    cp === PROLONGED_SOUND_MARK ||
    isAsciiLetter(cp) ||
    isFullWidthLetter(cp),
  isSeparator: (cp) => isSpace(cp) || cp === MIDDLE_DOT || cp === FULL_WIDTH_EQUALS,
  allowed:
    'a name may contain kanji, 々 〆, hiragana, katakana, ー, Latin letters, and single spaces, ・ or ＝ between parts',
  refuse: (cp, ch) => {
    if (NUMERAL.test(ch)) return (p) => `character ${p} is a digit or numeral; names have none`;
    if (isHalfWidthKatakana(cp)) {
      return (p) => `character ${p} is half-width katakana; use full-width katakana`;
    }
    return null;
  },
};

const NAME_KANA_SPELLING: Spelling = {
  max: NAME_KANA_MAX,
  isLetter: (cp) => isFullWidthKatakana(cp) || cp === PROLONGED_SOUND_MARK,
  isSeparator: (cp) => isSpace(cp) || cp === MIDDLE_DOT,
  allowed:
    'the reading may contain full-width katakana (ァ–ヺ), ー, and single spaces or ・ between parts',
  refuse: (cp, ch) => {
    if (NUMERAL.test(ch)) return (p) => `character ${p} is a digit or numeral`;
    if (isHalfWidthKatakana(cp)) {
      return (p) => `character ${p} is half-width katakana; use full-width katakana`;
    }
    if (isHiragana(cp)) return (p) => `character ${p} is hiragana; use full-width katakana`;
    return null;
  },
};

/** Whether `s` is an acceptable 氏名; `null` when it is, else a message without the value. */
export function nameProblem(s: string): string | null {
  return spellingProblem(s, NAME_SPELLING);
}

/** Whether `s` is an acceptable 氏名の振り仮名; `null` when it is. */
export function nameKanaProblem(s: string): string | null {
  return spellingProblem(s, NAME_KANA_SPELLING);
}

/**
 * Whether `s` is an acceptable 住所; `null` when it is. Free text (addresses mix kanji, kana,
 * digits, hyphens, Latin building names) but: 1–200 code points, no control, invisible,
 * private-use or emoji characters, only ASCII or ideographic spaces and none at either end,
 * and at least one kanji, kana or digit.
 */
export function addressProblem(s: string): string | null {
  const chars = [...s];
  if (chars.length === 0) return 'must not be empty';
  if (chars.length > ADDRESS_MAX) {
    return `must be at most ${ADDRESS_MAX} characters (counted in Unicode code points)`;
  }
  let hasAnchor = false;
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    const cp = ch.codePointAt(0)!;
    const refusal = commonRefusal(ch);
    if (refusal) return refusal(i + 1);
    if (SPACE_SEPARATOR.test(ch) && !isSpace(cp)) {
      return `character ${i + 1} is an unusual space; use an ASCII or ideographic space`;
    }
    if (isSpace(cp) && (i === 0 || i === chars.length - 1)) {
      return 'must not begin or end with a space';
    }
    if (
      isIdeograph(cp) ||
      isIdeographicMark(cp) ||
      isHiragana(cp) ||
      isFullWidthKatakana(cp) ||
      isAsciiDigit(cp) ||
      isFullWidthDigit(cp)
    ) {
      hasAnchor = true;
    }
  }
  return hasAnchor ? null : 'must contain at least one kanji, kana or digit';
}

/** Whether `code` is a valid 全国地方公共団体コード of a municipality (not a prefecture). */
export function municipalityCodeProblem(code: unknown): string | null {
  if (typeof code !== 'string' || !isValidLocalGovernmentCode(code)) {
    return 'must be a 6-digit local government code with a valid check digit';
  }
  if (code.slice(2, 5) === '000') return 'must be a municipality code, not a prefecture code';
  return null;
}

// ---------------------------------------------------------------------------------------------
// Field validation
// ---------------------------------------------------------------------------------------------

const TOP_LEVEL_MEMBERS = new Set([
  'municipalityCode',
  'sequence',
  'changeReason',
  'changeDate',
  'record',
  'plannedMoveOutDate',
  'destination',
  'previousResidentCode',
]);
const RECORD_MEMBERS = new Set([
  'residentCode',
  'myNumber',
  'name',
  'nameKana',
  'birthDate',
  'sex',
  'address',
]);

const MOVE_OUT_REASONS: readonly ChangeReason[] = ['moveOut', 'emigration'];

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** RFC 6901 escaping of one reference token. */
export function pointerToken(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

export const MISSING = 'is required';
const NOT_A_STRING = 'must be a string';
export const NOT_A_DATE = 'must be a real calendar date written YYYY-MM-DD';

/**
 * The envelope every registry notification shares (identity and supplement streams): no
 * unknown top-level members, the notifying municipality, its running `sequence`, a change
 * reason from the stream's closed list, and a change date no later than `today` (Japan).
 */
export function validateEnvelope<R extends string>(
  n: Record<string, unknown>,
  today: string,
  add: (pointer: string, message: string) => void,
  stream: {
    members: ReadonlySet<string>;
    reasons: readonly R[];
    isReason: (v: unknown) => v is R;
  },
): { reason: R | null; changeDate: string | null } {
  for (const key of Object.keys(n)) {
    if (!stream.members.has(key)) add(`/${pointerToken(key)}`, 'is not a notification member');
  }
  const municipalityCode = n['municipalityCode'];
  if (municipalityCode === undefined) add('/municipalityCode', MISSING);
  else {
    const p = municipalityCodeProblem(municipalityCode);
    if (p) add('/municipalityCode', p);
  }
  const sequence = n['sequence'];
  if (sequence === undefined) add('/sequence', MISSING);
  else if (typeof sequence !== 'number' || !Number.isSafeInteger(sequence) || sequence < 1) {
    add('/sequence', 'must be a whole number from 1 up');
  }
  const reasonValue = n['changeReason'];
  let reason: R | null = null;
  if (reasonValue === undefined) add('/changeReason', MISSING);
  else if (stream.isReason(reasonValue)) reason = reasonValue;
  else add('/changeReason', `must be one of: ${stream.reasons.join(', ')}`);
  const changeDateValue = n['changeDate'];
  let changeDate: string | null = null;
  if (changeDateValue === undefined) add('/changeDate', MISSING);
  else if (!isCalendarDate(changeDateValue)) add('/changeDate', NOT_A_DATE);
  else if (changeDateValue > today) add('/changeDate', 'must not be after today (Japan time)');
  else changeDate = changeDateValue;
  return { reason, changeDate };
}

/**
 * Checks a notification body field by field. Returns every problem found, each located by a
 * JSON pointer; `[]` means the body is a well-formed {@link RegistryNotification}. Messages
 * never repeat the submitted values.
 *
 * `today` is the current calendar date in Japan (see {@link japanDateOf}); no change may be
 * dated after it.
 * @throws RangeError when `today` is not a calendar date (a programming error, not bad input).
 */
export function validateNotificationFields(n: unknown, today: string): FieldError[] {
  if (!isCalendarDate(today)) throw new RangeError('today must be a calendar date YYYY-MM-DD');
  if (!isObject(n)) return [{ pointer: '', message: 'must be a JSON object' }];
  const errors: FieldError[] = [];
  const add = (pointer: string, message: string): void => {
    errors.push({ pointer, message });
  };

  const { reason, changeDate } = validateEnvelope(n, today, add, {
    members: TOP_LEVEL_MEMBERS,
    reasons: CHANGE_REASONS,
    isReason: isChangeReason,
  });

  // The record.
  const record = n['record'];
  let residentCode: string | null = null;
  let birthDate: string | null = null;
  if (record === undefined) add('/record', MISSING);
  else if (!isObject(record)) add('/record', 'must be a JSON object');
  else {
    for (const key of Object.keys(record)) {
      if (!RECORD_MEMBERS.has(key)) add(`/record/${pointerToken(key)}`, 'is not a record member');
    }
    const rc = record['residentCode'];
    if (rc === undefined) add('/record/residentCode', MISSING);
    else if (typeof rc !== 'string' || !isValidResidentCode(rc)) {
      add('/record/residentCode', 'must be 11 digits ending in a valid check digit');
    } else residentCode = rc;

    const mn = record['myNumber'];
    if (mn === undefined) add('/record/myNumber', MISSING);
    else if (typeof mn !== 'string' || !isValidMyNumber(mn)) {
      add('/record/myNumber', 'must be 12 digits ending in a valid check digit');
    }

    const textFields: [string, (s: string) => string | null][] = [
      ['name', nameProblem],
      ['nameKana', nameKanaProblem],
      ['address', addressProblem],
    ];
    for (const [key, problem] of textFields) {
      const v = record[key];
      if (v === undefined) add(`/record/${key}`, MISSING);
      else if (typeof v !== 'string') add(`/record/${key}`, NOT_A_STRING);
      else {
        const p = problem(v);
        if (p) add(`/record/${key}`, p);
      }
    }

    const bd = record['birthDate'];
    if (bd === undefined) add('/record/birthDate', MISSING);
    else if (!isCalendarDate(bd)) add('/record/birthDate', NOT_A_DATE);
    else if (bd < EARLIEST_BIRTH_DATE) {
      add(
        '/record/birthDate',
        `must not be before ${EARLIEST_BIRTH_DATE} (the first year of 明治)`,
      );
    } else if (changeDate !== null && bd > changeDate) {
      add('/record/birthDate', 'must not be after changeDate');
    } else if (bd > today) add('/record/birthDate', 'must not be after today');
    else birthDate = bd;

    const sex = record['sex'];
    if (sex === undefined) add('/record/sex', MISSING);
    else if (typeof sex !== 'string' || !(SEXES as readonly string[]).includes(sex)) {
      add('/record/sex', `must be one of: ${SEXES.join(', ')}`);
    }
  }

  // 転出の予定年月日 (住民基本台帳法第24条): required for moveOut and emigration, nowhere else.
  const planned = n['plannedMoveOutDate'];
  const movesOut = reason !== null && MOVE_OUT_REASONS.includes(reason);
  if (planned === undefined) {
    if (movesOut) add('/plannedMoveOutDate', `${MISSING} for ${reason}`);
  } else if (reason !== null && !movesOut) {
    add('/plannedMoveOutDate', 'is allowed only for moveOut and emigration');
  } else if (!isCalendarDate(planned)) add('/plannedMoveOutDate', NOT_A_DATE);
  else if (birthDate !== null && planned < birthDate) {
    add('/plannedMoveOutDate', 'must not be before birthDate');
  } else if (changeDate !== null) {
    const offset = daysBetween(changeDate, planned);
    if (
      offset < -PLANNED_MOVE_OUT_DAYS_BEFORE_CHANGE ||
      offset > PLANNED_MOVE_OUT_DAYS_AFTER_CHANGE
    ) {
      add(
        '/plannedMoveOutDate',
        `must be from ${PLANNED_MOVE_OUT_DAYS_BEFORE_CHANGE} days before to ${PLANNED_MOVE_OUT_DAYS_AFTER_CHANGE} days after changeDate`,
      );
    }
  }

  // 転出先: a municipality or abroad for moveOut; abroad (or omitted) for emigration.
  const destination = n['destination'];
  if (destination === undefined) {
    if (reason === 'moveOut') add('/destination', `${MISSING} for moveOut`);
  } else if (reason !== null && !movesOut) {
    add('/destination', 'is allowed only for moveOut and emigration');
  } else if (!isObject(destination)) add('/destination', 'must be a JSON object');
  else {
    const keys = Object.keys(destination);
    const abroad = keys.length === 1 && keys[0] === 'abroad';
    const domestic = keys.length === 1 && keys[0] === 'municipalityCode';
    if (abroad) {
      if (destination['abroad'] !== true) add('/destination/abroad', 'must be true');
    } else if (domestic) {
      const code = destination['municipalityCode'];
      const p = municipalityCodeProblem(code);
      if (p) add('/destination/municipalityCode', p);
      else if (reason === 'emigration') {
        add('/destination', 'must be {"abroad": true} for emigration');
      } else if (code === n['municipalityCode']) {
        add(
          '/destination/municipalityCode',
          'must differ from municipalityCode; a move inside one municipality is moveWithin',
        );
      }
    } else {
      add('/destination', 'must be either {"municipalityCode": …} or {"abroad": true}');
    }
  }

  // 住民票コードの変更 (第30条の4): the retired code travels beside the new one.
  const previous = n['previousResidentCode'];
  if (previous === undefined) {
    if (reason === 'residentCodeChange') add('/previousResidentCode', `${MISSING} for ${reason}`);
  } else if (reason !== null && reason !== 'residentCodeChange') {
    add('/previousResidentCode', 'is allowed only for residentCodeChange');
  } else if (typeof previous !== 'string' || !isValidResidentCode(previous)) {
    add('/previousResidentCode', 'must be 11 digits ending in a valid check digit');
  } else if (residentCode !== null && previous === residentCode) {
    add('/record/residentCode', 'must differ from previousResidentCode');
  }

  return errors;
}

/** {@link validateNotificationFields} as a parser: the typed notification, or the errors. */
export function parseNotification(
  body: unknown,
  today: string,
): { ok: true; notification: RegistryNotification } | { ok: false; errors: FieldError[] } {
  const errors = validateNotificationFields(body, today);
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, notification: body as RegistryNotification };
}

// ---------------------------------------------------------------------------------------------
// Decisions
// ---------------------------------------------------------------------------------------------

/** Stable rejection codes of {@link decideChange}; clients branch on these. */
export const DECISION_CODES = [
  'registry.record-exists',
  'registry.record-not-found',
  'registry.record-removed',
  'registry.wrong-municipality',
  'registry.move-out-missing',
  'registry.not-moving-out',
  'registry.moving-out',
  'registry.same-municipality',
  'registry.immutable-field',
  'registry.no-change',
  'registry.resident-code-mismatch',
  'registry.my-number-mismatch',
  'registry.invalid-notification',
] as const;
export type DecisionCode = (typeof DECISION_CODES)[number];

export interface Accepted {
  ok: true;
  /** The new latest version to store. */
  next: RecordState;
  /** Basic-4 items that differ from the previous version (nameKana is not one of them). */
  changedItems: BasicItem[];
  /** The municipality whose open move-out this change closes (move-in elsewhere). */
  closesMoveOutAt?: string;
  /** Set when this change removes (消除) the record. */
  removal?: RemovalCause;
}

export interface Rejected {
  ok: false;
  code: DecisionCode;
  /** Client-safe; never names a value or the municipality that holds the record. */
  detail: string;
  pointer?: string;
}

export type Decision = Accepted | Rejected;

/** What the store knows beyond the record, as plain data. */
export interface DecisionContext {
  /**
   * True when the record's municipality and the notifier are wards (区) of the same 指定都市
   * (地方自治法第252条の19). Each ward keeps its register and has its own code, but the city is
   * one 市: a move between its wards (区間異動) stays "一の市町村の区域内" and is a 転居
   * (住民基本台帳法第23条, moveWithin) filed at the new ward, not 転出 + 転入. The store derives
   * the flag from `local_governments.parent_code`; this module has no master data.
   */
  sameDesignatedCity?: boolean;
}

const reject = (code: DecisionCode, detail: string, pointer?: string): Rejected =>
  pointer === undefined ? { ok: false, code, detail } : { ok: false, code, detail, pointer };

const RECORD_FIELDS = [
  'name',
  'nameKana',
  'birthDate',
  'sex',
  'address',
] as const satisfies readonly (keyof IdentityRecordFields)[];
type RecordField = (typeof RECORD_FIELDS)[number];

function diffItems(prev: IdentityRecordFields, next: IdentityRecordFields): BasicItem[] {
  return BASIC_ITEMS.filter((k) => prev[k] !== next[k]);
}

function withAddress(items: readonly BasicItem[]): BasicItem[] {
  return BASIC_ITEMS.filter((k) => k === 'address' || items.includes(k));
}

/** Rejects the first field in `fields` that differs, or returns null. */
function unchanged(
  prev: IdentityRecordFields,
  next: IdentityRecordFields,
  fields: readonly RecordField[],
  why: string,
): Rejected | null {
  const f = fields.find((k) => prev[k] !== next[k]);
  return f === undefined
    ? null
    : reject('registry.immutable-field', `${f} cannot change by ${why}`, `/record/${f}`);
}

/** Only 職権修正 may change the birth date or the sex. */
const BIRTH_AND_SEX: readonly RecordField[] = ['birthDate', 'sex'];

/** The statuses of a live record. */
const MOVABLE = ['current', 'movingOut'] as const;

/** The same person: the resident code (or the retired one) and the My Number match. */
function identityProblem(state: RecordState, n: RegistryNotification): Rejected | null {
  if (n.changeReason === 'residentCodeChange') {
    if (n.previousResidentCode !== state.record.residentCode) {
      return reject(
        'registry.resident-code-mismatch',
        'previousResidentCode is not the resident code of this record',
        '/previousResidentCode',
      );
    }
  } else if (n.record.residentCode !== state.record.residentCode) {
    return reject(
      'registry.resident-code-mismatch',
      'the resident code is not the one of this record',
      '/record/residentCode',
    );
  }
  if (n.record.myNumber !== state.record.myNumber) {
    return reject(
      'registry.my-number-mismatch',
      'the My Number does not match the one recorded for this resident',
      '/record/myNumber',
    );
  }
  return null;
}

const notFound = (n: RegistryNotification): Rejected =>
  reject(
    'registry.record-not-found',
    `no identity record exists for this resident code; ${n.changeReason} needs one`,
    n.changeReason === 'residentCodeChange' ? '/previousResidentCode' : '/record/residentCode',
  );

/**
 * The checks every change to a record held by the notifier shares: it exists, is the same
 * person, is not removed, is held by the notifier and has one of `statuses`.
 */
function heldByNotifier<S extends 'current' | 'movingOut'>(
  state: RecordState | null,
  n: RegistryNotification,
  statuses: readonly S[],
  ctx: DecisionContext,
): Rejected | Extract<RecordState, { status: S }> {
  if (state === null) return notFound(n);
  const id = identityProblem(state, n);
  if (id) return id;
  if (state.status === 'removed') {
    return reject(
      'registry.record-removed',
      `the record has been removed (消除); ${n.changeReason} applies only to a live record`,
      '/changeReason',
    );
  }
  const otherWardOfCity = n.changeReason === 'moveWithin' && ctx.sameDesignatedCity === true;
  if (state.municipalityCode !== n.municipalityCode && !otherWardOfCity) {
    return reject(
      'registry.wrong-municipality',
      'the resident is recorded by another municipality; only that municipality may notify this change',
      '/municipalityCode',
    );
  }
  if (!(statuses as readonly string[]).includes(state.status)) {
    return reject(
      'registry.moving-out',
      `the resident has an open move-out (転出); ${n.changeReason} is not possible until it is closed`,
      '/changeReason',
    );
  }
  return state as Extract<RecordState, { status: S }>;
}

const invalid = (pointer: string, detail: string): Rejected =>
  reject('registry.invalid-notification', detail, pointer);

function current(municipalityCode: string, record: IdentityRecordFields): CurrentRecordState {
  return { status: 'current', municipalityCode, record };
}

/**
 * Decides what a well-formed notification (one {@link validateNotificationFields} accepted)
 * does to the person's latest record `state` (`null`: no record). Pure and total: every input
 * gets an {@link Accepted} with the next version, or a {@link Rejected} with a stable code.
 *
 * The store loads `state` by `record.residentCode`, or by `previousResidentCode` for a
 * residentCodeChange.
 */
export function decideChange(
  state: RecordState | null,
  n: RegistryNotification,
  ctx: DecisionContext = {},
): Decision {
  const here = n.municipalityCode;
  const reason = n.changeReason;
  switch (reason) {
    // 出生: a new person. Births are never a second record.
    case 'birth': {
      if (state !== null) {
        return reject(
          'registry.record-exists',
          'an identity record already exists for this resident code',
          '/record/residentCode',
        );
      }
      return { ok: true, next: current(here, n.record), changedItems: [] };
    }

    // 職権記載 (施行令第12条): a new record; the reinstatement of a removed one (wrongful 消除,
    // 失踪宣告の取消し — 民法第32条); or, while a move-out is open, the notifier recording by
    // office a resident who did not file (施行令第12条第3項: a 転入 elsewhere, or at the
    // municipality that took the 転出届, the 転出の取消し).
    case 'officialEntry': {
      if (state === null) return { ok: true, next: current(here, n.record), changedItems: [] };
      const id = identityProblem(state, n);
      if (id) return id;
      if (state.status === 'current') {
        return reject(
          'registry.record-exists',
          'the resident is already recorded as living in a municipality',
          '/record/residentCode',
        );
      }
      const fixed = unchanged(state.record, n.record, BIRTH_AND_SEX, 'officialEntry');
      if (fixed) return fixed;
      const moved = state.municipalityCode !== here;
      const diff = diffItems(state.record, n.record);
      const accepted: Accepted = {
        ok: true,
        next: current(here, n.record),
        changedItems: moved ? withAddress(diff) : diff,
      };
      if (state.status === 'movingOut' && moved) accepted.closesMoveOutAt = state.municipalityCode;
      return accepted;
    }

    // 転入 (第22条).
    case 'moveIn': {
      // A person never recorded anywhere (第22条第1項 "いずれの市町村においても住民基本台帳に
      // 記録されたことがない者": a foreign resident's first address, 第30条の46, or a national
      // born abroad) gets a new resident code (第30条の3) with this 転入: a new record.
      if (state === null) return { ok: true, next: current(here, n.record), changedItems: [] };
      const id = identityProblem(state, n);
      if (id) return id;
      if (state.status === 'current') {
        return state.municipalityCode === here
          ? reject(
              'registry.not-moving-out',
              'the resident already lives in this municipality and has no open move-out',
              '/changeReason',
            )
          : reject(
              'registry.move-out-missing',
              'the resident is recorded by another municipality with no move-out (転出); that municipality must notify it first',
              '/changeReason',
            );
      }
      if (state.status === 'movingOut' && state.municipalityCode === here) {
        return reject(
          'registry.same-municipality',
          'a move-out cannot be closed by a move-in to the same municipality; cancel it with officialEntry',
          '/municipalityCode',
        );
      }
      if (state.status === 'removed' && state.removalCause === 'death') {
        return reject(
          'registry.record-removed',
          'the record was removed on death; only officialEntry can reinstate it',
          '/changeReason',
        );
      }
      const fixed = unchanged(state.record, n.record, BIRTH_AND_SEX, 'moveIn');
      if (fixed) return fixed;
      const accepted: Accepted = {
        ok: true,
        next: current(here, n.record),
        changedItems: withAddress(diffItems(state.record, n.record)),
      };
      if (state.status === 'movingOut') accepted.closesMoveOutAt = state.municipalityCode;
      return accepted;
    }

    // 転出 (第24条), and 国外転出 (第24条 with a destination abroad).
    case 'moveOut':
    case 'emigration': {
      const statuses = reason === 'moveOut' ? (['current'] as const) : MOVABLE;
      const held = heldByNotifier(state, n, statuses, ctx);
      if ('ok' in held) return held;
      if (n.plannedMoveOutDate === undefined) {
        return invalid('/plannedMoveOutDate', `plannedMoveOutDate is required for ${reason}`);
      }
      const fixed = unchanged(held.record, n.record, RECORD_FIELDS, reason);
      if (fixed) return fixed;
      const dest = n.destination;
      if (reason === 'emigration' || (dest !== undefined && 'abroad' in dest)) {
        if (dest !== undefined && !('abroad' in dest)) {
          return invalid('/destination', 'emigration goes abroad');
        }
        return {
          ok: true,
          next: {
            status: 'removed',
            municipalityCode: here,
            record: n.record,
            removalCause: 'emigration',
            plannedMoveOutDate: n.plannedMoveOutDate,
            destination: { abroad: true },
          },
          changedItems: [],
          removal: 'emigration',
        };
      }
      if (dest === undefined) return invalid('/destination', 'destination is required for moveOut');
      if (dest.municipalityCode === here) {
        return reject(
          'registry.same-municipality',
          'a move-out must go to another municipality; a move inside one is moveWithin',
          '/destination/municipalityCode',
        );
      }
      return {
        ok: true,
        next: {
          status: 'movingOut',
          municipalityCode: here,
          record: n.record,
          plannedMoveOutDate: n.plannedMoveOutDate,
          destination: { municipalityCode: dest.municipalityCode },
        },
        changedItems: [],
      };
    }

    // 転居 (第23条): a new address, nothing else.
    case 'moveWithin': {
      const held = heldByNotifier(state, n, ['current'] as const, ctx);
      if ('ok' in held) return held;
      const fixed = unchanged(
        held.record,
        n.record,
        ['name', 'nameKana', ...BIRTH_AND_SEX],
        reason,
      );
      if (fixed) return fixed;
      if (held.record.address === n.record.address) {
        return reject(
          'registry.no-change',
          'moveWithin must change the address',
          '/record/address',
        );
      }
      return { ok: true, next: current(here, n.record), changedItems: ['address'] };
    }

    // 氏名変更: the name and/or its reading, nothing else.
    case 'nameChange': {
      const held = heldByNotifier(state, n, ['current'] as const, ctx);
      if ('ok' in held) return held;
      const fixed = unchanged(held.record, n.record, [...BIRTH_AND_SEX, 'address'], reason);
      if (fixed) return fixed;
      if (held.record.name === n.record.name && held.record.nameKana === n.record.nameKana) {
        return reject(
          'registry.no-change',
          'nameChange must change the name or its reading',
          '/record/name',
        );
      }
      return {
        ok: true,
        next: current(here, n.record),
        changedItems: diffItems(held.record, n.record),
      };
    }

    // 死亡 and 職権消除: the record is removed as it stands.
    case 'death':
    case 'officialRemoval': {
      const held = heldByNotifier(state, n, MOVABLE, ctx);
      if ('ok' in held) return held;
      const fixed = unchanged(held.record, n.record, RECORD_FIELDS, reason);
      if (fixed) return fixed;
      return {
        ok: true,
        next: { status: 'removed', municipalityCode: here, record: n.record, removalCause: reason },
        changedItems: [],
        removal: reason,
      };
    }

    // 職権修正: any item except the two numbers; something must change. The status is kept.
    case 'officialCorrection': {
      const held = heldByNotifier(state, n, MOVABLE, ctx);
      if ('ok' in held) return held;
      if (RECORD_FIELDS.every((k) => held.record[k] === n.record[k])) {
        return reject(
          'registry.no-change',
          'officialCorrection must change at least one item',
          '/record',
        );
      }
      return {
        ok: true,
        next: { ...held, record: n.record },
        changedItems: diffItems(held.record, n.record),
      };
    }

    // 住民票コードの変更 (第30条の4): a new code for the same person, nothing else.
    case 'residentCodeChange': {
      if (n.previousResidentCode === undefined) {
        return invalid('/previousResidentCode', 'previousResidentCode is required');
      }
      const held = heldByNotifier(state, n, ['current'] as const, ctx);
      if ('ok' in held) return held;
      if (n.record.residentCode === held.record.residentCode) {
        return reject(
          'registry.no-change',
          'residentCodeChange must carry a new resident code',
          '/record/residentCode',
        );
      }
      const fixed = unchanged(held.record, n.record, RECORD_FIELDS, reason);
      if (fixed) return fixed;
      return { ok: true, next: current(here, n.record), changedItems: [] };
    }

    default: {
      const unknownReason: never = reason;
      return invalid('/changeReason', `unknown change reason (${typeof unknownReason})`);
    }
  }
}
