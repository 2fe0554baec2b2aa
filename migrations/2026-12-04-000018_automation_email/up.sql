-- Automation e-mail: one row per run whose schedule names addresses, with the
-- delivery's attempts and outcome (`skipped` when SMTP is not configured).
CREATE TABLE automation_email_deliveries (
    id            BIGSERIAL PRIMARY KEY,
    run_id        UUID NOT NULL UNIQUE REFERENCES automation_runs (id) ON DELETE CASCADE,
    recipients    TEXT[] NOT NULL,
    status        TEXT NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'sent', 'failed', 'skipped')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    smtp_response TEXT,
    error         TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
