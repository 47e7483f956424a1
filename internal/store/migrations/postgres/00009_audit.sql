-- +goose Up
-- Findings of the audit (internal/audit): one row per weakness, kept across
-- audits. id is derived from check, device and subject, so the next audit
-- finding the same weakness updates the same row. Times are Unix
-- nanoseconds; 0 is "never".
CREATE TABLE findings (
    id               TEXT PRIMARY KEY,
    check_id         TEXT NOT NULL,
    device_id        TEXT NOT NULL,
    subject          TEXT NOT NULL,
    severity         TEXT NOT NULL,
    title            TEXT NOT NULL,
    evidence         TEXT NOT NULL,
    exploited        BIGINT NOT NULL,
    exposed          BIGINT NOT NULL,
    status           TEXT NOT NULL,
    first_seen       BIGINT NOT NULL,
    last_seen        BIGINT NOT NULL,
    resolved_at      BIGINT NOT NULL,
    suppressed_until BIGINT NOT NULL,
    suppress_reason  TEXT NOT NULL,
    suppressed_by    TEXT NOT NULL
);
CREATE INDEX findings_device ON findings (device_id);
CREATE INDEX findings_status ON findings (status);

-- The latest exposure of every scanned address: what the newest scan that
-- covered the address found open on it. A scan replaces the rows of the
-- addresses it covered. password never appears: credential holds the
-- user name, list and a hint only.
CREATE TABLE scan_services (
    addr       TEXT NOT NULL,
    proto      TEXT NOT NULL,
    port       BIGINT NOT NULL,
    device_id  TEXT NOT NULL,
    scan_id    TEXT NOT NULL,
    seen_at    BIGINT NOT NULL,
    service    TEXT NOT NULL,
    doc        TEXT NOT NULL,
    PRIMARY KEY (addr, proto, port)
);
CREATE INDEX scan_services_device ON scan_services (device_id);

-- Scans run by or submitted to the server: who, what, when and a summary.
CREATE TABLE scans (
    id         TEXT PRIMARY KEY,
    actor      TEXT NOT NULL,
    targets    TEXT NOT NULL,
    options    TEXT NOT NULL,
    status     TEXT NOT NULL,
    started    BIGINT NOT NULL,
    finished   BIGINT NOT NULL,
    summary    TEXT NOT NULL,
    error      TEXT NOT NULL
);
CREATE INDEX scans_started ON scans (started);

-- +goose Down
DROP TABLE scans;
DROP TABLE scan_services;
DROP TABLE findings;
