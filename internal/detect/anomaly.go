package detect

import (
	"fmt"
	"math"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/fleetward/fleetward/internal/alert"
)

// AnomalyConfig configures how model scores become alerts. Zero fields
// take their defaults (DefaultAnomalyConfig).
type AnomalyConfig struct {
	// TargetFPR is the share of calibration scores allowed above the
	// threshold before scaling: the threshold starts at their 1-TargetFPR
	// quantile. Default 1e-4 (1 in 10,000).
	TargetFPR float64 `json:"target_fpr"`
	// ThresholdScale multiplies that quantile, a margin for the drift of
	// benign traffic after training. Default 1.5.
	ThresholdScale float64 `json:"threshold_scale"`
	// Threshold, if positive, is used as is instead of being calibrated.
	Threshold float64 `json:"threshold,omitempty"`
	// Persist and Window: a source is anomalous when at least Persist of
	// its last Window scores are above the threshold. Its smoothed score is
	// the Persist-th largest of those Window scores, so that an isolated
	// benign spike does not raise it. Defaults 5 of 10.
	Persist int `json:"persist"`
	Window  int `json:"window"`
	// IdleGap: a source silent for longer starts afresh, its first
	// Window packets not alerting, since the damped statistics of a stream
	// that went quiet make its first packets after the pause look new.
	// Default 60 s.
	IdleGap time.Duration `json:"idle_gap"`
	// Multicast counts packets to multicast and broadcast addresses
	// toward alerts. Off by default: service announcements (SSDP, mDNS)
	// come in bursts the model may not have seen in training, and a bot's
	// scanning and attacks are unicast (floods to any address are the
	// rules' job).
	Multicast bool `json:"multicast"`
	// Repeat is how often a source that stays anomalous signals again.
	// Default 10 s.
	Repeat time.Duration `json:"repeat"`
	// Learn turns on continued learning: after training, a packet whose
	// score is below LearnBelow times the threshold, charged to a host
	// whose smoothed score is not above the threshold, also trains the
	// model.
	// Off by default: a model that learns can be taught, slowly, to
	// accept an attacker's traffic; turn it on for networks that drift.
	// LearnBelow defaults to 0.5.
	Learn      bool    `json:"learn,omitempty"`
	LearnBelow float64 `json:"learn_below,omitempty"`
	// Warmup: with a loaded model the stream statistics start empty, and
	// a damped window of λ = 0.01 needs minutes to fill, so no source
	// alerts in the first Warmup of capture time. Default 5 min; a model
	// trained on the capture needs none (its training was the warm-up).
	Warmup time.Duration `json:"warmup"`
}

// DefaultAnomalyConfig holds the documented defaults.
var DefaultAnomalyConfig = AnomalyConfig{TargetFPR: 1e-4, ThresholdScale: 1.5, Persist: 5, Window: 10,
	IdleGap: time.Minute, Repeat: 10 * time.Second, Warmup: 5 * time.Minute}

func (c AnomalyConfig) withDefaults() AnomalyConfig {
	d := DefaultAnomalyConfig
	if c.TargetFPR <= 0 || c.TargetFPR >= 1 {
		c.TargetFPR = d.TargetFPR
	}
	if c.ThresholdScale <= 0 {
		c.ThresholdScale = d.ThresholdScale
	}
	if c.Window <= 0 {
		c.Window = d.Window
	}
	if c.Persist <= 0 {
		c.Persist = min(d.Persist, c.Window)
	}
	c.Persist = min(c.Persist, c.Window)
	if c.IdleGap <= 0 {
		c.IdleGap = d.IdleGap
	}
	if c.Repeat <= 0 {
		c.Repeat = d.Repeat
	}
	if c.Warmup <= 0 {
		c.Warmup = d.Warmup
	}
	if c.LearnBelow <= 0 || c.LearnBelow > 1 {
		c.LearnBelow = 0.5
	}
	return c
}

// Benign reports whether a packet with this score, whose source's smoothed
// score is smoothed, may be learnt (AnomalyConfig.Learn).
func (a *AnomalyAlerter) Benign(score, smoothed float64) bool {
	return a.cfg.Learn && score < a.cfg.LearnBelow*a.threshold && smoothed <= a.threshold
}

