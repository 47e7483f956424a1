package detect

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"

	"github.com/fleetward/fleetward/internal/alert"
)

// spliceAttack marks the Mirai splice's attack packets: the malicious ones
// to or from the infected camera, 192.168.2.110. The splice labels every
// packet after its join malicious (../shared/datasets/README.md), so 1,244
// of its 10,000 malicious packets are the ordinary traffic of devices the
// bot never touched; flagging those is not detecting the attack.
func spliceAttack(t testing.TB, labels []bool) []bool {
	t.Helper()
	frames, link := loadFrames(t, datasetPath(t, "mirai-splice.pcap"))
	bot := Host{Kind: AddrIPv4, Addr: [16]byte{192, 168, 2, 110}}
	d := NewDecoder(link)
	attack := make([]bool, len(frames))
	n := 0
	for i, f := range frames {
		var p Packet
		d.Decode(f.data, f.ci, &p)
		if attack[i] = labels[i] && (p.Src == bot || p.Dst == bot); attack[i] {
			n++
		}
	}
	if n != 8756 {
		t.Fatalf("%d attack packets in the splice, want 8,756", n)
	}
	return attack
}

// onAttack evaluates the scores of the benign packets and the attack
// packets only: the true-positive rates are the attack's, at false-positive
// rates over every benign packet.
func onAttack(scores []float64, labels, attack []bool) Evaluation {
	var s []float64
	var l []bool
	for i, v := range scores {
		if !labels[i] || attack[i] {
			s, l = append(s, v), append(l, labels[i])
		}
	}
	return Evaluate(s, l)
}

// beatKitsune checks the scores of the splice's packets from trained on
// against Kitsune-py's own: a higher AUC over every scored packet, and a
// higher true-positive rate at 1% and 0.1% FPR on the attack's packets.
// (Over all malicious-labelled packets, fleetward's TPR at 1% FPR is below
// Kitsune-py's 0.856: 73 of Kitsune-py's true positives there are packets
// of devices the bot never touched, which it flags for their quiet periods
// (docs/DETECTION.md, "Quiet periods"), and fleetward 7.)
func beatKitsune(t *testing.T, scores []float64, trained int) {
	t.Helper()
	labels := readLabelsFile(t, datasetPath(t, "mirai-splice.labels"))
	attack := spliceAttack(t, labels)
	kitsune := kitsuneScores(t)
	all, theirsAll := Evaluate(scores[trained:], labels[trained:]), Evaluate(kitsune[trained:], labels[trained:])
	ours := onAttack(scores[trained:], labels[trained:], attack[trained:])
	theirs := onAttack(kitsune[trained:], labels[trained:], attack[trained:])
	t.Logf("all packets: AUC %.5f (Kitsune-py %.5f), TPR at 1%% FPR %.4f (%.4f), at 0.1%% %.4f (%.4f)",
		all.AUC, theirsAll.AUC, all.TPRAt1, theirsAll.TPRAt1, all.TPRAt01, theirsAll.TPRAt01)
	t.Logf("attack packets: TPR at 1%% FPR %.4f (Kitsune-py %.4f), at 0.1%% %.4f (%.4f)", ours.TPRAt1, theirs.TPRAt1, ours.TPRAt01, theirs.TPRAt01)
	if all.AUC <= theirsAll.AUC {
		t.Errorf("AUC %.5f, not above Kitsune-py's %.5f", all.AUC, theirsAll.AUC)
	}
	if ours.TPRAt1 <= theirs.TPRAt1 || ours.TPRAt01 <= theirs.TPRAt01 {
		t.Errorf("on the attack's packets, TPR at 1%% FPR %.4f and at 0.1%% %.4f: not above Kitsune-py's %.4f and %.4f",
			ours.TPRAt1, ours.TPRAt01, theirs.TPRAt1, theirs.TPRAt01)
	}
}

// TestScoreCaptureOnTheMiraiSplice runs the whole detector on the Kitsune
// Mirai splice with Kitsune's grace periods. With the default (own-link)
// features it must beat Kitsune-py (beatKitsune); Kitsune's exact features
// need only beat chance.
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
		if !kitsuneLinks {
			beatKitsune(t, res.Scores, res.Trained)
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
// must stay above Kitsune-py's (beatKitsune).
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
	beatKitsune(t, res.Scores, res.Trained)
}

// A panic in the decoder or the rules costs one frame, not the sensor: the
// frame is kept without addresses, counted, and its signals dropped.
func TestAPanickingFrameIsCountedAndKeptWithoutAddresses(t *testing.T) {
	fs := newFeatureStage(&memorySource{link: LinkEthernet}, ScoreOptions{Rules: &Rules{}}, false)
	fs.rules = &RuleDetector{r: DefaultRules} // no tables: the first SYN writes to a nil map
	at := time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)
	syn := tcpFrame(t, botIP, victimIP, 40000, 23, "S", nil)
	ci := gopacket.CaptureInfo{Timestamp: at, CaptureLength: len(syn), Length: len(syn)}
	kept := []alert.Signal{{Behaviour: "earlier"}}
	var p Packet
	sigs := fs.inspect(syn, ci, &p, kept)
	if fs.dec.Stats.Panicked != 1 || !strings.Contains(fs.firstPanic, "nil map") {
		t.Fatalf("panicked %d, first %q", fs.dec.Stats.Panicked, fs.firstPanic)
	}
	if p.Src.Kind != AddrNone || p.Time != float64(at.Unix()) || p.Length != len(syn) {
		t.Errorf("the frame was kept as %+v", p)
	}
	if len(sigs) != 1 || sigs[0].Behaviour != "earlier" {
		t.Errorf("signals %+v", sigs)
	}
	// The next frame is inspected as usual.
	fs.rules = NewRuleDetector(Rules{})
	fs.inspect(syn, ci, &p, nil)
	if fs.dec.Stats.Panicked != 1 || p.Src.Kind != AddrIPv4 {
		t.Errorf("after a panic: panicked %d, packet %+v", fs.dec.Stats.Panicked, p)
	}
}

// TestScoreCaptureSaysWhenTheModelIsUncalibrated: a model trained on one
// packet scores NaN, so no threshold can be calibrated. The result says
// so, and stays encodable as JSON (it goes to reports and, from a sensor,
// to the server), where a +Inf or NaN threshold made encoding fail.
func TestScoreCaptureSaysWhenTheModelIsUncalibrated(t *testing.T) {
	r, err := OpenFile(datasetPath(t, "mirai2000.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	res, err := ScoreCapture(r, ScoreOptions{KitNET: KitNETConfig{FMGrace: 1000, ADGrace: 1}, Anomaly: &AnomalyConfig{}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Uncalibrated || res.Threshold != 0 || len(res.Signals) != 0 {
		t.Errorf("uncalibrated %v, threshold %v, %d signals; want true, 0, none", res.Uncalibrated, res.Threshold, len(res.Signals))
	}
	if _, err := json.Marshal(res); err != nil {
		t.Errorf("the result does not encode: %v", err)
	}
}
