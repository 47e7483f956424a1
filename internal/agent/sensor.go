package agent

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/gopacket"

	"github.com/fleetward/fleetward/internal/alert"
	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/detect"
)

// Defaults of the edge sensor. The grace periods are those of
// `fleetward detect`.
const (
	DefaultSensorFMGrace = 5000
	DefaultSensorADGrace = 50000
	// maxSignalPayload keeps one devices/{id}/signals message well under
	// the broker's default packet limit (64 KiB); a larger batch is split.
	maxSignalPayload = 32 << 10
)

// SensorConfig configures the agent's edge sensor: fleetward's packet
// detector (decoding, AfterImage features, the KitNET ensemble, the packet
// rules and the anomaly alerter) run on one of the device's own
// interfaces. Only its findings leave the device: signals, in batches, on
// devices/{id}/signals; per-source score summaries (alert.ScoreSummary:
// packets, highest and mean smoothed score per source and interval) on
// devices/{id}/scores; and a summary of the sensor every interval on
// devices/{id}/sensor. Packets and per-packet scores never do.
type SensorConfig struct {
	// Interface is the network interface to capture on (AF_PACKET; needs
	// root or CAP_NET_RAW). Required.
	Interface string
	// NoPromiscuous captures only the device's own traffic, broadcasts
	// and multicast; by default the interface is put in promiscuous mode,
	// so that a gateway on a mirror port sees its neighbours' traffic too.
	NoPromiscuous bool
	// FMGrace and ADGrace are the packets of the feature-mapping and the
	// autoencoder training grace periods; DefaultSensorFMGrace and
	// DefaultSensorADGrace when zero. Ignored with Model.
	FMGrace, ADGrace int
	// Model, if set, is a trained model (detect.LoadKitNET) scored with
	// instead of training one on the device.
	Model *detect.KitNET
	// RulesOnly applies the packet rules alone, without the anomaly
	// model: for devices too small to train one.
	RulesOnly bool
	// BatchSize and BatchDelay bound a batch of signals (see
	// alert.SignalBatcher); its defaults when zero.
	BatchSize  int
	BatchDelay time.Duration
	// SummaryInterval is the time between summaries; the agent's Interval
	// when zero.
	SummaryInterval time.Duration
	// ScoreInterval is the capture time one per-source score summary
	// covers (detect.DefaultSummaryInterval when zero).
	ScoreInterval time.Duration
	// Rules are the packet rules' thresholds and Anomaly how model scores
	// become alerts; zero fields take their defaults, as in detect.
	Rules   detect.Rules
	Anomaly detect.AnomalyConfig
}

// Validate reports the first field of c that cannot work, as an
// apperr.Invalid naming the field.
func (c SensorConfig) Validate() error {
	switch {
	case c.Interface == "":
		return apperr.InvalidField("sensor", "an interface name is required")
	case c.FMGrace < 0:
		return apperr.InvalidField("sensor_fm", "must not be negative")
	case c.ADGrace < 0:
		return apperr.InvalidField("sensor_ad", "must not be negative")
	case c.BatchSize < 0:
		return apperr.InvalidField("sensor_batch", "must not be negative")
	case c.BatchDelay < 0:
		return apperr.InvalidField("sensor_batch_delay", "must not be negative")
	case c.SummaryInterval < 0:
		return apperr.InvalidField("sensor_interval", "must not be negative")
	case c.ScoreInterval < 0:
		return apperr.InvalidField("sensor_score_interval", "must not be negative")
	case c.RulesOnly && c.Model != nil:
		return apperr.InvalidField("sensor_model", "a model cannot be used with rules only")
	}
	return nil
}

// SensorSummary is what the edge sensor publishes on devices/{id}/sensor
// every interval: how much traffic it saw and where its detector stands.
// Counters run from the sensor's start. The server keeps its numbers as
// the device's sensor_* measurements.
type SensorSummary struct {
	DeviceID  string    `json:"device_id"`
	Interface string    `json:"interface"`
	Time      time.Time `json:"time"`
	// Packets were read from the interface; PacketsPerSecond over the
	// last interval.
	Packets          uint64             `json:"packets"`
	PacketsPerSecond float64            `json:"pps"`
	Decode           detect.DecodeStats `json:"decode"`
	// Trained is set once the grace periods are over (or a trained model
	// was loaded); TrainingPackets were spent in them. RulesOnly sensors
	// have no model.
	Trained         bool    `json:"trained"`
	TrainingPackets int     `json:"training_packets"`
	RulesOnly       bool    `json:"rules_only"`
	Threshold       float64 `json:"threshold"`
	// Signals were found and queued for the server; Alerts counts those
	// that started an alert in the sensor's own aggregation.
	Signals uint64 `json:"signals"`
	Alerts  uint64 `json:"alerts"`
	// ScoreSummaries were made and queued for the server.
	ScoreSummaries uint64 `json:"score_summaries"`
	// CaptureErrors counts receive failures on the interface (it went
	// down or away); CaptureReopens how often it was opened again after
	// one. Packets are missed in between. CaptureDrops counts the frames
	// the kernel dropped because the detector fell behind.
	CaptureErrors  uint64 `json:"capture_errors"`
	CaptureReopens uint64 `json:"capture_reopens"`
	CaptureDrops   uint64 `json:"capture_drops"`
	// CaptureMode is how the capture reads frames: "ring", or "recvfrom"
	// (a system call per frame, dropping sooner) when the kernel refused
	// the ring.
	CaptureMode string `json:"capture_mode"`
	// Stopped is set in the last summary of a sensor whose capture ended,
	// with the reason.
	Stopped string `json:"stopped,omitempty"`
}

