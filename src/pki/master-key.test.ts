import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureMasterKeyFile, loadMasterKey, masterKeyFromBytes } from './master-key.ts';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'kiban-master-key-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
/** Writes `content` to a new file with `mode` (chmod, so the umask does not interfere). */
function keyFile(content: string, mode = 0o600): string {
  const file = path.join(dir, `key-${++n}`);
  writeFileSync(file, content);
  chmodSync(file, mode);
  return file;
}

describe('MasterKey', () => {
  const raw = randomBytes(32);
  const key = masterKeyFromBytes(raw);
  const aad = Buffer.from('label\0aes-256\0purpose');

  it('wraps and unwraps', () => {
    const plain = randomBytes(48);
    const wrapped = key.wrap(plain, aad);
    expect(wrapped.iv).toHaveLength(12);
    expect(wrapped.tag).toHaveLength(16);
    expect(wrapped.ciphertext).toHaveLength(48);
    expect(wrapped.ciphertext.equals(plain)).toBe(false);
    expect(key.unwrap(wrapped, aad).equals(plain)).toBe(true);
    // A fresh IV every time: wrapping the same value twice gives different ciphertexts.
    const again = key.wrap(plain, aad);
    expect(again.iv.equals(wrapped.iv)).toBe(false);
    expect(again.ciphertext.equals(wrapped.ciphertext)).toBe(false);
  });

  it('refuses another context, another key, altered bytes or a short tag', () => {
    const wrapped = key.wrap(randomBytes(32), aad);
    expect(() => key.unwrap(wrapped, Buffer.from('other\0aes-256\0purpose'))).toThrow(
      /authentication failed/,
    );
    expect(() => masterKeyFromBytes(randomBytes(32)).unwrap(wrapped, aad)).toThrow(
      /authentication failed/,
    );
    const flipped = Buffer.from(wrapped.ciphertext);
    flipped[0] = (flipped[0] ?? 0) ^ 1;
    expect(() => key.unwrap({ ...wrapped, ciphertext: flipped }, aad)).toThrow(
      /authentication failed/,
    );
    expect(() => key.unwrap({ ...wrapped, tag: wrapped.tag.subarray(0, 12) }, aad)).toThrow(
      /malformed/,
    );
  });

  it('has a stable 16-hex id that differs between keys and is not a plain hash', () => {
    expect(key.id).toMatch(/^[0-9a-f]{16}$/);
    expect(masterKeyFromBytes(Buffer.from(raw)).id).toBe(key.id);
    expect(masterKeyFromBytes(randomBytes(32)).id).not.toBe(key.id);
  });

  it('shows only its id when logged or serialised', () => {
    const shown = `${inspect(key, { showHidden: true, depth: 5 })} ${JSON.stringify(key)}`;
    expect(shown).toContain(key.id);
    expect(shown).not.toContain(raw.toString('hex'));
    expect(shown).not.toContain(raw.toString('base64'));
  });

  it('needs exactly 32 bytes', () => {
    expect(() => masterKeyFromBytes(randomBytes(16))).toThrow(/exactly 32 bytes/);
  });
});

