-- Short-lived tokens a browser puts in the URL of one event stream (`EventSource` cannot
-- send an Authorization header). Only their SHA-256 is stored.
CREATE TABLE stream_tokens (
    token_hash TEXT PRIMARY KEY,
    topic      TEXT NOT NULL,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX stream_tokens_expires_idx ON stream_tokens (expires_at);
