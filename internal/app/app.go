package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/fleetward/fleetward/internal/api"
	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/audit"
	"github.com/fleetward/fleetward/internal/auth"
	"github.com/fleetward/fleetward/internal/broker"
	"github.com/fleetward/fleetward/internal/bus"
	"github.com/fleetward/fleetward/internal/identity"
	"github.com/fleetward/fleetward/internal/inventory"
	"github.com/fleetward/fleetward/internal/ledger"
	"github.com/fleetward/fleetward/internal/secrets"
	"github.com/fleetward/fleetward/internal/store"
	"github.com/fleetward/fleetward/internal/telemetry"
	"github.com/fleetward/fleetward/internal/web"
)

// Core is storage, secrets, the ledger and the services: what the CLI's
// administrative commands need, without listeners or the bus.
type Core struct {
	Config    Config
	Log       *slog.Logger
	DB        *store.DB
	Keyring   *secrets.Keyring
	Ledger    *ledger.Ledger
	Inventory *inventory.Service
	Auth      *auth.Service
	// CA is the device certificate authority. `serve` creates it on first
	// start (online root); `fleetward ca init --offline-root` can make it
	// beforehand with the root key kept off the server.
	CA *identity.CA
	// Telemetry keeps device measurements (broker-side and agent-reported).
	Telemetry *telemetry.Store

	// access decides which devices the broker admits and drops sessions
	// when a device loses that right.
	access *deviceAccess
}

// Services get no bus publisher (nil): they record every change in the
// ledger inside the change's own transaction, and the relay (relay.go)
// publishes ledger entries on the bus. The ledger is the outbox: an event
// cannot be lost between a commit and a publish, and changes made by CLI
// commands while the server runs reach the bus too. The inventory's
// publisher is deviceAccess, which is not the bus: it reacts in process to
// committed status changes (a quarantined device is disconnected at once).

// OpenCore opens storage, the master key, the ledger and the services.
func OpenCore(ctx context.Context, cfg Config) (*Core, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Log
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	kr, err := secrets.Load(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	db, err := store.Open(ctx, store.Config{URL: cfg.DatabaseURL, Dir: cfg.DataDir})
	if err != nil {
		return nil, err
	}
	lg, err := ledger.Open(ctx, db, ledger.Options{Sealer: kr, Log: log.With("component", "ledger")})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	c := &Core{Config: cfg, Log: log, DB: db, Keyring: kr, Ledger: lg}
	c.access = newDeviceAccess(nil, log.With("component", "access"))
	c.Inventory = inventory.NewService(db, lg, c.access, kr, log.With("component", "inventory"))
	c.CA = identity.NewCA(db, kr, lg, identity.Options{Log: log.With("component", "identity"), OnRevoke: c.access.certificateRevoked, Classes: cfg.Classes.caPolicies()})
	c.access.ca, c.access.inventory = c.CA, c.Inventory
	c.Telemetry = telemetry.NewStore(db)
	c.Auth = auth.NewService(db, lg, nil, kr, log.With("component", "auth"),
		auth.Options{AdminsWithoutMFAInsecure: cfg.InsecureDemoLogin})
	return c, nil
}

// ensureCA creates the certificate authority (with an online root) unless
// it exists, made by an earlier start or by `fleetward ca init`.
func (c *Core) ensureCA(ctx context.Context) error {
	if _, err := c.CA.Chain(ctx); err == nil {
		return nil
	} else if !apperr.Is(err, apperr.Conflict) {
		return fmt.Errorf("certificate authority: %w", err)
	}
	if err := c.CA.Init(ctx, identity.InitOptions{}); err != nil {
		return fmt.Errorf("create the certificate authority: %w", err)
	}
	c.Log.Info("certificate authority created", "root", "online (use 'fleetward ca init --offline-root' before the first start to keep it offline)")
	return nil
}

// Close signs a last checkpoint and closes storage.
func (c *Core) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Ledger.Checkpoint(ctx); err != nil {
		c.Log.Warn("final ledger checkpoint failed", "err", err)
	}
	return c.DB.Close()
}

