package broker

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/fleetward/fleetward/internal/apperr"
)

func TestSessionRecordsTLS13AndHybridPostQuantumGroup(t *testing.T) {
	tb := startBroker(t, nil)
	dev := tb.ca.device("dev-pq", "sensor")
	c := tb.dialTLS(t, dev, nil)
	if _, code := connect(t, c, "dev-pq"); code != 0 {
		t.Fatalf("CONNACK reason %#x, want success", code)
	}
	var s []Session
	if !eventually(time.Second, func() bool { s = tb.Sessions(); return len(s) == 1 }) {
		t.Fatalf("sessions: %+v", s)
	}
	got := s[0]
	if got.DeviceID != "dev-pq" || got.Class != "sensor" || got.TLSVersion != "TLS 1.3" ||
		got.Group != "X25519MLKEM768" || !got.PostQuantum || got.ProtocolVersion != 5 ||
		!strings.HasPrefix(got.Remote, "127.0.0.1:") || got.ConnectedAt.IsZero() || got.Serial == "" {
		t.Fatalf("session = %+v, want dev-pq over TLS 1.3 with X25519MLKEM768", got)
	}
}

func TestSessionRecordsClassicalGroupWhenClientOffersNoHybrid(t *testing.T) {
	tb := startBroker(t, nil)
	dev := tb.ca.device("dev-old", "sensor")
	c := tb.dialTLS(t, dev, &tls.Config{CurvePreferences: []tls.CurveID{tls.X25519}})
	connect(t, c, "dev-old")
	var s []Session
	eventually(time.Second, func() bool { s = tb.Sessions(); return len(s) == 1 })
	if len(s) != 1 || s[0].Group != "X25519" || s[0].PostQuantum {
		t.Fatalf("sessions = %+v, want one X25519 session, not post-quantum", s)
	}
}

func TestMQTT5ClientIDMismatchGetsNotAuthorized0x87(t *testing.T) {
	tb := startBroker(t, nil)
	dev := tb.ca.device("dev-a", "sensor")
	c := tb.dialTLS(t, dev, nil)
	if _, code := connect(t, c, "someone-else"); code != 0x87 {
		t.Fatalf("CONNACK reason %#x, want 0x87 not authorized", code)
	}
	if !waitClosed(c, 2*time.Second) {
		t.Fatal("connection left open after refused CONNECT")
	}
	tb.events.waitEvent(t, EventConnectDenied, "dev-a", "client id does not match")
}

func TestTLS12IsRefused(t *testing.T) {
	tb := startBroker(t, nil)
	dev := tb.ca.device("dev-a", "sensor")
	conf := &tls.Config{MaxVersion: tls.VersionTLS12, RootCAs: tb.ca.pool, ServerName: "localhost", Certificates: []tls.Certificate{dev.tls}}
	c, err := tls.Dial("tcp", tb.Addr(), conf)
	if err == nil {
		c.Close()
		t.Fatal("TLS 1.2 handshake succeeded with no legacy class configured")
	}
	tb.events.waitEvent(t, EventConnectDenied, "", "tls handshake")
}

func TestTLS12OnlyForLegacyClass(t *testing.T) {
	tb := startBroker(t, func(c *Config) {
		c.Policies["plc"] = Policy{Publish: DefaultPolicy().Publish, Subscribe: DefaultPolicy().Subscribe, Legacy: true}
	})
	plc := tb.ca.device("plc-1", "plc")
	cam := tb.ca.device("cam-1", "camera")
	tls12 := func() *tls.Config { return &tls.Config{MaxVersion: tls.VersionTLS12} }

	c := tb.dialTLS(t, plc, tls12())
	if cs := c.ConnectionState(); cs.Version != tls.VersionTLS12 || !strings.Contains(tls.CipherSuiteName(cs.CipherSuite), "GCM") && !strings.Contains(tls.CipherSuiteName(cs.CipherSuite), "CHACHA20") {
		t.Fatalf("legacy handshake: version %x suite %s, want TLS 1.2 AEAD", cs.Version, tls.CipherSuiteName(cs.CipherSuite))
	}
	if _, code := connect(t, c, "plc-1"); code != 0 {
		t.Fatalf("legacy class over TLS 1.2: CONNACK %#x, want success", code)
	}
	c2 := tb.dialTLS(t, cam, tls12())
	if _, code := connect(t, c2, "cam-1"); code != 0x87 {
		t.Fatalf("non-legacy class over TLS 1.2: CONNACK %#x, want 0x87", code)
	}
	tb.events.waitEvent(t, EventConnectDenied, "cam-1", "TLS 1.3 required")

	// A client limited to CBC suites is refused at the handshake.
	conf := &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA},
		RootCAs: tb.ca.pool, ServerName: "localhost", Certificates: []tls.Certificate{plc.tls}}
	if c3, err := tls.Dial("tcp", tb.Addr(), conf); err == nil {
		c3.Close()
		t.Fatal("CBC suite accepted")
	}
}

