package metricdetect

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/alert"
	"github.com/fleetward/fleetward/internal/apperr"
)

var t0 = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

// feed observes one metric's series for a device, one sample every 10 s
// (counters are per 10 s interval), and returns the signals by sample index.
func feed(t *testing.T, d *Detector, device, metric string, values []float64) map[int][]alert.Signal {
	t.Helper()
	out := map[int][]alert.Signal{}
	for i, v := range values {
		sigs := d.Observe(Observation{DeviceID: device, Time: t0.Add(time.Duration(i) * 10 * time.Second),
			Values: map[string]float64{metric: v}, Interval: 10 * time.Second})
		if len(sigs) > 0 {
			out[i] = sigs
		}
	}
	return out
}

func newDetector(t *testing.T, cfg Config) *Detector {
	t.Helper()
	d, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return d
}

// noisy returns n values around mean with normal noise of relative sd.
func noisy(r *rand.Rand, n int, mean, sd float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = max(0, math.Round(mean*(1+sd*r.NormFloat64())))
	}
	return out
}

func constant(n int, v float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func concat(parts ...[]float64) []float64 {
	var out []float64
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func firstIndex(m map[int][]alert.Signal) int {
	first := -1
	for i := range m {
		if first < 0 || i < first {
			first = i
		}
	}
	return first
}

func TestASteadyNoisySeriesNeverSignals(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct {
		name, metric string
		mean, sd     float64
	}{
		// Per 10 s interval; the floors are per second.
		{"a chatty sensor's messages with 30% noise", "messages_in", 200, 0.3},
		{"a camera's bytes with 40% noise", "delta_bytes_out", 5e6, 0.4},
		{"a gateway's remote addresses with 25% noise", "remote_addresses_count", 40, 0.25},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := newDetector(t, Config{})
			if got := feed(t, d, "dev", c.metric, noisy(r, 5000, c.mean, c.sd)); len(got) != 0 {
				i := firstIndex(got)
				t.Fatalf("%d samples signalled, the first at %d: %s", len(got), i, got[i][0].Explanation)
			}
		})
	}
}

func TestAOneOffSpikeDoesNotSignal(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	base := noisy(r, 60, 100, 0.2) // 10 msg/s
	for _, c := range []struct {
		name   string
		spikes []int // indices after the baseline, each 50 times the mean
	}{
		{"one spike", []int{0}},
		{"two spikes within the persistence window", []int{0, 3}},
		{"spikes two apart, never three within five samples", []int{0, 4, 8, 12}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tail := noisy(r, 20, 100, 0.2)
			for _, i := range c.spikes {
				tail[i] = 5000
			}
			d := newDetector(t, Config{})
			if got := feed(t, d, "dev", "messages_in", concat(base, tail)); len(got) != 0 {
				t.Fatalf("spikes signalled: %+v", got)
			}
		})
	}
}

func TestASustainedSurgeSignalsOnItsThirdSample(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	d := newDetector(t, Config{})
	series := concat(noisy(r, 60, 50, 0.2), constant(10, 2000)) // 5 msg/s, then 200 msg/s
	got := feed(t, d, "th-1", "messages_in", series)
	if first := firstIndex(got); first != 62 {
		t.Fatalf("first signal at sample %d, want 62 (the third of the surge: 3 of 5 samples)", first)
	}
	for i := 62; i < 70; i++ {
		if len(got[i]) != 1 {
			t.Fatalf("sample %d: %d signals, want one per surging sample once persistent", i, len(got[i]))
		}
	}
	s := got[62][0]
	if s.Detector != "metric" || s.Behaviour != BehaviourMessageSurge || s.DeviceID != "th-1" || s.Severity != alert.SeverityMedium ||
		s.Score != 200 || s.Threshold < 10 || s.Threshold > 20 || !s.Time.Equal(t0.Add(620*time.Second)) || s.SrcIP != "" {
		t.Errorf("signal = %+v; want a medium message_surge of th-1 scoring 200 msg/s against a threshold of 10 to 20", s)
	}
	if err := s.Validate(); err != nil {
		t.Errorf("the signal does not validate: %v", err)
	}
	t.Logf("explanation: %s", s.Explanation)
}

