package identity

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/store/storetest"
)

// clock is a settable time source for a CA.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// devices is an inventory stand-in: the real one lives in another package
// (app wires it, and its tests use it); here the EST server needs only a
// device's class and whether it is barred.
type devices map[string]EnrollingDevice

func (d devices) EnrollingDevice(_ context.Context, id string) (EnrollingDevice, error) {
	dev, ok := d[id]
	if !ok {
		return EnrollingDevice{}, apperr.NotFoundf("device %s does not exist", id)
	}
	return dev, nil
}

// estEnv is a CA behind a real EST server on 127.0.0.1 with TLS that
// requests, but does not require, client certificates.
type estEnv struct {
	t     *testing.T
	ca    testCA
	clock *clock
	srv   *httptest.Server
	roots *x509.CertPool
	chain []*x509.Certificate
}

func startEST(t *testing.T, devs DeviceDirectory, opts ESTOptions) *estEnv {
	t.Helper()
	ctx := context.Background()
	clk := &clock{t: time.Now()}
	ca := newTestCA(t, storetest.SQLite(t).DB, Options{Now: clk.now})
	if err := ca.Init(ctx, InitOptions{}); err != nil {
		t.Fatalf("init CA: %v", err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvCert, err := ca.IssueServer(ctx, []string{"127.0.0.1"}, key.Public())
	if err != nil {
		t.Fatalf("issue server certificate: %v", err)
	}
	chain, _ := ca.Chain(ctx)
	opts.Devices = devs
	if opts.RatePerMinute == 0 {
		opts.RatePerMinute, opts.RateBurst = 6000, 1000
	}
	srv := httptest.NewUnstartedServer(NewEST(ca.CA, opts).Handler())
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{srvCert.Raw, chain[0].Raw}, PrivateKey: key}},
		ClientAuth:   tls.RequestClientCert, // as fleetward's HTTPS listener
		MinVersion:   tls.VersionTLS12,
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(chain[len(chain)-1])
	return &estEnv{t: t, ca: ca, clock: clk, srv: srv, roots: roots, chain: chain}
}

// client returns an HTTPS client trusting the CA, presenting certs (with
// key) as its client certificate when given.
func (e *estEnv) client(key crypto.Signer, certs ...*x509.Certificate) *http.Client {
	cfg := &tls.Config{RootCAs: e.roots}
	if key != nil {
		c := tls.Certificate{PrivateKey: key}
		for _, x := range certs {
			c.Certificate = append(c.Certificate, x.Raw)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

// estReply is an EST answer.
type estReply struct {
	status int
	header http.Header
	body   []byte
}

// post sends body to an EST path, with Basic credentials when user is set.
func (e *estEnv) post(c *http.Client, path string, body []byte, user, pass string) estReply {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.srv.URL+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/pkcs10")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	if c == nil {
		c = e.client(nil)
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return estReply{resp.StatusCode, resp.Header, b}
}

// certs decodes a successful EST answer's PKCS#7 certs-only body.
func (r estReply) certs(t *testing.T) []*x509.Certificate {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", r.status, r.body)
	}
	if enc := r.header.Get("Content-Transfer-Encoding"); enc != "base64" {
		t.Fatalf("Content-Transfer-Encoding = %q, want base64", enc)
	}
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(r.body)), ""))
	if err != nil {
		t.Fatalf("body is not base64: %v", err)
	}
	p7, err := pkcs7.Parse(der)
	if err != nil {
		t.Fatalf("body is not PKCS#7: %v", err)
	}
	return p7.Certificates
}

// csrBody is a base64 DER CSR for id with key, as an EST client sends it.
func csrBody(t *testing.T, key crypto.Signer, cn string) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return base64Lines(der)
}

func newKey(t *testing.T) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// token makes an enrolment token or fails the test.
func (e *estEnv) token(id, class string, ttl time.Duration) string {
	e.t.Helper()
	tok, err := e.ca.CreateEnrollmentToken(context.Background(), id, class, ttl)
	if err != nil {
		e.t.Fatalf("create enrolment token for %s: %v", id, err)
	}
	return tok.Token
}

