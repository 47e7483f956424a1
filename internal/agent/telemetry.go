package agent

import (
	"time"
)

// Counters are traffic counters summed over every interface but loopback.
type Counters struct {
	BytesIn    uint64 `json:"bytes_in"`
	BytesOut   uint64 `json:"bytes_out"`
	PacketsIn  uint64 `json:"packets_in"`
	PacketsOut uint64 `json:"packets_out"`
}

// Telemetry is the device-side metrics report the agent publishes on
// devices/{id}/telemetry every interval.
type Telemetry struct {
	DeviceID string `json:"device_id"`
	// Seq counts reports since the agent started, from 1, so the backend
	// can see order and gaps.
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	// Totals are the interface counters now; Delta the change since the
	// previous report (zero in the first, and a reset counter counts from
	// zero).
	Totals          Counters `json:"totals"`
	Delta           Counters `json:"delta"`
	DeltaSeconds    float64  `json:"delta_seconds"`
	ListeningPorts  []Port   `json:"listening_ports"`
	EstablishedTCP  int      `json:"established_tcp"`
	RemoteAddresses []string `json:"remote_addresses"`
	// SpoolDropped counts reports dropped, since the agent started,
	// because the offline spool was full.
	SpoolDropped uint64 `json:"spool_dropped"`
	// SkippedLines counts /proc lines that could not be read this time.
	SkippedLines int `json:"skipped_lines"`
}

// sumCounters adds up every interface's counters except loopback.
func sumCounters(ifaces map[string]InterfaceCounters) Counters {
	var c Counters
	for name, i := range ifaces {
		if name == "lo" {
			continue
		}
		c.BytesIn += i.RxBytes
		c.BytesOut += i.TxBytes
		c.PacketsIn += i.RxPackets
		c.PacketsOut += i.TxPackets
	}
	return c
}

// delta is now-prev per counter; a counter that went down was reset (an
// interface went away or wrapped), and counts from zero.
func delta(now, prev Counters) Counters {
	d := func(a, b uint64) uint64 {
		if a < b {
			return a
		}
		return a - b
	}
	return Counters{
		BytesIn:    d(now.BytesIn, prev.BytesIn),
		BytesOut:   d(now.BytesOut, prev.BytesOut),
		PacketsIn:  d(now.PacketsIn, prev.PacketsIn),
		PacketsOut: d(now.PacketsOut, prev.PacketsOut),
	}
}
