-- Chat about an audit or a fiche (issue 9). A conversation belongs to one subject (an
-- audit or a fiche, never both) and one user: at most one per (subject, user). A message
-- says how far it got (an answer whose stream broke is kept `partial`, one that got
-- nothing `failed` with the reason), the quotes an answer makes with their verdicts, and
-- the model and tokens of the call.
ALTER TABLE chat_conversations
    ADD CONSTRAINT chat_conversations_one_subject CHECK (num_nonnulls(audit_id, fiche_id) = 1);
CREATE UNIQUE INDEX chat_conversations_audit_user
    ON chat_conversations (audit_id, user_id) WHERE audit_id IS NOT NULL;
CREATE UNIQUE INDEX chat_conversations_fiche_user
    ON chat_conversations (fiche_id, user_id) WHERE fiche_id IS NOT NULL;

ALTER TABLE chat_messages RENAME COLUMN tokens TO completion_tokens;
ALTER TABLE chat_messages
    ADD COLUMN status        TEXT NOT NULL DEFAULT 'complete'
                             CHECK (status IN ('complete', 'partial', 'failed')),
    -- [{quote, verdict, recording_id, similarity, matched_text, matched_start_s, reason}]
    ADD COLUMN quotes        JSONB NOT NULL DEFAULT '[]'::jsonb,
    ADD COLUMN model         TEXT,
    ADD COLUMN prompt_tokens INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN error         TEXT;
