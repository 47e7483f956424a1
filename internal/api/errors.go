package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fleetward/fleetward/internal/apperr"
)

// statusOf maps application error codes to HTTP statuses, one to one.
var statusOf = map[apperr.Code]int{
	apperr.Invalid:       http.StatusBadRequest,
	apperr.Unauthorized:  http.StatusUnauthorized,
	apperr.MFARequired:   http.StatusUnauthorized,
	apperr.MFAEnrollment: http.StatusUnauthorized,
	apperr.Forbidden:     http.StatusForbidden,
	apperr.NotFound:      http.StatusNotFound,
	apperr.Conflict:      http.StatusConflict,
	apperr.TooLarge:      http.StatusRequestEntityTooLarge,
	apperr.RateLimited:   http.StatusTooManyRequests,
	apperr.Unavailable:   http.StatusServiceUnavailable,
	apperr.Internal:      http.StatusInternalServerError,
}

// StatusOf returns the HTTP status for an error's application code.
func StatusOf(err error) int {
	if s, ok := statusOf[apperr.CodeOf(err)]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// errorBody is the one error shape of the API:
// {"error":{"code":"invalid","message":"…","field":"…"}}.
type errorBody struct {
	Error *apperr.Error `json:"error"`
}

// writeError answers with the error's status and shape. Internal errors are
// logged with their detail and shown to the caller only as "internal error".
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	e := apperr.As(err)
	if e == nil || e.Code == apperr.Internal {
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		e = &apperr.Error{Code: apperr.Internal, Message: "internal error; the operator can find details in the server log"}
	}
	if e.Code == apperr.RateLimited && e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	writeJSON(w, StatusOf(e), errorBody{Error: e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}

// decodeJSON decodes exactly one JSON value from the body into v, refusing
// unknown fields and trailing data, and turns every failure into an Invalid
// (or TooLarge) error that names the field where it can.
func decodeJSON(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return apperr.Errorf(apperr.Invalid, "Content-Type must be application/json, not %q", ct)
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return jsonError(err)
		}
		return apperr.Errorf(apperr.Invalid, "request body has data after the JSON value")
	}
	return nil
}

// jsonError explains a decoding error in terms of the request.
func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return &apperr.Error{Code: apperr.TooLarge, Message: fmt.Sprintf("request body is larger than %d bytes", tooBig.Limit)}
	case errors.Is(err, io.EOF):
		return apperr.Errorf(apperr.Invalid, "request body is empty; a JSON value is required")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apperr.Errorf(apperr.Invalid, "request body ends in the middle of a JSON value")
	case errors.As(err, &syn):
		return apperr.Errorf(apperr.Invalid, "malformed JSON at byte %d: %s", syn.Offset, syn.Error())
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return apperr.InvalidField(field, "must be %s, not %s", jsonKind(typ.Type.Kind().String()), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return apperr.InvalidField(name, "is not a known field")
	}
	if e := apperr.As(err); e != nil {
		return e // a type's own UnmarshalJSON said what is wrong
	}
	var te *time.ParseError
	if errors.As(err, &te) {
		// encoding/json does not say which field a time came from.
		return apperr.Errorf(apperr.Invalid, "a time value %s is not RFC 3339 (like 2026-11-25T08:00:00Z)", te.Value)
	}
	return apperr.Errorf(apperr.Invalid, "malformed request body: %s", err.Error())
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	case "bool":
		return "true or false"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	default:
		return "a number"
	}
}
