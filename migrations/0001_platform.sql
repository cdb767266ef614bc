-- Platform: master data, actors and credentials, audit log, outbox.
-- Plain SQL for PostgreSQL 15 and PGlite alike; forward only.

-- 全国地方公共団体コード: prefectures, municipalities (市区町村) and designated-city wards.
CREATE TABLE local_governments (
  code            char(6) PRIMARY KEY CHECK (code ~ '^[0-9]{6}$'),
  prefecture_code char(2) NOT NULL CHECK (prefecture_code ~ '^[0-9]{2}$'),
  kind            text NOT NULL CHECK (kind IN ('prefecture', 'designatedCity', 'designatedCityWard',
                                               'specialWard', 'city', 'town', 'village')),
  name            text NOT NULL,
  district        text,
  name_kana       text NOT NULL,
  parent_code     char(6) REFERENCES local_governments (code)
);
CREATE INDEX local_governments_prefecture ON local_governments (prefecture_code, kind);

-- Actors: every caller of the API is one of these (no anonymous access to any /v1 route).
CREATE TABLE actors (
  id                uuid PRIMARY KEY,
  name              text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
  type              text NOT NULL CHECK (type IN ('agencyOperator', 'prefecture', 'municipality',
                                                 'nationalAgency', 'signatureVerifier',
                                                 'authVerifier', 'resident')),
  roles             text[] NOT NULL DEFAULT '{}',
  municipality_code char(6) REFERENCES local_governments (code),
  prefecture_code   char(2),
  purposes          text[] NOT NULL DEFAULT '{}',
  display_name      text NOT NULL,
  status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
  created_at        timestamptz NOT NULL,
  CHECK (roles <@ ARRAY['registry', 'ca', 'cards', 'auditor']::text[]),
  CHECK ((type = 'agencyOperator') = (cardinality(roles) > 0)),
  CHECK ((type = 'municipality') = (municipality_code IS NOT NULL)),
  CHECK (type NOT IN ('prefecture', 'municipality') OR prefecture_code IS NOT NULL),
  CHECK (type IN ('prefecture', 'municipality') OR prefecture_code IS NULL),
  CHECK (type = 'nationalAgency' OR cardinality(purposes) = 0)
);

-- API credentials: only the SHA-256 of each bearer token is stored.
CREATE TABLE api_tokens (
  id          uuid PRIMARY KEY,
  actor_id    uuid NOT NULL REFERENCES actors (id),
  token_hash  bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
  label       text NOT NULL,
  created_at  timestamptz NOT NULL,
  expires_at  timestamptz,
  revoked_at  timestamptz
);
CREATE INDEX api_tokens_actor ON api_tokens (actor_id);

-- Audit log (seed 003): append-only, hash-chained. audit_chain holds the head of the chain;
-- appending takes its row lock, so entries are numbered without gaps in commit order.
CREATE TABLE audit_chain (
  id        boolean PRIMARY KEY DEFAULT true CHECK (id),
  last_seq  bigint NOT NULL,
  last_hash text NOT NULL
);
INSERT INTO audit_chain (id, last_seq, last_hash)
VALUES (true, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE audit_log (
  seq          bigint PRIMARY KEY,
  occurred_at  timestamptz NOT NULL,
  actor_id     uuid,
  actor_type   text NOT NULL,
  actor_name   text NOT NULL,
  action       text NOT NULL,
  subject_type text,
  subject      text,
  purpose      text,
  outcome      text NOT NULL CHECK (outcome IN ('success', 'denied', 'failed')),
  request_id   text,
  details      jsonb NOT NULL DEFAULT '{}',
  prev_hash    text NOT NULL,
  hash         text NOT NULL
);
CREATE INDEX audit_log_subject ON audit_log (subject_type, subject, seq);
CREATE INDEX audit_log_actor ON audit_log (actor_id, seq);

-- Outbox: domain events appended in the same transaction as the change they describe.
-- Appends take a transaction-level advisory lock, so ids become visible in id order and a
-- consumer's cursor never skips an event committed late.
CREATE TABLE outbox_events (
  id          bigint PRIMARY KEY,
  topic       text NOT NULL,
  key         text,
  payload     jsonb NOT NULL,
  created_at  timestamptz NOT NULL
);
CREATE SEQUENCE outbox_events_id_seq OWNED BY outbox_events.id;

CREATE TABLE outbox_consumers (
  name        text PRIMARY KEY,
  cursor      bigint NOT NULL DEFAULT 0,
  updated_at  timestamptz NOT NULL
);

-- Delivery bookkeeping: failed attempts (retried with back-off) and events given up on.
CREATE TABLE outbox_failures (
  consumer        text NOT NULL REFERENCES outbox_consumers (name),
  event_id        bigint NOT NULL REFERENCES outbox_events (id),
  attempts        integer NOT NULL,
  last_error      text NOT NULL,
  next_attempt_at timestamptz NOT NULL,
  dead            boolean NOT NULL DEFAULT false,
  PRIMARY KEY (consumer, event_id)
);

-- Small key/value facts about this installation (e.g. when demo data was created).
CREATE TABLE installation (
  key        text PRIMARY KEY,
  value      jsonb NOT NULL,
  updated_at timestamptz NOT NULL
);
