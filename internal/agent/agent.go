// Package agent is the fleetward device agent. It runs on a device: makes
// the device's key, enrols for a certificate over EST (RFC 7030), keeps key
// and certificate under its data directory, connects to fleetward's MQTT
// broker over mutual TLS, and publishes the device's inventory and network
// metrics and, with an edge sensor, the detections made on one of its
// interfaces. Reports made while the broker is unreachable wait in a bounded
// spool on disk and are sent, in order, once it is back. The certificate is
// renewed over EST at two thirds of its lifetime.
package agent

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/identity"
)

// Defaults for Config's zero values.
const (
	DefaultInterval    = 30 * time.Second
	DefaultMQTTPort    = "8883"
	DefaultBackoffMin  = time.Second
	DefaultBackoffMax  = 2 * time.Minute
	DefaultProcRoot    = "/proc"
	DefaultOSRelease   = "/etc/os-release"
	minRenewalInterval = time.Minute
	publishTimeout     = 10 * time.Second
)

// Config configures an Agent. Zero values take the defaults above.
type Config struct {
	// DeviceID is the device's identity, the CN and URI SAN of its
	// certificate and its MQTT client id. Required.
	DeviceID string
	// Server is the EST server's base URL, "https://host:8443". Required.
	Server string
	// Token is the one-time enrolment token. It is used only when no
	// certificate is stored yet.
	Token string
	// DataDir holds the key, certificates and the spool (mode 0700).
	DataDir string
	// MQTTAddr is the broker's host:port; default Server's host, port 8883.
	MQTTAddr string
	// Trust is how the EST server is trusted before the CA chain is known.
	// Required for enrolment; later the stored chain is enough.
	Trust ServerTrust
	// Interval between telemetry reports; 30 s by default.
	Interval time.Duration
	// Firmware is the firmware version reported; default VERSION_ID from
	// os-release.
	Firmware string
	// ConfigFiles are digested into the inventory's config_digest.
	ConfigFiles []string
	// ProcRoot and OSRelease locate /proc and /etc/os-release.
	ProcRoot  string
	OSRelease string
	// SpoolMaxMessages and SpoolMaxBytes bound the offline spool.
	SpoolMaxMessages int
	SpoolMaxBytes    int64
	// BackoffMin and BackoffMax bound the jittered exponential delay
	// between reconnection attempts.
	BackoffMin, BackoffMax time.Duration
	// Sensor, if set, runs the edge sensor on one of the device's
	// interfaces and publishes its signals and summaries.
	Sensor *SensorConfig
	// Log receives the agent's logs; slog.Default() if nil.
	Log *slog.Logger
}

