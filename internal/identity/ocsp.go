package identity

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/fleetward/fleetward/internal/apperr"
)

// maxOCSPRequest bounds an OCSP request; a real one is about 100 bytes.
const maxOCSPRequest = 8 << 10

// ocspValidity is how long an OCSP answer may be cached (nextUpdate).
const ocspValidity = time.Hour

// OCSPHandler answers RFC 6960 OCSP requests, sent as POST with
// Content-Type application/ocsp-request or as GET with the base64 request
// as the last part of the path (mount it with http.StripPrefix, e.g. at
// /pki/ocsp/). Each answer is good, revoked or unknown, signed by the
// intermediate that issued the certificate (through a delegated responder
// certificate when the intermediate's key is Ed25519). A request that cannot be
// parsed gets a malformedRequest response, one about another issuer an
// unauthorized response; neither is an HTTP error.
func (ca *CA) OCSPHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, ok := readOCSPRequest(w, r)
		if !ok {
			return
		}
		resp := ca.answerOCSP(r.Context(), raw)
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(resp)
	})
}

// readOCSPRequest returns the DER request from a GET path or POST body.
// It answers method errors itself (ok false); an undecodable request is
// returned as nil so it gets a malformedRequest response.
func readOCSPRequest(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	switch r.Method {
	case http.MethodPost:
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxOCSPRequest))
		if err != nil {
			return nil, true
		}
		return body, true
	case http.MethodGet:
		// The request is the path's last part: all of it when the handler
		// is mounted with http.StripPrefix, or what follows "ocsp/".
		p := strings.TrimLeft(r.URL.EscapedPath(), "/")
		candidates := []string{p}
		if i := strings.Index(p, "ocsp/"); i >= 0 {
			candidates = append(candidates, p[i+len("ocsp/"):])
		}
		for _, c := range candidates {
			if len(c) > 2*maxOCSPRequest {
				continue
			}
			if u, err := url.PathUnescape(c); err == nil {
				c = u
			}
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
				if der, err := enc.DecodeString(c); err == nil {
					return der, true
				}
			}
		}
		return nil, true
	}
	w.Header().Set("Allow", "GET, POST")
	http.Error(w, "OCSP requests are GET or POST", http.StatusMethodNotAllowed)
	return nil, false
}

// answerOCSP returns the DER OCSP response to a DER request.
func (ca *CA) answerOCSP(ctx context.Context, raw []byte) []byte {
	if len(raw) == 0 {
		return ocsp.MalformedRequestErrorResponse
	}
	req, err := parseOCSPRequest(raw)
	if err != nil {
		return ocsp.MalformedRequestErrorResponse
	}
	cas, err := loadCAs(ctx, ca.db)
	if err != nil {
		ca.log.Error("ocsp: load CA", "err", err)
		return ocsp.InternalErrorErrorResponse
	}
	var issuer *caCert
	for i := range cas {
		c := &cas[i]
		if c.Kind == kindIntermediate && matchesIssuer(req, c) {
			issuer = c
			break
		}
	}
	if issuer == nil {
		return ocsp.UnauthorizedErrorResponse
	}
	key, err := ca.signerFor(*issuer)
	if err != nil {
		ca.log.Error("ocsp: issuer key", "issuer", issuer.Serial, "err", err)
		return ocsp.InternalErrorErrorResponse
	}
	now := ca.now().UTC()
	tmpl := ocsp.Response{
		SerialNumber: req.SerialNumber,
		Status:       ocsp.Unknown,
		ThisUpdate:   now.Add(-clockSkewAllowance),
		NextUpdate:   now.Add(ocspValidity),
		IssuerHash:   req.HashAlgorithm,
	}
	c, err := ca.status(ctx, req.SerialNumber)
	switch {
	case err == nil && c.Issuer == issuer.Serial:
		tmpl.Status = ocsp.Good
		if c.Status == StatusRevoked {
			tmpl.Status = ocsp.Revoked
			tmpl.RevokedAt = c.RevokedAt
			tmpl.RevocationReason = int(c.Reason)
		}
	case err == nil || apperr.Is(err, apperr.NotFound):
		// Not issued by this intermediate: unknown.
	default:
		ca.log.Error("ocsp: certificate status", "serial", SerialString(req.SerialNumber), "err", err)
		return ocsp.InternalErrorErrorResponse
	}
	responder, rkey, err := ca.ocspResponder(*issuer, key)
	if err != nil {
		ca.log.Error("ocsp: responder certificate", "issuer", issuer.Serial, "err", err)
		return ocsp.InternalErrorErrorResponse
	}
	if responder != issuer.Cert {
		tmpl.Certificate = responder // a delegated responder travels with its answer
	}
	der, err := ocsp.CreateResponse(issuer.Cert, responder, tmpl, rkey)
	if err != nil {
		ca.log.Error("ocsp: sign response", "issuer", issuer.Serial, "err", err)
		return ocsp.InternalErrorErrorResponse
	}
	return der
}

