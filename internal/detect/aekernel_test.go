package detect

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestKernelsMatchThePlainLoopsBitForBit runs rowsAxpy and rowsUpdate on
// random matrices of every shape the autoencoders use (and some larger),
// with values of mixed sign and magnitude, and requires the results to be
// identical to the plain Go loops, bit for bit. Where AVX is absent both
// sides are the Go loops and the test checks only the padding contract.
func TestKernelsMatchThePlainLoopsBitForBit(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	val := func() float64 { return (rng.Float64() - 0.5) * math.Pow(10, float64(rng.IntN(12)-6)) }
	fill := func(n int) []float64 {
		s := make([]float64, n)
		for i := range s {
			s[i] = val()
		}
		return s
	}
	for rows := 1; rows <= 20; rows++ {
		for _, n := range []int{4, 8, 12, 16, 20, 32} {
			for _, extra := range []int{0, 4} {
				stride := n + extra
				m, a, b, u, v := fill(rows*stride), fill(rows), fill(rows), fill(n), fill(n)
				out := fill(n)
				want := slices.Clone(out)
				rowsAxpyGo(want, a, m, n, stride)
				rowsAxpy(out, a, m, n, stride)
				for j := range out {
					if math.Float64bits(out[j]) != math.Float64bits(want[j]) {
						t.Fatalf("rowsAxpy rows %d n %d stride %d: out[%d] = %v, plain loop %v", rows, n, stride, j, out[j], want[j])
					}
				}
				got, wantM := slices.Clone(m), slices.Clone(m)
				rowsUpdateGo(wantM, a, u, b, v, n, stride)
				rowsUpdate(got, a, u, b, v, n, stride)
				for j := range got {
					if math.Float64bits(got[j]) != math.Float64bits(wantM[j]) {
						t.Fatalf("rowsUpdate rows %d n %d stride %d: m[%d] = %v, plain loop %v", rows, n, stride, j, got[j], wantM[j])
					}
				}
				// Columns past n, in the stride's padding, are untouched.
				for r := range rows {
					for j := n; j < stride; j++ {
						if got[r*stride+j] != m[r*stride+j] {
							t.Fatalf("rowsUpdate wrote the padding at row %d column %d", r, j)
						}
					}
				}
			}
		}
	}
	t.Logf("AVX kernels in use: %v", useAVX)
}

func BenchmarkRowsAxpy(b *testing.B) {
	m, a, out := make([]float64, 10*8), make([]float64, 10), make([]float64, 8)
	for i := range m {
		m[i] = float64(i) * 1e-3
	}
	for range b.N {
		rowsAxpy(out, a, m, 8, 8)
	}
}

// TestVectorKernelsScoreLikeThePlainLoops trains and scores the first
// 2,000 Mirai packets twice, with the vector kernels and with the plain Go
// loops, and requires every score to be the same bit for bit: the kernels
// change the speed of the detector and nothing else.
func TestVectorKernelsScoreLikeThePlainLoops(t *testing.T) {
	run := func(vector bool) []float64 {
		defer setVectorKernels(vector)()
		r, err := OpenFile(datasetPath(t, "mirai2000.pcap"))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		res, err := ScoreCapture(r, ScoreOptions{KitNET: KitNETConfig{FMGrace: 300, ADGrace: 900}, Sequential: true})
		if err != nil {
			t.Fatal(err)
		}
		return res.Scores
	}
	plain, vector := run(false), run(true)
	if len(plain) != 2000 || len(vector) != len(plain) {
		t.Fatalf("scored %d and %d packets, want 2000", len(plain), len(vector))
	}
	nonzero := 0
	for i := range plain {
		if math.Float64bits(plain[i]) != math.Float64bits(vector[i]) {
			t.Fatalf("packet %d: plain loops score %v, vector kernels %v", i+1, plain[i], vector[i])
		}
		if plain[i] != 0 {
			nonzero++
		}
	}
	if nonzero < 700 {
		t.Fatalf("only %d packets scored after training", nonzero)
	}
	t.Logf("%d scores equal (vector kernels available: %v)", nonzero, useAVX && useAVX2)
}

