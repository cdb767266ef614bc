/**
 * 保存期間に係る失効情報の提供 (第18条/第37条) in real time: the OCSP responder (RFC 6960).
 *
 * A request without a nonce is answered from a pre-signed response held in memory, with no
 * query, until a revocation of its serial is seen or it is half-way through its validity. Every
 * revocation advances the `jpki.revocations` change epoch in its transaction; the change feed
 * polls the epochs (every 50 ms by default) and drops the responses of the serials revoked, so
 * a revocation by any process shows within one poll, and one made by this process at once.
 * Otherwise (a miss, a change, age, or a nonce) the status is read (one indexed query) and the
 * response signed live by the generation's delegated responder; "good" and "revoked" answers
 * without a nonce are then kept. In a process without the feed running (CLI commands), the
 * status is read on every request and a kept response is reused only if it still matches.
 */
import { createHash } from 'node:crypto';
import type { Config } from '../config.ts';
import type { Clock } from '../platform/clock.ts';
import type { Database } from '../platform/db.ts';
import { type TbsSigner, tbsSigner } from '../pki/algorithms.ts';
import { wholeSeconds } from '../pki/der.ts';
import type { KeyCustody } from '../pki/key-store.ts';
import {
  buildOcspResponse,
  type OcspCertStatus,
  ocspErrorResponse,
  type OcspRequest,
  OcspRequestError,
  parseOcspRequest,
} from '../pki/ocsp.ts';
import type { ChangeFeed } from '../platform/change-feed.ts';
import {
  type CaGeneration,
  type CaService,
  type OcspResponder,
  sha1,
  subjectPublicKeyBits,
} from './ca.ts';
import type { CertificateKind } from './jpki.profiles.ts';
import type { PublishedReason, RevocationService } from './revocation.ts';

/** Serials whose pre-signed responses are kept (the oldest insertion is dropped first). */
const MAX_CACHED = 200_000;
/** More revocations than this in one poll and the whole cache is dropped instead. */
const MAX_FOLLOWED = 50_000;
/** How long the issuer list and each generation's responder are kept before a reload. */
const RELOAD_MS = 60_000;

interface Cached {
  /** The CertID the response answers, as hex: a serial may be asked with SHA-1 or SHA-256. */
  certId: string;
  kind: CertificateKind;
  der: Buffer;
  /** The responder certificate that signed it; a newer responder means re-signing. */
  responderSerial: bigint;
  /** The status it states (the same for a live answer to a request with a nonce). */
  status: OcspCertStatus;
  fingerprint: string;
  refreshAt: number;
}

interface Issuer {
  ca: CaGeneration;
  nameHash: { sha1: Buffer; sha256: Buffer };
  keyHash: { sha1: Buffer; sha256: Buffer };
}

export interface OcspAnswer {
  der: Buffer;
  /** For logs and metrics: how the answer was made. */
  source: 'cache' | 'signed' | 'error';
}

type StatusRow = {
  serial: string;
  kind: string;
  ca_generation: number;
  state: string;
  revoked_at: Date | null;
  crl_reason: PublishedReason | null;
};

/** A generation's responder with its signer, unwrapped once, not per response. */
interface Responding extends OcspResponder {
  sign: TbsSigner;
}

export class OcspResponderService {
  /** Pre-signed responses by serial (decimal). */
  readonly #cache = new Map<string, Cached[]>();
  #issuers: { at: number; list: Issuer[] } | null = null;
  readonly #responders = new Map<string, { at: number; responder: Responding | null }>();

  constructor(
    private readonly clock: Clock,
    private readonly config: Pick<Config, 'jpki'>,
    private readonly cas: CaService,
    private readonly keys: () => KeyCustody,
    private readonly changes: ChangeFeed,
    revocations: RevocationService,
  ) {
    // A revocation anywhere reaches every process through the epoch it advanced…
    changes.subscribe('jpki.revocations', {
      changed: async (q, from, to) => {
        const r = await q.query<{ serial: string }>(
          `SELECT serial::text AS serial FROM jpki_revocations
            WHERE epoch > $1 AND epoch <= $2 LIMIT ${MAX_FOLLOWED + 1}`,
          [from, to],
        );
        if (r.rows.length > MAX_FOLLOWED) this.#cache.clear();
        else for (const row of r.rows) this.#forget(row.serial);
      },
      forgetAll: () => this.#cache.clear(),
    });
    // …and one made here drops its cached answer at once.
    revocations.onRevoked((_tx, _actor, revoked) => {
      this.#forget(revoked.serial);
      changes.touch('jpki.revocations');
      return Promise.resolve();
    });
  }

