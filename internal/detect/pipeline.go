package detect

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"time"

	"github.com/google/gopacket"

	"github.com/fleetward/fleetward/internal/alert"
)

// ScoreOptions configures ScoreCapture.
type ScoreOptions struct {
	// KitNET configures the detector (grace periods and so on).
	KitNET KitNETConfig
	// KitsuneLinks computes Kitsune's exact features, updating every link of
	// the sender (see AfterImage.OwnLinkOnly). By default only the packet's
	// own links are updated, which is many times faster on scanning traffic,
	// and a channel silent for longer than the anomaly IdleGap (its default
	// without Anomaly) restarts its jitter statistics
	// (AfterImage.JitterRestart).
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
	// Status, if set, is called about once a second while packets arrive
	// with the result so far (counters, decode stats, threshold; no
	// per-packet slices), for a live sensor's periodic summary.
	Status func(ScoreResult)
	// Batch is how many packets the feature stage hands to the model stage
	// at once (DefaultBatch if 0). Live capture uses 1: a packet of a quiet
	// network must not wait for others before it is scored.
	Batch int
	// Sequential runs both stages, and the whole model, on one goroutine
	// even with several CPUs.
	Sequential bool
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
	Scores  []float64 `json:"-"`
	Seconds float64   `json:"seconds"`
	// FeatureSeconds is the feature stage's time: decoding and features,
	// and when packets are handed over in batches (a capture file) reading
	// and the packet rules as well.
	FeatureSeconds float64     `json:"feature_seconds"`
	PacketsPerSec  float64     `json:"packets_per_second"`
	Decode         DecodeStats `json:"decode"`
	Autoencoders   int         `json:"autoencoders"`
	// SigmoidLoads is how the vector sigmoid read its table (SigmoidLoads:
	// "gather" or "scalar", chosen by timing both; "none" without AVX2).
	SigmoidLoads string `json:"sigmoid_loads,omitempty"`
	// Smoothed holds the per-source smoothed scores (with Anomaly).
	Smoothed []float64 `json:"-"`
	// Times holds each packet's capture time in seconds since the epoch
	// (with Anomaly or Rules); Time(i) gives it as a time.
	Times []float64 `json:"-"`
	// Threshold is the calibrated alert threshold (with Anomaly), 0 when
	// Uncalibrated: the model's calibration scores held no finite value (a
	// model trained on too few packets), so the alerter never alerts.
	Threshold    float64 `json:"threshold,omitempty"`
	Uncalibrated bool    `json:"uncalibrated,omitempty"`
	// Signals are what the rules and the anomaly alerter found.
	Signals []alert.Signal `json:"-"`
	// Model is the detector after the capture, to save.
	Model *KitNET `json:"-"`
	// Corrupt is set when the capture ended with a corrupt or truncated
	// record; the packets before it were scored.
	Corrupt string `json:"corrupt,omitempty"`
	// FirstPanic describes the first frame whose decoding or rules
	// panicked (Decode.Panicked): the cause and the frame's first 128
	// bytes, for a bug report.
	FirstPanic string `json:"first_panic,omitempty"`
	// Streams is the number of streams tracked at the end; StreamsShed
	// counts those evicted because AfterImage.MaxStreams was reached (a
	// flood of new sources), not for being idle.
	Streams     int    `json:"streams,omitempty"`
	StreamsShed uint64 `json:"streams_shed"`
	// Learnt counts the packets learnt after training
	// (AnomalyConfig.Learn).
	Learnt int `json:"learnt,omitempty"`
	// Phases times the model's phases (PhaseFeatureMapping, PhaseTraining,
	// PhaseScoring), as Kitsune-py's run statistics do. With two stages a
	// phase's time is the model stage's, which waits for the features.
	Phases map[string]PhaseTime `json:"phases,omitempty"`
}

// Time returns the capture time of packet i, as the signals carry it.
func (r *ScoreResult) Time(i int) time.Time { return packetTime(r.Times[i]) }

