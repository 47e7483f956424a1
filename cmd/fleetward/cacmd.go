package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v3"

	"github.com/fleetward/fleetward/internal/app"
	"github.com/fleetward/fleetward/internal/identity"
)

func caCommand() *cli.Command {
	return &cli.Command{
		Name:  "ca",
		Usage: "manage the device certificate authority",
		Commands: []*cli.Command{{
			Name:  "init",
			Usage: "create the root and issuing intermediate certificates (serve does this itself on first start)",
			Description: `Creates the CA before the first 'serve'. With --offline-root FILE the root private key is
written to FILE (0600) for offline storage and never kept by the server, which then holds only
the issuing intermediate; rotating the intermediate later needs that file.`,
			Flags: append(storageFlags(),
				&cli.StringFlag{Name: "offline-root", Usage: "write the root private key to this new file instead of keeping it"},
			),
			Action: func(ctx context.Context, cmd *cli.Command) error {
				return withCore(ctx, cmd, func(ctx context.Context, c *app.Core) error {
					if err := c.CA.Init(ctx, identity.InitOptions{OfflineRootKeyFile: cmd.String("offline-root")}); err != nil {
						return err
					}
					chain, err := c.CA.Chain(ctx)
					if err != nil {
						return err
					}
					root := chain[len(chain)-1]
					fmt.Printf("certificate authority ready: root %q (valid until %s)\n", root.Subject.CommonName, root.NotAfter.Format("2006-01-02"))
					if f := cmd.String("offline-root"); f != "" {
						fmt.Printf("root private key written to %s: move it offline\n", f)
					}
					return nil
				})
			},
		}},
	}
}
