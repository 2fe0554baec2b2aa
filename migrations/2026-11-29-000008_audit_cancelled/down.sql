UPDATE audits SET status = 'failed', error = coalesce(error, 'cancelled') WHERE status = 'cancelled';
ALTER TABLE audits DROP CONSTRAINT audits_status_check;
ALTER TABLE audits ADD CONSTRAINT audits_status_check
    CHECK (status IN ('pending', 'running', 'completed', 'failed'));
