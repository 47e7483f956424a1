package identity

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/store"
)

// The status of an issued certificate, as stored. An expired certificate
// keeps its status; IssuedCertificate.Expired tells.
const (
	StatusValid   = "valid"
	StatusRevoked = "revoked"
)

// Reason is an RFC 5280 CRL reason code.
type Reason int

// The revocation reasons fleetward uses.
const (
	ReasonUnspecified          Reason = 0
	ReasonKeyCompromise        Reason = 1
	ReasonAffiliationChanged   Reason = 3
	ReasonSuperseded           Reason = 4
	ReasonCessationOfOperation Reason = 5
	ReasonCertificateHold      Reason = 6
	ReasonPrivilegeWithdrawn   Reason = 9
)

// Validate reports whether r is an RFC 5280 reason code fleetward accepts
// (removeFromCRL and aACompromise are not). Returns Invalid naming "reason".
func (r Reason) Validate() error {
	switch r {
	case ReasonUnspecified, ReasonKeyCompromise, 2, ReasonAffiliationChanged, ReasonSuperseded,
		ReasonCessationOfOperation, ReasonCertificateHold, ReasonPrivilegeWithdrawn:
		return nil
	}
	return apperr.InvalidField("reason", "%d is not an accepted RFC 5280 reason code", int(r))
}

// IssuedCertificate is what the CA remembers about a certificate it issued.
// Only Revoke changes it.
type IssuedCertificate struct {
	Serial    string    `json:"serial"`
	Kind      string    `json:"kind"` // "device" or "server"
	DeviceID  string    `json:"device_id,omitempty"`
	Class     string    `json:"class,omitempty"`
	Issuer    string    `json:"issuer"` // the intermediate's serial
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	Status    string    `json:"status"` // "valid" or "revoked"
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	Reason    Reason    `json:"reason,omitempty"`
	DER       []byte    `json:"-"`
}

// Expired reports whether the certificate is past its NotAfter at now.
func (c IssuedCertificate) Expired(now time.Time) bool { return now.After(c.NotAfter) }

const certColumns = `serial, kind, device_id, class, issuer_serial, not_before, not_after, status, revoked_at, reason, der`

func scanCert(row interface{ Scan(...any) error }) (IssuedCertificate, error) {
	var c IssuedCertificate
	var nb, na, ra, reason int64
	err := row.Scan(&c.Serial, &c.Kind, &c.DeviceID, &c.Class, &c.Issuer, &nb, &na, &c.Status, &ra, &reason, &c.DER)
	c.NotBefore, c.NotAfter, c.RevokedAt, c.Reason = store.Time(nb), store.Time(na), store.Time(ra), Reason(reason)
	return c, err
}

