package detect

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/apperr"
)

// trainedKitNET trains a small model on random feature vectors.
func trainedKitNET(t testing.TB) (*KitNET, [][]float64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	k := NewKitNET(NumFeatures, KitNETConfig{FMGrace: 50, ADGrace: 200})
	var later [][]float64
	for i := range 300 {
		x := make([]float64, NumFeatures)
		for j := range x {
			x[j] = rng.Float64() * float64(j%7+1)
		}
		if i < 260 {
			k.Process(x)
		} else {
			later = append(later, x)
		}
	}
	return k, later
}

func TestSavedModelScoresAsTheOriginal(t *testing.T) {
	k, later := trainedKitNET(t)
	var buf bytes.Buffer
	if err := k.Save(&buf); err != nil {
		t.Fatal(err)
	}
	l, err := LoadKitNET(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if l.Training() || len(l.Calibration()) != len(k.Calibration()) {
		t.Fatalf("loaded model training %v, %d calibration scores of %d", l.Training(), len(l.Calibration()), len(k.Calibration()))
	}
	for i, x := range later {
		if a, b := k.Process(x), l.Process(x); a != b {
			t.Fatalf("packet %d: original scores %v, loaded %v", i, a, b)
		}
	}
}

func TestSavingAModelInTrainingIsRefused(t *testing.T) {
	k := NewKitNET(NumFeatures, KitNETConfig{})
	if err := k.Save(&bytes.Buffer{}); !apperr.Is(err, apperr.Invalid) {
		t.Errorf("error %v, want Invalid", err)
	}
}

func TestLoadingABadModelFileFailsClearly(t *testing.T) {
	k, _ := trainedKitNET(t)
	var buf bytes.Buffer
	if err := k.Save(&buf); err != nil {
		t.Fatal(err)
	}
	good := buf.String()
	tests := []struct {
		name, file, want string
	}{
		{"an empty file is not a model", "", "not a model file"},
		{"a capture is not a model", "\xd4\xc3\xb2\xa1", "not a model file"},
		{"another format is refused", strings.Replace(good, ModelFormat, "other", 1), "format"},
		{"a newer version is refused", strings.Replace(good, `"version":1`, `"version":2`, 1), "version 2"},
		{"a model of other features is refused", strings.Replace(good, `"features":100`, `"features":12`, 1), "12 features"},
		{"a cut file is refused", good[:len(good)/2], "not a model file"},
		{"a feature index out of range is refused", strings.Replace(good, `"feature_map":[[`, `"feature_map":[[999,`, 1), "feature group 0"},
		{"a negative learning rate is refused", regexp.MustCompile(`"learning_rate":[0-9.e-]+`).ReplaceAllString(good, `"learning_rate":-1`), "learning rate of -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadKitNET(strings.NewReader(tt.file))
			if !apperr.Is(err, apperr.Invalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want Invalid mentioning %q", err, tt.want)
			}
		})
	}
}

