/**
 * The permission matrix: for every route in `app.routeTable` and every test actor (plus an
 * anonymous caller), the outcome the edge must produce. The table is explicit on purpose: a
 * route added to the app without a row here, or a row for a route that no longer exists,
 * fails the first test, so every new route forces a decision about who may call it.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Type } from '@sinclair/typebox';
import { type App, createEdge, type EdgeDeps } from '../src/platform/http.ts';
import { baseRecord, newResident } from './support/registry.ts';
import { createTestApp, type TestApp } from './support/app.ts';
import { fromPem, sequence } from '../src/pki/der.ts';
import { sign as cryptoSign } from 'node:crypto';
import { challengeMessage } from '../src/jpki/holder-proof.ts';
import { registerJpkiResident } from './support/jpki.ts';
import { certIdFor } from '../src/pki/ocsp.ts';
import { csrPem, mobileApplication, rsaKey, type TestKey } from './support/pki.ts';
import { corporateNumberCheckDigit } from '../src/numbering/check-digits.ts';
import { CLI_ACTOR } from '../src/platform/install.ts';
import { DEMO_VERIFIER_ID } from '../src/verifiers/demo.ts';
import { parseCertificate } from '../src/pki/x509.ts';

const CALLERS = [
  'operator',
  'opRegistry',
  'opCa',
  'opCards',
  'opAuditor',
  'prefecture',
  'prefecture2',
  'municipality',
  'municipality2',
  'nationalAgency',
  'signatureVerifier',
  'authVerifier',
  'resident',
  'anonymous',
] as const;
type Caller = (typeof CALLERS)[number];

/**
 * - `allow`: any status below 400;
 * - `forbidden`: 403 `auth.forbidden` (actor type or role not granted);
 * - `unauthorized`: 401 `auth.token-missing` (no credentials);
 * - `deny:<code>`: 403 with that code (scope or domain permission rule).
 */
type Expectation = 'allow' | 'forbidden' | 'unauthorized' | `deny:${string}`;
const A = 'allow';
const F = 'forbidden';
const U = 'unauthorized';
const M = 'deny:auth.other-municipality';
const T = 'deny:actor.type-not-permitted';
const O = 'deny:resident-code.other-municipality';
const P = 'deny:auth.other-prefecture';
const V = 'deny:jpki.wrong-verifier';

/** One expectation per caller, in the order of {@link CALLERS}. */
type Row = [
  Expectation,
  Expectation,
  Expectation,
  Expectation,
  Expectation,
  Expectation,
  Expectation,
  Expectation,
  Expectation,
  Expectation,
  Expectation,
  Expectation,
  Expectation,
  Expectation,
];

interface Case {
  /** `METHOD url-pattern`, exactly as in `app.routeTable`. */
  route: string;
  label: string;
  url: (caller: Caller) => string;
  body?: (caller: Caller) => Record<string, unknown> | unknown[] | Buffer;
  /** Headers instead of the caller's own token (undefined: the caller's own). */
  headers?: (caller: Caller) => Record<string, string> | undefined;
  expect: Row;
}

const MUNICIPALITY_CODE: Partial<Record<Caller, string>> = {
  municipality: '131016',
  municipality2: '141046',
};
/** The caller's own municipality (131016 for callers not bound to one). */
const ownCode = (c: Caller): string => MUNICIPALITY_CODE[c] ?? '131016';
/** A municipality the caller is not (141046 for callers not bound to one). */
const otherCode = (c: Caller): string => (ownCode(c) === '131016' ? '141046' : '131016');

const fixed = (url: string) => () => url;
const register =
  (type: string, extra: Record<string, unknown> = {}) =>
  (caller: Caller): Record<string, unknown> => ({
    name: `perm-${type}-${caller}`,
    type,
    ...extra,
  });

