DROP TABLE chat_messages;
DROP TABLE chat_conversations;
DROP TABLE automation_runs;
DROP TABLE automation_schedules;
DROP TABLE audit_batch_items;
DROP TABLE audit_batches;
DROP TABLE fiche_fetch_job_days;
DROP TABLE fiche_fetch_jobs;
