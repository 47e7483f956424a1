package detect

import (
	"math"
	"runtime"
	"slices"
)

// Lambdas are the decay rates of the five time windows, fastest first: a
// stream's weight halves every 1/λ seconds without traffic.
var Lambdas = [NumLambdas]float64{5, 3, 1, 0.1, 0.01}

// NumLambdas is the number of time windows.
const NumLambdas = 5

// NumFeatures is the length of a feature vector: per window, 3 source MAC-IP,
// 7 channel, 3 channel jitter and 7 socket statistics, grouped by statistic
// group and then by window, in Kitsune's order (see doc.go).
const NumFeatures = 20 * NumLambdas

// Offsets of the four feature groups in a feature vector.
const (
	offsetMACIP   = 0
	offsetChannel = 3 * NumLambdas
	offsetJitter  = offsetChannel + 7*NumLambdas
	offsetSocket  = offsetJitter + 3*NumLambdas
)

// incStat is one damped incremental statistic of one stream in one window:
// the decayed linear sum, sum of squares and weight (the time they were
// last decayed is the stream's: windows.last). It caches its mean,
// variance and standard deviation until the next insert, as Kitsune's
// incStat does: decay leaves them unchanged in exact arithmetic, but a
// variance near zero is pure rounding noise, and the Pearson correlation
// divides by it, so recomputing it at other moments than Kitsune does
// gives other noise there.
type incStat struct {
	cf1, cf2, w       float64
	cmean, cvar, cstd float64
}

// windows is a stream's statistics, one per window, all decayed to the
// same time, last: they are registered together and always decayed
// together.
type windows struct {
	s    [NumLambdas]incStat
	last float64
}

// factors are a time step's decay factors 2^(-λΔt), one per window.
type factors = [NumLambdas]float64

// decayMemo holds the decay factors computed for the packet being folded
// in, by Δt. The streams and links one packet touches were often last
// touched together, by the same earlier packet (a host and its socket, the
// two ends of a conversation and their link), so they share a Δt, and the
// factors, a call of exp2 each, are computed once. A packet's time is the
// same for all of them, so equal Δt are equal inputs: the factors are the
// same bits either way.
type decayMemo struct {
	n  int
	dt [decayMemoSize]float64
	f  [decayMemoSize]factors
}

// decayMemoSize holds a packet's streams and links with their own links
// only (eight); with Kitsune's links the memo starts over when full.
const decayMemoSize = 8

// get sets f[k] to the factors of dts[k] (up to three), or to nil where
// dts[k] is not positive (time does not move forward), computing those not
// in the memo in one pow2s call. The factors stay valid until the next get.
func (m *decayMemo) get(dts []float64, f []*factors) {
	if m.n+len(dts) > decayMemoSize {
		m.n = 0
	}
	var x [16]float64 // room for three Δt's factors; pow2s takes fours
	var fill [3]*factors
	n := 0
next:
	for k, dt := range dts {
		f[k] = nil
		if !(dt > 0) {
			continue
		}
		for i := range m.n {
			if m.dt[i] == dt {
				f[k] = &m.f[i]
				continue next
			}
		}
		m.dt[m.n], f[k], fill[n] = dt, &m.f[m.n], &m.f[m.n]
		m.n++
		for i := range NumLambdas {
			x[n*NumLambdas+i] = -Lambdas[i] * dt
		}
		n++
	}
	if n > 0 {
		pow2s(x[:(n*NumLambdas+3)&^3])
		for i, to := range fill[:n] {
			copy(to[:], x[i*NumLambdas:])
		}
	}
}

// one is get for a single Δt.
func (m *decayMemo) one(dt float64) *factors {
	var f [1]*factors
	m.get([]float64{dt}, f[:])
	return f[0]
}

// decayAll ages a stream's statistics to time t; time never runs
// backwards for them, but for a stream whose clock a packet far ahead of
// t set (rewound).
func decayAll(s *windows, t float64, m *decayMemo) {
	decayStats(s, t, m.one(t-s.last))
}

// decayStats is decayAll with the factors of t - s.last at hand: nil
// when time does not move forward for the stream.
func decayStats(s *windows, t float64, f *factors) {
	if f != nil {
		applyStatDecay(s, t, f)
	} else if rewound(t, s.last) {
		s.last = t
	}
}

