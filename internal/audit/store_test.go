package audit

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/ledger"
	"github.com/fleetward/fleetward/internal/secrets"
	"github.com/fleetward/fleetward/internal/store"
	"github.com/fleetward/fleetward/internal/store/storetest"
)

func newTestStore(t *testing.T, db *store.DB) (*Store, *ledger.Ledger) {
	t.Helper()
	master := make([]byte, secrets.KeySize)
	rand.Read(master)
	kr, err := secrets.New(master)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(context.Background(), db, ledger.Options{Sealer: kr, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return NewStore(db, l), l
}

func ledgerTypes(t *testing.T, l *ledger.Ledger, subject string) []string {
	t.Helper()
	es, err := l.EntriesBySubject(context.Background(), subject, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(es) - 1; i >= 0; i-- {
		out = append(out, es[i].Type+" by "+es[i].Actor)
	}
	return out
}

func TestFindingsOpenRefreshResolveAndReopenOnEveryEngine(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		s, l := newTestStore(t, e.DB)
		ctx := actor.With(context.Background(), actor.Actor{Name: "system:audit"})
		clock := now
		s.now = func() time.Time { return clock }
		snap := Snapshot{Now: now, Services: []Service{
			{DeviceID: "cam-1", Addr: "10.0.0.5", Port: 23, Proto: "tcp", Name: "telnet", Plaintext: true},
		}}
		first := Evaluate(snap)
		res, err := s.Apply(ctx, first)
		if err != nil || res.Opened != 1 || res.Open != 1 {
			t.Fatalf("first audit = %+v, %v; want one opened", res, err)
		}
		clock = clock.Add(time.Hour)
		if res, err = s.Apply(ctx, first); err != nil || res.Opened != 0 || res.Updated != 1 {
			t.Fatalf("same findings again = %+v, %v; want one updated, none opened", res, err)
		}
		got, err := s.Findings(ctx, FindingFilter{DeviceID: "cam-1"})
		if err != nil || len(got) != 1 || !got[0].FirstSeen.Equal(now) || !got[0].LastSeen.Equal(now.Add(time.Hour)) {
			t.Fatalf("findings = %+v, %v; want first seen at the first audit, last at the second", got, err)
		}
		if res, err = s.Apply(ctx, nil); err != nil || res.Resolved != 1 {
			t.Fatalf("audit without the weakness = %+v, %v; want it resolved", res, err)
		}
		if open, _ := s.Findings(ctx, FindingFilter{}); len(open) != 0 {
			t.Fatalf("open findings after resolution: %+v", open)
		}
		if res, err = s.Apply(ctx, first); err != nil || res.Opened != 1 {
			t.Fatalf("the weakness back = %+v, %v; want it reopened", res, err)
		}
		want := []string{"security.finding_opened by system:audit", "security.finding_resolved by system:audit", "security.finding_opened by system:audit"}
		if got := ledgerTypes(t, l, "cam-1"); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("ledger = %v, want %v", got, want)
		}
	})
}

func TestSuppressionNeedsAReasonExpiresAndIsInTheLedger(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		s, l := newTestStore(t, e.DB)
		clock := now
		s.now = func() time.Time { return clock }
		ctx := actor.With(context.Background(), actor.Actor{Name: "operator:alice"})
		fs := Evaluate(Snapshot{Now: now, Services: []Service{{DeviceID: "cam-1", Addr: "10.0.0.5", Port: 80, Proto: "tcp", Name: "http", Plaintext: true}}})
		if _, err := s.Apply(ctx, fs); err != nil {
			t.Fatal(err)
		}
		id := fs[0].ID
		for _, bad := range []struct {
			p     Suppression
			field string
		}{
			{Suppression{Until: now.Add(time.Hour)}, "reason"},
			{Suppression{Reason: "vendor fix due", Until: now.Add(-time.Hour)}, "until"},
			{Suppression{Reason: "forever", Until: now.Add(5 * 365 * 24 * time.Hour)}, "until"},
		} {
			_, err := s.Suppress(ctx, id, bad.p)
			if ae := apperr.As(err); ae == nil || ae.Field != bad.field {
				t.Errorf("Suppress(%+v) = %v; want an error naming %q", bad.p, err, bad.field)
			}
		}
		if _, err := s.Suppress(ctx, "nope", Suppression{Reason: "x", Until: now.Add(time.Hour)}); !apperr.Is(err, apperr.NotFound) {
			t.Errorf("suppressing an unknown finding = %v, want NotFound", err)
		}
		f, err := s.Suppress(ctx, id, Suppression{Reason: "camera VLAN has no route out", Until: now.Add(24 * time.Hour)})
		if err != nil || f.SuppressedBy != "operator:alice" || !f.Suppressed(now) {
			t.Fatalf("Suppress = %+v, %v", f, err)
		}
		if open, _ := s.Findings(ctx, FindingFilter{}); len(open) != 0 {
			t.Errorf("a suppressed finding is listed by default: %+v", open)
		}
		if sum, _ := s.Summarize(ctx); sum.Open != 0 || sum.Suppressed != 1 {
			t.Errorf("summary = %+v, want 0 open and 1 suppressed", sum)
		}
		clock = now.Add(25 * time.Hour)
		if open, _ := s.Findings(ctx, FindingFilter{}); len(open) != 1 {
			t.Errorf("an expired suppression still hides the finding: %+v", open)
		}
		got := ledgerTypes(t, l, "cam-1")
		if len(got) != 2 || got[1] != "security.finding_suppressed by operator:alice" {
			t.Errorf("ledger = %v, want the suppression by alice", got)
		}
	})
}

