package flow

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// Connections written as they end come back in order of their start,
// with ties in the order read; one that started longer than the window
// before those already given back comes out at once, counted late; and
// no more than MaxHeld are ever held.
func TestReordererGivesConnectionsBackByStart(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Unix(1540000000, 0)
	var in []Conn
	for i := range 20000 {
		start := t0.Add(time.Duration(i) * 100 * time.Millisecond)
		in = append(in, Conn{Time: start, OrigP: i, Duration: float64(rng.IntN(600))}) // up to 10 min long
	}
	// Zeek writes each when it ends.
	written := slices.Clone(in)
	end := func(c Conn) time.Time { return c.Time.Add(time.Duration(c.Duration * float64(time.Second))) }
	slices.SortStableFunc(written, func(a, b Conn) int { return end(a).Compare(end(b)) })
	var got []Conn
	o := Reorderer{Window: 15 * time.Minute}
	for _, c := range written {
		o.Push(c, func(c Conn) { got = append(got, c) })
		if len(o.held) > DefaultMaxHeld {
			t.Fatalf("%d held", len(o.held))
		}
	}
	o.Flush(func(c Conn) { got = append(got, c) })
	if len(got) != len(in) || o.Late != 0 {
		t.Fatalf("%d back of %d, %d late", len(got), len(in), o.Late)
	}
	for i := range got {
		if got[i].OrigP != in[i].OrigP {
			t.Fatalf("connection %d back is the one started %d-th", i, got[i].OrigP)
		}
	}

	// A window of 1 min is shorter than many of the connections: those
	// come back late, and the held never exceed MaxHeld.
	small := Reorderer{Window: time.Minute, MaxHeld: 100}
	n := 0
	for _, c := range written {
		small.Push(c, func(Conn) { n++ })
		if len(small.held) > 100 {
			t.Fatalf("%d held, MaxHeld 100", len(small.held))
		}
	}
	small.Flush(func(Conn) { n++ })
	if n != len(in) || small.Late == 0 {
		t.Errorf("%d back of %d, %d late; want all, some late", n, len(in), small.Late)
	}
}
