/**
 * Helpers for JPKI tests: residents registered through the real API (the next notification
 * sequence is read from the database, so several helpers and tests can share one app), card
 * issuance, and an openssl runner that does not block the event loop — needed when openssl
 * talks to a responder listening in the same process.
 */
import { spawn } from 'node:child_process';
import { jstDateOf } from '../../src/jpki/validity.ts';
import { fromPem, sequence, toPem } from '../../src/pki/der.ts';
import { certIdFor } from '../../src/pki/ocsp.ts';
import { parseCertificate } from '../../src/pki/x509.ts';
import type { Sex } from '../../src/registry/registry.rules.ts';
import type { TestApp } from './app.ts';
import type { OpensslResult } from './openssl.ts';
import { mobileApplication, rsaKey, type TestKey } from './pki.ts';
import { baseRecord, newResident, type Resident } from './registry.ts';

/** The identity record fields a birth notification carries. */
export type ResidentRecord = Omit<ReturnType<typeof baseRecord>, 'sex'> & { sex: Sex };

export interface RegisteredResident extends Resident {
  municipalityCode: string;
  record: ResidentRecord;
}

/** The next `sequence` of a municipality's identity notification stream. */
export async function nextNotificationSequence(
  t: TestApp,
  municipalityCode: string,
): Promise<number> {
  const r = await t.database.db.query<{ n: string | null }>(
    `SELECT max(sequence)::text AS n FROM registry_notifications
      WHERE stream = 'identity' AND municipality_code = $1`,
    [municipalityCode],
  );
  return Number(r.rows[0]?.n ?? 0) + 1;
}

/**
 * Posts an identity notification (`POST /v1/registry/notifications`) with the municipality's
 * next sequence number; `changeDate` defaults to today in Japan by the app's clock.
 */
export async function notifyIdentityChange(
  t: TestApp,
  actor: string,
  body: { municipalityCode: string; changeReason: string; changeDate?: string } & Record<
    string,
    unknown
  >,
) {
  return t.app.inject({
    method: 'POST',
    url: '/v1/registry/notifications',
    headers: t.auth(actor),
    payload: {
      changeDate: jstDateOf(t.clock.now()),
      ...body,
      sequence: await nextNotificationSequence(t, body.municipalityCode),
    },
  });
}

/**
 * Registers a resident in `actor`'s municipality with a `birth` notification dated today (the
 * app's clock, Japan time); `record` overrides fields of {@link baseRecord}.
 */
export async function registerJpkiResident(
  t: TestApp,
  actor: string,
  municipalityCode: string,
  record: Partial<Omit<ResidentRecord, 'residentCode' | 'myNumber'>> = {},
): Promise<RegisteredResident> {
  const r = await newResident(t, actor);
  const full: ResidentRecord = { ...baseRecord(r), ...record };
  const born = await notifyIdentityChange(t, actor, {
    municipalityCode,
    changeReason: 'birth',
    record: full,
  });
  if (born.statusCode !== 201) throw new Error(`birth notification refused: ${born.body}`);
  return { ...r, municipalityCode, record: full };
}

/** `POST /v1/jpki/certificates` for the card (`medium: "card"` is added). */
export function issueCardCertificate(
  t: TestApp,
  actor: string | null,
  body: { kind: 'sign' | 'auth'; residentCode: string; csr?: string; publicKey?: string },
) {
  return t.app.inject({
    method: 'POST',
    url: '/v1/jpki/certificates',
    headers: actor === null ? {} : t.auth(actor),
    payload: { medium: 'card', ...body },
  });
}

/**
 * Runs `openssl ...args` without blocking the event loop (no shell); never rejects on a
 * non-zero exit. Use it instead of the synchronous runner when openssl connects to a server
 * in this process.
 */
export function opensslAsync(
  args: readonly string[],
  options: { cwd?: string; input?: string | Buffer } = {},
): Promise<OpensslResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('openssl', args, {
      cwd: options.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    // openssl may exit before reading stdin (most commands here never read it): a closed pipe
    // is not an error of the command, its exit status and output say what happened.
    child.stdin.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') reject(error);
    });
    child.on('close', (code) =>
      resolve({
        status: code ?? -1,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      }),
    );
    child.stdin.end(options.input ?? '');
  });
}

/**
 * A minimal OCSPRequest (one SHA-1 CertID, no nonce, unsigned) for `serial` under the CA
 * certificate `caPem` — what `openssl ocsp -no_nonce` sends.
 */
export function ocspRequestFor(caPem: string, serial: bigint): Buffer {
  const ca = parseCertificate(fromPem(caPem, 'CERTIFICATE'));
  const { certId } = certIdFor(ca.subject, ca.spki, serial, 'sha1');
  // OCSPRequest { tbsRequest { requestList { Request { reqCert } } } }
  return sequence(sequence(sequence(sequence(certId))));
}

/** A certificate with its private key, as the holder's card or smartphone keeps it. */
export interface HeldCertificate {
  serial: string;
  /** DER of the certificate. */
  der: Buffer;
  key: TestKey;
  kind: 'sign' | 'auth';
  medium: 'card' | 'mobile';
}

/**
 * Issues a certificate of `kind` on `medium` to `r` through the API and keeps its key. A
 * smartphone certificate is applied for with `card` (the holder's card signing certificate)
 * or, when none is given, a card signing certificate issued first by `actor`.
 */
export async function issueHeldCertificate(
  t: TestApp,
  actor: string,
  r: RegisteredResident,
  kind: 'sign' | 'auth',
  medium: 'card' | 'mobile',
  card?: HeldCertificate,
): Promise<HeldCertificate> {
  const key = rsaKey();
  let res;
  if (medium === 'card') {
    res = await issueCardCertificate(t, actor, {
      kind,
      residentCode: r.residentCode,
      publicKey: key.publicKeyPem,
    });
  } else {
    const signer = card ?? (await issueHeldCertificate(t, actor, r, 'sign', 'card'));
    res = await t.app.inject({
      method: 'POST',
      url: '/v1/jpki/mobile-certificates',
      payload: mobileApplication({
        kind,
        phone: key,
        cardKey: signer.key.privateKey,
        cardCertificate: toPem(signer.der, 'CERTIFICATE'),
        record: r.record,
        signedAt: t.clock.now(),
      }),
    });
  }
  if (res.statusCode !== 201) throw new Error(`issuance refused: ${res.body}`);
  const body = res.json<{ serial: string; certificate: string }>();
  return { serial: body.serial, der: fromPem(body.certificate, 'CERTIFICATE'), key, kind, medium };
}
