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
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/auth"
	"github.com/fleetward/fleetward/internal/identity"
	"github.com/fleetward/fleetward/internal/inventory"
)

// estClient talks to a started server's API and EST endpoints.
type estClient struct {
	t    *testing.T
	url  string
	http *http.Client
}

func (c estClient) do(method, path, bearer string, body []byte, hdr ...string) (int, http.Header, []byte) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.url+path, bytes.NewReader(body))
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func estCSR(t *testing.T, id string) []byte {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: id}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(base64.StdEncoding.EncodeToString(der))
}

func issuedCert(t *testing.T, body []byte) *x509.Certificate {
	t.Helper()
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(body)), ""))
	if err != nil {
		t.Fatalf("EST answer is not base64: %v: %s", err, body)
	}
	p7, err := pkcs7.Parse(der)
	if err != nil || len(p7.Certificates) != 1 {
		t.Fatalf("EST answer is not PKCS#7 with one certificate: %v", err)
	}
	return p7.Certificates[0]
}

// TestServerEnrolsDevicesOverESTWithTokensAndApproval starts a real
// server: an operator makes an enrolment token for an inventory device
// through the API and the device enrols with it; a device without a
// credential waits until the operator accepts its request.
func TestServerEnrolsDevicesOverESTWithTokensAndApproval(t *testing.T) {
	dir := t.TempDir()
	s, _ := startServer(t, dir, false)
	ctx := actor.With(context.Background(), actor.Actor{Name: "test"})
	for _, d := range []inventory.Device{
		{ID: "cam-1", Name: "door camera", Class: "camera"},
		{ID: "cam-q", Name: "quarantined camera", Class: "camera", Status: inventory.StatusQuarantined},
	} {
		if _, err := s.Inventory.CreateDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	operator, _, err := s.Auth.CreateToken(ctx, "ops", auth.RoleOperator, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	auditor, _, _ := s.Auth.CreateToken(ctx, "audit", auth.RoleAuditor, nil, time.Hour)
	admin, _, _ := s.Auth.CreateToken(ctx, "root", auth.RoleAdmin, nil, time.Hour)

	pem, _ := os.ReadFile(filepath.Join(dir, "tls", "server.crt"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c := estClient{t: t, url: s.URL, http: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}

	// Token creation: roles, unknown and barred devices.
	for _, tc := range []struct {
		name, bearer, device string
		want                 int
	}{
		{"an auditor may not make tokens", auditor, "cam-1", 403},
		{"a token for an unknown device is refused", operator, "cam-404", 404},
		{"a token for a quarantined device is refused", operator, "cam-q", 409},
		{"an operator makes a token", operator, "cam-1", 201},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if status, _, body := c.do("POST", "/api/v1/devices/"+tc.device+"/enrollment-token", tc.bearer, nil); status != tc.want {
				t.Fatalf("status %d, want %d: %s", status, tc.want, body)
			}
		})
	}
	status, _, body := c.do("POST", "/api/v1/devices/cam-1/enrollment-token", operator, []byte(`{"ttl":"2h"}`), "Content-Type", "application/json")
	var tok struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal(body, &tok); status != 201 || err != nil || tok.Token == "" {
		t.Fatalf("create token: %d %s", status, body)
	}
	if d := time.Until(tok.ExpiresAt); d < 119*time.Minute || d > 121*time.Minute {
		t.Errorf("token expires in %s, want 2h", d)
	}

	req := func(user, pass string, csr []byte) (int, http.Header, []byte) {
		hdr := []string{"Content-Type", "application/pkcs10"}
		if user != "" {
			hdr = append(hdr, "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
		}
		return c.do("POST", identity.ESTSimpleEnroll, "", csr, hdr...)
	}
	status, hdr, body := req("cam-1", tok.Token, estCSR(t, "cam-1"))
	if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "application/pkcs7-mime") {
		t.Fatalf("simpleenroll with the token: %d %s", status, body)
	}
	cert := issuedCert(t, body)
	if st, err := s.CA.Status(ctx, identity.SerialString(cert.SerialNumber)); err != nil || st.DeviceID != "cam-1" || st.Class != "camera" {
		t.Fatalf("issued certificate: %+v %v; want cam-1, class camera from the inventory", st, err)
	}
	if status, _, _ := req("cam-1", tok.Token, estCSR(t, "cam-1")); status != 401 {
		t.Fatalf("replayed token: %d, want 401", status)
	}

	// Approval queue through the API.
	csr := estCSR(t, "cam-new")
	if status, hdr, _ := req("", "", csr); status != 202 || hdr.Get("Retry-After") == "" {
		t.Fatalf("simpleenroll without credential: %d, Retry-After %q", status, hdr.Get("Retry-After"))
	}
	status, _, body = c.do("GET", "/api/v1/enrollments?status=pending", auditor, nil)
	var list struct {
		Enrollments []identity.EnrollmentRequest `json:"enrollments"`
	}
	if err := json.Unmarshal(body, &list); status != 200 || err != nil || len(list.Enrollments) != 1 {
		t.Fatalf("pending enrolments: %d %s", status, body)
	}
	id := list.Enrollments[0].ID
	if status, _, _ := c.do("POST", "/api/v1/enrollments/"+id+"/accept", auditor, nil); status != 403 {
		t.Errorf("an auditor accepted a request: %d", status)
	}
	if status, _, body := c.do("POST", "/api/v1/enrollments/"+id+"/accept", operator, nil); status != 200 {
		t.Fatalf("accept: %d %s", status, body)
	}
	if status, _, body := req("", "", csr); status != 200 {
		t.Fatalf("simpleenroll after accept: %d %s", status, body)
	}

	// Vendor CAs: admin only.
	vendorPEM := selfSignedCA(t)
	vbody, _ := json.Marshal(map[string]string{"name": "acme", "certificate": string(vendorPEM)})
	if status, _, _ := c.do("POST", "/api/v1/vendor-cas", operator, vbody, "Content-Type", "application/json"); status != 403 {
		t.Errorf("an operator registered a vendor CA: %d", status)
	}
	if status, _, body := c.do("POST", "/api/v1/vendor-cas", admin, vbody, "Content-Type", "application/json"); status != 201 {
		t.Fatalf("register vendor CA: %d %s", status, body)
	}
	if status, _, body := c.do("GET", "/api/v1/vendor-cas", auditor, nil); status != 200 || !strings.Contains(string(body), `"name":"acme"`) {
		t.Fatalf("list vendor CAs: %d %s", status, body)
	}

	// Every step is in the ledger.
	for _, typ := range []string{identity.EventEnrollmentTokenCreated, identity.EventEnrollmentTokenUsed, identity.EventEnrollmentRefused,
		identity.EventEnrollmentRequested, identity.EventEnrollmentDecided, identity.EventVendorCARegistered, identity.EventCertificateIssued} {
		if len(ledgerEntries(t, s.Ledger, typ)) == 0 {
			t.Errorf("no %s in the ledger", typ)
		}
	}
}

func selfSignedCA(t *testing.T) []byte {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Acme IDevID CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return identity.EncodeCertsPEM(cert)
}
