package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/alert"
	"github.com/fleetward/fleetward/internal/detect"
)

// telnetScan sends one TCP SYN to port 23 of each of n loopback addresses
// (127.0.0.2 on), as a Mirai-infected device probes random hosts: every
// SYN leaves from 127.0.0.1 and is answered by a reset at once.
func telnetScan(n int) {
	for i := range n {
		c, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.%d:23", i+2), 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
	}
}

// TestEdgeSensorPublishesSignalsAndSummariesOnly runs the agent with its
// edge sensor on lo against a real broker, makes a Telnet scan on lo, and
// checks that the backend receives the rule's signal on
// devices/{id}/signals and summaries on devices/{id}/sensor, and nothing
// that carries packets or per-packet scores. Root only (AF_PACKET).
func TestEdgeSensorPublishesSignalsAndSummariesOnly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("AF_PACKET capture needs root")
	}
	t.Run("with the anomaly model", func(t *testing.T) { testEdgeSensor(t, false, false) })
	t.Run("with the rules only", func(t *testing.T) { testEdgeSensor(t, true, false) })
	t.Run("while the broker is away", func(t *testing.T) { testEdgeSensor(t, false, true) })
}

// testEdgeSensor runs the scenario; with offline the broker is stopped
// before the scan and started again once the signals are in the spool.
func testEdgeSensor(t *testing.T, rulesOnly, offline bool) {
	pki := newTestPKI(t)
	est := startESTServer(t, pki, map[string]string{"sensor-edge": "tok-e"})
	auth := &testAuthority{}
	b := startBroker(t, pki, auth, "127.0.0.1:0")
	sub := subscribe(t, pki, b.Addr())
	dataDir := filepath.Join(t.TempDir(), "agent")
	a, err := New(Config{
		DeviceID: "sensor-edge",
		Server:   est.srv.URL,
		Token:    "tok-e",
		DataDir:  dataDir,
		MQTTAddr: b.Addr(),
		Trust:    ServerTrust{Fingerprint: pki.serverFP},
		Interval: time.Hour, // telemetry is not what this test is about
		Sensor: &SensorConfig{Interface: "lo", FMGrace: 20, ADGrace: 50, RulesOnly: rulesOnly,
			BatchDelay: 100 * time.Millisecond, SummaryInterval: 200 * time.Millisecond, ScoreInterval: 300 * time.Millisecond},
		BackoffMin: 100 * time.Millisecond,
		BackoffMax: 400 * time.Millisecond,
		Log:        testLog(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	runAgent(t, a)
	if !eventually(10*time.Second, func() bool {
		sub.mu.Lock()
		defer sub.mu.Unlock()
		return len(sub.summaries) > 0
	}) {
		t.Fatal("no sensor summary within 10 s")
	}

	subs := []*subscriber{sub}
	if offline {
		auth.setRefused("sensor-edge", true)
		b.Close()
		// The scan starts once nothing listens at the broker's address.
		if !eventually(5*time.Second, func() bool {
			c, err := net.DialTimeout("tcp", b.Addr(), 100*time.Millisecond)
			if err == nil {
				c.Close()
			}
			return err != nil
		}) {
			t.Fatal("the broker still accepts connections after Close")
		}
	}
	telnetScan(12)
	if offline {
		if !eventually(10*time.Second, func() bool { return spooledTopics(t, filepath.Join(dataDir, "spool"))["signals"] > 0 }) {
			t.Fatalf("no signals spooled while the broker was away: %v", spooledTopics(t, filepath.Join(dataDir, "spool")))
		}
		b = startBroker(t, pki, auth, b.Addr())
		sub = subscribe(t, pki, b.Addr())
		subs = append(subs, sub)
		auth.setRefused("sensor-edge", false)
	}
	// The signal may reach either broker: the one that closed, had it taken
	// the report before it went, or the one after it.
	var scan alert.Signal
	if !eventually(10*time.Second, func() bool {
		for _, sb := range subs {
			sb.mu.Lock()
			for _, rep := range sb.signals {
				for _, sig := range rep.Signals {
					if sig.Behaviour == "telnet_scan" && sig.SrcIP == "127.0.0.1" {
						scan = sig
					}
				}
			}
			sb.mu.Unlock()
		}
		return scan.Behaviour != ""
	}) {
		sub.mu.Lock()
		t.Fatalf("no telnet_scan signal from 127.0.0.1 published within 10 s; got %+v", sub.signals)
	}
	if err := scan.Validate(); err != nil || scan.Detector != "rule" || !strings.Contains(scan.Explanation, "23/2323") {
		t.Errorf("telnet scan signal = %+v (%v)", scan, err)
	}

	// A later summary counts the scan: packets, the signal and its alert.
	var last SensorSummary
	if !eventually(10*time.Second, func() bool {
		sub.mu.Lock()
		defer sub.mu.Unlock()
		if len(sub.summaries) == 0 {
			return false
		}
		last = sub.summaries[len(sub.summaries)-1]
		return last.Signals > 0 && last.Alerts > 0 && last.Packets >= 24 && last.Decode.Packets > 0
	}) {
		t.Fatalf("latest sensor summary does not count the scan: %+v", last)
	}
	if last.DeviceID != "sensor-edge" || last.Interface != "lo" || last.RulesOnly != rulesOnly || last.Time.IsZero() || (rulesOnly && (last.Trained || last.TrainingPackets > 0)) || last.CaptureMode != detect.CaptureRing {
		t.Errorf("summary = %+v", last)
	}

	// The model's per-source score summaries (not per-packet scores) go
	// on devices/{id}/scores once it is trained; the rules alone have none.
	if !rulesOnly {
		var sum alert.ScoreSummary
		if !eventually(10*time.Second, func() bool {
			sub.mu.Lock()
			defer sub.mu.Unlock()
			for _, rep := range sub.scores {
				for _, s := range rep.Summaries {
					if s.SrcIP == "127.0.0.1" {
						sum = s
						return true
					}
				}
			}
			return false
		}) {
			t.Fatal("no score summary of 127.0.0.1 within 10 s")
		}
		if err := sum.Validate(); err != nil || sum.Packets == 0 || sum.Threshold <= 0 {
			t.Errorf("score summary = %+v (%v)", sum, err)
		}
	}

	sub.mu.Lock()
	defer sub.mu.Unlock()
	if rulesOnly && len(sub.scores) > 0 {
		t.Errorf("a rules-only sensor sent score summaries: %+v", sub.scores)
	}
	for kind, n := range sub.sizes {
		switch kind {
		case "signals", "scores", "sensor":
			if n > maxSignalPayload {
				t.Errorf("a %s message of %d bytes exceeds %d", kind, n, maxSignalPayload)
			}
		case "telemetry", "inventory":
		default:
			t.Errorf("the agent published on devices/sensor-edge/%s", kind)
		}
	}
	// A summary holds counters, not lists of packets or scores.
	raw, _ := json.Marshal(last)
	var fields map[string]any
	json.Unmarshal(raw, &fields)
	for k, v := range fields {
		if _, list := v.([]any); list || strings.Contains(k, "payload") {
			t.Errorf("summary field %q = %v", k, v)
		}
	}
}

// TestEdgeSensorSplitsLargeBatchesUnderThePacketLimit queues a batch whose
// JSON is far larger than one MQTT message may be and checks that it
// reaches the spool as several messages, each under the limit, holding
// every signal once and in order.
func TestEdgeSensorSplitsLargeBatchesUnderThePacketLimit(t *testing.T) {
	a, err := New(Config{DeviceID: "cam-split", Server: "https://127.0.0.1:1", DataDir: t.TempDir(), Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	s := &sensor{agent: a}
	var sigs []alert.Signal
	for i := range 300 {
		sigs = append(sigs, alert.Signal{Time: time.Unix(1700000000, 0).UTC(), Detector: "rule", Behaviour: "port_scan",
			Severity: alert.SeverityMedium, SrcIP: "10.0.0.9", Peer: fmt.Sprintf("10.0.0.7:%d", i),
			Explanation: strings.Repeat("x", 400)})
	}
	if err := s.queueSignals(context.Background(), sigs); err != nil {
		t.Fatal(err)
	}
	var got []string
	messages := 0
	for {
		e, ok := a.spool.Oldest()
		if !ok {
			break
		}
		messages++
		if e.Topic != "devices/cam-split/signals" || len(e.Payload) > maxSignalPayload {
			t.Errorf("spooled %s of %d bytes", e.Topic, len(e.Payload))
		}
		valid, bad, err := alert.ParseSignalReport(e.Payload)
		if err != nil || len(bad) > 0 {
			t.Fatalf("spooled report does not parse: %v %v", err, bad)
		}
		for _, sig := range valid {
			got = append(got, sig.Peer)
		}
		a.spool.Remove(e.Seq)
	}
	if messages < 4 || len(got) != len(sigs) {
		t.Fatalf("%d signals in %d messages, want %d in at least 4", len(got), messages, len(sigs))
	}
	for i, p := range got {
		if p != sigs[i].Peer {
			t.Fatalf("signal %d is %s, want %s", i, p, sigs[i].Peer)
		}
	}
}

func TestSensorConfigNamesTheBadField(t *testing.T) {
	for _, tt := range []struct {
		name  string
		cfg   SensorConfig
		field string
	}{
		{"no interface", SensorConfig{}, "sensor"},
		{"negative feature-mapping grace", SensorConfig{Interface: "eth0", FMGrace: -1}, "sensor_fm"},
		{"negative training grace", SensorConfig{Interface: "eth0", ADGrace: -1}, "sensor_ad"},
		{"a model with rules only", SensorConfig{Interface: "eth0", RulesOnly: true, Model: &detect.KitNET{}}, "sensor_model"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := Config{DeviceID: "cam-1", Server: "https://127.0.0.1:1", DataDir: "d", Sensor: &tt.cfg}.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Errorf("Validate = %v, want an error naming %s", err, tt.field)
			}
		})
	}
}

// spooledTopics counts the messages waiting in a spool directory by topic
// kind.
func spooledTopics(t *testing.T, dir string) map[string]int {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	out := map[string]int{}
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // sent and removed meanwhile
		}
		var se SpoolEntry
		if json.Unmarshal(data, &se) == nil {
			out[se.Topic[strings.LastIndexByte(se.Topic, '/')+1:]]++
		}
	}
	return out
}

// The sensor's rule thresholds and alert settings reach its detector.
func TestSensorPassesItsRulesAndAlertSettingsToTheDetector(t *testing.T) {
	s := &sensor{cfg: SensorConfig{Interface: "lo", Rules: detect.Rules{SYNFloodRate: 7}, Anomaly: detect.AnomalyConfig{Persist: 3, Threshold: 0.5}}}
	opts := s.scoreOptions()
	if opts.Rules == nil || opts.Rules.SYNFloodRate != 7 {
		t.Errorf("rules %+v", opts.Rules)
	}
	if opts.Anomaly == nil || opts.Anomaly.Persist != 3 || opts.Anomaly.Threshold != 0.5 {
		t.Errorf("anomaly %+v", opts.Anomaly)
	}
	s.cfg.RulesOnly = true
	if opts := s.scoreOptions(); opts.Anomaly != nil || opts.Rules.SYNFloodRate != 7 {
		t.Errorf("rules only: anomaly %+v, rules %+v", opts.Anomaly, opts.Rules)
	}
}
