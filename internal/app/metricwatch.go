package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/alert"
	"github.com/fleetward/fleetward/internal/bus"
	"github.com/fleetward/fleetward/internal/metricdetect"
	"github.com/fleetward/fleetward/internal/store"
	"github.com/fleetward/fleetward/internal/telemetry"
)

// metricSubscriber is the durable bus subscriber of the metric detector.
// A new one starts with the oldest stored broker metrics event (up to
// bus.MaxAge): the history warms the baselines up.
const metricSubscriber = "metric-detector"

// metricSignalMaxAge: broker metrics events older than this, replayed
// from the bus after a first start or a long stop, are learned but raise
// no alert; an alert for a surge of last week, dated last week, would only
// bury the ones that matter now. Agent reports are not held to it: they
// arrive as the device sends them, and a device whose clock is behind
// still has its alerts.
const metricSignalMaxAge = time.Hour

// metricWatch feeds the metric detector with the broker's per-device
// metrics (from the bus) and the agents' reports (from the ingest loop),
// and raises its signals through the same path as POST /api/v1/signals.
type metricWatch struct {
	det      *metricdetect.Detector
	alerts   *alerts
	interval time.Duration // of the broker's samples
	log      *slog.Logger
	// stale counts signals of replayed broker metrics events not raised
	// (metricSignalMaxAge); badPorts reports whose listening_ports were
	// malformed.
	stale, badPorts atomic.Uint64
	// db keeps the baselines (table metric_baselines) across restarts:
	// loaded at start, saved every baselineSaveInterval and at stop.
	db *store.DB
	// saved counts the devices' baselines written; saveErrors the saves
	// that failed (their devices are kept for the next).
	saved, saveErrors atomic.Uint64
	// unsubscribe stops the bus subscription, waiting for an event in
	// progress (subscribe sets it).
	unsubscribe func()
}

// baselineSaveInterval is how often the devices whose baselines changed
// are written. A crash loses at most this much learning: the bus does not
// replay what the detector already acknowledged.
const baselineSaveInterval = time.Minute

func newMetricWatch(ctx context.Context, cfg Config, db *store.DB, a *alerts, log *slog.Logger) (*metricWatch, error) {
	det, err := metricdetect.New(cfg.MetricDetect)
	if err != nil {
		return nil, err
	}
	w := &metricWatch{det: det, alerts: a, interval: cfg.TelemetryInterval, log: log, db: db}
	if err := w.load(ctx); err != nil {
		return nil, fmt.Errorf("metric detectors: load baselines: %w", err)
	}
	return w, nil
}

// load restores the saved baselines. A row that does not parse is logged
// and skipped: its device learns again.
func (w *metricWatch) load(ctx context.Context) error {
	rows, err := w.db.Query(ctx, `SELECT device_id, state FROM metric_baselines`)
	if err != nil {
		return err
	}
	defer rows.Close()
	n, bad := 0, 0
	for rows.Next() {
		var id, data string
		if err := rows.Scan(&id, &data); err != nil {
			return err
		}
		st, err := metricdetect.ParseDeviceState([]byte(data))
		if err != nil {
			bad++
			w.log.Warn("saved metric baselines skipped", "device", id, "err", err)
			continue
		}
		w.det.Restore(id, st)
		n++
	}
	if err := rows.Err(); err != nil {
		return err
	}
	// What was just loaded is saved already; devices loading forgot (past
	// MaxDevices) are deleted at the next save.
	_, gone := w.det.Changes()
	w.det.Unsaved(nil, gone)
	if n+bad > 0 {
		w.log.Info("metric baselines loaded", "devices", n, "skipped", bad)
	}
	return nil
}

// keep saves the changed baselines every baselineSaveInterval until ctx
// ends, and once more then, after the bus subscription has stopped.
func (w *metricWatch) keep(ctx context.Context) {
	t := time.NewTicker(baselineSaveInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			w.saveOrWarn(ctx)
		case <-ctx.Done():
			// The last event learned is in the last save.
			if w.unsubscribe != nil {
				w.unsubscribe()
			}
			w.saveOrWarn(ctx)
			return
		}
	}
}

