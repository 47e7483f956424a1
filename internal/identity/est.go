package identity

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/smallstep/pkcs7"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/store"
)

// The EST (RFC 7030) operations fleetward serves, under ESTPathPrefix.
//
// A device names itself in its CSR by the subject CN, which must be its
// device id; a URI SAN, if present, must be urn:fleetward:device:<id>
// (checkCSR). The issued certificate always carries both.
//
// simpleenroll accepts three bootstrap credentials, tried in this order:
//
//  1. HTTP Basic with the device id as username and a one-time enrolment
//     token (CreateEnrollmentToken) as password;
//  2. a TLS client certificate chaining to a registered vendor CA
//     (RegisterVendorCA), whose device id (IDevIDDeviceID) must be the
//     CSR's; a device the inventory does not know goes to the approval
//     queue instead;
//  3. nothing: the request waits in the approval queue (202 and
//     Retry-After) until an operator accepts it, and the device's next
//     simpleenroll with the same key gets its certificate.
//
// simplereenroll needs the device's current certificate, valid and not
// revoked, in the TLS handshake; the listener only requests it
// (tls.RequestClientCert), and the EST server verifies it against the CA.
const (
	ESTPathPrefix     = "/.well-known/est/"
	ESTCACerts        = ESTPathPrefix + "cacerts"
	ESTSimpleEnroll   = ESTPathPrefix + "simpleenroll"
	ESTSimpleReenroll = ESTPathPrefix + "simplereenroll"
	ESTCSRAttrs       = ESTPathPrefix + "csrattrs"
)

// Defaults of ESTOptions.
const (
	DefaultESTRatePerMinute = 10
	DefaultESTRateBurst     = 20
	DefaultESTMaxBody       = 64 << 10
	DefaultESTRetryAfter    = time.Minute
)

// DeviceDirectory tells the EST server what the inventory knows about a
// device that asks for a certificate.
type DeviceDirectory interface {
	// EnrollingDevice returns what enrolment needs to know about a device.
	// Returns NotFound for a device the inventory does not know.
	EnrollingDevice(ctx context.Context, id string) (EnrollingDevice, error)
}

// EnrollingDevice is the inventory's view of a device asking for a
// certificate.
type EnrollingDevice struct {
	// Class is the device class; its ClassPolicy sets the certificate's
	// lifetime.
	Class string
	// Barred, when not empty, says why the device may not get a
	// certificate now ("the device is quarantined").
	Barred string
}

// ESTOptions configure an EST server. The zero value is usable.
type ESTOptions struct {
	// Devices is the inventory; nil means no device is known, so IDevID
	// enrolments wait for approval and no class comes from the inventory.
	Devices DeviceDirectory
	// RatePerMinute and RateBurst set the token bucket per source address
	// shared by every EST operation; defaults 10 per minute, burst 20.
	RatePerMinute float64
	RateBurst     int
	// MaxBody is the largest request body accepted; default 64 KiB.
	MaxBody int64
	// RetryAfter is what a device waiting for approval is told; default a
	// minute.
	RetryAfter time.Duration
}

// EST serves enrolment over HTTPS for a CA (RFC 7030). Its handlers have
// the signature of api.Route handlers: they answer every request
// themselves, in plain text on failure as EST clients expect, and return
// nil.
type EST struct {
	ca    *CA
	opts  ESTOptions
	limit *ipLimiter
	// outcomes counts requests by "<op> <outcome>" (see Outcomes).
	outcomes sync.Map // string → *atomic.Uint64
}

// count adds one to an operation's outcome.
func (e *EST) count(op, outcome string) {
	n, _ := e.outcomes.LoadOrStore(op+" "+outcome, new(atomic.Uint64))
	n.(*atomic.Uint64).Add(1)
}

// Outcomes returns how many EST requests ended how, since start, keyed by
// operation and outcome: "simpleenroll issued", "simpleenroll pending"
// (queued for approval, 202), "simplereenroll refused", "cacerts
// rate_limited", …
func (e *EST) Outcomes() map[[2]string]uint64 {
	out := map[[2]string]uint64{}
	e.outcomes.Range(func(k, v any) bool {
		op, outcome, _ := strings.Cut(k.(string), " ")
		out[[2]string{op, outcome}] = v.(*atomic.Uint64).Load()
		return true
	})
	return out
}

