package main

import (
	"context"
	"fmt"
	"os"

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
				&cli.StringFlag{Name: "key-algorithm", Value: identity.ECDSAP256, Usage: "CA key algorithm: ecdsa-p256, ed25519 or rsa-3072"},
			),
			Action: func(ctx context.Context, cmd *cli.Command) error {
				return withCore(ctx, cmd, func(ctx context.Context, c *app.Core) error {
					if err := c.CA.Init(ctx, identity.InitOptions{OfflineRootKeyFile: cmd.String("offline-root"), KeyAlgorithm: cmd.String("key-algorithm")}); err != nil {
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
		}, {
			Name:  "rotate-intermediate",
			Usage: "make a new issuing intermediate under the same root; devices keep their certificates",
			Description: `Creates a new issuing intermediate and makes it the one that signs from now on. Certificates
issued by the old one stay valid and verifiable (it stays in the chain until it expires), so no
device has to enrol again. With an offline root, give its key with --root-key. A running
'serve' keeps accepting devices of every intermediate it knew when it started; restart it so
its broker also accepts certificates signed by the new one from devices that send no chain.`,
			Flags: append(storageFlags(),
				&cli.StringFlag{Name: "root-key", Usage: "PEM file of the offline root key (only for a CA made with --offline-root)"},
			),
			Action: func(ctx context.Context, cmd *cli.Command) error {
				var rootKey []byte
				if f := cmd.String("root-key"); f != "" {
					b, err := os.ReadFile(f)
					if err != nil {
						return fmt.Errorf("--root-key: %w", err)
					}
					rootKey = b
				}
				return withCore(ctx, cmd, func(ctx context.Context, c *app.Core) error {
					cert, err := c.CA.RotateIntermediate(ctx, rootKey)
					if err != nil {
						return err
					}
					fmt.Printf("new issuing intermediate %s (valid until %s)\n", identity.SerialString(cert.SerialNumber), cert.NotAfter.Format("2006-01-02"))
					return nil
				})
			},
		}},
	}
}
