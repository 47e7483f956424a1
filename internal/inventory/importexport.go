package inventory

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/bus"
	"github.com/fleetward/fleetward/internal/store"
)

// ImportOptions tune ImportDevices.
type ImportOptions struct {
	// BatchSize is the number of rows committed together, each batch in
	// one transaction with its ledger entries; DefaultBatchSize when 0, at
	// most MaxBatchSize.
	BatchSize int
	// DryRun validates and reports as a real import would, then rolls
	// every batch back: nothing is stored, recorded or published.
	DryRun bool
	// StopOnError stops at the first invalid row (after committing the
	// valid rows before it) and returns an error; otherwise invalid rows
	// are reported in ImportResult.Errors and skipped.
	StopOnError bool
	// Progress, when set, is called after each batch is committed, from
	// the importing goroutine.
	Progress func(ImportProgress)
}

// Batch sizes.
const (
	DefaultBatchSize = 500
	MaxBatchSize     = 5000
)

// MaxImportErrors is the number of row errors an ImportResult keeps; Failed
// counts them all.
const MaxImportErrors = 100

// maxRowBytes bounds one CSV record or JSON array element, so one huge row
// cannot exhaust memory.
const maxRowBytes = 1 << 20

// ImportProgress reports an import's progress. Every row counted is
// committed (unless it is a dry run) and survives a crash.
type ImportProgress struct {
	// Done is the number of rows read and settled: created, updated,
	// unchanged or failed.
	Done      int `json:"done"`
	Created   int `json:"created"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
	Failed    int `json:"failed"`
}

// ImportResult is what an import did.
type ImportResult struct {
	Created   int `json:"created"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
	Failed    int `json:"failed"`
	// SitesCreated lists the sites the import created because devices
	// referred to them (named after their ids).
	SitesCreated []string `json:"sites_created"`
	// Errors describes the first MaxImportErrors invalid rows.
	Errors []RowError `json:"errors"`
	DryRun bool       `json:"dry_run,omitempty"`
}

// RowError is one invalid row of an import.
type RowError struct {
	// Row is the device's 1-based position in the input: the JSON array
	// element, or the CSV record after the header.
	Row int `json:"row"`
	// Line is the CSV line the record starts on (the header is line 1).
	Line int `json:"line,omitempty"`
	// ID is the row's device id, when it has one.
	ID string `json:"id,omitempty"`
	// Field names the device field at fault ("macs[1]", "location.lat"),
	// when one is.
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// importRow is one decoded input row.
type importRow struct {
	row, line int
	dev       Device
	// present holds the fields the row gives (JSON names; location's as
	// "location.site", …, or "location" for the whole object): on update
	// only those change.
	present map[string]bool
	err     error // why the row could not be decoded
}

// rowReader yields rows; io.EOF ends the input; any other error is fatal
// (the input cannot be read further).
type rowReader interface {
	next() (importRow, error)
}

// errDryRun rolls back a dry run's batch.
var errDryRun = errors.New("dry run")

// ImportDevices reads devices in format "csv" or "json" and upserts them by
// id (devices without an id are created with a generated one). Rows are
// committed in batches, each one transaction with its ledger entries; a
// batch is committed before the next is read, so an import cut short keeps
// every batch reported through opts.Progress. Sites that devices refer to
// and that do not exist are created, named after their ids.
//
// On update, only the fields the row gives change (the CSV columns present,
// the JSON keys present; an empty CSV status cell leaves the status as it
// is). Secrets in JSON rows are added or replaced, never removed.
//
// Invalid rows are reported in the result and skipped, unless
// opts.StopOnError. Returns Invalid for an unknown format, a malformed
// header or input that cannot be parsed further (naming the line), with
// the result of the batches committed before.
func (s *Service) ImportDevices(ctx context.Context, format string, r io.Reader, opts ImportOptions) (ImportResult, error) {
	res := ImportResult{SitesCreated: []string{}, Errors: []RowError{}, DryRun: opts.DryRun}
	batch := opts.BatchSize
	switch {
	case batch == 0:
		batch = DefaultBatchSize
	case batch < 0 || batch > MaxBatchSize:
		return res, apperr.InvalidField("batch_size", "must be from 1 to %d", MaxBatchSize)
	}
	var rr rowReader
	var err error
	switch format {
	case "csv":
		rr, err = newCSVReader(r)
	case "json":
		rr, err = newJSONReader(r)
	default:
		return res, apperr.InvalidField("format", "must be csv or json")
	}
	if err != nil {
		return res, err
	}
	imp := &importer{s: s, opts: opts, res: &res, knownSites: map[string]bool{}}
	defer func() {
		if !opts.DryRun && res.Created+res.Updated >= statsRefreshRows {
			s.refreshStatistics(ctx)
		}
	}()
	rows := make([]importRow, 0, batch)
	for {
		row, err := rr.next()
		if err != nil && !errors.Is(err, io.EOF) {
			if ferr := imp.flush(ctx, rows); ferr != nil {
				return res, ferr
			}
			return res, err
		}
		if err == nil {
			rows = append(rows, row)
		}
		if len(rows) == batch || (errors.Is(err, io.EOF) && len(rows) > 0) {
			if ferr := imp.flush(ctx, rows); ferr != nil {
				return res, ferr
			}
			rows = rows[:0]
			if imp.stopped {
				return res, imp.stopErr
			}
		}
		if errors.Is(err, io.EOF) {
			return res, nil
		}
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("import devices: %w", err)
		}
	}
}

