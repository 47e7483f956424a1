package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/app"
	"github.com/fleetward/fleetward/internal/demofleet"
	"github.com/fleetward/fleetward/internal/inventory"
)

// BenchmarkAuditFleet audits a demo fleet of FLEETWARD_BENCH_DEVICES
// devices (default 10,000) on SQLite: the snapshot, every check, storing
// the findings and setting every risk score. The first audit opens every
// finding; the next ones (what the benchmark loop times) refresh them.
func BenchmarkAuditFleet(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("FLEETWARD_BENCH_DEVICES")); err == nil && v > 0 {
		n = v
	}
	ctx := actor.With(context.Background(), actor.Actor{Name: "bench"})
	s, err := app.Start(ctx, app.Config{DataDir: b.TempDir(), HTTPAddr: "127.0.0.1:0", AuditInterval: 24 * time.Hour, Log: quietLog()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Stop()
	raw, _ := json.Marshal(demofleet.Generate(n, 1, time.Now()))
	if _, err := s.Inventory.ImportDevices(ctx, "json", bytes.NewReader(raw), inventory.ImportOptions{}); err != nil {
		b.Fatal(err)
	}
	first := time.Now()
	rep, err := s.Audit(ctx)
	if err != nil {
		b.Fatal(err)
	}
	firstTook := time.Since(first)
	b.ResetTimer()
	for b.Loop() {
		if rep, err = s.Audit(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "devices/s")
	b.ReportMetric(float64(rep.Findings), "findings")
	b.ReportMetric(firstTook.Seconds(), "first-audit-s")
}
