-- Change epochs: a counter per kind of change that in-memory caches depend on, so every
-- process of a deployment can keep hot answers (OCSP statuses, authenticated tokens) in memory
-- and still see a change within one poll of this table (see src/platform/change-feed.ts).

CREATE TABLE change_epochs (
  name  text PRIMARY KEY,
  epoch bigint NOT NULL
);
INSERT INTO change_epochs (name, epoch) VALUES ('jpki.revocations', 0), ('auth', 0);

-- 失効 (第15条/第34条): every revocation carries the epoch its transaction advanced. The
-- advance is an UPDATE of the one counter row, held until commit, so revocations commit in
-- epoch order: once epoch E is seen committed, every revocation with an epoch <= E is visible.
ALTER TABLE jpki_revocations ADD COLUMN epoch bigint NOT NULL DEFAULT 0;
ALTER TABLE jpki_revocations ALTER COLUMN epoch DROP DEFAULT;
CREATE INDEX jpki_revocations_epoch ON jpki_revocations (epoch);

-- Who may call what (tokens, actors, a verifier's standing) changes rarely; any update or
-- delete in those tables advances the `auth` epoch in the same transaction, whichever code path
-- made it. Inserts do not: a new token or actor invalidates nothing already authenticated.
CREATE FUNCTION kiban_advance_auth_epoch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE change_epochs SET epoch = epoch + 1 WHERE name = 'auth';
  RETURN NULL;
END;
$$;
CREATE TRIGGER actors_auth_epoch AFTER UPDATE OR DELETE ON actors
  FOR EACH STATEMENT EXECUTE FUNCTION kiban_advance_auth_epoch();
CREATE TRIGGER api_tokens_auth_epoch AFTER UPDATE OR DELETE ON api_tokens
  FOR EACH STATEMENT EXECUTE FUNCTION kiban_advance_auth_epoch();
CREATE TRIGGER verifiers_auth_epoch AFTER UPDATE OR DELETE ON verifiers
  FOR EACH STATEMENT EXECUTE FUNCTION kiban_advance_auth_epoch();
