package detect

import (
	"math"
	"math/rand/v2"
	"slices"
)

// KitNETConfig configures a KitNET detector. Zero fields take Kitsune's
// defaults.
type KitNETConfig struct {
	// MaxAutoencoderSize is the most features one ensemble autoencoder takes
	// (default 10).
	MaxAutoencoderSize int
	// FMGrace is the number of packets whose features are used to learn the
	// feature map (default 5,000).
	FMGrace int
	// ADGrace is the number of packets that then train the autoencoders
	// (default 50,000).
	ADGrace int
	// LearningRate is the autoencoders' stochastic gradient step (default 0.1).
	LearningRate float64
	// HiddenRatio is the size of a hidden layer relative to its input
	// (default 0.75).
	HiddenRatio float64
	// Seed seeds the initial weights (default 1234, as Kitsune).
	Seed uint64
	// CalibrationFraction is the last part of the training grace period
	// in which each packet is also scored before it trains the model; those
	// scores (Calibration) set alert thresholds. Scoring does not change
	// the model. Default 0.5.
	CalibrationFraction float64
}

func (c KitNETConfig) withDefaults() KitNETConfig {
	if c.MaxAutoencoderSize <= 0 {
		c.MaxAutoencoderSize = 10
	}
	if c.FMGrace <= 0 {
		c.FMGrace = 5000
	}
	if c.ADGrace <= 0 {
		c.ADGrace = 50000
	}
	if c.LearningRate <= 0 {
		c.LearningRate = 0.1
	}
	if c.HiddenRatio <= 0 {
		c.HiddenRatio = 0.75
	}
	if c.Seed == 0 {
		c.Seed = 1234
	}
	if c.CalibrationFraction <= 0 || c.CalibrationFraction > 1 {
		c.CalibrationFraction = 0.5
	}
	return c
}

// KitNET is Kitsune's anomaly detector: during the feature-mapping grace
// period it learns the features' correlations and clusters them into groups
// of at most MaxAutoencoderSize; during the training grace period it trains
// one small autoencoder per group and an output autoencoder on their
// reconstruction errors; from then on it scores each packet with the output
// autoencoder's RMSE. It is not safe for concurrent use.
type KitNET struct {
	cfg      KitNETConfig
	n        int // feature vector length
	trained  int
	corr     *correlation
	featMap  [][]int
	ensemble []*autoencoder
	output   *autoencoder
	hidden   []float64 // ensemble RMSEs of the current packet
	scratch  []float64
	calib    []float64 // scores of the calibration part of the training period
	calibAE  []float64 // per-autoencoder sums of the calibration RMSEs
	learnt   int       // packets learnt after training
	// ProcessBatch's per-vector ensemble RMSEs (scored before a training
	// step, and from it) and its goroutines' share of the ensemble.
	batchRMSE, batchTrain []float64
	groups                [][]int
	// The ensemble's hidden and output units, every autoencoder's y and z
	// one after another (see shareUnits), and whether each needs a
	// forward pass in trainAll.
	allY, allZ []float64
	needs      []bool
	stepRMSE   []float64 // trainStep's
	// The ensemble in packs of four (pack), their hidden and output units
	// end to end, which need a forward pass, and whether they hold what
	// the autoencoders do (cleared when the autoencoders learn on their
	// own).
	packs        []*pack
	packY, packZ []float64
	// packYBits and packZBits are the packs' hbits and vbits end to end.
	packYBits, packZBits []uint64
	packNeeds            []bool
	packsFresh           bool
}

// Calibration returns the scores of the packets of the last
// CalibrationFraction of the training grace period, in order.
func (k *KitNET) Calibration() []float64 { return k.calib }

// EnsembleRMSE returns each ensemble autoencoder's RMSE for the last
// scored packet, one per FeatureMap group. The slice is reused.
func (k *KitNET) EnsembleRMSE() []float64 { return k.hidden }

// EnsembleBaseline returns each ensemble autoencoder's mean RMSE over the
// calibration packets, what its RMSE is on ordinary traffic.
func (k *KitNET) EnsembleBaseline() []float64 {
	out := make([]float64, len(k.calibAE))
	for i, s := range k.calibAE {
		out[i] = s / max(float64(len(k.calib)), 1)
	}
	return out
}

