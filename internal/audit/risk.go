package audit

import (
	"math"
	"slices"
	"time"
)

// The risk score, documented in docs/FINDINGS.md.
//
// Each open, unsuppressed finding i of a device contributes a likelihood
//
//	p_i = min(1, s_i · e_i · x_i / 15)
//
// where s_i is the severity's weight (critical 9.5, high 7.5, medium 5,
// low 2.5, info 0, on CVSS's 0-10 scale), e_i is 1.5 when the weakness is
// known to be exploited (in CISA KEV, or a default password that logged
// in) and 1 otherwise, and x_i is 1.25 when a scan reached it over the
// network and 1 otherwise. So a working default password or a KEV entry
// on an exposed service is certain (p = 1), and one critical advisory
// alone is p = 0.63.
//
// The device's score combines them as independent chances of compromise,
// scaled by how much the device matters:
//
//	risk = 100 · c · (1 − Π_i (1 − p_i))
//
// with criticality c = 0.5 (low), 0.75 (normal, the default), 0.9 (high)
// or 1 (critical). Classes that control physical processes or others'
// traffic (controller, gateway, router, lock, medical) default to high.
//
// The fleet's score is the mean of its riskiest tenth of devices (at least
// one device): a fleet is as exposed as its worst devices, and one bad
// device among thousands must still show.

// severityWeight is s_i.
var severityWeight = map[string]float64{SeverityCritical: 9.5, SeverityHigh: 7.5, SeverityMedium: 5, SeverityLow: 2.5, SeverityInfo: 0}

// criticalityFactor is c.
var criticalityFactor = map[string]float64{"low": 0.5, "normal": 0.75, "high": 0.9, "critical": 1}

// highCriticalityClasses default to "high".
var highCriticalityClasses = map[string]bool{"controller": true, "gateway": true, "router": true, "lock": true, "medical": true}

// Criticality returns the device's criticality: its own when it names a
// known one, else its class's default.
func Criticality(d Device) string {
	if _, ok := criticalityFactor[d.Criticality]; ok {
		return d.Criticality
	}
	if highCriticalityClasses[d.Class] {
		return "high"
	}
	return "normal"
}

// Likelihood is p_i of one finding.
func Likelihood(f Finding) float64 {
	p := severityWeight[f.Severity]
	if f.Exploited {
		p *= 1.5
	}
	if f.Exposed {
		p *= 1.25
	}
	return math.Min(1, p/15)
}

// DeviceRisk is the risk score (0-100) of device d given its findings;
// resolved and suppressed ones do not count.
func DeviceRisk(d Device, findings []Finding, now time.Time) float64 {
	safe := 1.0
	for _, f := range findings {
		if f.Status == StatusResolved || f.Suppressed(now) {
			continue
		}
		safe *= 1 - Likelihood(f)
	}
	r := 100 * criticalityFactor[Criticality(d)] * (1 - safe)
	return math.Round(r*10) / 10
}

// FleetRisk is the fleet's score: the mean of the riskiest tenth of the
// device scores (at least one).
func FleetRisk(scores []float64) float64 {
	if len(scores) == 0 {
		return 0
	}
	s := slices.Clone(scores)
	slices.Sort(s)
	n := max(1, len(s)/10)
	sum := 0.0
	for _, v := range s[len(s)-n:] {
		sum += v
	}
	return math.Round(sum/float64(n)*10) / 10
}

// RiskBuckets counts scores in ten buckets of width 10 (0-9.9, 10-19.9,
// …, 90-100), for the risk distribution chart.
func RiskBuckets(scores []float64) [10]int {
	var b [10]int
	for _, s := range scores {
		i := int(s / 10)
		b[min(max(i, 0), 9)]++
	}
	return b
}