// PhaseTime is how many packets one phase of the model took and how long.
type PhaseTime struct {
	Packets       int     `json:"packets"`
	Seconds       float64 `json:"seconds"`
	PacketsPerSec float64 `json:"packets_per_second"`
}

// PacketSource gives frames in capture order: a capture file (Reader) or
// a live interface (LiveCapture). Next returns io.EOF at the end.
type PacketSource interface {
	Next() ([]byte, gopacket.CaptureInfo, error)
	LinkType() LinkType
}

// ScoreCapture runs every packet of r through the decoder, AfterImage and
// KitNET and returns the scores. A corrupt end of file is reported in the
// result, not as an error: the packets before it are good.
//
// With more than one CPU (GOMAXPROCS) the work runs in two stages on two
// goroutines, handing over Batch packets at a time: decoding, features
// and rules in one, the model and the anomaly alerts in the other. The
// results are the same either way, in capture order.
func ScoreCapture(r PacketSource, opts ScoreOptions) (*ScoreResult, error) {
	return scoreCapture(r, opts, true)
}

// scoreCapture is ScoreCapture, or without the model (no AfterImage, no
// KitNET: ApplyRules) when model is false.
func scoreCapture(r PacketSource, opts ScoreOptions, model bool) (*ScoreResult, error) {
	fs := newFeatureStage(r, opts, model)
	ms := newModelStage(opts, model)
	if h, ok := r.(interface{ PacketsHint() int }); ok && !opts.Discard {
		ms.reserve(h.PacketsHint())
	}
	size := cmp.Or(opts.Batch, DefaultBatch)
	start := time.Now()
	var err error
	if runtime.GOMAXPROCS(0) > 1 && !opts.Sequential {
		err = runStages(fs, ms, size)
	} else {
		b := newBatch(size)
		for b.err == nil {
			fs.fill(b)
			ms.consume(b)
		}
		err = b.err
	}
	res := ms.res
	if errors.Is(err, ErrFileCorrupt) {
		res.Corrupt = err.Error()
	} else if !errors.Is(err, io.EOF) {
		return nil, err
	}
	ms.finish(time.Since(start), fs)
	return res, nil
}

// DefaultBatch is how many packets the two stages of ScoreCapture hand over
// at a time by default.
const DefaultBatch = 256

// runStages runs the feature stage on its own goroutine, feeding the model
// stage on this one through a ring of three batches, and returns the error
// that ended the source (io.EOF at its end).
func runStages(fs *featureStage, ms *modelStage, size int) error {
	full := make(chan *batch, 2)
	free := make(chan *batch, 3)
	for range 3 {
		free <- newBatch(size)
	}
	go func() {
		for {
			b := <-free
			fs.fill(b)
			full <- b
			if b.err != nil {
				return
			}
		}
	}()
	for {
		b := <-full
		ms.consume(b)
		if b.err != nil {
			return b.err
		}
		free <- b
	}
}

// A batch is packets on their way from the feature stage to the model
// stage: each packet's decoded fields (without its payload), its feature
// vector and the signals the rules raised on it.
type batch struct {
	pkts    []Packet
	x       []float64 // len(pkts)×NumFeatures
	sigs    []alert.Signal
	sigEnd  []int  // sigs[sigEnd[i-1]:sigEnd[i]] are packet i's
	keys    []keys // the packets' streams' keys, while computing features
	err     error  // what ended the source after these packets, if anything
	feature time.Duration
	decode  DecodeStats // the decoder's counters after these packets
}

func newBatch(size int) *batch {
	return &batch{pkts: make([]Packet, 0, size), x: make([]float64, size*NumFeatures), sigEnd: make([]int, 0, size),
		keys: make([]keys, 0, size)}
}

// featureStage decodes frames, computes their features and applies the
// packet rules.
type featureStage struct {
	src   PacketSource
	dec   *Decoder
	ai    *AfterImage
	rules *RuleDetector
	// firstPanic describes the first frame whose decoding or rules
	// panicked (inspect).
	firstPanic string
}

