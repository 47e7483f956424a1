package auth

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"time"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/store"
)

// Login throttling. Failures are counted per account and per remote
// address in the login_throttle table, so every server node sharing the
// database enforces the same delays. The first throttleFree failures are
// free; after them each attempt must wait throttleBase·2^(n-throttleFree)
// (capped at throttleMax) since the last failure, and lockoutFailures
// consecutive failures of one account lock it for lockoutDuration.
//
// An attempt is counted as a failure when it starts and forgiven when it
// succeeds. Counting it only after the password was checked would let a
// burst of parallel guesses all pass the check before the first was
// counted.
const (
	throttleFree    = 3
	throttleBase    = time.Second
	throttleMax     = 15 * time.Minute
	lockoutFailures = 10
	lockoutDuration = 15 * time.Minute
	// throttleMemory is how long failures are remembered after the last
	// one, while no lock is in force.
	throttleMemory = 24 * time.Hour
)

// throttleDelay is how long after its last failure a key with n failures
// must wait before its next attempt.
func throttleDelay(n int64) time.Duration {
	if n < throttleFree {
		return 0
	}
	shift := n - throttleFree
	if shift > 20 {
		return throttleMax
	}
	return min(throttleBase<<shift, throttleMax)
}

// throttleState is one row of login_throttle.
type throttleState struct {
	failures    int64
	lastFailure time.Time
	lockedUntil time.Time
}

// current forgets failures older than throttleMemory once no lock holds.
func (st throttleState) current(now time.Time) throttleState {
	if now.Sub(st.lastFailure) > throttleMemory && !now.Before(st.lockedUntil) {
		return throttleState{}
	}
	return st
}

// wait is how long an attempt at now must still wait; 0 lets it through.
func (st throttleState) wait(now time.Time) time.Duration {
	var w time.Duration
	if now.Before(st.lockedUntil) {
		w = st.lockedUntil.Sub(now)
	}
	if d := throttleDelay(st.failures); d > 0 {
		w = max(w, st.lastFailure.Add(d).Sub(now))
	}
	return max(w, 0)
}

// attempt is one login attempt in progress, already counted as a failure
// under its keys.
type attempt struct {
	account  string // throttle key of the account
	address  string // throttle key of the remote address, or ""
	failures int64  // the account's failures, this attempt included
	at       time.Time
	// prevLast holds each key's last failure before this attempt, so
	// forgiving the attempt restores it.
	prevLast []time.Time
}

func (a *attempt) keys() []string {
	if a.address == "" {
		return []string{a.account}
	}
	return []string{a.account, a.address}
}

// accountKey is the throttle key of a username. Names that cannot be
// usernames are hashed, so junk input makes a short key.
func accountKey(username string) string {
	if validateUsername(username) == nil {
		return "account:" + username
	}
	return "account#" + sha256Hex(username)[:32]
}

// addressKey is the throttle key of a remote address: the IP without its
// port; for IPv6 the /64 network, since one host is usually given a whole
// /64 to pick addresses from. An empty remote (the CLI) has no key.
func addressKey(remote string) string {
	if remote == "" {
		return ""
	}
	host := remote
	if h, _, err := net.SplitHostPort(remote); err == nil {
		host = h
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return "addr#" + sha256Hex(remote)[:32]
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		if p, err := addr.Prefix(64); err == nil {
			return "addr:" + p.String()
		}
	}
	return "addr:" + addr.String()
}

// errRefused rolls back the counting transaction of a refused attempt.
var errRefused = errors.New("attempt refused")

// rateLimited is the error of a refused attempt. It is the same for every
// key, so it tells nothing about whether the account exists.
func rateLimited(wait time.Duration) *apperr.Error {
	secs := int(math.Ceil(wait.Seconds()))
	secs = max(secs, 1)
	return &apperr.Error{Code: apperr.RateLimited, RetryAfter: secs,
		Message: fmt.Sprintf("too many failed login attempts; try again in %d seconds", secs)}
}

