package web

import (
	"net/http"
	"net/url"
	"strings"

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

func (ui *UI) loginPage(w http.ResponseWriter, r *http.Request) error {
	return ui.render(w, r, http.StatusOK, "login", page{Title: "Log in", Data: loginData{Next: safeNext(r.URL.Query().Get("next"))}})
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
	user := r.PostFormValue("username")
	res, err := ui.deps.Auth.Login(r.Context(), user, r.PostFormValue("password"), api.RemoteAddr(r))
	if err != nil {
		status, msg := ui.userError(r, err)
		return ui.render(w, r, status, "login", page{Title: "Log in", Error: msg, Data: loginData{Next: next, Username: user}})
	}
	if res.Session != nil {
		ui.srv.SetSessionCookie(w, res.Session)
		http.Redirect(w, r, next, http.StatusSeeOther)
		return nil
	}
	p := res.Pending
	return ui.render(w, r, http.StatusOK, "mfa", page{Title: "Second factor", Data: mfaData{
		Next: next, PendingID: p.ID, Enrolment: p.NeedsEnrolment, Secret: p.Secret, OTPAuthURL: p.OTPAuthURL, QRCodePNG: p.QRCodePNG,
	}})
}

func (ui *UI) mfaSubmit(w http.ResponseWriter, r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return apperr.Errorf(apperr.Invalid, "malformed form")
	}
	next := safeNext(r.PostFormValue("next"))
	pending := r.PostFormValue("pending_id")
	sess, codes, err := ui.deps.Auth.CompleteLogin(r.Context(), pending, strings.TrimSpace(r.PostFormValue("code")), api.RemoteAddr(r))
	if err != nil {
		status, msg := ui.userError(r, err)
		// A pending login that expired or was used up needs a fresh start.
		if apperr.Is(err, apperr.Unauthorized) && strings.Contains(msg, "expired") {
			return ui.render(w, r, status, "login", page{Title: "Log in", Error: msg, Data: loginData{Next: next}})
		}
		return ui.render(w, r, status, "mfa", page{Title: "Second factor", Error: msg, Data: mfaData{Next: next, PendingID: pending}})
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
	Stats    inventory.Stats
	ByStatus []bar
	ByClass  []bar
	BySite   []bar
	ByVendor []bar
	Charts   map[string]any
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
	byVendor := sortedCounts(st.ByVendor, "vendor")
	if len(byVendor) > 12 {
		byVendor = byVendor[:12]
	}
	return ui.render(w, r, http.StatusOK, "overview", page{Title: "Fleet overview", Nav: "overview", Data: overviewData{
		Stats: st, ByStatus: sortedCounts(st.ByStatus, "status"), ByClass: sortedCounts(st.ByClass, "class"),
		BySite: sortedCounts(st.BySite, "site"), ByVendor: byVendor,
		Charts: map[string]any{"risk": map[string]any{"x": buckets, "y": counts}},
	}})
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
	Device  inventory.Device
	History any
	CanEdit bool
}

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
	p, _ := api.PrincipalFrom(r.Context())
	return ui.render(w, r, http.StatusOK, "device", page{Title: dev.Name, Nav: "devices", Data: deviceData{
		Device: dev, History: hist, CanEdit: p.Can(auth.PermWrite),
	}})
}
