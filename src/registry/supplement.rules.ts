/**
 * 附票本人確認情報 at the national server (附票連携システム): the rules that decide whether a
 * supplement-record change notification (住民基本台帳法第30条の41 municipality → prefecture,
 * 第30条の42 prefecture → agency) is well formed and what it does to the 附票 the notifying
 * municipality keeps. Every accepted notification becomes a new version of the stored record
 * (機構保存附票本人確認情報, 業務方法書第4条第3号); nothing is overwritten.
 *
 * The 戸籍の附票 (第16条) is kept by the municipality of the 本籍 — which may differ from the
 * municipality the person lives in — and follows the person's address (第17条第3号, 第19条).
 * For a 国外転出者 (a person removed from every resident register by a 国外転出届, 第24条) it
 * continues: the identity record is removed, the 附票 records that the person lives abroad.
 *
 * Pure: no database, no clock, no I/O. Messages never carry a submitted value: they say what
 * is wrong and where (a JSON pointer), never what was sent.
 */
import type { FieldError } from '../platform/errors.ts';
import { isValidResidentCode } from '../numbering/check-digits.ts';
import {
  ADDRESS_MAX,
  BASIC_ITEMS,
  type BasicItem,
  EARLIEST_BIRTH_DATE,
  MISSING,
  NOT_A_DATE,
  SEXES,
  type Sex,
  addressProblem,
  isCalendarDate,
  isObject,
  nameKanaProblem,
  nameProblem,
  pointerToken,
  validateEnvelope,
} from './registry.rules.ts';

// ---------------------------------------------------------------------------------------------
// Vocabulary
// ---------------------------------------------------------------------------------------------

/**
 * 附票の異動事由 (supplement change reasons), a closed list. Every 附票 change is made by office
 * (職権, 住基法第18条) and notified under 第30条の41 as a 記載, 消除 or 記載の修正; the reasons below
 * say which, and which items of 第17条 it touches.
 *
 * - `entry` 記載: a new 附票 line for the person at this 本籍地 (第16条, 第18条) — a birth or
 *   entry into a 戸籍 kept here, a 転籍 into this municipality, a new 戸籍 on marriage …
 * - `addressChange` 住所の記載の修正: a move inside Japan reflected from the 住所地
 *   (第19条第1項: the 住所地 tells the 本籍地 after it changed the 住民票; 第17条第3号・第4号).
 * - `emigration` 国外転出: the person filed a 国外転出届 (第24条); the 附票 records that the
 *   person is a 国外転出者 (第17条第3号) instead of a domestic address.
 * - `overseasAddressChange` 国外の住所の変更: the country (or address) abroad changed. The
 *   statute records only "国外転出者である旨"; the country and address abroad are what the
 *   notification format carries beside it, corrected by office under 第18条.
 * - `returnToJapan` 国外からの転入 (帰国): a 国外転出者 filed a 転入届 (第22条); the 附票 records a
 *   domestic address again (第19条第1項).
 * - `nameChange` 氏名の変更: 氏 or 名 (or their reading) changed in the 戸籍 (戸籍法第107条,
 *   第107条の2, …) without leaving this 附票 (第17条第2号).
 * - `officialCorrection` 職権修正: 記載の修正 of an error in any item (第18条), including the
 *   resident code after a 住民票コードの変更 (第30条の4; 第17条第7号).
 * - `removal` 消除: the person left this 附票 — 転籍 elsewhere, entry into a 戸籍 kept
 *   elsewhere, 死亡 and 除籍 (第18条); the items are notified as they stood (第30条の41第1項).
 */
export const SUPPLEMENT_CHANGE_REASONS = [
  'entry',
  'addressChange',
  'emigration',
  'overseasAddressChange',
  'returnToJapan',
  'nameChange',
  'officialCorrection',
  'removal',
] as const;

export type SupplementChangeReason = (typeof SUPPLEMENT_CHANGE_REASONS)[number];

