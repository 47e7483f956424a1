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

// Defaults of a Batcher.
const (
	DefaultBatchSize  = 200
	DefaultBatchDelay = 2 * time.Second
)

// Batcher collects what a sensor sends (signals, score summaries) and
// hands it to Send in batches: a batch goes when it holds Size items (never
// more) or, for a live sensor, when its first item is Delay old. A live
// sensor also flushes on a timer (FlushEvery), so that a quiet network does
// not hold an item back. Both the host sensor (detect --server) and the
// agent's edge sensor use it. It is safe for concurrent use.
type Batcher[T any] struct {
	// Send delivers one batch; it must not keep the slice. An error
	// keeps the batch for the next attempt.
	Send func(context.Context, []T) error
	// Size and Delay default to DefaultBatchSize and DefaultBatchDelay.
	Size  int
	Delay time.Duration

	mu      sync.Mutex
	batch   []T
	started time.Time
	sent    int
}

// SignalBatcher batches signals.
type SignalBatcher = Batcher[Signal]

// Add queues items; with wait it sends only full batches (replaying a
// file), otherwise also a batch older than Delay (a live sensor).
func (b *Batcher[T]) Add(ctx context.Context, wait bool, items ...T) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, it := range items {
		if len(b.batch) == 0 {
			b.started = time.Now()
		}
		b.batch = append(b.batch, it)
		if len(b.batch) >= b.size() {
			if err := b.flushLocked(ctx); err != nil {
				return err
			}
		}
	}
	if !wait && len(b.batch) > 0 && time.Since(b.started) >= b.delay() {
		return b.flushLocked(ctx)
	}
	return nil
}

// Flush sends what is queued.
func (b *Batcher[T]) Flush(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flushLocked(ctx)
}

// FlushEvery flushes every Delay until ctx ends or stop is called, passing
// errors to onErr (which may be nil). It returns at once.
func (b *Batcher[T]) FlushEvery(ctx context.Context, onErr func(error)) (stop func()) {
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

// Sent returns how many items Send has accepted.
func (b *Batcher[T]) Sent() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sent
}

func (b *Batcher[T]) flushLocked(ctx context.Context) error {
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

func (b *Batcher[T]) size() int {
	if b.Size > 0 {
		return b.Size
	}
	return DefaultBatchSize
}

func (b *Batcher[T]) delay() time.Duration {
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

// ScoreReport is a batch of score summaries as a sensor sends it: the body
// of POST /api/v1/scores and the payload an agent's edge sensor publishes
// on devices/{id}/scores.
type ScoreReport struct {
	Summaries []ScoreSummary `json:"summaries"`
}

// Bounds of one report, over MQTT or the API. A sensor sends one summary
// per source and 10 s, so MaxReportSummaries covers a busy network's minute.
const (
	MaxReportSignals   = 1000
	MaxReportSummaries = 5000
	MaxReportBytes     = 256 << 10
)

// ParseSignalReport decodes a SignalReport published by a device and
// validates each signal. It returns the valid signals, and for each bad one
// an Invalid error naming its index and field ("signals[3].severity"), so
// that one bad signal does not cost the good ones. It returns TooLarge for
// a payload over MaxReportBytes and Invalid for one that is not a JSON
// object with 1 to MaxReportSignals signals.
func ParseSignalReport(payload []byte) (valid []Signal, bad []error, err error) {
	return parseReport[Signal](payload, "signals", MaxReportSignals)
}

// ParseScoreReport is ParseSignalReport for a ScoreReport: 1 to
// MaxReportSummaries summaries, errors naming "summaries[i].field".
func ParseScoreReport(payload []byte) (valid []ScoreSummary, bad []error, err error) {
	return parseReport[ScoreSummary](payload, "summaries", MaxReportSummaries)
}

// parseReport decodes {"<field>": [items]} and validates each item.
func parseReport[T interface{ Validate() error }](payload []byte, field string, maxItems int) (valid []T, bad []error, err error) {
	if len(payload) > MaxReportBytes {
		return nil, nil, apperr.Errorf(apperr.TooLarge, "report of %d bytes is larger than %d", len(payload), MaxReportBytes)
	}
	var doc map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(&doc); err != nil {
		return nil, nil, apperr.Errorf(apperr.Invalid, "report is not a JSON object: %v", err)
	}
	if dec.More() {
		return nil, nil, apperr.Errorf(apperr.Invalid, "report has data after its JSON object")
	}
	var items []T
	if raw, ok := doc[field]; ok {
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, nil, apperr.InvalidField(field, "not a list of %s: %v", field, err)
		}
	}
	if len(items) == 0 || len(items) > maxItems {
		return nil, nil, apperr.InvalidField(field, "1 to %d %s per report, got %d", maxItems, field, len(items))
	}
	for i, it := range items {
		if err := it.Validate(); err != nil {
			bad = append(bad, itemError(field, i, err))
			continue
		}
		valid = append(valid, it)
	}
	return valid, bad, nil
}

// ValidateItems validates each item of a report's list and returns an
// Invalid error naming the first bad one by the list's field, its index
// and its own field ("signals[3].severity"); nil when all are valid.
func ValidateItems[T interface{ Validate() error }](field string, items []T) error {
	for i, it := range items {
		if err := it.Validate(); err != nil {
			return itemError(field, i, err)
		}
	}
	return nil
}

// itemError renames item i's validation error after its place in the list.
func itemError(field string, i int, err error) error {
	e := apperr.As(err)
	return apperr.InvalidField(field+"["+strconv.Itoa(i)+"]."+e.Field, "%s", e.Message)
}
