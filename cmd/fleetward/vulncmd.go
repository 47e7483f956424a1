package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/store"
	"github.com/fleetward/fleetward/internal/vuln"
)

func vulnCommand() *cli.Command {
	return &cli.Command{
		Name:  "vuln",
		Usage: "import advisories and SBOMs offline and match devices against them",
		Commands: []*cli.Command{
			{
				Name:      "import",
				Usage:     "import advisory and SBOM files (OSV, CISA KEV, NVD API 2.0, CVE JSON 5, CycloneDX, SPDX)",
				ArgsUsage: "FILE|DIR...",
				Description: `The format of each file is detected from its content. Directories are walked for *.json
files. Each file is imported in its own transaction; a bad file is reported and the
others are still imported (exit status 1 if any failed). Importing a record again
replaces it. An SBOM is attached to the supplier, name and version of its subject
(CycloneDX metadata.component), or to --vendor/--model/--firmware when given.

Examples:
  fleetward vuln import --data /var/lib/fleetward known_exploited_vulnerabilities.json nvd/
  fleetward vuln import --vendor TP-Link --model "Archer AX21" --firmware 1.1.3 ax21.cdx.json
  fleetward vuln import --json osv-records/`,
				Flags: append(storageFlags(),
					&cli.StringFlag{Name: "vendor", Usage: "attach SBOM files to this device vendor"},
					&cli.StringFlag{Name: "model", Usage: "attach SBOM files to this device model"},
					&cli.StringFlag{Name: "firmware", Usage: "attach SBOM files to this firmware version"},
					&cli.BoolFlag{Name: "json", Usage: "print one JSON object per file"},
				),
				Action: vulnImport,
			},
			{
				Name:  "match",
				Usage: "list the advisories affecting a device model and firmware, with KEV and end-of-life status",
				Description: `Matches against everything imported with 'fleetward vuln import'. The SBOM is --sbom, or
else the one attached to the vendor, model and firmware. Exit status 2 when a known
exploited (CISA KEV) advisory matches.

Examples:
  fleetward vuln match --vendor TP-Link --model "Archer AX21" --firmware "1.1.3 Build 20221010"
  fleetward vuln match --vendor Dahua --model IPC-HUM7242 --firmware 2.800.0000000.1.R.200101 --json
  fleetward vuln match --vendor IoTLab --model cam --firmware 1.0 --sbom fw.spdx.json --os linux --os-version 4.4.60`,
				Flags: append(storageFlags(),
					&cli.StringFlag{Name: "vendor", Usage: "device vendor", Required: true},
					&cli.StringFlag{Name: "model", Usage: "device model", Required: true},
					&cli.StringFlag{Name: "firmware", Usage: "firmware version", Required: true},
					&cli.StringFlag{Name: "os", Usage: "operating system or kernel (e.g. linux)"},
					&cli.StringFlag{Name: "os-version", Usage: "operating system version"},
					&cli.StringFlag{Name: "sbom", Usage: "CycloneDX or SPDX file of the firmware"},
					&cli.BoolFlag{Name: "json", Usage: "print the result as JSON"},
				),
				Action: vulnMatch,
			},
		},
	}
}

func openVulnStore(ctx context.Context, cmd *cli.Command) (*vuln.Store, func(), error) {
	db, err := store.Open(ctx, store.Config{Dir: cmd.String("data"), URL: cmd.String("database")})
	if err != nil {
		return nil, nil, err
	}
	return vuln.NewStore(db), func() { db.Close() }, nil
}

// vulnFiles expands arguments into files: a directory gives its *.json
// files, sorted; a file is taken as is.
func vulnFiles(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, a)
			continue
		}
		err = filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && strings.HasSuffix(strings.ToLower(p), ".json") {
				out = append(out, p)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func vulnImport(ctx context.Context, cmd *cli.Command) error {
	if cmd.NArg() == 0 {
		return fmt.Errorf("vuln import: name at least one FILE or DIR")
	}
	files, err := vulnFiles(cmd.Args().Slice())
	if err != nil {
		return fmt.Errorf("vuln import: %w", err)
	}
	s, closeDB, err := openVulnStore(ctx, cmd)
	if err != nil {
		return fmt.Errorf("vuln import: %w", err)
	}
	defer closeDB()
	w := cmd.Root().Writer
	if w == nil {
		w = os.Stdout
	}
	failed := 0
	for _, f := range files {
		res, err := importOne(ctx, cmd, s, f)
		if err != nil {
			failed++
		}
		printImport(w, cmd.Bool("json"), f, res, err)
	}
	if failed > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("vuln import: %d of %d files failed", failed, len(files))}
	}
	return nil
}