/** The Japanese term of each supplement change reason (for UIs, reports and documentation). */
export const SUPPLEMENT_CHANGE_REASON_TERMS: Readonly<Record<SupplementChangeReason, string>> = {
  entry: '記載',
  addressChange: '住所の記載の修正',
  emigration: '国外転出',
  overseasAddressChange: '国外の住所の変更',
  returnToJapan: '国外からの転入',
  nameChange: '氏名の変更',
  officialCorrection: '職権修正',
  removal: '消除',
};

export function isSupplementChangeReason(v: unknown): v is SupplementChangeReason {
  return typeof v === 'string' && (SUPPLEMENT_CHANGE_REASONS as readonly string[]).includes(v);
}

/**
 * ISO 3166-1 alpha-2: the 249 officially assigned codes, and XK (Kosovo), which ISO leaves
 * user-assigned but which Japan recognises as a state (2008) and which is in general use.
 */
export const COUNTRY_CODES: ReadonlySet<string> = new Set(
  (
    'AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ ' +
    'BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ ' +
    'CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ ' +
    'DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR ' +
    'GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ' +
    'ID IE IL IM IN IO IQ IR IS IT JE JM JO JP ' +
    'KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY ' +
    'MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ ' +
    'NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA ' +
    'RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ ' +
    'TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ ' +
    'VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW'
  ).split(' '),
);

/** An address abroad (国外転出者): the country, and optionally the address in it. */
export interface OverseasAddress {
  /** ISO 3166-1 alpha-2, never JP. */
  country: string;
  address?: string;
}

/** The 附票本人確認情報 a notification carries (住基法第30条の41第1項: 第17条第2号・第3号・第5〜7号). */
export interface SupplementRecordFields {
  /** 住民票コード (第17条第7号; for a 国外転出者 the code of the removed 住民票). */
  residentCode: string;
  /** 氏名 */
  name: string;
  /** 氏名の振り仮名 (full-width katakana). */
  nameKana: string;
  /** 出生の年月日, YYYY-MM-DD. */
  birthDate: string;
  /** 男女の別 */
  sex: Sex;
  /** 住所 in Japan; absent for a 国外転出者. */
  address?: string;
  /** 国外転出者: where abroad; absent for a person living in Japan. */
  overseasAddress?: OverseasAddress;
}

/** A supplement-record change notification from the municipality keeping the 附票. */
export interface SupplementNotification {
  /** The notifying municipality (the 本籍地), 6-digit 全国地方公共団体コード. */
  municipalityCode: string;
  /** The municipality's running number on its supplement stream (≥ 1). */
  sequence: number;
  changeReason: SupplementChangeReason;
  /** 異動年月日 */
  changeDate: string;
  record: SupplementRecordFields;
}

export const SUPPLEMENT_STATUSES = ['current', 'removed'] as const;
export type SupplementStatus = (typeof SUPPLEMENT_STATUSES)[number];

/** The latest version of the 附票 one municipality keeps for a person. */
export interface SupplementState {
  status: SupplementStatus;
  municipalityCode: string;
  record: SupplementRecordFields;
}

/** Whether the record is that of a 国外転出者. */
export const isAbroad = (r: SupplementRecordFields): boolean => r.overseasAddress !== undefined;

/** Length of an address abroad, in Unicode code points (as for a domestic 住所). */
export const OVERSEAS_ADDRESS_MAX = ADDRESS_MAX;

// ---------------------------------------------------------------------------------------------
// Field validation
// ---------------------------------------------------------------------------------------------

const TOP_LEVEL_MEMBERS = new Set([
  'municipalityCode',
  'sequence',
  'changeReason',
  'changeDate',
  'record',
]);
const RECORD_MEMBERS = new Set([
  'residentCode',
  'name',
  'nameKana',
  'birthDate',
  'sex',
  'address',
  'overseasAddress',
]);
const OVERSEAS_MEMBERS = new Set(['country', 'address']);

