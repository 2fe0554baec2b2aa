DROP INDEX audits_batch_fiche_idx;

DROP INDEX audit_batch_items_position_idx;
ALTER TABLE audit_batch_items DROP CONSTRAINT audit_batch_items_status_check;
ALTER TABLE audit_batch_items
    DROP COLUMN completed_at,
    DROP COLUMN started_at,
    DROP COLUMN position;

DROP INDEX audit_batches_created_idx;
DROP INDEX audit_batches_idempotency_key_idx;
ALTER TABLE audit_batches DROP CONSTRAINT audit_batches_counts_check;
ALTER TABLE audit_batches
    DROP COLUMN started_at,
    DROP COLUMN runs,
    DROP COLUMN error,
    DROP COLUMN cancel_requested_at,
    DROP COLUMN cancel_requested_by,
    DROP COLUMN request_fingerprint,
    DROP COLUMN idempotency_key,
    DROP COLUMN config_version,
    DROP COLUMN config_snapshot,
    DROP COLUMN selection,
    DROP COLUMN window_size,
    DROP COLUMN cancelled,
    DROP COLUMN running;
UPDATE audit_batches SET status = 'failed' WHERE status = 'cancelled';
ALTER TABLE audit_batches DROP CONSTRAINT audit_batches_status_check;
ALTER TABLE audit_batches ADD CONSTRAINT audit_batches_status_check
    CHECK (status IN ('pending', 'running', 'completed', 'partial', 'failed'));
