package detect

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

func TestExpMatchesMath(t *testing.T) {
	worst, at := 0.0, 0.0
	check := func(x float64) {
		want, got := math.Exp(x), exp(x)
		if want == 0 || math.IsInf(want, 0) {
			if got != want {
				t.Fatalf("exp(%g) = %g, want %g", x, got, want)
			}
			return
		}
		if e := math.Abs(got-want) / want; e > worst {
			worst, at = e, x
		}
	}
	for i := -7100000; i <= 7100000; i++ {
		check(float64(i)/10000 + 1.234567e-5)
	}
	for _, x := range []float64{0, -0.0, 1e-300, -1e-300, 708, -708, 709, -709, 710, -745, -1000, 1000, math.Ln2, -math.Ln2} {
		check(x)
	}
	if worst > 1e-15 {
		t.Fatalf("exp relative error %g at %g, want ≤ 1e-15", worst, at)
	}
	if got := exp(math.NaN()); !math.IsNaN(got) {
		t.Fatalf("exp(NaN) = %g", got)
	}
	vs := []float64{-1000, -40, -3.5, -1e-9, 0, 0.25, 7, 709, 800, math.Inf(1), math.Inf(-1)}
	want := make([]float64, len(vs))
	for i, v := range vs {
		want[i] = sigmoid(v)
	}
	sigmoids(vs)
	for i := range vs {
		if vs[i] != want[i] {
			t.Errorf("sigmoids element %d = %v, sigmoid gives %v", i, vs[i], want[i])
		}
	}
	// The vector code runs (where AVX2 exists) until a block of four holds
	// an argument out of its range: every length, so that the tail after
	// the last four is covered, and now and then such an argument.
	rng := rand.New(rand.NewPCG(3, 3))
	for _, wide := range []bool{true, false} { // eights and fours, or fours alone
		for _, gather := range []bool{true, false} { // the table read by VGATHERQPD or by scalar loads
			restore, restoreLoads := setAVX512(wide), setSigmoidGather(gather)
			checkSigmoids(t, rng)
			restoreLoads()
			restore()
		}
	}
	if got := sigmoid(math.Inf(-1)); got != 0 {
		t.Fatalf("sigmoid(-Inf) = %g", got)
	}
	if got := sigmoid(math.Inf(1)); got != 1 {
		t.Fatalf("sigmoid(+Inf) = %g", got)
	}
}

func BenchmarkSigmoid(b *testing.B) {
	xs := make([]float64, 1024)
	for i := range xs {
		xs[i] = float64(i)/64 - 8
	}
	out := make([]float64, len(xs))
	b.Run("math.Exp", func(b *testing.B) {
		for range b.N {
			for i, v := range xs {
				out[i] = 1 / (1 + math.Exp(-v))
			}
		}
	})
	b.Run("table", func(b *testing.B) {
		for range b.N {
			for i, v := range xs {
				out[i] = sigmoid(v)
			}
		}
	})
	for _, gather := range []bool{false, true} {
		name := "table-slice"
		if gather {
			name = "table-slice-gather" // the vector kernels' table read by VGATHERQPD
		}
		b.Run(name, func(b *testing.B) {
			defer setSigmoidGather(gather)()
			for range b.N {
				copy(out, xs)
				sigmoids(out)
			}
		})
	}
}

// On amd64 math.Exp2 is the portable algorithm pow2 copies: the two must
// agree bit for bit (elsewhere, within an ulp).
func TestPow2MatchesExp2(t *testing.T) {
	exact := runtime.GOARCH == "amd64"
	check := func(x float64) {
		want, got := math.Exp2(x), pow2(x)
		if exact && math.Float64bits(want) != math.Float64bits(got) {
			t.Fatalf("pow2(%v) = %v, math.Exp2 %v", x, got, want)
		}
		if !exact && math.Abs(got-want) > 2e-16*want {
			t.Fatalf("pow2(%v) = %v, math.Exp2 %v", x, got, want)
		}
	}
	for i := -11000000; i <= 11000000; i++ {
		check(float64(i) / 10000 * 1.0000001)
	}
	for _, x := range []float64{0, -0.0, 1e-300, -1e-300, 1020, -1020, 1021, -1021, -1074, -1075, 1024, math.Inf(1), math.Inf(-1)} {
		check(x)
	}
	if !math.IsNaN(pow2(math.NaN())) {
		t.Error("pow2(NaN) is a number")
	}
}

// TestPow2sMatchesPow2 checks the decay factors computed together (four
// at a time where AVX2 exists) against pow2 one by one, bit for bit, over
// the decay range [-1020, 0] and outside it.
func TestPow2sMatchesPow2(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for range 20000 {
		var x, want [12]float64
		for i := range x {
			switch rng.IntN(20) {
			case 0:
				x[i] = 0
			case 1:
				x[i] = -1020 * rng.Float64()
			case 2:
				x[i] = -1100 * rng.Float64() // beyond the vector range now and then
			default:
				x[i] = -rng.ExpFloat64() * math.Pow(10, float64(rng.IntN(8)-5))
			}
			want[i] = pow2(x[i])
		}
		in, n := x, 1+rng.IntN(len(x)) // the vector blocks and the tail
		pow2s(x[:n])
		for i := range n {
			if math.Float64bits(x[i]) != math.Float64bits(want[i]) {
				t.Fatalf("pow2s(%v)[%d] = %v, pow2 gives %v (AVX2 %v)", in[i], i, x[i], want[i], useAVX2)
			}
		}
	}
}

// checkSigmoids compares sigmoids with sigmoid, bit for bit, on every
// length up to 40 (so that the tails after the vector blocks are covered),
// now and then with an argument out of the vector code's range.
func checkSigmoids(t *testing.T, rng *rand.Rand) {
	t.Helper()
	for n := 1; n <= 40; n++ {
		for range 50 {
			vs := make([]float64, n)
			for i := range vs {
				vs[i] = (rng.Float64() - 0.5) * math.Pow(10, float64(rng.IntN(6)-3))
				switch rng.IntN(40) {
				case 0, 1, 2, 3:
					vs[i] = (rng.Float64() - 0.5) * 1416 // anywhere in [-708, 708]
				case 4: // out of the vector code's range: math.Exp's
					vs[i] = (rng.Float64() - 0.5) * 4000
				case 5:
					vs[i] = []float64{math.NaN(), math.Inf(1), math.Inf(-1), 708.5, -708.5}[rng.IntN(5)]
				}
			}
			want := make([]float64, n)
			for i, v := range vs {
				want[i] = sigmoid(v)
			}
			sigmoids(vs)
			for i := range vs {
				if math.Float64bits(vs[i]) != math.Float64bits(want[i]) && !(math.IsNaN(vs[i]) && math.IsNaN(want[i])) {
					t.Fatalf("sigmoids of %d values: element %d = %v, sigmoid gives %v (AVX2 %v, AVX-512 %v)", n, i, vs[i], want[i], useAVX2, useAVX512)
				}
			}
		}
	}
}
