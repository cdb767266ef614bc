/**
 * CRL partitions (失効情報ファイルの分割): one per register-keeping municipality, named in the
 * certificate's cRLDistributionPoints as `OU=<Prefecture>, CN=<City> CRLDP` with romanised
 * names. Two municipalities of one prefecture can share a reading (江差町 and 枝幸町 in
 * 北海道 are both エサシチョウ); such names get their five-digit code appended so that
 * every distribution point name stays unique.
 */
import type { Queryable } from '../platform/db.ts';
import type { LocalGovernment } from '../platform/local-governments-csv.ts';
import { loadLocalGovernmentsFrom } from '../platform/master-data.ts';
import { localGovernmentRomaji } from './romaji.ts';

export interface PartitionName {
  municipalityCode: string;
  prefectureRomaji: string;
  municipalityRomaji: string;
}

const KEEPS_REGISTER = new Set(['city', 'town', 'village', 'specialWard', 'designatedCityWard']);

export class PartitionNames {
  #names: Map<string, PartitionName> | null = null;

  /** The names of a municipality's partition; null when it keeps no register. */
  async of(db: Queryable, municipalityCode: string): Promise<PartitionName | null> {
    return (await this.#load(db)).get(municipalityCode) ?? null;
  }

  async #load(db: Queryable): Promise<Map<string, PartitionName>> {
    if (this.#names) return this.#names;
    const byCode = new Map<string, LocalGovernment>(
      (await loadLocalGovernmentsFrom(db)).map((lg) => [lg.code, lg]),
    );
    const prefectures = new Map<string, string>();
    for (const lg of byCode.values()) {
      if (lg.kind === 'prefecture') prefectures.set(lg.prefectureCode, localGovernmentRomaji(lg));
    }
    const names = new Map<string, PartitionName>();
    const seen = new Map<string, number>();
    for (const lg of byCode.values()) {
      if (!KEEPS_REGISTER.has(lg.kind)) continue;
      const parent = lg.parentCode ? byCode.get(lg.parentCode) : undefined;
      const romaji = localGovernmentRomaji(lg, parent);
      const key = `${lg.prefectureCode}/${romaji}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
      names.set(lg.code, {
        municipalityCode: lg.code,
        prefectureRomaji: prefectures.get(lg.prefectureCode) ?? 'Japan',
        municipalityRomaji: romaji,
      });
    }
    for (const n of names.values()) {
      const key = `${n.municipalityCode.slice(0, 2)}/${n.municipalityRomaji}`;
      if ((seen.get(key) ?? 0) > 1) {
        n.municipalityRomaji = `${n.municipalityRomaji} ${n.municipalityCode.slice(0, 5)}`;
      }
    }
    this.#names = names;
    return names;
  }
}