// clockReset is how many capture seconds a packet may be behind a
// stream's clock (its last packet's time) before the stream takes the
// packet's time as its own.
const clockReset = 60

// rewound reports whether a packet at t is more than clockReset behind a
// clock at last. Kitsune never moves a stream's clock back: a packets a
// few microseconds out of order leave it, but one bogus timestamp years
// ahead (a corrupt or crafted file, a sensor's clock set wrong for a
// moment) would stop the decay of every stream it touched until capture
// time caught up, and their statistics would grow without bound. Such a
// stream restarts its clock at the first packet back in the present, its
// statistics already decayed to nothing by the leap.
func rewound(t, last float64) bool { return t < last-clockReset }

// applyStatDecay multiplies each window by its factor f[i] = 2^(-λΔt) and
// moves the stream to t.
func applyStatDecay(s *windows, t float64, f *factors) {
	for i := range s.s {
		st := &s.s[i]
		st.cf1 *= f[i]
		st.cf2 *= f[i]
		st.w *= f[i]
	}
	s.last = t
}

// add inserts v into a statistic decayed to the present (decayAll).
func (s *incStat) add(v float64) {
	s.cf1 += v
	s.cf2 += v * v
	s.w++
	s.cmean, s.cvar, s.cstd = math.NaN(), math.NaN(), math.NaN()
}

// stats1D returns the weight, mean and variance, recomputed, of a
// statistic a value was just added to (add): a mean cached since then
// (a link's residual, mean) was computed from the same sums, so it is the
// same number and is kept.
//
// The variance is what Kitsune reports in the columns it names "std": it
// never takes the square root there (AfterImage.allstats_1D). The features
// keep that so that the model sees the same inputs; see doc.go.
func (s *incStat) stats1D() (w, mean, variance float64) {
	m := s.mean() // w ≥ 1 after add
	s.cvar = math.Abs(s.cf2/s.w - m*m)
	return s.w, m, s.cvar
}

// mean and variance of a stream whose weight is zero are 0. A stream that
// never sent has weight 1e-20, which decays to zero (λ = 5, four minutes);
// the cache normally holds the values computed before that, as in Kitsune,
// but should a recomputation ever meet w = 0, a NaN would poison every model
// weight it reached.
func (s *incStat) mean() float64 {
	if math.IsNaN(s.cmean) {
		s.cmean = 0
		if s.w != 0 {
			s.cmean = s.cf1 / s.w
		}
	}
	return s.cmean
}

func (s *incStat) variance() float64 {
	if math.IsNaN(s.cvar) {
		m := s.mean()
		s.cvar = 0
		if s.w != 0 {
			s.cvar = math.Abs(s.cf2/s.w - m*m)
		}
	}
	return s.cvar
}

func (s *incStat) std() float64 {
	if math.IsNaN(s.cstd) {
		s.cstd = math.Sqrt(s.variance())
	}
	return s.cstd
}

// register sets a new stream's statistics, registered at time t, before
// their first value.
func (s *windows) register(t float64) {
	for i := range s.s {
		s.s[i] = incStat{w: 1e-20, cmean: math.NaN(), cvar: math.NaN(), cstd: math.NaN()}
	}
	s.last = t
}

// stream1D is a stream with one statistic per window and no links: a
// source MAC-IP pair or the jitter of a channel.
type stream1D struct {
	windows
	lastSeen float64
}

// stream2D is a stream whose statistics are also linked to the streams it
// exchanges traffic with (a host, or a socket), for the channel statistics.
// Its links form a list in the order they were made, through the links
// themselves (see link): head and tail are list handles, 0 when it has none.
type stream2D struct {
	windows
	lastSeen   float64
	head, tail uint32
}

// A link holds the decayed covariance of two streams a and b (slab
// indices), per window. It sits in both streams' lists of links: next[0]
// and prev[0] are its neighbours in a's, next[1] and prev[1] in b's, as
// list handles (a link's index times two plus the side; 0 ends the list).
// A stream linked to itself has the link twice in its list, once per side.
type link struct {
	a, b       uint32
	next, prev [2]uint32
	c          [NumLambdas]covStat
	last       float64 // when the covariances were last decayed
}