// sensor is one run of the edge sensor.
type sensor struct {
	cfg     SensorConfig
	agent   *Agent
	capture *detect.LiveCapture
	packets atomic.Uint64
	signals atomic.Uint64
	alerts  atomic.Uint64
	sums    atomic.Uint64
	agg     *alert.Aggregator
	batcher *alert.SignalBatcher
	scores  *alert.Batcher[alert.ScoreSummary]

	mu       sync.Mutex
	status   detect.ScoreResult // the pipeline's latest Status
	lastAt   time.Time          // of the previous summary
	lastPkts uint64
}

// openSensor opens the capture, so that a missing interface or privilege
// stops the agent at start rather than later.
func (a *Agent) openSensor() (*sensor, error) {
	cfg := *a.cfg.Sensor
	lc, err := detect.OpenInterface(cfg.Interface, detect.LiveOptions{NoPromiscuous: cfg.NoPromiscuous})
	if err != nil {
		return nil, fmt.Errorf("sensor: %w", err)
	}
	s := &sensor{cfg: cfg, agent: a, capture: lc, agg: alert.NewAggregator(0, nil), lastAt: time.Now()}
	s.batcher = &alert.SignalBatcher{Send: s.queueSignals, Size: cfg.BatchSize, Delay: cfg.BatchDelay}
	s.scores = &alert.Batcher[alert.ScoreSummary]{Send: s.queueScores, Size: cfg.BatchSize, Delay: cfg.BatchDelay}
	return s, nil
}

// scoreOptions are the detector's options for the sensor: everything is
// discarded but the signals, the score summaries and the status.
func (s *sensor) scoreOptions() detect.ScoreOptions {
	rules, anomaly := s.cfg.Rules, s.cfg.Anomaly
	opts := detect.ScoreOptions{
		KitNET:  detect.KitNETConfig{FMGrace: s.cfg.FMGrace, ADGrace: s.cfg.ADGrace},
		Rules:   &rules,
		Model:   s.cfg.Model,
		Discard: true,
		Batch:   1, // a packet of a quiet network must not wait for others
		Signals: s.observe,
		Status: func(st detect.ScoreResult) {
			s.mu.Lock()
			s.status = st
			s.mu.Unlock()
		},
	}
	if opts.KitNET.FMGrace == 0 {
		opts.KitNET.FMGrace = DefaultSensorFMGrace
	}
	if opts.KitNET.ADGrace == 0 {
		opts.KitNET.ADGrace = DefaultSensorADGrace
	}
	if !s.cfg.RulesOnly {
		opts.Anomaly = &anomaly
		opts.SummaryInterval = s.cfg.ScoreInterval
		opts.Summaries = func(sums []alert.ScoreSummary) {
			s.sums.Add(uint64(len(sums)))
			_ = s.scores.Add(context.Background(), false, sums...)
		}
	}
	return opts
}

// run scores the capture until ctx ends, then sends what is still queued
// and a last summary.
func (s *sensor) run(ctx context.Context) {
	log := s.agent.log.With("interface", s.cfg.Interface)
	// Set before the capture is read: the capture reopens the interface
	// after a failure, and the log says so.
	s.capture.OnError = func(err error) { log.Warn("edge sensor capture failed; reopening the interface", "error", err) }
	stopCapture := context.AfterFunc(ctx, func() { s.capture.Close() })
	defer stopCapture()
	stopFlush := s.batcher.FlushEvery(ctx, nil)
	stopScores := s.scores.FlushEvery(ctx, nil)
	// Summaries stop with the capture, which may fail before ctx ends.
	summaries, stopSummaries := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(cmp.Or(s.cfg.SummaryInterval, s.agent.cfg.Interval))
		defer t.Stop()
		for {
			select {
			case <-summaries.Done():
				return
			case now := <-t.C:
				s.agg.Expire(now)
				s.publishSummary(now, "")
			}
		}
	})
	log.Info("edge sensor started", "rules_only", s.cfg.RulesOnly, "model_loaded", s.cfg.Model != nil, "promiscuous", !s.cfg.NoPromiscuous, "capture_mode", s.capture.Mode())
	if err := s.capture.RingError(); err != nil {
		log.Warn("edge sensor capture has no receive ring; reading one frame per system call", "error", err)
	}
	src := &countingSource{PacketSource: s.capture, n: &s.packets}
	score := detect.ScoreCapture
	if s.cfg.RulesOnly {
		score = detect.ApplyRules
	}
	stopped := "agent stopped"
	if _, err := score(src, s.scoreOptions()); err != nil {
		stopped = err.Error()
		log.Error("edge sensor stopped", "error", err)
	}
	s.capture.Close()
	stopFlush()
	stopScores()
	stopSummaries()
	wg.Wait()
	s.publishSummary(time.Now(), stopped)
}