func importOne(ctx context.Context, cmd *cli.Command, s *vuln.Store, path string) (vuln.ImportResult, error) {
	if m := cmd.String("model"); m != "" {
		doc, err := vuln.ParseFile(path)
		if err != nil {
			return vuln.ImportResult{}, err
		}
		if doc.SBOM != nil {
			v, fw := cmd.String("vendor"), cmd.String("firmware")
			if err := s.AttachSBOM(ctx, v, m, fw, filepath.Base(path), doc.SBOM); err != nil {
				return vuln.ImportResult{}, err
			}
			return vuln.ImportResult{File: filepath.Base(path), Format: doc.Format,
				SBOM: vuln.NormalizeVendor(v) + "/" + vuln.NormalizeProduct(m) + "@" + fw}, nil
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return vuln.ImportResult{}, err
	}
	defer f.Close()
	return s.Import(ctx, filepath.Base(path), f)
}

func printImport(w io.Writer, asJSON bool, path string, res vuln.ImportResult, err error) {
	if asJSON {
		out := map[string]any{"path": path}
		if err != nil {
			out["error"] = errorMessage(err)
		} else {
			out["result"] = res
		}
		_ = json.NewEncoder(w).Encode(out)
		return
	}
	if err != nil {
		fmt.Fprintf(w, "%s: ERROR %s\n", path, errorMessage(err))
		return
	}
	switch {
	case res.SBOM != "":
		fmt.Fprintf(w, "%s: %s SBOM attached to %s\n", path, res.Format, res.SBOM)
	case res.KEV > 0:
		fmt.Fprintf(w, "%s: %s, %d known exploited vulnerabilities\n", path, res.Format, res.KEV)
	default:
		fmt.Fprintf(w, "%s: %s, %d advisories\n", path, res.Format, res.Advisories)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}

func errorMessage(err error) string {
	if ae := apperr.As(err); ae != nil {
		return ae.Message
	}
	return err.Error()
}

// vulnReport is what 'vuln match --json' prints.
type vulnReport struct {
	Target  vuln.Target      `json:"target"`
	Matches []vuln.Match     `json:"matches"`
	EOL     []vuln.Lifecycle `json:"end_of_life,omitempty"`
}

func vulnMatch(ctx context.Context, cmd *cli.Command) error {
	s, closeDB, err := openVulnStore(ctx, cmd)
	if err != nil {
		return fmt.Errorf("vuln match: %w", err)
	}
	defer closeDB()
	vendor, model, fw := cmd.String("vendor"), cmd.String("model"), cmd.String("firmware")
	var sb *vuln.SBOM
	if p := cmd.String("sbom"); p != "" {
		doc, err := vuln.ParseFile(p)
		if err != nil {
			return fmt.Errorf("vuln match: %s", errorMessage(err))
		}
		if doc.SBOM == nil {
			return fmt.Errorf("vuln match: %s is %s, not an SBOM", p, doc.Format)
		}
		sb = doc.SBOM
	} else if sb, err = s.SBOMFor(ctx, vendor, model, fw); err != nil && !apperr.Is(err, apperr.NotFound) {
		return fmt.Errorf("vuln match: %w", err)
	}
	cat, err := s.LoadCatalog(ctx)
	if err != nil {
		return fmt.Errorf("vuln match: %w", err)
	}
	t := vuln.TargetFromSBOM("", vendor, model, fw, sb)
	t.OS, t.OSVersion = cmd.String("os"), cmd.String("os-version")
	rep := vulnReport{Target: t, Matches: cat.Match(t)}
	now := time.Now()
	if t.OS != "" {
		if l, ok := vuln.EOL(t.OS, t.OSVersion, now); ok {
			rep.EOL = append(rep.EOL, l)
		}
	}
	for _, c := range t.Components {
		if l, ok := vuln.EOL(c.Name, c.Version, now); ok {
			rep.EOL = append(rep.EOL, l)
		}
	}
	w := cmd.Root().Writer
	if w == nil {
		w = os.Stdout
	}
	rep.Target.Components = nil
	if cmd.Bool("json") {
		_ = json.NewEncoder(w).Encode(rep)
	} else {
		printMatches(w, cat.Len(), len(t.Components), rep)
	}
	for _, m := range rep.Matches {
		if m.KnownExploited {
			return &exitError{code: 2, msg: "known exploited vulnerabilities match"}
		}
	}
	return nil
}

func printMatches(w io.Writer, advisories, components int, rep vulnReport) {
	fmt.Fprintf(w, "%s %s firmware %s: %d advisories match (catalog %d, SBOM components %d)\n",
		rep.Target.Vendor, rep.Target.Model, rep.Target.FirmwareVersion, len(rep.Matches), advisories, components)
	if len(rep.Matches) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ADVISORY\tCVSS\tKEV\tMATCHED\tWHY")
		for _, m := range rep.Matches {
			kev := "-"
			if m.KnownExploited {
				kev = "added " + m.KEVDateAdded
				if m.RansomwareUse == "Known" {
					kev += " ransomware"
				}
			}
			fmt.Fprintf(tw, "%s\t%.1f\t%s\t%s\t%s\n", m.AdvisoryID, m.CVSS, kev, m.Matched, m.Reason)
		}
		tw.Flush()
	}
	for _, l := range rep.EOL {
		state := "supported until"
		if l.Expired {
			state = "END OF LIFE since"
		}
		fmt.Fprintf(w, "%s %s: %s %s (%s)\n", l.Product, l.Series, state, l.EOL.Format(time.DateOnly), l.Source)
	}
}
