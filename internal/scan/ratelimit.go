package scan

import (
	"context"
	"sync"
	"time"
)

// pacer spaces the packets a scan starts (TCP connection attempts, the
// follow-up connections that identify a service, every UDP datagram) so
// that no more than Options.Rate start in any second. One pacer is shared
// by every worker of a scan: --rate bounds the scan, not a worker.
type pacer struct {
	interval time.Duration
	mu       sync.Mutex
	next     time.Time // the earliest start of the next packet
	started  uint64    // packets paced so far, for tests and reports
}

func newPacer(rate float64) *pacer {
	return &pacer{interval: time.Duration(float64(time.Second) / rate)}
}

// Wait reserves the next free slot and sleeps until it comes. It returns
// the context's error if the scan is cancelled first.
func (p *pacer) Wait(ctx context.Context) error {
	p.mu.Lock()
	now := time.Now()
	slot := p.next
	if slot.Before(now) {
		slot = now
	}
	p.next = slot.Add(p.interval)
	p.started++
	p.mu.Unlock()
	d := time.Until(slot)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