// Validate reports the first field of c that cannot work, as an
// apperr.Invalid naming the field.
func (c Config) Validate() error {
	if err := identity.ValidateDeviceID("device_id", c.DeviceID); err != nil {
		return err
	}
	u, err := url.Parse(c.Server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return apperr.InvalidField("server", "%q: want an https:// URL of the EST server", c.Server)
	}
	if c.DataDir == "" {
		return apperr.InvalidField("data", "is required")
	}
	if c.MQTTAddr != "" {
		if _, _, err := net.SplitHostPort(c.MQTTAddr); err != nil {
			return apperr.InvalidField("mqtt", "%q: want host:port", c.MQTTAddr)
		}
	}
	if _, err := c.Trust.pool(); err != nil {
		return apperr.InvalidField("ca_cert", "%v", err)
	}
	if c.Trust.Fingerprint != nil && len(c.Trust.Fingerprint) != sha256.Size {
		return apperr.InvalidField("server_fingerprint", "must be a SHA-256 (32 bytes), got %d bytes", len(c.Trust.Fingerprint))
	}
	if c.Interval < 0 {
		return apperr.InvalidField("interval", "must not be negative")
	}
	if c.BackoffMax != 0 && c.BackoffMax < c.BackoffMin {
		return apperr.InvalidField("backoff_max", "is below backoff_min")
	}
	if c.Sensor != nil {
		return c.Sensor.Validate()
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.MQTTAddr == "" {
		u, _ := url.Parse(c.Server)
		c.MQTTAddr = net.JoinHostPort(u.Hostname(), DefaultMQTTPort)
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.ProcRoot == "" {
		c.ProcRoot = DefaultProcRoot
	}
	if c.OSRelease == "" {
		c.OSRelease = DefaultOSRelease
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = DefaultBackoffMin
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = max(DefaultBackoffMax, c.BackoffMin)
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return c
}

// Agent is the device agent. Create it with New, then Run it.
type Agent struct {
	cfg   Config
	log   *slog.Logger
	keys  *Keystore
	spool *Spool
	col   collector

	cert  atomic.Pointer[tls.Certificate] // what the next TLS handshake presents
	chain []*x509.Certificate             // the CA chain, set by Enroll
	est   *ESTClient

	seq     uint64
	prev    Counters
	prevAt  time.Time
	lastInv *Inventory
}

// New validates cfg and opens the data directory and the spool. It does
// not touch the network.
func New(cfg Config) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("agent config: %w", err)
	}
	cfg = cfg.withDefaults()
	keys, err := OpenKeystore(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	spool, err := OpenSpool(filepath.Join(cfg.DataDir, "spool"), cfg.SpoolMaxMessages, cfg.SpoolMaxBytes)
	if err != nil {
		return nil, err
	}
	return &Agent{
		cfg:   cfg,
		log:   cfg.Log.With("component", "agent", "device", cfg.DeviceID),
		keys:  keys,
		spool: spool,
		col:   collector{procRoot: cfg.ProcRoot, osRelease: cfg.OSRelease, firmware: cfg.Firmware, configs: cfg.ConfigFiles},
	}, nil
}

// Enroll makes sure the agent has a certificate. A stored one is reused;
// otherwise the agent fetches the CA chain, makes its key and enrols with
// the token. Returns an error if there is no stored certificate and no
// token, and an *ESTError if the server refuses.
func (a *Agent) Enroll(ctx context.Context) error {
	if a.keys.HasCertificate() {
		cert, err := a.keys.Certificate()
		if err != nil {
			return err
		}
		chain, err := a.keys.Chain()
		if err != nil {
			return err
		}
		if id, err := identity.DeviceIDFromCertificate(cert.Leaf); err != nil || id != a.cfg.DeviceID {
			return fmt.Errorf("stored certificate in %s is not for device %s (%v)", a.keys.Dir(), a.cfg.DeviceID, err)
		}
		a.chain = chain
		a.cert.Store(cert)
		est, err := a.estClient()
		if err != nil {
			return err
		}
		a.est = est
		a.log.Info("using stored certificate", "serial", identity.SerialString(cert.Leaf.SerialNumber), "not_after", cert.Leaf.NotAfter)
		return nil
	}
	if a.cfg.Token == "" {
		return fmt.Errorf("enrol device %s: no certificate stored in %s and no enrolment token given", a.cfg.DeviceID, a.keys.Dir())
	}
	est, err := NewESTClient(a.cfg.Server, a.cfg.Trust, a.log)
	if err != nil {
		return fmt.Errorf("enrol device %s: %w", a.cfg.DeviceID, err)
	}
	chain, err := est.CACerts(ctx)
	if err != nil {
		return fmt.Errorf("enrol device %s: %w", a.cfg.DeviceID, err)
	}
	est.TrustChain(chain)
	key, err := a.keys.Key()
	if err != nil {
		return err
	}
	csr, err := DeviceCSR(a.cfg.DeviceID, key)
	if err != nil {
		return err
	}
	leaf, err := est.SimpleEnroll(ctx, a.cfg.DeviceID, a.cfg.Token, csr)
	if err != nil {
		return fmt.Errorf("enrol device %s: %w", a.cfg.DeviceID, err)
	}
	if err := checkIssued(leaf, a.cfg.DeviceID, key, chain); err != nil {
		return fmt.Errorf("enrol device %s: %w", a.cfg.DeviceID, err)
	}
	cert, err := tlsCertificate(leaf, key, chain)
	if err != nil {
		return err
	}
	// The chain and trust first: a stored certificate means enrolment is
	// complete.
	if err := a.keys.SaveChain(chain); err != nil {
		return err
	}
	if err := a.keys.SaveServerTrust(a.cfg.Trust.CAPEM, a.cfg.Trust.Fingerprint); err != nil {
		return err
	}
	if err := a.keys.SaveCertificate(leaf); err != nil {
		return err
	}
	a.chain, a.est = chain, est
	a.cert.Store(cert)
	a.log.Info("enrolled", "serial", identity.SerialString(leaf.SerialNumber), "not_after", leaf.NotAfter)
	return nil
}

// estClient returns an EST client for renewal after a restart: it trusts
// the configured anchors, those stored at enrolment, and the stored CA
// chain.
func (a *Agent) estClient() (*ESTClient, error) {
	trust := a.cfg.Trust
	caPEM, fp := a.keys.ServerTrust()
	trust.CAPEM = append(append(append([]byte{}, trust.CAPEM...), caPEM...), identity.EncodeCertsPEM(a.chain...)...)
	if trust.Fingerprint == nil {
		trust.Fingerprint = fp
	}
	return NewESTClient(a.cfg.Server, trust, a.log)
}

// Certificate returns the certificate the agent presents now.
func (a *Agent) Certificate() *x509.Certificate {
	if c := a.cert.Load(); c != nil {
		return c.Leaf
	}
	return nil
}

// Spooled returns how many messages wait in the spool.
func (a *Agent) Spooled() int { return a.spool.Len() }

// Run opens the sensor's capture (with Sensor), enrols if needed, connects
// to the broker and reports until ctx ends.
// It returns an error only if it cannot start; a broker that is away is
// waited for.
func (a *Agent) Run(ctx context.Context) error {
	// The capture first: a missing interface or privilege is reported
	// before anything touches the network.
	var sn *sensor
	if a.cfg.Sensor != nil {
		var err error
		if sn, err = a.openSensor(); err != nil {
			return err
		}
	}
	cm, err := a.enrollAndConnect(ctx)
	if err != nil {
		if sn != nil {
			sn.capture.Close()
		}
		return err
	}
	var wg sync.WaitGroup
	wg.Go(func() { a.sendSpooled(ctx, cm) })
	wg.Go(func() { a.renewLoop(ctx) })
	if sn != nil {
		wg.Go(func() { sn.run(ctx) })
	}
	a.report(time.Now())
	t := time.NewTicker(a.cfg.Interval)
	defer t.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case now := <-t.C:
			a.report(now)
		}
	}
	wg.Wait()
	dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = cm.Disconnect(dctx)
	return nil
}

