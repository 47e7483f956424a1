package detect

import (
	"cmp"
	"slices"
)

// A pack runs up to four ensemble autoencoders side by side, one per lane
// of a vector of four: element e of every array below is lane e%4's value
// at position e/4, and lanesAxpy and lanesUpdate do a whole layer of all
// four in one pass. The autoencoders are a few inputs wide (one to ten), so
// alone each one's products are short chains of dependent additions with
// a call around every few of them; side by side, four of them take the
// time of one.
//
// Each lane computes exactly what autoencoder computes, operation for
// operation in the same order: the pack is only the largest of its
// autoencoders in size (nv inputs, nh hidden units), and a lane's extra
// inputs, hidden units and outputs are held at zero, with zero weights, so
// that they add nothing (+0) to any sum. The autoencoders stay the owners
// of the weights: a run of packed steps starts by loading them (load) and
// ends by writing back (store); the tests compare every score bit for bit.
type pack struct {
	ae     [4]*autoencoder // nil for an empty lane
	slot   [4]int          // each lane's autoencoder's index in the ensemble
	nv, nh int
	// idx holds the feature (in the row the ensemble reads) of each input,
	// below the KitNET's n as the feature map's are; a lane's extra inputs
	// read feature 0, which vbits then clears. The kernels read the row
	// through it unchecked: rows are always n long.
	idx []int64
	// w is nv×nh, in vectors of four: the encoder reads it by rows
	// (lanesAxpy), the decoder, which uses its transpose, by columns
	// (lanesDot), so a step updates one matrix, not two.
	w                  []float64
	hbias              []float64 // nh vectors
	vbias, lo, hi, sc  []float64 // nv vectors; sc is 1/(hi-lo+1e-16)
	lr                 [4]float64
	x, y, z, d, lx, le []float64 // scratch, as autoencoder's
	lh                 []float64
	// hbits and vbits mark the units that are a lane's own: all ones, or
	// zero for a lane's extra units (parts of the KitNET's packYBits and
	// packZBits, as y and z are of packY and packZ).
	hbits, vbits []uint64
	nvs          [4]float64 // each lane's inputs (1 for an empty lane)
	zero         []float64  // nh vectors of zeros
	// fwd: x, y and z hold the forward pass of the row last scored.
	fwd bool
}

// packed returns the ensemble in packs of four, the largest autoencoders
// together, building them on first use.
func (k *KitNET) packed() []*pack {
	if k.packs != nil || len(k.ensemble) == 0 {
		return k.packs
	}
	order := make([]int, len(k.ensemble))
	for i := range order {
		order[i] = i
	}
	// Largest first, so that a pack's lanes are near one size and little
	// is padding.
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Compare(k.ensemble[b].nv*k.ensemble[b].nh, k.ensemble[a].nv*k.ensemble[a].nh)
	})
	ys, zs := 0, 0
	for start := 0; start < len(order); start += 4 {
		p := &pack{}
		for l, i := range order[start:min(start+4, len(order))] {
			p.ae[l], p.slot[l] = k.ensemble[i], i
			p.nv, p.nh = max(p.nv, k.ensemble[i].nv), max(p.nh, k.ensemble[i].nh)
		}
		v, h := 4*p.nv, 4*p.nh
		p.idx = make([]int64, v)
		for e := range p.idx {
			if a, i := p.ae[e&3], e>>2; a != nil && i < a.nv {
				p.idx[e] = int64(k.featMap[p.slot[e&3]][i])
			}
		}
		p.w = make([]float64, v*p.nh)
		p.hbias, p.vbias, p.lo, p.hi, p.sc = make([]float64, h), make([]float64, v), make([]float64, v), make([]float64, v), make([]float64, v)
		p.x, p.d, p.lx, p.le, p.lh = make([]float64, v), make([]float64, v), make([]float64, v), make([]float64, v), make([]float64, h)
		for l, a := range p.ae {
			p.nvs[l] = 1
			if a != nil {
				p.nvs[l] = float64(a.nv)
			}
		}
		p.zero = make([]float64, h)
		k.packs = append(k.packs, p)
		ys, zs = ys+h, zs+v
	}
	// Every pack's hidden units end to end, and its outputs, with their
	// masks, so that one sigmoids call and one lanesAnd cover a layer of
	// the whole ensemble.
	k.packY, k.packZ = make([]float64, ys), make([]float64, zs)
	k.packYBits, k.packZBits = make([]uint64, ys), make([]uint64, zs)
	ys, zs = 0, 0
	for _, p := range k.packs {
		h, v := 4*p.nh, 4*p.nv
		p.y, p.z = k.packY[ys:ys+h:ys+h], k.packZ[zs:zs+v:zs+v]
		p.hbits, p.vbits = k.packYBits[ys:ys+h:ys+h], k.packZBits[zs:zs+v:zs+v]
		for l, a := range p.ae {
			if a == nil {
				continue
			}
			for j := range a.nh {
				p.hbits[4*j+l] = ^uint64(0)
			}
			for i := range a.nv {
				p.vbits[4*i+l] = ^uint64(0)
			}
		}
		ys, zs = ys+h, zs+v
	}
	k.packNeeds = make([]bool, len(k.packs))
	return k.packs
}

