package detect

// The autoencoders' arithmetic is two shapes of loop over the rows of a
// weight matrix, in both of which every output element is summed in the
// same order as the plain nested loop: rowsAxpy (a matrix-vector product
// written as a sum of scaled rows) and rowsUpdate (a rank-two update).
// Going along rows lets four neighbouring elements be computed in one AVX
// instruction without changing a single bit of any result: the same
// multiplications and additions happen, in the same order per element,
// only four at a time. Rows are padded to a multiple of four with zeros
// (see autoencoder), so there is no remainder to handle.

// rowsAxpy adds Σ_r a[r]·m[r·stride+j] to out[j] for j < n, r in order.
// n is a multiple of 4, stride ≥ n, and m holds len(a) rows.
func rowsAxpy(out, a, m []float64, n, stride int) {
	if len(a) == 0 || n == 0 {
		return
	}
	_ = out[n-1]
	_ = m[(len(a)-1)*stride+n-1]
	if useAVX {
		rowsAxpyAVX(&out[0], &a[0], &m[0], len(a), n, stride)
		return
	}
	rowsAxpyGo(out, a, m, n, stride)
}

func rowsAxpyGo(out, a, m []float64, n, stride int) {
	out = out[:n]
	for r, ar := range a {
		row := m[r*stride : r*stride+n]
		for j, mj := range row {
			// The conversion keeps ar·mj rounded on its own: Go may
			// otherwise fuse it with the addition where FMA exists.
			out[j] += float64(ar * mj)
		}
	}
}

// rowsUpdate adds a[r]·u[j] + b[r]·v[j] to m[r·stride+j] for r < len(a),
// j < n: the rank-two update of a gradient step. n is a multiple of 4.
func rowsUpdate(m, a, u, b, v []float64, n, stride int) {
	if len(a) == 0 || n == 0 {
		return
	}
	_ = b[len(a)-1]
	_, _ = u[n-1], v[n-1]
	_ = m[(len(a)-1)*stride+n-1]
	if useAVX {
		rowsUpdateAVX(&m[0], &a[0], &u[0], &b[0], &v[0], len(a), n, stride)
		return
	}
	rowsUpdateGo(m, a, u, b, v, n, stride)
}

func rowsUpdateGo(m, a, u, b, v []float64, n, stride int) {
	u, v = u[:n], v[:n]
	for r, ar := range a {
		br := b[r]
		row := m[r*stride : r*stride+n]
		for j := range row {
			row[j] += float64(ar*u[j]) + float64(br*v[j])
		}
	}
}

// pad4 rounds n up to a multiple of 4.
func pad4(n int) int { return (n + 3) &^ 3 }

// The ensemble also runs four autoencoders at a time, one per lane of a
// vector (see pack): every element of the arrays below is then four
// values, one per lane, and the kernels are rowsAxpy and rowsUpdate with a
// vector of four in place of each broadcast scalar. n counts vectors.

// lanesAxpy sets out[c] to b[c] + Σ_r a[r]·m[r·n+c] for c < n, r in
// order, lane by lane; b may be out.
func lanesAxpy(out, b, a, m []float64, rows, n int) {
	if n == 0 {
		return
	}
	lanesProductBounds(out, b, a, m, rows, n)
	if useAVX512 && rows > 0 {
		lanesAxpyAVX512(&out[0], &b[0], &a[0], &m[0], rows, n)
		return
	}
	if useAVX && rows > 0 {
		lanesAxpyAVX(&out[0], &b[0], &a[0], &m[0], rows, n)
		return
	}
	lanesAxpyGo(out, b, a, m, rows, n)
}

// lanesProductBounds panics unless out and b hold n vectors, a rows and m
// rows×n, before the kernels read them unchecked.
func lanesProductBounds(out, b, a, m []float64, rows, n int) {
	_, _ = out[4*n-1], b[4*n-1]
	if rows > 0 {
		_, _ = a[4*rows-1], m[4*rows*n-1]
	}
}

func lanesAxpyGo(out, b, a, m []float64, rows, n int) {
	out = out[:4*n]
	copy(out, b)
	for r := range rows {
		ar, row := a[4*r:4*r+4], m[4*r*n:4*(r+1)*n]
		for c, mc := range row {
			out[c] += float64(ar[c&3] * mc)
		}
	}
}

// lanesDot sets out[c] = b[c] + Σ_r a[r]·m[c·rows+r], lane by lane, r in
// order: lanesAxpy with m transposed, the sums in the same order.
func lanesDot(out, b, a, m []float64, rows, n int) {
	if n == 0 {
		return
	}
	lanesProductBounds(out, b, a, m, rows, n)
	if useAVX && rows > 0 {
		lanesDotAVX(&out[0], &b[0], &a[0], &m[0], rows, n)
		return
	}
	lanesDotGo(out, b, a, m, rows, n)
}

func lanesDotGo(out, b, a, m []float64, rows, n int) {
	out = out[:4*n]
	copy(out, b)
	a = a[:4*rows]
	for c := range n {
		o, row := out[4*c:4*c+4], m[4*c*rows:4*(c+1)*rows]
		for e, mr := range row {
			o[e&3] += float64(a[e] * mr)
		}
	}
}

// lanesUpdate adds a[r]·u[c] + b[r]·v[c] to m[r·n+c], lane by lane.
func lanesUpdate(m, a, u, b, v []float64, rows, n int) {
	if rows == 0 || n == 0 {
		return
	}
	_, _, _, _, _ = m[4*rows*n-1], a[4*rows-1], b[4*rows-1], u[4*n-1], v[4*n-1]
	if useAVX512 {
		lanesUpdateAVX512(&m[0], &a[0], &u[0], &b[0], &v[0], rows, n)
		return
	}
	if useAVX {
		lanesUpdateAVX(&m[0], &a[0], &u[0], &b[0], &v[0], rows, n)
		return
	}
	lanesUpdateGo(m, a, u, b, v, rows, n)
}

func lanesUpdateGo(m, a, u, b, v []float64, rows, n int) {
	u, v = u[:4*n], v[:4*n]
	for r := range rows {
		ar, br, row := a[4*r:4*r+4], b[4*r:4*r+4], m[4*r*n:4*(r+1)*n]
		for c := range row {
			row[c] += float64(ar[c&3]*u[c]) + float64(br[c&3]*v[c])
		}
	}
}