func TestUnknownCertificateIsRefused(t *testing.T) {
	tb := startBroker(t, nil)
	other := newTestCA(t)
	stranger := other.device("dev-a", "sensor")
	conf := &tls.Config{RootCAs: tb.ca.pool, ServerName: "localhost", Certificates: []tls.Certificate{stranger.tls}}
	c, err := tls.Dial("tcp", tb.Addr(), conf)
	if err == nil {
		// In TLS 1.3 the client learns of the refusal on its first read.
		defer c.Close()
		if !waitClosed(c, 2*time.Second) {
			t.Fatal("certificate from another CA was accepted")
		}
	}
	tb.events.waitEvent(t, EventConnectDenied, "", "tls handshake")
}

func TestGarbageBytesOnTLSPortCloseTheConnection(t *testing.T) {
	tb := startBroker(t, nil)
	garbage := bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef, 0x00, 0xff}, 200)

	t.Run("before TLS", func(t *testing.T) {
		c, err := net.Dial("tcp", tb.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = c.Write(garbage)
		if !waitClosed(c, 3*time.Second) {
			t.Fatal("connection left open after garbage")
		}
	})
	t.Run("inside TLS instead of CONNECT", func(t *testing.T) {
		c := tb.dialTLS(t, tb.ca.device("dev-g", "sensor"), nil)
		_, _ = c.Write(garbage)
		if !waitClosed(c, 3*time.Second) {
			t.Fatal("connection left open after garbage")
		}
	})
	t.Run("inside an MQTT session", func(t *testing.T) {
		c := tb.dialTLS(t, tb.ca.device("dev-h", "sensor"), nil)
		connect(t, c, "dev-h")
		_, _ = c.Write(garbage)
		if !waitClosed(c, 3*time.Second) {
			t.Fatal("connection left open after garbage")
		}
	})
	// The broker still serves.
	c := tb.dialTLS(t, tb.ca.device("dev-ok", "sensor"), nil)
	if _, code := connect(t, c, "dev-ok"); code != 0 {
		t.Fatalf("after garbage, CONNACK %#x", code)
	}
}

func TestOversizePacketClosesTheConnection(t *testing.T) {
	tb := startBroker(t, func(c *Config) { c.MaxPacketSize = 1024 })
	c := tb.dialTLS(t, tb.ca.device("dev-big", "sensor"), nil)
	gc, _ := connect(t, c, "dev-big")
	gc.publish(t, "devices/dev-big/telemetry", bytes.Repeat([]byte("x"), 2000))
	if !waitClosed(c, 3*time.Second) {
		t.Fatal("connection left open after an oversize PUBLISH")
	}
	if m, _ := tb.Metrics("dev-big"); m.MessagesIn != 0 {
		t.Fatalf("oversize message counted as accepted: %+v", m)
	}

	// A length prefix claiming 256 MiB is refused before anything is read.
	raw := tb.dialTLS(t, tb.ca.device("dev-huge", "sensor"), nil)
	_, _ = raw.Write([]byte{0x10, 0xff, 0xff, 0xff, 0x7f})
	if !waitClosed(raw, 3*time.Second) {
		t.Fatal("connection left open after a 256 MiB CONNECT header")
	}
}

func TestPublishRateLimitDropsExcessMessages(t *testing.T) {
	tb := startBroker(t, func(c *Config) { c.MessagesPerSecond = 5 })
	c := tb.dialTLS(t, tb.ca.device("dev-fast", "sensor"), nil)
	gc, _ := connect(t, c, "dev-fast")
	for range 50 {
		gc.publish(t, "devices/dev-fast/telemetry", []byte("1"))
	}
	var m Metrics
	if !eventually(2*time.Second, func() bool { m, _ = tb.Metrics("dev-fast"); return m.MessagesIn+m.RateLimited == 50 }) {
		t.Fatalf("metrics %+v, want 50 publishes seen", m)
	}
	if m.MessagesIn > 7 || m.RateLimited < 43 {
		t.Fatalf("metrics %+v, want about 5 accepted and the rest rate limited", m)
	}
}

