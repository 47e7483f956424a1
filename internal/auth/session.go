package auth

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/bus"
	"github.com/fleetward/fleetward/internal/store"
)

// Session is an operator's login, made by Login or CompleteLogin. Token is
// its secret, handed to the client once (as a cookie) and stored only as
// a SHA-256 hash. A session ends at Logout, after SessionIdle without use,
// at ExpiresAt however busy, and when its operator is disabled, changes
// password or role, or has MFA reset.
type Session struct {
	// ID identifies the session in logs and the ledger; it is not a
	// credential.
	ID string `json:"id"`
	// Token is the session credential (32 random bytes, base64url). Only
	// the value returned by Login or CompleteLogin carries it.
	Token string `json:"-"`
	// CSRFToken must accompany every state-changing request made with the
	// session cookie.
	CSRFToken  string    `json:"-"`
	OperatorID int64     `json:"operator_id"`
	Username   string    `json:"username"`
	Role       Role      `json:"role"`
	CreatedAt  time.Time `json:"created_at"`
	// ExpiresAt is the session's absolute end (login + SessionAbsolute); a
	// session unused for SessionIdle ends sooner.
	ExpiresAt time.Time `json:"expires_at"`
}

// sessionTokenLen is the length of a 32-byte token in unpadded base64url.
const sessionTokenLen = 43

func errSessionGone() error {
	return apperr.Errorf(apperr.Unauthorized, "not logged in, or the session expired; log in again")
}

// startSession ends a successful login: in one transaction it creates the
// session, runs extra (the second step's own changes), notes the login on
// the operator, forgets the attempt's throttle failures and records
// security.login_succeeded.
func (s *Service) startSession(ctx context.Context, o operatorRow, remote string, at *attempt, method mfaMethod, extra func(tx *store.Tx) error) (Session, error) {
	now := s.now()
	sess := Session{
		ID:         randomHex(8),
		Token:      base64.RawURLEncoding.EncodeToString(randomBytes(32)),
		CSRFToken:  base64.RawURLEncoding.EncodeToString(randomBytes(32)),
		OperatorID: o.ID, Username: o.Username, Role: o.Role,
		CreatedAt: now, ExpiresAt: now.Add(s.opts.SessionAbsolute),
	}
	ev := s.event(ctx, "security.login_succeeded", o.Username, remote, map[string]any{"session": sess.ID, "method": method})
	ev.Actor = "operator:" + o.Username
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		if extra != nil {
			if err := extra(tx); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO operator_sessions (token_hash, id, operator_id, csrf_token, remote, created_at, last_seen_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, sha256Hex(sess.Token), sess.ID, o.ID, sess.CSRFToken, clip(remote, 200),
			store.Nanos(now), store.Nanos(now), store.Nanos(sess.ExpiresAt)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE operators SET last_login_at = ? WHERE id = ?`, store.Nanos(now), o.ID); err != nil {
			return err
		}
		if err := clearAttempt(ctx, tx, at); err != nil {
			return err
		}
		return s.recordTx(ctx, tx, ev)
	})
	if err != nil {
		return Session{}, err
	}
	s.counters.loginsOK.Add(1)
	s.log.Info("login succeeded", "username", o.Username, "remote", remote, "session", sess.ID, "method", method)
	s.publish(ctx, ev)
	return sess, nil
}

// AuthenticateSession returns the operator behind a session token, and
// counts the request as use of the session (sliding its idle window, to
// the minute). Returns Unauthorized when the token is unknown, the session
// was idle for SessionIdle, is past its absolute end, or its operator is
// disabled.
func (s *Service) AuthenticateSession(ctx context.Context, sessionToken, remote string) (Principal, error) {
	if len(sessionToken) != sessionTokenLen {
		return Principal{}, errSessionGone()
	}
	hash := sha256Hex(sessionToken)
	var p Principal
	var lastSeen, expires int64
	var disabled int
	err := s.db.QueryRow(ctx, `SELECT s.id, s.csrf_token, s.last_seen_at, s.expires_at, o.id, o.username, o.role, o.disabled
		FROM operator_sessions s JOIN operators o ON o.id = s.operator_id WHERE s.token_hash = ?`, hash).
		Scan(&p.SessionID, &p.CSRFToken, &lastSeen, &expires, &p.OperatorID, &p.Username, &p.Role, &disabled)
	if errors.Is(err, sql.ErrNoRows) {
		return Principal{}, errSessionGone()
	}
	if err != nil {
		return Principal{}, fmt.Errorf("authenticate session: %w", err)
	}
	now := s.now()
	idleEnd := store.Time(lastSeen).Add(s.opts.SessionIdle)
	end := store.Time(expires)
	if disabled != 0 || !now.Before(idleEnd) || !now.Before(end) {
		if _, err := s.db.Exec(ctx, `DELETE FROM operator_sessions WHERE token_hash = ?`, hash); err != nil {
			s.log.Warn("cannot delete an ended session", "session", p.SessionID, "err", err)
		}
		s.log.Info("session ended", "username", p.Username, "session", p.SessionID, "remote", remote)
		return Principal{}, errSessionGone()
	}
	// Writing on every request would make every read a write; the idle
	// window slides in steps of a minute (or a tenth of it, if shorter).
	if step := min(time.Minute, s.opts.SessionIdle/10); now.Sub(store.Time(lastSeen)) >= step {
		if _, err := s.db.Exec(ctx, `UPDATE operator_sessions SET last_seen_at = ? WHERE token_hash = ? AND last_seen_at < ?`,
			store.Nanos(now), hash, store.Nanos(now)); err != nil {
			return Principal{}, fmt.Errorf("authenticate session: %w", err)
		}
		idleEnd = now.Add(s.opts.SessionIdle)
	}
	p.Kind = KindSession
	p.ExpiresAt = idleEnd
	if end.Before(idleEnd) {
		p.ExpiresAt = end
	}
	return p, nil
}

// Logout ends the session of the token. An unknown or ended session is
// not an error: the caller is logged out either way.
func (s *Service) Logout(ctx context.Context, sessionToken string) error {
	if len(sessionToken) != sessionTokenLen {
		return nil
	}
	hash := sha256Hex(sessionToken)
	var ev bus.Event
	ended := false
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		var id, username string
		err := tx.QueryRow(ctx, `SELECT s.id, o.username FROM operator_sessions s JOIN operators o ON o.id = s.operator_id
			WHERE s.token_hash = ?`, hash).Scan(&id, &username)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM operator_sessions WHERE token_hash = ?`, hash); err != nil {
			return err
		}
		ended = true
		ev = s.event(ctx, "security.logout", username, "", map[string]any{"session": id})
		return s.recordTx(ctx, tx, ev)
	})
	if err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	if ended {
		s.publish(ctx, ev)
		s.log.Info("logged out", "username", ev.Subject, "remote", ev.Remote)
	}
	return nil
}

