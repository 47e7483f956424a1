package identity

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"net/url"
	"testing"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/ledger"
	"github.com/fleetward/fleetward/internal/secrets"
	"github.com/fleetward/fleetward/internal/store"
)

// testCA is a CA over a real database, keyring and ledger.
type testCA struct {
	*CA
	db     *store.DB
	ledger *ledger.Ledger
}

func newTestCA(t testing.TB, db *store.DB, opts Options) testCA {
	t.Helper()
	master := make([]byte, secrets.KeySize)
	rand.Read(master)
	kr, err := secrets.New(master)
	if err != nil {
		t.Fatalf("keyring: %v", err)
	}
	l, err := ledger.Open(context.Background(), db, ledger.Options{Sealer: kr, Log: quietLog()})
	if err != nil {
		t.Fatalf("open ledger: %v", err)
	}
	if opts.Log == nil {
		opts.Log = quietLog()
	}
	return testCA{CA: NewCA(db, kr, l, opts), db: db, ledger: l}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// initCA makes and initializes a CA with default options.
func initCA(t testing.TB, db *store.DB) testCA {
	t.Helper()
	ca := newTestCA(t, db, Options{})
	if err := ca.Init(context.Background(), InitOptions{}); err != nil {
		t.Fatalf("init CA: %v", err)
	}
	return ca
}

// deviceCSR returns a key and a well-formed CSR for id.
func deviceCSR(t testing.TB, id string) (crypto.Signer, *x509.CertificateRequest) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key, makeCSR(t, key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: id}, URIs: []*url.URL{mustURL(DeviceURI(id))}})
}

func makeCSR(t testing.TB, key crypto.Signer, tmpl *x509.CertificateRequest) *x509.CertificateRequest {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatalf("create CSR: %v", err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatalf("parse CSR: %v", err)
	}
	return csr
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// issueDevice issues a certificate for id or fails the test.
func issueDevice(t testing.TB, ca testCA, id, class string) *x509.Certificate {
	t.Helper()
	_, csr := deviceCSR(t, id)
	cert, err := ca.IssueDevice(context.Background(), id, class, csr)
	if err != nil {
		t.Fatalf("issue device %s: %v", id, err)
	}
	return cert
}

// verifyClient verifies a device certificate against the CA's chain.
func verifyClient(t testing.TB, ca testCA, cert *x509.Certificate) error {
	t.Helper()
	chain, err := ca.Chain(context.Background())
	if err != nil {
		t.Fatalf("chain: %v", err)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, c := range chain {
		if c.IsCA && c.CheckSignatureFrom(c) == nil {
			roots.AddCert(c)
		} else {
			inter.AddCert(c)
		}
	}
	_, err = cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return err
}

// wantField fails unless err is Invalid about field.
func wantField(t testing.TB, err error, field string) {
	t.Helper()
	e := apperr.As(err)
	if e == nil || e.Code != apperr.Invalid || e.Field != field {
		t.Fatalf("error = %v, want invalid %s", err, field)
	}
}
