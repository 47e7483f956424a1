package identity

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"strings"
	"time"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/store"
)

// VendorCA is a manufacturer's certificate authority registered by an
// administrator. A device that presents, in the TLS handshake of
// simpleenroll, an IDevID certificate (IEEE 802.1AR) chaining to a vendor
// CA may enrol the device id the IDevID names (see IDevIDDeviceID) without
// a token. Registered vendor CAs are never changed.
type VendorCA struct {
	ID        string            `json:"id"` // SHA-256 of the certificate, hex
	Name      string            `json:"name"`
	Subject   string            `json:"subject"`
	NotAfter  time.Time         `json:"not_after"`
	CreatedBy string            `json:"created_by"`
	CreatedAt time.Time         `json:"created_at"`
	Cert      *x509.Certificate `json:"-"`
}

// RegisterVendorCA trusts a manufacturer's CA certificate (PEM) for IDevID
// enrolment. Returns Invalid naming "name" or "certificate" (not one PEM
// CA certificate, or expired) and Conflict if the name or the certificate
// is registered already.
func (ca *CA) RegisterVendorCA(ctx context.Context, name string, pemCert []byte) (VendorCA, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 128 {
		return VendorCA{}, apperr.InvalidField("name", "must be 1 to 128 characters")
	}
	block, rest := pem.Decode(pemCert)
	if block == nil || block.Type != "CERTIFICATE" {
		return VendorCA{}, apperr.InvalidField("certificate", "is not a PEM certificate")
	}
	if len(strings.TrimSpace(string(rest))) > 0 {
		return VendorCA{}, apperr.InvalidField("certificate", "holds more than one PEM block; register each CA on its own")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return VendorCA{}, apperr.InvalidField("certificate", "does not parse: %v", err)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return VendorCA{}, apperr.InvalidField("certificate", "is not a CA certificate (basicConstraints cA is not set)")
	}
	now := ca.now().UTC()
	if now.After(cert.NotAfter) {
		return VendorCA{}, apperr.InvalidField("certificate", "expired on %s", cert.NotAfter.UTC().Format(time.RFC3339))
	}
	sum := sha256.Sum256(cert.Raw)
	v := VendorCA{ID: hex.EncodeToString(sum[:]), Name: name, Subject: cert.Subject.String(), NotAfter: cert.NotAfter.UTC(),
		CreatedBy: actor.From(ctx).Name, CreatedAt: now, Cert: cert}
	err = ca.db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO identity_vendor_cas (id, name, der, not_after, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			v.ID, v.Name, cert.Raw, store.Nanos(v.NotAfter), v.CreatedBy, store.Nanos(now)); err != nil {
			return err
		}
		return ca.record(ctx, tx, EventVendorCARegistered, v.ID, map[string]any{
			"id": v.ID, "name": v.Name, "subject": v.Subject, "not_after": v.NotAfter.Format(time.RFC3339),
		})
	})
	if store.IsUniqueViolation(err) {
		return VendorCA{}, apperr.Errorf(apperr.Conflict, "a vendor CA with the name %q or this certificate is registered already", name)
	}
	if err != nil {
		return VendorCA{}, fmt.Errorf("register vendor CA %q: %w", name, err)
	}
	ca.log.Info("vendor CA registered", "name", name, "subject", v.Subject, "id", v.ID)
	return v, nil
}

// VendorCAs returns the registered vendor CAs by name.
func (ca *CA) VendorCAs(ctx context.Context) ([]VendorCA, error) {
	rows, err := ca.db.Query(ctx, `SELECT id, name, der, not_after, created_by, created_at FROM identity_vendor_cas ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list vendor CAs: %w", err)
	}
	defer rows.Close()
	out := []VendorCA{}
	for rows.Next() {
		var v VendorCA
		var der []byte
		var na, created int64
		if err := rows.Scan(&v.ID, &v.Name, &der, &na, &v.CreatedBy, &created); err != nil {
			return nil, fmt.Errorf("list vendor CAs: %w", err)
		}
		if v.Cert, err = x509.ParseCertificate(der); err != nil {
			return nil, fmt.Errorf("vendor CA %s: %w", v.Name, err)
		}
		v.Subject, v.NotAfter, v.CreatedAt = v.Cert.Subject.String(), store.Time(na), store.Time(created)
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list vendor CAs: %w", err)
	}
	return out, nil
}

// IDevIDDeviceID is the device id an IDevID certificate names: its subject
// serialNumber attribute (where IEEE 802.1AR puts the device's serial), or,
// when that is empty, its subject CN. Returns Invalid naming "certificate"
// when neither is a valid device id.
func IDevIDDeviceID(cert *x509.Certificate) (string, error) {
	id := cert.Subject.SerialNumber
	if id == "" {
		id = cert.Subject.CommonName
	}
	if err := ValidateDeviceID("certificate", id); err != nil {
		return "", err
	}
	return id, nil
}

// verifyIDevID checks a TLS client's certificates against the registered
// vendor CAs and returns the device id the IDevID names and the vendor's
// name. ok is false (with a nil error) when the certificates do not chain
// to any vendor CA.
func (ca *CA) verifyIDevID(ctx context.Context, peer []*x509.Certificate) (deviceID, vendor string, ok bool, err error) {
	if len(peer) == 0 {
		return "", "", false, nil
	}
	vendors, err := ca.VendorCAs(ctx)
	if err != nil || len(vendors) == 0 {
		return "", "", false, err
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, v := range vendors {
		roots.AddCert(v.Cert)
	}
	for _, c := range peer[1:] {
		inter.AddCert(c)
	}
	// IDevIDs often carry no extended key usage, or one for other
	// purposes; the chain to the vendor is what counts.
	chains, err := peer[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: ca.now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return "", "", false, nil
	}
	anchor := chains[0][len(chains[0])-1]
	for _, v := range vendors {
		if v.Cert.Equal(anchor) {
			vendor = v.Name
		}
	}
	id, err := IDevIDDeviceID(peer[0])
	if err != nil {
		return "", vendor, false, err
	}
	return id, vendor, true, nil
}
