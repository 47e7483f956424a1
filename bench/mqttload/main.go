// Command mqttload measures an MQTT broker over mutual TLS: publish
// throughput (many publishers to one subscriber) and connection scale
// (concurrent sessions, handshakes per second, broker memory per session).
// It also runs fleetward's broker for the benchmark, so that bench/broker.sh
// can compare it with mosquitto on the same certificates.
//
//	mqttload gen   -dir D                        CA, server certificate (ca.crt ca.key server.crt server.key)
//	mqttload serve -dir D -addr 127.0.0.1:P      fleetward's broker, ACL and rate limits on
//	mqttload pub   -dir D -addr A -qos 1 ...     50 publishers → 1 subscriber, messages/s received
//	mqttload conns -dir D -addr A -n 2000 ...    N concurrent sessions
//
// Device certificates are issued in memory from D/ca.key with the device id
// as subject CN (mosquitto's use_identity_as_username) and as the
// urn:fleetward:device: URI SAN (fleetward's identity); each client's MQTT
// client id is its device id.
package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fleetward/fleetward/internal/broker"
)

func main() {
	log.SetFlags(0)
	if len(os.Args) < 2 {
		log.Fatal("usage: mqttload gen|serve|pub|conns [flags]")
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "gen":
		err = gen(args)
	case "serve":
		err = serve(args)
	case "pub":
		err = pub(args)
	case "conns":
		err = conns(args)
	default:
		err = fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		log.Fatalf("mqttload %s: %v", cmd, err)
	}
}

// ---- certificates