// usePacks reports whether the ensemble runs in packs: where the lane
// kernels are vector code. Elsewhere the autoencoders run one by one.
func usePacks() bool { return useAVX && useAVX2 }

// load copies the autoencoders' weights, biases and scaling into the pack.
func (p *pack) load() {
	for l, a := range p.ae {
		if a == nil {
			continue
		}
		p.lr[l] = a.lr
		for i := range a.nv {
			e := 4*i + l
			p.vbias[e], p.lo[e], p.hi[e], p.sc[e] = a.vbias[i], a.lo[i], a.hi[i], a.scale[i]
			for j := range a.nh {
				p.w[4*(i*p.nh+j)+l] = a.w[i*a.nhp+j]
			}
		}
		for j := range a.nh {
			p.hbias[4*j+l] = a.hbias[j]
		}
	}
	p.fwd = false
}

// store writes the pack's weights, biases and scaling back to its
// autoencoders.
func (p *pack) store() {
	for l, a := range p.ae {
		if a == nil {
			continue
		}
		for i := range a.nv {
			e := 4*i + l
			a.vbias[i], a.lo[i], a.hi[i], a.scale[i] = p.vbias[e], p.lo[e], p.hi[e], p.sc[e]
			for j := range a.nh {
				w := p.w[4*(i*p.nh+j)+l]
				a.w[i*a.nhp+j], a.wt[j*a.nvp+i] = w, w
			}
		}
		for j := range a.nh {
			a.hbias[j] = p.hbias[4*j+l]
		}
		a.forwarded = false
	}
}

// packsLoad loads every pack from its autoencoders, before a run of
// packed steps, unless they hold the same already.
func (k *KitNET) packsLoad() {
	if k.packsFresh {
		return
	}
	for _, p := range k.packed() {
		p.load()
	}
	k.packsFresh = true
}

// packsStore writes every pack back, after a run of packed steps that
// trained.
func (k *KitNET) packsStore() {
	for _, p := range k.packs {
		p.store()
	}
}

// packScoreAll is scoreAll in packs: each ensemble autoencoder's RMSE on
// row, written to out in ensemble order.
func (k *KitNET) packScoreAll(row, out []float64) {
	in := row[:k.n]
	for _, p := range k.packs {
		p.scale(in)
		p.encode()
	}
	k.packsForward(nil)
	for _, p := range k.packs {
		p.fwd = true
		p.rmse(out)
	}
}

// packTrainAll is trainAll in packs: one gradient step of every ensemble
// autoencoder on row, the RMSEs of their forward passes written to out.
// When row was just scored (packScoreAll) a pack whose scaling did not
// change reuses that forward pass.
func (k *KitNET) packTrainAll(row []float64, scored bool, out []float64) {
	in := row[:k.n]
	any := false
	for n, p := range k.packs {
		widened := p.widen(in)
		k.packNeeds[n] = !scored || !p.fwd || widened
		if k.packNeeds[n] {
			p.encode()
			any = true
		}
	}
	if any {
		k.packsForward(k.packNeeds)
	}
	for _, p := range k.packs {
		p.rmse(out)
		p.step()
	}
}

