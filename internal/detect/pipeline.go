package detect

import (
	"errors"
	"github.com/fleetward/fleetward/internal/alert"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"io"
	"time"
)

// ScoreOptions configures ScoreCapture.
type ScoreOptions struct {
	// KitNET configures the detector (grace periods and so on).
	KitNET KitNETConfig
	// KitsuneLinks computes Kitsune's exact features, updating every link of
	// the sender (see AfterImage.OwnLinkOnly); by default only the packet's
	// own links are updated, which is many times faster on scanning traffic.
	KitsuneLinks bool
	// Rules, if set, applies the packet rules to every packet (zero
	// fields take their defaults).
	Rules *Rules
	// Anomaly, if set, turns the scores into smoothed scores and anomaly
	// signals (zero fields take their defaults).
	Anomaly *AnomalyConfig
	// Signals, if set, receives the signals as they are found, in capture
	// order; they are also kept in the result.
	Signals func([]alert.Signal)
	// Model, if set, is a trained model (LoadKitNET) used instead of
	// training one; KitNET is then ignored.
	Model *KitNET
	// Discard keeps no per-packet scores or times in the result, for live
	// capture that runs for days; signals are still kept only if Signals
	// is nil.
	Discard bool
	// Progress, if set, is called every 10,000 packets with the count so far.
	Progress func(packets int)
	// Summaries, if set (with Anomaly), receives per-source summaries of
	// the smoothed scores of the packets scored after training, one per
	// source and SummaryInterval of capture time, when the interval closes
	// and at the end of the capture.
	Summaries func([]alert.ScoreSummary)
	// SummaryInterval is the capture time one summary covers; default
	// DefaultSummaryInterval (10 s).
	SummaryInterval time.Duration
}

// ScoreResult is the outcome of scoring one capture.
type ScoreResult struct {
	Packets int `json:"packets"`
	// Trained is the number of packets spent in the grace periods; their
	// scores are 0.
	Trained int `json:"trained"`
	// Scores holds one anomaly score per packet, in capture order.
	Scores         []float64   `json:"-"`
	Seconds        float64     `json:"seconds"`
	FeatureSeconds float64     `json:"feature_seconds"`
	PacketsPerSec  float64     `json:"packets_per_second"`
	Decode         DecodeStats `json:"decode"`
	Autoencoders   int         `json:"autoencoders"`
	// Smoothed holds the per-source smoothed scores (with Anomaly).
	Smoothed []float64 `json:"-"`
	// Times holds each packet's capture time (with Anomaly or Rules).
	Times []time.Time `json:"-"`
	// Threshold is the calibrated alert threshold (with Anomaly).
	Threshold float64 `json:"threshold,omitempty"`
	// Signals are what the rules and the anomaly alerter found.
	Signals []alert.Signal `json:"-"`
	// Model is the detector after the capture, to save.
	Model *KitNET `json:"-"`
	// Corrupt is set when the capture ended with a corrupt or truncated
	// record; the packets before it were scored.
	Corrupt string `json:"corrupt,omitempty"`
}

// PacketSource gives frames in capture order: a capture file (Reader) or
// a live interface (LiveCapture). Next returns io.EOF at the end.
type PacketSource interface {
	Next() ([]byte, gopacket.CaptureInfo, error)
	LinkType() layers.LinkType
}

// ScoreCapture runs every packet of r through the decoder, AfterImage and
// KitNET and returns the scores. A corrupt end of file is reported in the
// result, not as an error: the packets before it are good.
func ScoreCapture(r PacketSource, opts ScoreOptions) (*ScoreResult, error) {
	dec := NewDecoder(r.LinkType())
	ai := NewAfterImage()
	ai.OwnLinkOnly = !opts.KitsuneLinks
	kn := opts.Model
	if kn == nil {
		kn = NewKitNET(NumFeatures, opts.KitNET)
	}
	res := &ScoreResult{}
	x := make([]float64, NumFeatures)
	var p Packet
	var featureTime time.Duration
	var rules *RuleDetector
	if opts.Rules != nil {
		rules = NewRuleDetector(*opts.Rules)
		dec.PayloadPrefix = rules.PayloadPrefix()
	}
	var alerter *AnomalyAlerter
	var sigs []alert.Signal
	summaries := newSummariser(opts)
	start := time.Now()
	for {
		data, ci, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if errors.Is(err, ErrFileCorrupt) {
				res.Corrupt = err.Error()
				break
			}
			return nil, err
		}
		t0 := time.Now()
		dec.Decode(data, ci, &p)
		ai.Update(&p, x)
		featureTime += time.Since(t0)
		if kn.Training() {
			res.Trained++
		}
		score := kn.Process(x)
		if !opts.Discard {
			res.Scores = append(res.Scores, score)
		}
		sigs = sigs[:0]
		if rules != nil {
			sigs = rules.Observe(&p, sigs)
		}
		if opts.Anomaly != nil {
			smoothed := 0.0
			if !kn.Training() {
				if alerter == nil {
					res.Threshold = opts.Anomaly.CalibratedThreshold(kn.Calibration())
					alerter = NewAnomalyAlerter(*opts.Anomaly, res.Threshold, kn.FeatureMap(), kn.EnsembleBaseline())
				}
				if res.Packets >= res.Trained {
					smoothed, sigs = alerter.Observe(&p, score, kn.EnsembleRMSE(), sigs)
					summaries.observe(&p, smoothed, res.Threshold)
				}
			}
			if !opts.Discard {
				res.Smoothed = append(res.Smoothed, smoothed)
			}
		}
		if (opts.Anomaly != nil || rules != nil) && !opts.Discard {
			res.Times = append(res.Times, packetTime(p.Time))
		}
		if len(sigs) > 0 {
			if opts.Signals != nil {
				opts.Signals(sigs)
			} else {
				res.Signals = append(res.Signals, sigs...)
			}
		}
		res.Packets++
		if opts.Progress != nil && res.Packets%10000 == 0 {
			opts.Progress(res.Packets)
		}
	}
	summaries.flush()
	res.Seconds = time.Since(start).Seconds()
	res.FeatureSeconds = featureTime.Seconds()
	if res.Seconds > 0 {
		res.PacketsPerSec = float64(res.Packets) / res.Seconds
	}
	res.Decode = dec.Stats
	res.Autoencoders = len(kn.FeatureMap())
	res.Model = kn
	return res, nil
}
