package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/metricdetect"
	"github.com/fleetward/fleetward/internal/store/storetest"
)

// BenchmarkSaveBaselines writes the baselines of 10,000 devices (three
// metrics each), all changed, as the minute's save does at the largest, on
// each engine.
func BenchmarkSaveBaselines(b *testing.B) {
	const devices = 10000
	for _, e := range storetest.Engines(b) {
		b.Run(e.Name, func(b *testing.B) {
			det, err := metricdetect.New(metricdetect.Config{})
			if err != nil {
				b.Fatal(err)
			}
			w := &metricWatch{det: det, db: e.DB, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				for d := range devices {
					det.Observe(metricdetect.Observation{DeviceID: fmt.Sprintf("dev-%05d", d), Time: at.Add(time.Duration(i) * time.Minute),
						Values: map[string]float64{"messages_in": 5, "bytes_in": 500, "established_tcp": 2}, Interval: time.Minute})
				}
				b.StartTimer()
				w.saveOrWarn(context.Background())
			}
			if w.saveErrors.Load() != 0 || w.saved.Load() != uint64(devices*b.N) {
				b.Fatalf("saved %d, %d errors", w.saved.Load(), w.saveErrors.Load())
			}
			b.ReportMetric(float64(devices*b.N)/b.Elapsed().Seconds(), "devices/s")
		})
	}
}
