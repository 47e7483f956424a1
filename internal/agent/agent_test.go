package agent

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/fleetward/fleetward/internal/alert"
)

// subscriber is a backend MQTT client over mutual TLS that records what it
// receives on devices/+/telemetry, inventory, signals, scores and sensor.
type subscriber struct {
	mu        sync.Mutex
	telemetry []Telemetry
	inventory []Inventory
	signals   []alert.SignalReport
	scores    []alert.ScoreReport
	summaries []SensorSummary
	sizes     map[string]int // largest payload by topic kind
	client    *paho.Client
}

func subscribe(t *testing.T, pki *testPKI, addr string) *subscriber {
	t.Helper()
	s := &subscriber{sizes: map[string]int{}}
	conn, err := tls.Dial("tcp", addr, &tls.Config{
		RootCAs:      pki.roots,
		Certificates: []tls.Certificate{pki.clientCert(t, "backend-1")},
		MinVersion:   tls.VersionTLS13,
	})
	if err != nil {
		t.Fatalf("subscriber dial %s: %v", addr, err)
	}
	s.client = paho.NewClient(paho.ClientConfig{
		Conn:     packets.NewThreadSafeConn(conn),
		ClientID: "backend-1",
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			kind := pr.Packet.Topic[strings.LastIndexByte(pr.Packet.Topic, '/')+1:]
			s.sizes[kind] = max(s.sizes[kind], len(pr.Packet.Payload))
			switch {
			case strings.HasSuffix(pr.Packet.Topic, "/signals"):
				var rep alert.SignalReport
				if err := json.Unmarshal(pr.Packet.Payload, &rep); err != nil {
					t.Errorf("signals are not JSON: %v", err)
				}
				s.signals = append(s.signals, rep)
			case strings.HasSuffix(pr.Packet.Topic, "/scores"):
				var rep alert.ScoreReport
				if err := json.Unmarshal(pr.Packet.Payload, &rep); err != nil {
					t.Errorf("score summaries are not JSON: %v", err)
				}
				s.scores = append(s.scores, rep)
			case strings.HasSuffix(pr.Packet.Topic, "/sensor"):
				var sum SensorSummary
				if err := json.Unmarshal(pr.Packet.Payload, &sum); err != nil {
					t.Errorf("sensor summary is not JSON: %v", err)
				}
				s.summaries = append(s.summaries, sum)
			case strings.HasSuffix(pr.Packet.Topic, "/telemetry"):
				var tm Telemetry
				if err := json.Unmarshal(pr.Packet.Payload, &tm); err != nil {
					t.Errorf("telemetry is not JSON: %v", err)
				}
				s.telemetry = append(s.telemetry, tm)
			case strings.HasSuffix(pr.Packet.Topic, "/inventory"):
				var inv Inventory
				if err := json.Unmarshal(pr.Packet.Payload, &inv); err != nil {
					t.Errorf("inventory is not JSON: %v", err)
				}
				s.inventory = append(s.inventory, inv)
			}
			return true, nil
		}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if ca, err := s.client.Connect(ctx, &paho.Connect{ClientID: "backend-1", CleanStart: true, KeepAlive: 30}); err != nil {
		t.Fatalf("subscriber connect: %v (%+v)", err, ca)
	}
	if _, err := s.client.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{
		{Topic: "devices/+/telemetry", QoS: 1},
		{Topic: "devices/+/inventory", QoS: 1},
		{Topic: "devices/+/signals", QoS: 1},
		{Topic: "devices/+/scores", QoS: 1},
		{Topic: "devices/+/sensor", QoS: 1},
	}}); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	t.Cleanup(func() { _ = s.client.Disconnect(&paho.Disconnect{}) })
	return s
}

func (s *subscriber) seqs() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]uint64, len(s.telemetry))
	for i, tm := range s.telemetry {
		out[i] = tm.Seq
	}
	return out
}

func (s *subscriber) inventories() []Inventory {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Inventory(nil), s.inventory...)
}

// spooledTelemetrySeqs reads the sequence numbers of the telemetry waiting
// in an agent's spool directory, oldest first.
func spooledTelemetrySeqs(t *testing.T, dir string) []uint64 {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	var out []uint64
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // sent and removed meanwhile
		}
		var se SpoolEntry
		if json.Unmarshal(data, &se) != nil || !strings.HasSuffix(se.Topic, "/telemetry") {
			continue
		}
		var tm Telemetry
		if json.Unmarshal(se.Payload, &tm) == nil {
			out = append(out, tm.Seq)
		}
	}
	return out
}

