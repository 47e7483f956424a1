package web

import (
	"crypto/rand"
	"crypto/subtle"
	"github.com/fleetward/fleetward/internal/audit"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fleetward/fleetward/internal/alert"
	"github.com/fleetward/fleetward/internal/api"
	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/auth"
	"github.com/fleetward/fleetward/internal/inventory"
)

// safeNext keeps a post-login redirect on this site.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/"
	}
	return next
}

type loginData struct {
	Next     string
	Username string
}

// loginCookie carries the login forms' CSRF token before there is a
// session (double submit): a cross-site page can post the form but cannot
// read or set this SameSite=Strict cookie, so it cannot log a victim's
// browser into the attacker's account.
const loginCookie = "fw_login"

// loginToken returns the browser's login CSRF token, issuing one if needed.
func (ui *UI) loginToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(loginCookie); err == nil && len(c.Value) == 26 {
		return c.Value
	}
	tok := rand.Text()
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: tok, Path: "/login", MaxAge: 3600,
		Secure: !ui.deps.PlaintextInsecure, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return tok
}

// checkLoginToken compares the form's token with the cookie's.
func checkLoginToken(r *http.Request) bool {
	c, err := r.Cookie(loginCookie)
	form := r.PostFormValue(api.CSRFField)
	return err == nil && form != "" && subtle.ConstantTimeCompare([]byte(c.Value), []byte(form)) == 1
}

// expiredLoginForm answers a login post without a valid token.
func (ui *UI) expiredLoginForm(w http.ResponseWriter, r *http.Request, next string) error {
	return ui.render(w, r, http.StatusForbidden, "login", page{Title: "Log in", CSRF: ui.loginToken(w, r),
		Error: "This login form has expired or did not come from this site; please log in again.", Data: loginData{Next: next}})
}

func (ui *UI) loginPage(w http.ResponseWriter, r *http.Request) error {
	return ui.render(w, r, http.StatusOK, "login", page{Title: "Log in", CSRF: ui.loginToken(w, r), Data: loginData{Next: safeNext(r.URL.Query().Get("next"))}})
}

type mfaData struct {
	Next       string
	PendingID  string
	Enrolment  bool
	Secret     string
	OTPAuthURL string
	QRCodePNG  []byte
}

func (ui *UI) loginSubmit(w http.ResponseWriter, r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return apperr.Errorf(apperr.Invalid, "malformed form")
	}
	next := safeNext(r.PostFormValue("next"))
	if !checkLoginToken(r) {
		return ui.expiredLoginForm(w, r, next)
	}
	tok := ui.loginToken(w, r)
	user := r.PostFormValue("username")
	res, err := ui.deps.Auth.Login(r.Context(), user, r.PostFormValue("password"), api.RemoteAddr(r))
	if err != nil {
		status, msg := ui.userError(r, err)
		return ui.render(w, r, status, "login", page{Title: "Log in", CSRF: tok, Error: msg, Data: loginData{Next: next, Username: user}})
	}
	if res.Session != nil {
		ui.srv.SetSessionCookie(w, res.Session)
		http.Redirect(w, r, next, http.StatusSeeOther)
		return nil
	}
	p := res.Pending
	return ui.render(w, r, http.StatusOK, "mfa", page{Title: "Second factor", CSRF: tok, Data: mfaData{
		Next: next, PendingID: p.ID, Enrolment: p.NeedsEnrolment, Secret: p.Secret, OTPAuthURL: p.OTPAuthURL, QRCodePNG: p.QRCodePNG,
	}})
}

