// Command fleetward is the one binary of fleetward: the server, the demo,
// and the administrative and client commands.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v3"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := rootCommand().Run(ctx, os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "fleetward:", err)
		os.Exit(exitCode(err))
	}
}

func rootCommand() *cli.Command {
	return &cli.Command{
		Name:    "fleetward",
		Usage:   "security platform for IoT fleets: inventory, operators, tamper-evident ledger, API and dashboard",
		Version: version,
		Description: `fleetward knows every device of an IoT fleet, records every change and security event in a
tamper-evident Merkle ledger, and shows where the fleet stands on a dashboard.

Start here:
  fleetward demo                      a server with a simulated fleet; prints the URL and a login
  fleetward serve --data /var/lib/fleetward
                                      run for real (HTTPS on 127.0.0.1:8443)
  fleetward user add alice --role admin --data DIR < password.txt
  fleetward token create --data DIR --name ci --role auditor

Every command takes --help. Settings can also come from the environment:
FLEETWARD_DATA, FLEETWARD_DATABASE, FLEETWARD_NATS, FLEETWARD_HTTP, FLEETWARD_MASTER_KEY.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error", Sources: cli.EnvVars("FLEETWARD_LOG_LEVEL")},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json", Sources: cli.EnvVars("FLEETWARD_LOG_FORMAT")},
		},
		Before: func(ctx context.Context, cmd *cli.Command) (context.Context, error) {
			return ctx, setupLogging(cmd.String("log-level"), cmd.String("log-format"))
		},
		Commands: []*cli.Command{
			serveCommand(),
			demoCommand(),
			userCommand(),
			tokenCommand(),
			ledgerCommand(),
			caCommand(),
			simCommand(),
			deviceCommand(),
			findingsCommand(),
			agentCommand(),
			scanCommand(),
			detectCommand(),
			vulnCommand(),
		},
	}
}

func setupLogging(level, format string) error {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return fmt.Errorf("--log-level %q: must be debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, opts)))
	case "json":
		slog.SetDefault(slog.New(slog.NewJSONHandler(os.Stderr, opts)))
	default:
		return fmt.Errorf("--log-format %q: must be text or json", format)
	}
	return nil
}

// exitError carries a specific exit status, e.g. 2 for a ledger that does
// not verify.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func exitCode(err error) int {
	if e, ok := err.(*exitError); ok {
		return e.code
	}
	return 1
}
