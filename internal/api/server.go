// Package api serves fleetward's JSON HTTP API under /api/v1/, its OpenAPI
// document, /healthz and /metrics, and hosts the dashboard's pages behind
// the same authentication, CSRF protection and role checks.
package api

import (
	"context"
	"crypto/subtle"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/auth"
	"github.com/fleetward/fleetward/internal/inventory"
	"github.com/fleetward/fleetward/internal/ledger"
)

// Cookie names. The session cookie is HttpOnly; the CSRF token travels in
// pages (a meta tag and hidden fields) and comes back in a header or field.
const (
	SessionCookie = "fw_session"
	CSRFHeader    = "X-CSRF-Token"
	CSRFField     = "csrf_token"
)

// Body size limits.
const (
	MaxJSONBody   = 1 << 20  // 1 MiB for ordinary requests
	MaxImportBody = 64 << 20 // 64 MiB for device imports
)

// Deps are the services the API serves. All are required except where said.
type Deps struct {
	Inventory *inventory.Service
	Auth      *auth.Service
	Ledger    *ledger.Ledger
	// Health reports whether storage and the bus work; nil means healthy.
	Health func(ctx context.Context) error
	// Metrics is the set /metrics exposes; the API adds its request
	// counters to it.
	Metrics *metrics.Set
	// WriteMetrics, if set, writes extra Prometheus text after Metrics
	// (figures computed at scrape time: fleet sizes, ledger size).
	WriteMetrics func(ctx context.Context, w *strings.Builder)
	Log          *slog.Logger
	// MetricsPublic serves /metrics without a token (--metrics-public).
	MetricsPublic bool
	// PlaintextInsecure is set when the server listens without TLS
	// (--http-plaintext-insecure); cookies then lose their Secure flag so
	// a browser still sends them.
	PlaintextInsecure bool
}

// Route is one endpoint: its method and path pattern (net/http syntax), the
// permission it needs ("" for public routes) and its handler.
type Route struct {
	Method  string
	Pattern string
	Perm    auth.Permission
	// Page routes answer an unauthenticated browser with a redirect to
	// the login page instead of a JSON error.
	Page    bool
	Handler func(w http.ResponseWriter, r *http.Request) error
	// BodyLimit overrides MaxJSONBody.
	BodyLimit int64
}

// Server is the HTTP front of fleetward.
type Server struct {
	deps   Deps
	log    *slog.Logger
	mux    *http.ServeMux
	routes []Route
}

// New builds the server and registers the API's routes.
func New(d Deps) *Server {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Metrics == nil {
		d.Metrics = metrics.NewSet()
	}
	s := &Server{deps: d, log: d.Log, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /metrics", s.serveMetrics)
	s.mux.HandleFunc("GET /api/openapi.json", serveOpenAPI)
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, s.log, apperr.NotFoundf("no API route %s %s", r.Method, r.URL.Path))
	})
	for _, rt := range s.apiRoutes() {
		s.Handle(rt)
	}
	return s
}

// Routes returns every route registered through Handle, API and pages.
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

// Handler returns the server's root handler with its outer middleware:
// panic recovery, security headers and request metrics.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if v := recover(); v != nil {
				s.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				if !sw.wrote {
					writeError(sw, r, s.log, apperr.Errorf(apperr.Internal, "panic"))
				}
			}
			_, pattern := s.mux.Handler(r)
			if pattern == "" {
				pattern = "unmatched"
			}
			s.deps.Metrics.GetOrCreateCounter(`fleetward_http_requests_total{route="` + pattern + `",code="` + itoa(sw.status) + `"}`).Inc()
			s.deps.Metrics.GetOrCreateHistogram(`fleetward_http_request_duration_seconds{route="` + pattern + `"}`).UpdateDuration(start)
		}()
		h := sw.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		// same-origin, not no-referrer: with no-referrer browsers send
		// "Origin: null" on form posts, which the CSRF check refuses.
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		if !s.deps.PlaintextInsecure {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		s.mux.ServeHTTP(sw, r)
	})
}

