package audit

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/bus"
	"github.com/fleetward/fleetward/internal/store"
)

// The event types the audit records in the ledger and publishes; all are in
// the security area. Subject is the device id, or the finding id for a
// fleet-wide finding, or the scan id.
const (
	EventFindingOpened     = "security.finding_opened"     // Data: the finding
	EventFindingResolved   = "security.finding_resolved"   // Data: {"id", "check", "subject"}
	EventFindingSuppressed = "security.finding_suppressed" // Data: {"id", "reason", "until"}
	EventScanCompleted     = "security.scan_completed"     // Data: the scan record
)

// Ledger records events in a transaction.
type Ledger interface {
	RecordTx(ctx context.Context, tx *store.Tx, evs ...bus.Event) error
}

// Store keeps findings, scan records and the latest exposure of every
// scanned address. Every finding opened, resolved or suppressed and every
// scan is recorded in the ledger in the same transaction; the server's
// relay publishes ledger entries on the bus. It is safe for concurrent use.
type Store struct {
	db     *store.DB
	ledger Ledger
	now    func() time.Time
}

// NewStore returns a Store over db; both arguments are required.
func NewStore(db *store.DB, l Ledger) *Store {
	if db == nil || l == nil {
		panic("audit.NewStore: db and ledger are required")
	}
	return &Store{db: db, ledger: l, now: time.Now}
}

// ApplyResult says what one audit changed.
type ApplyResult struct {
	Opened   int `json:"opened"`
	Updated  int `json:"updated"`
	Resolved int `json:"resolved"`
	Open     int `json:"open"`
}

// Apply stores the findings of a complete audit: new ones are opened,
// known ones refreshed (and reopened if they had been resolved), and open
// ones the audit no longer found are resolved.
func (s *Store) Apply(ctx context.Context, found []Finding) (ApplyResult, error) {
	now := s.now().UTC().Truncate(time.Microsecond)
	var res ApplyResult
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		res = ApplyResult{}
		var evs []bus.Event
		known, err := s.statuses(ctx, tx)
		if err != nil {
			return err
		}
		seen := make(map[string]bool, len(found))
		for _, f := range found {
			if seen[f.ID] {
				continue
			}
			seen[f.ID] = true
			status, ok := known[f.ID]
			if !ok {
				_, err = tx.Exec(ctx, `INSERT INTO findings (id, check_id, device_id, subject, severity, title, evidence, exploited, exposed,
					status, first_seen, last_seen, resolved_at, suppressed_until, suppress_reason, suppressed_by)
					VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, '', '')`,
					f.ID, f.Check, f.DeviceID, f.Subject, f.Severity, f.Title, f.Evidence, b2i(f.Exploited), b2i(f.Exposed),
					StatusOpen, store.Nanos(now), store.Nanos(now))
				res.Opened++
			} else {
				_, err = tx.Exec(ctx, `UPDATE findings SET severity = ?, title = ?, evidence = ?, exploited = ?, exposed = ?,
					status = ?, last_seen = ?, resolved_at = 0 WHERE id = ?`,
					f.Severity, f.Title, f.Evidence, b2i(f.Exploited), b2i(f.Exposed), StatusOpen, store.Nanos(now), f.ID)
				if status == StatusResolved {
					res.Opened++
				} else {
					res.Updated++
				}
			}
			if err != nil {
				return fmt.Errorf("store finding %s: %w", f.ID, err)
			}
			if !ok || status == StatusResolved {
				f.Status, f.FirstSeen, f.LastSeen = StatusOpen, now, now
				ev, err := newEvent(ctx, EventFindingOpened, cmp.Or(f.DeviceID, f.ID), f, now)
				if err != nil {
					return err
				}
				evs = append(evs, ev)
			}
		}
		for id, status := range known {
			if seen[id] || status != StatusOpen {
				continue
			}
			if _, err := tx.Exec(ctx, `UPDATE findings SET status = ?, resolved_at = ? WHERE id = ?`, StatusResolved, store.Nanos(now), id); err != nil {
				return fmt.Errorf("resolve finding %s: %w", id, err)
			}
			res.Resolved++
			var check, device, subject string
			if err := tx.QueryRow(ctx, `SELECT check_id, device_id, subject FROM findings WHERE id = ?`, id).Scan(&check, &device, &subject); err != nil {
				return err
			}
			ev, err := newEvent(ctx, EventFindingResolved, cmp.Or(device, id), map[string]string{"id": id, "check": check, "subject": subject}, now)
			if err != nil {
				return err
			}
			evs = append(evs, ev)
		}
		res.Open = len(seen)
		return s.record(ctx, tx, evs)
	})
	if err != nil {
		return ApplyResult{}, fmt.Errorf("apply audit of %d findings: %w", len(found), err)
	}
	return res, nil
}

