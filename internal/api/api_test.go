package api_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/api"
	"github.com/fleetward/fleetward/internal/app"
	"github.com/fleetward/fleetward/internal/auth"
)

// testServer is a real fleetward server on a loopback port with TLS.
type testServer struct {
	*app.Server
	t      *testing.T
	client *http.Client
	admin  string // admin bearer token
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	dir := t.TempDir()
	s, err := app.Start(context.Background(), app.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(func() { s.Stop() })
	pem, err := os.ReadFile(filepath.Join(dir, "tls", "ca.crt"))
	if err != nil {
		t.Fatalf("read server certificate: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	ctx := actor.With(context.Background(), actor.Actor{Name: "test"})
	tok, _, err := s.Auth.CreateToken(ctx, "test-admin", auth.RoleAdmin, nil, time.Hour)
	if err != nil {
		t.Fatalf("create token: %v", err)
	}
	return &testServer{Server: s, t: t, client: client, admin: tok}
}

// do sends a request and returns the status and body.
func (ts *testServer) do(method, path, token string, body io.Reader, hdr ...string) (int, []byte) {
	ts.t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, body)
	if err != nil {
		ts.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := ts.client.Do(req)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

type errShape struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"error"`
}

func decodeErr(t *testing.T, b []byte) errShape {
	t.Helper()
	var e errShape
	if err := json.Unmarshal(b, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("body is not the API's error shape: %s", b)
	}
	return e
}

func TestEveryRouteIsDocumentedAndEveryDocumentedRouteExists(t *testing.T) {
	ts := startServer(t)
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	status, body := ts.do("GET", "/api/openapi.json", "", nil)
	if status != 200 {
		t.Fatalf("GET /api/openapi.json = %d", status)
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi version = %q, want 3.1.0", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	served := map[string]bool{"GET /healthz": true, "GET /metrics": true, "GET /api/openapi.json": true}
	for _, rt := range ts.API.Routes() {
		if strings.HasPrefix(rt.Pattern, "/api/") || strings.HasPrefix(rt.Pattern, "/pki/") || strings.HasPrefix(rt.Pattern, "/.well-known/est/") {
			served[rt.Method+" "+strings.Replace(rt.Pattern, "{request...}", "{request}", 1)] = true
		}
	}
	var missingDoc, missingRoute []string
	for k := range served {
		if !documented[k] {
			missingDoc = append(missingDoc, k)
		}
	}
	for k := range documented {
		if !served[k] {
			missingRoute = append(missingRoute, k)
		}
	}
	sort.Strings(missingDoc)
	sort.Strings(missingRoute)
	if len(missingDoc) > 0 {
		t.Errorf("routes served but not documented in openapi.json: %v", missingDoc)
	}
	if len(missingRoute) > 0 {
		t.Errorf("routes documented but not served: %v", missingRoute)
	}
	// Every documented route answers on the wire (anything but the
	// router's own 404 or 405).
	param := regexp.MustCompile(`\{[^}]+\}`)
	for k := range documented {
		method, path, _ := strings.Cut(k, " ")
		status, body := ts.do(method, param.ReplaceAllString(path, "x"), ts.admin, nil)
		if status == http.StatusMethodNotAllowed || (status == 404 && strings.Contains(string(body), "no API route")) || status >= 500 {
			t.Errorf("%s answered %d: %s", k, status, body)
		}
	}
}

func TestUnauthenticatedRequestsGet401WithTheErrorShape(t *testing.T) {
	ts := startServer(t)
	for _, path := range []string{"/api/v1/devices", "/api/v1/stats", "/api/v1/ledger/checkpoint", "/metrics"} {
		status, body := ts.do("GET", path, "", nil)
		if status != 401 {
			t.Errorf("GET %s without credentials = %d, want 401", path, status)
			continue
		}
		if e := decodeErr(t, body); e.Error.Code != "unauthorized" {
			t.Errorf("GET %s: code %q, want unauthorized", path, e.Error.Code)
		}
	}
	status, _ := ts.do("GET", "/api/v1/devices", "fwt_bogus_token", nil)
	if status != 401 {
		t.Errorf("bogus token = %d, want 401", status)
	}
	status, body := ts.do("GET", "/healthz", "", nil)
	if status != 200 || !strings.Contains(string(body), `"ok"`) {
		t.Errorf("GET /healthz = %d %s", status, body)
	}
}

func TestBadInputGets4xxNamingTheFieldNever500(t *testing.T) {
	ts := startServer(t)
	big := bytes.Repeat([]byte("a"), api.MaxJSONBody+10)
	cases := []struct {
		name, method, path, body string
		raw                      []byte
		wantStatus               int
		wantField                string
	}{
		{"malformed JSON", "POST", "/api/v1/devices", `{"name": "x",`, nil, 400, ""},
		{"unknown field", "POST", "/api/v1/devices", `{"name":"cam","class":"camera","colour":"red"}`, nil, 400, "colour"},
		{"wrong type", "POST", "/api/v1/devices", `{"name":"cam","class":"camera","risk_score":"high"}`, nil, 400, "risk_score"},
		{"missing name", "POST", "/api/v1/devices", `{"class":"camera"}`, nil, 400, "name"},
		{"bad class", "POST", "/api/v1/devices", `{"name":"cam","class":"toaster-oven"}`, nil, 400, "class"},
		{"bad mac", "POST", "/api/v1/devices", `{"name":"cam","class":"camera","macs":["zz:zz"]}`, nil, 400, "macs[0]"},
		{"trailing data", "POST", "/api/v1/devices", `{"name":"cam","class":"camera"} {}`, nil, 400, ""},
		{"empty body", "POST", "/api/v1/devices", ``, nil, 400, ""},
		{"array instead of object", "POST", "/api/v1/devices", `[1,2]`, nil, 400, ""},
		{"oversize body", "POST", "/api/v1/devices", "", append(append([]byte(`{"name":"`), big...), []byte(`"}`)...), 413, ""},
		{"unknown filter", "GET", "/api/v1/devices?colour=red", "", nil, 400, "colour"},
		{"bad risk range", "GET", "/api/v1/devices?risk_min=abc", "", nil, 400, "risk_min"},
		{"malformed query string", "GET", "/api/v1/devices?cursor=%%%", "", nil, 400, ""},
		{"bad cursor", "GET", "/api/v1/devices?cursor=notacursor", "", nil, 400, "cursor"},
		{"bad limit", "GET", "/api/v1/devices?limit=100000", "", nil, 400, "limit"},
		{"proof without size", "GET", "/api/v1/ledger/proof/inclusion?index=0", "", nil, 400, "size"},
		{"token bad role", "POST", "/api/v1/tokens", `{"name":"x","role":"king"}`, nil, 400, "role"},
		{"unknown device", "GET", "/api/v1/devices/no-such-device", "", nil, 404, ""},
		{"import bad format", "POST", "/api/v1/devices/import?format=xml", "x", nil, 400, "format"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := c.raw
			if body == nil {
				body = []byte(c.body)
			}
			status, out := ts.do(c.method, c.path, ts.admin, bytes.NewReader(body), "Content-Type", "application/json")
			if status != c.wantStatus {
				t.Fatalf("status %d, want %d: %s", status, c.wantStatus, out)
			}
			e := decodeErr(t, out)
			if c.wantField != "" && e.Error.Field != c.wantField {
				t.Errorf("field %q, want %q (message %q)", e.Error.Field, c.wantField, e.Error.Message)
			}
		})
	}
}

func TestRolesAreEnforcedAndDenialsAreRecorded(t *testing.T) {
	ts := startServer(t)
	ctx := actor.With(context.Background(), actor.Actor{Name: "test"})
	auditor, _, err := ts.Auth.CreateToken(ctx, "auditor", auth.RoleAuditor, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if status, _ := ts.do("GET", "/api/v1/devices", auditor, nil); status != 200 {
		t.Fatalf("auditor list = %d, want 200", status)
	}
	status, body := ts.do("POST", "/api/v1/devices", auditor, strings.NewReader(`{"name":"cam","class":"camera"}`))
	if status != 403 || decodeErr(t, body).Error.Code != "forbidden" {
		t.Fatalf("auditor create = %d %s, want 403 forbidden", status, body)
	}
	if status, _ := ts.do("GET", "/api/v1/tokens", auditor, nil); status != 403 {
		t.Fatalf("auditor list tokens = %d, want 403", status)
	}
	entries, err := ts.Ledger.EntriesByType(context.Background(), "security.permission_denied", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < 2 {
		t.Fatalf("ledger has %d permission_denied entries, want 2", len(entries))
	}
}

func TestSessionLoginNeedsCSRFTokenForChanges(t *testing.T) {
	ts := startServer(t)
	ctx := actor.With(context.Background(), actor.Actor{Name: "test"})
	if _, err := ts.Auth.CreateOperator(ctx, "olga", "correct horse battery staple", auth.RoleOperator); err != nil {
		t.Fatal(err)
	}
	status, body := ts.do("POST", "/api/v1/auth/login", "", strings.NewReader(`{"username":"olga","password":"correct horse battery staple"}`))
	if status != 200 {
		t.Fatalf("login = %d %s", status, body)
	}
	var login struct {
		Status    string `json:"status"`
		CSRFToken string `json:"csrf_token"`
	}
	json.Unmarshal(body, &login)
	if login.Status != "ok" || login.CSRFToken == "" {
		t.Fatalf("login answer %s", body)
	}
	if status, _ := ts.do("GET", "/api/v1/devices", "", nil); status != 200 {
		t.Fatalf("list with session = %d", status)
	}
	dev := `{"name":"lobby cam","class":"camera"}`
	if status, body := ts.do("POST", "/api/v1/devices", "", strings.NewReader(dev)); status != 403 {
		t.Fatalf("create with session but no CSRF token = %d %s, want 403", status, body)
	}
	if status, body := ts.do("POST", "/api/v1/devices", "", strings.NewReader(dev), api.CSRFHeader, login.CSRFToken); status != 201 {
		t.Fatalf("create with CSRF token = %d %s, want 201", status, body)
	}
	if status, _ := ts.do("POST", "/api/v1/auth/logout", "", nil, api.CSRFHeader, login.CSRFToken); status != 204 {
		t.Fatalf("logout = %d", status)
	}
	if status, _ := ts.do("GET", "/api/v1/devices", "", nil); status != 401 {
		t.Fatalf("list after logout = %d, want 401", status)
	}
}

func TestMetricsNeedATokenAndExposePrometheusText(t *testing.T) {
	ts := startServer(t)
	ts.do("GET", "/api/v1/devices", ts.admin, nil)
	status, body := ts.do("GET", "/metrics", ts.admin, nil)
	if status != 200 {
		t.Fatalf("metrics = %d", status)
	}
	for _, want := range []string{"fleetward_http_requests_total{", "fleetward_devices{", "fleetward_auth_events_total{"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
