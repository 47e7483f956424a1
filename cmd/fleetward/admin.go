package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v3"

	"github.com/fleetward/fleetward/internal/app"
	"github.com/fleetward/fleetward/internal/auth"
)

// withCore opens storage and the services for an administrative command.
func withCore(ctx context.Context, cmd *cli.Command, fn func(ctx context.Context, c *app.Core) error) error {
	c, err := app.OpenCore(ctx, coreConfig(cmd))
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(cliContext(ctx), c)
}

func userCommand() *cli.Command {
	return &cli.Command{
		Name:  "user",
		Usage: "manage operators (people who log in to the dashboard and API)",
		Commands: []*cli.Command{
			{
				Name:      "add",
				Usage:     "create an operator; the password is read from standard input",
				ArgsUsage: "USERNAME",
				Description: `Reads the password from the first line of standard input, so it never appears in
the process list or shell history:  fleetward user add alice --role admin < pw.txt
Roles: admin (everything; must use TOTP), operator (read and change), auditor (read only).`,
				Flags: append(storageFlags(), &cli.StringFlag{Name: "role", Value: "operator", Usage: "admin, operator or auditor"}),
				Action: func(ctx context.Context, cmd *cli.Command) error {
					if cmd.Args().Len() != 1 {
						return fmt.Errorf("user add: give exactly one USERNAME")
					}
					role, err := auth.ParseRole(cmd.String("role"))
					if err != nil {
						return fmt.Errorf("--role: %w", err)
					}
					pw, err := readPassword(os.Stdin)
					if err != nil {
						return err
					}
					return withCore(ctx, cmd, func(ctx context.Context, c *app.Core) error {
						op, err := c.Auth.CreateOperator(ctx, cmd.Args().First(), pw, role)
						if err != nil {
							return err
						}
						fmt.Printf("created operator %q (role %s)\n", op.Username, op.Role)
						if op.Role == auth.RoleAdmin {
							fmt.Println("an administrator enrols a TOTP authenticator at first login")
						}
						return nil
					})
				},
			},
			{
				Name:  "list",
				Usage: "list operators",
				Flags: append(storageFlags(), &cli.BoolFlag{Name: "json", Usage: "print JSON"}),
				Action: func(ctx context.Context, cmd *cli.Command) error {
					return withCore(ctx, cmd, func(ctx context.Context, c *app.Core) error {
						ops, err := c.Auth.ListOperators(ctx)
						if err != nil {
							return err
						}
						if cmd.Bool("json") {
							return json.NewEncoder(os.Stdout).Encode(ops)
						}
						tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
						fmt.Fprintln(tw, "USERNAME\tROLE\tMFA\tDISABLED")
						for _, op := range ops {
							fmt.Fprintf(tw, "%s\t%s\t%v\t%v\n", op.Username, op.Role, op.MFAEnrolled, op.Disabled)
						}
						return tw.Flush()
					})
				},
			},
			{
				Name:      "reset-mfa",
				Usage:     "make an operator enrol a new TOTP authenticator at next login",
				ArgsUsage: "USERNAME",
				Flags:     storageFlags(),
				Action: func(ctx context.Context, cmd *cli.Command) error {
					if cmd.Args().Len() != 1 {
						return fmt.Errorf("user reset-mfa: give exactly one USERNAME")
					}
					return withCore(ctx, cmd, func(ctx context.Context, c *app.Core) error {
						return c.Auth.ResetMFA(ctx, cmd.Args().First())
					})
				},
			},
		},
	}
}

// readPassword takes the first line of r, without its line ending.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("read password from standard input: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", fmt.Errorf("read password from standard input: it is empty (pipe it in: fleetward user add NAME < file)")
	}
	return pw, nil
}

func tokenCommand() *cli.Command {
	return &cli.Command{
		Name:  "token",
		Usage: "manage API tokens for scripts and bootstrap",
		Commands: []*cli.Command{
			{
				Name:  "create",
				Usage: "create an API token and print it (only the token, once)",
				Description: `Prints only the token, so scripts can capture it:
  TOKEN=$(fleetward token create --data DIR --name ci --role auditor)
  curl --cacert DIR/tls/ca.crt -H "Authorization: Bearer $TOKEN" https://127.0.0.1:8443/api/v1/devices`,
				Flags: append(storageFlags(),
					&cli.StringFlag{Name: "name", Usage: "what the token is for", Required: true},
					&cli.StringFlag{Name: "role", Value: "auditor", Usage: "admin, operator or auditor"},
					&cli.StringSliceFlag{Name: "scope", Usage: "limit to read, write or admin (repeatable); default: all the role allows"},
					&cli.DurationFlag{Name: "ttl", Usage: "lifetime, e.g. 720h (default 90 days, at most 2 years)"},
				),
				Action: func(ctx context.Context, cmd *cli.Command) error {
					role, err := auth.ParseRole(cmd.String("role"))
					if err != nil {
						return fmt.Errorf("--role: %w", err)
					}
					return withCore(ctx, cmd, func(ctx context.Context, c *app.Core) error {
						plain, _, err := c.Auth.CreateToken(ctx, cmd.String("name"), role, cmd.StringSlice("scope"), cmd.Duration("ttl"))
						if err != nil {
							return err
						}
						fmt.Println(plain)
						return nil
					})
				},
			},
			{
				Name:  "list",
				Usage: "list API tokens (never their secrets)",
				Flags: append(storageFlags(), &cli.BoolFlag{Name: "json", Usage: "print JSON"}),
				Action: func(ctx context.Context, cmd *cli.Command) error {
					return withCore(ctx, cmd, func(ctx context.Context, c *app.Core) error {
						toks, err := c.Auth.ListTokens(ctx)
						if err != nil {
							return err
						}
						if cmd.Bool("json") {
							return json.NewEncoder(os.Stdout).Encode(toks)
						}
						tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
						fmt.Fprintln(tw, "ID\tNAME\tROLE\tEXPIRES\tREVOKED")
						for _, t := range toks {
							fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\n", t.ID, t.Name, t.Role, t.ExpiresAt.Format("2006-01-02"), t.Revoked)
						}
						return tw.Flush()
					})
				},
			},
			{
				Name:      "revoke",
				Usage:     "revoke an API token",
				ArgsUsage: "ID",
				Flags:     storageFlags(),
				Action: func(ctx context.Context, cmd *cli.Command) error {
					if cmd.Args().Len() != 1 {
						return fmt.Errorf("token revoke: give exactly one token ID")
					}
					return withCore(ctx, cmd, func(ctx context.Context, c *app.Core) error {
						return c.Auth.RevokeToken(ctx, cmd.Args().First())
					})
				},
			},
		},
	}
}
