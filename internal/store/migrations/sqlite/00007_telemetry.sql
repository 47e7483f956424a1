-- +goose Up
-- Device measurements (internal/telemetry): broker-side counters sampled by
-- the server and device-side metrics reported by agents, one row per
-- device, metric and time. at is Unix nanoseconds. Rows older than the
-- retention are pruned.
CREATE TABLE measurements (
    device_id TEXT NOT NULL,
    metric    TEXT NOT NULL,
    at        INTEGER NOT NULL,
    source    TEXT NOT NULL,
    value     REAL NOT NULL,
    PRIMARY KEY (device_id, metric, at)
);
CREATE INDEX measurements_at ON measurements (at);

-- +goose Down
DROP TABLE measurements;
