// Package app is fleetward's composition root: it turns one validated
// Config into storage, secrets, the ledger, the bus and the services, starts
// them in order and stops them in reverse. Only this package knows every
// other one.
package app

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/metricdetect"
)

// Config is everything `fleetward serve` needs. The zero value is not
// usable: DataDir is required (it holds the master key, the server
// certificate, the embedded bus and, by default, the SQLite database).
type Config struct {
	// DataDir holds fleetward's files. Created 0700 if missing.
	DataDir string `json:"data"`
	// DatabaseURL selects PostgreSQL (postgres://…); empty uses SQLite in
	// DataDir.
	DatabaseURL string `json:"database,omitempty"`
	// NATSURL selects an external NATS JetStream server; empty runs one
	// in-process with its store under DataDir/nats.
	NATSURL string `json:"nats,omitempty"`
	// HTTPAddr is where the dashboard and API listen (TLS), default
	// 127.0.0.1:8443.
	HTTPAddr string `json:"http"`
	// HTTPPlaintextInsecure serves HTTP without TLS. Only for a proxy that
	// terminates TLS on the same host.
	HTTPPlaintextInsecure bool `json:"http_plaintext_insecure,omitempty"`
	// MQTTAddr is where the device broker listens (mutual TLS), e.g.
	// ":8883" (the default of `serve`); empty runs no broker.
	MQTTAddr string `json:"mqtt,omitempty"`
	// MQTTPlaintextInsecure runs the broker without TLS. With no
	// certificate there is no device identity, so every connect is
	// refused: it exists only to show that plain MQTT is not served.
	MQTTPlaintextInsecure bool `json:"mqtt_plaintext_insecure,omitempty"`
	// MQTT tunes the broker's limits (packet size, rates); zero values
	// take the broker's defaults.
	MQTT MQTTLimits `json:"mqtt_limits,omitzero"`
	// ESTRatePerMinute limits EST requests per source address (a third
	// of it as burst); 0 means identity.DefaultESTRatePerMinute. Raise it
	// for enrolment through a NAT or a simulator on one address.
	ESTRatePerMinute float64 `json:"est_rate_per_minute,omitempty"`
	// ClassPolicyFile is a JSON file of per-class policies (topics, legacy
	// TLS, certificate lifetime); see ClassPolicy. Empty keeps defaults.
	ClassPolicyFile string `json:"class_policy,omitempty"`
	// Classes are the policies read from ClassPolicyFile by Validate.
	Classes ClassPolicies `json:"-"`
	// TelemetryInterval is how often broker-side device counters are
	// sampled into measurements; default 10 s.
	TelemetryInterval time.Duration `json:"telemetry_interval,omitempty"`
	// MetricDetect tunes the metric detectors, which watch the broker's
	// per-device metrics and the agents' reports for surges and new
	// listening ports (docs/DETECTION.md); zero fields take the defaults
	// of metricdetect.DefaultConfig. They need the broker (MQTTAddr).
	MetricDetect metricdetect.Config `json:"metric_detect,omitzero"`
	// MetricDetectOff turns the metric detectors off.
	MetricDetectOff bool `json:"metric_detect_off,omitempty"`
	// AuditInterval is how often the fleet is audited (findings and risk
	// scores brought up to date); default 1 h. Every scan also audits.
	AuditInterval time.Duration `json:"audit_interval,omitempty"`
	// ScanTargets are scanned every ScanInterval by the server (CIDRs,
	// addresses or host names); empty schedules no scans.
	ScanTargets []string `json:"scan_targets,omitempty"`
	// ScanInterval is the period of scheduled scans; default 24 h.
	ScanInterval time.Duration `json:"scan_interval,omitempty"`
	// ScanCredentials is "none" (default) or "default": scheduled scans
	// then try the default-credential list.
	ScanCredentials string `json:"scan_credentials,omitempty"`
	// ScanAllow are public ranges (CIDRs) the organization may scan;
	// private, loopback and link-local ranges are always allowed.
	ScanAllow []string `json:"scan_allow,omitempty"`
	// scanAllowed is ScanAllow parsed by Validate.
	scanAllowed []netip.Prefix
	// MetricsPublic serves /metrics without a token.
	MetricsPublic bool `json:"metrics_public,omitempty"`
	// InsecureDemoLogin lets administrators log in without a second
	// factor; every page then says so. Only `fleetward demo` sets it, and
	// only when asked.
	InsecureDemoLogin bool         `json:"insecure_demo_login,omitempty"`
	Log               *slog.Logger `json:"-"`
}

