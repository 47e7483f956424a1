package agent

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/smallstep/pkcs7"

	"github.com/fleetward/fleetward/internal/identity"
)

// The EST (RFC 7030) operations the agent uses, under /.well-known/est/.
const (
	estCACerts        = "cacerts"
	estSimpleEnroll   = "simpleenroll"
	estSimpleReenroll = "simplereenroll"
)

// Bounds on how long the agent waits when a server answers 202 Accepted
// (enrolment waits for an operator's approval).
const (
	defaultRetryAfter = 60 * time.Second
	maxRetryAfter     = time.Hour
	maxESTBody        = 1 << 20
)

// ServerTrust is how the agent trusts the EST server's HTTPS certificate
// before it has the CA chain: PEM certificates to verify it with
// (--ca-cert: a CA, or the server's own self-signed certificate), the
// SHA-256 fingerprint of the server's leaf certificate
// (--server-fingerprint), or both. One of them is required. Once /cacerts
// has answered, the CA chain is trusted as well (ESTClient.TrustChain).
type ServerTrust struct {
	CAPEM       []byte
	Fingerprint []byte // SHA-256 of the leaf's DER, 32 bytes
}

// pool returns the certificates of CAPEM as a pool, nil if there are none,
// or an error if CAPEM is set but holds no certificate.
func (t ServerTrust) pool() (*x509.CertPool, error) {
	if len(t.CAPEM) == 0 {
		return nil, nil
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(t.CAPEM) {
		return nil, errors.New("no PEM certificate in the CA file")
	}
	return p, nil
}

// ParseFingerprint reads a SHA-256 fingerprint written as 64 hex digits,
// optionally separated by colons (as openssl prints them).
func ParseFingerprint(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(s), ":", ""))
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("server fingerprint %q: want the SHA-256 of the certificate as 64 hex digits", s)
	}
	return b, nil
}

// ESTError is an EST server's refusal: its HTTP status and the text it
// sent back.
type ESTError struct {
	Op      string // "cacerts", "simpleenroll", "simplereenroll"
	Status  int
	Message string
}

func (e *ESTError) Error() string {
	return fmt.Sprintf("est %s: server answered %d %s: %s", e.Op, e.Status, http.StatusText(e.Status), e.Message)
}

// ESTClient is an RFC 7030 client for the operations a device needs:
// /cacerts, /simpleenroll (HTTP Basic auth with the device id and a
// one-time enrolment token) and /simplereenroll (TLS client auth with the
// current certificate). It is safe for concurrent use.
type ESTClient struct {
	base *url.URL
	log  *slog.Logger

	mu    sync.Mutex
	roots *x509.CertPool
	pin   []byte
}

