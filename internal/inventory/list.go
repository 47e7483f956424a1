package inventory

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/fleetward/fleetward/internal/store"
)

// DevicePage is one page of a device listing.
type DevicePage struct {
	Devices []Device `json:"devices"`
	// NextCursor continues the listing (Filter.Cursor); empty on the last
	// page.
	NextCursor string `json:"next_cursor,omitempty"`
	// Total is the number of devices matching the filter, on every page.
	Total int `json:"total"`
}

// ListDevices returns the devices matching f, in f's order, one page at a
// time. Pagination is by keyset: a page continues after the last device of
// the previous one, so devices added or removed meanwhile never cause
// duplicates or gaps among the others. Returns an Invalid *apperr.Error
// naming the parameter for a malformed filter or a cursor made for another
// sort.
func (s *Service) ListDevices(ctx context.Context, f Filter) (DevicePage, error) {
	c, err := f.compile()
	if err != nil {
		return DevicePage{}, err
	}
	page := DevicePage{Devices: []Device{}}
	if len(c.terms) > 0 && c.cursor == nil && s.db.Dialect == store.SQLite {
		// Text search scans every row whatever the plan: on SQLite, count
		// and page in that one scan. (PostgreSQL counts, then walks the
		// sort index for a broad search, which measures faster there.)
		devs, next, total, err := s.listFirstPageCounted(ctx, &c)
		if err != nil {
			return DevicePage{}, err
		}
		page.Devices, page.NextCursor, page.Total = append(page.Devices, devs...), next, total
		return page, nil
	}
	where, args := c.where(false)
	if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM devices WHERE `+where, args...).Scan(&page.Total); err != nil {
		return DevicePage{}, fmt.Errorf("count devices: %w", err)
	}
	walk, err := s.walkSortIndex(ctx, &c, page.Total)
	if err != nil {
		return DevicePage{}, err
	}
	devs, next, err := s.listPage(ctx, &c, walk)
	if err != nil {
		return DevicePage{}, err
	}
	page.Devices = append(page.Devices, devs...)
	page.NextCursor = next
	return page, nil
}

// listFirstPageCounted returns the first page and the number of matches,
// counted by a window over the same scan.
func (s *Service) listFirstPageCounted(ctx context.Context, c *compiledFilter) ([]Device, string, int, error) {
	where, args := c.where(false)
	dir := "ASC"
	if c.sort.desc {
		dir = "DESC"
	}
	// The window sorts only (sort key, id); the page's rows are read after.
	col := c.sort.key.column
	q := `SELECT ` + prefixed("d.", deviceColumns) + `, p.total FROM devices d JOIN (SELECT id AS pid, ` + col +
		` AS pkey, COUNT(*) OVER () AS total FROM devices WHERE ` + where + ` ORDER BY ` + col + ` ` + dir + `, id ` + dir +
		` LIMIT ?) p ON d.id = p.pid ORDER BY p.pkey ` + dir + `, p.pid ` + dir
	var total int
	scan := func(sc rowScanner) (Device, error) { return scanDevice(withExtra{sc, &total}) }
	out, err := queryAll(ctx, s.db, scan, q, append(args, c.Limit+1)...)
	if err != nil {
		return nil, "", 0, fmt.Errorf("list devices: %w", err)
	}
	out, next := c.trim(out)
	return out, next, total, nil
}

// prefixed qualifies each of a comma-separated column list.
func prefixed(prefix, columns string) string {
	parts := strings.Split(columns, ",")
	for i, p := range parts {
		parts[i] = prefix + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}

// withExtra scans a row with one more column than its destinations ask for.
type withExtra struct {
	sc    rowScanner
	extra any
}

func (w withExtra) Scan(dest ...any) error { return w.sc.Scan(append(dest, w.extra)...) }

// trim cuts a fetched page (of up to Limit+1 devices) to Limit and returns
// the next page's cursor when there is more.
func (c *compiledFilter) trim(out []Device) ([]Device, string) {
	if len(out) <= c.Limit {
		return out, ""
	}
	out = out[:c.Limit]
	return out, encodeCursor(c.sort, &out[len(out)-1])
}

// walkSortIndex decides, on SQLite, whether a page is cheaper found by
// walking the sort order's index and filtering (about limit × all / total
// rows visited) than by collecting every match and sorting it (about total
// rows): it is when total² > (limit+1) × all. PostgreSQL's planner makes
// this choice itself from its statistics.
func (s *Service) walkSortIndex(ctx context.Context, c *compiledFilter, total int) (bool, error) {
	if s.db.Dialect != store.SQLite || !c.filtered() || total == 0 {
		return false, nil
	}
	var all int
	if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM devices`).Scan(&all); err != nil {
		return false, fmt.Errorf("count devices: %w", err)
	}
	return int64(total)*int64(total) > int64(c.Limit+1)*int64(all), nil
}

