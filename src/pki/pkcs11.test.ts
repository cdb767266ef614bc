import { constants, createPublicKey, randomBytes, verify } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSoftHsmToken, type SoftHsmToken } from '../../test/support/softhsm.ts';
import { type Pkcs11Hash, Pkcs11Error, Pkcs11KeyNotFoundError, Pkcs11Token } from './pkcs11.ts';

let softhsm: SoftHsmToken;
let token: Pkcs11Token;

beforeAll(() => {
  softhsm = createSoftHsmToken('kiban-test');
  token = Pkcs11Token.open(softhsm.config);
});
afterAll(async () => {
  await token?.close();
  softhsm?.cleanup();
});

const verifies = (spki: Buffer, hash: Pkcs11Hash, data: Buffer, signature: Buffer): boolean =>
  verify(
    hash,
    data,
    {
      key: createPublicKey({ key: spki, format: 'der', type: 'spki' }),
      padding: constants.RSA_PKCS1_PADDING,
    },
    signature,
  );

/** Awaits `p` (or calls `f`) and returns what it threw. */
async function thrown(p: Promise<unknown> | (() => unknown)): Promise<unknown> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    return err;
  }
  throw new Error('expected a failure');
}

describe('Pkcs11Token', () => {
  it('opens the token by its label and reports it without padding', () => {
    const info = token.info();
    expect(info.label).toBe('kiban-test');
    expect(info.serial).toMatch(/^\S+$/);
    expect(info.manufacturer).toBe('SoftHSM project');
    expect(info.model).toBe('SoftHSM v2');
  });

  it('generates an RSA-2048 key pair whose signatures verify with node:crypto', async () => {
    const { keyId, spki } = await token.generateRsaKeyPair({ label: 'test/rsa-2048', bits: 2048 });
    expect(keyId).toMatch(/^[0-9a-f]{32}$/);
    const key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
    expect(key.asymmetricKeyType).toBe('rsa');
    expect(key.asymmetricKeyDetails).toMatchObject({ modulusLength: 2048, publicExponent: 65537n });
    expect(token.publicKey(keyId).equals(spki)).toBe(true);
    expect(token.keyLabel(keyId)).toBe('test/rsa-2048');

    const data = Buffer.from('tbsCertificate of a 署名用電子証明書');
    for (const hash of ['sha256', 'sha384'] as const) {
      const signature = await token.sign(keyId, data, hash);
      expect(signature).toHaveLength(256);
      expect(verifies(spki, hash, data, signature)).toBe(true);
      expect(verifies(spki, hash, Buffer.from('other data'), signature)).toBe(false);
      // PKCS#1 v1.5 is deterministic.
      expect((await token.sign(keyId, data, hash)).equals(signature)).toBe(true);
    }
    const other = await token.sign(keyId, data, 'sha384');
    expect(verifies(spki, 'sha256', data, other)).toBe(false);
  });

  it('generates RSA-3072 key pairs', async () => {
    const { keyId, spki } = await token.generateRsaKeyPair({ label: 'test/rsa-3072', bits: 3072 });
    const data = randomBytes(1000);
    const signature = await token.sign(keyId, data, 'sha384');
    expect(signature).toHaveLength(384);
    expect(verifies(spki, 'sha384', data, signature)).toBe(true);
  });

  it('makes 64 concurrent signatures, every one valid', async () => {
    const { keyId, spki } = await token.generateRsaKeyPair({ label: 'test/load', bits: 2048 });
    const messages = Array.from({ length: 64 }, (_, i) => Buffer.from(`message ${i}`));
    const signatures = await Promise.all(
      messages.map((m, i) => token.sign(keyId, m, i % 2 === 0 ? 'sha256' : 'sha384')),
    );
    signatures.forEach((signature, i) => {
      const m = messages[i] as Buffer;
      expect(verifies(spki, i % 2 === 0 ? 'sha256' : 'sha384', m, signature), `#${i}`).toBe(true);
    });
  });

  it('queues callers when every session is busy (a pool of one)', async () => {
    const single = Pkcs11Token.open({ ...softhsm.config, sessions: 1 });
    try {
      const { keyId, spki } = await single.generateRsaKeyPair({ label: 'test/one', bits: 2048 });
      const data = Array.from({ length: 12 }, () => randomBytes(64));
      const signatures = await Promise.all(data.map((d) => single.sign(keyId, d, 'sha256')));
      signatures.forEach((s, i) =>
        expect(verifies(spki, 'sha256', data[i] as Buffer, s)).toBe(true),
      );
      // The other token object in this process shares the login and sees the same key.
      expect(token.publicKey(keyId).equals(spki)).toBe(true);
    } finally {
      await single.close();
    }
    // Closing one token object leaves the other logged in.
    const { keyId } = await token.generateRsaKeyPair({ label: 'test/after', bits: 2048 });
    await expect(token.sign(keyId, Buffer.from('x'), 'sha256')).resolves.toHaveLength(256);
  });

  it('names the label when no token has it', async () => {
    const err = await thrown(() => Pkcs11Token.open({ ...softhsm.config, tokenLabel: 'no-such' }));
    expect(err).toBeInstanceOf(Pkcs11Error);
    expect((err as Error).message).toMatch(/no PKCS#11 token labelled "no-such"/);
    expect((err as Error).message).toContain('"kiban-test"');
    // The failed open released the library: the open token still works.
    const { keyId } = await token.generateRsaKeyPair({ label: 'test/still', bits: 2048 });
    await expect(token.sign(keyId, Buffer.from('x'), 'sha256')).resolves.toHaveLength(256);
  });

  it('refuses a wrong PIN even while the token is logged in through another object', async () => {
    // C_Login alone would answer CKR_USER_ALREADY_LOGGED_IN here, whatever the PIN.
    const pin = '8675309';
    const err = await thrown(() => Pkcs11Token.open({ ...softhsm.config, pin }));
    expect(err).toBeInstanceOf(Pkcs11Error);
    expect(err).toMatchObject({ ckr: 'CKR_PIN_INCORRECT', operation: 'C_Login' });
    expect((err as Error).message).toBe('C_Login failed: CKR_PIN_INCORRECT');
    expect(JSON.stringify(err)).not.toContain(pin);
    expect((err as Error).stack).not.toContain(pin);
  });

  it('reports a missing module', async () => {
    const err = await thrown(() =>
      Pkcs11Token.open({ ...softhsm.config, module: '/nonexistent/libpkcs11.so' }),
    );
    expect(err).toBeInstanceOf(Pkcs11Error);
    expect((err as Error).message).toContain('/nonexistent/libpkcs11.so');
  });

  it('reports an unknown key id', async () => {
    const keyId = randomBytes(16).toString('hex');
    expect(() => token.publicKey(keyId)).toThrow(Pkcs11KeyNotFoundError);
    const err = await thrown(token.sign(keyId, Buffer.from('x'), 'sha256'));
    expect(err).toBeInstanceOf(Pkcs11KeyNotFoundError);
    expect((err as Error).message).toContain(keyId);
  });

  it('keeps the private key inside the token: sensitive, not extractable', async () => {
    const { keyId } = await token.generateRsaKeyPair({ label: 'test/sealed', bits: 2048 });
    // A second handle on the same library, beside the open token (same login, same objects).
    const lib = new pkcs11js.PKCS11();
    lib.load(softhsm.config.module);
    try {
      lib.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
    } catch (err) {
      expect((err as Error).message).toContain('CKR_CRYPTOKI_ALREADY_INITIALIZED');
    }
    const slot = lib
      .C_GetSlotList(true)
      .find((s) => lib.C_GetTokenInfo(s).label.trim() === 'kiban-test');
    if (!slot) throw new Error('token not found');
    const session = lib.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION);
    try {
      const id = Buffer.from(keyId, 'hex');
      const find = (cls: number): pkcs11js.Handle[] => {
        lib.C_FindObjectsInit(session, [
          { type: pkcs11js.CKA_CLASS, value: cls },
          { type: pkcs11js.CKA_ID, value: id },
        ]);
        const found = lib.C_FindObjects(session, 10);
        lib.C_FindObjectsFinal(session);
        return found;
      };
      const [privateKey, ...more] = find(pkcs11js.CKO_PRIVATE_KEY);
      expect(more).toHaveLength(0);
      expect(find(pkcs11js.CKO_PUBLIC_KEY)).toHaveLength(1);
      if (!privateKey) throw new Error('private key not found');

      const flags = [
        pkcs11js.CKA_TOKEN,
        pkcs11js.CKA_PRIVATE,
        pkcs11js.CKA_SENSITIVE,
        pkcs11js.CKA_EXTRACTABLE,
        pkcs11js.CKA_ALWAYS_SENSITIVE,
        pkcs11js.CKA_NEVER_EXTRACTABLE,
        pkcs11js.CKA_SIGN,
        pkcs11js.CKA_DECRYPT,
      ];
      const values = lib
        .C_GetAttributeValue(
          session,
          privateKey,
          flags.map((type) => ({ type })),
        )
        .map((a) => a.value[0]);
      expect(values).toEqual([1, 1, 1, 0, 1, 1, 1, 0]);
      const [label] = lib.C_GetAttributeValue(session, privateKey, [{ type: pkcs11js.CKA_LABEL }]);
      expect(label?.value.toString()).toBe('test/sealed');

      for (const type of [
        pkcs11js.CKA_PRIVATE_EXPONENT,
        pkcs11js.CKA_PRIME_1,
        pkcs11js.CKA_PRIME_2,
        pkcs11js.CKA_VALUE,
      ]) {
        expect(() => lib.C_GetAttributeValue(session, privateKey, [{ type }])).toThrow(
          /CKR_ATTRIBUTE_SENSITIVE|CKR_ATTRIBUTE_TYPE_INVALID/,
        );
      }
      // Nor can it be made extractable after the fact.
      expect(() =>
        lib.C_SetAttributeValue(session, privateKey, [
          { type: pkcs11js.CKA_EXTRACTABLE, value: true },
        ]),
      ).toThrow(/CKR_/);
    } finally {
      lib.C_CloseSession(session);
      lib.close(); // no C_Finalize: the library is shared with the open token
    }
  });

  it('finishes signatures in progress on close, rejects the queued ones, and closes idempotently', async () => {
    const local = Pkcs11Token.open({ ...softhsm.config, sessions: 2 });
    const { keyId, spki } = await local.generateRsaKeyPair({ label: 'test/close', bits: 2048 });
    const data = Buffer.from('closing');
    const settled = Promise.allSettled(
      Array.from({ length: 6 }, () => local.sign(keyId, data, 'sha256')),
    );
    const closed = local.close();
    expect(local.close()).toBe(closed);
    await closed;
    await local.close();
    const results = await settled;
    const done = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    expect(done).toHaveLength(2);
    for (const s of done) expect(verifies(spki, 'sha256', data, s)).toBe(true);
    expect(refused).toHaveLength(4);
    for (const err of refused) {
      expect(err).toBeInstanceOf(Pkcs11Error);
      expect((err as Error).message).toBe('PKCS#11 token "kiban-test" is closed');
    }
    await expect(local.sign(keyId, data, 'sha256')).rejects.toThrow(/is closed/);
    expect(() => local.publicKey(keyId)).toThrow(/is closed/);
    // The shared token is unaffected, and the key persists on the token.
    expect(token.publicKey(keyId).equals(spki)).toBe(true);
  });

  it('finalises the library when the last token closes, and opens again afterwards', async () => {
    await token.close();
    await token.close();
    // Nobody logged in now: the token itself checks the PIN.
    const pin = '8675309';
    const err = await thrown(() => Pkcs11Token.open({ ...softhsm.config, pin }));
    expect(err).toMatchObject({ ckr: 'CKR_PIN_INCORRECT', operation: 'C_Login' });
    expect((err as Error).message).toBe('C_Login failed: CKR_PIN_INCORRECT');
    expect(`${(err as Error).stack} ${JSON.stringify(err)}`).not.toContain(pin);

    token = Pkcs11Token.open(softhsm.config);
    const { keyId, spki } = await token.generateRsaKeyPair({ label: 'test/reopen', bits: 2048 });
    const signature = await token.sign(keyId, Buffer.from('again'), 'sha256');
    expect(verifies(spki, 'sha256', Buffer.from('again'), signature)).toBe(true);
  });

  it('refuses bad arguments before touching the token', async () => {
    await expect(
      token.generateRsaKeyPair({ label: 'x', bits: 1024 as 2048 }),
    ).rejects.toBeInstanceOf(RangeError);
    await expect(token.sign('zz', Buffer.from('x'), 'sha256')).rejects.toBeInstanceOf(RangeError);
    const { keyId } = await token.generateRsaKeyPair({ label: 'test/args', bits: 2048 });
    await expect(token.sign(keyId, Buffer.from('x'), 'md5' as Pkcs11Hash)).rejects.toBeInstanceOf(
      RangeError,
    );
    expect(() => Pkcs11Token.open({ ...softhsm.config, sessions: 0 })).toThrow(RangeError);
  });
});
