import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServices } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { FakeClock } from '../src/platform/clock.ts';
import { initialise } from '../src/platform/install.ts';
import { MY_NUMBER_KEY_LABEL } from '../src/numbering/numbering.service.ts';
import { createTestDatabase, type TestDatabase } from './support/database.ts';

describe('kiban init: master key and agency keys', () => {
  let t: TestDatabase;
  let dir: string;
  beforeAll(async () => {
    t = await createTestDatabase();
    dir = mkdtempSync(path.join(tmpdir(), 'kiban-init-'));
  });
  afterAll(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const run = (env: Record<string, string> = {}) => {
    const config = loadConfig({ KIBAN_LOG_LEVEL: 'silent', ...env }, { data: dir });
    const services = buildServices({ config, db: t.db, clock: new FakeClock() });
    return initialise(t.db, services, { demo: false, dataDir: dir, baseUrl: config.publicUrl });
  };

  it('creates a 0600 master key file, the My Number key and the JPKI CAs, once', async () => {
    const first = await run();
    expect(first.masterKeyCreated).toBe(true);
    expect(first.keysCreated).toEqual([MY_NUMBER_KEY_LABEL, 'jpki/sign-ca/1', 'jpki/auth-ca/1']);
    const cas = await t.db.query<{ kind: string; generation: number }>(
      'SELECT kind, generation FROM jpki_cas ORDER BY kind',
    );
    expect(cas.rows).toEqual([
      { kind: 'auth', generation: 1 },
      { kind: 'sign', generation: 1 },
    ]);
    expect(statSync(path.join(dir, 'master.key')).mode & 0o777).toBe(0o600);
    const second = await run();
    expect(second.masterKeyCreated).toBe(false);
    expect(second.keysCreated).toEqual([]);
  });

  it('refuses to make a new master key when the old one is lost but keys exist', async () => {
    rmSync(path.join(dir, 'master.key'));
    await expect(run()).rejects.toThrow(/is missing, but the key store holds 5 key/);
  });

  it('names both master keys when the wrong one is given', async () => {
    const wrong = Buffer.alloc(32, 9).toString('base64');
    const config = loadConfig({ KIBAN_MASTER_KEY: wrong }, { data: dir });
    const services = buildServices({ config, db: t.db });
    await expect(services.keys().secretKey(t.db, MY_NUMBER_KEY_LABEL)).rejects.toThrow(
      /wrapped with master key [0-9a-f]{16}, this installation has [0-9a-f]{16}/,
    );
  });
});
