package app

import (
	"context"
	"net/http"
	"time"

	"github.com/fleetward/fleetward/internal/api"
	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/auth"
	"github.com/fleetward/fleetward/internal/identity"
	"github.com/fleetward/fleetward/internal/inventory"
)

// registerEST serves EST enrolment (RFC 7030) under /.well-known/est/ and
// the API operators use to manage it. The EST routes carry no API
// permission: devices bring their own credentials (an enrolment token, an
// IDevID or their current certificate), which the EST server checks, and
// requests without one wait for an operator in the approval queue.
func registerEST(s *api.Server, ca *identity.CA, inv *inventory.Service, ratePerMinute float64) *identity.EST {
	devices := inventoryDevices{inv}
	est := identity.NewEST(ca, identity.ESTOptions{Devices: devices, RatePerMinute: ratePerMinute, RateBurst: max(int(ratePerMinute/3), identity.DefaultESTRateBurst)})
	body := est.MaxBody()
	s.Handle(api.Route{Method: "GET", Pattern: identity.ESTCACerts, Handler: est.CACerts})
	s.Handle(api.Route{Method: "GET", Pattern: identity.ESTCSRAttrs, Handler: est.CSRAttrs})
	s.Handle(api.Route{Method: "POST", Pattern: identity.ESTSimpleEnroll, Handler: est.SimpleEnroll, BodyLimit: body})
	s.Handle(api.Route{Method: "POST", Pattern: identity.ESTSimpleReenroll, Handler: est.SimpleReenroll, BodyLimit: body})

	h := estAPI{ca: ca, devices: devices}
	s.Handle(api.Route{Method: "POST", Pattern: "/api/v1/devices/{id}/enrollment-token", Perm: auth.PermWrite, Handler: h.createToken})
	s.Handle(api.Route{Method: "GET", Pattern: "/api/v1/vendor-cas", Perm: auth.PermRead, Handler: h.listVendorCAs})
	s.Handle(api.Route{Method: "POST", Pattern: "/api/v1/vendor-cas", Perm: auth.PermAdmin, Handler: h.registerVendorCA})
	s.Handle(api.Route{Method: "GET", Pattern: "/api/v1/enrollments", Perm: auth.PermRead, Handler: h.listEnrollments})
	s.Handle(api.Route{Method: "POST", Pattern: "/api/v1/enrollments/{id}/accept", Perm: auth.PermWrite, Handler: h.acceptEnrollment})
	s.Handle(api.Route{Method: "POST", Pattern: "/api/v1/enrollments/{id}/reject", Perm: auth.PermWrite, Handler: h.rejectEnrollment})
	return est
}

// inventoryDevices tells the EST server about devices from the inventory:
// their class, and that quarantined and retired devices may not enrol.
type inventoryDevices struct{ inv *inventory.Service }

func (d inventoryDevices) EnrollingDevice(ctx context.Context, id string) (identity.EnrollingDevice, error) {
	dev, err := d.inv.GetDevice(ctx, id)
	if err != nil {
		return identity.EnrollingDevice{}, err
	}
	out := identity.EnrollingDevice{Class: dev.Class}
	switch dev.Status {
	case inventory.StatusQuarantined, inventory.StatusRetired:
		out.Barred = "the device is " + dev.Status
	}
	return out, nil
}

// estAPI is the JSON API of enrolment.
type estAPI struct {
	ca      *identity.CA
	devices inventoryDevices
}

// enrollmentTokenRequest is the optional body of POST
// /api/v1/devices/{id}/enrollment-token.
type enrollmentTokenRequest struct {
	// TTL is a Go duration ("24h", "90m"); default 24h.
	TTL string `json:"ttl"`
}

func (h estAPI) createToken(w http.ResponseWriter, r *http.Request) error {
	var req enrollmentTokenRequest
	if r.ContentLength != 0 {
		if err := api.DecodeJSON(r, &req); err != nil {
			return err
		}
	}
	var ttl time.Duration
	if req.TTL != "" {
		var err error
		if ttl, err = time.ParseDuration(req.TTL); err != nil || ttl <= 0 {
			return apperr.InvalidField("ttl", "%q is not a positive duration like \"24h\"", req.TTL)
		}
	}
	id := r.PathValue("id")
	dev, err := h.devices.EnrollingDevice(r.Context(), id)
	if err != nil {
		return err
	}
	if dev.Barred != "" {
		return apperr.Errorf(apperr.Conflict, "device %s may not enrol: %s", id, dev.Barred)
	}
	tok, err := h.ca.CreateEnrollmentToken(r.Context(), id, dev.Class, ttl)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusCreated, tok)
	return nil
}

// vendorCARequest is the body of POST /api/v1/vendor-cas.
type vendorCARequest struct {
	Name string `json:"name"`
	// Certificate is the vendor CA's certificate in PEM.
	Certificate string `json:"certificate"`
}

func (h estAPI) registerVendorCA(w http.ResponseWriter, r *http.Request) error {
	var req vendorCARequest
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	v, err := h.ca.RegisterVendorCA(r.Context(), req.Name, []byte(req.Certificate))
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusCreated, v)
	return nil
}

func (h estAPI) listVendorCAs(w http.ResponseWriter, r *http.Request) error {
	vs, err := h.ca.VendorCAs(r.Context())
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"vendor_cas": vs})
	return nil
}

func (h estAPI) listEnrollments(w http.ResponseWriter, r *http.Request) error {
	reqs, err := h.ca.Enrollments(r.Context(), r.URL.Query().Get("status"))
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"enrollments": reqs})
	return nil
}

func (h estAPI) acceptEnrollment(w http.ResponseWriter, r *http.Request) error {
	req, err := enrolmentDecisions{h.ca, h.devices.inv}.Accept(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, req)
	return nil
}

func (h estAPI) rejectEnrollment(w http.ResponseWriter, r *http.Request) error {
	req, err := h.ca.RejectEnrollment(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, req)
	return nil
}
