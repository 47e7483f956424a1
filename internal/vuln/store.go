package vuln

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/store"
)

// Store keeps imported advisories, KEV entries and SBOMs in fleetward's
// database (migration 00008) and builds Catalogs from them. It is safe for
// concurrent use.
type Store struct {
	db  *store.DB
	now func() time.Time
}

// NewStore returns a Store on an opened, migrated database.
func NewStore(db *store.DB) *Store { return &Store{db: db, now: time.Now} }

// ImportResult says what one file contributed.
type ImportResult struct {
	File       string   `json:"file"`
	Format     Format   `json:"format"`
	SHA256     string   `json:"sha256"`
	Advisories int      `json:"advisories,omitempty"`
	KEV        int      `json:"kev,omitempty"`
	SBOM       string   `json:"sbom,omitempty"` // "vendor/model@firmware" it was attached to
	Notes      []string `json:"notes,omitempty"`
}

// Import parses one file (any format ParseFile knows) and stores its
// records in one transaction; records already present (same source and ID,
// same KEV CVE, same SBOM key) are replaced. An SBOM is attached to the
// vendor, model and version of its subject (CycloneDX metadata.component);
// an SBOM without them is refused: use AttachSBOM. Returns an Invalid error
// naming file, record and field for malformed input.
func (s *Store) Import(ctx context.Context, name string, r io.Reader) (ImportResult, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return ImportResult{}, fmt.Errorf("vuln import %s: %w", name, err)
	}
	doc, err := Parse(name, bytes.NewReader(data))
	if err != nil {
		return ImportResult{}, err
	}
	sum := sha256.Sum256(data)
	res := ImportResult{File: name, Format: doc.Format, SHA256: hex.EncodeToString(sum[:])}
	at := store.Nanos(s.now())
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		for _, a := range doc.Advisories {
			body, _ := json.Marshal(a)
			if _, err := tx.Exec(ctx, `INSERT INTO vuln_advisories (source, id, body, file, sha256, imported_at) VALUES (?, ?, ?, ?, ?, ?)
				ON CONFLICT (source, id) DO UPDATE SET body = excluded.body, file = excluded.file, sha256 = excluded.sha256, imported_at = excluded.imported_at`,
				string(a.Source), a.ID, string(body), name, res.SHA256, at); err != nil {
				return fmt.Errorf("store advisory %s: %w", a.ID, err)
			}
			res.Notes = append(res.Notes, a.Notes...)
		}
		res.Advisories = len(doc.Advisories)
		for _, k := range doc.KEV {
			body, _ := json.Marshal(k)
			if _, err := tx.Exec(ctx, `INSERT INTO vuln_kev (cve_id, body, file, sha256, imported_at) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (cve_id) DO UPDATE SET body = excluded.body, file = excluded.file, sha256 = excluded.sha256, imported_at = excluded.imported_at`,
				k.CVEID, string(body), name, res.SHA256, at); err != nil {
				return fmt.Errorf("store KEV %s: %w", k.CVEID, err)
			}
		}
		res.KEV = len(doc.KEV)
		if doc.SBOM != nil {
			sub := doc.SBOM.Subject
			if sub.Vendor == "" || sub.Name == "" || sub.Version == "" {
				return apperr.InvalidField("metadata.component", "%s: SBOM names no supplier, name and version of its subject; attach it to a model with --vendor/--model/--firmware", name)
			}
			if err := attachSBOM(ctx, tx, sub.Vendor, sub.Name, sub.Version, name, res.SHA256, at, doc.SBOM); err != nil {
				return err
			}
			res.SBOM = NormalizeVendor(sub.Vendor) + "/" + NormalizeProduct(sub.Name) + "@" + sub.Version
		}
		records := res.Advisories + res.KEV
		if doc.SBOM != nil {
			records = 1
		}
		_, err := tx.Exec(ctx, `INSERT INTO vuln_imports (sha256, file, format, records, imported_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (sha256) DO UPDATE SET file = excluded.file, format = excluded.format, records = excluded.records, imported_at = excluded.imported_at`,
			res.SHA256, name, string(doc.Format), records, at)
		return err
	})
	if err != nil {
		return ImportResult{}, err
	}
	return res, nil
}