// saveOrWarn writes the devices whose baselines changed since the last
// save and deletes the forgotten ones, in one transaction; it runs on
// while the server stops. On failure they are kept for the next save.
func (w *metricWatch) saveOrWarn(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	changed, gone := w.det.Changes()
	if len(changed) == 0 && len(gone) == 0 {
		return
	}
	now := store.Nanos(time.Now())
	rows := make([]any, 0, 3*len(changed))
	for id, st := range changed {
		data, err := json.Marshal(st)
		if err != nil {
			w.log.Warn("metric baselines of a device not saved", "device", id, "err", err)
			continue
		}
		rows = append(rows, id, string(data), now)
	}
	written := len(rows) / 3
	// The transaction may run again (InTx retries a serialization failure
	// or deadlock): it reads rows and gone, never consumes them.
	err := w.db.InTx(ctx, func(tx *store.Tx) error {
		// Many rows a statement: one round trip per baselineSaveBatch
		// devices rather than per device (PostgreSQL: 8k devices/s one by
		// one, BenchmarkSaveBaselines).
		for chunk := range slices.Chunk(rows, 3*baselineSaveBatch) {
			if _, err := tx.Exec(ctx, `INSERT INTO metric_baselines(device_id, state, updated_at) VALUES `+
				store.Rows(len(chunk)/3, 3)+
				` ON CONFLICT(device_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`, chunk...); err != nil {
				return err
			}
		}
		for chunk := range slices.Chunk(gone, baselineSaveBatch) {
			ids := make([]any, len(chunk))
			for i, id := range chunk {
				ids[i] = id
			}
			if _, err := tx.Exec(ctx, `DELETE FROM metric_baselines WHERE device_id IN (`+store.Placeholders(len(chunk))+`)`, ids...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		w.det.Unsaved(changed, gone)
		w.saveErrors.Add(1)
		w.log.Warn("metric baselines not saved; kept for the next save", "devices", len(changed), "forgotten", len(gone), "err", err)
		return
	}
	w.saved.Add(uint64(written))
}

// baselineSaveBatch is how many devices one statement of a save writes or
// deletes: three parameters each, well below SQLite's and PostgreSQL's
// limits.
const baselineSaveBatch = 500

// subscribe starts the detector's bus subscription to the broker metrics
// events; it ends with ctx.
func (w *metricWatch) subscribe(ctx context.Context, b *bus.Bus) error {
	var err error
	w.unsubscribe, err = b.Subscribe(ctx, metricSubscriber, []string{EventBrokerMetrics}, w.brokerMetrics)
	return err
}

// brokerMetrics observes one device's broker counters over one interval.
// It never asks for redelivery: an event seen twice would be learned twice.
func (w *metricWatch) brokerMetrics(ctx context.Context, ev bus.Event) error {
	var values map[string]float64
	if err := json.Unmarshal(ev.Data, &values); err != nil || ev.Subject == "" {
		w.log.Warn("broker metrics event skipped", "id", ev.ID, "device", ev.Subject, "err", err)
		return nil
	}
	sigs := w.det.Observe(metricdetect.Observation{DeviceID: ev.Subject, Time: ev.Time, Values: values, Interval: w.interval})
	if time.Since(ev.Time) > metricSignalMaxAge {
		w.stale.Add(uint64(len(sigs)))
		return nil
	}
	w.raise(ctx, sigs)
	return nil
}

// agentReport observes one agent report: its metrics and its listening
// ports. A malformed port list is counted and the metrics still count.
func (w *metricWatch) agentReport(ctx context.Context, deviceID string, at time.Time, samples []telemetry.Sample, payload []byte) {
	var sigs []alert.Signal
	if o, ok := metricdetect.AgentObservation(samples); ok {
		sigs = w.det.Observe(o)
		at = o.Time
	}
	ports, ok, err := metricdetect.ParseListeningPorts(payload)
	if err != nil {
		if logSampled(&w.badPorts, 1) {
			w.log.Warn("listening ports of a device report refused", "device", deviceID, "err", err)
		}
	} else if ok {
		sigs = append(sigs, w.det.ObservePorts(deviceID, at, ports)...)
	}
	w.raise(ctx, sigs)
}

// raise turns the detector's signals into alerts on their device, with
// the device's address and MAC from the inventory when it has them.
func (w *metricWatch) raise(ctx context.Context, sigs []alert.Signal) {
	if len(sigs) == 0 {
		return
	}
	ctx = actor.With(context.WithoutCancel(ctx), actor.Actor{Name: "system:metric-detect"})
	for _, sig := range sigs {
		sig.SrcIP, sig.SrcMAC = w.alerts.addresses(sig.DeviceID)
		al, err := w.alerts.Raise(ctx, sig)
		if err != nil {
			w.log.Warn("metric signal not raised", "device", sig.DeviceID, "behaviour", sig.Behaviour, "err", err)
			continue
		}
		if al.Signals == 1 {
			w.log.Info("metric alert raised", "device", sig.DeviceID, "behaviour", sig.Behaviour, "alert", al.ID, "reason", sig.Explanation)
		}
	}
}
