//go:build !amd64

package detect

const useAVX, useAVX2 = false, false

func rowsAxpyAVX(out, a, m *float64, rows, n, stride int)       { panic("no AVX") }
func rowsUpdateAVX(m, a, u, b, v *float64, rows, n, stride int) { panic("no AVX") }

func sigmoidsAVX2(v *float64, n int, c *[12]float64, table *float64) int { panic("no AVX2") }

func setVectorKernels(bool) (restore func()) { return func() {} }

func pow2AVX2(x *float64, n int, c *[11]float64) { panic("no AVX2") }
