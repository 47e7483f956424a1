package auth

import (
	"bytes"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/store/storetest"
)

func TestOperatorLogsInWithPasswordOnly(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e, true)
		op := f.operator(t, "olga", RoleOperator)
		sess := f.login(t, "olga", "192.0.2.10")
		if sess.Username != "olga" || sess.Role != RoleOperator || sess.OperatorID != op.ID {
			t.Fatalf("session %+v is not olga's", sess)
		}
		if len(sess.Token) != 43 || len(sess.CSRFToken) != 43 || sess.Token == sess.CSRFToken {
			t.Fatalf("session token %q / CSRF token %q are not two random 32-byte values", sess.Token, sess.CSRFToken)
		}
		if want := f.clock.Now().Add(12 * time.Hour); !sess.ExpiresAt.Equal(want) {
			t.Fatalf("session expires %v, want %v", sess.ExpiresAt, want)
		}
		p, err := f.svc.AuthenticateSession(f.ctx, sess.Token, "192.0.2.10")
		if err != nil {
			t.Fatalf("authenticate session: %v", err)
		}
		if p.Kind != KindSession || p.Username != "olga" || p.Role != RoleOperator || p.CSRFToken != sess.CSRFToken || p.SessionID != sess.ID {
			t.Fatalf("principal %+v does not match the session %+v", p, sess)
		}
		if !p.Can(PermWrite) || p.Can(PermAdmin) {
			t.Fatal("an operator's session has the wrong permissions")
		}
		// The session token is stored only as its hash.
		var n int
		if err := f.db.QueryRow(f.ctx, `SELECT COUNT(*) FROM operator_sessions WHERE token_hash = ? OR id = ?`, sess.Token, sess.Token).Scan(&n); err != nil || n != 0 {
			t.Fatalf("the session token is stored in clear (%d rows, %v)", n, err)
		}
		got, _ := f.svc.GetOperator(f.ctx, "olga")
		if !got.LastLoginAt.Equal(f.clock.Now()) {
			t.Fatalf("last login %v, want %v", got.LastLoginAt, f.clock.Now())
		}
		es := f.entries(t, "security.login_succeeded")
		if len(es) != 1 || es[0].Subject != "olga" || es[0].Actor != "operator:olga" || es[0].Remote != "192.0.2.10" {
			t.Fatalf("login_succeeded entries %+v", es)
		}
		if !slices.Contains(f.pub.types(), "security.login_succeeded") {
			t.Fatalf("login_succeeded was not published: %v", f.pub.types())
		}
		if m := f.svc.Metrics(); m["logins_ok"] != 1 || m["logins_failed"] != 0 {
			t.Fatalf("metrics %v", m)
		}
	})
}

func TestUsernamesAreMatchedWithoutCaseOrSpace(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e, true)
		f.operator(t, "olga", RoleAuditor)
		if s := f.login(t, "  Olga ", "192.0.2.10"); s.Username != "olga" {
			t.Fatalf("logged in as %q", s.Username)
		}
	})
}

