package auth

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/bus"
	"github.com/fleetward/fleetward/internal/store"
)

// LoginResult is the outcome of a correct password: either a Session (the
// login is done) or a PendingLogin waiting for a second factor. Exactly one
// is set.
type LoginResult struct {
	Session *Session
	Pending *PendingLogin
}

// PendingLogin is a login whose password was right and which waits for a
// TOTP code (or a recovery code) through CompleteLogin. Its ID is a secret
// for the client to send back: random, valid for 5 minutes, and used up by
// the first successful CompleteLogin (or by too many wrong codes).
type PendingLogin struct {
	ID        string    `json:"id"`
	Username  string    `json:"username"`
	ExpiresAt time.Time `json:"expires_at"`
	// NeedsEnrolment says the operator has no authenticator yet: the
	// client shows OTPAuthURL (as QRCodePNG, or Secret for typing in) and
	// CompleteLogin with the first code enrols it.
	NeedsEnrolment bool   `json:"needs_enrolment"`
	OTPAuthURL     string `json:"otpauth_url,omitempty"`
	Secret         string `json:"secret,omitempty"` // base32
	QRCodePNG      []byte `json:"qr_png,omitempty"`
}

const (
	pendingTTL = 5 * time.Minute
	// maxPendingAttempts wrong codes use up a pending login.
	maxPendingAttempts = 5
)

// Reasons for a failed login in security.login_failed events.
const (
	reasonBadPassword = "bad_password"
	reasonUnknownUser = "unknown_user"
	reasonDisabled    = "disabled"
	reasonBadMFA      = "bad_mfa"
	reasonThrottled   = "throttled"
)

// errBadLogin is the one answer to a wrong username, a wrong password and
// a disabled account, so a caller cannot tell them apart.
func errBadLogin() error { return apperr.Errorf(apperr.Unauthorized, "wrong username or password") }

func errPendingGone() error {
	return apperr.Errorf(apperr.Unauthorized, "this login step has expired or was already used; log in again")
}

// Login checks a username and password from remote (the client's address,
// for throttling and the ledger). A correct password gives a Session, or a
// PendingLogin when a second factor is needed (always for an operator with
// an enrolled authenticator; for an administrator without one, a pending
// enrolment unless AdminsWithoutMFAInsecure).
//
// Returns Unauthorized "wrong username or password" for an unknown user, a
// wrong password or a disabled account alike, taking the same time for
// each; RateLimited, with RetryAfter, when the account or the address
// failed too often recently (the password is then not checked).
func (s *Service) Login(ctx context.Context, username, password, remote string) (LoginResult, error) {
	s.maybePrune(ctx)
	name := strings.ToLower(strings.TrimSpace(username))
	at, logRefusal, err := s.beginAttempt(ctx, name, remote)
	if err != nil {
		if apperr.Is(err, apperr.RateLimited) {
			s.loginThrottled(ctx, name, remote, logRefusal)
		}
		return LoginResult{}, err
	}
	o, err := s.loadOperator(ctx, s.db, name, false)
	known := err == nil
	if err != nil && !apperr.Is(err, apperr.NotFound) {
		return LoginResult{}, fmt.Errorf("login %s: %w", clip(name, 40), err)
	}
	hash := s.dummy()
	if known {
		hash = o.passwordHash
	}
	ok, rehash, err := s.verify(ctx, hash, password)
	if ctxErr := ctx.Err(); ctxErr != nil {
		return LoginResult{}, fmt.Errorf("login %s: %w", clip(name, 40), ctxErr)
	}
	if err != nil && known {
		s.log.Error("stored password hash is unreadable; set a new password", "username", name, "err", err)
	}
	reason := ""
	switch {
	case !known:
		reason = reasonUnknownUser
	case !ok:
		reason = reasonBadPassword
	case o.Disabled:
		reason = reasonDisabled
	}
	if reason != "" {
		s.loginFailed(ctx, at, name, remote, reason, known)
		return LoginResult{}, errBadLogin()
	}
	newHash := ""
	if rehash {
		if newHash, err = s.hash(ctx, password); err != nil {
			s.log.Warn("cannot rehash password with current parameters", "username", name, "err", err)
			newHash = ""
		}
	}
	if !o.MFAEnrolled && !(o.Role == RoleAdmin && !s.opts.AdminsWithoutMFAInsecure) {
		sess, err := s.startSession(ctx, o, remote, at, "password", func(tx *store.Tx) error {
			return updatePasswordHash(ctx, tx, o.ID, newHash)
		})
		if err != nil {
			return LoginResult{}, fmt.Errorf("login %s: %w", name, err)
		}
		return LoginResult{Session: &sess}, nil
	}
	p, err := s.startPending(ctx, o, remote, at, newHash)
	if err != nil {
		return LoginResult{}, fmt.Errorf("login %s: %w", name, err)
	}
	return LoginResult{Pending: &p}, nil
}

