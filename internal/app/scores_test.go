package app_test

import (
	"context"
	"fmt"
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

// TestSensorScoresBecomeMeasurementsOfTheRightDevice posts score
// summaries of a known camera (by IP, and by MAC with an IP the inventory
// does not know), of an unknown host and bad ones, and checks what the
// camera's series hold.
func TestSensorScoresBecomeMeasurementsOfTheRightDevice(t *testing.T) {
	dir := t.TempDir()
	ctx := actor.With(context.Background(), actor.Actor{Name: "test"})
	s, err := app.Start(ctx, app.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if _, err := s.Inventory.CreateDevice(ctx, inventory.Device{ID: "cam-9", Name: "Dock camera", Class: "camera",
		IPs: []string{"192.168.2.109"}, MACs: []string{"48:02:2e:01:83:15"}}); err != nil {
		t.Fatal(err)
	}
	sensor, _, _ := s.Auth.CreateToken(ctx, "sensor-1", auth.RoleOperator, nil, time.Hour)
	c := newAPIClient(t, s, dir, sensor)
	t0 := time.Now().UTC().Truncate(10 * time.Second).Add(-time.Hour)
	summary := func(i int, ip, mac string, packets int, maxScore, mean float64) string {
		return fmt.Sprintf(`{"start":%q,"end":%q,"sensor":"eth0","src_ip":%q,"src_mac":%q,"packets":%d,"max_score":%g,"mean_score":%g,"threshold":0.5}`,
			t0.Add(time.Duration(i)*10*time.Second).Format(time.RFC3339), t0.Add(time.Duration(i+1)*10*time.Second).Format(time.RFC3339),
			ip, mac, packets, maxScore, mean)
	}
	body := `{"summaries":[` + strings.Join([]string{
		summary(0, "192.168.2.109", "", 10, 0.2, 0.1),
		summary(1, "192.168.2.109", "", 30, 0.9, 0.6),
		// The same device by its MAC in the same interval: merged.
		summary(1, "10.9.9.9", "48:02:2E:01:83:15", 10, 2.5, 1.0),
		summary(2, "192.168.2.200", "", 5, 7, 7), // no such device
	}, ",") + `]}`
	var rep app.ScoreReport
	if st, _ := c.do("POST", "/api/v1/scores", body, &rep); st != 200 {
		t.Fatalf("POST /api/v1/scores = %d", st)
	}
	if rep != (app.ScoreReport{Accepted: 4, Devices: 1, Samples: 8, Unresolved: 1}) {
		t.Errorf("report %+v, want 4 accepted, 1 device, 8 samples (2 times × 4 metrics), 1 unresolved", rep)
	}
	series, err := s.Telemetry.Series(ctx, "cam-9", telemetry.AnomalyMetrics, t0)
	if err != nil {
		t.Fatal(err)
	}
	values := func(m string) []float64 {
		var vs []float64
		for _, p := range series[m] {
			vs = append(vs, p.Value)
		}
		return vs
	}
	want := map[string][]float64{
		telemetry.MetricAnomalyScoreMax:  {0.2, 2.5},
		telemetry.MetricAnomalyScoreMean: {0.1, 0.7}, // (30×0.6 + 10×1.0) / 40
		telemetry.MetricAnomalyThreshold: {0.5, 0.5},
		telemetry.MetricAnomalyPackets:   {10, 40},
	}
	for m, w := range want {
		got := values(m)
		if len(got) != len(w) {
			t.Errorf("%s = %v, want %v", m, got, w)
			continue
		}
		for i := range w {
			if d := got[i] - w[i]; d > 1e-9 || d < -1e-9 {
				t.Errorf("%s = %v, want %v", m, got, w)
				break
			}
		}
	}
	if pts := series[telemetry.MetricAnomalyScoreMax]; len(pts) == 2 && !pts[1].Time.Equal(t0.Add(20*time.Second)) {
		t.Errorf("the second point is at %s, want the summary's end %s", pts[1].Time, t0.Add(20*time.Second))
	}

	// In process, as the demo records them.
	if rep, err := s.RecordScores(ctx, []alert.ScoreSummary{{End: t0.Add(time.Minute), SrcIP: "192.168.2.109", Packets: 1, MaxScore: 3, MeanScore: 3, Threshold: 0.5}}); err != nil || rep.Samples != 4 {
		t.Errorf("RecordScores = %+v, %v", rep, err)
	}
	if _, err := s.RecordScores(ctx, []alert.ScoreSummary{{End: t0, SrcIP: "192.168.2.109"}, {SrcIP: "192.168.2.109"}}); err == nil || !strings.Contains(err.Error(), "summaries[1].end") {
		t.Errorf("RecordScores of a summary without an end: %v, want an error naming summaries[1].end", err)
	}

	many := make([]string, 5001)
	for i := range many {
		many[i] = summary(0, "192.168.2.109", "", 1, 0, 0)
	}
	auditor, _, _ := s.Auth.CreateToken(ctx, "auditor-1", auth.RoleAuditor, nil, time.Hour)
	for _, bc := range []struct {
		name, body string
		status     int
		field      string
		token      string
	}{
		{"no summaries", `{"summaries":[]}`, 400, "summaries", ""},
		{"too many summaries", `{"summaries":[` + strings.Join(many, ",") + `]}`, 400, "summaries", ""},
		{"a summary without a source", `{"summaries":[` + summary(0, "192.168.2.109", "", 1, 0, 0) + `,{"end":"2026-11-28T10:00:00Z","packets":1}]}`, 400, "summaries[1].src_ip", ""},
		{"a negative score", `{"summaries":[{"end":"2026-11-28T10:00:00Z","src_ip":"192.168.2.109","max_score":-1}]}`, 400, "summaries[0].max_score", ""},
		{"a start after the end", `{"summaries":[{"start":"2026-11-28T11:00:00Z","end":"2026-11-28T10:00:00Z","src_ip":"192.168.2.109"}]}`, 400, "summaries[0].start", ""},
		{"an unknown field", `{"summaries":[{"end":"2026-11-28T10:00:00Z","src_ip":"192.168.2.109","score":1}]}`, 400, "score", ""},
		{"malformed JSON", `{"summaries":[`, 400, "", ""},
		{"an auditor (read only)", `{"summaries":[` + summary(0, "192.168.2.109", "", 1, 0, 0) + `]}`, 403, "", auditor},
	} {
		t.Run(bc.name, func(t *testing.T) {
			cc := c
			if bc.token != "" {
				cc = newAPIClient(t, s, dir, bc.token)
			}
			if st, field := cc.do("POST", "/api/v1/scores", bc.body, nil); st != bc.status || field != bc.field {
				t.Errorf("POST /api/v1/scores = %d field %q, want %d field %q", st, field, bc.status, bc.field)
			}
		})
	}
	after, _ := s.Telemetry.Series(ctx, "cam-9", []string{telemetry.MetricAnomalyScoreMax}, t0)
	if n := len(after[telemetry.MetricAnomalyScoreMax]); n != 3 {
		t.Errorf("%d score points after the refused requests, want 3 (nothing of a refused batch is stored)", n)
	}
}