// prettier-ignore
const CASES: Case[] = [
  // columns: op=operator rg=opRegistry ca=opCa cd=opCards au=opAuditor pf=prefecture p2=prefecture2
  //          mu=municipality m2=municipality2 na=nationalAgency sv=signatureVerifier
  //          av=authVerifier rs=resident an=anonymous
  //                                                                                            op rg ca cd au pf p2 mu m2 na sv av rs an
  { route: 'GET /openapi.json', label: 'public', url: fixed('/openapi.json'),          expect: [A, A, A, A, A, A, A, A, A, A, A, A, A, A] },
  { route: 'GET /healthz', label: 'public', url: fixed('/healthz'),                    expect: [A, A, A, A, A, A, A, A, A, A, A, A, A, A] },
  { route: 'GET /readyz', label: 'public', url: fixed('/readyz'),                      expect: [A, A, A, A, A, A, A, A, A, A, A, A, A, A] },
  { route: 'GET /v1/whoami', label: 'any actor', url: fixed('/v1/whoami'),             expect: [A, A, A, A, A, A, A, A, A, A, A, A, A, U] },
  { route: 'GET /v1/local-governments', label: 'any actor',
    url: fixed('/v1/local-governments?prefectureCode=13&limit=5'),                     expect: [A, A, A, A, A, A, A, A, A, A, A, A, A, U] },
  { route: 'GET /v1/local-governments/:code', label: 'any actor',
    url: fixed('/v1/local-governments/131016'),                                        expect: [A, A, A, A, A, A, A, A, A, A, A, A, A, U] },
  { route: 'GET /v1/actors', label: 'operators', url: fixed('/v1/actors'),             expect: [A, A, A, A, A, F, F, F, F, F, F, F, F, U] },
  { route: 'GET /v1/actors/:name', label: 'operators',
    url: fixed('/v1/actors/municipality'),                                             expect: [A, A, A, A, A, F, F, F, F, F, F, F, F, U] },
  { route: 'POST /v1/actors', label: 'register a municipality', url: fixed('/v1/actors'),
    body: register('municipality', { municipalityCode: '131016' }),                    expect: [A, A, T, F, F, F, F, F, F, F, F, F, F, U] },
  { route: 'POST /v1/actors', label: 'register a prefecture', url: fixed('/v1/actors'),
    body: register('prefecture', { prefectureCode: '13' }),                            expect: [A, A, T, F, F, F, F, F, F, F, F, F, F, U] },
  { route: 'POST /v1/actors', label: 'register a national agency', url: fixed('/v1/actors'),
    body: register('nationalAgency', { purposes: ['pensionBenefits'] }),               expect: [A, A, T, F, F, F, F, F, F, F, F, F, F, U] },
  { route: 'POST /v1/actors', label: 'register a resident', url: fixed('/v1/actors'),
    body: register('resident'),                                                        expect: [A, A, T, F, F, F, F, F, F, F, F, F, F, U] },
  { route: 'POST /v1/actors', label: 'signature verifiers only via /v1/verifiers', url: fixed('/v1/actors'),
    body: register('signatureVerifier'),                                               expect: [T, T, T, F, F, F, F, F, F, F, F, F, F, U] },
  { route: 'POST /v1/actors', label: 'authentication verifiers only via /v1/verifiers', url: fixed('/v1/actors'),
    body: register('authVerifier'),                                                    expect: [T, T, T, F, F, F, F, F, F, F, F, F, F, U] },
  { route: 'POST /v1/actors', label: 'register an agency operator (CLI only)', url: fixed('/v1/actors'),
    body: register('agencyOperator'),                                                  expect: [T, T, T, F, F, F, F, F, F, F, F, F, F, U] },
  { route: 'GET /v1/audit/entries', label: 'auditors', url: fixed('/v1/audit/entries?limit=5'),
                                                                                       expect: [A, F, F, F, A, F, F, F, F, F, F, F, F, U] },
  { route: 'GET /v1/municipalities/:municipalityCode/audit-entries', label: 'own municipality',
    url: (c) => `/v1/municipalities/${ownCode(c)}/audit-entries`,                      expect: [A, F, F, F, A, F, F, A, A, F, F, F, F, U] },
  { route: 'GET /v1/municipalities/:municipalityCode/audit-entries', label: 'another municipality',
    url: (c) => `/v1/municipalities/${otherCode(c)}/audit-entries`,                    expect: [A, F, F, F, A, F, F, M, M, F, F, F, F, U] },
  { route: 'GET /v1/audit/verification', label: 'auditors', url: fixed('/v1/audit/verification'),
                                                                                       expect: [A, F, F, F, A, F, F, F, F, F, F, F, F, U] },
  { route: 'POST /v1/registry/resident-codes', label: 'municipalities draw codes',
    url: fixed('/v1/registry/resident-codes'), body: () => ({ count: 2 }),               expect: [F, F, F, F, F, F, F, A, A, F, F, F, F, U] },
  { route: 'POST /v1/numbering/my-numbers', label: 'own code',
    url: fixed('/v1/numbering/my-numbers'), body: (c) => ({ residentCode: issuedCode(c, 'own') }),
                                                                                       expect: [F, F, F, F, F, F, F, A, A, F, F, F, F, U] },
  { route: 'POST /v1/numbering/my-numbers', label: 'another municipality’s code',
    url: fixed('/v1/numbering/my-numbers'), body: (c) => ({ residentCode: issuedCode(c, 'other') }),
                                                                                       expect: [F, F, F, F, F, F, F, O, O, F, F, F, F, U] },
  { route: 'POST /v1/numbering/my-numbers::batch', label: 'own codes, many at once',
    url: fixed('/v1/numbering/my-numbers:batch'), body: (c) => ({ residentCodes: [issuedCode(c, 'own')] }),
                                                                                       expect: [F, F, F, F, F, F, F, A, A, F, F, F, F, U] },
  { route: 'POST /v1/registry/notifications', label: 'for own municipality (prefecture relays)',
    url: fixed('/v1/registry/notifications'), body: (c) => birthOf(ownCode(c)),        expect: [F, F, F, F, F, A, P, A, A, F, F, F, F, U] },
  { route: 'POST /v1/registry/notifications', label: 'for another municipality',
    url: fixed('/v1/registry/notifications'), body: (c) => birthOf(otherCode(c)),      expect: [F, F, F, F, F, P, A, M, M, F, F, F, F, U] },
  { route: 'POST /v1/registry/notifications::batch', label: 'batch for own municipality (prefecture relays)',
    url: fixed('/v1/registry/notifications:batch'), body: (c) => [birthOf(ownCode(c))], expect: [F, F, F, F, F, A, P, A, A, F, F, F, F, U] },
  { route: 'POST /v1/registry/notifications::batch', label: 'batch for another municipality',
    url: fixed('/v1/registry/notifications:batch'), body: (c) => [birthOf(otherCode(c))], expect: [F, F, F, F, F, P, A, M, M, F, F, F, F, U] },
  { route: 'GET /v1/registry/identity-records/:residentCode', label: 'holder and operators',
    url: (c) => `/v1/registry/identity-records/${BORN[ownCode(c)]?.residentCode ?? ''}`, expect: [A, A, F, F, A, F, F, A, A, F, F, F, F, U] },
  { route: 'POST /v1/registry/supplement-notifications', label: 'for own municipality (prefecture relays)',
    url: fixed('/v1/registry/supplement-notifications'), body: (c) => supplementEntryOf(ownCode(c)),
                                                                                       expect: [F, F, F, F, F, A, P, A, A, F, F, F, F, U] },
  { route: 'POST /v1/registry/supplement-notifications', label: 'for another municipality',
    url: fixed('/v1/registry/supplement-notifications'), body: (c) => supplementEntryOf(otherCode(c)),
                                                                                       expect: [F, F, F, F, F, P, A, M, M, F, F, F, F, U] },
  { route: 'GET /v1/registry/supplement-records/:residentCode', label: 'keeping municipality and operators',
    url: (c) => `/v1/registry/supplement-records/${BORN[ownCode(c)]?.residentCode ?? ''}`, expect: [A, A, F, F, A, F, F, A, A, F, F, F, F, U] },
  { route: 'GET /v1/registry/error-notices', label: 'prefectures (own) and operators',
    url: fixed('/v1/registry/error-notices'),                                          expect: [A, A, F, F, A, A, A, F, F, F, F, F, F, U] },
  { route: 'GET /v1/registry/error-notices', label: 'another prefecture’s',
    url: fixed('/v1/registry/error-notices?prefectureCode=13'),                        expect: [A, A, F, F, A, A, P, F, F, F, F, F, F, U] },
  { route: 'POST /v1/registry/error-notices/:id/acknowledgement', label: 'the addressed prefecture',
    url: (c) => `/v1/registry/error-notices/${NOTICE[c === 'prefecture2' ? '14' : '13'] ?? ''}/acknowledgement`,
                                                                                       expect: [F, F, F, F, F, A, A, F, F, F, F, F, F, U] },
  { route: 'GET /v1/jpki/ca', label: 'public trust anchors', url: fixed('/v1/jpki/ca'), expect: [A, A, A, A, A, A, A, A, A, A, A, A, A, A] },
  { route: 'GET /v1/jpki/announcements', label: 'public 公示', url: fixed('/v1/jpki/announcements'),
                                                                                       expect: [A, A, A, A, A, A, A, A, A, A, A, A, A, A] },
  { route: 'POST /v1/jpki/certificates/:serial/revocation', label: 'holder’s municipality and CA operators',
    url: (c) => `/v1/jpki/certificates/${REVOCABLE[c] ?? REVOCABLE['municipality'] ?? ''}/revocation`,
    body: () => ({ reason: 'request' }),                                               expect: [A, F, A, F, F, F, F, A, A, F, F, F, F, U] },
  { route: 'POST /v1/jpki/mobile-certificates', label: 'public: authenticated by the card signing key',
    url: fixed('/v1/jpki/mobile-certificates'), body: () => mobileBody(),              expect: [A, A, A, A, A, A, A, A, A, A, A, A, A, A] },
  { route: 'POST /v1/jpki/certificates', label: 'the resident’s municipality',
    url: fixed('/v1/jpki/certificates'), body: (c) => cardIssuanceFor(ownCode(c)),     expect: [F, F, F, F, F, F, F, A, A, F, F, F, F, U] },
  { route: 'POST /v1/jpki/certificates::batch', label: 'the residents’ municipality, many cards',
    url: fixed('/v1/jpki/certificates:batch'), body: (c) => ({ certificates: [cardIssuanceFor(ownCode(c))] }),
                                                                                       expect: [F, F, F, F, F, F, F, A, A, F, F, F, F, U] },
  // 本人同意, certified basic-4, linked serials, designation tokens (第18条第3項–第5項, 第37条第3項, 第38条の3).
  { route: 'POST /v1/jpki/consent-challenges', label: 'public: the holder signs it',
    url: fixed('/v1/jpki/consent-challenges'),                                         expect: [A, A, A, A, A, A, A, A, A, A, A, A, A, A] },
  { route: 'POST /v1/jpki/consents', label: 'public: authenticated by a signing key',
    url: fixed('/v1/jpki/consents'), body: (c) => SERVICES.consent[c] ?? {},           expect: [A, A, A, A, A, A, A, A, A, A, A, A, A, A] },
  { route: 'POST /v1/jpki/certified-basic-four', label: 'signature verifiers (署名検証者等)',
    url: fixed('/v1/jpki/certified-basic-four'), body: () => ({ serial: SERVICES.signSerial }),
                                                                                       expect: [F, F, F, F, F, F, F, F, F, F, A, F, F, U] },
  { route: 'POST /v1/jpki/linked-serials', label: 'card sign ↔ mobile sign: signature verifiers (第18条第4項)',
    url: fixed('/v1/jpki/linked-serials'), body: () => ({ serial: SERVICES.signSerial, link: 'cardSignToMobileSign' }),
                                                                                       expect: [F, F, F, F, F, F, F, F, F, F, A, 'deny:linked-serial.not-entitled', F, U] },
  { route: 'POST /v1/jpki/designations', label: 'ca operators record the agreement',
    url: fixed('/v1/jpki/designations'),
    body: (c) => ({ verifierId: DEMO_VERIFIER_ID, agreementReference: `perm-${c}`, agreedOn: '2020-01-01', validFrom: '2020-01-01' }),
                                                                                       expect: [A, F, A, F, F, F, F, F, F, F, F, F, F, U] },
  { route: 'GET /v1/jpki/designations', label: 'ca operators and auditors',
    url: fixed('/v1/jpki/designations'),                                               expect: [A, F, A, F, A, F, F, F, F, F, F, F, F, U] },
  { route: 'POST /v1/jpki/designations/:designationId/tokens', label: 'ca operators',
    url: () => `/v1/jpki/designations/${SERVICES.designationId}/tokens`,               expect: [A, F, A, F, F, F, F, F, F, F, F, F, F, U] },
  { route: 'POST /v1/jpki/designations/:designationId/tokens/:tokenId/revocation', label: 'ca operators',
    url: (c) => `/v1/jpki/designations/${SERVICES.designationId}/tokens/${SERVICES.tokens[c] ?? SERVICES.designationId}/revocation`,
    body: () => ({ reason: 'probe' }),                                                 expect: [A, F, A, F, F, F, F, F, F, F, F, F, F, U] },
  { route: 'POST /v1/jpki/designation-tokens', label: 'a designated auth verifier asks for its token',
    url: fixed('/v1/jpki/designation-tokens'),                                         expect: [F, F, F, F, F, F, F, F, F, F, F, A, F, U] },
  { route: 'POST /v1/jpki/designation-tokens/verification', label: 'public: the token is shown to be checked',
    url: fixed('/v1/jpki/designation-tokens/verification'), body: () => ({ token: 'kdt_probe' }),
                                                                                       expect: [A, A, A, A, A, A, A, A, A, A, A, A, A, A] },
  { route: 'POST /v1/jpki/crls/publication', label: 'CA operators',
    url: fixed('/v1/jpki/crls/publication'),                                           expect: [A, F, A, F, F, F, F, F, F, F, F, F, F, U] },
  { route: 'GET /crl/:kind/:file', label: 'signing CRL: signature verifiers and CA operators',
    url: fixed('/crl/sign/131016.crl'),                                                expect: [A, F, A, F, F, F, F, F, F, F, A, V, F, U] },
  { route: 'POST /ocsp/:kind', label: 'authentication OCSP: authentication verifiers and CA operators',
    url: fixed('/ocsp/auth'), body: () => ocspBody(),                                  expect: [A, F, A, F, F, F, F, F, F, F, V, A, F, U] },
  { route: 'GET /ocsp/:kind/*', label: 'signing OCSP by GET: signature verifiers and CA operators',
    url: () => `/ocsp/sign/${encodeURIComponent(OCSP_GET.request)}`,                    expect: [A, F, A, F, F, F, F, F, F, F, A, V, F, U] },
  // Verifiers (署名検証者等 / 利用者証明検証者): ca operators manage, auditors read.
  { route: 'POST /v1/verifiers', label: 'ca operators register', url: fixed('/v1/verifiers'),
    body: (c) => verifierBody(c, 300000000000),                                        expect: [A, F, A, F, F, F, F, F, F, F, F, F, F, U] },
  { route: 'GET /v1/verifiers', label: 'ca operators and auditors', url: fixed('/v1/verifiers'),
                                                                                       expect: [A, F, A, F, A, F, F, F, F, F, F, F, F, U] },
  { route: 'GET /v1/verifiers/:verifierId', label: 'ca operators and auditors',
    url: fixed(`/v1/verifiers/${DEMO_VERIFIER_ID}`),                                   expect: [A, F, A, F, A, F, F, F, F, F, F, F, F, U] },
  { route: 'POST /v1/verifiers/:verifierId/credentials', label: 'ca operators',
    url: (c) => `/v1/verifiers/${permVerifier(c)}/credentials`,
    body: (c) => ({ kind: 'authVerifier', name: `perm-cred-${c}` }),                   expect: [A, F, A, F, F, F, F, F, F, F, F, F, F, U] },
  { route: 'POST /v1/verifiers/:verifierId/suspension', label: 'ca operators',
    url: (c) => `/v1/verifiers/${permVerifier(c)}/suspension`, body: () => ({ reason: 'probe' }),
                                                                                       expect: [A, F, A, F, F, F, F, F, F, F, F, F, F, U] },
  { route: 'POST /v1/verifiers/:verifierId/resumption', label: 'ca operators',
    url: (c) => `/v1/verifiers/${permVerifier(c)}/resumption`, body: () => ({ reason: 'probe' }),
                                                                                       expect: [A, F, A, F, F, F, F, F, F, F, F, F, F, U] },
  { route: 'POST /v1/verifiers/:verifierId/agreement', label: 'ca operators',
    url: (c) => `/v1/verifiers/${permVerifier(c)}/agreement`,
    body: () => ({ agreementFrom: '2020-01-01', agreementUntil: null, reason: 'renewed' }), expect: [A, F, A, F, F, F, F, F, F, F, F, F, F, U] },
  { route: 'GET /v1/verifiers/:verifierId/provisions', label: 'ca operators and auditors',
    url: fixed(`/v1/verifiers/${DEMO_VERIFIER_ID}/provisions?from=2026-01-01&to=2026-12-31`),
                                                                                       expect: [A, F, A, F, A, F, F, F, F, F, F, F, F, U] },
  { route: 'POST /v1/verifiers/:verifierId/termination', label: 'ca operators',
    url: (c) => `/v1/verifiers/${permVerifier(c)}/termination`, body: () => ({ reason: 'probe' }),
                                                                                       expect: [A, F, A, F, F, F, F, F, F, F, F, F, F, U] },
  { route: 'GET /v1/verifier-fee-rules', label: 'ca operators and auditors',
    url: fixed('/v1/verifier-fee-rules'),                                              expect: [A, F, A, F, A, F, F, F, F, F, F, F, F, U] },
  // Reports: registry reports for registry operators, the JPKI report for ca, auditors all.
  { route: 'GET /v1/reports/registry-provision', label: 'registry operators and auditors',
    url: fixed('/v1/reports/registry-provision?fiscalYear=2026'),                      expect: [A, A, F, F, A, F, F, F, F, F, F, F, F, U] },
  { route: 'GET /v1/reports/jpki-provision', label: 'ca operators and auditors',
    url: fixed('/v1/reports/jpki-provision?fiscalYear=2026'),                          expect: [A, F, A, F, A, F, F, F, F, F, F, F, F, U] },
  { route: 'GET /v1/reports/migration-statistics', label: 'registry operators and auditors',
    url: fixed('/v1/reports/migration-statistics?month=2026-10'),                      expect: [A, A, F, F, A, F, F, F, F, F, F, F, F, U] },
  // Provision to national agencies (住基法 第30条の9): agencies only; purposes also for registry operators and auditors.
  { route: 'GET /v1/provision/purposes', label: 'agencies, registry operators, auditors',
    url: fixed('/v1/provision/purposes'),                                              expect: [A, A, F, F, A, F, F, F, F, A, F, F, F, U] },
  { route: 'POST /v1/provision/lookups', label: 'national agencies',
    url: fixed('/v1/provision/lookups'),
    body: () => ({ purpose: 'pensionBenefits', residentCode: BORN['131016']?.residentCode ?? '' }),
                                                                                       expect: [F, F, F, F, F, F, F, F, F, A, F, F, F, U] },
  { route: 'POST /v1/provision/searches', label: 'national agencies',
    url: fixed('/v1/provision/searches'),
    body: () => ({ purpose: 'pensionBenefits', name: '権限　試験', birthDate: '1990-01-01' }),
                                                                                       expect: [F, F, F, F, F, F, F, F, F, A, F, F, F, U] },
  { route: 'POST /v1/provision/bulk', label: 'national agencies (NDJSON)',
    url: fixed('/v1/provision/bulk'),
    headers: (c) => ({ ...(TOKENS[c] ? { authorization: `Bearer ${TOKENS[c]}` } : {}), 'content-type': 'application/x-ndjson' }),
    body: () => ({ ref: 'p1', purpose: 'pensionBenefits', residentCode: BORN['131016']?.residentCode ?? '' }),
                                                                                       expect: [F, F, F, F, F, F, F, F, F, A, F, F, F, U] },
  { route: 'POST /v1/resident/login-challenges', label: 'public',
    url: fixed('/v1/resident/login-challenges'),                                       expect: [A, A, A, A, A, A, A, A, A, A, A, A, A, A] },
  { route: 'POST /v1/resident/sessions', label: 'public: a signed challenge per caller',
    url: fixed('/v1/resident/sessions'), body: (c) => RESIDENT_LOGIN[c] ?? {},          expect: [A, A, A, A, A, A, A, A, A, A, A, A, A, A] },
  { route: 'GET /v1/resident/me/identity-records', label: 'residents, their own',
    url: fixed('/v1/resident/me/identity-records'),                                    expect: [F, F, F, F, F, F, F, F, F, F, F, F, A, U] },
  { route: 'GET /v1/resident/me/provisions', label: 'residents, their own',
    url: fixed('/v1/resident/me/provisions'),                                          expect: [F, F, F, F, F, F, F, F, F, F, F, F, A, U] },
  { route: 'GET /v1/resident/me/certificates', label: 'residents, their own',
    url: fixed('/v1/resident/me/certificates'),                                        expect: [F, F, F, F, F, F, F, F, F, F, F, F, A, U] },
  { route: 'DELETE /v1/resident/sessions/current', label: 'residents (a spare session)',
    url: fixed('/v1/resident/sessions/current'), headers: residentSpareSession,          expect: [F, F, F, F, F, F, F, F, F, F, F, F, A, U] },
];

