/**
 * Signature algorithms the CA engine writes, and the signing function every encoder takes.
 * sha256WithRSAEncryption carries an explicit NULL parameter (RFC 4055 §5: MUST when
 * generating — pkijs omits it, MEASURED-STACK.md §2.2).
 */
import { NULL, oid, sequence } from './der.ts';
import type { KeyPairAlgorithm, Signer } from './key-store.ts';

export type SignatureAlgorithmName = 'sha256WithRSAEncryption' | 'ecdsaWithSHA256';

export const SIGNATURE_ALGORITHM_OIDS: Record<SignatureAlgorithmName, string> = {
  sha256WithRSAEncryption: '1.2.840.113549.1.1.11',
  ecdsaWithSHA256: '1.2.840.10045.4.3.2',
};

/** The AlgorithmIdentifier DER for `name`. */
export function algorithmIdentifier(name: SignatureAlgorithmName): Buffer {
  const id = oid(SIGNATURE_ALGORITHM_OIDS[name]);
  return name === 'sha256WithRSAEncryption' ? sequence(id, NULL) : sequence(id);
}

/** Signs a to-be-signed structure (TBSCertificate, TBSCertList, ResponseData) once. */
export interface TbsSigner {
  readonly algorithm: SignatureAlgorithmName;
  sign(tbs: Buffer): Promise<Buffer>;
}

export function signatureAlgorithmOf(key: KeyPairAlgorithm): SignatureAlgorithmName {
  return key === 'ec-p256' ? 'ecdsaWithSHA256' : 'sha256WithRSAEncryption';
}

/** A {@link TbsSigner} over a key-store signer (software or PKCS#11), SHA-256. */
export function tbsSigner(signer: Signer): TbsSigner {
  return {
    algorithm: signatureAlgorithmOf(signer.algorithm),
    sign: async (tbs) => signer.sign(tbs, 'sha256'),
  };
}
