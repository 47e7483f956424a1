package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/alert"
	"github.com/fleetward/fleetward/internal/app"
	"github.com/fleetward/fleetward/internal/demofleet"
	"github.com/fleetward/fleetward/internal/telemetry"
)

// TestDemoPacketSensorPutsTheInfectionOnTheCamera runs the demo's packet
// sensor against a real server holding a demo fleet: the camera gets the
// model's anomaly alert and a Telnet scan alert, and a score series that
// ends now and rises above its threshold; its neighbours' series stay
// below theirs.
func TestDemoPacketSensorPutsTheInfectionOnTheCamera(t *testing.T) {
	dir := t.TempDir()
	ctx := actor.With(context.Background(), actor.Actor{Name: "system:detect"})
	s, err := app.Start(ctx, app.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	for _, site := range demofleet.Sites() {
		if _, err := s.Inventory.CreateSite(ctx, site); err != nil {
			t.Fatal(err)
		}
	}
	camera := ""
	fleet := demofleet.Generate(120, 1, time.Now())
	for _, d := range fleet {
		if _, err := s.Inventory.CreateDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
		if camera == "" && d.Class == "camera" && d.Status == "active" && len(d.MACs) > 0 {
			camera = d.ID
		}
	}
	began := time.Now()
	out, err := captureStdout(t, func() error { return detectDemoInfection(ctx, s, camera) })
	if err != nil {
		t.Fatalf("detectDemoInfection: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	list, err := s.ListAlerts(ctx, alert.Filter{DeviceID: camera})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, a := range list {
		got[a.Behaviour] = true
	}
	if !got["anomaly"] || !got["telnet_scan"] {
		t.Errorf("alerts on %s: %v; want anomaly and telnet_scan", camera, got)
	}
	all, _ := s.ListAlerts(ctx, alert.Filter{})
	for _, a := range all {
		if a.DeviceID != "" && a.DeviceID != camera {
			t.Errorf("an alert on %s, which is not infected: %+v", a.DeviceID, a)
		}
	}
	series, err := s.Telemetry.Series(ctx, camera, telemetry.AnomalyMetrics, time.Now().Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	maxes, ths := series[telemetry.MetricAnomalyScoreMax], series[telemetry.MetricAnomalyThreshold]
	if len(maxes) < 30 || len(maxes) != len(ths) {
		t.Fatalf("%d score points and %d threshold points for %s; want a series", len(maxes), len(ths), camera)
	}
	if last := maxes[len(maxes)-1]; last.Time.Before(began.Add(-15*time.Second)) || last.Time.After(time.Now()) {
		t.Errorf("the series ends at %s; the demo's capture ends when it runs (%s)", last.Time, began)
	}
	above := 0
	for i, p := range maxes {
		if p.Value > ths[i].Value {
			above++
		}
	}
	if above == 0 {
		t.Errorf("the camera's score never rose above its threshold")
	}
	neighbours := 0
	for _, d := range fleet {
		if d.ID == camera {
			continue
		}
		ser, err := s.Telemetry.Series(ctx, d.ID, telemetry.AnomalyMetrics, time.Now().Add(-24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(ser[telemetry.MetricAnomalyScoreMax]) > 0 {
			neighbours++
		}
		for i, p := range ser[telemetry.MetricAnomalyScoreMax] {
			if th := ser[telemetry.MetricAnomalyThreshold][i].Value; p.Value > th {
				t.Errorf("benign %s scored %.4g above its threshold %.4g at %s", d.ID, p.Value, th, p.Time)
			}
		}
	}
	if neighbours != 11 {
		t.Errorf("%d other devices have score series, want the capture's 11", neighbours)
	}
}
