-- 署名検証者 / 団体署名検証者 / 利用者証明検証者 (公的個人認証法 第17条, 第18条, 第36条, 第37条):
-- the relying parties the agency provides revocation information (失効情報, 失効情報ファイル)
-- and the other JPKI provisions to, their credentials, the log of what operators did to them,
-- the provision counters (第41条 report, fees) and the fee rules (seed 002).

-- One row per verifier business. 法人番号: 13 digits, check digit first (validated in code too).
-- kinds: what the verifier is registered as; one business may be several kinds.
CREATE TABLE verifiers (
  id               uuid PRIMARY KEY,
  legal_name       text NOT NULL CHECK (char_length(legal_name) BETWEEN 1 AND 200),
  corporate_number char(13) NOT NULL CHECK (corporate_number ~ '^[0-9]{13}$'),
  kinds            text[] NOT NULL CHECK (
                     cardinality(kinds) > 0
                     AND kinds <@ ARRAY['signatureVerifier', 'organisationalSignatureVerifier',
                                        'authVerifier']::text[]),
  contact_name     text NOT NULL CHECK (char_length(contact_name) BETWEEN 1 AND 200),
  contact_email    text NOT NULL CHECK (char_length(contact_email) BETWEEN 3 AND 254),
  contact_phone    text NOT NULL CHECK (contact_phone ~ '^[0-9+() -]{6,30}$'),
  -- The agreement (届出 / 同意) under which the agency serves it; dates in JST, both inclusive.
  agreement_from   date NOT NULL,
  agreement_until  date CHECK (agreement_until IS NULL OR agreement_until >= agreement_from),
  status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'ended')),
  status_reason    text,
  created_at       timestamptz NOT NULL,
  ended_at         timestamptz,
  CHECK ((status = 'ended') = (ended_at IS NOT NULL)),
  CHECK (status = 'active' OR status_reason IS NOT NULL)
);
-- A corporation is registered once while its registration is alive; an ended one may register anew.
CREATE UNIQUE INDEX verifiers_corporate_number_live ON verifiers (corporate_number)
  WHERE status <> 'ended';

-- What operators did to a verifier, when and why. Append-only: rows are never updated or
-- deleted (the trigger refuses it); the audit log holds the same actions hash-chained.
CREATE TABLE verifier_actions (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  verifier_id uuid NOT NULL REFERENCES verifiers (id),
  action      text NOT NULL CHECK (action IN ('register', 'credential', 'suspend', 'resume',
                                              'terminate', 'agreement')),
  actor_id    uuid,
  actor_name  text NOT NULL,
  reason      text,
  details     jsonb NOT NULL DEFAULT '{}',
  occurred_at timestamptz NOT NULL
);
CREATE INDEX verifier_actions_verifier ON verifier_actions (verifier_id, id);

CREATE FUNCTION verifier_actions_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'verifier_actions is append-only';
END;
$$;
CREATE TRIGGER verifier_actions_append_only BEFORE UPDATE OR DELETE ON verifier_actions
  FOR EACH ROW EXECUTE FUNCTION verifier_actions_append_only();

-- Credentials of a verifier are actors of the verifier kind they act as, bound to it.
ALTER TABLE actors DROP CONSTRAINT actors_type_check;
ALTER TABLE actors ADD CONSTRAINT actors_type_check CHECK (type IN (
  'agencyOperator', 'prefecture', 'municipality', 'nationalAgency', 'signatureVerifier',
  'organisationalSignatureVerifier', 'authVerifier', 'resident'));
ALTER TABLE actors ADD COLUMN verifier_id uuid REFERENCES verifiers (id);
CREATE INDEX actors_verifier ON actors (verifier_id) WHERE verifier_id IS NOT NULL;
ALTER TABLE actors ADD CONSTRAINT actors_verifier_binding CHECK (
  verifier_id IS NULL
  OR type IN ('signatureVerifier', 'organisationalSignatureVerifier', 'authVerifier'));
-- New verifier credentials must be bound; NOT VALID keeps actors created before this
-- migration (they are refused at the edge with verifier.not-registered until bound).
ALTER TABLE actors ADD CONSTRAINT actors_verifier_required CHECK (
  type NOT IN ('signatureVerifier', 'organisationalSignatureVerifier', 'authVerifier')
  OR verifier_id IS NOT NULL) NOT VALID;

-- Provisions to verifiers, counted per verifier, kind the credential acted as, provision kind
-- and day (JST). OCSP/CRL counts are buffered in memory and added every second.
CREATE TABLE verifier_provisions (
  verifier_id    uuid NOT NULL REFERENCES verifiers (id),
  verifier_kind  text NOT NULL CHECK (verifier_kind IN ('signatureVerifier',
                                   'organisationalSignatureVerifier', 'authVerifier')),
  provision_kind text NOT NULL CHECK (provision_kind IN ('ocsp', 'crl', 'certifiedBasicFour',
                                                          'linkedSerial', 'designationToken')),
  day            date NOT NULL,
  count          bigint NOT NULL CHECK (count >= 0),
  PRIMARY KEY (verifier_id, verifier_kind, provision_kind, day)
);
CREATE INDEX verifier_provisions_day ON verifier_provisions (day, provision_kind);

-- 手数料 rules as data. yen_per_unit NULL = no amount set by the seeds (counts are still
-- reported, the fee is shown as unknown). Dates inclusive, JST; valid_from NULL = open start.
CREATE TABLE verifier_fee_rules (
  id             text PRIMARY KEY CHECK (id ~ '^[a-z0-9.-]{1,64}$'),
  provision_kind text NOT NULL CHECK (provision_kind IN ('ocsp', 'crl', 'certifiedBasicFour',
                                                          'linkedSerial', 'designationToken')),
  valid_from     date,
  valid_until    date CHECK (valid_until IS NULL OR valid_from IS NULL OR valid_until >= valid_from),
  yen_per_unit   integer CHECK (yen_per_unit IS NULL OR yen_per_unit >= 0),
  source         text NOT NULL
);
INSERT INTO verifier_fee_rules (id, provision_kind, valid_from, valid_until, yen_per_unit, source)
VALUES
  ('ocsp.free-2023', 'ocsp', '2023-01-01', '2025-12-31', 0,
   'seed 002 (令和7年度事業計画): OCSP 方式は令和５年１月からの３年間…電子証明書失効情報提供手数料を無料'),
  ('ocsp.after-free', 'ocsp', '2026-01-01', NULL, NULL,
   'seed 002: the free period ends; the amount after it is not set by the seeds'),
  ('ocsp.before-free', 'ocsp', NULL, '2022-12-31', NULL,
   'seed 002: the amount before the free period is not set by the seeds'),
  ('crl.free', 'crl', '2023-01-01', NULL, 0,
   'seed 002 (令和7年度事業計画): CRL 方式は恒久的に電子証明書失効情報提供手数料を無料'),
  ('crl.before-free', 'crl', NULL, '2022-12-31', NULL,
   'seed 002: the amount before the free measure is not set by the seeds'),
  ('certified-basic-four', 'certifiedBasicFour', NULL, NULL, NULL,
   'no amount in the seeds (特定署名用電子証明書記録情報, 第18条第3項)'),
  ('linked-serial', 'linkedSerial', NULL, NULL, NULL,
   'no amount in the seeds (対応証明書の発行の番号, 第18条第4項・第5項, 第37条第3項)'),
  ('designation-token', 'designationToken', NULL, NULL, NULL,
   'no amount in the seeds (特定利用者証明検証者証明符号, 第38条の3)');
