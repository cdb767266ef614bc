-- 本人確認情報 at the national server (住基法第30条の7〜; 業務方法書第4条第3号: 機構保存本人確認情報).
-- Every accepted change notification adds a version; nothing is overwritten. A person is
-- identified internally by `persons.id`, so the versions survive a resident-code change.

CREATE TABLE persons (
  id                uuid PRIMARY KEY,
  resident_code     char(11) NOT NULL UNIQUE REFERENCES resident_codes (code),
  municipality_code char(6) NOT NULL REFERENCES local_governments (code),
  status            text NOT NULL CHECK (status IN ('current', 'movingOut', 'removed')),
  latest_version    integer NOT NULL CHECK (latest_version >= 1),
  updated_at        timestamptz NOT NULL
);
CREATE INDEX persons_municipality ON persons (municipality_code, status);

-- Notifications as received (relayed municipality → prefecture → agency). Per municipality and
-- stream, `sequence` runs 1, 2, 3 … with no gaps; an identical replay returns the original
-- result and a different body under a used sequence is refused.
CREATE TABLE registry_notifications (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  stream            text NOT NULL CHECK (stream IN ('identity', 'supplement')),
  municipality_code char(6) NOT NULL REFERENCES local_governments (code),
  sequence          bigint NOT NULL CHECK (sequence >= 1),
  body_hash         bytea NOT NULL CHECK (length(body_hash) = 32),
  change_reason     text NOT NULL,
  relayed_by        char(2) NOT NULL,
  relayed_at        timestamptz NOT NULL,
  received_at       timestamptz NOT NULL,
  actor_id          uuid REFERENCES actors (id),
  person_id         uuid NOT NULL REFERENCES persons (id),
  version           integer NOT NULL,
  resident_code     char(11) NOT NULL,
  UNIQUE (stream, municipality_code, sequence)
);

CREATE TABLE identity_record_versions (
  person_id                     uuid NOT NULL REFERENCES persons (id),
  version                       integer NOT NULL CHECK (version >= 1),
  resident_code                 char(11) NOT NULL REFERENCES resident_codes (code),
  my_number                     char(12) NOT NULL REFERENCES my_numbers (my_number),
  name                          text NOT NULL,
  name_kana                     text NOT NULL,
  birth_date                    date NOT NULL,
  sex                           text NOT NULL CHECK (sex IN ('male', 'female')),
  address                       text NOT NULL,
  municipality_code             char(6) NOT NULL REFERENCES local_governments (code),
  status                        text NOT NULL CHECK (status IN ('current', 'movingOut', 'removed')),
  removal_cause                 text CHECK (removal_cause IN ('death', 'officialRemoval', 'emigration')),
  change_reason                 text NOT NULL,
  change_date                   date NOT NULL,
  planned_move_out_date         date,
  destination_municipality_code char(6) REFERENCES local_governments (code),
  destination_abroad            boolean NOT NULL DEFAULT false,
  changed_items                 text[] NOT NULL,
  closes_move_out_at            char(6),
  notification_id               bigint NOT NULL REFERENCES registry_notifications (id),
  recorded_at                   timestamptz NOT NULL,
  PRIMARY KEY (person_id, version),
  CHECK ((status = 'removed') = (removal_cause IS NOT NULL))
);
CREATE INDEX identity_record_versions_code ON identity_record_versions (resident_code);