// NewEST returns the EST server of ca.
func NewEST(ca *CA, opts ESTOptions) *EST {
	if opts.RatePerMinute <= 0 {
		opts.RatePerMinute = DefaultESTRatePerMinute
	}
	if opts.RateBurst <= 0 {
		opts.RateBurst = DefaultESTRateBurst
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultESTMaxBody
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = DefaultESTRetryAfter
	}
	return &EST{ca: ca, opts: opts, limit: newIPLimiter(opts.RatePerMinute, opts.RateBurst, ca.now)}
}

// MaxBody is the request body limit the EST server enforces.
func (e *EST) MaxBody() int64 { return e.opts.MaxBody }

// Handler serves the four EST operations on their paths, for a listener
// of its own or a test; fleetward's HTTPS listener mounts them through
// api.Route instead.
func (e *EST) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range []struct {
		pattern string
		h       func(http.ResponseWriter, *http.Request) error
	}{
		{"GET " + ESTCACerts, e.CACerts},
		{"POST " + ESTSimpleEnroll, e.SimpleEnroll},
		{"POST " + ESTSimpleReenroll, e.SimpleReenroll},
		{"GET " + ESTCSRAttrs, e.CSRAttrs},
	} {
		mux.HandleFunc(rt.pattern, func(w http.ResponseWriter, r *http.Request) {
			r.Body = http.MaxBytesReader(w, r.Body, e.opts.MaxBody)
			_ = rt.h(w, r)
		})
	}
	return mux
}

// estResponse is a successful EST answer.
type estResponse struct {
	status      int
	contentType string
	der         []byte // sent base64
	retryAfter  time.Duration
}

// attempt is what a handler learned before it failed: the device the
// request is about and why it was refused, for the ledger.
type attempt struct {
	op     string
	device string
	reason string
}

// CACerts answers GET /.well-known/est/cacerts: the issuing intermediates
// and the root, as a base64 PKCS#7 certs-only structure.
func (e *EST) CACerts(w http.ResponseWriter, r *http.Request) error {
	e.serve(w, r, "cacerts", func(ctx context.Context, a *attempt) (estResponse, error) {
		chain, err := e.ca.Chain(ctx)
		if err != nil {
			return estResponse{}, err
		}
		p7, err := certsOnly(chain...)
		if err != nil {
			return estResponse{}, err
		}
		return estResponse{status: http.StatusOK, contentType: "application/pkcs7-mime", der: p7}, nil
	})
	return nil
}

// CSRAttrs answers GET /.well-known/est/csrattrs with the CSR attributes
// the CA prefers (RFC 7030 §4.5.2): an EC P-256 key signed with
// ecdsa-with-SHA256. Other keys checkCSR allows are accepted too.
func (e *EST) CSRAttrs(w http.ResponseWriter, r *http.Request) error {
	e.serve(w, r, "csrattrs", func(context.Context, *attempt) (estResponse, error) {
		return estResponse{status: http.StatusOK, contentType: "application/csrattrs", der: csrAttrs}, nil
	})
	return nil
}

// SimpleEnroll answers POST /.well-known/est/simpleenroll: a device's
// first certificate, on one of the bootstrap credentials described at
// ESTPathPrefix.
func (e *EST) SimpleEnroll(w http.ResponseWriter, r *http.Request) error {
	e.serve(w, r, "simpleenroll", func(ctx context.Context, a *attempt) (estResponse, error) {
		csr, err := e.readCSR(r)
		if err != nil {
			return estResponse{}, err
		}
		if user, pass, ok := r.BasicAuth(); ok {
			return e.enrollWithToken(ctx, a, user, pass, csr)
		}
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			id, vendor, ok, err := e.ca.verifyIDevID(ctx, r.TLS.PeerCertificates)
			if apperr.Is(err, apperr.Invalid) {
				a.reason = "idevid_invalid"
				return estResponse{}, unauthorized("the IDevID certificate does not name a device: %v", apperr.As(err).Message)
			}
			if err != nil {
				return estResponse{}, err
			}
			if ok {
				return e.enrollWithIDevID(ctx, a, r, id, vendor, csr)
			}
			// A certificate from elsewhere is no credential; the request
			// goes to the approval queue like one without any.
		}
		return e.enrollForApproval(ctx, a, r, "none", csr)
	})
	return nil
}

