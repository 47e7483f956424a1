package web_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/alert"
	"github.com/fleetward/fleetward/internal/app"
	"github.com/fleetward/fleetward/internal/inventory"
	"github.com/fleetward/fleetward/internal/telemetry"
)

// TestBrowserPlotsADevicesAnomalyScore records an hour of a sensor's
// score summaries for a camera, its score rising above the threshold in
// the last minutes, and drives chromium to its page: the Anomaly score
// card draws the score and the threshold from those measurements, and the
// alert the scan raised is listed on the page. A device without scores has
// no such card, and no alerts.
func TestBrowserPlotsADevicesAnomalyScore(t *testing.T) {
	exe := chromium(t)
	ctx := actor.With(context.Background(), actor.Actor{Name: "test"})
	s, _, login := startDashboard(t, ctx, app.Config{HTTPAddr: "127.0.0.1:0"})
	createDevices(t, ctx, s,
		inventory.Device{ID: "cam-3", Name: "Loading dock camera", Class: "camera", IPs: []string{"10.1.2.3"}},
		inventory.Device{ID: "thermo-1", Name: "Office thermostat", Class: "thermostat", IPs: []string{"10.1.2.4"}})
	const points, threshold = 360, 0.4
	end := time.Now().UTC().Truncate(10 * time.Second)
	var sums []alert.ScoreSummary
	for i := range points {
		score := 0.05 + 0.01*float64(i%7)
		if i >= points-12 { // the last two minutes: a scan
			score = 2 + float64(i-(points-12))
		}
		at := end.Add(time.Duration(i-points) * 10 * time.Second)
		sums = append(sums, alert.ScoreSummary{Start: at.Add(-10 * time.Second), End: at, Sensor: "eth0", SrcIP: "10.1.2.3",
			Packets: 40, MaxScore: score, MeanScore: score / 2, Threshold: threshold})
	}
	if rep, err := s.RecordScores(ctx, sums); err != nil || rep.Devices != 1 || rep.Unresolved != 0 {
		t.Fatalf("RecordScores = %+v, %v", rep, err)
	}

	if _, err := s.RaiseAlert(ctx, alert.Signal{Time: end, Detector: "anomaly", Behaviour: "anomaly", Severity: alert.SeverityMedium,
		SrcIP: "10.1.2.3", Peer: "10.1.2.99:23", Score: 13, Threshold: threshold, Explanation: "socket statistics far from normal"}); err != nil {
		t.Fatal(err)
	}

	b := newBrowser(t, exe)
	login(b, s.URL+"/devices/cam-3", "anomaly-scores")
	if got := b.text("device-alerts"); !strings.Contains(got, "socket statistics far from normal") || !strings.Contains(got, "10.1.2.99:23") ||
		!strings.Contains(got, "all of this device's alerts") {
		t.Errorf("the camera's alerts card = %q; want the anomaly alert with its peer", got)
	}
	b.step("wait for the score chart", chromedp.WaitVisible(chromedp.CSS("#score-chart canvas")))
	card := b.text("anomaly-scores")
	for _, want := range []string{"Anomaly score", "highest score", "threshold"} {
		if !strings.Contains(card, want) {
			t.Errorf("the anomaly score card lacks %q: %q", want, card)
		}
	}
	// What uPlot drew: the series of the page's data, read from the chart.
	sctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	drawn, err := chromedp.Run(sctx, chromedp.Evaluate[[]float64](`(function () {
		var d = JSON.parse(document.getElementById("chart-data").textContent).scores;
		var c = document.querySelector("#score-chart canvas");
		return [d.x.length, Math.max.apply(null, d.anomaly_score_max), d.anomaly_threshold[0], c.width, c.height];
	})()`))
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if len(drawn) != 5 || drawn[0] != points || drawn[1] != 13 || drawn[2] != threshold || drawn[3] < 300 || drawn[4] < 100 {
		t.Errorf("chart data and canvas = %v; want %d points, top score 13, threshold %v on a drawn canvas", drawn, points, threshold)
	}
	b.shot("device-anomaly-score.png")

	b.step("open a device without scores", chromedp.Navigate(s.URL+"/devices/thermo-1"), chromedp.WaitVisible(chromedp.ID("history")))
	sctx, cancel = context.WithTimeout(b.ctx, 10*time.Second)
	absent, err := chromedp.Run(sctx, chromedp.Evaluate[bool](`document.getElementById("anomaly-scores") === null && document.getElementById("score-chart") === null`))
	cancel()
	if err != nil || !absent {
		t.Errorf("a device without scores shows an anomaly score card (%v)", err)
	}
	if got := b.text("device-alerts"); !strings.Contains(got, "No alerts on this device") {
		t.Errorf("the thermostat's alerts card = %q; want none", got)
	}
}

