-- +goose Up
-- The ledger is an RFC 6962 Merkle log (internal/ledger). Rows are only
-- ever inserted, except ledger_head, which every append rewrites under its
-- row lock (SELECT … FOR UPDATE), so several servers can append safely.

-- ledger_entries holds the log's leaves. The leaf hash is
-- SHA-256(0x00 || canonical JSON of the row), stored as node (0, idx).
CREATE TABLE ledger_entries (
    idx        BIGINT PRIMARY KEY,
    event_time BIGINT NOT NULL,
    type       TEXT NOT NULL,
    actor      TEXT NOT NULL,
    remote     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    data       TEXT NOT NULL
);
CREATE INDEX ledger_entries_subject ON ledger_entries (subject, idx);
CREATE INDEX ledger_entries_type ON ledger_entries (type, idx);

-- ledger_nodes holds every complete (perfect) subtree hash, leaves at
-- level 0, so a proof is a handful of primary key reads.
CREATE TABLE ledger_nodes (
    level INTEGER NOT NULL,
    idx   BIGINT NOT NULL,
    hash  BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);

-- ledger_head is the single row appends serialize on: the tree size and
-- the compact range [0, size) (concatenated 32-byte hashes, left to right).
CREATE TABLE ledger_head (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    size       BIGINT NOT NULL,
    hashes     BYTEA NOT NULL,
    updated_at BIGINT NOT NULL
);
INSERT INTO ledger_head (id, size, hashes, updated_at) VALUES (1, 0, ''::bytea, 0);

-- ledger_checkpoints holds every signed tree head.
CREATE TABLE ledger_checkpoints (
    size       BIGINT PRIMARY KEY,
    root       BYTEA NOT NULL,
    note       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE ledger_checkpoints;
DROP TABLE ledger_head;
DROP TABLE ledger_nodes;
DROP TABLE ledger_entries;