func TestEveryWatchedMetricSignalsItsBehaviour(t *testing.T) {
	for _, m := range DefaultMetrics {
		t.Run(m.Name, func(t *testing.T) {
			d := newDetector(t, Config{})
			per := 1.0
			if m.Counter {
				per = 10 // values per 10 s interval
			}
			base := m.Floor * per / 4
			got := feed(t, d, "dev", m.Name, concat(constant(40, base), constant(5, 20*base)))
			if len(got) == 0 || got[firstIndex(got)][0].Behaviour != m.Behaviour || got[firstIndex(got)][0].Severity != m.Severity {
				t.Fatalf("a twentyfold surge of %s gave %+v, want a %s %s signal", m.Name, got, m.Severity, m.Behaviour)
			}
		})
	}
}

func TestTheFloorKeepsSmallDevicesQuiet(t *testing.T) {
	// One message per 10 s, then three: triple the baseline, and 0.3 msg/s,
	// below the floor of 1 msg/s.
	d := newDetector(t, Config{})
	if got := feed(t, d, "dev", "messages_in", concat(constant(60, 1), constant(30, 3))); len(got) != 0 {
		t.Fatalf("1 to 3 messages per interval signalled: %s", got[firstIndex(got)][0].Explanation)
	}
	// The floor is per second: the same 30 messages are 3 msg/s over 10 s
	// but 0.5 msg/s over a minute.
	slow := newDetector(t, Config{})
	for i := range 90 {
		v := 1.0
		if i >= 60 {
			v = 30
		}
		if sigs := slow.Observe(Observation{DeviceID: "dev", Time: t0.Add(time.Duration(i) * time.Minute),
			Values: map[string]float64{"messages_in": v}, Interval: time.Minute}); len(sigs) != 0 {
			t.Fatalf("30 messages a minute (0.5 msg/s) signalled at sample %d: %s", i, sigs[0].Explanation)
		}
	}
	fast := newDetector(t, Config{})
	if got := feed(t, fast, "dev", "messages_in", concat(constant(60, 1), constant(30, 30))); len(got) == 0 {
		t.Fatal("30 messages per 10 s (3 msg/s, thirty times the baseline) did not signal")
	}
}

func TestNoSignalDuringTheWarmup(t *testing.T) {
	series := concat(constant(10, 20), constant(15, 2000))
	if got := feed(t, newDetector(t, Config{Warmup: 30}), "dev", "messages_in", series); len(got) != 0 {
		t.Fatalf("a surge within the 30-sample warm-up signalled at sample %d", firstIndex(got))
	}
	got := feed(t, newDetector(t, Config{Warmup: 10}), "dev", "messages_in", series)
	if first := firstIndex(got); first != 12 {
		t.Fatalf("with a 10-sample warm-up the surge's first signal is at %d, want 12", first)
	}
}

func TestCountersWithoutAnIntervalAreSkippedAndGaugesAreNot(t *testing.T) {
	d := newDetector(t, Config{Warmup: 5, Persist: 1, PersistWindow: 1})
	for i := range 6 {
		v := 100.0
		if i == 5 {
			v = 1e6
		}
		sigs := d.Observe(Observation{DeviceID: "dev", Time: t0.Add(time.Duration(i) * time.Second),
			Values: map[string]float64{"delta_bytes_out": v * 1000, "remote_addresses_count": v, "not_watched": v}})
		if i < 5 && len(sigs) != 0 {
			t.Fatalf("sample %d signalled: %+v", i, sigs)
		}
		if i == 5 && (len(sigs) != 1 || sigs[0].Behaviour != BehaviourDestinationSurge) {
			t.Fatalf("the surge gave %+v; want only the gauge's destination_surge (counters need an interval)", sigs)
		}
	}
}

