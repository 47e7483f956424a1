package detect

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// reserve maps size bytes of address space, backed by zeroed memory only
// where touched (MAP_NORESERVE: nothing is committed up front), and
// advises the kernel to use transparent huge pages for it; nil if the
// mapping fails.
func reserve(size int) []byte {
	p, err := unix.MmapPtr(-1, 0, nil, uintptr(size), unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_ANON|unix.MAP_PRIVATE|unix.MAP_NORESERVE)
	if err != nil {
		return nil
	}
	b := unsafe.Slice((*byte)(p), size)
	_ = unix.Madvise(b, unix.MADV_HUGEPAGE) // advice only: without it, small pages
	return b
}

func unmap(b []byte) { _ = unix.MunmapPtr(unsafe.Pointer(unsafe.SliceData(b)), uintptr(len(b))) }

// discardPages gives the pages of b back to the kernel; the address space
// stays reserved, and reads as zeros if touched again.
func discardPages(b []byte) { _ = unix.Madvise(b, unix.MADV_DONTNEED) }
