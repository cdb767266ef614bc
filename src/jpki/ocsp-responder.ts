/**
 * 保存期間に係る失効情報の提供 (第18条/第37条) in real time: the OCSP responder (RFC 6960).
 *
 * Status is read from the revocation records on every request (one indexed query), so a
 * revocation shows at once. Signing is what costs: a request without a nonce is answered from
 * a pre-signed response when the status it was signed for is still the status now and it is
 * less than half-way through its validity; otherwise (a change, age, or a nonce) the response
 * is signed live by the generation's delegated responder and, without a nonce, cached.
 */
import { createHash } from 'node:crypto';
import type { Config } from '../config.ts';
import type { Clock } from '../platform/clock.ts';
import type { Database } from '../platform/db.ts';
import { tbsSigner } from '../pki/algorithms.ts';
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
import { type CaGeneration, type CaService, sha1, subjectPublicKeyBits } from './ca.ts';
import type { CertificateKind } from './jpki.profiles.ts';
import type { PublishedReason } from './revocation.ts';

const MAX_CACHED = 200_000;

interface Cached {
  der: Buffer;
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

export class OcspResponderService {
  readonly #cache = new Map<string, Cached>();
  #issuers: { at: number; list: Issuer[] } | null = null;

  constructor(
    private readonly clock: Clock,
    private readonly config: Pick<Config, 'jpki'>,
    private readonly cas: CaService,
    private readonly keys: () => KeyCustody,
  ) {}

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
    const serials = request.requests.map((r) => r.serial.toString());
    const rows = await db.query<{
      serial: string;
      kind: string;
      ca_generation: number;
      state: string;
      revoked_at: Date | null;
      crl_reason: PublishedReason | null;
    }>(
      `SELECT c.serial::text AS serial, c.kind, c.ca_generation, c.state, r.revoked_at, r.crl_reason
         FROM jpki_certificates c LEFT JOIN jpki_revocations r ON r.serial = c.serial
        WHERE c.serial = ANY($1::bigint[])`,
      [serials],
    );
    const bySerial = new Map(rows.rows.map((r) => [r.serial, r]));
    const statuses: OcspCertStatus[] = request.requests.map((req) => {
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
    const responder = await this.cas.responder(db, ca);
    if (!responder) return { der: ocspErrorResponse('tryLater'), source: 'error' };
    const now = this.clock.now();
    const cacheable = request.nonce === null && request.requests.length === 1;
    const key = cacheable ? first.certId.toString('hex') : '';
    const fingerprint = `${responder.serial}|${statuses.map(fingerprintOf).join(',')}`;
    if (cacheable) {
      const hit = this.#cache.get(key);
      if (hit && hit.fingerprint === fingerprint && now.getTime() < hit.refreshAt) {
        return { der: hit.der, source: 'cache' };
      }
    }
    const thisUpdate = wholeSeconds(now);
    const validityMs = this.config.jpki.ocspValidityMinutes * 60e3;
    const nextUpdate = new Date(thisUpdate.getTime() + validityMs);
    const signer = tbsSigner(await this.keys().signer(db, responder.keyLabel));
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
      signer,
    );
    if (cacheable) {
      if (this.#cache.size >= MAX_CACHED) {
        // Drop the oldest insertion (Map keeps insertion order).
        const oldest = this.#cache.keys().next().value;
        if (oldest !== undefined) this.#cache.delete(oldest);
      }
      this.#cache.delete(key);
      this.#cache.set(key, { der, fingerprint, refreshAt: thisUpdate.getTime() + validityMs / 2 });
    }
    return { der, source: 'signed' };
  }

  /** Forgets cached issuer data (after a rollover or compromise). */
  reset(): void {
    this.#issuers = null;
    this.#cache.clear();
  }

  async #issuersOf(db: Database, kind: CertificateKind, reload = false): Promise<Issuer[]> {
    const now = Date.now();
    if (reload || !this.#issuers || now - this.#issuers.at > 60_000) {
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