// packsForward completes the forward passes of the packs that encoded
// their input (need[n] set, or all when need is nil): the sigmoid over the
// hidden units, in one call for all packs when all need it, the decoders,
// then the same over the outputs. A pack that did not encode keeps the
// forward pass it holds.
func (k *KitNET) packsForward(need []bool) {
	all := need == nil || !slices.Contains(need, false)
	packsActivate(k.packs, k.packY, k.packYBits, need, all, func(p *pack) ([]float64, []uint64) { return p.y, p.hbits })
	for n, p := range k.packs {
		if all || need[n] {
			p.decode()
		}
	}
	packsActivate(k.packs, k.packZ, k.packZBits, need, all, func(p *pack) ([]float64, []uint64) { return p.z, p.vbits })
}

// packsActivate applies the sigmoid to the units of the packs that need
// it and zeroes the units that are no lane's own, in one call each over
// buf (its masks in bits) when all do.
func packsActivate(packs []*pack, buf []float64, bits []uint64, need []bool, all bool, units func(*pack) ([]float64, []uint64)) {
	if all {
		sigmoids(buf)
		lanesAndAVX(&buf[0], &bits[0], len(buf)/4)
		return
	}
	for n, p := range packs {
		if v, own := units(p); need[n] {
			sigmoids(v)
			lanesAndAVX(&v[0], &own[0], len(v)/4)
		}
	}
}

// widen widens each lane's scaling to the row's values (prepareStep),
// sets x to the row's inputs scaled, and reports whether any scaling
// changed.
func (p *pack) widen(in []float64) bool {
	changed := lanesWidenAVX(&p.x[0], &in[0], &p.idx[0], &p.lo[0], &p.hi[0], &p.sc[0], &p.vbits[0], p.nv)
	if changed {
		p.fwd = false
	}
	return changed
}

// scale sets x to the row's inputs scaled; the inputs no lane has are 0.
func (p *pack) scale(in []float64) {
	lanesScaleAVX(&p.x[0], &in[0], &p.idx[0], &p.lo[0], &p.sc[0], &p.vbits[0], p.nv)
}

// encode sets y to the hidden units' inputs, before the sigmoid.
func (p *pack) encode() {
	lanesAxpy(p.y, p.hbias, p.x, p.w, p.nv, p.nh)
}

// decode sets z to the outputs' inputs, before the sigmoid.
func (p *pack) decode() {
	lanesDot(p.z, p.vbias, p.y, p.w, p.nh, p.nv)
}

// rmse writes each lane's RMSE of the forward pass in x and z to out, at
// its autoencoder's place in the ensemble: sqrt(Σ(x - z)²/nv), the four
// lanes side by side; a lane's extra inputs add zero to its sum.
func (p *pack) rmse(out []float64) {
	var r [4]float64
	lanesRMSEAVX(&p.x[0], &p.z[0], p.nv, &p.nvs, &r)
	for l, a := range p.ae {
		if a != nil {
			out[p.slot[l]] = r[l]
		}
	}
}

// step takes each lane's gradient step from the forward pass in x, y and
// z (autoencoder.step).
func (p *pack) step() {
	p.fwd = false
	lanesStepAVX(&p.d[0], &p.lx[0], &p.le[0], &p.x[0], &p.z[0], &p.lr[0], p.nv)
	lanesAxpy(p.lh, p.zero, p.d, p.w, p.nv, p.nh)
	lanesDerivAVX(&p.lh[0], &p.y[0], p.nh)
	lanesUpdate(p.w, p.lx, p.lh, p.le, p.y, p.nv, p.nh)
	lanesBiasAVX(&p.vbias[0], &p.le[0], &p.hbias[0], &p.lh[0], &p.lr[0], p.nv, p.nh)
}
