import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, databaseTarget, describeDatabase, loadConfig } from './config.ts';

/** The problems a configuration is refused with (fails the test if it is accepted). */
function problemsOf(...args: Parameters<typeof loadConfig>): string[] {
  try {
    loadConfig(...args);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('configuration was accepted');
}

describe('loadConfig', () => {
  it('has safe defaults: ./data, loopback, port 8080, embedded PGlite', () => {
    const c = loadConfig({});
    expect(c).toEqual({
      dataDir: path.resolve('./data'),
      databaseUrl: null,
      host: '127.0.0.1',
      port: 8080,
      publicUrl: 'http://127.0.0.1:8080',
      logLevel: 'info',
      bodyLimitBytes: 1024 * 1024,
      outboxIdleMs: 500,
      masterKey: { env: null, file: path.join(path.resolve('./data'), 'master.key') },
      residentCodePoolRefill: 200,
      jpki: {
        organisation: 'Kiban Test Agency for Local Authority Systems',
        organisationJa: 'キバン試験用公的個人認証機関',
        policies: {
          signCard: '2.999.8.5.1.1.20',
          authCard: '2.999.8.5.1.3.30',
          signMobile: '2.999.8.5.1.2.20',
          authMobile: '2.999.8.5.1.4.30',
        },
        cpsUrl: 'http://127.0.0.1:8080/jpki/cps',
        crlIntervalHours: 24,
        crlValidityHours: 48,
        ocspValidityMinutes: 240,
        retentionYears: 10,
        caValidityYears: 10,
      },
      pkcs11: null,
    });
    expect(path.isAbsolute(c.dataDir)).toBe(true);
    expect(databaseTarget(c)).toEqual({
      engine: 'pglite',
      dataDir: path.join(path.resolve('./data'), 'pglite'),
    });
    expect(describeDatabase(c)).toBe(`PGlite (embedded) in ${path.join(c.dataDir, 'pglite')}`);
  });

  it('takes the master key from KIBAN_MASTER_KEY or a file beside the data', () => {
    const key = Buffer.alloc(32, 1).toString('base64');
    expect(loadConfig({ KIBAN_MASTER_KEY: key }).masterKey.env).toBe(key);
    expect(loadConfig({ KIBAN_DATA_DIR: '/srv/kiban' }).masterKey.file).toBe(
      '/srv/kiban/master.key',
    );
    expect(loadConfig({ KIBAN_MASTER_KEY_FILE: '/etc/kiban/mk' }).masterKey.file).toBe(
      '/etc/kiban/mk',
    );
    expect(() => loadConfig({ KIBAN_MASTER_KEY: 'c2hvcnQ=' })).toThrow(/exactly 32 bytes/);
  });

  it('checks the JPKI settings and the PKCS#11 token settings', () => {
    expect(problemsOf({ KIBAN_JPKI_POLICY_SIGN_CARD: '1.2.x' })).toEqual([
      'KIBAN_JPKI_POLICY_SIGN_CARD must be a dotted OID',
    ]);
    expect(problemsOf({ KIBAN_CRL_INTERVAL_HOURS: '48', KIBAN_CRL_VALIDITY_HOURS: '24' })).toEqual([
      'KIBAN_CRL_VALIDITY_HOURS must be at least KIBAN_CRL_INTERVAL_HOURS',
    ]);
    expect(problemsOf({ KIBAN_JPKI_ORGANISATION: '機構' })).toEqual([
      'KIBAN_JPKI_ORGANISATION must use PrintableString characters only',
    ]);
    expect(problemsOf({ KIBAN_PKCS11_MODULE: '/usr/lib/softhsm/libsofthsm2.so' })).toEqual([
      'KIBAN_PKCS11_TOKEN (the token label) is required with KIBAN_PKCS11_MODULE',
      'KIBAN_PKCS11_PIN or KIBAN_PKCS11_PIN_FILE is required with KIBAN_PKCS11_MODULE',
    ]);
    expect(
      loadConfig({
        KIBAN_PKCS11_MODULE: '/usr/lib/softhsm/libsofthsm2.so',
        KIBAN_PKCS11_TOKEN: 'kiban',
        KIBAN_PKCS11_PIN: '1234',
      }).pkcs11,
    ).toEqual({ module: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 'kiban', pin: '1234' });
  });

  it('does not read process.env when given an environment', () => {
    const saved = process.env['KIBAN_PORT'];
    process.env['KIBAN_PORT'] = '9999';
    try {
      expect(loadConfig({}).port).toBe(8080);
      expect(loadConfig().port).toBe(9999);
    } finally {
      if (saved === undefined) delete process.env['KIBAN_PORT'];
      else process.env['KIBAN_PORT'] = saved;
    }
  });

  it('takes the data directory from --data over KIBAN_DATA_DIR over the default', () => {
    expect(loadConfig({ KIBAN_DATA_DIR: '/srv/kiban' }).dataDir).toBe('/srv/kiban');
    expect(loadConfig({ KIBAN_DATA_DIR: 'rel/dir' }).dataDir).toBe(path.resolve('rel/dir'));
    expect(loadConfig({ KIBAN_DATA_DIR: '/srv/kiban' }, { data: '/flag/dir' }).dataDir).toBe(
      '/flag/dir',
    );
    expect(loadConfig({}, { data: './flagged' }).dataDir).toBe(path.resolve('./flagged'));
    expect(loadConfig({ KIBAN_DATA_DIR: '/srv/kiban' }, { data: undefined }).dataDir).toBe(
      '/srv/kiban',
    );
    // Set but empty (as env files often leave it) means "not set", never the current directory.
    expect(loadConfig({ KIBAN_DATA_DIR: '' }).dataDir).toBe(path.resolve('./data'));
  });

  it('takes port and host from flags over the environment', () => {
    const c = loadConfig(
      { KIBAN_PORT: '9000', KIBAN_HOST: '0.0.0.0' },
      { port: '9100', host: 'localhost' },
    );
    expect(c).toMatchObject({
      port: 9100,
      host: 'localhost',
      publicUrl: 'http://localhost:9100',
    });
    expect(loadConfig({ KIBAN_PORT: '9000' })).toMatchObject({
      port: 9000,
      publicUrl: 'http://127.0.0.1:9000',
    });
    expect(loadConfig({ KIBAN_HOST: '::1' }).publicUrl).toBe('http://[::1]:8080');
    expect(loadConfig({ KIBAN_PUBLIC_URL: 'https://kiban.example.jp/' }).publicUrl).toBe(
      'https://kiban.example.jp',
    );
  });

  it('switches to PostgreSQL with DATABASE_URL and never prints its password', () => {
    for (const url of [
      'postgres://kiban:s3cr%21t-pw@db.example.jp:6543/kiban?sslmode=require',
      'postgresql://kiban:s3cr%21t-pw@db.example.jp/kiban',
    ]) {
      const c = loadConfig({ DATABASE_URL: url });
      expect(c.databaseUrl).toBe(url);
      expect(databaseTarget(c)).toEqual({ engine: 'postgres', url });
      const text = describeDatabase(c);
      expect(text).toMatch(/^PostgreSQL at db\.example\.jp:(6543|5432)\/kiban$/);
      expect(text).not.toMatch(/s3cr|kiban:|sslmode/);
    }
    // An empty DATABASE_URL means "not set".
    expect(loadConfig({ DATABASE_URL: '' }).databaseUrl).toBeNull();
  });

  it.each([
    ['abc', /whole number, got "abc"/],
    ['70000', /between 0 and 65535, got 70000/],
    ['-1', /whole number/],
    ['80.5', /whole number/],
  ])('refuses the port %s', (port, message) => {
    const problems = problemsOf({ KIBAN_PORT: port });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^port \(--port \/ KIBAN_PORT\)/);
    expect(problems[0]).toMatch(message);
    // The same check applies to the flag.
    expect(problemsOf({}, { port })).toEqual(problems);
  });

  it('refuses an unknown log level', () => {
    expect(problemsOf({ KIBAN_LOG_LEVEL: 'verbose' })).toEqual([
      expect.stringMatching(/^KIBAN_LOG_LEVEL must be one of fatal, error, .*silent$/),
    ]);
    expect(loadConfig({ KIBAN_LOG_LEVEL: 'debug' }).logLevel).toBe('debug');
  });

  it('refuses a DATABASE_URL that is not postgres:// or not a URL', () => {
    expect(problemsOf({ DATABASE_URL: 'mysql://u:p@h/db' })).toEqual([
      expect.stringMatching(/DATABASE_URL must start with postgres:\/\//),
    ]);
    expect(problemsOf({ DATABASE_URL: 'not a url' })).toEqual([
      expect.stringMatching(/DATABASE_URL is not a valid URL/),
    ]);
  });

  it('refuses out-of-range limits, a bad host and a bad public URL', () => {
    expect(problemsOf({ KIBAN_BODY_LIMIT: '10' })[0]).toMatch(/KIBAN_BODY_LIMIT/);
    expect(problemsOf({ KIBAN_OUTBOX_IDLE_MS: '1000000' })[0]).toMatch(/KIBAN_OUTBOX_IDLE_MS/);
    expect(problemsOf({ KIBAN_HOST: 'bad host' })[0]).toMatch(/KIBAN_HOST/);
    expect(problemsOf({ KIBAN_PUBLIC_URL: 'ftp://x' })[0]).toMatch(/http\(s\)/);
    expect(problemsOf({ KIBAN_PUBLIC_URL: 'nope' })[0]).toMatch(/KIBAN_PUBLIC_URL/);
  });

  it('reports every problem together in one ConfigError', () => {
    let caught: unknown;
    try {
      loadConfig({
        KIBAN_PORT: 'abc',
        KIBAN_LOG_LEVEL: 'loud',
        DATABASE_URL: 'mysql://u:p@h/db',
        KIBAN_BODY_LIMIT: 'x',
      });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const err = caught as ConfigError;
    expect(err.name).toBe('ConfigError');
    expect(err.problems).toHaveLength(4);
    expect(err.problems.join('\n')).toMatch(/port/);
    expect(err.problems.join('\n')).toMatch(/KIBAN_LOG_LEVEL/);
    expect(err.problems.join('\n')).toMatch(/DATABASE_URL/);
    expect(err.problems.join('\n')).toMatch(/KIBAN_BODY_LIMIT/);
    for (const p of err.problems) expect(err.message).toContain(p);
    expect(err.message).not.toContain('u:p@');
  });

  it('names only the real cause of an out-of-range port', () => {
    // Port 70000 must not also be blamed on a KIBAN_PUBLIC_URL that was never set.
    expect(problemsOf({ KIBAN_PORT: '70000', KIBAN_LOG_LEVEL: 'loud' })).toEqual([
      expect.stringMatching(/^port/),
      expect.stringMatching(/^KIBAN_LOG_LEVEL/),
    ]);
  });
});
