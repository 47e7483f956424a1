package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/bus"
	"github.com/fleetward/fleetward/internal/store"
)

// TOTP parameters: RFC 6238 as every authenticator app understands it.
const (
	totpPeriod = 30 // seconds
	totpSkew   = 1  // steps accepted either side of the current one
	totpDigits = otp.DigitsSix
	// recoveryCodeCount codes of recoveryCodeLen characters (50 bits each)
	// are issued at enrolment.
	recoveryCodeCount = 10
	recoveryCodeLen   = 10
	// recoveryAlphabet is Crockford's base32: no I, L, O or U to misread.
	recoveryAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"
)

// Enrollment is a TOTP authenticator enrolled by EnrollTOTP, with
// everything to show its operator once: the secret, its otpauth:// URL and
// QR code, and the recovery codes. None of it can be read back later.
type Enrollment struct {
	Username      string   `json:"username"`
	Secret        string   `json:"secret"` // base32
	OTPAuthURL    string   `json:"otpauth_url"`
	QRCodePNG     []byte   `json:"qr_png"`
	RecoveryCodes []string `json:"recovery_codes"`
}

// totpKey is a fresh TOTP secret in every form needed.
type totpKey struct {
	secret, url, sealed string
	png                 []byte
}

func totpContext(username string) string { return "totp:" + username }