// Revoke revokes a certificate the CA issued. Revoking a revoked
// certificate again changes nothing. The next CRL and every OCSP answer
// from then on list it. Returns Invalid for a malformed serial or reason,
// NotFound for a serial the CA did not issue.
func (ca *CA) Revoke(ctx context.Context, serial string, reason Reason) error {
	n, err := ParseSerial(serial)
	if err != nil {
		return err
	}
	if err := reason.Validate(); err != nil {
		return err
	}
	s := SerialString(n)
	var c IssuedCertificate
	changed := false
	now := ca.now().UTC()
	err = ca.db.InTx(ctx, func(tx *store.Tx) error {
		changed = false
		var err error
		c, err = scanCert(tx.QueryRow(ctx, `SELECT `+certColumns+` FROM identity_certificates WHERE serial = ?`+tx.DB().ForUpdate(), s))
		if errors.Is(err, sql.ErrNoRows) {
			return apperr.NotFoundf("certificate %s was not issued by this CA", s)
		}
		if err != nil {
			return err
		}
		if c.Status == StatusRevoked {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE identity_certificates SET status = ?, revoked_at = ?, reason = ? WHERE serial = ?`,
			StatusRevoked, store.Nanos(now), int(reason), s); err != nil {
			return err
		}
		changed = true
		subject := c.DeviceID
		if subject == "" {
			subject = s
		}
		return ca.record(ctx, tx, EventCertificateRevoked, subject, map[string]any{"serial": s, "device": c.DeviceID, "reason": int(reason)})
	})
	if err != nil {
		if apperr.As(err) != nil {
			return err
		}
		return fmt.Errorf("revoke certificate %s: %w", s, err)
	}
	if changed {
		ca.mu.Lock()
		delete(ca.crls, c.Issuer)
		ca.mu.Unlock()
		ca.log.Info("certificate revoked", "serial", s, "device", c.DeviceID, "reason", int(reason))
		if ca.opts.OnRevoke != nil {
			c.Status, c.Reason = StatusRevoked, reason
			ca.opts.OnRevoke(c)
		}
	}
	return nil
}

// Status returns what the CA knows about a certificate. Returns Invalid for
// a malformed serial, NotFound for one it did not issue.
func (ca *CA) Status(ctx context.Context, serial string) (IssuedCertificate, error) {
	n, err := ParseSerial(serial)
	if err != nil {
		return IssuedCertificate{}, err
	}
	return ca.status(ctx, n)
}

func (ca *CA) status(ctx context.Context, n *big.Int) (IssuedCertificate, error) {
	s := SerialString(n)
	c, err := scanCert(ca.db.QueryRow(ctx, `SELECT `+certColumns+` FROM identity_certificates WHERE serial = ?`, s))
	if errors.Is(err, sql.ErrNoRows) {
		return IssuedCertificate{}, apperr.NotFoundf("certificate %s was not issued by this CA", s)
	}
	if err != nil {
		return IssuedCertificate{}, fmt.Errorf("certificate %s: %w", s, err)
	}
	return c, nil
}

// DeviceCertificates returns every certificate issued to a device, newest
// first; none is not an error. Returns Invalid for a malformed device id.
func (ca *CA) DeviceCertificates(ctx context.Context, deviceID string) ([]IssuedCertificate, error) {
	if err := ValidateDeviceID("device_id", deviceID); err != nil {
		return nil, err
	}
	rows, err := ca.db.Query(ctx, `SELECT `+certColumns+` FROM identity_certificates WHERE device_id = ? AND kind = ? ORDER BY not_before DESC, serial`, deviceID, KindDevice)
	if err != nil {
		return nil, fmt.Errorf("certificates of device %s: %w", deviceID, err)
	}
	defer rows.Close()
	var out []IssuedCertificate
	for rows.Next() {
		c, err := scanCert(rows)
		if err != nil {
			return nil, fmt.Errorf("certificates of device %s: %w", deviceID, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("certificates of device %s: %w", deviceID, err)
	}
	return out, nil
}

// cachedCRL is a signed CRL and what it was made from.
type cachedCRL struct {
	der         []byte
	revoked     int64 // number of revoked certificates listed
	lastRevoked int64 // newest revocation time, nanos
	nextUpdate  time.Time
}

// CRL returns the DER CRL of the active intermediate, signed by it, valid
// for 24 hours (nextUpdate), with a CRL number that grows with every CRL
// made. It is cached, and made anew after a revocation (by any server
// sharing the database) or when half its validity has passed. Returns
// Conflict if the CA is not initialized.
func (ca *CA) CRL(ctx context.Context) ([]byte, error) {
	cas, err := loadCAs(ctx, ca.db)
	if err != nil {
		return nil, err
	}
	active, err := findActive(cas)
	if err != nil {
		return nil, err
	}
	return ca.crlFor(ctx, active)
}

// CRLForIssuer returns the CRL for the certificates issued by one of the
// CA's intermediates, the active one or an older one. Returns NotFound if
// issuer is not one of them.
func (ca *CA) CRLForIssuer(ctx context.Context, issuer *x509.Certificate) ([]byte, error) {
	cas, err := loadCAs(ctx, ca.db)
	if err != nil {
		return nil, err
	}
	for _, c := range cas {
		if c.Kind == kindIntermediate && issuer != nil && bytes.Equal(c.Cert.Raw, issuer.Raw) {
			return ca.crlFor(ctx, c)
		}
	}
	return nil, apperr.NotFoundf("the certificate is not one of this CA's intermediates")
}

func (ca *CA) crlFor(ctx context.Context, issuer caCert) ([]byte, error) {
	var count, last int64
	if err := ca.db.QueryRow(ctx, `SELECT COUNT(*), COALESCE(MAX(revoked_at), 0) FROM identity_certificates WHERE issuer_serial = ? AND status = ?`,
		issuer.Serial, StatusRevoked).Scan(&count, &last); err != nil {
		return nil, fmt.Errorf("CRL of %s: %w", issuer.Serial, err)
	}
	now := ca.now().UTC()
	ca.mu.Lock()
	cached, ok := ca.crls[issuer.Serial]
	ca.mu.Unlock()
	if ok && cached.revoked == count && cached.lastRevoked == last && now.Before(cached.nextUpdate.Add(-crlRefreshBeforeExpiry)) {
		return cached.der, nil
	}
	key, err := ca.signerFor(issuer)
	if err != nil {
		return nil, err
	}
	var der []byte
	err = ca.db.InTx(ctx, func(tx *store.Tx) error {
		var number int64
		if _, err := tx.Exec(ctx, `UPDATE identity_ca_certs SET crl_number = crl_number + 1 WHERE serial = ?`, issuer.Serial); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT crl_number FROM identity_ca_certs WHERE serial = ?`, issuer.Serial).Scan(&number); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT serial, revoked_at, reason FROM identity_certificates WHERE issuer_serial = ? AND status = ? ORDER BY revoked_at, serial`,
			issuer.Serial, StatusRevoked)
		if err != nil {
			return err
		}
		defer rows.Close()
		var entries []x509.RevocationListEntry
		count, last = 0, 0
		for rows.Next() {
			var s string
			var at, reason int64
			if err := rows.Scan(&s, &at, &reason); err != nil {
				return err
			}
			n, ok := new(big.Int).SetString(s, 16)
			if !ok {
				return fmt.Errorf("stored serial %q is not hex", s)
			}
			entries = append(entries, x509.RevocationListEntry{SerialNumber: n, RevocationTime: store.Time(at), ReasonCode: int(reason)})
			count++
			last = max(last, at)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		der, err = x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
			Number:                    big.NewInt(number),
			ThisUpdate:                now,
			NextUpdate:                now.Add(CRLValidity),
			RevokedCertificateEntries: entries,
		}, issuer.Cert, key)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("CRL of %s: %w", issuer.Serial, err)
	}
	ca.mu.Lock()
	ca.crls[issuer.Serial] = cachedCRL{der: der, revoked: count, lastRevoked: last, nextUpdate: now.Add(CRLValidity)}
	ca.mu.Unlock()
	return der, nil
}

// IssuedDeviceCertificates returns every device certificate the CA issued,
// valid and revoked, newest first, for audits.
func (ca *CA) IssuedDeviceCertificates(ctx context.Context) ([]IssuedCertificate, error) {
	rows, err := ca.db.Query(ctx, `SELECT `+certColumns+` FROM identity_certificates WHERE kind = ? ORDER BY not_before DESC, serial`, KindDevice)
	if err != nil {
		return nil, fmt.Errorf("device certificates: %w", err)
	}
	defer rows.Close()
	var out []IssuedCertificate
	for rows.Next() {
		c, err := scanCert(rows)
		if err != nil {
			return nil, fmt.Errorf("device certificates: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
