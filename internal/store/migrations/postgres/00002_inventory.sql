-- +goose Up
-- The inventory (internal/inventory): sites, devices, their tags and sealed
-- secrets, groups and their members. Only inventory.Service writes here.
-- Text that is sorted or joined on uses COLLATE "C" (byte order), as SQLite
-- does, so both engines page and sort alike.
-- Times are Unix nanoseconds (0 = never); lists and maps are JSON text.

CREATE TABLE sites (
    id         TEXT COLLATE "C" PRIMARY KEY,
    name       TEXT COLLATE "C" NOT NULL,
    address    TEXT NOT NULL DEFAULT '',
    lat        DOUBLE PRECISION,
    lon        DOUBLE PRECISION,
    timezone   TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- A site cannot be deleted while devices reference it (no cascade).
CREATE TABLE devices (
    id               TEXT COLLATE "C" PRIMARY KEY,
    name             TEXT COLLATE "C" NOT NULL,
    class            TEXT COLLATE "C" NOT NULL,
    vendor           TEXT COLLATE "C" NOT NULL DEFAULT '',
    vendor_key       TEXT NOT NULL DEFAULT '',  -- lower(vendor), for the case-insensitive filter
    model            TEXT NOT NULL DEFAULT '',
    serial           TEXT NOT NULL DEFAULT '',
    macs             TEXT NOT NULL DEFAULT '[]',
    ips              TEXT NOT NULL DEFAULT '[]',
    firmware_version TEXT NOT NULL DEFAULT '',
    os               TEXT NOT NULL DEFAULT '',
    os_version       TEXT NOT NULL DEFAULT '',
    config_digest    TEXT NOT NULL DEFAULT '',
    site             TEXT COLLATE "C" REFERENCES sites(id),
    building         TEXT NOT NULL DEFAULT '',
    room             TEXT NOT NULL DEFAULT '',
    lat              DOUBLE PRECISION,
    lon              DOUBLE PRECISION,
    owner            TEXT NOT NULL DEFAULT '',
    segment          TEXT NOT NULL DEFAULT '',
    tags             TEXT NOT NULL DEFAULT '[]',
    status           TEXT NOT NULL,
    first_seen       BIGINT NOT NULL DEFAULT 0,
    last_seen        BIGINT NOT NULL DEFAULT 0,
    risk_score       DOUBLE PRECISION NOT NULL DEFAULT 0,
    attributes       TEXT NOT NULL DEFAULT '{}',
    secret_names     TEXT NOT NULL DEFAULT '[]',
    search           TEXT NOT NULL DEFAULT '',  -- lower-cased text the q filter searches
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    version          BIGINT NOT NULL
);
-- One index per sort order, ending in id for keyset pagination.
CREATE INDEX devices_by_name       ON devices(name, id);
CREATE INDEX devices_by_risk       ON devices(risk_score, id);
CREATE INDEX devices_by_last_seen  ON devices(last_seen, id);
CREATE INDEX devices_by_first_seen ON devices(first_seen, id);
CREATE INDEX devices_by_created_at ON devices(created_at, id);
CREATE INDEX devices_by_class      ON devices(class, id);
CREATE INDEX devices_by_vendor     ON devices(vendor, id);
-- Filters.
CREATE INDEX devices_by_site_class_risk ON devices(site, class, risk_score);
CREATE INDEX devices_by_status          ON devices(status);
CREATE INDEX devices_by_vendor_key      ON devices(vendor_key);

CREATE TABLE device_tags (
    device_id TEXT COLLATE "C" NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    tag       TEXT NOT NULL,
    PRIMARY KEY (device_id, tag)
);
CREATE INDEX device_tags_by_tag ON device_tags(tag, device_id);

-- sealed is the Sealer's output under the context
-- "inventory.device_secret:<device id>:<name>"; never the plaintext.
CREATE TABLE device_secrets (
    device_id  TEXT COLLATE "C" NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    name       TEXT COLLATE "C" NOT NULL,
    sealed     TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (device_id, name)
);

CREATE TABLE device_groups (
    id          TEXT COLLATE "C" PRIMARY KEY,
    name        TEXT COLLATE "C" NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE group_members (
    group_id  TEXT COLLATE "C" NOT NULL REFERENCES device_groups(id) ON DELETE CASCADE,
    device_id TEXT COLLATE "C" NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    added_at  BIGINT NOT NULL,
    PRIMARY KEY (group_id, device_id)
);
CREATE INDEX group_members_by_device ON group_members(device_id);

-- +goose Down
DROP TABLE group_members;
DROP TABLE device_groups;
DROP TABLE device_secrets;
DROP TABLE device_tags;
DROP TABLE devices;
DROP TABLE sites;
