package app

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/audit"
	"github.com/fleetward/fleetward/internal/inventory"
	"github.com/fleetward/fleetward/internal/vuln"
)

// hardwareRevision is a trailing hardware revision in a model name ("Archer
// AX21 v1.20"): advisories name the product, not the board revision.
var hardwareRevision = regexp.MustCompile(`(?i)\s+(v|rev\.?\s*|hw\s*)\d+(\.\d+)*$`)

// vulnerabilities matches every device against the imported advisories
// (with the SBOM attached to its vendor, model and firmware, when there is
// one) and checks its operating system, BusyBox and SBOM components against
// the end-of-life table.
func (a *auditor) vulnerabilities(ctx context.Context, devs []inventory.Device, now time.Time) ([]audit.Vulnerability, []audit.EndOfLife, error) {
	if a.vulns == nil {
		return nil, nil, nil
	}
	cat, err := a.vulns.LoadCatalog(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("load advisories: %w", err)
	}
	type sbomKey struct{ vendor, model, firmware string }
	sboms := map[sbomKey]*vuln.SBOM{}
	var vs []audit.Vulnerability
	var eol []audit.EndOfLife
	for _, d := range devs {
		if d.Status == inventory.StatusRetired {
			continue
		}
		k := sbomKey{d.Vendor, d.Model, d.FirmwareVersion}
		sb, ok := sboms[k]
		if !ok && d.Model != "" && d.FirmwareVersion != "" {
			sb, err = a.vulns.SBOMFor(ctx, d.Vendor, d.Model, d.FirmwareVersion)
			if apperr.Is(err, apperr.NotFound) {
				sb, err = nil, nil
			}
			if err != nil {
				return nil, nil, err
			}
			sboms[k] = sb
		}
		t := vuln.TargetFromSBOM(d.ID, d.Vendor, hardwareRevision.ReplaceAllString(d.Model, ""), d.FirmwareVersion, sb)
		t.OS, t.OSVersion = d.OS, d.OSVersion
		for _, m := range cat.Match(t) {
			sev := strings.ToLower(m.Severity)
			if !isSeverity(sev) {
				sev = ""
			}
			why := m.Reason
			if m.Summary != "" {
				why += "; " + m.Summary
			}
			vs = append(vs, audit.Vulnerability{DeviceID: d.ID, AdvisoryID: m.AdvisoryID, Aliases: m.Aliases, CVSS: m.CVSS,
				Severity: sev, Exploited: m.KnownExploited, KEVDueDate: m.KEVDueDate, What: m.Matched, Why: why})
		}
		check := func(product, version string) {
			if version == "" {
				return
			}
			if lc, ok := vuln.EOL(product, version, now); ok && lc.Expired {
				eol = append(eol, audit.EndOfLife{DeviceID: d.ID, Component: lc.Product, Version: version, EOLDate: lc.EOL, Source: lc.Source})
			}
		}
		if strings.Contains(strings.ToLower(d.OS), "linux") {
			check("linux", d.OSVersion)
		} else if d.OS != "" {
			check(d.OS, d.OSVersion)
		}
		check("busybox", d.Attributes["busybox"])
		if sb != nil {
			for _, c := range sb.Components {
				check(c.Name, c.Version)
			}
		}
	}
	return vs, eol, nil
}

func isSeverity(s string) bool {
	for _, v := range audit.Severities {
		if v == s {
			return true
		}
	}
	return false
}

// ImportAdvisories imports an advisory or SBOM file into the catalog the
// audits match devices against.
func (s *Server) ImportAdvisories(ctx context.Context, name string, r io.Reader) (vuln.ImportResult, error) {
	return s.audit.vulns.Import(ctx, name, r)
}