func newFeatureStage(r PacketSource, opts ScoreOptions, model bool) *featureStage {
	fs := &featureStage{src: r, dec: NewDecoder(r.LinkType())}
	if model {
		fs.ai = NewAfterImage()
		if !opts.KitsuneLinks {
			var anomaly AnomalyConfig
			if opts.Anomaly != nil {
				anomaly = *opts.Anomaly
			}
			fs.ai.OwnLinkOnly = true
			fs.ai.JitterRestart = anomaly.withDefaults().IdleGap.Seconds()
		}
	}
	if opts.Rules != nil {
		fs.rules = NewRuleDetector(*opts.Rules)
		fs.dec.PayloadPrefix = fs.rules.PayloadPrefix()
	}
	return fs
}

// inspect decodes one frame into p and applies the rules to it, appending
// their signals to sigs. A panic in either (a bug that some frame reaches)
// must not take down a sensor watching a whole network: the frame is kept
// as one without addresses, as an undecodable frame is, any signals it
// raised are dropped, and it is counted in DecodeStats.Panicked, the
// first one's cause and frame kept for a bug report.
func (fs *featureStage) inspect(data []byte, ci gopacket.CaptureInfo, p *Packet, sigs []alert.Signal) (out []alert.Signal) {
	before := len(sigs)
	defer func() {
		if v := recover(); v != nil {
			fs.dec.Stats.Panicked++
			if fs.firstPanic == "" {
				fs.firstPanic = fmt.Sprintf("%v; frame %x", v, data[:min(len(data), 128)])
			}
			*p = frameOnly(data, ci)
			out = sigs[:before]
		}
	}()
	fs.dec.Decode(data, ci, p)
	if fs.rules != nil {
		sigs = fs.rules.Observe(p, sigs)
	}
	return sigs
}

// fill replaces b's packets with the next ones from the source, until b is
// full or the source ends (b.err is then set).
//
// A batch of many packets (a capture file) is timed as a whole, reading
// and rules included: two clock reads a batch. A batch of one (live
// capture, whose source waits for packets) times each packet's decoding
// and features alone, so that the wait does not count.
func (fs *featureStage) fill(b *batch) {
	b.pkts, b.sigs, b.sigEnd, b.feature = b.pkts[:0], b.sigs[:0], b.sigEnd[:0], 0
	start := time.Now()
	perPacket := cap(b.pkts) == 1
	// Decoding and rules first, packet by packet (a packet's frame and
	// payload last only until the next is read), then the features: with
	// the batch's packets at hand, each one's streams are prefetched while
	// the one before is worked on.
	for len(b.pkts) < cap(b.pkts) {
		data, ci, err := fs.src.Next()
		if err != nil {
			b.err = err
			break
		}
		var t0 time.Time
		if perPacket {
			t0 = time.Now()
		}
		b.pkts = append(b.pkts, Packet{})
		p := &b.pkts[len(b.pkts)-1]
		b.sigs = fs.inspect(data, ci, p, b.sigs)
		if perPacket {
			b.feature += time.Since(t0)
		}
		p.Payload = nil // it points into the decoder's buffer
		b.sigEnd = append(b.sigEnd, len(b.sigs))
	}
	if fs.ai != nil {
		var t0 time.Time
		if perPacket {
			t0 = time.Now()
		}
		// Packet j is keyed and prefetched ahead packets before packet
		// j-ahead's update: the loop starts that far before the first.
		const ahead = 2
		b.keys = b.keys[:0]
		for i := -ahead; i < len(b.pkts); i++ {
			if j := i + ahead; j < len(b.pkts) {
				b.keys = append(b.keys, fs.ai.keysOf(&b.pkts[j]))
				fs.ai.prefetch(&b.keys[j])
			}
			if i >= 0 {
				fs.ai.update(&b.pkts[i], &b.keys[i], b.x[i*NumFeatures:(i+1)*NumFeatures])
			}
		}
		if perPacket {
			b.feature += time.Since(t0)
		}
	}
	if !perPacket {
		b.feature = time.Since(start)
	}
	b.decode = fs.dec.Stats
}

