package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/fleetward/fleetward/internal/app"
	"github.com/fleetward/fleetward/internal/metricdetect"
)

func serverFlags() []cli.Flag {
	return append(storageFlags(),
		&cli.StringFlag{Name: "nats", Usage: "external NATS JetStream URL (nats://…); default runs an embedded server under --data", Sources: cli.EnvVars("FLEETWARD_NATS")},
		&cli.StringFlag{Name: "http", Value: app.DefaultHTTPAddr, Usage: "HTTPS listen address of the API and dashboard", Sources: cli.EnvVars("FLEETWARD_HTTP")},
		&cli.BoolFlag{Name: "http-plaintext-insecure", Usage: "serve plain HTTP without TLS (only behind a TLS-terminating proxy on the same host)"},
		&cli.StringFlag{Name: "mqtt", Value: app.DefaultMQTTAddr, Usage: `MQTT broker listen address (mutual TLS: devices present their fleetward certificate); "" runs no broker`, Sources: cli.EnvVars("FLEETWARD_MQTT")},
		&cli.BoolFlag{Name: "mqtt-plaintext-insecure", Usage: "run the broker WITHOUT TLS (no device identity: every connect is refused)"},
		&cli.StringFlag{Name: "class-policy", Usage: "JSON file of per-class device policies: MQTT topics, legacy TLS 1.2, certificate lifetime (docs/OPERATIONS.md)", Sources: cli.EnvVars("FLEETWARD_CLASS_POLICY")},
		&cli.IntFlag{Name: "mqtt-connect-rate", Value: 60, Usage: "MQTT connection attempts allowed per minute from one source address"},
		&cli.FloatFlag{Name: "est-rate", Value: 10, Usage: "EST enrolment requests allowed per minute from one source address (burst: a third of it, at least 20)"},
		&cli.DurationFlag{Name: "telemetry-interval", Value: 10 * time.Second, Usage: "how often the broker's per-device counters are sampled into measurements"},
		&cli.BoolFlag{Name: "metric-detect", Value: true, Usage: "watch the broker's per-device metrics and the agents' reports for message, traffic and destination surges and new listening ports, and raise alerts (docs/DETECTION.md); --metric-detect=false turns it off"},
		&cli.FloatFlag{Name: "metric-sigma", Value: metricdetect.DefaultConfig.Sigma, Usage: "a metric surges above its device's baseline mean + this many deviations (and above the metric's floor)"},
		&cli.IntFlag{Name: "metric-warmup", Value: metricdetect.DefaultConfig.Warmup, Usage: "samples of a device's metric learned before it may raise an alert"},
		&cli.DurationFlag{Name: "audit-interval", Value: time.Hour, Usage: "how often the fleet is audited (findings and risk scores); every scan audits too"},
		&cli.StringSliceFlag{Name: "scan-target", Usage: "a CIDR, address or host the server scans every --scan-interval (repeatable)"},
		&cli.DurationFlag{Name: "scan-interval", Value: 24 * time.Hour, Usage: "period of the scheduled scans of --scan-target"},
		&cli.StringFlag{Name: "scan-credentials", Value: "none", Usage: `scheduled scans try default passwords on login services: "none" or "default"`},
		&cli.StringSliceFlag{Name: "scan-allow", Usage: "a public CIDR the organization is authorised to scan (private, loopback and link-local are always allowed)"},
		&cli.BoolFlag{Name: "metrics-public", Usage: "serve /metrics without a token"},
	)
}

func serverConfig(cmd *cli.Command) app.Config {
	cfg := coreConfig(cmd)
	cfg.NATSURL = cmd.String("nats")
	cfg.HTTPAddr = cmd.String("http")
	cfg.HTTPPlaintextInsecure = cmd.Bool("http-plaintext-insecure")
	cfg.MQTTAddr = cmd.String("mqtt")
	cfg.MQTTPlaintextInsecure = cmd.Bool("mqtt-plaintext-insecure")
	cfg.ClassPolicyFile = cmd.String("class-policy")
	cfg.ESTRatePerMinute = cmd.Float("est-rate")
	cfg.TelemetryInterval = cmd.Duration("telemetry-interval")
	cfg.MQTT.ConnectAttemptsPerMinute = cmd.Int("mqtt-connect-rate")
	cfg.MetricDetectOff = !cmd.Bool("metric-detect")
	cfg.MetricDetect.Sigma = cmd.Float("metric-sigma")
	cfg.MetricDetect.Warmup = cmd.Int("metric-warmup")
	cfg.AuditInterval = cmd.Duration("audit-interval")
	cfg.ScanTargets = cmd.StringSlice("scan-target")
	cfg.ScanInterval = cmd.Duration("scan-interval")
	cfg.ScanCredentials = cmd.String("scan-credentials")
	cfg.ScanAllow = cmd.StringSlice("scan-allow")
	cfg.MetricsPublic = cmd.Bool("metrics-public")
	cfg.Log = slog.Default()
	return cfg
}

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "run the fleetward server: API, dashboard, ledger and bus",
		Description: `Runs fleetward until interrupted. State lives in --data (SQLite, master key, TLS
certificate, embedded NATS) unless --database and --nats point at PostgreSQL and an external
NATS JetStream. The API and dashboard listen with TLS on --http, devices connect to the MQTT
broker on --mqtt with their own certificates (mutual TLS); both listeners use a certificate
the built-in CA issues (trust DATA/tls/ca.crt). Create the first administrator with
'fleetward user add'.`,
		Flags: serverFlags(),
		Action: func(ctx context.Context, cmd *cli.Command) error {
			s, err := app.Start(ctx, serverConfig(cmd))
			if err != nil {
				return err
			}
			<-ctx.Done()
			slog.Info("shutting down")
			return s.Stop()
		},
	}
}
