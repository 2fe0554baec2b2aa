-- Progressive fiche fetch jobs, batch audits, automation schedules and runs, chat.
CREATE TABLE fiche_fetch_jobs (
    id           UUID PRIMARY KEY,
    date_from    DATE NOT NULL,
    date_to      DATE NOT NULL,
    status       TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'running', 'completed', 'partial', 'failed')),
    workflow_id  TEXT NOT NULL UNIQUE,
    days_total   INTEGER NOT NULL DEFAULT 0,
    days_done    INTEGER NOT NULL DEFAULT 0,
    days_failed  INTEGER NOT NULL DEFAULT 0,
    fiches_found INTEGER NOT NULL DEFAULT 0,
    error        TEXT,
    created_by   UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at TIMESTAMPTZ,
    CHECK (date_to >= date_from)
);

CREATE TABLE fiche_fetch_job_days (
    job_id       UUID NOT NULL REFERENCES fiche_fetch_jobs (id) ON DELETE CASCADE,
    day          DATE NOT NULL,
    status       TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'running', 'completed', 'failed')),
    fiches_found INTEGER NOT NULL DEFAULT 0,
    error        TEXT,
    started_at   TIMESTAMPTZ,
    completed_at TIMESTAMPTZ,
    PRIMARY KEY (job_id, day)
);

CREATE TABLE audit_batches (
    id              UUID PRIMARY KEY,
    audit_config_id UUID NOT NULL REFERENCES audit_configs (id),
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'running', 'completed', 'partial', 'failed')),
    workflow_id     TEXT NOT NULL UNIQUE,
    use_rlm         BOOLEAN NOT NULL DEFAULT FALSE,
    total           INTEGER NOT NULL DEFAULT 0,
    completed       INTEGER NOT NULL DEFAULT 0,
    failed          INTEGER NOT NULL DEFAULT 0,
    created_by      UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at    TIMESTAMPTZ
);

CREATE TABLE audit_batch_items (
    batch_id UUID NOT NULL REFERENCES audit_batches (id) ON DELETE CASCADE,
    fiche_id TEXT NOT NULL,
    audit_id UUID,
    status   TEXT NOT NULL DEFAULT 'pending',
    error    TEXT,
    PRIMARY KEY (batch_id, fiche_id)
);

CREATE TABLE automation_schedules (
    id                   UUID PRIMARY KEY,
    name                 TEXT NOT NULL,
    description          TEXT NOT NULL DEFAULT '',
    cron                 TEXT NOT NULL,
    timezone             TEXT NOT NULL DEFAULT 'Europe/Paris',
    active               BOOLEAN NOT NULL DEFAULT TRUE,
    audit_config_id      UUID REFERENCES audit_configs (id) ON DELETE SET NULL,
    -- groupes, onlyUnaudited, onlyWithRecordings, maxRecordingsPerFiche, useRlm, date window.
    fiche_selection      JSONB NOT NULL DEFAULT '{}'::jsonb,
    -- skipIfTranscribed, continueOnError, retryFailed, maxRetries.
    options              JSONB NOT NULL DEFAULT '{}'::jsonb,
    -- webhook url, e-mail recipients.
    notifications        JSONB NOT NULL DEFAULT '{}'::jsonb,
    temporal_schedule_id TEXT NOT NULL UNIQUE,
    created_by           UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE automation_runs (
    id             UUID PRIMARY KEY,
    schedule_id    UUID NOT NULL REFERENCES automation_schedules (id) ON DELETE CASCADE,
    scheduled_at   TIMESTAMPTZ NOT NULL,
    status         TEXT NOT NULL DEFAULT 'running'
                   CHECK (status IN ('running', 'completed', 'partial', 'failed')),
    workflow_id    TEXT NOT NULL UNIQUE,
    result_summary JSONB NOT NULL DEFAULT '{}'::jsonb,
    ignored_fiches JSONB NOT NULL DEFAULT '[]'::jsonb,
    error          TEXT,
    started_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at   TIMESTAMPTZ,
    UNIQUE (schedule_id, scheduled_at)
);

CREATE TABLE chat_conversations (
    id         UUID PRIMARY KEY,
    audit_id   UUID REFERENCES audits (id) ON DELETE CASCADE,
    fiche_id   TEXT REFERENCES fiches (fiche_id) ON DELETE CASCADE,
    user_id    UUID REFERENCES users (id) ON DELETE SET NULL,
    title      TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (audit_id IS NOT NULL OR fiche_id IS NOT NULL)
);

CREATE TABLE chat_messages (
    id              BIGSERIAL PRIMARY KEY,
    conversation_id UUID NOT NULL REFERENCES chat_conversations (id) ON DELETE CASCADE,
    role            TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content         TEXT NOT NULL,
    tokens          INTEGER NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX chat_messages_conversation_idx ON chat_messages (conversation_id, id DESC);