// report queues the telemetry and, if it changed, the inventory.
func (a *Agent) report(now time.Time) {
	inv := a.col.inventory(a.cfg.DeviceID, now)
	if a.lastInv == nil || !reflect.DeepEqual(withoutTime(*a.lastInv), withoutTime(inv)) {
		if a.enqueue("inventory", inv) == nil {
			a.lastInv = &inv
		}
	}
	_ = a.enqueue("telemetry", a.telemetry(now))
}

func withoutTime(inv Inventory) Inventory {
	inv.CollectedAt = time.Time{}
	return inv
}

// telemetry collects one telemetry report.
func (a *Agent) telemetry(now time.Time) Telemetry {
	a.seq++
	ns := a.col.net()
	tm := Telemetry{
		DeviceID:        a.cfg.DeviceID,
		Seq:             a.seq,
		Time:            now.UTC(),
		ListeningPorts:  ns.Listening,
		EstablishedTCP:  ns.Established,
		RemoteAddresses: ns.Remotes,
		SpoolDropped:    a.spool.Dropped(),
		SkippedLines:    ns.Skipped,
	}
	if tm.ListeningPorts == nil {
		tm.ListeningPorts = []Port{}
	}
	if tm.RemoteAddresses == nil {
		tm.RemoteAddresses = []string{}
	}
	ifaces, skipped, err := a.col.netDev()
	if err != nil {
		a.log.Warn("cannot read interface counters", "error", err)
	}
	tm.SkippedLines += skipped
	tm.Totals = sumCounters(ifaces)
	if !a.prevAt.IsZero() {
		tm.Delta = delta(tm.Totals, a.prev)
		tm.DeltaSeconds = now.Sub(a.prevAt).Seconds()
	}
	a.prev, a.prevAt = tm.Totals, now
	return tm
}

