-- 公的個人認証サービス (JPKI): the certification authorities, issuance records (発行記録),
-- revocation records (失効情報), holder notices, public announcements and revocation lists
-- (失効情報ファイル). Rows are never deleted by a request; `retain_until` is when the
-- retention period (保存期間, set by 政令) allows erasure.

-- 発行の番号: one increasing counter shared by every JPKI certificate (CA roots, OCSP
-- responders, signing and authentication certificates for cards and smartphones).
CREATE SEQUENCE jpki_serial AS bigint START WITH 1 MINVALUE 1;

-- cRLNumber: increasing across every revocation list the agency signs.
CREATE SEQUENCE jpki_crl_number AS bigint START WITH 1 MINVALUE 1;

-- One row per CA generation (the root is re-keyed every few years; generations overlap).
CREATE TABLE jpki_cas (
  kind           text NOT NULL CHECK (kind IN ('sign', 'auth')),
  generation     integer NOT NULL CHECK (generation >= 1),
  key_label      text NOT NULL UNIQUE REFERENCES key_store (label),
  serial         bigint NOT NULL UNIQUE,
  subject        bytea NOT NULL,
  key_id         bytea NOT NULL UNIQUE,
  certificate    bytea NOT NULL,
  not_before     timestamptz NOT NULL,
  not_after      timestamptz NOT NULL,
  -- 発行者署名符号の漏えい等 (第14条/第33条): the key must no longer be used.
  compromised_at timestamptz,
  created_at     timestamptz NOT NULL,
  PRIMARY KEY (kind, generation)
);

-- Delegated OCSP responder certificates (EKU OCSPSigning + ocsp-nocheck), per CA generation.
CREATE TABLE jpki_ocsp_responders (
  serial         bigint PRIMARY KEY,
  kind           text NOT NULL,
  generation     integer NOT NULL,
  key_label      text NOT NULL UNIQUE REFERENCES key_store (label),
  key_hash       bytea NOT NULL,
  certificate    bytea NOT NULL,
  not_before     timestamptz NOT NULL,
  not_after      timestamptz NOT NULL,
  created_at     timestamptz NOT NULL,
  FOREIGN KEY (kind, generation) REFERENCES jpki_cas (kind, generation)
);
CREATE INDEX jpki_ocsp_responders_ca ON jpki_ocsp_responders (kind, generation, not_after);

