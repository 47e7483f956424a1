package api

import (
	"net/http"

	"github.com/fleetward/fleetward/internal/auth"
)

// apiRoutes is the JSON API. Every route here is documented in
// openapi.json; TestEveryRouteIsDocumented keeps the two in step.
func (s *Server) apiRoutes() []Route {
	r, w, a := auth.PermRead, auth.PermWrite, auth.PermAdmin
	return []Route{
		// Sessions. Login and the MFA step are public by nature; they are
		// throttled by the auth service.
		{Method: "POST", Pattern: "/api/v1/auth/login", Handler: s.login},
		{Method: "POST", Pattern: "/api/v1/auth/mfa", Handler: s.completeLogin},
		{Method: "POST", Pattern: "/api/v1/auth/logout", Perm: r, Handler: s.logout},
		{Method: "GET", Pattern: "/api/v1/auth/me", Perm: r, Handler: s.me},

		{Method: "GET", Pattern: "/api/v1/stats", Perm: r, Handler: s.fleetStats},

		{Method: "GET", Pattern: "/api/v1/devices", Perm: r, Handler: s.listDevices},
		{Method: "POST", Pattern: "/api/v1/devices", Perm: w, Handler: s.createDevice},
		{Method: "POST", Pattern: "/api/v1/devices/import", Perm: w, Handler: s.importDevices, BodyLimit: MaxImportBody},
		{Method: "GET", Pattern: "/api/v1/devices/export", Perm: r, Handler: s.exportDevices},
		{Method: "GET", Pattern: "/api/v1/devices/{id}", Perm: r, Handler: s.getDevice},
		{Method: "PATCH", Pattern: "/api/v1/devices/{id}", Perm: w, Handler: s.updateDevice},
		{Method: "DELETE", Pattern: "/api/v1/devices/{id}", Perm: w, Handler: s.deleteDevice},
		{Method: "GET", Pattern: "/api/v1/devices/{id}/history", Perm: r, Handler: s.deviceHistory},

		{Method: "GET", Pattern: "/api/v1/sites", Perm: r, Handler: s.listSites},
		{Method: "POST", Pattern: "/api/v1/sites", Perm: w, Handler: s.createSite},
		{Method: "GET", Pattern: "/api/v1/sites/{id}", Perm: r, Handler: s.getSite},
		{Method: "DELETE", Pattern: "/api/v1/sites/{id}", Perm: w, Handler: s.deleteSite},

		{Method: "GET", Pattern: "/api/v1/groups", Perm: r, Handler: s.listGroups},
		{Method: "POST", Pattern: "/api/v1/groups", Perm: w, Handler: s.createGroup},
		{Method: "GET", Pattern: "/api/v1/groups/{id}", Perm: r, Handler: s.getGroup},
		{Method: "DELETE", Pattern: "/api/v1/groups/{id}", Perm: w, Handler: s.deleteGroup},
		{Method: "POST", Pattern: "/api/v1/groups/{id}/members", Perm: w, Handler: s.addGroupMembers},
		{Method: "DELETE", Pattern: "/api/v1/groups/{id}/members/{device}", Perm: w, Handler: s.removeGroupMember},

		{Method: "GET", Pattern: "/api/v1/operators", Perm: a, Handler: s.listOperators},
		{Method: "POST", Pattern: "/api/v1/operators", Perm: a, Handler: s.createOperator},
		{Method: "POST", Pattern: "/api/v1/operators/{username}/reset-mfa", Perm: a, Handler: s.resetMFA},
		{Method: "POST", Pattern: "/api/v1/operators/{username}/disable", Perm: a, Handler: s.disableOperator},

		{Method: "GET", Pattern: "/api/v1/tokens", Perm: a, Handler: s.listTokens},
		{Method: "POST", Pattern: "/api/v1/tokens", Perm: a, Handler: s.createToken},
		{Method: "DELETE", Pattern: "/api/v1/tokens/{id}", Perm: a, Handler: s.revokeToken},

		{Method: "GET", Pattern: "/api/v1/ledger/checkpoint", Perm: r, Handler: s.ledgerCheckpoint},
		{Method: "GET", Pattern: "/api/v1/ledger/entries", Perm: r, Handler: s.ledgerEntries},
		{Method: "GET", Pattern: "/api/v1/ledger/proof/inclusion", Perm: r, Handler: s.inclusionProof},
		{Method: "GET", Pattern: "/api/v1/ledger/proof/consistency", Perm: r, Handler: s.consistencyProof},
	}
}

var _ = http.MethodGet
