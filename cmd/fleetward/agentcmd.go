package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/fleetward/fleetward/internal/agent"
	"github.com/fleetward/fleetward/internal/detect"
)

func agentCommand() *cli.Command {
	return &cli.Command{
		Name:  "agent",
		Usage: "run the device agent: enrol over EST, then report inventory and network metrics (and, with --sensor, detections) over MQTT",
		Description: `Runs on a device. On first start (no certificate in --data yet) it fetches the CA chain from
the EST server, makes an ECDSA P-256 key that never leaves the device, and enrols with the
one-time --token:

  fleetward agent --server https://fleet.example:8443 --device-id cam-01 --token T \
      --server-fingerprint 3f:a2:…   --data /var/lib/fleetward-agent

Trust the EST server on first contact with --ca-cert FILE (a PEM CA or server certificate) or
--server-fingerprint (SHA-256 of the server's certificate, as 'openssl x509 -fingerprint -sha256'
prints it). After that the agent trusts the CA chain the server returned.

Later starts reuse the key and certificate in --data (0700; files 0600) and need no token. The
agent connects to the broker (--mqtt, default the server's host on port 8883) over mutual TLS
1.3 with the device id as client id, publishes its inventory to devices/ID/inventory at start
and on change and metrics to devices/ID/telemetry every --interval. Reports made while the
broker is unreachable wait in --data/spool (bounded; the oldest are dropped) and are sent in
order after reconnecting. The certificate is renewed over EST at two thirds of its lifetime.

With --sensor IF the agent is also an edge sensor: it runs the detector of 'fleetward detect'
(packet rules, and the KitNET anomaly model trained on the first --sensor-fm + --sensor-ad
packets, or loaded with --sensor-model) on that interface (AF_PACKET: root or CAP_NET_RAW) and
sends only what it finds: signals in batches on devices/ID/signals, per-source score summaries
(packets, highest and mean score per --sensor-score-interval) on devices/ID/scores, and a
summary (packets, packets/s, decode counters, trained or not, threshold, signals, alerts) on
devices/ID/sensor every --sensor-interval. Packets and per-packet scores never leave the
device. The server raises the alerts, attributed to the device that sent the packets and
naming this sensor.`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "server", Usage: "EST server URL, https://HOST:8443", Required: true, Sources: cli.EnvVars("FLEETWARD_AGENT_SERVER")},
			&cli.StringFlag{Name: "device-id", Usage: "this device's id (the certificate's CN and the MQTT client id)", Required: true, Sources: cli.EnvVars("FLEETWARD_AGENT_DEVICE_ID")},
			&cli.StringFlag{Name: "token", Usage: "one-time enrolment token; used only if no certificate is stored", Sources: cli.EnvVars("FLEETWARD_AGENT_TOKEN")},
			&cli.StringFlag{Name: "data", Usage: "directory for the key, certificates and offline spool", Value: "fleetward-agent", Sources: cli.EnvVars("FLEETWARD_AGENT_DATA")},
			&cli.StringFlag{Name: "mqtt", Usage: "broker HOST:PORT (default: the server's host, port 8883)", Sources: cli.EnvVars("FLEETWARD_AGENT_MQTT")},
			&cli.StringFlag{Name: "ca-cert", Usage: "PEM file of a CA (or the server's own certificate) to trust for the EST server"},
			&cli.StringFlag{Name: "server-fingerprint", Usage: "SHA-256 of the EST server's certificate (hex, colons allowed) to trust on first contact"},
			&cli.DurationFlag{Name: "interval", Usage: "time between telemetry reports", Value: agent.DefaultInterval},
			&cli.StringFlag{Name: "firmware", Usage: "firmware version to report (default: VERSION_ID from /etc/os-release)", Sources: cli.EnvVars("FLEETWARD_FIRMWARE_VERSION")},
			&cli.StringSliceFlag{Name: "config-file", Usage: "configuration file to digest into the inventory (repeatable)"},
			&cli.IntFlag{Name: "spool-max-messages", Usage: "most reports kept while offline", Value: agent.DefaultSpoolMaxMessages},
			&cli.IntFlag{Name: "spool-max-bytes", Usage: "most bytes of reports kept while offline", Value: agent.DefaultSpoolMaxBytes},
			&cli.StringFlag{Name: "sensor", Usage: "run the edge sensor on this interface (AF_PACKET; root or CAP_NET_RAW) and send its signals and summaries", Sources: cli.EnvVars("FLEETWARD_AGENT_SENSOR")},
			&cli.IntFlag{Name: "sensor-fm", Usage: "edge sensor: packets for the feature-mapping grace period", Value: agent.DefaultSensorFMGrace},
			&cli.IntFlag{Name: "sensor-ad", Usage: "edge sensor: packets for the autoencoder training grace period", Value: agent.DefaultSensorADGrace},
			&cli.StringFlag{Name: "sensor-model", Usage: "edge sensor: score with this trained model (from 'detect --save-model') instead of training on the device"},
			&cli.BoolFlag{Name: "sensor-rules-only", Usage: "edge sensor: apply the packet rules only, without the anomaly model (small devices)"},
			&cli.BoolFlag{Name: "sensor-no-promisc", Usage: "edge sensor: do not put the interface in promiscuous mode (see only this device's traffic, broadcasts and multicast)"},
			&cli.DurationFlag{Name: "sensor-interval", Usage: "edge sensor: time between summaries; 0 means --interval"},
			&cli.DurationFlag{Name: "sensor-score-interval", Usage: "edge sensor: capture time one per-source score summary covers", Value: detect.DefaultSummaryInterval},
			&cli.StringSliceFlag{Name: "sensor-rule", Usage: "edge sensor: change a packet rule threshold, NAME=VALUE (repeatable), as 'detect --rule'; names: " + strings.Join(detect.RuleSettings(), ", ")},
		}, alertFlags("sensor-", "edge sensor: ")...),
		Action: func(ctx context.Context, cmd *cli.Command) error {
			cfg := agent.Config{
				DeviceID:         cmd.String("device-id"),
				Server:           cmd.String("server"),
				Token:            cmd.String("token"),
				DataDir:          cmd.String("data"),
				MQTTAddr:         cmd.String("mqtt"),
				Interval:         cmd.Duration("interval"),
				Firmware:         cmd.String("firmware"),
				ConfigFiles:      cmd.StringSlice("config-file"),
				SpoolMaxMessages: int(cmd.Int("spool-max-messages")),
				SpoolMaxBytes:    int64(cmd.Int("spool-max-bytes")),
			}
			if f := cmd.String("ca-cert"); f != "" {
				data, err := os.ReadFile(f)
				if err != nil {
					return fmt.Errorf("--ca-cert: %w", err)
				}
				cfg.Trust.CAPEM = data
			}
			if fp := cmd.String("server-fingerprint"); fp != "" {
				b, err := agent.ParseFingerprint(fp)
				if err != nil {
					return fmt.Errorf("--server-fingerprint: %w", err)
				}
				cfg.Trust.Fingerprint = b
			}
			if cmd.String("sensor") == "" {
				for _, name := range []string{"sensor-fm", "sensor-ad", "sensor-model", "sensor-rules-only", "sensor-no-promisc", "sensor-interval", "sensor-score-interval",
					"sensor-rule", "sensor-threshold", "sensor-target-fpr", "sensor-threshold-scale", "sensor-persist", "sensor-window", "sensor-idle-gap"} {
					if cmd.IsSet(name) {
						return fmt.Errorf("--%s is an option of the edge sensor: give --sensor IF too", name)
					}
				}
			}
			if iface := cmd.String("sensor"); iface != "" {
				anomaly, err := alertConfig(cmd, "sensor-")
				if err != nil {
					return err
				}
				cfg.Sensor = &agent.SensorConfig{
					Interface:       iface,
					FMGrace:         int(cmd.Int("sensor-fm")),
					ADGrace:         int(cmd.Int("sensor-ad")),
					RulesOnly:       cmd.Bool("sensor-rules-only"),
					NoPromiscuous:   cmd.Bool("sensor-no-promisc"),
					SummaryInterval: cmd.Duration("sensor-interval"),
					ScoreInterval:   cmd.Duration("sensor-score-interval"),
					Anomaly:         anomaly,
				}
				if err := setRules(cmd, "sensor-rule", &cfg.Sensor.Rules); err != nil {
					return err
				}
				if path := cmd.String("sensor-model"); path != "" {
					m, err := loadModel(path)
					if err != nil {
						return fmt.Errorf("--sensor-model: %w", err)
					}
					cfg.Sensor.Model = m
				}
			}
			a, err := agent.New(cfg)
			if err != nil {
				return err
			}
			return a.Run(ctx)
		},
	}
}