func (e *EST) enrollWithToken(ctx context.Context, a *attempt, deviceID, token string, csr *x509.CertificateRequest) (estResponse, error) {
	a.device = deviceID
	if ValidateDeviceID("username", deviceID) != nil {
		a.device, a.reason = "", "token_bad_username"
		return estResponse{}, unauthorized("the Basic username must be the device id")
	}
	class, err := e.ca.checkEnrollmentToken(ctx, deviceID, token)
	if err != nil {
		return estResponse{}, tokenRefusal(a, err)
	}
	if err := checkCSR(deviceID, csr); err != nil {
		a.reason = "csr_rejected"
		return estResponse{}, err
	}
	if err := e.barred(ctx, a, deviceID); err != nil {
		return estResponse{}, err
	}
	if err := e.ca.spendEnrollmentToken(ctx, deviceID, token, class); err != nil {
		return estResponse{}, tokenRefusal(a, err)
	}
	res, err := e.issue(ctx, a, deviceID, class, csr, "token")
	return res.estResponse, err
}

func tokenRefusal(a *attempt, err error) error {
	var te *tokenError
	if errors.As(err, &te) {
		a.reason = te.reason
		return unauthorized("%s", te.message)
	}
	return err
}

func (e *EST) enrollWithIDevID(ctx context.Context, a *attempt, r *http.Request, deviceID, vendor string, csr *x509.CertificateRequest) (estResponse, error) {
	a.device = deviceID
	if err := checkCSR(deviceID, csr); err != nil {
		a.reason = "csr_rejected"
		return estResponse{}, err
	}
	dev, known, err := e.device(ctx, deviceID)
	if err != nil {
		return estResponse{}, err
	}
	if !known {
		return e.enrollForApproval(ctx, a, r, "idevid:"+vendor, csr)
	}
	if dev.Barred != "" {
		a.reason = "device_barred"
		return estResponse{}, apperr.Errorf(apperr.Forbidden, "device %s may not enrol: %s", deviceID, dev.Barred)
	}
	res, err := e.issue(ctx, a, deviceID, dev.Class, csr, "idevid:"+vendor)
	return res.estResponse, err
}

func (e *EST) enrollForApproval(ctx context.Context, a *attempt, r *http.Request, credential string, csr *x509.CertificateRequest) (estResponse, error) {
	deviceID := csr.Subject.CommonName
	if err := ValidateDeviceID("csr.subject.common_name", deviceID); err != nil {
		a.reason = "csr_rejected"
		return estResponse{}, err
	}
	a.device = deviceID
	if err := checkCSR(deviceID, csr); err != nil {
		a.reason = "csr_rejected"
		return estResponse{}, err
	}
	dev, known, err := e.device(ctx, deviceID)
	if err != nil {
		return estResponse{}, err
	}
	if dev.Barred != "" {
		a.reason = "device_barred"
		return estResponse{}, apperr.Errorf(apperr.Forbidden, "device %s may not enrol: %s", deviceID, dev.Barred)
	}
	req, created, err := e.ca.queueEnrollment(ctx, deviceID, dev.Class, credential, remoteIP(r), csr)
	if err != nil {
		return estResponse{}, err
	}
	switch req.Status {
	case EnrollmentRejected:
		a.reason = "request_rejected"
		return estResponse{}, apperr.Errorf(apperr.Forbidden, "enrolment request %s for this key was rejected by an operator", req.ID)
	case EnrollmentAccepted:
		claimed, err := e.ca.claimAcceptedEnrollment(ctx, req.ID)
		if err != nil {
			return estResponse{}, err
		}
		if !claimed {
			a.reason = "request_claimed"
			return estResponse{}, apperr.Errorf(apperr.Conflict, "enrolment request %s was answered already", req.ID)
		}
		class := req.Class
		if known {
			class = dev.Class
		}
		res, err := e.issue(ctx, a, deviceID, class, csr, "approval:"+req.ID)
		e.ca.settleEnrollment(ctx, req.ID, res.cert)
		return res.estResponse, err
	}
	if created {
		e.ca.log.Info("enrolment waits for approval", "device", deviceID, "request", req.ID, "credential", credential, "remote", remoteIP(r))
	}
	return estResponse{status: http.StatusAccepted, retryAfter: e.opts.RetryAfter}, nil
}