type covStat struct {
	cf3, w3 float64
	res     [2]float64
}

// side returns 0 if stream s is the link's a, else 1.
func (l *link) side(s uint32) int {
	if l.a == s {
		return 0
	}
	return 1
}

func (l *link) other(side int) uint32 {
	if side == 0 {
		return l.b
	}
	return l.a
}

func handle(l uint32, side int) uint32       { return l<<1 | uint32(side) }
func unhandle(h uint32) (l uint32, side int) { return h >> 1, int(h & 1) }

// update folds value v of stream s (on side of the link) at time t into
// every window of the link, as Kitsune's incStat_cov.update_cov does; s has
// been updated with v already and other is the link's other stream.
func (l *link) update(s, other *stream2D, side int, v, t float64, m *decayMemo) {
	decayAll(&other.windows, t, m)
	l.decayCov(side, t, m.one(t-l.last))
	l.addResiduals(s, side, v)
}

// decayCov is decayStats for the link's covariances, side being the
// sending stream's.
func (l *link) decayCov(side int, t float64, f *factors) {
	if f != nil {
		l.applyCovDecay(side, t, f)
	} else if rewound(t, l.last) {
		l.last = t
	}
}

// applyCovDecay is applyStatDecay for the link's covariances, side being
// the sending stream's.
func (l *link) applyCovDecay(side int, t float64, f *factors) {
	for i := range l.c {
		c := &l.c[i]
		c.cf3 *= f[i]
		c.w3 *= f[i]
		c.res[side] *= f[i]
	}
	l.last = t
}

// addResiduals folds the residual of v against each window's mean of s
// (the sending stream, on side) into the covariances, decayed to now.
func (l *link) addResiduals(s *stream2D, side int, v float64) {
	for i := range l.c {
		c := &l.c[i]
		res := v - s.s[i].mean()
		c.cf3 += res * c.res[1-side]
		c.w3++
		c.res[side] = res
	}
}

// stats2D writes radius, magnitude, covariance and Pearson correlation of
// window i, a and b being the link's streams.
func (l *link) stats2D(a, b *stream2D, i int, out []float64) {
	sa, sb := &a.s[i], &b.s[i]
	va, vb := sa.variance(), sb.variance()
	ma, mb := sa.mean(), sb.mean()
	out[0] = math.Sqrt(va*va + vb*vb)
	out[1] = math.Sqrt(ma*ma + mb*mb)
	cov := l.c[i].cf3 / l.c[i].w3
	out[2] = cov
	if ss := sa.std() * sb.std(); ss != 0 {
		out[3] = cov / ss
	} else {
		out[3] = 0
	}
}

// pairKey is the key of the link of streams a and b, in either order.
func pairKey(a, b uint32) key {
	if a > b {
		a, b = b, a
	}
	return key{a: uint64(a)<<32 | uint64(b)}
}

// table2D holds the linked streams of one kind (hosts or sockets): an
// index from key to slot, the streams and the links in slabs, and the
// links by pair.
type table2D struct {
	index   index
	streams slab[stream2D]
	links   slab[link]
	pairs   index
}

func newTable2D(mem *slabMemory) table2D {
	return table2D{index: newIndex(mem), pairs: newIndex(mem),
		streams: slab[stream2D]{mem: mem}, links: slab[link]{mem: mem}}
}

// newStream registers k's stream, not yet indexed, at t.
func (tb *table2D) newStream(k hashed, t float64) uint32 {
	i := tb.streams.alloc()
	tb.streams.at(i).register(t)
	tb.index.insert(k, i)
	return i
}

// findLink returns the link Kitsune's register_cov would find for the pair:
// the first of src's links that involves dst. For a stream sending to itself
// that is src's first link of any kind, a quirk kept for parity.
func (tb *table2D) findLink(src, dst uint32) uint32 {
	if src == dst {
		l, _ := unhandle(tb.streams.at(src).head)
		return l
	}
	return tb.pairs.get(pairKey(src, dst))
}

