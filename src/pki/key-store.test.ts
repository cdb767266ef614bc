import {
  constants,
  createCipheriv,
  createPublicKey,
  type KeyObject,
  randomBytes,
  verify,
} from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/support/database.ts';
import { createSoftHsmToken, type SoftHsmToken } from '../../test/support/softhsm.ts';
import { FakeClock } from '../platform/clock.ts';
import { AppError } from '../platform/errors.ts';
import {
  type KeyPairAlgorithm,
  KeyStore,
  KeyUnwrapError,
  type SignatureHash,
} from './key-store.ts';
import { masterKeyFromBytes } from './master-key.ts';
import { Pkcs11Token } from './pkcs11.ts';

let t: TestDatabase;
const clock = new FakeClock('2026-04-01T00:00:00Z');
const masterKey = masterKeyFromBytes(randomBytes(32));
const store = new KeyStore(masterKey, clock);

beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => t?.close());

const createSecret = (label: string, purpose = 'my-number-generation') =>
  t.db.transaction((tx) => store.createSymmetricKey(tx, { label, purpose }));

const createPair = (label: string, algorithm: KeyPairAlgorithm, purpose = '発行者署名符号') =>
  t.db.transaction((tx) => store.createKeyPair(tx, { label, purpose, algorithm }));

type StoredRow = Record<string, unknown> & {
  wrapped_key: Uint8Array;
  public_key: Uint8Array | null;
};
const rowOf = async (label: string): Promise<StoredRow> => {
  const row = (await t.db.query<StoredRow>('SELECT * FROM key_store WHERE label = $1', [label]))
    .rows[0];
  if (!row) throw new Error(`no row ${label}`);
  return row;
};

/** Awaits `p` and returns what it threw. */
async function thrown(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

async function expectAppError(p: Promise<unknown>, kind: string, code: string): Promise<void> {
  const err = await thrown(p);
  expect(err).toBeInstanceOf(AppError);
  expect((err as AppError).kind).toBe(kind);
  expect((err as AppError).code).toBe(code);
}

const rawOf = (key: KeyObject): Buffer => key.export();

const ecb = (key: KeyObject | Buffer, block: Buffer): Buffer => {
  const c = createCipheriv('aes-256-ecb', key, null);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(block), c.final()]);
};