// completeWithTOTP completes a pending login with the current code.
func (f *fixture) completeWithTOTP(t *testing.T, pendingID, secret, remote string) (Session, []string) {
	t.Helper()
	code, err := totp.GenerateCode(secret, f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	sess, codes, err := f.svc.CompleteLogin(f.ctx, pendingID, code, remote)
	if err != nil {
		t.Fatalf("complete login: %v", err)
	}
	return sess, codes
}

func TestAdministratorEnrolsTOTPThenNeedsACodeAtEveryLogin(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e, true)
		f.operator(t, "ada", RoleAdmin)
		const remote = "198.51.100.7"

		// First login: the password is right, enrolment is pending.
		res, err := f.svc.Login(f.ctx, "ada", testPassword, remote)
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		if res.Session != nil || res.Pending == nil {
			t.Fatalf("first admin login = %+v, want a pending enrolment", res)
		}
		p := res.Pending
		if !p.NeedsEnrolment || p.Username != "ada" || len(p.ID) < 40 || p.Secret == "" {
			t.Fatalf("pending %+v is not an enrolment", p)
		}
		u, err := url.Parse(p.OTPAuthURL)
		if err != nil || u.Scheme != "otpauth" || u.Host != "totp" || u.Query().Get("secret") != p.Secret ||
			u.Query().Get("issuer") != "fleetward" || !strings.Contains(u.Path, "ada") {
			t.Fatalf("otpauth URL %q does not carry the secret, issuer and account", p.OTPAuthURL)
		}
		if !bytes.HasPrefix(p.QRCodePNG, []byte("\x89PNG\r\n\x1a\n")) {
			t.Fatalf("QR code is not a PNG (%d bytes)", len(p.QRCodePNG))
		}
		// The secret being enrolled is sealed even while pending.
		var pendingSealed string
		if err := f.db.QueryRow(f.ctx, `SELECT enrol_sealed FROM login_pending`).Scan(&pendingSealed); err != nil {
			t.Fatal(err)
		}
		if pendingSealed == "" || strings.Contains(strings.ToUpper(pendingSealed), p.Secret) {
			t.Fatalf("pending enrolment stores the TOTP secret in clear: %q", pendingSealed)
		}

		// A wrong code does not enrol.
		if _, _, err := f.svc.CompleteLogin(f.ctx, p.ID, "000000", remote); !apperr.Is(err, apperr.Unauthorized) {
			t.Fatalf("wrong enrolment code: %v", err)
		}
		if op, _ := f.svc.GetOperator(f.ctx, "ada"); op.MFAEnrolled {
			t.Fatal("a wrong code enrolled the authenticator")
		}

		// The right code enrols, logs in and hands out recovery codes.
		sess, codes := f.completeWithTOTP(t, p.ID, p.Secret, remote)
		if sess.Username != "ada" || sess.Role != RoleAdmin {
			t.Fatalf("session %+v", sess)
		}
		if len(codes) != 10 {
			t.Fatalf("got %d recovery codes, want 10", len(codes))
		}
		seen := map[string]bool{}
		for _, c := range codes {
			if len(c) != 10 || seen[c] {
				t.Fatalf("recovery codes %q are not 10 distinct 10-character codes", codes)
			}
			seen[c] = true
		}
		if _, err := f.svc.AuthenticateSession(f.ctx, sess.Token, remote); err != nil {
			t.Fatalf("authenticate enrolled session: %v", err)
		}
		op, _ := f.svc.GetOperator(f.ctx, "ada")
		if !op.MFAEnrolled || op.RecoveryCodesLeft != 10 {
			t.Fatalf("operator after enrolment %+v", op)
		}
		if es := f.entries(t, "operator.mfa_enrolled"); len(es) != 1 || es[0].Subject != "ada" {
			t.Fatalf("mfa_enrolled entries %+v", es)
		}

		// The TOTP secret is not in the operators row in clear.
		var sealed string
		if err := f.db.QueryRow(f.ctx, `SELECT totp_sealed FROM operators WHERE username = ?`, "ada").Scan(&sealed); err != nil {
			t.Fatal(err)
		}
		if sealed == "" || strings.Contains(strings.ToUpper(sealed), p.Secret) || strings.Contains(sealed, strings.ToLower(p.Secret)) {
			t.Fatalf("operators.totp_sealed holds the secret in clear: %q", sealed)
		}
		if plain, err := f.keys.Open(sealed, "totp:ada"); err != nil || string(plain) != p.Secret {
			t.Fatalf("sealed secret does not open to the enrolled one: %v", err)
		}

		// The next login needs a code and offers no secret.
		f.clock.Advance(time.Minute)
		res, err = f.svc.Login(f.ctx, "ada", testPassword, remote)
		if err != nil || res.Pending == nil {
			t.Fatalf("second login = %+v, %v; want pending", res, err)
		}
		if res.Pending.NeedsEnrolment || res.Pending.Secret != "" || res.Pending.OTPAuthURL != "" || res.Pending.QRCodePNG != nil {
			t.Fatalf("second login offers enrolment again: %+v", res.Pending)
		}
		code, _ := totp.GenerateCode(p.Secret, f.clock.Now())
		if _, recovery, err := f.svc.CompleteLogin(f.ctx, res.Pending.ID, code, remote); err != nil || recovery != nil {
			t.Fatalf("complete with TOTP = %v, %v", recovery, err)
		}

		// A code works once: the same code at the same time is refused.
		res, _ = f.svc.Login(f.ctx, "ada", testPassword, remote)
		_, _, err = f.svc.CompleteLogin(f.ctx, res.Pending.ID, code, remote)
		wantMessage(t, err, "wrong code")

		// A recovery code works once, in any case and with dashes.
		typed := strings.ToUpper(codes[3][:5] + "-" + codes[3][5:])
		if _, _, err := f.svc.CompleteLogin(f.ctx, res.Pending.ID, typed, remote); err != nil {
			t.Fatalf("complete with recovery code: %v", err)
		}
		if es := f.entries(t, "security.recovery_code_used"); len(es) != 1 || data(t, es[0])["codes_left"] != float64(9) {
			t.Fatalf("recovery_code_used entries %+v", es)
		}
		res, _ = f.svc.Login(f.ctx, "ada", testPassword, remote)
		_, _, err = f.svc.CompleteLogin(f.ctx, res.Pending.ID, codes[3], remote)
		wantMessage(t, err, "wrong code")
		if op, _ := f.svc.GetOperator(f.ctx, "ada"); op.RecoveryCodesLeft != 9 {
			t.Fatalf("recovery codes left %d, want 9", op.RecoveryCodesLeft)
		}
		// The pending login survives a wrong code; a fresh TOTP works.
		f.clock.Advance(30 * time.Second)
		f.completeWithTOTP(t, res.Pending.ID, p.Secret, remote)

		// A completed pending login cannot be used again.
		_, _, err = f.svc.CompleteLogin(f.ctx, res.Pending.ID, codes[4], remote)
		wantMessage(t, err, "expired")
		if m := f.svc.Metrics(); m["mfa_failed"] != 3 || m["recovery_codes_used"] != 1 {
			t.Fatalf("metrics %v", m)
		}
		// Nothing recorded carries a secret or a code.
		all, err := f.ledger.Entries(f.ctx, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range all {
			blob := string(e.Data) + e.Subject + e.Actor
			for _, secret := range append([]string{p.Secret, testPassword, code, sess.Token, sess.CSRFToken}, codes...) {
				if strings.Contains(blob, secret) {
					t.Fatalf("ledger entry %d (%s) contains a secret: %s", e.Index, e.Type, blob)
				}
			}
		}
	})
}

