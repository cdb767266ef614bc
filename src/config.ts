/**
 * One typed, validated configuration object, read from the environment and command-line
 * flags (flags win). Defaults are safe: embedded PGlite in ./data, listening on loopback only.
 * An invalid value stops the program with a message naming every problem.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { DatabaseTarget } from './platform/db.ts';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface Config {
  /** Data directory: the PGlite database and files such as demo-credentials.json. */
  dataDir: string;
  /** `postgres://…` to use a PostgreSQL server; null for embedded PGlite in dataDir. */
  databaseUrl: string | null;
  host: string;
  port: number;
  /** Base URL clients use to reach this service (printed, written into demo credentials). */
  publicUrl: string;
  logLevel: LogLevel;
  /** Largest request body accepted on ordinary routes, in bytes. */
  bodyLimitBytes: number;
  /** How long the outbox runner sleeps when there is nothing to deliver. */
  outboxIdleMs: number;
  /**
   * The master key that wraps every key in the key store (CA keys, the My Number key):
   * base64 of 32 bytes in KIBAN_MASTER_KEY, or else the file KIBAN_MASTER_KEY_FILE
   * (default <data dir>/master.key, mode 0600, created by `kiban init`).
   */
  masterKey: { env: string | null; file: string };
  /** Codes each municipality's resident-code pool holds after a refill. */
  residentCodePoolRefill: number;
  jpki: JpkiConfig;
  /**
   * A PKCS#11 token (HSM) for the CA keys (発行者署名符号); null keeps them in the software
   * key store, wrapped under the master key.
   */
  pkcs11: { module: string; tokenLabel: string; pin: string } | null;
}

/** 公的個人認証サービス settings. */
export interface JpkiConfig {
  /** The agency's name in the CA DN's last OU (real: "Japan Agency for Local Authority Information Systems"). */
  organisation: string;
  /** The agency's Japanese name in the CA's directoryName alternative name. */
  organisationJa: string;
  /**
   * Certificate policy OIDs, per kind and medium. The defaults are under the 2.999 example
   * arc so that nothing this installation issues can pass for a real JPKI certificate.
   */
  policies: { signCard: string; authCard: string; signMobile: string; authMobile: string };
  /** CPS qualifier URI written into certificate policies. */
  cpsUrl: string;
  /** How often the revocation lists (失効情報ファイル) are published. */
  crlIntervalHours: number;
  /** nextUpdate − thisUpdate of a published CRL (≥ the interval, so one missed run is harmless). */
  crlValidityHours: number;
  /** Lifetime of a pre-signed OCSP response; it is re-signed at half-life and on any change. */
  ocspValidityMinutes: number;
  /** Retention (保存期間, set by 政令) of issuance and revocation records and of CRLs. */
  retentionYears: number;
  /** Lifetime of a new CA generation's certificate. */
  caValidityYears: number;
}

/** Values given on the command line; undefined means "not given". */
export interface ConfigFlags {
  data?: string | undefined;
  port?: string | undefined;
  host?: string | undefined;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

function intIn(
  problems: string[],
  name: string,
  raw: string | undefined,
  dflt: number,
  min: number,
  max: number,
): number {
  if (raw === undefined || raw === '') return dflt;
  if (!/^[0-9]+$/.test(raw)) {
    problems.push(`${name} must be a whole number, got "${raw}"`);
    return dflt;
  }
  const n = Number(raw);
  if (n < min || n > max) {
    problems.push(`${name} must be between ${min} and ${max}, got ${n}`);
    // Not used further (e.g. in the default public URL), so it causes no second, wrong problem.
    return dflt;
  }
  return n;
}

export function loadConfig(
  env: Record<string, string | undefined> = process.env,
  flags: ConfigFlags = {},
): Config {
  const problems: string[] = [];
  // An empty value means "not set" (path.resolve('') would be the current directory).
  const dataDir = path.resolve(flags.data || env['KIBAN_DATA_DIR'] || './data');

  let databaseUrl: string | null = env['DATABASE_URL'] || null;
  if (databaseUrl) {
    try {
      const u = new URL(databaseUrl);
      if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
        problems.push('DATABASE_URL must start with postgres:// or postgresql://');
      }
    } catch {
      problems.push('DATABASE_URL is not a valid URL');
      databaseUrl = null;
    }
  }

  const host = flags.host ?? env['KIBAN_HOST'] ?? '127.0.0.1';
  if (!/^[A-Za-z0-9.:[\]-]+$/.test(host)) problems.push(`KIBAN_HOST is not a host name: "${host}"`);
  const port = intIn(
    problems,
    'port (--port / KIBAN_PORT)',
    flags.port ?? env['KIBAN_PORT'],
    8080,
    0,
    65535,
  );

  const rawLevel = env['KIBAN_LOG_LEVEL'] ?? 'info';
  const logLevel = (LOG_LEVELS as readonly string[]).includes(rawLevel)
    ? (rawLevel as LogLevel)
    : (problems.push(`KIBAN_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`), 'info' as const);

  const bodyLimitBytes = intIn(
    problems,
    'KIBAN_BODY_LIMIT',
    env['KIBAN_BODY_LIMIT'],
    1024 * 1024,
    1024,
    64 * 1024 * 1024,
  );
  const outboxIdleMs = intIn(
    problems,
    'KIBAN_OUTBOX_IDLE_MS',
    env['KIBAN_OUTBOX_IDLE_MS'],
    500,
    10,
    60_000,
  );

