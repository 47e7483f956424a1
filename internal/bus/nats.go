package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"
	"unicode"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/apperr"
)

// Config says where the bus lives. The zero value is not usable: set URL
// or Dir.
type Config struct {
	// URL of an external NATS server with JetStream ("nats://host:4222",
	// "tls://…", with user:password@ if it needs them; several separated
	// by commas for a cluster). Empty runs an embedded server in-process,
	// without any network listener.
	URL string
	// Dir is fleetward's data directory; the embedded server keeps its
	// JetStream store under Dir/nats. Required when URL is empty.
	Dir string
	// CredentialsFile is a NATS .creds file (JWT and NKey) for an external
	// server that requires one.
	CredentialsFile string
	// TLSCAFile is a PEM bundle of the CAs that sign an external server's
	// certificate, when not in the system pool.
	TLSCAFile string
	// Replicas is how many copies of each stream a NATS cluster keeps when
	// fleetward creates it (default 1; the embedded server allows only 1).
	Replicas int
	// StreamPrefix prefixes every stream name and the subject root, so
	// that independent users (tests) share one server without colliding:
	// "t1_" gives streams "t1_DEVICE_EVENTS" on "t1_fleetward.device.>".
	// Letters, digits, '_' and '-' only. Empty (the default) in production.
	StreamPrefix string
	// MaxDeliver is how many times a subscriber is handed an event whose
	// handler keeps failing before it is logged and dropped (default 10).
	MaxDeliver int
	// RetryBackoff is the delay before an event whose handler failed is
	// delivered again, indexed by the delivery that failed; the last entry
	// repeats (default 1s, 5s, 30s, 2m, 10m).
	RetryBackoff []time.Duration
	// AckWait is how long the server waits for a subscriber's answer before
	// it delivers an event again, e.g. after a crash (default 30s). A
	// handler still running tells the server so, and may take longer.
	AckWait time.Duration
	// SyncAlways makes the embedded server fsync every stored event before
	// acknowledging it. Off, events reach the operating system at once and
	// the disk within two minutes: a process crash loses nothing, a power
	// cut may lose the last events (the ledger still has them).
	SyncAlways bool
	// Log receives the bus's and the embedded server's log; nil discards.
	Log *slog.Logger
}

// Defaults for Config.
const (
	defaultMaxDeliver = 10
	defaultAckWait    = 30 * time.Second
	maxIDLen          = 256
)

func defaultBackoff() []time.Duration {
	return []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute}
}

var prefixRE = regexp.MustCompile(`^[A-Za-z0-9_-]*$`)

// Bus is fleetward's connection to NATS JetStream, and the embedded server
// when it runs one. It is safe for concurrent use. It implements Publisher.
type Bus struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	ns       *server.Server // nil when external
	unlock   func()         // releases the embedded store's lock
	log      *slog.Logger
	prefix   string
	replicas int

	maxDeliver int
	backoff    []time.Duration
	ackWait    time.Duration

	closed chan struct{} // closed when the connection is closed

	mu        sync.Mutex
	subs      map[*subscription]struct{}
	closing   bool
	closeOnce sync.Once
	closeErr  error
}

var _ Publisher = (*Bus)(nil)

