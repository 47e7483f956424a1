package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fleetward/fleetward/internal/api"
	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/audit"
	"github.com/fleetward/fleetward/internal/auth"
)

// Findings is the audit as the dashboard sees it: findings, their
// suppression, the exposure scans found and the newest risk figures.
type Findings interface {
	Findings(ctx context.Context, f audit.FindingFilter) ([]audit.Finding, error)
	Summarize(ctx context.Context) (audit.Summary, error)
	Suppress(ctx context.Context, id string, p audit.Suppression) (audit.Finding, error)
	Services(ctx context.Context, deviceID string) ([]audit.Service, error)
	Scans(ctx context.Context, limit int) ([]audit.ScanRecord, error)
	// FleetRisk is the newest audit's fleet score and when it ran.
	FleetRisk() (float64, time.Time)
}

type findingsData struct {
	Findings []findingRow
	Summary  audit.Summary
	Query    url.Values
	Scans    []audit.ScanRecord
	CanEdit  bool
	Checks   []audit.Check
	Severity []string
	Risk     float64
	RiskAt   time.Time
	// SuppressDefault is the suppression form's default expiry.
	SuppressDefault string
}

// findingRow is a finding with its check, for remediation and standards.
type findingRow struct {
	audit.Finding
	Check audit.Check
}

func withChecks(fs []audit.Finding) []findingRow {
	out := make([]findingRow, len(fs))
	for i, f := range fs {
		c, _ := audit.CheckByID(f.Check)
		out[i] = findingRow{Finding: f, Check: c}
	}
	return out
}

func (ui *UI) findings(w http.ResponseWriter, r *http.Request) error {
	if ui.deps.Findings == nil {
		return apperr.Errorf(apperr.NotFound, "this server has no audit")
	}
	q := r.URL.Query()
	f := audit.FindingFilter{DeviceID: q.Get("device"), Status: q.Get("status"), Severity: q.Get("severity"), Check: q.Get("check"),
		IncludeSuppressed: q.Get("suppressed") == "true"}
	d := findingsData{Query: q, Checks: audit.Checks, Severity: audit.Severities,
		SuppressDefault: time.Now().Add(30 * 24 * time.Hour).UTC().Format("2006-01-02")}
	status, errMsg := http.StatusOK, ""
	fs, err := ui.deps.Findings.Findings(r.Context(), f)
	if err != nil {
		if apperr.As(err) == nil {
			return err
		}
		status, errMsg = ui.userError(r, err)
	}
	d.Findings = withChecks(fs)
	if d.Summary, err = ui.deps.Findings.Summarize(r.Context()); err != nil {
		return err
	}
	if d.Scans, err = ui.deps.Findings.Scans(r.Context(), 5); err != nil {
		return err
	}
	d.Risk, d.RiskAt = ui.deps.Findings.FleetRisk()
	p, _ := api.PrincipalFrom(r.Context())
	d.CanEdit = p.Can(auth.PermWrite)
	return ui.render(w, r, status, "findings", page{Title: "Findings", Nav: "findings", Error: errMsg, Data: d})
}

// suppressFinding is the Suppress form: a reason and a date.
func (ui *UI) suppressFinding(w http.ResponseWriter, r *http.Request) error {
	if ui.deps.Findings == nil {
		return apperr.Errorf(apperr.NotFound, "this server has no audit")
	}
	if err := r.ParseForm(); err != nil {
		return apperr.Errorf(apperr.Invalid, "malformed form")
	}
	until, err := time.Parse("2006-01-02", r.PostFormValue("until"))
	if err != nil {
		return apperr.InvalidField("until", "a date, YYYY-MM-DD")
	}
	p := audit.Suppression{Reason: strings.TrimSpace(r.PostFormValue("reason")), Until: until.Add(24*time.Hour - time.Second)}
	if _, err := ui.deps.Findings.Suppress(r.Context(), r.PathValue("id"), p); err != nil {
		return err
	}
	back := r.PostFormValue("back")
	if !strings.HasPrefix(back, "/") || strings.HasPrefix(back, "//") {
		back = "/findings"
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
	return nil
}
