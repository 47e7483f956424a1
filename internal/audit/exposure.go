package audit

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"database/sql"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/bus"
	"github.com/fleetward/fleetward/internal/store"
)

// Scan statuses.
const (
	ScanRunning   = "running"
	ScanCompleted = "completed"
	ScanFailed    = "failed"
)

// ScanRecord is one network scan the server ran or was sent: who ran it,
// what it covered and what it found. It is created when the scan starts and
// completed once; both are in the ledger.
type ScanRecord struct {
	ID       string          `json:"id"`
	Actor    string          `json:"actor"`
	Targets  []string        `json:"targets"`
	Options  json.RawMessage `json:"options"`
	Status   string          `json:"status"`
	Started  time.Time       `json:"started"`
	Finished time.Time       `json:"finished,omitzero"`
	Summary  ScanSummary     `json:"summary"`
	Error    string          `json:"error,omitempty"`
}

// ScanSummary counts what a scan found.
type ScanSummary struct {
	Addresses   int `json:"addresses"`
	Hosts       int `json:"hosts"`
	OpenPorts   int `json:"open_ports"`
	Credentials int `json:"working_credentials"`
	Unmanaged   int `json:"unmanaged_hosts"`
	NewDevices  int `json:"new_devices"`
}

// StartScan records that the context's actor started a scan of targets.
func (s *Store) StartScan(ctx context.Context, targets []string, options any) (ScanRecord, error) {
	opts, err := json.Marshal(options)
	if err != nil {
		return ScanRecord{}, fmt.Errorf("encode scan options: %w", err)
	}
	rec := ScanRecord{ID: "scan-" + strings.ToLower(rand.Text()[:12]), Actor: actor.From(ctx).Name, Targets: targets, Options: opts,
		Status: ScanRunning, Started: s.now().UTC().Truncate(time.Microsecond)}
	tg, _ := json.Marshal(targets)
	if _, err := s.db.Exec(ctx, `INSERT INTO scans (id, actor, targets, options, status, started, finished, summary, error)
		VALUES (?, ?, ?, ?, ?, ?, 0, '{}', '')`, rec.ID, rec.Actor, string(tg), string(opts), rec.Status, store.Nanos(rec.Started)); err != nil {
		return ScanRecord{}, fmt.Errorf("record scan start: %w", err)
	}
	return rec, nil
}

// FinishScan completes scan id: the services it found replace what the
// exposure table held for the addresses it covered (so a port closed since
// the last scan disappears), and the scan, with its actor, targets and
// summary, is recorded in the ledger. A scan that failed part way keeps the
// exposure it found but removes nothing (scanErr not nil).
func (s *Store) FinishScan(ctx context.Context, id string, covered []string, found []Service, sum ScanSummary, scanErr error) (ScanRecord, error) {
	now := s.now().UTC().Truncate(time.Microsecond)
	status, msg := ScanCompleted, ""
	if scanErr != nil {
		status, msg = ScanFailed, scanErr.Error()
	}
	var rec ScanRecord
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if rec, err = s.scanRecord(ctx, tx, id); err != nil {
			return err
		}
		if rec.Status != ScanRunning {
			return apperr.Errorf(apperr.Conflict, "scan %s is already %s", id, rec.Status)
		}
		if scanErr == nil {
			for _, a := range covered {
				if _, err := tx.Exec(ctx, `DELETE FROM scan_services WHERE addr = ?`, a); err != nil {
					return err
				}
			}
		}
		for _, f := range found {
			doc, err := json.Marshal(f)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `DELETE FROM scan_services WHERE addr = ? AND proto = ? AND port = ?`, f.Addr, f.Proto, f.Port); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO scan_services (addr, proto, port, device_id, scan_id, seen_at, service, doc)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, f.Addr, f.Proto, f.Port, f.DeviceID, id, store.Nanos(now), f.Name, string(doc)); err != nil {
				return fmt.Errorf("store service %s %s/%d: %w", f.Addr, f.Proto, f.Port, err)
			}
		}
		sumDoc, _ := json.Marshal(sum)
		if _, err := tx.Exec(ctx, `UPDATE scans SET status = ?, finished = ?, summary = ?, error = ? WHERE id = ?`,
			status, store.Nanos(now), string(sumDoc), msg, id); err != nil {
			return err
		}
		rec.Status, rec.Finished, rec.Summary, rec.Error = status, now, sum, msg
		ev, err := newEvent(ctx, EventScanCompleted, id, rec, now)
		if err != nil {
			return err
		}
		ev.Actor = rec.Actor // the scan is the doing of whoever started it
		return s.record(ctx, tx, []bus.Event{ev})
	})
	if err != nil {
		if apperr.As(err) != nil {
			return ScanRecord{}, err
		}
		return ScanRecord{}, fmt.Errorf("finish scan %s: %w", id, err)
	}
	return rec, nil
}

// Scan returns one scan record. Returns NotFound if there is none.
func (s *Store) Scan(ctx context.Context, id string) (ScanRecord, error) {
	var rec ScanRecord
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		rec, err = s.scanRecord(ctx, tx, id)
		return err
	})
	return rec, err
}

const scanColumns = `id, actor, targets, options, status, started, finished, summary, error`

func (s *Store) scanRecord(ctx context.Context, q store.Querier, id string) (ScanRecord, error) {
	rec, err := scanScan(q.QueryRow(ctx, `SELECT `+scanColumns+` FROM scans WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return ScanRecord{}, apperr.NotFoundf("scan %q not found", id)
	}
	return rec, err
}

// Scans returns the newest scans, at most limit (default 50).
func (s *Store) Scans(ctx context.Context, limit int) ([]ScanRecord, error) {
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	out, err := store.QueryAll(ctx, s.db, scanScan, `SELECT `+scanColumns+` FROM scans ORDER BY started DESC, id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("list scans: %w", err)
	}
	return out, nil
}

func scanScan(r store.RowScanner) (ScanRecord, error) {
	var rec ScanRecord
	var targets, opts, sum string
	var started, finished int64
	if err := r.Scan(&rec.ID, &rec.Actor, &targets, &opts, &rec.Status, &started, &finished, &sum, &rec.Error); err != nil {
		return ScanRecord{}, err
	}
	_ = json.Unmarshal([]byte(targets), &rec.Targets)
	rec.Options = json.RawMessage(opts)
	_ = json.Unmarshal([]byte(sum), &rec.Summary)
	rec.Started = store.Time(started)
	if finished != 0 {
		rec.Finished = store.Time(finished)
	}
	return rec, nil
}

// Services returns the current exposure: every open port the newest scan of
// its address found. With deviceID set, only that device's.
func (s *Store) Services(ctx context.Context, deviceID string) ([]Service, error) {
	q, args := `SELECT doc FROM scan_services`, []any{}
	if deviceID != "" {
		q, args = q+` WHERE device_id = ?`, append(args, deviceID)
	}
	out, err := store.QueryAll(ctx, s.db, func(r store.RowScanner) (Service, error) {
		var doc string
		var svc Service
		if err := r.Scan(&doc); err != nil {
			return svc, err
		}
		if err := json.Unmarshal([]byte(doc), &svc); err != nil {
			return svc, fmt.Errorf("decode exposed service: %w", err)
		}
		return svc, nil
	}, q+` ORDER BY addr, proto, port`, args...)
	if err != nil {
		return nil, fmt.Errorf("list exposed services: %w", err)
	}
	return out, nil
}