func TestPendingLoginsExpireAndWearOut(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e, true)
		f.operator(t, "ada", RoleAdmin)
		enrol, err := f.svc.EnrollTOTP(f.ctx, "ada")
		if err != nil {
			t.Fatal(err)
		}

		t.Run("an unknown pending login is refused as expired", func(t *testing.T) {
			for _, id := range []string{"", "nope", strings.Repeat("x", 10000)} {
				_, _, err := f.svc.CompleteLogin(f.ctx, id, "123456", "")
				wantCode(t, err, apperr.Unauthorized)
				wantMessage(t, err, "expired")
			}
		})
		t.Run("a pending login expires after five minutes", func(t *testing.T) {
			res, err := f.svc.Login(f.ctx, "ada", testPassword, "")
			if err != nil {
				t.Fatal(err)
			}
			f.clock.Advance(5 * time.Minute)
			code, _ := totp.GenerateCode(enrol.Secret, f.clock.Now())
			_, _, err = f.svc.CompleteLogin(f.ctx, res.Pending.ID, code, "")
			wantMessage(t, err, "expired")
		})
		t.Run("five wrong codes use a pending login up", func(t *testing.T) {
			f.clock.Advance(time.Hour) // forget earlier failures' delays
			res, err := f.svc.Login(f.ctx, "ada", testPassword, "")
			if err != nil {
				t.Fatal(err)
			}
			for i := range 5 {
				f.clock.Advance(10 * time.Second) // outwait the throttle, not the pending login
				_, _, err := f.svc.CompleteLogin(f.ctx, res.Pending.ID, "000000", "")
				wantMessage(t, err, "wrong code")
				if i == 4 {
					wantMessage(t, err, "expired")
				}
			}
			code, _ := totp.GenerateCode(enrol.Secret, f.clock.Now())
			_, _, err = f.svc.CompleteLogin(f.ctx, res.Pending.ID, code, "")
			wantMessage(t, err, "expired")
		})
		t.Run("a new login replaces the pending one", func(t *testing.T) {
			f.clock.Advance(time.Hour)
			first, _ := f.svc.Login(f.ctx, "ada", testPassword, "")
			second, _ := f.svc.Login(f.ctx, "ada", testPassword, "")
			f.clock.Advance(30 * time.Second)
			code, _ := totp.GenerateCode(enrol.Secret, f.clock.Now())
			_, _, err := f.svc.CompleteLogin(f.ctx, first.Pending.ID, code, "")
			wantMessage(t, err, "expired")
			if _, _, err := f.svc.CompleteLogin(f.ctx, second.Pending.ID, code, ""); err != nil {
				t.Fatalf("complete the newer login: %v", err)
			}
		})
	})
}