// MQTTLimits are the broker limits an operator may set.
type MQTTLimits struct {
	MaxPacketSize            int `json:"max_packet_size,omitempty"`
	MessagesPerSecond        int `json:"messages_per_second,omitempty"`
	BytesPerSecond           int `json:"bytes_per_second,omitempty"`
	ConnectAttemptsPerMinute int `json:"connect_attempts_per_minute,omitempty"`
}

// DefaultMQTTAddr is the broker listener of `serve` when --mqtt is not
// given.
const DefaultMQTTAddr = ":8883"

// DefaultHTTPAddr is the listener of `serve` when --http is not given.
const DefaultHTTPAddr = "127.0.0.1:8443"

// Validate checks the configuration before anything is opened and names
// the flag at fault.
func (c *Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.DataDir) == "" {
		errs = append(errs, errors.New("--data: a data directory is required"))
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = DefaultHTTPAddr
	}
	if _, port, err := net.SplitHostPort(c.HTTPAddr); err != nil || port == "" {
		errs = append(errs, fmt.Errorf("--http %q: must be HOST:PORT", c.HTTPAddr))
	} else if _, err := net.LookupPort("tcp", port); err != nil {
		errs = append(errs, fmt.Errorf("--http %q: %v", c.HTTPAddr, err))
	}
	if c.MQTTAddr != "" {
		if _, port, err := net.SplitHostPort(c.MQTTAddr); err != nil || port == "" {
			errs = append(errs, fmt.Errorf("--mqtt %q: must be HOST:PORT or :PORT", c.MQTTAddr))
		}
	} else if c.MQTTPlaintextInsecure {
		errs = append(errs, errors.New("--mqtt-plaintext-insecure: needs --mqtt"))
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		errs = append(errs, fmt.Errorf("--database: must be a postgres:// URL (leave it empty for SQLite in --data)"))
	}
	if c.NATSURL != "" && !strings.HasPrefix(c.NATSURL, "nats://") && !strings.HasPrefix(c.NATSURL, "tls://") {
		errs = append(errs, fmt.Errorf("--nats: must be a nats:// or tls:// URL (leave it empty for the embedded server)"))
	}
	if c.ESTRatePerMinute < 0 || c.ESTRatePerMinute > 1e6 {
		errs = append(errs, fmt.Errorf("--est-rate %g: must be from 0 to 1000000 per minute", c.ESTRatePerMinute))
	}
	if c.ClassPolicyFile != "" {
		p, err := LoadClassPolicies(c.ClassPolicyFile)
		if err != nil {
			errs = append(errs, err)
		}
		c.Classes = p
	}
	if c.AuditInterval == 0 {
		c.AuditInterval = time.Hour
	} else if c.AuditInterval < time.Second || c.AuditInterval > 7*24*time.Hour {
		errs = append(errs, fmt.Errorf("--audit-interval %s: must be from 1s to 168h", c.AuditInterval))
	}
	if c.ScanInterval == 0 {
		c.ScanInterval = 24 * time.Hour
	} else if c.ScanInterval < time.Minute {
		errs = append(errs, fmt.Errorf("--scan-interval %s: at least 1m", c.ScanInterval))
	}
	c.scanAllowed = nil
	for _, a := range c.ScanAllow {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			errs = append(errs, fmt.Errorf("--scan-allow %q: not a CIDR", a))
			continue
		}
		c.scanAllowed = append(c.scanAllowed, p.Masked())
	}
	if len(c.ScanTargets) > 0 {
		if err := (ScanRequest{Targets: c.ScanTargets, Credentials: c.ScanCredentials}).Validate(); err != nil {
			errs = append(errs, fmt.Errorf("--scan-target/--scan-credentials: %w", err))
		}
	}
	if c.TelemetryInterval == 0 {
		c.TelemetryInterval = DefaultTelemetryInterval
	} else if c.TelemetryInterval < 100*time.Millisecond || c.TelemetryInterval > time.Hour {
		errs = append(errs, fmt.Errorf("--telemetry-interval %s: must be from 100ms to 1h", c.TelemetryInterval))
	}
	if !c.MetricDetectOff {
		if err := c.MetricDetect.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", metricDetectFlag(err), err))
		}
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return errors.Join(errs...)
}

// metricDetectFlag names the flag, or the configuration field, of a
// metric detector setting Validate refused.
func metricDetectFlag(err error) string {
	switch f := apperr.As(err).Field; f {
	case "sigma", "warmup":
		return "--metric-" + f
	default:
		return "metric_detect." + f
	}
}
