// Package telemetry keeps device measurements as time series: the
// broker-side counters the server samples (as AWS IoT Device Defender's
// cloud-side metrics) and the device-side metrics agents report. It stores
// them in the measurements table of either engine and answers series for
// plots. Producers hand it samples; it never reaches into other tables.
package telemetry

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/store"
)

// Where a sample came from.
const (
	SourceBroker = "broker" // counted by fleetward's MQTT broker
	SourceAgent  = "agent"  // reported by the device's agent
	SourceSensor = "sensor" // scored by a network sensor watching the device's traffic
)

// Sample is one measurement of one device at one time. Counters are stored
// as the change over the sampling interval, gauges as their value.
type Sample struct {
	DeviceID string    `json:"device_id"`
	Metric   string    `json:"metric"`
	Source   string    `json:"source"`
	Time     time.Time `json:"time"`
	Value    float64   `json:"value"`
}

// Validate reports the first field of s that cannot be stored, as an
// Invalid error naming it.
func (s Sample) Validate() error {
	switch {
	case s.DeviceID == "" || len(s.DeviceID) > 128:
		return apperr.InvalidField("device_id", "must be 1 to 128 bytes")
	case !validMetric(s.Metric):
		return apperr.InvalidField("metric", "%q must be 1 to 64 of a-z, 0-9 and _", s.Metric)
	case s.Source != SourceBroker && s.Source != SourceAgent && s.Source != SourceSensor:
		return apperr.InvalidField("source", "must be %q, %q or %q", SourceBroker, SourceAgent, SourceSensor)
	case s.Time.IsZero():
		return apperr.InvalidField("time", "is required")
	case math.IsNaN(s.Value) || math.IsInf(s.Value, 0):
		return apperr.InvalidField("value", "must be a finite number")
	}
	return nil
}

func validMetric(m string) bool {
	if m == "" || len(m) > 64 {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// Point is one value of a series.
type Point struct {
	Time  time.Time `json:"time"`
	Value float64   `json:"value"`
}

// Store keeps samples in the database. It is safe for concurrent use.
type Store struct {
	db *store.DB
}

// NewStore returns a Store over db.
func NewStore(db *store.DB) *Store { return &Store{db: db} }

// Record stores samples in one transaction. A sample for a device, metric
// and time already stored replaces it (a repeated report is harmless).
// Returns Invalid naming the field of the first bad sample; nothing is
// stored then.
func (s *Store) Record(ctx context.Context, samples []Sample) error {
	if len(samples) == 0 {
		return nil
	}
	for i, smp := range samples {
		if err := smp.Validate(); err != nil {
			return fmt.Errorf("sample %d: %w", i, err)
		}
	}
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		for _, smp := range samples {
			if _, err := tx.Exec(ctx, `INSERT INTO measurements (device_id, metric, at, source, value) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (device_id, metric, at) DO UPDATE SET value = excluded.value, source = excluded.source`,
				smp.DeviceID, smp.Metric, store.Nanos(smp.Time), smp.Source, smp.Value); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record %d measurements: %w", len(samples), err)
	}
	return nil
}

// MaxPoints bounds the points Series returns per metric.
const MaxPoints = 5000

// Series returns the device's points of each metric from since on, oldest
// first, at most MaxPoints per metric (the newest ones). A metric with no
// points is absent from the map.
func (s *Store) Series(ctx context.Context, deviceID string, metrics []string, since time.Time) (map[string][]Point, error) {
	out := map[string][]Point{}
	if len(metrics) == 0 {
		return out, nil
	}
	for _, m := range metrics {
		if !validMetric(m) {
			return nil, apperr.InvalidField("metric", "%q must be 1 to 64 of a-z, 0-9 and _", m)
		}
	}
	args := []any{deviceID, store.Nanos(since)}
	for _, m := range metrics {
		args = append(args, m)
	}
	rows, err := s.db.Query(ctx, `SELECT metric, at, value FROM measurements
		WHERE device_id = ? AND at >= ? AND metric IN (`+store.Placeholders(len(metrics))+`)
		ORDER BY metric, at DESC`, args...)
	if err != nil {
		return nil, fmt.Errorf("series of %s: %w", deviceID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var m string
		var at int64
		var v float64
		if err := rows.Scan(&m, &at, &v); err != nil {
			return nil, fmt.Errorf("series of %s: %w", deviceID, err)
		}
		if len(out[m]) < MaxPoints {
			out[m] = append(out[m], Point{Time: store.Time(at), Value: v})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("series of %s: %w", deviceID, err)
	}
	for m := range out {
		slices.Reverse(out[m])
	}
	return out, nil
}

// Prune deletes measurements older than before and returns how many.
func (s *Store) Prune(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.db.Exec(ctx, `DELETE FROM measurements WHERE at < ?`, store.Nanos(before))
	if err != nil {
		return 0, fmt.Errorf("prune measurements: %w", err)
	}
	return res.RowsAffected()
}
