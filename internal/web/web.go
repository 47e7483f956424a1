// Package web is fleetward's dashboard: server-rendered pages (html/template)
// with htmx for partial updates and uPlot for charts, all embedded in the
// binary. Pages are routes of the API server, behind the same sessions,
// role checks and CSRF protection.
package web

import (
	"bytes"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/fleetward/fleetward/internal/api"
	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/auth"
	"github.com/fleetward/fleetward/internal/inventory"
	"github.com/fleetward/fleetward/internal/ledger"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Deps are what the dashboard shows and acts on.
type Deps struct {
	Inventory *inventory.Service
	Auth      *auth.Service
	Ledger    *ledger.Ledger
	// Connectivity, if set, adds certificates, live sessions, traffic and
	// the revoke and quarantine actions to the pages.
	Connectivity Connectivity
	// Enrolments, if set, adds the approval queue page.
	Enrolments Enrolments
	// Findings, if set, adds the findings page and the audit's figures to
	// the overview and device pages.
	Findings Findings
	// Alerts, if set, adds the alerts page.
	Alerts Alerts
	Log    *slog.Logger
	// InsecureDemoLogin puts a warning on every page: administrators may
	// log in without a second factor.
	InsecureDemoLogin bool
	// PlaintextInsecure puts a warning on every page: no TLS.
	PlaintextInsecure bool
}

// UI renders the dashboard.
type UI struct {
	deps  Deps
	srv   *api.Server
	pages map[string]*template.Template
}

// Register adds the dashboard's pages and static assets to the server.
func Register(s *api.Server, d Deps) *UI {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	ui := &UI{deps: d, srv: s, pages: parsePages()}
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/static/", http.FileServerFS(static))
	s.Handle(api.Route{Method: "GET", Pattern: "/static/", Handler: func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
		return nil
	}})
	read := auth.PermRead
	s.Handle(api.Route{Method: "GET", Pattern: "/login", Handler: ui.loginPage})
	s.Handle(api.Route{Method: "POST", Pattern: "/login", Handler: ui.loginSubmit})
	s.Handle(api.Route{Method: "POST", Pattern: "/login/mfa", Handler: ui.mfaSubmit})
	s.Handle(api.Route{Method: "POST", Pattern: "/logout", Perm: read, Page: true, Handler: ui.logout})
	s.Handle(api.Route{Method: "GET", Pattern: "/{$}", Perm: read, Page: true, Handler: ui.overview})
	s.Handle(api.Route{Method: "GET", Pattern: "/devices", Perm: read, Page: true, Handler: ui.devices})
	s.Handle(api.Route{Method: "GET", Pattern: "/devices/{id}", Perm: read, Page: true, Handler: ui.device})
	s.Handle(api.Route{Method: "GET", Pattern: "/connections", Perm: read, Page: true, Handler: ui.connections})
	s.Handle(api.Route{Method: "GET", Pattern: "/enrolments", Perm: read, Page: true, Handler: ui.enrolments})
	s.Handle(api.Route{Method: "POST", Pattern: "/enrolments/{id}", Perm: auth.PermWrite, Page: true, Handler: ui.decideEnrolment})
	s.Handle(api.Route{Method: "GET", Pattern: "/findings", Perm: read, Page: true, Handler: ui.findings})
	s.Handle(api.Route{Method: "GET", Pattern: "/alerts", Perm: read, Page: true, Handler: ui.alerts})
	s.Handle(api.Route{Method: "POST", Pattern: "/alerts/{id}/close", Perm: auth.PermWrite, Page: true, Handler: ui.closeAlert})
	s.Handle(api.Route{Method: "POST", Pattern: "/findings/{id}/suppress", Perm: auth.PermWrite, Page: true, Handler: ui.suppressFinding})
	s.Handle(api.Route{Method: "POST", Pattern: "/devices/{id}/revoke", Perm: auth.PermWrite, Page: true, Handler: ui.revokeDevice})
	s.Handle(api.Route{Method: "POST", Pattern: "/devices/{id}/status", Perm: auth.PermWrite, Page: true, Handler: ui.setDeviceStatus})
	return ui
}

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		d := time.Since(t)
		switch {
		case d < time.Minute:
			return "just now"
		case d < time.Hour:
			return fmt.Sprintf("%d min ago", int(d.Minutes()))
		case d < 48*time.Hour:
			return fmt.Sprintf("%d h ago", int(d.Hours()))
		default:
			return fmt.Sprintf("%d days ago", int(d.Hours()/24))
		}
	},
	"join":       strings.Join,
	"splitWords": strings.Fields,
	"riskClass": func(r float64) string {
		switch {
		case r >= 70:
			return "risk-high"
		case r >= 40:
			return "risk-medium"
		default:
			return "risk-low"
		}
	},
	"printf":   fmt.Sprintf,
	"sevClass": func(s string) string { return "sev-" + s },
	"query": func(base url.Values, key, value string) string {
		q := url.Values{}
		for k, v := range base {
			q[k] = v
		}
		q.Del("cursor")
		if value == "" {
			q.Del(key)
		} else {
			q.Set(key, value)
		}
		return q.Encode()
	},
	"b64": func(b []byte) string { return base64.StdEncoding.EncodeToString(b) },
	"json": func(v any) (template.JS, error) {
		b, err := json.Marshal(v)
		return template.JS(b), err
	},
	"derefFloat": func(f *float64) string {
		if f == nil {
			return ""
		}
		return fmt.Sprintf("%.5f", *f)
	},
}

