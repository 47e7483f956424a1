package detect

import (
	"math"
	"net"
	"time"

	"github.com/fleetward/fleetward/internal/alert"
)

// DefaultSummaryInterval is how much capture time one score summary
// covers unless ScoreOptions.SummaryInterval says otherwise.
const DefaultSummaryInterval = 10 * time.Second

// maxSummarySources bounds the sources one interval keeps: a flood from
// spoofed addresses must not grow the summariser without limit. Sources
// first seen after the bound are left out of that interval's summaries.
const maxSummarySources = 4096

// sourceScores is what an interval has of one source so far.
type sourceScores struct {
	mac     [6]byte
	packets int
	max     float64
	sum     float64
}

// summariser turns the smoothed scores of scored packets into one
// alert.ScoreSummary per source and interval of capture time. Intervals
// are aligned on multiples of their length; one closes with the first
// scored packet after it, or at the end of the capture (flush). A source
// silent for a whole interval has no summary for it and nothing is kept of
// it, so memory is bounded by the sources of one interval.
type summariser struct {
	emit      func([]alert.ScoreSummary)
	interval  float64 // seconds
	start     float64 // capture time the current interval began
	last      float64 // capture time of the last scored packet
	threshold float64
	sources   map[Host]*sourceScores
	order     []Host // sources in order of first packet, for stable output
	pool      []*sourceScores
	// Skipped counts packets of sources beyond maxSummarySources.
	skipped int
}

// newSummariser returns nil when opts asks for no summaries; the methods
// of a nil summariser do nothing, so the pipeline calls them unguarded.
func newSummariser(opts ScoreOptions) *summariser {
	if opts.Summaries == nil || opts.Anomaly == nil {
		return nil
	}
	iv := opts.SummaryInterval
	if iv <= 0 {
		iv = DefaultSummaryInterval
	}
	return &summariser{emit: opts.Summaries, interval: iv.Seconds(), start: math.NaN(), sources: map[Host]*sourceScores{}}
}

// observe adds the smoothed score of a packet seen at t (capture time in
// seconds) to the host it is charged to, o (from AnomalyAlerter.Observe).
func (s *summariser) observe(t float64, o Owner, smoothed, threshold float64) {
	if s == nil || o.anonymous() || math.IsNaN(smoothed) || math.IsInf(smoothed, 0) || math.IsNaN(threshold) || math.IsInf(threshold, 0) {
		return
	}
	if math.IsNaN(s.start) {
		s.start = math.Floor(t/s.interval) * s.interval
	} else if t >= s.start+s.interval {
		s.close(s.start + s.interval)
		s.start = math.Floor(t/s.interval) * s.interval
	}
	s.last = max(s.last, t)
	s.threshold = threshold
	acc := s.sources[o.Host]
	if acc == nil {
		if len(s.sources) >= maxSummarySources {
			s.skipped++
			return
		}
		if n := len(s.pool); n > 0 {
			acc, s.pool = s.pool[n-1], s.pool[:n-1]
			*acc = sourceScores{}
		} else {
			acc = &sourceScores{}
		}
		s.sources[o.Host] = acc
		s.order = append(s.order, o.Host)
	}
	acc.mac = o.MAC
	acc.packets++
	acc.sum += smoothed
	acc.max = max(acc.max, smoothed)
}

// flush emits what the current interval holds, ending it at the last
// scored packet: the end of a capture closes a partial interval.
func (s *summariser) flush() {
	if s == nil || len(s.order) == 0 {
		return
	}
	s.close(max(s.last, s.start))
}

// close emits the current interval's summaries, ending at end, and
// forgets its sources.
func (s *summariser) close(end float64) {
	if len(s.order) == 0 {
		return
	}
	out := make([]alert.ScoreSummary, 0, len(s.order))
	start, stop := packetTime(s.start), packetTime(end)
	for _, h := range s.order {
		acc := s.sources[h]
		sum := alert.ScoreSummary{Start: start, End: stop, Packets: acc.packets, MaxScore: acc.max,
			// The rounding of the sum may put the mean of equal scores an ulp above them.
			MeanScore: min(acc.sum/float64(acc.packets), acc.max), Threshold: s.threshold}
		if h.Kind == AddrMAC {
			sum.SrcMAC = hostString(h)
		} else {
			sum.SrcIP = hostString(h)
			if acc.mac != ([6]byte{}) {
				sum.SrcMAC = net.HardwareAddr(acc.mac[:]).String()
			}
		}
		out = append(out, sum)
		s.pool = append(s.pool, acc)
	}
	clear(s.sources)
	s.order = s.order[:0]
	s.emit(out)
}
