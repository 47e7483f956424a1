// Package auth holds fleetward's operators and how they prove who they are:
// argon2id passwords, TOTP second factors with recovery codes, browser
// sessions, scoped API tokens, roles and login throttling.
//
// The Service is the only way in. It keeps its tables (operators,
// operator_sessions, operator_recovery_codes, login_pending, login_throttle,
// api_tokens) in the shared store, records every change and every security
// event in the ledger and publishes it on the bus. It writes no HTTP: the
// API and the dashboard call it and set the cookies it makes values for.
package auth

import (
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fleetward/fleetward/internal/apperr"
)

// Role is what an operator or an API token is trusted with. Every operator
// and token has exactly one.
type Role string

// The roles.
const (
	// RoleAdmin may do everything, including managing operators, tokens and
	// settings. Administrators must use a second factor unless the server
	// runs with the demo's insecure login.
	RoleAdmin Role = "admin"
	// RoleOperator may read everything and change devices, sites and
	// groups and run actions.
	RoleOperator Role = "operator"
	// RoleAuditor may read everything and change nothing.
	RoleAuditor Role = "auditor"
)

// Roles lists every role, most powerful first.
func Roles() []Role { return []Role{RoleAdmin, RoleOperator, RoleAuditor} }

// Permission is one kind of access a request needs.
type Permission string

// The permissions.
const (
	// PermRead allows viewing anything.
	PermRead Permission = "read"
	// PermWrite allows changing devices, sites and groups and running
	// actions.
	PermWrite Permission = "write"
	// PermAdmin allows managing operators, API tokens and settings.
	PermAdmin Permission = "admin"
)

// ParseRole returns the role named by s ("admin", "operator" or "auditor",
// any case, surrounding space ignored). Returns an Invalid *apperr.Error
// naming the field "role" otherwise.
func ParseRole(s string) (Role, error) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	if r.Valid() {
		return r, nil
	}
	if s == "" {
		return "", apperr.InvalidField("role", "is required: admin, operator or auditor")
	}
	return "", apperr.InvalidField("role", "%q is not a role: use admin, operator or auditor", clip(s, 40))
}

// Valid reports whether r is one of the defined roles.
func (r Role) Valid() bool { return r == RoleAdmin || r == RoleOperator || r == RoleAuditor }

// Permissions returns what r allows: admin all three, operator read and
// write, auditor read. An undefined role allows nothing.
func (r Role) Permissions() []Permission {
	switch r {
	case RoleAdmin:
		return []Permission{PermRead, PermWrite, PermAdmin}
	case RoleOperator:
		return []Permission{PermRead, PermWrite}
	case RoleAuditor:
		return []Permission{PermRead}
	}
	return nil
}

// Allows reports whether r grants perm.
func (r Role) Allows(perm Permission) bool { return slices.Contains(r.Permissions(), perm) }

// The kinds of Principal.
const (
	KindSession = "session" // an operator logged in through the dashboard or the login API
	KindToken   = "token"   // an API token sent as a bearer credential
)

// Principal is an authenticated caller, as AuthenticateSession or
// AuthenticateToken found it. It is a value: it does not change when the
// operator or token does, so callers re-authenticate per request.
type Principal struct {
	// Kind is KindSession or KindToken.
	Kind string `json:"kind"`
	// OperatorID and Username identify the operator of a session.
	OperatorID int64  `json:"operator_id,omitempty"`
	Username   string `json:"username,omitempty"`
	// Role is the operator's or the token's role.
	Role Role `json:"role"`
	// TokenID and TokenName identify the API token of a token principal.
	TokenID   string `json:"token_id,omitempty"`
	TokenName string `json:"token_name,omitempty"`
	// Scopes limit a token further than its role: a token may use a
	// permission only when its role allows it and it is in Scopes. Empty
	// for sessions.
	Scopes []string `json:"scopes,omitempty"`
	// SessionID is the public identifier of a session (not its secret).
	SessionID string `json:"session_id,omitempty"`
	// CSRFToken is the session's anti-forgery token, which every
	// state-changing request made with the session cookie must carry.
	CSRFToken string `json:"-"`
	// ExpiresAt is when the credential stops working if nothing else
	// happens: for a session, the end of its idle window (or its absolute
	// end, if sooner); for a token, its expiry.
	ExpiresAt time.Time `json:"expires_at"`
}

// Can reports whether p may use perm. A session may use what its
// operator's role allows; a token only what both its role and its scopes
// allow. The zero Principal can do nothing.
func (p Principal) Can(perm Permission) bool {
	if !p.Role.Allows(perm) {
		return false
	}
	switch p.Kind {
	case KindSession:
		return true
	case KindToken:
		return slices.Contains(p.Scopes, string(perm))
	}
	return false
}

// ActorName names p in the ledger and on the bus: "operator:<username>"
// for a session, "token:<name>" for an API token.
func (p Principal) ActorName() string {
	if p.Kind == KindToken {
		return "token:" + p.TokenName
	}
	return "operator:" + p.Username
}

// clip shortens s for an error message, so a huge input does not make a
// huge error.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
