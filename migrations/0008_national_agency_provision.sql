-- Provision of 機構保存本人確認情報 to national agencies (住民基本台帳法 第30条の9): searching by
-- the basic-4 starts from the date of birth, so index it. The legal purposes themselves are data
-- in master-data/provision-purposes.json.
CREATE INDEX identity_record_versions_birth_date ON identity_record_versions (birth_date);
