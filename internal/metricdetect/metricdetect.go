// Package metricdetect watches the device metrics the broker and the agents
// publish and signals what a compromised IoT device shows in them: a surge
// of MQTT messages, of network traffic or of remote addresses, and a port
// that starts listening. Each (device, metric) pair keeps its own online
// baseline, so a camera that streams and a thermostat that reports once a
// minute are each judged against themselves. Its signals go into the same
// alert path as the packet, model and flow detectors' (internal/alert).
//
// It is its own package, beside internal/flow and internal/detect, rather
// than part of internal/alert: alert folds and stores signals from every
// detector and knows none of them; this is one detector.
package metricdetect

import (
	"fmt"
	"math"
	"math/bits"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/fleetward/fleetward/internal/alert"
	"github.com/fleetward/fleetward/internal/apperr"
)

// DetectorName is the alert.Signal detector of metric signals.
const DetectorName = "metric"

// Behaviours of metric signals.
const (
	BehaviourMessageSurge     = "message_surge"      // MQTT messages or bytes the device publishes
	BehaviourTrafficSurge     = "traffic_surge"      // bytes or packets the device sends on its interfaces
	BehaviourDestinationSurge = "destination_surge"  // remote addresses or established TCP connections
	BehaviourNewListeningPort = "new_listening_port" // a port the device did not listen on before
)

// Metric is one watched metric: the values Observe is given under Name are
// compared with the device's baseline of that metric.
type Metric struct {
	// Name is the metric as telemetry stores it ("messages_in",
	// "delta_bytes_out", "remote_addresses_count").
	Name string `json:"name"`
	// Counter marks a value that is a change over Observation.Interval; it
	// is divided by the interval, so baselines and Floor are per second
	// whatever the sampling interval. Other values are gauges, taken as
	// they are.
	Counter bool `json:"counter,omitempty"`
	// Behaviour and Severity are those of the metric's signals.
	Behaviour string `json:"behaviour"`
	Severity  string `json:"severity"`
	// Floor is the least value that may signal, in Unit: a device going
	// from 1 to 3 messages is far above its baseline and still no concern.
	Floor float64 `json:"floor"`
	// Unit names the value in explanations ("msg/s", "B/s", "addresses").
	Unit string `json:"unit"`
}

// DefaultMetrics are the watched metrics and their floors
// (docs/DETECTION.md, "Metric detectors"). The broker counts what a device
// publishes (messages_in, bytes_in: its publishes as the broker receives
// them, capped by the broker's per-device rate limit, 100 msg/s and
// 256 KiB/s by default); the agent reports interface counters and socket
// tables.
var DefaultMetrics = []Metric{
	{Name: "messages_in", Counter: true, Behaviour: BehaviourMessageSurge, Severity: alert.SeverityMedium, Floor: 1, Unit: "msg/s"},
	{Name: "bytes_in", Counter: true, Behaviour: BehaviourMessageSurge, Severity: alert.SeverityMedium, Floor: 8 << 10, Unit: "B/s"},
	{Name: "delta_bytes_out", Counter: true, Behaviour: BehaviourTrafficSurge, Severity: alert.SeverityMedium, Floor: 32 << 10, Unit: "B/s"},
	{Name: "delta_packets_out", Counter: true, Behaviour: BehaviourTrafficSurge, Severity: alert.SeverityMedium, Floor: 100, Unit: "pkt/s"},
	{Name: "remote_addresses_count", Behaviour: BehaviourDestinationSurge, Severity: alert.SeverityHigh, Floor: 16, Unit: "remote addresses"},
	{Name: "established_tcp", Behaviour: BehaviourDestinationSurge, Severity: alert.SeverityHigh, Floor: 32, Unit: "established TCP connections"},
}

