import { describe, expect, it } from 'vitest';
import { myNumberCheckDigit, residentCodeCheckDigit } from '../numbering/check-digits.ts';
import { readLocalGovernments } from '../platform/master-data.ts';
import {
  addressProblem,
  nameKanaProblem,
  nameProblem,
  validateNotificationFields,
} from './registry.rules.ts';
import {
  EARLIEST_SYNTHETIC_BIRTH_DATE,
  FAMILY_NAMES,
  GIVEN_NAMES,
  officialEntryNotification,
  type SyntheticPerson,
  SyntheticPopulation,
} from './synthetic.ts';

const governments = readLocalGovernments();
const byCode = new Map(governments.map((g) => [g.code, g]));
const REGISTER_KINDS = new Set(['city', 'town', 'village', 'specialWard', 'designatedCityWard']);
const AS_OF = '2026-04-01';
const N = 10_000;

const population = (seed = 'kiban', asOf = AS_OF) =>
  new SyntheticPopulation({ seed, asOf, localGovernments: governments });

const people = (p: SyntheticPopulation, n: number, start = 0): SyntheticPerson[] =>
  Array.from({ length: n }, (_, k) => p.person(start + k));

/** A well-formed code and number for person i (the rules check only their check digits). */
function ids(i: number) {
  const rc = String(1_000_000_000 + i).slice(-10);
  const mn = String(20_000_000_000 + i).slice(-11);
  return {
    residentCode: rc + residentCodeCheckDigit(rc),
    myNumber: mn + myNumberCheckDigit(mn),
  };
}

const share = (xs: readonly SyntheticPerson[], f: (p: SyntheticPerson) => boolean) =>
  xs.filter(f).length / xs.length;

const ageOn = (birthDate: string, on: string): number => {
  const years = Number(on.slice(0, 4)) - Number(birthDate.slice(0, 4));
  return on.slice(5) >= birthDate.slice(5) ? years : years - 1;
};

describe('synthetic name tables', () => {
  const givenLists = Object.entries(GIVEN_NAMES).flatMap(([sex, cohorts]) =>
    Object.values(cohorts).map((list) => ({ sex, list })),
  );

  it('holds 100+ family names and 100+ given names per sex, each valid with a katakana reading', () => {
    expect(FAMILY_NAMES.length).toBeGreaterThanOrEqual(100);
    for (const sex of ['male', 'female'] as const) {
      const names = new Set(Object.values(GIVEN_NAMES[sex]).flatMap((l) => l.map(([k]) => k)));
      expect(names.size).toBeGreaterThanOrEqual(100);
    }
    for (const [kanji, kana] of [...FAMILY_NAMES, ...givenLists.flatMap((g) => g.list)]) {
      expect(nameProblem(kanji), kanji).toBeNull();
      expect(nameKanaProblem(kana), kana).toBeNull();
      expect(kana, kanji).toMatch(/^[\u30A1-\u30FA\u30FC]+$/);
    }
  });

  it('gives each spelling one reading', () => {
    const readings = new Map<string, string>();
    for (const [kanji, kana] of [...FAMILY_NAMES, ...givenLists.flatMap((g) => g.list)]) {
      expect(readings.get(kanji) ?? kana, kanji).toBe(kana);
      readings.set(kanji, kana);
    }
  });
});

