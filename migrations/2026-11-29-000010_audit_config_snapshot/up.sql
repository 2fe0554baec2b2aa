-- An audit runs with its configuration as it was when it started: the api stores a
-- snapshot of the configuration (and the configuration's last update as its version) on
-- the audit row; editing the configuration later never changes a running or finished
-- audit. Audits created before this migration have none and read the live configuration.
ALTER TABLE audits
    ADD COLUMN config_snapshot JSONB,
    ADD COLUMN config_version  TIMESTAMPTZ;
