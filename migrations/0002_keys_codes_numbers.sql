-- Key store, resident codes (住民票コード) and My Numbers (個人番号).

-- Keys held by the agency (CA keys, the My Number generation key …), each wrapped with
-- AES-256-GCM under the installation's master key; key material is never stored in clear.
CREATE TABLE key_store (
  label        text PRIMARY KEY CHECK (label ~ '^[a-z0-9][a-z0-9./_-]{0,127}$'),
  algorithm    text NOT NULL CHECK (algorithm IN ('aes-256', 'rsa-2048', 'rsa-3072', 'ec-p256')),
  purpose      text NOT NULL CHECK (purpose <> '' AND length(purpose) <= 200),
  -- 'software': wrapped under the master key here; 'pkcs11': held by an HSM (token_key_id).
  backend      text NOT NULL DEFAULT 'software' CHECK (backend IN ('software', 'pkcs11')),
  wrapped_key  bytea,
  wrap_iv      bytea CHECK (length(wrap_iv) = 12),
  wrap_tag     bytea CHECK (length(wrap_tag) = 16),
  token_key_id text,
  kek_id       text NOT NULL,
  public_key   bytea,
  created_at   timestamptz NOT NULL,
  CHECK ((backend = 'software') = (wrapped_key IS NOT NULL AND wrap_iv IS NOT NULL
                                   AND wrap_tag IS NOT NULL)),
  CHECK ((backend = 'pkcs11') = (token_key_id IS NOT NULL)),
  CHECK (backend <> 'software' OR kek_id ~ '^[0-9a-f]{16}$'),
  CHECK ((algorithm = 'aes-256') = (public_key IS NULL))
);

-- 住民票コード (住基法第30条の2, 第30条の3): every code ever drawn. Codes are allotted to a
-- municipality's pool at random, handed out once, and on a resident-code change (第30条の4)
-- retired with a link to their successor. Rows are never deleted, so no code is reused.
CREATE TABLE resident_codes (
  code              char(11) PRIMARY KEY CHECK (code ~ '^[0-9]{11}$'),
  municipality_code char(6) NOT NULL REFERENCES local_governments (code),
  state             text NOT NULL CHECK (state IN ('pooled', 'issued', 'retired')),
  -- Random rank fixed at allotment: codes leave a pool in this order, not in code order.
  pool_rank         bigint NOT NULL,
  allotted_at       timestamptz NOT NULL,
  issued_at         timestamptz,
  retired_at        timestamptz,
  successor_code    char(11) REFERENCES resident_codes (code),
  CHECK ((state = 'pooled') = (issued_at IS NULL)),
  CHECK ((state = 'retired') = (retired_at IS NOT NULL))
);
CREATE INDEX resident_codes_pool ON resident_codes (municipality_code, pool_rank) WHERE state = 'pooled';

-- 個人番号 (番号法第8条): every number ever generated. A number stays with its person when
-- the person's resident code changes (holder_code follows the successor); renumbering
-- (第7条第2項) retires it. The primary key makes every number unique forever.
CREATE TABLE my_numbers (
  my_number         char(12) PRIMARY KEY CHECK (my_number ~ '^[0-9]{12}$'),
  generated_from    char(11) NOT NULL REFERENCES resident_codes (code),
  holder_code       char(11) NOT NULL REFERENCES resident_codes (code),
  key_label         text NOT NULL REFERENCES key_store (label),
  tweak             integer NOT NULL,
  issued_at         timestamptz NOT NULL,
  issued_to         char(6) NOT NULL REFERENCES local_governments (code),
  retired_at        timestamptz,
  retire_reason     text,
  CHECK ((retired_at IS NULL) = (retire_reason IS NULL))
);
CREATE UNIQUE INDEX my_numbers_one_active ON my_numbers (holder_code) WHERE retired_at IS NULL;
CREATE UNIQUE INDEX my_numbers_source ON my_numbers (generated_from, tweak);