// Config holds the detector's thresholds. A zero field takes its default
// (DefaultConfig); Validate refuses values that cannot work.
type Config struct {
	// Sigma is k in the surge test: a value signals when it is above
	// mean + k·deviation of the device's baseline (and above the metric's
	// Floor). The deviation is the EWMA of absolute deviations, about 0.8σ
	// for normal noise, so 4 is about 3.2σ. Default 4.
	Sigma float64 `json:"sigma,omitempty"`
	// Alpha is the weight of a new value in the EWMA mean and deviation
	// (0 < Alpha < 1): the baseline remembers about 1/Alpha samples.
	// Default 0.02: 50 samples, 8 minutes of broker samples at 10 s and 25
	// of agent reports at 30 s.
	Alpha float64 `json:"alpha,omitempty"`
	// Warmup is how many samples of a (device, metric) are learned before
	// it may signal; meanwhile the baseline is their plain average.
	// Default 30.
	Warmup int `json:"warmup,omitempty"`
	// MinDeviation is the least deviation, as a fraction of the mean, the
	// surge test uses: a perfectly regular device has a deviation near 0,
	// and a small rise must not signal. Default 0.25 (with Sigma 4, a value
	// must be at least twice the mean).
	MinDeviation float64 `json:"min_deviation,omitempty"`
	// Persist of the last PersistWindow samples must be above the threshold
	// for a signal, so a one-off spike (a firmware download, a burst of
	// retries) does not signal. Defaults 3 of 5; PersistWindow at most 16.
	Persist       int `json:"persist,omitempty"`
	PersistWindow int `json:"persist_window,omitempty"`
	// PortWarmup is how many agent reports of a device are learned before
	// a listening port new to the device signals: services that start
	// after the agent show up in its first reports. Default 3 (0 takes it).
	PortWarmup int `json:"port_warmup,omitempty"`
	// EphemeralUDPFrom: UDP sockets bound to this port or above are not
	// listeners that matter (resolvers and NTP clients bind random high
	// ports, and the agent cannot tell them apart from servers). Default
	// 32768, Linux's ephemeral range; 65536 watches every UDP port.
	EphemeralUDPFrom int `json:"ephemeral_udp_from,omitempty"`
	// IdleTTL: a device with no observation for this long is forgotten
	// (its baselines are learned again if it returns). Default 24 h.
	IdleTTL time.Duration `json:"idle_ttl,omitempty"`
	// MaxDevices bounds the devices tracked; past it, the longest idle are
	// forgotten first. Default 100000.
	MaxDevices int `json:"max_devices,omitempty"`
	// Metrics are the watched metrics; default DefaultMetrics.
	Metrics []Metric `json:"metrics,omitempty"`
}

// DefaultConfig holds the defaults a zero Config field takes.
var DefaultConfig = Config{Sigma: 4, Alpha: 0.02, Warmup: 30, MinDeviation: 0.25, Persist: 3, PersistWindow: 5, PortWarmup: 3,
	EphemeralUDPFrom: 32768, IdleTTL: 24 * time.Hour, MaxDevices: 100000}

// maxKnownPorts bounds the listening ports remembered per device; past it
// new ports still signal but are not remembered.
const maxKnownPorts = 1024

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	d := DefaultConfig
	or := func(v, def float64) float64 {
		if v == 0 {
			return def
		}
		return v
	}
	orInt := func(v, def int) int {
		if v == 0 {
			return def
		}
		return v
	}
	c.Sigma, c.Alpha, c.MinDeviation = or(c.Sigma, d.Sigma), or(c.Alpha, d.Alpha), or(c.MinDeviation, d.MinDeviation)
	c.Warmup, c.Persist, c.PersistWindow = orInt(c.Warmup, d.Warmup), orInt(c.Persist, d.Persist), orInt(c.PersistWindow, d.PersistWindow)
	c.PortWarmup, c.EphemeralUDPFrom, c.MaxDevices = orInt(c.PortWarmup, d.PortWarmup), orInt(c.EphemeralUDPFrom, d.EphemeralUDPFrom), orInt(c.MaxDevices, d.MaxDevices)
	if c.IdleTTL == 0 {
		c.IdleTTL = d.IdleTTL
	}
	if c.Metrics == nil {
		c.Metrics = DefaultMetrics
	}
	return c
}