/**
 * The matrix's `resident` is bound to a resident of 131016 (as a login binds it); logout
 * ends a spare session of it, so the `resident` token stays valid for the rows after it.
 */
const RESIDENT_SPARE = { token: '' };
function residentSpareSession(c: Caller): Record<string, string> | undefined {
  return c === 'resident' ? { authorization: `Bearer ${RESIDENT_SPARE.token}` } : undefined;
}
/** `POST /v1/resident/sessions` bodies: a challenge per caller, signed with 131016's auth key. */
const RESIDENT_LOGIN: Partial<Record<Caller, Record<string, string>>> = {};

/** A verifier per allowed caller for the state-changing verifier rows (never the demo one). */
const PERM_VERIFIER: Partial<Record<Caller, string>> = {};
const permVerifier = (c: Caller): string => PERM_VERIFIER[c] ?? DEMO_VERIFIER_ID;
/** A registration with a valid 法人番号 of its own per caller (and per `series`). */
const verifierBody = (c: Caller, series: number) => {
  const base = String(series + CALLERS.indexOf(c));
  return {
    legalName: `権限試験 ${c} ${series}`,
    corporateNumber: corporateNumberCheckDigit(base) + base,
    kinds: ['signatureVerifier', 'authVerifier'],
    contact: { name: 'desk', email: 'desk@example.invalid', phone: '03-0000-0000' },
    agreementFrom: '2020-01-01',
  };
};

