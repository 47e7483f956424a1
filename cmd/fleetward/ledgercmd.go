package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/fleetward/fleetward/internal/app"
	"github.com/fleetward/fleetward/internal/ledger"
	"github.com/fleetward/fleetward/internal/store"
)

func ledgerCommand() *cli.Command {
	return &cli.Command{
		Name:  "ledger",
		Usage: "verify and export the tamper-evident ledger",
		Commands: []*cli.Command{
			{
				Name:  "verify",
				Usage: "re-derive the Merkle tree and check every signed checkpoint; exit 0 when intact, 2 when not",
				Description: `With --data (and --database) it reads the live store; with --bundle it checks a file
written by 'fleetward ledger export', offline. --key pins the verifier key you trust
(printed by 'ledger export' and served at /api/v1/ledger/checkpoint); without it the key
stored beside the data is used, which proves integrity but not authorship.`,
				Flags: append(storageFlags(),
					&cli.StringFlag{Name: "bundle", Usage: "verify this exported bundle instead of the store"},
					&cli.StringFlag{Name: "key", Usage: "trusted verifier key (note verifier string)"},
					&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
				),
				Action: func(ctx context.Context, cmd *cli.Command) error {
					var rep ledger.Report
					var err error
					progress := progressPrinter("verified")
					if b := cmd.String("bundle"); b != "" {
						f, ferr := os.Open(b)
						if ferr != nil {
							return fmt.Errorf("ledger verify: %w", ferr)
						}
						defer f.Close()
						rep, err = ledger.VerifyBundleProgress(f, cmd.String("key"), progress)
					} else {
						db, oerr := store.Open(ctx, store.Config{Dir: cmd.String("data"), URL: cmd.String("database")})
						if oerr != nil {
							return fmt.Errorf("ledger verify: %w", oerr)
						}
						defer db.Close()
						rep, err = ledger.VerifyWithKey(ctx, db, cmd.String("key"), progress)
					}
					clearProgress()
					if err != nil {
						return fmt.Errorf("ledger verify: %w", err)
					}
					if cmd.Bool("json") {
						_ = json.NewEncoder(os.Stdout).Encode(rep)
					} else {
						printReport(rep)
					}
					if !rep.OK {
						return &exitError{code: 2, msg: "ledger does NOT verify"}
					}
					return nil
				},
			},
			{
				Name:  "export",
				Usage: "write the whole ledger (entries, checkpoints, verifier key) to a bundle for offline verification",
				Flags: append(storageFlags(), &cli.StringFlag{Name: "out", Usage: "bundle file to write", Required: true}),
				Action: func(ctx context.Context, cmd *cli.Command) error {
					return withCore(ctx, cmd, func(ctx context.Context, c *app.Core) error {
						if _, err := c.Ledger.Checkpoint(ctx); err != nil {
							return err
						}
						tmp := cmd.String("out") + ".tmp"
						f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
						if err != nil {
							return fmt.Errorf("ledger export: %w", err)
						}
						if err := c.Ledger.Export(ctx, f); err != nil {
							f.Close()
							os.Remove(tmp)
							return fmt.Errorf("ledger export: %w", err)
						}
						if err := f.Close(); err != nil {
							return fmt.Errorf("ledger export: %w", err)
						}
						if err := os.Rename(tmp, cmd.String("out")); err != nil {
							return fmt.Errorf("ledger export: %w", err)
						}
						cp, _ := c.Ledger.Latest(ctx)
						fmt.Fprintf(os.Stderr, "wrote %s: %d entries\nverifier key (pin it with --key): %s\n", cmd.String("out"), cp.Size, c.Ledger.VerifierKey())
						return nil
					})
				},
			},
		},
	}
}

func printReport(rep ledger.Report) {
	defer func() {
		for _, n := range rep.Notes {
			fmt.Printf("  note: %s\n", n)
		}
	}()
	if rep.OK {
		fmt.Printf("ledger OK: %d entries, %d signed checkpoints verified\n", rep.Entries, rep.Checkpoints)
		return
	}
	fmt.Printf("ledger TAMPERED: %d entries, %d checkpoints, %d problems\n", rep.Entries, rep.Checkpoints, len(rep.Problems))
	for _, p := range rep.Problems {
		if p.Index != nil {
			fmt.Printf("  entry %d: %s\n", *p.Index, p.Message)
		} else {
			fmt.Printf("  %s\n", p.Message)
		}
	}
	if rep.Omitted > 0 {
		fmt.Printf("  … and %d more problems\n", rep.Omitted)
	}
}

// stderrIsTerminal reports whether progress lines may be drawn.
func stderrIsTerminal() bool {
	fi, err := os.Stderr.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// clearProgress erases a progress line, on a terminal only.
func clearProgress() {
	if stderrIsTerminal() {
		fmt.Fprint(os.Stderr, "\r\033[K")
	}
}

// progressPrinter returns a progress callback that rewrites one line on
// standard error, at most ten times a second, when stderr is a terminal.
func progressPrinter(verb string) func(done, total uint64) {
	if !stderrIsTerminal() {
		return func(uint64, uint64) {}
	}
	var last time.Time
	return func(done, total uint64) {
		if time.Since(last) < 100*time.Millisecond && done != total {
			return
		}
		last = time.Now()
		if total > 0 {
			fmt.Fprintf(os.Stderr, "\r%s %d/%d entries (%.0f%%)", verb, done, total, 100*float64(done)/float64(total))
		} else {
			fmt.Fprintf(os.Stderr, "\r%s %d entries", verb, done)
		}
	}
}
