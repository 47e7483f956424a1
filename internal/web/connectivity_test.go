package web_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/app"
	"github.com/fleetward/fleetward/internal/inventory"
)

// TestBrowserShowsAConnectedDeviceAndQuarantinesIt connects a device to
// the real broker with Debian's mosquitto clients and its CA-issued
// certificate, then drives chromium: the overview counts it as connected,
// its page shows the session's TLS version and key exchange, its
// certificate and a traffic chart, and the Quarantine button drops it.
func TestBrowserShowsAConnectedDeviceAndQuarantinesIt(t *testing.T) {
	exe := chromium(t)
	sub, err := exec.LookPath("mosquitto_sub")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("mosquitto_sub is not installed; scripts/test.sh installs mosquitto-clients")
		}
		t.Skip("mosquitto_sub is not installed (Debian mosquitto-clients)")
	}
	pub, _ := exec.LookPath("mosquitto_pub")
	ctx := actor.With(context.Background(), actor.Actor{Name: "test"})
	s, dir, login := startDashboard(t, ctx, app.Config{HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0", TelemetryInterval: 200 * time.Millisecond})

	if _, err := s.Inventory.CreateDevice(ctx, inventory.Device{ID: "cam-7", Name: "Lobby camera", Class: "camera", Vendor: "Axis Communications"}); err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "cam-7"}}, key)
	csr, _ := x509.ParseCertificateRequest(der)
	cert, err := s.CA.IssueDevice(ctx, "cam-7", "camera", csr)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "cam-7.crt"), filepath.Join(dir, "cam-7.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	_, port, _ := net.SplitHostPort(s.MQTTAddr())
	args := []string{"-h", "127.0.0.1", "-p", port, "--cafile", filepath.Join(dir, "tls", "ca.crt"), "--cert", certFile, "--key", keyFile, "-i", "cam-7"}

	// Some traffic over a few sampling intervals, for the chart, before the
	// device's long-lived session (a second connect with the same client
	// id would take that session over, as MQTT says).
	for i := range 4 {
		if out, err := exec.Command(pub, append(args[:len(args)-1], "cam-7", "-t", "devices/cam-7/telemetry", "-q", "1", "-m", `{"temp":21}`)...).CombinedOutput(); err != nil {
			t.Fatalf("publish %d: %v: %s", i, err, out)
		}
		time.Sleep(250 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	device := exec.Command(sub, append(args, "-t", "devices/cam-7/cmd/#")...)
	var devOut bytes.Buffer
	device.Stdout, device.Stderr = &devOut, &devOut
	if err := device.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { device.Process.Kill(); device.Wait() }()
	connected := func() bool {
		for _, ss := range s.Broker.Sessions() {
			if ss.DeviceID == "cam-7" {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(5 * time.Second)
	for !connected() {
		if time.Now().After(deadline) {
			t.Fatalf("the device did not connect: %s", devOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	b := newBrowser(t, exe)
	login(b, s.URL+"/", "tiles")
	if got := strings.TrimSpace(b.text("connected")); got != "1" {
		t.Errorf("overview shows %q devices connected, want 1", got)
	}
	b.step("open the connections page", chromedp.Navigate(s.URL+"/connections"), chromedp.WaitVisible(chromedp.ID("sessions")))
	if got := b.text("sessions"); !strings.Contains(got, "cam-7") || !strings.Contains(got, "TLS 1.3") {
		t.Errorf("connections page lists %q, want cam-7 over TLS 1.3", got)
	}
	b.shot("connections.png")
	b.step("open the device", chromedp.Navigate(s.URL+"/devices/cam-7"), chromedp.WaitVisible(chromedp.ID("connectivity")),
		chromedp.WaitVisible(chromedp.CSS("#traffic-chart canvas")))
	session := b.text("session")
	certs := b.text("certificates")
	b.shot("device-connectivity.png")
	if !strings.Contains(session, "connected") || !strings.Contains(session, "TLS 1.3") {
		t.Errorf("session on the device page = %q, want connected over TLS 1.3", session)
	}
	if !strings.Contains(certs, cert.SerialNumber.Text(16)) || !strings.Contains(certs, "valid") {
		t.Errorf("certificates on the device page = %q, want serial %s valid", certs, cert.SerialNumber.Text(16))
	}
	b.step("quarantine it", chromedp.Click(chromedp.ID("quarantine")), chromedp.WaitVisible(chromedp.ID("release")))
	if got := b.text("session"); !strings.Contains(got, "not connected") {
		t.Errorf("after quarantine the session shows %q, want not connected", got)
	}
	if connected() {
		t.Error("the broker still has the quarantined device's session")
	}
	d, _ := s.Inventory.GetDevice(ctx, "cam-7")
	if d.Status != inventory.StatusQuarantined {
		t.Errorf("device status after the button = %s, want quarantined", d.Status)
	}
	b.shot("device-quarantined.png")
}