// modelStage scores feature vectors with KitNET, turns the scores into
// anomaly signals, and keeps the result. Without a model (ApplyRules) it
// passes the rules' signals on and keeps the result.
type modelStage struct {
	opts       ScoreOptions
	kn         *KitNET // nil without a model
	alerter    *AnomalyAlerter
	heard      map[hostPair]channelState // channels heard in the grace periods, for the alerter
	res        *ScoreResult
	sigs       []alert.Signal
	scores     []float64
	feature    time.Duration
	workers    int // goroutines for the ensemble (KitNET.ProcessBatch)
	summaries  *summariser
	lastStatus time.Time // of the last Status call
}

func newModelStage(opts ScoreOptions, model bool) *modelStage {
	kn := opts.Model
	if kn == nil && model {
		kn = NewKitNET(NumFeatures, opts.KitNET)
	}
	// The ensemble spreads over the CPUs only where it cannot run in
	// packs: packed, one goroutine scores faster than the feature stage
	// feeds it, and more would only compete with that stage for the CPUs.
	workers := runtime.GOMAXPROCS(0)
	if opts.Sequential || usePacks() {
		workers = 1
	}
	return &modelStage{opts: opts, kn: kn, workers: workers, summaries: newSummariser(opts), res: &ScoreResult{Phases: map[string]PhaseTime{}}}
}

// reserve makes room in the per-packet results for n packets.
func (ms *modelStage) reserve(n int) {
	res := ms.res
	res.Scores = make([]float64, 0, n)
	if ms.opts.Anomaly != nil {
		res.Smoothed = make([]float64, 0, n)
	}
	if ms.opts.Anomaly != nil || ms.opts.Rules != nil {
		res.Times = make([]float64, 0, n)
	}
}

// phaseOf names the model's current phase.
func phaseOf(kn *KitNET) string {
	switch {
	case !kn.Training():
		return PhaseScoring
	case kn.FeatureMap() == nil:
		return PhaseFeatureMapping
	}
	return PhaseTraining
}

// Phases of a KitNET run, the keys of ScoreResult.Phases.
const (
	PhaseFeatureMapping = "feature_mapping"
	PhaseTraining       = "training"
	PhaseScoring        = "scoring"
)

func (ms *modelStage) consume(b *batch) {
	ms.feature += b.feature
	n := len(b.pkts)
	if cap(ms.scores) < n {
		ms.scores = make([]float64, n)
	}
	scores := ms.scores[:n]
	if ms.kn == nil {
		sigStart := 0
		for i := range n {
			sigStart = ms.observe(b, i, sigStart, "", 0, nil)
		}
		ms.status(b)
		return
	}
	// Continued learning changes the model between one packet's score and
	// the next: those packets are scored one at a time.
	learn := ms.opts.Anomaly != nil && ms.opts.Anomaly.Learn
	sigStart := 0
	for start := 0; start < n; {
		ph, end := phaseOf(ms.kn), start+ms.kn.phaseLeft(n-start)
		t0 := time.Now()
		batched := !learn || ph != PhaseScoring
		if batched {
			ms.kn.ProcessBatch(b.x[start*NumFeatures:end*NumFeatures], end-start, ms.workers, scores[start:end])
		}
		for i := start; i < end; i++ {
			var ensemble []float64
			switch {
			case !batched:
				scores[i] = ms.kn.Process(b.x[i*NumFeatures : (i+1)*NumFeatures])
				ensemble = ms.kn.EnsembleRMSE()
			case ph == PhaseScoring:
				ensemble = ms.kn.BatchRMSE(i - start)
			}
			sigStart = ms.observe(b, i, sigStart, ph, scores[i], ensemble)
		}
		pt := ms.res.Phases[ph]
		pt.Packets += end - start
		pt.Seconds += time.Since(t0).Seconds()
		ms.res.Phases[ph] = pt
		start = end
	}
	ms.status(b)
}

