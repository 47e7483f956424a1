package api

import "net/http"

// WriteJSON writes v as the JSON response with status, for routes other
// packages register with Handle.
func WriteJSON(w http.ResponseWriter, status int, v any) { writeJSON(w, status, v) }

// DecodeJSON decodes a request body the way every API route does: one JSON
// value, no unknown fields, errors as Invalid naming the field.
func DecodeJSON(r *http.Request, v any) error { return decodeJSON(r, v) }