// refusals counts the recorded enrolment refusals with a reason.
func (e *estEnv) refusals(reason string) int {
	e.t.Helper()
	entries, err := e.ca.ledger.EntriesByType(context.Background(), EventEnrollmentRefused, 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, en := range entries {
		if strings.Contains(string(en.Data), `"reason":"`+reason+`"`) {
			n++
		}
	}
	return n
}

func TestTokenEnrolmentIssuesACertificateOnceThatVerifiesToTheRoot(t *testing.T) {
	e := startEST(t, devices{"cam-1": {Class: "camera"}}, ESTOptions{})
	key := newKey(t)
	tok := e.token("cam-1", "camera", 0)

	got := e.post(nil, ESTSimpleEnroll, csrBody(t, key, "cam-1"), "cam-1", tok).certs(t)
	if len(got) != 1 {
		t.Fatalf("%d certificates in the answer, want the issued one", len(got))
	}
	cert := got[0]
	if id, err := DeviceIDFromCertificate(cert); err != nil || id != "cam-1" {
		t.Fatalf("issued certificate names %q, %v", id, err)
	}
	if !samePublicKey(cert.PublicKey, key.Public()) {
		t.Fatal("issued certificate is not for the CSR's key")
	}
	if err := verifyClient(t, e.ca, cert); err != nil {
		t.Fatalf("issued certificate does not verify: %v", err)
	}
	st, _ := e.ca.Status(context.Background(), SerialString(cert.SerialNumber))
	if st.Class != "camera" {
		t.Errorf("class = %q, want the token's camera", st.Class)
	}
	entries, _ := e.ca.ledger.EntriesByType(context.Background(), EventEnrollmentTokenUsed, 10)
	if len(entries) != 1 || entries[0].Subject != "cam-1" {
		t.Errorf("token use recorded %d times, want once for cam-1", len(entries))
	}

	again := e.post(nil, ESTSimpleEnroll, csrBody(t, key, "cam-1"), "cam-1", tok)
	if again.status != http.StatusUnauthorized || e.refusals(refusedTokenReplayed) != 1 {
		t.Fatalf("replayed token: %d %s, %d refusals recorded", again.status, again.body, e.refusals(refusedTokenReplayed))
	}
}

func TestEnrolmentRefusalsGetTheRightStatusAndAreRecorded(t *testing.T) {
	e := startEST(t, devices{"cam-1": {Class: "camera"}, "cam-2": {Class: "camera"}, "cam-q": {Class: "camera", Barred: "the device is quarantined"}}, ESTOptions{})
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	expired := e.token("cam-1", "camera", time.Minute)
	e.clock.advance(2 * time.Minute)

	cases := []struct {
		name       string
		user, pass func() string
		body       func() []byte
		wantStatus int
		wantText   string
		wantReason string
	}{
		{"an expired token is refused", lit("cam-1"), lit(expired), good("cam-1"), 401, "expired", refusedTokenExpired},
		{"a token for another device is refused", lit("cam-2"), e.tokenFn("cam-1"), good("cam-2"), 401, "not made for this device", refusedTokenWrongDevice},
		{"an unknown token is refused", lit("cam-1"), lit("fwe_NOTATOKEN"), good("cam-1"), 401, "not known", refusedTokenUnknown},
		{"a CSR for another device id is refused", lit("cam-1"), e.tokenFn("cam-1"), good("cam-2"), 400, "csr.subject.common_name", "csr_rejected"},
		{"malformed base64 is refused", lit("cam-1"), e.tokenFn("cam-1"), func() []byte { return []byte("MIIB!!not*base64") }, 400, "not base64", "invalid"},
		{"base64 of something else is refused", lit("cam-1"), e.tokenFn("cam-1"), func() []byte { return []byte(base64.StdEncoding.EncodeToString([]byte("hello"))) }, 400, "PKCS#10", "invalid"},
		{"an empty body is refused", lit("cam-1"), e.tokenFn("cam-1"), func() []byte { return nil }, 400, "empty", "invalid"},
		{"an oversize body is refused", lit("cam-1"), e.tokenFn("cam-1"), func() []byte { return bytes.Repeat([]byte("QUFB"), 20<<10) }, 413, "larger than", "too_large"},
		{"an RSA-1024 key is refused", lit("cam-1"), e.tokenFn("cam-1"), func() []byte { return csrBody(t, rsaKey, "cam-1") }, 400, "2048", "csr_rejected"},
		{"a quarantined device is refused", lit("cam-q"), e.tokenFn("cam-q"), good("cam-q"), 403, "quarantined", "device_barred"},
		{"a username that is no device id is refused", lit("not a device"), lit("x"), good("cam-1"), 401, "username", "token_bad_username"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.refusals(tc.wantReason)
			body := tc.body
			if body == nil {
				body = good("cam-1")
			}
			r := e.post(nil, ESTSimpleEnroll, body(), tc.user(), tc.pass())
			if r.status != tc.wantStatus || !strings.Contains(string(r.body), tc.wantText) {
				t.Fatalf("got %d %q, want %d mentioning %q", r.status, r.body, tc.wantStatus, tc.wantText)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type %q, want text/plain", ct)
			}
			if got := e.refusals(tc.wantReason); got != before+1 {
				t.Errorf("%d refusals with reason %s recorded, want %d", got, tc.wantReason, before+1)
			}
		})
	}
	// A refused CSR does not spend the token.
	tok := e.token("cam-1", "camera", 0)
	if r := e.post(nil, ESTSimpleEnroll, csrBody(t, newKey(t), "cam-2"), "cam-1", tok); r.status != 400 {
		t.Fatalf("CSR for another device: %d", r.status)
	}
	e.post(nil, ESTSimpleEnroll, csrBody(t, newKey(t), "cam-1"), "cam-1", tok).certs(t)
}