/** Reasons after which the person lives abroad, and after which the person lives in Japan. */
const ABROAD_REASONS: readonly SupplementChangeReason[] = ['emigration', 'overseasAddressChange'];
const DOMESTIC_REASONS: readonly SupplementChangeReason[] = ['addressChange', 'returnToJapan'];

const NOT_A_STRING = 'must be a string';

const SURROGATE = /^\p{Cs}$/u;
const CONTROL = /^[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]$/u;
const EMOJI = /^[\p{Extended_Pictographic}\p{Regional_Indicator}\u{FE0F}\u{20E3}]$/u;
const PRIVATE_USE = /^\p{Co}$/u;
const SPACE_SEPARATOR = /^\p{Zs}$/u;
const LETTER_OR_DIGIT = /^[\p{L}\p{N}]$/u;
const isPlainSpace = (ch: string): boolean => ch === ' ' || ch === '\u3000';

/**
 * Whether `s` is an acceptable address abroad; `null` when it is. Free text in any script
 * (addresses abroad are written in the local or Latin script), but: 1–200 code points, no
 * control, invisible, private-use or emoji characters, only ASCII or ideographic spaces and
 * none at either end, and at least one letter or digit.
 */
export function overseasAddressProblem(s: string): string | null {
  const chars = [...s];
  if (chars.length === 0) return 'must not be empty';
  if (chars.length > OVERSEAS_ADDRESS_MAX) {
    return `must be at most ${OVERSEAS_ADDRESS_MAX} characters (counted in Unicode code points)`;
  }
  let hasAnchor = false;
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    const p = i + 1;
    if (SURROGATE.test(ch)) return `character ${p} is an unpaired UTF-16 surrogate`;
    if (CONTROL.test(ch)) return `character ${p} is a control or invisible formatting character`;
    if (EMOJI.test(ch)) return `character ${p} is an emoji or pictograph`;
    if (PRIVATE_USE.test(ch)) return `character ${p} is a private-use character`;
    if (SPACE_SEPARATOR.test(ch) && !isPlainSpace(ch)) {
      return `character ${p} is an unusual space; use an ASCII or ideographic space`;
    }
    if (isPlainSpace(ch) && (i === 0 || i === chars.length - 1)) {
      return 'must not begin or end with a space';
    }
    if (LETTER_OR_DIGIT.test(ch)) hasAnchor = true;
  }
  return hasAnchor ? null : 'must contain at least one letter or digit';
}

/** Whether `code` names a country abroad; `null` when it does. */
export function countryProblem(code: string): string | null {
  if (!/^[A-Z]{2}$/.test(code)) return 'must be an ISO 3166-1 alpha-2 code (two capital letters)';
  if (!COUNTRY_CODES.has(code)) return 'is not an assigned ISO 3166-1 alpha-2 country code';
  if (code === 'JP') return 'must not be JP: an address abroad is outside Japan';
  return null;
}

/**
 * Checks a supplement notification body field by field. Returns every problem found, each
 * located by a JSON pointer; `[]` means the body is a well-formed {@link SupplementNotification}.
 * Messages never repeat the submitted values.
 *
 * `today` is the current calendar date in Japan; no change may be dated after it.
 * @throws RangeError when `today` is not a calendar date (a programming error, not bad input).
 */
