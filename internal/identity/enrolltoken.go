package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/store"
)

// The enrolment events the CA records, besides EventCertificateIssued for
// every certificate EST hands out. Subject is the device id (or "unknown"
// when a refused request named none).
const (
	EventEnrollmentTokenCreated = "identity.enrollment_token_created" // Data: {"device", "class", "expires_at"}
	EventEnrollmentTokenUsed    = "identity.enrollment_token_used"    // Data: {"device", "class"}
	EventEnrollmentRefused      = "identity.enrollment_refused"       // Data: {"device", "path", "reason", "remote"}
	EventEnrollmentRequested    = "identity.enrollment_requested"     // Data: {"request", "device", "credential", "key_fingerprint"}
	EventEnrollmentDecided      = "identity.enrollment_decided"       // Data: {"request", "device", "status"}
	EventVendorCARegistered     = "identity.vendor_ca_registered"     // Data: {"id", "name", "subject", "not_after"}
)

// Limits of enrolment tokens.
const (
	DefaultEnrollmentTokenTTL = 24 * time.Hour
	minEnrollmentTokenTTL     = time.Minute
	maxEnrollmentTokenTTL     = 30 * 24 * time.Hour
	enrollmentTokenPrefix     = "fwe_"
)

// EnrollmentToken is a one-time credential that lets one device get its
// first certificate over EST (HTTP Basic: username the device id, password
// the token). The CA keeps only its SHA-256; Token is known only to the
// caller of CreateEnrollmentToken. A token works once, before ExpiresAt,
// and only for DeviceID.
type EnrollmentToken struct {
	Token     string    `json:"token"`
	DeviceID  string    `json:"device_id"`
	Class     string    `json:"class"`
	ExpiresAt time.Time `json:"expires_at"`
}

// CreateEnrollmentToken makes a one-time enrolment token for a device of a
// class, valid for ttl (zero means DefaultEnrollmentTokenTTL; one minute
// to 30 days). Returns Invalid naming "device_id", "class" or "ttl".
func (ca *CA) CreateEnrollmentToken(ctx context.Context, deviceID, class string, ttl time.Duration) (EnrollmentToken, error) {
	if err := ValidateDeviceID("device_id", deviceID); err != nil {
		return EnrollmentToken{}, err
	}
	if len(class) > 64 {
		return EnrollmentToken{}, apperr.InvalidField("class", "is %d bytes long; at most 64 are allowed", len(class))
	}
	if ttl == 0 {
		ttl = DefaultEnrollmentTokenTTL
	}
	if ttl < minEnrollmentTokenTTL || ttl > maxEnrollmentTokenTTL {
		return EnrollmentToken{}, apperr.InvalidField("ttl", "is %s; it must be between %s and %s", ttl, minEnrollmentTokenTTL, maxEnrollmentTokenTTL)
	}
	now := ca.now().UTC()
	tok := EnrollmentToken{Token: enrollmentTokenPrefix + rand.Text(), DeviceID: deviceID, Class: class, ExpiresAt: now.Add(ttl)}
	err := ca.db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO identity_enrollment_tokens (token_hash, device_id, class, expires_at, used_at, created_by, created_at) VALUES (?, ?, ?, ?, 0, ?, ?)`,
			hashToken(tok.Token), deviceID, class, store.Nanos(tok.ExpiresAt), actor.From(ctx).Name, store.Nanos(now)); err != nil {
			return err
		}
		return ca.record(ctx, tx, EventEnrollmentTokenCreated, deviceID, map[string]any{
			"device": deviceID, "class": class, "expires_at": tok.ExpiresAt.Format(time.RFC3339),
		})
	})
	if err != nil {
		return EnrollmentToken{}, fmt.Errorf("create enrolment token for %s: %w", deviceID, err)
	}
	return tok, nil
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Why a token was refused; recorded as the reason of EventEnrollmentRefused.
const (
	refusedTokenUnknown     = "token_unknown"
	refusedTokenReplayed    = "token_replayed"
	refusedTokenExpired     = "token_expired"
	refusedTokenWrongDevice = "token_wrong_device"
)

// tokenError is a refused token: Unauthorized for the caller, with the
// reason recorded in the ledger.
type tokenError struct{ reason, message string }

func (e *tokenError) Error() string { return e.message }

// checkEnrollmentToken finds an unspent, unexpired token for deviceID and
// returns the class it was made for. It does not spend the token.
func (ca *CA) checkEnrollmentToken(ctx context.Context, deviceID, token string) (string, error) {
	var owner, class string
	var expires, used int64
	err := ca.db.QueryRow(ctx, `SELECT device_id, class, expires_at, used_at FROM identity_enrollment_tokens WHERE token_hash = ?`, hashToken(token)).
		Scan(&owner, &class, &expires, &used)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", &tokenError{refusedTokenUnknown, "the enrolment token is not known"}
	case err != nil:
		return "", fmt.Errorf("look up enrolment token: %w", err)
	case owner != deviceID:
		return "", &tokenError{refusedTokenWrongDevice, "the enrolment token was not made for this device"}
	case used != 0:
		return "", &tokenError{refusedTokenReplayed, "the enrolment token has been used already"}
	case !ca.now().Before(store.Time(expires)):
		return "", &tokenError{refusedTokenExpired, "the enrolment token has expired"}
	}
	return class, nil
}

// spendEnrollmentToken marks a token used, once: of two requests racing
// with the same token, one gets a tokenError.
func (ca *CA) spendEnrollmentToken(ctx context.Context, deviceID, token, class string) error {
	now := ca.now().UTC()
	return ca.db.InTx(ctx, func(tx *store.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE identity_enrollment_tokens SET used_at = ? WHERE token_hash = ? AND device_id = ? AND used_at = 0 AND expires_at > ?`,
			store.Nanos(now), hashToken(token), deviceID, store.Nanos(now))
		if err != nil {
			return fmt.Errorf("spend enrolment token of %s: %w", deviceID, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("spend enrolment token of %s: %w", deviceID, err)
		} else if n != 1 {
			return &tokenError{refusedTokenReplayed, "the enrolment token has been used already"}
		}
		return ca.record(ctx, tx, EventEnrollmentTokenUsed, deviceID, map[string]any{"device": deviceID, "class": class})
	})
}
