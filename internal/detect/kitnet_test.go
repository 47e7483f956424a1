package detect

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestKitNETMapsEveryFeatureOnceInSmallGroups(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	const n = 40
	k := NewKitNET(n, KitNETConfig{FMGrace: 500, ADGrace: 500, MaxAutoencoderSize: 6})
	x := make([]float64, n)
	for range 501 {
		base := rng.NormFloat64()
		for i := range x {
			// Four families of correlated features and a constant one.
			x[i] = base*float64(i%4) + rng.NormFloat64()*0.1*float64(i%3)
		}
		x[n-1] = 3
		if s := k.Process(x); s != 0 {
			t.Fatalf("score %v during the feature-mapping grace period", s)
		}
	}
	fm := k.FeatureMap()
	if fm == nil {
		t.Fatal("no feature map after the grace period")
	}
	var all []int
	for _, g := range fm {
		if len(g) == 0 || len(g) > 6 {
			t.Errorf("group of %d features: %v", len(g), g)
		}
		all = append(all, g...)
	}
	slices.Sort(all)
	for i, f := range all {
		if f != i {
			t.Fatalf("features mapped: %v, want each of 0..%d once", all, n-1)
		}
	}
}

func TestKitNETScoresTheUnusualAboveTheUsual(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	const n = 12
	k := NewKitNET(n, KitNETConfig{FMGrace: 200, ADGrace: 3000})
	usual := func() []float64 {
		x := make([]float64, n)
		b := rng.Float64()
		for i := range x {
			x[i] = b + 0.01*rng.Float64()
		}
		return x
	}
	for k.Training() {
		k.Process(usual())
	}
	var normal float64
	for range 100 {
		normal = max(normal, k.Process(usual()))
	}
	odd := usual()
	for i := range odd {
		if i%2 == 0 {
			odd[i] = 1 - odd[i] + 2
		}
	}
	if s := k.Process(odd); !(s > 2*normal) || math.IsNaN(s) {
		t.Errorf("unusual vector scored %v, usual ones at most %v", s, normal)
	}
}

// Learning after training changes the weights but not the input scaling:
// an attacker's extreme values must not squeeze every other input into a
// corner of the range the model knows.
func TestLearnKeepsTheScaling(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	k := NewKitNET(12, KitNETConfig{FMGrace: 50, ADGrace: 200})
	x := make([]float64, 12)
	for range 251 {
		for i := range x {
			x[i] = rng.Float64()
		}
		k.Process(x)
	}
	if k.Training() {
		t.Fatal("still training")
	}
	lo, hi := slices.Clone(k.output.lo), slices.Clone(k.output.hi)
	w := slices.Clone(k.ensemble[0].w)
	for i := range x {
		x[i] = 1000 // far outside what training saw
	}
	k.Process(x)
	k.Learn(x)
	if k.Learnt() != 1 {
		t.Errorf("learnt %d", k.Learnt())
	}
	if !slices.Equal(lo, k.output.lo) || !slices.Equal(hi, k.output.hi) {
		t.Error("Learn moved the output autoencoder's scaling")
	}
	if slices.Equal(w, k.ensemble[0].w) {
		t.Error("Learn left the weights as they were")
	}
}

// ProcessBatch, with the ensemble spread over goroutines, in packs of four
// on one goroutine (where the vector kernels run), or switching between
// the two from batch to batch, and batches that straddle the phases, gives
// exactly Process's correlations (learnt four vectors a pass rather than
// one), scores, calibration and model, and learning after it (Learn, one
// autoencoder at a time) goes on from the same weights.
func TestProcessBatchEqualsProcess(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const n, packets = 30, 3000
	xs := make([]float64, n*packets)
	for i := range xs {
		xs[i] = rng.Float64() * float64(i%n+1)
		if i > n*2500 && i%7 == 0 {
			xs[i] *= 5 // something to score
		}
	}
	cfg := KitNETConfig{FMGrace: 300, ADGrace: 1200}
	one := NewKitNET(n, cfg)
	want := make([]float64, packets)
	for t := range packets {
		want[t] = one.Process(xs[t*n : (t+1)*n])
	}
	learnt := one.Process(xs[:n])
	one.Learn(xs[:n])
	for _, workers := range [][]int{{3}, {1}, {1, 3, 1, 1}} {
		many := NewKitNET(n, cfg)
		got := make([]float64, packets)
		for t, b := 0, 0; t < packets; b++ {
			m := min(packets-t, 37)
			many.ProcessBatch(xs[t*n:(t+m)*n], m, workers[b%len(workers)], got[t:t+m])
			t += m
		}
		for i := range want {
			if want[i] != got[i] {
				t.Fatalf("workers %v, vector %d: Process scores %v, ProcessBatch %v", workers, i, want[i], got[i])
			}
		}
		if want[packets-1] == 0 {
			t.Fatal("nothing scored")
		}
		if !slices.Equal(one.corr.cross, many.corr.cross) || !slices.Equal(one.corr.resSq, many.corr.resSq) {
			t.Errorf("workers %v: the feature correlations differ", workers)
		}
		if !slices.Equal(one.Calibration(), many.Calibration()) || !slices.Equal(one.EnsembleBaseline(), many.EnsembleBaseline()) {
			t.Errorf("workers %v: calibration differs", workers)
		}
		if got := many.Process(xs[:n]); got != learnt {
			t.Errorf("workers %v: Process after the batches scores %v, want %v", workers, got, learnt)
		}
		many.Learn(xs[:n])
		if !slices.Equal(one.output.w, many.output.w) {
			t.Errorf("workers %v: output weights differ", workers)
		}
		for i := range one.ensemble {
			a, b := one.ensemble[i], many.ensemble[i]
			if !slices.Equal(a.w, b.w) || !slices.Equal(a.wt, b.wt) || !slices.Equal(a.hbias, b.hbias) || !slices.Equal(a.vbias, b.vbias) ||
				!slices.Equal(a.lo, b.lo) || !slices.Equal(a.hi, b.hi) || !slices.Equal(a.scale, b.scale) {
				t.Errorf("workers %v: autoencoder %d differs", workers, i)
			}
		}
	}
	if usePacks() {
		t.Log("packs in use: one goroutine ran the ensemble four autoencoders at a time")
	}
}
