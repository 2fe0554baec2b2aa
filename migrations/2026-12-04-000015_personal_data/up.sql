-- Personal data: who read unredacted data or erased it (and what retention purged), and
-- which fiches had their personal data erased.
CREATE TABLE pii_access_log (
    id           BIGSERIAL PRIMARY KEY,
    user_id      UUID REFERENCES users (id) ON DELETE SET NULL,
    user_email   TEXT,
    action       TEXT NOT NULL CHECK (action IN ('read', 'erase', 'purge')),
    subject_kind TEXT NOT NULL,
    subject_id   TEXT NOT NULL,
    detail       JSONB NOT NULL DEFAULT '{}'::jsonb,
    at           TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX pii_access_log_subject_idx ON pii_access_log (subject_kind, subject_id, at);

ALTER TABLE fiches ADD COLUMN personal_data_erased_at TIMESTAMPTZ;
