import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { residentCodeCheckDigit } from '../numbering/check-digits.ts';
import { withCheckDigit } from '../platform/local-government-code.ts';
import {
  COUNTRY_CODES,
  SUPPLEMENT_CHANGE_REASONS,
  SUPPLEMENT_CHANGE_REASON_TERMS,
  type SupplementChangeReason,
  type SupplementDecision,
  type SupplementNotification,
  type SupplementRecordFields,
  type SupplementState,
  countryProblem,
  decideSupplementChange,
  overseasAddressProblem,
  parseSupplementNotification,
  validateSupplementFields,
} from './supplement.rules.ts';

const rc = (body10: string): string => body10 + residentCodeCheckDigit(body10);
const TODAY = '2026-04-01';
const HONSEKI = withCheckDigit('13101');
const OTHER = withCheckDigit('14104');
const RC = rc('1234567890');
const RC_NEW = rc('9876543210');

const DOMESTIC: SupplementRecordFields = {
  residentCode: RC,
  name: '山田　太郎',
  nameKana: 'ヤマダ　タロウ',
  birthDate: '1990-05-15',
  sex: 'male',
  address: '東京都千代田区千代田1番1号',
};
const ABROAD: SupplementRecordFields = {
  residentCode: RC,
  name: '山田　太郎',
  nameKana: 'ヤマダ　タロウ',
  birthDate: '1990-05-15',
  sex: 'male',
  overseasAddress: { country: 'US', address: '350 Fifth Avenue, New York, NY 10118' },
};

const note = (
  changeReason: SupplementChangeReason,
  record: SupplementRecordFields,
  extra: Partial<SupplementNotification> = {},
): SupplementNotification => ({
  municipalityCode: HONSEKI,
  sequence: 1,
  changeReason,
  changeDate: '2026-03-01',
  record,
  ...extra,
});

const kept = (record: SupplementRecordFields, status: SupplementState['status'] = 'current') => ({
  status,
  municipalityCode: HONSEKI,
  record,
});

const pointers = (body: unknown): string[] =>
  validateSupplementFields(body, TODAY).map((e) => e.pointer);

const rejection = (d: SupplementDecision) => (d.ok ? 'accepted' : `${d.code} ${d.pointer}`);

describe('vocabulary', () => {
  it('has a Japanese term for every change reason', () => {
    expect(Object.keys(SUPPLEMENT_CHANGE_REASON_TERMS).sort()).toEqual(
      [...SUPPLEMENT_CHANGE_REASONS].sort(),
    );
    expect(SUPPLEMENT_CHANGE_REASON_TERMS.emigration).toBe('国外転出');
    expect(SUPPLEMENT_CHANGE_REASON_TERMS.removal).toBe('消除');
  });

  it('knows the 249 assigned ISO 3166-1 alpha-2 codes plus XK, and refuses JP as abroad', () => {
    expect(COUNTRY_CODES.size).toBe(250);
    for (const c of COUNTRY_CODES) expect(c).toMatch(/^[A-Z]{2}$/);
    expect(countryProblem('US')).toBeNull();
    expect(countryProblem('XK')).toBeNull();
    expect(countryProblem('JP')).toMatch(/must not be JP/);
    expect(countryProblem('XX')).toMatch(/not an assigned/);
    expect(countryProblem('us')).toMatch(/two capital letters/);
    expect(countryProblem('USA')).toMatch(/two capital letters/);
  });
});