// updatePasswordHash stores a rehashed password, when there is one.
func updatePasswordHash(ctx context.Context, tx *store.Tx, id int64, hash string) error {
	if hash == "" {
		return nil
	}
	_, err := tx.Exec(ctx, `UPDATE operators SET password_hash = ? WHERE id = ?`, hash, id)
	return err
}

// startPending records a pending second step, generating the TOTP secret
// to enrol when the operator has none.
func (s *Service) startPending(ctx context.Context, o operatorRow, remote string, at *attempt, newHash string) (PendingLogin, error) {
	now := s.now()
	p := PendingLogin{ID: base64.RawURLEncoding.EncodeToString(randomBytes(32)), Username: o.Username, ExpiresAt: now.Add(pendingTTL)}
	sealed := ""
	if !o.MFAEnrolled {
		k, err := s.newTOTP(o.Username)
		if err != nil {
			return PendingLogin{}, err
		}
		p.NeedsEnrolment, p.Secret, p.OTPAuthURL, p.QRCodePNG = true, k.secret, k.url, k.png
		sealed = k.sealed
	}
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		// One pending login per operator: a new login replaces the last.
		if _, err := tx.Exec(ctx, `DELETE FROM login_pending WHERE operator_id = ?`, o.ID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO login_pending (id_hash, operator_id, enrol_sealed, attempts, remote, created_at, expires_at)
			VALUES (?, ?, ?, 0, ?, ?, ?)`, sha256Hex(p.ID), o.ID, sealed, clip(remote, 200), store.Nanos(now), store.Nanos(p.ExpiresAt)); err != nil {
			return err
		}
		if err := updatePasswordHash(ctx, tx, o.ID, newHash); err != nil {
			return err
		}
		return s.forgiveAttempt(ctx, tx, at)
	})
	if err != nil {
		return PendingLogin{}, fmt.Errorf("start second step: %w", err)
	}
	s.log.Info("password accepted, second factor pending", "username", o.Username, "remote", remote, "enrolment", p.NeedsEnrolment)
	return p, nil
}

// mfaMethod is how a second step was passed.
type mfaMethod string

const (
	methodTOTP     mfaMethod = "totp"
	methodRecovery mfaMethod = "recovery_code"
	methodEnrol    mfaMethod = "totp_enrolment"
)

// errCodeRaced is returned inside a transaction when a code that checked
// out was used concurrently (a replayed TOTP step, a spent recovery code).
var errCodeRaced = errors.New("code already used")

// CompleteLogin finishes a pending login with a 6-digit TOTP code or an
// unused recovery code (spaces, dashes and case ignored). When the step
// enrolled an authenticator it also returns the operator's 10 new recovery
// codes, to be shown once. A TOTP code is accepted for its 30-second step
// and the ones either side, and only once.
//
// Returns Unauthorized when the pending login is unknown, expired or used
// up (the message says "expired"), or the code is wrong (which counts as a
// failed login for throttling; after 5 wrong codes the pending login is
// used up); RateLimited, with RetryAfter, when the account or the address
// failed too often recently.
func (s *Service) CompleteLogin(ctx context.Context, pendingID, code, remote string) (Session, []string, error) {
	if pendingID == "" || len(pendingID) > 128 {
		return Session{}, nil, errPendingGone()
	}
	idHash := sha256Hex(pendingID)
	var operatorID int64
	var enrolSealed string
	var attempts int
	var expires int64
	err := s.db.QueryRow(ctx, `SELECT operator_id, enrol_sealed, attempts, expires_at FROM login_pending WHERE id_hash = ?`, idHash).
		Scan(&operatorID, &enrolSealed, &attempts, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, nil, errPendingGone()
	}
	if err != nil {
		return Session{}, nil, fmt.Errorf("complete login: %w", err)
	}
	now := s.now()
	if !now.Before(store.Time(expires)) || attempts >= maxPendingAttempts {
		_, _ = s.db.Exec(ctx, `DELETE FROM login_pending WHERE id_hash = ?`, idHash)
		return Session{}, nil, errPendingGone()
	}
	var username string
	if err := s.db.QueryRow(ctx, `SELECT username FROM operators WHERE id = ?`, operatorID).Scan(&username); err != nil {
		return Session{}, nil, fmt.Errorf("complete login: %w", err)
	}
	o, err := s.loadOperator(ctx, s.db, username, false)
	if err != nil {
		return Session{}, nil, fmt.Errorf("complete login %s: %w", username, err)
	}
	if o.Disabled {
		return Session{}, nil, errPendingGone()
	}
	at, logRefusal, err := s.beginAttempt(ctx, o.Username, remote)
	if err != nil {
		if apperr.Is(err, apperr.RateLimited) {
			s.loginThrottled(ctx, o.Username, remote, logRefusal)
		}
		return Session{}, nil, err
	}

	code = normalizeCode(code)
	enrolling := enrolSealed != ""
	var method mfaMethod
	var step int64
	ok := false
	switch {
	case enrolling, isTOTPCode(code) && o.MFAEnrolled:
		sealed, last := o.totpSealed, o.totpLastStep
		method = methodTOTP
		if enrolling {
			method, sealed, last = methodEnrol, enrolSealed, 0
		}
		secret, err := s.openTOTP(sealed, o.Username)
		if err != nil {
			return Session{}, nil, fmt.Errorf("complete login %s: %w", o.Username, err)
		}
		step, ok = s.checkTOTP(secret, code, last)
	case isRecoveryCode(code) && o.MFAEnrolled:
		method = methodRecovery
		var n int
		if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM operator_recovery_codes WHERE operator_id = ? AND code_hash = ? AND used_at = 0`,
			o.ID, sha256Hex(code)).Scan(&n); err != nil {
			return Session{}, nil, fmt.Errorf("complete login %s: %w", o.Username, err)
		}
		ok = n == 1
	}
	if !ok {
		return Session{}, nil, s.secondStepFailed(ctx, at, o.Username, idHash, remote)
	}

	var codes []string
	var extra []bus.Event
	sess, err := s.startSession(ctx, o, remote, at, method, func(tx *store.Tx) error {
		extra = extra[:0]
		res, err := tx.Exec(ctx, `DELETE FROM login_pending WHERE id_hash = ?`, idHash)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return errPendingGone()
		}
		now := store.Nanos(s.now())
		switch method {
		case methodEnrol:
			if codes, err = s.storeEnrolment(ctx, tx, o.ID, enrolSealed, step); err != nil {
				return err
			}
			extra = append(extra, s.event(ctx, "operator.mfa_enrolled", o.Username, remote, map[string]any{"method": "totp"}))
		case methodTOTP:
			res, err := tx.Exec(ctx, `UPDATE operators SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?`, step, o.ID, step)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n != 1 {
				return errCodeRaced
			}
		case methodRecovery:
			res, err := tx.Exec(ctx, `UPDATE operator_recovery_codes SET used_at = ? WHERE operator_id = ? AND code_hash = ? AND used_at = 0`,
				now, o.ID, sha256Hex(code))
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n != 1 {
				return errCodeRaced
			}
			var left int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM operator_recovery_codes WHERE operator_id = ? AND used_at = 0`, o.ID).Scan(&left); err != nil {
				return err
			}
			extra = append(extra, s.event(ctx, "security.recovery_code_used", o.Username, remote, map[string]any{"codes_left": left}))
		}
		return s.recordTx(ctx, tx, extra...)
	})
	if errors.Is(err, errCodeRaced) {
		return Session{}, nil, s.secondStepFailed(ctx, at, o.Username, idHash, remote)
	}
	if err != nil {
		if apperr.Is(err, apperr.Unauthorized) {
			return Session{}, nil, err
		}
		return Session{}, nil, fmt.Errorf("complete login %s: %w", o.Username, err)
	}
	s.publish(ctx, extra...)
	if method == methodRecovery {
		s.counters.recoveryCodesUsed.Add(1)
		s.log.Warn("recovery code used", "username", o.Username, "remote", remote)
	}
	if method == methodEnrol {
		s.log.Info("TOTP authenticator enrolled", "username", o.Username)
	}
	return sess, codes, nil
}

// secondStepFailed settles a wrong code: a failed attempt for throttling
// and the ledger, and one attempt less for the pending login.
func (s *Service) secondStepFailed(ctx context.Context, at *attempt, username, idHash, remote string) error {
	s.counters.mfaFailed.Add(1)
	s.loginFailed(ctx, at, username, remote, reasonBadMFA, true)
	var attempts int
	err := s.db.QueryRow(ctx, `UPDATE login_pending SET attempts = attempts + 1 WHERE id_hash = ? RETURNING attempts`, idHash).Scan(&attempts)
	if err == nil && attempts >= maxPendingAttempts {
		_, _ = s.db.Exec(ctx, `DELETE FROM login_pending WHERE id_hash = ?`, idHash)
		return apperr.Errorf(apperr.Unauthorized, "wrong code; after %d wrong codes this login step has expired, log in again", maxPendingAttempts)
	}
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		s.log.Warn("cannot count a wrong code", "username", username, "err", err)
	}
	return apperr.Errorf(apperr.Unauthorized, "wrong code")
}

// loginFailed counts, logs and records a failed attempt and settles its
// throttle.
func (s *Service) loginFailed(ctx context.Context, at *attempt, username, remote, reason string, known bool) {
	s.counters.loginsFailed.Add(1)
	subject := loginSubject(username)
	s.log.Warn("login failed", "username", subject, "remote", remote, "reason", reason, "failures", at.failures)
	s.recordSecurity(ctx, s.event(ctx, "security.login_failed", subject, remote, map[string]any{"reason": reason, "failures": at.failures}))
	s.failAttempt(ctx, at, subject, remote, known)
}

// loginThrottled counts a refused attempt and, for the first refusal after
// a failure, logs and records it.
func (s *Service) loginThrottled(ctx context.Context, username, remote string, record bool) {
	s.counters.loginsFailed.Add(1)
	s.counters.loginsThrottled.Add(1)
	if !record {
		return
	}
	subject := loginSubject(username)
	s.log.Warn("login refused by throttling", "username", subject, "remote", remote)
	s.recordSecurity(ctx, s.event(ctx, "security.login_failed", subject, remote, map[string]any{"reason": reasonThrottled}))
}

// loginSubject is the username as events and logs show it. Text that
// cannot be a username is not repeated: people type passwords into the
// username field.
func loginSubject(username string) string {
	if validateUsername(username) == nil {
		return username
	}
	return "(invalid username)"
}
