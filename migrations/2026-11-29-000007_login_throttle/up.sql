-- Login throttling shared by every api replica: one row per throttled subject (an e-mail
-- or a client address, stored as a SHA-256 so typed e-mails — sometimes passwords typed
-- in the wrong field — are not kept) counting failed logins in a fixed window.
CREATE TABLE login_throttle (
    scope             TEXT NOT NULL,
    subject_hash      TEXT NOT NULL,
    failures          INTEGER NOT NULL,
    window_started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, subject_hash)
);
CREATE INDEX login_throttle_window_idx ON login_throttle (window_started_at);

-- Expired tokens are purged in small batches on login.
CREATE INDEX api_tokens_expires_at_idx ON api_tokens (expires_at);