// TestBrowserShowsADevicesEdgeSensor records two hours of an edge
// sensor's summaries for a camera (as the server stores them from
// devices/ID/sensor) and drives chromium to its page: the Edge sensor card
// shows the latest counters, the capture failures and kernel drops among
// them, and charts the series. A device without a sensor has no such card.
func TestBrowserShowsADevicesEdgeSensor(t *testing.T) {
	exe := chromium(t)
	ctx := actor.With(context.Background(), actor.Actor{Name: "test"})
	s, _, login := startDashboard(t, ctx, app.Config{HTTPAddr: "127.0.0.1:0"})
	createDevices(t, ctx, s,
		inventory.Device{ID: "cam-9", Name: "Gate camera", Class: "camera", IPs: []string{"10.1.2.9"}},
		inventory.Device{ID: "thermo-2", Name: "Lobby thermostat", Class: "thermostat", IPs: []string{"10.1.2.10"}})
	now := time.Now().UTC()
	for i := range 12 {
		at := now.Add(time.Duration(i-12) * 10 * time.Minute)
		failures := 0
		if i >= 9 { // the interface went away twice near the end
			failures = 2
		}
		payload := fmt.Sprintf(`{"device_id":"cam-9","interface":"eth0","time":%q,"packets":%d,"pps":%d,`+
			`"trained":%v,"training_packets":55001,"threshold":0.42,"signals":%d,"alerts":%d,"score_summaries":%d,`+
			`"capture_errors":%d,"capture_reopens":%d,"capture_drops":%d}`,
			at.Format(time.RFC3339Nano), 10000*(i+1)+3456, 800+10*i, i > 3, i/2, i/4, 6*i, failures, failures, 17*i)
		samples, err := telemetry.ParseSensorSummary("cam-9", now, []byte(payload))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Telemetry.Record(ctx, samples); err != nil {
			t.Fatal(err)
		}
	}

	b := newBrowser(t, exe)
	login(b, s.URL+"/devices/cam-9", "edge-sensor")
	b.step("wait for the sensor chart", chromedp.WaitVisible(chromedp.CSS("#sensor-chart canvas")))
	card := strings.ToLower(b.text("edge-sensor")) // the failures badge is styled in capitals
	for _, want := range []string{"123456 seen", "910 per second", "trained, alert threshold 0.42", "5 signals, 2 alerts", "2 failures", "2 reopens", "187 frames dropped by the kernel"} {
		if !strings.Contains(card, want) {
			t.Errorf("the edge sensor card lacks %q: %q", want, card)
		}
	}
	b.shot("device-edge-sensor.png")

	b.step("open a device without a sensor", chromedp.Navigate(s.URL+"/devices/thermo-2"), chromedp.WaitVisible(chromedp.ID("history")))
	sctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	absent, err := chromedp.Run(sctx, chromedp.Evaluate[bool](`document.getElementById("edge-sensor") === null`))
	cancel()
	if err != nil || !absent {
		t.Errorf("a device without a sensor shows an edge sensor card (%v)", err)
	}
}

func createDevices(t *testing.T, ctx context.Context, s *app.Server, devices ...inventory.Device) {
	t.Helper()
	for _, d := range devices {
		if _, err := s.Inventory.CreateDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
}