func FuzzLoadKitNET(f *testing.F) {
	// A trained model, as small as one can be (one hidden unit per
	// autoencoder, 17 KB), so that the fuzzer's mutations of it
	// are many: a full-sized one is 200 KB.
	rng := rand.New(rand.NewPCG(3, 4))
	k := NewKitNET(NumFeatures, KitNETConfig{FMGrace: 20, ADGrace: 20, HiddenRatio: 0.01})
	for range 41 {
		x := make([]float64, NumFeatures)
		for j := range x {
			x[j] = rng.Float64() * float64(j%7+1)
		}
		k.Process(x)
	}
	var buf bytes.Buffer
	if err := k.Save(&buf); err != nil {
		f.Fatal(err)
	}
	if buf.Len() > 32<<10 {
		f.Fatalf("the seed model takes %d bytes", buf.Len())
	}
	f.Add(buf.Bytes())
	f.Add([]byte(`{"format":"fleetward-kitnet","version":1,"features":100}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := LoadKitNET(bytes.NewReader(b))
		if err != nil {
			return
		}
		// A model that loads must score without panicking.
		m.Process(make([]float64, NumFeatures))
	})
}

func TestPlotScoresWritesAPNG(t *testing.T) {
	tests := []struct {
		name   string
		scores []float64
		opts   PlotOptions
	}{
		{"labelled scores with a threshold", []float64{0, 0, 0.1, 0.2, 5, 30}, PlotOptions{Labels: []bool{false, false, false, false, true, true}, Threshold: 1}},
		{"scores all in training draw an empty plot", []float64{0, 0}, PlotOptions{}},
		{"one score draws", []float64{1}, PlotOptions{Width: 10, Height: 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := PlotScores(&buf, tt.scores, tt.opts); err != nil {
				t.Fatal(err)
			}
			if _, err := png.Decode(&buf); err != nil {
				t.Errorf("not a PNG: %v", err)
			}
		})
	}
}

// A full-size plot carries what a reader needs: the grace periods shaded,
// the legend's colours, and text (axis labels) left of the plotting area.
func TestPlotScoresLabelsItsAxes(t *testing.T) {
	scores := make([]float64, 1000)
	labels := make([]bool, len(scores))
	for i := 400; i < len(scores); i++ {
		scores[i] = 0.01 * float64(1+i%7)
		labels[i] = i >= 800
	}
	var buf bytes.Buffer
	if err := PlotScores(&buf, scores, PlotOptions{Labels: labels, Threshold: 0.05}); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	count := func(r image.Rectangle, c color.RGBA) (n int) {
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				if color.RGBAModel.Convert(img.At(x, y)) == c {
					n++
				}
			}
		}
		return n
	}
	b := img.Bounds()
	if n := count(image.Rect(70, 100, 300, 400), plotTraining); n < 1000 {
		t.Errorf("grace periods not shaded: %d pixels", n)
	}
	legend := image.Rect(b.Max.X/2, 0, b.Max.X, 24)
	for _, c := range []color.RGBA{plotBenign, plotMalicious} {
		if n := count(legend, c); n < 100 {
			t.Errorf("legend swatch %v: %d pixels", c, n)
		}
	}
	if n := count(image.Rect(0, 28, 60, b.Max.Y), plotText); n < 50 {
		t.Errorf("score axis labels: %d text pixels", n)
	}
	if n := count(image.Rect(64, b.Max.Y-38, b.Max.X, b.Max.Y), plotText); n < 50 {
		t.Errorf("packet axis labels: %d text pixels", n)
	}
	if got := tickStep(48363); got != 5000 {
		t.Errorf("tickStep(48363) = %d, want 5000", got)
	}
}

// A model trained on the splice's first 25,001 packets, saved, loaded and
// run on the splice from its first packet: the fresh stream statistics
// must not raise alerts on the benign part, and the attack still must.
func TestLoadedModelWarmsUpBeforeAlerting(t *testing.T) {
	if testing.Short() {
		t.Skip("scores the splice twice")
	}
	run := func(opts ScoreOptions) *ScoreResult {
		r, err := OpenFile(datasetPath(t, "mirai-splice.pcap"))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		res, err := ScoreCapture(r, opts)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	trained := run(ScoreOptions{KitNET: KitNETConfig{FMGrace: 5000, ADGrace: 20000}})
	var buf bytes.Buffer
	if err := trained.Model.Save(&buf); err != nil {
		t.Fatal(err)
	}
	model, err := LoadKitNET(&buf)
	if err != nil {
		t.Fatal(err)
	}
	res := run(ScoreOptions{Model: model, Anomaly: &AnomalyConfig{}})
	attack := 0
	for _, s := range res.Signals {
		i, _ := slices.BinarySearchFunc(res.Times, s.Time, func(a float64, b time.Time) int { return packetTime(a).Compare(b) })
		if i < 38363 {
			t.Errorf("alert on benign traffic: %+v", s)
		} else if s.SrcIP == "192.168.2.110" {
			attack++
		}
	}
	if attack == 0 {
		t.Error("no alert on the infected camera")
	}
}
