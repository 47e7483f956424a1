package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/alert"
	"github.com/fleetward/fleetward/internal/app"
	"github.com/fleetward/fleetward/internal/auth"
	"github.com/fleetward/fleetward/internal/bus"
	"github.com/fleetward/fleetward/internal/inventory"
	"github.com/fleetward/fleetward/internal/metricdetect"
	"github.com/fleetward/fleetward/internal/store/storetest"
)

// TestMetricSurgesBecomeAlertsOnTheDevice runs a real server with its
// broker and two devices speaking MQTT through Debian's mosquitto_pub: a
// gateway whose agent reports show a traffic and destination surge and a
// new listening port, and a sensor whose publishes the broker counts
// surge. Each surge becomes an alert of the metric detector on its device,
// with the device's address, through GET /api/v1/alerts.
func TestMetricSurgesBecomeAlertsOnTheDevice(t *testing.T) {
	pub := requirePeer(t, "mosquitto_pub", "mosquitto-clients")
	dir := t.TempDir()
	ctx := actor.With(context.Background(), actor.Actor{Name: "test"})
	s, err := app.Start(ctx, app.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0",
		TelemetryInterval: 200 * time.Millisecond, MQTT: app.MQTTLimits{MessagesPerSecond: 2000},
		MetricDetect: metricdetect.Config{Warmup: 10}, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	for _, d := range []inventory.Device{
		{ID: "gw-1", Name: "Yard gateway", Class: "gateway", IPs: []string{"192.168.7.21"}, MACs: []string{"02:00:00:00:07:21"}},
		{ID: "th-1", Name: "Cold-room sensor", Class: "sensor", IPs: []string{"192.168.7.40"}},
	} {
		if _, err := s.Inventory.CreateDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	token, _, _ := s.Auth.CreateToken(ctx, "reader", auth.RoleOperator, nil, time.Hour)
	c := newAPIClient(t, s, dir, token)
	_, port, _ := net.SplitHostPort(s.MQTTAddr())
	caFile := filepath.Join(dir, "tls", "ca.crt")
	// publishLines connects as the device and publishes each line written
	// to the returned writer as one message; close it to disconnect.
	publishLines := func(id, class string) (io.WriteCloser, func() string) {
		certFile, keyFile, _ := deviceFiles(t, ctx, s, id, class)
		cmd := exec.Command(pub, "-h", "127.0.0.1", "-p", port, "--cafile", caFile, "--cert", certFile, "--key", keyFile,
			"-i", id, "-V", "mqttv5", "-q", "1", "-t", "devices/"+id+"/telemetry", "-l")
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		in, _ := cmd.StdinPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { in.Close(); cmd.Process.Kill(); cmd.Wait() })
		return in, func() string { in.Close(); cmd.Wait(); return out.String() }
	}
	alertsOf := func(device string) map[string]alert.Alert {
		var list struct{ Alerts []alert.Alert }
		if st, _ := c.do("GET", "/api/v1/alerts?device="+device, "", &list); st != 200 {
			t.Fatalf("GET /api/v1/alerts?device=%s = %d", device, st)
		}
		out := map[string]alert.Alert{}
		for _, a := range list.Alerts {
			out[a.Behaviour] = a
		}
		return out
	}

	t.Run("an agent's reports of a traffic and destination surge and a new port", func(t *testing.T) {
		// 30 reports 30 s apart: 1 kB/s out to 2 addresses listening on
		// 22, then from report 20 on 200 kB/s to 80 addresses, and a
		// listener on 4444 from report 25. The device's clock is two hours
		// behind: its reports are dated then, and still raise alerts.
		w, done := publishLines("gw-1", "gateway")
		start := time.Now().UTC().Add(-2*time.Hour - 15*time.Minute).Truncate(time.Second)
		for i := range 30 {
			bytesOut, remotes, ports := 30000, 2, `{"proto":"tcp","addr":"0.0.0.0","port":22}`
			if i >= 20 {
				bytesOut, remotes = 6000000, 80
			}
			if i >= 25 {
				ports += `,{"proto":"tcp","addr":"::","port":4444}`
			}
			addrs := make([]string, remotes)
			for j := range addrs {
				addrs[j] = fmt.Sprintf("%q", fmt.Sprintf("203.0.113.%d", j))
			}
			report := fmt.Sprintf(`{"device_id":"gw-1","seq":%d,"time":%q,"delta":{"bytes_out":%d,"packets_out":%d},"delta_seconds":30,"listening_ports":[%s],"established_tcp":%d,"remote_addresses":[%s]}`,
				i+1, start.Add(time.Duration(i)*30*time.Second).Format(time.RFC3339), bytesOut+i, bytesOut/1000, ports, remotes, strings.Join(addrs, ","))
			if _, err := io.WriteString(w, report+"\n"); err != nil {
				t.Fatal(err)
			}
		}
		if out := done(); out != "" {
			t.Logf("mosquitto_pub: %s", out)
		}
		var got map[string]alert.Alert
		want := []string{metricdetect.BehaviourTrafficSurge, metricdetect.BehaviourDestinationSurge, metricdetect.BehaviourNewListeningPort}
		if !within(10*time.Second, func() bool {
			got = alertsOf("gw-1")
			return len(got) == len(want)
		}) {
			t.Fatalf("alerts of gw-1 = %+v; want %v", got, want)
		}
		for _, b := range want {
			a := got[b]
			if a.Detector != "metric" || a.DeviceID != "gw-1" || a.SrcIP != "192.168.7.21" || a.SrcMAC != "02:00:00:00:07:21" || a.Status != alert.StatusOpen {
				t.Errorf("%s alert = %+v; want an open metric alert on gw-1 with its address and MAC", b, a)
			}
		}
		if a := got[metricdetect.BehaviourTrafficSurge]; a.Signals < 3 || a.FirstSeen.Before(start.Add(22*30*time.Second)) {
			t.Errorf("traffic surge alert: %d signals from %s; want one per surging report from the third (%s)", a.Signals, a.FirstSeen, start.Add(22*30*time.Second))
		}
		if a := got[metricdetect.BehaviourNewListeningPort]; a.Signals != 1 || len(a.Peers) != 1 || a.Peers[0] != "tcp/4444" {
			t.Errorf("new listening port alert = %+v; want one signal for tcp/4444", a)
		}
		t.Logf("traffic surge: %s", got[metricdetect.BehaviourTrafficSurge].Explanation)
	})

	t.Run("the broker counts a sensor's message surge", func(t *testing.T) {
		// One message per 200 ms sampling interval for 4 s, then 40 per
		// interval for 3 s.
		w, done := publishLines("th-1", "sensor")
		send := func(n int) {
			for range n {
				if _, err := io.WriteString(w, `{"temp":4.1}`+"\n"); err != nil {
					t.Fatal(err)
				}
			}
		}
		for range 20 {
			send(1)
			time.Sleep(200 * time.Millisecond)
		}
		if a := alertsOf("th-1"); len(a) != 0 {
			t.Fatalf("alerts of th-1 before the surge: %+v", a)
		}
		for range 15 {
			send(40)
			time.Sleep(200 * time.Millisecond)
		}
		var got map[string]alert.Alert
		if !within(5*time.Second, func() bool {
			got = alertsOf("th-1")
			return got[metricdetect.BehaviourMessageSurge].Signals > 0
		}) {
			t.Fatalf("alerts of th-1 after 200 msg/s = %+v; want a message surge (mosquitto_pub: %s)", got, done())
		}
		a := got[metricdetect.BehaviourMessageSurge]
		if a.Detector != "metric" || a.DeviceID != "th-1" || a.SrcIP != "192.168.7.40" || a.MaxScore < 50 {
			t.Errorf("message surge alert = %+v; want a metric alert on th-1 at 192.168.7.40 scoring at least 50 msg/s", a)
		}
		if len(got) != 1 {
			t.Errorf("alerts of th-1 = %+v; want only the message surge", got)
		}
		t.Logf("message surge: %s", a.Explanation)
		done()
	})

	t.Run("replayed broker history is learned but raises nothing", func(t *testing.T) {
		// Broker metrics events of two days ago, as a new subscriber
		// replays them from the bus: a sensor's surge then is no alert now.
		if _, err := s.Inventory.CreateDevice(ctx, inventory.Device{ID: "th-2", Name: "Freezer sensor", Class: "sensor"}); err != nil {
			t.Fatal(err)
		}
		then := time.Now().UTC().Add(-48 * time.Hour)
		for i := range 40 {
			n := 2
			if i >= 30 {
				n = 500
			}
			data, _ := json.Marshal(map[string]float64{"messages_in": float64(n), "bytes_in": float64(20 * n)})
			ev := bus.Event{ID: fmt.Sprintf("replay-th-2-%d", i), Type: app.EventBrokerMetrics, Time: then.Add(time.Duration(i) * 200 * time.Millisecond),
				Actor: "broker", Subject: "th-2", Data: data}
			if err := s.Bus.Publish(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		if !within(10*time.Second, func() bool {
			return strings.Contains(scrapeMetrics(t, s, token), "fleetward_metric_signals_stale_total 16\n")
		}) {
			t.Fatalf("the replayed surge's signals were not counted as stale (want 16: messages_in and bytes_in of samples 32 to 39): %s",
				grepLines(scrapeMetrics(t, s, token), "fleetward_metric_"))
		}
		if a := alertsOf("th-2"); len(a) != 0 {
			t.Errorf("alerts of th-2 from two-day-old metrics: %+v", a)
		}
	})

	t.Run("the server's metrics count the devices watched", func(t *testing.T) {
		req := "fleetward_metric_detector_devices 3\n"
		body := scrapeMetrics(t, s, token)
		if !strings.Contains(body, req) {
			t.Errorf("/metrics lacks %q", req)
		}
	})
}

// TestMetricDetectOffRaisesNothingAndABadSigmaIsRefused checks the switch
// and the validation of --metric-sigma.
func TestMetricDetectOffRaisesNothingAndABadSigmaIsRefused(t *testing.T) {
	_, err := app.Start(context.Background(), app.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0",
		MetricDetect: metricdetect.Config{Sigma: -1}, Log: quietLog()})
	if err == nil || !strings.Contains(err.Error(), "--metric-sigma") {
		t.Fatalf("Start with sigma -1 = %v, want an error naming --metric-sigma", err)
	}
	s, err := app.Start(context.Background(), app.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0",
		MetricDetectOff: true, MetricDetect: metricdetect.Config{Sigma: -1}, Log: quietLog()})
	if err != nil {
		t.Fatalf("Start with the metric detectors off = %v; their settings do not matter then", err)
	}
	defer s.Stop()
	token, _, _ := s.Auth.CreateToken(context.Background(), "reader", auth.RoleOperator, nil, time.Hour)
	if body := scrapeMetrics(t, s, token); strings.Contains(body, "fleetward_metric_detector_devices") {
		t.Error("/metrics reports metric detector devices while the detectors are off")
	}
}

// scrapeMetrics returns the text of /metrics, read with token.
func scrapeMetrics(t *testing.T, s *app.Server, token string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	s.API.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics = %d: %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// grepLines returns the lines of text that contain sub.
func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestMetricBaselinesSurviveARestart learns a sensor's message rate from
// broker metrics events, stops the server and starts it again on the same
// data directory: the baselines come back from storage, so a surge right
// after the restart is an alert at its third sample, where a detector
// learning anew would still be in its warm-up (Warmup 10). The bus does not
// replay the learned events: they were acknowledged before the stop.
// It runs on SQLite and, when the server is reachable, on PostgreSQL.
func TestMetricBaselinesSurviveARestart(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testMetricBaselinesSurviveARestart(t, "") })
	t.Run("postgres", func(t *testing.T) {
		pg, ok := storetest.Postgres(t)
		if !ok {
			t.Skip("no PostgreSQL")
		}
		testMetricBaselinesSurviveARestart(t, pg.URL)
	})
}