// Validate returns an Invalid error naming the first field that cannot
// work; zero fields are valid (they take defaults).
func (c Config) Validate() error {
	c = c.withDefaults()
	severities := []string{alert.SeverityCritical, alert.SeverityHigh, alert.SeverityMedium, alert.SeverityLow}
	switch {
	case !(c.Sigma > 0 && c.Sigma <= 100):
		return apperr.InvalidField("sigma", "%g: must be above 0 and at most 100", c.Sigma)
	case !(c.Alpha > 0 && c.Alpha < 1):
		return apperr.InvalidField("alpha", "%g: must be between 0 and 1", c.Alpha)
	case c.Warmup < 1 || c.Warmup > 100000:
		return apperr.InvalidField("warmup", "%d: from 1 to 100000 samples", c.Warmup)
	case !(c.MinDeviation >= 0 && c.MinDeviation <= 100):
		return apperr.InvalidField("min_deviation", "%g: from 0 to 100", c.MinDeviation)
	case c.PersistWindow < 1 || c.PersistWindow > 16:
		return apperr.InvalidField("persist_window", "%d: from 1 to 16 samples", c.PersistWindow)
	case c.Persist < 1 || c.Persist > c.PersistWindow:
		return apperr.InvalidField("persist", "%d: from 1 to persist_window (%d)", c.Persist, c.PersistWindow)
	case c.PortWarmup < 1 || c.PortWarmup > 10000:
		return apperr.InvalidField("port_warmup", "%d: from 1 to 10000 reports", c.PortWarmup)
	case c.EphemeralUDPFrom < 1 || c.EphemeralUDPFrom > 65536:
		return apperr.InvalidField("ephemeral_udp_from", "%d: from 1 to 65536", c.EphemeralUDPFrom)
	case c.IdleTTL < time.Minute:
		return apperr.InvalidField("idle_ttl", "%s: at least 1m", c.IdleTTL)
	case c.MaxDevices < 1:
		return apperr.InvalidField("max_devices", "%d: at least 1", c.MaxDevices)
	}
	seen := map[string]bool{}
	for i, m := range c.Metrics {
		field := func(f string) string { return "metrics[" + strconv.Itoa(i) + "]." + f }
		switch {
		case m.Name == "" || len(m.Name) > 64 || seen[m.Name]:
			return apperr.InvalidField(field("name"), "%q: 1 to 64 bytes, each metric once", m.Name)
		case m.Behaviour == "" || len(m.Behaviour) > 64:
			return apperr.InvalidField(field("behaviour"), "1 to 64 characters")
		case !slices.Contains(severities, m.Severity):
			return apperr.InvalidField(field("severity"), "%q: critical, high, medium or low", m.Severity)
		case !(m.Floor >= 0) || math.IsInf(m.Floor, 0):
			return apperr.InvalidField(field("floor"), "%g: a finite number, at least 0", m.Floor)
		}
		seen[m.Name] = true
	}
	return nil
}

// Observation is what one device's metrics were at one time: a broker
// sample or an agent report.
type Observation struct {
	DeviceID string
	Time     time.Time
	// Values by metric name, as telemetry stores them: counters as their
	// change over Interval, gauges as they are. Metrics the Config does not
	// watch are ignored.
	Values map[string]float64
	// Interval is the time the counters cover; when it is 0 (an agent's
	// first report) counters are skipped and gauges still count.
	Interval time.Duration
}

// Port is a listening socket as the agent reports it.
type Port struct {
	Proto string `json:"proto"` // "tcp" or "udp"
	Addr  string `json:"addr"`  // the local address: "0.0.0.0", "::", "127.0.0.1"…
	Port  uint16 `json:"port"`
}