export function validateSupplementFields(n: unknown, today: string): FieldError[] {
  if (!isCalendarDate(today)) throw new RangeError('today must be a calendar date YYYY-MM-DD');
  if (!isObject(n)) return [{ pointer: '', message: 'must be a JSON object' }];
  const errors: FieldError[] = [];
  const add = (pointer: string, message: string): void => {
    errors.push({ pointer, message });
  };

  const { reason, changeDate } = validateEnvelope(n, today, add, {
    members: TOP_LEVEL_MEMBERS,
    reasons: SUPPLEMENT_CHANGE_REASONS,
    isReason: isSupplementChangeReason,
  });

  const record = n['record'];
  if (record === undefined) {
    add('/record', MISSING);
    return errors;
  }
  if (!isObject(record)) {
    add('/record', 'must be a JSON object');
    return errors;
  }
  for (const key of Object.keys(record)) {
    if (!RECORD_MEMBERS.has(key)) add(`/record/${pointerToken(key)}`, 'is not a record member');
  }
  const rc = record['residentCode'];
  if (rc === undefined) add('/record/residentCode', MISSING);
  else if (typeof rc !== 'string' || !isValidResidentCode(rc)) {
    add('/record/residentCode', 'must be 11 digits ending in a valid check digit');
  }

  const textFields: [string, (s: string) => string | null][] = [
    ['name', nameProblem],
    ['nameKana', nameKanaProblem],
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
    add('/record/birthDate', `must not be before ${EARLIEST_BIRTH_DATE} (the first year of 明治)`);
  } else if (changeDate !== null && bd > changeDate) {
    add('/record/birthDate', 'must not be after changeDate');
  } else if (bd > today) add('/record/birthDate', 'must not be after today');

  const sex = record['sex'];
  if (sex === undefined) add('/record/sex', MISSING);
  else if (typeof sex !== 'string' || !(SEXES as readonly string[]).includes(sex)) {
    add('/record/sex', `must be one of: ${SEXES.join(', ')}`);
  }

  // 住所, or (国外転出者) the address abroad: exactly one, and the one the reason implies.
  const address = record['address'];
  const overseas = record['overseasAddress'];
  if (address !== undefined) {
    if (typeof address !== 'string') add('/record/address', NOT_A_STRING);
    else {
      const p = addressProblem(address);
      if (p) add('/record/address', p);
    }
  }
  if (overseas !== undefined) {
    if (!isObject(overseas)) add('/record/overseasAddress', 'must be a JSON object');
    else {
      for (const key of Object.keys(overseas)) {
        if (!OVERSEAS_MEMBERS.has(key)) {
          add(`/record/overseasAddress/${pointerToken(key)}`, 'is not a member of overseasAddress');
        }
      }
      const country = overseas['country'];
      if (country === undefined) add('/record/overseasAddress/country', MISSING);
      else if (typeof country !== 'string') add('/record/overseasAddress/country', NOT_A_STRING);
      else {
        const p = countryProblem(country);
        if (p) add('/record/overseasAddress/country', p);
      }
      const line = overseas['address'];
      if (line !== undefined) {
        if (typeof line !== 'string') add('/record/overseasAddress/address', NOT_A_STRING);
        else {
          const p = overseasAddressProblem(line);
          if (p) add('/record/overseasAddress/address', p);
        }
      }
    }
  }
  if (reason !== null && ABROAD_REASONS.includes(reason)) {
    if (overseas === undefined) add('/record/overseasAddress', `${MISSING} for ${reason}`);
    if (address !== undefined) {
      add('/record/address', `is not allowed for ${reason}: a 国外転出者 has no address in Japan`);
    }
  } else if (reason !== null && DOMESTIC_REASONS.includes(reason)) {
    if (address === undefined) add('/record/address', `${MISSING} for ${reason}`);
    if (overseas !== undefined) {
      add('/record/overseasAddress', `is not allowed for ${reason}: the person lives in Japan`);
    }
  } else if (address === undefined && overseas === undefined) {
    add('/record/address', 'is required unless overseasAddress is given (国外転出者)');
  } else if (address !== undefined && overseas !== undefined) {
    add('/record/overseasAddress', 'must not be given together with address');
  }

  return errors;
}

/** {@link validateSupplementFields} as a parser: the typed notification, or the errors. */
export function parseSupplementNotification(
  body: unknown,
  today: string,
): { ok: true; notification: SupplementNotification } | { ok: false; errors: FieldError[] } {
  const errors = validateSupplementFields(body, today);
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, notification: body as SupplementNotification };
}

