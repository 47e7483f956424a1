package inventory

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/store"
)

// deviceColumns are the devices table's columns in the order scanDevice and
// deviceArgs use.
const deviceColumns = `id, name, class, vendor, vendor_key, model, serial, macs, ips, firmware_version, os, os_version,
config_digest, site, building, room, lat, lon, owner, segment, tags, status, first_seen, last_seen, risk_score,
attributes, secret_names, search, created_at, updated_at, version`

// deviceColumnCount is the number of columns in deviceColumns.
const deviceColumnCount = 31

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner = store.RowScanner

// queryAll is store.QueryAll.
func queryAll[T any](ctx context.Context, q store.Querier, scan func(rowScanner) (T, error), query string, args ...any) ([]T, error) {
	return store.QueryAll(ctx, q, scan, query, args...)
}

// getByID reads, with scan, the one row query selects for id through q.
// Returns NotFound, naming kind ("device"), when there is no such row or id
// is not a valid id at all: it cannot exist, and PostgreSQL would refuse
// some bytes outright.
func getByID[T any](ctx context.Context, q store.Querier, scan func(rowScanner) (T, error), query, kind, id string) (T, error) {
	var zero T
	if checkID(id) != "" {
		return zero, apperr.NotFoundf("%s %s does not exist", kind, quote(id))
	}
	v, err := scan(q.QueryRow(ctx, query, id))
	if errors.Is(err, sql.ErrNoRows) {
		return zero, apperr.NotFoundf("%s %s does not exist", kind, quote(id))
	}
	if err != nil {
		return zero, fmt.Errorf("read %s %s: %w", kind, id, err)
	}
	return v, nil
}

// scanDevice reads one row selected with deviceColumns.
func scanDevice(sc rowScanner) (Device, error) {
	var (
		d                                     Device
		vendorKey, search                     string
		macs, ips, tags, attrs, secretNames   string
		site                                  sql.NullString
		lat, lon                              sql.NullFloat64
		firstSeen, lastSeen, created, updated int64
	)
	err := sc.Scan(&d.ID, &d.Name, &d.Class, &d.Vendor, &vendorKey, &d.Model, &d.Serial, &macs, &ips,
		&d.FirmwareVersion, &d.OS, &d.OSVersion, &d.ConfigDigest, &site, &d.Location.Building, &d.Location.Room,
		&lat, &lon, &d.Owner, &d.Segment, &tags, &d.Status, &firstSeen, &lastSeen, &d.RiskScore, &attrs,
		&secretNames, &search, &created, &updated, &d.Version)
	if err != nil {
		return Device{}, err
	}
	d.Location.Site = site.String
	if lat.Valid {
		d.Location.Lat = &lat.Float64
	}
	if lon.Valid {
		d.Location.Lon = &lon.Float64
	}
	d.FirstSeen, d.LastSeen = store.Time(firstSeen), store.Time(lastSeen)
	d.CreatedAt, d.UpdatedAt = store.Time(created), store.Time(updated)
	for _, j := range []struct {
		raw string
		v   any
	}{{macs, &d.MACs}, {ips, &d.IPs}, {tags, &d.Tags}, {attrs, &d.Attributes}, {secretNames, &d.SecretNames}} {
		if err := json.Unmarshal([]byte(j.raw), j.v); err != nil {
			return Device{}, fmt.Errorf("decode stored device %s: %w", d.ID, err)
		}
	}
	// Empty lists and maps read back as nil, as normalized() makes them.
	for _, l := range []*[]string{&d.MACs, &d.IPs, &d.Tags, &d.SecretNames} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	if len(d.Attributes) == 0 {
		d.Attributes = nil
	}
	return d, nil
}