func TestALastingRiseBecomesTheNewNormal(t *testing.T) {
	d := newDetector(t, Config{})
	got := feed(t, d, "dev", "messages_in", concat(constant(60, 50), constant(400, 500)))
	last := 0
	for i := range got {
		last = max(last, i)
	}
	if len(got) < 20 || last > 200 {
		t.Fatalf("a lasting tenfold rise signalled %d times, the last at sample %d; want at least 20 signals and none after 200", len(got), last)
	}
	t.Logf("a lasting tenfold rise signalled for %d samples (samples 62 to %d)", len(got), last)
}

func TestNewListeningPorts(t *testing.T) {
	d := newDetector(t, Config{})
	ssh := Port{Proto: "tcp", Addr: "0.0.0.0", Port: 22}
	mqttLocal := Port{Proto: "tcp", Addr: "127.0.0.1", Port: 1883}
	coap := Port{Proto: "udp", Addr: "::", Port: 5683}
	reports := []struct {
		name  string
		ports []Port
		want  []string // peers of the signals
	}{
		{"first report is learned", []Port{ssh}, nil},
		{"a service starting late is learned during the warm-up", []Port{ssh, coap}, nil},
		{"third report, still learning", []Port{ssh}, nil},
		{"known ports after the warm-up", []Port{ssh, coap}, nil},
		{"a backdoor on 4444 and telnet", []Port{ssh, {"tcp", "::", 4444}, {"tcp", "0.0.0.0", 23}, {"tcp", "::", 23}}, []string{"tcp/4444", "tcp/23"}},
		{"the backdoor again is known", []Port{ssh, {"tcp", "::", 4444}}, nil},
		{"loopback listeners and ephemeral UDP are ignored", []Port{ssh, mqttLocal, {"tcp", "::1", 8080}, {"udp", "0.0.0.0", 41000}}, nil},
		{"UDP below the ephemeral range is watched", []Port{{"udp", "0.0.0.0", 69}}, []string{"udp/69"}},
	}
	for i, r := range reports {
		sigs := d.ObservePorts("cam-1", t0.Add(time.Duration(i)*30*time.Second), r.ports)
		var peers []string
		for _, s := range sigs {
			peers = append(peers, s.Peer)
			if s.Behaviour != BehaviourNewListeningPort || s.DeviceID != "cam-1" || s.Severity != alert.SeverityHigh || s.Validate() != nil {
				t.Errorf("%s: signal %+v", r.name, s)
			}
		}
		if len(peers) != len(r.want) || (len(peers) > 0 && (peers[0] != r.want[0] || peers[len(peers)-1] != r.want[len(r.want)-1])) {
			t.Errorf("report %d (%s): signals for %v, want %v", i, r.name, peers, r.want)
		}
	}
	// Another device has its own warm-up and ports.
	if sigs := d.ObservePorts("cam-2", t0, []Port{{"tcp", "0.0.0.0", 4444}}); len(sigs) != 0 {
		t.Errorf("a new device's first report signalled: %+v", sigs)
	}
}

func TestIdleDevicesAreForgotten(t *testing.T) {
	d := newDetector(t, Config{IdleTTL: time.Hour, Warmup: 5})
	feed(t, d, "old", "messages_in", constant(10, 50))
	d.ObservePorts("old", t0, []Port{{"tcp", "0.0.0.0", 22}})
	if n := d.Devices(); n != 1 {
		t.Fatalf("Devices = %d, want 1", n)
	}
	// Two hours later another device reports: the idle one is forgotten.
	later := t0.Add(2 * time.Hour)
	d.Observe(Observation{DeviceID: "new", Time: later, Values: map[string]float64{"messages_in": 5}, Interval: 10 * time.Second})
	if _, ok := d.devices["old"]; ok || d.Devices() != 1 {
		t.Fatalf("after two idle hours the device is still tracked (%d devices)", d.Devices())
	}
	// When it returns it learns again: a surge at once is not a signal.
	for i := range 5 {
		sigs := d.Observe(Observation{DeviceID: "old", Time: later.Add(time.Duration(i) * 10 * time.Second),
			Values: map[string]float64{"messages_in": 5000}, Interval: 10 * time.Second})
		if len(sigs) != 0 {
			t.Fatalf("a forgotten device signalled before learning again: %+v", sigs)
		}
	}
}

