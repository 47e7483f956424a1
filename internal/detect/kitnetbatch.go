package detect

import (
	"slices"
	"sync"
)

// ProcessBatch is Process on n feature vectors laid one after another in
// x, with the same results: scores[t] gets the score of vector t (0 while
// training). The ensemble autoencoders are independent of each other
// within a packet (only the output autoencoder needs all their RMSEs), so
// each one works through the batch's vectors in order on its own, spread
// over up to workers goroutines, and the output autoencoder follows packet
// by packet: every autoencoder sees exactly the sequence of steps it would
// in Process, and only the time changes. BatchRMSE gives each scored
// vector's ensemble RMSEs.
func (k *KitNET) ProcessBatch(x []float64, n, workers int, scores []float64) {
	t := 0
	for t < n {
		if k.featMap == nil {
			m := k.phaseLeft(n - t)
			k.mapFeatures(x[t*k.n:(t+m)*k.n], m)
			clear(scores[t : t+m])
			t += m
			continue
		}
		if k.ensemble != nil && len(k.batchRMSE) < n*len(k.ensemble) {
			k.batchRMSE = make([]float64, n*len(k.ensemble))
			k.batchTrain = make([]float64, n*len(k.ensemble))
		}
		if k.Training() {
			m := min(n-t, k.cfg.FMGrace+k.cfg.ADGrace+1-k.trained)
			k.trainSegment(x, t, m, workers)
			clear(scores[t : t+m])
			t += m
			continue
		}
		k.scoreSegment(x, t, n-t, workers, scores)
		t = n
	}
}

// BatchRMSE returns the ensemble RMSEs of vector t of the last
// ProcessBatch, if it was scored after training. The slice is reused.
func (k *KitNET) BatchRMSE(t int) []float64 {
	e := len(k.ensemble)
	return k.batchRMSE[t*e : (t+1)*e]
}

// lockstep reports whether a segment runs on one goroutine, the whole
// ensemble a vector at a time (scoreAll, trainAll), rather than spread
// over workers goroutines (forEachStep).
func (k *KitNET) lockstep(workers int) bool { return workers <= 1 || len(k.ensemble) < 2 }

// lockstepPacks reports whether a lockstep run goes in packs, where the
// vector kernels run, loading them from the autoencoders if so.
func (k *KitNET) lockstepPacks() bool {
	if !usePacks() {
		return false
	}
	k.packsLoad()
	return true
}

// scoreVector is scoreAll, in packs when packed.
func (k *KitNET) scoreVector(packed bool, row, out []float64) {
	if packed {
		k.packScoreAll(row, out)
		return
	}
	k.scoreAll(row, out)
}

// trainVector is trainAll (never frozen), in packs when packed.
func (k *KitNET) trainVector(packed bool, row []float64, scored bool, out []float64) {
	if packed {
		k.packTrainAll(row, scored, out)
		return
	}
	k.trainAll(row, scored, false, out)
}

// forEachStep runs f(i, t) for every ensemble autoencoder i and vector t
// of t0 … t0+m-1, each autoencoder's vectors in order, over up to workers
// (at least two) goroutines with about the same number of weights each; f
// gets a scratch slice of its own for gathering inputs.
func (k *KitNET) forEachStep(workers, t0, m int, f func(i, t int, scratch []float64)) {
	if len(k.groups) != min(workers, len(k.ensemble)) {
		k.groups = balance(k.ensemble, min(workers, len(k.ensemble)))
	}
	var wg sync.WaitGroup
	for _, g := range k.groups {
		wg.Go(func() {
			scratch := make([]float64, len(k.scratch))
			for _, i := range g {
				for t := t0; t < t0+m; t++ {
					f(i, t, scratch)
				}
			}
		})
	}
	wg.Wait()
}

// balance deals the autoencoders out to n groups, largest first to the
// lightest group, so that the goroutines finish together.
func balance(ens []*autoencoder, n int) [][]int {
	order := make([]int, len(ens))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return ens[b].nv*ens[b].nh - ens[a].nv*ens[a].nh })
	groups := make([][]int, n)
	load := make([]int, n)
	for _, i := range order {
		g := slices.Index(load, slices.Min(load))
		groups[g] = append(groups[g], i)
		load[g] += ens[i].nv * ens[i].nh
	}
	return groups
}

