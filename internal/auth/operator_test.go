package auth

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/store/storetest"
)

func TestCreateOperator(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e, true)
		op := f.operator(t, "ada", RoleAdmin)
		if op.ID == 0 || op.Username != "ada" || op.Role != RoleAdmin || op.MFAEnrolled || op.Disabled || !op.CreatedAt.Equal(f.clock.Now()) {
			t.Fatalf("created %+v", op)
		}
		f.operator(t, "b.o_b-2", RoleAuditor)
		ops, err := f.svc.ListOperators(f.ctx)
		if err != nil || len(ops) != 2 || ops[0].Username != "ada" || ops[1].Username != "b.o_b-2" {
			t.Fatalf("list = %+v, %v", ops, err)
		}
		got, err := f.svc.GetOperator(f.ctx, "ada")
		if err != nil || got.ID != op.ID {
			t.Fatalf("get = %+v, %v", got, err)
		}
		_, err = f.svc.GetOperator(f.ctx, "nobody")
		wantCode(t, err, apperr.NotFound)

		_, err = f.svc.CreateOperator(f.ctx, "ada", testPassword, RoleOperator)
		wantCode(t, err, apperr.Conflict)

		for _, name := range []string{"", "a", "Ada", "1ada", "ada lovelace", "ada@example.org", strings.Repeat("a", 33), "ädä"} {
			_, err := f.svc.CreateOperator(f.ctx, name, testPassword, RoleOperator)
			wantField(t, err, "username")
		}
		_, err = f.svc.CreateOperator(f.ctx, "carl", testPassword, "root")
		wantField(t, err, "role")

		es := f.entries(t, "operator.created")
		if len(es) != 2 || es[0].Subject != "ada" || es[0].Actor != "cli:test" || data(t, es[0])["role"] != "admin" {
			t.Fatalf("operator.created entries %+v", es)
		}
		for _, e := range es {
			if strings.Contains(string(e.Data), testPassword) || strings.Contains(string(e.Data), "argon2") {
				t.Fatalf("entry %s carries the password or its hash", e.Data)
			}
		}
		if got := f.pub.types(); !slices.Equal(got, []string{"operator.created", "operator.created"}) {
			t.Fatalf("published %v", got)
		}
	})
}

func TestSetPasswordReplacesItAndEndsSessions(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e, true)
		f.operator(t, "olga", RoleOperator)
		sess := f.login(t, "olga", "")
		wantField(t, f.svc.SetPassword(f.ctx, "olga", "short"), "password")
		wantCode(t, f.svc.SetPassword(f.ctx, "nobody", "a perfectly fine passphrase"), apperr.NotFound)
		const newPassword = "a perfectly fine passphrase"
		if err := f.svc.SetPassword(f.ctx, "olga", newPassword); err != nil {
			t.Fatalf("set password: %v", err)
		}
		if _, err := f.svc.AuthenticateSession(f.ctx, sess.Token, ""); !apperr.Is(err, apperr.Unauthorized) {
			t.Fatalf("a session survived the password change: %v", err)
		}
		if _, err := f.svc.Login(f.ctx, "olga", testPassword, ""); !apperr.Is(err, apperr.Unauthorized) {
			t.Fatalf("the old password still works: %v", err)
		}
		if res, err := f.svc.Login(f.ctx, "olga", newPassword, ""); err != nil || res.Session == nil {
			t.Fatalf("the new password does not work: %v", err)
		}
		if es := f.entries(t, "operator.password_changed"); len(es) != 1 || data(t, es[0])["sessions_ended"] != float64(1) {
			t.Fatalf("password_changed entries %+v", es)
		}
	})
}

func TestRolesChangeAndTheLastAdministratorStays(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e, false)
		f.operator(t, "ada", RoleAdmin)
		f.operator(t, "olga", RoleOperator)
		sess := f.login(t, "olga", "")

		wantCode(t, f.svc.SetRole(f.ctx, "ada", RoleAuditor), apperr.Conflict)
		wantCode(t, f.svc.DisableOperator(f.ctx, "ada"), apperr.Conflict)
		wantField(t, f.svc.SetRole(f.ctx, "olga", "superuser"), "role")
		wantCode(t, f.svc.SetRole(f.ctx, "nobody", RoleAuditor), apperr.NotFound)

		if err := f.svc.SetRole(f.ctx, "olga", RoleAdmin); err != nil {
			t.Fatalf("promote: %v", err)
		}
		if _, err := f.svc.AuthenticateSession(f.ctx, sess.Token, ""); !apperr.Is(err, apperr.Unauthorized) {
			t.Fatalf("a session survived the role change: %v", err)
		}
		// With two administrators, one may step down.
		if err := f.svc.SetRole(f.ctx, "ada", RoleOperator); err != nil {
			t.Fatalf("demote one of two administrators: %v", err)
		}
		if err := f.svc.SetRole(f.ctx, "ada", RoleOperator); err != nil {
			t.Fatalf("setting the same role again: %v", err)
		}
		es := f.entries(t, "operator.role_changed")
		if len(es) != 2 || data(t, es[1])["from"] != "admin" || data(t, es[1])["to"] != "operator" {
			t.Fatalf("role_changed entries %+v", es)
		}
		op, _ := f.svc.GetOperator(f.ctx, "ada")
		if op.Role != RoleOperator {
			t.Fatalf("ada is %s", op.Role)
		}
	})
}

