package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/alert"
	"github.com/fleetward/fleetward/internal/bus"
	"github.com/fleetward/fleetward/internal/metricdetect"
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
}

func newMetricWatch(cfg Config, a *alerts, log *slog.Logger) (*metricWatch, error) {
	det, err := metricdetect.New(cfg.MetricDetect)
	if err != nil {
		return nil, err
	}
	return &metricWatch{det: det, alerts: a, interval: cfg.TelemetryInterval, log: log}, nil
}

// subscribe starts the detector's bus subscription to the broker metrics
// events; it ends with ctx.
func (w *metricWatch) subscribe(ctx context.Context, b *bus.Bus) error {
	_, err := b.Subscribe(ctx, metricSubscriber, []string{EventBrokerMetrics}, w.brokerMetrics)
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
