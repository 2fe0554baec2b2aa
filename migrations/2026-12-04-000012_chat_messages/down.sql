ALTER TABLE chat_messages
    DROP COLUMN error,
    DROP COLUMN prompt_tokens,
    DROP COLUMN model,
    DROP COLUMN quotes,
    DROP COLUMN status;
ALTER TABLE chat_messages RENAME COLUMN completion_tokens TO tokens;

DROP INDEX chat_conversations_fiche_user;
DROP INDEX chat_conversations_audit_user;
ALTER TABLE chat_conversations DROP CONSTRAINT chat_conversations_one_subject;