// NewKitNET returns a detector for feature vectors of length n.
func NewKitNET(n int, cfg KitNETConfig) *KitNET {
	pickSigmoidLoads()
	return &KitNET{cfg: cfg.withDefaults(), n: n, corr: newCorrelation(n)}
}

// Training reports whether the detector is still in a grace period; its
// scores are 0 then.
func (k *KitNET) Training() bool { return k.trained <= k.cfg.FMGrace+k.cfg.ADGrace }

// FeatureMap returns the feature groups, one per ensemble autoencoder, once
// the feature-mapping grace period is over (nil before).
func (k *KitNET) FeatureMap() [][]int { return k.featMap }

// Process trains on x during the grace periods (returning 0) and scores it
// afterwards: the higher the RMSE, the more anomalous. As in Kitsune, the
// feature map is learnt from the first FMGrace+1 vectors and the
// autoencoders from the next ADGrace.
func (k *KitNET) Process(x []float64) float64 {
	if !k.Training() {
		return k.score(x)
	}
	if k.featMap == nil {
		k.mapFeatures(x, 1)
		return 0
	}
	scored := false
	if k.trained >= k.calibStart() {
		if k.calibAE == nil {
			k.calibAE = make([]float64, len(k.ensemble))
		}
		k.calib = append(k.calib, k.score(x))
		for i, h := range k.hidden {
			k.calibAE[i] += h
		}
		scored = true
	}
	k.trainStep(x, scored, false)
	k.trained++
	return 0
}

// calibStart is the training index of the first packet whose score goes
// into the calibration: the last CalibrationFraction of the training
// grace period.
func (k *KitNET) calibStart() int {
	return k.cfg.FMGrace + 1 + int(float64(k.cfg.ADGrace)*(1-k.cfg.CalibrationFraction))
}

// mapFeatures learns from m vectors of the feature-mapping grace period,
// laid one after another in x (no more than the period has left), and
// clusters the features once the period is over.
func (k *KitNET) mapFeatures(x []float64, m int) {
	k.corr.update(x, m)
	k.trained += m
	if k.trained == k.cfg.FMGrace+1 {
		k.featMap = k.corr.cluster(k.cfg.MaxAutoencoderSize)
		k.build()
	}
}

// trainStep takes one gradient step of every autoencoder on x. When x was
// just scored, the forward passes are reused where the scaling did not
// change (the output autoencoder's only if none of the ensemble's RMSEs
// did); frozen keeps the scaling as it is.
func (k *KitNET) trainStep(x []float64, scored, frozen bool) {
	if len(k.stepRMSE) != len(k.ensemble) {
		k.stepRMSE = make([]float64, len(k.ensemble))
	}
	k.trainAll(x, scored, frozen, k.stepRMSE)
	same := scored && slices.Equal(k.stepRMSE, k.hidden)
	copy(k.hidden, k.stepRMSE)
	k.output.train(k.hidden, same, frozen)
}

// Learn trains the scoring model on x, which Process has just scored:
// continued learning on traffic judged benign, so that the model follows
// the slow drift of a network (firmware updates, new cloud addresses).
// It is a no-op while training. The forward passes of the scoring are
// reused.
func (k *KitNET) Learn(x []float64) {
	if k.Training() {
		return
	}
	k.trainStep(x, true, true)
	k.learnt++
}

// Learnt is the number of packets learnt after training (Learn).
func (k *KitNET) Learnt() int { return k.learnt }

func (k *KitNET) build() {
	rng := rand.New(rand.NewPCG(k.cfg.Seed, k.cfg.Seed))
	width := 0
	for _, g := range k.featMap {
		k.ensemble = append(k.ensemble, newAutoencoder(len(g), k.cfg.HiddenRatio, k.cfg.LearningRate, rng))
		width = max(width, len(g))
	}
	k.output = newAutoencoder(len(k.featMap), k.cfg.HiddenRatio, k.cfg.LearningRate, rng)
	k.hidden = make([]float64, len(k.featMap))
	k.scratch = make([]float64, width)
	k.shareUnits()
}

