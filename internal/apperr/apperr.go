// Package apperr defines fleetward's application error codes. Every error
// that crosses a package boundary towards a caller (the API, the CLI) is an
// *Error or wraps one; anything else is reported as internal, logged for the
// operator, and never shown to the caller.
package apperr

import (
	"errors"
	"fmt"
)

// Code classifies an error for callers. Each code maps to one HTTP status.
type Code string

// The application error codes.
const (
	Invalid       Code = "invalid"       // the input is malformed or breaks a rule (400)
	Unauthorized  Code = "unauthorized"  // no or bad credentials (401)
	Forbidden     Code = "forbidden"     // credentials are fine but the role does not allow it (403)
	NotFound      Code = "not_found"     // the subject does not exist (404)
	Conflict      Code = "conflict"      // the subject exists already or changed under the caller (409)
	TooLarge      Code = "too_large"     // the request body is over the limit (413)
	RateLimited   Code = "rate_limited"  // too many attempts; try again later (429)
	Unavailable   Code = "unavailable"   // a dependency is down (503)
	Internal      Code = "internal"      // a bug or an unexpected failure (500)
	MFARequired   Code = "mfa_required"  // the password was right, a second factor is needed (401)
	MFAEnrollment Code = "mfa_enrolment" // the account must enrol a second factor first (401)
)

// Error is an application error: a code, a message fit to show the caller,
// and the input field it concerns, if any.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	// RetryAfter, when set with RateLimited, is the number of seconds the
	// caller should wait before trying again.
	RetryAfter int `json:"retry_after,omitempty"`
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// InvalidField returns an Invalid error about one input field.
func InvalidField(field, format string, args ...any) *Error {
	return &Error{Code: Invalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// NotFoundf returns a NotFound error.
func NotFoundf(format string, args ...any) *Error { return Errorf(NotFound, format, args...) }

// CodeOf returns the code of the first *Error in err's chain, or Internal.
// A nil error has no code.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// As returns the first *Error in err's chain, or nil.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// Is reports whether err carries the code.
func Is(err error, code Code) bool { return err != nil && CodeOf(err) == code }
