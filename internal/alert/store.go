package alert

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

// The event types of alerts, in the security area; Subject is the device
// id, or the source address when no device has it.
const (
	EventAlertRaised = "security.alert_raised" // Data: the alert as raised
	EventAlertClosed = "security.alert_closed" // Data: {"id", "reason"}
	// EventAlertAttributed: an alert raised before its source was in the
	// inventory now has its device. Data: {"id", "device_id"}.
	EventAlertAttributed = "security.alert_attributed"
)

// Ledger records events in a transaction.
type Ledger interface {
	RecordTx(ctx context.Context, tx *store.Tx, evs ...bus.Event) error
}

// Store keeps alerts. A new alert and a closed one are ledger entries (the
// relay publishes them on the bus); the growth of an open alert (more
// signals, peers, a higher score) is not, to keep the ledger readable.
type Store struct {
	db     *store.DB
	ledger Ledger
}

// NewStore returns a Store over db; both arguments are required.
func NewStore(db *store.DB, l Ledger) *Store {
	if db == nil || l == nil {
		panic("alert.NewStore: db and ledger are required")
	}
	return &Store{db: db, ledger: l}
}

// Save stores a, inserting it when started (and recording it in the
// ledger) or updating it otherwise.
func (s *Store) Save(ctx context.Context, a Alert, started bool) error {
	peers, _ := json.Marshal(a.Peers)
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		if !started {
			res, err := tx.Exec(ctx, `UPDATE alerts SET severity = ?, peers = ?, peers_dropped = ?, max_score = ?, signals = ?, last_seen = ?
				WHERE id = ?`, a.Severity, string(peers), a.PeersDropped, a.MaxScore, a.Signals, store.Nanos(a.LastSeen), a.ID)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 1 {
				return nil
			}
			// Not stored yet (its first save failed): insert it now.
		}
		if _, err := tx.Exec(ctx, `INSERT INTO alerts (id, device_id, src_ip, src_mac, behaviour, severity, detector, explanation, peers,
			peers_dropped, max_score, threshold, signals, first_seen, last_seen, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			a.ID, a.DeviceID, a.SrcIP, a.SrcMAC, a.Behaviour, a.Severity, a.Detector, a.Explanation, string(peers), a.PeersDropped,
			a.MaxScore, a.Threshold, a.Signals, store.Nanos(a.FirstSeen), store.Nanos(a.LastSeen), a.Status); err != nil {
			return err
		}
		ev, err := event(ctx, EventAlertRaised, cmp.Or(a.DeviceID, a.SrcIP, a.SrcMAC), a)
		if err != nil {
			return err
		}
		return s.ledger.RecordTx(ctx, tx, ev)
	})
	if err != nil {
		return fmt.Errorf("save alert %s: %w", a.ID, err)
	}
	return nil
}

// Filter selects alerts; the zero value selects the newest of all.
type Filter struct {
	DeviceID string
	Status   string // "", "open" or "closed"
	Since    time.Time
	Limit    int // default 100, at most 1000
}

// Validate returns an Invalid error naming the first bad field.
func (f Filter) Validate() error {
	if f.Status != "" && f.Status != StatusOpen && f.Status != StatusClosed {
		return apperr.InvalidField("status", "%q: open or closed", f.Status)
	}
	if f.Limit < 0 || f.Limit > 1000 {
		return apperr.InvalidField("limit", "%d: from 1 to 1000", f.Limit)
	}
	return nil
}

const alertColumns = `id, device_id, src_ip, src_mac, behaviour, severity, detector, explanation, peers, peers_dropped, max_score,
	threshold, signals, first_seen, last_seen, status`

// List returns the alerts f selects, newest first.
func (s *Store) List(ctx context.Context, f Filter) ([]Alert, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	q, args := `SELECT `+alertColumns+` FROM alerts WHERE last_seen >= ?`, []any{store.Nanos(f.Since)}
	if f.DeviceID != "" {
		q, args = q+` AND device_id = ?`, append(args, f.DeviceID)
	}
	if f.Status != "" {
		q, args = q+` AND status = ?`, append(args, f.Status)
	}
	q, args = q+` ORDER BY last_seen DESC, id LIMIT ?`, append(args, cmp.Or(f.Limit, 100))
	out, err := store.QueryAll(ctx, s.db, scanAlert, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	return out, nil
}

// Get returns one alert. Returns NotFound if there is none.
func (s *Store) Get(ctx context.Context, id string) (Alert, error) {
	a, err := scanAlert(s.db.QueryRow(ctx, `SELECT `+alertColumns+` FROM alerts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Alert{}, apperr.NotFoundf("alert %q not found", id)
	}
	return a, err
}