// SimpleReenroll answers POST /.well-known/est/simplereenroll: a new
// certificate for a device that shows its current one, valid and not
// revoked, in the TLS handshake. The CSR must name the same device.
func (e *EST) SimpleReenroll(w http.ResponseWriter, r *http.Request) error {
	e.serve(w, r, "simplereenroll", func(ctx context.Context, a *attempt) (estResponse, error) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			a.reason = "no_client_certificate"
			return estResponse{}, unauthorized("simplereenroll needs the device's current certificate as the TLS client certificate")
		}
		current, err := e.verifyDeviceCertificate(ctx, r.TLS.PeerCertificates)
		if err != nil {
			a.reason = "client_certificate_refused"
			return estResponse{}, err
		}
		a.device = current.DeviceID
		csr, err := e.readCSR(r)
		if err != nil {
			return estResponse{}, err
		}
		if err := checkCSR(current.DeviceID, csr); err != nil {
			a.reason = "csr_rejected"
			return estResponse{}, err
		}
		if err := e.barred(ctx, a, current.DeviceID); err != nil {
			return estResponse{}, err
		}
		res, err := e.issue(ctx, a, current.DeviceID, current.Class, csr, "reenroll:"+current.Serial)
		return res.estResponse, err
	})
	return nil
}

// verifyDeviceCertificate checks a TLS client's certificate chain against
// the CA: it must verify for client authentication now, be a device
// certificate the CA issued, and not be revoked.
func (e *EST) verifyDeviceCertificate(ctx context.Context, peer []*x509.Certificate) (IssuedCertificate, error) {
	chain, err := e.ca.Chain(ctx)
	if err != nil {
		return IssuedCertificate{}, err
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(chain[len(chain)-1])
	for _, c := range chain[:len(chain)-1] {
		inter.AddCert(c)
	}
	if _, err := peer[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: e.ca.now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return IssuedCertificate{}, unauthorized("the client certificate does not verify against this CA: %v", err)
	}
	id, err := DeviceIDFromCertificate(peer[0])
	if err != nil {
		return IssuedCertificate{}, unauthorized("the client certificate is not a device certificate: %v", err)
	}
	st, err := e.ca.status(ctx, peer[0].SerialNumber)
	if apperr.Is(err, apperr.NotFound) {
		return IssuedCertificate{}, unauthorized("the client certificate was not issued by this CA")
	}
	if err != nil {
		return IssuedCertificate{}, err
	}
	if st.Status == StatusRevoked {
		return IssuedCertificate{}, unauthorized("the client certificate %s is revoked", st.Serial)
	}
	if st.Kind != KindDevice || st.DeviceID != id {
		return IssuedCertificate{}, unauthorized("the client certificate is not a device certificate")
	}
	return st, nil
}

// issued is an issuance's answer and certificate.
type issued struct {
	estResponse
	cert *x509.Certificate
}

func (e *EST) issue(ctx context.Context, a *attempt, deviceID, class string, csr *x509.CertificateRequest, credential string) (issued, error) {
	cert, err := e.ca.IssueDevice(ctx, deviceID, class, csr)
	if err != nil {
		a.reason = "issue_failed"
		return issued{}, err
	}
	p7, err := certsOnly(cert)
	if err != nil {
		return issued{}, err
	}
	e.ca.log.Info("device enrolled over EST", "device", deviceID, "op", a.op, "credential", credential, "serial", SerialString(cert.SerialNumber))
	return issued{estResponse{status: http.StatusOK, contentType: "application/pkcs7-mime; smime-type=certs-only", der: p7}, cert}, nil
}

// barred refuses a device the inventory bars from enrolment.
func (e *EST) barred(ctx context.Context, a *attempt, deviceID string) error {
	dev, _, err := e.device(ctx, deviceID)
	if err != nil {
		return err
	}
	if dev.Barred != "" {
		a.reason = "device_barred"
		return apperr.Errorf(apperr.Forbidden, "device %s may not enrol: %s", deviceID, dev.Barred)
	}
	return nil
}

// device asks the inventory about a device; known is false for a device
// it does not know (or cannot name).
func (e *EST) device(ctx context.Context, id string) (dev EnrollingDevice, known bool, err error) {
	if e.opts.Devices == nil {
		return EnrollingDevice{}, false, nil
	}
	dev, err = e.opts.Devices.EnrollingDevice(ctx, id)
	switch {
	case err == nil:
		return dev, true, nil
	case apperr.Is(err, apperr.NotFound), apperr.Is(err, apperr.Invalid):
		return EnrollingDevice{}, false, nil
	}
	return EnrollingDevice{}, false, fmt.Errorf("look up device %s in the inventory: %w", id, err)
}

// readCSR reads and parses the request body.
func (e *EST) readCSR(r *http.Request) (*x509.CertificateRequest, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, e.opts.MaxBody+1))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) || int64(len(body)) > e.opts.MaxBody {
		return nil, apperr.Errorf(apperr.TooLarge, "the request body is larger than %d bytes", e.opts.MaxBody)
	}
	if err != nil {
		return nil, apperr.Errorf(apperr.Invalid, "reading the request body: %v", err)
	}
	return ParseESTCSR(body)
}

