package detect

import (
	"sync"
	"time"

	"golang.org/x/sys/cpu"
)

// useAVX is set where the processor and the operating system support AVX;
// the kernels in aekernel_amd64.s need nothing newer.
var useAVX = cpu.X86.HasAVX

// useAVX2 is set where the vector sigmoid (sigmoidsAVX2: integer lanes
// and lane extraction) can run.
var useAVX2 = cpu.X86.HasAVX2

//go:noescape
func rowsAxpyAVX(out, a, m *float64, rows, n, stride int)

//go:noescape
func rowsUpdateAVX(m, a, u, b, v *float64, rows, n, stride int)

//go:noescape
func sigmoidsAVX2(v *float64, n int, c *[12]float64, table *float64, gather bool) (done int)

// useAVX512 is set where the sigmoid can run eight at a time
// (sigmoidsAVX512: AVX-512 Foundation, with the operating system saving
// its registers).
var useAVX512 = cpu.X86.HasAVX512F

//go:noescape
func sigmoidsAVX512(v *float64, n int, c *[12]float64, table *float64, gather bool) (done int)

// sigmoidGather is set where the vector sigmoids read exp2Table with
// VGATHERQPD rather than with scalar loads. Both give the same bits; which
// is faster depends on the processor: the gather took twice as long for the
// whole kernel on a Skylake-class Xeon, and a third less on a Sapphire
// Rapids-class one. pickSigmoidLoads sets it by timing both.
var sigmoidGather bool

var pickSigmoidOnce sync.Once

// pickSigmoidLoads times the vector sigmoid with either way of reading its
// table, once per process, and keeps the faster (sigmoidGather). It takes
// about a tenth of a millisecond; NewKitNET and a loaded model call it.
func pickSigmoidLoads() {
	pickSigmoidOnce.Do(func() {
		if !useAVX2 {
			return
		}
		v := make([]float64, 1024)
		fastest := func(gather bool) time.Duration {
			best := time.Duration(1 << 62)
			for range 8 {
				for i := range v {
					v[i] = float64(i)/64 - 8 // the arguments of BenchmarkSigmoid
				}
				start := time.Now()
				sigmoidsWith(v, gather)
				best = min(best, time.Since(start))
			}
			return best
		}
		var gather, scalar time.Duration = 1 << 62, 1 << 62
		for range 3 { // alternating, so that a slow moment of the host does not decide
			gather = min(gather, fastest(true))
			scalar = min(scalar, fastest(false))
		}
		sigmoidGather = gather < scalar
	})
}

// SigmoidLoads names how the vector sigmoid reads its table on this
// processor ("gather", "scalar" or "none" without AVX2), once NewKitNET or
// a loaded model has chosen.
func SigmoidLoads() string {
	switch {
	case !useAVX2:
		return "none"
	case sigmoidGather:
		return "gather"
	}
	return "scalar"
}

// setSigmoidGather sets how the vector sigmoid reads its table and returns
// a function that restores the previous setting; tests compare both.
func setSigmoidGather(on bool) (restore func()) {
	was := sigmoidGather
	sigmoidGather = on
	return func() { sigmoidGather = was }
}

// setVectorKernels turns the AVX kernels on or off and returns a function
// that restores the previous setting; tests compare both paths.
func setVectorKernels(on bool) (restore func()) {
	avx, avx2, avx512 := useAVX, useAVX2, useAVX512
	useAVX, useAVX2, useAVX512 = on && cpu.X86.HasAVX, on && cpu.X86.HasAVX2, on && cpu.X86.HasAVX512F
	return func() { useAVX, useAVX2, useAVX512 = avx, avx2, avx512 }
}

// setAVX512 turns the AVX-512 kernels on (where the processor has them)
// or off, leaving the AVX2 ones, and returns a function that restores the
// previous setting; tests compare both widths.
func setAVX512(on bool) (restore func()) {
	was := useAVX512
	useAVX512 = on && cpu.X86.HasAVX512F
	return func() { useAVX512 = was }
}

//go:noescape
func pow2AVX2(x *float64, n int, c *[11]float64)

//go:noescape
func lanesAxpyAVX(out, b, a, m *float64, rows, n int)

//go:noescape
func lanesAxpyAVX512(out, b, a, m *float64, rows, n int)

//go:noescape
func lanesUpdateAVX512(m, a, u, b, v *float64, rows, n int)

//go:noescape
func lanesDotAVX(out, b, a, m *float64, rows, n int)

//go:noescape
func lanesUpdateAVX(m, a, u, b, v *float64, rows, n int)

//go:noescape
func lanesScaleAVX(x, in *float64, idx *int64, lo, sc *float64, mask *uint64, n int)

//go:noescape
func lanesWidenAVX(x, in *float64, idx *int64, lo, hi, sc *float64, mask *uint64, n int) (changed bool)

//go:noescape
func lanesAndAVX(v *float64, mask *uint64, n int)

//go:noescape
func lanesRMSEAVX(x, z *float64, n int, nv, out *[4]float64)

//go:noescape
func lanesStepAVX(d, lx, le, x, z, lr *float64, n int)

//go:noescape
func lanesDerivAVX(lh, y *float64, n int)

//go:noescape
func lanesBiasAVX(vb, le, hb, lh, lr *float64, nv, nh int)

//go:noescape
func crossUpdateAVX(cross, r *float64, n int)

//go:noescape
func crossUpdate4AVX(cross, r *float64, n int)

//go:noescape
func prefetchLines(addrs *uintptr, n int)

// prefetch hints the processor to fetch the cache lines at addrs (0s
// included: a prefetch never faults).
func prefetch(addrs []uintptr) {
	if len(addrs) > 0 {
		prefetchLines(&addrs[0], len(addrs))
	}
}
