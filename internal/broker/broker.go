// Package broker is fleetward's MQTT broker (MQTT 3.1.1 and 5). Devices
// connect over mutual TLS; the client certificate names the device, the
// device's class picks its topic policy, and every publish, subscribe and
// delivery is checked against that policy. Revoking a device drops its live
// session and refuses its next connect. The MQTT engine (mochi-mqtt) stays
// behind this package.
package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"sort"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/bus"
)

// Authority decides who a client certificate belongs to and whether it is
// still good. The identity package's CA implements it.
type Authority interface {
	// VerifyClient returns the device id and class named by a verified
	// client certificate chain (leaf first), or an error if the chain does
	// not name an enrolled device.
	VerifyClient(chains [][]*x509.Certificate) (deviceID string, class string, err error)
	// Revoked reports whether the certificate with this serial is revoked
	// (or its device quarantined). It must be cheap: the broker asks on
	// every connect.
	Revoked(serial *big.Int) bool
}

// Defaults for Config's zero values.
const (
	DefaultAddr                     = ":8883"
	DefaultMaxPacketSize            = 64 << 10
	DefaultMessagesPerSecond        = 100
	DefaultBytesPerSecond           = 256 << 10
	DefaultConnectAttemptsPerMinute = 60
	DefaultHandshakeTimeout         = 10 * time.Second
)

// Config configures a Broker. Zero values take the defaults above; a
// negative rate limit turns that limit off.
type Config struct {
	// Addr is the TCP address to listen on, ":8883" by default.
	Addr string `json:"addr"`
	// TLS holds the server certificate. The broker takes a copy and sets
	// client authentication, versions and suites itself.
	TLS *tls.Config `json:"-"`
	// ClientCAs verifies device certificates, usually the CA's pool.
	ClientCAs *x509.CertPool `json:"-"`
	// PlaintextInsecure listens without TLS. Without a certificate there is
	// no identity, so every connect is refused unless InsecureOpenForTests
	// is also set.
	PlaintextInsecure bool `json:"plaintext_insecure"`
	// InsecureOpenForTests, only with PlaintextInsecure and on a loopback
	// address, accepts any client with no identity and no topic ACL, for
	// protocol conformance suites. It has no JSON name, so no configuration
	// file can set it, and `fleetward serve` never does.
	InsecureOpenForTests bool `json:"-"`
	// MaxPacketSize is the largest MQTT packet accepted, 64 KiB by default.
	MaxPacketSize int `json:"max_packet_size"`
	// MessagesPerSecond and BytesPerSecond limit each device's publishes
	// (payload bytes). A burst of one second's worth is allowed.
	MessagesPerSecond int `json:"messages_per_second"`
	BytesPerSecond    int `json:"bytes_per_second"`
	// ConnectAttemptsPerMinute limits new TCP connections per source IP.
	ConnectAttemptsPerMinute int `json:"connect_attempts_per_minute"`
	// HandshakeTimeout bounds the TLS handshake, 10 s by default.
	HandshakeTimeout time.Duration `json:"handshake_timeout"`
	// Policies maps a device class to its policy; classes not listed get
	// DefaultPolicy.
	Policies map[string]Policy `json:"policies"`
	// DeviceMessages, if set, receives a copy of every publish a device
	// made that passed its ACL and rate limits: the device id, the topic
	// and the payload. It runs on the session's goroutine and must not
	// block: queue and return.
	DeviceMessages func(deviceID, topic string, payload []byte) `json:"-"`
	// Log receives the broker's logs; slog.Default() if nil.
	Log *slog.Logger `json:"-"`
}

// Validate reports the first field of c that cannot work, as an
// apperr.Invalid naming the field.
func (c Config) Validate() error {
	if c.PlaintextInsecure {
		if c.TLS != nil {
			return apperr.InvalidField("tls", "set with plaintext_insecure")
		}
		if c.InsecureOpenForTests && !loopbackAddr(c.Addr) {
			// The open mode has no identity and no ACL: keep it off any
			// network a device or attacker could reach.
			return apperr.InvalidField("insecure_open_for_tests", "only on a loopback address (127.0.0.1:PORT, [::1]:PORT), got %q", c.Addr)
		}
	} else {
		if c.InsecureOpenForTests {
			return apperr.InvalidField("insecure_open_for_tests", "only allowed with plaintext_insecure")
		}
		if c.TLS == nil || (len(c.TLS.Certificates) == 0 && c.TLS.GetCertificate == nil) {
			return apperr.InvalidField("tls", "a server certificate is required")
		}
		if c.ClientCAs == nil {
			return apperr.InvalidField("client_cas", "required to verify device certificates")
		}
	}
	if c.MaxPacketSize < 0 || c.MaxPacketSize > 256<<20 {
		return apperr.InvalidField("max_packet_size", "must be between 0 and 256 MiB, got %d", c.MaxPacketSize)
	}
	for class, p := range c.Policies {
		if err := p.Validate(); err != nil {
			return apperr.InvalidField("policies."+class, "%v", err)
		}
	}
	return nil
}

