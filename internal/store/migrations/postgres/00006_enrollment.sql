-- +goose Up
-- EST enrolment (internal/identity, RFC 7030): the bootstrap credentials a
-- device may use to get its first certificate, and the requests waiting for
-- an operator.

-- identity_enrollment_tokens are one-time tokens bound to a device id and
-- class. Only the SHA-256 of a token is stored (hex); used_at is 0 until
-- the token is spent, and a spent token never works again.
CREATE TABLE identity_enrollment_tokens (
    token_hash TEXT PRIMARY KEY,
    device_id  TEXT NOT NULL,
    class      TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX identity_enrollment_tokens_device ON identity_enrollment_tokens (device_id);

-- identity_vendor_cas are manufacturers' CAs whose IDevID certificates
-- (IEEE 802.1AR) may enrol devices without a token. id is the SHA-256 of
-- the certificate (hex).
CREATE TABLE identity_vendor_cas (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    der        BYTEA NOT NULL,
    not_after  BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- identity_enrollment_requests is the approval queue: enrolments without a
-- credential, by device id and public key (SHA-256 of the SPKI, hex).
-- status is 'pending', 'accepted', 'rejected' or 'issued'; serial is the
-- certificate issued once accepted.
CREATE TABLE identity_enrollment_requests (
    id              TEXT PRIMARY KEY,
    device_id       TEXT NOT NULL,
    class           TEXT NOT NULL,
    key_fingerprint TEXT NOT NULL,
    credential      TEXT NOT NULL,
    remote          TEXT NOT NULL,
    csr             BYTEA NOT NULL,
    status          TEXT NOT NULL,
    decided_by      TEXT NOT NULL,
    decided_at      BIGINT NOT NULL,
    serial          TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX identity_enrollment_requests_key ON identity_enrollment_requests (device_id, key_fingerprint, created_at);
CREATE INDEX identity_enrollment_requests_status ON identity_enrollment_requests (status, created_at);

-- +goose Down
DROP TABLE identity_enrollment_requests;
DROP TABLE identity_vendor_cas;
DROP TABLE identity_enrollment_tokens;
