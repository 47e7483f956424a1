package app_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/alert"
	"github.com/fleetward/fleetward/internal/app"
	"github.com/fleetward/fleetward/internal/auth"
	"github.com/fleetward/fleetward/internal/inventory"
	"github.com/fleetward/fleetward/internal/telemetry"
)

// metricValue reads one line of /metrics ("name{labels}") as a number; -1
// if it is not there.
func metricValue(t *testing.T, s *app.Server, series string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	s.API.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics = %d: %s", rec.Code, rec.Body)
	}
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s %q: %v", series, v, err)
			}
			return f
		}
	}
	return -1
}

// TestEdgeSensorReportsFromADeviceRaiseAlertsAndMeasurements publishes,
// with Debian's mosquitto_pub as a device over mutual TLS, what an agent's
// edge sensor sends: a signal report (one good signal, one malformed), a
// report that is not JSON, a summary and score summaries. The good signal
// becomes an alert on the scanning device naming the reporting sensor; the
// malformed ones are refused and counted without stopping the ingest; the
// summary becomes sensor_* measurements of the reporter, and the score
// summary anomaly_* measurements of the scanning device.
func TestEdgeSensorReportsFromADeviceRaiseAlertsAndMeasurements(t *testing.T) {
	pub := requirePeer(t, "mosquitto_pub", "mosquitto-clients")
	dir := t.TempDir()
	ctx := actor.With(context.Background(), actor.Actor{Name: "test"})
	s, err := app.Start(ctx, app.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0", MetricsPublic: true, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	for _, d := range []inventory.Device{
		{ID: "gw-edge", Name: "Gateway with a sensor", Class: "gateway"},
		{ID: "cam-mirai", Name: "Infected camera", Class: "camera", IPs: []string{"10.200.5.7"}},
	} {
		if _, err := s.Inventory.CreateDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	certFile, keyFile, _ := deviceFiles(t, ctx, s, "gw-edge", "gateway")
	_, port, _ := net.SplitHostPort(s.MQTTAddr())
	publish := func(topic, message string) {
		t.Helper()
		out, err := exec.Command(pub, "-h", "127.0.0.1", "-p", port, "--cafile", filepath.Join(dir, "tls", "ca.crt"),
			"--cert", certFile, "--key", keyFile, "-i", "gw-edge", "-V", "mqttv5", "-t", topic, "-q", "1", "-m", message).CombinedOutput()
		if err != nil {
			t.Fatalf("mosquitto_pub to %s: %v: %s", topic, err, out)
		}
	}
	refusedReports := metricValue(t, s, "fleetward_device_messages_refused_total")

	publish("devices/gw-edge/signals", `{"signals":[`)
	if !within(5*time.Second, func() bool { return metricValue(t, s, "fleetward_device_messages_refused_total") == refusedReports+1 }) {
		t.Fatalf("a signal report that is not JSON was not counted as refused: %v", metricValue(t, s, "fleetward_device_messages_refused_total"))
	}

	at := time.Now().UTC().Truncate(time.Second).Format(time.RFC3339)
	publish("devices/gw-edge/signals", fmt.Sprintf(`{"signals":[
		{"time":%q,"detector":"rule","behaviour":"telnet_scan","severity":"high","src_ip":"10.200.5.7","peer":"10.200.9.1:23","score":10,"threshold":10,"explanation":"TCP SYN to 23/2323 of 10 hosts"},
		{"time":%q,"detector":"rule","behaviour":"telnet_scan","severity":"apocalyptic","src_ip":"10.200.5.7","explanation":"bad severity"},
		{"time":%q,"detector":"rule","behaviour":"port_scan","severity":"high","device_id":"cam-mirai","explanation":"named, not seen"}]}`, at, at, at))
	token, _, err := s.Auth.CreateToken(ctx, "operator-1", auth.RoleOperator, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c := newAPIClient(t, s, dir, token)
	var list []alert.Alert
	if !within(5*time.Second, func() bool {
		var res struct{ Alerts []alert.Alert }
		c.do("GET", "/api/v1/alerts?device=cam-mirai", "", &res)
		list = res.Alerts
		return len(list) > 0
	}) {
		t.Fatal("the edge sensor's signal raised no alert on cam-mirai")
	}
	if a := list[0]; a.Behaviour != "telnet_scan" || a.SrcIP != "10.200.5.7" || a.Explanation != "sensor gw-edge: TCP SYN to 23/2323 of 10 hosts" || a.Signals != 1 {
		t.Errorf("alert = %+v", a)
	}
	if got := metricValue(t, s, `fleetward_device_signals_total{outcome="raised"}`); got != 1 {
		t.Errorf("signals raised = %v, want 1", got)
	}
	if got := metricValue(t, s, `fleetward_device_signals_total{outcome="refused"}`); got != 2 {
		t.Errorf("signals refused = %v, want 2 (the bad severity, the device id without an address)", got)
	}
	var again struct{ Alerts []alert.Alert }
	c.do("GET", "/api/v1/alerts?device=cam-mirai", "", &again)
	if list = again.Alerts; len(list) != 1 {
		t.Errorf("cam-mirai has %d alerts, want the scan only (a device id from a device is not taken): %+v", len(list), list)
	}

	publish("devices/gw-edge/sensor", fmt.Sprintf(`{"device_id":"gw-edge","interface":"eth0","time":%q,"packets":1200,"pps":40.5,
		"decode":{"packets":1200,"malformed":2},"trained":false,"training_packets":1200,"threshold":0,"signals":1,"alerts":1}`, at))
	var series map[string][]telemetry.Point
	if !within(5*time.Second, func() bool {
		series, _ = s.Telemetry.Series(ctx, "gw-edge", []string{"sensor_packets", "sensor_pps", "sensor_decode_malformed", "sensor_trained", "packets"}, time.Now().Add(-time.Hour))
		return len(series["sensor_packets"]) > 0 && len(series["sensor_pps"]) > 0
	}) {
		t.Fatalf("the summary made no sensor_* measurements of gw-edge: %v", series)
	}
	if series["sensor_packets"][0].Value != 1200 || series["sensor_pps"][0].Value != 40.5 || series["sensor_decode_malformed"][0].Value != 2 || len(series["sensor_trained"]) != 1 {
		t.Errorf("measurements = %v", series)
	}
	if len(series["packets"]) != 0 {
		t.Errorf("a summary wrote an unprefixed measurement: %v", series["packets"])
	}

	// Score summaries: the good one becomes the camera's anomaly_*
	// measurements, as POST /api/v1/scores makes them; the one without a
	// source is refused and counted.
	end := time.Now().UTC().Truncate(time.Second)
	publish("devices/gw-edge/scores", fmt.Sprintf(`{"summaries":[
		{"start":%q,"end":%q,"sensor":"someone-else","src_ip":"10.200.5.7","packets":40,"max_score":0.9,"mean_score":0.4,"threshold":0.5},
		{"end":%q,"packets":3}]}`, end.Add(-10*time.Second).Format(time.RFC3339), end.Format(time.RFC3339), end.Format(time.RFC3339)))
	if !within(5*time.Second, func() bool {
		series, _ = s.Telemetry.Series(ctx, "cam-mirai", []string{telemetry.MetricAnomalyScoreMax, telemetry.MetricAnomalyPackets}, time.Now().Add(-time.Hour))
		return len(series[telemetry.MetricAnomalyScoreMax]) > 0
	}) {
		t.Fatalf("the edge sensor's score summary made no anomaly measurements of cam-mirai: %v", series)
	}
	if series[telemetry.MetricAnomalyScoreMax][0].Value != 0.9 || series[telemetry.MetricAnomalyPackets][0].Value != 40 {
		t.Errorf("anomaly measurements = %v", series)
	}
	if got := metricValue(t, s, `fleetward_device_score_summaries_total{outcome="recorded"}`); got != 1 {
		t.Errorf("score summaries recorded = %v, want 1", got)
	}
	if got := metricValue(t, s, `fleetward_device_score_summaries_total{outcome="refused"}`); got != 1 {
		t.Errorf("score summaries refused = %v, want 1 (no source)", got)
	}
}
