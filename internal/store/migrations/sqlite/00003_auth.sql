-- +goose Up
-- Owned by internal/auth. Times are Unix nanoseconds (0 = never), booleans
-- 0/1. No secret is stored in clear: passwords are argon2id PHC strings,
-- TOTP secrets are sealed by the keyring, and session tokens, pending login
-- IDs, recovery codes and API token secrets are SHA-256 hashes.

-- operators are the people who log in. They are disabled, never deleted.
CREATE TABLE operators (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    username            TEXT    NOT NULL UNIQUE,
    role                TEXT    NOT NULL CHECK (role IN ('admin', 'operator', 'auditor')),
    password_hash       TEXT    NOT NULL,
    totp_sealed         TEXT    NOT NULL DEFAULT '',
    totp_last_step      INTEGER NOT NULL DEFAULT 0, -- last TOTP step accepted: a code works once
    mfa_enrolled        INTEGER NOT NULL DEFAULT 0,
    disabled            INTEGER NOT NULL DEFAULT 0,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    password_changed_at INTEGER NOT NULL,
    last_login_at       INTEGER NOT NULL DEFAULT 0
);

-- operator_recovery_codes are single-use second factors issued at enrolment.
CREATE TABLE operator_recovery_codes (
    operator_id INTEGER NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
    code_hash   TEXT    NOT NULL,
    used_at     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (operator_id, code_hash)
);

-- operator_sessions are logins; the client holds the token whose hash is
-- the key.
CREATE TABLE operator_sessions (
    token_hash   TEXT    PRIMARY KEY,
    id           TEXT    NOT NULL UNIQUE,
    operator_id  INTEGER NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
    csrf_token   TEXT    NOT NULL,
    remote       TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX operator_sessions_operator ON operator_sessions (operator_id);
CREATE INDEX operator_sessions_expires ON operator_sessions (expires_at);

-- login_pending are logins whose password was right, waiting for a second
-- factor; enrol_sealed holds the new TOTP secret of an enrolment.
CREATE TABLE login_pending (
    id_hash      TEXT    PRIMARY KEY,
    operator_id  INTEGER NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
    enrol_sealed TEXT    NOT NULL DEFAULT '',
    attempts     INTEGER NOT NULL DEFAULT 0,
    remote       TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX login_pending_operator ON login_pending (operator_id);

-- login_throttle counts failed logins per account ("account:<username>")
-- and per remote address ("addr:<ip or /64>"), shared by every node.
CREATE TABLE login_throttle (
    throttle_key      TEXT    PRIMARY KEY,
    failures          INTEGER NOT NULL,
    last_failure_at   INTEGER NOT NULL,
    locked_until      INTEGER NOT NULL DEFAULT 0,
    refusal_logged_at INTEGER NOT NULL DEFAULT 0
);

-- api_tokens are bearer credentials "fwt_<id>_<secret>"; revoked, never
-- deleted.
CREATE TABLE api_tokens (
    id               TEXT    PRIMARY KEY,
    name             TEXT    NOT NULL,
    secret_hash      TEXT    NOT NULL,
    role             TEXT    NOT NULL CHECK (role IN ('admin', 'operator', 'auditor')),
    scopes           TEXT    NOT NULL, -- JSON array of "read", "write", "admin"
    created_by       TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    last_used_at     INTEGER NOT NULL DEFAULT 0,
    last_rejected_at INTEGER NOT NULL DEFAULT 0,
    revoked_at       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX api_tokens_name ON api_tokens (name);

-- +goose Down
DROP TABLE api_tokens;
DROP TABLE login_throttle;
DROP TABLE login_pending;
DROP TABLE operator_sessions;
DROP TABLE operator_recovery_codes;
DROP TABLE operators;
