package api

import (
	"net/http"
	"time"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/auth"
)

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type mfaRequest struct {
	PendingID string `json:"pending_id"`
	Code      string `json:"code"`
}

// loginResponse answers both login steps: either a session was made
// (status "ok") or a second step is pending ("mfa_required" or
// "mfa_enrolment", the latter with the TOTP secret to enrol).
type loginResponse struct {
	Status        string    `json:"status"`
	Username      string    `json:"username,omitempty"`
	Role          auth.Role `json:"role,omitempty"`
	CSRFToken     string    `json:"csrf_token,omitempty"`
	ExpiresAt     time.Time `json:"expires_at,omitzero"`
	PendingID     string    `json:"pending_id,omitempty"`
	OTPAuthURL    string    `json:"otpauth_url,omitempty"`
	Secret        string    `json:"secret,omitempty"`
	QRCodePNG     []byte    `json:"qr_png,omitempty"`
	RecoveryCodes []string  `json:"recovery_codes,omitempty"`
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	var req loginRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Username == "" {
		return apperr.InvalidField("username", "is required")
	}
	if req.Password == "" {
		return apperr.InvalidField("password", "is required")
	}
	res, err := s.deps.Auth.Login(r.Context(), req.Username, req.Password, RemoteAddr(r))
	if err != nil {
		return err
	}
	if res.Session != nil {
		s.SetSessionCookie(w, res.Session)
		writeJSON(w, http.StatusOK, sessionResponse(res.Session, nil))
		return nil
	}
	p := res.Pending
	out := loginResponse{Status: "mfa_required", PendingID: p.ID, Username: p.Username}
	if p.NeedsEnrolment {
		out.Status, out.OTPAuthURL, out.Secret, out.QRCodePNG = "mfa_enrolment", p.OTPAuthURL, p.Secret, p.QRCodePNG
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) completeLogin(w http.ResponseWriter, r *http.Request) error {
	var req mfaRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.PendingID == "" {
		return apperr.InvalidField("pending_id", "is required")
	}
	if req.Code == "" {
		return apperr.InvalidField("code", "is required")
	}
	sess, codes, err := s.deps.Auth.CompleteLogin(r.Context(), req.PendingID, req.Code, RemoteAddr(r))
	if err != nil {
		return err
	}
	s.SetSessionCookie(w, &sess)
	writeJSON(w, http.StatusOK, sessionResponse(&sess, codes))
	return nil
}

func sessionResponse(sess *auth.Session, codes []string) loginResponse {
	return loginResponse{Status: "ok", Username: sess.Username, Role: sess.Role, CSRFToken: sess.CSRFToken, ExpiresAt: sess.ExpiresAt, RecoveryCodes: codes}
}

// SetSessionCookie gives the browser its session: Secure (unless the
// server runs in plaintext by explicit flag), HttpOnly, SameSite=Strict.
func (s *Server) SetSessionCookie(w http.ResponseWriter, sess *auth.Session) {
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: sess.Token, Path: "/",
		Expires: sess.ExpiresAt, Secure: !s.deps.PlaintextInsecure, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
}

// ClearSessionCookie removes the session cookie from the browser.
func (s *Server) ClearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		Secure: !s.deps.PlaintextInsecure, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	if c, err := r.Cookie(SessionCookie); err == nil {
		if err := s.deps.Auth.Logout(r.Context(), c.Value); err != nil {
			return err
		}
	}
	s.ClearSessionCookie(w)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) error {
	p, _ := PrincipalFrom(r.Context())
	writeJSON(w, http.StatusOK, map[string]any{
		"kind": p.Kind, "username": p.Username, "token_name": p.TokenName, "role": p.Role,
		"scopes": p.Scopes, "expires_at": p.ExpiresAt,
	})
	return nil
}

type createOperatorRequest struct {
	Username string    `json:"username"`
	Password string    `json:"password"`
	Role     auth.Role `json:"role"`
}

func (s *Server) listOperators(w http.ResponseWriter, r *http.Request) error {
	ops, err := s.deps.Auth.ListOperators(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"operators": ops})
	return nil
}

func (s *Server) createOperator(w http.ResponseWriter, r *http.Request) error {
	var req createOperatorRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	role, err := auth.ParseRole(string(req.Role))
	if err != nil {
		return apperr.InvalidField("role", "must be admin, operator or auditor")
	}
	op, err := s.deps.Auth.CreateOperator(r.Context(), req.Username, req.Password, role)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, op)
	return nil
}

func (s *Server) resetMFA(w http.ResponseWriter, r *http.Request) error {
	if err := s.deps.Auth.ResetMFA(r.Context(), r.PathValue("username")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) disableOperator(w http.ResponseWriter, r *http.Request) error {
	if err := s.deps.Auth.DisableOperator(r.Context(), r.PathValue("username")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type createTokenRequest struct {
	Name   string    `json:"name"`
	Role   auth.Role `json:"role"`
	Scopes []string  `json:"scopes,omitempty"`
	// TTL is a Go duration ("720h"); empty means the default of 90 days.
	TTL string `json:"ttl,omitempty"`
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) error {
	toks, err := s.deps.Auth.ListTokens(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": toks})
	return nil
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) error {
	var req createTokenRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	role, err := auth.ParseRole(string(req.Role))
	if err != nil {
		return apperr.InvalidField("role", "must be admin, operator or auditor")
	}
	var ttl time.Duration
	if req.TTL != "" {
		if ttl, err = time.ParseDuration(req.TTL); err != nil || ttl <= 0 {
			return apperr.InvalidField("ttl", "must be a positive duration such as 720h")
		}
	}
	plain, tok, err := s.deps.Auth.CreateToken(r.Context(), req.Name, role, req.Scopes, ttl)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"token": plain, "info": tok})
	return nil
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) error {
	if err := s.deps.Auth.RevokeToken(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