// series is the baseline of one (device, metric).
type series struct {
	n         int     // samples learned
	mean, dev float64 // EWMA of the value and of its absolute deviation
	// hits holds whether each of the last PersistWindow samples (after
	// the warm-up) was above the threshold, the newest in bit 0.
	hits uint16
}

type portKey struct {
	proto string
	port  uint16
}

// deviceState is everything known of one device.
type deviceState struct {
	lastSeen    time.Time
	series      map[string]*series
	ports       map[portKey]bool
	portReports int
}

// Detector keeps a baseline per device and metric and signals surges and
// new listening ports. Its memory is bounded: devices idle for IdleTTL are
// forgotten, and at most MaxDevices are tracked. It is safe for concurrent
// use.
type Detector struct {
	cfg     Config
	metrics map[string]Metric

	mu      sync.Mutex
	devices map[string]*deviceState
	now     time.Time // the newest observation time: the detector's clock
	swept   time.Time // when idle devices were last looked for
	// dirty and gone are the devices observed and forgotten since the
	// last Changes (state.go).
	dirty, gone map[string]bool
}

// New returns a Detector with cfg (zero fields take defaults). Returns an
// Invalid error naming the field when cfg does not validate.
func New(cfg Config) (*Detector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	d := &Detector{cfg: cfg, metrics: map[string]Metric{}, devices: map[string]*deviceState{}, dirty: map[string]bool{}, gone: map[string]bool{}}
	for _, m := range cfg.Metrics {
		d.metrics[m.Name] = m
	}
	return d, nil
}

// Config returns the detector's configuration, defaults filled in.
func (d *Detector) Config() Config { return d.cfg }

// Devices returns how many devices the detector tracks.
func (d *Detector) Devices() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.devices)
}

