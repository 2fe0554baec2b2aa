-- Progressive fetch jobs as ProgressiveFetchWorkflow runs them: the request (groupes,
-- force_refresh), attempts (a retry redoes the failed days as attempt n), and per-day
-- and per-job counts of sales found, details stored and detail fetches failed.
ALTER TABLE fiche_fetch_jobs
    ADD COLUMN groupes        JSONB NOT NULL DEFAULT '[]'::jsonb,
    ADD COLUMN force_refresh  BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN attempt        INTEGER NOT NULL DEFAULT 1 CHECK (attempt >= 1),
    ADD COLUMN fiches_fetched INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN fiches_failed  INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN started_at     TIMESTAMPTZ;

ALTER TABLE fiche_fetch_job_days
    ADD COLUMN attempt        INTEGER NOT NULL DEFAULT 1 CHECK (attempt >= 1),
    ADD COLUMN fiches_fetched INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN fiches_failed  INTEGER NOT NULL DEFAULT 0;

CREATE INDEX fiche_fetch_jobs_created_idx ON fiche_fetch_jobs (created_at DESC, id);
CREATE INDEX fiche_fetch_jobs_unsettled_idx ON fiche_fetch_jobs (updated_at)
    WHERE status IN ('pending', 'running');
CREATE INDEX fiche_fetch_job_days_status_idx ON fiche_fetch_job_days (job_id, status);
