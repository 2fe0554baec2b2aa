-- Realtime relay (Pusher): which events have been delivered.
--
-- Events ids are drawn before their transactions commit, so across topics a higher id
-- can commit first; a relay that kept only "the last id sent" would skip the lower one
-- committing later. Each event therefore records its inserting transaction
-- (pg_current_xact_id) and the relay reads in (xact_id, id) order only what transactions
-- older than every running one wrote (xact_id < pg_snapshot_xmin(pg_current_snapshot())):
-- nothing can appear behind its cursor afterwards. Stored as BIGINT (xid8 as text) so
-- diesel needs no custom type.
ALTER TABLE events
    ADD COLUMN xact_id BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint);
CREATE INDEX events_xact_id_id ON events (xact_id, id);

-- One row per relay: the position of the last event Pusher accepted (advanced only
-- after it did) and the last failure, if any.
CREATE TABLE realtime_relay_cursors (
    name            TEXT PRIMARY KEY,
    last_xact_id    BIGINT NOT NULL DEFAULT 0,
    last_event_id   BIGINT NOT NULL DEFAULT 0,
    delivered       BIGINT NOT NULL DEFAULT 0,
    failures        BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT,
    last_error_at   TIMESTAMPTZ,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- The history written before the relay existed is not sent: it starts after it.
INSERT INTO realtime_relay_cursors (name, last_xact_id, last_event_id)
SELECT 'pusher', COALESCE(MAX(xact_id), 0), COALESCE(MAX(id), 0) FROM events;