// gatherInto copies the features of x that idx names, in order, into
// scratch and returns them: one autoencoder's inputs.
func gatherInto(scratch, x []float64, idx []int) []float64 {
	s := scratch[:len(idx)]
	for i, j := range idx {
		s[i] = x[j]
	}
	return s
}

// trainSegment trains on vectors t0 … t0+m-1, all within the training
// grace period after feature mapping, as Process would one by one.
func (k *KitNET) trainSegment(x []float64, t0, m, workers int) {
	e := len(k.ensemble)
	calibStart := k.calibStart()
	first := k.trained // the training index of vector t0
	calibrating := func(t int) bool { return first+t-t0 >= calibStart }
	if k.lockstep(workers) {
		packed := k.lockstepPacks()
		for t := t0; t < t0+m; t++ {
			row := x[t*k.n : (t+1)*k.n]
			scored := calibrating(t)
			if scored {
				k.scoreVector(packed, row, k.batchRMSE[t*e:(t+1)*e])
			}
			k.trainVector(packed, row, scored, k.batchTrain[t*e:(t+1)*e])
		}
		if packed {
			k.packsStore()
		}
	} else {
		k.packsFresh = false
		k.forEachStep(workers, t0, m, func(i, t int, scratch []float64) {
			ae := k.ensemble[i]
			g := gatherInto(scratch, x[t*k.n:(t+1)*k.n], k.featMap[i])
			scored := calibrating(t)
			if scored {
				k.batchRMSE[t*e+i] = ae.rmse(g)
			}
			k.batchTrain[t*e+i] = ae.train(g, scored, false)
		})
	}
	for t := t0; t < t0+m; t++ {
		scoredRow, trainRow := k.batchRMSE[t*e:(t+1)*e], k.batchTrain[t*e:(t+1)*e]
		same := calibrating(t)
		if same {
			if k.calibAE == nil {
				k.calibAE = make([]float64, e)
				// Room for every calibration score at once: grown by
				// appends, the slice is copied and its new memory
				// touched page by page, over and over.
				k.calib = slices.Grow(k.calib, k.cfg.FMGrace+k.cfg.ADGrace+1-calibStart)
			}
			k.calib = append(k.calib, k.output.rmse(scoredRow))
			for i, h := range scoredRow {
				k.calibAE[i] += h
			}
			same = slices.Equal(scoredRow, trainRow)
		}
		k.output.train(trainRow, same, false)
		k.trained++
	}
	copy(k.hidden, k.batchTrain[(t0+m-1)*e:(t0+m)*e])
}

// scoreSegment scores vectors t0 … t0+m-1 with the trained model.
func (k *KitNET) scoreSegment(x []float64, t0, m, workers int, scores []float64) {
	e := len(k.ensemble)
	if k.lockstep(workers) {
		packed := k.lockstepPacks()
		for t := t0; t < t0+m; t++ {
			k.scoreVector(packed, x[t*k.n:(t+1)*k.n], k.batchRMSE[t*e:(t+1)*e])
		}
	} else {
		k.forEachStep(workers, t0, m, func(i, t int, scratch []float64) {
			k.batchRMSE[t*e+i] = k.ensemble[i].rmse(gatherInto(scratch, x[t*k.n:(t+1)*k.n], k.featMap[i]))
		})
	}
	for t := t0; t < t0+m; t++ {
		scores[t] = k.output.rmse(k.batchRMSE[t*e : (t+1)*e])
	}
	copy(k.hidden, k.batchRMSE[(t0+m-1)*e:(t0+m)*e])
}

// phaseLeft returns how many of the next m vectors fall in the model's
// current phase (feature mapping, training or scoring).
func (k *KitNET) phaseLeft(m int) int {
	switch {
	case k.featMap == nil:
		return min(m, k.cfg.FMGrace+1-k.trained)
	case k.Training():
		return min(m, k.cfg.FMGrace+k.cfg.ADGrace+1-k.trained)
	}
	return m
}
