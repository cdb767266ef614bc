/** The openssl CLI, as the benchmarks' peers use it. */
import { execFileSync } from 'node:child_process';

/** A fresh RSA-2048 key (unencrypted PEM) and a self-signed certificate for it. */
export function selfSignedRsa(
  keyFile: string,
  certFile: string,
  subject: string,
  days: number,
): void {
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      String(days),
      '-subj',
      subject,
    ],
    { stdio: 'ignore' },
  );
}