// shareUnits lays the ensemble's hidden units (y) end to end in one slice
// and its output units (z) in another, each autoencoder's padded part
// where its own slice was, so that one sigmoids call covers a whole layer
// of the ensemble (scoreAll, trainAll): a long run of independent values
// the processor overlaps, instead of fifteen short dependent ones.
func (k *KitNET) shareUnits() {
	ny, nz := 0, 0
	for _, ae := range k.ensemble {
		ny, nz = ny+ae.nhp, nz+ae.nvp
	}
	k.allY, k.allZ = make([]float64, ny), make([]float64, nz)
	k.needs = make([]bool, len(k.ensemble))
	ny, nz = 0, 0
	for _, ae := range k.ensemble {
		ae.y, ae.z = k.allY[ny:ny+ae.nhp:ny+ae.nhp], k.allZ[nz:nz+ae.nvp:nz+ae.nvp]
		ny, nz = ny+ae.nhp, nz+ae.nvp
	}
}

// finishForward completes the forward passes of the ensemble autoencoders
// that encoded their input (need[i] set, or all when need is nil), a layer
// of all of them at a time. Each value is computed exactly as forward
// computes it.
func (k *KitNET) finishForward(need []bool) {
	all := need == nil || !slices.Contains(need, false)
	k.activate(k.allY, need, all, func(ae *autoencoder) ([]float64, int) { return ae.y, ae.nh })
	for i, ae := range k.ensemble {
		if need == nil || need[i] {
			ae.decode()
		}
	}
	k.activate(k.allZ, need, all, func(ae *autoencoder) ([]float64, int) { return ae.z, ae.nv })
}

// activate applies the sigmoid to the units of the autoencoders that
// need it: in one call over buf when all do, clearing the padding after.
func (k *KitNET) activate(buf []float64, need []bool, all bool, units func(*autoencoder) ([]float64, int)) {
	if all {
		sigmoids(buf)
	}
	for i, ae := range k.ensemble {
		v, n := units(ae)
		switch {
		case all:
			clear(v[n:])
		case need[i]:
			sigmoidsPadded(v, n)
		}
	}
}

// scoreAll is rmse of every ensemble autoencoder on row, written to out.
func (k *KitNET) scoreAll(row, out []float64) {
	for i, ae := range k.ensemble {
		ae.encode(gatherInto(k.scratch, row, k.featMap[i]))
	}
	k.finishForward(nil)
	for i, ae := range k.ensemble {
		ae.forwarded = true
		out[i] = ae.errorRMSE()
	}
}

// trainAll is train of every ensemble autoencoder on row, the RMSEs
// written to out: the forward passes that cannot be reused run together
// (finishForward), then each autoencoder's gradient step.
func (k *KitNET) trainAll(row []float64, scored, frozen bool, out []float64) {
	k.packsFresh = false // the packs no longer hold these weights
	any := false
	for i, ae := range k.ensemble {
		g := gatherInto(k.scratch, row, k.featMap[i])
		if k.needs[i] = ae.prepareStep(g, scored, frozen); k.needs[i] {
			ae.encode(g)
			any = true
		}
	}
	if any {
		k.finishForward(k.needs)
	}
	for i, ae := range k.ensemble {
		out[i] = ae.step()
	}
}

func (k *KitNET) score(x []float64) float64 {
	k.scoreAll(x, k.hidden)
	return k.output.rmse(k.hidden)
}

// correlation accumulates the features' incremental correlation matrix, as
// Kitsune's corClust does (its running mean makes it an approximation).
type correlation struct {
	n      int
	count  float64
	sum    []float64
	resSq  []float64
	cross  []float64 // n×n, row-major; only the upper triangle is used
	resBuf []float64
}

func newCorrelation(n int) *correlation {
	return &correlation{n: n, sum: make([]float64, n), resSq: make([]float64, n), cross: make([]float64, n*n), resBuf: make([]float64, 4*n)}
}