describe('secret keys', () => {
  it('creates an AES-256 key whose KeyObject encrypts like the raw key', async () => {
    const created = await createSecret('numbering/ff1-2026');
    expect(created).toMatchObject({
      label: 'numbering/ff1-2026',
      algorithm: 'aes-256',
      purpose: 'my-number-generation',
      publicKey: null,
      kekId: masterKey.id,
    });
    expect(created.createdAt.toISOString()).toBe('2026-04-01T00:00:00.000Z');

    const key = await store.secretKey(t.db, 'numbering/ff1-2026');
    expect(key.type).toBe('secret');
    expect(key.symmetricKeySize).toBe(32);
    const raw = rawOf(key);
    const block = randomBytes(16);
    expect(ecb(key, block).equals(ecb(raw, block))).toBe(true);
  });

  it('never stores the key in clear, in any column', async () => {
    await createSecret('scan/secret');
    const raw = rawOf(await store.secretKey(t.db, 'scan/secret'));
    const row = await rowOf('scan/secret');
    for (const [column, value] of Object.entries(row)) {
      if (value instanceof Uint8Array) {
        expect(Buffer.from(value).indexOf(raw), column).toBe(-1);
      } else {
        const text = String(value instanceof Date ? value.toISOString() : value);
        expect(text, column).not.toContain(raw.toString('hex'));
        expect(text, column).not.toContain(raw.toString('base64'));
      }
    }
    expect(Buffer.from(row.wrapped_key)).toHaveLength(32);
    // The whole row as PostgreSQL prints it (bytea as hex).
    const text = (
      await t.db.query<{ t: string }>('SELECT k::text AS t FROM key_store k WHERE label = $1', [
        'scan/secret',
      ])
    ).rows[0]?.t;
    expect(text).toBeDefined();
    expect(text).not.toContain(raw.toString('hex'));
  });

  it('caches the unwrapped key per label', async () => {
    await createSecret('cache/secret');
    const a = await store.secretKey(t.db, 'cache/secret');
    const b = await store.secretKey(t.db, 'cache/secret');
    expect(b).toBe(a);
    // A second store with the same master key unwraps the same key.
    const other = await new KeyStore(masterKey, clock).secretKey(t.db, 'cache/secret');
    expect(rawOf(other).equals(rawOf(a))).toBe(true);
  });

  it('does not let a key read in a rolled-back transaction outlive it', async () => {
    const label = 'rollback/secret';
    const inTx = await thrown(
      t.db.transaction(async (tx) => {
        await store.createSymmetricKey(tx, { label, purpose: 'test' });
        const key = await store.secretKey(tx, label);
        throw Object.assign(new Error('roll back'), { key });
      }),
    );
    const rolledBack = (inTx as { key: KeyObject }).key;
    await expectAppError(store.secretKey(t.db, label), 'notFound', 'key.not-found');
    await createSecret(label);
    const now = await store.secretKey(t.db, label);
    expect(rawOf(now).equals(rawOf(rolledBack))).toBe(false);
  });

  it('refuses a second key under the same label', async () => {
    await createSecret('dup/secret');
    await expectAppError(createSecret('dup/secret'), 'conflict', 'key.exists');
    await expectAppError(createPair('dup/secret', 'ec-p256'), 'conflict', 'key.exists');
  });

  it('lets exactly one of two concurrent creators win', async () => {
    const results = await Promise.allSettled([
      createSecret('race/secret'),
      createSecret('race/secret'),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.find((r) => r.status === 'rejected');
    expect(rejected?.reason).toBeInstanceOf(AppError);
    expect((rejected?.reason as AppError).code).toBe('key.exists');
  });

  it('validates labels and purposes', async () => {
    await expectAppError(createSecret('Upper/Case'), 'badRequest', 'key.invalid-label');
    await expectAppError(createSecret('/leading-slash'), 'badRequest', 'key.invalid-label');
    await expectAppError(createSecret('a'.repeat(129)), 'badRequest', 'key.invalid-label');
    await expectAppError(createSecret('ok', ''), 'badRequest', 'key.invalid-purpose');
    await expectAppError(createSecret('ok', 'a\0b'), 'badRequest', 'key.invalid-purpose');
    expect(await store.exists(t.db, 'ok')).toBe(false);
  });
});

describe('key pairs', () => {
  const verifies = (
    spki: Uint8Array,
    algorithm: KeyPairAlgorithm,
    hash: SignatureHash,
    data: Buffer,
    signature: Buffer,
  ): boolean => {
    const key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
    return algorithm === 'ec-p256'
      ? verify(hash, data, { key, dsaEncoding: 'der' }, signature)
      : verify(hash, data, { key, padding: constants.RSA_PKCS1_PADDING }, signature);
  };

  for (const algorithm of ['rsa-2048', 'ec-p256', 'rsa-3072'] as const) {
    it(`${algorithm}: signatures verify against the stored SubjectPublicKeyInfo`, async () => {
      const label = `ca/${algorithm}`;
      const spki = await createPair(label, algorithm);
      const row = await rowOf(label);
      expect(row['algorithm']).toBe(algorithm);
      expect(row.public_key && Buffer.from(row.public_key).equals(spki)).toBe(true);

      const signer = await store.signer(t.db, label);
      expect(signer.label).toBe(label);
      expect(signer.algorithm).toBe(algorithm);
      expect(signer.publicKey.export({ type: 'spki', format: 'der' }).equals(spki)).toBe(true);
      expect(Object.values(signer).some((v) => (v as KeyObject)?.type === 'private')).toBe(false);

      const data = Buffer.from('tbsCertificate for 住民基本台帳カード');
      for (const hash of ['sha256', 'sha384'] as const) {
        const signature = await signer.sign(data, hash);
        expect(verifies(row.public_key ?? new Uint8Array(), algorithm, hash, data, signature)).toBe(
          true,
        );
        expect(verifies(spki, algorithm, hash, Buffer.from('other data'), signature)).toBe(false);
        if (algorithm === 'ec-p256') {
          expect(signature[0]).toBe(0x30); // DER SEQUENCE, not IEEE P1363 r||s
        } else {
          // PKCS#1 v1.5 is deterministic (PSS would not be) and one modulus long.
          expect((await signer.sign(data, hash)).equals(signature)).toBe(true);
          expect(signature).toHaveLength(algorithm === 'rsa-2048' ? 256 : 384);
        }
      }

      // The private key is wrapped: its modulus / public point is not in wrapped_key in clear.
      const jwk = signer.publicKey.export({ format: 'jwk' });
      const marker = Buffer.from((jwk.n ?? jwk.x) as string, 'base64url');
      expect(Buffer.from(row.wrapped_key).indexOf(marker)).toBe(-1);
    });
  }

  it('signs concurrently on the threadpool, every signature valid', async () => {
    const spki = await createPair('ca/concurrent', 'rsa-2048');
    const signer = await store.signer(t.db, 'ca/concurrent');
    const messages = Array.from({ length: 32 }, (_, i) => Buffer.from(`tbs ${i}`));
    const signatures = await Promise.all(messages.map((m) => signer.sign(m, 'sha256')));
    signatures.forEach((signature, i) =>
      expect(verifies(spki, 'rsa-2048', 'sha256', messages[i] as Buffer, signature)).toBe(true),
    );
    await expect(signer.sign(Buffer.from('x'), 'md5' as SignatureHash)).rejects.toThrow(
      'unsupported signature hash md5',
    );
  });

  it('keeps secret keys and key pairs apart', async () => {
    await createSecret('kind/secret');
    await createPair('kind/pair', 'ec-p256');
    await expectAppError(store.signer(t.db, 'kind/secret'), 'unprocessable', 'key.wrong-algorithm');
    await expectAppError(
      store.secretKey(t.db, 'kind/pair'),
      'unprocessable',
      'key.wrong-algorithm',
    );
  });

  it('refuses an unknown algorithm', async () => {
    await expectAppError(
      createPair('bad/alg', 'rsa-1024' as KeyPairAlgorithm),
      'badRequest',
      'key.invalid-algorithm',
    );
  });
});

describe('lookup', () => {
  it('reports missing labels', async () => {
    expect(await store.exists(t.db, 'missing/key')).toBe(false);
    await expectAppError(store.secretKey(t.db, 'missing/key'), 'notFound', 'key.not-found');
    await expectAppError(store.signer(t.db, 'missing/key'), 'notFound', 'key.not-found');
    await expectAppError(store.describe(t.db, 'missing/key'), 'notFound', 'key.not-found');
  });

  it('describes a key without its material', async () => {
    clock.set('2026-05-01T09:00:00Z');
    const spki = await createPair('describe/pair', 'ec-p256', '発行者署名符号');
    await createSecret('describe/secret');
    clock.set('2026-04-01T00:00:00Z');
    expect(await store.exists(t.db, 'describe/pair')).toBe(true);

    const pair = await store.describe(t.db, 'describe/pair');
    expect(Object.keys(pair).sort()).toEqual(
      ['algorithm', 'backend', 'createdAt', 'kekId', 'label', 'publicKey', 'purpose'].sort(),
    );
    expect(pair).toMatchObject({
      label: 'describe/pair',
      algorithm: 'ec-p256',
      purpose: '発行者署名符号',
      kekId: masterKey.id,
      backend: 'software',
    });
    expect(pair.createdAt.toISOString()).toBe('2026-05-01T09:00:00.000Z');
    expect(pair.publicKey?.equals(spki)).toBe(true);

    const secret = await store.describe(t.db, 'describe/secret');
    expect(secret.publicKey).toBeNull();
    expect(secret.backend).toBe('software');
    const raw = rawOf(await store.secretKey(t.db, 'describe/secret'));
    const { wrapped_key } = await rowOf('describe/secret');
    const shown = JSON.stringify(secret);
    expect(shown).not.toContain(raw.toString('hex'));
    expect(shown).not.toContain(raw.toString('base64'));
    expect(shown).not.toContain(Buffer.from(wrapped_key).toString('base64'));
    expect(Object.values(secret).some((v) => v instanceof Uint8Array)).toBe(false);
  });
});

describe('unwrap failures', () => {
  it('names both master key ids when the installation has another master key', async () => {
    await createSecret('kek/secret');
    await createPair('kek/pair', 'ec-p256');
    const otherKey = masterKeyFromBytes(randomBytes(32));
    const other = new KeyStore(otherKey, clock);
    // One at a time: a second promise created up front could reject before it is awaited.
    for (const attempt of [
      () => other.secretKey(t.db, 'kek/secret'),
      () => other.signer(t.db, 'kek/pair'),
    ]) {
      const err = await thrown(attempt());
      expect(err).toBeInstanceOf(KeyUnwrapError);
      expect((err as KeyUnwrapError).reason).toBe('wrong-master-key');
      expect((err as Error).message).toMatch(
        new RegExp(
          `^key kek/(secret|pair) was wrapped with master key ${masterKey.id}, ` +
            `this installation has ${otherKey.id}$`,
        ),
      );
    }
  });

  it('detects a tampered wrapped_key, even once the key is cached', async () => {
    await createSecret('tamper/secret');
    await store.secretKey(t.db, 'tamper/secret');
    await t.db.query(
      `UPDATE key_store SET wrapped_key = set_byte(wrapped_key, 5, get_byte(wrapped_key, 5) # 1)
        WHERE label = $1`,
      ['tamper/secret'],
    );
    const err = await thrown(store.secretKey(t.db, 'tamper/secret'));
    expect(err).toBeInstanceOf(KeyUnwrapError);
    expect((err as KeyUnwrapError).reason).toBe('corrupted');
    expect((err as Error).message).toBe('key tamper/secret is corrupted or was tampered with');
  });

  it('detects a tampered private key, tag or iv', async () => {
    for (const column of ['wrapped_key', 'wrap_tag', 'wrap_iv']) {
      const label = `tamper/${column.replace('_', '-')}`;
      await createPair(label, 'ec-p256');
      await t.db.query(
        `UPDATE key_store SET ${column} = set_byte(${column}, 0, get_byte(${column}, 0) # 128)
          WHERE label = $1`,
        [label],
      );
      await expect(new KeyStore(masterKey, clock).signer(t.db, label)).rejects.toThrow(
        `key ${label} is corrupted or was tampered with`,
      );
    }
  });

  it('binds an entry to its label (AAD): a row moved or copied to another label fails', async () => {
    await createSecret('aad/original');
    const before = rawOf(await store.secretKey(t.db, 'aad/original'));

    await t.db.query(
      `INSERT INTO key_store (label, algorithm, purpose, wrapped_key, wrap_iv, wrap_tag, kek_id,
         public_key, created_at)
       SELECT 'aad/copy', algorithm, purpose, wrapped_key, wrap_iv, wrap_tag, kek_id, public_key,
         created_at FROM key_store WHERE label = 'aad/original'`,
    );
    await expect(store.secretKey(t.db, 'aad/copy')).rejects.toThrow(
      'key aad/copy is corrupted or was tampered with',
    );
    expect(rawOf(await store.secretKey(t.db, 'aad/original')).equals(before)).toBe(true);

    await t.db.query(`UPDATE key_store SET label = 'aad/moved' WHERE label = 'aad/original'`);
    await expectAppError(store.secretKey(t.db, 'aad/original'), 'notFound', 'key.not-found');
    await expect(store.secretKey(t.db, 'aad/moved')).rejects.toThrow(
      'key aad/moved is corrupted or was tampered with',
    );
  });

  it('binds an entry to its purpose', async () => {
    await createSecret('aad/purpose', 'my-number-generation');
    await t.db.query(`UPDATE key_store SET purpose = 'something-else' WHERE label = $1`, [
      'aad/purpose',
    ]);
    await expect(store.secretKey(t.db, 'aad/purpose')).rejects.toThrow(/corrupted or was tampered/);
  });

  it('refuses a public_key that is not the private key’s own', async () => {
    await createPair('swap/a', 'ec-p256');
    const other = await createPair('swap/b', 'ec-p256');
    await t.db.query('UPDATE key_store SET public_key = $2 WHERE label = $1', ['swap/a', other]);
    await expect(store.signer(t.db, 'swap/a')).rejects.toThrow(
      'key swap/a is corrupted or was tampered with',
    );
  });
});

describe('pkcs11 backend (SoftHSM2)', () => {
  let softhsm: SoftHsmToken;
  let hsm: Pkcs11Token;
  let hsmStore: KeyStore;

  beforeAll(() => {
    softhsm = createSoftHsmToken('kiban-keys', ['kiban-other']);
    hsm = Pkcs11Token.open(softhsm.config);
    hsmStore = new KeyStore(masterKey, clock, { hsm });
  });
  afterAll(async () => {
    await hsm?.close();
    softhsm?.cleanup();
  });

  const createHsmPair = (
    label: string,
    algorithm: KeyPairAlgorithm = 'rsa-2048',
    keys: KeyStore = hsmStore,
  ): Promise<Buffer> =>
    t.db.transaction((tx) =>
      keys.createKeyPair(tx, { label, purpose: '発行者署名符号', algorithm, backend: 'pkcs11' }),
    );

  const rsaVerifies = (spki: Uint8Array, hash: SignatureHash, data: Buffer, sig: Buffer) =>
    verify(
      hash,
      data,
      {
        key: createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' }),
        padding: constants.RSA_PKCS1_PADDING,
      },
      sig,
    );

  async function expectUnwrapError(p: Promise<unknown>, reason: string, message: RegExp) {
    const err = await thrown(p);
    expect(err).toBeInstanceOf(KeyUnwrapError);
    expect((err as KeyUnwrapError).reason).toBe(reason);
    expect((err as Error).message).toMatch(message);
  }

  it('generates the key pair in the token and records no key material', async () => {
    const label = 'jpki/ca/sign-2026';
    const spki = await createHsmPair(label);
    const row = await rowOf(label);
    expect(row).toMatchObject({
      backend: 'pkcs11',
      algorithm: 'rsa-2048',
      wrapped_key: null,
      wrap_iv: null,
      wrap_tag: null,
      kek_id: `pkcs11:${hsm.info().serial}`,
    });
    expect(row['token_key_id']).toMatch(/^[0-9a-f]{32}$/);
    expect(row.public_key && Buffer.from(row.public_key).equals(spki)).toBe(true);
    // The token holds the key under the row's CKA_ID, labelled with the key's label.
    expect(hsm.publicKey(row['token_key_id'] as string).equals(spki)).toBe(true);
    expect(hsm.keyLabel(row['token_key_id'] as string)).toBe(label);

    const described = await hsmStore.describe(t.db, label);
    expect(described).toMatchObject({
      label,
      algorithm: 'rsa-2048',
      purpose: '発行者署名符号',
      backend: 'pkcs11',
      kekId: `pkcs11:${hsm.info().serial}`,
    });
    expect(described.publicKey?.equals(spki)).toBe(true);
    // Any key store reading the same database describes it the same way, HSM or not.
    expect(await store.describe(t.db, label)).toEqual(described);
  });

  for (const algorithm of ['rsa-2048', 'rsa-3072'] as const) {
    it(`${algorithm}: the signer signs in the token; signatures verify with the stored key`, async () => {
      const label = `hsm/${algorithm}`;
      const spki = await createHsmPair(label, algorithm);
      const { public_key } = await rowOf(label);
      const signer = await hsmStore.signer(t.db, label);
      expect(signer.label).toBe(label);
      expect(signer.algorithm).toBe(algorithm);
      expect(signer.publicKey.export({ type: 'spki', format: 'der' }).equals(spki)).toBe(true);
      expect(Object.values(signer).some((v) => (v as KeyObject)?.type === 'private')).toBe(false);

      const data = Buffer.from('tbsCertificate for 署名用電子証明書');
      for (const hash of ['sha256', 'sha384'] as const) {
        const signature = await signer.sign(data, hash);
        expect(signature).toHaveLength(algorithm === 'rsa-2048' ? 256 : 384);
        expect(rsaVerifies(public_key ?? new Uint8Array(), hash, data, signature)).toBe(true);
        expect(rsaVerifies(spki, hash, Buffer.from('other'), signature)).toBe(false);
      }
      expect(await hsmStore.signer(t.db, label)).toBe(signer); // checked once, then cached
    });
  }

  it('signs concurrently through the session pool', async () => {
    const spki = await createHsmPair('hsm/concurrent');
    const signer = await hsmStore.signer(t.db, 'hsm/concurrent');
    const messages = Array.from({ length: 48 }, (_, i) => Buffer.from(`tbs ${i}`));
    const signatures = await Promise.all(messages.map((m) => signer.sign(m, 'sha384')));
    signatures.forEach((sig, i) =>
      expect(rsaVerifies(spki, 'sha384', messages[i] as Buffer, sig)).toBe(true),
    );
  });

  it('fails loudly when the row’s public key is not the token key’s, even once cached', async () => {
    await createHsmPair('hsm/swap-a');
    await hsmStore.signer(t.db, 'hsm/swap-a');
    const other = await createPair('hsm/swap-b', 'rsa-2048');
    await t.db.query('UPDATE key_store SET public_key = $2 WHERE label = $1', [
      'hsm/swap-a',
      other,
    ]);
    await expectUnwrapError(
      hsmStore.signer(t.db, 'hsm/swap-a'),
      'hsm-key-mismatch',
      /^key hsm\/swap-a: PKCS#11 token "kiban-keys" \(serial \S+\) holds another public key/,
    );
    await expectUnwrapError(
      new KeyStore(masterKey, clock, { hsm }).signer(t.db, 'hsm/swap-a'),
      'hsm-key-mismatch',
      /holds another public key/,
    );
  });

  it('binds the row to the token key’s label: a row moved to another label fails', async () => {
    await createHsmPair('hsm/original');
    await t.db.query(`UPDATE key_store SET label = 'hsm/moved' WHERE label = 'hsm/original'`);
    await expectUnwrapError(
      hsmStore.signer(t.db, 'hsm/moved'),
      'hsm-key-mismatch',
      /holds the key under label "hsm\/original"/,
    );
  });

  it('fails loudly when the token no longer has the key, or is another token', async () => {
    await createHsmPair('hsm/gone');
    const { token_key_id } = (await rowOf('hsm/gone')) as StoredRow & { token_key_id: string };
    const other = Pkcs11Token.open(softhsm.configFor('kiban-other'));
    try {
      await expectUnwrapError(
        new KeyStore(masterKey, clock, { hsm: other }).signer(t.db, 'hsm/gone'),
        'hsm-key-mismatch',
        /^key hsm\/gone: PKCS#11 token "kiban-other" \(serial \S+\) has no such key \(CKA_ID [0-9a-f]{32}, recorded for pkcs11:\S+\)$/,
      );
    } finally {
      await other.close();
    }
    hsm.destroyKeyPair(token_key_id);
    await expectUnwrapError(
      new KeyStore(masterKey, clock, { hsm }).signer(t.db, 'hsm/gone'),
      'hsm-key-mismatch',
      /"kiban-keys" .* has no such key/,
    );
  });

  it('reports a pkcs11 key with no HSM configured, without crashing', async () => {
    await createHsmPair('hsm/needs-hsm');
    await expectUnwrapError(
      store.signer(t.db, 'hsm/needs-hsm'),
      'hsm-unavailable',
      /^key hsm\/needs-hsm is held by PKCS#11 token pkcs11:\S+, but no HSM is configured$/,
    );
    await expectAppError(
      store.secretKey(t.db, 'hsm/needs-hsm'),
      'unprocessable',
      'key.wrong-algorithm',
    );
    expect(await store.exists(t.db, 'hsm/needs-hsm')).toBe(true);
  });

  it('refuses to create a pkcs11 key without an HSM, or of an algorithm the HSM backend lacks', async () => {
    await expectAppError(
      createHsmPair('hsm/no-hsm', 'rsa-2048', store),
      'unprocessable',
      'key.hsm-unavailable',
    );
    await expectAppError(createHsmPair('hsm/ec', 'ec-p256'), 'badRequest', 'key.invalid-algorithm');
    await expectAppError(
      t.db.transaction((tx) =>
        hsmStore.createKeyPair(tx, {
          label: 'hsm/bad-backend',
          purpose: 'test',
          algorithm: 'rsa-2048',
          backend: 'tpm' as 'pkcs11',
        }),
      ),
      'badRequest',
      'key.invalid-backend',
    );
    for (const label of ['hsm/no-hsm', 'hsm/ec', 'hsm/bad-backend']) {
      expect(await store.exists(t.db, label)).toBe(false);
    }
  });

  it('refuses a taken label, and one of two concurrent creators wins', async () => {
    await createSecret('hsm/taken');
    await expectAppError(createHsmPair('hsm/taken'), 'conflict', 'key.exists');
    const results = await Promise.allSettled([
      createHsmPair('hsm/race'),
      createHsmPair('hsm/race'),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.find((r) => r.status === 'rejected');
    expect((rejected?.reason as AppError).code).toBe('key.exists');
    const signer = await hsmStore.signer(t.db, 'hsm/race');
    const spki = (await rowOf('hsm/race')).public_key ?? new Uint8Array();
    expect(
      rsaVerifies(spki, 'sha256', Buffer.from('x'), await signer.sign(Buffer.from('x'), 'sha256')),
    ).toBe(true);
  });

  it('does not let a key created in a rolled-back transaction be used', async () => {
    const label = 'hsm/rollback';
    await thrown(
      t.db.transaction(async (tx) => {
        await hsmStore.createKeyPair(tx, {
          label,
          purpose: 'test',
          algorithm: 'rsa-2048',
          backend: 'pkcs11',
        });
        await hsmStore.signer(tx, label);
        throw new Error('roll back');
      }),
    );
    await expectAppError(hsmStore.signer(t.db, label), 'notFound', 'key.not-found');
    const spki = await createHsmPair(label);
    const signer = await hsmStore.signer(t.db, label);
    expect(signer.publicKey.export({ type: 'spki', format: 'der' }).equals(spki)).toBe(true);
  });

  it('keeps software keys working beside HSM keys in the same store', async () => {
    const spki = await t.db.transaction((tx) =>
      hsmStore.createKeyPair(tx, { label: 'hsm/software', purpose: 'test', algorithm: 'ec-p256' }),
    );
    expect((await rowOf('hsm/software'))['backend']).toBe('software');
    const signer = await hsmStore.signer(t.db, 'hsm/software');
    const data = Buffer.from('ocsp response');
    const signature = await signer.sign(data, 'sha256');
    const key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
    expect(verify('sha256', data, { key, dsaEncoding: 'der' }, signature)).toBe(true);
  });
});
