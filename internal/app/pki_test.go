package app_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/app"
	"github.com/fleetward/fleetward/internal/identity"
)

// TestServeCreatesTheCAAndPublishesCRLAndOCSP starts a real server: it
// creates the certificate authority on first start, and anyone can fetch
// the CRL and ask the OCSP responder about a device certificate, before
// and after its revocation.
func TestServeCreatesTheCAAndPublishesCRLAndOCSP(t *testing.T) {
	dir := t.TempDir()
	ctx := actor.With(context.Background(), actor.Actor{Name: "test"})
	s, err := app.Start(ctx, app.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	chain, err := s.CA.Chain(ctx)
	if err != nil {
		t.Fatalf("the server did not create its CA: %v", err)
	}
	issuer := chain[0]

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "cam-7"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, _ := x509.ParseCertificateRequest(der)
	cert, err := s.CA.IssueDevice(ctx, "cam-7", "camera", csr)
	if err != nil {
		t.Fatal(err)
	}

	pem, _ := os.ReadFile(filepath.Join(dir, "tls", "ca.crt"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	ocspStatus := func() int {
		t.Helper()
		req, err := ocsp.CreateRequest(cert, issuer, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Post(s.URL+"/pki/ocsp", "application/ocsp-request", bytes.NewReader(req))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		r, err := ocsp.ParseResponseForCert(body, cert, issuer)
		if err != nil {
			t.Fatalf("OCSP answer: %v", err)
		}
		return r.Status
	}
	crlHas := func(serial string) bool {
		t.Helper()
		resp, err := client.Get(s.URL + "/pki/crl")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		crl, err := x509.ParseRevocationList(body)
		if err != nil {
			t.Fatalf("CRL: %v", err)
		}
		if err := crl.CheckSignatureFrom(issuer); err != nil {
			t.Fatalf("CRL signature: %v", err)
		}
		if !crl.NextUpdate.After(time.Now()) {
			t.Fatalf("CRL nextUpdate %s is not in the future", crl.NextUpdate)
		}
		for _, e := range crl.RevokedCertificateEntries {
			if identity.SerialString(e.SerialNumber) == serial {
				return true
			}
		}
		return false
	}

	serial := identity.SerialString(cert.SerialNumber)
	if got := ocspStatus(); got != ocsp.Good {
		t.Fatalf("OCSP status before revocation = %d, want good", got)
	}
	if crlHas(serial) {
		t.Fatal("the CRL lists the certificate before revocation")
	}
	if err := s.CA.Revoke(ctx, serial, identity.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	if got := ocspStatus(); got != ocsp.Revoked {
		t.Fatalf("OCSP status after revocation = %d, want revoked", got)
	}
	if !crlHas(serial) {
		t.Fatal("the CRL does not list the revoked certificate")
	}
}