// enqueue puts a report for devices/{id}/{kind} into the spool.
func (a *Agent) enqueue(kind string, v any) error {
	payload, err := json.Marshal(v)
	if err != nil {
		a.log.Error("cannot queue report", "kind", kind, "error", err)
		return err
	}
	return a.enqueueRaw(kind, payload)
}

// enqueueRaw puts an encoded report for devices/{id}/{kind} into the
// spool.
func (a *Agent) enqueueRaw(kind string, payload []byte) error {
	err := a.spool.Append("devices/"+a.cfg.DeviceID+"/"+kind, payload)
	if err != nil {
		a.log.Error("cannot queue report", "kind", kind, "error", err)
	}
	return err
}

// sendSpooled publishes the spool's messages in order with QoS 1, removing
// each only once the broker has acknowledged it, until ctx ends. A message
// the broker refuses (PUBACK with an error reason) is dropped, since
// sending it again would be refused again and hold up everything behind
// it.
func (a *Agent) sendSpooled(ctx context.Context, cm *autopaho.ConnectionManager) {
	for {
		wake := a.spool.Wait()
		e, ok := a.spool.Oldest()
		if !ok {
			select {
			case <-wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		if err := cm.AwaitConnection(ctx); err != nil {
			return
		}
		pctx, cancel := context.WithTimeout(ctx, publishTimeout)
		resp, err := cm.Publish(pctx, &paho.Publish{QoS: 1, Topic: e.Topic, Payload: e.Payload})
		cancel()
		switch {
		case resp != nil && resp.ReasonCode >= 0x80:
			a.log.Warn("broker refused a report; dropping it", "topic", e.Topic, "reason_code", resp.ReasonCode)
			_ = a.spool.Remove(e.Seq)
		case err != nil:
			a.log.Debug("publish failed; will retry", "topic", e.Topic, "error", err)
			select {
			case <-time.After(200 * time.Millisecond):
			case <-ctx.Done():
				return
			}
		default:
			if err := a.spool.Remove(e.Seq); err != nil {
				a.log.Error("cannot remove a sent report from the spool", "error", err)
			}
		}
	}
}

// enrollAndConnect enrols if needed and starts the connection manager.
func (a *Agent) enrollAndConnect(ctx context.Context) (*autopaho.ConnectionManager, error) {
	if err := a.Enroll(ctx); err != nil {
		return nil, err
	}
	return a.connect(ctx)
}

// connect starts the MQTT connection manager; it keeps reconnecting
// until ctx ends.
func (a *Agent) connect(ctx context.Context) (*autopaho.ConnectionManager, error) {
	u := &url.URL{Scheme: "tls", Host: a.cfg.MQTTAddr}
	cfg := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{u},
		TlsCfg:                        a.connTLSConfig(),
		KeepAlive:                     30,
		CleanStartOnInitialConnection: true,
		ReconnectBackoff:              jitteredBackoff(a.cfg.BackoffMin, a.cfg.BackoffMax),
		ConnectTimeout:                15 * time.Second,
		OnConnectionUp: func(*autopaho.ConnectionManager, *paho.Connack) {
			a.log.Info("connected to broker", "broker", a.cfg.MQTTAddr)
		},
		OnConnectionDown: func() bool {
			a.log.Warn("connection to broker lost; reports go to the spool", "broker", a.cfg.MQTTAddr)
			return true
		},
		OnConnectError: func(err error) {
			a.log.Warn("cannot connect to broker", "broker", a.cfg.MQTTAddr, "error", err)
		},
		ClientConfig: paho.ClientConfig{ClientID: a.cfg.DeviceID},
	}
	cm, err := autopaho.NewConnection(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to broker %s: %w", a.cfg.MQTTAddr, err)
	}
	return cm, nil
}

// connTLSConfig is the TLS configuration of the broker connection: TLS
// 1.3, the CA chain (and any configured roots) to verify the broker, and
// the device certificate.
func (a *Agent) connTLSConfig() *tls.Config {
	roots, _ := a.cfg.Trust.pool() // checked by Validate
	if roots == nil {
		roots = x509.NewCertPool()
	}
	for _, c := range a.chain {
		if isSelfSigned(c) {
			roots.AddCert(c)
		}
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		RootCAs:    roots,
		// Asked at every handshake, so a reconnect presents the
		// certificate renewed in the meantime.
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return a.cert.Load(), nil
		},
	}
}

