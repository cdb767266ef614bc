/**
 * A throwaway SoftHSM2 token for one test file: a temporary token directory and
 * `softhsm2.conf`, pointed to by SOFTHSM2_CONF for this process, with freshly initialised
 * tokens. SoftHSM reads SOFTHSM2_CONF and scans its token directory when the library is
 * initialised, so create every token a test needs up front, before opening any, and close
 * every `Pkcs11Token` before `cleanup()`.
 *
 * When SoftHSM2 is not installed this throws (the tests fail, they are never skipped):
 * `scripts/install-system-deps.sh` installs it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Pkcs11Config } from '../../src/pki/pkcs11.ts';

export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

export interface SoftHsmToken {
  /** Module, token label and user PIN of the main token, ready for `Pkcs11Token.open`. */
  config: Pkcs11Config;
  /** The same for another token created with it (`extraLabels`). */
  configFor(label: string): Pkcs11Config;
  soPin: string;
  /** The temporary directory holding `softhsm2.conf` and `tokens/`. */
  dir: string;
  /** Restores SOFTHSM2_CONF and deletes the directory. Idempotent. */
  cleanup(): void;
}

const MISSING =
  'SoftHSM2 is not installed (no %s): run scripts/install-system-deps.sh ' +
  '(as root) to install the Debian packages softhsm2 and opensc';

/**
 * Creates the token `label`, and one per `extraLabels` (each with user PIN 1234, SO PIN
 * 5678), in a fresh temporary directory.
 */
export function createSoftHsmToken(label = 'kiban-test', extraLabels: string[] = []): SoftHsmToken {
  if (!existsSync(SOFTHSM_MODULE)) throw new Error(MISSING.replace('%s', SOFTHSM_MODULE));
  const pin = '1234';
  const soPin = '5678';
  const dir = mkdtempSync(join(tmpdir(), 'kiban-softhsm-'));
  const previous = process.env['SOFTHSM2_CONF'];
  let cleaned = false;
  const cleanup = (): void => {
    if (cleaned) return;
    cleaned = true;
    if (previous === undefined) delete process.env['SOFTHSM2_CONF'];
    else process.env['SOFTHSM2_CONF'] = previous;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const tokens = join(dir, 'tokens');
    mkdirSync(tokens);
    const conf = join(dir, 'softhsm2.conf');
    writeFileSync(
      conf,
      `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\n`,
    );
    process.env['SOFTHSM2_CONF'] = conf;
    const labels = [label, ...extraLabels];
    for (const tokenLabel of labels) {
      try {
        execFileSync(
          'softhsm2-util',
          ['--init-token', '--free', '--label', tokenLabel, '--pin', pin, '--so-pin', soPin],
          { stdio: 'pipe', env: process.env },
        );
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          throw new Error(MISSING.replace('%s', 'softhsm2-util on PATH'));
        }
        throw err;
      }
    }
    const configFor = (tokenLabel: string): Pkcs11Config => {
      if (!labels.includes(tokenLabel)) throw new Error(`no test token ${tokenLabel}`);
      return { module: SOFTHSM_MODULE, tokenLabel, pin };
    };
    return { config: configFor(label), configFor, soPin, dir, cleanup };
  } catch (err) {
    cleanup();
    throw err;
  }
}
