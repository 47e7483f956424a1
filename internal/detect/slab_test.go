package detect

import (
	"runtime"
	"testing"
)

func TestSlabKeepsElementsInPlaceAndReusesReleasedSlots(t *testing.T) {
	type elem struct {
		id  uint32
		pad [37]float64 // 300 bytes: segments from 64 KiB come from the slab memory
	}
	mem := &slabMemory{}
	defer mem.release()
	s := slab[elem]{mem: mem}
	const n = 100_000
	ptrs := make([]*elem, n+1)
	for want := uint32(1); want <= n; want++ {
		i := s.alloc()
		if i != want {
			t.Fatalf("alloc returned %d, want %d", i, want)
		}
		e := s.at(i)
		if e.id != 0 || e.pad[36] != 0 {
			t.Fatalf("slot %d is not zeroed", i)
		}
		e.id, e.pad[36] = i, float64(i)
		ptrs[i] = e
	}
	for i := uint32(1); i <= n; i++ {
		if e := s.at(i); e != ptrs[i] || e.id != i || e.pad[36] != float64(i) {
			t.Fatalf("slot %d moved or changed: %+v", i, e.id)
		}
	}
	for i := uint32(10); i <= n; i += 10 {
		s.release(i)
	}
	if s.live != n-n/10 {
		t.Errorf("%d live after releasing a tenth, want %d", s.live, n-n/10)
	}
	seen := map[uint32]bool{}
	for range n / 10 {
		i := s.alloc()
		if i%10 != 0 || seen[i] {
			t.Fatalf("alloc after release returned %d, not a released slot", i)
		}
		seen[i] = true
		if e := s.at(i); e.id != 0 || e.pad[36] != 0 {
			t.Fatalf("reused slot %d is not zeroed", i)
		}
	}
	if i := s.alloc(); i != n+1 {
		t.Errorf("alloc with no released slot returned %d, want %d", i, n+1)
	}
	if runtime.GOOS == "linux" && mem.used == 0 {
		t.Error("no segment came from the slab memory")
	}
	if got, min := s.bytes(), (n+1)*300; got < min {
		t.Errorf("bytes() = %d, less than the %d the elements need", got, min)
	}
}

// TestLinkListsKeepTheirOrderThroughEviction follows the sockets' lists of
// links: a link to itself (made when a stream with no links sends to
// itself) sits in its list twice, and evicting a partner takes its link
// out of the list without reordering the rest (the first link is what
// Kitsune's register_cov finds for a stream sending to itself).
func TestLinkListsKeepTheirOrderThroughEviction(t *testing.T) {
	tb := newTable2D(&slabMemory{})
	out := make([]float64, 7*NumLambdas)
	send := func(src, dst int, at float64) {
		tb.update(tb.index.hashed(key{a: uint64(src)}), tb.index.hashed(key{a: uint64(dst)}), 100, at, true, &decayMemo{}, out)
	}
	send(0, 0, 1)
	send(0, 1, 2)
	send(0, 2, 3)
	send(0, 0, 4) // the first link again, not a new one
	send(0, 3, 5)
	list := func(k int) []int { // the partners of k's links, in order
		var got []int
		si := tb.index.get(key{a: uint64(k)})
		for h := tb.streams.at(si).head; h != 0; {
			li, side := unhandle(h)
			l := tb.links.at(li)
			tb.index.each(func(pk key, pi uint32) {
				if pi == l.other(side) {
					got = append(got, int(pk.a))
				}
			})
			h = l.next[side]
		}
		return got
	}
	check := func(k int, want ...int) {
		t.Helper()
		got := list(k)
		if len(got) != len(want) {
			t.Fatalf("stream %d links to %v, want %v", k, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("stream %d links to %v, want %v", k, got, want)
			}
		}
	}
	check(0, 0, 0, 1, 2, 3)
	check(2, 0)
	// Stream 2 goes idle; the others keep talking.
	for at := 10.0; at < 20; at++ {
		send(0, 1, at)
		send(3, 0, at)
	}
	if n := tb.evict(10, new([]entry)); n != 1 {
		t.Fatalf("evicted %d streams, want 1", n)
	}
	check(0, 0, 0, 1, 3)
	check(3, 0)
	if tb.pairs.len() != 2 || tb.links.live != 3 {
		t.Errorf("%d pairs indexed and %d links live, want 2 and 3", tb.pairs.len(), tb.links.live)
	}
	// Stream 0 goes: every link goes with it, its own once.
	for at := 30.0; at < 40; at++ {
		send(1, 3, at)
	}
	tb.evict(30, new([]entry))
	check(1, 3)
	check(3, 1)
	if tb.pairs.len() != 1 || tb.links.live != 1 || tb.index.len() != 2 {
		t.Errorf("%d pairs, %d links, %d streams left, want 1, 1 and 2", tb.pairs.len(), tb.links.live, tb.index.len())
	}
}
