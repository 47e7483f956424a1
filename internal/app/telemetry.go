package app

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fleetward/fleetward/internal/alert"
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
	// Signals of edge sensors: raised into alerts, or refused one by one
	// as malformed (a report that cannot be read at all counts in bad).
	signalsRaised  atomic.Uint64
	signalsRefused atomic.Uint64
	// Score summaries of edge sensors: recorded as measurements, of no
	// inventory device, or refused one by one as malformed.
	scoresRecorded   atomic.Uint64
	scoresUnresolved atomic.Uint64
	scoresRefused    atomic.Uint64
}

func newDeviceMessages() *deviceMessages {
	return &deviceMessages{ch: make(chan deviceMessage, deviceMessageQueue)}
}

// logSampled adds n to the counter c and reports whether to log it: for the
// first count, and each time the total passes a multiple of 1024, so that
// a device sending bad reports cannot flood the log.
func logSampled(c *atomic.Uint64, n int) bool {
	v := c.Add(uint64(n))
	return v == uint64(n) || v&1023 < uint64(n)
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
// metric detectors see as they arrive; edge sensor summaries from
// devices/{id}/sensor as measurements too; inventory reports; edge sensor
// signals from devices/{id}/signals, raised into alerts; and edge sensor
// score summaries from devices/{id}/scores, as POST /api/v1/scores records
// them.
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
					if logSampled(&s.deviceMsgs.bad, 1) {
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
			case "sensor":
				if m.topic != "devices/"+m.deviceID+"/sensor" {
					continue
				}
				samples, err := telemetry.ParseSensorSummary(m.deviceID, m.at, m.payload)
				if err != nil {
					if logSampled(&s.deviceMsgs.bad, 1) {
						log.Warn("edge sensor summary refused", "device", m.deviceID, "err", err)
					}
					continue
				}
				batch = append(batch, samples...)
			case "signals":
				if m.topic == "devices/"+m.deviceID+"/signals" {
					s.raiseDeviceSignals(ctx, m)
				}
			case "scores":
				if m.topic == "devices/"+m.deviceID+"/scores" {
					s.recordDeviceScores(ctx, m)
				}
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

// raiseDeviceSignals raises the signals of a device's edge sensor through
// the same path as POST /api/v1/signals. The alert goes to the device that
// sent the packets (by IP or MAC, as for any sensor); its explanation names
// the reporting device, which is known from its certificate, not from the
// payload. Malformed signals are refused and counted one by one, so that a
// bad one does not cost the good ones of its report.
func (s *Server) raiseDeviceSignals(ctx context.Context, m deviceMessage) {
	log := s.Log.With("component", "alerts", "device", m.deviceID)
	valid, bad, err := alert.ParseSignalReport(m.payload)
	if err != nil {
		if logSampled(&s.deviceMsgs.bad, 1) {
			log.Warn("edge sensor signal report refused", "err", err)
		}
		return
	}
	if len(bad) > 0 {
		if logSampled(&s.deviceMsgs.signalsRefused, len(bad)) {
			log.Warn("edge sensor signals refused", "refused", len(bad), "accepted", len(valid), "first", bad[0])
		}
	}
	for _, sig := range valid {
		// An edge sensor names the sources of packets by address. A device
		// id in its payload would let a device put alerts on any device
		// by name, so it is not taken.
		if sig.DeviceID != "" {
			sig.DeviceID = ""
			if sig.SrcIP == "" && sig.SrcMAC == "" {
				s.deviceMsgs.signalsRefused.Add(1)
				log.Warn("edge sensor signal refused", "reason", "a device id without a source address", "behaviour", sig.Behaviour)
				continue
			}
		}
		sig.Explanation = sensorExplanation(m.deviceID, sig.Explanation)
		if _, err := s.alerts.Raise(ctx, sig); err != nil {
			log.Warn("edge sensor signal not raised", "behaviour", sig.Behaviour, "src_ip", sig.SrcIP, "err", err)
			continue
		}
		s.deviceMsgs.signalsRaised.Add(1)
	}
}

// sensorExplanation prefixes an edge sensor's explanation with its
// reporter, within the length a signal may have.
func sensorExplanation(deviceID, explanation string) string {
	out := "sensor " + deviceID + ": " + explanation
	if len(out) > alert.MaxExplanation {
		out = strings.ToValidUTF8(out[:alert.MaxExplanation], "")
	}
	return out
}

// recordDeviceScores records the score summaries of a device's edge sensor
// as POST /api/v1/scores does: measurements of the devices their sources
// resolve to. The summaries' sensor is the reporting device, whatever the
// payload says. Malformed summaries are refused and counted one by one.
func (s *Server) recordDeviceScores(ctx context.Context, m deviceMessage) {
	log := s.Log.With("component", "alerts", "device", m.deviceID)
	valid, bad, err := alert.ParseScoreReport(m.payload)
	if err != nil {
		if logSampled(&s.deviceMsgs.bad, 1) {
			log.Warn("edge sensor score report refused", "err", err)
		}
		return
	}
	if len(bad) > 0 {
		if logSampled(&s.deviceMsgs.scoresRefused, len(bad)) {
			log.Warn("edge sensor score summaries refused", "refused", len(bad), "accepted", len(valid), "first", bad[0])
		}
	}
	if len(valid) == 0 {
		return
	}
	for i := range valid {
		valid[i].Sensor = m.deviceID
	}
	rep, err := recordScores(ctx, s.alerts, s.Telemetry, valid)
	if err != nil {
		log.Warn("edge sensor score summaries not stored", "summaries", len(valid), "err", err)
		return
	}
	s.deviceMsgs.scoresRecorded.Add(uint64(rep.Accepted - rep.Unresolved))
	s.deviceMsgs.scoresUnresolved.Add(uint64(rep.Unresolved))
}
