package alert

import (
	"math"
	"time"

	"github.com/fleetward/fleetward/internal/apperr"
)

// ScoreSummary is what a sensor reports of one source's anomaly scores over
// one interval: how many of its packets were scored and the highest and
// mean smoothed score against the alert threshold. Sensors send summaries
// instead of per-packet scores, so a server can plot every device's score
// over time at a few points a minute. Only sensors create them; they are
// stored as the source device's measurements.
type ScoreSummary struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Sensor names the reporter (an interface on a host, or an agent's
	// device id); the server sets it for agents.
	Sensor    string  `json:"sensor,omitempty"`
	SrcIP     string  `json:"src_ip,omitempty"`
	SrcMAC    string  `json:"src_mac,omitempty"`
	Packets   int     `json:"packets"`
	MaxScore  float64 `json:"max_score"`
	MeanScore float64 `json:"mean_score"`
	Threshold float64 `json:"threshold"`
}

// Validate returns an Invalid error naming the first bad field.
func (s ScoreSummary) Validate() error {
	bad := func(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) || v < 0 }
	switch {
	case s.End.IsZero():
		return apperr.InvalidField("end", "is required")
	case !s.Start.IsZero() && s.Start.After(s.End):
		return apperr.InvalidField("start", "after end")
	case s.SrcIP == "" && s.SrcMAC == "":
		return apperr.InvalidField("src_ip", "a source IP or MAC is required")
	case len(s.Sensor) > 128:
		return apperr.InvalidField("sensor", "at most 128 bytes")
	case s.Packets < 0:
		return apperr.InvalidField("packets", "must not be negative")
	case bad(s.MaxScore):
		return apperr.InvalidField("max_score", "a finite number ≥ 0")
	case bad(s.MeanScore):
		return apperr.InvalidField("mean_score", "a finite number ≥ 0")
	case bad(s.Threshold):
		return apperr.InvalidField("threshold", "a finite number ≥ 0")
	}
	return nil
}

// Merge returns the summary of s and o together, as if one source had
// sent both intervals' packets: the packets add up, the maximum is the
// larger, the mean is weighted by packets, the interval spans both and the
// threshold is the higher (the stricter sensor's scale). Addresses and
// sensor are s's. A server merges the summaries that resolve to one device
// at one time, which would otherwise overwrite each other.
func (s ScoreSummary) Merge(o ScoreSummary) ScoreSummary {
	if n := float64(s.Packets) + float64(o.Packets); n > 0 {
		// Weights as shares, so that large scores cannot overflow.
		s.MeanScore = s.MeanScore*(float64(s.Packets)/n) + o.MeanScore*(float64(o.Packets)/n)
	} else {
		s.MeanScore = max(s.MeanScore, o.MeanScore)
	}
	if s.Packets > math.MaxInt-o.Packets {
		s.Packets = math.MaxInt
	} else {
		s.Packets += o.Packets
	}
	s.MaxScore = max(s.MaxScore, o.MaxScore)
	s.MeanScore = min(s.MeanScore, s.MaxScore)
	s.Threshold = max(s.Threshold, o.Threshold)
	if !o.Start.IsZero() && (s.Start.IsZero() || o.Start.Before(s.Start)) {
		s.Start = o.Start
	}
	if o.End.After(s.End) {
		s.End = o.End
	}
	return s
}