// ---------------------------------------------------------------------------------------------
// Decisions
// ---------------------------------------------------------------------------------------------

/** Stable rejection codes of {@link decideSupplementChange}; clients branch on these. */
export const SUPPLEMENT_DECISION_CODES = [
  'registry.supplement-exists',
  'registry.supplement-not-found',
  'registry.supplement-removed',
  'registry.already-abroad',
  'registry.not-abroad',
  'registry.immutable-field',
  'registry.no-change',
] as const;
export type SupplementDecisionCode = (typeof SUPPLEMENT_DECISION_CODES)[number];

export interface SupplementAccepted {
  ok: true;
  /** The new latest version of this municipality's 附票 for the person. */
  next: SupplementState;
  /** Basic-4 items (name, birthDate, sex, address — domestic or abroad) whose value changed. */
  changedItems: BasicItem[];
  /** The resident code the 附票 carried before, when this change replaced it. */
  previousResidentCode?: string;
}

export interface SupplementRejected {
  ok: false;
  code: SupplementDecisionCode;
  /** Client-safe; never names a value. */
  detail: string;
  pointer: string;
}

export type SupplementDecision = SupplementAccepted | SupplementRejected;

const reject = (
  code: SupplementDecisionCode,
  detail: string,
  pointer: string,
): SupplementRejected => ({ ok: false, code, detail, pointer });

const PERSON_FIELDS = ['name', 'nameKana', 'birthDate', 'sex'] as const;
type PersonField = (typeof PERSON_FIELDS)[number];

/** Same place: both in Japan at the same address, or both abroad at the same country and line. */
function sameLocation(a: SupplementRecordFields, b: SupplementRecordFields): boolean {
  if (a.overseasAddress && b.overseasAddress) {
    return (
      a.overseasAddress.country === b.overseasAddress.country &&
      (a.overseasAddress.address ?? null) === (b.overseasAddress.address ?? null)
    );
  }
  if (a.overseasAddress || b.overseasAddress) return false;
  return a.address === b.address;
}

const locationPointer = (r: SupplementRecordFields): string =>
  isAbroad(r) ? '/record/overseasAddress' : '/record/address';

/** Basic-4 items that differ; `address` covers the address abroad and going abroad. */
function diffItems(prev: SupplementRecordFields, next: SupplementRecordFields): BasicItem[] {
  return BASIC_ITEMS.filter((k) =>
    k === 'address' ? !sameLocation(prev, next) : prev[k] !== next[k],
  );
}

/** Rejects the first of `fields` that differs, or the location when `location` is fixed too. */
function unchanged(
  prev: SupplementRecordFields,
  next: SupplementRecordFields,
  fields: readonly PersonField[],
  location: boolean,
  why: SupplementChangeReason,
): SupplementRejected | null {
  const f = fields.find((k) => prev[k] !== next[k]);
  if (f !== undefined) {
    return reject('registry.immutable-field', `${f} cannot change by ${why}`, `/record/${f}`);
  }
  if (location && !sameLocation(prev, next)) {
    return reject(
      'registry.immutable-field',
      `the address cannot change by ${why}`,
      locationPointer(prev),
    );
  }
  return null;
}

const current = (municipalityCode: string, record: SupplementRecordFields): SupplementState => ({
  status: 'current',
  municipalityCode,
  record,
});

/**
 * Decides what a well-formed notification (one {@link validateSupplementFields} accepted) does
 * to `held`, the latest version of the 附票 the notifying municipality keeps for the person
 * (`null`: it never kept one). Pure and total.
 *
 * The caller has already checked that the resident code is the person's current one; a 附票
 * still carrying an older code (before a 住民票コードの変更) takes the new one by
 * officialCorrection only.
 */