// deviceArgs returns d's column values in deviceColumns order.
func deviceArgs(d *Device) []any {
	var site any
	if d.Location.Site != "" {
		site = d.Location.Site
	}
	var lat, lon any
	if d.Location.Lat != nil {
		lat = *d.Location.Lat
	}
	if d.Location.Lon != nil {
		lon = *d.Location.Lon
	}
	return []any{d.ID, d.Name, d.Class, d.Vendor, strings.ToLower(d.Vendor), d.Model, d.Serial,
		jsonList(d.MACs), jsonList(d.IPs), d.FirmwareVersion, d.OS, d.OSVersion, d.ConfigDigest, site,
		d.Location.Building, d.Location.Room, lat, lon, d.Owner, d.Segment, jsonList(d.Tags), d.Status,
		store.Nanos(d.FirstSeen), store.Nanos(d.LastSeen), d.RiskScore, jsonMap(d.Attributes),
		jsonList(d.SecretNames), searchText(d), store.Nanos(d.CreatedAt), store.Nanos(d.UpdatedAt), d.Version}
}

func jsonList(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(l) // a []string always encodes
	return string(b)
}

func jsonMap(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(m) // a map[string]string always encodes
	return string(b)
}

// searchText is what the q filter matches: the lower-cased identifying
// fields, one per line, so a search term (which never holds a line break)
// cannot match across two fields.
func searchText(d *Device) string {
	parts := make([]string, 0, 8+len(d.IPs)+len(d.MACs))
	parts = append(parts, d.ID, d.Name, d.Vendor, d.Model, d.Serial, d.Owner, d.FirmwareVersion)
	parts = append(parts, d.IPs...)
	parts = append(parts, d.MACs...)
	return strings.ToLower(strings.Join(parts, "\n"))
}

// getDevice reads one device through q; forUpdate locks its row on
// PostgreSQL. Returns NotFound when it does not exist.
func (s *Service) getDevice(ctx context.Context, q store.Querier, id string, forUpdate bool) (Device, error) {
	query := `SELECT ` + deviceColumns + ` FROM devices WHERE id = ?`
	if forUpdate {
		query += s.db.ForUpdate()
	}
	return getByID(ctx, q, scanDevice, query, "device", id)
}

// getDevices reads the devices with the given ids that exist, locking them
// on PostgreSQL, keyed by id.
func (s *Service) getDevices(ctx context.Context, tx *store.Tx, ids []string) (map[string]Device, error) {
	out := make(map[string]Device, len(ids))
	for chunk := range slices.Chunk(ids, 500) {
		rows, err := tx.Query(ctx, `SELECT `+deviceColumns+` FROM devices WHERE id IN (`+store.Placeholders(len(chunk))+`)`+s.db.ForUpdate(), anys(chunk)...)
		if err != nil {
			return nil, fmt.Errorf("read %d devices: %w", len(chunk), err)
		}
		for rows.Next() {
			d, err := scanDevice(rows)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("read devices: %w", err)
			}
			out[d.ID] = d
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("read devices: %w", err)
		}
	}
	return out, nil
}

// insertDevices inserts new devices and their tags with multi-row
// statements. The caller has set every column (times, version).
func insertDevices(ctx context.Context, tx *store.Tx, ds []*Device) error {
	// 200 rows × 31 columns stays far below both engines' parameter limits.
	for chunk := range slices.Chunk(ds, 200) {
		args := make([]any, 0, len(chunk)*deviceColumnCount)
		for _, d := range chunk {
			args = append(args, deviceArgs(d)...)
		}
		q := `INSERT INTO devices (` + deviceColumns + `) VALUES ` + store.Rows(len(chunk), deviceColumnCount)
		if _, err := tx.Exec(ctx, q, args...); err != nil {
			if store.IsUniqueViolation(err) {
				return apperr.Errorf(apperr.Conflict, "a device with one of these ids exists already (created concurrently?)")
			}
			return fmt.Errorf("insert %d devices: %w", len(chunk), err)
		}
	}
	var tagArgs []any
	for _, d := range ds {
		for _, t := range d.Tags {
			tagArgs = append(tagArgs, d.ID, t)
		}
	}
	return insertTags(ctx, tx, tagArgs)
}