// update adds m vectors, laid one after another in x, to the running
// sums, each residual taken against the mean including its own vector.
func (c *correlation) update(x []float64, m int) {
	for t0 := 0; t0 < m; t0 += 4 {
		b := min(4, m-t0)
		for t := range b {
			c.count++
			r := c.resBuf[t*c.n : (t+1)*c.n]
			for i, v := range x[(t0+t)*c.n : (t0+t+1)*c.n] {
				c.sum[i] += v
				r[i] = v - c.sum[i]/c.count
				c.resSq[i] += r[i] * r[i]
			}
		}
		// The matrix is symmetric: only the upper triangle (j ≥ i) is
		// kept. The cross products of four vectors go in one pass, each
		// sum in the vectors' order.
		if b == 4 && useAVX {
			_ = c.cross[c.n*c.n-1]
			crossUpdate4AVX(&c.cross[0], &c.resBuf[0], c.n)
			continue
		}
		for t := range b {
			crossUpdate(c.cross, c.resBuf[t*c.n:(t+1)*c.n], c.n)
		}
	}
}

// crossUpdate adds r[i]·r[j] to cross[i·n+j] for i ≤ j < n: in one vector
// kernel where AVX exists, each row four at a time and its last few one by
// one, the same products and sums as the loop.
func crossUpdate(cross, r []float64, n int) {
	if n == 0 {
		return
	}
	_, _ = cross[n*n-1], r[n-1]
	if useAVX {
		crossUpdateAVX(&cross[0], &r[0], n)
		return
	}
	for i, ri := range r[:n] {
		row := cross[i*n+i : (i+1)*n]
		for j, rj := range r[i:n] {
			row[j] += float64(ri * rj)
		}
	}
}

// distance is Kitsune's correlation distance 1 - ρ, clamped at 0; a
// constant feature is at distance 1 from everything.
func (c *correlation) distance(i, j int) float64 {
	den := math.Sqrt(c.resSq[i]) * math.Sqrt(c.resSq[j])
	if den == 0 {
		den = 1e-100
	}
	if i > j {
		i, j = j, i
	}
	return max(0, 1-c.cross[i*c.n+j]/den)
}

// cluster groups the features by single-linkage hierarchical clustering on
// the correlation distance, then splits the dendrogram from the top until
// every group has at most maxSize features (Kitsune's __breakClust__).
func (c *correlation) cluster(maxSize int) [][]int {
	type node struct {
		left, right int // children, -1 for a leaf
		leaf        int
		count       int
	}
	nodes := make([]node, 0, 2*c.n)
	for i := range c.n {
		nodes = append(nodes, node{left: -1, right: -1, leaf: i, count: 1})
	}
	// Single linkage: merge the closest pair of clusters, the distance of
	// two clusters being their closest members'. n is 100, so the O(n³)
	// form is instant.
	dist := make([]float64, c.n*c.n) // between clusters, by slot
	for i := range c.n {
		for j := range c.n {
			dist[i*c.n+j] = c.distance(i, j)
		}
	}
	slots := make([]int, c.n) // slot -> node
	for i := range slots {
		slots[i] = i
	}
	alive := make([]bool, c.n)
	for i := range alive {
		alive[i] = true
	}
	for range c.n - 1 {
		bi, bj, bd := -1, -1, math.Inf(1)
		for i := range c.n {
			if !alive[i] {
				continue
			}
			for j := i + 1; j < c.n; j++ {
				if alive[j] && dist[i*c.n+j] < bd {
					bi, bj, bd = i, j, dist[i*c.n+j]
				}
			}
		}
		if bi < 0 {
			break
		}
		nodes = append(nodes, node{left: slots[bi], right: slots[bj], count: nodes[slots[bi]].count + nodes[slots[bj]].count})
		slots[bi] = len(nodes) - 1
		alive[bj] = false
		for k := range c.n {
			d := min(dist[bi*c.n+k], dist[bj*c.n+k])
			dist[bi*c.n+k], dist[k*c.n+bi] = d, d
		}
	}
	var groups [][]int
	var leaves func(int, *[]int)
	leaves = func(i int, out *[]int) {
		if nodes[i].left < 0 {
			*out = append(*out, nodes[i].leaf)
			return
		}
		leaves(nodes[i].left, out)
		leaves(nodes[i].right, out)
	}
	var split func(int)
	split = func(i int) {
		if nodes[i].count <= maxSize || nodes[i].left < 0 {
			var g []int
			leaves(i, &g)
			groups = append(groups, g)
			return
		}
		split(nodes[i].left)
		split(nodes[i].right)
	}
	split(len(nodes) - 1)
	for _, g := range groups {
		slices.Sort(g)
	}
	return groups
}

