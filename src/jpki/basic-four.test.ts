import { describe, expect, it } from 'vitest';
import {
  JPKI_OTHER_NAME_OIDS,
  certificateBirthDate,
  eraDigitOf,
  sexCode,
  signingCertificateOtherNames,
} from './basic-four.ts';

const OID = JPKI_OTHER_NAME_OIDS;

describe('signingCertificateOtherNames', () => {
  it('reproduces the dummy signing certificate (docs/JPKI-PROFILE.md)', () => {
    expect(
      signingCertificateOtherNames({
        name: 'なかもと　さとし',
        birthDate: '2008-10-31',
        sex: 'male',
        address: '東京都港区芝公園４丁目２番地８',
      }),
    ).toEqual([
      { oid: '1.2.392.200149.8.5.5.1', value: 'なかもと　さとし' },
      { oid: '1.2.392.200149.8.5.5.4', value: '420081031' },
      { oid: '1.2.392.200149.8.5.5.3', value: '1' },
      { oid: '1.2.392.200149.8.5.5.5', value: '東京都港区芝公園４丁目２番地８' },
      // The dummy certificate's maps do not match its own values (4 digits for an 8-character
      // name, 41 for a 15-character address: filler); ours follow the profile, one digit per
      // character.
      { oid: '1.2.392.200149.8.5.5.2', value: '00000000' },
      { oid: '1.2.392.200149.8.5.5.6', value: '0'.repeat(15) },
    ]);
  });

  it('writes an ASCII separator space as U+3000 and widens ASCII letters', () => {
    const [name, , sex, , nameMap] = signingCertificateOtherNames({
      name: 'Smith John',
      birthDate: '1990-01-01',
      sex: 'female',
      address: '北海道札幌市',
    });
    expect(name).toEqual({ oid: OID.name, value: 'Ｓｍｉｔｈ　Ｊｏｈｎ' });
    expect(sex).toEqual({ oid: OID.sex, value: '2' });
    expect(nameMap).toEqual({ oid: OID.nameSubstitutionMap, value: '0000000000' });
  });

  it('writes the ASCII space between surname and given name as U+3000', () => {
    const [name, , , , nameMap] = signingCertificateOtherNames({
      name: '山田 太郎',
      birthDate: '1990-01-01',
      sex: 'male',
      address: '東京都',
    });
    expect(name?.value).toBe('山田\u3000太郎');
    expect(nameMap?.value).toBe('00000');
  });

  it('keeps ・ and ＝ separators', () => {
    const [name] = signingCertificateOtherNames({
      name: 'スミス・ジョン',
      birthDate: '1990-01-01',
      sex: 'male',
      address: '東京都',
    });
    expect(name?.value).toBe('スミス・ジョン');
  });

  it('substitutes and flags 𠮷 in the name', () => {
    const [name, , , , nameMap] = signingCertificateOtherNames({
      name: '\u{20BB7}田　太郎',
      birthDate: '1990-01-01',
      sex: 'male',
      address: '東京都',
    });
    expect(name?.value).toBe('〓田　太郎');
    expect(nameMap?.value).toBe('10000');
  });

  it('gives the address map one digit per address character', () => {
    const address = '東京都千代田区1-2-3 髙島ビル4F';
    const [, , , addr, , addrMap] = signingCertificateOtherNames({
      name: '山田　花子',
      birthDate: '1990-01-01',
      sex: 'female',
      address,
    });
    expect(addr?.value).toBe('東京都千代田区１－２－３　〓島ビル４Ｆ');
    expect([...addr!.value].length).toBe([...address].length);
    expect(addrMap?.value.length).toBe([...address].length);
    expect(addrMap?.value).toBe('0000000000000100000');
  });

  it('accepts an address of 200 characters and refuses 201', () => {
    const record = { name: '山田　花子', birthDate: '1990-01-01', sex: 'female' } as const;
    const ok = signingCertificateOtherNames({ ...record, address: '\u{20BB7}'.repeat(200) });
    expect(ok[5]?.value).toBe('1'.repeat(200));
    expect(() => signingCertificateOtherNames({ ...record, address: '亜'.repeat(201) })).toThrow(
      RangeError,
    );
  });

  it('refuses an empty name or address and a malformed birth date', () => {
    const record = {
      name: '山田　花子',
      birthDate: '1990-01-01',
      sex: 'female',
      address: '東京都',
    } as const;
    expect(() => signingCertificateOtherNames({ ...record, name: '' })).toThrow(RangeError);
    expect(() => signingCertificateOtherNames({ ...record, address: '' })).toThrow(RangeError);
    expect(() => signingCertificateOtherNames({ ...record, birthDate: '1990-02-30' })).toThrow(
      RangeError,
    );
  });
});

describe('eraDigitOf', () => {
  it.each([
    ['1867-12-31', '0'],
    ['1868-01-01', '1'],
    ['1868-01-24', '1'],
    ['1868-01-25', '1'],
    ['1868-10-23', '1'],
    ['1912-07-29', '1'],
    ['1912-07-30', '2'],
    ['1926-12-24', '2'],
    ['1926-12-25', '3'],
    ['1989-01-07', '3'],
    ['1989-01-08', '4'],
    ['2008-10-31', '4'],
    ['2019-04-30', '4'],
    ['2019-05-01', '5'],
    ['2024-02-29', '5'],
  ])('%s → %s', (date, digit) => {
    expect(eraDigitOf(date)).toBe(digit);
  });

  it('throws on a string that is not a date', () => {
    for (const bad of ['', '2019-5-1', '2019-02-29', '20190501', 'yesterday']) {
      expect(() => eraDigitOf(bad), bad).toThrow(RangeError);
    }
  });
});

describe('certificateBirthDate', () => {
  it('prefixes the era digit to the Gregorian date', () => {
    expect(certificateBirthDate('2008-10-31')).toBe('420081031');
    expect(certificateBirthDate('1926-12-25')).toBe('319261225');
    expect(certificateBirthDate('2019-05-01')).toBe('520190501');
    expect(certificateBirthDate('1850-06-01')).toBe('018500601');
  });
});

describe('sexCode', () => {
  it('maps male, female and unknown', () => {
    expect(sexCode('male')).toBe('1');
    expect(sexCode('female')).toBe('2');
    expect(sexCode('unknown')).toBe('3');
  });
});