func TestTheLongestIdleDevicesGoFirstAtMaxDevices(t *testing.T) {
	d := newDetector(t, Config{MaxDevices: 32})
	for i := range 100 {
		id := "dev-" + string(rune('A'+i/26)) + string(rune('a'+i%26))
		d.Observe(Observation{DeviceID: id, Time: t0.Add(time.Duration(i) * time.Second), Values: map[string]float64{"messages_in": 1}, Interval: time.Second})
		if n := d.Devices(); n > 32 {
			t.Fatalf("%d devices tracked after %d, want at most 32", n, i+1)
		}
	}
	newest := "dev-" + string(rune('A'+99/26)) + string(rune('a'+99%26))
	if _, ok := d.devices[newest]; !ok {
		t.Error("the newest device was evicted")
	}
	if _, ok := d.devices["dev-Aa"]; ok {
		t.Error("the oldest device is still tracked")
	}
}

func TestConfigValidateNamesTheField(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("the zero Config (all defaults) = %v", err)
	}
	for _, c := range []struct {
		field string
		cfg   Config
	}{
		{"sigma", Config{Sigma: -1}},
		{"sigma", Config{Sigma: math.NaN()}},
		{"alpha", Config{Alpha: 1}},
		{"warmup", Config{Warmup: -3}},
		{"min_deviation", Config{MinDeviation: -0.1}},
		{"persist_window", Config{PersistWindow: 17}},
		{"persist", Config{Persist: 6}},
		{"ephemeral_udp_from", Config{EphemeralUDPFrom: 70000}},
		{"idle_ttl", Config{IdleTTL: time.Second}},
		{"max_devices", Config{MaxDevices: -1}},
		{"metrics[0].name", Config{Metrics: []Metric{{Behaviour: "x", Severity: "low"}}}},
		{"metrics[1].name", Config{Metrics: []Metric{{Name: "a", Behaviour: "x", Severity: "low"}, {Name: "a", Behaviour: "x", Severity: "low"}}}},
		{"metrics[0].severity", Config{Metrics: []Metric{{Name: "a", Behaviour: "x", Severity: "loud"}}}},
		{"metrics[0].floor", Config{Metrics: []Metric{{Name: "a", Behaviour: "x", Severity: "low", Floor: math.Inf(1)}}}},
	} {
		err := c.cfg.Validate()
		if e := apperr.As(err); e == nil || e.Field != c.field {
			t.Errorf("Validate(%+v) = %v, want Invalid naming %q", c.cfg, err, c.field)
		}
		if _, err := New(c.cfg); err == nil {
			t.Errorf("New accepted %+v", c.cfg)
		}
	}
}

// BenchmarkObserve measures one broker sample of a fleet of 10,000 devices
// after their warm-up: the detector's cost per device and interval.
func BenchmarkObserve(b *testing.B) {
	d, _ := New(Config{Warmup: 1})
	const fleet = 10000
	ids := make([]string, fleet)
	for i := range ids {
		ids[i] = "dev-" + strconv.Itoa(i)
	}
	values := map[string]float64{"messages_in": 12, "bytes_in": 3000, "messages_out": 1, "bytes_out": 80, "max_message_size": 256}
	b.ResetTimer()
	for i := range b.N {
		d.Observe(Observation{DeviceID: ids[i%fleet], Time: t0.Add(time.Duration(i/fleet) * 10 * time.Second), Values: values, Interval: 10 * time.Second})
	}
	b.ReportMetric(float64(d.Devices()), "devices")
}
