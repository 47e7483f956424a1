package flow

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"time"

	"github.com/fleetward/fleetward/internal/alert"
	"github.com/fleetward/fleetward/internal/setting"
)

// Rules are the thresholds of the flow rules. The zero value of a field
// takes its default (DefaultRules); every rule looks at one source address
// at a time, in a sliding window of connection start times.
type Rules struct {
	// C2Unanswered unanswered TCP connections from one host to one
	// external address and port within C2Window: a bot retrying a command
	// server that is down or sinkholed (IoT-23's Mirai and Torii captures
	// do exactly this). Default 5 in 10 min: on the three IoT-23 captures 3 to
	// 8 flag no benign flow; 5 leaves a margin for real networks.
	C2Unanswered int           `json:"c2_unanswered"`
	C2Window     time.Duration `json:"c2_window"`
	// TelnetScanHosts distinct hosts contacted on 23 or 2323 within
	// ScanWindow: Mirai's scanner. Default 10 in 60 s.
	TelnetScanHosts int `json:"telnet_scan_hosts"`
	// PortScanTargets distinct unanswered host:port pairs within
	// ScanWindow. Default 30 in 60 s.
	PortScanTargets int           `json:"port_scan_targets"`
	ScanWindow      time.Duration `json:"scan_window"`
	// BruteForceAttempts connections to one login service (21, 22, 23,
	// 2323, 3389, 5900, and 80/8080 with service http) within ScanWindow.
	// Default 15.
	BruteForceAttempts int `json:"brute_force_attempts"`
	// FloodConnections from one host to one host within FloodWindow.
	// Default 500 in 10 s.
	FloodConnections int           `json:"flood_connections"`
	FloodWindow      time.Duration `json:"flood_window"`
}

// DefaultRules are the documented defaults (docs/DETECTION.md).
var DefaultRules = Rules{C2Unanswered: 5, C2Window: 10 * time.Minute, TelnetScanHosts: 10, PortScanTargets: 30,
	ScanWindow: time.Minute, BruteForceAttempts: 15, FloodConnections: 500, FloodWindow: 10 * time.Second}

func (r Rules) withDefaults() Rules {
	d := DefaultRules
	pick := func(v, def int) int {
		if v > 0 {
			return v
		}
		return def
	}
	pickD := func(v, def time.Duration) time.Duration {
		if v > 0 {
			return v
		}
		return def
	}
	return Rules{C2Unanswered: pick(r.C2Unanswered, d.C2Unanswered), C2Window: pickD(r.C2Window, d.C2Window),
		TelnetScanHosts: pick(r.TelnetScanHosts, d.TelnetScanHosts), PortScanTargets: pick(r.PortScanTargets, d.PortScanTargets),
		ScanWindow: pickD(r.ScanWindow, d.ScanWindow), BruteForceAttempts: pick(r.BruteForceAttempts, d.BruteForceAttempts),
		FloodConnections: pick(r.FloodConnections, d.FloodConnections), FloodWindow: pickD(r.FloodWindow, d.FloodWindow)}
}

// Set changes one threshold by its JSON name ("c2_unanswered",
// "scan_window", …) from text: a number or a Go duration ("30s")
// (setting.Set).
func (r *Rules) Set(name, value string) error { return setting.Set(r, name, value) }

// RuleSettings lists the names Set takes.
func RuleSettings() []string { return setting.Names[Rules]() }

// loginPorts are services that take a password.
var loginPorts = map[int]bool{21: true, 22: true, 23: true, 2323: true, 3389: true, 5900: true}

// Detector applies the rules to connections in time order. Its state is
// bounded: windows are pruned as time moves and sources idle for longer
// than the longest window are forgotten. Not safe for concurrent use.
type Detector struct {
	r        Rules
	times    map[string][]time.Time  // counted windows, by rule and key
	distinct map[string]*distinctSet // distinct-target windows, by rule and source
	lastSeen map[string]time.Time    // newest time per state key, for eviction
	observed int
}

// NewDetector returns a Detector with rules r (zero fields: defaults).
func NewDetector(r Rules) *Detector {
	return &Detector{r: r.withDefaults(), times: map[string][]time.Time{}, distinct: map[string]*distinctSet{}, lastSeen: map[string]time.Time{}}
}

