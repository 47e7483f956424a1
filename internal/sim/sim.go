// Package sim is fleetward's fleet simulator: many virtual devices in one
// process, each with its own key pair made in the process, a certificate
// obtained over EST with its own one-time token, and its own mutual-TLS
// MQTT connection to the broker, reporting like a device of its class.
// It drives the real server through its public interfaces only (the API,
// EST and MQTT), exactly as a fleet would.
package sim

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/fleetward/fleetward/internal/agent"
)

// Device is one simulated device: its inventory identity and profile.
// Firmware, OS and OSVersion, when set, are what it reports about itself
// instead of the profile's.
type Device struct {
	ID                      string
	Name                    string
	Profile                 Profile
	Firmware, OS, OSVersion string
}

// Config configures a simulation.
type Config struct {
	// Server is fleetward's HTTPS base URL (API and EST).
	Server string
	// MQTTAddr is the broker's host:port; default the server's host, 8883.
	MQTTAddr string
	// Token is an API token with write permission: it registers the
	// simulated devices and asks for their one-time enrolment tokens.
	Token string
	// CAPEM is fleetward's CA certificate (DATA/tls/ca.crt), which
	// verifies the server on HTTPS and MQTT.
	CAPEM []byte
	// Devices are the devices to simulate. Register adds them to the
	// inventory first; otherwise they must be there and active.
	Devices  []Device
	Register bool
	// EnrolOnly stops each device after enrolment: no MQTT session (for
	// measuring enrolment).
	EnrolOnly bool
	// Phased enrols every device before any connects, so the connect
	// phase (TLS handshakes and MQTT CONNECTs) is measured on its own.
	Phased bool
	// PhaseGap, with Phased, is a pause between the phases (a benchmark
	// measures the server's memory in it).
	PhaseGap time.Duration
	// Curves, if set, are the key exchanges devices offer on MQTT (e.g.
	// only tls.X25519); default Go's, X25519MLKEM768 first.
	Curves []tls.CurveID
	// Concurrency bounds enrolments in flight; default 16.
	Concurrency int
	// Speed multiplies every report rate (2 = twice as often); default 1.
	Speed float64
	// Progress, if set, is called about once a second with the counters.
	Progress func(Stats)
	Log      *slog.Logger
}

// Stats are the simulation's counters.
type Stats struct {
	Devices        int    `json:"devices"`
	Enrolled       int64  `json:"enrolled"`
	Connected      int64  `json:"connected"`
	Messages       uint64 `json:"messages"`
	Bytes          uint64 `json:"bytes"`
	EnrolFailures  uint64 `json:"enrol_failures"`
	ConnectErrors  uint64 `json:"connect_errors"`
	PublishErrors  uint64 `json:"publish_errors"`
	Disconnections uint64 `json:"disconnections"`
	// EnrolSeconds is the time from the start of Run until the last
	// enrolment finished, and EnrolPerSecond the rate over it.
	EnrolSeconds   float64 `json:"enrol_seconds"`
	EnrolPerSecond float64 `json:"enrol_per_second"`
	// With Phased: ConnectSeconds from the end of enrolment until every
	// enrolled device was connected, and ConnectPerSecond the rate.
	ConnectSeconds   float64 `json:"connect_seconds,omitempty"`
	ConnectPerSecond float64 `json:"connect_per_second,omitempty"`
}

// Generate returns n devices "<prefix>-<class>-0001"… cycling the profiles.
func Generate(prefix string, n int) []Device {
	out := make([]Device, n)
	for i := range n {
		p := Profiles[profileOrder[i%len(profileOrder)]]
		id := fmt.Sprintf("%s-%s-%04d", prefix, p.Class, i+1)
		out[i] = Device{ID: id, Name: fmt.Sprintf("Simulated %s %d", p.Class, i+1), Profile: p}
	}
	return out
}

