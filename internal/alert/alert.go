// Package alert turns detections into alerts a person can act on. Detectors
// (packet rules, the anomaly model, flow rules, metric checks) emit
// Signals, many a second; the Aggregator folds the signals of one source
// and behaviour within a window into one Alert, takes the device the signal
// names or resolves the source to an inventory device by IP or MAC, and keeps
// its explanation: which rule or feature groups, the peers and ports
// involved, the score against the threshold. The Store keeps alerts and records each new one in the ledger.
package alert

import (
	"cmp"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fleetward/fleetward/internal/apperr"
)

// Severities, most severe first.
const (
	SeverityCritical = "critical"
	SeverityHigh     = "high"
	SeverityMedium   = "medium"
	SeverityLow      = "low"
)

var severityOrder = []string{SeverityCritical, SeverityHigh, SeverityMedium, SeverityLow}

// Signal is one detection: a rule that fired on a packet or flow, or a
// score above the model's threshold.
type Signal struct {
	Time time.Time `json:"time"`
	// Detector names what found it: "rule", "model", "flow", "metric".
	Detector string `json:"detector"`
	// Behaviour is what the source did: "telnet_scan", "brute_force",
	// "syn_flood", "udp_flood", "ack_flood", "ip_flood", "http_flood",
	// "dns_water_torture", "port_scan", "c2_beaconing",
	// "plaintext_credentials", "new_destination", "anomaly", …
	Behaviour string `json:"behaviour"`
	Severity  string `json:"severity"`
	// DeviceID is the inventory device the signal is about, when the
	// detector knows it (metric detectors watch devices by id). The
	// aggregator then takes it as the alert's device instead of resolving
	// SrcIP or SrcMAC, which may still be given for the operator.
	DeviceID string `json:"device_id,omitempty"`
	SrcIP    string `json:"src_ip,omitempty"`
	SrcMAC   string `json:"src_mac,omitempty"`
	// Peer is the other end ("10.0.0.7:23"), when there is one.
	Peer string `json:"peer,omitempty"`
	// Score and Threshold are the model's, or the rule's count and limit.
	Score     float64 `json:"score,omitempty"`
	Threshold float64 `json:"threshold,omitempty"`
	// Explanation says why in a sentence ("SYN to 23/tcp of 48 hosts in
	// 10 s; threshold 20").
	Explanation string `json:"explanation"`
}

// MaxExplanation bounds a signal's explanation, in bytes.
const MaxExplanation = 1000

// Validate returns an Invalid error naming the first bad field.
func (s Signal) Validate() error {
	switch {
	case s.Time.IsZero():
		return apperr.InvalidField("time", "is required")
	case s.Behaviour == "" || len(s.Behaviour) > 64:
		return apperr.InvalidField("behaviour", "1 to 64 characters")
	case !slices.Contains(severityOrder, s.Severity):
		return apperr.InvalidField("severity", "%q: one of %s", s.Severity, strings.Join(severityOrder, ", "))
	case len(s.DeviceID) > 128:
		return apperr.InvalidField("device_id", "at most 128 bytes")
	case s.SrcIP == "" && s.SrcMAC == "" && s.DeviceID == "":
		return apperr.InvalidField("src_ip", "a source IP, MAC or device id is required")
	case len(s.Explanation) > MaxExplanation:
		return apperr.InvalidField("explanation", "at most %d bytes", MaxExplanation)
	}
	return nil
}

// Alert is what an operator sees: one source's behaviour over a window,
// however many signals it took. Detectors create and extend alerts through
// the Aggregator; operators may only close them.
type Alert struct {
	ID        string `json:"id"`
	DeviceID  string `json:"device_id,omitempty"`
	SrcIP     string `json:"src_ip,omitempty"`
	SrcMAC    string `json:"src_mac,omitempty"`
	Behaviour string `json:"behaviour"`
	Severity  string `json:"severity"`
	Detector  string `json:"detector"`
	// Explanation is the first signal's; Peers the distinct peers seen
	// (at most MaxPeers, PeersDropped counts the rest).
	Explanation  string    `json:"explanation"`
	Peers        []string  `json:"peers,omitempty"`
	PeersDropped int       `json:"peers_dropped,omitempty"`
	MaxScore     float64   `json:"max_score,omitempty"`
	Threshold    float64   `json:"threshold,omitempty"`
	Signals      int       `json:"signals"`
	FirstSeen    time.Time `json:"first_seen"`
	LastSeen     time.Time `json:"last_seen"`
	Status       string    `json:"status"`
}