/** A certificate per allowed caller, revoked by that caller (its holder lives where it acts). */
const REVOCABLE: Partial<Record<Caller, string>> = {};
/** The card signing key and certificate of 131016's resident, for smartphone applications. */
const CARD: { key?: TestKey; certificate?: string } = {};
/** A DER OCSP request (raw for POST, base64 for GET). */
const OCSP_GET = { request: '' };
let ocspDer: Buffer = Buffer.alloc(0);
let mobileBody: () => Record<string, string> = () => ({});
/** Fixtures of the JPKI verifier-service rows (consent bodies per caller, a designation …). */
const SERVICES: {
  consent: Partial<Record<Caller, Record<string, string>>>;
  signSerial: string;
  designationId: string;
  tokens: Partial<Record<Caller, string>>;
} = { consent: {}, signSerial: '', designationId: '', tokens: {} };
const ocspBody = (): Buffer => ocspDer;
const cardIssuanceFor = (municipalityCode: string) => ({
  kind: 'auth',
  medium: 'card',
  residentCode: BORN[municipalityCode]?.residentCode ?? '',
  csr: csrPem(rsaKey()),
});

/** A 附票 entry at `municipalityCode` for the person born there (the identity rows run first). */
const supplementEntryOf = (municipalityCode: string) => {
  const r = BORN[municipalityCode];
  if (!r) throw new Error('residents were not prepared');
  const record: Record<string, unknown> = { ...baseRecord(r) };
  delete record['myNumber'];
  return { municipalityCode, sequence: 1, changeReason: 'entry', changeDate: '2026-03-20', record };
};

