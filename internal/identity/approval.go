package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/store"
)

// The states of an enrolment request.
const (
	EnrollmentPending  = "pending"
	EnrollmentAccepted = "accepted"
	EnrollmentRejected = "rejected"
	EnrollmentIssued   = "issued"
)

// maxPendingEnrollments bounds the approval queue, so requests without a
// credential cannot fill the database.
const maxPendingEnrollments = 1000

// EnrollmentRequest is a simpleenroll that came without a credential the
// CA accepts, waiting in the approval queue. An operator accepts or rejects
// a pending request; once accepted, the device's next simpleenroll for the
// same device id with the same public key gets its certificate, and the
// request becomes "issued". Nothing else changes a request.
type EnrollmentRequest struct {
	ID       string `json:"id"`
	DeviceID string `json:"device_id"`
	Class    string `json:"class"`
	// KeyFingerprint is the SHA-256 of the CSR's SubjectPublicKeyInfo, hex.
	KeyFingerprint string `json:"key_fingerprint"`
	// Credential says what the device showed: "none", or "idevid:<vendor
	// CA name>" for an IDevID of a device the inventory does not know.
	Credential string    `json:"credential"`
	Remote     string    `json:"remote"`
	Status     string    `json:"status"`
	DecidedBy  string    `json:"decided_by,omitempty"`
	DecidedAt  time.Time `json:"decided_at,omitzero"`
	Serial     string    `json:"serial,omitempty"` // of the issued certificate
	CreatedAt  time.Time `json:"created_at"`
}

const requestColumns = `id, device_id, class, key_fingerprint, credential, remote, status, decided_by, decided_at, serial, created_at`

func scanRequest(row interface{ Scan(...any) error }) (EnrollmentRequest, error) {
	var r EnrollmentRequest
	var decided, created int64
	err := row.Scan(&r.ID, &r.DeviceID, &r.Class, &r.KeyFingerprint, &r.Credential, &r.Remote, &r.Status, &r.DecidedBy, &decided, &r.Serial, &created)
	r.DecidedAt, r.CreatedAt = store.Time(decided), store.Time(created)
	return r, err
}

// keyFingerprint identifies a CSR's public key.
func keyFingerprint(csr *x509.CertificateRequest) string {
	sum := sha256.Sum256(csr.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}

// Enrollments returns the enrolment requests in a state ("" for all),
// oldest first, at most 500. Returns Invalid naming "status" for an unknown
// state.
func (ca *CA) Enrollments(ctx context.Context, status string) ([]EnrollmentRequest, error) {
	q, args := `SELECT `+requestColumns+` FROM identity_enrollment_requests`, []any{}
	switch status {
	case "":
	case EnrollmentPending, EnrollmentAccepted, EnrollmentRejected, EnrollmentIssued:
		q, args = q+` WHERE status = ?`, append(args, status)
	default:
		return nil, apperr.InvalidField("status", "%q is not one of pending, accepted, rejected, issued", status)
	}
	rows, err := ca.db.Query(ctx, q+` ORDER BY created_at, id LIMIT 500`, args...)
	if err != nil {
		return nil, fmt.Errorf("list enrolment requests: %w", err)
	}
	defer rows.Close()
	out := []EnrollmentRequest{}
	for rows.Next() {
		r, err := scanRequest(rows)
		if err != nil {
			return nil, fmt.Errorf("list enrolment requests: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list enrolment requests: %w", err)
	}
	return out, nil
}

// AcceptEnrollment approves a pending enrolment request; the device gets
// its certificate on its next simpleenroll. Returns NotFound for an
// unknown request and Conflict if it is not pending.
func (ca *CA) AcceptEnrollment(ctx context.Context, id string) (EnrollmentRequest, error) {
	return ca.decideEnrollment(ctx, id, EnrollmentAccepted)
}

// RejectEnrollment refuses a pending enrolment request; the device's
// further requests with the same key are refused. Returns NotFound for an
// unknown request and Conflict if it is not pending.
func (ca *CA) RejectEnrollment(ctx context.Context, id string) (EnrollmentRequest, error) {
	return ca.decideEnrollment(ctx, id, EnrollmentRejected)
}

func (ca *CA) decideEnrollment(ctx context.Context, id, status string) (EnrollmentRequest, error) {
	var r EnrollmentRequest
	now := ca.now().UTC()
	err := ca.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		r, err = scanRequest(tx.QueryRow(ctx, `SELECT `+requestColumns+` FROM identity_enrollment_requests WHERE id = ?`+tx.DB().ForUpdate(), id))
		if errors.Is(err, sql.ErrNoRows) {
			return apperr.NotFoundf("enrolment request %q does not exist", id)
		}
		if err != nil {
			return err
		}
		if r.Status != EnrollmentPending {
			return apperr.Errorf(apperr.Conflict, "enrolment request %s is %s, not pending", id, r.Status)
		}
		r.Status, r.DecidedBy, r.DecidedAt = status, actor.From(ctx).Name, now
		if _, err := tx.Exec(ctx, `UPDATE identity_enrollment_requests SET status = ?, decided_by = ?, decided_at = ? WHERE id = ?`,
			r.Status, r.DecidedBy, store.Nanos(now), id); err != nil {
			return err
		}
		return ca.record(ctx, tx, EventEnrollmentDecided, r.DeviceID, map[string]any{"request": id, "device": r.DeviceID, "status": status})
	})
	if err != nil {
		if apperr.As(err) != nil {
			return EnrollmentRequest{}, err
		}
		return EnrollmentRequest{}, fmt.Errorf("%s enrolment request %s: %w", status, id, err)
	}
	ca.log.Info("enrolment request decided", "request", id, "device", r.DeviceID, "status", status)
	return r, nil
}