func lit(s string) func() string { return func() string { return s } }

func (e *estEnv) tokenFn(id string) func() string {
	return func() string { return e.token(id, "camera", 0) }
}

func good(cn string) func() []byte {
	return func() []byte {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
		return base64Lines(der)
	}
}

func TestEnrolmentAcceptsPEMAndUnwrappedUnpaddedBase64(t *testing.T) {
	e := startEST(t, nil, ESTOptions{})
	key := newKey(t)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "cam-1"}}, key)
	for name, body := range map[string][]byte{
		"PEM":                     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
		"base64 without breaks":   []byte(base64.RawStdEncoding.EncodeToString(der)),
		"base64 with CRLF breaks": bytes.ReplaceAll(base64Lines(der), []byte("\n"), []byte("\r\n")),
	} {
		t.Run(name, func(t *testing.T) {
			e.post(nil, ESTSimpleEnroll, body, "cam-1", e.token("cam-1", "", 0)).certs(t)
		})
	}
}

func TestReenrolmentOverMutualTLSWorksUntilTheCertificateIsRevoked(t *testing.T) {
	e := startEST(t, devices{"cam-1": {Class: "camera"}}, ESTOptions{})
	ctx := context.Background()
	key := newKey(t)
	current := e.post(nil, ESTSimpleEnroll, csrBody(t, key, "cam-1"), "cam-1", e.token("cam-1", "camera", 0)).certs(t)[0]
	mtls := e.client(key, current)

	newKeyPair := newKey(t)
	renewed := e.post(mtls, ESTSimpleReenroll, csrBody(t, newKeyPair, "cam-1"), "", "").certs(t)[0]
	if id, _ := DeviceIDFromCertificate(renewed); id != "cam-1" || !samePublicKey(renewed.PublicKey, newKeyPair.Public()) {
		t.Fatalf("renewed certificate names %q or has the wrong key", id)
	}
	if st, _ := e.ca.Status(ctx, SerialString(renewed.SerialNumber)); st.Class != "camera" {
		t.Errorf("renewed class = %q, want camera from the current certificate", st.Class)
	}

	otherCA := startEST(t, nil, ESTOptions{})
	foreignKey := newKey(t)
	foreign := otherCA.post(nil, ESTSimpleEnroll, csrBody(t, foreignKey, "cam-1"), "cam-1", otherCA.token("cam-1", "", 0)).certs(t)[0]

	cases := []struct {
		name       string
		client     *http.Client
		cn         string
		wantStatus int
		wantText   string
	}{
		{"a CSR for another device is refused", mtls, "cam-2", 400, "csr.subject.common_name"},
		{"no client certificate is refused", nil, "cam-1", 401, "TLS client certificate"},
		{"a certificate from another CA is refused", e.client(foreignKey, foreign), "cam-1", 401, "does not verify"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.post(tc.client, ESTSimpleReenroll, csrBody(t, newKey(t), tc.cn), "", "")
			if r.status != tc.wantStatus || !strings.Contains(string(r.body), tc.wantText) {
				t.Fatalf("got %d %q, want %d mentioning %q", r.status, r.body, tc.wantStatus, tc.wantText)
			}
		})
	}

	if err := e.ca.Revoke(ctx, SerialString(current.SerialNumber), ReasonSuperseded); err != nil {
		t.Fatal(err)
	}
	r := e.post(e.client(key, current), ESTSimpleReenroll, csrBody(t, newKey(t), "cam-1"), "", "")
	if r.status != http.StatusUnauthorized || !strings.Contains(string(r.body), "revoked") {
		t.Fatalf("reenrolment with a revoked certificate: %d %s", r.status, r.body)
	}
	if e.refusals("client_certificate_refused") < 2 {
		t.Error("refused reenrolments were not recorded")
	}
	// An expired certificate is refused too.
	e.clock.advance(31 * 24 * time.Hour)
	r = e.post(e.client(newKeyPair, renewed), ESTSimpleReenroll, csrBody(t, newKey(t), "cam-1"), "", "")
	if r.status != http.StatusUnauthorized || !strings.Contains(string(r.body), "expired") {
		t.Fatalf("reenrolment with an expired certificate: %d %s", r.status, r.body)
	}
}

