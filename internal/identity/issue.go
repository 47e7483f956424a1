package identity

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/store"
)

// The kinds of end-entity certificate the CA issues.
const (
	KindDevice = "device"
	KindServer = "server"
)

const maxDeviceIDLen = 128

// ValidateDeviceID checks that id can be a device identity: 1 to 128
// characters of letters, digits, '-', '_', '.' and ':'. Returns Invalid
// naming field.
func ValidateDeviceID(field, id string) error {
	if id == "" {
		return apperr.InvalidField(field, "is required")
	}
	if len(id) > maxDeviceIDLen {
		return apperr.InvalidField(field, "is %d bytes long; at most %d are allowed", len(id), maxDeviceIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return apperr.InvalidField(field, "%q: only letters, digits, '-', '_', '.' and ':' are allowed", id)
		}
	}
	return nil
}

// DeviceURI is the URI SAN that names a device in its certificate.
func DeviceURI(deviceID string) string { return DeviceURIPrefix + deviceID }

// IssueDevice signs a client-authentication certificate for a device from
// its CSR with the active intermediate. The certificate's subject CN is the
// device id and its only URI SAN is urn:fleetward:device:<id>; its
// lifetime comes from the class's policy. The certificate is stored and
// recorded in the ledger in one transaction.
//
// Returns Invalid naming the field for a bad request: "device_id", "class",
// "csr" (missing), "csr.signature", "csr.public_key",
// "csr.subject.common_name", "csr.uris", "csr.dns_names",
// "csr.ip_addresses", "csr.email_addresses". Returns Conflict if the CA is
// not initialized.
func (ca *CA) IssueDevice(ctx context.Context, deviceID, class string, csr *x509.CertificateRequest) (*x509.Certificate, error) {
	if err := ValidateDeviceID("device_id", deviceID); err != nil {
		return nil, err
	}
	if len(class) > 64 {
		return nil, apperr.InvalidField("class", "is %d bytes long; at most 64 are allowed", len(class))
	}
	if err := checkCSR(deviceID, csr); err != nil {
		return nil, err
	}
	now := ca.now().UTC()
	lifetime := ca.ClassPolicyFor(class).Lifetime
	uri, _ := url.Parse(DeviceURI(deviceID))
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: deviceID, Organization: []string{ca.opts.Organization}},
		NotBefore:   now.Add(-clockSkewAllowance),
		NotAfter:    now.Add(lifetime),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		URIs:        []*url.URL{uri},
	}
	return ca.issue(ctx, tmpl, csr.PublicKey, KindDevice, deviceID, class)
}

// checkCSR checks a device's CSR: its signature, key and the identity it
// asks for.
func checkCSR(deviceID string, csr *x509.CertificateRequest) error {
	if csr == nil {
		return apperr.InvalidField("csr", "is required")
	}
	if err := checkPublicKey("csr.public_key", csr.PublicKey); err != nil {
		return err
	}
	if err := csr.CheckSignature(); err != nil {
		return apperr.InvalidField("csr.signature", "does not verify: %v", err)
	}
	if csr.Subject.CommonName != deviceID {
		return apperr.InvalidField("csr.subject.common_name", "is %q; it must be the device id %q", csr.Subject.CommonName, deviceID)
	}
	want := DeviceURI(deviceID)
	for _, u := range csr.URIs {
		if u.String() != want {
			return apperr.InvalidField("csr.uris", "%q is not allowed; only %q", u.String(), want)
		}
	}
	if len(csr.DNSNames) > 0 {
		return apperr.InvalidField("csr.dns_names", "a device certificate carries no DNS names (got %q)", csr.DNSNames)
	}
	if len(csr.IPAddresses) > 0 {
		return apperr.InvalidField("csr.ip_addresses", "a device certificate carries no IP addresses")
	}
	if len(csr.EmailAddresses) > 0 {
		return apperr.InvalidField("csr.email_addresses", "a device certificate carries no email addresses")
	}
	return nil
}