func TestByteRateLimitDropsExcessBytes(t *testing.T) {
	tb := startBroker(t, func(c *Config) { c.BytesPerSecond = 1000; c.MaxPacketSize = 1000; c.MessagesPerSecond = -1 })
	c := tb.dialTLS(t, tb.ca.device("dev-bytes", "sensor"), nil)
	gc, _ := connect(t, c, "dev-bytes")
	for range 20 {
		gc.publish(t, "devices/dev-bytes/telemetry", bytes.Repeat([]byte("y"), 400))
	}
	var m Metrics
	eventually(2*time.Second, func() bool { m, _ = tb.Metrics("dev-bytes"); return m.MessagesIn+m.RateLimited == 20 })
	if m.MessagesIn > 3 || m.RateLimited < 17 || m.MaxMessageSize != 400 {
		t.Fatalf("metrics %+v, want at most 3 of 20 400-byte messages through a 1000 B/s limit", m)
	}
}

func TestConnectAttemptsAreThrottledPerSourceIP(t *testing.T) {
	tb := startBroker(t, func(c *Config) { c.ConnectAttemptsPerMinute = 3 })
	var closedEarly int
	for range 5 {
		c, err := net.Dial("tcp", tb.Addr())
		if err != nil {
			t.Fatal(err)
		}
		// A throttled connection is closed before any TLS; an allowed one
		// waits for a ClientHello.
		if waitClosed(c, 300*time.Millisecond) {
			closedEarly++
		}
		c.Close()
	}
	if closedEarly != 2 {
		t.Fatalf("%d of 5 connections closed at once, want 2 (limit 3 a minute)", closedEarly)
	}
	tb.events.waitEvent(t, EventConnectDenied, "", "too many connection attempts")
}

func TestPlaintextListenerRefusesEveryoneUnlessOpenForTests(t *testing.T) {
	for _, open := range []bool{false, true} {
		rec := &recorder{}
		b, err := New(Config{Addr: "127.0.0.1:0", PlaintextInsecure: true, InsecureOpenForTests: open, Log: testLogger(t)}, newTestCA(t), rec)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("tcp", b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		gc, code := connect(t, c, "dev-a")
		if open {
			if code != 0 {
				t.Fatalf("open mode: CONNACK %#x", code)
			}
			gc.publish(t, "anything/at/all", []byte("x")) // no ACL in open mode
		} else if code != 0x87 {
			t.Fatalf("plaintext without open mode: CONNACK %#x, want 0x87", code)
		}
		c.Close()
		b.Close()
	}
}

func TestConfigValidateNamesTheField(t *testing.T) {
	ca := newTestCA(t)
	srv := ca.serverCert()
	good := Config{TLS: &tls.Config{Certificates: []tls.Certificate{srv.tls}}, ClientCAs: ca.pool}
	tests := []struct {
		name  string
		mod   func(*Config)
		field string
	}{
		{"TLS without a certificate is refused", func(c *Config) { c.TLS = &tls.Config{} }, "tls"},
		{"no client CAs is refused", func(c *Config) { c.ClientCAs = nil }, "client_cas"},
		{"open mode over TLS is refused", func(c *Config) { c.InsecureOpenForTests = true }, "insecure_open_for_tests"},
		{"open mode on a non-loopback address is refused", func(c *Config) {
			c.TLS, c.ClientCAs, c.PlaintextInsecure, c.InsecureOpenForTests, c.Addr = nil, nil, true, true, ":1883"
		}, "insecure_open_for_tests"},
		{"plaintext with a TLS config is refused", func(c *Config) { c.PlaintextInsecure = true }, "tls"},
		{"a negative packet size is refused", func(c *Config) { c.MaxPacketSize = -1 }, "max_packet_size"},
		{"a malformed policy filter is refused", func(c *Config) { c.Policies = map[string]Policy{"cam": {Publish: []string{"devices/#/x"}}} }, "policies.cam"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.mod(&c)
			err := c.Validate()
			if e := apperr.As(err); e == nil || e.Code != apperr.Invalid || e.Field != tt.field {
				t.Fatalf("Validate() = %v, want invalid %s", err, tt.field)
			}
		})
	}
	if err := good.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
}

func TestAllMetricsListsDevicesInOrder(t *testing.T) {
	tb := startBroker(t, nil)
	for _, id := range []string{"dev-z", "dev-m"} {
		c := tb.dialTLS(t, tb.ca.device(id, "sensor"), nil)
		connect(t, c, id)
	}
	all := tb.AllMetrics()
	if len(all) != 2 || all[0].DeviceID != "dev-m" || all[1].DeviceID != "dev-z" || all[0].ConnectAttempts != 1 {
		t.Fatalf("AllMetrics = %+v", all)
	}
	if _, ok := tb.Metrics("nobody"); ok {
		t.Fatal("Metrics of an unseen device reported ok")
	}
}

