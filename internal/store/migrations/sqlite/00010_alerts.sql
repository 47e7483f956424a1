-- +goose Up
-- Alerts of network detection (internal/alert): one row per source,
-- behaviour and window, however many signals it took. Times are Unix
-- nanoseconds; peers is a JSON array.
CREATE TABLE alerts (
    id            TEXT PRIMARY KEY,
    device_id     TEXT NOT NULL,
    src_ip        TEXT NOT NULL,
    src_mac       TEXT NOT NULL,
    behaviour     TEXT NOT NULL,
    severity      TEXT NOT NULL,
    detector      TEXT NOT NULL,
    explanation   TEXT NOT NULL,
    peers         TEXT NOT NULL,
    peers_dropped INTEGER NOT NULL,
    max_score     REAL NOT NULL,
    threshold     REAL NOT NULL,
    signals       INTEGER NOT NULL,
    first_seen    INTEGER NOT NULL,
    last_seen     INTEGER NOT NULL,
    status        TEXT NOT NULL
);
CREATE INDEX alerts_device ON alerts (device_id, last_seen);
CREATE INDEX alerts_last_seen ON alerts (last_seen);

-- +goose Down
DROP TABLE alerts;