func TestInsecureDemoModeLetsAdministratorsInWithoutMFA(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e, false)
		f.operator(t, "ada", RoleAdmin)
		if s := f.login(t, "ada", ""); s.Role != RoleAdmin {
			t.Fatalf("session %+v", s)
		}
	})
}

func TestWrongPasswordAndUnknownUserGetTheSameAnswer(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e, true)
		f.operator(t, "olga", RoleOperator)
		f.operator(t, "otto", RoleOperator)
		if err := f.svc.DisableOperator(f.ctx, "otto"); err != nil {
			t.Fatal(err)
		}
		timed := func(user, pw, remote string) (error, time.Duration) {
			start := time.Now()
			_, err := f.svc.Login(f.ctx, user, pw, remote)
			return err, time.Since(start)
		}
		_, _ = timed("nobody", "warm up the dummy hash", "203.0.113.99")
		wrongErr, wrongTime := timed("olga", "not the password at all", "203.0.113.1")
		unknownErr, unknownTime := timed("nobody", testPassword, "203.0.113.2")
		disabledErr, _ := timed("otto", testPassword, "203.0.113.3")
		junkErr, _ := timed("Robert'); DROP TABLE operators;--", testPassword, "203.0.113.4")
		for _, err := range []error{wrongErr, unknownErr, disabledErr, junkErr} {
			wantCode(t, err, apperr.Unauthorized)
			if err.Error() != wrongErr.Error() {
				t.Fatalf("errors differ: %q and %q", err, wrongErr)
			}
		}
		// Both run argon2id; an unknown user is not answered instantly.
		if unknownTime < wrongTime/4 {
			t.Errorf("unknown user answered in %v, wrong password in %v: the difference reveals which usernames exist", unknownTime, wrongTime)
		}
		reasons := map[string]string{}
		for _, e := range f.entries(t, "security.login_failed") {
			reasons[e.Subject] = data(t, e)["reason"].(string)
		}
		want := map[string]string{"nobody": "unknown_user", "olga": "bad_password", "otto": "disabled", "(invalid username)": "unknown_user"}
		for subject, reason := range want {
			if reasons[subject] != reason {
				t.Errorf("login_failed for %q has reason %q, want %q (all: %v)", subject, reasons[subject], reason, reasons)
			}
		}
		if m := f.svc.Metrics(); m["logins_failed"] != 5 {
			t.Errorf("logins_failed = %d, want 5", m["logins_failed"])
		}
	})
}

// failLogin makes a login attempt with a wrong password and returns its
// error, which must be Unauthorized or RateLimited.
func (f *fixture) failLogin(t *testing.T, user, remote string) error {
	t.Helper()
	_, err := f.svc.Login(f.ctx, user, "definitely not it", remote)
	if !apperr.Is(err, apperr.Unauthorized) && !apperr.Is(err, apperr.RateLimited) {
		t.Fatalf("login %s from %s: %v", user, remote, err)
	}
	return err
}

// wantRetryAfter fails unless err is RateLimited with RetryAfter secs.
func wantRetryAfter(t *testing.T, err error, secs int) {
	t.Helper()
	e := wantCode(t, err, apperr.RateLimited)
	if e.RetryAfter != secs {
		t.Fatalf("RetryAfter = %d, want %d (%v)", e.RetryAfter, secs, err)
	}
}