// ForClass returns a simulated device for an existing inventory entry,
// with the profile closest to its class and the firmware and OS the
// inventory knows.
func ForClass(id, name, class, firmware, os, osVersion string) Device {
	return Device{ID: id, Name: name, Profile: profileForClass(class), Firmware: firmware, OS: os, OSVersion: osVersion}
}

// Sim runs a simulated fleet.
type Sim struct {
	cfg   Config
	roots *x509.CertPool
	log   *slog.Logger
	api   *http.Client
	est   *agent.ESTClient
	// started is when Run began; lastEnrol the Unix nanoseconds of the
	// latest enrolment.
	started   time.Time
	lastEnrol atomic.Int64
	// With Phased: enrolDone closes when every enrolment has finished;
	// connectStart and allConnected (Unix nanoseconds) time the connect
	// phase.
	enrolDone    chan struct{}
	connectStart atomic.Int64
	allConnected atomic.Int64
	stats        struct {
		enrolled, connected                                                atomic.Int64
		messages, bytes, enrolFail, connectErr, publishErr, disconnections atomic.Uint64
	}
}

// New checks cfg and returns a simulation ready to Run.
func New(cfg Config) (*Sim, error) {
	u, err := url.Parse(cfg.Server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("--server %q: want the server's https:// URL", cfg.Server)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(cfg.CAPEM) {
		return nil, errors.New("--cacert: the server's CA certificate (PEM) is required")
	}
	if cfg.Token == "" {
		return nil, errors.New("--token: an API token with write permission is required")
	}
	if cfg.MQTTAddr == "" {
		cfg.MQTTAddr = net.JoinHostPort(u.Hostname(), agent.DefaultMQTTPort)
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	if cfg.Speed <= 0 {
		cfg.Speed = 1
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	est, err := agent.NewESTClient(cfg.Server, agent.ServerTrust{CAPEM: cfg.CAPEM}, cfg.Log)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}, MaxIdleConnsPerHost: cfg.Concurrency}
	return &Sim{cfg: cfg, roots: roots, log: cfg.Log.With("component", "sim"), api: &http.Client{Transport: tr, Timeout: 30 * time.Second}, est: est}, nil
}

// Stats returns the counters so far.
func (s *Sim) Stats() Stats {
	var secs, rate float64
	if last := s.lastEnrol.Load(); last > 0 {
		secs = time.Unix(0, last).Sub(s.started).Seconds()
		if secs > 0 {
			rate = float64(s.stats.enrolled.Load()) / secs
		}
	}
	var csecs, crate float64
	if start, end := s.connectStart.Load(), s.allConnected.Load(); start > 0 && end > start {
		csecs = time.Duration(end - start).Seconds()
		crate = float64(s.stats.enrolled.Load()) / csecs
	}
	return Stats{
		EnrolSeconds: secs, EnrolPerSecond: rate, ConnectSeconds: csecs, ConnectPerSecond: crate,
		Devices: len(s.cfg.Devices), Enrolled: s.stats.enrolled.Load(), Connected: s.stats.connected.Load(),
		Messages: s.stats.messages.Load(), Bytes: s.stats.bytes.Load(), EnrolFailures: s.stats.enrolFail.Load(),
		ConnectErrors: s.stats.connectErr.Load(), PublishErrors: s.stats.publishErr.Load(), Disconnections: s.stats.disconnections.Load(),
	}
}

// Run registers (if asked), enrols and connects every device, then keeps
// them reporting until ctx ends. It returns an error only when no device
// could be enrolled.
func (s *Sim) Run(ctx context.Context) error {
	s.started = time.Now()
	if s.cfg.Progress != nil {
		go func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					s.cfg.Progress(s.Stats())
				}
			}
		}()
	}
	var wg sync.WaitGroup
	slots := make(chan struct{}, s.cfg.Concurrency)
	var firstErr atomic.Value
	s.enrolDone = make(chan struct{})
	var enrolling sync.WaitGroup
	enrolling.Add(len(s.cfg.Devices))
	for i, d := range s.cfg.Devices {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			enrolling.Add(-(len(s.cfg.Devices) - i))
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cert, err := s.enrol(ctx, d)
			<-slots
			enrolling.Done()
			if err != nil {
				s.stats.enrolFail.Add(1)
				firstErr.CompareAndSwap(nil, err)
				s.log.Warn("simulated device not enrolled", "device", d.ID, "err", err)
				return
			}
			s.stats.enrolled.Add(1)
			s.lastEnrol.Store(time.Now().UnixNano())
			if s.cfg.EnrolOnly {
				return
			}
			if s.cfg.Phased {
				select {
				case <-s.enrolDone:
				case <-ctx.Done():
					return
				}
			}
			s.runDevice(ctx, d, cert, mrand.New(mrand.NewPCG(uint64(i), 0x5eed)))
		}()
	}
	go func() {
		enrolling.Wait()
		if s.cfg.Phased && s.cfg.PhaseGap > 0 {
			select {
			case <-time.After(s.cfg.PhaseGap):
			case <-ctx.Done():
			}
		}
		s.connectStart.Store(time.Now().UnixNano())
		close(s.enrolDone)
	}()
	wg.Wait()
	if s.stats.enrolled.Load() == 0 && len(s.cfg.Devices) > 0 {
		if err, _ := firstErr.Load().(error); err != nil {
			return fmt.Errorf("no simulated device could enrol: %w", err)
		}
	}
	return nil
}

