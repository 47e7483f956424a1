package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/identity"
)

// newTestAgent makes an agent for device id with its data in a fresh
// directory, enrolling at est with a pinned server fingerprint.
func newTestAgent(t *testing.T, est *estServer, id, token, dir string) *Agent {
	t.Helper()
	a, err := New(Config{
		DeviceID: id,
		Server:   est.srv.URL,
		Token:    token,
		DataDir:  dir,
		Trust:    ServerTrust{Fingerprint: est.pki.serverFP},
		Log:      testLog(t),
	})
	if err != nil {
		t.Fatalf("new agent: %v", err)
	}
	return a
}

func TestEnrolmentStoresKeyAndCertificateReadableOnlyByTheAgent(t *testing.T) {
	pki := newTestPKI(t)
	est := startESTServer(t, pki, map[string]string{"sensor-1": "tok-1"})
	dir := filepath.Join(t.TempDir(), "agent")
	a := newTestAgent(t, est, "sensor-1", "tok-1", dir)
	if err := a.Enroll(context.Background()); err != nil {
		t.Fatalf("enrol: %v", err)
	}
	cert := a.Certificate()
	if cert.Subject.CommonName != "sensor-1" || len(cert.URIs) != 1 || cert.URIs[0].String() != "urn:fleetward:device:sensor-1" {
		t.Errorf("certificate names CN %q, URIs %v", cert.Subject.CommonName, cert.URIs)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode %v, want 0700", fi.Mode().Perm())
	}
	for _, f := range []string{keyFile, certFile, chainFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	chain, err := a.keys.Chain()
	if err != nil || len(chain) != len(pki.chain) || !chain[len(chain)-1].Equal(pki.chain[len(pki.chain)-1]) {
		t.Errorf("stored chain has %d certificates (%v), want the CA's %d ending in its root", len(chain), err, len(pki.chain))
	}

	t.Run("a restarted agent reuses its key and certificate without a token", func(t *testing.T) {
		b := newTestAgent(t, est, "sensor-1", "", dir)
		if err := b.Enroll(context.Background()); err != nil {
			t.Fatalf("enrol from storage: %v", err)
		}
		if !b.Certificate().Equal(cert) {
			t.Error("restarted agent has a different certificate")
		}
		if est.enrolls != 1 {
			t.Errorf("server saw %d enrolments, want 1", est.enrolls)
		}
	})
}

func TestEnrolmentWaitsWhileTheServerAnswers202(t *testing.T) {
	pki := newTestPKI(t)
	est := startESTServer(t, pki, map[string]string{"sensor-2": "tok-2"})
	est.pending = 1
	a := newTestAgent(t, est, "sensor-2", "tok-2", t.TempDir())
	start := time.Now()
	if err := a.Enroll(context.Background()); err != nil {
		t.Fatalf("enrol: %v", err)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("enrolled after %v; the server said Retry-After: 1", waited)
	}
	if est.pending != 0 || est.enrolls != 1 {
		t.Errorf("pending %d, enrolments %d; want 0 and 1", est.pending, est.enrolls)
	}
}

func TestEnrolmentFindsTheDeviceCertificateBehindTheChain(t *testing.T) {
	pki := newTestPKI(t)
	est := startESTServer(t, pki, map[string]string{"sensor-10": "tok"})
	est.chainFirst = true
	a := newTestAgent(t, est, "sensor-10", "tok", t.TempDir())
	if err := a.Enroll(context.Background()); err != nil {
		t.Fatalf("enrol: %v", err)
	}
	if c := a.Certificate(); c.IsCA || c.Subject.CommonName != "sensor-10" {
		t.Errorf("agent took %q (CA %v) as its certificate", c.Subject.CommonName, c.IsCA)
	}
}

func TestEnrolmentWithAWrongTokenFailsWithTheServersText(t *testing.T) {
	pki := newTestPKI(t)
	est := startESTServer(t, pki, map[string]string{"sensor-3": "right"})
	a := newTestAgent(t, est, "sensor-3", "wrong", t.TempDir())
	err := a.Enroll(context.Background())
	var ee *ESTError
	if !errors.As(err, &ee) || ee.Status != 401 || !strings.Contains(ee.Message, "bad enrolment credentials") {
		t.Fatalf("error = %v, want an ESTError 401 with the server's text", err)
	}
	if a.keys.HasCertificate() {
		t.Error("a certificate was stored after a refused enrolment")
	}
}

func TestAgentWithoutTokenOrCertificateSaysSo(t *testing.T) {
	pki := newTestPKI(t)
	est := startESTServer(t, pki, nil)
	a := newTestAgent(t, est, "sensor-4", "", t.TempDir())
	if err := a.Enroll(context.Background()); err == nil || !strings.Contains(err.Error(), "no enrolment token") {
		t.Fatalf("error = %v, want one saying there is no token", err)
	}
}

func TestServerWithAnotherFingerprintIsRefused(t *testing.T) {
	pki := newTestPKI(t)
	est := startESTServer(t, pki, map[string]string{"sensor-5": "tok"})
	a, err := New(Config{DeviceID: "sensor-5", Server: est.srv.URL, Token: "tok", DataDir: t.TempDir(),
		Trust: ServerTrust{Fingerprint: bytes.Repeat([]byte{0xab}, 32)}, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Enroll(context.Background()); err == nil || !strings.Contains(err.Error(), "not the pinned") {
		t.Fatalf("error = %v, want a fingerprint mismatch", err)
	}
}

func TestServerIsTrustedThroughAGivenCACertificate(t *testing.T) {
	pki := newTestPKI(t)
	est := startESTServer(t, pki, map[string]string{"sensor-6": "tok"})
	a, err := New(Config{DeviceID: "sensor-6", Server: est.srv.URL, Token: "tok", DataDir: t.TempDir(),
		Trust: ServerTrust{CAPEM: identity.EncodeCertsPEM(pki.chain[len(pki.chain)-1])}, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Enroll(context.Background()); err != nil {
		t.Fatalf("enrol: %v", err)
	}
}

func TestRenewalGetsANewCertificateThroughSimpleReenroll(t *testing.T) {
	pki := newTestPKI(t)
	est := startESTServer(t, pki, map[string]string{"sensor-7": "tok"})
	dir := t.TempDir()
	a := newTestAgent(t, est, "sensor-7", "tok", dir)
	ctx := context.Background()
	if err := a.Enroll(ctx); err != nil {
		t.Fatalf("enrol: %v", err)
	}
	old := a.Certificate()
	if err := a.renew(ctx); err != nil {
		t.Fatalf("renew: %v", err)
	}
	renewed := a.Certificate()
	if renewed.SerialNumber.Cmp(old.SerialNumber) == 0 {
		t.Fatal("renewal kept the old certificate")
	}
	if est.reenrolls != 1 || est.reenrolledFor != "sensor-7" {
		t.Errorf("server saw %d re-enrolments for %q; want 1 authenticated as sensor-7", est.reenrolls, est.reenrolledFor)
	}
	// The TLS client hook hands out the new certificate for the next
	// connection, and a restart finds it on disk.
	got, _ := a.connTLSConfig().GetClientCertificate(nil)
	if !got.Leaf.Equal(renewed) {
		t.Error("next TLS handshake would still present the old certificate")
	}
	stored, err := a.keys.Certificate()
	if err != nil || !stored.Leaf.Equal(renewed) {
		t.Errorf("stored certificate is not the renewed one (%v)", err)
	}
}

func TestRenewalAfterARestartStillTrustsAServerPinnedAtEnrolment(t *testing.T) {
	pki := newTestPKI(t)
	// The server's certificate is self-signed, not from the CA, so only
	// the pin stored at enrolment lets a restarted agent trust it.
	est := startESTServerWithCert(t, pki, map[string]string{"sensor-11": "tok"}, nil)
	fp := sha256.Sum256(est.srv.Certificate().Raw)
	dir := t.TempDir()
	a, err := New(Config{DeviceID: "sensor-11", Server: est.srv.URL, Token: "tok", DataDir: dir,
		Trust: ServerTrust{Fingerprint: fp[:]}, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := a.Enroll(ctx); err != nil {
		t.Fatalf("enrol: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, serverFPFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("stored fingerprint: %v %v", fi, err)
	}
	restarted, err := New(Config{DeviceID: "sensor-11", Server: est.srv.URL, DataDir: dir, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := restarted.Enroll(ctx); err != nil {
		t.Fatalf("load stored identity: %v", err)
	}
	if err := restarted.renew(ctx); err != nil {
		t.Fatalf("renew after restart: %v", err)
	}
	if est.reenrolls != 1 {
		t.Errorf("server saw %d re-enrolments, want 1", est.reenrolls)
	}
}

func TestRenewalIsDueAtTwoThirdsOfTheLifetime(t *testing.T) {
	pki := newTestPKI(t)
	est := startESTServer(t, pki, map[string]string{"sensor-8": "tok"})
	a := newTestAgent(t, est, "sensor-8", "tok", t.TempDir())
	if err := a.Enroll(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := a.Certificate()
	life := c.NotAfter.Sub(c.NotBefore)
	if got, want := renewAt(c), c.NotBefore.Add(life*2/3); !got.Equal(want) {
		t.Errorf("renew at %v, want %v", got, want)
	}
}

func TestRetryAfterIsReadAsSecondsOrADateWithinBounds(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		header string
		want   time.Duration
	}{
		{"5", 5 * time.Second},
		{"", time.Minute},
		{"soon", time.Minute},
		{"0", time.Second},
		{"999999", time.Hour},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.header, now); got != tt.want {
			t.Errorf("Retry-After %q: wait %v, want %v", tt.header, got, tt.want)
		}
	}
}

func TestJitteredBackoffGrowsWithinBounds(t *testing.T) {
	b := jitteredBackoff(100*time.Millisecond, time.Second)
	if b(0) != 0 {
		t.Errorf("first attempt waits %v, want 0", b(0))
	}
	seen := map[time.Duration]bool{}
	for attempt := 1; attempt < 40; attempt++ {
		ceil := min(time.Second, 100*time.Millisecond<<min(attempt-1, 20))
		for range 20 {
			d := b(attempt)
			if d < 100*time.Millisecond || d > ceil {
				t.Fatalf("attempt %d waits %v, outside [100ms, %v]", attempt, d, ceil)
			}
			seen[d] = true
		}
	}
	if len(seen) < 10 {
		t.Errorf("only %d distinct delays; not jittered", len(seen))
	}
}

func TestCertsOnlyParserRejectsGarbage(t *testing.T) {
	for _, in := range []string{"", "not base64!", "aGVsbG8=", "MIIB"} {
		if _, err := ParseCertsOnly([]byte(in)); err == nil {
			t.Errorf("ParseCertsOnly(%q) succeeded", in)
		}
	}
}

func FuzzParseCertsOnly(f *testing.F) {
	f.Add([]byte("MIIB"))
	f.Fuzz(func(t *testing.T, in []byte) {
		certs, err := ParseCertsOnly(in)
		if err == nil && len(certs) == 0 {
			t.Fatal("no error and no certificate")
		}
	})
}