// Handle registers a route behind authentication, role checks and CSRF
// protection.
func (s *Server) Handle(rt Route) {
	s.routes = append(s.routes, rt)
	limit := rt.BodyLimit
	if limit == 0 {
		limit = MaxJSONBody
	}
	s.mux.HandleFunc(rt.Method+" "+rt.Pattern, func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		remote := RemoteAddr(r)
		ctx := actor.With(r.Context(), actor.Actor{Name: "anonymous", Remote: remote})
		r = r.WithContext(ctx)
		if rt.Perm != "" {
			p, err := s.authenticate(r, remote)
			if err != nil {
				if rt.Page {
					http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
					return
				}
				writeError(w, r, s.log, err)
				return
			}
			ctx = actor.With(withPrincipal(ctx, p), actor.Actor{Name: p.ActorName(), Remote: remote})
			r = r.WithContext(ctx)
			if !p.Can(rt.Perm) {
				s.deps.Auth.RecordDenied(ctx, p, rt.Method+" "+rt.Pattern, remote)
				writeError(w, r, s.log, apperr.Errorf(apperr.Forbidden, "role %s may not do this (needs %s permission)", p.Role, rt.Perm))
				return
			}
			if err := checkCSRF(r, p); err != nil {
				s.deps.Auth.RecordDenied(ctx, p, "csrf "+rt.Method+" "+rt.Pattern, remote)
				writeError(w, r, s.log, err)
				return
			}
		}
		if err := rt.Handler(w, r); err != nil {
			writeError(w, r, s.log, err)
		}
	})
}

// authenticate resolves the caller from a bearer token or a session cookie.
func (s *Server) authenticate(r *http.Request, remote string) (auth.Principal, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || tok == "" {
			return auth.Principal{}, apperr.Errorf(apperr.Unauthorized, "Authorization header must be \"Bearer <token>\"")
		}
		return s.deps.Auth.AuthenticateToken(r.Context(), strings.TrimSpace(tok), remote)
	}
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		return s.deps.Auth.AuthenticateSession(r.Context(), c.Value, remote)
	}
	return auth.Principal{}, apperr.Errorf(apperr.Unauthorized, "authentication required: send a bearer token or log in")
}

// checkCSRF requires the session's CSRF token on every state-changing
// request made with a session cookie. Bearer tokens are not sent by
// browsers on their own, so they need none.
func checkCSRF(r *http.Request, p auth.Principal) error {
	if p.Kind != "session" {
		return nil
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		got = r.PostFormValue(CSRFField)
	}
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(p.CSRFToken)) != 1 {
		return apperr.Errorf(apperr.Forbidden, "missing or wrong CSRF token")
	}
	if o := r.Header.Get("Origin"); o != "" {
		if u, err := url.Parse(o); err != nil || u.Host != r.Host {
			return apperr.Errorf(apperr.Forbidden, "cross-origin request refused")
		}
	}
	return nil
}

type principalKey struct{}

func withPrincipal(ctx context.Context, p auth.Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the authenticated caller of a request handled by a
// route with a permission.
func PrincipalFrom(ctx context.Context) (auth.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(auth.Principal)
	return p, ok
}

// RemoteAddr is the peer's IP address. Forwarded headers are not trusted:
// fleetward is reached directly or through a proxy that terminates TLS for
// it, and a spoofed header must not dodge login throttling.
func RemoteAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if s.deps.Health != nil {
		if err := s.deps.Health(r.Context()); err != nil {
			s.log.Warn("health check failed", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unhealthy", "reason": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if !s.deps.MetricsPublic {
		p, err := s.authenticate(r, RemoteAddr(r))
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		if !p.Can(auth.PermRead) {
			writeError(w, r, s.log, apperr.Errorf(apperr.Forbidden, "metrics need read permission"))
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	s.deps.Metrics.WritePrometheus(w)
	if s.deps.WriteMetrics != nil {
		var b strings.Builder
		s.deps.WriteMetrics(r.Context(), &b)
		_, _ = w.Write([]byte(b.String()))
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func itoa(n int) string { return strconv.Itoa(n) }
