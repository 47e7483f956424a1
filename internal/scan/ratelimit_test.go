package scan

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestFollowUpConnectionsCountAgainstTheRate scans silent services that
// close every connection at once, so each open port is asked again in
// three protocols (tls-http, http, mqtt): four connections a port. It
// counts the connections the listeners accept in every one-second window.
func TestFollowUpConnectionsCountAgainstTheRate(t *testing.T) {
	const rate = 40
	var (
		mu       sync.Mutex
		accepted []time.Time
		ports    []int
	)
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				accepted = append(accepted, time.Now())
				mu.Unlock()
				c.Close()
			}
		}()
	}
	if _, err := Scan(context.Background(), []netip.Addr{loopback}, Options{Ports: ports, Rate: rate}); err != nil {
		t.Fatalf("Scan: %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	slices.SortFunc(accepted, func(a, b time.Time) int { return a.Compare(b) })
	if len(accepted) < 3*len(ports) {
		t.Fatalf("%d connections accepted, want discovery and follow-ups (about %d)", len(accepted), 4*len(ports))
	}
	busiest := 0
	for i, start := range accepted {
		n := 0
		for _, at := range accepted[i:] {
			if at.Sub(start) >= time.Second {
				break
			}
			n++
		}
		busiest = max(busiest, n)
	}
	// The pacer allows rate+1 starts in a second; scheduling may bunch a
	// few accepts, so the bound is generous. Unpaced follow-ups would put
	// nearly all 80 connections in the first second.
	if busiest > rate*3/2 {
		t.Errorf("%d connections in the busiest second at --rate %d (%d in all)", busiest, rate, len(accepted))
	}
	t.Logf("%d connections, at most %d in one second, at --rate %d", len(accepted), busiest, rate)
}

func TestPacerSpacesStartsEvenlyAcrossGoroutines(t *testing.T) {
	p := newPacer(100)
	start := time.Now()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 5 {
				_ = p.Wait(context.Background())
			}
		})
	}
	wg.Wait()
	// 20 starts at 100 a second: the last is 19 × 10 ms after the first.
	if d := time.Since(start); d < 180*time.Millisecond {
		t.Errorf("20 starts at 100/s across 4 goroutines took %s, want at least 190ms", d)
	}
	if p.started != 20 {
		t.Errorf("started = %d, want 20", p.started)
	}
}

func TestPacerStopsWaitingWhenCancelled(t *testing.T) {
	p := newPacer(1)
	_ = p.Wait(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := p.Wait(ctx); err == nil {
		t.Error("Wait returned nil after the context ended")
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("Wait took %s after cancellation", d)
	}
}
