DROP TABLE realtime_relay_cursors;
DROP INDEX events_xact_id_id;
ALTER TABLE events DROP COLUMN xact_id;
