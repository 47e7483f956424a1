package alert_test

import (
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/alert"
)

func TestScoreSummaryMerge(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	a := alert.ScoreSummary{Start: t0, End: t0.Add(10 * time.Second), SrcIP: "10.0.0.1", Packets: 30, MaxScore: 0.9, MeanScore: 0.6, Threshold: 0.5}
	b := alert.ScoreSummary{Start: t0.Add(-5 * time.Second), End: t0.Add(10 * time.Second), SrcMAC: "02:00:00:00:00:01", Packets: 10, MaxScore: 2.5, MeanScore: 1, Threshold: 0.7}
	got := a.Merge(b)
	want := alert.ScoreSummary{Start: t0.Add(-5 * time.Second), End: t0.Add(10 * time.Second), SrcIP: "10.0.0.1", Packets: 40, MaxScore: 2.5, MeanScore: 0.7, Threshold: 0.7}
	if d := got.MeanScore - want.MeanScore; d > 1e-12 || d < -1e-12 {
		t.Errorf("merged mean %v, want %v (weighted by packets)", got.MeanScore, want.MeanScore)
	}
	got.MeanScore = want.MeanScore
	if got != want {
		t.Errorf("merged\n got %+v\nwant %+v", got, want)
	}
	if m := (alert.ScoreSummary{End: t0, MeanScore: 1, MaxScore: 1}).Merge(alert.ScoreSummary{End: t0, MeanScore: 2, MaxScore: 2}); m.MeanScore != 2 || m.Packets != 0 {
		t.Errorf("merging summaries without packets: %+v", m)
	}
}
