package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/bus"
	"github.com/fleetward/fleetward/internal/store"
)

// Operator is a person who logs in to the dashboard and the API. Operators
// are created and managed by administrators (or the CLI on the server);
// they are never deleted, only disabled, so the ledger's references to
// them stay meaningful. The password and second factor are never part of
// this value.
type Operator struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
	Role     Role   `json:"role"`
	// MFAEnrolled says a TOTP authenticator is enrolled: every login then
	// asks for a code.
	MFAEnrolled bool `json:"mfa_enrolled"`
	// RecoveryCodesLeft is how many unused recovery codes remain.
	RecoveryCodesLeft int `json:"recovery_codes_left"`
	// Disabled operators cannot log in; their sessions were ended.
	Disabled          bool      `json:"disabled"`
	CreatedAt         time.Time `json:"created_at"`
	UpdatedAt         time.Time `json:"updated_at"`
	PasswordChangedAt time.Time `json:"password_changed_at"`
	LastLoginAt       time.Time `json:"last_login_at,omitzero"`
}

// operatorRow is an operator with its secrets, as stored.
type operatorRow struct {
	Operator
	passwordHash string
	totpSealed   string
	totpLastStep int64
}

const operatorColumns = `o.id, o.username, o.role, o.mfa_enrolled, o.disabled, o.created_at, o.updated_at,
	o.password_changed_at, o.last_login_at, o.password_hash, o.totp_sealed, o.totp_last_step,
	(SELECT COUNT(*) FROM operator_recovery_codes c WHERE c.operator_id = o.id AND c.used_at = 0)`

func scanOperator(row interface{ Scan(...any) error }) (operatorRow, error) {
	var o operatorRow
	var mfa, disabled int
	var created, updated, pwChanged, lastLogin int64
	err := row.Scan(&o.ID, &o.Username, &o.Role, &mfa, &disabled, &created, &updated, &pwChanged, &lastLogin,
		&o.passwordHash, &o.totpSealed, &o.totpLastStep, &o.RecoveryCodesLeft)
	if err != nil {
		return operatorRow{}, err
	}
	o.MFAEnrolled, o.Disabled = mfa != 0, disabled != 0
	o.CreatedAt, o.UpdatedAt, o.PasswordChangedAt, o.LastLoginAt = store.Time(created), store.Time(updated), store.Time(pwChanged), store.Time(lastLogin)
	return o, nil
}

