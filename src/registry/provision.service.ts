/**
 * 機構保存本人確認情報の提供 to national agencies (国の機関等; 住民基本台帳法 第30条の9,
 * 業務方法書 第4条(3)): an agency receives a resident's current identity record only for a legal
 * purpose it is registered for, and only the items that purpose may receive. Every provision is
 * in the audit log (`registry.provision`, subject = resident code, purpose = purpose code), in
 * the same transaction as the read; the yearly provision report (第4条(6)) counts those entries.
 *
 * Purposes are data: master-data/provision-purposes.json.
 */
import { readFileSync } from 'node:fs';
import type { Actor } from '../platform/actors.ts';
import type { AuditLog } from '../platform/audit.ts';
import type { Queryable } from '../platform/db.ts';
import { AppError } from '../platform/errors.ts';
import type { RegistryService } from './registry.service.ts';
import type { RegistryStore, StoredVersion } from './registry.store.ts';

export const PROVISION_ITEMS = [
  'residentCode',
  'myNumber',
  'name',
  'nameKana',
  'birthDate',
  'sex',
  'address',
  'status',
  'changeReason',
  'changeDate',
] as const;
export type ProvisionItem = (typeof PROVISION_ITEMS)[number];

export interface ProvisionPurpose {
  code: string;
  nameJa: string;
  legalBasis: string;
  items: ProvisionItem[];
}

const isItem = (v: unknown): v is ProvisionItem =>
  typeof v === 'string' && (PROVISION_ITEMS as readonly string[]).includes(v);

/** Reads and checks the purpose list; a malformed file stops the service at start. */
export function loadProvisionPurposes(
  file: URL = new URL('../../master-data/provision-purposes.json', import.meta.url),
): Map<string, ProvisionPurpose> {
  const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
  const list =
    parsed && typeof parsed === 'object' && 'purposes' in parsed && Array.isArray(parsed.purposes)
      ? (parsed.purposes as unknown[])
      : null;
  if (!list) throw new Error('provision-purposes.json: a "purposes" array is needed');
  const out = new Map<string, ProvisionPurpose>();
  for (const p of list) {
    if (
      !p ||
      typeof p !== 'object' ||
      !('code' in p) ||
      typeof p.code !== 'string' ||
      !/^[A-Za-z0-9.-]{1,64}$/.test(p.code) ||
      !('nameJa' in p) ||
      typeof p.nameJa !== 'string' ||
      !('legalBasis' in p) ||
      typeof p.legalBasis !== 'string' ||
      !('items' in p) ||
      !Array.isArray(p.items) ||
      !p.items.every(isItem)
    ) {
      throw new Error(`provision-purposes.json: malformed purpose ${JSON.stringify(p)}`);
    }
    if (out.has(p.code)) throw new Error(`provision-purposes.json: duplicate ${p.code}`);
    out.set(p.code, {
      code: p.code,
      nameJa: p.nameJa,
      legalBasis: p.legalBasis,
      items: p.items.filter(isItem),
    });
  }
  return out;
}

/** One provided record: only the purpose's items are present. */
export type ProvidedRecord = Partial<Record<ProvisionItem, string>>;

export type ProvisionChannel = 'lookup' | 'search' | 'bulk';

export interface SearchCriteria {
  name: string;
  birthDate: string;
  sex?: 'male' | 'female' | undefined;
  address?: string | undefined;
}

/** Most matches one search returns; more means the criteria are too broad. */
export const SEARCH_LIMIT = 20;

/** Names compare without spaces (full- or half-width) and in NFKC form. */
export const normaliseName = (s: string): string => s.normalize('NFKC').replace(/\s+/g, '');

export class ProvisionService {
  constructor(
    private readonly registry: RegistryService,
    private readonly store: RegistryStore,
    private readonly audit: AuditLog,
    readonly purposes: Map<string, ProvisionPurpose> = loadProvisionPurposes(),
  ) {}

  /** The purpose, if this agency may use it; a precise refusal otherwise. */
  purposeFor(actor: Actor, code: string): ProvisionPurpose {
    const purpose = this.purposes.get(code);
    if (!purpose) {
      throw new AppError('badRequest', 'provision.unknown-purpose', 'no such legal purpose');
    }
    if (!actor.purposes.includes(code)) {
      throw new AppError(
        'forbidden',
        'provision.purpose-not-registered',
        'this agency is not registered for that purpose',
      );
    }
    return purpose;
  }