func TestThrottleDelaysGrowAndAreEnforcedPerAccount(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e, true)
		f.operator(t, "olga", RoleOperator)
		// Each attempt from a new address: only the account's counter acts.
		n := 0
		addr := func() string { n++; return fmt.Sprintf("10.1.%d.%d", n/200, n%200+1) }
		for range 3 {
			wantCode(t, f.failLogin(t, "olga", addr()), apperr.Unauthorized)
		}
		// After 3 failures: wait 1s, then 2s, then 4s since the last one.
		for _, delay := range []int{1, 2, 4, 8} {
			err := f.failLogin(t, "olga", addr())
			wantRetryAfter(t, err, delay)
			// Even the right password is not checked inside the delay.
			_, err = f.svc.Login(f.ctx, "olga", testPassword, addr())
			wantCode(t, err, apperr.RateLimited)
			f.clock.Advance(time.Duration(delay)*time.Second - 300*time.Millisecond)
			wantRetryAfter(t, f.failLogin(t, "olga", addr()), 1)
			f.clock.Advance(300 * time.Millisecond)
			wantCode(t, f.failLogin(t, "olga", addr()), apperr.Unauthorized)
		}
		// Success resets the counter: three free failures again.
		f.clock.Advance(16 * time.Second)
		f.login(t, "olga", addr())
		for range 3 {
			wantCode(t, f.failLogin(t, "olga", addr()), apperr.Unauthorized)
		}
		wantRetryAfter(t, f.failLogin(t, "olga", addr()), 1)
		// Unknown usernames are throttled just the same.
		for range 3 {
			wantCode(t, f.failLogin(t, "ghost", addr()), apperr.Unauthorized)
		}
		wantRetryAfter(t, f.failLogin(t, "ghost", addr()), 1)
		if m := f.svc.Metrics(); m["logins_throttled"] == 0 {
			t.Fatalf("metrics %v count no throttled login", m)
		}
		// Only the first refusal after a failure reaches the ledger.
		throttled := 0
		for _, e := range f.entries(t, "security.login_failed") {
			if data(t, e)["reason"] == "throttled" {
				throttled++
			}
		}
		if throttled == 0 || throttled >= int(f.svc.Metrics()["logins_throttled"]) {
			t.Fatalf("%d throttled attempts recorded for %d refused", throttled, f.svc.Metrics()["logins_throttled"])
		}
	})
}

func TestThrottleIsEnforcedPerAddress(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e, true)
		f.operator(t, "olga", RoleOperator)
		users := []string{"anna", "bert", "cleo", "dora", "emil"}
		for _, u := range users[:3] {
			wantCode(t, f.failLogin(t, u, "203.0.113.5:4711"), apperr.Unauthorized)
		}
		// A fourth username from the same address (another port) waits.
		wantRetryAfter(t, f.failLogin(t, users[3], "203.0.113.5:4712"), 1)
		// Even a right password from that address waits.
		_, err := f.svc.Login(f.ctx, "olga", testPassword, "203.0.113.5")
		wantCode(t, err, apperr.RateLimited)
		// Another address is not affected.
		f.login(t, "olga", "203.0.113.6")
		// IPv6 addresses in one /64 share a counter.
		for i, u := range users[:3] {
			wantCode(t, f.failLogin(t, u, "[2001:db8:1:2::"+string(rune('a'+i))+"]:443"), apperr.Unauthorized)
		}
		wantRetryAfter(t, f.failLogin(t, users[4], "2001:db8:1:2:ffff::1"), 1)
		f.login(t, "olga", "2001:db8:1:3::1")
		// After the delay, a success from the address resets it.
		f.clock.Advance(time.Second)
		f.login(t, "olga", "203.0.113.5")
		for _, u := range users[:3] {
			wantCode(t, f.failLogin(t, u, "203.0.113.5"), apperr.Unauthorized)
		}
	})
}

func TestTenFailuresLockTheAccountForFifteenMinutes(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e, true)
		f.operator(t, "olga", RoleOperator)
		for i := range int64(10) {
			f.clock.Advance(throttleDelay(i))
			wantCode(t, f.failLogin(t, "olga", "10.2.0."+string(rune('0'+i))), apperr.Unauthorized)
		}
		es := f.entries(t, "security.account_locked")
		if len(es) != 1 || es[0].Subject != "olga" || data(t, es[0])["failures"] != float64(10) {
			t.Fatalf("account_locked entries %+v", es)
		}
		if !slices.Contains(f.pub.types(), "security.account_locked") {
			t.Fatal("account_locked was not published")
		}
		if f.svc.Metrics()["lockouts"] != 1 {
			t.Fatalf("metrics %v", f.svc.Metrics())
		}
		// Past the ordinary delay the lock still holds, even for the right
		// password from a fresh address.
		f.clock.Advance(throttleDelay(10))
		_, err := f.svc.Login(f.ctx, "olga", testPassword, "10.3.0.1")
		wantRetryAfter(t, err, int((lockoutDuration - throttleDelay(10)).Seconds()))
		f.clock.Advance(lockoutDuration - throttleDelay(10))
		f.login(t, "olga", "10.3.0.1")
	})
}