// insertTags inserts (device_id, tag) pairs, flattened in args.
func insertTags(ctx context.Context, tx *store.Tx, args []any) error {
	for chunk := range slices.Chunk(args, 2*500) {
		n := len(chunk) / 2
		q := `INSERT INTO device_tags (device_id, tag) VALUES ` + store.Rows(n, 2)
		if _, err := tx.Exec(ctx, q, chunk...); err != nil {
			return fmt.Errorf("insert %d device tags: %w", n, err)
		}
	}
	return nil
}

// updateDevice writes every column of d (matched by id) and replaces its
// tags when they changed.
func updateDevice(ctx context.Context, tx *store.Tx, d *Device, tagsChanged bool) error {
	args := deviceArgs(d)
	q := `UPDATE devices SET name = ?, class = ?, vendor = ?, vendor_key = ?, model = ?, serial = ?, macs = ?, ips = ?,
firmware_version = ?, os = ?, os_version = ?, config_digest = ?, site = ?, building = ?, room = ?, lat = ?, lon = ?,
owner = ?, segment = ?, tags = ?, status = ?, first_seen = ?, last_seen = ?, risk_score = ?, attributes = ?,
secret_names = ?, search = ?, created_at = ?, updated_at = ?, version = ? WHERE id = ?`
	if _, err := tx.Exec(ctx, q, append(args[1:], d.ID)...); err != nil {
		return fmt.Errorf("update device %s: %w", d.ID, err)
	}
	if !tagsChanged {
		return nil
	}
	if _, err := tx.Exec(ctx, `DELETE FROM device_tags WHERE device_id = ?`, d.ID); err != nil {
		return fmt.Errorf("replace tags of device %s: %w", d.ID, err)
	}
	args = args[:0]
	for _, t := range d.Tags {
		args = append(args, d.ID, t)
	}
	return insertTags(ctx, tx, args)
}

// secretContext binds a sealed secret to its device and name, so a sealed
// value copied to another row does not open.
func secretContext(deviceID, name string) string {
	return "inventory.device_secret:" + deviceID + ":" + name
}

// writeSecrets seals and stores (adds or replaces) secrets of a device.
func (s *Service) writeSecrets(ctx context.Context, tx *store.Tx, deviceID string, secrets map[string]string, now int64) error {
	if len(secrets) == 0 {
		return nil
	}
	if s.sealer == nil {
		return fmt.Errorf("store secrets of device %s: the inventory has no sealer", deviceID)
	}
	for _, name := range sortedKeys(secrets) {
		sealed, err := s.sealer.Seal([]byte(secrets[name]), secretContext(deviceID, name))
		if err != nil {
			return fmt.Errorf("seal secret %s of device %s: %w", name, deviceID, err)
		}
		// Delete then insert: portable, and the row is locked by the
		// transaction either way.
		if _, err := tx.Exec(ctx, `DELETE FROM device_secrets WHERE device_id = ? AND name = ?`, deviceID, name); err != nil {
			return fmt.Errorf("store secret %s of device %s: %w", name, deviceID, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO device_secrets (device_id, name, sealed, updated_at) VALUES (?, ?, ?, ?)`,
			deviceID, name, sealed, now); err != nil {
			return fmt.Errorf("store secret %s of device %s: %w", name, deviceID, err)
		}
	}
	return nil
}

// deleteSecrets removes named secrets of a device.
func deleteSecrets(ctx context.Context, tx *store.Tx, deviceID string, names []string) error {
	for _, name := range names {
		if _, err := tx.Exec(ctx, `DELETE FROM device_secrets WHERE device_id = ? AND name = ?`, deviceID, name); err != nil {
			return fmt.Errorf("remove secret %s of device %s: %w", name, deviceID, err)
		}
	}
	return nil
}

// siteExists reports whether a site exists, through q.
func siteExists(ctx context.Context, q store.Querier, id string) (bool, error) {
	var n int
	err := q.QueryRow(ctx, `SELECT COUNT(*) FROM sites WHERE id = ?`, id).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("look up site %s: %w", id, err)
	}
	return n > 0, nil
}

func anys[T any](l []T) []any {
	out := make([]any, len(l))
	for i, v := range l {
		out[i] = v
	}
	return out
}