// CalibratedThreshold returns the 1-TargetFPR quantile of the finite
// calibration scores times ThresholdScale (or Threshold when set); +Inf
// when there are none (a model trained on too few packets scores NaN),
// so that an uncalibrated model never alerts.
func (c AnomalyConfig) CalibratedThreshold(calibration []float64) float64 {
	c = c.withDefaults()
	if c.Threshold > 0 {
		return c.Threshold
	}
	s := slices.DeleteFunc(slices.Clone(calibration), func(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) })
	if len(s) == 0 {
		return math.Inf(1)
	}
	slices.Sort(s)
	i := min(len(s)-1, int(math.Ceil(float64(len(s))*(1-c.TargetFPR)))-1)
	return s[max(i, 0)] * c.ThresholdScale
}

// channelState is what the alerter keeps of a channel (source and
// destination host).
type channelState struct {
	last float64 // time of its last packet
	// After an idle gap its scores count as below the threshold for settle
	// more packets and until settledAt (capture time).
	settle    int
	settledAt float64
}

type sourceState struct {
	scores  []float64 // ring of the last Window scores
	sorted  []float64 // the same scores in ascending order (cmp.Compare)
	next    int
	filled  int
	last    float64 // time of the last packet
	warm    int     // packets left before it may alert after an idle gap
	lastSig float64 // time of the last signal
	signals int
}

// insertSorted inserts v into s, kept in ascending order as slices.Sort
// orders floats (NaN first).
func insertSorted(s []float64, v float64) []float64 {
	i, _ := slices.BinarySearch(s, v) // cmp.Compare's order, without a call per step
	return slices.Insert(s, i, v)
}

// removeSorted removes one value equal to v (NaN for NaN) from s, kept in
// ascending order.
func removeSorted(s []float64, v float64) []float64 {
	if i, ok := slices.BinarySearch(s, v); ok {
		return slices.Delete(s, i, i+1)
	}
	return s
}

// AnomalyAlerter turns per-packet model scores into smoothed scores and
// Signals with Behaviour "anomaly" per host: the source of a packet, or
// the destination of a reply (scoreOwner). Not safe for
// concurrent use. Sources idle for longer than IdleGap are evicted.
type AnomalyAlerter struct {
	cfg       AnomalyConfig
	threshold float64
	groups    []string // a name per ensemble autoencoder
	baseline  []float64
	sources   map[Host]*sourceState
	channels  map[hostPair]channelState
	seen      int
	quiet     float64 // no signal before this capture time
}

// opened reports whether from has sent to to within the last ten idle
// gaps, the time a.channels remembers.
func (a *AnomalyAlerter) opened(from, to Host) bool {
	_, ok := a.channels[hostPair{from, to}]
	return ok
}

// WarmUp keeps every source from alerting until Warmup after t (capture
// time in seconds): for a loaded model, whose stream statistics start
// empty.
func (a *AnomalyAlerter) WarmUp(t float64) { a.quiet = t + a.cfg.Warmup.Seconds() }

// NewAnomalyAlerter returns an alerter with the given threshold, the
// feature map (to name the autoencoders in explanations) and each
// autoencoder's baseline RMSE (KitNET.EnsembleBaseline).
func NewAnomalyAlerter(cfg AnomalyConfig, threshold float64, featureMap [][]int, baseline []float64) *AnomalyAlerter {
	cfg = cfg.withDefaults()
	a := &AnomalyAlerter{cfg: cfg, threshold: threshold, baseline: baseline, sources: map[Host]*sourceState{}, channels: map[hostPair]channelState{}}
	for i, g := range featureMap {
		a.groups = append(a.groups, fmt.Sprintf("autoencoder %d (%s)", i, describeGroup(g)))
	}
	return a
}

// Threshold is the score above which a packet counts as anomalous.
func (a *AnomalyAlerter) Threshold() float64 { return a.threshold }

