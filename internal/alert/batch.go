package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"github.com/fleetward/fleetward/internal/apperr"
)

// Defaults of a SignalBatcher.
const (
	DefaultBatchSize  = 200
	DefaultBatchDelay = 2 * time.Second
)

// SignalBatcher collects a sensor's signals and hands them to Send in
// batches: a batch goes when it holds Size signals or, for a live sensor,
// when its first signal is Delay old. A live sensor also calls Flush on a
// timer (FlushEvery), so that a quiet network does not hold a signal back.
// Both the host sensor (detect --server) and the agent's edge sensor use
// it. It is safe for concurrent use.
type SignalBatcher struct {
	// Send delivers one batch; it must not keep the slice. An error
	// keeps the batch for the next attempt.
	Send func(context.Context, []Signal) error
	// Size and Delay default to DefaultBatchSize and DefaultBatchDelay.
	Size  int
	Delay time.Duration

	mu      sync.Mutex
	batch   []Signal
	started time.Time
	sent    int
}

// Add queues sig; with wait it sends only full batches (replaying a file),
// otherwise also batches older than Delay (a live sensor).
func (b *SignalBatcher) Add(ctx context.Context, sig Signal, wait bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.batch) == 0 {
		b.started = time.Now()
	}
	b.batch = append(b.batch, sig)
	if len(b.batch) >= b.size() || (!wait && time.Since(b.started) >= b.delay()) {
		return b.flushLocked(ctx)
	}
	return nil
}

// Flush sends what is queued.
func (b *SignalBatcher) Flush(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flushLocked(ctx)
}

// FlushEvery flushes every Delay until ctx ends or stop is called, passing
// errors to onErr (which may be nil). It returns at once.
func (b *SignalBatcher) FlushEvery(ctx context.Context, onErr func(error)) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(b.delay())
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if err := b.Flush(ctx); err != nil && onErr != nil {
					onErr(err)
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

// Sent returns how many signals Send has accepted.
func (b *SignalBatcher) Sent() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sent
}

func (b *SignalBatcher) flushLocked(ctx context.Context) error {
	if len(b.batch) == 0 {
		return nil
	}
	if err := b.Send(ctx, b.batch); err != nil {
		return err
	}
	b.sent += len(b.batch)
	b.batch = b.batch[:0]
	return nil
}

func (b *SignalBatcher) size() int {
	if b.Size > 0 {
		return b.Size
	}
	return DefaultBatchSize
}

func (b *SignalBatcher) delay() time.Duration {
	if b.Delay > 0 {
		return b.Delay
	}
	return DefaultBatchDelay
}

// SignalReport is a batch of signals as a sensor sends it: the body of
// POST /api/v1/signals and the payload an agent's edge sensor publishes on
// devices/{id}/signals.
type SignalReport struct {
	Signals []Signal `json:"signals"`
}

// Bounds of one SignalReport.
const (
	MaxReportSignals = 1000
	MaxReportBytes   = 256 << 10
)

// ParseSignalReport decodes a SignalReport published by a device and
// validates each signal. It returns the valid signals, and for each bad one
// an Invalid error naming its index and field ("signals[3].severity"), so
// that one bad signal does not cost the good ones. It returns TooLarge for
// a payload over MaxReportBytes and Invalid for one that is not a JSON
// object with 1 to MaxReportSignals signals.
func ParseSignalReport(payload []byte) (valid []Signal, bad []error, err error) {
	if len(payload) > MaxReportBytes {
		return nil, nil, apperr.Errorf(apperr.TooLarge, "signal report of %d bytes is larger than %d", len(payload), MaxReportBytes)
	}
	var rep SignalReport
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(&rep); err != nil {
		return nil, nil, apperr.Errorf(apperr.Invalid, "signal report is not a JSON object of signals: %v", err)
	}
	if dec.More() {
		return nil, nil, apperr.Errorf(apperr.Invalid, "signal report has data after its JSON object")
	}
	if len(rep.Signals) == 0 || len(rep.Signals) > MaxReportSignals {
		return nil, nil, apperr.InvalidField("signals", "1 to %d signals per report, got %d", MaxReportSignals, len(rep.Signals))
	}
	for i, sig := range rep.Signals {
		if err := sig.Validate(); err != nil {
			e := apperr.As(err)
			bad = append(bad, apperr.InvalidField("signals["+strconv.Itoa(i)+"]."+e.Field, "%s", e.Message))
			continue
		}
		valid = append(valid, sig)
	}
	return valid, bad, nil
}