// A SUBSCRIBE cut short in its options panics inside mochi's decoder; the
// broker must drop that connection, report it, and keep serving.
func TestTruncatedSubscribeDropsOnlyThatConnection(t *testing.T) {
	tb := startBroker(t, nil)
	c := tb.dialTLS(t, tb.ca.device("dev-f", "sensor"), nil)
	connect(t, c, "dev-f")
	_, _ = c.Write([]byte("\x82\x37\x00\x03\x00\x00\x13devices/dev-f/cmd/#\x00\x00\x01#\x00\x00\x18$share/g/devices/+/cmd/#\x00"))
	if !waitClosed(c, 3*time.Second) {
		t.Fatal("connection left open after a malformed SUBSCRIBE")
	}
	tb.events.waitEvent(t, EventMalformedPacket, "dev-f", "malformed packet")
	if !eventually(time.Second, func() bool { return len(tb.Sessions()) == 0 }) {
		t.Fatalf("sessions: %+v", tb.Sessions())
	}
	if m, _ := tb.Metrics("dev-f"); m.MalformedPackets != 1 {
		t.Fatalf("metrics %+v, want 1 malformed packet", m)
	}
	// The same device reconnects and works.
	c2 := tb.dialTLS(t, tb.ca.device("dev-f", "sensor"), nil)
	if _, code := connect(t, c2, "dev-f"); code != 0 {
		t.Fatalf("reconnect after malformed packet: CONNACK %#x", code)
	}
}

func TestStartStopsWhenContextEnds(t *testing.T) {
	ca := newTestCA(t)
	srv := ca.serverCert()
	b, err := New(Config{Addr: "127.0.0.1:0", TLS: &tls.Config{Certificates: []tls.Certificate{srv.tls}}, ClientCAs: ca.pool, Log: testLogger(t)}, ca, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	addr := b.Addr()
	cancel()
	if !eventually(2*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err != nil
	}) {
		t.Fatal("broker still accepting after its context ended")
	}
	if err := b.Start(context.Background()); err == nil {
		t.Fatal("restart of a closed broker succeeded")
	}
}

// A device that floods the broker past its receive maximum is dropped with
// DISCONNECT 0x93, and it must be able to read that reason: closing a
// socket that still holds the device's unread publishes would reset the
// connection and destroy the DISCONNECT in the device's receive buffer.
func TestFloodingDeviceReadsDisconnectReasonBeforeTheClose(t *testing.T) {
	tb := startBroker(t, func(c *Config) { c.MessagesPerSecond, c.BytesPerSecond = -1, -1 })
	dev := tb.ca.device("dev-flood", "sensor")
	c := tb.dialTLS(t, dev, nil)
	gc, code := connect(t, c, "dev-flood")
	if code != 0 {
		t.Fatalf("connect: reason 0x%02x", code)
	}
	// QoS 2 publishes hold the receive quota until PUBREL, which this client
	// never sends; one more than the broker's receive maximum (1,024) is
	// a protocol violation.
	var buf bytes.Buffer
	for id := uint16(1); id <= 1100; id++ {
		pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 2}, ProtocolVersion: 5,
			TopicName: "devices/dev-flood/telemetry", PacketID: id, Payload: []byte("x")}
		if err := pk.PublishEncode(&buf); err != nil {
			t.Fatal(err)
		}
	}
	// Then keep sending, as a flooding device does, so that the broker's
	// socket holds unread data when it closes.
	var filler bytes.Buffer
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}, ProtocolVersion: 5,
		TopicName: "devices/dev-flood/telemetry", Payload: bytes.Repeat([]byte("x"), 4000)}
	if err := pk.PublishEncode(&filler); err != nil {
		t.Fatal(err)
	}
	go func() {
		if _, err := c.Write(buf.Bytes()); err != nil {
			return
		}
		for {
			if _, err := c.Write(filler.Bytes()); err != nil {
				return
			}
		}
	}()
	for {
		typ, body := gc.read(t) // fails the test on a reset or a timeout
		if typ == packets.Disconnect {
			if len(body) < 1 || body[0] != packets.ErrReceiveMaximum.Code {
				t.Fatalf("DISCONNECT body %x, want reason 0x93", body)
			}
			return
		}
	}
}