// Observe takes one scored packet and the ensemble RMSEs behind its score;
// it returns the host the packet is charged to (scoreOwner) and that
// host's smoothed score, and appends a Signal to out when the host has
// stayed above the threshold.
func (a *AnomalyAlerter) Observe(p *Packet, score float64, ensemble []float64, out []alert.Signal) (float64, Owner, []alert.Signal) {
	o := scoreOwner(p, a.opened)
	if o.anonymous() {
		// Nobody to alert on: a frame with neither an IP address nor a
		// source MAC (an unknown link type, a zeroed MAC).
		return 0, o, out
	}
	src := o.Host
	st := a.sources[src]
	if st == nil || p.Time-st.last > a.cfg.IdleGap.Seconds() {
		if st == nil {
			if len(a.sources) >= maxRuleKeys {
				clear(a.sources) // a flood of spoofed sources, as in the rules' tables
			}
			st = &sourceState{scores: make([]float64, a.cfg.Window), sorted: make([]float64, 0, a.cfg.Window), lastSig: math.Inf(-1)}
			a.sources[src] = st
		}
		st.next, st.filled, st.sorted = 0, 0, st.sorted[:0]
		if st.last != 0 {
			st.warm = a.cfg.Window
		}
	}
	st.last = p.Time
	// A channel that resumes after an idle gap has decayed statistics, and
	// the source's traffic mix has changed while it was quiet: until its
	// statistics fill again, its scores say "quiet period", not "attack".
	// That takes its first Window packets and, for the slow windows (whose
	// packet counts are features too), time: it is not judged for IdleGap
	// after it resumes. New channels count in full (a scanner's are all
	// new).
	ch := hostPair{p.Src, p.Dst}
	c, known := a.channels[ch]
	if known && p.Time-c.last > a.cfg.IdleGap.Seconds() {
		c.settle, c.settledAt = a.cfg.Window, p.Time+a.cfg.IdleGap.Seconds()
	}
	if c.settle > 0 || p.Time < c.settledAt {
		c.settle = max(c.settle-1, 0)
		score = min(score, a.threshold)
	}
	if !a.cfg.Multicast && groupAddress(p.Dst) {
		score = min(score, a.threshold)
	}
	c.last = p.Time
	a.channels = rememberChannel(a.channels, ch, c)
	if st.filled == len(st.scores) {
		st.sorted = removeSorted(st.sorted, st.scores[st.next]) // the oldest leaves
	}
	st.sorted = insertSorted(st.sorted, score)
	st.scores[st.next] = score
	st.next = (st.next + 1) % len(st.scores)
	st.filled = min(st.filled+1, len(st.scores))
	// The smoothed score: the Persist-th largest of the window, 0 until
	// the window holds Persist scores.
	smoothed := 0.0
	if st.filled >= a.cfg.Persist {
		smoothed = st.sorted[st.filled-a.cfg.Persist]
	}
	if st.warm > 0 {
		st.warm--
		smoothed = min(smoothed, a.threshold)
	}
	a.seen++
	if a.seen%65536 == 0 {
		for h, s := range a.sources {
			if p.Time-s.last > a.cfg.IdleGap.Seconds() {
				delete(a.sources, h)
			}
		}
		for c, cs := range a.channels {
			if p.Time-cs.last > 10*a.cfg.IdleGap.Seconds() {
				delete(a.channels, c)
			}
		}
	}
	if smoothed <= a.threshold || p.Time-st.lastSig < a.cfg.Repeat.Seconds() || p.Time < a.quiet {
		return smoothed, o, out
	}
	st.lastSig = p.Time
	st.signals++
	peer := peerString(p)
	if o.Reply {
		peer = hostPort(p.Src, p.SrcPort, p.Ports == PortNumber)
	}
	sig := alert.Signal{Time: packetTime(p.Time), Detector: "model", Behaviour: "anomaly", Severity: alert.SeverityHigh,
		SrcIP: hostString(src), Peer: peer, Score: smoothed, Threshold: a.threshold,
		Explanation: fmt.Sprintf("score %.4g above threshold %.4g in %d of its last %d packets; most changed: %s",
			smoothed, a.threshold, a.cfg.Persist, a.cfg.Window, a.explain(ensemble))}
	if src.Kind == AddrMAC {
		sig.SrcIP = ""
	}
	if o.MAC != ([6]byte{}) {
		sig.SrcMAC = net.HardwareAddr(o.MAC[:]).String()
	}
	return smoothed, o, append(out, sig)
}