// Server is a running fleetward: Core plus the bus, the event relay, the
// API and the dashboard behind HTTPS.
type Server struct {
	*Core
	Bus *bus.Bus
	API *api.Server
	// Broker is the MQTT broker; nil when Config.MQTTAddr is empty.
	Broker *broker.Broker

	deviceMsgs *deviceMessages
	est        *identity.EST
	audit      *auditor
	alerts     *alerts
	// metricWatch runs the metric detectors; nil when they are off or
	// there is no broker.
	metricWatch *metricWatch
	Metrics     *metrics.Set
	// URL is where the dashboard is reachable once Start returned.
	URL string
	// CertFingerprint identifies the server's TLS certificate.
	CertFingerprint string

	http     *http.Server
	listener net.Listener
	stop     context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
	stopErr  error
	relayed  atomic.Uint64
	// relaySkipped counts ledger entries the bus refused for good.
	relaySkipped atomic.Uint64
}

// Start opens everything and begins serving. It returns once the listener
// is bound; Stop (or cancelling ctx) shuts it down.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	core, err := OpenCore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	cfg = core.Config
	log := core.Log
	if err := core.ensureCA(ctx); err != nil {
		core.Close()
		return nil, err
	}
	b, err := bus.Open(ctx, bus.Config{URL: cfg.NATSURL, Dir: cfg.DataDir, Log: log.With("component", "bus")})
	if err != nil {
		core.Close()
		return nil, fmt.Errorf("open bus: %w", err)
	}
	s := &Server{Core: core, Bus: b, Metrics: metrics.NewSet(), deviceMsgs: newDeviceMessages()}
	s.API = api.New(api.Deps{
		Inventory: core.Inventory, Auth: core.Auth, Ledger: core.Ledger,
		Health: s.health, Metrics: s.Metrics, WriteMetrics: s.writeMetrics, Log: log.With("component", "api"),
		MetricsPublic: cfg.MetricsPublic, PlaintextInsecure: cfg.HTTPPlaintextInsecure,
	})
	registerPKI(s.API, core.CA)
	registerDeviceAccessAPI(s)
	policies := cfg.Classes.brokerPolicies()
	if _, ok := policies["default"]; !ok {
		policies["default"] = broker.DefaultPolicy()
	}
	s.audit = newAuditor(core, policies, cfg.scanAllowed, log.With("component", "audit"))
	registerAuditAPI(s.API, s.audit)
	s.alerts = newAlerts(core)
	core.access.watchInventory(s.alerts.inventoryChanged)
	registerAlertAPI(s.API, s.alerts)
	registerScoreAPI(s.API, s.alerts, core.Telemetry)
	if cfg.MQTTAddr != "" && !cfg.MetricDetectOff {
		if s.metricWatch, err = newMetricWatch(ctx, cfg, core.DB, s.alerts, log.With("component", "metricdetect")); err != nil {
			s.closeAll()
			return nil, err
		}
	}
	s.est = registerEST(s.API, core.CA, core.Inventory, cfg.ESTRatePerMinute)
	web.Register(s.API, web.Deps{
		Inventory: core.Inventory, Auth: core.Auth, Ledger: core.Ledger, Log: log.With("component", "web"),
		Connectivity:      dashboardConnectivity{s},
		Enrolments:        enrolmentDecisions{core.CA, core.Inventory},
		Findings:          dashboardFindings{s.audit.store, s.audit},
		Alerts:            s.alerts.store,
		InsecureDemoLogin: cfg.InsecureDemoLogin, PlaintextInsecure: cfg.HTTPPlaintextInsecure,
	})

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		s.closeAll()
		return nil, fmt.Errorf("listen on --http %s: %w", cfg.HTTPAddr, err)
	}
	// One certificate from the CA serves HTTPS and MQTT.
	cert, fp, err := serverCertificate(ctx, core.CA, cfg.DataDir, certHosts(cfg.HTTPAddr, cfg.MQTTAddr), time.Now())
	if err != nil {
		ln.Close()
		s.closeAll()
		return nil, err
	}
	s.CertFingerprint = fp
	scheme := "https"
	if cfg.HTTPPlaintextInsecure {
		scheme = "http"
		log.Warn("serving HTTP WITHOUT TLS because --http-plaintext-insecure is set", "addr", ln.Addr().String())
	} else {
		ln = tls.NewListener(ln, &tls.Config{
			Certificates: []tls.Certificate{cert},
			MinVersion:   tls.VersionTLS12, // browsers; TLS 1.3 with X25519MLKEM768 is preferred by Go
			NextProtos:   []string{"h2", "http/1.1"},
			// EST re-enrolment and manufacturer (IDevID) enrolment
			// authenticate with a client certificate; the EST handlers
			// verify it themselves. Nothing else looks at it.
			ClientAuth: tls.RequestClientCert,
		})
	}
	if cfg.MQTTAddr != "" {
		if err := s.startBroker(ctx, cert); err != nil {
			ln.Close()
			s.closeAll()
			return nil, err
		}
	}
	s.listener = ln
	s.URL = scheme + "://" + browsable(ln.Addr().String())
	s.http = &http.Server{
		Handler:           s.API.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute, // imports of large fleets
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stop = stop
	if s.metricWatch != nil {
		if err := s.metricWatch.subscribe(runCtx, b); err != nil {
			stop()
			ln.Close()
			s.closeAll()
			return nil, fmt.Errorf("metric detectors: %w", err)
		}
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.metricWatch.keep(runCtx) }()
	}
	s.audit.base = runCtx
	s.audit.loggingProblem = s.loggingProblem
	if s.Broker != nil {
		s.audit.sessions = s.Broker.Sessions
	}
	s.wg.Add(5)
	go func() { defer s.wg.Done(); s.audit.schedule(runCtx, cfg) }()
	go func() { defer s.wg.Done(); s.alerts.attributeLoop(runCtx, log.With("component", "alerts")) }()
	go func() { defer s.wg.Done(); core.Ledger.Run(runCtx) }()
	go func() { defer s.wg.Done(); s.relay(runCtx) }()
	if s.Broker != nil {
		s.wg.Add(2)
		go func() { defer s.wg.Done(); s.sampleBroker(runCtx) }()
		go func() { defer s.wg.Done(); s.ingestDeviceMessages(runCtx) }()
	}
	go func() {
		defer s.wg.Done()
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", "err", err)
		}
	}()
	log.Info("fleetward serving", "url", s.URL, "mqtt", s.MQTTAddr(), "storage", core.DB.Location, "bus", busName(cfg.NATSURL), "tls_fingerprint", s.CertFingerprint)
	return s, nil
}

