package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/alert"
	"github.com/fleetward/fleetward/internal/app"
	"github.com/fleetward/fleetward/internal/demofleet"
	"github.com/fleetward/fleetward/internal/inventory"
	"github.com/fleetward/fleetward/internal/telemetry"
)

// TestDemoPacketSensorPutsTheInfectionOnTheCamera runs the demo's packet
// sensor against a real server holding a demo fleet: the camera gets the
// model's anomaly alert and a Telnet scan alert, and a score series that
// ends now and rises above its threshold; every alert names the camera
// (not the broker, resolver or Telnet victim it talks to) and its
// neighbours' series stay below their thresholds. At 20 devices the
// camera's site has one other device, so half of what the broker sends
// goes to the camera: its replies once raised an anomaly alert on the
// broker's address.
func TestDemoPacketSensorPutsTheInfectionOnTheCamera(t *testing.T) {
	for _, devices := range []int{120, 20} {
		t.Run(fmt.Sprintf("%d devices", devices), func(t *testing.T) { testDemoPacketSensor(t, devices) })
	}
}

func testDemoPacketSensor(t *testing.T, devices int) {
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
	fleet := demofleet.Generate(devices, 1, time.Now())
	for _, d := range fleet {
		if _, err := s.Inventory.CreateDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	// The demo infects the first active camera (scanDemoWeakDevices).
	first, err := s.Inventory.ListDevices(ctx, inventory.Filter{Classes: []string{"camera"}, Statuses: []string{inventory.StatusActive}, Limit: 1, Sort: "id"})
	if err != nil || len(first.Devices) == 0 {
		t.Fatalf("no active camera in a fleet of %d: %v", devices, err)
	}
	cam := first.Devices[0]
	camera := cam.ID
	wantNeighbours := 0
	for _, d := range fleet {
		if d.ID != camera && d.Location.Site == cam.Location.Site && d.Status == inventory.StatusActive && len(d.MACs) > 0 {
			wantNeighbours++
		}
	}
	wantNeighbours = min(wantNeighbours, 11)
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
		if a.DeviceID != camera {
			t.Errorf("%s alert on device %q (%s), not the infected camera %s: %s", a.Behaviour, a.DeviceID, a.SrcIP, camera, a.Explanation)
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
	if neighbours != wantNeighbours {
		t.Errorf("%d other devices have score series, want the capture's %d", neighbours, wantNeighbours)
	}
}