// NewESTClient returns a client of the EST server at server
// ("https://host:8443"; the /.well-known/est/ paths are added). Returns an
// error if server is not an https URL or trust names nothing to trust.
func NewESTClient(server string, trust ServerTrust, log *slog.Logger) (*ESTClient, error) {
	u, err := url.Parse(server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("est server %q: want an https:// URL", server)
	}
	if len(trust.CAPEM) == 0 && trust.Fingerprint == nil {
		return nil, errors.New("est server: no trust anchor; give a CA certificate or the server's fingerprint")
	}
	if trust.Fingerprint != nil && len(trust.Fingerprint) != sha256.Size {
		return nil, errors.New("est server: fingerprint must be a SHA-256 (32 bytes)")
	}
	if log == nil {
		log = slog.Default()
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/.well-known/est/"
	roots, err := trust.pool()
	if err != nil {
		return nil, fmt.Errorf("est server trust: %w", err)
	}
	return &ESTClient{base: u, log: log, pin: trust.Fingerprint, roots: roots}, nil
}

// TrustChain adds the CA chain from /cacerts to the roots the server's
// certificate may chain to.
func (c *ESTClient) TrustChain(chain []*x509.Certificate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.roots == nil {
		c.roots = x509.NewCertPool()
	}
	for _, cert := range chain {
		if isSelfSigned(cert) {
			c.roots.AddCert(cert)
		}
	}
}

// verifyServer accepts the server if its leaf matches the pinned
// fingerprint or its chain verifies to a trusted root for the host name.
func (c *ESTClient) verifyServer(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("est server sent no certificate")
	}
	leaf := cs.PeerCertificates[0]
	c.mu.Lock()
	pin, roots := c.pin, c.roots
	c.mu.Unlock()
	sum := sha256.Sum256(leaf.Raw)
	if pin != nil && subtle.ConstantTimeCompare(sum[:], pin) == 1 {
		return nil
	}
	if roots == nil {
		return fmt.Errorf("est server certificate has fingerprint %x, not the pinned %x", sum, pin)
	}
	inter := x509.NewCertPool()
	for _, ic := range cs.PeerCertificates[1:] {
		inter.AddCert(ic)
	}
	_, err := leaf.Verify(x509.VerifyOptions{DNSName: cs.ServerName, Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		return fmt.Errorf("est server certificate (fingerprint %x): %w", sum, err)
	}
	return nil
}

// httpClient returns a client that verifies the server with verifyServer
// and presents cert, if not nil. Each call makes a new transport, so a
// connection opened without a client certificate is never reused for a
// request that needs one.
func (c *ESTClient) httpClient(cert *tls.Certificate) *http.Client {
	conf := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Verification is not skipped: Go's own check is replaced by
		// verifyServer, which also accepts a pinned leaf (first contact,
		// before the CA chain is known).
		InsecureSkipVerify: true,
		VerifyConnection:   c.verifyServer,
	}
	if cert != nil {
		conf.Certificates = []tls.Certificate{*cert}
	}
	tr := &http.Transport{TLSClientConfig: conf, ForceAttemptHTTP2: true, TLSHandshakeTimeout: 15 * time.Second}
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

// CACerts fetches the CA chain (GET /cacerts). The certificates are in the
// order the server sent them.
func (c *ESTClient) CACerts(ctx context.Context) ([]*x509.Certificate, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.JoinPath(estCACerts).String(), nil)
	if err != nil {
		return nil, fmt.Errorf("est cacerts: %w", err)
	}
	hc := c.httpClient(nil)
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("est cacerts: %w", err)
	}
	body, err := readESTResponse(estCACerts, resp)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &ESTError{Op: estCACerts, Status: resp.StatusCode, Message: "unexpected status"}
	}
	certs, err := ParseCertsOnly(body)
	if err != nil {
		return nil, fmt.Errorf("est cacerts: %w", err)
	}
	return certs, nil
}

// SimpleEnroll asks for a first certificate (POST /simpleenroll) with the
// device id and its one-time enrolment token as HTTP Basic credentials.
// While the server answers 202 Accepted it waits as long as Retry-After
// says (at most an hour) and asks again, until ctx ends. Returns an
// *ESTError if the server refuses.
func (c *ESTClient) SimpleEnroll(ctx context.Context, deviceID, token string, csrDER []byte) (*x509.Certificate, error) {
	return c.enroll(ctx, estSimpleEnroll, csrDER, func(r *http.Request) { r.SetBasicAuth(deviceID, token) }, nil)
}

// SimpleReenroll asks for a new certificate (POST /simplereenroll),
// authenticating with the current one over TLS. Returns an *ESTError if the
// server refuses.
func (c *ESTClient) SimpleReenroll(ctx context.Context, current *tls.Certificate, csrDER []byte) (*x509.Certificate, error) {
	return c.enroll(ctx, estSimpleReenroll, csrDER, nil, current)
}

