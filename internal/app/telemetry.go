package app

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fleetward/fleetward/internal/bus"
	"github.com/fleetward/fleetward/internal/telemetry"
)

// Defaults of the telemetry loops.
const (
	DefaultTelemetryInterval  = 10 * time.Second
	DefaultTelemetryRetention = 7 * 24 * time.Hour
	deviceMessageQueue        = 4096
)

// EventBrokerMetrics is the bus event of one device's broker-side counters
// over one sampling interval; Data maps metric names to values.
const EventBrokerMetrics = "telemetry.broker_metrics"

// deviceMessage is a publish a device made, handed over by the broker.
type deviceMessage struct {
	deviceID, topic string
	payload         []byte
	at              time.Time
}

// deviceMessages is the bounded queue between the broker's sessions and
// the ingest loop: the broker never waits on storage.
type deviceMessages struct {
	ch      chan deviceMessage
	dropped atomic.Uint64
	bad     atomic.Uint64
}

func newDeviceMessages() *deviceMessages {
	return &deviceMessages{ch: make(chan deviceMessage, deviceMessageQueue)}
}

// offer queues a message, or drops and counts it when the queue is full.
func (q *deviceMessages) offer(deviceID, topic string, payload []byte) {
	select {
	case q.ch <- deviceMessage{deviceID: deviceID, topic: topic, payload: payload, at: time.Now().UTC()}:
	default:
		q.dropped.Add(1)
	}
}

// ingestDeviceMessages stores what devices report: device-side metrics
// from devices/{id}/telemetry as measurements, in batches, which the
// metric detectors see as they arrive.
func (s *Server) ingestDeviceMessages(ctx context.Context) {
	log := s.Log.With("component", "telemetry")
	var batch []telemetry.Sample
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if err := s.Telemetry.Record(context.WithoutCancel(ctx), batch); err != nil {
			log.Warn("device measurements not stored", "samples", len(batch), "err", err)
		}
		batch = batch[:0]
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			flush()
			return
		case <-tick.C:
			flush()
		case m := <-s.deviceMsgs.ch:
			kind := m.topic[strings.LastIndexByte(m.topic, '/')+1:]
			switch kind {
			case "telemetry":
				samples, err := telemetry.ParseAgentReport(m.deviceID, m.at, m.payload)
				if err != nil {
					if s.deviceMsgs.bad.Add(1)&1023 == 1 { // the first, then every 1024th
						log.Warn("device telemetry report refused", "device", m.deviceID, "err", err)
					}
					continue
				}
				batch = append(batch, samples...)
				if s.metricWatch != nil {
					s.metricWatch.agentReport(ctx, m.deviceID, m.at, samples, m.payload)
				}
			case "inventory":
				s.applyInventoryReport(ctx, m)
			}
			if len(batch) >= 500 {
				flush()
			}
		}
	}
}

// sampleBroker turns the broker's counters into measurements and bus
// events every interval, and prunes measurements past the retention.
func (s *Server) sampleBroker(ctx context.Context) {
	log := s.Log.With("component", "telemetry")
	interval := s.Config.TelemetryInterval
	sampler := telemetry.NewBrokerSampler()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	lastPrune := time.Time{}
	seen := map[string]time.Time{} // broker LastSeen already written
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			now = now.UTC().Truncate(time.Millisecond)
			all := s.Broker.AllMetrics()
			samples := sampler.Sample(now, all)
			moved := map[string]time.Time{}
			for _, m := range all {
				if m.LastSeen.After(seen[m.DeviceID]) {
					moved[m.DeviceID] = m.LastSeen
				}
			}
			if err := s.Inventory.MarkSeen(ctx, moved); err != nil {
				log.Warn("last seen times not stored", "devices", len(moved), "err", err)
			} else {
				for id, t := range moved {
					seen[id] = t
				}
			}
			if err := s.Telemetry.Record(ctx, samples); err != nil {
				log.Warn("broker measurements not stored", "samples", len(samples), "err", err)
			}
			s.publishBrokerMetrics(ctx, samples)
			if now.Sub(lastPrune) > time.Hour {
				lastPrune = now
				if n, err := s.Telemetry.Prune(ctx, now.Add(-DefaultTelemetryRetention)); err != nil {
					log.Warn("pruning measurements failed", "err", err)
				} else if n > 0 {
					log.Info("old measurements pruned", "rows", n)
				}
			}
		}
	}
}

// publishBrokerMetrics sends one event per device and interval.
func (s *Server) publishBrokerMetrics(ctx context.Context, samples []telemetry.Sample) {
	byDevice := map[string]map[string]float64{}
	var at time.Time
	for _, smp := range samples {
		if byDevice[smp.DeviceID] == nil {
			byDevice[smp.DeviceID] = map[string]float64{}
		}
		byDevice[smp.DeviceID][smp.Metric] = smp.Value
		at = smp.Time
	}
	for device, values := range byDevice {
		data, _ := json.Marshal(values)
		ev := bus.Event{ID: rand.Text(), Type: EventBrokerMetrics, Time: at, Actor: "broker", Subject: device, Data: data}
		if err := s.Bus.Publish(ctx, ev); err != nil && ctx.Err() == nil {
			s.Log.Warn("broker metrics event not published", "component", "telemetry", "device", device, "err", err)
			return
		}
	}
}
