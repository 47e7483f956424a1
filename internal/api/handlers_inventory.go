package api

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/inventory"
)

func (s *Server) fleetStats(w http.ResponseWriter, r *http.Request) error {
	st, err := s.deps.Inventory.FleetStats(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

// queryOf parses the query string, refusing a malformed one (net/url's
// Query silently drops what it cannot parse, which would widen a filter).
func queryOf(r *http.Request) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, apperr.Errorf(apperr.Invalid, "malformed query string: %s", err.Error())
	}
	return q, nil
}

func (s *Server) listDevices(w http.ResponseWriter, r *http.Request) error {
	q, err := queryOf(r)
	if err != nil {
		return err
	}
	f, err := inventory.ParseFilter(q)
	if err != nil {
		return err
	}
	page, err := s.deps.Inventory.ListDevices(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (s *Server) createDevice(w http.ResponseWriter, r *http.Request) error {
	var d inventory.Device
	if err := decodeJSON(r, &d); err != nil {
		return err
	}
	out, err := s.deps.Inventory.CreateDevice(r.Context(), d)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/devices/"+url.PathEscape(out.ID))
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (s *Server) getDevice(w http.ResponseWriter, r *http.Request) error {
	d, err := s.deps.Inventory.GetDevice(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

func (s *Server) updateDevice(w http.ResponseWriter, r *http.Request) error {
	var p inventory.DevicePatch
	if err := decodeJSON(r, &p); err != nil {
		return err
	}
	d, err := s.deps.Inventory.UpdateDevice(r.Context(), r.PathValue("id"), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

func (s *Server) deleteDevice(w http.ResponseWriter, r *http.Request) error {
	if err := s.deps.Inventory.DeleteDevice(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deviceHistory lists the ledger entries about a device, newest first.
func (s *Server) deviceHistory(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if _, err := s.deps.Inventory.GetDevice(r.Context(), id); err != nil && !apperr.Is(err, apperr.NotFound) {
		return err
	}
	limit, err := intParam(r.URL.Query(), "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	entries, err := s.deps.Ledger.EntriesBySubject(r.Context(), id, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"device": id, "entries": entries})
	return nil
}

// importFormat picks csv or json from ?format= or the Content-Type.
func importFormat(r *http.Request) (string, error) {
	f := r.URL.Query().Get("format")
	if f == "" {
		ct := r.Header.Get("Content-Type")
		switch {
		case strings.HasPrefix(ct, "text/csv"):
			f = "csv"
		case strings.HasPrefix(ct, "application/json"):
			f = "json"
		}
	}
	if f != "csv" && f != "json" {
		return "", apperr.InvalidField("format", "must be csv or json (as ?format= or by Content-Type text/csv or application/json)")
	}
	return f, nil
}

func (s *Server) importDevices(w http.ResponseWriter, r *http.Request) error {
	format, err := importFormat(r)
	if err != nil {
		return err
	}
	q, err := queryOf(r)
	if err != nil {
		return err
	}
	for k := range q {
		if k != "format" && k != "dry_run" && k != "stop_on_error" {
			return apperr.InvalidField(k, "is not a known parameter of import")
		}
	}
	opts := inventory.ImportOptions{DryRun: q.Get("dry_run") == "true", StopOnError: q.Get("stop_on_error") == "true"}
	res, err := s.deps.Inventory.ImportDevices(r.Context(), format, r.Body, opts)
	if err != nil {
		// Batches committed before the failure stand: say which, beside
		// the usual error.
		if e := apperr.As(err); e != nil && e.Code != apperr.Internal && res.Created+res.Updated+res.Unchanged > 0 {
			writeJSON(w, StatusOf(e), map[string]any{"error": e, "result": res})
			return nil
		}
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) exportDevices(w http.ResponseWriter, r *http.Request) error {
	q, err := queryOf(r)
	if err != nil {
		return err
	}
	format := q.Get("format")
	if format == "" {
		format = "json"
	}
	if format != "csv" && format != "json" {
		return apperr.InvalidField("format", "must be csv or json")
	}
	q.Del("format")
	f, err := inventory.ParseFilter(q)
	if err != nil {
		return err
	}
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
	}
	w.Header().Set("Content-Disposition", `attachment; filename="fleetward-devices.`+format+`"`)
	return s.deps.Inventory.ExportDevices(r.Context(), format, w, f)
}

func (s *Server) listSites(w http.ResponseWriter, r *http.Request) error {
	sites, err := s.deps.Inventory.ListSites(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"sites": sites})
	return nil
}

func (s *Server) createSite(w http.ResponseWriter, r *http.Request) error {
	var site inventory.Site
	if err := decodeJSON(r, &site); err != nil {
		return err
	}
	out, err := s.deps.Inventory.CreateSite(r.Context(), site)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (s *Server) getSite(w http.ResponseWriter, r *http.Request) error {
	site, err := s.deps.Inventory.GetSite(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, site)
	return nil
}

func (s *Server) deleteSite(w http.ResponseWriter, r *http.Request) error {
	if err := s.deps.Inventory.DeleteSite(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listGroups(w http.ResponseWriter, r *http.Request) error {
	groups, err := s.deps.Inventory.ListGroups(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"groups": groups})
	return nil
}

func (s *Server) createGroup(w http.ResponseWriter, r *http.Request) error {
	var g inventory.Group
	if err := decodeJSON(r, &g); err != nil {
		return err
	}
	out, err := s.deps.Inventory.CreateGroup(r.Context(), g)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (s *Server) getGroup(w http.ResponseWriter, r *http.Request) error {
	g, err := s.deps.Inventory.GetGroup(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, g)
	return nil
}

func (s *Server) deleteGroup(w http.ResponseWriter, r *http.Request) error {
	if err := s.deps.Inventory.DeleteGroup(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type groupMembersRequest struct {
	Devices []string `json:"devices"`
}

func (s *Server) addGroupMembers(w http.ResponseWriter, r *http.Request) error {
	var req groupMembersRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if len(req.Devices) == 0 {
		return apperr.InvalidField("devices", "must list at least one device id")
	}
	if err := s.deps.Inventory.AddGroupMembers(r.Context(), r.PathValue("id"), req.Devices); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) removeGroupMember(w http.ResponseWriter, r *http.Request) error {
	if err := s.deps.Inventory.RemoveGroupMember(r.Context(), r.PathValue("id"), r.PathValue("device")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// intParam reads an optional integer query parameter within [min, max].
func intParam(q url.Values, name string, def, min, max int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		return 0, apperr.InvalidField(name, "must be an integer from %d to %d", min, max)
	}
	return n, nil
}

// uintParam reads a required unsigned integer query parameter.
func uintParam(q url.Values, name string) (uint64, error) {
	v := q.Get(name)
	if v == "" {
		return 0, apperr.InvalidField(name, "is required")
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, apperr.InvalidField(name, "must be a non-negative integer")
	}
	return n, nil
}
