package detect

import (
	"slices"
	"testing"

	"github.com/fleetward/fleetward/internal/alert"
)

// TestScoreCaptureOnTheMiraiSplice runs the whole detector on the Kitsune
// Mirai splice with Kitsune's grace periods. With the default (own-link)
// features it must beat Kitsune-py's recorded AUC (0.93157) and TPR at 1%
// FPR (0.856); Kitsune's exact features need only beat chance.
func TestScoreCaptureOnTheMiraiSplice(t *testing.T) {
	if testing.Short() {
		t.Skip("scores 48,363 packets")
	}
	labels := readLabelsFile(t, datasetPath(t, "mirai-splice.labels"))
	for _, kitsuneLinks := range []bool{false, true} {
		r, err := OpenFile(datasetPath(t, "mirai-splice.pcap"))
		if err != nil {
			t.Fatal(err)
		}
		res, err := ScoreCapture(r, ScoreOptions{KitNET: KitNETConfig{FMGrace: 5000, ADGrace: 20000}, KitsuneLinks: kitsuneLinks})
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		if res.Packets != len(labels) {
			t.Fatalf("scored %d packets, %d labels", res.Packets, len(labels))
		}
		ev := Evaluate(res.Scores[res.Trained:], labels[res.Trained:])
		t.Logf("kitsune links %v: %d autoencoders, %.0f packets/s, %+v", kitsuneLinks, res.Autoencoders, res.PacketsPerSec, ev)
		if ev.AUC < 0.6 {
			t.Errorf("AUC %.3f: no better than chance", ev.AUC)
		}
		if !kitsuneLinks && (ev.AUC <= 0.93157 || ev.TPRAt1 <= 0.856) {
			t.Errorf("AUC %.5f, TPR at 1%% FPR %.4f: not above Kitsune-py's 0.93157 and 0.856", ev.AUC, ev.TPRAt1)
		}
	}
}

// TestScoreCaptureGivesTheSameResultsInOneStageOrTwo compares the
// two-goroutine pipeline, with an odd batch size, against one goroutine.
func TestScoreCaptureGivesTheSameResultsInOneStageOrTwo(t *testing.T) {
	run := func(sequential bool, batch int) *ScoreResult {
		r, err := OpenFile(datasetPath(t, "mirai-splice.pcap"))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		res, err := ScoreCapture(r, ScoreOptions{KitNET: KitNETConfig{FMGrace: 5000, ADGrace: 20000}, Rules: &Rules{},
			Anomaly: &AnomalyConfig{}, Sequential: sequential, Batch: batch})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	one, two := run(true, 1), run(false, 7)
	if one.Packets != 48363 || two.Packets != one.Packets {
		t.Fatalf("scored %d and %d packets, want 48363", one.Packets, two.Packets)
	}
	if !slices.Equal(one.Scores, two.Scores) || !slices.Equal(one.Smoothed, two.Smoothed) || !slices.Equal(one.Times, two.Times) {
		t.Error("scores differ between one stage and two")
	}
	if len(one.Signals) == 0 {
		t.Error("no signals to compare")
	}
	if !slices.EqualFunc(one.Signals, two.Signals, func(a, b alert.Signal) bool { return a == b }) {
		t.Errorf("signals differ: %d in one stage, %d in two", len(one.Signals), len(two.Signals))
	}
	for _, ph := range []string{PhaseFeatureMapping, PhaseTraining, PhaseScoring} {
		if one.Phases[ph].Packets != two.Phases[ph].Packets || one.Phases[ph].Packets == 0 {
			t.Errorf("phase %s: %d and %d packets", ph, one.Phases[ph].Packets, two.Phases[ph].Packets)
		}
	}
}

// Continued learning on packets judged benign must not teach the model the
// attack: on the splice, whose attack part it also learns from, the figures
// must stay above Kitsune-py's.
func TestContinuedLearningKeepsDetecting(t *testing.T) {
	if testing.Short() {
		t.Skip("scores 48,363 packets")
	}
	labels := readLabelsFile(t, datasetPath(t, "mirai-splice.labels"))
	r, err := OpenFile(datasetPath(t, "mirai-splice.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	res, err := ScoreCapture(r, ScoreOptions{KitNET: KitNETConfig{FMGrace: 5000, ADGrace: 20000}, Anomaly: &AnomalyConfig{Learn: true}})
	if err != nil {
		t.Fatal(err)
	}
	ev := Evaluate(res.Scores[res.Trained:], labels[res.Trained:])
	t.Logf("learnt %d packets: %+v", res.Learnt, ev)
	if res.Learnt < 1000 {
		t.Errorf("learnt %d packets after training", res.Learnt)
	}
	if ev.AUC <= 0.93157 || ev.TPRAt1 <= 0.856 {
		t.Errorf("with continued learning AUC %.5f, TPR at 1%% FPR %.4f: not above Kitsune-py's 0.93157 and 0.856", ev.AUC, ev.TPRAt1)
	}
}
