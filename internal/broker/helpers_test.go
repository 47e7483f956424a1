package broker

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/fleetward/fleetward/internal/bus"
)

// testCA is a small real CA: an ECDSA P-256 root that issues the broker's
// server certificate and device client certificates with the device id in a
// urn:fleetward:device: URI SAN, as the identity package does.
type testCA struct {
	t    testing.TB
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool

	mu      sync.Mutex
	classes map[string]string // device id → class
	revoked map[string]bool   // serial (decimal) → revoked
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "fleetward test root"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	ca := &testCA{t: t, dir: t.TempDir(), cert: cert, key: key, pool: pool, classes: map[string]string{}, revoked: map[string]bool{}}
	writePEM(t, filepath.Join(ca.dir, "ca.pem"), "CERTIFICATE", der)
	return ca
}

func (ca *testCA) caFile() string { return filepath.Join(ca.dir, "ca.pem") }

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// issued is a certificate with its key, in memory and as PEM files.
type issued struct {
	tls      tls.Certificate
	leaf     *x509.Certificate
	certFile string
	keyFile  string
}

func (ca *testCA) issue(name string, tmpl *x509.Certificate) issued {
	t := ca.t
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	kder, _ := x509.MarshalECPrivateKey(key)
	it := issued{
		tls:      tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		leaf:     leaf,
		certFile: filepath.Join(ca.dir, name+".crt"),
		keyFile:  filepath.Join(ca.dir, name+".key"),
	}
	writePEM(t, it.certFile, "CERTIFICATE", der)
	writePEM(t, it.keyFile, "EC PRIVATE KEY", kder)
	return it
}

