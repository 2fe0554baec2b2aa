DROP INDEX IF EXISTS fiche_fetch_job_days_status_idx;
DROP INDEX IF EXISTS fiche_fetch_jobs_unsettled_idx;
DROP INDEX IF EXISTS fiche_fetch_jobs_created_idx;

ALTER TABLE fiche_fetch_job_days
    DROP COLUMN fiches_failed,
    DROP COLUMN fiches_fetched,
    DROP COLUMN attempt;

ALTER TABLE fiche_fetch_jobs
    DROP COLUMN started_at,
    DROP COLUMN fiches_failed,
    DROP COLUMN fiches_fetched,
    DROP COLUMN attempt,
    DROP COLUMN force_refresh,
    DROP COLUMN groupes;
