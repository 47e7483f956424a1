package inventory

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/ledger"
	"github.com/fleetward/fleetward/internal/store"
	"github.com/fleetward/fleetward/internal/store/storetest"
)

// benchFleetSize is the fleet the benchmarks work with.
const benchFleetSize = 100_000

// benchSites are the sites of the benchmark fleet.
var benchSites = func() []string {
	out := make([]string, 20)
	for i := range out {
		out[i] = fmt.Sprintf("site-%02d", i)
	}
	return out
}()

// benchEngines opens fresh databases: SQLite always, PostgreSQL when
// reachable (skipped otherwise, as storetest does).
var benchEngines = []struct {
	name string
	open func(testing.TB) (storetest.Engine, bool)
}{
	{"sqlite", func(tb testing.TB) (storetest.Engine, bool) { return storetest.SQLite(tb), true }},
	{"postgres", storetest.Postgres},
}

// BenchmarkImport100k imports 100k generated devices (JSON, 20 sites
// created on the way, default batches) into a fresh database per
// iteration, and reports devices/s. It uses the real ledger, as the
// product does: each device's ledger entry is appended in its batch's
// transaction.
func BenchmarkImport100k(b *testing.B) {
	runImportBenchmark(b, benchFleetSize, func(tb testing.TB, db *store.DB) Ledger {
		l, err := ledger.Open(context.Background(), db, ledger.Options{Sealer: newAESSealer()})
		if err != nil {
			tb.Fatal(err)
		}
		return l
	})
}

// runImportBenchmark measures ImportDevices of n devices on each engine
// with the ledger newLedger returns for the fresh database.
func runImportBenchmark(b *testing.B, n int, newLedger func(testing.TB, *store.DB) Ledger) {
	data, err := json.Marshal(genDevices(n, 1, benchSites))
	if err != nil {
		b.Fatal(err)
	}
	for _, eng := range benchEngines {
		b.Run(eng.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				e, ok := eng.open(b)
				if !ok {
					b.Skip("postgres unreachable")
				}
				pub := &recordingPublisher{}
				s := NewService(e.DB, newLedger(b, e.DB), pub, newAESSealer(), nil)
				b.StartTimer()
				res, err := s.ImportDevices(context.Background(), "json", bytes.NewReader(data), ImportOptions{})
				if err != nil || res.Created != n || res.Failed != 0 {
					b.Fatalf("import: %v; %d created, %d failed", err, res.Created, res.Failed)
				}
				b.StopTimer()
				if got := len(pub.events); got != n+len(benchSites) {
					b.Fatalf("%d events published, want %d", got, n+len(benchSites))
				}
				e.DB.Close()
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "devices/s")
		})
	}
}

// BenchmarkListFiltered100k measures the first page of a filtered, sorted
// listing — one class, one site, risk from 20 to 80, by name, 50 devices —
// over 100k devices, and reports the median and 99th-percentile latency.
// Each engine is seeded once, whatever -benchtime says; the timed loop
// rotates through the classes and sites so no single query is warm.
func BenchmarkListFiltered100k(b *testing.B) {
	devs := genDevices(benchFleetSize, 2, benchSites)
	data, err := json.Marshal(devs)
	if err != nil {
		b.Fatal(err)
	}
	for _, eng := range benchEngines {
		e, ok := eng.open(b)
		if !ok {
			b.Logf("postgres unreachable: skipping it")
			continue
		}
		s := NewService(e.DB, &recordingLedger{}, nil, newAESSealer(), nil)
		start := time.Now()
		res, err := s.ImportDevices(context.Background(), "json", bytes.NewReader(data), ImportOptions{})
		if err != nil || res.Created != benchFleetSize {
			b.Fatalf("seed %s: %v, %+v", eng.name, err, res)
		}
		b.Logf("%s: seeded %d devices in %v", eng.name, benchFleetSize, time.Since(start).Round(time.Millisecond))
		b.Run(eng.name, func(b *testing.B) {
			ctx := context.Background()
			lat := make([]time.Duration, 0, b.N)
			matched := 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				f := Filter{
					Classes: []string{Classes[i%len(Classes)]},
					Sites:   []string{benchSites[(i/len(Classes))%len(benchSites)]},
					RiskMin: ptr(20.0), RiskMax: ptr(80.0),
					Sort: "name", Limit: 50,
				}
				t0 := time.Now()
				page, err := s.ListDevices(ctx, f)
				lat = append(lat, time.Since(t0))
				if err != nil {
					b.Fatal(err)
				}
				matched += page.Total
			}
			b.StopTimer()
			if matched == 0 {
				b.Fatal("the filters matched nothing")
			}
			slices.Sort(lat)
			ms := func(q float64) float64 {
				return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))].Microseconds()) / 1000
			}
			b.ReportMetric(ms(0.50), "p50-ms")
			b.ReportMetric(ms(0.99), "p99-ms")
			b.ReportMetric(float64(matched)/float64(b.N), "matches/op")
		})
	}
}
