package auth

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/bus"
	"github.com/fleetward/fleetward/internal/store"
)

// Token is an API token: a bearer credential for scripts and
// integrations, with a role, optional narrower scopes and an expiry. It is
// created by an administrator (or the CLI), shown in clear once, stored as
// a SHA-256 hash of its secret, and revoked rather than deleted, so the
// ledger's references to it stay meaningful.
type Token struct {
	// ID is the public part of the token ("fwt_<id>_<secret>"), 16 hex
	// digits.
	ID   string `json:"id"`
	Name string `json:"name"`
	Role Role   `json:"role"`
	// Scopes are the permissions the token may use, within its role's.
	Scopes []string `json:"scopes"`
	// CreatedBy is the actor that created it ("operator:alice", "cli:root").
	CreatedBy  string    `json:"created_by"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"` // to the minute
	Revoked    bool      `json:"revoked"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
}

// Token rules.
const (
	tokenPrefix     = "fwt_"
	tokenIDLen      = 16 // hex digits: 8 random bytes
	tokenSecretLen  = 64 // hex digits: 32 random bytes
	defaultTokenTTL = 90 * 24 * time.Hour
	maxTokenTTL     = 2 * 365 * 24 * time.Hour
	// minTokenTTL refuses tokens that would be expired on arrival.
	minTokenTTL  = time.Minute
	maxTokenName = 64
	// tokenUseEvery is how often a token's use is written down: its
	// last_used_at and a security.token_used entry in the ledger.
	tokenUseEvery = time.Minute
)

func errBadToken() error { return apperr.Errorf(apperr.Unauthorized, "invalid API token") }

// validateTokenName checks a token name: 1 to 64 letters, digits, '.',
// '_' and '-', starting with a letter or digit.
func validateTokenName(name string) error {
	if name == "" {
		return apperr.InvalidField("name", "is required: say what the token is for, e.g. \"ci-export\"")
	}
	if len(name) > maxTokenName {
		return apperr.InvalidField("name", "is %d characters long; at most %d are allowed", len(name), maxTokenName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
		if i == 0 && !alnum {
			return apperr.InvalidField("name", "must start with a letter or digit")
		}
		if !alnum && c != '.' && c != '_' && c != '-' {
			return apperr.InvalidField("name", "may contain only letters, digits, '.', '_' and '-'")
		}
	}
	return nil
}

// tokenScopes validates requested scopes against a role and returns them
// in canonical order; none requested means all the role allows.
func tokenScopes(role Role, requested []string) ([]string, error) {
	allowed := role.Permissions()
	if len(requested) == 0 {
		out := make([]string, len(allowed))
		for i, p := range allowed {
			out[i] = string(p)
		}
		return out, nil
	}
	want := map[Permission]bool{}
	for _, sc := range requested {
		p := Permission(strings.ToLower(strings.TrimSpace(sc)))
		if p != PermRead && p != PermWrite && p != PermAdmin {
			return nil, apperr.InvalidField("scopes", "%q is not a scope: use read, write or admin", clip(sc, 40))
		}
		if !role.Allows(p) {
			return nil, apperr.InvalidField("scopes", "role %s does not allow the %s scope", role, p)
		}
		want[p] = true
	}
	var out []string
	for _, p := range allowed {
		if want[p] {
			out = append(out, string(p))
		}
	}
	return out, nil
}

// CreateToken creates an API token and returns it in clear, once:
// "fwt_<id>_<secret>", with a 32-byte random secret. scopes narrow the
// role (none means all the role allows); ttl 0 means 90 days. Returns
// Invalid naming "name", "role", "scopes" or "ttl" (negative, under a
// minute or over 2 years), Conflict when an active (unrevoked, unexpired) token has the
// name.
func (s *Service) CreateToken(ctx context.Context, name string, role Role, scopes []string, ttl time.Duration) (string, Token, error) {
	if err := validateTokenName(name); err != nil {
		return "", Token{}, err
	}
	if !role.Valid() {
		return "", Token{}, apperr.InvalidField("role", "%q is not a role: use admin, operator or auditor", clip(string(role), 40))
	}
	sc, err := tokenScopes(role, scopes)
	if err != nil {
		return "", Token{}, err
	}
	switch {
	case ttl < 0:
		return "", Token{}, apperr.InvalidField("ttl", "must be positive")
	case ttl > 0 && ttl < minTokenTTL:
		return "", Token{}, apperr.InvalidField("ttl", "is %s; at least %s is required", ttl, minTokenTTL)
	case ttl == 0:
		ttl = defaultTokenTTL
	case ttl > maxTokenTTL:
		return "", Token{}, apperr.InvalidField("ttl", "is %s; at most 2 years (%s) is allowed", ttl, maxTokenTTL)
	}
	now := s.now()
	t := Token{ID: randomHex(tokenIDLen / 2), Name: name, Role: role, Scopes: sc, CreatedBy: actor.From(ctx).Name,
		CreatedAt: now, ExpiresAt: now.Add(ttl)}
	secret := randomHex(tokenSecretLen / 2)
	scopesJSON, _ := json.Marshal(sc)
	ev := s.event(ctx, "token.created", t.ID, "", map[string]any{"name": name, "role": role, "scopes": sc, "expires_at": t.ExpiresAt})
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM api_tokens WHERE name = ? AND revoked_at = 0 AND expires_at > ?`,
			name, store.Nanos(now)).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return apperr.Errorf(apperr.Conflict, "an active API token named %q exists; revoke it or choose another name", name)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO api_tokens (id, name, secret_hash, role, scopes, created_by, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, t.ID, name, sha256Hex(secret), role, string(scopesJSON), t.CreatedBy,
			store.Nanos(now), store.Nanos(t.ExpiresAt)); err != nil {
			return err
		}
		return s.recordTx(ctx, tx, ev)
	})
	if err != nil {
		return "", Token{}, fmt.Errorf("create API token %s: %w", name, err)
	}
	s.publish(ctx, ev)
	s.log.Info("API token created", "token", t.ID, "name", name, "role", role, "scopes", sc, "expires", t.ExpiresAt)
	return tokenPrefix + t.ID + "_" + secret, t, nil
}

