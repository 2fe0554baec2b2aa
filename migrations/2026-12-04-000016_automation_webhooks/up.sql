-- Automation webhooks: the per-schedule signing secret (shown once, at creation) and
-- one row per delivery of a run's event, with its attempts and outcome.
ALTER TABLE automation_schedules ADD COLUMN webhook_secret TEXT;
CREATE TABLE automation_webhook_deliveries (
    id              BIGSERIAL PRIMARY KEY,
    run_id          UUID NOT NULL REFERENCES automation_runs (id) ON DELETE CASCADE,
    event           TEXT NOT NULL,
    url             TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'failed', 'refused')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    response_status INTEGER,
    error           TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (run_id, event)
);