// appendLink puts link l at the end of stream s's list, on side.
func (tb *table2D) appendLink(s uint32, l uint32, side int) {
	st, h := tb.streams.at(s), handle(l, side)
	ln := tb.links.at(l)
	ln.prev[side], ln.next[side] = st.tail, 0
	if st.tail == 0 {
		st.head = h
	} else {
		tl, ts := unhandle(st.tail)
		tb.links.at(tl).next[ts] = h
	}
	st.tail = h
}

// unlink takes link l, on side, out of stream s's list, keeping the
// order of the rest (the first link matters: findLink).
func (tb *table2D) unlink(s uint32, l uint32, side int) {
	st, ln := tb.streams.at(s), tb.links.at(l)
	prev, next := ln.prev[side], ln.next[side]
	if prev == 0 {
		st.head = next
	} else {
		pl, ps := unhandle(prev)
		tb.links.at(pl).next[ps] = next
	}
	if next == 0 {
		st.tail = prev
	} else {
		nl, ns := unhandle(next)
		tb.links.at(nl).prev[ns] = prev
	}
}

// update applies one packet of size v from src to dst at time t, writes
// the 7 channel statistics of each window at out[7*i:], and returns the
// slots of the two streams.
//
// With every set, each of src's links is updated as well, as Kitsune does;
// otherwise only the link of the pair.
func (tb *table2D) update(srcKey, dstKey hashed, v, t float64, every bool, m *decayMemo, out []float64) (si, di uint32) {
	si = tb.index.lookup(srcKey)
	if si == 0 {
		si = tb.newStream(srcKey, t)
	}
	var li uint32
	di = tb.index.lookup(dstKey)
	if di != 0 {
		li = tb.findLink(si, di)
	}
	fresh := li == 0
	// Slabs never move their elements: these pointers stay valid while
	// streams and links are added below.
	src := tb.streams.at(si)
	var dst *stream2D
	var l *link
	if di != 0 {
		dst = tb.streams.at(di)
	}
	if !fresh {
		l = tb.links.at(li)
	}
	// The decay factors of src, of the pair's other stream and of their
	// link are computed together (with Kitsune's links, other links decay
	// too, one by one). dst decays here only if it exists and is not src:
	// a new stream starts at t, and src has just been decayed.
	dts := [3]float64{t - src.last}
	if !every {
		if dst != nil && di != si {
			dts[1] = t - dst.last
		}
		if l != nil {
			dts[2] = t - l.last
		}
	}
	var f [3]*factors
	m.get(dts[:], f[:])
	// Window by window, as Kitsune does; a window's link statistics
	// depend only on that window's, so all windows of src go first.
	decayStats(&src.windows, t, f[0])
	for i := range src.s {
		src.s[i].add(v)
	}
	if every {
		for h := src.head; h != 0; {
			hl, hs := unhandle(h)
			sl := tb.links.at(hl)
			sl.update(src, tb.streams.at(sl.other(hs)), sl.side(si), v, t, m)
			h = sl.next[hs]
		}
	}
	if dst == nil {
		di = tb.newStream(dstKey, t)
		dst = tb.streams.at(di)
	}
	src.lastSeen, dst.lastSeen = t, t
	if fresh {
		li = tb.links.alloc()
		l = tb.links.at(li)
		l.a, l.b = si, di
		for i := range l.c {
			l.c[i] = covStat{w3: 1e-20}
		}
		l.last = t
		tb.appendLink(si, li, 0)
		tb.appendLink(di, li, 1)
		if si != di {
			tb.pairs.put(pairKey(si, di), li)
		}
	}
	side := l.side(si)
	if every {
		l.update(src, tb.streams.at(l.other(side)), side, v, t, m)
	} else {
		decayStats(&dst.windows, t, f[1])
		l.decayCov(side, t, f[2])
		l.addResiduals(src, side, v)
	}
	a, b := tb.streams.at(l.a), tb.streams.at(l.b)
	for i := range NumLambdas {
		o := out[7*i : 7*i+7]
		s := &src.s[i]
		o[0], o[1], o[2] = s.stats1D()
		l.stats2D(a, b, i, o[3:])
	}
	return si, di
}

