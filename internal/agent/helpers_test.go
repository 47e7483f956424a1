package agent

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"

	"github.com/fleetward/fleetward/internal/broker"
	"github.com/fleetward/fleetward/internal/identity"
	"github.com/fleetward/fleetward/internal/ledger"
	"github.com/fleetward/fleetward/internal/secrets"
	"github.com/fleetward/fleetward/internal/store/storetest"
)

// testPKI is a real fleetward CA (over SQLite) with a server certificate
// for 127.0.0.1, used by both the test EST server and the test broker.
type testPKI struct {
	ca       *identity.CA
	chain    []*x509.Certificate // intermediate(s), root last
	roots    *x509.CertPool
	server   tls.Certificate
	serverFP []byte // SHA-256 of the server leaf
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testLog sends logs to t.Log, so they show only for failing tests.
func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	ctx := context.Background()
	db := storetest.SQLite(t).DB
	master := make([]byte, secrets.KeySize)
	rand.Read(master)
	kr, err := secrets.New(master)
	if err != nil {
		t.Fatalf("keyring: %v", err)
	}
	l, err := ledger.Open(ctx, db, ledger.Options{Sealer: kr, Log: quietLog()})
	if err != nil {
		t.Fatalf("ledger: %v", err)
	}
	ca := identity.NewCA(db, kr, l, identity.Options{Log: quietLog()})
	if err := ca.Init(ctx, identity.InitOptions{}); err != nil {
		t.Fatalf("init CA: %v", err)
	}
	chain, err := ca.Chain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := ca.Roots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srv, err := ca.IssueServer(ctx, []string{"127.0.0.1", "localhost"}, key.Public())
	if err != nil {
		t.Fatalf("issue server certificate: %v", err)
	}
	fp := sha256.Sum256(srv.Raw)
	p := &testPKI{ca: ca, chain: chain, roots: roots, serverFP: fp[:]}
	p.server = tls.Certificate{Certificate: [][]byte{srv.Raw, chain[0].Raw}, PrivateKey: key, Leaf: srv}
	return p
}

// clientCert issues a device certificate for id, as a TLS client
// certificate with its intermediate.
func (p *testPKI) clientCert(t *testing.T, id string) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := DeviceCSR(id, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, _ := x509.ParseCertificateRequest(der)
	cert, err := p.ca.IssueDevice(context.Background(), id, "backend", csr)
	if err != nil {
		t.Fatalf("issue %s: %v", id, err)
	}
	tc, err := tlsCertificate(cert, key, p.chain)
	if err != nil {
		t.Fatal(err)
	}
	return *tc
}

// estServer is a small RFC 7030 server over the test CA: /cacerts,
// /simpleenroll with one-time tokens as HTTP Basic passwords (and a number
// of 202 answers first, if pending is set), and /simplereenroll with TLS
// client authentication.
type estServer struct {
	pki *testPKI
	srv *httptest.Server

	mu            sync.Mutex
	tokens        map[string]string // device id → token, removed when used
	pending       int
	chainFirst    bool // answer enrolments with the CA chain ahead of the certificate
	enrolls       int
	reenrolls     int
	reenrolledFor string
}

func startESTServer(t *testing.T, pki *testPKI, tokens map[string]string) *estServer {
	t.Helper()
	return startESTServerWithCert(t, pki, tokens, &pki.server)
}

// startESTServerWithCert starts the EST server with its own TLS
// certificate; nil means httptest's self-signed one, not from the CA.
func startESTServerWithCert(t *testing.T, pki *testPKI, tokens map[string]string, cert *tls.Certificate) *estServer {
	t.Helper()
	e := &estServer{pki: pki, tokens: tokens}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/est/cacerts", e.cacerts)
	mux.HandleFunc("POST /.well-known/est/simpleenroll", e.simpleEnroll)
	mux.HandleFunc("POST /.well-known/est/simplereenroll", e.simpleReenroll)
	e.srv = httptest.NewUnstartedServer(mux)
	e.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	e.srv.TLS = &tls.Config{
		ClientAuth: tls.VerifyClientCertIfGiven,
		ClientCAs:  pki.roots,
	}
	if cert != nil {
		e.srv.TLS.Certificates = []tls.Certificate{*cert}
	}
	e.srv.StartTLS()
	t.Cleanup(e.srv.Close)
	return e
}

