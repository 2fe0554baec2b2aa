-- Batch audits (`POST /api/audits/batch`): the batch's explicit state (counts of items
-- running and cancelled beside the existing total / completed / failed), its window, the
-- configuration snapshot every audit of it applies, its Idempotency-Key, a cancellation
-- request and how many workflow runs it took (continue-as-new); items in request order.
ALTER TABLE audit_batches DROP CONSTRAINT audit_batches_status_check;
ALTER TABLE audit_batches ADD CONSTRAINT audit_batches_status_check
    CHECK (status IN ('pending', 'running', 'completed', 'partial', 'failed', 'cancelled'));
ALTER TABLE audit_batches
    ADD COLUMN running             INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN cancelled           INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN window_size         INTEGER NOT NULL DEFAULT 5 CHECK (window_size >= 1),
    ADD COLUMN selection           JSONB,
    ADD COLUMN config_snapshot     JSONB,
    ADD COLUMN config_version      TIMESTAMPTZ,
    ADD COLUMN idempotency_key     TEXT,
    ADD COLUMN request_fingerprint TEXT,
    ADD COLUMN cancel_requested_by TEXT,
    ADD COLUMN cancel_requested_at TIMESTAMPTZ,
    ADD COLUMN error               TEXT,
    ADD COLUMN runs                INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN started_at          TIMESTAMPTZ;
ALTER TABLE audit_batches ADD CONSTRAINT audit_batches_counts_check
    CHECK (running >= 0 AND completed >= 0 AND failed >= 0 AND cancelled >= 0
           AND running + completed + failed + cancelled <= total);
CREATE UNIQUE INDEX audit_batches_idempotency_key_idx
    ON audit_batches (created_by, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX audit_batches_created_idx ON audit_batches (created_at DESC);

ALTER TABLE audit_batch_items
    ADD COLUMN position     INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN started_at   TIMESTAMPTZ,
    ADD COLUMN completed_at TIMESTAMPTZ;
ALTER TABLE audit_batch_items ALTER COLUMN position DROP DEFAULT;
ALTER TABLE audit_batch_items ADD CONSTRAINT audit_batch_items_status_check
    CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled'));
CREATE UNIQUE INDEX audit_batch_items_position_idx ON audit_batch_items (batch_id, position);

-- One audit per batch item, whatever retries or replays do.
CREATE UNIQUE INDEX audits_batch_fiche_idx ON audits (batch_id, fiche_id)
    WHERE batch_id IS NOT NULL;