func (s *Store) statuses(ctx context.Context, tx *store.Tx) (map[string]string, error) {
	type row struct{ id, status string }
	rows, err := store.QueryAll(ctx, tx, func(r store.RowScanner) (row, error) {
		var x row
		return x, r.Scan(&x.id, &x.status)
	}, `SELECT id, status FROM findings`)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(rows))
	for _, x := range rows {
		out[x.id] = x.status
	}
	return out, nil
}

// FindingFilter selects findings. The zero value selects the open ones.
type FindingFilter struct {
	DeviceID string
	// Status is "open" (default), "resolved" or "all".
	Status string
	// Severity, when set, keeps only that severity.
	Severity string
	// Check, when set, keeps only that check.
	Check string
	// IncludeSuppressed keeps findings suppressed now; by default they
	// are left out.
	IncludeSuppressed bool
}

// Validate returns an Invalid error naming the first bad field.
func (f FindingFilter) Validate() error {
	switch f.Status {
	case "", StatusOpen, StatusResolved, "all":
	default:
		return apperr.InvalidField("status", "%q: one of open, resolved, all", f.Status)
	}
	if f.Severity != "" && severityRank(f.Severity) < 0 {
		return apperr.InvalidField("severity", "%q: one of %s", f.Severity, strings.Join(Severities, ", "))
	}
	if f.Check != "" {
		if _, ok := CheckByID(f.Check); !ok {
			return apperr.InvalidField("check", "%q is not a check", f.Check)
		}
	}
	return nil
}

const findingColumns = `id, check_id, device_id, subject, severity, title, evidence, exploited, exposed, status,
	first_seen, last_seen, resolved_at, suppressed_until, suppress_reason, suppressed_by`

// Findings returns the findings f selects, most severe first, then newest.
func (s *Store) Findings(ctx context.Context, f FindingFilter) ([]Finding, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	q := `SELECT ` + findingColumns + ` FROM findings WHERE 1 = 1`
	var args []any
	if st := cmp.Or(f.Status, StatusOpen); st != "all" {
		q += ` AND status = ?`
		args = append(args, st)
	}
	if f.DeviceID != "" {
		q += ` AND device_id = ?`
		args = append(args, f.DeviceID)
	}
	if f.Severity != "" {
		q += ` AND severity = ?`
		args = append(args, f.Severity)
	}
	if f.Check != "" {
		q += ` AND check_id = ?`
		args = append(args, f.Check)
	}
	if !f.IncludeSuppressed {
		q += ` AND suppressed_until <= ?`
		args = append(args, store.Nanos(s.now()))
	}
	q += ` ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 WHEN 'low' THEN 3 ELSE 4 END, first_seen DESC, id`
	out, err := store.QueryAll(ctx, s.db, scanFinding, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list findings: %w", err)
	}
	return out, nil
}