type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func gen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	dir := fs.String("dir", "", "output directory")
	fs.Parse(args)
	if *dir == "" {
		return errors.New("-dir is required")
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mqttload CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(7 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	c, _ := x509.ParseCertificate(der)
	a := &ca{cert: c, key: key}
	kder, _ := x509.MarshalECPrivateKey(key)
	if err := writePEM(filepath.Join(*dir, "ca.crt"), "CERTIFICATE", der); err != nil {
		return err
	}
	if err := writePEM(filepath.Join(*dir, "ca.key"), "EC PRIVATE KEY", kder); err != nil {
		return err
	}
	srv, err := a.issue(&x509.Certificate{
		Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return err
	}
	skder, _ := x509.MarshalECPrivateKey(srv.PrivateKey.(*ecdsa.PrivateKey))
	if err := writePEM(filepath.Join(*dir, "server.crt"), "CERTIFICATE", srv.Certificate[0]); err != nil {
		return err
	}
	return writePEM(filepath.Join(*dir, "server.key"), "EC PRIVATE KEY", skder)
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

func loadCA(dir string) (*ca, error) {
	cb, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return nil, err
	}
	kb, err := os.ReadFile(filepath.Join(dir, "ca.key"))
	if err != nil {
		return nil, err
	}
	cp, _ := pem.Decode(cb)
	kp, _ := pem.Decode(kb)
	if cp == nil || kp == nil {
		return nil, errors.New("ca.crt or ca.key is not PEM")
	}
	c, err := x509.ParseCertificate(cp.Bytes)
	if err != nil {
		return nil, err
	}
	k, err := x509.ParseECPrivateKey(kp.Bytes)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return &ca{cert: c, key: k, pool: pool}, nil
}

func (a *ca) issue(tmpl *x509.Certificate) (tls.Certificate, error) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(7 * 24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, a.key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// device issues a client certificate naming device id both ways.
func (a *ca) device(id string) (tls.Certificate, error) {
	u, _ := url.Parse("urn:fleetward:device:" + id)
	return a.issue(&x509.Certificate{
		Subject: pkix.Name{CommonName: id}, URIs: []*url.URL{u},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

// ---- fleetward's broker

// authority accepts any certificate of the benchmark CA that carries a
// device URI; the device "sub" is of class "backend", every other device of
// class "sensor" (the default policy: its own devices/{id}/... topics).
type authority struct{}

func (authority) VerifyClient(chains [][]*x509.Certificate) (string, string, error) {
	for _, u := range chains[0][0].URIs {
		if id, ok := strings.CutPrefix(u.String(), "urn:fleetward:device:"); ok {
			if id == "sub" {
				return id, "backend", nil
			}
			return id, "sensor", nil
		}
	}
	return "", "", errors.New("no device id in certificate")
}

func (authority) Revoked(*big.Int) bool { return false }

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	dir := fs.String("dir", "", "directory made by gen")
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	fs.Parse(args)
	a, err := loadCA(*dir)
	if err != nil {
		return err
	}
	srv, err := tls.LoadX509KeyPair(filepath.Join(*dir, "server.crt"), filepath.Join(*dir, "server.key"))
	if err != nil {
		return err
	}
	b, err := broker.New(broker.Config{
		Addr:      *addr,
		TLS:       &tls.Config{Certificates: []tls.Certificate{srv}},
		ClientCAs: a.pool,
		Policies: map[string]broker.Policy{
			"backend": {Subscribe: []string{"devices/+/telemetry"}},
		},
		// Per-device limits far above what one benchmark publisher can
		// send, so the checks run on every publish but never throttle.
		MessagesPerSecond:        10_000_000,
		BytesPerSecond:           1 << 34,
		ConnectAttemptsPerMinute: 100_000_000,
		Log:                      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	}, authority{}, nil)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := b.Start(ctx); err != nil {
		return err
	}
	fmt.Printf("listening %s pid %d\n", b.Addr(), os.Getpid())
	<-ctx.Done()
	return b.Close()
}

// ---- minimal MQTT 3.1.1 client

type client struct {
	conn net.Conn
	r    *bufio.Reader
	wmu  sync.Mutex
	w    *bufio.Writer
}

func dial(ctx context.Context, addr string, a *ca, id string, curves []tls.CurveID) (*client, error) {
	cert, err := a.device(id)
	if err != nil {
		return nil, err
	}
	return dialCert(ctx, addr, a, id, cert, curves)
}

func dialCert(ctx context.Context, addr string, a *ca, id string, cert tls.Certificate, curves []tls.CurveID) (*client, error) {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: &tls.Config{
		RootCAs: a.pool, ServerName: "localhost", Certificates: []tls.Certificate{cert},
		MinVersion: tls.VersionTLS13, CurvePreferences: curves,
	}}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s as %s: %w", addr, id, err)
	}
	c := &client{conn: conn, r: bufio.NewReaderSize(conn, 64<<10), w: bufio.NewWriterSize(conn, 64<<10)}
	// CONNECT, MQTT 3.1.1, clean session, keepalive 60 s.
	var body []byte
	body = appendStr(body, "MQTT")
	body = append(body, 4, 0x02, 0, 60)
	body = appendStr(body, id)
	if err := c.send(0x10, body, true); err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	typ, b, err := c.read()
	_ = conn.SetReadDeadline(time.Time{})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("connack for %s: %w", id, err)
	}
	if typ>>4 != 2 || len(b) < 2 || b[1] != 0 {
		conn.Close()
		return nil, fmt.Errorf("connect %s refused: %x %x", id, typ, b)
	}
	return c, nil
}

func appendStr(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func (c *client) send(header byte, body []byte, flush bool) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.w.WriteByte(header)
	n := len(body)
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		c.w.WriteByte(d)
		if n == 0 {
			break
		}
	}
	c.w.Write(body)
	if flush {
		return c.w.Flush()
	}
	return nil
}

func (c *client) read() (byte, []byte, error) {
	h, err := c.r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, mul := 0, 1
	for i := 0; i < 4; i++ {
		d, err := c.r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n += int(d&0x7f) * mul
		if d&0x80 == 0 {
			break
		}
		mul *= 128
	}
	b := make([]byte, n)
	_, err = io.ReadFull(c.r, b)
	return h, b, err
}

// ---- throughput

func pub(args []string) error {
	fs := flag.NewFlagSet("pub", flag.ExitOnError)
	dir := fs.String("dir", "", "directory made by gen")
	addr := fs.String("addr", "", "broker address")
	pubs := fs.Int("pubs", 50, "publishers")
	qos := fs.Int("qos", 0, "QoS of publishes and of the subscription (0 or 1)")
	size := fs.Int("size", 256, "payload bytes")
	dur := fs.Duration("duration", 10*time.Second, "measured duration")
	window := fs.Int("inflight", 16, "unacknowledged QoS 1 publishes per publisher")
	rate := fs.Int("rate", 0, "offered load in messages/s over all publishers; 0 sends as fast as possible")
	label := fs.String("label", "", "name printed with the result")
	fs.Parse(args)
	a, err := loadCA(*dir)
	if err != nil {
		return err
	}
	var gap time.Duration
	if *rate > 0 {
		gap = time.Duration(float64(time.Second) * float64(*pubs) / float64(*rate))
	}
	ctx := context.Background()
	sub, err := dial(ctx, *addr, a, "sub", nil)
	if err != nil {
		return err
	}
	var sb []byte
	sb = binary.BigEndian.AppendUint16(sb, 1)
	sb = appendStr(sb, "devices/+/telemetry")
	sb = append(sb, byte(*qos))
	if err := sub.send(0x82, sb, true); err != nil {
		return err
	}
	typ, b, err := sub.read()
	if err != nil || typ>>4 != 9 || len(b) < 3 || b[2] >= 0x80 {
		return fmt.Errorf("subscribe refused: %x %x %v", typ, b, err)
	}
	var received, counting atomic.Int64
	go func() {
		for {
			typ, b, err := sub.read()
			if err != nil {
				return
			}
			if typ>>4 != 3 {
				continue
			}
			if counting.Load() == 1 {
				received.Add(1)
			}
			if (typ>>1)&3 == 1 && len(b) >= 2 {
				tl := int(binary.BigEndian.Uint16(b))
				if len(b) >= 2+tl+2 {
					id := b[2+tl : 2+tl+2]
					sub.send(0x40, []byte{id[0], id[1]}, sub.r.Buffered() == 0)
				}
			}
		}
	}()

	clients := make([]*client, *pubs)
	var wg sync.WaitGroup
	errs := make(chan error, *pubs)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dial(ctx, *addr, a, fmt.Sprintf("pub-%d", i), nil)
			if err != nil {
				errs <- err
				return
			}
			clients[i] = c
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	payload := make([]byte, *size)
	rand.Read(payload)
	var sent atomic.Int64
	stop := make(chan struct{})
	for i, c := range clients {
		topic := fmt.Sprintf("devices/pub-%d/telemetry", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			publish(c, topic, payload, *qos, *window, gap, stop, &sent)
		}()
	}
	time.Sleep(time.Second) // warm up
	counting.Store(1)
	sent0 := sent.Load()
	start := time.Now()
	time.Sleep(*dur)
	counting.Store(2)
	elapsed := time.Since(start)
	n := received.Load()
	s := sent.Load() - sent0
	close(stop)
	for _, c := range clients {
		c.conn.Close()
	}
	sub.conn.Close()
	wg.Wait()
	fmt.Printf("RESULT %s qos=%d rate=%d pubs=%d size=%d duration=%s received=%d msgs/s=%.0f sent=%d sent_msgs/s=%.0f\n",
		*label, *qos, *rate, *pubs, *size, elapsed.Round(time.Millisecond), n, float64(n)/elapsed.Seconds(), s, float64(s)/elapsed.Seconds())
	return nil
}

// publish sends as fast as the connection (QoS 0) or the inflight window
// of PUBACKs (QoS 1) allows, or one message every gap, until stop.
func publish(c *client, topic string, payload []byte, qos, window int, gap time.Duration, stop chan struct{}, sent *atomic.Int64) {
	hdr := byte(0x30)
	if qos == 1 {
		hdr = 0x32
	}
	var slots chan struct{}
	if qos == 1 {
		slots = make(chan struct{}, window)
		go func() {
			for {
				typ, _, err := c.read()
				if err != nil {
					return
				}
				if typ>>4 == 4 {
					select {
					case <-slots:
					default:
					}
				}
			}
		}()
	}
	var id uint16
	next := time.Now()
	for {
		select {
		case <-stop:
			return
		default:
		}
		if gap > 0 {
			next = next.Add(gap)
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
		}
		body := appendStr(make([]byte, 0, 2+len(topic)+2+len(payload)), topic)
		if qos == 1 {
			select {
			case slots <- struct{}{}:
			case <-stop:
				return
			}
			id++
			if id == 0 {
				id = 1
			}
			body = binary.BigEndian.AppendUint16(body, id)
		}
		body = append(body, payload...)
		if err := c.send(hdr, body, true); err != nil {
			return
		}
		sent.Add(1)
	}
}

// ---- connection scale

func conns(args []string) error {
	fs := flag.NewFlagSet("conns", flag.ExitOnError)
	dir := fs.String("dir", "", "directory made by gen")
	addr := fs.String("addr", "", "broker address")
	n := fs.Int("n", 2000, "concurrent sessions")
	par := fs.Int("parallel", 32, "handshakes in flight")
	curve := fs.String("curve", "X25519MLKEM768", "key exchange offered by the clients: X25519MLKEM768 or X25519")
	pid := fs.Int("pid", 0, "broker process id, for VmRSS")
	label := fs.String("label", "", "name printed with the result")
	fs.Parse(args)
	a, err := loadCA(*dir)
	if err != nil {
		return err
	}
	var curves []tls.CurveID
	switch *curve {
	case "X25519MLKEM768":
		curves = []tls.CurveID{tls.X25519MLKEM768}
	case "X25519":
		curves = []tls.CurveID{tls.X25519}
	default:
		return fmt.Errorf("-curve %q: want X25519MLKEM768 or X25519", *curve)
	}
	// Certificates first, so that issuing them is not timed.
	certs := make([]tls.Certificate, *n)
	for i := range certs {
		if certs[i], err = a.device(fmt.Sprintf("conn-%d", i)); err != nil {
			return err
		}
	}
	runtime.GC()
	rss0 := vmRSS(*pid)
	clients := make([]*client, *n)
	var next atomic.Int64
	var failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < *par; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= *n {
					return
				}
				c, err := dialCert(context.Background(), *addr, a, fmt.Sprintf("conn-%d", i), certs[i], curves)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				clients[i] = c
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	time.Sleep(2 * time.Second) // let the broker settle
	rss1 := vmRSS(*pid)
	ok := int64(*n) - failed.Load()
	perSession := 0.0
	if ok > 0 && rss0 > 0 {
		perSession = float64(rss1-rss0) / float64(ok)
	}
	fmt.Printf("RESULT %s curve=%s sessions=%d failed=%d handshakes/s=%.0f rss_before_kib=%d rss_after_kib=%d kib/session=%.1f\n",
		*label, *curve, ok, failed.Load(), float64(ok)/elapsed.Seconds(), rss0, rss1, perSession)
	if err, _ := firstErr.Load().(error); err != nil {
		fmt.Fprintln(os.Stderr, "first error:", err)
	}
	for _, c := range clients {
		if c != nil {
			c.conn.Close()
		}
	}
	return nil
}

// vmRSS returns a process's resident set in KiB, or 0.
func vmRSS(pid int) int64 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}
