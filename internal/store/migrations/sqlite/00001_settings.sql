-- +goose Up
-- settings holds small named values owned by one component each
-- (ledger signing key, sealed data, schema facts). Keys are namespaced:
-- "ledger.signing_key", "secrets.canary".
CREATE TABLE settings (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

-- +goose Down
DROP TABLE settings;
