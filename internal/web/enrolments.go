package web

import (
	"context"
	"net/http"

	"github.com/fleetward/fleetward/internal/api"
	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/auth"
	"github.com/fleetward/fleetward/internal/identity"
)

// Enrolments is the approval queue: devices that asked for a certificate
// without a credential wait there until an operator decides.
type Enrolments interface {
	Pending(ctx context.Context) ([]identity.EnrollmentRequest, error)
	Accept(ctx context.Context, id string) (identity.EnrollmentRequest, error)
	Reject(ctx context.Context, id string) (identity.EnrollmentRequest, error)
}

func (ui *UI) enrolments(w http.ResponseWriter, r *http.Request) error {
	if ui.deps.Enrolments == nil {
		return apperr.Errorf(apperr.NotFound, "this server has no enrolment queue")
	}
	pending, err := ui.deps.Enrolments.Pending(r.Context())
	if err != nil {
		return err
	}
	p, _ := api.PrincipalFrom(r.Context())
	return ui.render(w, r, http.StatusOK, "enrolments", page{Title: "Enrolments", Nav: "enrolments",
		Data: map[string]any{"Pending": pending, "CanDecide": p.Can(auth.PermWrite)}})
}

// decideEnrolment is the Accept and Reject buttons.
func (ui *UI) decideEnrolment(w http.ResponseWriter, r *http.Request) error {
	if ui.deps.Enrolments == nil {
		return apperr.Errorf(apperr.NotFound, "this server has no enrolment queue")
	}
	if err := r.ParseForm(); err != nil {
		return apperr.Errorf(apperr.Invalid, "malformed form")
	}
	id := r.PathValue("id")
	var err error
	switch r.PostFormValue("decision") {
	case "accept":
		_, err = ui.deps.Enrolments.Accept(r.Context(), id)
	case "reject":
		_, err = ui.deps.Enrolments.Reject(r.Context(), id)
	default:
		return apperr.InvalidField("decision", "must be accept or reject")
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/enrolments", http.StatusSeeOther)
	return nil
}
