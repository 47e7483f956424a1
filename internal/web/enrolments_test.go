package web_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/app"
	"github.com/fleetward/fleetward/internal/inventory"
)

// TestBrowserAcceptsAQueuedEnrolment: a device nobody registered asks for
// a certificate over EST with no credential and is told to wait (202); an
// operator sees it on the Enrolments page with its key fingerprint and
// accepts it; the device's next request gets its certificate and the
// device is in the inventory, active.
func TestBrowserAcceptsAQueuedEnrolment(t *testing.T) {
	exe := chromium(t)
	ctx := actor.With(context.Background(), actor.Actor{Name: "test"})
	s, dir, login := startDashboard(t, ctx, app.Config{HTTPAddr: "127.0.0.1:0"})

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "door-17"}}, key)
	pem, _ := os.ReadFile(filepath.Join(dir, "tls", "ca.crt"))
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	ask := func() int {
		t.Helper()
		resp, err := client.Post(s.URL+"/.well-known/est/simpleenroll", "application/pkcs10", strings.NewReader(base64.StdEncoding.EncodeToString(der)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := ask(); got != http.StatusAccepted {
		t.Fatalf("an unknown device's first request = %d, want 202 (queued)", got)
	}

	b := newBrowser(t, exe)
	login(b, s.URL+"/enrolments", "pending")
	if got := b.text("pending"); !strings.Contains(got, "door-17") {
		t.Fatalf("the Enrolments page lists %q, want door-17", got)
	}
	b.shot("enrolments.png")
	b.step("accept it", chromedp.Click(chromedp.CSS("#pending button.accept")))
	// The form posts and the page comes back without the request; reads
	// during the navigation fail and are retried.
	deadline := time.Now().Add(15 * time.Second)
	for {
		rctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
		got, err := chromedp.Run(rctx, chromedp.Text(chromedp.ID("pending")))
		cancel()
		if err == nil && strings.Contains(got, "No device is waiting") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("door-17 is still listed after Accept: %q, %v", got, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := ask(); got != http.StatusOK {
		t.Fatalf("the device's request after acceptance = %d, want 200 with its certificate", got)
	}
	d, err := s.Inventory.GetDevice(ctx, "door-17")
	if err != nil || d.Status != inventory.StatusActive {
		t.Errorf("door-17 in the inventory after acceptance: %+v, %v; want it active", d, err)
	}
	if certs, _ := s.CA.DeviceCertificates(ctx, "door-17"); len(certs) != 1 {
		t.Errorf("door-17 has %d certificates, want 1", len(certs))
	}
}