// status calls opts.Status, at most once a second, after a batch that
// held packets.
func (ms *modelStage) status(b *batch) {
	if now := time.Now(); ms.opts.Status != nil && len(b.pkts) > 0 && now.Sub(ms.lastStatus) >= time.Second {
		ms.lastStatus = now
		ms.opts.Status(ScoreResult{Packets: ms.res.Packets, Trained: ms.res.Trained, Decode: b.decode, Threshold: ms.res.Threshold})
	}
}

// observe takes packet i of b, scored in phase ("" without a model): the
// anomaly alerts, continued learning, and the result. It returns where the
// next packet's rule signals start in b.sigs.
func (ms *modelStage) observe(b *batch, i, sigStart int, phase string, score float64, ensemble []float64) int {
	opts, kn, res := ms.opts, ms.kn, ms.res
	p := &b.pkts[i]
	if phase == PhaseFeatureMapping || phase == PhaseTraining {
		res.Trained++
		if opts.Anomaly != nil {
			// The alerter, made when scoring begins, must know the channels
			// heard before, to tell one resuming after an idle gap from a
			// new one.
			ms.heard = rememberChannel(ms.heard, hostPair{p.Src, p.Dst}, channelState{last: p.Time})
		}
	}
	if !opts.Discard {
		res.Scores = append(res.Scores, score)
	}
	sigs := append(ms.sigs[:0], b.sigs[sigStart:b.sigEnd[i]]...)
	if opts.Anomaly != nil {
		smoothed := 0.0
		if phase == PhaseScoring {
			if ms.alerter == nil {
				threshold := opts.Anomaly.CalibratedThreshold(kn.Calibration())
				ms.alerter = NewAnomalyAlerter(*opts.Anomaly, threshold, kn.FeatureMap(), kn.EnsembleBaseline())
				// +Inf, which JSON cannot carry to a report or a server, is
				// said by Uncalibrated.
				if math.IsInf(threshold, 1) {
					res.Uncalibrated = true
				} else {
					res.Threshold = threshold
				}
				if ms.heard != nil {
					ms.alerter.channels, ms.heard = ms.heard, nil
				}
				if opts.Model != nil {
					ms.alerter.WarmUp(p.Time)
				}
			}
			var o Owner
			smoothed, o, sigs = ms.alerter.Observe(p, score, ensemble, sigs)
			ms.summaries.observe(p.Time, o, smoothed, ms.alerter.Threshold())
			if ms.alerter.Benign(score, smoothed) {
				kn.Learn(b.x[i*NumFeatures : (i+1)*NumFeatures])
			}
		}
		if !opts.Discard {
			res.Smoothed = append(res.Smoothed, smoothed)
		}
	}
	if (opts.Anomaly != nil || opts.Rules != nil) && !opts.Discard {
		res.Times = append(res.Times, p.Time)
	}
	if len(sigs) > 0 {
		if opts.Signals != nil {
			opts.Signals(sigs)
		} else {
			res.Signals = append(res.Signals, sigs...)
		}
	}
	ms.sigs = sigs
	res.Packets++
	if opts.Progress != nil && res.Packets%10000 == 0 {
		opts.Progress(res.Packets)
	}
	return b.sigEnd[i]
}

// finish completes the result once the source has ended.
func (ms *modelStage) finish(elapsed time.Duration, fs *featureStage) {
	res := ms.res
	ms.summaries.flush()
	for name, pt := range res.Phases {
		if pt.Seconds > 0 {
			pt.PacketsPerSec = float64(pt.Packets) / pt.Seconds
			res.Phases[name] = pt
		}
	}
	res.Seconds = elapsed.Seconds()
	res.FeatureSeconds = ms.feature.Seconds()
	if res.Seconds > 0 {
		res.PacketsPerSec = float64(res.Packets) / res.Seconds
	}
	res.Decode = fs.dec.Stats
	res.FirstPanic = fs.firstPanic
	if fs.ai != nil {
		res.Streams, res.StreamsShed = fs.ai.Streams(), fs.ai.Shed()
	}
	if ms.kn != nil {
		res.Autoencoders = len(ms.kn.FeatureMap())
		res.SigmoidLoads = SigmoidLoads()
		res.Learnt = ms.kn.Learnt()
		res.Model = ms.kn
	}
}