// parsePages parses each page together with the shared layout.
func parsePages() map[string]*template.Template {
	pages := map[string]*template.Template{}
	for _, name := range []string{"login", "mfa", "recovery", "overview", "devices", "device", "connections", "enrolments", "findings", "alerts"} {
		t := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html"))
		pages[name] = t
	}
	return pages
}

// page is what every template gets.
type page struct {
	Title     string
	Nav       string
	User      string
	Role      string
	CSRF      string
	Insecure  []string
	Error     string
	Data      any
	Generated time.Time
}

func (ui *UI) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) error {
	if pr, ok := api.PrincipalFrom(r.Context()); ok {
		p.User, p.Role, p.CSRF = pr.Username, string(pr.Role), pr.CSRFToken
		if p.User == "" {
			p.User = pr.TokenName
		}
	}
	if ui.deps.InsecureDemoLogin {
		p.Insecure = append(p.Insecure, "Demo mode: administrators can log in WITHOUT a second factor (--insecure-demo-login). Not for real use.")
	}
	if ui.deps.PlaintextInsecure {
		p.Insecure = append(p.Insecure, "This server runs WITHOUT TLS (--http-plaintext-insecure).")
	}
	p.Generated = time.Now()
	var buf bytes.Buffer
	tmpl := name
	if r.Header.Get("HX-Request") == "true" && r.Header.Get("HX-Target") == "device-table" {
		tmpl = "table"
	}
	if err := ui.pages[name].ExecuteTemplate(&buf, tmplName(tmpl), p); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
	return nil
}

func tmplName(name string) string {
	if name == "table" {
		return "table"
	}
	return "layout.html"
}

// userError shows an application error on a page; internal errors are
// logged and shown without detail.
func (ui *UI) userError(r *http.Request, err error) (int, string) {
	e := apperr.As(err)
	if e == nil || e.Code == apperr.Internal {
		ui.deps.Log.Error("page failed", "path", r.URL.Path, "err", err)
		return http.StatusInternalServerError, "Something went wrong; the server log has details."
	}
	msg := e.Message
	if e.Field != "" {
		msg = e.Field + ": " + msg
	}
	return api.StatusOf(e), msg
}

// sortedCounts turns a count map into bars, largest first.
type bar struct {
	Label string
	Count int
	Width float64 // 0..100, relative to the largest
	Link  string
}

func sortedCounts(m map[string]int, param string) []bar {
	out := make([]bar, 0, len(m))
	max := 1
	for k, v := range m {
		out = append(out, bar{Label: k, Count: v})
		if v > max {
			max = v
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Label < out[j].Label
	})
	for i := range out {
		out[i].Width = 100 * float64(out[i].Count) / float64(max)
		if out[i].Label == "" {
			out[i].Label = "(none)"
		} else {
			out[i].Link = "/devices?" + url.Values{param: {out[i].Label}}.Encode()
		}
	}
	return out
}