// Observe feeds one connection and returns the signals it triggers: one
// per rule over its threshold, with the connection's peer.
func (d *Detector) Observe(c Conn) []alert.Signal {
	var out []alert.Signal
	src, peer := c.OrigH.String(), fmt.Sprintf("%s:%d", c.RespH, c.RespP)
	sig := func(behaviour, severity string, score, threshold int, why string) {
		out = append(out, alert.Signal{Time: c.Time, Detector: "flow", Behaviour: behaviour, Severity: severity, SrcIP: src,
			Peer: peer, Score: float64(score), Threshold: float64(threshold), Explanation: why})
	}
	r := d.r
	if c.Proto == "tcp" && c.Unanswered() && external(c.RespH) {
		if n := d.count("c2|"+src+"|"+peer, c.Time, r.C2Window); n >= r.C2Unanswered {
			sig("c2_beaconing", alert.SeverityHigh, n, r.C2Unanswered,
				fmt.Sprintf("%d unanswered TCP connections to external %s within %s (threshold %d): a bot retrying its command server", n, peer, r.C2Window, r.C2Unanswered))
		}
	}
	if c.RespP == 23 || c.RespP == 2323 {
		if n := d.distinctCount("telnet|"+src, c.RespH.String(), c.Time, r.ScanWindow); n >= r.TelnetScanHosts {
			sig("telnet_scan", alert.SeverityHigh, n, r.TelnetScanHosts,
				fmt.Sprintf("Telnet (23/2323) to %d hosts within %s (threshold %d): Mirai-style scanning", n, r.ScanWindow, r.TelnetScanHosts))
		}
	}
	if c.Unanswered() {
		if n := d.distinctCount("portscan|"+src, peer, c.Time, r.ScanWindow); n >= r.PortScanTargets {
			sig("port_scan", alert.SeverityMedium, n, r.PortScanTargets,
				fmt.Sprintf("%d unanswered host:port pairs within %s (threshold %d)", n, r.ScanWindow, r.PortScanTargets))
		}
	}
	if loginPorts[c.RespP] || (c.Service == "http" && (c.RespP == 80 || c.RespP == 8080)) {
		if n := d.count("brute|"+src+"|"+peer, c.Time, r.ScanWindow); n >= r.BruteForceAttempts {
			sig("brute_force", alert.SeverityHigh, n, r.BruteForceAttempts,
				fmt.Sprintf("%d connections to the login service %s within %s (threshold %d)", n, peer, r.ScanWindow, r.BruteForceAttempts))
		}
	}
	if n := d.count("flood|"+src+"|"+c.RespH.String(), c.Time, r.FloodWindow); n >= r.FloodConnections {
		kind := "flood"
		switch {
		case c.Proto == "udp":
			kind = "udp_flood"
		case c.Proto == "tcp" && c.Unanswered():
			kind = "syn_flood"
		}
		sig(kind, alert.SeverityCritical, n, r.FloodConnections,
			fmt.Sprintf("%d %s connections to %s within %s (threshold %d)", n, c.Proto, c.RespH, r.FloodWindow, r.FloodConnections))
	}
	d.observed++
	if d.observed%4096 == 0 {
		d.evict(c.Time)
	}
	return out
}

// count adds t to key's window and returns how many times are within it.
func (d *Detector) count(key string, t time.Time, window time.Duration) int {
	ts := append(d.times[key], t)
	cut := 0
	for cut < len(ts) && t.Sub(ts[cut]) > window {
		cut++
	}
	ts = ts[cut:]
	if len(ts) > 100000 { // a flood: the count is far past every threshold
		ts = ts[len(ts)-100000:]
	}
	d.times[key] = ts
	d.lastSeen[key] = t
	return len(ts)
}

// distinctSet is a window of distinct targets: when each was last seen,
// and the sightings in time order, so that the ones that left the window
// are found from the front without reading the whole set (a scan of tens
// of thousands of targets a minute made that quadratic).
type distinctSet struct {
	last   map[string]time.Time
	queue  []sighting // since the window's start, oldest first
	head   int        // queue[head:] are still in the window
	newest time.Time  // the newest sighting: the window ends there
}

type sighting struct {
	target string
	at     time.Time
}

// maxDistinct bounds a distinct set: past it, the count is far beyond
// every threshold and the oldest sightings go first.
const maxDistinct = 100000

// distinctCount adds target to key's set and returns how many targets were
// seen within the window.
func (d *Detector) distinctCount(key, target string, t time.Time, window time.Duration) int {
	set := d.distinct[key]
	if set == nil {
		set = &distinctSet{last: map[string]time.Time{}}
		d.distinct[key] = set
	}
	// A record that comes late (out of order) counts if it is still
	// within the window that ends at the newest; a target keeps its latest
	// sighting.
	if t.After(set.newest) {
		set.newest = t
	}
	if set.newest.Sub(t) > window {
		d.lastSeen[key] = set.newest
		return len(set.last)
	}
	if last, ok := set.last[target]; !ok || t.After(last) {
		set.last[target] = t
	}
	// In time order: a late record goes in its place (rare: detect --zeek
	// reorders records within an hour, longer than every window).
	at := len(set.queue)
	if at > set.head && t.Before(set.queue[at-1].at) {
		at = set.head + sort.Search(len(set.queue)-set.head, func(i int) bool { return set.queue[set.head+i].at.After(t) })
	}
	set.queue = slices.Insert(set.queue, at, sighting{target, t})
	for set.head < len(set.queue) {
		s := set.queue[set.head]
		if set.newest.Sub(s.at) <= window && len(set.queue)-set.head <= maxDistinct {
			break
		}
		// A target seen again since stays, by its later sighting.
		if last, ok := set.last[s.target]; ok && last.Equal(s.at) {
			delete(set.last, s.target)
		}
		set.queue[set.head] = sighting{}
		set.head++
	}
	// Drop the spent front once it is half the queue: amortized O(1).
	if set.head > len(set.queue)/2 {
		set.queue = append(set.queue[:0], set.queue[set.head:]...)
		set.head = 0
	}
	d.lastSeen[key] = set.newest
	return len(set.last)
}

// evict forgets keys idle for longer than every window.
func (d *Detector) evict(now time.Time) {
	longest := slices.Max([]time.Duration{d.r.C2Window, d.r.ScanWindow, d.r.FloodWindow})
	for k, seen := range d.lastSeen {
		if now.Sub(seen) > longest {
			delete(d.lastSeen, k)
			delete(d.times, k)
			delete(d.distinct, k)
		}
	}
}

// Keys is the number of windows kept, for tests of the bound.
func (d *Detector) Keys() int { return len(d.lastSeen) }

// external reports whether a is a public unicast address.
func external(a netip.Addr) bool {
	return a.IsGlobalUnicast() && !a.IsPrivate()
}