// ocspResponderLifetime is the validity of a delegated OCSP responder
// certificate; a new one is made when half of it has passed.
const ocspResponderLifetime = 7 * 24 * time.Hour

// oidOCSPNoCheck marks a responder certificate as not itself checked for
// revocation (RFC 6960 4.2.2.2.1).
var oidOCSPNoCheck = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}

// ocspResponder returns the certificate and key that sign OCSP answers for
// issuer: the intermediate itself, or, for an Ed25519 intermediate (which
// golang.org/x/crypto/ocsp cannot sign with), a short-lived ECDSA P-256
// delegated responder certificate it issued, kept in memory only.
func (ca *CA) ocspResponder(issuer caCert, issuerKey crypto.Signer) (*x509.Certificate, crypto.Signer, error) {
	if _, ok := issuerKey.(ed25519.PrivateKey); !ok {
		return issuer.Cert, issuerKey, nil
	}
	now := ca.now().UTC()
	ca.mu.Lock()
	r, ok := ca.responders[issuer.Serial]
	ca.mu.Unlock()
	if ok && now.Before(r.cert.NotAfter.Add(-ocspResponderLifetime/2)) {
		return r.cert, r.key, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	notAfter := now.Add(ocspResponderLifetime)
	if notAfter.After(issuer.Cert.NotAfter) {
		notAfter = issuer.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:    serial,
		Subject:         pkix.Name{CommonName: ca.opts.Organization + " OCSP responder " + issuer.Serial, Organization: []string{ca.opts.Organization}},
		NotBefore:       now.Add(-clockSkewAllowance),
		NotAfter:        notAfter,
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
		ExtraExtensions: []pkix.Extension{{Id: oidOCSPNoCheck, Value: []byte{0x05, 0x00}}},
	}
	cert, err := createCert(tmpl, issuer.Cert, key.Public(), issuerKey)
	if err != nil {
		return nil, nil, err
	}
	ca.mu.Lock()
	ca.responders[issuer.Serial] = ocspSigner{cert: cert, key: key}
	ca.mu.Unlock()
	return cert, key, nil
}

// ocspSigner is a delegated OCSP responder's certificate and key.
type ocspSigner struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// parseOCSPRequest parses a request, turning any panic in the parser into
// an error: the input is the outside world's.
func parseOCSPRequest(raw []byte) (req *ocsp.Request, err error) {
	defer func() {
		if recover() != nil {
			req, err = nil, errors.New("ocsp request parser panicked")
		}
	}()
	req, err = ocsp.ParseRequest(raw)
	if err == nil && (req.SerialNumber == nil || req.SerialNumber.Sign() <= 0) {
		err = errors.New("no serial number")
	}
	if err == nil && !req.HashAlgorithm.Available() {
		err = errors.New("unsupported hash")
	}
	return req, err
}

// matchesIssuer reports whether the request's issuer name and key hashes
// are those of c.
func matchesIssuer(req *ocsp.Request, c *caCert) bool {
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(c.Cert.RawSubjectPublicKeyInfo, &spki); err != nil {
		return false
	}
	h := req.HashAlgorithm
	if h == 0 || !h.Available() {
		return false
	}
	return bytes.Equal(hashOf(h, c.Cert.RawSubject), req.IssuerNameHash) &&
		bytes.Equal(hashOf(h, spki.PublicKey.RightAlign()), req.IssuerKeyHash)
}

func hashOf(h crypto.Hash, b []byte) []byte {
	d := h.New()
	d.Write(b)
	return d.Sum(nil)
}