// AfterImage computes Kitsune's 100 damped incremental statistics for each
// packet, keeping per-stream state for source MAC-IP pairs, hosts, channels
// and sockets. Idle streams are evicted (see Evict). It is not safe for
// concurrent use.
type AfterImage struct {
	macIP   table1D
	jitter  table1D
	hosts   table2D
	sockets table2D
	// IdleTimeout is how long, in capture seconds, a stream may go without
	// traffic before Evict removes it. Zero means DefaultIdleTimeout.
	IdleTimeout float64
	// OwnLinkOnly, when set, updates only the covariance of the packet's own
	// host pair and socket pair, once per packet. Kitsune updates every link
	// of the sending host or socket, and the packet's own link twice; that
	// costs time in proportion to the sender's peers (a scanning host has
	// thousands) and makes the covariance of a pair depend on traffic to
	// other peers. Leave it unset for Kitsune's exact features.
	OwnLinkOnly bool
	// JitterRestart, if positive, is the silence in capture seconds after
	// which a channel's jitter statistics start afresh, as a new channel's
	// do: its first inter-arrival time counts as 0 and the earlier ones are
	// forgotten. Kitsune (zero here) inserts the whole pause, which in the
	// slow windows outweighs minutes of ordinary inter-arrival times, so
	// that every channel resuming after a quiet period looks like nothing
	// the model was trained on (docs/DETECTION.md, "Quiet periods").
	JitterRestart float64
	// MaxStreams bounds the streams tracked (Streams); zero means
	// DefaultMaxStreams. When a packet finds it reached, the streams seen
	// least recently are evicted, however recent, until at most seven
	// eighths of it remain: a flood of spoofed sources must not exhaust
	// memory, and what it pushes out first is what has been quiet
	// longest. Shed counts them.
	MaxStreams int
	shed       uint64
	lastSweep  float64
	lastTime   float64 // the last packet's
	// evicting holds the streams a sweep removes, between finding and
	// removing them.
	evicting []entry
	// shedTimes holds shedOldest's sample of last-seen times.
	shedTimes []float64
	memo      decayMemo
}

// DefaultIdleTimeout is the IdleTimeout of an AfterImage that sets none: one
// hour of capture time.
const DefaultIdleTimeout = 3600.0

// EvictInterval is how often, in capture seconds, Update calls Evict: a
// sweep reads every stream, so a stream outlives its idle timeout by up to
// five minutes rather than the sweeps costing time in proportion to all
// streams every minute.
const EvictInterval = 300.0

// DefaultMaxStreams is the MaxStreams of an AfterImage that sets none:
// 1,048,576 streams, about 480 MB (docs/BENCHMARKS.md).
const DefaultMaxStreams = 1 << 20

func (a *AfterImage) maxStreams() int {
	if a.MaxStreams > 0 {
		return a.MaxStreams
	}
	return DefaultMaxStreams
}

// Shed returns the number of streams evicted so far because MaxStreams
// was reached (not for being idle).
func (a *AfterImage) Shed() uint64 { return a.shed }

// Streams returns the number of streams tracked: source MAC-IP pairs,
// channel jitters, hosts and sockets.
func (a *AfterImage) Streams() int {
	return a.macIP.index.len() + a.jitter.index.len() + a.hosts.index.len() + a.sockets.index.len()
}

// Evict removes the streams that neither sent nor received since
// now - IdleTimeout, with their links, and returns how many it removed.
func (a *AfterImage) Evict(now float64) int {
	timeout := a.IdleTimeout
	if timeout <= 0 {
		timeout = DefaultIdleTimeout
	}
	return a.evictBefore(now - timeout)
}

// evictBefore removes the streams that neither sent nor received since
// before, with their links, and returns how many it removed.
func (a *AfterImage) evictBefore(before float64) int {
	// A jitter stream is keyed by its hosts' slots (Update), so it must
	// never outlive them, lest a new host in a reused slot inherit it: it
	// does not, as it is seen only when both its hosts are, and every
	// table is swept here against the same time.
	n := a.macIP.evict(before, &a.evicting) + a.jitter.evict(before, &a.evicting)
	n += a.hosts.evict(before, &a.evicting) + a.sockets.evict(before, &a.evicting)
	return n
}

