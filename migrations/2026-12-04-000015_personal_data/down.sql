ALTER TABLE fiches DROP COLUMN personal_data_erased_at;
DROP TABLE pii_access_log;