/** An open error notice per prefecture, raised before the matrix runs. */
const NOTICE: Record<string, string> = {};

/** A resident per municipality with code and My Number, ready to be registered. */
const BORN: Record<string, { residentCode: string; myNumber: string }> = {};
/** Every test actor's token, for rows that send their own headers. */
const TOKENS: Partial<Record<Caller, string>> = {};
const birthOf = (municipalityCode: string) => {
  const r = BORN[municipalityCode];
  if (!r) throw new Error('residents were not prepared');
  return {
    municipalityCode,
    sequence: 1,
    changeReason: 'birth',
    changeDate: '2026-03-20',
    record: { ...baseRecord(r) },
  };
};

/** Resident codes handed out to each municipality before the matrix runs. */
const ISSUED: Record<string, string> = {};
const issuedCode = (c: Caller, whose: 'own' | 'other'): string => {
  const mine = c === 'municipality2' ? '141046' : '131016';
  const code = ISSUED[whose === 'own' ? mine : mine === '131016' ? '141046' : '131016'];
  if (!code) throw new Error('resident codes were not prepared');
  return code;
};

const PROBLEM_JSON = /^application\/problem\+json/;
const routeKey = (r: { method: string; url: string }): string => `${r.method} ${r.url}`;
const isDocs = (url: string): boolean => url === '/docs' || url.startsWith('/docs/');

interface Observed {
  route: string;
  label: string;
  caller: Caller;
  status: number;
  code: string | undefined;
  requestId: string;
}