describe('SyntheticPopulation', () => {
  const p = population();
  const sample = people(p, N);

  it(`generates ${N.toLocaleString()} people whose officialEntry notifications pass every field rule`, () => {
    const failures: string[] = [];
    for (const person of sample) {
      const body = officialEntryNotification(person, {
        ...ids(person.index),
        sequence: person.index + 1,
        changeDate: AS_OF,
      });
      const errors = validateNotificationFields(body, AS_OF);
      if (errors.length > 0) failures.push(`${person.index}: ${JSON.stringify(errors)}`);
    }
    expect(failures.slice(0, 5)).toEqual([]);
  });

  it('writes names as family + ideographic space + given, with the matching readings', () => {
    const family = new Map(FAMILY_NAMES);
    const givenBySex = {
      male: new Map(Object.values(GIVEN_NAMES.male).flat()),
      female: new Map(Object.values(GIVEN_NAMES.female).flat()),
    };
    for (const person of sample) {
      const [f, g, ...rest] = person.name.split('　');
      const [fk, gk, ...restKana] = person.nameKana.split('　');
      expect(rest).toEqual([]);
      expect(restKana).toEqual([]);
      expect(family.get(f ?? ''), person.name).toBe(fk);
      expect(givenBySex[person.sex].get(g ?? ''), person.name).toBe(gk);
    }
  });

  it('places everyone in a register-keeping municipality, with an address inside it', () => {
    for (const person of sample) {
      const g = byCode.get(person.municipalityCode);
      expect(g && REGISTER_KINDS.has(g.kind), person.municipalityCode).toBe(true);
      if (!g) continue;
      const prefecture = governments.find(
        (x) => x.kind === 'prefecture' && x.prefectureCode === g.prefectureCode,
      );
      expect(
        person.address.startsWith(`${prefecture?.name}${g.district ?? ''}${g.name}`),
        person.address,
      ).toBe(true);
      expect(person.address).toMatch(/(\d+丁目\d+番\d+号|大字\S+\d+番地)/);
      expect(addressProblem(person.address), person.address).toBeNull();
    }
  });

  it('spreads people over the country roughly as Japan is spread', () => {
    const perMunicipality = new Map<string, number>();
    for (const person of sample) {
      perMunicipality.set(
        person.municipalityCode,
        (perMunicipality.get(person.municipalityCode) ?? 0) + 1,
      );
    }
    expect(perMunicipality.size).toBeGreaterThan(900);
    expect(Math.max(...perMunicipality.values()) / N).toBeLessThan(0.02);
    const prefectures = new Set(sample.map((x) => x.municipalityCode.slice(0, 2)));
    expect(prefectures.size).toBe(47);
    const kind = (x: SyntheticPerson) => byCode.get(x.municipalityCode)?.kind;
    // Special wards ≈ 7.8 % of the population, designated-city wards ≈ 22 %, villages < 1 %.
    expect(share(sample, (x) => kind(x) === 'specialWard')).toBeGreaterThan(0.06);
    expect(share(sample, (x) => kind(x) === 'specialWard')).toBeLessThan(0.1);
    expect(share(sample, (x) => kind(x) === 'designatedCityWard')).toBeGreaterThan(0.18);
    expect(share(sample, (x) => kind(x) === 'designatedCityWard')).toBeLessThan(0.27);
    expect(share(sample, (x) => kind(x) === 'village')).toBeLessThan(0.015);
  });

  it('follows the age pyramid and sex ratio', () => {
    for (const person of sample) {
      expect(person.birthDate >= EARLIEST_SYNTHETIC_BIRTH_DATE).toBe(true);
      expect(person.birthDate <= AS_OF).toBe(true);
    }
    const age = (x: SyntheticPerson) => ageOn(x.birthDate, AS_OF);
    // Japan 2023: under 15 ≈ 11.4 %, 15–64 ≈ 59.5 %, 65 and over ≈ 29.1 %.
    expect(share(sample, (x) => age(x) < 15)).toBeGreaterThan(0.095);
    expect(share(sample, (x) => age(x) < 15)).toBeLessThan(0.135);
    expect(share(sample, (x) => age(x) >= 65)).toBeGreaterThan(0.26);
    expect(share(sample, (x) => age(x) >= 65)).toBeLessThan(0.32);
    expect(share(sample, (x) => age(x) >= 90)).toBeLessThan(0.04);
    expect(share(sample, (x) => x.sex === 'female')).toBeGreaterThan(0.49);
    expect(share(sample, (x) => x.sex === 'female')).toBeLessThan(0.54);
    const old = sample.filter((x) => age(x) >= 85);
    expect(share(old, (x) => x.sex === 'female')).toBeGreaterThan(0.55);
    // Many different names, and no name dominating.
    expect(new Set(sample.map((x) => x.name)).size).toBeGreaterThan(N * 0.6);
    expect(share(sample, (x) => x.name.startsWith('佐藤　'))).toBeLessThan(0.06);
  });

  it('is deterministic: the same seed gives the same people, in any order of asking', () => {
    const again = population();
    expect(again.person(9_999)).toEqual(sample[9_999]);
    expect(people(again, 200, 5_000)).toEqual(sample.slice(5_000, 5_200));
    expect(again.person(0)).toEqual(sample[0]);
    // Far indexes (beyond 2^32) are fine too.
    expect(again.person(2 ** 40)).toEqual(population().person(2 ** 40));
  });

  it('gives other people for another seed', () => {
    const other = people(population('another seed'), 500);
    const same = other.filter(
      (x, i) => x.name === sample[i]?.name && x.birthDate === sample[i]?.birthDate,
    );
    expect(same.length).toBeLessThan(10);
  });

  it('keeps birth dates valid for any reference date, leap days included', () => {
    for (const asOf of ['2028-02-29', '1990-06-30', '1925-01-01']) {
      for (const person of people(population('kiban', asOf), 2_000)) {
        expect(person.birthDate >= EARLIEST_SYNTHETIC_BIRTH_DATE, asOf).toBe(true);
        expect(person.birthDate <= asOf, asOf).toBe(true);
        const body = officialEntryNotification(person, {
          ...ids(person.index),
          sequence: 1,
          changeDate: asOf,
        });
        expect(validateNotificationFields(body, asOf)).toEqual([]);
      }
    }
    expect(() => population('kiban', '1924-12-31')).toThrow(RangeError);
  });
});