// autoencoder is Kitsune's dA: one hidden layer with tied weights and
// sigmoid units, inputs scaled to [0, 1] by the minimum and maximum seen
// while training, trained by one gradient step per vector.
//
// The weights are kept twice, as w (nv rows of nhp) and its transpose wt
// (nh rows of nvp), nhp and nvp being the sizes padded to a multiple of
// four with zeros: every product then runs along rows (rowsAxpy), the
// encoder along w and the decoder along wt, and a gradient step updates
// both. The padding stays zero: padded inputs, hidden units and errors are
// kept at zero, so every update adds zero there.
type autoencoder struct {
	nv, nh       int
	nvp, nhp     int
	lr           float64
	w            []float64 // nv×nhp, row-major
	wt           []float64 // nh×nvp, row-major: w transposed
	hbias, vbias []float64
	lo, hi       []float64
	scale        []float64 // 1/(hi-lo+1e-16), kept with lo and hi
	// Scratch, padded: the scaled input, hidden and output units, the
	// hidden error, and the step's scaled inputs and output errors.
	x, y, z, lh, d, lx, le []float64
	// forwarded: x, y and z hold the forward pass of the last vector
	// scored, and neither the weights nor the scaling changed since.
	forwarded bool
}

// newAutoencoderWeights returns an autoencoder of nv inputs and nh hidden
// units whose weights are wts (nv×nh, row-major), with its transpose and
// scratch space allocated; lo and hi are set by the caller.
func newAutoencoderWeights(nv, nh int, lr float64, wts []float64) *autoencoder {
	a := &autoencoder{nv: nv, nh: nh, nvp: pad4(nv), nhp: pad4(nh), lr: lr}
	a.w, a.wt = make([]float64, nv*a.nhp), make([]float64, nh*a.nvp)
	for i := range nv {
		for j := range nh {
			a.w[i*a.nhp+j] = wts[i*nh+j]
			a.wt[j*a.nvp+i] = wts[i*nh+j]
		}
	}
	a.x, a.z, a.d, a.lx, a.le = make([]float64, a.nvp), make([]float64, a.nvp), make([]float64, a.nvp), make([]float64, a.nvp), make([]float64, a.nvp)
	a.y, a.lh = make([]float64, a.nhp), make([]float64, a.nhp)
	return a
}

// weights returns the weights unpadded, nv×nh row-major.
func (a *autoencoder) weights() []float64 {
	out := make([]float64, 0, a.nv*a.nh)
	for i := range a.nv {
		out = append(out, a.w[i*a.nhp:i*a.nhp+a.nh]...)
	}
	return out
}

// prepare sets the scales of an autoencoder whose lo and hi are set.
func (a *autoencoder) prepare() *autoencoder {
	a.scale = make([]float64, a.nv)
	for i := range a.scale {
		a.rescale(i)
	}
	return a
}

func (a *autoencoder) rescale(i int) { a.scale[i] = 1 / (a.hi[i] - a.lo[i] + 1e-16) }

func newAutoencoder(nv int, hiddenRatio, lr float64, rng *rand.Rand) *autoencoder {
	nh := int(math.Ceil(float64(nv) * hiddenRatio))
	wts := make([]float64, nv*nh)
	bound := 1 / float64(nv)
	for i := range wts {
		wts[i] = -bound + 2*bound*rng.Float64()
	}
	a := newAutoencoderWeights(nv, nh, lr, wts)
	a.hbias, a.vbias = make([]float64, nh), make([]float64, nv)
	a.lo, a.hi = make([]float64, nv), make([]float64, nv)
	for i := range nv {
		a.lo[i], a.hi[i] = math.Inf(1), math.Inf(-1)
	}
	return a.prepare()
}