// IssueServer signs a server-authentication certificate for fleetward's own
// HTTPS and MQTT listeners, naming hosts (DNS names or IP addresses; the
// first is also the CN). Returns Invalid naming "hosts" or "public_key".
func (ca *CA) IssueServer(ctx context.Context, hosts []string, pub crypto.PublicKey) (*x509.Certificate, error) {
	if len(hosts) == 0 {
		return nil, apperr.InvalidField("hosts", "at least one host name or address is required")
	}
	if err := checkPublicKey("public_key", pub); err != nil {
		return nil, err
	}
	now := ca.now().UTC()
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: hosts[0], Organization: []string{ca.opts.Organization}},
		NotBefore:   now.Add(-clockSkewAllowance),
		NotAfter:    now.Add(ca.opts.ServerLifetime),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if _, isRSA := pub.(*rsa.PublicKey); isRSA {
		// TLS 1.2 RSA key exchange is off, but some clients still insist.
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			continue
		}
		if h == "" || len(h) > 253 || strings.ContainsAny(h, " /\\@") {
			return nil, apperr.InvalidField("hosts", "%q is not a host name or IP address", h)
		}
		tmpl.DNSNames = append(tmpl.DNSNames, h)
	}
	return ca.issue(ctx, tmpl, pub, KindServer, "", "")
}

// issue signs tmpl with the active intermediate, stores the certificate and
// records it in the ledger.
func (ca *CA) issue(ctx context.Context, tmpl *x509.Certificate, pub crypto.PublicKey, kind, deviceID, class string) (*x509.Certificate, error) {
	cas, err := loadCAs(ctx, ca.db)
	if err != nil {
		return nil, err
	}
	issuer, err := findActive(cas)
	if err != nil {
		return nil, err
	}
	key, err := ca.signerFor(issuer)
	if err != nil {
		return nil, err
	}
	if tmpl.SerialNumber, err = newSerial(); err != nil {
		return nil, err
	}
	if tmpl.NotAfter.After(issuer.Cert.NotAfter) {
		tmpl.NotAfter = issuer.Cert.NotAfter
	}
	if ca.opts.PublicURL != "" {
		base := strings.TrimSuffix(ca.opts.PublicURL, "/")
		tmpl.CRLDistributionPoints = []string{base + "/pki/crl"}
		tmpl.OCSPServer = []string{base + "/pki/ocsp"}
	}
	cert, err := createCert(tmpl, issuer.Cert, pub, key)
	if err != nil {
		return nil, err
	}
	serial := SerialString(cert.SerialNumber)
	subject := deviceID
	if subject == "" {
		subject = serial
	}
	now := ca.now().UTC()
	err = ca.db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO identity_certificates (serial, kind, device_id, class, issuer_serial, not_before, not_after, status, revoked_at, reason, der, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?)`,
			serial, kind, deviceID, class, issuer.Serial, store.Nanos(cert.NotBefore), store.Nanos(cert.NotAfter), StatusValid, cert.Raw, store.Nanos(now)); err != nil {
			return err
		}
		return ca.record(ctx, tx, EventCertificateIssued, subject, map[string]any{
			"serial": serial, "kind": kind, "device": deviceID, "class": class,
			"issuer": issuer.Serial, "not_after": cert.NotAfter.UTC().Format(time.RFC3339),
		})
	})
	if err != nil {
		return nil, fmt.Errorf("issue %s certificate for %s: %w", kind, subject, err)
	}
	ca.log.Info("certificate issued", "kind", kind, "device", deviceID, "serial", serial, "not_after", cert.NotAfter)
	return cert, nil
}

// DeviceIDFromCertificate returns the device id a device certificate
// names: its single urn:fleetward:device: URI SAN, which must agree with
// the subject CN. It does not verify the certificate; the TLS handshake
// does. Returns Invalid naming "certificate" otherwise.
func DeviceIDFromCertificate(cert *x509.Certificate) (string, error) {
	if cert == nil {
		return "", apperr.InvalidField("certificate", "is missing")
	}
	id := ""
	for _, u := range cert.URIs {
		s := u.String()
		if !strings.HasPrefix(s, DeviceURIPrefix) {
			continue
		}
		if id != "" {
			return "", apperr.InvalidField("certificate", "names more than one device")
		}
		id = strings.TrimPrefix(s, DeviceURIPrefix)
	}
	if id == "" {
		return "", apperr.InvalidField("certificate", "is not a fleetward device certificate (no %s URI)", DeviceURIPrefix)
	}
	if err := ValidateDeviceID("certificate", id); err != nil {
		return "", err
	}
	if cert.Subject.CommonName != id {
		return "", apperr.InvalidField("certificate", "subject CN %q does not match device id %q", cert.Subject.CommonName, id)
	}
	return id, nil
}
