package web_test

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/app"
	"github.com/fleetward/fleetward/internal/auth"
	"github.com/fleetward/fleetward/internal/demofleet"
	"github.com/fleetward/fleetward/internal/inventory"
)

// chromium finds Debian's chromium; the test command installs it. Without
// it the browser test cannot run, and says so (in CI it must run).
func chromium(t *testing.T) string {
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed; scripts/test.sh installs it")
	}
	t.Skip("chromium is not installed (apt-get install chromium); skipping the browser test")
	return ""
}

// TestBrowserLogsInWithMFAAndBrowsesTheFleet drives Debian chromium through
// the real dashboard over HTTPS: login with password and TOTP, the fleet
// overview, the device list and its filters, a device's ledger history.
// Screenshots are saved in the test's artifact directory.
func TestBrowserLogsInWithMFAAndBrowsesTheFleet(t *testing.T) {
	exe := chromium(t)
	ctx := actor.With(context.Background(), actor.Actor{Name: "test"})
	s, _, login := startDashboard(t, ctx, app.Config{HTTPAddr: "127.0.0.1:0"})

	for _, site := range demofleet.Sites() {
		if _, err := s.Inventory.CreateSite(ctx, site); err != nil {
			t.Fatal(err)
		}
	}
	fleet := demofleet.Generate(120, 7, time.Now())
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(json.NewEncoder(pw).Encode(fleet)) }()
	if _, err := s.Inventory.ImportDevices(ctx, "json", pr, inventory.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	cameras := 0
	for _, d := range fleet {
		if d.Class == "camera" {
			cameras++
		}
	}

	b := newBrowser(t, exe)
	login(b, s.URL+"/devices", "devices")
	step, text, shot := b.step, b.text, b.shot
	total := text("device-total")
	shot("devices.png")
	step("filter the list to cameras",
		chromedp.SetValue(chromedp.ID("class"), "camera"),
		chromedp.Evaluate[chromedp.Void](`htmx.trigger('#filters', 'change')`),
	)
	// htmx replaces the table (and the total with it); wait until the
	// settled page shows the camera count, then read it once more.
	pctx, pcancel := context.WithTimeout(b.ctx, 15*time.Second)
	_, perr := chromedp.Run(pctx, chromedp.Poll[chromedp.Void](
		`(document.getElementById('device-total') || {}).textContent === '`+strconv.Itoa(cameras)+`' && !document.querySelector('.htmx-request, .htmx-settling, .htmx-swapping')`))
	pcancel()
	filtered := text("device-total")
	if perr != nil {
		t.Errorf("the camera filter did not settle on %d devices: %v (page shows %q)", cameras, perr, filtered)
	}
	shot("devices-cameras.png")
	step("open a device", chromedp.Click(chromedp.CSS("#devices tbody tr a")), chromedp.WaitVisible(chromedp.ID("history")))
	history := text("history")
	shot("device.png")
	step("open the overview", chromedp.Navigate(s.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#risk-chart canvas")))
	tiles := text("tiles")
	shot("overview.png")

	if strings.TrimSpace(total) != strconv.Itoa(len(fleet)) {
		t.Errorf("device list total = %q, want %d", total, len(fleet))
	}
	if strings.TrimSpace(filtered) != strconv.Itoa(cameras) {
		t.Errorf("camera filter total = %q, want %d", filtered, cameras)
	}
	if !strings.Contains(history, "device.") {
		t.Errorf("device history shows no ledger entry: %q", history)
	}
	if !strings.Contains(tiles, strconv.Itoa(len(fleet))) {
		t.Errorf("overview tiles %q lack the fleet size %d", tiles, len(fleet))
	}
}

// browser drives one headless chromium for a test.
type browser struct {
	t   *testing.T
	ctx context.Context
	out string
}

func newBrowser(t *testing.T, exe string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("ignore-certificate-errors", true), // a test server's CA is not in chromium's store
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.WindowSize(1400, 1000),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	bctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	// The first Run starts the browser; it must not carry a timeout (that
	// would stop the browser), so each step gets its own.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{t: t, ctx: bctx, out: t.ArtifactDir()}
}

func (b *browser) step(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	sctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		b.t.Fatalf("browser: %s: %v", what, err)
	}
}

func (b *browser) text(id string) string {
	b.t.Helper()
	sctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, chromedp.Text(chromedp.ID(id)))
	if err != nil {
		b.t.Fatalf("browser: read #%s: %v", id, err)
	}
	return v
}

func (b *browser) shot(name string) {
	b.t.Helper()
	sctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("browser: screenshot %s: %v", name, err)
	}
	path := filepath.Join(b.out, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", path)
}

// login opens url, is sent to the login page, gives the password and a
// TOTP code, and waits for the element with id landing.
func (b *browser) login(url, user, password, totpSecret, landing string) {
	b.t.Helper()
	b.step("log in with a password",
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.ID("login-form")),
		chromedp.SendKeys(chromedp.ID("username"), user),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.ID("mfa-form")),
	)
	code, err := totp.GenerateCode(totpSecret, time.Now())
	if err != nil {
		b.t.Fatal(err)
	}
	b.step("give the TOTP code",
		chromedp.SendKeys(chromedp.ID("code"), code),
		chromedp.Click(chromedp.ID("mfa-submit")),
		chromedp.WaitVisible(chromedp.ID(landing)),
	)
}

// startDashboard starts a real server on a fresh data directory (cfg's
// DataDir is set here) with the administrator "ada" enrolled in TOTP, and
// returns it, its data directory and a function that logs a browser in as
// ada at url and waits for the element with id landing.
func startDashboard(t *testing.T, ctx context.Context, cfg app.Config) (*app.Server, string, func(b *browser, url, landing string)) {
	t.Helper()
	cfg.DataDir = t.TempDir()
	s, err := app.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
	const password = "a long demo passphrase"
	if _, err := s.Auth.CreateOperator(ctx, "ada", password, auth.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	enrol, err := s.Auth.EnrollTOTP(ctx, "ada")
	if err != nil {
		t.Fatal(err)
	}
	return s, cfg.DataDir, func(b *browser, url, landing string) {
		b.t.Helper()
		b.login(url, "ada", password, enrol.Secret, landing)
	}
}
