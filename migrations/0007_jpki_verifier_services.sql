-- JPKI services to verifiers beyond revocation status (公的個人認証法 第18条第3項–第5項,
-- 第37条第3項, 第38条の3): the holder's consent (本人同意) to the 特定署名用電子証明書記録情報
-- (certified basic-4) provision and its history, and the designation agreements and tokens of
-- 特定利用者証明検証者 (designated authentication verifiers). Linked serials (対応証明書の発行の
-- 番号 etc.) need no table: they are read from jpki_certificates; provisions are counted in
-- verifier_provisions and audited.

-- 本人同意 (第18条第3項「当該特定署名用電子証明書記録情報の提供に係る署名利用者の同意」): one
-- current state per holder (person), whichever signing certificate (card or mobile) expressed it.
CREATE TABLE jpki_consent_history (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  person_id    uuid NOT NULL REFERENCES persons (id),
  decision     text NOT NULL CHECK (decision IN ('given', 'withdrawn')),
  -- The signing certificate whose key signed the decision, and its medium.
  serial       bigint NOT NULL REFERENCES jpki_certificates (serial),
  medium       text NOT NULL CHECK (medium IN ('card', 'mobile')),
  -- The server-issued challenge the holder signed: one decision per challenge.
  challenge_id text NOT NULL UNIQUE,
  decided_at   timestamptz NOT NULL,
  request_id   text
);
CREATE INDEX jpki_consent_history_person ON jpki_consent_history (person_id, id);

-- The history is append-only: rows are never updated or deleted.
CREATE FUNCTION jpki_consent_history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'jpki_consent_history is append-only';
END;
$$;
CREATE TRIGGER jpki_consent_history_append_only BEFORE UPDATE OR DELETE ON jpki_consent_history
  FOR EACH ROW EXECUTE FUNCTION jpki_consent_history_append_only();

-- The current consent of each holder = their latest history row (kept here so the provision
-- path reads one row by primary key). No row: never consented.
CREATE TABLE jpki_consents (
  person_id  uuid PRIMARY KEY REFERENCES persons (id),
  state      text NOT NULL CHECK (state IN ('given', 'withdrawn')),
  history_id bigint NOT NULL UNIQUE REFERENCES jpki_consent_history (id),
  changed_at timestamptz NOT NULL
);

-- 特定利用者証明検証者 (第38条の3第3項): the agreement (取決め) the agency concluded in advance
-- with an authentication verifier. Dates in JST, both inclusive.
CREATE TABLE jpki_designations (
  id                  uuid PRIMARY KEY,
  verifier_id         uuid NOT NULL REFERENCES verifiers (id),
  agreement_reference text NOT NULL CHECK (char_length(agreement_reference) BETWEEN 1 AND 100),
  agreed_on           date NOT NULL,
  valid_from          date NOT NULL,
  valid_until         date CHECK (valid_until IS NULL OR valid_until >= valid_from),
  created_by          uuid REFERENCES actors (id),
  created_at          timestamptz NOT NULL,
  UNIQUE (verifier_id, agreement_reference)
);
CREATE INDEX jpki_designations_verifier ON jpki_designations (verifier_id);

-- 特定利用者証明検証者証明符号 (第38条の3第1項, 第2項): only the SHA-256 of the token is kept;
-- the token itself is shown once, when it is issued.
CREATE TABLE jpki_designation_tokens (
  id                uuid PRIMARY KEY,
  designation_id    uuid NOT NULL REFERENCES jpki_designations (id),
  token_sha256      bytea NOT NULL UNIQUE CHECK (octet_length(token_sha256) = 32),
  -- 'operator': issued by an agency operator; 'verifier': requested by the verifier itself.
  requested_via     text NOT NULL CHECK (requested_via IN ('operator', 'verifier')),
  issued_by         uuid REFERENCES actors (id),
  issued_at         timestamptz NOT NULL,
  revoked_at        timestamptz,
  revoked_by        uuid REFERENCES actors (id),
  revocation_reason text CHECK (revocation_reason IS NULL
                                OR char_length(revocation_reason) BETWEEN 1 AND 500),
  CHECK ((revoked_at IS NULL) = (revocation_reason IS NULL))
);
CREATE INDEX jpki_designation_tokens_designation ON jpki_designation_tokens (designation_id);