// Finding returns one finding. Returns a NotFound error if there is none.
func (s *Store) Finding(ctx context.Context, id string) (Finding, error) {
	f, err := scanFinding(s.db.QueryRow(ctx, `SELECT `+findingColumns+` FROM findings WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Finding{}, apperr.NotFoundf("finding %q not found", id)
	}
	return f, err
}

func scanFinding(r store.RowScanner) (Finding, error) {
	var f Finding
	var exploited, exposed, first, last, resolved, until int64
	err := r.Scan(&f.ID, &f.Check, &f.DeviceID, &f.Subject, &f.Severity, &f.Title, &f.Evidence, &exploited, &exposed, &f.Status,
		&first, &last, &resolved, &until, &f.SuppressReason, &f.SuppressedBy)
	if err != nil {
		return Finding{}, err
	}
	f.Exploited, f.Exposed = exploited != 0, exposed != 0
	f.FirstSeen, f.LastSeen = store.Time(first), store.Time(last)
	if resolved != 0 {
		f.ResolvedAt = store.Time(resolved)
	}
	if until != 0 {
		f.SuppressedUntil = store.Time(until)
	}
	return f, nil
}

// Suppression is an operator's decision to accept a finding for a while.
type Suppression struct {
	Reason string    `json:"reason"`
	Until  time.Time `json:"until"`
}

// maxSuppression bounds how long a finding can be suppressed: accepted risk
// must be looked at again.
const maxSuppression = 366 * 24 * time.Hour

// Validate returns an Invalid error naming the first bad field.
func (p Suppression) Validate(now time.Time) error {
	if strings.TrimSpace(p.Reason) == "" {
		return apperr.InvalidField("reason", "is required: say why the finding is accepted")
	}
	if len(p.Reason) > 500 {
		return apperr.InvalidField("reason", "is %d bytes; at most 500", len(p.Reason))
	}
	if !p.Until.After(now) {
		return apperr.InvalidField("until", "must be in the future")
	}
	if p.Until.Sub(now) > maxSuppression {
		return apperr.InvalidField("until", "at most a year ahead")
	}
	return nil
}

// Suppress suppresses finding id until p.Until, recording who and why in
// the ledger. A zero Until with an empty reason lifts a suppression.
// Returns NotFound if there is no such finding, Invalid for a bad p.
func (s *Store) Suppress(ctx context.Context, id string, p Suppression) (Finding, error) {
	now := s.now().UTC().Truncate(time.Microsecond)
	lift := p.Until.IsZero() && p.Reason == ""
	if !lift {
		if err := p.Validate(now); err != nil {
			return Finding{}, err
		}
	}
	who := actor.From(ctx).Name
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		var device string
		if err := tx.QueryRow(ctx, `SELECT device_id FROM findings WHERE id = ?`, id).Scan(&device); errors.Is(err, sql.ErrNoRows) {
			return apperr.NotFoundf("finding %q not found", id)
		} else if err != nil {
			return err
		}
		until, by := store.Nanos(p.Until.UTC()), who
		if lift {
			until, by = 0, ""
		}
		if _, err := tx.Exec(ctx, `UPDATE findings SET suppressed_until = ?, suppress_reason = ?, suppressed_by = ? WHERE id = ?`,
			until, p.Reason, by, id); err != nil {
			return err
		}
		ev, err := newEvent(ctx, EventFindingSuppressed, cmp.Or(device, id), map[string]any{"id": id, "reason": p.Reason, "until": p.Until}, now)
		if err != nil {
			return err
		}
		return s.record(ctx, tx, []bus.Event{ev})
	})
	if err != nil {
		if apperr.As(err) != nil {
			return Finding{}, err
		}
		return Finding{}, fmt.Errorf("suppress finding %s: %w", id, err)
	}
	return s.Finding(ctx, id)
}

// Summary counts open findings for the dashboard.
type Summary struct {
	Open       int            `json:"open"`
	Suppressed int            `json:"suppressed"`
	BySeverity map[string]int `json:"by_severity"`
	ByCheck    map[string]int `json:"by_check"`
	Exploited  int            `json:"exploited"`
}

// Summarize counts the open findings.
func (s *Store) Summarize(ctx context.Context) (Summary, error) {
	all, err := s.Findings(ctx, FindingFilter{IncludeSuppressed: true})
	if err != nil {
		return Summary{}, err
	}
	now := s.now()
	sum := Summary{BySeverity: map[string]int{}, ByCheck: map[string]int{}}
	for _, f := range all {
		if f.Suppressed(now) {
			sum.Suppressed++
			continue
		}
		sum.Open++
		sum.BySeverity[f.Severity]++
		sum.ByCheck[f.Check]++
		if f.Exploited {
			sum.Exploited++
		}
	}
	return sum, nil
}

func (s *Store) record(ctx context.Context, tx *store.Tx, evs []bus.Event) error {
	if len(evs) == 0 {
		return nil
	}
	if err := s.ledger.RecordTx(ctx, tx, evs...); err != nil {
		return fmt.Errorf("record %d audit events in the ledger: %w", len(evs), err)
	}
	return nil
}

func newEvent(ctx context.Context, typ, subject string, data any, now time.Time) (bus.Event, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return bus.Event{}, fmt.Errorf("encode %s event: %w", typ, err)
	}
	a := actor.From(ctx)
	return bus.Event{ID: rand.Text(), Type: typ, Time: now, Actor: a.Name, Remote: a.Remote, Subject: subject, Data: raw}, nil
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
