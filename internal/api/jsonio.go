package api

import "net/http"

// WriteJSON answers with status and v as JSON, as the API's own handlers
// do; for routes other packages register with Handle.
func WriteJSON(w http.ResponseWriter, status int, v any) { writeJSON(w, status, v) }

// DecodeJSON decodes exactly one JSON value from the request body into v,
// refusing unknown fields and trailing data, as the API's own handlers do.
// Returns Invalid (naming the field where it can) or TooLarge.
func DecodeJSON(r *http.Request, v any) error { return decodeJSON(r, v) }
