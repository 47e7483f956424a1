package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/fleetward/fleetward/internal/app"
	"github.com/fleetward/fleetward/internal/audit"
)

func findingsCommand() *cli.Command {
	listFlags := append(clientFlags(),
		&cli.StringFlag{Name: "device", Usage: "only this device's findings"},
		&cli.StringFlag{Name: "severity", Usage: "only this severity: " + strings.Join(audit.Severities, ", ")},
		&cli.StringFlag{Name: "check", Usage: "only this check (see 'fleetward findings checks')"},
		&cli.StringFlag{Name: "status", Value: "open", Usage: "open, resolved or all"},
		&cli.BoolFlag{Name: "suppressed", Usage: "include suppressed findings"},
		&cli.BoolFlag{Name: "json", Usage: "print JSON lines, one finding per line"},
	)
	return &cli.Command{
		Name:  "findings",
		Usage: "list, audit and suppress exposure findings on a running server",
		Description: `Findings are the weaknesses the audit found (default passwords, plaintext services, known
exploited vulnerabilities, unmanaged devices, certificate problems, …), each mapped to ETSI EN
303 645, NIST IR 8259A and the OWASP IoT Top 10. See docs/FINDINGS.md.

  fleetward findings list --severity critical
  fleetward findings audit
  fleetward findings suppress ID --reason "replacement ordered" --until 2027-01-31`,
		Commands: []*cli.Command{
			{Name: "list", Usage: "list findings, most severe first", Flags: listFlags,
				Action: func(ctx context.Context, cmd *cli.Command) error {
					c, err := newAPIClient(cmd)
					if err != nil {
						return err
					}
					q := url.Values{}
					for _, f := range []string{"device", "severity", "check", "status"} {
						if v := cmd.String(f); v != "" {
							q.Set(f, v)
						}
					}
					if cmd.Bool("suppressed") {
						q.Set("suppressed", "true")
					}
					var out struct{ Findings []audit.Finding }
					if err := c.get(ctx, "/api/v1/findings?"+q.Encode(), &out); err != nil {
						return err
					}
					if cmd.Bool("json") {
						enc := json.NewEncoder(os.Stdout)
						for _, f := range out.Findings {
							_ = enc.Encode(f)
						}
						return nil
					}
					tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "ID\tSEVERITY\tCHECK\tDEVICE\tEVIDENCE")
					for _, f := range out.Findings {
						ev := f.Evidence
						if len(ev) > 90 {
							ev = ev[:87] + "..."
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.ID, f.Severity, f.Check, f.DeviceID, ev)
					}
					return tw.Flush()
				}},
			{Name: "audit", Usage: "audit the fleet now and print the report as JSON", Flags: clientFlags(),
				Action: func(ctx context.Context, cmd *cli.Command) error {
					c, err := newAPIClient(cmd)
					if err != nil {
						return err
					}
					var rep app.AuditReport
					if err := c.do(ctx, "POST", "/api/v1/audit", nil, &rep); err != nil {
						return err
					}
					enc := json.NewEncoder(os.Stdout)
					enc.SetIndent("", "  ")
					return enc.Encode(rep)
				}},
			{Name: "suppress", Usage: "accept a finding until a date, with a reason (recorded in the ledger)", ArgsUsage: "ID",
				Flags: append(clientFlags(),
					&cli.StringFlag{Name: "reason", Usage: "why it is accepted (required)"},
					&cli.StringFlag{Name: "until", Usage: "YYYY-MM-DD, at most a year ahead (required)"}),
				Action: func(ctx context.Context, cmd *cli.Command) error {
					if cmd.NArg() != 1 {
						return fmt.Errorf("findings suppress: give one finding id")
					}
					until, err := time.Parse(time.DateOnly, cmd.String("until"))
					if err != nil {
						return fmt.Errorf("--until %q: a date YYYY-MM-DD", cmd.String("until"))
					}
					c, err := newAPIClient(cmd)
					if err != nil {
						return err
					}
					var f audit.Finding
					body := audit.Suppression{Reason: cmd.String("reason"), Until: until.Add(24*time.Hour - time.Second)}
					if err := c.do(ctx, "POST", "/api/v1/findings/"+url.PathEscape(cmd.Args().First())+"/suppress", body, &f); err != nil {
						return err
					}
					fmt.Printf("suppressed %s (%s) until %s by %s\n", f.ID, f.Check, f.SuppressedUntil.Format(time.DateOnly), f.SuppressedBy)
					return nil
				}},
			{Name: "checks", Usage: "print the catalogue of checks with their standards", Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "as JSON"}},
				Action: func(ctx context.Context, cmd *cli.Command) error {
					if cmd.Bool("json") {
						enc := json.NewEncoder(os.Stdout)
						enc.SetIndent("", "  ")
						return enc.Encode(audit.Checks)
					}
					tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "CHECK\tSEVERITY\tETSI EN 303 645\tNIST IR 8259A\tOWASP IoT")
					for _, c := range audit.Checks {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.ID, c.Severity, strings.Join(c.ETSI, " "), strings.Join(c.NIST, "; "), strings.Join(c.OWASP, " "))
					}
					return tw.Flush()
				}},
		},
	}
}