// parseBearer splits "fwt_<16 hex>_<64 hex>"; ok is false for anything
// else.
func parseBearer(bearer string) (id, secret string, ok bool) {
	rest, ok := strings.CutPrefix(bearer, tokenPrefix)
	if !ok {
		return "", "", false
	}
	id, secret, ok = strings.Cut(rest, "_")
	if !ok || len(id) != tokenIDLen || len(secret) != tokenSecretLen || !isLowerHex(id) || !isLowerHex(secret) {
		return "", "", false
	}
	return id, secret, true
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && (s[i] < 'a' || s[i] > 'f') {
			return false
		}
	}
	return true
}

const tokenColumns = `id, name, role, scopes, created_by, created_at, expires_at, last_used_at, revoked_at`

func scanToken(row interface{ Scan(...any) error }, extra ...any) (Token, error) {
	var t Token
	var scopes string
	var created, expires, used, revoked int64
	if err := row.Scan(append([]any{&t.ID, &t.Name, &t.Role, &scopes, &t.CreatedBy, &created, &expires, &used, &revoked}, extra...)...); err != nil {
		return Token{}, err
	}
	if err := json.Unmarshal([]byte(scopes), &t.Scopes); err != nil {
		return Token{}, fmt.Errorf("token %s: stored scopes: %w", t.ID, err)
	}
	t.CreatedAt, t.ExpiresAt, t.LastUsedAt, t.RevokedAt = store.Time(created), store.Time(expires), store.Time(used), store.Time(revoked)
	t.Revoked = revoked != 0
	return t, nil
}