// AttachSBOM stores sb as the SBOM of every device of vendor and model
// running firmware, replacing any earlier one. name is the source file.
func (s *Store) AttachSBOM(ctx context.Context, vendor, model, firmware, name string, sb *SBOM) error {
	if vendor == "" || model == "" || firmware == "" {
		return apperr.InvalidField("sbom", "vendor, model and firmware are required")
	}
	body, _ := json.Marshal(sb)
	sum := sha256.Sum256(body)
	return s.db.InTx(ctx, func(tx *store.Tx) error {
		return attachSBOM(ctx, tx, vendor, model, firmware, name, hex.EncodeToString(sum[:]), store.Nanos(s.now()), sb)
	})
}

func attachSBOM(ctx context.Context, tx *store.Tx, vendor, model, firmware, name, sum string, at int64, sb *SBOM) error {
	body, _ := json.Marshal(sb)
	_, err := tx.Exec(ctx, `INSERT INTO vuln_sboms (vendor, model, firmware, body, file, sha256, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (vendor, model, firmware) DO UPDATE SET body = excluded.body, file = excluded.file, sha256 = excluded.sha256, imported_at = excluded.imported_at`,
		NormalizeVendor(vendor), NormalizeProduct(model), firmware, string(body), name, sum, at)
	if err != nil {
		return fmt.Errorf("store SBOM %s/%s@%s: %w", vendor, model, firmware, err)
	}
	return nil
}

// SBOMFor returns the SBOM attached to vendor, model and firmware. Returns
// NotFound when none is.
func (s *Store) SBOMFor(ctx context.Context, vendor, model, firmware string) (*SBOM, error) {
	var body string
	err := s.db.QueryRow(ctx, `SELECT body FROM vuln_sboms WHERE vendor = ? AND model = ? AND firmware = ?`,
		NormalizeVendor(vendor), NormalizeProduct(model), firmware).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.NotFoundf("no SBOM for %s %s firmware %s", vendor, model, firmware)
	}
	if err != nil {
		return nil, fmt.Errorf("load SBOM: %w", err)
	}
	var sb SBOM
	if err := json.Unmarshal([]byte(body), &sb); err != nil {
		return nil, fmt.Errorf("load SBOM: %w", err)
	}
	return &sb, nil
}

// ListAdvisories returns every stored advisory, ordered by ID then source.
func (s *Store) ListAdvisories(ctx context.Context) ([]Advisory, error) {
	rows, err := s.db.Query(ctx, `SELECT body FROM vuln_advisories ORDER BY id, source`)
	if err != nil {
		return nil, fmt.Errorf("list advisories: %w", err)
	}
	defer rows.Close()
	var out []Advisory
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("list advisories: %w", err)
		}
		var a Advisory
		if err := json.Unmarshal([]byte(body), &a); err != nil {
			return nil, fmt.Errorf("list advisories: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// ListKEV returns every stored KEV entry, ordered by CVE ID.
func (s *Store) ListKEV(ctx context.Context) ([]KEVEntry, error) {
	rows, err := s.db.Query(ctx, `SELECT body FROM vuln_kev ORDER BY cve_id`)
	if err != nil {
		return nil, fmt.Errorf("list KEV: %w", err)
	}
	defer rows.Close()
	var out []KEVEntry
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("list KEV: %w", err)
		}
		var k KEVEntry
		if err := json.Unmarshal([]byte(body), &k); err != nil {
			return nil, fmt.Errorf("list KEV: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// LoadCatalog builds a Catalog from everything stored.
func (s *Store) LoadCatalog(ctx context.Context) (*Catalog, error) {
	advs, err := s.ListAdvisories(ctx)
	if err != nil {
		return nil, err
	}
	kev, err := s.ListKEV(ctx)
	if err != nil {
		return nil, err
	}
	return NewCatalog(advs, kev), nil
}
