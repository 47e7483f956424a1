package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// TestStartHeapLastsUntilTheFirstCollection checks that the raised GOGC
// of a batch run's start is put back by the first collection.
func TestStartHeapLastsUntilTheFirstCollection(t *testing.T) {
	if _, set := os.LookupEnv("GOGC"); set {
		t.Skip("GOGC is set: startHeap leaves it alone")
	}
	before := gcPercent()
	defer debug.SetGCPercent(before)
	startHeap(64 << 20)
	if got := gcPercent(); got != 1600 {
		t.Fatalf("GOGC %d after startHeap(64 MiB), want 1600", got)
	}
	runtime.GC()
	deadline := time.Now().Add(5 * time.Second)
	for gcPercent() != before {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC still %d after a collection, want %d back", gcPercent(), before)
		}
		time.Sleep(time.Millisecond)
	}
}