// validateUsername checks ^[a-z][a-z0-9._-]{1,31}$ and returns an Invalid
// *apperr.Error naming the field "username".
func validateUsername(u string) error {
	if u == "" {
		return apperr.InvalidField("username", "is required")
	}
	if len(u) < 2 || len(u) > 32 {
		return apperr.InvalidField("username", "must be 2 to 32 characters long")
	}
	if u[0] < 'a' || u[0] > 'z' {
		return apperr.InvalidField("username", "must start with a lowercase letter")
	}
	for i := 1; i < len(u); i++ {
		c := u[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '.' && c != '_' && c != '-' {
			return apperr.InvalidField("username", "may contain only lowercase letters, digits, '.', '_' and '-'")
		}
	}
	return nil
}

// CreateOperator creates an operator with a password and a role.
// Administrators enrol a TOTP authenticator at their first login (see
// Login). Returns Invalid naming "username", "password" or "role" when one
// breaks its rules (username ^[a-z][a-z0-9._-]{1,31}$; password 12 to 1024
// characters, not common, not the username), Conflict when the username is
// taken.
func (s *Service) CreateOperator(ctx context.Context, username, password string, role Role) (Operator, error) {
	if err := validateUsername(username); err != nil {
		return Operator{}, err
	}
	if !role.Valid() {
		return Operator{}, apperr.InvalidField("role", "%q is not a role: use admin, operator or auditor", clip(string(role), 40))
	}
	if err := validatePassword(password, username); err != nil {
		return Operator{}, err
	}
	hash, err := s.hash(ctx, password)
	if err != nil {
		return Operator{}, fmt.Errorf("create operator %s: %w", username, err)
	}
	now := s.now()
	op := Operator{Username: username, Role: role, CreatedAt: now, UpdatedAt: now, PasswordChangedAt: now}
	ev := s.event(ctx, "operator.created", username, "", map[string]any{"role": role})
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO operators (username, role, password_hash, created_at, updated_at, password_changed_at)
			VALUES (?, ?, ?, ?, ?, ?) RETURNING id`, username, role, hash, store.Nanos(now), store.Nanos(now), store.Nanos(now)).Scan(&op.ID)
		if err != nil {
			if store.IsUniqueViolation(err) {
				return apperr.Errorf(apperr.Conflict, "operator %q already exists", username)
			}
			return err
		}
		return s.recordTx(ctx, tx, ev)
	})
	if err != nil {
		return Operator{}, fmt.Errorf("create operator %s: %w", username, err)
	}
	s.publish(ctx, ev)
	s.log.Info("operator created", "username", username, "role", role)
	return op, nil
}

// ListOperators returns every operator, disabled ones included, by
// username.
func (s *Service) ListOperators(ctx context.Context) ([]Operator, error) {
	rows, err := s.db.Query(ctx, `SELECT `+operatorColumns+` FROM operators o ORDER BY o.username`)
	if err != nil {
		return nil, fmt.Errorf("list operators: %w", err)
	}
	defer rows.Close()
	out := []Operator{}
	for rows.Next() {
		o, err := scanOperator(rows)
		if err != nil {
			return nil, fmt.Errorf("list operators: %w", err)
		}
		out = append(out, o.Operator)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list operators: %w", err)
	}
	return out, nil
}

// GetOperator returns the operator with the username. Returns NotFound
// when there is none.
func (s *Service) GetOperator(ctx context.Context, username string) (Operator, error) {
	o, err := s.loadOperator(ctx, s.db, username, false)
	if err != nil {
		return Operator{}, err
	}
	return o.Operator, nil
}

// loadOperator reads an operator with its secrets; forUpdate locks the row
// (inside a transaction). Returns NotFound when there is none.
func (s *Service) loadOperator(ctx context.Context, q store.Querier, username string, forUpdate bool) (operatorRow, error) {
	query := `SELECT ` + operatorColumns + ` FROM operators o WHERE o.username = ?`
	if forUpdate {
		query += s.db.ForUpdate()
	}
	o, err := scanOperator(q.QueryRow(ctx, query, username))
	if errors.Is(err, sql.ErrNoRows) {
		return operatorRow{}, apperr.NotFoundf("operator %q not found", clip(username, 40))
	}
	if err != nil {
		return operatorRow{}, fmt.Errorf("load operator %s: %w", clip(username, 40), err)
	}
	return o, nil
}

// SetPassword replaces an operator's password and ends all of the
// operator's sessions. Returns Invalid naming "password" when it breaks
// the rules, NotFound when the operator does not exist.
func (s *Service) SetPassword(ctx context.Context, username, password string) error {
	if _, err := s.GetOperator(ctx, username); err != nil {
		return err
	}
	if err := validatePassword(password, username); err != nil {
		return err
	}
	hash, err := s.hash(ctx, password)
	if err != nil {
		return fmt.Errorf("set password of %s: %w", username, err)
	}
	ev := s.event(ctx, "operator.password_changed", username, "", nil)
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		o, err := s.loadOperator(ctx, tx, username, true)
		if err != nil {
			return err
		}
		now := store.Nanos(s.now())
		if _, err := tx.Exec(ctx, `UPDATE operators SET password_hash = ?, password_changed_at = ?, updated_at = ? WHERE id = ?`,
			hash, now, now, o.ID); err != nil {
			return err
		}
		n, err := endSessions(ctx, tx, o.ID)
		if err != nil {
			return err
		}
		ev.Data = mustJSON(map[string]any{"sessions_ended": n})
		return s.recordTx(ctx, tx, ev)
	})
	if err != nil {
		return fmt.Errorf("set password of %s: %w", username, err)
	}
	s.publish(ctx, ev)
	s.log.Info("operator password changed", "username", username)
	return nil
}

// SetRole changes an operator's role and ends the operator's sessions, so
// the next login meets the new role's requirements (an administrator's
// second factor). Returns Invalid naming "role" for an unknown role,
// NotFound when the operator does not exist, Conflict when it would leave
// no enabled administrator.
func (s *Service) SetRole(ctx context.Context, username string, role Role) error {
	if !role.Valid() {
		return apperr.InvalidField("role", "%q is not a role: use admin, operator or auditor", clip(string(role), 40))
	}
	var ev bus.Event
	changed := false
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		o, err := s.loadOperator(ctx, tx, username, true)
		if err != nil {
			return err
		}
		if o.Role == role {
			return nil
		}
		if o.Role == RoleAdmin && !o.Disabled {
			if err := s.keepOneAdmin(ctx, tx, o.ID, "change the role of"); err != nil {
				return err
			}
		}
		now := store.Nanos(s.now())
		if _, err := tx.Exec(ctx, `UPDATE operators SET role = ?, updated_at = ? WHERE id = ?`, role, now, o.ID); err != nil {
			return err
		}
		if _, err := endSessions(ctx, tx, o.ID); err != nil {
			return err
		}
		changed = true
		ev = s.event(ctx, "operator.role_changed", username, "", map[string]any{"from": o.Role, "to": role})
		return s.recordTx(ctx, tx, ev)
	})
	if err != nil {
		return fmt.Errorf("set role of %s: %w", username, err)
	}
	if changed {
		s.publish(ctx, ev)
		s.log.Info("operator role changed", "username", username, "role", role)
	}
	return nil
}

// DisableOperator stops an operator from logging in and ends the
// operator's sessions. Disabling a disabled operator does nothing. Returns
// NotFound when the operator does not exist, Conflict when it is the last
// enabled administrator.
func (s *Service) DisableOperator(ctx context.Context, username string) error {
	var ev bus.Event
	changed := false
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		o, err := s.loadOperator(ctx, tx, username, true)
		if err != nil {
			return err
		}
		if o.Disabled {
			return nil
		}
		if o.Role == RoleAdmin {
			if err := s.keepOneAdmin(ctx, tx, o.ID, "disable"); err != nil {
				return err
			}
		}
		now := store.Nanos(s.now())
		if _, err := tx.Exec(ctx, `UPDATE operators SET disabled = 1, updated_at = ? WHERE id = ?`, now, o.ID); err != nil {
			return err
		}
		n, err := endSessions(ctx, tx, o.ID)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM login_pending WHERE operator_id = ?`, o.ID); err != nil {
			return err
		}
		changed = true
		ev = s.event(ctx, "operator.disabled", username, "", map[string]any{"sessions_ended": n})
		return s.recordTx(ctx, tx, ev)
	})
	if err != nil {
		return fmt.Errorf("disable operator %s: %w", username, err)
	}
	if changed {
		s.publish(ctx, ev)
		s.log.Info("operator disabled", "username", username)
	}
	return nil
}

// keepOneAdmin returns Conflict unless an enabled administrator other than
// id exists. It locks the administrators' rows, so two concurrent
// demotions cannot both pass.
func (s *Service) keepOneAdmin(ctx context.Context, tx *store.Tx, id int64, what string) error {
	rows, err := tx.Query(ctx, `SELECT id FROM operators WHERE role = ? AND disabled = 0`+s.db.ForUpdate(), RoleAdmin)
	if err != nil {
		return err
	}
	defer rows.Close()
	others := 0
	for rows.Next() {
		var other int64
		if err := rows.Scan(&other); err != nil {
			return err
		}
		if other != id {
			others++
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if others == 0 {
		return apperr.Errorf(apperr.Conflict, "cannot %s the last enabled administrator; create another administrator first", what)
	}
	return nil
}
