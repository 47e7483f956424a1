package auth

import (
	"fmt"
	"strings"
	"testing"

	"github.com/fleetward/fleetward/internal/apperr"
)

func TestPrincipalCanForEveryRoleAndPermission(t *testing.T) {
	// want[role] lists the permissions the role's session has.
	want := map[Role][]Permission{
		RoleAdmin:    {PermRead, PermWrite, PermAdmin},
		RoleOperator: {PermRead, PermWrite},
		RoleAuditor:  {PermRead},
	}
	perms := []Permission{PermRead, PermWrite, PermAdmin, "", "delete"}
	for _, role := range append(Roles(), "", "root") {
		for _, perm := range perms {
			allowed := false
			for _, p := range want[role] {
				allowed = allowed || p == perm
			}
			t.Run(fmt.Sprintf("a %q session asking for %q is allowed=%v", role, perm, allowed), func(t *testing.T) {
				p := Principal{Kind: KindSession, Username: "u", Role: role}
				if got := p.Can(perm); got != allowed {
					t.Errorf("Can = %v", got)
				}
			})
		}
	}
}

func TestPrincipalCanLimitsTokensByRoleAndScopes(t *testing.T) {
	tests := []struct {
		name   string
		role   Role
		scopes []string
		want   map[Permission]bool
	}{
		{"an admin token with every scope can do everything", RoleAdmin, []string{"read", "write", "admin"},
			map[Permission]bool{PermRead: true, PermWrite: true, PermAdmin: true}},
		{"an admin token scoped to read can only read", RoleAdmin, []string{"read"},
			map[Permission]bool{PermRead: true}},
		{"an operator token cannot use an admin scope it somehow carries", RoleOperator, []string{"read", "write", "admin"},
			map[Permission]bool{PermRead: true, PermWrite: true}},
		{"an auditor token cannot write whatever its scopes say", RoleAuditor, []string{"read", "write"},
			map[Permission]bool{PermRead: true}},
		{"a token without scopes can do nothing", RoleAdmin, nil, map[Permission]bool{}},
		{"a write-only token cannot read", RoleOperator, []string{"write"}, map[Permission]bool{PermWrite: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Principal{Kind: KindToken, TokenName: "t", Role: tt.role, Scopes: tt.scopes}
			for _, perm := range []Permission{PermRead, PermWrite, PermAdmin} {
				if got := p.Can(perm); got != tt.want[perm] {
					t.Errorf("Can(%s) = %v, want %v", perm, got, tt.want[perm])
				}
			}
		})
	}
	if (Principal{}).Can(PermRead) {
		t.Error("the zero Principal can read")
	}
	if (Principal{Kind: "cookie", Role: RoleAdmin}).Can(PermRead) {
		t.Error("a principal of unknown kind can read")
	}
}

func TestActorNameNamesTheOperatorOrTheToken(t *testing.T) {
	if got := (Principal{Kind: KindSession, Username: "ada"}).ActorName(); got != "operator:ada" {
		t.Errorf("session actor = %q", got)
	}
	if got := (Principal{Kind: KindToken, TokenName: "ci", TokenID: "0123"}).ActorName(); got != "token:ci" {
		t.Errorf("token actor = %q", got)
	}
}

func TestParseRole(t *testing.T) {
	tests := []struct {
		name, in string
		want     Role
		ok       bool
	}{
		{"admin is a role", "admin", RoleAdmin, true},
		{"operator is a role", "operator", RoleOperator, true},
		{"auditor is a role", "auditor", RoleAuditor, true},
		{"case and surrounding space are ignored", "  Admin\n", RoleAdmin, true},
		{"an empty role is refused", "", "", false},
		{"an unknown role is refused", "root", "", false},
		{"a role with inner text is refused", "admin2", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRole(tt.in)
			if tt.ok {
				if err != nil || got != tt.want {
					t.Fatalf("ParseRole(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
				}
				return
			}
			wantField(t, err, "role")
		})
	}
}

func FuzzParseRole(f *testing.F) {
	for _, s := range []string{"admin", "operator", "auditor", "", " ADMIN ", "root", "\xff\xfe", strings.Repeat("a", 5000), "auditor\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRole(s)
		if err != nil {
			if !apperr.Is(err, apperr.Invalid) || apperr.As(err).Field != "role" {
				t.Fatalf("ParseRole(%q) error %v is not Invalid naming role", s, err)
			}
			if len(err.Error()) > 200 {
				t.Fatalf("ParseRole error is %d bytes long", len(err.Error()))
			}
			return
		}
		if !r.Valid() {
			t.Fatalf("ParseRole(%q) = %q, not a role", s, r)
		}
		if again, err := ParseRole(string(r)); err != nil || again != r {
			t.Fatalf("ParseRole(%q) does not round-trip: %q, %v", r, again, err)
		}
	})
}