// loopbackAddr reports whether addr is HOST:PORT with a loopback IP or
// "localhost" as HOST.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.MaxPacketSize == 0 {
		c.MaxPacketSize = DefaultMaxPacketSize
	}
	if c.MessagesPerSecond == 0 {
		c.MessagesPerSecond = DefaultMessagesPerSecond
	}
	if c.BytesPerSecond == 0 {
		c.BytesPerSecond = DefaultBytesPerSecond
	}
	if c.ConnectAttemptsPerMinute == 0 {
		c.ConnectAttemptsPerMinute = DefaultConnectAttemptsPerMinute
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return c
}

// Session is one live MQTT connection of a device.
type Session struct {
	DeviceID    string    `json:"device_id"`
	Class       string    `json:"class"`
	ClientID    string    `json:"client_id"`
	Remote      string    `json:"remote"`
	ConnectedAt time.Time `json:"connected_at"`
	// TLSVersion is "TLS 1.3" or "TLS 1.2"; empty on a plaintext listener.
	TLSVersion string `json:"tls_version"`
	// Group is the negotiated key exchange, e.g. "X25519MLKEM768".
	Group string `json:"group"`
	// PostQuantum reports whether the key exchange resists quantum attack.
	PostQuantum bool `json:"post_quantum"`
	// Serial is the client certificate's serial number, hex.
	Serial          string `json:"serial,omitempty"`
	ProtocolVersion byte   `json:"protocol_version"`
}

// session is a device's session state: the session as shown, the expanded
// ACL, and the live mochi client (nil while a persistent session waits for
// the device to come back).
type session struct {
	info   Session
	pub    []string
	sub    []string
	open   bool // InsecureOpenForTests: no ACL
	device *deviceState
	client *mqtt.Client
}

// Broker is fleetward's MQTT broker. Create it with New, then Start it;
// Close stops it and drops every session.
type Broker struct {
	cfg       Config
	authority Authority
	log       *slog.Logger
	events    *securityEvents
	server    *mqtt.Server
	listener  *listener
	devices   deviceStates

	mu       sync.RWMutex
	sessions map[string]*session // by MQTT client id
	started  bool
	closed   bool
	done     chan struct{} // closed by Close
}

// New validates cfg and returns a broker that is not yet listening.
// authority may be nil only with InsecureOpenForTests; pub may be nil, and
// then security events are only logged and counted.
func New(cfg Config, authority Authority, pub bus.Publisher) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("broker config: %w", err)
	}
	if authority == nil && !cfg.InsecureOpenForTests {
		return nil, apperr.InvalidField("authority", "required")
	}
	cfg = cfg.withDefaults()
	b := &Broker{
		cfg:       cfg,
		authority: authority,
		log:       cfg.Log.With("component", "broker"),
		sessions:  map[string]*session{},
		done:      make(chan struct{}),
	}
	b.devices = deviceStates{devices: map[string]*deviceState{}, newFn: b.newDeviceState}
	b.events = newSecurityEvents(pub, b.log)

	var tlsConf *tls.Config
	if !cfg.PlaintextInsecure {
		tlsConf = serverTLS(cfg)
	}
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = uint32(cfg.MaxPacketSize)
	caps.MaximumSessionExpiryInterval = 24 * 60 * 60
	caps.MaximumClientWritesPending = 1024
	// mochi copies a PUBLISH's properties (user properties, content type,
	// …) onto its PUBACK/PUBREC by default. MQTT 5 lets an ack carry only a
	// reason string and user properties of the server's own, and clients
	// such as the Paho test client reject the longer ack, losing the
	// acknowledgement.
	caps.Compatibilities.NoInheritedPropertiesOnAck = true
	b.server = mqtt.New(&mqtt.Options{
		Capabilities:           caps,
		Logger:                 cfg.Log.With("component", "mqtt"),
		SysTopicResendInterval: 60,
	})
	if err := b.server.AddHook(&hook{b: b}, nil); err != nil {
		return nil, fmt.Errorf("broker: add hook: %w", err)
	}
	b.listener = &listener{b: b, addr: cfg.Addr, tls: tlsConf, attempts: map[string]*ipAttempts{}}
	return b, nil
}

