package app

import (
	"context"
	"net/http"
	"time"

	"github.com/fleetward/fleetward/internal/api"
	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/auth"
	"github.com/fleetward/fleetward/internal/broker"
	"github.com/fleetward/fleetward/internal/identity"
	"github.com/fleetward/fleetward/internal/telemetry"
)

// registerDeviceAccessAPI serves a device's certificates, revocation of
// all of them in one action (which drops its broker sessions at once), and
// the broker's live sessions and per-device metrics.
func registerDeviceAccessAPI(s *Server) {
	s.API.Handle(api.Route{Method: "GET", Pattern: "/api/v1/devices/{id}/certificates", Perm: auth.PermRead,
		Handler: func(w http.ResponseWriter, r *http.Request) error {
			certs, err := s.CA.DeviceCertificates(r.Context(), r.PathValue("id"))
			if err != nil {
				return err
			}
			if certs == nil {
				certs = []identity.IssuedCertificate{}
			}
			api.WriteJSON(w, http.StatusOK, map[string]any{"certificates": certs})
			return nil
		}})
	s.API.Handle(api.Route{Method: "POST", Pattern: "/api/v1/devices/{id}/revoke", Perm: auth.PermWrite,
		Handler: func(w http.ResponseWriter, r *http.Request) error {
			var req struct {
				Reason identity.Reason `json:"reason"`
			}
			if r.ContentLength != 0 { // the body is optional
				if err := api.DecodeJSON(r, &req); err != nil {
					return err
				}
			}
			if err := req.Reason.Validate(); err != nil {
				return err
			}
			id := r.PathValue("id")
			if _, err := s.Inventory.GetDevice(r.Context(), id); err != nil {
				return err
			}
			revoked, err := s.access.revokeDevice(r.Context(), id, req.Reason)
			if revoked == nil {
				revoked = []string{}
			}
			if err != nil {
				return err
			}
			api.WriteJSON(w, http.StatusOK, map[string]any{"device": id, "revoked": revoked})
			return nil
		}})
	s.API.Handle(api.Route{Method: "GET", Pattern: "/api/v1/devices/{id}/measurements", Perm: auth.PermRead,
		Handler: func(w http.ResponseWriter, r *http.Request) error {
			id := r.PathValue("id")
			if _, err := s.Inventory.GetDevice(r.Context(), id); err != nil {
				return err
			}
			q := r.URL.Query()
			window := 24 * time.Hour
			if v := q.Get("window"); v != "" {
				d, err := time.ParseDuration(v)
				if err != nil || d <= 0 || d > 31*24*time.Hour {
					return apperr.InvalidField("window", "must be a duration from 1s to 744h, e.g. 1h")
				}
				window = d
			}
			metrics := q["metric"]
			if len(metrics) == 0 {
				metrics = telemetry.BrokerMetrics
			}
			if len(metrics) > 64 {
				return apperr.InvalidField("metric", "at most 64 metrics per request")
			}
			series, err := s.Telemetry.Series(r.Context(), id, metrics, time.Now().Add(-window))
			if err != nil {
				return err
			}
			api.WriteJSON(w, http.StatusOK, map[string]any{"device": id, "window": window.String(), "series": series})
			return nil
		}})
	s.API.Handle(api.Route{Method: "GET", Pattern: "/api/v1/broker/sessions", Perm: auth.PermRead,
		Handler: func(w http.ResponseWriter, r *http.Request) error {
			sessions := []broker.Session{}
			if s.Broker != nil {
				sessions = s.Broker.Sessions()
			}
			api.WriteJSON(w, http.StatusOK, map[string]any{"sessions": sessions, "total": len(sessions), "post_quantum": broker.CountPostQuantum(sessions)})
			return nil
		}})
	s.API.Handle(api.Route{Method: "GET", Pattern: "/api/v1/devices/{id}/broker-metrics", Perm: auth.PermRead,
		Handler: func(w http.ResponseWriter, r *http.Request) error {
			id := r.PathValue("id")
			if _, err := s.Inventory.GetDevice(r.Context(), id); err != nil {
				return err
			}
			m := broker.Metrics{DeviceID: id}
			if s.Broker != nil {
				if got, ok := s.Broker.Metrics(id); ok {
					m = got
				}
			}
			api.WriteJSON(w, http.StatusOK, m)
			return nil
		}})
}

// dashboardConnectivity gives the dashboard the CA, the broker and the
// measurements (web.Connectivity).
type dashboardConnectivity struct{ s *Server }

func (d dashboardConnectivity) DeviceCertificates(ctx context.Context, id string) ([]identity.IssuedCertificate, error) {
	return d.s.CA.DeviceCertificates(ctx, id)
}

func (d dashboardConnectivity) Sessions() []broker.Session {
	if d.s.Broker == nil {
		return nil
	}
	return d.s.Broker.Sessions()
}

func (d dashboardConnectivity) Series(ctx context.Context, id string, metrics []string, since time.Time) (map[string][]telemetry.Point, error) {
	return d.s.Telemetry.Series(ctx, id, metrics, since)
}

func (d dashboardConnectivity) RevokeDevice(ctx context.Context, id string) ([]string, error) {
	return d.s.access.revokeDevice(ctx, id, identity.ReasonPrivilegeWithdrawn)
}