describe('permission matrix', () => {
  let t: TestApp;
  const observed: Observed[] = [];

  beforeAll(async () => {
    t = await createTestApp({ jpki: true });
    Object.assign(TOKENS, t.tokens);
    for (const [actor, code] of [
      ['municipality', '131016'],
      ['municipality2', '141046'],
    ] as const) {
      const r = await t.app.inject({
        method: 'POST',
        url: '/v1/registry/resident-codes',
        headers: t.auth(actor),
        payload: { count: 1 },
      });
      ISSUED[code] = r.json<{ residentCodes: string[] }>().residentCodes[0] ?? '';
      BORN[code] = await newResident(t, actor);
    }
    for (const code of ['131016', '141046']) {
      await t.services.errorNotices.raise(t.database.db, {
        kind: 'doubleRegistration',
        municipalityCode: code,
        residentCodes: [BORN[code]?.residentCode ?? ''],
        detail: 'permission-matrix probe',
        sourceKey: `probe:${code}`,
      });
      const r = await t.database.db.query<{ id: string }>(
        'SELECT id FROM error_notices WHERE municipality_code = $1',
        [code],
      );
      NOTICE[code.slice(0, 2)] = r.rows[0]?.id ?? '';
    }
    await prepareJpki();
    for (const c of ['operator', 'opCa'] as const) {
      const v = await t.database.db.transaction((tx) =>
        t.services.verifiers.register(tx, CLI_ACTOR, verifierBody(c, 310000000000)),
      );
      PERM_VERIFIER[c] = v.id;
    }
    await prepareResident();
  });

  /**
   * Binds the `resident` caller to a resident of 131016 no other row touches; signed login
   * challenges per caller.
   */
  async function prepareResident(): Promise<void> {
    const db = t.database.db;
    const holder = await registerJpkiResident(t, 'municipality', '131016', {
      name: '権限\u3000住民',
      birthDate: '1990-01-01',
    });
    await db.query(
      `UPDATE actors SET person_id = (SELECT person_id FROM identity_record_versions
                                       WHERE resident_code = $1 LIMIT 1)
        WHERE name = 'resident'`,
      [holder.residentCode],
    );
    const resident = await t.services.actors.byName(db, 'resident');
    RESIDENT_SPARE.token = (
      await t.services.actors.createToken(db, resident!.id, { label: 'spare session' })
    ).token;
    const key = rsaKey();
    const issued = await t.app.inject({
      method: 'POST',
      url: '/v1/jpki/certificates',
      headers: t.auth('municipality'),
      payload: {
        kind: 'auth',
        medium: 'card',
        residentCode: holder.residentCode,
        publicKey: key.publicKeyPem,
      },
    });
    expect(issued.statusCode, issued.body).toBe(201);
    const certificate = fromPem(issued.json<{ certificate: string }>().certificate, 'CERTIFICATE');
    for (const c of CALLERS) {
      const ch = await t.services.challenges.issue(db, 'residentLogin');
      const message = challengeMessage(
        'residentLogin',
        ch.challengeId,
        Buffer.from(ch.nonce, 'base64'),
        '',
      );
      RESIDENT_LOGIN[c] = {
        challengeId: ch.challengeId,
        certificate: certificate.toString('base64'),
        signature: cryptoSign('sha256', message, key.privateKey).toString('base64'),
      };
    }
  }

  /** Residents with certificates for the JPKI rows (registered before the matrix replays). */
  async function prepareJpki(): Promise<void> {
    const notify = async (actor: string, body: Record<string, unknown>): Promise<void> => {
      const r = await t.app.inject({
        method: 'POST',
        url: '/v1/registry/notifications',
        headers: t.auth(actor),
        payload: body,
      });
      expect(r.statusCode, r.body).toBeLessThan(300);
    };
    const issue = async (actor: string, residentCode: string, kind: string, key: TestKey) => {
      const r = await t.app.inject({
        method: 'POST',
        url: '/v1/jpki/certificates',
        headers: t.auth(actor),
        payload: { kind, medium: 'card', residentCode, publicKey: key.publicKeyPem },
      });
      expect(r.statusCode, r.body).toBe(201);
      return r.json<{ serial: string; certificate: string }>();
    };
    await notify('municipality', birthOf('131016'));
    await notify('municipality2', birthOf('141046'));
    const holders: [Caller, string, string][] = [
      ['municipality', 'municipality', '131016'],
      ['opCa', 'municipality', '131016'],
      ['operator', 'municipality', '131016'],
      ['municipality2', 'municipality2', '141046'],
    ];
    const sequenceOf: Record<string, number> = { '131016': 1, '141046': 1 };
    for (const [caller, actor, code] of holders) {
      const r = await newResident(t, actor);
      const seq = (sequenceOf[code] = (sequenceOf[code] ?? 1) + 1);
      await notify(actor, {
        municipalityCode: code,
        sequence: seq,
        changeReason: 'birth',
        changeDate: '2026-03-20',
        record: {
          ...baseRecord(r),
          name: `権限\u3000試験${'一二三四五'[seq] ?? ''}`,
          birthDate: `2026-03-0${seq}`,
        },
      });
      REVOCABLE[caller] = (await issue(actor, r.residentCode, 'auth', rsaKey())).serial;
    }
    const holder = BORN['131016']!;
    CARD.key = rsaKey();
    CARD.certificate = (
      await issue('municipality', holder.residentCode, 'sign', CARD.key)
    ).certificate;
    mobileBody = () =>
      mobileApplication({
        kind: 'sign',
        phone: rsaKey(),
        cardKey: CARD.key!.privateKey,
        cardCertificate: CARD.certificate!,
        record: baseRecord(holder),
        signedAt: t.clock.now(),
      });
    await prepareVerifierServices();
    const db = t.database.db;
    const authCa = await t.services.jpki.cas.current(db, 'auth');
    const signCa = await t.services.jpki.cas.current(db, 'sign');
    const request = (ca: { subject: Buffer; spki: Buffer }, serial: string): Buffer =>
      sequence(
        sequence(sequence(sequence(certIdFor(ca.subject, ca.spki, BigInt(serial), 'sha1').certId))),
      );
    ocspDer = request(authCa, REVOCABLE['municipality'] ?? '1');
    OCSP_GET.request = request(signCa, '1').toString('base64');
  }
  /** A consent body per caller (fresh challenge), consent given, a mobile certificate, a designation. */
  async function prepareVerifierServices(): Promise<void> {
    const post = async (url: string, who: string | null, payload?: Record<string, unknown>) =>
      (
        await t.app.inject({
          method: 'POST',
          url,
          headers: who ? t.auth(who) : {},
          ...(payload ? { payload } : {}),
        })
      ).json<Record<string, string>>();
    const der = fromPem(CARD.certificate!, 'CERTIFICATE');
    SERVICES.signSerial = parseCertificate(der).serial.toString();
    const consentBody = async () => {
      const c = await post('/v1/jpki/consent-challenges', null);
      const nonce = Buffer.from(c.nonce ?? '', 'base64');
      const message = challengeMessage('consent', c.challengeId ?? '', nonce, 'consent=given');
      return {
        challengeId: c.challengeId ?? '',
        certificate: der.toString('base64'),
        signature: cryptoSign('sha256', message, CARD.key!.privateKey).toString('base64'),
        decision: 'given',
      };
    };
    expect(await post('/v1/jpki/consents', null, await consentBody())).toMatchObject({
      decision: 'given',
    });
    for (const c of CALLERS) SERVICES.consent[c] = await consentBody();
    expect(await post('/v1/jpki/mobile-certificates', null, mobileBody())).toHaveProperty('serial');
    SERVICES.designationId =
      (
        await post('/v1/jpki/designations', 'opCa', {
          verifierId: DEMO_VERIFIER_ID,
          agreementReference: 'perm-fixture',
          agreedOn: '2020-01-01',
          validFrom: '2020-01-01',
        })
      ).id ?? '';
    for (const c of ['operator', 'opCa'] as const) {
      SERVICES.tokens[c] =
        (await post(`/v1/jpki/designations/${SERVICES.designationId}/tokens`, 'opCa')).tokenId ??
        '';
    }
  }

  afterAll(async () => t.close());

  const headersFor = (caller: Caller): Record<string, string> =>
    caller === 'anonymous' ? {} : t.auth(caller);

  it('covers exactly the routes the app registers, and exactly the test actors', () => {
    const registered = new Set(
      t.app.routeTable.filter((r) => !isDocs(r.url)).map((r) => routeKey(r)),
    );
    const tabled = new Set(CASES.map((c) => c.route));
    const missing = [...registered].filter((r) => !tabled.has(r));
    const stale = [...tabled].filter((r) => !registered.has(r));
    expect({ missingFromTable: missing, notARouteAnyMore: stale }).toEqual({
      missingFromTable: [],
      notARouteAnyMore: [],
    });
    expect(Object.keys(t.tokens).sort()).toEqual(CALLERS.filter((c) => c !== 'anonymous').sort());
    // Only swagger-ui's own assets go without an access rule.
    for (const r of t.app.routeTable) {
      if (!isDocs(r.url)) expect(r.access, routeKey(r)).not.toBeNull();
    }
  });

  it('agrees with each route’s declared rule: public rows allow everyone, others need a token', () => {
    for (const c of CASES) {
      const entry = t.app.routeTable.find((r) => routeKey(r) === c.route);
      const isPublic = entry?.access?.public === true;
      const anonymous = c.expect[CALLERS.indexOf('anonymous')];
      expect(anonymous, `${c.route} (${c.label})`).toBe(isPublic ? 'allow' : 'unauthorized');
      if (isPublic)
        expect(
          c.expect.every((e) => e === 'allow'),
          c.route,
        ).toBe(true);
    }
  });

  it.each(CASES.map((c) => [`${c.route} — ${c.label}`, c] as const))('%s', async (_name, c) => {
    const method = c.route.split(' ')[0] as 'GET' | 'POST' | 'DELETE';
    const mismatches: string[] = [];
    for (const [i, caller] of CALLERS.entries()) {
      const expected = c.expect[i];
      const body = c.body?.(caller);
      const res = await t.app.inject({
        method,
        url: c.url(caller),
        headers: {
          ...(c.headers?.(caller) ?? headersFor(caller)),
          ...(Buffer.isBuffer(body) ? { 'content-type': 'application/ocsp-request' } : {}),
        },
        ...(body ? { payload: body } : {}),
      });
      const isProblem = PROBLEM_JSON.test(String(res.headers['content-type']));
      const json = isProblem ? res.json<{ code?: string; requestId?: string }>() : {};
      observed.push({
        route: c.route,
        label: c.label,
        caller,
        status: res.statusCode,
        code: json.code,
        requestId: String(res.headers['x-request-id']),
      });
      const got =
        res.statusCode < 400
          ? 'allow'
          : res.statusCode === 401 && json.code === 'auth.token-missing'
            ? 'unauthorized'
            : res.statusCode === 403 && json.code === 'auth.forbidden'
              ? 'forbidden'
              : res.statusCode === 403
                ? `deny:${json.code}`
                : `status ${res.statusCode} ${json.code ?? res.body.slice(0, 200)}`;
      if (got !== expected) mismatches.push(`${caller}: expected ${expected}, got ${got}`);
      if (res.statusCode === 401 || res.statusCode === 403) {
        if (!isProblem) mismatches.push(`${caller}: ${res.statusCode} is not problem+json`);
        if (json.requestId !== res.headers['x-request-id']) {
          mismatches.push(`${caller}: problem requestId does not match x-request-id`);
        }
      }
      if (res.statusCode === 401 && res.headers['www-authenticate'] !== 'Bearer realm="kiban"') {
        mismatches.push(`${caller}: 401 without WWW-Authenticate`);
      }
    }
    expect(mismatches).toEqual([]);
  });

  it('records every 403 in the audit log as denied, under the caller, and nothing else', async () => {
    expect(observed.length).toBe(CASES.length * CALLERS.length);
    const denied = await t.database.db.query<{
      request_id: string;
      actor_name: string;
      action: string;
    }>("SELECT request_id, actor_name, action FROM audit_log WHERE outcome = 'denied'");
    const byRequest = new Map(denied.rows.map((r) => [r.request_id, r]));
    const forbidden = observed.filter((o) => o.status === 403);
    expect(forbidden.length).toBeGreaterThan(50);
    const unaudited = forbidden
      .filter((o) => byRequest.get(o.requestId)?.actor_name !== o.caller)
      .map((o) => `${o.route} (${o.label}) as ${o.caller}: ${o.code}`);
    expect(unaudited).toEqual([]);
    for (const o of forbidden) {
      expect(byRequest.get(o.requestId)?.action).toBe(o.route);
    }
    const wronglyDenied = observed
      .filter((o) => o.status !== 403 && byRequest.has(o.requestId))
      .map((o) => `${o.route} as ${o.caller}`);
    expect(wronglyDenied).toEqual([]);
  });

  it('HEAD on a protected GET route is no way around authentication', async () => {
    for (const c of CASES.filter((x) => x.route.startsWith('GET ') && x.expect[13] === U)) {
      const res = await t.app.inject({ method: 'HEAD', url: c.url('anonymous') });
      expect(res.statusCode, c.route).toBe(401);
      const forbidden = await t.app.inject({
        method: 'HEAD',
        url: c.url('resident'),
        headers: t.auth('resident'),
      });
      const residentExpect = c.expect[CALLERS.indexOf('resident')];
      expect(forbidden.statusCode, c.route).toBe(residentExpect === A ? 200 : 403);
    }
  });
});