func TestScanRecordsReplaceTheExposureOfCoveredAddressesOnly(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		s, l := newTestStore(t, e.DB)
		ctx := actor.With(context.Background(), actor.Actor{Name: "operator:bob"})
		rec, err := s.StartScan(ctx, []string{"10.0.0.0/24"}, map[string]any{"credentials": "default"})
		if err != nil {
			t.Fatal(err)
		}
		cred := &WorkingCredential{Username: "root", Source: "mirai", PasswordHint: "x****1"}
		found := []Service{
			{DeviceID: "cam-1", Addr: "10.0.0.5", Port: 23, Proto: "tcp", Name: "telnet", Credential: cred},
			{Addr: "10.0.0.9", Port: 80, Proto: "tcp", Name: "http"},
		}
		if _, err := s.FinishScan(ctx, rec.ID, []string{"10.0.0.5", "10.0.0.9"}, found, ScanSummary{Addresses: 256, Hosts: 2, OpenPorts: 2}, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := s.FinishScan(ctx, rec.ID, nil, nil, ScanSummary{}, nil); !apperr.Is(err, apperr.Conflict) {
			t.Errorf("finishing a scan twice = %v, want Conflict", err)
		}
		// A second scan covers only 10.0.0.5 and finds telnet closed.
		rec2, _ := s.StartScan(ctx, []string{"10.0.0.5"}, nil)
		if _, err := s.FinishScan(ctx, rec2.ID, []string{"10.0.0.5"}, nil, ScanSummary{Addresses: 1}, nil); err != nil {
			t.Fatal(err)
		}
		svcs, err := s.Services(ctx, "")
		if err != nil || len(svcs) != 1 || svcs[0].Addr != "10.0.0.9" {
			t.Fatalf("exposure = %+v, %v; want only 10.0.0.9 left", svcs, err)
		}
		// A failed scan removes nothing.
		rec3, _ := s.StartScan(ctx, []string{"10.0.0.9"}, nil)
		if r, err := s.FinishScan(ctx, rec3.ID, []string{"10.0.0.9"}, nil, ScanSummary{}, errors.New("interrupted")); err != nil || r.Status != ScanFailed {
			t.Fatalf("failed scan = %+v, %v", r, err)
		}
		if svcs, _ := s.Services(ctx, ""); len(svcs) != 1 {
			t.Errorf("a failed scan removed exposure: %+v", svcs)
		}
		scans, err := s.Scans(ctx, 10)
		if err != nil || len(scans) != 3 || scans[2].Summary.OpenPorts != 2 || scans[2].Actor != "operator:bob" {
			t.Fatalf("scans = %+v, %v", scans, err)
		}
		es, _ := l.EntriesBySubject(ctx, rec.ID, 10)
		if len(es) != 1 || es[0].Actor != "operator:bob" || es[0].Type != EventScanCompleted {
			t.Fatalf("ledger for the scan = %+v, want one scan_completed by bob", es)
		}
		var doc ScanRecord
		if err := json.Unmarshal(es[0].Data, &doc); err != nil || doc.Targets[0] != "10.0.0.0/24" {
			t.Errorf("ledger data = %s (%v), want the targets", es[0].Data, err)
		}
	})
}