describe('loadMasterKey', () => {
  const a = randomBytes(32);
  const b = randomBytes(32);
  const idOf = (bytes: Buffer) => masterKeyFromBytes(bytes).id;

  it('reads the file (base64, optional trailing newline)', () => {
    expect(loadMasterKey({ file: keyFile(a.toString('base64')) }).id).toBe(idOf(a));
    expect(loadMasterKey({ file: keyFile(`${a.toString('base64')}\n`) }).id).toBe(idOf(a));
    expect(loadMasterKey({ file: keyFile(`${a.toString('base64')}\r\n`) }).id).toBe(idOf(a));
  });

  it('prefers the environment over the file', () => {
    const file = keyFile(`${a.toString('base64')}\n`);
    expect(loadMasterKey({ env: b.toString('base64'), file }).id).toBe(idOf(b));
    // The file is not even consulted when the environment has the key.
    expect(loadMasterKey({ env: b.toString('base64'), file: path.join(dir, 'absent') }).id).toBe(
      idOf(b),
    );
    expect(loadMasterKey({ env: null, file }).id).toBe(idOf(a));
    expect(loadMasterKey({ env: '', file }).id).toBe(idOf(a));
  });

  it('accepts URL-safe base64 and no padding', () => {
    const env = a.toString('base64url');
    expect(loadMasterKey({ env, file: 'unused' }).id).toBe(idOf(a));
  });

  it('refuses a file readable by group or others, naming the file but not the key', () => {
    for (const mode of [0o644, 0o640, 0o604, 0o660]) {
      const file = keyFile(`${a.toString('base64')}\n`, mode);
      let message = '';
      try {
        loadMasterKey({ file });
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toContain(file);
      expect(message).toContain(`mode 0${mode.toString(8)}`);
      expect(message).not.toContain(a.toString('base64'));
    }
    expect(() => loadMasterKey({ file: keyFile(a.toString('base64'), 0o400) })).not.toThrow();
  });

  it('refuses a key that is not exactly 32 bytes', () => {
    for (const bytes of [randomBytes(31), randomBytes(33), randomBytes(16), Buffer.alloc(0)]) {
      const b64 = bytes.toString('base64');
      expect(() => loadMasterKey({ file: keyFile(`${b64}\n`) })).toThrow(
        /must be base64 of exactly 32 bytes/,
      );
      expect(() => loadMasterKey({ env: b64 || '=', file: 'unused' })).toThrow(
        /KIBAN_MASTER_KEY must be base64 of exactly 32 bytes/,
      );
    }
  });

  it('refuses text that is not base64 of a key, without echoing it', () => {
    const junk = `${a.toString('base64')}\n\n`;
    expect(() => loadMasterKey({ file: keyFile(junk) })).toThrow(/exactly 32 bytes/);
    const spaced = ` ${a.toString('base64')}`;
    expect(() => loadMasterKey({ env: spaced, file: 'unused' })).toThrow(
      /^KIBAN_MASTER_KEY must be base64 of exactly 32 bytes$/,
    );
    expect(() => loadMasterKey({ env: '!'.repeat(43) + '=', file: 'unused' })).toThrow(
      /exactly 32 bytes/,
    );
  });

  it('explains a missing file', () => {
    expect(() => loadMasterKey({ file: path.join(dir, 'missing.key') })).toThrow(
      /does not exist.*kiban init.*KIBAN_MASTER_KEY/,
    );
  });

  it('refuses a directory', () => {
    expect(() => loadMasterKey({ file: dir })).toThrow(/not a regular file|mode/);
  });
});

describe('ensureMasterKeyFile', () => {
  it('creates a 0600 key file (and its directory) that loads', () => {
    const file = path.join(dir, 'fresh', 'nested', 'master.key');
    expect(ensureMasterKeyFile(file)).toEqual({ created: true });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(path.dirname(file)).mode & 0o077).toBe(0);
    const text = readFileSync(file, 'utf8');
    expect(text).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);
    expect(loadMasterKey({ file }).id).toMatch(/^[0-9a-f]{16}$/);
    // No temporary file left behind.
    expect(readdirSync(path.dirname(file))).toEqual(['master.key']);
  });

  it('never overwrites an existing file', () => {
    const file = path.join(dir, 'existing.key');
    expect(ensureMasterKeyFile(file).created).toBe(true);
    const first = readFileSync(file, 'utf8');
    const id = loadMasterKey({ file }).id;
    expect(ensureMasterKeyFile(file)).toEqual({ created: false });
    expect(readFileSync(file, 'utf8')).toBe(first);
    expect(loadMasterKey({ file }).id).toBe(id);

    // Not even a file that is no key at all, or has a bad mode: that is for the operator.
    const other = keyFile('not a key', 0o644);
    expect(ensureMasterKeyFile(other)).toEqual({ created: false });
    expect(readFileSync(other, 'utf8')).toBe('not a key');
    expect(statSync(other).mode & 0o777).toBe(0o644);
  });

  it('makes a different key each time', () => {
    const f1 = path.join(dir, 'one.key');
    const f2 = path.join(dir, 'two.key');
    ensureMasterKeyFile(f1);
    ensureMasterKeyFile(f2);
    expect(readFileSync(f1, 'utf8')).not.toBe(readFileSync(f2, 'utf8'));
  });
});