// shedBuckets is the resolution of shedExactly's histogram of last-seen
// times.
const shedBuckets = 1024

// shedSample is about how many streams' last-seen times shedOldest reads
// to choose the time to evict before.
const shedSample = 1 << 14

// shedOldest evicts the streams seen least recently until about seven
// eighths of MaxStreams remain. It chooses the time to evict before from
// a sample of about shedSample streams (sampleLastSeen: by slot, so that
// the same traffic sheds the same streams), then evicts in one pass:
// under a flood of spoofed sources every packet opens new streams and the
// cap is met again and again, so each pass over a million streams counts.
// Should the sample have misled it into evicting less than half the
// excess, shedExactly evicts the rest. Should every stream have been seen
// at the same moment, all go.
func (a *AfterImage) shedOldest() {
	limit := a.maxStreams()
	total := a.Streams()
	excess := total - (limit - limit/8)
	if excess <= 0 {
		return
	}
	sample := a.sampleLastSeen(uint32(max(1, total/shedSample)), a.shedTimes[:0])
	a.shedTimes = sample
	if len(sample) > 0 {
		slices.Sort(sample)
		before := sample[min(len(sample)-1, excess*len(sample)/total)]
		if before <= sample[0] {
			before = math.Nextafter(sample[0], math.Inf(1))
		}
		n := a.evictBefore(before)
		a.shed += uint64(n)
		if n >= excess/2 {
			return
		}
	}
	a.shedExactly()
}