// Alert statuses.
const (
	StatusOpen   = "open"
	StatusClosed = "closed"
)

// MaxPeers bounds an alert's peer list.
const MaxPeers = 32

// DefaultWindow is how long after its last signal an alert still absorbs
// new ones of the same source and behaviour.
const DefaultWindow = 5 * time.Minute

// Resolver finds the inventory device that has an address; "" if none.
type Resolver func(ip, mac string) string

// Aggregator folds signals into alerts. It is safe for concurrent use.
type Aggregator struct {
	window  time.Duration
	resolve Resolver
	mu      sync.Mutex
	open    map[string]*Alert // by source and behaviour
}

// NewAggregator returns an Aggregator with the given window (DefaultWindow
// when 0) and resolver (may be nil).
func NewAggregator(window time.Duration, resolve Resolver) *Aggregator {
	return &Aggregator{window: cmp.Or(window, DefaultWindow), resolve: resolve, open: map[string]*Alert{}}
}

// Add folds sig into its alert and returns a copy of the alert and whether
// the signal started it. Returns an Invalid error for a malformed signal.
func (g *Aggregator) Add(sig Signal) (Alert, bool, error) {
	if err := sig.Validate(); err != nil {
		return Alert{}, false, err
	}
	// A device id and an address live in different namespaces: the
	// prefix keeps a device named like an address apart from it.
	key := "a\x00" + cmp.Or(sig.SrcIP, sig.SrcMAC) + "\x00" + sig.Behaviour
	if sig.DeviceID != "" {
		key = "d\x00" + sig.DeviceID + "\x00" + sig.Behaviour
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	a := g.open[key]
	started := a == nil || sig.Time.Sub(a.LastSeen) > g.window
	if started {
		a = &Alert{ID: "alert-" + strings.ToLower(rand.Text()[:16]), SrcIP: sig.SrcIP, SrcMAC: sig.SrcMAC, Behaviour: sig.Behaviour,
			Severity: sig.Severity, Detector: sig.Detector, Explanation: sig.Explanation, Threshold: sig.Threshold,
			FirstSeen: sig.Time, LastSeen: sig.Time, Status: StatusOpen}
		a.DeviceID = sig.DeviceID
		if a.DeviceID == "" && g.resolve != nil {
			a.DeviceID = g.resolve(sig.SrcIP, sig.SrcMAC)
		}
		g.open[key] = a
	}
	a.Signals++
	if sig.Time.After(a.LastSeen) {
		a.LastSeen = sig.Time
	}
	if slices.Index(severityOrder, sig.Severity) < slices.Index(severityOrder, a.Severity) {
		a.Severity = sig.Severity
	}
	if sig.Score > a.MaxScore {
		a.MaxScore = sig.Score
	}
	if sig.Peer != "" && !slices.Contains(a.Peers, sig.Peer) {
		if len(a.Peers) < MaxPeers {
			a.Peers = append(a.Peers, sig.Peer)
		} else {
			a.PeersDropped++
		}
	}
	return a.clone(), started, nil
}

// ResolveOpen asks the resolver again for the device of each open alert
// that has none, last seen at since or later (the inventory changed), and
// returns the alerts it gave one.
func (g *Aggregator) ResolveOpen(since time.Time) []Alert {
	if g.resolve == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []Alert
	for _, a := range g.open {
		if a.DeviceID != "" || a.LastSeen.Before(since) {
			continue
		}
		if a.DeviceID = g.resolve(a.SrcIP, a.SrcMAC); a.DeviceID != "" {
			out = append(out, a.clone())
		}
	}
	return out
}

// clone is a copy of a that shares nothing with it.
func (a *Alert) clone() Alert {
	c := *a
	c.Peers = slices.Clone(a.Peers)
	return c
}

// Expire forgets alerts whose window has passed at now, so memory stays
// bounded by the sources active within a window.
func (g *Aggregator) Expire(now time.Time) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for k, a := range g.open {
		if now.Sub(a.LastSeen) > g.window {
			delete(g.open, k)
			n++
		}
	}
	return n
}

// Title is a one-line headline for an alert.
func (a Alert) Title() string {
	who := cmp.Or(a.DeviceID, a.SrcIP, a.SrcMAC)
	what := strings.ReplaceAll(a.Behaviour, "_", " ")
	return fmt.Sprintf("%s: %s", who, what)
}
