package auth

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/store/storetest"
)

var tokenPattern = regexp.MustCompile(`^fwt_[0-9a-f]{16}_[0-9a-f]{64}$`)

func TestTokenIsCreatedAuthenticatedAndListed(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e, true)
		plain, tok, err := f.svc.CreateToken(f.ctx, "ci-export", RoleOperator, nil, 0)
		if err != nil {
			t.Fatalf("create token: %v", err)
		}
		if !tokenPattern.MatchString(plain) || !strings.HasPrefix(plain, "fwt_"+tok.ID+"_") {
			t.Fatalf("token %q has the wrong form for id %s", plain, tok.ID)
		}
		if !slices.Equal(tok.Scopes, []string{"read", "write"}) {
			t.Fatalf("default scopes %v, want the operator role's", tok.Scopes)
		}
		if want := f.clock.Now().Add(90 * 24 * time.Hour); !tok.ExpiresAt.Equal(want) {
			t.Fatalf("default expiry %v, want %v", tok.ExpiresAt, want)
		}
		if tok.CreatedBy != "cli:test" {
			t.Fatalf("created by %q", tok.CreatedBy)
		}
		p, err := f.svc.AuthenticateToken(f.ctx, plain, "192.0.2.50")
		if err != nil {
			t.Fatalf("authenticate: %v", err)
		}
		if p.Kind != KindToken || p.TokenID != tok.ID || p.TokenName != "ci-export" || p.Role != RoleOperator || p.ActorName() != "token:ci-export" {
			t.Fatalf("principal %+v", p)
		}
		if !p.Can(PermRead) || !p.Can(PermWrite) || p.Can(PermAdmin) {
			t.Fatal("an operator token has the wrong permissions")
		}
		// Only a hash of the secret is stored.
		secret := plain[len("fwt_")+17:]
		var stored string
		if err := f.db.QueryRow(f.ctx, `SELECT secret_hash FROM api_tokens WHERE id = ?`, tok.ID).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if stored != sha256Hex(secret) {
			t.Fatalf("stored %q, want the SHA-256 of the secret", stored)
		}
		list, err := f.svc.ListTokens(f.ctx)
		if err != nil || len(list) != 1 || list[0].ID != tok.ID || list[0].LastUsedAt.IsZero() {
			t.Fatalf("list = %+v, %v", list, err)
		}
		if es := f.entries(t, "token.created"); len(es) != 1 || es[0].Subject != tok.ID || strings.Contains(string(es[0].Data), secret) {
			t.Fatalf("token.created entries %+v", es)
		}
	})
}

func TestTokenUseIsRecordedOncePerMinute(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e, true)
		plain, tok, err := f.svc.CreateToken(f.ctx, "probe", RoleAuditor, nil, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		for range 5 {
			if _, err := f.svc.AuthenticateToken(f.ctx, plain, "192.0.2.51"); err != nil {
				t.Fatal(err)
			}
			f.clock.Advance(10 * time.Second)
		}
		if es := f.entries(t, "security.token_used"); len(es) != 1 || es[0].Actor != "token:probe" || es[0].Subject != tok.ID || es[0].Remote != "192.0.2.51" {
			t.Fatalf("token_used entries after 5 uses in 50s: %+v", es)
		}
		f.clock.Advance(15 * time.Second)
		if _, err := f.svc.AuthenticateToken(f.ctx, plain, "192.0.2.51"); err != nil {
			t.Fatal(err)
		}
		if es := f.entries(t, "security.token_used"); len(es) != 2 {
			t.Fatalf("%d token_used entries after a minute, want 2", len(es))
		}
		if m := f.svc.Metrics(); m["tokens_used"] != 6 {
			t.Fatalf("tokens_used = %d, want 6", m["tokens_used"])
		}
	})
}

func TestTokenScopesNarrowItsRole(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e, true)
		tests := []struct {
			name   string
			role   Role
			scopes []string
			want   []Permission
		}{
			{"an admin token limited to read can only read", RoleAdmin, []string{"read"}, []Permission{PermRead}},
			{"an admin token with admin and read scopes cannot write", RoleAdmin, []string{"Admin", " read"}, []Permission{PermRead, PermAdmin}},
			{"an operator token limited to write cannot read", RoleOperator, []string{"write", "write"}, []Permission{PermWrite}},
			{"an auditor token reads", RoleAuditor, nil, []Permission{PermRead}},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				plain, _, err := f.svc.CreateToken(f.ctx, "scoped-"+string(rune('a'+i)), tt.role, tt.scopes, time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				p, err := f.svc.AuthenticateToken(f.ctx, plain, "")
				if err != nil {
					t.Fatal(err)
				}
				for _, perm := range []Permission{PermRead, PermWrite, PermAdmin} {
					if got, want := p.Can(perm), slices.Contains(tt.want, perm); got != want {
						t.Errorf("Can(%s) = %v, want %v", perm, got, want)
					}
				}
			})
		}
	})
}