// Owner is the host a packet's anomaly score is charged to, the MAC
// address the frame shows for it, and whether that host is the packet's
// destination (Reply).
type Owner struct {
	Host  Host
	MAC   [6]byte
	Reply bool
}

// rememberChannel sets ch's state in channels (made if nil), which it
// empties first when full (a flood of spoofed sources, as in the rules'
// tables), and returns channels.
func rememberChannel(channels map[hostPair]channelState, ch hostPair, c channelState) map[hostPair]channelState {
	if channels == nil {
		channels = map[hostPair]channelState{}
	}
	if len(channels) >= maxRuleKeys {
		clear(channels)
	}
	channels[ch] = c
	return channels
}

// anonymous reports that o names no host: a frame without an IP address
// whose source MAC is missing or all zeros.
func (o Owner) anonymous() bool { return o.Host.Kind == AddrMAC && o.MAC == [6]byte{} }

// scoreOwner returns the owner of a packet's score. A packet's features
// describe both of its ends (the channel and socket statistics are of the
// pair), so when a device turns into a bot, the replies of every server it
// talks to score high too: charged to their senders, a broker or resolver
// serving few devices besides the bot would alert for the bot's
// behaviour. A reply (answers) is therefore charged to the host that
// opened the conversation, its destination, as the flow rules charge a
// connection to its originator, when opened says that host has sent to
// the replier; every other packet to its source address, or its source
// MAC for a frame without one. Without the check, a bot flooding from a
// service port (an ACK flood from port 80, say) would have its packets
// charged to its targets.
func scoreOwner(p *Packet, opened func(from, to Host) bool) Owner {
	switch {
	case p.Src.Kind == AddrNone:
		return Owner{Host: hostMAC(p.SrcMAC), MAC: p.SrcMAC}
	case answers(p) && !groupAddress(p.Dst) && opened(p.Dst, p.Src):
		return Owner{Host: p.Dst, MAC: p.DstMAC, Reply: true}
	}
	return Owner{Host: p.Src, MAC: p.SrcMAC}
}

// explain names the three autoencoders whose RMSE rose most over their
// baseline.
func (a *AnomalyAlerter) explain(ensemble []float64) string {
	type rise struct {
		i     int
		ratio float64
	}
	var rs []rise
	for i, v := range ensemble {
		b := 1e-12
		if i < len(a.baseline) && a.baseline[i] > b {
			b = a.baseline[i]
		}
		rs = append(rs, rise{i, v / b})
	}
	slices.SortFunc(rs, func(x, y rise) int { return -cmpFloat(x.ratio, y.ratio) })
	var parts []string
	for _, r := range rs[:min(3, len(rs))] {
		name := fmt.Sprintf("autoencoder %d", r.i)
		if r.i < len(a.groups) {
			name = a.groups[r.i]
		}
		parts = append(parts, fmt.Sprintf("%s ×%.1f", name, r.ratio))
	}
	return strings.Join(parts, "; ")
}

// groupAddress reports whether h is a multicast or broadcast address.
func groupAddress(h Host) bool {
	switch h.Kind {
	case AddrIPv4:
		return h.Addr[0] >= 224 || h.Addr[3] == 255
	case AddrIPv6:
		return h.Addr[0] == 0xff
	case AddrMAC:
		return h.Addr[0]&1 == 1
	}
	return false
}

func cmpFloat(x, y float64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// describeGroup names the AfterImage stream kinds a feature group draws
// on, e.g. "channel×4, socket×6".
func describeGroup(g []int) string {
	counts := map[string]int{}
	var order []string
	for _, f := range g {
		name := "socket"
		switch {
		case f < offsetChannel:
			name = "source MAC-IP"
		case f < offsetJitter:
			name = "channel"
		case f < offsetSocket:
			name = "channel jitter"
		}
		if counts[name] == 0 {
			order = append(order, name)
		}
		counts[name]++
	}
	parts := make([]string, len(order))
	for i, n := range order {
		parts[i] = fmt.Sprintf("%s×%d", n, counts[n])
	}
	return strings.Join(parts, ", ")
}
