-- Every state change is an event row, announced with pg_notify('callaudit_events', id || ':' || topic).
CREATE TABLE events (
    id         BIGSERIAL PRIMARY KEY,
    topic      TEXT NOT NULL,
    type       TEXT NOT NULL,
    payload    JSONB NOT NULL DEFAULT '{}'::jsonb,
    -- Idempotency key: a retried activity re-emitting the same event is a no-op.
    dedupe_key TEXT UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX events_topic_id_idx ON events (topic, id);

-- Global CRM concurrency caps: one row per slot of each pool, leased with SKIP LOCKED.
CREATE TABLE crm_permit_leases (
    pool        TEXT NOT NULL,
    slot        INTEGER NOT NULL,
    holder      TEXT,
    lease_until TIMESTAMPTZ,
    acquired_at TIMESTAMPTZ,
    PRIMARY KEY (pool, slot)
);