func TestDisabledOperatorsCannotLogIn(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e, true)
		f.operator(t, "olga", RoleOperator)
		sess := f.login(t, "olga", "")
		if err := f.svc.DisableOperator(f.ctx, "olga"); err != nil {
			t.Fatalf("disable: %v", err)
		}
		if err := f.svc.DisableOperator(f.ctx, "olga"); err != nil {
			t.Fatalf("disable again: %v", err)
		}
		wantCode(t, f.svc.DisableOperator(f.ctx, "nobody"), apperr.NotFound)
		if _, err := f.svc.AuthenticateSession(f.ctx, sess.Token, ""); !apperr.Is(err, apperr.Unauthorized) {
			t.Fatalf("the session of a disabled operator: %v", err)
		}
		_, err := f.svc.Login(f.ctx, "olga", testPassword, "")
		wantMessage(t, err, "wrong username or password")
		op, _ := f.svc.GetOperator(f.ctx, "olga")
		if !op.Disabled {
			t.Fatal("olga is not disabled")
		}
		if es := f.entries(t, "operator.disabled"); len(es) != 1 {
			t.Fatalf("%d operator.disabled entries, want 1", len(es))
		}
	})
}

func TestEnrollTOTPAndResetMFA(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e, true)
		f.operator(t, "ada", RoleAdmin)
		f.operator(t, "olga", RoleOperator)
		_, err := f.svc.EnrollTOTP(f.ctx, "nobody")
		wantCode(t, err, apperr.NotFound)

		// An operator who enrols needs a code from then on.
		enrol, err := f.svc.EnrollTOTP(f.ctx, "olga")
		if err != nil {
			t.Fatalf("enrol: %v", err)
		}
		if enrol.Secret == "" || !strings.HasPrefix(enrol.OTPAuthURL, "otpauth://totp/") || len(enrol.RecoveryCodes) != 10 || len(enrol.QRCodePNG) == 0 {
			t.Fatalf("enrolment %+v", enrol)
		}
		_, err = f.svc.EnrollTOTP(f.ctx, "olga")
		wantCode(t, err, apperr.Conflict)
		res, err := f.svc.Login(f.ctx, "olga", testPassword, "")
		if err != nil || res.Pending == nil || res.Pending.NeedsEnrolment {
			t.Fatalf("login after enrolment = %+v, %v", res, err)
		}
		sess, _ := f.completeWithTOTP(t, res.Pending.ID, enrol.Secret, "")

		// Reset: sessions end, the old secret and codes stop working, and
		// the operator logs in with the password alone again.
		if err := f.svc.ResetMFA(f.ctx, "olga"); err != nil {
			t.Fatalf("reset: %v", err)
		}
		if _, err := f.svc.AuthenticateSession(f.ctx, sess.Token, ""); !apperr.Is(err, apperr.Unauthorized) {
			t.Fatalf("a session survived the MFA reset: %v", err)
		}
		op, _ := f.svc.GetOperator(f.ctx, "olga")
		if op.MFAEnrolled || op.RecoveryCodesLeft != 0 {
			t.Fatalf("after reset %+v", op)
		}
		f.login(t, "olga", "")
		wantCode(t, f.svc.ResetMFA(f.ctx, "nobody"), apperr.NotFound)

		// An administrator enrols again at the next login after a reset.
		adminEnrol, err := f.svc.EnrollTOTP(f.ctx, "ada")
		if err != nil {
			t.Fatal(err)
		}
		if err := f.svc.ResetMFA(f.ctx, "ada"); err != nil {
			t.Fatal(err)
		}
		res, err = f.svc.Login(f.ctx, "ada", testPassword, "")
		if err != nil || res.Pending == nil || !res.Pending.NeedsEnrolment || res.Pending.Secret == adminEnrol.Secret {
			t.Fatalf("admin login after reset = %+v, %v; want a new enrolment", res.Pending, err)
		}
		f.clock.Advance(time.Minute)
		code, _ := totp.GenerateCode(adminEnrol.Secret, f.clock.Now())
		_, _, err = f.svc.CompleteLogin(f.ctx, res.Pending.ID, code, "")
		wantMessage(t, err, "wrong code")

		if es := f.entries(t, "operator.mfa_reset"); len(es) != 2 {
			t.Fatalf("%d mfa_reset entries, want 2", len(es))
		}
		if es := f.entries(t, "operator.mfa_enrolled"); len(es) != 2 {
			t.Fatalf("%d mfa_enrolled entries, want 2", len(es))
		}
	})
}

func TestRecordDeniedLogsCountsAndRecords(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e, true)
		p := Principal{Kind: KindToken, TokenID: "0123456789abcdef", TokenName: "ci", Role: RoleAuditor, Scopes: []string{"read"}}
		f.svc.RecordDenied(f.ctx, p, "DELETE /api/v1/devices/{id}", "192.0.2.9")
		es := f.entries(t, "security.permission_denied")
		if len(es) != 1 || es[0].Actor != "token:ci" || es[0].Remote != "192.0.2.9" || data(t, es[0])["what"] != "DELETE /api/v1/devices/{id}" {
			t.Fatalf("permission_denied entries %+v", es)
		}
		if f.svc.Metrics()["permission_denied"] != 1 {
			t.Fatalf("metrics %v", f.svc.Metrics())
		}
		if !slices.Contains(f.pub.types(), "security.permission_denied") {
			t.Fatal("permission_denied was not published")
		}
	})
}