// serverTLS returns the TLS configuration devices meet: TLS 1.3 only, or
// TLS 1.2 with ECDHE-AEAD suites as well when some class is Legacy (the
// class is known only after the handshake, so the connect of a non-legacy
// device over TLS 1.2 is refused in the MQTT layer). Key exchange uses Go's
// defaults, which put X25519MLKEM768 first.
func serverTLS(cfg Config) *tls.Config {
	c := cfg.TLS.Clone()
	c.ClientAuth = tls.RequireAndVerifyClientCert
	c.ClientCAs = cfg.ClientCAs
	c.MinVersion = tls.VersionTLS13
	c.MaxVersion = 0
	c.CipherSuites = nil
	c.CurvePreferences = nil
	for _, p := range cfg.Policies {
		if p.Legacy {
			c.MinVersion = tls.VersionTLS12
			c.CipherSuites = []uint16{
				tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
				tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
				tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
				tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
				tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
				tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
			}
			break
		}
	}
	return c
}

func (b *Broker) newDeviceState(id string) *deviceState {
	s := &deviceState{m: Metrics{DeviceID: id}}
	if b.cfg.MessagesPerSecond > 0 {
		s.messages = newBucket(float64(b.cfg.MessagesPerSecond), float64(b.cfg.MessagesPerSecond))
	}
	if b.cfg.BytesPerSecond > 0 {
		burst := float64(max(b.cfg.BytesPerSecond, b.cfg.MaxPacketSize))
		s.bytes = newBucket(float64(b.cfg.BytesPerSecond), burst)
	}
	return s
}

// Start opens the listener and serves until Close or until ctx ends.
func (b *Broker) Start(ctx context.Context) error {
	b.mu.Lock()
	if b.started || b.closed {
		b.mu.Unlock()
		return fmt.Errorf("broker: start: already started or closed")
	}
	b.started = true
	b.mu.Unlock()
	if err := b.server.AddListener(b.listener); err != nil {
		return fmt.Errorf("broker: listen on %s: %w", b.cfg.Addr, err)
	}
	if err := b.server.Serve(); err != nil {
		return fmt.Errorf("broker: serve: %w", err)
	}
	b.log.Info("mqtt broker listening", "addr", b.Addr(), "tls", !b.cfg.PlaintextInsecure)
	go func() {
		select {
		case <-ctx.Done():
			b.Close()
		case <-b.done:
		}
	}()
	return nil
}

// Addr returns the address the broker listens on, with the real port once
// started.
func (b *Broker) Addr() string { return b.listener.Address() }

// Close stops listening, drops every session and flushes pending security
// events (waiting at most a few seconds for the bus). It is safe to call
// more than once.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	close(b.done)
	started := b.started
	b.mu.Unlock()
	var err error
	if started {
		err = b.server.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	b.events.close(ctx)
	return err
}

// errAdministrativeDisconnect is the stop cause of a session dropped by
// Disconnect.
var errAdministrativeDisconnect = errors.New("disconnected by fleetward (revoked or quarantined)")

// Disconnect drops every live session of the device at once. It does not by
// itself refuse a reconnect: revoke or quarantine the device in the
// Authority first, and its next connect is refused.
func (b *Broker) Disconnect(deviceID string) {
	b.mu.RLock()
	var clients []*mqtt.Client
	for _, s := range b.sessions {
		if s.info.DeviceID == deviceID && s.client != nil {
			clients = append(clients, s.client)
		}
	}
	b.mu.RUnlock()
	for _, cl := range clients {
		b.log.Info("mqtt session dropped", "device", deviceID, "remote", cl.Net.Remote)
		if cl.Properties.ProtocolVersion >= 5 {
			// MQTT 5 lets the server say why; 3.1.1 has no server DISCONNECT.
			_ = b.server.DisconnectClient(cl, packets.ErrAdministrativeAction)
		}
		cl.Stop(errAdministrativeDisconnect)
	}
}

// CountPostQuantum returns how many of sessions use a post-quantum
// (hybrid ML-KEM) key exchange.
func CountPostQuantum(sessions []Session) int {
	n := 0
	for _, s := range sessions {
		if s.PostQuantum {
			n++
		}
	}
	return n
}

// Sessions returns the live sessions, ordered by device id.
func (b *Broker) Sessions() []Session {
	b.mu.RLock()
	out := make([]Session, 0, len(b.sessions))
	for _, s := range b.sessions {
		if s.client != nil && !s.client.Closed() {
			out = append(out, s.info)
		}
	}
	b.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].DeviceID < out[j].DeviceID })
	return out
}

// policy returns the policy of a device class.
func (b *Broker) policy(class string) Policy {
	if p, ok := b.cfg.Policies[class]; ok {
		return p
	}
	return DefaultPolicy()
}