describe('validateSupplementFields', () => {
  it('accepts a domestic entry and an emigration', () => {
    expect(pointers(note('entry', DOMESTIC))).toEqual([]);
    expect(pointers(note('emigration', ABROAD))).toEqual([]);
    expect(pointers(note('entry', ABROAD))).toEqual([]);
    const parsed = parseSupplementNotification(note('removal', DOMESTIC), TODAY);
    expect(parsed.ok).toBe(true);
  });

  it('refuses a body that is not an object, and unknown members at every level', () => {
    expect(pointers([])).toEqual(['']);
    expect(
      pointers({
        ...note('entry', { ...ABROAD, overseasAddress: { country: 'US', zip: '10118' } } as never),
        extra: 1,
        record: { ...DOMESTIC, myNumber: '123' },
      }),
    ).toEqual(['/extra', '/record/myNumber']);
    expect(
      pointers(
        note('emigration', { ...ABROAD, overseasAddress: { country: 'US', zip: 1 } } as never),
      ),
    ).toEqual(['/record/overseasAddress/zip']);
  });

  it('locates every field problem precisely', () => {
    const body = {
      municipalityCode: withCheckDigit('13000'),
      sequence: 0,
      changeReason: 'birth',
      changeDate: '2026-02-30',
      record: {
        residentCode: RC.slice(0, 10) + String((Number(RC.slice(10)) + 1) % 10),
        name: '山田1',
        nameKana: 'やまだ',
        birthDate: '1867-12-31',
        sex: 'x',
        address: ' 東京',
      },
    };
    expect(pointers(body)).toEqual([
      '/municipalityCode',
      '/sequence',
      '/changeReason',
      '/changeDate',
      '/record/residentCode',
      '/record/name',
      '/record/nameKana',
      '/record/birthDate',
      '/record/sex',
      '/record/address',
    ]);
  });

  it('wants an address abroad exactly where the reason implies one', () => {
    expect(pointers(note('emigration', DOMESTIC))).toEqual([
      '/record/overseasAddress',
      '/record/address',
    ]);
    expect(pointers(note('overseasAddressChange', DOMESTIC))).toEqual([
      '/record/overseasAddress',
      '/record/address',
    ]);
    expect(pointers(note('returnToJapan', ABROAD))).toEqual([
      '/record/address',
      '/record/overseasAddress',
    ]);
    expect(pointers(note('addressChange', ABROAD))).toEqual([
      '/record/address',
      '/record/overseasAddress',
    ]);
    const bare: SupplementRecordFields = { ...DOMESTIC };
    delete bare.address;
    expect(pointers(note('entry', bare))).toEqual(['/record/address']);
    expect(pointers(note('entry', { ...DOMESTIC, overseasAddress: { country: 'US' } }))).toEqual([
      '/record/overseasAddress',
    ]);
  });

  it('checks the country and the address abroad', () => {
    const abroad = (o: unknown) => note('emigration', { ...ABROAD, overseasAddress: o } as never);
    expect(pointers(abroad({ country: 'JP' }))).toEqual(['/record/overseasAddress/country']);
    expect(pointers(abroad({}))).toEqual(['/record/overseasAddress/country']);
    expect(pointers(abroad({ country: 'GB', address: '' }))).toEqual([
      '/record/overseasAddress/address',
    ]);
    expect(pointers(abroad({ country: 'GB', address: 7 }))).toEqual([
      '/record/overseasAddress/address',
    ]);
    expect(pointers(abroad('US'))).toEqual(['/record/overseasAddress']);
    expect(
      pointers(abroad({ country: 'DE', address: 'Unter den Linden 1, 10117 Berlin' })),
    ).toEqual([]);
  });

  it('refuses dates after today and a birth after the change', () => {
    expect(pointers(note('entry', DOMESTIC, { changeDate: '2026-04-02' }))).toEqual([
      '/changeDate',
    ]);
    expect(pointers(note('entry', { ...DOMESTIC, birthDate: '2026-03-02' }))).toEqual([
      '/record/birthDate',
    ]);
  });

  it('throws on a malformed today (a programming error)', () => {
    expect(() => validateSupplementFields({}, '2026-13-01')).toThrow(RangeError);
  });
});

describe('overseasAddressProblem', () => {
  it('accepts addresses in any script and refuses control, emoji, odd spaces', () => {
    expect(overseasAddressProblem('10 Downing Street, London SW1A 2AA')).toBeNull();
    expect(overseasAddressProblem('北京市东城区')).toBeNull();
    expect(overseasAddressProblem('Calle 1 #2-3, Bogotá')).toBeNull();
    expect(overseasAddressProblem('a\u0000b')).toMatch(/control/);
    expect(overseasAddressProblem('home 🏠')).toMatch(/emoji/);
    expect(overseasAddressProblem('a\u00a0b')).toMatch(/unusual space/);
    expect(overseasAddressProblem(' a')).toMatch(/begin or end/);
    expect(overseasAddressProblem('-,-')).toMatch(/letter or digit/);
    expect(overseasAddressProblem('x'.repeat(201))).toMatch(/at most 200/);
    expect(overseasAddressProblem('\ue000')).toMatch(/private-use/);
  });

  it('never repeats the text it refuses', () => {
    fc.assert(
      fc.property(
        fc.string({
          unit: fc.constantFrom('あ', '山', 'ß', 'Ж', '7', ' ', '\u0001', '🏠'),
          minLength: 4,
        }),
        (s) => {
          const m = overseasAddressProblem(`${s}\u0002`);
          expect(m).not.toBeNull();
          expect(m).not.toContain(s);
        },
      ),
    );
  });
});