  private view(v: StoredVersion, purpose: ProvisionPurpose): ProvidedRecord {
    const all: Record<ProvisionItem, string> = {
      residentCode: v.record.residentCode,
      myNumber: v.record.myNumber,
      name: v.record.name,
      nameKana: v.record.nameKana,
      birthDate: v.record.birthDate,
      sex: v.record.sex,
      address: v.record.address,
      status: v.status,
      changeReason: v.changeReason,
      changeDate: v.changeDate,
    };
    const out: ProvidedRecord = {};
    for (const item of purpose.items) out[item] = all[item];
    return out;
  }

  private async record(
    tx: Queryable,
    actor: Actor,
    v: StoredVersion,
    purpose: ProvisionPurpose,
    channel: ProvisionChannel,
    requestId: string,
  ): Promise<ProvidedRecord> {
    await this.audit.append(tx, actor, {
      action: 'registry.provision',
      subjectType: 'resident',
      subject: v.record.residentCode,
      purpose: purpose.code,
      requestId,
      details: { channel, items: purpose.items },
    });
    return this.view(v, purpose);
  }

  /** The current record of the person holding `residentCode`, or null (audited as not found). */
  async lookup(
    tx: Queryable,
    actor: Actor,
    p: { purpose: string; residentCode: string; channel?: ProvisionChannel; requestId: string },
  ): Promise<ProvidedRecord | null> {
    const purpose = this.purposeFor(actor, p.purpose);
    const latest = await this.registry.holder(tx, p.residentCode);
    if (!latest) {
      await this.audit.append(tx, actor, {
        action: 'registry.provision',
        subjectType: 'resident',
        subject: p.residentCode,
        purpose: purpose.code,
        outcome: 'failed',
        requestId: p.requestId,
        details: { channel: p.channel ?? 'lookup', reason: 'provision.not-found' },
      });
      return null;
    }
    return this.record(tx, actor, latest, purpose, p.channel ?? 'lookup', p.requestId);
  }

  /**
   * Current records matching the basic-4: same date of birth, same name (spaces and width
   * ignored), and the sex and address when given. At most {@link SEARCH_LIMIT}; `capped` says
   * there were more and nothing was provided.
   */
  async search(
    tx: Queryable,
    actor: Actor,
    p: { purpose: string; criteria: SearchCriteria; channel?: ProvisionChannel; requestId: string },
  ): Promise<{ matches: ProvidedRecord[]; capped: boolean }> {
    const purpose = this.purposeFor(actor, p.purpose);
    const people = await tx.query<{ person_id: string }>(
      'SELECT DISTINCT person_id FROM identity_record_versions WHERE birth_date = $1::date',
      [p.criteria.birthDate],
    );
    const name = normaliseName(p.criteria.name);
    const address = p.criteria.address?.normalize('NFKC');
    const found: StoredVersion[] = [];
    for (const { person_id } of people.rows) {
      const v = await this.store.latest(tx, person_id);
      if (!v || v.record.birthDate !== p.criteria.birthDate) continue;
      if (normaliseName(v.record.name) !== name) continue;
      if (p.criteria.sex && v.record.sex !== p.criteria.sex) continue;
      if (address && v.record.address.normalize('NFKC') !== address) continue;
      found.push(v);
    }
    const channel = p.channel ?? 'search';
    if (found.length === 0 || found.length > SEARCH_LIMIT) {
      await this.audit.append(tx, actor, {
        action: 'registry.provision-search',
        purpose: purpose.code,
        outcome: 'failed',
        requestId: p.requestId,
        details: { channel, matches: found.length },
      });
      return { matches: [], capped: found.length > SEARCH_LIMIT };
    }
    found.sort((a, b) =>
      a.record.residentCode < b.record.residentCode
        ? -1
        : a.record.residentCode > b.record.residentCode
          ? 1
          : 0,
    );
    const matches: ProvidedRecord[] = [];
    for (const v of found)
      matches.push(await this.record(tx, actor, v, purpose, channel, p.requestId));
    return { matches, capped: false };
  }
}