func TestAgentReportsToTheBrokerSpoolsWhileOfflineAndReconnectsWithItsRenewedCertificate(t *testing.T) {
	pki := newTestPKI(t)
	est := startESTServer(t, pki, map[string]string{"sensor-9": "tok-9"})
	auth := &testAuthority{}
	b1 := startBroker(t, pki, auth, "127.0.0.1:0")
	addr := b1.Addr()
	sub1 := subscribe(t, pki, addr)

	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "app.conf")
	if err := os.WriteFile(cfgFile, []byte("mode=test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{
		DeviceID:    "sensor-9",
		Server:      est.srv.URL,
		Token:       "tok-9",
		DataDir:     filepath.Join(dir, "agent"),
		MQTTAddr:    addr,
		Trust:       ServerTrust{Fingerprint: pki.serverFP},
		Interval:    100 * time.Millisecond,
		Firmware:    "1.2.3",
		ConfigFiles: []string{cfgFile},
		BackoffMin:  100 * time.Millisecond,
		BackoffMax:  400 * time.Millisecond,
		Log:         testLog(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	runAgent(t, a)

	if !eventually(10*time.Second, func() bool { return len(sub1.inventories()) > 0 && len(sub1.seqs()) >= 3 }) {
		t.Fatalf("subscriber got %d inventories and %d telemetry reports, want 1 and 3", len(sub1.inventories()), len(sub1.seqs()))
	}
	inv := sub1.inventories()[0]
	if inv.DeviceID != "sensor-9" || inv.Firmware != "1.2.3" || inv.Kernel == "" || len(inv.ConfigDigest) != 64 || inv.ConfigDigest != ConfigDigest([]string{cfgFile}) {
		t.Errorf("inventory = %+v", inv)
	}
	sessions := b1.Sessions()
	var found bool
	for _, s := range sessions {
		if s.DeviceID == "sensor-9" {
			found = true
			if s.ClientID != "sensor-9" || s.TLSVersion != "TLS 1.3" {
				t.Errorf("agent session = %+v, want client id sensor-9 over TLS 1.3", s)
			}
		}
	}
	if !found {
		t.Errorf("no broker session for sensor-9 in %+v", sessions)
	}

	// The broker goes away; reports pile up in the spool. When it is back
	// it refuses the agent until the backend has subscribed again, so that
	// nothing is sent before anyone listens.
	auth.setRefused("sensor-9", true)
	b1.Close()
	spoolDir := filepath.Join(dir, "agent", "spool")
	if !eventually(10*time.Second, func() bool { return len(spooledTelemetrySeqs(t, spoolDir)) >= 4 }) {
		t.Fatalf("only %d reports spooled while offline", a.Spooled())
	}
	firstOffline := spooledTelemetrySeqs(t, spoolDir)[0]

	// The certificate is renewed meanwhile (the EST server is still up);
	// the reconnection must present the new one.
	if err := a.renew(context.Background()); err != nil {
		t.Fatalf("renew while offline: %v", err)
	}
	renewedSerial := hex.EncodeToString(a.Certificate().SerialNumber.Bytes())

	b2 := startBroker(t, pki, auth, addr)
	sub2 := subscribe(t, pki, b2.Addr())
	auth.setRefused("sensor-9", false)

	want := firstOffline + 6
	if !eventually(15*time.Second, func() bool {
		s := sub2.seqs()
		return len(s) > 0 && s[len(s)-1] >= want
	}) {
		t.Fatalf("after the broker came back the subscriber got %v; want reports through %d", sub2.seqs(), want)
	}
	var serial string
	for _, s := range b2.Sessions() {
		if s.DeviceID == "sensor-9" {
			serial = s.Serial
		}
	}
	if serial != renewedSerial {
		t.Errorf("agent reconnected with certificate %q, want the renewed %s", serial, renewedSerial)
	}
	// QoS 1 may repeat a report whose PUBACK was lost with the broker;
	// apart from such repeats, every report arrives once and in order,
	// starting no later than the first one spooled while offline.
	got := sub2.seqs()
	var dedup []uint64
	for _, s := range got {
		if len(dedup) == 0 || s != dedup[len(dedup)-1] {
			dedup = append(dedup, s)
		}
	}
	if dedup[0] > firstOffline {
		t.Errorf("first report after reconnecting is %d, but %d was spooled while offline: %v", dedup[0], firstOffline, got)
	}
	for i := 1; i < len(dedup); i++ {
		if dedup[i] != dedup[i-1]+1 {
			t.Fatalf("reports out of order or missing after reconnecting: %v", got)
		}
	}
}