// jitteredBackoff waits nothing before the first attempt, then a random
// time between lo and a ceiling that doubles with each failed attempt up
// to hi, so a fleet that lost its broker does not come back all at once.
func jitteredBackoff(lo, hi time.Duration) func(int) time.Duration {
	return func(attempt int) time.Duration {
		if attempt <= 0 {
			return 0
		}
		ceil := hi
		if attempt < 32 {
			ceil = min(hi, lo<<(attempt-1))
		}
		if ceil <= lo {
			return lo
		}
		return lo + rand.N(ceil-lo+1)
	}
}

// renewAt is when a certificate should be renewed: at two thirds of its
// lifetime.
func renewAt(c *x509.Certificate) time.Time {
	return c.NotBefore.Add(c.NotAfter.Sub(c.NotBefore) * 2 / 3)
}

// renewLoop renews the certificate when it is due, retrying failures with
// growing waits, until ctx ends.
func (a *Agent) renewLoop(ctx context.Context) {
	next := renewAt(a.Certificate())
	failures := 0
	for {
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if err := a.renew(ctx); err != nil {
			failures++
			wait := min(minRenewalInterval<<min(failures, 6), time.Hour)
			a.log.Error("certificate renewal failed; will retry", "error", err, "retry_in", wait, "not_after", a.Certificate().NotAfter)
			next = time.Now().Add(wait)
			continue
		}
		failures = 0
		// A CA that issues short certificates must not make this spin.
		next = renewAt(a.Certificate())
		if until := time.Until(next); until < minRenewalInterval {
			next = time.Now().Add(minRenewalInterval)
		}
	}
}

// renew gets a new certificate for the device's key over
// /simplereenroll, stores it and makes the next TLS handshake present it.
func (a *Agent) renew(ctx context.Context) error {
	current := a.cert.Load()
	if current == nil || a.est == nil {
		return errors.New("renew: not enrolled")
	}
	key, err := a.keys.Key()
	if err != nil {
		return err
	}
	csr, err := DeviceCSR(a.cfg.DeviceID, key)
	if err != nil {
		return err
	}
	leaf, err := a.est.SimpleReenroll(ctx, current, csr)
	if err != nil {
		return fmt.Errorf("renew certificate of %s: %w", a.cfg.DeviceID, err)
	}
	if err := checkIssued(leaf, a.cfg.DeviceID, key, a.chain); err != nil {
		return fmt.Errorf("renew certificate of %s: %w", a.cfg.DeviceID, err)
	}
	cert, err := tlsCertificate(leaf, key, a.chain)
	if err != nil {
		return err
	}
	if err := a.keys.SaveCertificate(leaf); err != nil {
		return err
	}
	a.cert.Store(cert)
	a.log.Info("certificate renewed", "serial", identity.SerialString(leaf.SerialNumber), "not_after", leaf.NotAfter)
	return nil
}
