package auth

import (
	"strings"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/store/storetest"
)

func TestSessionEndsAfterIdleTimeAndSlidesWithUse(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e, true)
		f.operator(t, "olga", RoleOperator)
		sess := f.login(t, "olga", "")
		auth := func() error { _, err := f.svc.AuthenticateSession(f.ctx, sess.Token, ""); return err }

		f.clock.Advance(29 * time.Minute)
		p, err := f.svc.AuthenticateSession(f.ctx, sess.Token, "")
		if err != nil {
			t.Fatalf("after 29 idle minutes: %v", err)
		}
		if want := f.clock.Now().Add(30 * time.Minute); !p.ExpiresAt.Equal(want) {
			t.Fatalf("principal expires %v, want the slid idle end %v", p.ExpiresAt, want)
		}
		// Used at 29 minutes, so alive at 58.
		f.clock.Advance(29 * time.Minute)
		if err := auth(); err != nil {
			t.Fatalf("after use and 29 more idle minutes: %v", err)
		}
		f.clock.Advance(30 * time.Minute)
		err = auth()
		wantCode(t, err, apperr.Unauthorized)
		wantMessage(t, err, "log in again")
		// An ended session stays ended.
		f.clock.Advance(-20 * time.Minute)
		wantCode(t, auth(), apperr.Unauthorized)
	})
}

func TestSessionEndsAtItsAbsoluteLifetimeHoweverBusy(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e, true)
		f.operator(t, "olga", RoleOperator)
		sess := f.login(t, "olga", "")
		var p Principal
		var err error
		for f.clock.Now().Before(sess.ExpiresAt.Add(-20 * time.Minute)) {
			f.clock.Advance(20 * time.Minute)
			if p, err = f.svc.AuthenticateSession(f.ctx, sess.Token, ""); err != nil {
				t.Fatalf("busy session at %v: %v", f.clock.Now(), err)
			}
		}
		if !p.ExpiresAt.Equal(sess.ExpiresAt) {
			t.Fatalf("near its end the principal expires %v, want the absolute end %v", p.ExpiresAt, sess.ExpiresAt)
		}
		f.clock.Advance(sess.ExpiresAt.Sub(f.clock.Now()))
		_, err = f.svc.AuthenticateSession(f.ctx, sess.Token, "")
		wantCode(t, err, apperr.Unauthorized)
	})
}

func TestLogoutEndsTheSession(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e, true)
		f.operator(t, "olga", RoleOperator)
		sess := f.login(t, "olga", "")
		other := f.login(t, "olga", "")
		if err := f.svc.Logout(f.ctx, sess.Token); err != nil {
			t.Fatalf("logout: %v", err)
		}
		if _, err := f.svc.AuthenticateSession(f.ctx, sess.Token, ""); !apperr.Is(err, apperr.Unauthorized) {
			t.Fatalf("logged-out session: %v", err)
		}
		if _, err := f.svc.AuthenticateSession(f.ctx, other.Token, ""); err != nil {
			t.Fatalf("the other session ended too: %v", err)
		}
		for _, tok := range []string{sess.Token, "", "junk", strings.Repeat("A", 43)} {
			if err := f.svc.Logout(f.ctx, tok); err != nil {
				t.Fatalf("logout %q again: %v", tok, err)
			}
		}
		if es := f.entries(t, "security.logout"); len(es) != 1 || es[0].Subject != "olga" {
			t.Fatalf("logout entries %+v", es)
		}
	})
}

func TestMalformedSessionTokensAreRefused(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e, true)
		f.operator(t, "olga", RoleOperator)
		sess := f.login(t, "olga", "")
		for _, tok := range []string{"", "x", sess.Token[:42], sess.Token + "A", sess.CSRFToken, strings.Repeat("\xff", 43), sess.ID} {
			if _, err := f.svc.AuthenticateSession(f.ctx, tok, ""); !apperr.Is(err, apperr.Unauthorized) {
				t.Errorf("token %q: %v", tok, err)
			}
		}
	})
}

func TestPruneDeletesEndedSessionsAndOldCounters(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e, true)
		f.operator(t, "olga", RoleOperator)
		f.login(t, "olga", "")
		f.failLogin(t, "ghost", "10.0.0.1")
		count := func(table string) int {
			var n int
			if err := f.db.QueryRow(f.ctx, `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		if count("operator_sessions") != 1 || count("login_throttle") != 2 {
			t.Fatalf("before: %d sessions, %d throttle rows", count("operator_sessions"), count("login_throttle"))
		}
		f.clock.Advance(25 * time.Hour)
		if err := f.svc.Prune(f.ctx); err != nil {
			t.Fatal(err)
		}
		if count("operator_sessions") != 0 || count("login_throttle") != 0 {
			t.Fatalf("after: %d sessions, %d throttle rows", count("operator_sessions"), count("login_throttle"))
		}
	})
}
