package web

import (
	"context"
	"net/http"
	"strings"

	"github.com/fleetward/fleetward/internal/alert"
	"github.com/fleetward/fleetward/internal/api"
	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/auth"
)

// Alerts are network detection's alerts as the dashboard sees them.
type Alerts interface {
	List(ctx context.Context, f alert.Filter) ([]alert.Alert, error)
	Close(ctx context.Context, id, reason string) (alert.Alert, error)
}

func (ui *UI) alerts(w http.ResponseWriter, r *http.Request) error {
	if ui.deps.Alerts == nil {
		return apperr.Errorf(apperr.NotFound, "this server has no network detection")
	}
	q := r.URL.Query()
	f := alert.Filter{DeviceID: q.Get("device"), Status: q.Get("status"), Limit: 200}
	status, errMsg := http.StatusOK, ""
	list, err := ui.deps.Alerts.List(r.Context(), f)
	if err != nil {
		if apperr.As(err) == nil {
			return err
		}
		status, errMsg = ui.userError(r, err)
	}
	p, _ := api.PrincipalFrom(r.Context())
	return ui.render(w, r, status, "alerts", page{Title: "Alerts", Nav: "alerts", Error: errMsg,
		Data: map[string]any{"Alerts": list, "Query": q, "CanEdit": p.Can(auth.PermWrite)}})
}

// closeAlert is the Close form: what was done.
func (ui *UI) closeAlert(w http.ResponseWriter, r *http.Request) error {
	if ui.deps.Alerts == nil {
		return apperr.Errorf(apperr.NotFound, "this server has no network detection")
	}
	if err := r.ParseForm(); err != nil {
		return apperr.Errorf(apperr.Invalid, "malformed form")
	}
	if _, err := ui.deps.Alerts.Close(r.Context(), r.PathValue("id"), strings.TrimSpace(r.PostFormValue("reason"))); err != nil {
		return err
	}
	http.Redirect(w, r, "/alerts", http.StatusSeeOther)
	return nil
}
