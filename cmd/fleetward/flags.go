package main

import (
	"context"
	"os"
	"os/user"

	"github.com/urfave/cli/v3"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/app"
)

// storageFlags select where fleetward's state lives; shared by every
// command that opens it.
func storageFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "data", Usage: "data directory: master key, TLS certificate, embedded bus and (without --database) the SQLite file", Sources: cli.EnvVars("FLEETWARD_DATA"), Value: "fleetward-data"},
		&cli.StringFlag{Name: "database", Usage: "PostgreSQL URL (postgres://…) instead of SQLite in --data", Sources: cli.EnvVars("FLEETWARD_DATABASE")},
	}
}

func coreConfig(cmd *cli.Command) app.Config {
	return app.Config{DataDir: cmd.String("data"), DatabaseURL: cmd.String("database")}
}

// cliContext attributes changes made by a CLI command to the local user.
func cliContext(ctx context.Context) context.Context {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return actor.With(ctx, actor.Actor{Name: "cli:" + name, Remote: host})
}
