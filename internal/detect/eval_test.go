package detect

import (
	"bufio"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
)

func readLabelsFile(t testing.TB, path string) []bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	labels, err := ReadLabels(f)
	if err != nil {
		t.Fatal(err)
	}
	return labels
}

// kitsuneScores reads Kitsune-py's own per-packet scores of the Mirai
// splice (with its grace periods, 5,000 and 20,000).
func kitsuneScores(t testing.TB) []float64 {
	t.Helper()
	f, err := os.Open(datasetPath(t, "kitsune-py-scores-mirai-splice.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var scores []float64
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		_, v, _ := strings.Cut(sc.Text(), ",")
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatal(err)
		}
		scores = append(scores, x)
	}
	return scores
}

func TestEvaluateReproducesKitsunesOwnFigures(t *testing.T) {
	labels := readLabelsFile(t, datasetPath(t, "mirai-splice.labels"))
	scores := kitsuneScores(t)
	const trained = 25001
	ev := Evaluate(scores[trained:], labels[trained:len(scores)])
	t.Logf("%+v", ev)
	for _, c := range []struct {
		name      string
		got, want float64
		tol       float64
	}{
		{"AUC", ev.AUC, 0.93157, 1e-5},
		// Kitsune-py's script interpolates a thinned ROC curve to find the
		// crossing; Evaluate takes the exact crossing, 1.1e-4 lower here.
		{"EER", ev.EER, 0.12831, 2e-4},
		{"TPR at 1% FPR", ev.TPRAt1, 0.856, 1e-3},
		{"TPR at 0.1% FPR", ev.TPRAt01, 0.0029, 1e-4},
	} {
		if math.Abs(c.got-c.want) > c.tol {
			t.Errorf("%s = %.5f, Kitsune-py reports %.5f", c.name, c.got, c.want)
		}
	}
	if ev.Benign != 13362 || ev.Malicious != 10000 {
		t.Errorf("evaluated %d benign and %d malicious packets, Kitsune-py 13362 and 10000", ev.Benign, ev.Malicious)
	}
}

// TestEvaluateTakesNaNScores: a model that cannot score (trained on one
// packet) gives NaN; Evaluate counts it as the highest score, where it
// used to loop for ever grouping ties.
func TestEvaluateTakesNaNScores(t *testing.T) {
	nan := math.NaN()
	ev := Evaluate([]float64{0.1, nan, 0.2, nan, 0.3}, []bool{false, true, false, false, true})
	if ev.Benign != 3 || ev.Malicious != 2 || math.IsNaN(ev.AUC) || ev.AUC < 0 || ev.AUC > 1 {
		t.Errorf("%+v", ev)
	}
}

// TestCalibratedThresholdSkipsScoresThatAreNotFinite: NaN or infinite
// calibration scores are left out; with none finite the model never
// alerts (+Inf), where the threshold used to be NaN and every score was
// "above" it in the alerts' words.
func TestCalibratedThresholdSkipsScoresThatAreNotFinite(t *testing.T) {
	c := AnomalyConfig{TargetFPR: 0.5, ThresholdScale: 1}
	if got := c.CalibratedThreshold([]float64{math.NaN(), 1, math.Inf(1), 3}); got != 1 {
		t.Errorf("threshold %v, want 1 (the median of the finite 1 and 3)", got)
	}
	if got := c.CalibratedThreshold([]float64{math.NaN()}); !math.IsInf(got, 1) {
		t.Errorf("threshold %v with no finite calibration score, want +Inf", got)
	}
}
