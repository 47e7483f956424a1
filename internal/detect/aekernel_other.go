//go:build !amd64

package detect

const useAVX, useAVX2, useAVX512 = false, false, false

func rowsAxpyAVX(out, a, m *float64, rows, n, stride int)       { panic("no AVX") }
func rowsUpdateAVX(m, a, u, b, v *float64, rows, n, stride int) { panic("no AVX") }

func sigmoidsAVX2(v *float64, n int, c *[12]float64, table *float64, gather bool) int {
	panic("no AVX2")
}
func sigmoidsAVX512(v *float64, n int, c *[12]float64, table *float64, gather bool) int {
	panic("no AVX-512")
}

const sigmoidGather = false

func pickSigmoidLoads() {}

// SigmoidLoads is "none": there is no vector sigmoid here.
func SigmoidLoads() string { return "none" }

func setSigmoidGather(bool) (restore func()) { return func() {} }

func setVectorKernels(bool) (restore func()) { return func() {} }

func setAVX512(bool) (restore func()) { return func() {} }

func pow2AVX2(x *float64, n int, c *[11]float64) { panic("no AVX2") }

func lanesAxpyAVX(out, b, a, m *float64, rows, n int)       { panic("no AVX") }
func lanesDotAVX(out, b, a, m *float64, rows, n int)        { panic("no AVX") }
func lanesAxpyAVX512(out, b, a, m *float64, rows, n int)    { panic("no AVX-512") }
func lanesUpdateAVX512(m, a, u, b, v *float64, rows, n int) { panic("no AVX-512") }
func lanesUpdateAVX(m, a, u, b, v *float64, rows, n int)    { panic("no AVX") }

func lanesScaleAVX(x, in *float64, idx *int64, lo, sc *float64, mask *uint64, n int) {
	panic("no AVX")
}
func lanesWidenAVX(x, in *float64, idx *int64, lo, hi, sc *float64, mask *uint64, n int) bool {
	panic("no AVX")
}
func lanesAndAVX(v *float64, mask *uint64, n int)            { panic("no AVX") }
func lanesRMSEAVX(x, z *float64, n int, nv, out *[4]float64) { panic("no AVX") }
func lanesStepAVX(d, lx, le, x, z, lr *float64, n int)       { panic("no AVX") }
func lanesDerivAVX(lh, y *float64, n int)                    { panic("no AVX") }
func lanesBiasAVX(vb, le, hb, lh, lr *float64, nv, nh int)   { panic("no AVX") }

func crossUpdateAVX(cross, r *float64, n int) { panic("no AVX") }

func crossUpdate4AVX(cross, r *float64, n int) { panic("no AVX") }

// prefetch is only a hint; without the instruction at hand it does nothing.
func prefetch([]uintptr) {}
