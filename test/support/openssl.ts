/**
 * The OpenSSL CLI as a test oracle: run `openssl` in a temporary directory, write PEM files,
 * make a CA and issue certificates with it, and sign with the same keys through node:crypto.
 *
 * Every helper is synchronous and throws with OpenSSL's stderr when a setup command fails;
 * {@link openssl} itself never throws on a non-zero exit, because tests assert on failures.
 */
import { spawnSync } from 'node:child_process';
import { createPrivateKey, sign as cryptoSign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TbsSigner } from '../../src/pki/algorithms.ts';
import {
  type DerNode,
  fromPem,
  parseDer,
  readBitString,
  readBoolean,
  readInteger,
  readOctetString,
  readOid,
  TAG,
  toPem,
} from '../../src/pki/der.ts';

export interface OpensslResult {
  /** Exit status (-1 when the process could not be started or was killed). */
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs `openssl ...args` (no shell) in `cwd`; never throws on a non-zero exit. */
export function openssl(
  args: readonly string[],
  options: { cwd?: string; input?: string | Buffer } = {},
): OpensslResult {
  const r = spawnSync('openssl', args, {
    cwd: options.cwd,
    input: options.input,
    encoding: 'utf8',
    // `openssl crl -text` of a 100k-entry CRL prints ~10 MB.
    maxBuffer: 512 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** {@link openssl}, throwing with stderr unless it exits 0. */
export function opensslOk(args: readonly string[], options: { cwd?: string } = {}): OpensslResult {
  const r = openssl(args, options);
  if (r.status !== 0) {
    throw new Error(`openssl ${args.join(' ')} exited ${r.status}:\n${r.stderr}${r.stdout}`);
  }
  return r;
}

/** A temporary working directory; remove it in `afterAll`. */
export interface TempDir {
  readonly path: string;
  /** Absolute path of `name` inside the directory. */
  file(name: string): string;
  /** Writes `data` to `name`; returns the absolute path. */
  write(name: string, data: string | Buffer): string;
  /** Writes `der` as PEM with `label` (e.g. `CERTIFICATE`, `X509 CRL`); returns the path. */
  writePem(name: string, der: Buffer, label: string): string;
  read(name: string): Buffer;
  /** Runs openssl with this directory as the working directory. */
  run(args: readonly string[]): OpensslResult;
  remove(): void;
}

export function makeTempDir(prefix = 'kiban-openssl-'): TempDir {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  const file = (name: string): string => path.join(dir, name);
  return {
    path: dir,
    file,
    write(name, data) {
      writeFileSync(file(name), data);
      return file(name);
    },
    writePem(name, der, label) {
      writeFileSync(file(name), toPem(der, label));
      return file(name);
    },
    read: (name) => readFileSync(file(name)),
    run: (args) => openssl(args, { cwd: dir }),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Writes `der` as a PEM file at `filePath`. */
export function writePem(filePath: string, der: Buffer, label: string): string {
  writeFileSync(filePath, toPem(der, label));
  return filePath;
}

// ---------------------------------------------------------------------------------------------
// Keys, CAs and certificates made by OpenSSL
// ---------------------------------------------------------------------------------------------

export type TestKeyAlgorithm = 'rsa-2048' | 'ec-p256';

/** A certificate and its private key, as files in a {@link TempDir} and as DER. */
export interface TestCertificate {
  /** Absolute path of the PEM certificate. */
  readonly certPath: string;
  /** Absolute path of the unencrypted PEM private key (PKCS#8). */
  readonly keyPath: string;
  readonly der: Buffer;
  readonly parts: CertificateParts;
  /** Signs with the certificate's key through node:crypto (SHA-256). */
  readonly signer: TbsSigner;
}

const newKeyArgs = (alg: TestKeyAlgorithm): string[] =>
  alg === 'rsa-2048'
    ? ['-newkey', 'rsa:2048']
    : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];

/** A TbsSigner over a PEM private key file (RSA → sha256WithRSAEncryption, EC → ecdsaWithSHA256). */
export function signerForKeyFile(keyPath: string): TbsSigner {
  const key = createPrivateKey(readFileSync(keyPath));
  const algorithm =
    key.asymmetricKeyType === 'ec' ? 'ecdsaWithSHA256' : ('sha256WithRSAEncryption' as const);
  return { algorithm, sign: async (tbs) => cryptoSign('sha256', tbs, key) };
}

function loadCertificate(certPath: string, keyPath: string): TestCertificate {
  const der = fromPem(readFileSync(certPath, 'utf8'), 'CERTIFICATE');
  return {
    certPath,
    keyPath,
    der,
    parts: certificateParts(der),
    signer: signerForKeyFile(keyPath),
  };
}

/**
 * A self-signed CA made by `openssl req -x509` (SHA-256; basicConstraints critical CA:TRUE,
 * keyUsage critical keyCertSign+cRLSign, SKI). Files `<name>.pem` and `<name>.key`.
 */
export function makeOpensslCa(
  dir: TempDir,
  options: { name?: string; subject?: string; key?: TestKeyAlgorithm; days?: number } = {},
): TestCertificate {
  const name = options.name ?? 'ca';
  const cnf = dir.write(
    `${name}.cnf`,
    [
      '[req]',
      'distinguished_name = dn',
      '[dn]',
      '[v3_ca]',
      'basicConstraints = critical,CA:TRUE',
      'keyUsage = critical,keyCertSign,cRLSign',
      'subjectKeyIdentifier = hash',
      '',
    ].join('\n'),
  );
  opensslOk(
    [
      'req',
      '-x509',
      ...newKeyArgs(options.key ?? 'rsa-2048'),
      '-sha256',
      '-nodes',
      '-keyout',
      dir.file(`${name}.key`),
      '-out',
      dir.file(`${name}.pem`),
      '-config',
      cnf,
      '-extensions',
      'v3_ca',
      '-subj',
      options.subject ?? '/C=JP/O=Kiban Test/CN=Test CA',
      '-days',
      String(options.days ?? 30),
    ],
    { cwd: dir.path },
  );
  return loadCertificate(dir.file(`${name}.pem`), dir.file(`${name}.key`));
}

/**
 * Issues a certificate with `openssl x509 -req` from `issuer`. `extensions` is the body of an
 * OpenSSL extension section (x509v3_config lines); extra sections it references go in
 * `extraConfig`. Files `<name>.pem` and `<name>.key`.
 */
export function issueWithOpenssl(
  dir: TempDir,
  issuer: TestCertificate,
  options: {
    name: string;
    subject: string;
    serial: bigint;
    extensions: readonly string[];
    extraConfig?: readonly string[];
    key?: TestKeyAlgorithm;
    days?: number;
  },
): TestCertificate {
  const { name } = options;
  const ext = dir.write(
    `${name}.ext`,
    ['[ext]', ...options.extensions, ...(options.extraConfig ?? []), ''].join('\n'),
  );
  opensslOk(
    [
      'req',
      '-new',
      ...newKeyArgs(options.key ?? 'rsa-2048'),
      '-nodes',
      '-keyout',
      dir.file(`${name}.key`),
      '-subj',
      options.subject,
      '-out',
      dir.file(`${name}.csr`),
    ],
    { cwd: dir.path },
  );
  opensslOk(
    [
      'x509',
      '-req',
      '-in',
      dir.file(`${name}.csr`),
      '-CA',
      issuer.certPath,
      '-CAkey',
      issuer.keyPath,
      '-set_serial',
      '0x' + options.serial.toString(16),
      '-days',
      String(options.days ?? 30),
      '-sha256',
      '-extfile',
      ext,
      '-extensions',
      'ext',
      '-out',
      dir.file(`${name}.pem`),
    ],
    { cwd: dir.path },
  );
  return loadCertificate(dir.file(`${name}.pem`), dir.file(`${name}.key`));
}

// ---------------------------------------------------------------------------------------------
// Taking certificates apart (independent of src/pki/x509.ts)
// ---------------------------------------------------------------------------------------------

export interface CertificateParts {
  readonly serial: bigint;
  /** The encoded issuer Name. */
  readonly issuer: Buffer;
  /** The encoded subject Name. */
  readonly subject: Buffer;
  /** The encoded SubjectPublicKeyInfo. */
  readonly spki: Buffer;
  /** The subjectPublicKey BIT STRING value (what key identifiers and OCSP key hashes hash). */
  readonly publicKey: Buffer;
  /** Extensions by dotted OID: criticality and the extnValue content. */
  readonly extensions: ReadonlyMap<string, { critical: boolean; value: Buffer }>;
}

/** Splits a DER certificate into the fields tests feed to our encoders. */
export function certificateParts(der: Buffer): CertificateParts {
  const tbs = parseDer(der).children[0];
  if (!tbs) throw new Error('not a certificate');
  const f = [...tbs.children];
  if (f[0]?.tag === 0xa0) f.shift(); // version
  const [serialNode, , issuer, , subject, spki] = f;
  if (!serialNode || !issuer || !subject || !spki) throw new Error('not a certificate');
  const extensions = new Map<string, { critical: boolean; value: Buffer }>();
  const extsNode = f.find((n) => n.tag === 0xa3)?.children[0];
  for (const e of extsNode?.children ?? []) {
    const [id, second, third] = e.children as [DerNode, DerNode, DerNode | undefined];
    const critical = third ? readBoolean(second, 'critical') : false;
    extensions.set(readOid(id, 'extnID'), {
      critical,
      value: readOctetString(third ?? second, 'extnValue'),
    });
  }
  if (issuer.tag !== TAG.sequence || subject.tag !== TAG.sequence) throw new Error('bad Name');
  return {
    serial: readInteger(serialNode, 'serialNumber'),
    issuer: issuer.bytes,
    subject: subject.bytes,
    spki: spki.bytes,
    publicKey: readBitString(spki.children[1], 'subjectPublicKey').bytes,
    extensions,
  };
}