// forward scales in into a.x and computes a.y and a.z: each hidden unit
// is its bias plus the inputs' weighted sum, in input order, and each
// output its bias plus the hidden units' weighted sum, in hidden order.
func (a *autoencoder) forward(in []float64) {
	a.encode(in)
	sigmoidsPadded(a.y, a.nh)
	a.decode()
	sigmoidsPadded(a.z, a.nv)
}

// encode scales in into a.x and sets a.y to the hidden units' inputs,
// before the sigmoid.
func (a *autoencoder) encode(in []float64) {
	x := a.x[:a.nv]
	lo, scale := a.lo[:len(x)], a.scale[:len(x)]
	for i, v := range in[:len(x)] {
		x[i] = (v - lo[i]) * scale[i]
	}
	copy(a.y, a.hbias)
	rowsAxpy(a.y, x, a.w, a.nhp, a.nhp)
}

// decode sets a.z to the output units' inputs, before the sigmoid.
func (a *autoencoder) decode() {
	copy(a.z, a.vbias)
	rowsAxpy(a.z, a.y[:a.nh], a.wt, a.nvp, a.nvp)
}

func (a *autoencoder) errorRMSE() float64 {
	var s float64
	z := a.z[:a.nv]
	for i, xi := range a.x[:len(z)] {
		d := xi - z[i]
		s += d * d
	}
	return math.Sqrt(s / float64(a.nv))
}

// train takes one gradient step on in and returns its RMSE before the step.
// When in is the vector last scored (rmse) and the scaling does not change,
// that forward pass is reused. With frozen, the scaling stays as it is.
func (a *autoencoder) train(in []float64, scored, frozen bool) float64 {
	if a.prepareStep(in, scored, frozen) {
		a.forward(in)
	}
	return a.step()
}

// prepareStep widens the scaling to in (unless frozen) and reports whether
// the step needs a forward pass on in: it was not the vector last scored,
// or the scaling changed.
func (a *autoencoder) prepareStep(in []float64, scored, frozen bool) bool {
	lo, hi := a.lo[:len(in)], a.hi[:len(in)]
	for i, v := range in {
		if !frozen && (v < lo[i] || v > hi[i]) {
			lo[i], hi[i] = min(lo[i], v), max(hi[i], v)
			a.rescale(i)
			scored = false
		}
	}
	return !scored || !a.forwarded
}

// step takes the gradient step from the forward pass in x, y and z and
// returns the RMSE of that pass.
func (a *autoencoder) step() float64 {
	a.forwarded = false
	nv, nh := a.nv, a.nh
	x, z, y := a.x[:nv], a.z[:nv], a.y[:nh]
	d, lx, le := a.d[:nv], a.lx[:nv], a.le[:nv]
	for i, xi := range x {
		d[i] = xi - z[i]
		lx[i] = a.lr * xi
		le[i] = a.lr * d[i]
	}
	// Hidden error: (x - z)·W ∘ y(1-y), with the weights before the step.
	clear(a.lh)
	rowsAxpy(a.lh, d, a.w, a.nhp, a.nhp)
	lh := a.lh[:nh]
	for j, yj := range y {
		lh[j] *= yj * (1 - yj)
	}
	// W += lr·(x ⊗ lh + (x - z) ⊗ y), in both layouts.
	rowsUpdate(a.w, lx, a.lh, le, a.y, a.nhp, a.nhp)
	rowsUpdate(a.wt, lh, a.lx, y, a.le, a.nvp, a.nvp)
	vbias := a.vbias[:nv]
	for i, e := range le {
		vbias[i] += e
	}
	for j, l := range lh {
		a.hbias[j] += a.lr * l
	}
	return a.errorRMSE()
}

func (a *autoencoder) rmse(in []float64) float64 {
	a.forward(in)
	a.forwarded = true
	return a.errorRMSE()
}