// statsRefreshRows is how many rows an import must create or update before
// it refreshes the query planner's statistics.
const statsRefreshRows = 1000

// refreshStatistics brings the planner's statistics up to date after a bulk
// load, so filtered listings pick the right index and count quickly at once
// rather than after the next autovacuum (PostgreSQL) or never (SQLite, which
// has no statistics until ANALYZE runs). A failure is logged: the data is fine,
// only queries may be slower.
func (s *Service) refreshStatistics(ctx context.Context) {
	err := func() error {
		if s.db.Dialect == store.Postgres {
			// VACUUM also sets the visibility map, which lets the counts
			// behind DevicePage.Total use index-only scans. It cannot run
			// in a transaction, so it runs on its own.
			for _, q := range []string{`VACUUM (ANALYZE) devices`, `VACUUM (ANALYZE) device_tags`} {
				if _, err := s.db.Exec(ctx, q); err != nil {
					return err
				}
			}
			return nil
		}
		// analysis_limit bounds the rows read per index; it is a setting of
		// the connection, so ANALYZE must run on the same one.
		conn, err := s.db.Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		for _, q := range []string{`PRAGMA analysis_limit = 2000`, `ANALYZE devices`, `ANALYZE device_tags`} {
			if _, err := conn.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		return nil
	}()
	if err != nil {
		s.log.Warn("refresh query statistics after an import failed; listings may be slower until it runs", "err", err)
	}
}

// importer carries an import's state across batches.
type importer struct {
	s    *Service
	opts ImportOptions
	res  *ImportResult
	done int
	// knownSites are sites seen to exist in committed batches.
	knownSites map[string]bool
	stopped    bool
	stopErr    error
}

// batchOutcome is what one attempt at a batch did; applied to the result
// only once the batch commits.
type batchOutcome struct {
	created, updated, unchanged, failed, settled int
	errors                                       []RowError
	sites                                        []string
	events                                       []bus.Event
	stop                                         *RowError
}

// flush writes one batch in one transaction with its ledger entries, then
// publishes its events and reports progress.
func (imp *importer) flush(ctx context.Context, rows []importRow) error {
	if len(rows) == 0 || imp.stopped {
		return nil
	}
	s := imp.s
	var out batchOutcome
	// No op: every error but a dry run's is named with the batch below.
	err := s.change(ctx, "", func(tx *store.Tx) ([]bus.Event, error) {
		out = batchOutcome{}
		if s.db.Dialect == store.Postgres {
			// Every statement here looks rows up by key. Right after a bulk
			// load the planner's statistics still describe a small table
			// and it would scan the whole of it for each batch's lookup,
			// growing with the table; this transaction never wants that.
			if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
				return nil, err
			}
		}
		if err := imp.writeBatch(ctx, tx, rows, &out); err != nil {
			return nil, err
		}
		if imp.opts.DryRun {
			return nil, errDryRun
		}
		return out.events, nil
	})
	if err != nil && !errors.Is(err, errDryRun) {
		return fmt.Errorf("import devices: batch of rows %d to %d: %w", rows[0].row, rows[len(rows)-1].row, err)
	}
	res := imp.res
	res.Created += out.created
	res.Updated += out.updated
	res.Unchanged += out.unchanged
	res.Failed += out.failed
	for _, e := range out.errors {
		if len(res.Errors) < MaxImportErrors {
			res.Errors = append(res.Errors, e)
		}
	}
	for _, id := range out.sites {
		// A dry run rolls its sites back, so each batch "creates" them anew.
		if !slices.Contains(res.SitesCreated, id) {
			res.SitesCreated = append(res.SitesCreated, id)
		}
	}
	if !imp.opts.DryRun {
		for _, id := range out.sites {
			imp.knownSites[id] = true
		}
	}
	imp.done += out.settled
	if imp.opts.Progress != nil {
		imp.opts.Progress(ImportProgress{Done: imp.done, Created: res.Created, Updated: res.Updated, Unchanged: res.Unchanged, Failed: res.Failed})
	}
	if out.stop != nil {
		imp.stopped = true
		after := "the rows before it are committed"
		if imp.opts.DryRun {
			after = "dry run: nothing was written"
		}
		imp.stopErr = &apperr.Error{Code: apperr.Invalid, Field: out.stop.Field,
			Message: fmt.Sprintf("row %d: %s (import stopped; %s)", out.stop.Row, out.stop.Message, after)}
	}
	return nil
}

