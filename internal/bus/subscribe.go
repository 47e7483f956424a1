package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fleetward/fleetward/internal/apperr"
)

var consumerNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// pullBatch is how many events a subscriber fetches ahead of its handler.
const pullBatch = 64

// Subscribe starts the durable subscriber name: it receives, through h,
// every event whose type matches one of patterns, in the order each stream
// stored them, and it resumes after a restart (of fleetward or of the NATS
// server) with the first event it had not acknowledged. A subscriber new
// under name starts with the oldest event still stored (up to MaxAge ago).
//
// A pattern is an event type in which a token may be "*" (any one token)
// and the last may be ">" (one or more tokens): "device.>",
// "security.login_failed", "*.created", ">". Patterns spanning several
// streams make one JetStream consumer named name in each; h is never called
// concurrently within one subscription, but events of different streams
// have no order between them. Processes subscribing under the same name
// share the work: each event goes to one of them.
//
// When h returns nil the event is acknowledged and never delivered to name
// again. When h returns an error (or panics) the event is delivered again
// after Config.RetryBackoff, while later events go on; after
// Config.MaxDeliver failed deliveries it is logged as poison and dropped.
// An event is also delivered again if the process dies while handling it,
// so h must tolerate seeing an event twice. The handler's context ends
// when the subscription stops; an event whose handler fails then is handed
// back for another subscriber after about a second (or, if the server routes
// it to a pull request the stopped subscriber left open, after AckWait).
//
// The subscription runs until stop is called, ctx ends or the Bus closes;
// stop waits for a handler in progress to return, so h must not call it
// (nor Close). A subscriber unused for
// longer than MaxAge is removed by the server (everything it could resume
// from is gone by then); DeleteSubscriber removes one at once.
//
// Returns an Invalid *apperr.Error naming "name" or "subjects" for a bad
// name, no or malformed patterns, or patterns that overlap partially.
func (b *Bus) Subscribe(ctx context.Context, name string, patterns []string, h Handler) (stop func(), err error) {
	if !consumerNameRE.MatchString(name) {
		return nil, apperr.InvalidField("name", "%q must be 1 to 64 letters, digits, '_' or '-'", name)
	}
	if h == nil {
		return nil, apperr.InvalidField("handler", "is required")
	}
	filters, err := b.filtersFor(patterns)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &subscription{b: b, name: name, h: h, ctx: sctx, cancel: cancel,
		log: b.log.With("subscriber", name)}
	var parts []*streamPart
	for _, stream := range slices.Sorted(maps.Keys(filters)) {
		p := &streamPart{stream: stream, filters: filters[stream], serverFilter: true}
		cons, err := b.js.CreateOrUpdateConsumer(ctx, stream, b.consumerConfig(name, p))
		if errors.Is(err, jetstream.ErrConsumerMultipleFilterSubjectsNotSupported) {
			// A server older than 2.10 filters on one subject only: take the
			// whole stream and filter here, which keeps the order.
			p.serverFilter = false
			cons, err = b.js.CreateOrUpdateConsumer(ctx, stream, b.consumerConfig(name, p))
		}
		if err != nil {
			cancel()
			return nil, fmt.Errorf("subscribe %s to %s: %w", name, stream, err)
		}
		p.cons = cons
		parts = append(parts, p)
	}
	b.mu.Lock()
	if b.closing {
		b.mu.Unlock()
		cancel()
		return nil, apperr.Errorf(apperr.Unavailable, "subscribe %s: the bus is closed", name)
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	for _, p := range parts {
		s.wg.Add(1)
		go s.run(p)
	}
	// Ending the caller's context stops the subscription too.
	stopWatch := context.AfterFunc(ctx, s.stop)
	return func() { stopWatch(); s.stop() }, nil
}

// DeleteSubscriber stops this process's subscriptions under name and
// removes the durable subscriber from every stream: its position is
// forgotten, and subscribing under name again starts with the oldest stored
// event. Subscriptions under name in other processes must be stopped first,
// or they set their consumer up again. Deleting a name that does not exist
// is not an error.
func (b *Bus) DeleteSubscriber(ctx context.Context, name string) error {
	if !consumerNameRE.MatchString(name) {
		return apperr.InvalidField("name", "%q must be 1 to 64 letters, digits, '_' or '-'", name)
	}
	b.mu.Lock()
	var local []*subscription
	for s := range b.subs {
		if s.name == name {
			local = append(local, s)
		}
	}
	b.mu.Unlock()
	for _, s := range local {
		s.stop()
	}
	for _, spec := range streamSpecs() {
		stream := b.streamName(spec.name)
		if err := b.js.DeleteConsumer(ctx, stream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("delete subscriber %s from %s: %w", name, stream, err)
		}
	}
	return nil
}

// streamPart is the part of a subscription that reads one stream.
type streamPart struct {
	stream  string
	filters []string
	// serverFilter is false when the server cannot filter on several
	// subjects; the consumer then takes the whole stream and deliver skips
	// what the filters do not match.
	serverFilter bool
	cons         jetstream.Consumer
}

// wants reports whether the subscription wants an event on subject.
func (p *streamPart) wants(subject string) bool {
	if p.serverFilter {
		return true
	}
	st := strings.Split(subject, ".")
	return slices.ContainsFunc(p.filters, func(f string) bool { return subsumes(strings.Split(f, "."), st) })
}

func (b *Bus) consumerConfig(name string, p *streamPart) jetstream.ConsumerConfig {
	cfg := jetstream.ConsumerConfig{
		Durable:           name,
		Description:       "fleetward subscriber " + name,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckExplicitPolicy,
		AckWait:           b.ackWait,
		MaxDeliver:        b.maxDeliver,
		MaxAckPending:     4 * pullBatch,
		InactiveThreshold: MaxAge,
	}
	switch {
	case !p.serverFilter:
	case len(p.filters) == 1:
		cfg.FilterSubject = p.filters[0] // understood by every server version
	default:
		cfg.FilterSubjects = p.filters
	}
	return cfg
}

// filtersFor turns subscription patterns into the filter subjects of each
// stream they reach, keyed by the stream's actual name. Filters another
// filter covers are dropped; filters that overlap only partially are
// refused, since a JetStream consumer cannot have them.
func (b *Bus) filtersFor(patterns []string) (map[string][]string, error) {
	if len(patterns) == 0 {
		return nil, apperr.InvalidField("subjects", "at least one pattern is required")
	}
	type filter struct {
		stream string
		tokens []string
	}
	var all []filter
	for _, p := range patterns {
		tokens, err := validatePattern(p)
		if err != nil {
			return nil, err
		}
		first, matched := tokens[0], false
		for _, spec := range streamSpecs() {
			for _, area := range spec.areas {
				if first != "*" && first != ">" && first != area {
					continue
				}
				t := append([]string{area}, tokens[1:]...)
				if first == ">" {
					t = []string{area, ">"}
				}
				all = append(all, filter{spec.name, t})
				matched = true
			}
		}
		if !matched {
			return nil, apperr.InvalidField("subjects", "pattern %q: no stream carries area %q; known areas: %s", p, first, strings.Join(knownAreas(), ", "))
		}
	}
	var keep []filter
	for i, f := range all {
		covered := false
		for j, g := range all {
			if i == j || f.stream != g.stream || !subsumes(g.tokens, f.tokens) {
				continue
			}
			// g covers f; of two equal filters keep the first.
			if !subsumes(f.tokens, g.tokens) || j < i {
				covered = true
				break
			}
		}
		if !covered {
			keep = append(keep, f)
		}
	}
	out := map[string][]string{}
	for i, f := range keep {
		for _, g := range keep[:i] {
			if f.stream == g.stream && collide(f.tokens, g.tokens) {
				return nil, apperr.InvalidField("subjects", "patterns %q and %q overlap; subscribe with one pattern that covers both",
					strings.Join(g.tokens, "."), strings.Join(f.tokens, "."))
			}
		}
		name := b.streamName(f.stream)
		out[name] = append(out[name], b.prefix+SubjectRoot+"."+strings.Join(f.tokens, "."))
	}
	return out, nil
}

// subscription is one running Subscribe: a pull loop per stream, all
// feeding one handler.
type subscription struct {
	b      *Bus
	name   string
	h      Handler
	log    *slog.Logger
	ctx    context.Context // ends when the subscription stops
	cancel context.CancelFunc
	hmu    sync.Mutex // one handler call at a time
	wg     sync.WaitGroup
	once   sync.Once
}

// handBackDelay is how long a stopping subscriber's events wait before the
// server delivers them again. Without it, a plain Nak lets the server
// deliver the event straight back to this subscriber's pull request while it
// drains, which Naks it again: each round counts as a delivery, and the
// event can burn through MaxDeliver in milliseconds and never arrive.
const handBackDelay = time.Second

// stop ends the subscription and waits for its loops to finish.
func (s *subscription) stop() {
	s.once.Do(func() {
		s.cancel()
		s.wg.Wait()
		s.b.mu.Lock()
		delete(s.b.subs, s)
		s.b.mu.Unlock()
	})
}

// run pulls from one stream's consumer until the subscription stops. If
// the server ends the pull (the consumer was deleted, the stream lost its
// leader), it sets the consumer up again and carries on.
func (s *subscription) run(p *streamPart) {
	defer s.wg.Done()
	log := s.log.With("stream", p.stream)
	cons := p.cons
	retry := time.Second
	for s.ctx.Err() == nil {
		if cons == nil {
			ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
			var err error
			cons, err = s.b.js.CreateOrUpdateConsumer(ctx, p.stream, s.b.consumerConfig(s.name, p))
			cancel()
			if err != nil {
				log.Warn("bus subscriber cannot set up its consumer; retrying", "err", err, "retry_in", retry)
				s.sleep(retry)
				retry = min(2*retry, time.Minute)
				continue
			}
		}
		it, err := cons.Messages(jetstream.PullMaxMessages(pullBatch))
		if err != nil {
			log.Warn("bus subscriber cannot pull; retrying", "err", err, "retry_in", retry)
			cons = nil
			s.sleep(retry)
			retry = min(2*retry, time.Minute)
			continue
		}
		s.pull(p, it, log)
		if s.ctx.Err() != nil || s.b.nc.IsClosed() {
			return
		}
		log.Warn("bus subscriber's pull ended; setting it up again", "retry_in", retry)
		cons = nil
		s.sleep(retry)
		retry = min(2*retry, time.Minute)
	}
}

// pull hands the iterator's events to the handler until it closes. When
// the subscription stops, events already fetched are handed back at once.
func (s *subscription) pull(p *streamPart, it jetstream.MessagesContext, log *slog.Logger) {
	stopDrain := context.AfterFunc(s.ctx, it.Drain)
	defer stopDrain()
	defer it.Stop()
	for {
		msg, err := it.Next()
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			return
		}
		if err != nil {
			log.Warn("bus subscriber pull error", "err", err)
			continue
		}
		if s.ctx.Err() != nil {
			msg.NakWithDelay(handBackDelay)
			continue
		}
		if !p.wants(msg.Subject()) {
			msg.Ack() // outside this subscription's patterns
			continue
		}
		s.deliver(msg, log)
	}
}

