package app_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/app"
	"github.com/fleetward/fleetward/internal/audit"
	"github.com/fleetward/fleetward/internal/auth"
	"github.com/fleetward/fleetward/internal/demofleet"
	"github.com/fleetward/fleetward/internal/inventory"
)

// apiClient calls a test server's API with a token.
type apiClient struct {
	t     *testing.T
	url   string
	token string
	http  *http.Client
}

func newAPIClient(t *testing.T, s *app.Server, dir, token string) apiClient {
	pem, _ := os.ReadFile(filepath.Join(dir, "tls", "ca.crt"))
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	return apiClient{t: t, url: s.URL, token: token,
		http: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}}
}

// do sends a request and decodes the JSON answer into out (when not nil);
// it returns the status and the error body's field.
func (c apiClient) do(method, path, body string, out any) (int, string) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	if resp.StatusCode >= 400 {
		var e struct {
			Error struct{ Field, Message string } `json:"error"`
		}
		if err := json.Unmarshal(buf.Bytes(), &e); err != nil || e.Error.Message == "" {
			c.t.Fatalf("%s %s = %d without the error shape: %s", method, path, resp.StatusCode, buf.String())
		}
		return resp.StatusCode, e.Error.Field
	}
	if out != nil {
		if err := json.Unmarshal(buf.Bytes(), out); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, path, buf.String(), err)
		}
	}
	return resp.StatusCode, ""
}

// fakeTelnet is a weak device's Telnet login on 127.0.0.1.
func fakeTelnet(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go demofleet.ServeTelnetLogin(ln, "camera login: ", "root", "xc3511")
	return ln.Addr().(*net.TCPAddr).Port
}