// Observe learns an observation and returns the signals it triggers: one
// per watched metric that is above its device's threshold now and in
// Persist of the last PersistWindow samples. Values that are negative or
// not finite are skipped.
func (d *Detector) Observe(o Observation) []alert.Signal {
	if o.DeviceID == "" || o.Time.IsZero() {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	dev := d.device(o.DeviceID, o.Time)
	names := make([]string, 0, len(o.Values))
	for name := range o.Values {
		if _, ok := d.metrics[name]; ok {
			names = append(names, name)
		}
	}
	sort.Strings(names) // signals in a stable order
	var out []alert.Signal
	for _, name := range names {
		m, v := d.metrics[name], o.Values[name]
		if m.Counter {
			if o.Interval <= 0 {
				continue
			}
			v /= o.Interval.Seconds()
		}
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		s := dev.series[name]
		if s == nil {
			s = &series{}
			dev.series[name] = s
		}
		if sig, ok := d.learn(s, m, v); ok {
			sig.Time, sig.DeviceID = o.Time, o.DeviceID
			out = append(out, sig)
		}
	}
	return out
}

// learn tests v against s's baseline, then folds it into the baseline.
// A value above the threshold is learned as the threshold (winsorized), so
// a surge raises the baseline only gradually: with the defaults a lasting
// tenfold rise keeps signalling for about 40 samples before it is the new
// normal.
func (d *Detector) learn(s *series, m Metric, v float64) (alert.Signal, bool) {
	c := d.cfg
	var sig alert.Signal
	fired := false
	if s.n >= c.Warmup {
		dev := max(s.dev, c.MinDeviation*s.mean)
		threshold := max(s.mean+c.Sigma*dev, m.Floor)
		over := v > threshold
		s.hits = s.hits << 1 & (1<<c.PersistWindow - 1)
		if over {
			s.hits |= 1
		}
		if hits := bits.OnesCount16(s.hits); over && hits >= c.Persist {
			fired = true
			sig = alert.Signal{Detector: DetectorName, Behaviour: m.Behaviour, Severity: m.Severity, Score: v, Threshold: threshold,
				Explanation: fmt.Sprintf("%s at %s %s, above the threshold in %d of the last %d samples; baseline %s ± %s, threshold %s (mean + %g × deviation, floor %s)",
					m.Name, num(v), m.Unit, hits, c.PersistWindow, num(s.mean), num(s.dev), num(threshold), c.Sigma, num(m.Floor))}
		}
		if over {
			v = threshold
		}
	}
	s.n++
	a := max(c.Alpha, 1/float64(s.n))
	diff := v - s.mean
	if s.n == 1 {
		s.mean = v
		return sig, fired
	}
	s.mean += a * diff
	s.dev += a * (math.Abs(diff) - s.dev)
	return sig, fired
}

// ObservePorts learns the listening ports an agent reported and returns a
// new_listening_port signal for each one the device had not listened on
// since its first PortWarmup reports. Listeners on a loopback address and
// UDP sockets at EphemeralUDPFrom or above are ignored.
func (d *Detector) ObservePorts(deviceID string, at time.Time, ports []Port) []alert.Signal {
	if deviceID == "" || at.IsZero() {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	dev := d.device(deviceID, at)
	dev.portReports++
	learning := dev.portReports <= d.cfg.PortWarmup
	var out []alert.Signal
	for _, p := range ports {
		if p.Proto == "udp" && int(p.Port) >= d.cfg.EphemeralUDPFrom {
			continue
		}
		if a, err := netip.ParseAddr(p.Addr); err == nil && a.Unmap().IsLoopback() {
			continue
		}
		k := portKey{p.Proto, p.Port}
		if dev.ports[k] {
			continue
		}
		if len(dev.ports) < maxKnownPorts {
			dev.ports[k] = true
		}
		if learning {
			continue
		}
		out = append(out, alert.Signal{Time: at, Detector: DetectorName, Behaviour: BehaviourNewListeningPort, Severity: alert.SeverityHigh,
			DeviceID: deviceID, Peer: fmt.Sprintf("%s/%d", p.Proto, p.Port),
			Explanation: fmt.Sprintf("now listening on %s %s port %d, which it did not in %d earlier reports: a backdoor or an enabled service",
				p.Addr, p.Proto, p.Port, dev.portReports-1)})
	}
	return out
}

// device returns the state of id, created if new, and moves the clock to
// at. It forgets idle devices every IdleTTL/8 of observation time and the
// longest idle sixteenth when MaxDevices are tracked. d.mu is held.
func (d *Detector) device(id string, at time.Time) *deviceState {
	if at.After(d.now) {
		d.now = at
	}
	if d.now.Sub(d.swept) >= d.cfg.IdleTTL/8 {
		d.swept = d.now
		for k, dev := range d.devices {
			if d.now.Sub(dev.lastSeen) > d.cfg.IdleTTL {
				d.forget(k)
			}
		}
	}
	dev := d.devices[id]
	if dev == nil {
		dev = &deviceState{series: map[string]*series{}, ports: map[portKey]bool{}}
		d.add(id, dev)
	}
	if at.After(dev.lastSeen) {
		dev.lastSeen = at
	}
	d.dirty[id] = true
	return dev
}

// add tracks a new device, forgetting the longest idle sixteenth first
// when MaxDevices are tracked. d.mu is held.
func (d *Detector) add(id string, dev *deviceState) {
	if len(d.devices) >= d.cfg.MaxDevices {
		d.evictOldest(max(1, len(d.devices)/16))
	}
	d.devices[id] = dev
}

// forget removes device id. d.mu is held.
func (d *Detector) forget(id string) {
	delete(d.devices, id)
	delete(d.dirty, id)
	d.gone[id] = true
}

// evictOldest forgets the n devices seen longest ago. d.mu is held.
func (d *Detector) evictOldest(n int) {
	ids := make([]string, 0, len(d.devices))
	for id := range d.devices {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return d.devices[ids[i]].lastSeen.Before(d.devices[ids[j]].lastSeen) })
	for _, id := range ids[:min(n, len(ids))] {
		d.forget(id)
	}
}

// num formats a value for an explanation: whole numbers from 100 up, three
// significant digits below.
func num(v float64) string {
	if math.Abs(v) >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}