// vendor is a manufacturer's CA that issues IDevIDs (IEEE 802.1AR).
type vendor struct {
	t    *testing.T
	pem  []byte
	cert *x509.Certificate
	key  crypto.Signer
}

func newVendor(t *testing.T) *vendor {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Acme IDevID CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(10 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &vendor{t: t, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), cert: cert, key: key}
}

// idevid issues an IDevID naming serial in its subject serialNumber, with
// the customary 99991231235959Z expiry.
func (v *vendor) idevid(serial string) (*x509.Certificate, crypto.Signer) {
	v.t.Helper()
	key := newKey(v.t)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "Acme Cam 3000", SerialNumber: serial},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, leaf, v.cert, key.Public(), v.key)
	if err != nil {
		v.t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, key
}

func TestIDevIDFromARegisteredVendorEnrolsTheDeviceItNames(t *testing.T) {
	e := startEST(t, devices{"acme-42": {Class: "camera"}}, ESTOptions{})
	ctx := context.Background()
	acme := newVendor(t)
	idevid, idevidKey := acme.idevid("acme-42")

	// Before the vendor is registered, the IDevID is no credential.
	r := e.post(e.client(idevidKey, idevid), ESTSimpleEnroll, csrBody(t, newKey(t), "acme-42"), "", "")
	if r.status != http.StatusAccepted {
		t.Fatalf("IDevID of an unregistered vendor: %d %s, want 202 (approval queue)", r.status, r.body)
	}

	if _, err := e.ca.RegisterVendorCA(ctx, "acme", acme.pem); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ca.RegisterVendorCA(ctx, "acme again", acme.pem); !apperr.Is(err, apperr.Conflict) {
		t.Errorf("registering the same CA twice: %v, want conflict", err)
	}
	key := newKey(t)
	cert := e.post(e.client(idevidKey, idevid), ESTSimpleEnroll, csrBody(t, key, "acme-42"), "", "").certs(t)[0]
	if id, _ := DeviceIDFromCertificate(cert); id != "acme-42" {
		t.Fatalf("issued certificate names %q", id)
	}
	if st, _ := e.ca.Status(ctx, SerialString(cert.SerialNumber)); st.Class != "camera" {
		t.Errorf("class = %q, want camera from the inventory", st.Class)
	}

	r = e.post(e.client(idevidKey, idevid), ESTSimpleEnroll, csrBody(t, newKey(t), "acme-7"), "", "")
	if r.status != http.StatusBadRequest || e.refusals("csr_rejected") != 1 {
		t.Errorf("IDevID for acme-42 asking for acme-7: %d %s, want 400 and a recorded refusal", r.status, r.body)
	}

	// The vendor's IDevID of a device the inventory does not know waits
	// for approval, and says where it came from.
	stranger, strangerKey := acme.idevid("acme-99")
	r = e.post(e.client(strangerKey, stranger), ESTSimpleEnroll, csrBody(t, newKey(t), "acme-99"), "", "")
	if r.status != http.StatusAccepted {
		t.Fatalf("IDevID of an unknown device: %d %s, want 202", r.status, r.body)
	}
	pending, _ := e.ca.Enrollments(ctx, EnrollmentPending)
	found := false
	for _, p := range pending {
		found = found || (p.DeviceID == "acme-99" && p.Credential == "idevid:acme")
	}
	if !found {
		t.Errorf("no pending request for acme-99 with credential idevid:acme in %+v", pending)
	}
}