describe('authentication failures', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => t.close());

  async function whoami(authorization?: string) {
    const res = await t.app.inject({
      url: '/v1/whoami',
      headers: authorization === undefined ? {} : { authorization },
    });
    const problem = res.statusCode >= 400 ? res.json<{ code: string; requestId?: string }>() : null;
    if (problem) {
      expect(res.headers['content-type']).toMatch(PROBLEM_JSON);
      expect(problem.requestId).toBe(res.headers['x-request-id']);
    }
    if (res.statusCode === 401) {
      expect(res.headers['www-authenticate']).toBe('Bearer realm="kiban"');
    }
    return { status: res.statusCode, code: problem?.code };
  }

  it('refuses an unknown token as auth.token-invalid', async () => {
    expect(await whoami(`Bearer kbn_${'A'.repeat(43)}`)).toEqual({
      status: 401,
      code: 'auth.token-invalid',
    });
    expect(await whoami('Bearer not-a-kiban-token')).toEqual({
      status: 401,
      code: 'auth.token-invalid',
    });
    // A real token with one character changed.
    const real = t.tokens['municipality'] ?? '';
    const flipped = real.slice(0, -1) + (real.endsWith('A') ? 'B' : 'A');
    expect(await whoami(`Bearer ${flipped}`)).toEqual({ status: 401, code: 'auth.token-invalid' });
  });

  it('treats an Authorization header that is not a bearer token as missing', async () => {
    const token = t.tokens['municipality'] ?? '';
    for (const header of ['Basic bXVuaTpwYXNz', token, 'Bearer', 'Bearer ', `Bearer ${token} x`]) {
      expect(await whoami(header), header).toEqual({ status: 401, code: 'auth.token-missing' });
    }
    expect(await whoami()).toEqual({ status: 401, code: 'auth.token-missing' });
    // The scheme is case-insensitive (RFC 9110 §11.1).
    expect(await whoami(`bearer ${token}`)).toEqual({ status: 200, code: undefined });
  });

  it('refuses a revoked token', async () => {
    const actor = await t.services.actors.byName(t.database.db, 'municipality');
    const { id, token } = await t.services.actors.createToken(t.database.db, actor?.id ?? '', {
      label: 'to-revoke',
    });
    expect(await whoami(`Bearer ${token}`)).toEqual({ status: 200, code: undefined });
    expect(await t.services.actors.revokeToken(t.database.db, id)).toBe(true);
    expect(await whoami(`Bearer ${token}`)).toEqual({ status: 401, code: 'auth.token-invalid' });
    // The actor's other token is unaffected.
    expect(await whoami(t.auth('municipality').authorization)).toEqual({
      status: 200,
      code: undefined,
    });
  });

  it('refuses an expired token', async () => {
    const actor = await t.services.actors.byName(t.database.db, 'municipality2');
    const start = t.clock.now();
    const { token } = await t.services.actors.createToken(t.database.db, actor?.id ?? '', {
      label: 'short-lived',
      expiresAt: new Date(start.getTime() + 3_600_000),
    });
    try {
      expect(await whoami(`Bearer ${token}`)).toEqual({ status: 200, code: undefined });
      t.clock.advance(3_600_000);
      expect(await whoami(`Bearer ${token}`)).toEqual({
        status: 401,
        code: 'auth.token-invalid',
      });
    } finally {
      t.clock.set(start);
    }
  });

  it('answers 500, never a success, when a denial cannot be audited', async () => {
    const spy = vi
      .spyOn(t.services.audit, 'append')
      .mockRejectedValue(new Error('audit store down'));
    try {
      // Refused by the edge (role) and by the handler (actor type): both stay refused.
      const byEdge = await t.app.inject({ url: '/v1/actors', headers: t.auth('resident') });
      const byHandler = await t.app.inject({
        method: 'POST',
        url: '/v1/actors',
        headers: t.auth('opCa'),
        payload: { name: 'never-created', type: 'resident' },
      });
      for (const res of [byEdge, byHandler]) {
        expect(res.statusCode).toBe(500);
        expect(res.json<{ code: string }>().code).toBe('internal');
        expect(res.body).not.toContain('audit store down');
      }
    } finally {
      spy.mockRestore();
    }
    expect(await t.services.actors.byName(t.database.db, 'never-created')).toBeNull();
  });

  it('refuses the token of a suspended actor', async () => {
    const actor = await t.services.actors.create(t.database.db, {
      name: 'suspendedTown',
      type: 'municipality',
      municipalityCode: '141046',
    });
    const { token } = await t.services.actors.createToken(t.database.db, actor.id);
    expect(await whoami(`Bearer ${token}`)).toEqual({ status: 200, code: undefined });
    // Straight into the table, as another process (or psql) would: the trigger advances the
    // `auth` change epoch and the serving process drops its cached authentication at its next
    // poll of the epochs (every 50 ms), done here at once.
    await t.database.db.query("UPDATE actors SET status = 'suspended' WHERE id = $1", [actor.id]);
    await t.services.changes.poll();
    expect(await whoami(`Bearer ${token}`)).toEqual({ status: 401, code: 'auth.token-invalid' });
  });
});

