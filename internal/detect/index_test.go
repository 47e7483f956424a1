package detect

import (
	"math/rand/v2"
	"testing"
)

// TestIndexFollowsAMap puts, finds and deletes random keys, many of them
// colliding in the table's low bits, and checks the index against a Go
// map after every step, through growth from the heap into the slab memory
// and through deletions that shift entries back.
func TestIndexFollowsAMap(t *testing.T) {
	mem := &slabMemory{}
	defer mem.release()
	x := newIndex(mem)
	want := map[key]uint32{}
	rng := rand.New(rand.NewPCG(1, 2))
	randomKey := func() key {
		// Few distinct values per word, so that keys repeat and differ
		// in one word only.
		return key{a: rng.Uint64N(4000), b: rng.Uint64N(3), c: rng.Uint64N(2)}
	}
	next := uint32(1)
	for step := range 200000 {
		k := randomKey()
		switch got, ok := x.get(k), want[k]; {
		case got != ok:
			t.Fatalf("step %d: get(%v) = %d, want %d", step, k, got, ok)
		case ok == 0 && step < 120000:
			x.put(k, next)
			want[k] = next
			next++
		case ok != 0 && rng.IntN(3) > 0:
			x.del(k)
			delete(want, k)
		}
		if x.len() != len(want) {
			t.Fatalf("step %d: %d keys, want %d", step, x.len(), len(want))
		}
	}
	seen := 0
	x.each(func(k key, slot uint32) {
		seen++
		if want[k] != slot {
			t.Errorf("each gave %v = %d, want %d", k, slot, want[k])
		}
	})
	if seen != len(want) || !x.mapped {
		t.Errorf("each gave %d keys of %d; table in slab memory: %v", seen, len(want), x.mapped)
	}
	x.del(key{a: 1 << 40}) // absent: nothing happens
	if x.len() != len(want) {
		t.Errorf("deleting an absent key changed the count")
	}
}

// TestJitterStreamsGoWithTheirHosts checks what keying channels by their
// hosts' slots relies on: when hosts are evicted and their slots reused by
// new hosts, the new hosts' channel starts afresh rather than inheriting
// the old channel's jitter statistics.
func TestJitterStreamsGoWithTheirHosts(t *testing.T) {
	ai := NewAfterImage()
	out := make([]float64, NumFeatures)
	send := telnetSender(ai, out)
	for at := 0.0; at < 10; at++ {
		send(at, 1, 2)
	}
	slowest := offsetJitter + 3*(NumLambdas-1) // the weight of the longest window
	if w := out[slowest]; w < 5 {
		t.Fatalf("jitter weight %v after ten packets", w)
	}
	later := 10 + DefaultIdleTimeout + 1
	if n := ai.Evict(later); n != 6 {
		t.Fatalf("evicted %d streams, want 6", n)
	}
	// New hosts in the old ones' slots, in either order.
	send(later, 3, 4)
	if w := out[slowest]; w != 1 {
		t.Errorf("a new channel's jitter weight is %v, want 1", w)
	}
	send(later+1, 4, 3)
	if w := out[slowest]; w != 1 {
		t.Errorf("the reverse channel's jitter weight is %v, want 1", w)
	}
}
