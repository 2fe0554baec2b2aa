-- `POST /api/audits/run` with an `Idempotency-Key` header: the same key (per user) and
-- body return the same audit; the key with another body is refused.
ALTER TABLE audits
    ADD COLUMN idempotency_key     TEXT,
    ADD COLUMN request_fingerprint TEXT;

CREATE UNIQUE INDEX audits_idempotency_key_idx
    ON audits (requested_by, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