// Close closes an open alert with a reason, recorded in the ledger with
// the context's actor. Returns NotFound or Invalid.
func (s *Store) Close(ctx context.Context, id, reason string) (Alert, error) {
	if reason == "" || len(reason) > 500 {
		return Alert{}, apperr.InvalidField("reason", "1 to 500 characters: say what was done")
	}
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		a, err := scanAlert(tx.QueryRow(ctx, `SELECT `+alertColumns+` FROM alerts WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return apperr.NotFoundf("alert %q not found", id)
		} else if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE alerts SET status = ? WHERE id = ?`, StatusClosed, id); err != nil {
			return err
		}
		ev, err := event(ctx, EventAlertClosed, cmp.Or(a.DeviceID, a.SrcIP, a.SrcMAC), map[string]string{"id": id, "reason": reason})
		if err != nil {
			return err
		}
		return s.ledger.RecordTx(ctx, tx, ev)
	})
	if err != nil {
		if apperr.As(err) != nil {
			return Alert{}, err
		}
		return Alert{}, fmt.Errorf("close alert %s: %w", id, err)
	}
	return s.Get(ctx, id)
}

// MaxUnattributed bounds the alerts Unattributed returns.
const MaxUnattributed = 1000

// Unattributed returns the alerts without a device, last seen at since or
// later, whose source IP is one of ips or whose source MAC is one of macs
// (lower case), newest first, at most MaxUnattributed.
func (s *Store) Unattributed(ctx context.Context, since time.Time, ips, macs []string) ([]Alert, error) {
	if len(ips) == 0 && len(macs) == 0 {
		return nil, nil
	}
	args := []any{store.Nanos(since)}
	var match []string
	for _, set := range []struct {
		column string
		values []string
	}{{"src_ip", ips}, {"lower(src_mac)", macs}} {
		if len(set.values) == 0 {
			continue
		}
		match = append(match, set.column+` IN (?`+strings.Repeat(`, ?`, len(set.values)-1)+`)`)
		for _, v := range set.values {
			args = append(args, v)
		}
	}
	q := `SELECT ` + alertColumns + ` FROM alerts WHERE device_id = '' AND last_seen >= ? AND (` + strings.Join(match, ` OR `) + `) ORDER BY last_seen DESC, id LIMIT ?`
	out, err := store.QueryAll(ctx, s.db, scanAlert, q, append(args, MaxUnattributed)...)
	if err != nil {
		return nil, fmt.Errorf("list unattributed alerts: %w", err)
	}
	return out, nil
}

// Attribute gives an alert without a device the device deviceID, and
// records that in the ledger. It reports false when the alert has a
// device already (or is gone).
func (s *Store) Attribute(ctx context.Context, id, deviceID string) (bool, error) {
	done := false
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE alerts SET device_id = ? WHERE id = ? AND device_id = ''`, deviceID, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return nil
		}
		done = true
		ev, err := event(ctx, EventAlertAttributed, deviceID, map[string]string{"id": id, "device_id": deviceID})
		if err != nil {
			return err
		}
		return s.ledger.RecordTx(ctx, tx, ev)
	})
	if err != nil {
		return false, fmt.Errorf("attribute alert %s to %s: %w", id, deviceID, err)
	}
	return done, nil
}

func scanAlert(r store.RowScanner) (Alert, error) {
	var a Alert
	var peers string
	var first, last int64
	if err := r.Scan(&a.ID, &a.DeviceID, &a.SrcIP, &a.SrcMAC, &a.Behaviour, &a.Severity, &a.Detector, &a.Explanation, &peers,
		&a.PeersDropped, &a.MaxScore, &a.Threshold, &a.Signals, &first, &last, &a.Status); err != nil {
		return Alert{}, err
	}
	_ = json.Unmarshal([]byte(peers), &a.Peers)
	a.FirstSeen, a.LastSeen = store.Time(first), store.Time(last)
	return a, nil
}

func event(ctx context.Context, typ, subject string, data any) (bus.Event, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return bus.Event{}, err
	}
	a := actor.From(ctx)
	return bus.Event{ID: rand.Text(), Type: typ, Time: time.Now().UTC(), Actor: a.Name, Remote: a.Remote, Subject: subject, Data: raw}, nil
}
