package api

import (
	_ "embed"
	"net/http"
)

// openAPIDocument describes every route of the JSON API. It is written by
// hand (it is documentation); TestEveryRouteIsDocumented checks it against
// the routes the server registers, both ways.
//
//go:embed openapi.json
var openAPIDocument []byte

// OpenAPIDocument returns the OpenAPI 3.1 document served at
// /api/openapi.json.
func OpenAPIDocument() []byte { return openAPIDocument }

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(openAPIDocument)
}