// beginAttempt checks the throttle of username and remote and, when the
// attempt may go ahead, counts it as a failure. A refused attempt gets a
// RateLimited error and changes no counter; logRefusal then says whether
// it is the first refusal since the last failure (the one worth recording
// in the ledger, so a flood of refused attempts does not flood it).
func (s *Service) beginAttempt(ctx context.Context, username, remote string) (at *attempt, logRefusal bool, err error) {
	now := s.now()
	at = &attempt{account: accountKey(username), address: addressKey(remote), at: now}
	var wait time.Duration
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		wait, logRefusal, at.prevLast = 0, false, at.prevLast[:0]
		states := make([]throttleState, 0, 2)
		for _, k := range at.keys() {
			st, err := s.lockThrottle(ctx, tx, k)
			if err != nil {
				return err
			}
			st = st.current(now)
			wait = max(wait, st.wait(now))
			states = append(states, st)
			at.prevLast = append(at.prevLast, st.lastFailure)
		}
		if wait > 0 {
			return errRefused
		}
		for i, k := range at.keys() {
			n := states[i].failures + 1
			if i == 0 {
				at.failures = n
			}
			if _, err := tx.Exec(ctx, `UPDATE login_throttle SET failures = ?, last_failure_at = ? WHERE throttle_key = ?`,
				n, store.Nanos(now), k); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, errRefused) {
		// Note the refusal, once per failure and key, outside the rolled
		// back transaction.
		for _, k := range at.keys() {
			res, err := s.db.Exec(ctx, `UPDATE login_throttle SET refusal_logged_at = ? WHERE throttle_key = ? AND refusal_logged_at < last_failure_at`,
				store.Nanos(now), k)
			if err != nil {
				s.log.Warn("cannot note a throttled login", "err", err)
				continue
			}
			if n, _ := res.RowsAffected(); n > 0 {
				logRefusal = true
			}
		}
		return nil, logRefusal, rateLimited(wait)
	}
	if err != nil {
		return nil, false, fmt.Errorf("check login throttle: %w", err)
	}
	return at, false, nil
}

// lockThrottle reads a key's row, creating it, and locks it for the
// transaction.
func (s *Service) lockThrottle(ctx context.Context, tx *store.Tx, key string) (throttleState, error) {
	if _, err := tx.Exec(ctx, `INSERT INTO login_throttle (throttle_key, failures, last_failure_at, locked_until, refusal_logged_at)
		VALUES (?, 0, 0, 0, 0) ON CONFLICT (throttle_key) DO NOTHING`, key); err != nil {
		return throttleState{}, err
	}
	var st throttleState
	var last, locked int64
	if err := tx.QueryRow(ctx, `SELECT failures, last_failure_at, locked_until FROM login_throttle WHERE throttle_key = ?`+s.db.ForUpdate(),
		key).Scan(&st.failures, &last, &locked); err != nil {
		return throttleState{}, err
	}
	st.lastFailure, st.lockedUntil = store.Time(last), store.Time(locked)
	return st, nil
}

// forgiveAttempt takes back the failure counted for an attempt whose
// password was right but whose second step is still to come, restoring the
// time of the last real failure unless another failure came since.
func (s *Service) forgiveAttempt(ctx context.Context, q store.Querier, at *attempt) error {
	for i, k := range at.keys() {
		if _, err := q.Exec(ctx, `UPDATE login_throttle SET failures = failures - 1,
			last_failure_at = CASE WHEN last_failure_at = ? THEN ? ELSE last_failure_at END
			WHERE throttle_key = ? AND failures > 0`, store.Nanos(at.at), store.Nanos(at.prevLast[i]), k); err != nil {
			return fmt.Errorf("update login throttle: %w", err)
		}
	}
	return nil
}

// clearAttempt forgets the failures of both keys after a successful login.
func clearAttempt(ctx context.Context, tx *store.Tx, at *attempt) error {
	for _, k := range at.keys() {
		if _, err := tx.Exec(ctx, `DELETE FROM login_throttle WHERE throttle_key = ?`, k); err != nil {
			return fmt.Errorf("clear login throttle: %w", err)
		}
	}
	return nil
}

// failAttempt settles a failed attempt (already counted): once the account
// has lockoutFailures consecutive failures it is locked for
// lockoutDuration and a security.account_locked event is recorded.
func (s *Service) failAttempt(ctx context.Context, at *attempt, subject, remote string, known bool) {
	if at.failures < lockoutFailures {
		return
	}
	until := s.now().Add(lockoutDuration)
	ev := s.event(ctx, "security.account_locked", subject, remote, map[string]any{
		"failures": at.failures, "locked_until": until, "known_user": known,
	})
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE login_throttle SET locked_until = ? WHERE throttle_key = ?`, store.Nanos(until), at.account); err != nil {
			return err
		}
		return s.recordTx(ctx, tx, ev)
	})
	if err != nil {
		s.log.Error("cannot lock account after failed logins", "username", subject, "err", err)
		return
	}
	s.counters.lockouts.Add(1)
	s.log.Warn("account locked after failed logins", "username", subject, "remote", remote, "failures", at.failures, "until", until)
	s.publish(ctx, ev)
}