func testMetricBaselinesSurviveARestart(t *testing.T, databaseURL string) {
	dir := t.TempDir()
	ctx := actor.With(context.Background(), actor.Actor{Name: "test"})
	cfg := app.Config{DataDir: dir, DatabaseURL: databaseURL, HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0",
		TelemetryInterval: 200 * time.Millisecond, MetricDetect: metricdetect.Config{Warmup: 10}, Log: quietLog()}
	start := time.Now().UTC().Add(-10 * time.Minute)
	publish := func(s *app.Server, from, n int, messages float64) {
		t.Helper()
		for i := from; i < from+n; i++ {
			data, _ := json.Marshal(map[string]float64{"messages_in": messages})
			ev := bus.Event{ID: fmt.Sprintf("restart-th-9-%d", i), Type: app.EventBrokerMetrics, Time: start.Add(time.Duration(i) * 200 * time.Millisecond),
				Actor: "broker", Subject: "th-9", Data: data}
			if err := s.Bus.Publish(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	savedSamples := func(s *app.Server) int {
		var data string
		if err := s.DB.QueryRow(ctx, `SELECT state FROM metric_baselines WHERE device_id = ?`, "th-9").Scan(&data); err != nil {
			return -1
		}
		st, err := metricdetect.ParseDeviceState([]byte(data))
		if err != nil {
			t.Fatalf("saved state %s: %v", data, err)
		}
		return st.Series["messages_in"].N
	}

	s1, err := app.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s1.Inventory.CreateDevice(ctx, inventory.Device{ID: "th-9", Name: "Dairy sensor", Class: "sensor", IPs: []string{"192.168.7.49"}}); err != nil {
		t.Fatal(err)
	}
	publish(s1, 0, 12, 2)
	token, _, _ := s1.Auth.CreateToken(ctx, "reader", auth.RoleOperator, nil, time.Hour)
	if !within(10*time.Second, func() bool {
		return strings.Contains(scrapeMetrics(t, s1, token), "fleetward_metric_detector_devices 1\n")
	}) {
		t.Fatal("the detector never saw th-9")
	}
	time.Sleep(time.Second) // the rest of the twelve events
	if err := s1.Stop(); err != nil {
		t.Fatal(err)
	}

	s2, err := app.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Stop()
	if n := savedSamples(s2); n != 12 {
		t.Fatalf("saved baseline of th-9 has %d samples, want all 12 learned before the stop", n)
	}
	c := newAPIClient(t, s2, dir, token)
	publish(s2, 12, 5, 500)
	var list struct{ Alerts []alert.Alert }
	if !within(10*time.Second, func() bool {
		list.Alerts = nil
		c.do("GET", "/api/v1/alerts?device=th-9", "", &list)
		return len(list.Alerts) > 0
	}) {
		t.Fatalf("no alert for a surge right after the restart: the baselines were not restored (%s)",
			grepLines(scrapeMetrics(t, s2, token), "fleetward_metric_"))
	}
	if a := list.Alerts[0]; a.Behaviour != metricdetect.BehaviourMessageSurge || a.SrcIP != "192.168.7.49" {
		t.Errorf("alert after the restart = %+v; want a message surge on th-9", a)
	}
	if m := scrapeMetrics(t, s2, token); !strings.Contains(m, "fleetward_metric_baseline_save_errors_total 0\n") {
		t.Errorf("/metrics: %s", grepLines(m, "fleetward_metric_baseline"))
	}
}