func TestScanThroughTheAPIMergesIntoTheInventoryAndAuditsTheFleet(t *testing.T) {
	dir := t.TempDir()
	ctx := actor.With(context.Background(), actor.Actor{Name: "test"})
	s, err := app.Start(ctx, app.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	admin, _, err := s.Auth.CreateToken(ctx, "scanner", auth.RoleAdmin, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	operator, _, _ := s.Auth.CreateToken(ctx, "op", auth.RoleOperator, nil, time.Hour)
	// Two cameras of one model: the older firmware is a finding.
	for _, d := range []inventory.Device{
		{ID: "cam-old", Name: "Old camera", Class: "camera", Vendor: "Acme", Model: "C1", FirmwareVersion: "1.2.0"},
		{ID: "cam-new", Name: "New camera", Class: "camera", Vendor: "Acme", Model: "C1", FirmwareVersion: "1.10.0"},
	} {
		if _, err := s.Inventory.CreateDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	port := fakeTelnet(t)
	c := newAPIClient(t, s, dir, admin)
	var rec audit.ScanRecord
	if st, _ := c.do("POST", "/api/v1/scans", fmt.Sprintf(`{"targets":["127.0.0.1"],"ports":"%d"}`, port), &rec); st != 202 || rec.Status != audit.ScanRunning {
		t.Fatalf("start scan = %d %+v", st, rec)
	}
	deadline := time.Now().Add(20 * time.Second)
	for rec.Status == audit.ScanRunning && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		c.do("GET", "/api/v1/scans/"+rec.ID, "", &rec)
	}
	if rec.Status != audit.ScanCompleted || rec.Summary.OpenPorts != 1 || rec.Summary.NewDevices != 1 || rec.Actor != "token:scanner" {
		t.Fatalf("scan = %+v; want completed by token:scanner with one open port and one new device", rec)
	}
	// The unknown address is now an unmanaged device with its services.
	page, err := s.Inventory.ListDevices(ctx, inventory.Filter{Statuses: []string{inventory.StatusUnmanaged}})
	if err != nil || len(page.Devices) != 1 || !slices.Contains(page.Devices[0].IPs, "127.0.0.1") ||
		!strings.Contains(page.Devices[0].Attributes["scan.services"], fmt.Sprintf("tcp/%d telnet", port)) {
		t.Fatalf("unmanaged devices = %+v, %v", page.Devices, err)
	}
	rogue := page.Devices[0]
	var fs struct{ Findings []audit.Finding }
	c.do("GET", "/api/v1/findings?device="+rogue.ID, "", &fs)
	var checks []string
	for _, f := range fs.Findings {
		checks = append(checks, f.Check)
	}
	slices.Sort(checks)
	if want := []string{audit.CheckPlaintextManagement, audit.CheckUnmanagedDevice}; !slices.Equal(checks, want) {
		t.Fatalf("findings of the rogue device = %v, want %v", checks, want)
	}
	c.do("GET", "/api/v1/findings?device=cam-old", "", &fs)
	if len(fs.Findings) != 1 || fs.Findings[0].Check != audit.CheckFirmwareOutdated {
		t.Fatalf("findings of cam-old = %+v, want outdated firmware", fs.Findings)
	}
	var risk app.AuditReport
	c.do("GET", "/api/v1/risk", "", &risk)
	if risk.FleetRisk <= 0 || len(risk.Riskiest) == 0 || risk.Riskiest[0].ID != rogue.ID {
		t.Fatalf("risk = %+v; want the rogue device riskiest", risk)
	}
	if d, _ := s.Inventory.GetDevice(ctx, rogue.ID); d.RiskScore != risk.Riskiest[0].Risk {
		t.Errorf("inventory risk %v, report %v", d.RiskScore, risk.Riskiest[0].Risk)
	}
	// The scan is in the ledger with who ran it.
	es, _ := s.Ledger.EntriesBySubject(ctx, rec.ID, 5)
	if len(es) != 1 || es[0].Actor != "token:scanner" || es[0].Type != audit.EventScanCompleted {
		t.Fatalf("ledger for the scan = %+v", es)
	}
	// Suppressing needs a reason; the suppression hides the finding and names who.
	op := newAPIClient(t, s, dir, operator)
	id := fs.Findings[0].ID
	if st, field := op.do("POST", "/api/v1/findings/"+id+"/suppress", `{"until":"2099-01-01T00:00:00Z"}`, nil); st != 400 || field != "reason" {
		t.Errorf("suppress without a reason = %d field %q", st, field)
	}
	until := time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
	var f audit.Finding
	if st, _ := op.do("POST", "/api/v1/findings/"+id+"/suppress", `{"reason":"replacement ordered","until":"`+until+`"}`, &f); st != 200 || f.SuppressedBy != "token:op" {
		t.Fatalf("suppress = %d %+v", st, f)
	}
	var rep app.AuditReport
	if st, _ := op.do("POST", "/api/v1/audit", "", &rep); st != 200 {
		t.Fatalf("audit = %d", st)
	}
	if d, _ := s.Inventory.GetDevice(ctx, "cam-old"); d.RiskScore != 0 {
		t.Errorf("cam-old risk after suppressing its only finding = %v, want 0", d.RiskScore)
	}
	// Bad input and permissions.
	for _, bc := range []struct {
		name         string
		c            apiClient
		method, path string
		body         string
		status       int
		field        string
	}{
		{"a scan of a public address", c, "POST", "/api/v1/scans", `{"targets":["8.8.8.8"]}`, 403, ""},
		{"a scan with no targets", c, "POST", "/api/v1/scans", `{"targets":[]}`, 400, "targets"},
		{"a scan with an unknown credential mode", c, "POST", "/api/v1/scans", `{"targets":["127.0.0.1"],"credentials":"all"}`, 400, "credentials"},
		{"a scan with bad ports", c, "POST", "/api/v1/scans", `{"targets":["127.0.0.1"],"ports":"70000"}`, 400, "ports"},
		{"a scan with an unknown field", c, "POST", "/api/v1/scans", `{"targets":["127.0.0.1"],"speed":9}`, 400, ""},
		{"a scan by an operator", op, "POST", "/api/v1/scans", `{"targets":["127.0.0.1"]}`, 403, ""},
		{"findings with a bad status", c, "GET", "/api/v1/findings?status=maybe", "", 400, "status"},
		{"findings of an unknown check", c, "GET", "/api/v1/findings?check=nope", "", 400, "check"},
		{"an unknown finding", c, "GET", "/api/v1/findings/nope", "", 404, ""},
		{"suppressing into the past", c, "POST", "/api/v1/findings/" + id + "/suppress", `{"reason":"x","until":"2001-01-01T00:00:00Z"}`, 400, "until"},
		{"an unknown scan", c, "GET", "/api/v1/scans/scan-nope", "", 404, ""},
	} {
		t.Run(bc.name, func(t *testing.T) {
			st, field := bc.c.do(bc.method, bc.path, bc.body, nil)
			if st != bc.status || (bc.field != "" && field != bc.field) {
				t.Errorf("%s %s = %d field %q, want %d field %q", bc.method, bc.path, st, field, bc.status, bc.field)
			}
		})
	}
}

// TestAuditMatchesAdvisoriesAndEndOfLife: with the demo's CVE-2023-1389
// advisory and KEV entry imported, the router on vulnerable firmware gets
// a known-exploited finding and the patched one none; an end-of-life
// kernel is a finding too.
func TestAuditMatchesAdvisoriesAndEndOfLife(t *testing.T) {
	dir := t.TempDir()
	ctx := actor.With(context.Background(), actor.Actor{Name: "test"})
	s, err := app.Start(ctx, app.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	for name, b := range demofleet.Advisories() {
		if _, err := s.ImportAdvisories(ctx, name, bytes.NewReader(b)); err != nil {
			t.Fatalf("import %s: %v", name, err)
		}
	}
	for _, d := range []inventory.Device{
		{ID: "rtr-old", Name: "Guest router", Class: "router", Vendor: "TP-Link", Model: "Archer AX21 v1.20", FirmwareVersion: "1.1.2 Build 20220714"},
		{ID: "rtr-new", Name: "Office router", Class: "router", Vendor: "TP-Link", Model: "Archer AX21 v1.20", FirmwareVersion: "1.1.4 Build 20230219"},
		{ID: "cam-eol", Name: "Old camera", Class: "camera", Vendor: "Acme", OS: "Embedded Linux", OSVersion: "3.10.0"},
	} {
		if _, err := s.Inventory.CreateDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Audit(ctx); err != nil {
		t.Fatal(err)
	}
	checks := func(device string) []string {
		fs, err := s.Findings(ctx, audit.FindingFilter{DeviceID: device})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range fs {
			out = append(out, f.Check+" "+f.Subject)
		}
		slices.Sort(out)
		return out
	}
	if got := checks("rtr-old"); !slices.Contains(got, audit.CheckKnownExploited+" CVE-2023-1389") {
		t.Errorf("rtr-old findings = %v, want CVE-2023-1389 as known exploited", got)
	}
	if got := checks("rtr-new"); len(got) != 0 {
		t.Errorf("rtr-new (fixed firmware) findings = %v, want none", got)
	}
	if got := checks("cam-eol"); len(got) != 1 || !strings.HasPrefix(got[0], audit.CheckEndOfLife+" linux 3.10") {
		t.Errorf("cam-eol findings = %v, want the end-of-life kernel", got)
	}
	if d, _ := s.Inventory.GetDevice(ctx, "rtr-old"); d.RiskScore < 80 {
		t.Errorf("rtr-old risk %v; a known exploited vulnerability on a router should be at least 80", d.RiskScore)
	}
}
