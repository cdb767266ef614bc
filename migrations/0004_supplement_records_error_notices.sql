-- 附票本人確認情報 at the national server (住基法第30条の41〜; 業務方法書第4条第3号: 機構保存附票本人確認情報)
-- and the agency's notices of errors in received data (業務方法書第4条第2号: 誤りに関する通報).

-- One row per accepted supplement notification (stream 'supplement' in registry_notifications);
-- nothing is overwritten. The 戸籍の附票 is kept by the municipality of the 本籍 (住基法第16条),
-- which may differ from where the person lives, so the holder is recorded on every version.
-- A person has one 附票 chain per keeping municipality: after a 転籍 the new 本籍地 records an
-- entry and the old one removes its own, in whichever order the two notifications arrive.
-- `version` counts the person's supplement versions across all municipalities.
CREATE TABLE supplement_record_versions (
  person_id         uuid NOT NULL REFERENCES persons (id),
  version           integer NOT NULL CHECK (version >= 1),
  municipality_code char(6) NOT NULL REFERENCES local_governments (code),
  resident_code     char(11) NOT NULL REFERENCES resident_codes (code),
  name              text NOT NULL,
  name_kana         text NOT NULL,
  birth_date        date NOT NULL,
  sex               text NOT NULL CHECK (sex IN ('male', 'female')),
  -- 住所 in Japan, or (国外転出者, 第17条第3号) the country and optionally the address abroad.
  address           text,
  abroad            boolean NOT NULL,
  overseas_country  char(2) CHECK (overseas_country ~ '^[A-Z]{2}$'),
  overseas_address  text,
  status            text NOT NULL CHECK (status IN ('current', 'removed')),
  change_reason     text NOT NULL,
  change_date       date NOT NULL,
  changed_items     text[] NOT NULL,
  previous_resident_code char(11),
  notification_id   bigint NOT NULL UNIQUE REFERENCES registry_notifications (id),
  recorded_at       timestamptz NOT NULL,
  PRIMARY KEY (person_id, version),
  CHECK (abroad = (overseas_country IS NOT NULL)),
  CHECK (abroad = (address IS NULL)),
  CHECK (abroad OR overseas_address IS NULL)
);
CREATE INDEX supplement_record_versions_holder
  ON supplement_record_versions (person_id, municipality_code, version);
CREATE INDEX supplement_record_versions_code ON supplement_record_versions (resident_code);

-- 誤りに関する通報: an inconsistency the agency found in received data that intake could not
-- refuse outright, addressed to one prefecture (都道府県知事) about one of its municipalities.
-- `detail` names items and municipalities, never a name, date of birth, address or My Number.
-- `source_key` identifies the finding, so a detector that runs twice records it once.
CREATE TABLE error_notices (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  prefecture_code   char(2) NOT NULL CHECK (prefecture_code ~ '^[0-9]{2}$'),
  municipality_code char(6) NOT NULL REFERENCES local_governments (code),
  kind              text NOT NULL CHECK (kind IN ('doubleRegistration', 'moveOutDestinationMismatch',
                                                  'supplementIdentityMismatch')),
  resident_codes    text[] NOT NULL CHECK (cardinality(resident_codes) >= 1),
  detail            text NOT NULL CHECK (length(detail) BETWEEN 1 AND 500),
  source_key        text NOT NULL,
  found_at          timestamptz NOT NULL,
  -- 'resolved' is reserved for closing a notice once the prefecture's correction arrives.
  status            text NOT NULL DEFAULT 'open'
                    CHECK (status IN ('open', 'acknowledged', 'resolved')),
  acknowledged_at   timestamptz,
  acknowledged_by   uuid REFERENCES actors (id),
  UNIQUE (source_key, municipality_code),
  CHECK (prefecture_code = substr(municipality_code, 1, 2)),
  CHECK (status <> 'open' OR (acknowledged_at IS NULL AND acknowledged_by IS NULL)),
  CHECK (status <> 'acknowledged' OR acknowledged_at IS NOT NULL)
);
CREATE INDEX error_notices_prefecture ON error_notices (prefecture_code, status, id);

-- Double-registration detection looks up newly registered persons by basic data.
CREATE INDEX identity_record_versions_first_basic
  ON identity_record_versions (birth_date, sex) WHERE version = 1;