/**
 * No route registered so far lets a prefecture act for a municipality, so the edge's scope
 * check is exercised for prefectures on probe routes of a separately built edge that shares
 * the test database, actor store and audit log.
 */
describe('scope enforcement on the edge', () => {
  let t: TestApp;
  let probe: App;
  const edgeDeps = (): EdgeDeps => ({
    db: t.database.db,
    actors: t.services.actors,
    audit: t.services.audit,
    logLevel: 'silent',
    bodyLimitBytes: 4096,
    publicUrl: 'http://127.0.0.1:0',
    version: 'test',
  });
  beforeAll(async () => {
    t = await createTestApp();
    probe = await createEdge(edgeDeps());
    const grants = ['prefecture', 'municipality'] as const;
    probe.get(
      '/probe/municipalities/:municipalityCode',
      {
        config: {
          access: {
            grants,
            scope: (r) => ({
              municipalityCode: (r.params as { municipalityCode: string }).municipalityCode,
            }),
          },
        },
        schema: { params: Type.Object({ municipalityCode: Type.String() }) },
      },
      async () => ({ ok: true }),
    );
    probe.post(
      '/probe/prefecture-requests',
      {
        config: {
          access: {
            grants,
            scope: (r) => ({
              prefectureCode: (r.body as { prefectureCode: string }).prefectureCode,
            }),
          },
        },
        schema: { body: Type.Object({ prefectureCode: Type.String() }) },
      },
      async () => ({ ok: true }),
    );
    await probe.ready();
  });
  afterAll(async () => {
    await probe.close();
    await t.close();
  });

  it('refuses to register a route without an access rule', async () => {
    const other = await createEdge({ ...edgeDeps(), logLevel: 'silent' });
    try {
      expect(() => other.get('/probe/unguarded', async () => ({}))).toThrow(
        /GET \/probe\/unguarded declares no access rule/,
      );
    } finally {
      await other.close();
    }
  });

  async function call(actor: string, url: string, body?: Record<string, unknown>) {
    const res = await probe.inject({
      method: body ? 'POST' : 'GET',
      url,
      headers: t.auth(actor),
      ...(body ? { payload: body } : {}),
    });
    const json = res.json<{ code?: string; requestId?: string }>();
    if (res.statusCode === 403) {
      expect(res.headers['content-type']).toMatch(PROBLEM_JSON);
      expect(json.requestId).toBe(res.headers['x-request-id']);
      const audit = await t.database.db.query<{ outcome: string; actor_name: string }>(
        'SELECT outcome, actor_name FROM audit_log WHERE request_id = $1',
        [json.requestId],
      );
      expect(audit.rows).toEqual([{ outcome: 'denied', actor_name: actor }]);
    }
    return res.statusCode === 403 ? `403 ${json.code}` : String(res.statusCode);
  }

  it('lets a prefecture act only for municipalities inside it', async () => {
    const m = (code: string) => `/probe/municipalities/${code}`;
    expect(await call('prefecture', m('131016'))).toBe('200');
    expect(await call('prefecture', m('141046'))).toBe('403 auth.other-prefecture');
    expect(await call('prefecture2', m('141046'))).toBe('200');
    expect(await call('prefecture2', m('131016'))).toBe('403 auth.other-prefecture');
  });

  it('lets a municipality act only for itself', async () => {
    const m = (code: string) => `/probe/municipalities/${code}`;
    expect(await call('municipality', m('131016'))).toBe('200');
    expect(await call('municipality', m('141046'))).toBe('403 auth.other-municipality');
    // Same prefecture, different municipality (千代田区 vs 中央区): still refused.
    expect(await call('municipality', m('131024'))).toBe('403 auth.other-municipality');
    expect(await call('municipality2', m('131016'))).toBe('403 auth.other-municipality');
  });

  it('reads the scope from the validated body as well', async () => {
    const url = '/probe/prefecture-requests';
    expect(await call('prefecture', url, { prefectureCode: '13' })).toBe('200');
    expect(await call('prefecture', url, { prefectureCode: '14' })).toBe(
      '403 auth.other-prefecture',
    );
    expect(await call('municipality', url, { prefectureCode: '13' })).toBe('200');
    expect(await call('municipality', url, { prefectureCode: '14' })).toBe(
      '403 auth.other-prefecture',
    );
    expect(await call('municipality2', url, { prefectureCode: '13' })).toBe(
      '403 auth.other-prefecture',
    );
  });
});
