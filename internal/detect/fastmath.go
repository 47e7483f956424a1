package detect

import "math"

// The logistic function is most of KitNET's arithmetic: every packet
// passes some two hundred hidden and output units. math.Exp is exact to the
// last bit and costs accordingly; exp below is exact to a few units in the
// last place (relative error under 1e-15, TestExpMatchesMath), which no
// score can tell apart, at a fraction of the cost: a table of 2^(j/256) and
// a cubic on the remainder, with no branches for ordinary inputs.

// exp2Table holds 2^(j/256) for j in [0, 256).
var exp2Table = func() (t [256]float64) {
	for j := range t {
		t[j] = math.Exp2(float64(j) / 256)
	}
	return t
}()

// Cody and Waite's split of ln 2 / 256: the high part has trailing zero
// bits, so n·ln2Hi is exact for the n that occur here.
const (
	ln2By256Hi = 0x1.62e42fp-9
	ln2By256Lo = 0x1.df473de6af279p-34
)

// exp returns e^x. Arguments whose result would be subnormal or
// overflow, and NaN, go to math.Exp.
func exp(x float64) float64 {
	if !(x >= -708 && x <= 708) {
		return math.Exp(x)
	}
	// n = round(x·256/ln 2) by the 1.5·2^52 trick: adding it leaves the
	// rounded integer in the low bits of the mantissa.
	const shift = 0x1.8p52
	n := float64(x*(256/math.Ln2)) + shift
	bits := math.Float64bits(n)
	n -= shift
	r := x - float64(n*ln2By256Hi) - float64(n*ln2By256Lo) // |r| ≤ ln2/512
	// e^r to 4 terms (the next, r⁵/120, is below 4e-17), in Estrin's
	// order, which keeps the chain of dependent operations short. The
	// conversions forbid fusing a product into an addition (as Go may
	// where FMA exists), so that every build rounds alike.
	r2 := r * r
	p := (1 + r) + float64(r2*((0.5+float64(r*(1.0/6)))+float64(r2*(1.0/24))))
	j := bits & 255
	// The low 51 bits of the mantissa hold n in two's complement;
	// k = floor(n/256), so that n = 256k + j.
	k := int64(bits<<13) >> 21
	return math.Float64frombits(math.Float64bits(exp2Table[j]*p) + uint64(k)<<52)
}

// sigmoid is the logistic function 1/(1+e^-v).
func sigmoid(v float64) float64 { return 1 / (1 + exp(-v)) }

// sigmoids applies the logistic function to every element of v in place.
// Where AVX-512 or AVX2 exists, eight or four at a time (sigmoidsVector),
// with the operations of sigmoidsGo in its order, so bit for bit the same;
// from the first block holding an argument outside [-708, 708] or NaN, and
// for the last few, sigmoidsGo does the rest (it hands those arguments to
// math.Exp).
func sigmoids(v []float64) {
	sigmoidsGo(v[sigmoidsVector(v):])
}

// sigmoidsVector applies the vector code to v's first values, eights then
// fours, as far as it can go, and returns how many it did.
func sigmoidsVector(v []float64) int {
	return sigmoidsWith(v, sigmoidGather)
}

// sigmoidsWith is sigmoidsVector reading the table with VGATHERQPD or with
// scalar loads (sigmoidGather).
func sigmoidsWith(v []float64, gather bool) int {
	done := 0
	if n := len(v) &^ 7; useAVX512 && n > 0 {
		if done = sigmoidsAVX512(&v[0], n, &sigmoidConsts, &exp2Table[0], gather); done < n {
			return done
		}
	}
	if n := (len(v) - done) &^ 3; useAVX2 && n > 0 {
		done += sigmoidsAVX2(&v[done], n, &sigmoidConsts, &exp2Table[0], gather)
	}
	return done
}

// sigmoidsPadded is sigmoids on v[:n], where v's length is a multiple of 4
// and v[n:] is padding: the vector code runs over the padding too, which
// is then cleared again.
func sigmoidsPadded(v []float64, n int) {
	if done := sigmoidsVector(v); done < n {
		sigmoidsGo(v[done:n])
	}
	clear(v[n:])
}