// endSessions deletes every session of an operator and returns how many
// there were.
func endSessions(ctx context.Context, tx *store.Tx, operatorID int64) (int64, error) {
	res, err := tx.Exec(ctx, `DELETE FROM operator_sessions WHERE operator_id = ?`, operatorID)
	if err != nil {
		return 0, fmt.Errorf("end sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// pruneEvery is how often Login prunes on its own.
const pruneEvery = 5 * time.Minute

// Prune deletes ended sessions, expired pending logins and throttle
// counters nobody needs any more. Login calls it every few minutes, so a
// caller need not; it is exported for maintenance commands.
func (s *Service) Prune(ctx context.Context) error {
	now := s.now()
	stmts := []struct {
		what  string
		query string
		args  []any
	}{
		{"sessions", `DELETE FROM operator_sessions WHERE expires_at <= ? OR last_seen_at <= ?`,
			[]any{store.Nanos(now), store.Nanos(now.Add(-s.opts.SessionIdle))}},
		{"pending logins", `DELETE FROM login_pending WHERE expires_at <= ?`, []any{store.Nanos(now)}},
		{"login throttle", `DELETE FROM login_throttle WHERE last_failure_at <= ? AND locked_until <= ?`,
			[]any{store.Nanos(now.Add(-throttleMemory)), store.Nanos(now)}},
	}
	for _, st := range stmts {
		if _, err := s.db.Exec(ctx, st.query, st.args...); err != nil {
			return fmt.Errorf("prune %s: %w", st.what, err)
		}
	}
	return nil
}

// maybePrune runs Prune when the last run by this Service is pruneEvery
// old.
func (s *Service) maybePrune(ctx context.Context) {
	now := s.now().UnixNano()
	last := s.lastPrune.Load()
	if now-last < int64(pruneEvery) || !s.lastPrune.CompareAndSwap(last, now) {
		return
	}
	if err := s.Prune(ctx); err != nil {
		s.log.Warn("cannot prune ended sessions", "err", err)
	}
}
