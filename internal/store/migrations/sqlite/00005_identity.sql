-- +goose Up
-- The certificate authority (internal/identity). Private keys are stored
-- only sealed under the master key (secrets.Keyring), never in clear.

-- identity_ca is the single row that says the CA exists and how it was
-- made; Init compares against it to stay idempotent.
CREATE TABLE identity_ca (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    key_algorithm TEXT NOT NULL,
    organization  TEXT NOT NULL,
    root_offline  INTEGER NOT NULL,
    created_at    INTEGER NOT NULL
);

-- identity_ca_certs holds the root and every issuing intermediate, old
-- ones included, so certificates they issued keep verifying and their
-- revocation can still be signed. sealed_key is '' for an offline root.
CREATE TABLE identity_ca_certs (
    serial     TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    active     INTEGER NOT NULL,
    der        BLOB NOT NULL,
    sealed_key TEXT NOT NULL,
    not_after  INTEGER NOT NULL,
    crl_number INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

-- identity_certificates holds every end-entity certificate issued.
-- serial is lowercase hex; status is 'valid' or 'revoked'.
CREATE TABLE identity_certificates (
    serial        TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    device_id     TEXT NOT NULL,
    class         TEXT NOT NULL,
    issuer_serial TEXT NOT NULL,
    not_before    INTEGER NOT NULL,
    not_after     INTEGER NOT NULL,
    status        TEXT NOT NULL,
    revoked_at    INTEGER NOT NULL,
    reason        INTEGER NOT NULL,
    der           BLOB NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX identity_certificates_device ON identity_certificates (device_id, not_before);
CREATE INDEX identity_certificates_revoked ON identity_certificates (issuer_serial, status);

-- +goose Down
DROP TABLE identity_certificates;
DROP TABLE identity_ca_certs;
DROP TABLE identity_ca;