// listPage returns one page for a compiled filter, starting after its
// cursor, and the cursor of the next page ("" on the last). walkSort: see
// compiledFilter.where.
func (s *Service) listPage(ctx context.Context, c *compiledFilter, walkSort bool) ([]Device, string, error) {
	where, args := c.where(walkSort)
	col, op, dir := c.sort.key.column, ">", "ASC"
	if c.sort.desc {
		op, dir = "<", "DESC"
	}
	if c.cursor != nil {
		// A row-value comparison: both engines walk the (column, id) index
		// from the cursor onwards.
		where += " AND (" + col + ", id) " + op + " (?, ?)"
		args = append(args, c.cursor.arg(c.sort.key), c.cursor.ID)
	}
	q := `SELECT ` + deviceColumns + ` FROM devices WHERE ` + where +
		` ORDER BY ` + col + ` ` + dir + `, id ` + dir + ` LIMIT ?`
	args = append(args, c.Limit+1)
	out, err := queryAll(ctx, s.db, scanDevice, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list devices: %w", err)
	}
	out, next := c.trim(out)
	return out, next, nil
}

// Stats summarizes the fleet for the overview dashboard.
type Stats struct {
	Total int `json:"total"`
	// ByStatus, ByClass, BySite and ByVendor count devices by each value;
	// devices without a site or vendor are not counted in BySite or
	// ByVendor.
	ByStatus map[string]int `json:"by_status"`
	ByClass  map[string]int `json:"by_class"`
	BySite   map[string]int `json:"by_site"`
	ByVendor map[string]int `json:"by_vendor"`
	// RiskHistogram counts devices by risk score in buckets of width 10:
	// [0,10), [10,20), …, [90,100] (100 falls in the last).
	RiskHistogram [10]int `json:"risk_histogram"`
	// SeenLast24h counts devices last seen in the 24 hours before
	// GeneratedAt.
	SeenLast24h int `json:"seen_last_24h"`
	// Riskiest are the 10 devices with the highest risk scores, highest
	// first.
	Riskiest    []RiskyDevice `json:"riskiest"`
	GeneratedAt time.Time     `json:"generated_at"`
}

// RiskyDevice is one entry of Stats.Riskiest.
type RiskyDevice struct {
	ID        string  `json:"id"`
	Name      string  `json:"name"`
	RiskScore float64 `json:"risk_score"`
}

// FleetStats counts the fleet's devices by status, class, site and vendor,
// draws the risk histogram and lists the riskiest devices.
func (s *Service) FleetStats(ctx context.Context) (Stats, error) {
	now := s.nowUTC()
	st := Stats{
		ByStatus: map[string]int{}, ByClass: map[string]int{}, BySite: map[string]int{}, ByVendor: map[string]int{},
		GeneratedAt: now,
	}
	for _, g := range []struct {
		column string
		into   map[string]int
	}{{"status", st.ByStatus}, {"class", st.ByClass}, {"site", st.BySite}, {"vendor", st.ByVendor}} {
		if err := s.countBy(ctx, g.column, g.into); err != nil {
			return Stats{}, err
		}
	}
	for _, n := range st.ByStatus {
		st.Total += n
	}
	// CASE rather than FLOOR: SQLite may be built without math functions,
	// and PostgreSQL's integer cast rounds.
	bucket := "CASE"
	for i := 9; i >= 1; i-- {
		bucket += fmt.Sprintf(" WHEN risk_score >= %d THEN %d", i*10, i)
	}
	bucket += " ELSE 0 END"
	rows, err := s.db.Query(ctx, `SELECT `+bucket+` AS bucket, COUNT(*) FROM devices GROUP BY bucket`)
	if err != nil {
		return Stats{}, fmt.Errorf("fleet stats: risk histogram: %w", err)
	}
	for rows.Next() {
		var b, n int
		if err := rows.Scan(&b, &n); err != nil {
			rows.Close()
			return Stats{}, fmt.Errorf("fleet stats: risk histogram: %w", err)
		}
		if b >= 0 && b < len(st.RiskHistogram) {
			st.RiskHistogram[b] = n
		}
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return Stats{}, fmt.Errorf("fleet stats: risk histogram: %w", err)
	}
	since := now.Add(-24 * time.Hour).UnixNano()
	if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM devices WHERE last_seen >= ?`, since).Scan(&st.SeenLast24h); err != nil {
		return Stats{}, fmt.Errorf("fleet stats: seen in 24 h: %w", err)
	}
	scanRisky := func(sc rowScanner) (RiskyDevice, error) {
		var r RiskyDevice
		err := sc.Scan(&r.ID, &r.Name, &r.RiskScore)
		return r, err
	}
	st.Riskiest, err = queryAll(ctx, s.db, scanRisky, `SELECT id, name, risk_score FROM devices ORDER BY risk_score DESC, id DESC LIMIT 10`)
	if err != nil {
		return Stats{}, fmt.Errorf("fleet stats: riskiest: %w", err)
	}
	return st, nil
}

// countBy counts devices by the values of one column, skipping NULL and
// empty values.
func (s *Service) countBy(ctx context.Context, column string, into map[string]int) error {
	rows, err := s.db.Query(ctx, `SELECT `+column+`, COUNT(*) FROM devices WHERE `+column+` IS NOT NULL AND `+column+` <> '' GROUP BY `+column)
	if err != nil {
		return fmt.Errorf("fleet stats: by %s: %w", column, err)
	}
	defer rows.Close()
	for rows.Next() {
		var v string
		var n int
		if err := rows.Scan(&v, &n); err != nil {
			return fmt.Errorf("fleet stats: by %s: %w", column, err)
		}
		into[v] = n
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("fleet stats: by %s: %w", column, err)
	}
	return nil
}
