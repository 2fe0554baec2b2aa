-- Step and control-point reruns of finished audits: one row per rerun, numbered per
-- target (n = 1, 2, … in the workflow id), with the analysis awaiting application and
-- the outcome. The trail of what changed is in audit_step_results.raw_result.rerun_history.
CREATE TABLE audit_reruns (
    id                  UUID PRIMARY KEY,
    audit_id            UUID NOT NULL REFERENCES audits (id) ON DELETE CASCADE,
    kind                TEXT NOT NULL CHECK (kind IN ('step', 'control_point')),
    position            INTEGER NOT NULL,
    control_point_index INTEGER,
    n                   INTEGER NOT NULL CHECK (n >= 1),
    workflow_id         TEXT NOT NULL UNIQUE,
    status              TEXT NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'running', 'completed', 'failed')),
    use_rlm             BOOLEAN NOT NULL DEFAULT FALSE,
    instructions        TEXT,
    requested_by        UUID REFERENCES users (id) ON DELETE SET NULL,
    requested_by_email  TEXT,
    -- The gated analysis (a step result, or one control point) waiting to be applied.
    proposal            JSONB,
    model               TEXT,
    prompt_tokens       INTEGER NOT NULL DEFAULT 0,
    completion_tokens   INTEGER NOT NULL DEFAULT 0,
    llm_requests        INTEGER NOT NULL DEFAULT 0,
    -- The step score and audit summary once applied.
    outcome             JSONB,
    error               TEXT,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at          TIMESTAMPTZ,
    completed_at        TIMESTAMPTZ,
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((kind = 'step') = (control_point_index IS NULL))
);
CREATE UNIQUE INDEX audit_reruns_target_n_idx
    ON audit_reruns (audit_id, kind, position, COALESCE(control_point_index, -1), n);
CREATE INDEX audit_reruns_unsettled_idx ON audit_reruns (status, updated_at)
    WHERE status IN ('pending', 'running');