// enrol registers the device if asked, gets its one-time token and its
// certificate over EST. The key never leaves this function's device.
func (s *Sim) enrol(ctx context.Context, d Device) (*tls.Certificate, error) {
	if s.cfg.Register {
		body, _ := json.Marshal(map[string]any{
			"id": d.ID, "name": d.Name, "class": d.Profile.Class, "vendor": d.Profile.Vendor, "model": d.Profile.Model,
			"firmware_version": d.Profile.Firmware, "os": d.Profile.OS, "status": "active", "tags": []string{"simulated"},
		})
		status, resp, err := s.call(ctx, "POST", "/api/v1/devices", body)
		if err != nil {
			return nil, err
		}
		if status != http.StatusCreated && status != http.StatusConflict {
			return nil, fmt.Errorf("register %s: HTTP %d: %s", d.ID, status, resp)
		}
	}
	status, resp, err := s.call(ctx, "POST", "/api/v1/devices/"+url.PathEscape(d.ID)+"/enrollment-token", []byte(`{}`))
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK && status != http.StatusCreated {
		return nil, fmt.Errorf("enrolment token for %s: HTTP %d: %s", d.ID, status, resp)
	}
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(resp, &tok); err != nil || tok.Token == "" {
		return nil, fmt.Errorf("enrolment token for %s: unreadable answer %q", d.ID, resp)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	csr, err := agent.DeviceCSR(d.ID, key)
	if err != nil {
		return nil, err
	}
	var cert *x509.Certificate
	for attempt := 0; ; attempt++ {
		cert, err = s.est.SimpleEnroll(ctx, d.ID, tok.Token, csr)
		var estErr *agent.ESTError
		if err == nil || !errors.As(err, &estErr) || estErr.Status != http.StatusTooManyRequests || attempt == 20 {
			break
		}
		// Rate limited: the token was not used; wait and try again.
		select {
		case <-time.After(time.Duration(1+attempt) * 500 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("enrol %s: %w", d.ID, err)
	}
	return &tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: crypto.Signer(key), Leaf: cert}, nil
}

// call makes an API request with the simulation's token.
func (s *Sim) call(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(s.cfg.Server, "/")+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.cfg.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.api.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, nil
}

// runDevice keeps one device connected and reporting until ctx ends,
// reconnecting with jittered backoff when the broker drops it.
func (s *Sim) runDevice(ctx context.Context, d Device, cert *tls.Certificate, r *mrand.Rand) {
	backoff := time.Second
	for ctx.Err() == nil {
		connected, err := s.session(ctx, d, cert, r)
		if ctx.Err() != nil {
			return
		}
		if connected {
			s.stats.disconnections.Add(1)
			backoff = time.Second
		} else {
			s.stats.connectErr.Add(1)
		}
		if err != nil {
			s.log.Debug("simulated device session ended", "device", d.ID, "err", err)
		}
		wait := time.Duration(float64(backoff) * (0.5 + r.Float64()))
		backoff = min(2*backoff, time.Minute)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
	}
}

// session is one MQTT connection: connect, report inventory, then
// telemetry at the profile's rate until the connection or ctx ends.
func (s *Sim) session(ctx context.Context, d Device, cert *tls.Certificate, r *mrand.Rand) (bool, error) {
	host, _, _ := net.SplitHostPort(s.cfg.MQTTAddr)
	dialer := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 15 * time.Second}, Config: &tls.Config{
		RootCAs: s.roots, ServerName: host, MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{*cert},
		CurvePreferences: s.cfg.Curves,
	}}
	conn, err := dialer.DialContext(ctx, "tcp", s.cfg.MQTTAddr)
	if err != nil {
		return false, err
	}
	lost := make(chan error, 1)
	c := paho.NewClient(paho.ClientConfig{
		// paho writes a packet in several Write calls; without the lock a
		// keep-alive PINGREQ can land inside a PUBLISH and corrupt it.
		Conn:     packets.NewThreadSafeConn(conn),
		ClientID: d.ID,
		OnClientError: func(err error) {
			select {
			case lost <- err:
			default:
			}
		},
		OnServerDisconnect: func(dc *paho.Disconnect) {
			select {
			case lost <- fmt.Errorf("server disconnected the device (reason %d)", dc.ReasonCode):
			default:
			}
		},
	})
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	ack, err := c.Connect(cctx, &paho.Connect{ClientID: d.ID, KeepAlive: 60, CleanStart: true})
	cancel()
	if err != nil {
		conn.Close()
		if ack != nil {
			return false, fmt.Errorf("connect refused: reason %d %s", ack.ReasonCode, ack.Properties.ReasonString)
		}
		return false, err
	}
	if n := s.stats.connected.Add(1); s.cfg.Phased && n == s.stats.enrolled.Load() {
		s.allConnected.CompareAndSwap(0, time.Now().UnixNano())
	}
	defer s.stats.connected.Add(-1)
	defer c.Disconnect(&paho.Disconnect{ReasonCode: 0})
	publish := func(kind string, payload []byte, qos byte) error {
		pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		_, err := c.Publish(pctx, &paho.Publish{Topic: "devices/" + d.ID + "/" + kind, QoS: qos, Payload: payload})
		if err != nil {
			s.stats.publishErr.Add(1)
			return err
		}
		s.stats.messages.Add(1)
		s.stats.bytes.Add(uint64(len(payload)))
		return nil
	}
	if err := publish("inventory", inventoryReport(d), 1); err != nil {
		return true, err
	}
	interval := time.Duration(float64(d.Profile.Interval) / s.cfg.Speed)
	// Devices of a class do not all report in step.
	timer := time.NewTimer(time.Duration(r.Int64N(int64(interval) + 1)))
	defer timer.Stop()
	var seq uint64
	for {
		select {
		case <-ctx.Done():
			return true, nil
		case err := <-lost:
			return true, err
		case now := <-timer.C:
			seq++
			in, out := uint64(200+r.IntN(2000)), uint64(d.Profile.Size+r.IntN(d.Profile.Size+1))
			if err := publish("telemetry", telemetryReport(r, d.Profile, seq, now, in, out), 0); err != nil {
				return true, err
			}
			timer.Reset(jitter(r, interval))
		}
	}
}