  async respond(db: Database, kind: CertificateKind, body: Buffer): Promise<OcspAnswer> {
    let request: OcspRequest;
    try {
      request = parseOcspRequest(body);
    } catch (e) {
      if (e instanceof OcspRequestError)
        return { der: ocspErrorResponse('malformedRequest'), source: 'error' };
      throw e;
    }
    const first = request.requests[0]!;
    const matches = (i: Issuer): boolean =>
      i.keyHash[first.hashAlgorithm].equals(first.issuerKeyHash) &&
      i.nameHash[first.hashAlgorithm].equals(first.issuerNameHash);
    // A generation added since the list was cached (a rollover, possibly by another process)
    // is found by reloading the list once (a handful of rows) before answering unauthorized.
    const issuer =
      (await this.#issuersOf(db, kind)).find(matches) ??
      (await this.#issuersOf(db, kind, true)).find(matches);
    // RFC 6960 §2.3: not a CA this responder answers for.
    if (!issuer) return { der: ocspErrorResponse('unauthorized'), source: 'error' };
    const ca = issuer.ca;
    const cacheable = request.nonce === null && request.requests.length === 1;
    const serial = first.serial.toString();
    const certId = first.certId.toString('hex');
    const lookup = (): Cached | undefined =>
      this.#cache.get(serial)?.find((c) => c.certId === certId && c.kind === kind);
    // Taken before any status is read: an answer is cached only if no revocation was seen
    // while it was being made (ChangeFeed.unchangedSince).
    const version = this.changes.version('jpki.revocations');
    const responder = await this.#responderOf(db, ca);
    if (!responder) return { der: ocspErrorResponse('tryLater'), source: 'error' };
    const now = this.clock.now();
    // With the change feed running, a held answer's status stands until a revocation of its
    // serial is seen (within one poll; at once for revocations made here) or half its validity
    // ends: a request without a nonce gets the held response with no query at all, and one
    // with a nonce is signed live for the held status, still with no query.
    let held: Cached | undefined;
    if (request.requests.length === 1 && version !== null) {
      const hit = lookup();
      if (hit && hit.responderSerial === responder.serial && now.getTime() < hit.refreshAt) {
        if (cacheable) return { der: hit.der, source: 'cache' };
        held = hit;
      }
    }
    const statuses = held ? [held.status] : await this.#statuses(db, request, issuer, kind);
    const fingerprint = `${responder.serial}|${statuses.map(fingerprintOf).join(',')}`;
    if (cacheable) {
      // Without the feed (a process that does not serve), the status just read validates it.
      const hit = lookup();
      if (hit && hit.fingerprint === fingerprint && now.getTime() < hit.refreshAt) {
        return { der: hit.der, source: 'cache' };
      }
    }
    const thisUpdate = wholeSeconds(now);
    const validityMs = this.config.jpki.ocspValidityMinutes * 60e3;
    const nextUpdate = new Date(thisUpdate.getTime() + validityMs);
    const der = await buildOcspResponse(
      {
        responderKeyHash: responder.keyHash,
        producedAt: thisUpdate,
        responses: request.requests.map((r, i) => ({
          certId: r.certId,
          status: statuses[i]!,
          thisUpdate,
          nextUpdate,
        })),
        nonce: request.nonce,
        certs: [responder.certificate],
      },
      responder.sign,
    );
    // "unknown" may become "good" at any moment (issuance), so it is never kept.
    const settled = statuses[0]!.type !== 'unknown';
    if (
      cacheable &&
      settled &&
      (version === null || this.changes.unchangedSince('jpki.revocations', version))
    ) {
      this.#store(serial, {
        certId,
        kind,
        der,
        responderSerial: responder.serial,
        status: statuses[0]!,
        fingerprint,
        refreshAt: thisUpdate.getTime() + validityMs / 2,
      });
    }
    return { der, source: 'signed' };
  }