// AuthenticateToken returns the principal of an API token given as a
// bearer credential. Use is written down at most once a minute per token
// (last_used_at and a security.token_used ledger entry). Returns
// Unauthorized for anything but a valid, unrevoked, unexpired token; the
// message says "revoked" or "expired" only to a caller who holds the
// token's secret.
func (s *Service) AuthenticateToken(ctx context.Context, bearer, remote string) (Principal, error) {
	id, secret, ok := parseBearer(bearer)
	if !ok {
		s.counters.tokensRejected.Add(1)
		return Principal{}, errBadToken()
	}
	var hash string
	t, err := scanToken(s.db.QueryRow(ctx, `SELECT `+tokenColumns+`, secret_hash FROM api_tokens WHERE id = ?`, id), &hash)
	if errors.Is(err, sql.ErrNoRows) {
		s.counters.tokensRejected.Add(1)
		return Principal{}, errBadToken()
	}
	if err != nil {
		return Principal{}, fmt.Errorf("authenticate API token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(sha256Hex(secret)), []byte(hash)) != 1 {
		s.counters.tokensRejected.Add(1)
		return Principal{}, errBadToken()
	}
	now := s.now()
	p := Principal{Kind: KindToken, Role: t.Role, TokenID: t.ID, TokenName: t.Name, Scopes: t.Scopes, ExpiresAt: t.ExpiresAt}
	if t.Revoked || !now.Before(t.ExpiresAt) {
		why := "expired"
		if t.Revoked {
			why = "revoked"
		}
		s.counters.tokensRejected.Add(1)
		s.tokenRejected(ctx, p, why, remote)
		return Principal{}, apperr.Errorf(apperr.Unauthorized, "API token %s", why)
	}
	s.counters.tokensUsed.Add(1)
	if now.Sub(t.LastUsedAt) >= tokenUseEvery {
		s.noteTokenUse(ctx, p, remote)
	}
	return p, nil
}

// noteTokenUse writes down a token's use, once per tokenUseEvery across
// every node: the conditional update lets exactly one request through.
func (s *Service) noteTokenUse(ctx context.Context, p Principal, remote string) {
	now := s.now()
	ev := s.event(ctx, "security.token_used", p.TokenID, remote, map[string]any{"name": p.TokenName})
	ev.Actor = p.ActorName()
	noted := false
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND last_used_at <= ?`,
			store.Nanos(now), p.TokenID, store.Nanos(now.Add(-tokenUseEvery)))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return nil
		}
		noted = true
		return s.recordTx(ctx, tx, ev)
	})
	if err != nil {
		s.log.Warn("cannot note API token use", "token", p.TokenID, "err", err)
		return
	}
	if noted {
		s.publish(ctx, ev)
	}
}

// tokenRejected records the use of a revoked or expired token (whose
// secret was right, so someone holds it), once per tokenUseEvery.
func (s *Service) tokenRejected(ctx context.Context, p Principal, why, remote string) {
	now := s.now()
	res, err := s.db.Exec(ctx, `UPDATE api_tokens SET last_rejected_at = ? WHERE id = ? AND last_rejected_at <= ?`,
		store.Nanos(now), p.TokenID, store.Nanos(now.Add(-tokenUseEvery)))
	if err != nil {
		s.log.Warn("cannot note a rejected API token", "token", p.TokenID, "err", err)
		return
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return
	}
	s.log.Warn("API token refused", "token", p.TokenID, "name", p.TokenName, "reason", why, "remote", remote)
	ev := s.event(ctx, "security.token_rejected", p.TokenID, remote, map[string]any{"name": p.TokenName, "reason": why})
	ev.Actor = p.ActorName()
	s.recordSecurity(ctx, ev)
}

// ListTokens returns every API token, revoked and expired ones included,
// oldest first. Secrets are never part of it.
func (s *Service) ListTokens(ctx context.Context) ([]Token, error) {
	rows, err := s.db.Query(ctx, `SELECT `+tokenColumns+` FROM api_tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list API tokens: %w", err)
	}
	defer rows.Close()
	out := []Token{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list API tokens: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list API tokens: %w", err)
	}
	return out, nil
}

// RevokeToken revokes an API token by its ID, at once on every node.
// Revoking a revoked token does nothing. Returns NotFound when no token
// has the ID.
func (s *Service) RevokeToken(ctx context.Context, id string) error {
	if len(id) != tokenIDLen || !isLowerHex(id) {
		return apperr.NotFoundf("API token %q not found", clip(id, 40))
	}
	var ev bus.Event
	var name string
	revoked := false
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		var at int64
		err := tx.QueryRow(ctx, `SELECT name, revoked_at FROM api_tokens WHERE id = ?`+s.db.ForUpdate(), id).Scan(&name, &at)
		if errors.Is(err, sql.ErrNoRows) {
			return apperr.NotFoundf("API token %q not found", id)
		}
		if err != nil {
			return err
		}
		if at != 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE api_tokens SET revoked_at = ? WHERE id = ?`, store.Nanos(s.now()), id); err != nil {
			return err
		}
		revoked = true
		ev = s.event(ctx, "token.revoked", id, "", map[string]any{"name": name})
		return s.recordTx(ctx, tx, ev)
	})
	if err != nil {
		return fmt.Errorf("revoke API token %s: %w", clip(id, 40), err)
	}
	if revoked {
		s.publish(ctx, ev)
		s.log.Info("API token revoked", "token", id, "name", name)
	}
	return nil
}

// RecordDenied records that p was refused what (e.g. "DELETE
// /api/v1/devices/{id}") for lack of permission or a CSRF token: a log
// line, the permission_denied counter, a security.permission_denied
// ledger entry and bus event.
func (s *Service) RecordDenied(ctx context.Context, p Principal, what, remote string) {
	s.counters.permissionDenied.Add(1)
	s.log.Warn("permission denied", "actor", p.ActorName(), "role", p.Role, "what", clip(what, 200), "remote", remote)
	data := map[string]any{"what": clip(what, 200), "role": p.Role, "kind": p.Kind}
	if p.Kind == KindToken {
		data["scopes"] = p.Scopes
	}
	subject := p.Username
	if p.Kind == KindToken {
		subject = p.TokenID
	}
	ev := s.event(ctx, "security.permission_denied", subject, remote, data)
	ev.Actor = p.ActorName()
	s.recordSecurity(ctx, ev)
}