// writeBatch validates and writes rows inside tx, filling out; the caller
// records out.events.
func (imp *importer) writeBatch(ctx context.Context, tx *store.Tx, rows []importRow, out *batchOutcome) error {
	s := imp.s
	now := s.nowUTC()
	var ids []string
	seen := make(map[string]bool, len(rows))
	for i := range rows {
		if id := rows[i].dev.ID; rows[i].err == nil && id != "" && !seen[id] && checkID(id) == "" {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	current, err := s.getDevices(ctx, tx, ids)
	if err != nil {
		return err
	}
	batchSites := map[string]bool{}
	var changes []*deviceChange
	fail := func(r *importRow, err error) bool {
		re := RowError{Row: r.row, Line: r.line, ID: r.dev.ID, Message: err.Error()}
		if ae := apperr.As(err); ae != nil {
			re.Field, re.Message = ae.Field, ae.Message
		}
		out.failed++
		out.settled++
		out.errors = append(out.errors, re)
		if imp.opts.StopOnError {
			out.stop = &re
			return true
		}
		return false
	}
	for i := range rows {
		r := &rows[i]
		if r.err != nil {
			if fail(r, r.err) {
				break
			}
			continue
		}
		old, exists := current[r.dev.ID]
		var next Device
		if exists {
			next = mergeRow(old, r)
		} else {
			next = r.dev
		}
		next, err := next.normalized()
		if err != nil {
			if fail(r, err) {
				break
			}
			continue
		}
		if site := next.Location.Site; site != "" && !imp.knownSites[site] && !batchSites[site] {
			ok, err := siteExists(ctx, tx, site)
			if err != nil {
				return err
			}
			if !ok {
				ev, err := s.insertSite(ctx, tx, Site{ID: site, Name: site}, now)
				if err != nil {
					return err
				}
				out.sites = append(out.sites, site)
				out.events = append(out.events, ev)
			}
			batchSites[site] = true
		}
		var c *deviceChange
		if exists {
			if c, err = s.prepareUpdate(ctx, old, next, nil, now); err != nil {
				if fail(r, err) {
					break
				}
				continue
			}
			if c == nil {
				out.unchanged++
			} else {
				out.updated++
			}
		} else {
			if c, err = s.prepareCreate(ctx, next, now); err != nil {
				return err
			}
			out.created++
		}
		out.settled++
		if c != nil {
			current[c.dev.ID] = c.dev
			changes = append(changes, c)
			out.events = append(out.events, c.events...)
		}
	}
	return s.writeChanges(ctx, tx, changes)
}

// mergeRow returns old with the fields the row gives replaced.
func mergeRow(old Device, r *importRow) Device {
	d, p := r.dev, r.present
	next := old
	next.Secrets = d.Secrets
	strs := []struct {
		key      string
		dst, src *string
	}{
		{"name", &next.Name, &d.Name}, {"class", &next.Class, &d.Class}, {"vendor", &next.Vendor, &d.Vendor},
		{"model", &next.Model, &d.Model}, {"serial", &next.Serial, &d.Serial},
		{"firmware_version", &next.FirmwareVersion, &d.FirmwareVersion}, {"os", &next.OS, &d.OS},
		{"os_version", &next.OSVersion, &d.OSVersion}, {"config_digest", &next.ConfigDigest, &d.ConfigDigest},
		{"owner", &next.Owner, &d.Owner}, {"segment", &next.Segment, &d.Segment}, {"status", &next.Status, &d.Status},
		{"location.site", &next.Location.Site, &d.Location.Site},
		{"location.building", &next.Location.Building, &d.Location.Building},
		{"location.room", &next.Location.Room, &d.Location.Room},
	}
	for _, f := range strs {
		if p[f.key] {
			*f.dst = *f.src
		}
	}
	lists := []struct {
		key      string
		dst, src *[]string
	}{{"macs", &next.MACs, &d.MACs}, {"ips", &next.IPs, &d.IPs}, {"tags", &next.Tags, &d.Tags}}
	for _, f := range lists {
		if p[f.key] {
			*f.dst = *f.src
		}
	}
	if p["location"] {
		next.Location = d.Location
	}
	if p["location.lat"] {
		next.Location.Lat = d.Location.Lat
	}
	if p["location.lon"] {
		next.Location.Lon = d.Location.Lon
	}
	if p["first_seen"] {
		next.FirstSeen = d.FirstSeen
	}
	if p["last_seen"] {
		next.LastSeen = d.LastSeen
	}
	if p["risk_score"] {
		next.RiskScore = d.RiskScore
	}
	if p["attributes"] {
		next.Attributes = d.Attributes
	}
	return next
}

// ExportDevices writes every device matching f (its Cursor and Limit are
// ignored), in f's order, as "csv" (the columns ImportDevices reads) or
// "json" (an array of devices, secret names but no secret values). It
// streams page by page, so a device changed during the export may appear
// in its old or its new place. Returns Invalid for an unknown format or a
// malformed filter.
func (s *Service) ExportDevices(ctx context.Context, format string, w io.Writer, f Filter) error {
	var ew deviceWriter
	switch format {
	case "csv":
		ew = newCSVWriter(w)
	case "json":
		ew = newJSONWriter(w)
	default:
		return apperr.InvalidField("format", "must be csv or json")
	}
	f.Cursor, f.Limit = "", MaxLimit
	c, err := f.compile()
	if err != nil {
		return err
	}
	walk := false
	if s.db.Dialect == store.SQLite && c.filtered() {
		where, args := c.where(false)
		var total int
		if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM devices WHERE `+where, args...).Scan(&total); err != nil {
			return fmt.Errorf("export devices: count: %w", err)
		}
		if walk, err = s.walkSortIndex(ctx, &c, total); err != nil {
			return fmt.Errorf("export devices: %w", err)
		}
	}
	if err := ew.begin(); err != nil {
		return fmt.Errorf("export devices: %w", err)
	}
	for {
		devs, next, err := s.listPage(ctx, &c, walk)
		if err != nil {
			return fmt.Errorf("export devices: %w", err)
		}
		for i := range devs {
			if err := ew.write(&devs[i]); err != nil {
				return fmt.Errorf("export devices: %w", err)
			}
		}
		if next == "" {
			break
		}
		cur, err := decodeCursor(next, c.sort)
		if err != nil {
			return fmt.Errorf("export devices: %w", err)
		}
		c.cursor = &cur
	}
	if err := ew.end(); err != nil {
		return fmt.Errorf("export devices: %w", err)
	}
	return nil
}

// deviceWriter writes devices in one export format.
type deviceWriter interface {
	begin() error
	write(d *Device) error
	end() error
}

// budgetReader fails a read once more than limit bytes were read since the
// last reset: the import readers reset it per row, bounding a row's size.
type budgetReader struct {
	r     io.Reader
	limit int
	used  int
	what  string
}

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.used > b.limit {
		return 0, apperr.InvalidField("body", "%s is larger than %d bytes", b.what, b.limit)
	}
	n, err := b.r.Read(p)
	b.used += n
	return n, err
}

func (b *budgetReader) reset() { b.used = 0 }