  const displayHost = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const publicUrl = (env['KIBAN_PUBLIC_URL'] ?? `http://${displayHost}:${port}`).replace(
    /\/+$/,
    '',
  );
  try {
    const u = new URL(publicUrl);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      problems.push('KIBAN_PUBLIC_URL must be an http(s) URL');
    }
  } catch {
    problems.push('KIBAN_PUBLIC_URL is not a valid URL');
  }

  const masterKeyEnv = env['KIBAN_MASTER_KEY'] || null;
  if (masterKeyEnv !== null && Buffer.from(masterKeyEnv, 'base64').length !== 32) {
    problems.push('KIBAN_MASTER_KEY must be base64 of exactly 32 bytes');
  }
  const masterKeyFile = path.resolve(
    env['KIBAN_MASTER_KEY_FILE'] || path.join(dataDir, 'master.key'),
  );
  const residentCodePoolRefill = intIn(
    problems,
    'KIBAN_RESIDENT_CODE_POOL_REFILL',
    env['KIBAN_RESIDENT_CODE_POOL_REFILL'],
    200,
    1,
    1_000_000,
  );

  const oidOf = (name: string, dflt: string): string => {
    const v = env[name] || dflt;
    if (!/^[0-2](\.(0|[1-9][0-9]*))+$/.test(v)) problems.push(`${name} must be a dotted OID`);
    return v;
  };
  const jpki: JpkiConfig = {
    organisation: env['KIBAN_JPKI_ORGANISATION'] || 'Kiban Test Agency for Local Authority Systems',
    organisationJa: env['KIBAN_JPKI_ORGANISATION_JA'] || 'キバン試験用公的個人認証機関',
    policies: {
      signCard: oidOf('KIBAN_JPKI_POLICY_SIGN_CARD', '2.999.8.5.1.1.20'),
      authCard: oidOf('KIBAN_JPKI_POLICY_AUTH_CARD', '2.999.8.5.1.3.30'),
      signMobile: oidOf('KIBAN_JPKI_POLICY_SIGN_MOBILE', '2.999.8.5.1.2.20'),
      authMobile: oidOf('KIBAN_JPKI_POLICY_AUTH_MOBILE', '2.999.8.5.1.4.30'),
    },
    cpsUrl: env['KIBAN_JPKI_CPS_URL'] || `${publicUrl}/jpki/cps`,
    crlIntervalHours: intIn(
      problems,
      'KIBAN_CRL_INTERVAL_HOURS',
      env['KIBAN_CRL_INTERVAL_HOURS'],
      24,
      1,
      24 * 7,
    ),
    crlValidityHours: intIn(
      problems,
      'KIBAN_CRL_VALIDITY_HOURS',
      env['KIBAN_CRL_VALIDITY_HOURS'],
      48,
      1,
      24 * 31,
    ),
    ocspValidityMinutes: intIn(
      problems,
      'KIBAN_OCSP_VALIDITY_MINUTES',
      env['KIBAN_OCSP_VALIDITY_MINUTES'],
      240,
      2,
      7 * 24 * 60,
    ),
    retentionYears: intIn(
      problems,
      'KIBAN_JPKI_RETENTION_YEARS',
      env['KIBAN_JPKI_RETENTION_YEARS'],
      10,
      1,
      100,
    ),
    caValidityYears: intIn(
      problems,
      'KIBAN_CA_VALIDITY_YEARS',
      env['KIBAN_CA_VALIDITY_YEARS'],
      10,
      1,
      30,
    ),
  };
  if (jpki.crlValidityHours < jpki.crlIntervalHours) {
    problems.push('KIBAN_CRL_VALIDITY_HOURS must be at least KIBAN_CRL_INTERVAL_HOURS');
  }
  if (
    !/^[ -~]+$/.test(jpki.organisation) ||
    !/^[A-Za-z0-9 '()+,\-./:=?]+$/.test(jpki.organisation)
  ) {
    problems.push('KIBAN_JPKI_ORGANISATION must use PrintableString characters only');
  }
  let pkcs11: Config['pkcs11'] = null;
  const pkcs11Module = env['KIBAN_PKCS11_MODULE'];
  if (pkcs11Module) {
    const tokenLabel = env['KIBAN_PKCS11_TOKEN'] ?? '';
    let pin = env['KIBAN_PKCS11_PIN'] ?? '';
    const pinFile = env['KIBAN_PKCS11_PIN_FILE'];
    if (!pin && pinFile) {
      try {
        pin = readFileSync(pinFile, 'utf8').trim();
      } catch {
        problems.push('KIBAN_PKCS11_PIN_FILE cannot be read');
      }
    }
    if (!tokenLabel)
      problems.push('KIBAN_PKCS11_TOKEN (the token label) is required with KIBAN_PKCS11_MODULE');
    if (!pin)
      problems.push(
        'KIBAN_PKCS11_PIN or KIBAN_PKCS11_PIN_FILE is required with KIBAN_PKCS11_MODULE',
      );
    pkcs11 = { module: pkcs11Module, tokenLabel, pin };
  }

  if (problems.length > 0) throw new ConfigError(problems);
  return {
    dataDir,
    databaseUrl,
    host,
    port,
    publicUrl,
    logLevel,
    bodyLimitBytes,
    outboxIdleMs,
    masterKey: { env: masterKeyEnv, file: masterKeyFile },
    residentCodePoolRefill,
    jpki,
    pkcs11,
  };
}

export function databaseTarget(config: Config): DatabaseTarget {
  return config.databaseUrl
    ? { engine: 'postgres', url: config.databaseUrl }
    : { engine: 'pglite', dataDir: path.join(config.dataDir, 'pglite') };
}

/** Where the database lives, for messages (never prints a password). */
export function describeDatabase(config: Config): string {
  if (!config.databaseUrl) return `PGlite (embedded) in ${path.join(config.dataDir, 'pglite')}`;
  const u = new URL(config.databaseUrl);
  return `PostgreSQL at ${u.hostname}:${u.port || 5432}${u.pathname}`;
}
