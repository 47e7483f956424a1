package detect

import "testing"

// TestScoreCaptureOnTheMiraiSplice runs the whole detector on the Kitsune
// Mirai splice with Kitsune's grace periods and reports the figures; it
// fails only if detection is no better than chance.
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
	}
}