// ParseESTCSR parses an EST enrolment body: a base64 DER PKCS#10 request
// (RFC 7030 §4.2.1), line breaks and other white space allowed, padding
// optional; or, for robustness, a PEM "CERTIFICATE REQUEST". It checks
// the encoding only: checkCSR judges the request. Returns Invalid naming
// "body" or "csr".
func ParseESTCSR(body []byte) (*x509.CertificateRequest, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, apperr.InvalidField("body", "is empty; send a base64 DER PKCS#10 certificate request")
	}
	var der []byte
	if bytes.HasPrefix(body, []byte("-----BEGIN")) {
		block, _ := pem.Decode(body)
		if block == nil || (block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST") {
			return nil, apperr.InvalidField("body", "is PEM but not a CERTIFICATE REQUEST block")
		}
		der = block.Bytes
	} else {
		compact := bytes.Map(func(c rune) rune {
			if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
				return -1
			}
			return c
		}, body)
		compact = bytes.TrimRight(compact, "=")
		der = make([]byte, base64.RawStdEncoding.DecodedLen(len(compact)))
		n, err := base64.RawStdEncoding.Decode(der, compact)
		if err != nil {
			return nil, apperr.InvalidField("body", "is not base64 (%v); send the DER certificate request base64-encoded", err)
		}
		der = der[:n]
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, apperr.InvalidField("csr", "is not a DER PKCS#10 certificate request: %v", err)
	}
	return csr, nil
}

// serve runs one EST operation: the rate limit, the operation, and the
// answer. Refusals of enrolments are logged and recorded in the ledger.
func (e *EST) serve(w http.ResponseWriter, r *http.Request, op string, fn func(ctx context.Context, a *attempt) (estResponse, error)) {
	remote := remoteIP(r)
	if ok, wait := e.limit.allow(remote); !ok {
		// Not recorded in the ledger: a flood would otherwise be written
		// to it at the flood's rate.
		secs := int(math.Ceil(wait.Seconds()))
		e.ca.log.Warn("est request rate limited", "op", op, "remote", remote, "retry_after", secs)
		e.count(op, "rate_limited")
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		writeESTError(w, http.StatusTooManyRequests, fmt.Sprintf("too many requests from %s; retry in %d seconds", remote, secs))
		return
	}
	a := &attempt{op: op}
	res, err := fn(r.Context(), a)
	if err != nil {
		e.count(op, "refused")
		e.refuse(w, r, a, err)
		return
	}
	switch {
	case res.status == http.StatusAccepted:
		e.count(op, "pending")
	case op == "simpleenroll" || op == "simplereenroll":
		e.count(op, "issued")
	default:
		e.count(op, "served")
	}
	if res.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(res.retryAfter.Seconds()))))
	}
	if res.der == nil {
		w.WriteHeader(res.status)
		return
	}
	w.Header().Set("Content-Type", res.contentType)
	w.Header().Set("Content-Transfer-Encoding", "base64")
	w.WriteHeader(res.status)
	_, _ = w.Write(base64Lines(res.der))
}

// estStatus maps application error codes to HTTP statuses for EST.
var estStatus = map[apperr.Code]int{
	apperr.Invalid:      http.StatusBadRequest,
	apperr.Unauthorized: http.StatusUnauthorized,
	apperr.Forbidden:    http.StatusForbidden,
	apperr.NotFound:     http.StatusNotFound,
	apperr.Conflict:     http.StatusConflict,
	apperr.TooLarge:     http.StatusRequestEntityTooLarge,
	apperr.RateLimited:  http.StatusTooManyRequests,
	apperr.Unavailable:  http.StatusServiceUnavailable,
}

