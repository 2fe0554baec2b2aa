DROP INDEX audits_idempotency_key_idx;
ALTER TABLE audits
    DROP COLUMN request_fingerprint,
    DROP COLUMN idempotency_key;