// observe receives the detector's signals, on the capture goroutine.
func (s *sensor) observe(sigs []alert.Signal) {
	for _, sig := range sigs {
		if _, started, err := s.agg.Add(sig); err != nil {
			continue // the server would refuse it too
		} else if started {
			s.alerts.Add(1)
		}
		s.signals.Add(1)
		_ = s.batcher.Add(context.Background(), false, sig)
	}
}

// queueSignals puts a batch of signals into the spool as
// devices/{id}/signals messages.
func (s *sensor) queueSignals(_ context.Context, sigs []alert.Signal) error {
	return queueSplit(s.agent, "signals", sigs, func(part []alert.Signal) any { return alert.SignalReport{Signals: part} })
}

// queueScores puts a batch of score summaries into the spool as
// devices/{id}/scores messages.
func (s *sensor) queueScores(_ context.Context, sums []alert.ScoreSummary) error {
	return queueSplit(s.agent, "scores", sums, func(part []alert.ScoreSummary) any { return alert.ScoreReport{Summaries: part} })
}

// queueSplit puts items into the spool as devices/{id}/{kind} messages of
// report(items), split in halves until each stays under maxSignalPayload.
// A spool that refuses (a full or failing disk) is logged by enqueueRaw
// and the items are not retried, so that memory stays bounded.
func queueSplit[T any](a *Agent, kind string, items []T, report func([]T) any) error {
	payload, err := json.Marshal(report(items))
	if err != nil {
		return err
	}
	if len(payload) > maxSignalPayload && len(items) > 1 {
		if err := queueSplit(a, kind, items[:len(items)/2], report); err != nil {
			return err
		}
		return queueSplit(a, kind, items[len(items)/2:], report)
	}
	_ = a.enqueueRaw(kind, payload)
	return nil
}

// summary builds the summary at now.
func (s *sensor) summary(now time.Time, stopped string) SensorSummary {
	s.mu.Lock()
	defer s.mu.Unlock()
	pkts := s.packets.Load()
	sum := SensorSummary{
		DeviceID:        s.agent.cfg.DeviceID,
		Interface:       s.cfg.Interface,
		Time:            now.UTC(),
		Packets:         pkts,
		Decode:          s.status.Decode,
		TrainingPackets: s.status.Trained,
		RulesOnly:       s.cfg.RulesOnly,
		Threshold:       s.status.Threshold,
		Signals:         s.signals.Load(),
		Alerts:          s.alerts.Load(),
		ScoreSummaries:  s.sums.Load(),
		CaptureErrors:   s.capture.Errors(),
		CaptureReopens:  s.capture.Reopens(),
		CaptureDrops:    s.capture.Drops(),
		CaptureMode:     s.capture.Mode(),
		Stopped:         stopped,
	}
	if !s.cfg.RulesOnly {
		sum.Trained = s.status.Packets > s.status.Trained || (s.cfg.Model != nil && s.status.Trained == 0)
	}
	if d := now.Sub(s.lastAt).Seconds(); d > 0 {
		sum.PacketsPerSecond = float64(pkts-s.lastPkts) / d
	}
	s.lastAt, s.lastPkts = now, pkts
	return sum
}

func (s *sensor) publishSummary(now time.Time, stopped string) {
	// What was found so far goes first, so that a summary never counts
	// signals or score summaries the server has not been sent.
	_ = s.batcher.Flush(context.Background())
	_ = s.scores.Flush(context.Background())
	_ = s.agent.enqueue("sensor", s.summary(now, stopped))
}

// countingSource counts the frames read from a capture.
type countingSource struct {
	detect.PacketSource
	n *atomic.Uint64
}

func (c *countingSource) Next() ([]byte, gopacket.CaptureInfo, error) {
	data, ci, err := c.PacketSource.Next()
	if err == nil {
		c.n.Add(1)
	}
	return data, ci, err
}
