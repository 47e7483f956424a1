package app

import (
	"net/http"
	"strconv"

	"github.com/fleetward/fleetward/internal/api"
	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/audit"
	"github.com/fleetward/fleetward/internal/auth"
)

// registerAuditAPI serves scans, findings, suppression, audits on demand,
// the risk summary and the check catalogue. Starting a scan needs the
// admin permission: it sends traffic to the organization's networks, and
// with credentials="default" tries passwords on its devices.
func registerAuditAPI(s *api.Server, a *auditor) {
	s.Handle(api.Route{Method: "POST", Pattern: "/api/v1/scans", Perm: auth.PermAdmin,
		Handler: func(w http.ResponseWriter, r *http.Request) error {
			var req ScanRequest
			if err := api.DecodeJSON(r, &req); err != nil {
				return err
			}
			rec, err := a.StartScan(r.Context(), req)
			if err != nil {
				return err
			}
			w.Header().Set("Location", "/api/v1/scans/"+rec.ID)
			api.WriteJSON(w, http.StatusAccepted, rec)
			return nil
		}})
	s.Handle(api.Route{Method: "GET", Pattern: "/api/v1/scans", Perm: auth.PermRead,
		Handler: func(w http.ResponseWriter, r *http.Request) error {
			limit := 50
			if v := r.URL.Query().Get("limit"); v != "" {
				n, err := strconv.Atoi(v)
				if err != nil || n < 1 || n > 500 {
					return apperr.InvalidField("limit", "%q: a number from 1 to 500", v)
				}
				limit = n
			}
			scans, err := a.store.Scans(r.Context(), limit)
			if err != nil {
				return err
			}
			api.WriteJSON(w, http.StatusOK, map[string]any{"scans": scans})
			return nil
		}})
	s.Handle(api.Route{Method: "GET", Pattern: "/api/v1/scans/{id}", Perm: auth.PermRead,
		Handler: func(w http.ResponseWriter, r *http.Request) error {
			rec, err := a.store.Scan(r.Context(), r.PathValue("id"))
			if err != nil {
				return err
			}
			api.WriteJSON(w, http.StatusOK, rec)
			return nil
		}})
	s.Handle(api.Route{Method: "GET", Pattern: "/api/v1/exposure", Perm: auth.PermRead,
		Handler: func(w http.ResponseWriter, r *http.Request) error {
			svcs, err := a.store.Services(r.Context(), r.URL.Query().Get("device"))
			if err != nil {
				return err
			}
			api.WriteJSON(w, http.StatusOK, map[string]any{"services": svcs})
			return nil
		}})
	s.Handle(api.Route{Method: "GET", Pattern: "/api/v1/findings", Perm: auth.PermRead,
		Handler: func(w http.ResponseWriter, r *http.Request) error {
			q := r.URL.Query()
			f := audit.FindingFilter{DeviceID: q.Get("device"), Status: q.Get("status"), Severity: q.Get("severity"), Check: q.Get("check")}
			switch v := q.Get("suppressed"); v {
			case "", "false":
			case "true":
				f.IncludeSuppressed = true
			default:
				return apperr.InvalidField("suppressed", "%q: true or false", v)
			}
			fs, err := a.store.Findings(r.Context(), f)
			if err != nil {
				return err
			}
			api.WriteJSON(w, http.StatusOK, map[string]any{"findings": fs})
			return nil
		}})
	s.Handle(api.Route{Method: "GET", Pattern: "/api/v1/findings/{id}", Perm: auth.PermRead,
		Handler: func(w http.ResponseWriter, r *http.Request) error {
			f, err := a.store.Finding(r.Context(), r.PathValue("id"))
			if err != nil {
				return err
			}
			c, _ := audit.CheckByID(f.Check)
			api.WriteJSON(w, http.StatusOK, map[string]any{"finding": f, "check": c})
			return nil
		}})
	s.Handle(api.Route{Method: "POST", Pattern: "/api/v1/findings/{id}/suppress", Perm: auth.PermWrite,
		Handler: func(w http.ResponseWriter, r *http.Request) error {
			var p audit.Suppression
			if err := api.DecodeJSON(r, &p); err != nil {
				return err
			}
			if p.Until.IsZero() && p.Reason == "" {
				return apperr.InvalidField("reason", "is required (use DELETE to lift a suppression)")
			}
			f, err := a.store.Suppress(r.Context(), r.PathValue("id"), p)
			if err != nil {
				return err
			}
			api.WriteJSON(w, http.StatusOK, f)
			return nil
		}})
	s.Handle(api.Route{Method: "DELETE", Pattern: "/api/v1/findings/{id}/suppress", Perm: auth.PermWrite,
		Handler: func(w http.ResponseWriter, r *http.Request) error {
			f, err := a.store.Suppress(r.Context(), r.PathValue("id"), audit.Suppression{})
			if err != nil {
				return err
			}
			api.WriteJSON(w, http.StatusOK, f)
			return nil
		}})
	s.Handle(api.Route{Method: "POST", Pattern: "/api/v1/audit", Perm: auth.PermWrite,
		Handler: func(w http.ResponseWriter, r *http.Request) error {
			rep, err := a.RunAudit(r.Context())
			if err != nil {
				return err
			}
			api.WriteJSON(w, http.StatusOK, rep)
			return nil
		}})
	s.Handle(api.Route{Method: "GET", Pattern: "/api/v1/risk", Perm: auth.PermRead,
		Handler: func(w http.ResponseWriter, r *http.Request) error {
			api.WriteJSON(w, http.StatusOK, a.LastAudit())
			return nil
		}})
	s.Handle(api.Route{Method: "GET", Pattern: "/api/v1/checks", Perm: auth.PermRead,
		Handler: func(w http.ResponseWriter, r *http.Request) error {
			api.WriteJSON(w, http.StatusOK, map[string]any{"checks": audit.Checks})
			return nil
		}})
}
