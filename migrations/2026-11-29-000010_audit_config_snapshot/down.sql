ALTER TABLE audits
    DROP COLUMN config_version,
    DROP COLUMN config_snapshot;
