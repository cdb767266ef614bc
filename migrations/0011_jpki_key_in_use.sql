-- Every certificate needs a fresh key pair (jpki.key-reused): at most one certificate that is
-- not abandoned per subject public key. Enforced by the index rather than by a read before the
-- insert, which two concurrent requests for the same key could both pass, and which cost every
-- issuance a round trip. An abandoned record (never signed, never handed out) does not count.
DROP INDEX jpki_certificates_key;
CREATE UNIQUE INDEX jpki_certificates_key_in_use
  ON jpki_certificates (public_key_sha256) WHERE state <> 'abandoned';