func (s *subscription) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.ctx.Done():
	case <-t.C:
	}
}

// deliver runs the handler for one message and answers the server.
func (s *subscription) deliver(msg jetstream.Msg, log *slog.Logger) {
	md, err := msg.Metadata()
	if err != nil {
		log.Error("bus message without JetStream metadata; dropping it", "subject", msg.Subject(), "err", err)
		msg.Term()
		return
	}
	log = log.With("seq", md.Sequence.Stream, "delivery", md.NumDelivered)
	var ev Event
	if err := json.Unmarshal(msg.Data(), &ev); err != nil {
		log.Error("bus event cannot be decoded; dropping it", "subject", msg.Subject(), "err", err)
		msg.Term()
		return
	}
	log = log.With("event", ev.ID, "type", ev.Type)
	err = s.call(msg, ev)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := msg.DoubleAck(ctx); err != nil {
			log.Warn("bus acknowledgement failed; the event will be delivered again", "err", err)
		}
		return
	}
	if s.ctx.Err() != nil {
		msg.NakWithDelay(handBackDelay) // stopping: let another subscriber have it
		return
	}
	if md.NumDelivered >= uint64(s.b.maxDeliver) {
		log.Error("bus handler failed on every delivery; dropping the event as poison", "max_deliver", s.b.maxDeliver, "err", err)
		msg.Term() // not TermWithReason: servers before 2.10 ignore it
		return
	}
	delay := s.b.backoff[min(int(md.NumDelivered)-1, len(s.b.backoff)-1)]
	log.Warn("bus handler failed; the event will be delivered again", "retry_in", delay, "err", err)
	if err := msg.NakWithDelay(delay); err != nil {
		log.Warn("bus negative acknowledgement failed; the event comes back after the ack wait", "err", err)
	}
}

// call runs the handler, one at a time per subscription, telling the server
// the event is in progress so it is not delivered elsewhere meanwhile. A
// panic in the handler is an error.
func (s *subscription) call(msg jetstream.Msg, ev Event) (err error) {
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(s.b.ackWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				msg.InProgress()
			}
		}
	}()
	s.hmu.Lock()
	defer s.hmu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("bus handler panicked", "event", ev.ID, "type", ev.Type, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return s.h(s.ctx, ev)
}
