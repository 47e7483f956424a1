package broker

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// FuzzPacketHooks sends arbitrary bytes from an authenticated device through
// the MQTT engine and the broker's hooks (connect, ACL, subscribe, publish,
// rate limit, metrics) over an in-memory connection. Nothing may panic or
// hang, and the device may never be counted as publishing more than the
// engine accepted.
func FuzzPacketHooks(f *testing.F) {
	ca := newTestCA(f)
	srv := ca.serverCert()
	dev := ca.device("dev-f", "sensor")
	b, err := New(Config{
		Addr:      "127.0.0.1:0",
		TLS:       &tls.Config{Certificates: []tls.Certificate{srv.tls}},
		ClientCAs: ca.pool,
		Log:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, ca, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { b.Close() })
	state := &tls.ConnectionState{
		Version:        tls.VersionTLS13,
		CurveID:        tls.X25519MLKEM768,
		VerifiedChains: [][]*x509.Certificate{{dev.leaf, ca.cert}},
	}

	enc := func(pk packets.Packet) []byte {
		var buf bytes.Buffer
		pk.ProtocolVersion = 5
		var err error
		switch pk.FixedHeader.Type {
		case packets.Connect:
			err = pk.ConnectEncode(&buf)
		case packets.Publish:
			err = pk.PublishEncode(&buf)
		case packets.Subscribe:
			err = pk.SubscribeEncode(&buf)
		}
		if err != nil {
			f.Fatal(err)
		}
		return buf.Bytes()
	}
	connectPk := enc(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect},
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 5, ClientIdentifier: "dev-f"}})
	f.Add(byte(0), enc(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}, TopicName: "devices/dev-f/telemetry", Payload: []byte("t=1")}))
	f.Add(byte(0), enc(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, PacketID: 7, TopicName: "devices/other/telemetry", Payload: []byte("x")}))
	f.Add(byte(0), enc(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, PacketID: 3,
		Filters: packets.Subscriptions{{Filter: "devices/dev-f/cmd/#"}, {Filter: "#"}, {Filter: "$share/g/devices/+/cmd/#"}}}))
	f.Add(byte(1), connectPk)
	f.Add(byte(1), []byte{0x10, 0xff, 0xff, 0xff, 0x7f})
	f.Add(byte(0), []byte{0xde, 0xad, 0xbe, 0xef})

	f.Fuzz(func(t *testing.T, mode byte, data []byte) {
		stream := data
		if mode&1 == 0 {
			stream = append(append([]byte{}, connectPk...), data...)
		}
		client, server := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			b.listener.establishSafely(b.server.EstablishConnection, &deviceConn{Conn: server, tls: state})
		}()
		go func() { _, _ = io.Copy(io.Discard, client) }()
		_ = client.SetWriteDeadline(time.Now().Add(2 * time.Second))
		_, _ = client.Write(stream)
		time.Sleep(time.Millisecond)
		client.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("connection handling did not end after the client closed")
		}
		for _, s := range b.Sessions() {
			t.Fatalf("session left live after close: %+v", s)
		}
	})
}