func TestCreateTokenRefusesBadInputNamingTheField(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e, true)
		tests := []struct {
			name   string
			tname  string
			role   Role
			scopes []string
			ttl    time.Duration
			field  string
		}{
			{"an empty name", "", RoleAuditor, nil, 0, "name"},
			{"a name with spaces", "my token", RoleAuditor, nil, 0, "name"},
			{"a name too long", strings.Repeat("n", 65), RoleAuditor, nil, 0, "name"},
			{"an unknown role", "t", "root", nil, 0, "role"},
			{"an unknown scope", "t", RoleAdmin, []string{"delete"}, 0, "scopes"},
			{"a scope beyond the role", "t", RoleAuditor, []string{"write"}, 0, "scopes"},
			{"an admin scope on an operator token", "t", RoleOperator, []string{"read", "admin"}, 0, "scopes"},
			{"a negative lifetime", "t", RoleAuditor, nil, -time.Hour, "ttl"},
			{"a lifetime over two years", "t", RoleAuditor, nil, 731 * 24 * time.Hour, "ttl"},
		}
		for _, tt := range tests {
			t.Run(tt.name+" is refused", func(t *testing.T) {
				_, _, err := f.svc.CreateToken(f.ctx, tt.tname, tt.role, tt.scopes, tt.ttl)
				wantField(t, err, tt.field)
			})
		}
		if _, _, err := f.svc.CreateToken(f.ctx, "max", RoleAuditor, nil, 2*365*24*time.Hour); err != nil {
			t.Fatalf("a two-year token: %v", err)
		}
		if _, _, err := f.svc.CreateToken(f.ctx, "max", RoleAuditor, nil, time.Hour); !apperr.Is(err, apperr.Conflict) {
			t.Fatalf("a second active token with the same name: %v", err)
		}
	})
}

func TestTokensExpireAndCanBeRevoked(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e, true)
		short, _, err := f.svc.CreateToken(f.ctx, "short", RoleAuditor, nil, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		long, longTok, err := f.svc.CreateToken(f.ctx, "long", RoleAdmin, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Hour)
		_, err = f.svc.AuthenticateToken(f.ctx, short, "")
		wantCode(t, err, apperr.Unauthorized)
		wantMessage(t, err, "expired")
		// An expired token's name is free again.
		if _, _, err := f.svc.CreateToken(f.ctx, "short", RoleAuditor, nil, time.Hour); err != nil {
			t.Fatalf("reuse an expired token's name: %v", err)
		}

		if _, err := f.svc.AuthenticateToken(f.ctx, long, ""); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.RevokeToken(f.ctx, longTok.ID); err != nil {
			t.Fatalf("revoke: %v", err)
		}
		_, err = f.svc.AuthenticateToken(f.ctx, long, "")
		wantMessage(t, err, "revoked")
		if err := f.svc.RevokeToken(f.ctx, longTok.ID); err != nil {
			t.Fatalf("revoke again: %v", err)
		}
		for _, id := range []string{"0123456789abcdef", "nope", ""} {
			wantCode(t, f.svc.RevokeToken(f.ctx, id), apperr.NotFound)
		}
		if es := f.entries(t, "token.revoked"); len(es) != 1 || es[0].Subject != longTok.ID {
			t.Fatalf("token.revoked entries %+v", es)
		}
		if es := f.entries(t, "security.token_rejected"); len(es) != 2 {
			t.Fatalf("%d token_rejected entries, want one for the expired and one for the revoked token", len(es))
		}
		list, _ := f.svc.ListTokens(f.ctx)
		revoked := 0
		for _, tk := range list {
			if tk.Revoked {
				revoked++
				if tk.RevokedAt.IsZero() {
					t.Fatal("a revoked token has no revocation time")
				}
			}
		}
		if len(list) != 3 || revoked != 1 {
			t.Fatalf("list %+v", list)
		}
	})
}

func TestForgedTokensAreRefusedAlike(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e, true)
		plain, tok, err := f.svc.CreateToken(f.ctx, "real", RoleAdmin, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		flip := []byte(plain)
		flip[len(flip)-1] ^= 1
		for _, bearer := range []string{
			"", "fwt_", "fwt__", string(flip),
			"fwt_" + tok.ID + "_" + strings.Repeat("0", 64),
			"fwt_0000000000000000_" + plain[len("fwt_")+17:],
			strings.ToUpper(plain), " " + plain, plain + "0", plain[:len(plain)-1],
		} {
			_, err := f.svc.AuthenticateToken(f.ctx, bearer, "")
			wantCode(t, err, apperr.Unauthorized)
			if err.Error() != "unauthorized: invalid API token" {
				t.Fatalf("bearer %q: %v reveals more than that it is invalid", bearer, err)
			}
		}
	})
}

func FuzzAuthenticateToken(f *testing.F) {
	// One database for the whole run: the fuzzer calls the function many
	// times, and the property is about the parser and lookup, not storage.
	fx := newFixture(f, storetest.SQLite(f), true)
	plain, _, err := fx.svc.CreateToken(fx.ctx, "fuzz", RoleAuditor, nil, 0)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{plain, "", "fwt_", "fwt__", plain[:20], plain + "_", strings.Replace(plain, "fwt_", "FWT_", 1),
		"fwt_" + strings.Repeat("g", 16) + "_" + strings.Repeat("0", 64), "Bearer " + plain, "fwt_\x00\xff_\n", strings.Repeat("fwt_", 1000)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, bearer string) {
		p, err := fx.svc.AuthenticateToken(fx.ctx, bearer, "192.0.2.1")
		if bearer == plain {
			if err != nil || p.TokenName != "fuzz" {
				t.Fatalf("the real token failed: %v", err)
			}
			return
		}
		if err == nil {
			t.Fatalf("bearer %q authenticated as %+v", bearer, p)
		}
		if !apperr.Is(err, apperr.Unauthorized) {
			t.Fatalf("bearer %q: %v is not Unauthorized", bearer, err)
		}
	})
}