// queueEnrollment looks up the request for this device and key. It returns
// the request if one exists that is pending, accepted or rejected, or
// files a new pending one and returns it with created set.
func (ca *CA) queueEnrollment(ctx context.Context, deviceID, class, credential, remote string, csr *x509.CertificateRequest) (r EnrollmentRequest, created bool, err error) {
	fp := keyFingerprint(csr)
	now := ca.now().UTC()
	err = ca.db.InTx(ctx, func(tx *store.Tx) error {
		created = false
		var err error
		r, err = scanRequest(tx.QueryRow(ctx, `SELECT `+requestColumns+` FROM identity_enrollment_requests
			WHERE device_id = ? AND key_fingerprint = ? AND status <> ? ORDER BY created_at DESC LIMIT 1`+tx.DB().ForUpdate(), deviceID, fp, EnrollmentIssued))
		if err == nil {
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		var pending int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM identity_enrollment_requests WHERE status = ?`, EnrollmentPending).Scan(&pending); err != nil {
			return err
		}
		if pending >= maxPendingEnrollments {
			return apperr.Errorf(apperr.Unavailable, "the enrolment approval queue is full (%d pending requests); try again later", pending)
		}
		r = EnrollmentRequest{ID: "enr-" + rand.Text()[:16], DeviceID: deviceID, Class: class, KeyFingerprint: fp,
			Credential: credential, Remote: remote, Status: EnrollmentPending, CreatedAt: now}
		if _, err := tx.Exec(ctx, `INSERT INTO identity_enrollment_requests (`+requestColumns+`, csr) VALUES (?, ?, ?, ?, ?, ?, ?, '', 0, '', ?, ?)`,
			r.ID, r.DeviceID, r.Class, r.KeyFingerprint, r.Credential, r.Remote, r.Status, store.Nanos(now), csr.Raw); err != nil {
			return err
		}
		created = true
		return ca.record(ctx, tx, EventEnrollmentRequested, deviceID, map[string]any{
			"request": r.ID, "device": deviceID, "credential": credential, "key_fingerprint": fp,
		})
	})
	if err != nil {
		if apperr.As(err) != nil {
			return EnrollmentRequest{}, false, err
		}
		return EnrollmentRequest{}, false, fmt.Errorf("queue enrolment of %s: %w", deviceID, err)
	}
	return r, created, nil
}

// claimAcceptedEnrollment moves an accepted request to issued, once, so
// two racing requests do not both get a certificate. ok is false if
// another request claimed it first.
func (ca *CA) claimAcceptedEnrollment(ctx context.Context, id string) (bool, error) {
	res, err := ca.db.Exec(ctx, `UPDATE identity_enrollment_requests SET status = ? WHERE id = ? AND status = ?`, EnrollmentIssued, id, EnrollmentAccepted)
	if err != nil {
		return false, fmt.Errorf("claim enrolment request %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// settleEnrollment records the serial of the certificate issued for a
// claimed request, or puts the request back to accepted if issuing failed.
func (ca *CA) settleEnrollment(ctx context.Context, id string, cert *x509.Certificate) {
	var err error
	if cert != nil {
		_, err = ca.db.Exec(ctx, `UPDATE identity_enrollment_requests SET serial = ? WHERE id = ?`, SerialString(cert.SerialNumber), id)
	} else {
		_, err = ca.db.Exec(ctx, `UPDATE identity_enrollment_requests SET status = ? WHERE id = ? AND status = ?`, EnrollmentAccepted, id, EnrollmentIssued)
	}
	if err != nil {
		ca.log.Error("settle enrolment request", "request", id, "err", err)
	}
}