  /** Each requested certificate's status, read in one indexed query. */
  async #statuses(
    db: Database,
    request: OcspRequest,
    issuer: Issuer,
    kind: CertificateKind,
  ): Promise<OcspCertStatus[]> {
    const ca = issuer.ca;
    const rows = await db.query<StatusRow>(
      `SELECT c.serial::text AS serial, c.kind, c.ca_generation, c.state, r.revoked_at, r.crl_reason
         FROM jpki_certificates c LEFT JOIN jpki_revocations r ON r.serial = c.serial
        WHERE c.serial = ANY($1::bigint[])`,
      [request.requests.map((r) => r.serial.toString())],
    );
    const bySerial = new Map(rows.rows.map((r) => [r.serial, r]));
    return request.requests.map((req) => {
      const sameIssuer =
        issuer.keyHash[req.hashAlgorithm].equals(req.issuerKeyHash) &&
        issuer.nameHash[req.hashAlgorithm].equals(req.issuerNameHash);
      const row = bySerial.get(req.serial.toString());
      if (
        !sameIssuer ||
        !row ||
        row.kind !== kind ||
        row.ca_generation !== ca.generation ||
        row.state !== 'issued'
      ) {
        return { type: 'unknown' };
      }
      if (row.revoked_at && row.crl_reason) {
        return { type: 'revoked', revokedAt: row.revoked_at, reason: row.crl_reason };
      }
      return { type: 'good' };
    });
  }

  /** Forgets cached issuer data (after a rollover or compromise). */
  reset(): void {
    this.#issuers = null;
    this.#responders.clear();
    this.#cache.clear();
  }

  /**
   * Drops the held answers of a serial just revoked. One already saying "revoked" stays: a
   * revocation is final (a certificate is revoked once), so it is still the right answer.
   */
  #forget(serial: string): void {
    const held = this.#cache.get(serial);
    if (held && !held.every((c) => c.status.type === 'revoked')) this.#cache.delete(serial);
  }

  #store(serial: string, entry: Cached): void {
    const list = (this.#cache.get(serial) ?? []).filter(
      (c) => c.certId !== entry.certId || c.kind !== entry.kind,
    );
    list.push(entry);
    this.#cache.delete(serial);
    if (this.#cache.size >= MAX_CACHED) {
      // Drop the oldest insertion (Map keeps insertion order).
      const oldest = this.#cache.keys().next().value;
      if (oldest !== undefined) this.#cache.delete(oldest);
    }
    this.#cache.set(serial, list);
  }

  /**
   * The generation's newest responder and its signer, reloaded every minute (a renewal shows
   * then) and at once when the one held expires.
   */
  async #responderOf(db: Database, ca: CaGeneration): Promise<Responding | null> {
    const key = `${ca.kind}/${ca.generation}`;
    const now = Date.now();
    const held = this.#responders.get(key);
    if (held?.responder && now - held.at < RELOAD_MS && held.responder.notAfter.getTime() > now) {
      return held.responder;
    }
    const found = await this.cas.responder(db, ca);
    const responder = found
      ? { ...found, sign: tbsSigner(await this.keys().signer(db, found.keyLabel)) }
      : null;
    this.#responders.set(key, { at: now, responder });
    return responder;
  }

  async #issuersOf(db: Database, kind: CertificateKind, reload = false): Promise<Issuer[]> {
    const now = Date.now();
    if (reload || !this.#issuers || now - this.#issuers.at > RELOAD_MS) {
      const list = (await this.cas.list(db)).map((ca) => {
        const bits = subjectPublicKeyBits(ca.spki);
        return {
          ca,
          nameHash: { sha1: sha1(ca.subject), sha256: sha256(ca.subject) },
          keyHash: { sha1: sha1(bits), sha256: sha256(bits) },
        };
      });
      this.#issuers = { at: now, list };
    }
    return this.#issuers.list.filter((i) => i.ca.kind === kind);
  }
}

const sha256 = (b: Buffer): Buffer => createHash('sha256').update(b).digest();

function fingerprintOf(s: OcspCertStatus): string {
  if (s.type === 'revoked') return `r:${s.revokedAt.getTime()}:${s.reason ?? ''}`;
  return s.type;
}