export function decideSupplementChange(
  held: SupplementState | null,
  n: SupplementNotification,
): SupplementDecision {
  const here = n.municipalityCode;
  const reason = n.changeReason;
  const next = n.record;

  if (reason === 'entry') {
    if (held?.status === 'current') {
      return reject(
        'registry.supplement-exists',
        'this municipality already keeps a 附票 for the resident; notify a change instead',
        '/changeReason',
      );
    }
    return { ok: true, next: current(here, next), changedItems: [] };
  }

  if (held === null) {
    return reject(
      'registry.supplement-not-found',
      `this municipality keeps no 附票 for the resident; ${reason} needs one (notify entry first)`,
      '/record/residentCode',
    );
  }
  if (held.status === 'removed') {
    return reject(
      'registry.supplement-removed',
      `the 附票 has been removed (消除); ${reason} applies only to a kept one`,
      '/changeReason',
    );
  }
  const prev = held.record;
  const codeChanged = prev.residentCode !== next.residentCode;
  if (codeChanged && reason !== 'officialCorrection') {
    return reject(
      'registry.immutable-field',
      `residentCode cannot change by ${reason}; after a 住民票コードの変更 notify officialCorrection first`,
      '/record/residentCode',
    );
  }
  const abroad = isAbroad(prev);

  switch (reason) {
    case 'addressChange':
    case 'emigration': {
      if (abroad) {
        return reject(
          'registry.already-abroad',
          'the resident is recorded as living abroad (国外転出者); use returnToJapan or overseasAddressChange',
          '/changeReason',
        );
      }
      const fixed = unchanged(prev, next, PERSON_FIELDS, false, reason);
      if (fixed) return fixed;
      if (reason === 'addressChange' && prev.address === next.address) {
        return reject(
          'registry.no-change',
          'addressChange must change the address',
          '/record/address',
        );
      }
      return { ok: true, next: current(here, next), changedItems: ['address'] };
    }

    case 'overseasAddressChange':
    case 'returnToJapan': {
      if (!abroad) {
        return reject(
          'registry.not-abroad',
          `the resident is not recorded as living abroad; ${reason} applies to a 国外転出者 only`,
          '/changeReason',
        );
      }
      const fixed = unchanged(prev, next, PERSON_FIELDS, false, reason);
      if (fixed) return fixed;
      if (sameLocation(prev, next)) {
        return reject(
          'registry.no-change',
          'overseasAddressChange must change the country or the address abroad',
          '/record/overseasAddress',
        );
      }
      return { ok: true, next: current(here, next), changedItems: ['address'] };
    }

    case 'nameChange': {
      const fixed = unchanged(prev, next, ['birthDate', 'sex'], true, reason);
      if (fixed) return fixed;
      if (prev.name === next.name && prev.nameKana === next.nameKana) {
        return reject(
          'registry.no-change',
          'nameChange must change the name or its reading',
          '/record/name',
        );
      }
      return { ok: true, next: current(here, next), changedItems: diffItems(prev, next) };
    }

    case 'officialCorrection': {
      const same =
        !codeChanged && PERSON_FIELDS.every((k) => prev[k] === next[k]) && sameLocation(prev, next);
      if (same) {
        return reject(
          'registry.no-change',
          'officialCorrection must change at least one item',
          '/record',
        );
      }
      const accepted: SupplementAccepted = {
        ok: true,
        next: current(here, next),
        changedItems: diffItems(prev, next),
      };
      if (codeChanged) accepted.previousResidentCode = prev.residentCode;
      return accepted;
    }

    case 'removal': {
      const fixed = unchanged(prev, next, PERSON_FIELDS, true, reason);
      if (fixed) return fixed;
      return {
        ok: true,
        next: { status: 'removed', municipalityCode: here, record: next },
        changedItems: [],
      };
    }

    default: {
      const unknownReason: never = reason;
      throw new RangeError(`unknown supplement change reason (${typeof unknownReason})`);
    }
  }
}