// Stop shuts the server down gracefully: HTTP first, then the background
// loops (the ledger signs a last checkpoint), then the bus and storage.
// Calling it again returns the first call's result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := s.http.Shutdown(ctx)
		s.stop()
		s.wg.Wait()
		s.audit.scans.Wait()
		s.stopErr = errors.Join(err, s.closeAll())
	})
	return s.stopErr
}

func (s *Server) closeAll() error {
	var err error
	if s.Broker != nil {
		err = s.Broker.Close()
	}
	return errors.Join(err, s.Bus.Close(), s.Core.Close())
}

func (s *Server) health(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := s.DB.PingContext(ctx); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	if err := s.Bus.Healthy(ctx); err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	return nil
}

// writeMetrics adds figures computed at scrape time.
func (s *Server) writeMetrics(ctx context.Context, b *strings.Builder) {
	if st, err := s.Inventory.FleetStats(ctx); err == nil {
		b.WriteString("# HELP fleetward_devices Devices in the inventory by status.\n# TYPE fleetward_devices gauge\n")
		for _, status := range inventory.Statuses {
			fmt.Fprintf(b, "fleetward_devices{status=%q} %d\n", status, st.ByStatus[status])
		}
	}
	if cp, err := s.Ledger.Latest(ctx); err == nil {
		fmt.Fprintf(b, "# HELP fleetward_ledger_checkpoint_size Entries covered by the latest signed checkpoint.\n# TYPE fleetward_ledger_checkpoint_size gauge\nfleetward_ledger_checkpoint_size %d\n", cp.Size)
	}
	b.WriteString("# HELP fleetward_auth_events_total Authentication and authorization outcomes.\n# TYPE fleetward_auth_events_total counter\n")
	for name, n := range s.Auth.Metrics() {
		fmt.Fprintf(b, "fleetward_auth_events_total{event=%q} %d\n", name, n)
	}
	if s.Broker != nil {
		sessions := s.Broker.Sessions()
		pq := broker.CountPostQuantum(sessions)
		fmt.Fprintf(b, "# HELP fleetward_mqtt_sessions Live device MQTT sessions.\n# TYPE fleetward_mqtt_sessions gauge\nfleetward_mqtt_sessions %d\n", len(sessions))
		fmt.Fprintf(b, "# HELP fleetward_mqtt_sessions_post_quantum Live sessions whose TLS key exchange is a hybrid with ML-KEM.\n# TYPE fleetward_mqtt_sessions_post_quantum gauge\nfleetward_mqtt_sessions_post_quantum %d\n", pq)
		b.WriteString("# HELP fleetward_mqtt_security_events_total Denied connects, publishes and subscribes and malformed packets, by event type.\n# TYPE fleetward_mqtt_security_events_total counter\n")
		counts := s.Broker.SecurityEventCounts()
		for _, typ := range []string{broker.EventConnectDenied, broker.EventPublishDenied, broker.EventSubscribeDenied, broker.EventMalformedPacket} {
			fmt.Fprintf(b, "fleetward_mqtt_security_events_total{type=%q} %d\n", typ, counts[typ])
		}
		fmt.Fprintf(b, "# HELP fleetward_device_messages_dropped_total Device reports dropped because the ingest queue was full.\n# TYPE fleetward_device_messages_dropped_total counter\nfleetward_device_messages_dropped_total %d\n", s.deviceMsgs.dropped.Load())
		if w := s.metricWatch; w != nil {
			fmt.Fprintf(b, "# HELP fleetward_metric_detector_devices Devices whose metrics the metric detectors keep baselines of.\n# TYPE fleetward_metric_detector_devices gauge\nfleetward_metric_detector_devices %d\n", w.det.Devices())
			fmt.Fprintf(b, "# HELP fleetward_metric_signals_stale_total Metric signals of broker metrics events older than an hour (replayed bus history), learned but not raised.\n# TYPE fleetward_metric_signals_stale_total counter\nfleetward_metric_signals_stale_total %d\n", w.stale.Load())
			fmt.Fprintf(b, "# HELP fleetward_metric_baselines_saved_total Devices' metric baselines written to storage (each change, every minute and at stop).\n# TYPE fleetward_metric_baselines_saved_total counter\nfleetward_metric_baselines_saved_total %d\n", w.saved.Load())
			fmt.Fprintf(b, "# HELP fleetward_metric_baseline_save_errors_total Saves of metric baselines that failed (their devices are saved with the next).\n# TYPE fleetward_metric_baseline_save_errors_total counter\nfleetward_metric_baseline_save_errors_total %d\n", w.saveErrors.Load())
		}
		fmt.Fprintf(b, "# HELP fleetward_device_messages_refused_total Device reports refused as malformed.\n# TYPE fleetward_device_messages_refused_total counter\nfleetward_device_messages_refused_total %d\n", s.deviceMsgs.bad.Load())
		fmt.Fprintf(b, "# HELP fleetward_device_signals_total Edge sensor signals from devices, raised into alerts or refused as malformed.\n# TYPE fleetward_device_signals_total counter\nfleetward_device_signals_total{outcome=\"raised\"} %d\nfleetward_device_signals_total{outcome=\"refused\"} %d\n", s.deviceMsgs.signalsRaised.Load(), s.deviceMsgs.signalsRefused.Load())
		fmt.Fprintf(b, "# HELP fleetward_device_score_summaries_total Edge sensor score summaries from devices: recorded as measurements, of no inventory device, or refused as malformed.\n# TYPE fleetward_device_score_summaries_total counter\nfleetward_device_score_summaries_total{outcome=\"recorded\"} %d\nfleetward_device_score_summaries_total{outcome=\"unresolved\"} %d\nfleetward_device_score_summaries_total{outcome=\"refused\"} %d\n", s.deviceMsgs.scoresRecorded.Load(), s.deviceMsgs.scoresUnresolved.Load(), s.deviceMsgs.scoresRefused.Load())
	}
	if rep := s.audit.LastAudit(); !rep.At.IsZero() {
		b.WriteString("# HELP fleetward_findings Open, unsuppressed audit findings by severity (as of the newest audit).\n# TYPE fleetward_findings gauge\n")
		for _, sev := range audit.Severities {
			fmt.Fprintf(b, "fleetward_findings{severity=%q} %d\n", sev, rep.Summary.BySeverity[sev])
		}
		fmt.Fprintf(b, "# HELP fleetward_findings_suppressed Findings suppressed by an operator.\n# TYPE fleetward_findings_suppressed gauge\nfleetward_findings_suppressed %d\n", rep.Summary.Suppressed)
		fmt.Fprintf(b, "# HELP fleetward_fleet_risk Fleet risk score, 0-100: the mean of the riskiest tenth of devices.\n# TYPE fleetward_fleet_risk gauge\nfleetward_fleet_risk %g\n", rep.FleetRisk)
		fmt.Fprintf(b, "# HELP fleetward_audit_timestamp_seconds When the newest audit ran.\n# TYPE fleetward_audit_timestamp_seconds gauge\nfleetward_audit_timestamp_seconds %d\n", rep.At.Unix())
	}
	b.WriteString("# HELP fleetward_est_requests_total EST requests by operation and outcome (issued, pending approval, refused, rate_limited, served).\n# TYPE fleetward_est_requests_total counter\n")
	for k, n := range s.est.Outcomes() {
		fmt.Fprintf(b, "fleetward_est_requests_total{op=%q,outcome=%q} %d\n", k[0], k[1], n)
	}
	if stats, err := s.Bus.Stats(ctx); err == nil {
		b.WriteString("# HELP fleetward_bus_stream_messages Messages stored per bus stream.\n# TYPE fleetward_bus_stream_messages gauge\n")
		for name, st := range stats {
			fmt.Fprintf(b, "fleetward_bus_stream_messages{stream=%q} %d\n", name, st.Messages)
		}
	}
	fmt.Fprintf(b, "# HELP fleetward_bus_relayed_total Ledger entries published on the bus.\n# TYPE fleetward_bus_relayed_total counter\nfleetward_bus_relayed_total %d\n", s.relayed.Load())
	fmt.Fprintf(b, "# HELP fleetward_bus_relay_skipped_total Ledger entries the bus refused for good (see the log).\n# TYPE fleetward_bus_relay_skipped_total counter\nfleetward_bus_relay_skipped_total %d\n", s.relaySkipped.Load())
}

// browsable turns a listen address into one a browser can open.
func browsable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "0.0.0.0" || host == "::" || host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func busName(url string) string {
	if url == "" {
		return "embedded"
	}
	return url
}