// refuse answers a failed operation in plain text and, for enrolments,
// records the refusal. Internal errors are logged and shown only as such.
func (e *EST) refuse(w http.ResponseWriter, r *http.Request, a *attempt, err error) {
	ae := apperr.As(err)
	status, ok := estStatus[apperr.CodeOf(err)]
	if ae == nil || !ok {
		e.ca.log.Error("est request failed", "op", a.op, "device", a.device, "remote", remoteIP(r), "err", err)
		writeESTError(w, http.StatusInternalServerError, "internal error; the operator can find details in the server log")
		return
	}
	msg := ae.Message
	if ae.Field != "" {
		msg = ae.Field + ": " + msg
	}
	if a.op == "simpleenroll" || a.op == "simplereenroll" {
		reason := a.reason
		if reason == "" {
			reason = string(ae.Code)
		}
		e.recordRefusal(r.Context(), a, reason, msg, remoteIP(r))
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="fleetward EST", charset="UTF-8"`)
	}
	writeESTError(w, status, msg)
}

func (e *EST) recordRefusal(ctx context.Context, a *attempt, reason, msg, remote string) {
	subject := a.device
	if subject == "" {
		subject = "unknown"
	}
	e.ca.log.Warn("est enrolment refused", "op", a.op, "device", a.device, "remote", remote, "reason", reason, "detail", msg)
	// Recorded even if the client has gone: a refusal must not be lost.
	ctx = context.WithoutCancel(ctx)
	err := e.ca.db.InTx(ctx, func(tx *store.Tx) error {
		return e.ca.record(ctx, tx, EventEnrollmentRefused, subject, map[string]any{
			"device": a.device, "path": ESTPathPrefix + a.op, "reason": reason, "detail": msg, "remote": remote,
		})
	})
	if err != nil {
		e.ca.log.Error("record est refusal", "device", a.device, "err", err)
	}
}

func writeESTError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Del("Content-Transfer-Encoding")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
}

func unauthorized(format string, args ...any) error {
	return apperr.Errorf(apperr.Unauthorized, format, args...)
}

// remoteIP is the peer's address without the port, as api.RemoteAddr.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// certsOnly is a degenerate PKCS#7 SignedData holding certs (RFC 7030
// §4.1.3, §4.2.3).
func certsOnly(certs ...*x509.Certificate) ([]byte, error) {
	var all []byte
	for _, c := range certs {
		all = append(all, c.Raw...)
	}
	p7, err := pkcs7.DegenerateCertificate(all)
	if err != nil {
		return nil, fmt.Errorf("encode PKCS#7 certs-only: %w", err)
	}
	return p7, nil
}

// base64Lines encodes der in base64 lines of 64 characters, ended by LF
// alone: EST clients accept either, and GNU base64 -d refuses CR.
func base64Lines(der []byte) []byte {
	s := base64.StdEncoding.EncodeToString(der)
	var b strings.Builder
	for len(s) > 64 {
		b.WriteString(s[:64])
		b.WriteString("\n")
		s = s[64:]
	}
	b.WriteString(s)
	b.WriteString("\n")
	return []byte(b.String())
}

// The object identifiers of the CSR attributes fleetward asks for.
var (
	oidECPublicKey   = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidPrime256v1    = asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}
	oidECDSAWithSHA2 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
)

// csrAttrs is the DER CsrAttrs (RFC 7030 §4.5.2):
//
//	SEQUENCE {
//	  Attribute { id-ecPublicKey, SET { prime256v1 } },
//	  ecdsa-with-SHA256
//	}
var csrAttrs = func() []byte {
	type attribute struct {
		Type   asn1.ObjectIdentifier
		Values []asn1.ObjectIdentifier `asn1:"set"`
	}
	key, err := asn1.Marshal(attribute{Type: oidECPublicKey, Values: []asn1.ObjectIdentifier{oidPrime256v1}})
	if err != nil {
		panic(err)
	}
	sig, err := asn1.Marshal(oidECDSAWithSHA2)
	if err != nil {
		panic(err)
	}
	der, err := asn1.Marshal([]asn1.RawValue{{FullBytes: key}, {FullBytes: sig}})
	if err != nil {
		panic(err)
	}
	return der
}()
