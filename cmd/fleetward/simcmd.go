package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/fleetward/fleetward/internal/sim"
)

func simCommand() *cli.Command {
	return &cli.Command{
		Name:  "sim",
		Usage: "simulate a fleet: N virtual devices enrol over EST and report over mutual-TLS MQTT",
		Description: `Runs N virtual devices in one process against a running fleetward server. Each registers
in the inventory, asks for its own one-time enrolment token, makes its own key pair, gets its
certificate over EST, connects to the broker with its own TLS session (client id = device id)
and reports its inventory once and telemetry at the rate of its class: camera every 5 s,
sensor 30 s, thermostat 60 s, PLC 1 s, gateway 10 s (--speed scales them). It runs until
interrupted, or for --duration, and prints progress on standard error; --json prints the final
counters as JSON.

  fleetward sim --server https://127.0.0.1:8443 --cacert DATA/tls/ca.crt --token "$TOKEN" --devices 100`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "server", Value: "https://127.0.0.1:8443", Usage: "fleetward's HTTPS URL (API and EST)", Sources: cli.EnvVars("FLEETWARD_SERVER")},
			&cli.StringFlag{Name: "mqtt", Usage: "broker host:port (default: the server's host, port 8883)"},
			&cli.StringFlag{Name: "token", Usage: "API token with write permission (fleetward token create --role operator)", Sources: cli.EnvVars("FLEETWARD_TOKEN")},
			&cli.StringFlag{Name: "cacert", Usage: "fleetward's CA certificate (DATA/tls/ca.crt)", Sources: cli.EnvVars("FLEETWARD_CACERT")},
			&cli.IntFlag{Name: "devices", Value: 10, Usage: "number of virtual devices"},
			&cli.StringFlag{Name: "prefix", Value: "sim", Usage: "device id prefix: <prefix>-<class>-0001…"},
			&cli.IntFlag{Name: "concurrency", Value: 16, Usage: "enrolments in flight"},
			&cli.FloatFlag{Name: "speed", Value: 1, Usage: "report rate multiplier"},
			&cli.DurationFlag{Name: "duration", Usage: "stop after this long (default: until interrupted)"},
			&cli.BoolFlag{Name: "enrol-only", Usage: "enrol every device, then stop (no MQTT): measures enrolment"},
			&cli.BoolFlag{Name: "phased", Usage: "enrol every device before any connects, and time the connect phase"},
			&cli.DurationFlag{Name: "phase-gap", Usage: "with --phased, pause this long between enrolment and connection"},
			&cli.StringFlag{Name: "curve", Usage: `key exchange devices offer on MQTT: "" (Go's default, X25519MLKEM768 first) or "x25519"`},
			&cli.BoolFlag{Name: "json", Usage: "print the final counters as JSON on standard output"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			n := cmd.Int("devices")
			if n < 1 || n > 100_000 {
				return fmt.Errorf("--devices %d: must be from 1 to 100000", n)
			}
			pem, err := os.ReadFile(cmd.String("cacert"))
			if err != nil {
				return fmt.Errorf("--cacert: %w", err)
			}
			if d := cmd.Duration("duration"); d > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, d)
				defer cancel()
			}
			var curves []tls.CurveID
			switch cmd.String("curve") {
			case "":
			case "x25519":
				curves = []tls.CurveID{tls.X25519}
			case "x25519mlkem768":
				curves = []tls.CurveID{tls.X25519MLKEM768}
			default:
				return fmt.Errorf("--curve %q: want x25519 or x25519mlkem768", cmd.String("curve"))
			}
			start := time.Now()
			s, err := sim.New(sim.Config{
				Server: cmd.String("server"), MQTTAddr: cmd.String("mqtt"), Token: cmd.String("token"), CAPEM: pem,
				Devices: sim.Generate(cmd.String("prefix"), n), Register: true, EnrolOnly: cmd.Bool("enrol-only"),
				Phased: cmd.Bool("phased"), PhaseGap: cmd.Duration("phase-gap"), Curves: curves,
				Concurrency: cmd.Int("concurrency"), Speed: cmd.Float("speed"),
				Progress: func(st sim.Stats) {
					fmt.Fprintf(os.Stderr, "\r\033[Ksim %s: %d/%d enrolled, %d connected, %d messages (%s), %d failures",
						time.Since(start).Round(time.Second), st.Enrolled, st.Devices, st.Connected, st.Messages,
						humanBytes(st.Bytes), st.EnrolFailures+st.ConnectErrors+st.PublishErrors)
				},
				Log: slog.Default(),
			})
			if err != nil {
				return err
			}
			err = s.Run(ctx)
			fmt.Fprintln(os.Stderr)
			st := s.Stats()
			if cmd.Bool("json") {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				enc.Encode(st)
			} else {
				fmt.Printf("%d devices: %d enrolled (%d failed) in %.1f s (%.0f/s), %d messages, %s sent, %d disconnections\n",
					st.Devices, st.Enrolled, st.EnrolFailures, st.EnrolSeconds, st.EnrolPerSecond, st.Messages, humanBytes(st.Bytes), st.Disconnections)
			}
			return err
		},
	}
}

func humanBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