func TestParallelGuessesCannotSlipPastTheThrottle(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e, true)
		f.operator(t, "olga", RoleOperator)
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() { _, errs[i] = f.svc.Login(f.ctx, "olga", "guess number "+string(rune('a'+i)), "10.9.9.9") })
		}
		wg.Wait()
		checked := 0
		for _, err := range errs {
			switch {
			case apperr.Is(err, apperr.Unauthorized):
				checked++
			case apperr.Is(err, apperr.RateLimited):
			default:
				t.Fatalf("parallel login: %v", err)
			}
		}
		if checked != throttleFree {
			t.Fatalf("%d of 8 parallel guesses had their password checked, want %d", checked, throttleFree)
		}
	})
}

func TestWrongSecondFactorsCountAsFailedLogins(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e, true)
		f.operator(t, "ada", RoleAdmin)
		enrol, err := f.svc.EnrollTOTP(f.ctx, "ada")
		if err != nil {
			t.Fatal(err)
		}
		res, err := f.svc.Login(f.ctx, "ada", testPassword, "10.4.0.1")
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			_, _, err := f.svc.CompleteLogin(f.ctx, res.Pending.ID, "111111", "10.4.0.1")
			wantMessage(t, err, "wrong code")
		}
		code, _ := totp.GenerateCode(enrol.Secret, f.clock.Now())
		_, _, err = f.svc.CompleteLogin(f.ctx, res.Pending.ID, code, "10.4.0.1")
		wantRetryAfter(t, err, 1)
		f.clock.Advance(time.Second)
		code, _ = totp.GenerateCode(enrol.Secret, f.clock.Now())
		if _, _, err := f.svc.CompleteLogin(f.ctx, res.Pending.ID, code, "10.4.0.1"); err != nil {
			t.Fatalf("complete after the delay: %v", err)
		}
		bad := 0
		for _, e := range f.entries(t, "security.login_failed") {
			if data(t, e)["reason"] == "bad_mfa" {
				bad++
			}
		}
		if bad != 3 {
			t.Fatalf("%d bad_mfa entries, want 3", bad)
		}
	})
}

func TestAddressKeys(t *testing.T) {
	tests := []struct{ name, remote, want string }{
		{"an IPv4 address is its own key", "192.0.2.1", "addr:192.0.2.1"},
		{"the port is dropped", "192.0.2.1:5555", "addr:192.0.2.1"},
		{"an IPv4-mapped IPv6 address is the IPv4 address", "[::ffff:192.0.2.1]:80", "addr:192.0.2.1"},
		{"an IPv6 address counts as its /64", "2001:db8:a:b:c:d:e:f", "addr:2001:db8:a:b::/64"},
		{"a bracketed IPv6 address with a port and zone counts as its /64", "[fe80::1%eth0]:22", "addr:fe80::/64"},
		{"no address has no key", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := addressKey(tt.remote); got != tt.want {
				t.Fatalf("addressKey(%q) = %q, want %q", tt.remote, got, tt.want)
			}
		})
	}
	if k := addressKey("not an address"); !strings.HasPrefix(k, "addr#") || len(k) != 37 {
		t.Fatalf("odd remote key %q", k)
	}
	if k := accountKey(strings.Repeat("x", 5000)); len(k) != 40 {
		t.Fatalf("a huge username makes the key %q", k)
	}
}

func TestThrottleDelay(t *testing.T) {
	for _, tt := range []struct {
		failures int64
		want     time.Duration
	}{{0, 0}, {2, 0}, {3, time.Second}, {4, 2 * time.Second}, {12, 512 * time.Second}, {13, 15 * time.Minute}, {1 << 40, 15 * time.Minute}} {
		if got := throttleDelay(tt.failures); got != tt.want {
			t.Errorf("throttleDelay(%d) = %v, want %v", tt.failures, got, tt.want)
		}
	}
}

func TestLoginRehashesPasswordsWithOldParameters(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e, true)
		f.operator(t, "olga", RoleOperator)
		old, _ := hashPassword(testPassword, argonParams{Memory: 8 * 1024, Time: 1, Threads: 1})
		if _, err := f.db.Exec(f.ctx, `UPDATE operators SET password_hash = ? WHERE username = ?`, old, "olga"); err != nil {
			t.Fatal(err)
		}
		f.login(t, "olga", "")
		var now string
		if err := f.db.QueryRow(f.ctx, `SELECT password_hash FROM operators WHERE username = ?`, "olga").Scan(&now); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(now, "$argon2id$v=19$m=65536,t=2,p=2$") {
			t.Fatalf("hash after login %q was not upgraded", now)
		}
		f.login(t, "olga", "")
	})
}
