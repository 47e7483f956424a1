-- +goose Up
-- Baselines of the metric detector (internal/metricdetect), one row per
-- device: its metrics' running means and deviations and its listening
-- ports, as JSON (metricdetect.DeviceState), so that a restart does not
-- send every device back into its warm-up. updated_at is Unix nanoseconds.
CREATE TABLE metric_baselines (
    device_id  TEXT PRIMARY KEY,
    state      TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

-- +goose Down
DROP TABLE metric_baselines;
