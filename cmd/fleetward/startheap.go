package main

import (
	"os"
	"runtime"
	"runtime/debug"
)

// startHeap lets a batch job's heap grow to about goal bytes before the
// first garbage collection, as the Go compiler does for its own start
// (cmd/compile's AdjustStartingHeap). The runtime collects first at 4 MiB,
// and every collection scans the 5 MiB of gopacket's decoding tables
// whatever else the heap holds: for a capture of a few megabytes that one
// collection was a twentieth of the run. The first collection puts the
// usual setting back, so a long capture's heap grows as it always did.
// It does nothing when GOGC is set in the environment.
func startHeap(goal uint64) {
	if _, set := os.LookupEnv("GOGC"); set {
		return
	}
	const runtimeStart = 4 << 20 // the heap of the first collection at GOGC=100
	old := debug.SetGCPercent(int(100 * goal / runtimeStart))
	// Collected in the first collection, after which its cleanup runs.
	sentinel := &struct {
		_ [4]uint64
		p *int
	}{}
	runtime.AddCleanup(sentinel, func(percent int) { debug.SetGCPercent(percent) }, old)
}