// shedExactly is shedOldest from a histogram of every stream's last-seen
// time, in two passes and no sort: it may evict up to one bucket's
// streams more than needed.
func (a *AfterImage) shedExactly() {
	limit := a.maxStreams()
	excess := a.Streams() - (limit - limit/8)
	if excess <= 0 {
		return
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	a.eachLastSeen(func(t float64) { lo, hi = min(lo, t), max(hi, t) })
	width := (hi - lo) / shedBuckets
	var counts [shedBuckets]int
	bucket := func(t float64) int {
		if !(width > 0) {
			return shedBuckets - 1
		}
		return min(int((t-lo)/width), shedBuckets-1)
	}
	a.eachLastSeen(func(t float64) { counts[bucket(t)]++ })
	before, seen := math.Nextafter(hi, math.Inf(1)), 0
	for j, c := range counts[:shedBuckets-1] {
		if seen += c; seen >= excess {
			before = lo + float64(j+1)*width
			break
		}
	}
	a.shed += uint64(a.evictBefore(before))
}

// eachLastSeen calls f with the last-seen time of every stream.
func (a *AfterImage) eachLastSeen(f func(float64)) {
	a.macIP.index.each(func(_ key, i uint32) { f(a.macIP.streams.at(i).lastSeen) })
	a.jitter.index.each(func(_ key, i uint32) { f(a.jitter.streams.at(i).lastSeen) })
	a.hosts.index.each(func(_ key, i uint32) { f(a.hosts.streams.at(i).lastSeen) })
	a.sockets.index.each(func(_ key, i uint32) { f(a.sockets.streams.at(i).lastSeen) })
}

// sampleLastSeen appends to ts the last-seen times of the streams in
// every every-th slot of each slab, skipping free slots: about one stream
// in every, wherever it is. It reads those slots alone, where a pass over
// the indexes reads hundreds of megabytes at a million streams.
func (a *AfterImage) sampleLastSeen(every uint32, ts []float64) []float64 {
	sample := func(slots uint32, lastSeen func(uint32) float64) {
		for i := uint32(1); i < slots; i += every {
			if t := lastSeen(i); !math.IsNaN(t) {
				ts = append(ts, t)
			}
		}
	}
	sample(a.macIP.streams.n, func(i uint32) float64 { return a.macIP.streams.at(i).lastSeen })
	sample(a.jitter.streams.n, func(i uint32) float64 { return a.jitter.streams.at(i).lastSeen })
	sample(a.hosts.streams.n, func(i uint32) float64 { return a.hosts.streams.at(i).lastSeen })
	sample(a.sockets.streams.n, func(i uint32) float64 { return a.sockets.streams.at(i).lastSeen })
	return ts
}

// table1D holds the unlinked streams of one kind (source MAC-IP pairs or
// channel jitters): an index from key to slot and the streams in a slab.
type table1D struct {
	index   index
	streams slab[stream1D]
}

// idle appends to found the entries (key and slot) of x's streams that
// neither sent nor received since before; lastSeen gives a slot's last
// time. They come in the index's order, which follows its hash, seeded at
// random: the evictions sort the free slots they leave (sortFree).
func idle(x *index, before float64, lastSeen func(uint32) float64, found []entry) []entry {
	x.each(func(k key, slot uint32) {
		if lastSeen(slot) < before {
			found = append(found, entry{k: k, slot: slot})
		}
	})
	return found
}

func (tb *table1D) evict(before float64, buf *[]entry) int {
	gone := idle(&tb.index, before, func(i uint32) float64 { return tb.streams.at(i).lastSeen }, (*buf)[:0])
	for _, e := range gone {
		tb.index.del(e.k)
		tb.streams.at(e.slot).lastSeen = math.NaN() // free, to sampleLastSeen
		tb.streams.release(e.slot)
	}
	tb.streams.sortFree()
	*buf = gone
	return len(gone)
}

func (tb *table2D) evict(before float64, buf *[]entry) int {
	gone := idle(&tb.index, before, func(i uint32) float64 { return tb.streams.at(i).lastSeen }, (*buf)[:0])
	*buf = gone
	for _, e := range gone {
		si := e.slot
		s := tb.streams.at(si)
		for h := s.head; h != 0; {
			li, side := unhandle(h)
			l := tb.links.at(li)
			h = l.next[side]
			if other := l.other(side); other != si {
				tb.unlink(other, li, 1-side)
				tb.pairs.del(pairKey(si, other))
				tb.links.release(li)
			} else if side == 0 {
				tb.links.release(li) // a link to itself is in the list twice
			}
		}
		tb.index.del(e.k)
		tb.streams.at(si).lastSeen = math.NaN() // free, to sampleLastSeen
		tb.streams.release(si)
	}
	tb.streams.sortFree()
	return len(gone)
}

// NewAfterImage returns an AfterImage with no streams.
func NewAfterImage() *AfterImage {
	mem := &slabMemory{}
	a := &AfterImage{
		macIP:   table1D{index: newIndex(mem), streams: slab[stream1D]{mem: mem}},
		jitter:  table1D{index: newIndex(mem), streams: slab[stream1D]{mem: mem}},
		hosts:   newTable2D(mem),
		sockets: newTable2D(mem),
	}
	// The slabs' own mappings are not the garbage collector's to free.
	runtime.AddCleanup(a, (*slabMemory).release, mem)
	return a
}

// slabBytes is the memory the streams and links take in their slabs and
// the indexes take in their tables, outside the Go heap where the
// platform allows.
func (a *AfterImage) slabBytes() int {
	return a.macIP.streams.bytes() + a.jitter.streams.bytes() +
		a.hosts.streams.bytes() + a.hosts.links.bytes() + a.sockets.streams.bytes() + a.sockets.links.bytes() +
		a.macIP.index.bytes() + a.jitter.index.bytes() + a.hosts.index.bytes() + a.hosts.pairs.bytes() +
		a.sockets.index.bytes() + a.sockets.pairs.bytes()
}

// update1D folds v, at time t, into the stream keyed k. A jitter stream
// (jitter set) takes instead the time since its last packet; when that is
// longer than restart (if positive), it starts afresh (JitterRestart).
func update1D(tb *table1D, k hashed, v, t float64, jitter bool, restart float64, m *decayMemo, out []float64) {
	si := tb.index.lookup(k)
	if si == 0 {
		si = tb.streams.alloc()
		tb.streams.at(si).register(t)
		tb.index.insert(k, si)
	}
	s := tb.streams.at(si)
	s.lastSeen = t
	if jitter {
		// The value is the time since the stream's last packet, taken
		// before decaying (AfterImage's isTypeDiff).
		v = 0
		if dt := t - s.last; dt > 0 {
			v = dt
		}
		if restart > 0 && v > restart {
			s.register(t)
			v = 0
		}
	}
	decayAll(&s.windows, t, m)
	for i := range NumLambdas {
		st := &s.s[i]
		st.add(v)
		out[3*i], out[3*i+1], out[3*i+2] = st.stats1D()
	}
}

// Update folds p into the statistics and writes its NumFeatures features to
// out, which must hold at least NumFeatures values.
func (a *AfterImage) Update(p *Packet, out []float64) {
	k := a.keysOf(p)
	a.update(p, &k, out)
}

// update is Update with p's keys at hand (keysOf).
func (a *AfterImage) update(p *Packet, k *keys, out []float64) {
	t, v := p.Time, float64(p.Length)
	// Sweeps go by the earlier of this packet's time and the last one's:
	// one packet stamped far ahead (see rewound) must not make every
	// stream look idle and evict them all. A real leap forward waits one
	// packet.
	if now := min(t, a.lastTime); now-a.lastSweep >= EvictInterval || now < a.lastSweep {
		a.Evict(now)
		a.lastSweep = now
	}
	a.lastTime = t
	if a.Streams() >= a.maxStreams() {
		a.shedOldest()
	}
	m := &a.memo
	m.n = 0 // Δt rarely repeats from one packet to the next: lookups stay short
	update1D(&a.macIP, k.macIP, v, t, false, 0, m, out[offsetMACIP:])
	si, di := a.hosts.update(k.src, k.dst, v, t, !a.OwnLinkOnly, m, out[offsetChannel:])
	// A channel is keyed by its hosts' slots: both were just seen.
	update1D(&a.jitter, a.jitter.index.hashed(key{a: uint64(si)<<32 | uint64(di)}), 0, t, true, a.JitterRestart, m, out[offsetJitter:])
	a.sockets.update(k.srcSocket, k.dstSocket, v, t, !a.OwnLinkOnly, m, out[offsetSocket:])
	// The slabs' memory goes with a (its cleanup): a must outlive every
	// pointer into them above, even where the caller holds it no longer.
	runtime.KeepAlive(a)
}

// keys are the keys of a packet's streams, hashed in their indexes, but
// its channel's (keyed by its hosts' slots).
type keys struct {
	macIP, src, dst, srcSocket, dstSocket hashed
}

func (a *AfterImage) keysOf(p *Packet) keys {
	var srcSocket, dstSocket key
	switch p.Ports {
	case PortARP:
		// Kitsune keys ARP sockets by MAC address alone.
		sm, dm := hostMAC(p.SrcMAC), hostMAC(p.DstMAC)
		srcSocket, dstSocket = hostKey(&sm, 0), hostKey(&dm, 0)
	case PortNumber:
		srcSocket, dstSocket = hostKey(&p.Src, uint64(PortNumber)|uint64(p.SrcPort)<<8), hostKey(&p.Dst, uint64(PortNumber)|uint64(p.DstPort)<<8)
	default:
		srcSocket, dstSocket = hostKey(&p.Src, uint64(p.Ports)), hostKey(&p.Dst, uint64(p.Ports))
	}
	return keys{
		macIP:     a.macIP.index.hashed(hostKey(&p.Src, macBits(p.SrcMAC))),
		src:       a.hosts.index.hashed(hostKey(&p.Src, 0)),
		dst:       a.hosts.index.hashed(hostKey(&p.Dst, 0)),
		srcSocket: a.sockets.index.hashed(srcSocket),
		dstSocket: a.sockets.index.hashed(dstSocket),
	}
}

// prefetch asks the processor to start fetching the index entries where
// the lookups of a packet's streams (k) start, without waiting for them.
// The streams of a busy network are spread over megabytes, so each lookup
// would otherwise wait for memory in turn; done a packet or two ahead of
// update, the fetches overlap with the work on the packets before. It
// changes nothing. (Fetching the streams those entries lead to as well,
// one packet ahead, cost more than it saved.)
func (a *AfterImage) prefetch(k *keys) {
	addrs := [5]uintptr{a.macIP.index.home(k.macIP), a.hosts.index.home(k.src), a.hosts.index.home(k.dst),
		a.sockets.index.home(k.srcSocket), a.sockets.index.home(k.dstSocket)}
	prefetch(addrs[:])
}
