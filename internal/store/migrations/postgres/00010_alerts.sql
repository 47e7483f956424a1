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
    peers_dropped BIGINT NOT NULL,
    max_score     DOUBLE PRECISION NOT NULL,
    threshold     DOUBLE PRECISION NOT NULL,
    signals       BIGINT NOT NULL,
    first_seen    BIGINT NOT NULL,
    last_seen     BIGINT NOT NULL,
    status        TEXT NOT NULL
);
CREATE INDEX alerts_device ON alerts (device_id, last_seen);
CREATE INDEX alerts_last_seen ON alerts (last_seen);

-- +goose Down
DROP TABLE alerts;