// Open connects to the bus and makes sure fleetward's streams exist with
// the configuration documented on DeviceEvents, SecurityEvents and
// AdminEvents. With Config.URL empty it starts an embedded NATS server
// with JetStream under Dir/nats, reachable only in-process; the store is
// locked so that a second fleetward process cannot open it. With a URL it
// connects (reconnecting forever once connected) and waits up to 30
// seconds, or until ctx ends, for JetStream to answer.
//
// Existing streams are never deleted or recreated: Open only adds what is
// missing and widens limits, and logs a warning for differences it cannot
// safely change. Returns an Invalid *apperr.Error for a bad Config, a
// Conflict one when the embedded store is in use, an Unavailable one when
// the server cannot be reached.
func Open(ctx context.Context, cfg Config) (*Bus, error) {
	if !prefixRE.MatchString(cfg.StreamPrefix) {
		return nil, apperr.InvalidField("stream_prefix", "%q may hold only letters, digits, '_' and '-'", cfg.StreamPrefix)
	}
	b := &Bus{
		log:        cfg.Log,
		prefix:     cfg.StreamPrefix,
		replicas:   max(cfg.Replicas, 1),
		maxDeliver: cfg.MaxDeliver,
		backoff:    cfg.RetryBackoff,
		ackWait:    cfg.AckWait,
		closed:     make(chan struct{}),
		subs:       map[*subscription]struct{}{},
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.maxDeliver <= 0 {
		b.maxDeliver = defaultMaxDeliver
	}
	if len(b.backoff) == 0 {
		b.backoff = defaultBackoff()
	}
	if b.ackWait <= 0 {
		b.ackWait = defaultAckWait
	}
	if cfg.Replicas < 0 {
		return nil, apperr.InvalidField("replicas", "must not be negative")
	}
	opts := []nats.Option{
		nats.Name("fleetward"),
		nats.ClosedHandler(func(*nats.Conn) { close(b.closed) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				b.log.Warn("bus disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { b.log.Info("bus reconnected", "server", nc.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			b.log.Warn("bus asynchronous error", "subject", subject, "err", err)
		}),
	}
	var err error
	if cfg.URL == "" {
		if cfg.Replicas > 1 {
			return nil, apperr.InvalidField("replicas", "the embedded bus keeps one copy; use an external NATS cluster for %d", cfg.Replicas)
		}
		if b.ns, b.unlock, err = startEmbedded(cfg, b.log); err != nil {
			return nil, err
		}
		opts = append(opts, nats.InProcessServer(b.ns), nats.MaxReconnects(-1))
		b.nc, err = nats.Connect("", opts...)
		if err != nil {
			b.shutdownServer()
			return nil, fmt.Errorf("connect to the embedded NATS server: %w", err)
		}
	} else {
		if cfg.CredentialsFile != "" {
			opts = append(opts, nats.UserCredentials(cfg.CredentialsFile))
		}
		if cfg.TLSCAFile != "" {
			opts = append(opts, nats.RootCAs(cfg.TLSCAFile))
		}
		opts = append(opts, nats.MaxReconnects(-1), nats.Timeout(5*time.Second))
		b.nc, err = nats.Connect(cfg.URL, opts...)
		if err != nil {
			return nil, &apperr.Error{Code: apperr.Unavailable, Field: "url",
				Message: fmt.Sprintf("cannot connect to NATS at %s: %v", redactURL(cfg.URL), err)}
		}
	}
	b.js, err = jetstream.New(b.nc)
	if err == nil {
		err = b.waitForJetStream(ctx)
	}
	if err == nil {
		err = b.ensureStreams(ctx)
	}
	if err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// waitForJetStream polls the JetStream API until it answers: a cluster may
// still be electing its meta leader right after start.
func (b *Bus) waitForJetStream(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := b.js.AccountInfo(actx)
		acancel()
		if err == nil {
			return nil
		}
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return &apperr.Error{Code: apperr.Unavailable, Field: "url",
				Message: fmt.Sprintf("NATS at %s does not have JetStream enabled for this account", b.nc.ConnectedUrlRedacted())}
		}
		select {
		case <-ctx.Done():
			return apperr.Errorf(apperr.Unavailable, "NATS JetStream did not answer: %v", err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// streamName is the actual name of a stream, with the prefix.
func (b *Bus) streamName(name string) string { return b.prefix + name }

// subjectFor is the subject an event of type t is published on.
func (b *Bus) subjectFor(t string) string { return b.prefix + SubjectRoot + "." + t }

// validateEvent checks what Publish requires of an event.
func validateEvent(ev Event) error {
	if ev.ID == "" {
		return apperr.InvalidField("id", "is required")
	}
	if len(ev.ID) > maxIDLen {
		return apperr.InvalidField("id", "is %d bytes long; at most %d are allowed", len(ev.ID), maxIDLen)
	}
	for _, r := range ev.ID {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return apperr.InvalidField("id", "must be printable without spaces")
		}
	}
	if err := ValidateType(ev.Type); err != nil {
		return err
	}
	if ev.Time.IsZero() {
		return apperr.InvalidField("time", "is required")
	}
	if len(ev.Data) > 0 && !json.Valid(ev.Data) {
		return apperr.InvalidField("data", "is not valid JSON")
	}
	return nil
}

// Publish stores ev in the stream of its area and returns once JetStream
// has acknowledged it. ev.ID is the message ID JetStream deduplicates on:
// publishing the same ID again within DuplicateWindow stores nothing and
// returns nil. An empty Actor (and Remote) is taken from actor.From(ctx).
//
// Returns an Invalid *apperr.Error naming the field when ev has no ID, no
// Time, malformed Data or a malformed Type, or no stream carries its area;
// TooLarge when the encoded event exceeds the server's maximum payload;
// Unavailable when the bus is closed or JetStream does not answer.
func (b *Bus) Publish(ctx context.Context, ev Event) error {
	if err := validateEvent(ev); err != nil {
		return err
	}
	stream, err := StreamFor(ev.Type)
	if err != nil {
		return err
	}
	if ev.Actor == "" {
		a := actor.From(ctx)
		ev.Actor = a.Name
		if ev.Remote == "" {
			ev.Remote = a.Remote
		}
	}
	ev.Time = ev.Time.UTC()
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("publish %s %s: encode: %w", ev.Type, ev.ID, err)
	}
	if limit := b.nc.MaxPayload(); limit > 0 && int64(len(body)) > limit-512 { // leave room for headers
		return &apperr.Error{Code: apperr.TooLarge, Field: "data",
			Message: fmt.Sprintf("event %s is %d bytes encoded; the bus carries at most %d", ev.ID, len(body), limit-512)}
	}
	msg := &nats.Msg{Subject: b.subjectFor(ev.Type), Data: body, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, ev.ID)
	msg.Header.Set("Content-Type", "application/json")
	if _, err := b.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(b.streamName(stream))); err != nil {
		if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
			errors.Is(err, nats.ErrNoResponders) || errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("publish %s %s: %w", ev.Type, ev.ID, &apperr.Error{Code: apperr.Unavailable, Message: "the event bus did not acknowledge: " + err.Error()})
		}
		return fmt.Errorf("publish %s %s: %w", ev.Type, ev.ID, err)
	}
	return nil
}

// Healthy returns nil when the connection is up and JetStream answers
// within ctx, an Unavailable *apperr.Error otherwise.
func (b *Bus) Healthy(ctx context.Context) error {
	if b.ns != nil && !b.ns.Running() {
		return apperr.Errorf(apperr.Unavailable, "the embedded NATS server is not running")
	}
	if st := b.nc.Status(); st != nats.CONNECTED {
		return apperr.Errorf(apperr.Unavailable, "NATS connection is %s", st)
	}
	if _, err := b.js.AccountInfo(ctx); err != nil {
		return apperr.Errorf(apperr.Unavailable, "NATS JetStream does not answer: %v", err)
	}
	return nil
}

// StreamStats describes one stream for metrics and the dashboard.
type StreamStats struct {
	// Subjects the stream stores.
	Subjects []string `json:"subjects"`
	// Messages and Bytes stored now.
	Messages uint64 `json:"messages"`
	Bytes    uint64 `json:"bytes"`
	// Consumers is the number of durable subscribers.
	Consumers int `json:"consumers"`
	// FirstSeq and LastSeq bound the stored sequence numbers.
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	// LastTime is when the newest stored event arrived; zero when empty.
	LastTime time.Time `json:"last_time,omitzero"`
}

// Stats returns the state of each of fleetward's streams, keyed by stream
// name (with the prefix, if any).
func (b *Bus) Stats(ctx context.Context) (map[string]StreamStats, error) {
	out := map[string]StreamStats{}
	for _, spec := range streamSpecs() {
		name := b.streamName(spec.name)
		s, err := b.js.Stream(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("bus stats: stream %s: %w", name, err)
		}
		info := s.CachedInfo()
		st := StreamStats{
			Subjects:  info.Config.Subjects,
			Messages:  info.State.Msgs,
			Bytes:     info.State.Bytes,
			Consumers: info.State.Consumers,
			FirstSeq:  info.State.FirstSeq,
			LastSeq:   info.State.LastSeq,
		}
		if info.State.Msgs > 0 {
			st.LastTime = info.State.LastTime
		}
		out[name] = st
	}
	return out, nil
}

// Close stops every subscription (waiting for handlers in progress to
// return), drains the connection so that nothing published is lost, and
// shuts the embedded server down. It is safe to call more than once.
func (b *Bus) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closing = true
		subs := make([]*subscription, 0, len(b.subs))
		for s := range b.subs {
			subs = append(subs, s)
		}
		b.mu.Unlock()
		for _, s := range subs {
			s.stop()
		}
		if b.nc != nil && !b.nc.IsClosed() {
			if err := b.nc.Drain(); err != nil {
				b.nc.Close()
			}
			select {
			case <-b.closed:
			case <-time.After(10 * time.Second):
				b.nc.Close()
				b.closeErr = errors.New("close bus: draining the connection timed out")
			}
		}
		b.shutdownServer()
	})
	return b.closeErr
}

func (b *Bus) shutdownServer() {
	if b.ns != nil {
		b.ns.Shutdown()
		b.ns.WaitForShutdown()
	}
	if b.unlock != nil {
		b.unlock()
		b.unlock = nil
	}
}
