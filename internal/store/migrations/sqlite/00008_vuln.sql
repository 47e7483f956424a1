-- +goose Up
-- Vulnerability data (internal/vuln), imported offline from advisory and SBOM
-- files. Every row keeps the JSON of the normalised record (body), the file
-- it came from, that file's SHA-256 and the import time (Unix nanoseconds).
-- Importing the same record again replaces it.
CREATE TABLE vuln_advisories (
    source      TEXT NOT NULL,
    id          TEXT NOT NULL,
    body        TEXT NOT NULL,
    file        TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    imported_at INTEGER NOT NULL,
    PRIMARY KEY (source, id)
);
-- CISA KEV entries, one per CVE.
CREATE TABLE vuln_kev (
    cve_id      TEXT PRIMARY KEY,
    body        TEXT NOT NULL,
    file        TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    imported_at INTEGER NOT NULL
);
-- SBOMs keyed by device model and firmware; vendor and model are stored
-- normalised (vuln.NormalizeVendor / NormalizeProduct).
CREATE TABLE vuln_sboms (
    vendor      TEXT NOT NULL,
    model       TEXT NOT NULL,
    firmware    TEXT NOT NULL,
    body        TEXT NOT NULL,
    file        TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    imported_at INTEGER NOT NULL,
    PRIMARY KEY (vendor, model, firmware)
);
-- One row per imported file, the latest import of each content.
CREATE TABLE vuln_imports (
    sha256      TEXT PRIMARY KEY,
    file        TEXT NOT NULL,
    format      TEXT NOT NULL,
    records     INTEGER NOT NULL,
    imported_at INTEGER NOT NULL
);

-- +goose Down
DROP TABLE vuln_imports;
DROP TABLE vuln_sboms;
DROP TABLE vuln_kev;
DROP TABLE vuln_advisories;