func TestApprovalQueueHoldsEnrolmentUntilAnOperatorAccepts(t *testing.T) {
	e := startEST(t, devices{"cam-1": {Class: "camera"}}, ESTOptions{RetryAfter: 90 * time.Second})
	ctx := context.Background()
	key := newKey(t)
	body := csrBody(t, key, "cam-1")

	for i := 0; i < 2; i++ {
		r := e.post(nil, ESTSimpleEnroll, body, "", "")
		if r.status != http.StatusAccepted || r.header.Get("Retry-After") != "90" {
			t.Fatalf("request %d without credential: %d Retry-After %q, want 202 and 90", i, r.status, r.header.Get("Retry-After"))
		}
	}
	pending, err := e.ca.Enrollments(ctx, EnrollmentPending)
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending requests: %v, %v; want one for the repeated request", pending, err)
	}
	req := pending[0]
	if req.DeviceID != "cam-1" || req.Class != "camera" || req.Credential != "none" || req.Remote != "127.0.0.1" {
		t.Errorf("request = %+v", req)
	}
	if _, err := e.ca.AcceptEnrollment(ctx, req.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ca.AcceptEnrollment(ctx, req.ID); !apperr.Is(err, apperr.Conflict) {
		t.Errorf("accepting twice: %v, want conflict", err)
	}
	// Another key for the same device is a new request, not the accepted one.
	if r := e.post(nil, ESTSimpleEnroll, csrBody(t, newKey(t), "cam-1"), "", ""); r.status != http.StatusAccepted {
		t.Fatalf("another key after accept: %d, want 202", r.status)
	}
	cert := e.post(nil, ESTSimpleEnroll, body, "", "").certs(t)[0]
	if !samePublicKey(cert.PublicKey, key.Public()) {
		t.Fatal("certificate is not for the accepted key")
	}
	issued, _ := e.ca.Enrollments(ctx, EnrollmentIssued)
	if len(issued) != 1 || issued[0].Serial != SerialString(cert.SerialNumber) {
		t.Fatalf("issued requests = %+v", issued)
	}
	// The acceptance is used up: the same request again waits anew.
	if r := e.post(nil, ESTSimpleEnroll, body, "", ""); r.status != http.StatusAccepted {
		t.Fatalf("repeat after issuance: %d, want 202", r.status)
	}

	// A rejected request is refused from then on.
	other := csrBody(t, newKey(t), "cam-9")
	e.post(nil, ESTSimpleEnroll, other, "", "")
	pending, _ = e.ca.Enrollments(ctx, EnrollmentPending)
	for _, p := range pending {
		if p.DeviceID == "cam-9" {
			if _, err := e.ca.RejectEnrollment(ctx, p.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if r := e.post(nil, ESTSimpleEnroll, other, "", ""); r.status != http.StatusForbidden || e.refusals("request_rejected") != 1 {
		t.Fatalf("rejected request: %d %s", r.status, r.body)
	}
	if _, err := e.ca.AcceptEnrollment(ctx, "enr-nope"); !apperr.Is(err, apperr.NotFound) {
		t.Errorf("accepting an unknown request: %v, want not found", err)
	}
	if _, err := e.ca.Enrollments(ctx, "maybe"); !apperr.Is(err, apperr.Invalid) {
		t.Errorf("listing an unknown status: %v, want invalid", err)
	}
}

func TestTooManyRequestsFromOneAddressGet429WithRetryAfter(t *testing.T) {
	e := startEST(t, nil, ESTOptions{RatePerMinute: 1, RateBurst: 2})
	c := e.client(nil)
	get := func() *http.Response {
		resp, err := c.Get(e.srv.URL + ESTCACerts)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for i := 0; i < 2; i++ {
		if resp := get(); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d within the burst: %d", i, resp.StatusCode)
		}
	}
	if r := e.post(nil, ESTSimpleEnroll, good("cam-1")(), "", ""); r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("request over the burst: %d Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	e.clock.advance(time.Minute)
	if resp := get(); resp.StatusCode != http.StatusOK {
		t.Fatalf("after a minute: %d", resp.StatusCode)
	}
}

func TestCACertsAndCSRAttrsDescribeTheCA(t *testing.T) {
	e := startEST(t, nil, ESTOptions{})
	c := e.client(nil)
	resp, err := c.Get(e.srv.URL + ESTCACerts)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/pkcs7-mime" {
		t.Errorf("Content-Type = %q", ct)
	}
	got := estReply{resp.StatusCode, resp.Header, body}.certs(t)
	if len(got) != len(e.chain) {
		t.Fatalf("%d certificates, want the chain's %d", len(got), len(e.chain))
	}
	for i := range got {
		if !got[i].Equal(e.chain[i]) {
			t.Errorf("certificate %d is %s, want %s", i, got[i].Subject, e.chain[i].Subject)
		}
	}

	resp, err = c.Get(e.srv.URL + ESTCSRAttrs)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(body)), ""))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("csrattrs: %d, %v", resp.StatusCode, err)
	}
	var items []asn1.RawValue
	if rest, err := asn1.Unmarshal(der, &items); err != nil || len(rest) > 0 || len(items) != 2 {
		t.Fatalf("csrattrs is not a SEQUENCE of two: %v", err)
	}
	var attr struct {
		Type   asn1.ObjectIdentifier
		Values []asn1.ObjectIdentifier `asn1:"set"`
	}
	var sig asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(items[0].FullBytes, &attr); err != nil || !attr.Type.Equal(oidECPublicKey) || !attr.Values[0].Equal(oidPrime256v1) {
		t.Errorf("first attribute = %v %v, want ecPublicKey {prime256v1}", attr, err)
	}
	if _, err := asn1.Unmarshal(items[1].FullBytes, &sig); err != nil || !sig.Equal(oidECDSAWithSHA2) {
		t.Errorf("second item = %v %v, want ecdsa-with-SHA256", sig, err)
	}
}