-- 発行記録 (第8条/第27条 and the mobile twins): a row is written with the to-be-signed
-- certificate and its serial in one transaction BEFORE the CA signs ('pending'); the signed
-- DER is stored afterwards ('issued'). A crash in between leaves a visible 'pending' row that
-- `kiban jpki recover` abandons ('abandoned': never handed to anyone, answered as unknown).
CREATE TABLE jpki_certificates (
  serial            bigint PRIMARY KEY,
  kind              text NOT NULL CHECK (kind IN ('sign', 'auth')),
  medium            text NOT NULL CHECK (medium IN ('card', 'mobile')),
  ca_generation     integer NOT NULL,
  person_id         uuid NOT NULL REFERENCES persons (id),
  resident_code     char(11) NOT NULL REFERENCES resident_codes (code),
  -- The municipality that applied (the holder's 住所地市町村長) = the CRL partition named in
  -- the certificate's cRLDistributionPoints.
  municipality_code char(6) NOT NULL REFERENCES local_governments (code),
  state             text NOT NULL CHECK (state IN ('pending', 'issued', 'abandoned')),
  tbs               bytea NOT NULL,
  certificate       bytea,
  public_key_sha256 bytea NOT NULL,
  not_before        timestamptz NOT NULL,
  not_after         timestamptz NOT NULL,
  -- mobile: the card signing certificate whose signature authorised the issuance (第16条の2).
  authorised_by     bigint REFERENCES jpki_certificates (serial),
  requested_by      uuid REFERENCES actors (id),
  request_id        text,
  created_at        timestamptz NOT NULL,
  issued_at         timestamptz,
  retain_until      date NOT NULL,
  FOREIGN KEY (kind, ca_generation) REFERENCES jpki_cas (kind, generation),
  CHECK ((state = 'issued') = (certificate IS NOT NULL AND issued_at IS NOT NULL))
);
CREATE INDEX jpki_certificates_person ON jpki_certificates (person_id, kind, medium);
CREATE INDEX jpki_certificates_partition
  ON jpki_certificates (kind, ca_generation, municipality_code, serial);
-- Every issuance checks that the key has no certificate yet.
CREATE INDEX jpki_certificates_key ON jpki_certificates (public_key_sha256);
CREATE INDEX jpki_certificates_pending ON jpki_certificates (created_at) WHERE state = 'pending';

-- 失効情報: effective immediately. category is the legal category (GLOSSARY.md); crl_reason
-- the RFC 5280 reason code name written into CRLs and OCSP responses.
CREATE TABLE jpki_revocations (
  serial        bigint PRIMARY KEY REFERENCES jpki_certificates (serial),
  kind          text NOT NULL,
  ca_generation integer NOT NULL,
  category      text NOT NULL CHECK (category IN ('request', 'lossReport', 'registryChange',
                  'recordError', 'issuerKeyCompromise', 'cardCertificateRevoked')),
  crl_reason    text NOT NULL CHECK (crl_reason IN ('unspecified', 'keyCompromise',
                  'cACompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation')),
  revoked_at    timestamptz NOT NULL,
  -- The certificate that replaced this one (supersession), when there is one.
  superseded_by bigint REFERENCES jpki_certificates (serial),
  -- What caused it when no person asked: `event:<outbox id>` (a registry change) or
  -- `certificate:<serial>` (the mobile cascade).
  cause         text,
  requested_by  uuid REFERENCES actors (id),
  request_id    text,
  retain_until  date NOT NULL
);
CREATE INDEX jpki_revocations_ca ON jpki_revocations (kind, ca_generation, serial);

-- Registry-driven revocations that take effect later: the authentication certificate 30
-- days after a planned move-out with no move-in (第31条), the signing certificate on the
-- departure date of an emigration (第12条). A move-in deletes the pending lapse.
CREATE TABLE jpki_scheduled_revocations (
  serial     bigint PRIMARY KEY REFERENCES jpki_certificates (serial),
  person_id  uuid NOT NULL REFERENCES persons (id),
  reason     text NOT NULL CHECK (reason IN ('moveOutLapse', 'emigration')),
  due_at     timestamptz NOT NULL,
  cause      text NOT NULL,
  created_at timestamptz NOT NULL
);
CREATE INDEX jpki_scheduled_revocations_due ON jpki_scheduled_revocations (due_at);
CREATE INDEX jpki_scheduled_revocations_person ON jpki_scheduled_revocations (person_id);

-- 記録誤り等 (第13条第2項/第32条第2項): the holder must be notified promptly.
CREATE TABLE jpki_holder_notices (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  serial        bigint NOT NULL REFERENCES jpki_certificates (serial),
  person_id     uuid NOT NULL REFERENCES persons (id),
  reason        text NOT NULL CHECK (reason IN ('recordError')),
  created_at    timestamptz NOT NULL,
  delivered_at  timestamptz
);

-- 公示 (第14条第2項/第33条第2項): a compromised issuer key and how many certificates it voided.
CREATE TABLE jpki_announcements (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  category        text NOT NULL CHECK (category IN ('issuerKeyCompromise')),
  kind            text NOT NULL,
  generation      integer NOT NULL,
  revoked_count   bigint NOT NULL,
  announced_at    timestamptz NOT NULL,
  FOREIGN KEY (kind, generation) REFERENCES jpki_cas (kind, generation)
);

-- 失効情報ファイル: every published CRL, per CA generation and partition (a municipality code,
-- or 'arl' for the authority revocation list), kept for the retention period.
CREATE TABLE jpki_crls (
  crl_number    bigint PRIMARY KEY,
  kind          text NOT NULL,
  generation    integer NOT NULL,
  partition     text NOT NULL CHECK (partition = 'arl' OR partition ~ '^[0-9]{6}$'),
  this_update   timestamptz NOT NULL,
  next_update   timestamptz NOT NULL,
  entries       integer NOT NULL,
  der           bytea NOT NULL,
  retain_until  date NOT NULL,
  FOREIGN KEY (kind, generation) REFERENCES jpki_cas (kind, generation)
);
CREATE INDEX jpki_crls_latest ON jpki_crls (kind, generation, partition, crl_number DESC);
