package web_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/alert"
	"github.com/fleetward/fleetward/internal/app"
	"github.com/fleetward/fleetward/internal/audit"
	"github.com/fleetward/fleetward/internal/demofleet"
)

// TestBrowserShowsFindingsOfARealScanAndSuppressesOne: a scan of a weak
// Telnet device on 127.0.0.1 makes it an unmanaged device; the overview
// warns about it and lists its findings, the Findings page explains them
// with their standards, and an operator suppresses one with a reason.
func TestBrowserShowsFindingsOfARealScanAndSuppressesOne(t *testing.T) {
	exe := chromium(t)
	ctx := actor.With(context.Background(), actor.Actor{Name: "operator:ada"})
	s, _, login := startDashboard(t, ctx, app.Config{HTTPAddr: "127.0.0.1:0"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go demofleet.ServeTelnetLogin(ln, "(none) login: ", "admin", "admin")
	rec, err := s.Scan(ctx, app.ScanRequest{Targets: []string{"127.0.0.1"}, Ports: fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)})
	if err != nil || rec.Summary.Unmanaged != 1 {
		t.Fatalf("scan = %+v, %v; want one unmanaged host", rec, err)
	}

	b := newBrowser(t, exe)
	login(b, s.URL+"/", "unmanaged-banner")
	if got := b.text("unmanaged-banner"); !strings.Contains(got, "1 unmanaged device") {
		t.Errorf("overview banner = %q", got)
	}
	if got := b.text("top-findings"); !strings.Contains(got, "Plaintext management service open") {
		t.Errorf("overview top findings = %q", got)
	}
	b.step("open findings", chromedp.Navigate(s.URL+"/findings"), chromedp.WaitVisible(chromedp.ID("findings")))
	got := b.text("findings")
	for _, want := range []string{"Unmanaged device on the network", "Plaintext management service open", "ETSI 5.5-1", "OWASP I2", "telnet on 127.0.0.1"} {
		if !strings.Contains(got, want) {
			t.Errorf("findings page lacks %q:\n%s", want, got)
		}
	}
	b.shot("findings.png")
	b.step("suppress the plaintext finding",
		chromedp.Click(chromedp.CSS(`tr[data-check="plaintext_management"] details summary`)),
		chromedp.SendKeys(chromedp.CSS(`tr[data-check="plaintext_management"] input[name=reason]`), "lab device, removed next week"),
		chromedp.Click(chromedp.CSS(`tr[data-check="plaintext_management"] form.suppress button`)))
	deadline := time.Now().Add(15 * time.Second)
	for {
		rctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
		got, err := chromedp.Run(rctx, chromedp.Text(chromedp.ID("findings")))
		cancel()
		if err == nil && !strings.Contains(got, "Plaintext management") && strings.Contains(got, "Unmanaged device") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the suppressed finding is still listed: %q, %v", got, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// An alert on the same device shows on the Alerts page.
	if _, err := s.RaiseAlert(ctx, alert.Signal{Time: time.Now(), Detector: "rule", Behaviour: "telnet_scan", Severity: alert.SeverityHigh,
		SrcIP: "127.0.0.1", Peer: "10.9.0.1:23", Score: 48, Threshold: 20, Explanation: "SYN to 23/tcp of 48 hosts in 10 s"}); err != nil {
		t.Fatal(err)
	}
	b.step("open alerts", chromedp.Navigate(s.URL+"/alerts"), chromedp.WaitVisible(chromedp.ID("alerts")))
	if got := b.text("alerts"); !strings.Contains(got, "telnet_scan") || !strings.Contains(got, "unmanaged") && !strings.Contains(got, "dev-") {
		t.Errorf("alerts page = %q; want the telnet scan on the unmanaged device", got)
	}
	b.shot("alerts.png")
	fs, err := s.Audit(ctx)
	if err != nil || fs.Summary.Suppressed != 1 {
		t.Fatalf("audit after suppression = %+v, %v; want one suppressed", fs.Summary, err)
	}
	all, _ := s.Findings(ctx, audit.FindingFilter{Status: "all", IncludeSuppressed: true})
	for _, f := range all {
		if f.Check == audit.CheckPlaintextManagement && (f.SuppressReason != "lab device, removed next week" || !strings.HasPrefix(f.SuppressedBy, "operator:ada")) {
			t.Errorf("suppressed finding = %+v", f)
		}
	}
}
