package app

import (
	"context"
	"slices"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/identity"
	"github.com/fleetward/fleetward/internal/inventory"
)

// enrolmentDecisions carries out an operator's decision on a queued
// enrolment, for the API and the dashboard alike. Accepting admits the
// device: an unknown one is created in the inventory as active (class
// from the request, "other" if it named none), a pending one becomes
// active; without that the broker would refuse the certificate the device
// is about to receive.
type enrolmentDecisions struct {
	ca  *identity.CA
	inv *inventory.Service
}

// Pending returns the enrolment requests waiting for a decision.
func (d enrolmentDecisions) Pending(ctx context.Context) ([]identity.EnrollmentRequest, error) {
	return d.ca.Enrollments(ctx, identity.EnrollmentPending)
}

// Accept accepts request id and admits its device.
func (d enrolmentDecisions) Accept(ctx context.Context, id string) (identity.EnrollmentRequest, error) {
	req, err := d.ca.AcceptEnrollment(ctx, id)
	if err != nil {
		return req, err
	}
	dev, err := d.inv.GetDevice(ctx, req.DeviceID)
	switch {
	case apperr.Is(err, apperr.NotFound):
		class := req.Class
		if !slices.Contains(inventory.Classes, class) {
			class = inventory.ClassOther
		}
		_, err = d.inv.CreateDevice(ctx, inventory.Device{ID: req.DeviceID, Name: req.DeviceID, Class: class,
			Status: inventory.StatusActive, Tags: []string{"enrolled-on-approval"}})
	case err == nil && dev.Status == inventory.StatusPending:
		active := inventory.StatusActive
		_, err = d.inv.UpdateDevice(ctx, req.DeviceID, inventory.DevicePatch{Status: &active})
	}
	return req, err
}

// Reject rejects request id.
func (d enrolmentDecisions) Reject(ctx context.Context, id string) (identity.EnrollmentRequest, error) {
	return d.ca.RejectEnrollment(ctx, id)
}
