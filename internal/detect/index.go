package detect

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"unsafe"
)

// key is what an index finds a stream or a link by: three words that hold
// a host's address and kind and whatever else tells its streams apart (see
// hostKey), or a pair of slab slots.
type key struct{ a, b, c uint64 }

// hostKey is h's key, with extra (up to 56 bits: a MAC address, a port
// and its kind) beside its kind.
func hostKey(h *Host, extra uint64) key {
	return key{
		a: binary.LittleEndian.Uint64(h.Addr[:8]),
		b: binary.LittleEndian.Uint64(h.Addr[8:]),
		c: uint64(h.Kind) | extra<<8,
	}
}

// macBits is a MAC address as the low 48 bits of a word.
func macBits(m [6]byte) uint64 {
	return uint64(m[0]) | uint64(m[1])<<8 | uint64(m[2])<<16 | uint64(m[3])<<24 | uint64(m[4])<<32 | uint64(m[5])<<40
}

// An index maps keys to slab slots (never 0): open addressing with linear
// probing in a table of a power of two entries, at most half full, so that
// a lookup, found or not, reads one or two entries on average. Deleting
// shifts the entries after it back (no tombstones), so lookups stay short
// however many streams come and go.
//
// It replaces Go maps for AfterImage's streams and links: a Go map hashes
// a 20-byte key through a call per lookup, and grows in fresh heap memory,
// touched 4 KiB page by page; on a virtual machine each page fault costs
// microseconds. Tables of 8 KiB and more come from the AfterImage's slab
// memory, in huge pages where the kernel allows, and the pages of a table
// outgrown there go back to the kernel.
//
// The hash is seeded at random per index, so that traffic crafted to
// collide in one sensor's tables does not collide in another's (keys are
// addresses and ports an attacker chooses).
type index struct {
	e    []entry
	n    int
	seed [3]uint64
	mem  *slabMemory
	// mapped is set when e is in the slab memory.
	mapped bool
}

// entry is one place in an index's table: slot 0 marks it empty; h is the
// low 32 bits of the key's hash, which place it (tables stay below 2^32
// entries) and tell most other keys apart without comparing them.
type entry struct {
	k    key
	slot uint32
	h    uint32
}

// indexMin is the smallest table: 64 entries, 2 KiB.
const indexMin = 64

// indexMapMin is the smallest table taken from the slab memory: an index
// grows through every size, and on the Go heap each new table is touched
// page by page.
const indexMapMin = 8 << 10

func newIndex(mem *slabMemory) index {
	return index{mem: mem, seed: [3]uint64{rand.Uint64(), rand.Uint64(), rand.Uint64()}}
}

// mix is the folded 128-bit product of a and b (wyhash's mum).
func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

func (x *index) hash(k key) uint64 {
	return mix(mix(k.a^x.seed[0], k.b^x.seed[1])^k.c, x.seed[2]|1)
}

// hashed is a key with its hash in one index, so that a key looked up
// twice (prefetched, then found) is hashed once.
type hashed struct {
	k key
	h uint64
}

func (x *index) hashed(k key) hashed { return hashed{k, x.hash(k)} }

// get returns k's slot, or 0 when k is not in the index.
func (x *index) get(k key) uint32 { return x.lookup(x.hashed(k)) }

// lookup is get with the key hashed in this index.
func (x *index) lookup(k hashed) uint32 {
	if x.n == 0 {
		return 0
	}
	m := uint64(len(x.e) - 1)
	for i := k.h & m; ; i = (i + 1) & m {
		e := &x.e[i]
		if e.slot == 0 {
			return 0
		}
		if e.h == uint32(k.h) && e.k == k.k {
			return e.slot
		}
	}
}

// home returns the address of the entry where a lookup of k starts, or 0
// for an empty index: a place to prefetch.
func (x *index) home(k hashed) uintptr {
	if len(x.e) == 0 {
		return 0
	}
	return uintptr(unsafe.Pointer(&x.e[k.h&uint64(len(x.e)-1)]))
}

// put adds k with its slot; k must not be in the index.
func (x *index) put(k key, slot uint32) { x.insert(x.hashed(k), slot) }

// insert is put with the key hashed in this index.
func (x *index) insert(k hashed, slot uint32) {
	if 2*(x.n+1) > len(x.e) {
		x.grow()
	}
	x.n++
	x.place(entry{k: k.k, slot: slot, h: uint32(k.h)})
}

// place puts e in the first empty entry from its own.
func (x *index) place(e entry) {
	m := uint32(len(x.e) - 1)
	i := e.h & m
	for x.e[i].slot != 0 {
		i = (i + 1) & m
	}
	x.e[i] = e
}

// grow doubles the table and places every entry again.
func (x *index) grow() {
	old, oldMapped := x.e, x.mapped
	x.e, x.mapped = takeSlice[entry](x.mem, max(indexMin, 2*len(old)), indexMapMin)
	for _, e := range old {
		if e.slot != 0 {
			x.place(e)
		}
	}
	if oldMapped {
		x.mem.discard(unsafe.Pointer(&old[0]), len(old)*int(unsafe.Sizeof(entry{})))
	}
}

// del removes k, if present, and moves the entries after it that probed
// past its place back, so that every entry stays reachable from its own
// place without gaps.
func (x *index) del(k key) {
	if x.n == 0 {
		return
	}
	h := x.hash(k)
	m := uint32(len(x.e) - 1)
	i := uint32(h) & m
	for {
		e := &x.e[i]
		if e.slot == 0 {
			return
		}
		if e.h == uint32(h) && e.k == k {
			break
		}
		i = (i + 1) & m
	}
	x.n--
	for j := (i + 1) & m; x.e[j].slot != 0; j = (j + 1) & m {
		// The entry at j may move to the hole at i unless its own place
		// lies cyclically in (i, j].
		if own := x.e[j].h & m; (j-own)&m >= (j-i)&m {
			x.e[i] = x.e[j]
			i = j
		}
	}
	x.e[i] = entry{}
}

// len returns the number of keys in the index.
func (x *index) len() int { return x.n }

// each calls f with every key and slot; f must not change the index.
func (x *index) each(f func(k key, slot uint32)) {
	for _, e := range x.e {
		if e.slot != 0 {
			f(e.k, e.slot)
		}
	}
}

// bytes is the memory of the table.
func (x *index) bytes() int { return len(x.e) * int(unsafe.Sizeof(entry{})) }
