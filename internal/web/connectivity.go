package web

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/broker"
	"github.com/fleetward/fleetward/internal/identity"
	"github.com/fleetward/fleetward/internal/inventory"
	"github.com/fleetward/fleetward/internal/telemetry"
)

// Connectivity is what the dashboard shows and does about how devices
// connect: their certificates, the broker's live sessions and the
// measurements of their traffic, and revoking a device's certificates.
type Connectivity interface {
	DeviceCertificates(ctx context.Context, deviceID string) ([]identity.IssuedCertificate, error)
	Sessions() []broker.Session
	Series(ctx context.Context, deviceID string, metrics []string, since time.Time) (map[string][]telemetry.Point, error)
	// RevokeDevice revokes every valid certificate of the device and drops
	// its sessions; it returns the serials revoked.
	RevokeDevice(ctx context.Context, deviceID string) ([]string, error)
}

// fleetConnections summarises the broker's live sessions for the overview.
type fleetConnections struct {
	Connected   int
	PostQuantum int
	Percent     float64 // of connected sessions that are post-quantum
	TLS13       int
}

func summarizeConnections(sessions []broker.Session) *fleetConnections {
	fc := fleetConnections{Connected: len(sessions), PostQuantum: broker.CountPostQuantum(sessions)}
	for _, s := range sessions {
		if s.TLSVersion == "TLS 1.3" {
			fc.TLS13++
		}
	}
	if fc.Connected > 0 {
		fc.Percent = 100 * float64(fc.PostQuantum) / float64(fc.Connected)
	}
	return &fc
}

// connections is the page of live broker sessions.
func (ui *UI) connections(w http.ResponseWriter, r *http.Request) error {
	var sessions []broker.Session
	if ui.deps.Connectivity != nil {
		sessions = ui.deps.Connectivity.Sessions()
	}
	return ui.render(w, r, http.StatusOK, "connections", page{Title: "Connections", Nav: "connections",
		Data: map[string]any{"Sessions": sessions, "Summary": summarizeConnections(sessions)}})
}

// deviceConnectivity is the device page's connectivity card.
type deviceConnectivity struct {
	Session      *broker.Session
	Certificates []certificateRow
	HasTraffic   bool
}

type certificateRow struct {
	identity.IssuedCertificate
	DaysLeft int
	Expired  bool
}

// trafficMetrics are the broker-side series the device page plots.
var trafficMetrics = []string{telemetry.MetricMessagesIn, telemetry.MetricMessagesOut, telemetry.MetricAuthorizationFailures}

// deviceConnectivity gathers the card and the traffic chart's data
// (x: Unix seconds, one array per metric aligned on x).
func (ui *UI) deviceConnectivity(ctx context.Context, deviceID string, now time.Time) (*deviceConnectivity, map[string]any, error) {
	c := ui.deps.Connectivity
	if c == nil {
		return nil, nil, nil
	}
	dc := &deviceConnectivity{}
	for _, s := range c.Sessions() {
		if s.DeviceID == deviceID {
			dc.Session = &s
			break
		}
	}
	certs, err := c.DeviceCertificates(ctx, deviceID)
	if err != nil && !apperr.Is(err, apperr.Invalid) {
		return nil, nil, err
	}
	for _, ct := range certs {
		dc.Certificates = append(dc.Certificates, certificateRow{IssuedCertificate: ct,
			DaysLeft: int(ct.NotAfter.Sub(now).Hours() / 24), Expired: ct.Expired(now)})
	}
	series, err := c.Series(ctx, deviceID, trafficMetrics, now.Add(-24*time.Hour))
	if err != nil {
		return nil, nil, err
	}
	chart := alignSeries(series, trafficMetrics)
	if chart == nil {
		return dc, nil, nil
	}
	dc.HasTraffic = true
	return dc, chart, nil
}

// alignSeries returns the chart data of a uPlot plot of metrics: "x" holds
// the union of their times (Unix seconds, ascending) and each metric an
// array aligned on it, 0 where it has no point. Nil when there are no
// points at all.
func alignSeries(series map[string][]telemetry.Point, metrics []string) map[string]any {
	idx := map[int64]int{}
	var xs []int64
	for _, m := range metrics {
		for _, p := range series[m] {
			t := p.Time.Unix()
			if _, ok := idx[t]; !ok {
				idx[t] = len(xs)
				xs = append(xs, t)
			}
		}
	}
	if len(xs) == 0 {
		return nil
	}
	slices.Sort(xs)
	for i, t := range xs {
		idx[t] = i
	}
	chart := map[string]any{"x": xs}
	for _, m := range metrics {
		ys := make([]float64, len(xs))
		for _, p := range series[m] {
			ys[idx[p.Time.Unix()]] = p.Value
		}
		chart[m] = ys
	}
	return chart
}

// revokeDevice is the device page's "revoke certificates" button.
func (ui *UI) revokeDevice(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if ui.deps.Connectivity == nil {
		return apperr.Errorf(apperr.Conflict, "this server has no certificate authority attached")
	}
	if _, err := ui.deps.Inventory.GetDevice(r.Context(), id); err != nil {
		return err
	}
	if _, err := ui.deps.Connectivity.RevokeDevice(r.Context(), id); err != nil {
		return err
	}
	http.Redirect(w, r, "/devices/"+url.PathEscape(id)+"#connectivity", http.StatusSeeOther)
	return nil
}

// setDeviceStatus is the device page's quarantine and release buttons.
func (ui *UI) setDeviceStatus(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := r.ParseForm(); err != nil {
		return apperr.Errorf(apperr.Invalid, "malformed form")
	}
	status := r.PostFormValue("status")
	if status != inventory.StatusQuarantined && status != inventory.StatusActive && status != inventory.StatusRetired {
		return apperr.InvalidField("status", "must be quarantined, active or retired")
	}
	if _, err := ui.deps.Inventory.UpdateDevice(r.Context(), id, inventory.DevicePatch{Status: &status}); err != nil {
		return err
	}
	http.Redirect(w, r, "/devices/"+url.PathEscape(id), http.StatusSeeOther)
	return nil
}
