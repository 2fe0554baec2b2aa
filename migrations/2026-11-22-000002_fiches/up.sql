-- CRM fiches cached locally, their recordings and transcriptions.
CREATE TABLE fiches (
    fiche_id           TEXT PRIMARY KEY,
    cle                TEXT,
    groupe             TEXT,
    statut             TEXT,
    date_vente         TIMESTAMPTZ,
    client             JSONB NOT NULL DEFAULT '{}'::jsonb,
    details            JSONB,
    -- TRUE while only the partial row from /sales-with-calls is known (seed: _salesListOnly).
    sales_list_only    BOOLEAN NOT NULL DEFAULT TRUE,
    recordings_count   INTEGER NOT NULL DEFAULT 0,
    details_fetched_at TIMESTAMPTZ,
    force_refreshed_at TIMESTAMPTZ,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX fiches_date_vente_idx ON fiches (date_vente);
CREATE INDEX fiches_groupe_idx ON fiches (groupe);

CREATE TABLE recordings (
    recording_id TEXT PRIMARY KEY,
    fiche_id     TEXT NOT NULL REFERENCES fiches (fiche_id) ON DELETE CASCADE,
    position     INTEGER NOT NULL DEFAULT 0,
    url          TEXT NOT NULL,
    started_at   TIMESTAMPTZ,
    duration_s   DOUBLE PRECISION,
    direction    TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX recordings_fiche_idx ON recordings (fiche_id, position);

-- One transcription per recording (the TranscriptionWorkflow id is derived from recording_id).
CREATE TABLE transcriptions (
    recording_id TEXT PRIMARY KEY REFERENCES recordings (recording_id) ON DELETE CASCADE,
    status       TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'running', 'completed', 'failed')),
    provider     TEXT NOT NULL DEFAULT 'elevenlabs',
    model        TEXT,
    language     TEXT,
    text         TEXT,
    words        JSONB,
    word_count   INTEGER NOT NULL DEFAULT 0,
    error        TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at TIMESTAMPTZ
);
