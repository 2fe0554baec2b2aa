-- Audit configurations (steps, control points), audits and their per-step results.
CREATE TABLE audit_configs (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    active      BOOLEAN NOT NULL DEFAULT TRUE,
    created_by  UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE audit_steps (
    id              UUID PRIMARY KEY,
    audit_config_id UUID NOT NULL REFERENCES audit_configs (id) ON DELETE CASCADE,
    position        INTEGER NOT NULL CHECK (position >= 1),
    name            TEXT NOT NULL,
    instructions    TEXT NOT NULL DEFAULT '',
    weight          DOUBLE PRECISION NOT NULL CHECK (weight >= 0),
    critical        BOOLEAN NOT NULL DEFAULT FALSE,
    UNIQUE (audit_config_id, position)
);

CREATE TABLE audit_control_points (
    id          UUID PRIMARY KEY,
    step_id     UUID NOT NULL REFERENCES audit_steps (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL CHECK (position >= 0),
    description TEXT NOT NULL,
    UNIQUE (step_id, position)
);

CREATE TABLE audits (
    id              UUID PRIMARY KEY,
    fiche_id        TEXT NOT NULL REFERENCES fiches (fiche_id),
    audit_config_id UUID NOT NULL REFERENCES audit_configs (id),
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'running', 'completed', 'failed')),
    use_rlm         BOOLEAN NOT NULL DEFAULT FALSE,
    workflow_id     TEXT NOT NULL UNIQUE,
    score           DOUBLE PRECISION,
    niveau          TEXT,
    critical        BOOLEAN,
    steps_total     INTEGER NOT NULL DEFAULT 0,
    steps_done      INTEGER NOT NULL DEFAULT 0,
    error           TEXT,
    batch_id        UUID,
    requested_by    UUID REFERENCES users (id) ON DELETE SET NULL,
    started_at      TIMESTAMPTZ,
    completed_at    TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX audits_fiche_idx ON audits (fiche_id, created_at DESC);
CREATE INDEX audits_batch_idx ON audits (batch_id);

-- One row per (audit, step position): the idempotency key of AuditStepWorkflow.
CREATE TABLE audit_step_results (
    id                UUID PRIMARY KEY,
    audit_id          UUID NOT NULL REFERENCES audits (id) ON DELETE CASCADE,
    position          INTEGER NOT NULL,
    step_name         TEXT NOT NULL,
    weight            DOUBLE PRECISION NOT NULL,
    critical          BOOLEAN NOT NULL,
    score             DOUBLE PRECISION NOT NULL,
    conforme          TEXT NOT NULL CHECK (conforme IN ('CONFORME', 'PARTIEL', 'NON_CONFORME')),
    -- The gated analysis: points_controle, commentaire, rerun_history.
    raw_result        JSONB NOT NULL,
    model             TEXT,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (audit_id, position)
);