func (ca *testCA) serverCert() issued {
	return ca.issue("server", &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
}

// device issues a client certificate for a device of a class.
func (ca *testCA) device(id, class string) issued {
	u, _ := url.Parse("urn:fleetward:device:" + id)
	ca.mu.Lock()
	ca.classes[id] = class
	ca.mu.Unlock()
	return ca.issue("device-"+id, &x509.Certificate{
		Subject:     pkix.Name{CommonName: id},
		URIs:        []*url.URL{u},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

func (ca *testCA) revoke(serial *big.Int) {
	ca.mu.Lock()
	ca.revoked[serial.String()] = true
	ca.mu.Unlock()
}

// VerifyClient implements Authority.
func (ca *testCA) VerifyClient(chains [][]*x509.Certificate) (string, string, error) {
	leaf := chains[0][0]
	for _, u := range leaf.URIs {
		if id, ok := strings.CutPrefix(u.String(), "urn:fleetward:device:"); ok {
			ca.mu.Lock()
			class, known := ca.classes[id]
			ca.mu.Unlock()
			if !known {
				return "", "", fmt.Errorf("device %s not enrolled", id)
			}
			return id, class, nil
		}
	}
	return "", "", errors.New("no device id in certificate")
}

// Revoked implements Authority.
func (ca *testCA) Revoked(serial *big.Int) bool {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	return ca.revoked[serial.String()]
}

// recorder is a bus.Publisher that keeps what it is given.
type recorder struct {
	mu     sync.Mutex
	events []bus.Event
}

func (r *recorder) Publish(_ context.Context, ev bus.Event) error {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	return nil
}

// waitEvent waits up to 3 s for an event of typ about subject whose data
// contains substr, and returns it.
func (r *recorder) waitEvent(t *testing.T, typ, subject, substr string) bus.Event {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		for _, ev := range r.events {
			if ev.Type == typ && ev.Subject == subject && strings.Contains(string(ev.Data), substr) {
				r.mu.Unlock()
				return ev
			}
		}
		r.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t.Fatalf("no %s event for %q containing %q; have %d events: %s", typ, subject, substr, len(r.events), dumpEvents(r.events))
	return bus.Event{}
}

func dumpEvents(evs []bus.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		j, _ := json.Marshal(ev)
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

// testBroker is a running broker with its CA and event recorder.
type testBroker struct {
	*Broker
	ca     *testCA
	events *recorder
	host   string
	port   string
}

// backendPolicy lets a test's "backend" class read every device's topics.
var backendPolicy = Policy{Subscribe: []string{"devices/+/telemetry", "devices/+/events", "devices/+/status"}}

func startBroker(t *testing.T, mod func(*Config)) *testBroker {
	t.Helper()
	ca := newTestCA(t)
	srv := ca.serverCert()
	cfg := Config{
		Addr:      "127.0.0.1:0",
		TLS:       &tls.Config{Certificates: []tls.Certificate{srv.tls}},
		ClientCAs: ca.pool,
		Policies:  map[string]Policy{"backend": backendPolicy},
		Log:       slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	if mod != nil {
		mod(&cfg)
	}
	rec := &recorder{}
	b, err := New(cfg, ca, rec)
	if err != nil {
		t.Fatalf("new broker: %v", err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	host, port, _ := net.SplitHostPort(b.Addr())
	return &testBroker{Broker: b, ca: ca, events: rec, host: host, port: port}
}

// testWriter sends logs to t.Log, so they show only for failing tests.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// needTool skips the test if an outside client is missing, except in CI.
func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI (Debian package mosquitto-clients): %v", name, err)
		}
		t.Skipf("%s not installed (Debian package mosquitto-clients); skipping test with a real outside client", name)
	}
}

// mosqArgs are the connection arguments of mosquitto_pub/sub for a device.
func (tb *testBroker) mosqArgs(dev issued, clientID string) []string {
	args := []string{"-h", tb.host, "-p", tb.port, "--cafile", tb.ca.caFile(), "-i", clientID, "-V", "mqttv311"}
	if dev.certFile != "" {
		args = append(args, "--cert", dev.certFile, "--key", dev.keyFile)
	}
	return args
}

// run runs a command with a timeout and returns its combined output.
func run(t *testing.T, timeout time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// goClient is a minimal MQTT 5 client over real TLS, for checks that need
// to see the TLS state or send bytes a normal client would not.
type goClient struct {
	conn net.Conn
	r    *bufio.Reader
}

func (tb *testBroker) dialTLS(t *testing.T, dev issued, conf *tls.Config) *tls.Conn {
	t.Helper()
	if conf == nil {
		conf = &tls.Config{}
	}
	conf.RootCAs = tb.ca.pool
	conf.ServerName = "localhost"
	if dev.leaf != nil {
		conf.Certificates = []tls.Certificate{dev.tls}
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", tb.Addr(), conf)
	if err != nil {
		t.Fatalf("tls dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// connect sends CONNECT and returns the CONNACK reason code.
func connect(t *testing.T, c net.Conn, clientID string) (*goClient, byte) {
	t.Helper()
	var buf bytes.Buffer
	pk := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connect},
		ProtocolVersion: 5,
		Connect:         packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 30, ClientIdentifier: clientID},
	}
	if err := pk.ConnectEncode(&buf); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(buf.Bytes()); err != nil {
		t.Fatalf("write connect: %v", err)
	}
	gc := &goClient{conn: c, r: bufio.NewReader(c)}
	typ, body := gc.read(t)
	if typ != packets.Connack || len(body) < 2 {
		t.Fatalf("want CONNACK, got type %d body %x", typ, body)
	}
	return gc, body[1]
}

// read reads one packet and returns its type and body.
func (gc *goClient) read(t *testing.T) (byte, []byte) {
	t.Helper()
	_ = gc.conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	h, err := gc.r.ReadByte()
	if err != nil {
		t.Fatalf("read packet: %v", err)
	}
	n, mul := 0, 1
	for {
		d, err := gc.r.ReadByte()
		if err != nil {
			t.Fatalf("read length: %v", err)
		}
		n += int(d&0x7f) * mul
		if d&0x80 == 0 {
			break
		}
		mul *= 128
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(gc.r, body); err != nil {
		t.Fatalf("read body: %v", err)
	}
	return h >> 4, body
}

func (gc *goClient) publish(t *testing.T, topic string, payload []byte) {
	t.Helper()
	var buf bytes.Buffer
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}, ProtocolVersion: 5, TopicName: topic, Payload: payload}
	if err := pk.PublishEncode(&buf); err != nil {
		t.Fatal(err)
	}
	if _, err := gc.conn.Write(buf.Bytes()); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

// waitClosed reports whether the peer closes c within d.
func waitClosed(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		if err != nil {
			var ne net.Error
			return !(errors.As(err, &ne) && ne.Timeout())
		}
	}
}

// eventually polls cond every 20 ms until it holds or d passes.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