func (ui *UI) mfaSubmit(w http.ResponseWriter, r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return apperr.Errorf(apperr.Invalid, "malformed form")
	}
	next := safeNext(r.PostFormValue("next"))
	if !checkLoginToken(r) {
		return ui.expiredLoginForm(w, r, next)
	}
	tok := ui.loginToken(w, r)
	pending := r.PostFormValue("pending_id")
	sess, codes, err := ui.deps.Auth.CompleteLogin(r.Context(), pending, strings.TrimSpace(r.PostFormValue("code")), api.RemoteAddr(r))
	if err != nil {
		status, msg := ui.userError(r, err)
		// A pending login that expired or was used up needs a fresh start.
		if apperr.Is(err, apperr.Unauthorized) && strings.Contains(msg, "expired") {
			return ui.render(w, r, status, "login", page{Title: "Log in", CSRF: tok, Error: msg, Data: loginData{Next: next}})
		}
		return ui.render(w, r, status, "mfa", page{Title: "Second factor", CSRF: tok, Error: msg, Data: mfaData{Next: next, PendingID: pending}})
	}
	ui.srv.SetSessionCookie(w, &sess)
	if len(codes) > 0 {
		return ui.render(w, r, http.StatusOK, "recovery", page{Title: "Recovery codes", Data: map[string]any{"Codes": codes, "Next": next}})
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

func (ui *UI) logout(w http.ResponseWriter, r *http.Request) error {
	if c, err := r.Cookie(api.SessionCookie); err == nil {
		_ = ui.deps.Auth.Logout(r.Context(), c.Value)
	}
	ui.srv.ClearSessionCookie(w)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}

type overviewData struct {
	Stats       inventory.Stats
	Connections *fleetConnections
	ByStatus    []bar
	ByClass     []bar
	BySite      []bar
	ByVendor    []bar
	Charts      map[string]any
	// Audit is nil when the server has no audit.
	Audit *overviewAudit
}

// overviewAudit is the findings part of the overview.
type overviewAudit struct {
	Summary audit.Summary
	Risk    float64
	Top     []findingRow
}

func (ui *UI) overview(w http.ResponseWriter, r *http.Request) error {
	st, err := ui.deps.Inventory.FleetStats(r.Context())
	if err != nil {
		return err
	}
	buckets := make([]float64, len(st.RiskHistogram))
	counts := make([]float64, len(st.RiskHistogram))
	for i, n := range st.RiskHistogram {
		buckets[i] = float64(i*10 + 5)
		counts[i] = float64(n)
	}
	var connections *fleetConnections // nil: no broker attached, no tiles
	if ui.deps.Connectivity != nil {
		connections = summarizeConnections(ui.deps.Connectivity.Sessions())
	}
	byVendor := sortedCounts(st.ByVendor, "vendor")
	if len(byVendor) > 12 {
		byVendor = byVendor[:12]
	}
	d := overviewData{
		Stats: st, Connections: connections, ByStatus: sortedCounts(st.ByStatus, "status"), ByClass: sortedCounts(st.ByClass, "class"),
		BySite: sortedCounts(st.BySite, "site"), ByVendor: byVendor,
		Charts: map[string]any{"risk": map[string]any{"x": buckets, "y": counts}},
	}
	if ui.deps.Findings != nil {
		oa := &overviewAudit{}
		if oa.Summary, err = ui.deps.Findings.Summarize(r.Context()); err != nil {
			return err
		}
		oa.Risk, _ = ui.deps.Findings.FleetRisk()
		top, err := ui.deps.Findings.Findings(r.Context(), audit.FindingFilter{})
		if err != nil {
			return err
		}
		oa.Top = withChecks(top[:min(len(top), 8)])
		d.Audit = oa
	}
	return ui.render(w, r, http.StatusOK, "overview", page{Title: "Fleet overview", Nav: "overview", Data: d})
}

type devicesData struct {
	Page    inventory.DevicePage
	Query   url.Values
	Sites   []inventory.Site
	Classes []string
	Next    string
}

func (ui *UI) devices(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	for k, v := range q { // empty form fields mean "any"
		if len(v) == 1 && v[0] == "" {
			q.Del(k)
		}
	}
	d := devicesData{Query: q, Classes: inventory.Classes}
	var errMsg string
	status := http.StatusOK
	f, err := inventory.ParseFilter(q)
	if err == nil {
		d.Page, err = ui.deps.Inventory.ListDevices(r.Context(), f)
	}
	if err != nil {
		status, errMsg = ui.userError(r, err)
	}
	if d.Page.NextCursor != "" {
		nq := url.Values{}
		for k, v := range q {
			nq[k] = v
		}
		nq.Set("cursor", d.Page.NextCursor)
		d.Next = "/devices?" + nq.Encode()
	}
	if d.Sites, err = ui.deps.Inventory.ListSites(r.Context()); err != nil {
		return err
	}
	return ui.render(w, r, status, "devices", page{Title: "Devices", Nav: "devices", Error: errMsg, Data: d})
}

type deviceData struct {
	Device       inventory.Device
	History      any
	CanEdit      bool
	Connectivity *deviceConnectivity
	Charts       map[string]any
	// AuditOn is set when the server audits; Findings are the device's
	// (with suppressed ones) and Exposure what scans found open on it.
	AuditOn  bool
	Findings []findingRow
	Exposure []audit.Service
	// AlertsOn is set when the server runs network detection; Alerts are
	// the device's newest (at most deviceAlerts), open and closed.
	AlertsOn bool
	Alerts   []alert.Alert
}

// deviceAlerts is how many of its alerts a device page lists; the Alerts
// page filtered by the device has them all.
const deviceAlerts = 20

func (ui *UI) device(w http.ResponseWriter, r *http.Request) error {
	dev, err := ui.deps.Inventory.GetDevice(r.Context(), r.PathValue("id"))
	if err != nil {
		status, msg := ui.userError(r, err)
		return ui.render(w, r, status, "device", page{Title: "Device", Nav: "devices", Error: msg})
	}
	hist, err := ui.deps.Ledger.EntriesBySubject(r.Context(), dev.ID, 100)
	if err != nil {
		return err
	}
	conn, traffic, err := ui.deviceConnectivity(r.Context(), dev.ID, time.Now())
	if err != nil {
		return err
	}
	p, _ := api.PrincipalFrom(r.Context())
	d := deviceData{Device: dev, History: hist, CanEdit: p.Can(auth.PermWrite), Connectivity: conn}
	if ui.deps.Findings != nil {
		fs, err := ui.deps.Findings.Findings(r.Context(), audit.FindingFilter{DeviceID: dev.ID, IncludeSuppressed: true})
		if err != nil {
			return err
		}
		d.Findings = withChecks(fs)
		if d.Exposure, err = ui.deps.Findings.Services(r.Context(), dev.ID); err != nil {
			return err
		}
		d.AuditOn = true
	}
	if ui.deps.Alerts != nil {
		if d.Alerts, err = ui.deps.Alerts.List(r.Context(), alert.Filter{DeviceID: dev.ID, Limit: deviceAlerts}); err != nil {
			return err
		}
		d.AlertsOn = true
	}
	scores, err := ui.deviceScores(r.Context(), dev.ID, time.Now())
	if err != nil {
		return err
	}
	sensor, err := ui.deviceSensor(r.Context(), dev.ID, time.Now())
	if err != nil {
		return err
	}
	if traffic != nil || scores != nil || sensor != nil {
		d.Charts = map[string]any{}
	}
	if sensor != nil {
		d.Charts["sensor"] = sensor
	}
	if traffic != nil {
		d.Charts["traffic"] = traffic
	}
	if scores != nil {
		d.Charts["scores"] = scores
	}
	return ui.render(w, r, http.StatusOK, "device", page{Title: dev.Name, Nav: "devices", Data: d})
}