describe('decideSupplementChange', () => {
  it('records an entry where none is kept, or after a removal', () => {
    const d = decideSupplementChange(null, note('entry', DOMESTIC));
    expect(d).toEqual({ ok: true, next: kept(DOMESTIC), changedItems: [] });
    expect(decideSupplementChange(kept(DOMESTIC, 'removed'), note('entry', ABROAD)).ok).toBe(true);
    expect(rejection(decideSupplementChange(kept(DOMESTIC), note('entry', DOMESTIC)))).toBe(
      'registry.supplement-exists /changeReason',
    );
  });

  it('needs a kept, unremoved 附票 for every other reason', () => {
    for (const reason of SUPPLEMENT_CHANGE_REASONS.filter((r) => r !== 'entry')) {
      const record =
        reason === 'emigration' || reason === 'overseasAddressChange' ? ABROAD : DOMESTIC;
      expect(rejection(decideSupplementChange(null, note(reason, record))), reason).toBe(
        'registry.supplement-not-found /record/residentCode',
      );
      expect(
        rejection(decideSupplementChange(kept(DOMESTIC, 'removed'), note(reason, record))),
        reason,
      ).toBe('registry.supplement-removed /changeReason');
    }
  });

  it('follows a move in Japan, emigration, a move abroad and the return', () => {
    const moved = { ...DOMESTIC, address: '東京都千代田区九段南1丁目2番1号' };
    expect(decideSupplementChange(kept(DOMESTIC), note('addressChange', moved))).toMatchObject({
      ok: true,
      next: { status: 'current', record: moved },
      changedItems: ['address'],
    });
    expect(decideSupplementChange(kept(DOMESTIC), note('emigration', ABROAD))).toMatchObject({
      ok: true,
      changedItems: ['address'],
    });
    const london = { ...ABROAD, overseasAddress: { country: 'GB' } };
    expect(
      decideSupplementChange(kept(ABROAD), note('overseasAddressChange', london)),
    ).toMatchObject({ ok: true, changedItems: ['address'] });
    expect(decideSupplementChange(kept(ABROAD), note('returnToJapan', moved))).toMatchObject({
      ok: true,
      next: { record: moved },
      changedItems: ['address'],
    });
  });

  it('refuses moves that do not fit where the person is recorded', () => {
    expect(rejection(decideSupplementChange(kept(ABROAD), note('emigration', ABROAD)))).toBe(
      'registry.already-abroad /changeReason',
    );
    expect(rejection(decideSupplementChange(kept(ABROAD), note('addressChange', DOMESTIC)))).toBe(
      'registry.already-abroad /changeReason',
    );
    expect(rejection(decideSupplementChange(kept(DOMESTIC), note('returnToJapan', DOMESTIC)))).toBe(
      'registry.not-abroad /changeReason',
    );
    expect(
      rejection(decideSupplementChange(kept(DOMESTIC), note('overseasAddressChange', ABROAD))),
    ).toBe('registry.not-abroad /changeReason');
    expect(rejection(decideSupplementChange(kept(DOMESTIC), note('addressChange', DOMESTIC)))).toBe(
      'registry.no-change /record/address',
    );
    expect(
      rejection(decideSupplementChange(kept(ABROAD), note('overseasAddressChange', ABROAD))),
    ).toBe('registry.no-change /record/overseasAddress');
  });

  it('keeps the person’s data fixed on moves', () => {
    const renamed = { ...ABROAD, name: '佐藤　太郎' };
    expect(rejection(decideSupplementChange(kept(DOMESTIC), note('emigration', renamed)))).toBe(
      'registry.immutable-field /record/name',
    );
    const older = { ...DOMESTIC, birthDate: '1990-05-14', address: '東京都中央区1番' };
    expect(rejection(decideSupplementChange(kept(DOMESTIC), note('addressChange', older)))).toBe(
      'registry.immutable-field /record/birthDate',
    );
  });

  it('changes a name alone, abroad too', () => {
    const renamed = { ...ABROAD, name: '佐藤　太郎', nameKana: 'サトウ　タロウ' };
    expect(decideSupplementChange(kept(ABROAD), note('nameChange', renamed))).toMatchObject({
      ok: true,
      changedItems: ['name'],
    });
    const kanaOnly = { ...DOMESTIC, nameKana: 'ヤマダ　タロオ' };
    expect(decideSupplementChange(kept(DOMESTIC), note('nameChange', kanaOnly))).toMatchObject({
      ok: true,
      changedItems: [],
    });
    expect(rejection(decideSupplementChange(kept(DOMESTIC), note('nameChange', DOMESTIC)))).toBe(
      'registry.no-change /record/name',
    );
    const movedToo = { ...renamed, overseasAddress: { country: 'GB' } };
    expect(rejection(decideSupplementChange(kept(ABROAD), note('nameChange', movedToo)))).toBe(
      'registry.immutable-field /record/overseasAddress',
    );
    const sex = { ...DOMESTIC, name: '山田　花子', sex: 'female' as const };
    expect(rejection(decideSupplementChange(kept(DOMESTIC), note('nameChange', sex)))).toBe(
      'registry.immutable-field /record/sex',
    );
  });

  it('corrects any item by office, including the resident code after a code change', () => {
    const fixed = { ...DOMESTIC, birthDate: '1990-05-16', sex: 'female' as const };
    expect(decideSupplementChange(kept(DOMESTIC), note('officialCorrection', fixed))).toMatchObject(
      { ok: true, changedItems: ['birthDate', 'sex'] },
    );
    const recoded = { ...DOMESTIC, residentCode: RC_NEW };
    expect(decideSupplementChange(kept(DOMESTIC), note('officialCorrection', recoded))).toEqual({
      ok: true,
      next: kept(recoded),
      changedItems: [],
      previousResidentCode: RC,
    });
    expect(
      rejection(decideSupplementChange(kept(DOMESTIC), note('officialCorrection', DOMESTIC))),
    ).toBe('registry.no-change /record');
    expect(rejection(decideSupplementChange(kept(DOMESTIC), note('nameChange', recoded)))).toBe(
      'registry.immutable-field /record/residentCode',
    );
  });

  it('removes the 附票 as it stands', () => {
    expect(decideSupplementChange(kept(ABROAD), note('removal', ABROAD))).toEqual({
      ok: true,
      next: kept(ABROAD, 'removed'),
      changedItems: [],
    });
    expect(
      rejection(
        decideSupplementChange(
          kept(DOMESTIC),
          note('removal', { ...DOMESTIC, name: '山田　次郎' }),
        ),
      ),
    ).toBe('registry.immutable-field /record/name');
    expect(
      rejection(
        decideSupplementChange(
          kept(DOMESTIC),
          note('removal', { ...DOMESTIC, address: '東京都港区1番' }),
        ),
      ),
    ).toBe('registry.immutable-field /record/address');
  });

  it('decides for the notifier only: the next state names the notifying municipality', () => {
    const d = decideSupplementChange(null, note('entry', DOMESTIC, { municipalityCode: OTHER }));
    expect(d.ok && d.next.municipalityCode).toBe(OTHER);
  });

  it('never names a submitted or stored value in a rejection', () => {
    const records = [DOMESTIC, ABROAD];
    for (const reason of SUPPLEMENT_CHANGE_REASONS) {
      for (const held of [null, kept(DOMESTIC), kept(ABROAD), kept(DOMESTIC, 'removed')]) {
        for (const record of records) {
          const d = decideSupplementChange(held, note(reason, { ...record, name: '鈴木　一郎' }));
          if (d.ok) continue;
          for (const secret of ['山田', '鈴木', '東京都', 'Fifth Avenue', '1990-05-15', RC]) {
            expect(d.detail).not.toContain(secret);
          }
        }
      }
    }
  });
});