func writeCertsOnly(w http.ResponseWriter, certs ...*x509.Certificate) {
	var der []byte
	for _, c := range certs {
		der = append(der, c.Raw...)
	}
	p7, err := pkcs7.DegenerateCertificate(der)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/pkcs7-mime; smime-type=certs-only")
	w.Header().Set("Content-Transfer-Encoding", "base64")
	// Line breaks every 64 characters, as many EST servers send them.
	b64 := base64.StdEncoding.EncodeToString(p7)
	for len(b64) > 64 {
		io.WriteString(w, b64[:64]+"\r\n")
		b64 = b64[64:]
	}
	io.WriteString(w, b64+"\r\n")
}

func (e *estServer) cacerts(w http.ResponseWriter, r *http.Request) {
	writeCertsOnly(w, e.pki.chain...)
}

func readCSR(r *http.Request) (*x509.CertificateRequest, error) {
	if ct := r.Header.Get("Content-Type"); ct != "application/pkcs10" {
		return nil, fmt.Errorf("content type %q, want application/pkcs10", ct)
	}
	body, _ := io.ReadAll(r.Body)
	der, err := base64.StdEncoding.DecodeString(string(bytes.Join(bytes.Fields(body), nil)))
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificateRequest(der)
}

func (e *estServer) simpleEnroll(w http.ResponseWriter, r *http.Request) {
	id, token, ok := r.BasicAuth()
	e.mu.Lock()
	if e.pending > 0 {
		e.pending--
		e.mu.Unlock()
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusAccepted)
		return
	}
	want, known := e.tokens[id]
	if !ok || !known || token != want {
		e.mu.Unlock()
		http.Error(w, "bad enrolment credentials", http.StatusUnauthorized)
		return
	}
	delete(e.tokens, id)
	e.enrolls++
	e.mu.Unlock()
	e.issue(w, r, id)
}

func (e *estServer) simpleReenroll(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		http.Error(w, "a client certificate is required", http.StatusUnauthorized)
		return
	}
	id, err := identity.DeviceIDFromCertificate(r.TLS.PeerCertificates[0])
	if err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	e.mu.Lock()
	e.reenrolls++
	e.reenrolledFor = id
	e.mu.Unlock()
	e.issue(w, r, id)
}

func (e *estServer) issue(w http.ResponseWriter, r *http.Request, id string) {
	csr, err := readCSR(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	cert, err := e.pki.ca.IssueDevice(r.Context(), id, "sensor", csr)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	e.mu.Lock()
	chainFirst := e.chainFirst
	e.mu.Unlock()
	if chainFirst {
		writeCertsOnly(w, append(append([]*x509.Certificate{}, e.pki.chain...), cert)...)
		return
	}
	writeCertsOnly(w, cert)
}

// testAuthority is the broker's Authority over the test CA: the device id
// from the certificate, class "backend" for ids starting so and "sensor"
// otherwise, and a switch to refuse a device.
type testAuthority struct {
	mu     sync.Mutex
	refuse map[string]bool
}

func (a *testAuthority) VerifyClient(chains [][]*x509.Certificate) (string, string, error) {
	id, err := identity.DeviceIDFromCertificate(chains[0][0])
	if err != nil {
		return "", "", err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.refuse[id] {
		return "", "", errors.New("refused by the test")
	}
	if strings.HasPrefix(id, "backend") {
		return id, "backend", nil
	}
	return id, "sensor", nil
}

func (a *testAuthority) Revoked(*big.Int) bool { return false }

func (a *testAuthority) setRefused(id string, refused bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.refuse == nil {
		a.refuse = map[string]bool{}
	}
	a.refuse[id] = refused
}

// startBroker starts a real fleetward broker on addr ("127.0.0.1:0" for
// any port) with the test PKI.
func startBroker(t *testing.T, pki *testPKI, auth broker.Authority, addr string) *broker.Broker {
	t.Helper()
	b, err := broker.New(broker.Config{
		Addr:                     addr,
		TLS:                      &tls.Config{Certificates: []tls.Certificate{pki.server}},
		ClientCAs:                pki.roots,
		ConnectAttemptsPerMinute: -1,
		Policies: map[string]broker.Policy{
			"backend": {Subscribe: []string{"devices/+/telemetry", "devices/+/inventory", "devices/+/signals", "devices/+/scores", "devices/+/sensor"}},
		},
		Log: quietLog(),
	}, auth, nil)
	if err != nil {
		t.Fatalf("new broker: %v", err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatalf("start broker on %s: %v", addr, err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// eventually polls cond every 20 ms until it holds or d passes.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

// runAgent runs a until the test ends, and fails the test if it returns an
// error or does not stop within 10 s of being told to.
func runAgent(t *testing.T, a *Agent) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("agent did not stop within 10 s of its context ending")
		}
	})
}
