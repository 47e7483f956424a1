package detect

import (
	"math/bits"
	"os"
	"slices"
	"unsafe"
)

// A slab holds AfterImage's streams or links of one kind, addressed by a
// uint32 index (0 is never handed out: it means none). Elements never
// move, so a pointer from at stays valid until the slot is released.
//
// T must hold no Go pointers: the slab's memory is outside the Go heap
// where the platform allows (segments of 64 KiB and more come from the
// AfterImage's slabMemory, a reservation advised to use transparent huge
// pages), so the garbage collector neither scans millions of streams nor
// knows of them. That also takes one page fault per 2 MiB of new streams
// instead of one per 4 KiB; on a virtual machine a fault costs
// microseconds, and a capture that meets thousands of new sockets a second
// would otherwise spend much of its time in them.
//
// Segment k holds slabBase<<k elements, so a slab of a few streams stays
// small and a large one needs few segments.
type slab[T any] struct {
	segs [32][]T
	n    uint32   // slots handed out so far, slot 0 included
	free []uint32 // released slots, reused first
	live int
	// mem keeps the segments mapped on their own; without it (nil) every
	// segment is on the Go heap.
	mem *slabMemory
}

// slabShift is log2 of the first segment's length.
const slabShift = 6

const slabBase = 1 << slabShift

// slabMemory is where an AfterImage's slabs put their segments: one
// reservation of address space, backed by memory only where touched, in
// transparent huge pages where the kernel allows, and handed out in order
// so that the segments of all the slabs share those pages. It is released
// when the AfterImage is collected. Where the platform offers no such
// reservation (or it runs out) segments come from the Go heap.
type slabMemory struct {
	region []byte // the reservation, nil before the first segment
	used   int
	failed bool // the reservation could not be made
}

// slabReserve is the address space one AfterImage reserves: room for
// some 50 million streams, of which only what is touched costs memory.
const slabReserve = 16 << 30

// hugePage is the size of a transparent huge page on x86-64 and of the
// usual one on arm64.
const hugePage = 2 << 20

// take returns size bytes of zeroed memory from the reservation, or nil.
func (m *slabMemory) take(size int) unsafe.Pointer {
	if m.region == nil && !m.failed {
		m.region = reserve(slabReserve)
		m.failed = m.region == nil
	}
	size = (size + 63) &^ 63
	if m.region == nil || size > len(m.region)-m.used {
		return nil
	}
	p := unsafe.Pointer(&m.region[m.used])
	m.used += size
	return p
}

// discard gives back the memory of size bytes at p, taken before and no
// longer used (an index's outgrown table). The reservation is not handed
// out again, so those addresses stay unused.
//
// Only whole huge pages go; the parts at either end stay, as do tables
// smaller than a huge page. Giving back part of a huge page makes the
// kernel split it into small ones, in a system call that on the splice
// cost more than a sixth of the single-core time; what stays is less
// than two huge pages a table, and the tables an index outgrew before
// its first huge page sum to less than one.
func (m *slabMemory) discard(p unsafe.Pointer, size int) {
	page := uintptr(max(hugePage, os.Getpagesize()))
	start := (uintptr(p) + page - 1) &^ (page - 1)
	end := (uintptr(p) + uintptr(size)) &^ (page - 1)
	if end > start {
		discardPages(unsafe.Slice((*byte)(unsafe.Add(p, start-uintptr(p))), end-start))
	}
}

// release unmaps the reservation; the slabs that used it must not be used
// again.
func (m *slabMemory) release() {
	if m.region != nil {
		unmap(m.region)
		m.region = nil
	}
}

func (s *slab[T]) at(i uint32) *T {
	j := uint(i) + slabBase
	k := bits.Len(j) - 1 - slabShift
	return &s.segs[k][j-slabBase<<k]
}

// alloc returns the index of a zeroed slot.
func (s *slab[T]) alloc() uint32 {
	s.live++
	if n := len(s.free); n > 0 {
		i := s.free[n-1]
		s.free = s.free[:n-1]
		*s.at(i) = *new(T)
		return i
	}
	if s.n == 0 {
		s.n = 1 // slot 0 means none
	}
	i := s.n
	j := uint(i) + slabBase
	if k := bits.Len(j) - 1 - slabShift; s.segs[k] == nil {
		s.segs[k] = s.segment(slabBase << k)
	}
	s.n++
	return i
}

// release returns slot i for reuse.
func (s *slab[T]) release(i uint32) {
	s.live--
	s.free = append(s.free, i)
}

// sortFree puts the free slots in order. Slots are freed in the order
// of an index's random hash, and handed out again from the free list: in
// order, the same packets get the same slots on every run (AfterImage's
// sampleLastSeen samples by slot).
func (s *slab[T]) sortFree() { slices.Sort(s.free) }

// bytes is the memory of the slots handed out so far, live or free: what
// the slab has touched. Its segments reserve address space beyond that,
// which costs memory only once used.
func (s *slab[T]) bytes() int {
	var zero T
	return int(s.n) * int(unsafe.Sizeof(zero))
}

// slabMapMin is the smallest segment taken from the slab memory; smaller
// ones come from the Go heap, so that an AfterImage of a few streams (a
// short capture, a fuzz input) reserves nothing.
const slabMapMin = 64 << 10

// segment returns n zeroed elements, from the slab memory if it has room.
func (s *slab[T]) segment(n int) []T {
	seg, _ := takeSlice[T](s.mem, n, slabMapMin)
	return seg
}

// takeSlice returns n zeroed elements, from m (which may be nil) when they
// take at least min bytes and m has room, else from the Go heap, and
// reports whether they are in m.
func takeSlice[T any](m *slabMemory, n, min int) ([]T, bool) {
	var zero T
	if size := n * int(unsafe.Sizeof(zero)); m != nil && size >= min {
		if p := m.take(size); p != nil {
			return unsafe.Slice((*T)(p), n), true
		}
	}
	return make([]T, n), false
}
