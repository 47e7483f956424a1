package flow

import (
	"container/heap"
	"time"
)

// A Reorderer gives connections back in order of their start, from a
// log that Zeek writes as connections end, while holding only a bounded
// part of it: a connection is given back once a connection starting more
// than Window later has been read, or when more than MaxHeld are held.
// One read after an earlier one was given back comes out at once, out of
// order (Late counts them): a connection longer than Window, most likely.
// Sorting a whole log held it all: a 128 MB conn.log took 1.28 GB.
type Reorderer struct {
	// Window is how far behind the latest start a connection is held;
	// zero means DefaultReorderWindow.
	Window time.Duration
	// MaxHeld bounds the connections held; zero means DefaultMaxHeld.
	MaxHeld int
	// Late counts the connections given back out of order.
	Late int

	held   connHeap
	seq    uint64
	latest time.Time // the latest start read
	out    time.Time // the latest start given back
}

// DefaultReorderWindow and DefaultMaxHeld bound a Reorderer by default:
// Zeek's default inactivity timeouts are an hour at most, and a quarter of
// a million connections take about 100 MB.
const (
	DefaultReorderWindow = time.Hour
	DefaultMaxHeld       = 1 << 18
)

// Push adds c and calls emit with every connection now due, in order.
func (o *Reorderer) Push(c Conn, emit func(Conn)) {
	if !o.out.IsZero() && c.Time.Before(o.out) {
		o.Late++
		emit(c)
		return
	}
	heap.Push(&o.held, heldConn{c, o.seq})
	o.seq++
	if c.Time.After(o.latest) {
		o.latest = c.Time
	}
	window, most := o.Window, o.MaxHeld
	if window <= 0 {
		window = DefaultReorderWindow
	}
	if most <= 0 {
		most = DefaultMaxHeld
	}
	for len(o.held) > 0 && (len(o.held) > most || o.latest.Sub(o.held[0].c.Time) > window) {
		o.pop(emit)
	}
}

// Flush gives back every connection held, in order.
func (o *Reorderer) Flush(emit func(Conn)) {
	for len(o.held) > 0 {
		o.pop(emit)
	}
}

func (o *Reorderer) pop(emit func(Conn)) {
	c := heap.Pop(&o.held).(heldConn).c
	if c.Time.After(o.out) {
		o.out = c.Time
	}
	emit(c)
}

// heldConn is a held connection with the order it was read in, which
// breaks ties of start time (a stable order, as sorting gave).
type heldConn struct {
	c   Conn
	seq uint64
}

type connHeap []heldConn

func (h connHeap) Len() int { return len(h) }
func (h connHeap) Less(i, j int) bool {
	if c := h[i].c.Time.Compare(h[j].c.Time); c != 0 {
		return c < 0
	}
	return h[i].seq < h[j].seq
}
func (h connHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *connHeap) Push(x any)   { *h = append(*h, x.(heldConn)) }
func (h *connHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
