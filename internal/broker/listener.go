package broker

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"
)

// listener accepts TCP connections, throttles them per source IP, completes
// the TLS handshake (so mochi only ever sees authenticated connections) and
// hands each connection to mochi as a *deviceConn.
type listener struct {
	b    *Broker
	addr string
	tls  *tls.Config // nil on a plaintext listener

	ln     net.Listener
	log    *slog.Logger
	closed atomic.Bool

	mu        sync.Mutex
	attempts  map[string]*ipAttempts
	lastSweep time.Time
}

// ipAttempts is the connection-attempt bucket of one source IP.
type ipAttempts struct {
	bucket   tokenBucket
	reported bool // a denial event was sent for the current burst
}

// deviceConn is a client connection after the handshake, carrying what the
// MQTT hooks need to know about it.
type deviceConn struct {
	net.Conn
	tls *tls.ConnectionState // nil on a plaintext listener

	closing atomic.Bool
}

// closeLinger is how long a closed connection's socket stays open for
// reading by the peer; see deviceConn.Close.
const closeLinger = time.Second

// Read returns nothing more once Close has been called, so no packet that
// arrives after the broker ended a session is ever processed.
func (c *deviceConn) Read(p []byte) (int, error) {
	if c.closing.Load() {
		return 0, net.ErrClosed
	}
	n, err := c.Conn.Read(p)
	if c.closing.Load() {
		return 0, net.ErrClosed
	}
	return n, err
}

// Close ends the connection so that the device still gets the broker's
// last packet (a DISCONNECT with its reason, a refusing CONNACK). Closing a
// TCP socket that holds unread data from the peer makes the kernel send a
// reset, and the reset makes the peer's kernel discard what it had received
// but not yet read: a device flooding the broker would never see why it
// was dropped. So Close stops reading at once and, in the background, sends
// the TLS close_notify and a FIN, and closes the socket closeLinger later.
// A write blocked on a device that does not read fails after closeLinger,
// so it cannot hold the close up.
func (c *deviceConn) Close() error {
	if c.closing.Swap(true) {
		return nil
	}
	_ = c.Conn.SetReadDeadline(time.Now()) // wake a blocked Read
	_ = c.Conn.SetWriteDeadline(time.Now().Add(closeLinger))
	go func() {
		raw := c.Conn
		if tc, ok := c.Conn.(*tls.Conn); ok {
			_ = tc.CloseWrite()
			raw = tc.NetConn()
		}
		if cw, ok := raw.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
			time.Sleep(closeLinger)
		}
		_ = c.Conn.Close()
	}()
	return nil
}

// listenerID names the broker's only listener inside mochi.
const listenerID = "fleetward"

var _ listeners.Listener = (*listener)(nil)

func (l *listener) ID() string       { return listenerID }
func (l *listener) Protocol() string { return "tcp" }

func (l *listener) Address() string {
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.addr
}

func (l *listener) Init(log *slog.Logger) error {
	l.log = log
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		return err
	}
	l.ln = ln
	return nil
}

func (l *listener) Serve(establish listeners.EstablishFn) {
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			if l.closed.Load() {
				return
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			l.b.log.Error("mqtt accept", "error", err)
			return
		}
		go l.serveConn(conn, establish)
	}
}

func (l *listener) serveConn(conn net.Conn, establish listeners.EstablishFn) {
	remote := conn.RemoteAddr().String()
	ip := hostOf(remote)
	if !l.allowAttempt(ip) {
		_ = conn.Close()
		return
	}
	dc := &deviceConn{Conn: conn}
	if l.tls != nil {
		tc := tls.Server(conn, l.tls)
		ctx, cancel := context.WithTimeout(context.Background(), l.b.cfg.HandshakeTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			_ = conn.Close()
			l.b.denyConnect("", ip, "", "tls handshake: "+err.Error())
			return
		}
		st := tc.ConnectionState()
		dc = &deviceConn{Conn: tc, tls: &st}
	}
	l.establishSafely(establish, dc)
}

// establishSafely runs an MQTT connection to its end. mochi's packet
// decoders can panic on some malformed packets (a SUBSCRIBE cut short in
// its options, found by FuzzPacketHooks); the panic happens in this
// goroutine, so it is recovered here, the connection dropped and the
// device's session cleaned up, and the broker keeps running.
func (l *listener) establishSafely(establish listeners.EstablishFn, dc *deviceConn) {
	remote := dc.RemoteAddr().String()
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		_ = dc.Close()
		l.b.malformed(dc, fmt.Sprint(p))
	}()
	if err := establish(listenerID, dc); err != nil {
		l.b.log.Debug("mqtt connection ended", "remote", remote, "error", err)
	}
}

// allowAttempt takes a token from ip's bucket. Only the first refusal of a
// burst becomes a security event, so a connection flood does not become a
// bus flood too.
func (l *listener) allowAttempt(ip string) bool {
	perMinute := l.b.cfg.ConnectAttemptsPerMinute
	if perMinute < 0 {
		return true
	}
	now := time.Now()
	l.mu.Lock()
	if now.Sub(l.lastSweep) > time.Minute {
		// Forget IPs whose bucket has refilled; they are back to the start.
		for k, a := range l.attempts {
			if now.Sub(a.bucket.last) > time.Minute {
				delete(l.attempts, k)
			}
		}
		l.lastSweep = now
	}
	a, ok := l.attempts[ip]
	if !ok {
		a = &ipAttempts{bucket: newBucket(float64(perMinute)/60, float64(perMinute))}
		l.attempts[ip] = a
	}
	allowed := a.bucket.take(now, 1)
	report := !allowed && !a.reported
	a.reported = !allowed
	l.mu.Unlock()
	if report {
		l.b.denyConnect("", ip, "", "too many connection attempts from this address")
	}
	return allowed
}

func (l *listener) Close(closeClients listeners.CloseFn) {
	if l.closed.Swap(true) {
		return
	}
	if l.ln != nil {
		_ = l.ln.Close()
	}
	closeClients(listenerID)
}

func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
