-- Holder proof and resident access (利用者証明用電子証明書によるログイン; 開示, 機構規程 第4条(8),
-- 第5条(23)): single-use challenges a certificate holder signs, and residents bound to a person.

-- A challenge is 32 random bytes, valid for five minutes and usable once, for one purpose.
CREATE TABLE jpki_challenges (
  id          uuid PRIMARY KEY,
  purpose     text NOT NULL CHECK (purpose IN ('residentLogin', 'consent')),
  nonce       bytea NOT NULL CHECK (length(nonce) = 32),
  created_at  timestamptz NOT NULL,
  expires_at  timestamptz NOT NULL,
  used_at     timestamptz
);
CREATE INDEX jpki_challenges_expiry ON jpki_challenges (expires_at);

-- A `resident` actor stands for one person (the holder who logged in); its tokens are sessions.
ALTER TABLE actors ADD COLUMN person_id uuid REFERENCES persons (id);
CREATE UNIQUE INDEX actors_person ON actors (person_id) WHERE person_id IS NOT NULL;