// sigmoidConsts are sigmoidsAVX2's and sigmoidsAVX512's constants (see
// aekernel_amd64.s).
var sigmoidConsts = [12]float64{
	math.Float64frombits(1 << 63), 256 / math.Ln2, 0x1.8p52, ln2By256Hi, ln2By256Lo,
	1, 0.5, 1.0 / 6, 1.0 / 24, math.Float64frombits(255), -708, 708,
}

// sigmoidsGo is sigmoids one element at a time: exp written out in the
// loop, so that the elements' independent chains of arithmetic overlap
// instead of waiting on a call each. The conversions keep every product
// rounded on its own, as the vector code does, where Go would fuse it.
func sigmoidsGo(v []float64) {
	for i, s := range v {
		x := -s
		if !(x >= -708 && x <= 708) {
			v[i] = 1 / (1 + math.Exp(x))
			continue
		}
		const shift = 0x1.8p52
		n := float64(x*(256/math.Ln2)) + shift
		bits := math.Float64bits(n)
		n -= shift
		r := x - float64(n*ln2By256Hi) - float64(n*ln2By256Lo)
		r2 := r * r
		p := (1 + r) + float64(r2*((0.5+float64(r*(1.0/6)))+float64(r2*(1.0/24))))
		k := int64(bits<<13) >> 21
		e := math.Float64frombits(math.Float64bits(exp2Table[bits&255]*p) + uint64(k)<<52)
		v[i] = 1 / (1 + e)
	}
}

// pow2 returns 2^x bit for bit as math.Exp2's portable algorithm does (the
// one amd64 runs): the same reduction and polynomial, written out here
// with the final scaling done on the exponent bits whenever the result is
// a normal number, instead of through two calls and Ldexp's general case.
// AfterImage decays some forty statistics a packet by 2^(-λΔt), and its
// features must stay equal to Kitsune's to the last place that matters.
func pow2(x float64) float64 {
	if !(x >= -1020 && x <= 1020) {
		return math.Exp2(x)
	}
	const (
		ln2Hi = 6.93147180369123816490e-01
		ln2Lo = 1.90821492927058770002e-10
		p1    = 1.66666666666666657415e-01
		p2    = -2.77777777770155933842e-03
		p3    = 6.61375632143793436117e-05
		p4    = -1.65339022054652515390e-06
		p5    = 4.13813679705723846039e-08
	)
	var k int
	switch {
	case x > 0:
		k = int(x + 0.5)
	case x < 0:
		k = int(x - 0.5)
	}
	t := x - float64(k)
	hi := t * ln2Hi
	lo := -t * ln2Lo
	r := hi - lo
	t = r * r
	c := r - t*(p1+t*(p2+t*(p3+t*(p4+t*p5))))
	y := 1 - ((lo - (r*c)/(2-c)) - hi)
	return math.Float64frombits(math.Float64bits(y) + uint64(int64(k))<<52)
}

// pow2s sets each x[i] to pow2(x[i]): AfterImage's decay factors of the
// five windows of a stream or several (len(x) is a multiple of 4; unused
// values are 0). Where AVX2 exists and every value is in [-1020, 0], as
// decay factors are, four at a time (pow2AVX2) with pow2's operations in
// its order, bit for bit the same.
func pow2s(x []float64) {
	if useAVX2 && len(x) >= 4 {
		inRange := true
		for _, v := range x {
			inRange = inRange && v >= -1020 && v <= 0
		}
		if inRange {
			pow2AVX2(&x[0], len(x)&^3, &pow2Consts)
			for i := len(x) &^ 3; i < len(x); i++ {
				x[i] = pow2(x[i])
			}
			return
		}
	}
	for i, v := range x {
		x[i] = pow2(v)
	}
}

// pow2Consts are pow2AVX2's constants (see aekernel_amd64.s): pow2's.
var pow2Consts = [11]float64{
	0.5, 6.93147180369123816490e-01, 1.90821492927058770002e-10,
	1.66666666666666657415e-01, -2.77777777770155933842e-03, 6.61375632143793436117e-05,
	-1.65339022054652515390e-06, 4.13813679705723846039e-08,
	1, 2, math.Float64frombits(1 << 63),
}