// TestEnrolmentStateWorksOnEveryEngine runs tokens, vendor CAs and the
// approval queue on SQLite and PostgreSQL, so migration 00006 and the
// queries hold on both.
func TestEnrolmentStateWorksOnEveryEngine(t *testing.T) {
	storetest.Run(t, func(t *testing.T, eng storetest.Engine) {
		ctx := context.Background()
		ca := initCA(t, eng.DB)
		tok, err := ca.CreateEnrollmentToken(ctx, "cam-1", "camera", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if class, err := ca.checkEnrollmentToken(ctx, "cam-1", tok.Token); err != nil || class != "camera" {
			t.Fatalf("check token: %q, %v", class, err)
		}
		if err := ca.spendEnrollmentToken(ctx, "cam-1", tok.Token, "camera"); err != nil {
			t.Fatal(err)
		}
		if err := ca.spendEnrollmentToken(ctx, "cam-1", tok.Token, "camera"); err == nil {
			t.Fatal("a token was spent twice")
		}
		var stored string
		eng.DB.QueryRow(ctx, `SELECT token_hash FROM identity_enrollment_tokens`).Scan(&stored)
		if stored == tok.Token || stored != hashToken(tok.Token) {
			t.Errorf("stored %q; want the SHA-256 of the token, never the token", stored)
		}
		for _, ttl := range []time.Duration{time.Second, 31 * 24 * time.Hour} {
			if _, err := ca.CreateEnrollmentToken(ctx, "cam-1", "", ttl); !apperr.Is(err, apperr.Invalid) {
				t.Errorf("ttl %s: %v, want invalid", ttl, err)
			}
		}

		if _, err := ca.RegisterVendorCA(ctx, "acme", newVendor(t).pem); err != nil {
			t.Fatal(err)
		}
		if vs, err := ca.VendorCAs(ctx); err != nil || len(vs) != 1 || vs[0].Name != "acme" {
			t.Fatalf("vendor CAs = %v, %v", vs, err)
		}
		for name, bad := range map[string][]byte{"not PEM": []byte("hello"), "a leaf": EncodeCertsPEM(issueDevice(t, ca, "cam-2", ""))} {
			if _, err := ca.RegisterVendorCA(ctx, name, bad); !apperr.Is(err, apperr.Invalid) {
				t.Errorf("registering %s: %v, want invalid", name, err)
			}
		}

		_, csr := deviceCSR(t, "cam-3")
		r, created, err := ca.queueEnrollment(ctx, "cam-3", "camera", "none", "192.0.2.1", csr)
		if err != nil || !created {
			t.Fatalf("queue: %v, created %t", err, created)
		}
		if again, created, _ := ca.queueEnrollment(ctx, "cam-3", "camera", "none", "192.0.2.1", csr); created || again.ID != r.ID {
			t.Fatal("the same request was queued twice")
		}
		if _, err := ca.AcceptEnrollment(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		if ok, err := ca.claimAcceptedEnrollment(ctx, r.ID); !ok || err != nil {
			t.Fatalf("claim: %t %v", ok, err)
		}
		if ok, _ := ca.claimAcceptedEnrollment(ctx, r.ID); ok {
			t.Fatal("an accepted request was claimed twice")
		}
	})
}

// FuzzESTRequest feeds arbitrary simpleenroll bodies to the parser: it
// never panics, refuses with Invalid naming body or csr, and what it
// accepts is a CSR that parses again from its own bytes.
func FuzzESTRequest(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "cam-1"}}, key)
	f.Add(base64Lines(der))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	f.Add([]byte("MA=="))
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\n"))
	f.Add([]byte(" \r\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		csr, err := ParseESTCSR(body)
		if err != nil {
			e := apperr.As(err)
			if e == nil || e.Code != apperr.Invalid || (e.Field != "body" && e.Field != "csr") {
				t.Fatalf("refusal is not Invalid naming body or csr: %v", err)
			}
			return
		}
		if _, err := x509.ParseCertificateRequest(csr.Raw); err != nil {
			t.Fatalf("accepted CSR does not parse again: %v", err)
		}
		_ = checkCSR(csr.Subject.CommonName, csr) // must not panic either
	})
}
