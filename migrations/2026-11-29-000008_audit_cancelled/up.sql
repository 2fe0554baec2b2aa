-- An audit can be cancelled (`POST /api/audits/{id}/cancel`).
ALTER TABLE audits DROP CONSTRAINT audits_status_check;
ALTER TABLE audits ADD CONSTRAINT audits_status_check
    CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled'));