// TestCrossUpdateMatchesThePlainLoop checks the correlation's upper-triangle
// kernel against the plain loop, bit for bit, for sizes around the vector
// width, and that it leaves the lower triangle alone.
func TestCrossUpdateMatchesThePlainLoop(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 11))
	for n := 1; n <= 13; n++ {
		for _, size := range []int{n, 100} {
			if size != n && n != 13 {
				continue
			}
			cross, r := make([]float64, size*size), make([]float64, size)
			for i := range cross {
				cross[i] = (rng.Float64() - 0.5) * 1e3
			}
			for i := range r {
				r[i] = (rng.Float64() - 0.5) * math.Pow(10, float64(rng.IntN(8)-4))
			}
			want := slices.Clone(cross)
			for i := range size {
				for j := i; j < size; j++ {
					want[i*size+j] += float64(r[i] * r[j])
				}
			}
			crossUpdate(cross, r, size)
			for i := range cross {
				if math.Float64bits(cross[i]) != math.Float64bits(want[i]) {
					t.Fatalf("n %d: cross[%d] = %v, plain loop %v", size, i, cross[i], want[i])
				}
			}
		}
	}
}

// TestLaneKernelsMatchThePlainLoopsBitForBit checks lanesAxpy and
// lanesUpdate (the packs' products and gradient step) against their plain
// loops for every shape a pack can take (1 to 10 vectors wide, 1 to 12
// rows), bit for bit, with the bias in place and apart.
func TestLaneKernelsMatchThePlainLoopsBitForBit(t *testing.T) {
	// Both vector widths where the processor has AVX-512: eight, four,
	// two and one columns at a time, then four, two and one.
	for _, wide := range []bool{true, false} {
		restore := setAVX512(wide)
		t.Run(fmt.Sprintf("avx512=%v", wide), testLaneKernels)
		restore()
	}
}

func testLaneKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	fill := func(n int) []float64 {
		s := make([]float64, n)
		for i := range s {
			s[i] = (rng.Float64() - 0.5) * math.Pow(10, float64(rng.IntN(10)-5))
		}
		return s
	}
	for rows := 1; rows <= 12; rows++ {
		for n := 1; n <= 10; n++ {
			a, m, b, u, v := fill(4*rows), fill(4*rows*n), fill(4*n), fill(4*n), fill(4*n)
			want, got := make([]float64, 4*n), make([]float64, 4*n)
			lanesAxpyGo(want, b, a, m, rows, n)
			lanesAxpy(got, b, a, m, rows, n)
			for c := range got {
				if math.Float64bits(got[c]) != math.Float64bits(want[c]) {
					t.Fatalf("lanesAxpy rows %d n %d: out[%d] = %v, plain loop %v", rows, n, c, got[c], want[c])
				}
			}
			inPlace := slices.Clone(b)
			lanesAxpy(inPlace, inPlace, a, m, rows, n)
			if !slices.Equal(inPlace, want) {
				t.Fatalf("lanesAxpy rows %d n %d: the bias in place of the output gives another result", rows, n)
			}
			// lanesDot reads m as n rows of rows: with m transposed it
			// is lanesAxpy, to the bit.
			mt := make([]float64, len(m))
			for r := range rows {
				for c := range n {
					copy(mt[4*(c*rows+r):4*(c*rows+r)+4], m[4*(r*n+c):4*(r*n+c)+4])
				}
			}
			dotGo, dot := make([]float64, 4*n), make([]float64, 4*n)
			lanesDotGo(dotGo, b, a, mt, rows, n)
			lanesDot(dot, b, a, mt, rows, n)
			for c := range dot {
				if math.Float64bits(dot[c]) != math.Float64bits(want[c]) || math.Float64bits(dotGo[c]) != math.Float64bits(want[c]) {
					t.Fatalf("lanesDot rows %d n %d: out[%d] = %v, plain loop %v, lanesAxpy %v", rows, n, c, dot[c], dotGo[c], want[c])
				}
			}
			bb := fill(4 * rows)
			wantM, gotM := slices.Clone(m), slices.Clone(m)
			lanesUpdateGo(wantM, a, u, bb, v, rows, n)
			lanesUpdate(gotM, a, u, bb, v, rows, n)
			for c := range gotM {
				if math.Float64bits(gotM[c]) != math.Float64bits(wantM[c]) {
					t.Fatalf("lanesUpdate rows %d n %d: m[%d] = %v, plain loop %v", rows, n, c, gotM[c], wantM[c])
				}
			}
		}
	}
}