func (c *ESTClient) enroll(ctx context.Context, op string, csrDER []byte, auth func(*http.Request), cert *tls.Certificate) (*x509.Certificate, error) {
	hc := c.httpClient(cert)
	defer hc.CloseIdleConnections()
	body := []byte(base64.StdEncoding.EncodeToString(csrDER))
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base.JoinPath(op).String(), bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("est %s: %w", op, err)
		}
		req.Header.Set("Content-Type", "application/pkcs10")
		req.Header.Set("Content-Transfer-Encoding", "base64")
		if auth != nil {
			auth(req)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("est %s: %w", op, err)
		}
		data, err := readESTResponse(op, resp)
		if err != nil {
			return nil, err
		}
		switch resp.StatusCode {
		case http.StatusOK:
			certs, err := ParseCertsOnly(data)
			if err != nil {
				return nil, fmt.Errorf("est %s: %w", op, err)
			}
			// Some servers add the chain; the device's certificate is the
			// one that is not a CA.
			for _, c := range certs {
				if !c.IsCA {
					return c, nil
				}
			}
			return nil, fmt.Errorf("est %s: the response holds only CA certificates", op)
		case http.StatusAccepted:
			wait := retryAfter(resp.Header.Get("Retry-After"), time.Now())
			c.log.Info("enrolment pending on the server; waiting", "op", op, "retry_after", wait)
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return nil, fmt.Errorf("est %s: still pending: %w", op, ctx.Err())
			}
		default:
			return nil, &ESTError{Op: op, Status: resp.StatusCode, Message: "unexpected status"}
		}
	}
}

// readESTResponse reads a response body and turns 4xx and 5xx answers into
// an *ESTError carrying the server's text.
func readESTResponse(op string, resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxESTBody))
	if err != nil {
		return nil, fmt.Errorf("est %s: read response: %w", op, err)
	}
	if resp.StatusCode >= 400 {
		msg := strings.TrimSpace(string(data))
		if len(msg) > 512 {
			msg = msg[:512] + "…"
		}
		return nil, &ESTError{Op: op, Status: resp.StatusCode, Message: msg}
	}
	return data, nil
}

// retryAfter reads a Retry-After header, in seconds or as an HTTP date,
// bounded to [1 s, 1 h]; a missing or unreadable value means a minute.
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	d := defaultRetryAfter
	if secs, err := strconv.Atoi(h); err == nil {
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, time.Second), maxRetryAfter)
}

// ParseCertsOnly reads an EST certificate response: base64 (line breaks
// allowed) of a DER PKCS#7 certs-only SignedData. Raw DER is accepted too.
// It fails if the message holds no certificate.
func ParseCertsOnly(body []byte) ([]*x509.Certificate, error) {
	der, err := base64.StdEncoding.DecodeString(string(bytes.Join(bytes.Fields(body), nil)))
	if err != nil {
		if len(body) == 0 || body[0] != 0x30 {
			return nil, fmt.Errorf("certs-only response is not base64: %w", err)
		}
		der = body
	}
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return nil, fmt.Errorf("certs-only response is not PKCS#7: %w", err)
	}
	if len(p7.Certificates) == 0 {
		return nil, errors.New("certs-only response holds no certificate")
	}
	return p7.Certificates, nil
}

// DeviceCSR makes the DER PKCS#10 request of a device: subject CN and the
// urn:fleetward:device: URI SAN both name the device.
func DeviceCSR(deviceID string, key crypto.Signer) ([]byte, error) {
	uri, err := url.Parse(identity.DeviceURI(deviceID))
	if err != nil {
		return nil, fmt.Errorf("csr for %s: %w", deviceID, err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: deviceID},
		URIs:    []*url.URL{uri},
	}, key)
	if err != nil {
		return nil, fmt.Errorf("csr for %s: %w", deviceID, err)
	}
	return der, nil
}

// checkIssued verifies that an issued certificate is for this device and
// key, chains to the CA and allows client authentication.
func checkIssued(cert *x509.Certificate, deviceID string, key crypto.Signer, chain []*x509.Certificate) error {
	id, err := identity.DeviceIDFromCertificate(cert)
	if err != nil {
		return fmt.Errorf("issued certificate: %w", err)
	}
	if id != deviceID {
		return fmt.Errorf("issued certificate names device %q, not %q", id, deviceID)
	}
	if pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(key.Public()) {
		return errors.New("issued certificate is not for the device's key")
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, c := range chain {
		if isSelfSigned(c) {
			roots.AddCert(c)
		} else {
			inter.AddCert(c)
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return fmt.Errorf("issued certificate does not verify to the CA from /cacerts: %w", err)
	}
	return nil
}
