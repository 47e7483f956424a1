package app

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"strconv"
	"time"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/bus"
	"github.com/fleetward/fleetward/internal/store"
)

// relaySetting remembers how far the relay got, so a restart resumes there.
const relaySetting = "bus.relayed_through"

// relay publishes every ledger entry covered by a signed checkpoint on the
// bus, in ledger order, exactly once per ledger index (the event id is
// derived from the ledger's key and the index, so JetStream drops a repeat
// after a crash between publishing and saving progress).
func (s *Server) relay(ctx context.Context) {
	log := s.Log.With("component", "relay")
	sum := sha256.Sum256([]byte(s.Ledger.VerifierKey()))
	prefix := "l" + hex.EncodeToString(sum[:4]) + "-"
	next, err := s.loadRelayed(ctx)
	if err != nil {
		log.Error("relay cannot read its progress; events will not reach the bus", "err", err)
		return
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		cp, err := s.Ledger.Latest(ctx)
		if err != nil || cp.Size <= next {
			continue
		}
		for next < cp.Size && ctx.Err() == nil {
			to := min(next+500, cp.Size)
			entries, err := s.Ledger.Entries(ctx, next, to)
			if err != nil {
				log.Warn("relay read failed", "from", next, "err", err)
				break
			}
			for _, e := range entries {
				ev := bus.Event{ID: prefix + strconv.FormatUint(e.Index, 10), Type: e.Type, Time: e.Time,
					Actor: e.Actor, Remote: e.Remote, Subject: e.Subject, Data: e.Data}
				if err := s.Bus.Publish(ctx, ev); err != nil {
					if ctx.Err() != nil {
						s.saveRelayedOrWarn(ctx, next)
						return
					}
					if !apperr.Is(err, apperr.Invalid) && !apperr.Is(err, apperr.TooLarge) {
						log.Warn("relay publish failed; will retry", "index", e.Index, "type", e.Type, "err", err)
						break
					}
					// The bus will never take this entry (a type without a
					// stream, an oversize payload): retrying would stall
					// every later event. It stays in the ledger.
					log.Error("ledger entry cannot go on the bus; skipped", "index", e.Index, "type", e.Type, "err", err)
					s.relaySkipped.Add(1)
					next = e.Index + 1
					continue
				}
				next = e.Index + 1
				s.relayed.Add(1)
			}
			s.saveRelayedOrWarn(ctx, next)
			if len(entries) == 0 || next < to {
				break
			}
		}
	}
}

func (s *Server) loadRelayed(ctx context.Context) (uint64, error) {
	var v string
	err := s.DB.QueryRow(ctx, `SELECT value FROM settings WHERE name = ?`, relaySetting).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(v, 10, 64)
}

// saveRelayedOrWarn records progress even while the server stops (the run
// context is then cancelled), so a restart does not publish again what
// JetStream may no longer recognize as a duplicate.
func (s *Server) saveRelayedOrWarn(ctx context.Context, next uint64) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.saveRelayed(ctx, next); err != nil {
		s.Log.Warn("relay cannot save its progress", "component", "relay", "next", next, "err", err)
	}
}

func (s *Server) saveRelayed(ctx context.Context, next uint64) error {
	_, err := s.DB.Exec(ctx, `INSERT INTO settings(name, value, updated_at) VALUES (?, ?, ?)
		ON CONFLICT(name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
		relaySetting, strconv.FormatUint(next, 10), store.Nanos(time.Now()))
	return err
}