// newTOTP makes a TOTP secret for username, sealed for storage.
func (s *Service) newTOTP(username string) (totpKey, error) {
	if s.sealer == nil {
		return totpKey{}, errors.New("new TOTP secret: no sealer configured to encrypt it")
	}
	k, err := totp.Generate(totp.GenerateOpts{Issuer: s.opts.Issuer, AccountName: username, Period: totpPeriod,
		SecretSize: 20, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return totpKey{}, fmt.Errorf("new TOTP secret: %w", err)
	}
	sealed, err := s.sealer.Seal([]byte(k.Secret()), totpContext(username))
	if err != nil {
		return totpKey{}, fmt.Errorf("seal TOTP secret: %w", err)
	}
	png, err := qrcode.Encode(k.URL(), qrcode.Medium, 256)
	if err != nil {
		return totpKey{}, fmt.Errorf("TOTP QR code: %w", err)
	}
	return totpKey{secret: k.Secret(), url: k.URL(), sealed: sealed, png: png}, nil
}

// openTOTP unseals a stored TOTP secret.
func (s *Service) openTOTP(sealed, username string) (string, error) {
	if s.sealer == nil {
		return "", errors.New("open TOTP secret: no sealer configured")
	}
	if sealed == "" {
		return "", errors.New("open TOTP secret: none stored")
	}
	b, err := s.sealer.Open(sealed, totpContext(username))
	if err != nil {
		return "", fmt.Errorf("open TOTP secret: %w", err)
	}
	return string(b), nil
}

// checkTOTP reports whether code is the TOTP of secret for the current
// step or one either side, and which step it is. Steps at or before
// lastStep are refused: a code works once.
func (s *Service) checkTOTP(secret, code string, lastStep int64) (int64, bool) {
	if !isTOTPCode(code) {
		return 0, false
	}
	now := s.now().Unix() / totpPeriod
	for _, off := range []int64{0, -totpSkew, totpSkew} {
		step := now + off
		if step <= lastStep || step < 0 {
			continue
		}
		want, err := hotp.GenerateCodeCustom(secret, uint64(step), hotp.ValidateOpts{Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return step, true
		}
	}
	return 0, false
}

// normalizeCode drops what people type around a code: spaces, dashes,
// case; and reads the letters Crockford's base32 leaves out as the digits
// they resemble.
func normalizeCode(code string) string {
	if len(code) > 64 {
		return ""
	}
	var b strings.Builder
	for _, r := range strings.ToLower(code) {
		switch r {
		case ' ', '-', '\t':
			continue
		case 'o':
			r = '0'
		case 'i', 'l':
			r = '1'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isTOTPCode(code string) bool {
	if len(code) != totpDigits.Length() {
		return false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}

func isRecoveryCode(code string) bool {
	if len(code) != recoveryCodeLen {
		return false
	}
	for i := 0; i < len(code); i++ {
		if strings.IndexByte(recoveryAlphabet, code[i]) < 0 {
			return false
		}
	}
	return true
}

// newRecoveryCodes returns recoveryCodeCount random codes.
func newRecoveryCodes() []string {
	codes := make([]string, recoveryCodeCount)
	for i := range codes {
		b := randomBytes(recoveryCodeLen)
		for j := range b {
			b[j] = recoveryAlphabet[b[j]&31] // 256 is a multiple of 32: uniform
		}
		codes[i] = string(b)
	}
	return codes
}

// storeEnrolment makes an operator's sealed secret the enrolled one, with
// step as its last used step, and replaces its recovery codes. It returns
// the new codes.
func (s *Service) storeEnrolment(ctx context.Context, tx *store.Tx, operatorID int64, sealed string, step int64) ([]string, error) {
	now := store.Nanos(s.now())
	if _, err := tx.Exec(ctx, `UPDATE operators SET totp_sealed = ?, totp_last_step = ?, mfa_enrolled = 1, updated_at = ? WHERE id = ?`,
		sealed, step, now, operatorID); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM operator_recovery_codes WHERE operator_id = ?`, operatorID); err != nil {
		return nil, err
	}
	codes := newRecoveryCodes()
	for _, c := range codes {
		if _, err := tx.Exec(ctx, `INSERT INTO operator_recovery_codes (operator_id, code_hash, used_at) VALUES (?, ?, 0)`,
			operatorID, sha256Hex(c)); err != nil {
			return nil, err
		}
	}
	return codes, nil
}

// EnrollTOTP enrols a TOTP authenticator for an operator directly, without
// a login: for the CLI and the demo, which show the result to the person
// at the console. The returned Enrollment is the only copy of the secret
// and the recovery codes. Returns NotFound when the operator does not
// exist, Conflict when one is already enrolled (ResetMFA first).
func (s *Service) EnrollTOTP(ctx context.Context, username string) (Enrollment, error) {
	if _, err := s.GetOperator(ctx, username); err != nil {
		return Enrollment{}, err
	}
	k, err := s.newTOTP(username)
	if err != nil {
		return Enrollment{}, fmt.Errorf("enrol TOTP for %s: %w", username, err)
	}
	var codes []string
	ev := s.event(ctx, "operator.mfa_enrolled", username, "", map[string]any{"method": "totp"})
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		o, err := s.loadOperator(ctx, tx, username, true)
		if err != nil {
			return err
		}
		if o.MFAEnrolled {
			return apperr.Errorf(apperr.Conflict, "operator %q already has an authenticator; reset it first", username)
		}
		if codes, err = s.storeEnrolment(ctx, tx, o.ID, k.sealed, 0); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM login_pending WHERE operator_id = ?`, o.ID); err != nil {
			return err
		}
		return s.recordTx(ctx, tx, ev)
	})
	if err != nil {
		return Enrollment{}, fmt.Errorf("enrol TOTP for %s: %w", username, err)
	}
	s.publish(ctx, ev)
	s.log.Info("TOTP authenticator enrolled", "username", username)
	return Enrollment{Username: username, Secret: k.secret, OTPAuthURL: k.url, QRCodePNG: k.png, RecoveryCodes: codes}, nil
}

// ResetMFA removes an operator's authenticator and recovery codes and ends
// the operator's sessions: for an operator who lost the authenticator. The
// next login enrols a new one (always for an administrator; for others,
// logins then need the password only). Returns NotFound when the operator
// does not exist.
func (s *Service) ResetMFA(ctx context.Context, username string) error {
	var ev bus.Event
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		o, err := s.loadOperator(ctx, tx, username, true)
		if err != nil {
			return err
		}
		now := store.Nanos(s.now())
		if _, err := tx.Exec(ctx, `UPDATE operators SET totp_sealed = '', totp_last_step = 0, mfa_enrolled = 0, updated_at = ? WHERE id = ?`,
			now, o.ID); err != nil {
			return err
		}
		for _, q := range []string{`DELETE FROM operator_recovery_codes WHERE operator_id = ?`, `DELETE FROM login_pending WHERE operator_id = ?`} {
			if _, err := tx.Exec(ctx, q, o.ID); err != nil {
				return err
			}
		}
		n, err := endSessions(ctx, tx, o.ID)
		if err != nil {
			return err
		}
		ev = s.event(ctx, "operator.mfa_reset", username, "", map[string]any{"was_enrolled": o.MFAEnrolled, "sessions_ended": n})
		return s.recordTx(ctx, tx, ev)
	})
	if err != nil {
		return fmt.Errorf("reset MFA of %s: %w", username, err)
	}
	s.publish(ctx, ev)
	s.log.Info("operator MFA reset", "username", username)
	return nil
}
