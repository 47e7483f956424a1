package bus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/apperr"
)

// externalURL is the NATS server with JetStream the development machine runs.
const externalURL = "nats://127.0.0.1:4222"

// target is where a test's bus lives: the embedded server in a temporary
// directory, or the external one under a stream prefix of its own.
type target struct {
	name     string
	embedded bool
	base     Config
}

// open opens a bus on s with the test's settings, changed by mods, and
// closes it when the test ends.
func (s target) open(t *testing.T, mods ...func(*Config)) *Bus {
	t.Helper()
	b, err := s.tryOpen(t, mods...)
	if err != nil {
		t.Fatalf("open bus on %s: %v", s.name, err)
	}
	return b
}

func (s target) tryOpen(t *testing.T, mods ...func(*Config)) (*Bus, error) {
	t.Helper()
	cfg := s.base
	cfg.Log = testLogger(t)
	cfg.RetryBackoff = []time.Duration{50 * time.Millisecond}
	cfg.AckWait = 3 * time.Second
	for _, m := range mods {
		m(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { b.Close() })
	return b, nil
}

// forEachServer runs test against the embedded server and, when it is
// reachable, against the external one. With FLEETWARD_REQUIRE_NATS=1 an
// unreachable external server fails the test instead of skipping it.
func forEachServer(t *testing.T, test func(t *testing.T, s target)) {
	t.Run("embedded", func(t *testing.T) {
		test(t, target{name: "embedded", embedded: true, base: Config{Dir: t.TempDir()}})
	})
	t.Run("external", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", strings.TrimPrefix(externalURL, "nats://"), time.Second)
		if err != nil {
			if os.Getenv("FLEETWARD_REQUIRE_NATS") == "1" {
				t.Fatalf("NATS at %s is required (FLEETWARD_REQUIRE_NATS=1) but unreachable: %v", externalURL, err)
			}
			t.Skipf("NATS at %s unreachable, skipping the external run: %v", externalURL, err)
		}
		conn.Close()
		var r [4]byte
		rand.Read(r[:])
		prefix := "fwtest" + hex.EncodeToString(r[:]) + "_"
		t.Cleanup(func() { deleteStreams(t, prefix) })
		test(t, target{name: "external", base: Config{URL: externalURL, StreamPrefix: prefix}})
	})
}

// deleteStreams removes the streams a test created on the external server.
func deleteStreams(t *testing.T, prefix string) {
	nc, err := nats.Connect(externalURL)
	if err != nil {
		t.Errorf("clean up streams %s*: %v", prefix, err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Errorf("clean up streams %s*: %v", prefix, err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, spec := range streamSpecs() {
		if err := js.DeleteStream(ctx, prefix+spec.name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("clean up stream %s: %v", prefix+spec.name, err)
		}
	}
}

// testLogger sends the bus's log to the test's, so that a failure shows it.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// event makes a valid event of type typ.
func event(id, typ string) Event {
	return Event{ID: id, Type: typ, Time: time.Now(), Subject: "dev-" + id, Data: json.RawMessage(`{"n":1}`)}
}

func publish(t *testing.T, b *Bus, evs ...Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, ev := range evs {
		if err := b.Publish(ctx, ev); err != nil {
			t.Fatalf("publish %s %s: %v", ev.Type, ev.ID, err)
		}
	}
}

// collector records the events a handler sees.
type collector struct {
	mu  sync.Mutex
	evs []Event
	ch  chan Event
}

func newCollector() *collector { return &collector{ch: make(chan Event, 1024)} }

func (c *collector) handle(_ context.Context, ev Event) error {
	c.mu.Lock()
	c.evs = append(c.evs, ev)
	c.mu.Unlock()
	c.ch <- ev
	return nil
}

// wait returns the next n events, failing the test if they take too long.
func (c *collector) wait(t *testing.T, n int) []Event {
	t.Helper()
	var out []Event
	deadline := time.After(15 * time.Second)
	for len(out) < n {
		select {
		case ev := <-c.ch:
			out = append(out, ev)
		case <-deadline:
			t.Fatalf("received %d events, want %d", len(out), n)
		}
	}
	return out
}

// quiet fails the test if any event arrives within d.
func (c *collector) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case ev := <-c.ch:
		t.Fatalf("unexpected event %s %s", ev.Type, ev.ID)
	case <-time.After(d):
	}
}

func subscribe(t *testing.T, b *Bus, name string, patterns []string, h Handler) func() {
	t.Helper()
	stop, err := b.Subscribe(context.Background(), name, patterns, h)
	if err != nil {
		t.Fatalf("subscribe %s: %v", name, err)
	}
	t.Cleanup(stop)
	return stop
}

func ids(evs []Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID
	}
	return out
}

func TestADurableSubscriberReceivesEventsInOrder(t *testing.T) {
	forEachServer(t, func(t *testing.T, s target) {
		b := s.open(t)
		ctx := actor.With(context.Background(), actor.Actor{Name: "operator:ada", Remote: "192.0.2.7"})
		var want []string
		for i := range 100 {
			ev := event(fmt.Sprintf("e%03d", i), "device.updated")
			if i%10 == 0 {
				ev.Type = "site.created"
			}
			want = append(want, ev.ID)
			if err := b.Publish(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		c := newCollector()
		subscribe(t, b, "inventory", []string{"device.>", "site.>"}, c.handle)
		got := c.wait(t, 100)
		if strings.Join(ids(got), ",") != strings.Join(want, ",") {
			t.Fatalf("events out of order:\n got %v\nwant %v", ids(got), want)
		}
		if got[0].Actor != "operator:ada" || got[0].Remote != "192.0.2.7" {
			t.Errorf("actor = %q from %q, want operator:ada from 192.0.2.7 (taken from the context)", got[0].Actor, got[0].Remote)
		}
		if got[1].Subject != "dev-e001" || string(got[1].Data) != `{"n":1}` || got[1].Time.IsZero() {
			t.Errorf("event not carried intact: %+v", got[1])
		}
		c.quiet(t, 200*time.Millisecond)
	})
}

func TestAnEventPublishedTwiceIsStoredOnce(t *testing.T) {
	forEachServer(t, func(t *testing.T, s target) {
		b := s.open(t)
		ev := event("dup-1", "security.login_failed")
		publish(t, b, ev, ev, event("dup-2", "security.login_failed"), ev)
		stats, err := b.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n := stats[s.base.StreamPrefix+SecurityEvents].Messages; n != 2 {
			t.Fatalf("stream holds %d messages, want 2", n)
		}
		c := newCollector()
		subscribe(t, b, "detector", []string{"security.>"}, c.handle)
		if got := ids(c.wait(t, 2)); got[0] != "dup-1" || got[1] != "dup-2" {
			t.Fatalf("received %v, want [dup-1 dup-2]", got)
		}
		c.quiet(t, 300*time.Millisecond)
	})
}

func TestARestartedSubscriberResumesWithoutReplayingAcknowledgedEvents(t *testing.T) {
	forEachServer(t, func(t *testing.T, s target) {
		b := s.open(t)
		for i := range 5 {
			publish(t, b, event(fmt.Sprintf("a%d", i), "operator.created"))
		}
		c := newCollector()
		stop := subscribe(t, b, "auditor", []string{"operator.*"}, c.handle)
		c.wait(t, 5)
		stop()
		for i := range 5 {
			publish(t, b, event(fmt.Sprintf("b%d", i), "operator.created"))
		}
		c2 := newCollector()
		subscribe(t, b, "auditor", []string{"operator.*"}, c2.handle)
		if got := strings.Join(ids(c2.wait(t, 5)), ","); got != "b0,b1,b2,b3,b4" {
			t.Fatalf("restarted subscriber received %s, want b0..b4 only", got)
		}
		c2.quiet(t, 300*time.Millisecond)
		c.quiet(t, 0) // the stopped one got nothing more
	})
}

func TestAFailingHandlerGetsTheEventAgain(t *testing.T) {
	forEachServer(t, func(t *testing.T, s target) {
		b := s.open(t)
		publish(t, b, event("x1", "device.created"), event("x2", "device.created"))
		var mu sync.Mutex
		attempts := map[string]int{}
		done := make(chan string, 10)
		subscribe(t, b, "flaky", []string{"device.created"}, func(_ context.Context, ev Event) error {
			mu.Lock()
			attempts[ev.ID]++
			n := attempts[ev.ID]
			mu.Unlock()
			if ev.ID == "x1" && n < 3 {
				return errors.New("database busy")
			}
			if ev.ID == "x2" && n == 1 {
				panic("handler bug")
			}
			done <- ev.ID
			return nil
		})
		got := map[string]bool{}
		for len(got) < 2 {
			select {
			case id := <-done:
				got[id] = true
			case <-time.After(15 * time.Second):
				t.Fatalf("handled %v, want x1 and x2", got)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if attempts["x1"] != 3 || attempts["x2"] != 2 {
			t.Fatalf("attempts = %v, want x1:3 (two errors) and x2:2 (one panic)", attempts)
		}
	})
}

func TestAnEventFailingEveryDeliveryIsDroppedAsPoison(t *testing.T) {
	forEachServer(t, func(t *testing.T, s target) {
		b := s.open(t, func(c *Config) { c.MaxDeliver = 3 })
		publish(t, b, event("poison", "token.created"), event("fine", "token.created"))
		var mu sync.Mutex
		attempts := map[string]int{}
		subscribe(t, b, "picky", []string{"token.>"}, func(_ context.Context, ev Event) error {
			mu.Lock()
			defer mu.Unlock()
			attempts[ev.ID]++
			if ev.ID == "poison" {
				return errors.New("cannot handle this one")
			}
			return nil
		})
		deadline := time.Now().Add(15 * time.Second)
		for {
			mu.Lock()
			n, fine := attempts["poison"], attempts["fine"]
			mu.Unlock()
			if n >= 3 && fine == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("poison delivered %d times, fine %d, want 3 and 1", n, fine)
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(500 * time.Millisecond) // ten backoffs: any redelivery would show
		mu.Lock()
		n := attempts["poison"]
		mu.Unlock()
		if n != 3 {
			t.Fatalf("poison delivered %d times, want exactly MaxDeliver=3", n)
		}
		cons, err := b.js.Consumer(context.Background(), s.base.StreamPrefix+AdminEvents, "picky")
		if err != nil {
			t.Fatal(err)
		}
		if info := cons.CachedInfo(); info.NumAckPending != 0 || info.NumPending != 0 {
			t.Fatalf("consumer still has %d pending acks and %d pending events, want none", info.NumAckPending, info.NumPending)
		}
	})
}

func TestReopeningTheBusKeepsStoredEvents(t *testing.T) {
	forEachServer(t, func(t *testing.T, s target) {
		b := s.open(t)
		publish(t, b, event("k1", "device.created"), event("k2", "security.alert_raised"), event("k3", "system.started"))
		c := newCollector()
		stop := subscribe(t, b, "keeper", []string{">"}, c.handle)
		c.wait(t, 3)
		stop()
		if err := b.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		if err := b.Healthy(context.Background()); err == nil {
			t.Fatal("a closed bus reports healthy")
		}
		if err := b.Publish(context.Background(), event("late", "device.created")); !apperr.Is(err, apperr.Unavailable) {
			t.Fatalf("publish on a closed bus: %v, want Unavailable", err)
		}

		b2 := s.open(t) // for the embedded server: a restart in the same directory
		if err := b2.Healthy(context.Background()); err != nil {
			t.Fatalf("reopened bus unhealthy: %v", err)
		}
		stats, err := b2.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{DeviceEvents, SecurityEvents, AdminEvents} {
			if st := stats[s.base.StreamPrefix+name]; st.Messages != 1 || st.Consumers != 1 || st.LastTime.IsZero() {
				t.Errorf("after reopening, %s: %+v, want 1 message and 1 consumer", name, st)
			}
		}
		publish(t, b2, event("k1", "device.created")) // within the duplicate window: dropped
		publish(t, b2, event("k4", "device.created"))
		c2 := newCollector()
		subscribe(t, b2, "keeper", []string{">"}, c2.handle)
		if got := ids(c2.wait(t, 1)); got[0] != "k4" {
			t.Fatalf("after reopening, the subscriber received %v, want [k4]", got)
		}
		c2.quiet(t, 300*time.Millisecond)
		all := newCollector()
		subscribe(t, b2, "newcomer", []string{">"}, all.handle)
		if got := len(all.wait(t, 4)); got != 4 {
			t.Fatalf("a new subscriber received %d events, want all 4", got)
		}
	})
}

func TestAPatternSpanningStreamsReceivesFromEach(t *testing.T) {
	forEachServer(t, func(t *testing.T, s target) {
		b := s.open(t)
		c := newCollector()
		subscribe(t, b, "creations", []string{"*.created", "security.>"}, c.handle)
		publish(t, b,
			event("c1", "device.created"), event("c2", "device.updated"), event("c3", "operator.created"),
			event("c4", "security.login_failed"), event("c5", "group.created"), event("c6", "token.revoked"))
		got := map[string]bool{}
		for _, ev := range c.wait(t, 4) {
			got[ev.ID] = true
		}
		for _, id := range []string{"c1", "c3", "c4", "c5"} {
			if !got[id] {
				t.Errorf("missing %s; received %v", id, got)
			}
		}
		c.quiet(t, 300*time.Millisecond)
		stats, err := b.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{DeviceEvents, SecurityEvents, AdminEvents} {
			if st := stats[s.base.StreamPrefix+name]; st.Consumers != 1 {
				t.Errorf("%s has %d consumers, want 1", name, st.Consumers)
			}
		}
		if err := b.DeleteSubscriber(context.Background(), "creations"); err != nil {
			t.Fatal(err)
		}
		stats, _ = b.Stats(context.Background())
		for name, st := range stats {
			if st.Consumers != 0 {
				t.Errorf("after DeleteSubscriber, %s has %d consumers", name, st.Consumers)
			}
		}
	})
}

func TestBadEventsAreRefused(t *testing.T) {
	forEachServer(t, func(t *testing.T, s target) {
		b := s.open(t)
		tests := []struct {
			name  string
			ev    Event
			code  apperr.Code
			field string
		}{
			{"an event without an ID", Event{Type: "device.created", Time: time.Now()}, apperr.Invalid, "id"},
			{"an ID with a space", Event{ID: "a b", Type: "device.created", Time: time.Now()}, apperr.Invalid, "id"},
			{"an ID with a newline", Event{ID: "a\r\nX-Evil: 1", Type: "device.created", Time: time.Now()}, apperr.Invalid, "id"},
			{"an event without a time", Event{ID: "1", Type: "device.created"}, apperr.Invalid, "time"},
			{"no type", Event{ID: "1", Time: time.Now()}, apperr.Invalid, "type"},
			{"a type with one token", event("1", "device"), apperr.Invalid, "type"},
			{"an uppercase type", event("1", "Device.created"), apperr.Invalid, "type"},
			{"a type with a wildcard", event("1", "device.*"), apperr.Invalid, "type"},
			{"a type with a full wildcard", event("1", "device.>"), apperr.Invalid, "type"},
			{"a type with an empty token", event("1", "device..created"), apperr.Invalid, "type"},
			{"a type with a space", event("1", "device.cre ated"), apperr.Invalid, "type"},
			{"a type of an area no stream carries", event("1", "weather.changed"), apperr.Invalid, "type"},
			{"data that is not JSON", Event{ID: "1", Type: "device.created", Time: time.Now(), Data: json.RawMessage("{")}, apperr.Invalid, "data"},
			{"an event over the payload limit", Event{ID: "1", Type: "device.created", Time: time.Now(),
				Data: json.RawMessage(`"` + strings.Repeat("x", 2<<20) + `"`)}, apperr.TooLarge, "data"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := b.Publish(context.Background(), tt.ev)
				e := apperr.As(err)
				if e == nil || e.Code != tt.code || e.Field != tt.field {
					t.Fatalf("Publish = %v, want %s on field %q", err, tt.code, tt.field)
				}
			})
		}
		stats, err := b.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for name, st := range stats {
			if st.Messages != 0 {
				t.Errorf("%s stored %d refused events", name, st.Messages)
			}
		}
	})
}

func TestBadSubscriptionsAreRefused(t *testing.T) {
	forEachServer(t, func(t *testing.T, s target) {
		b := s.open(t)
		ok := func(context.Context, Event) error { return nil }
		tests := []struct {
			name     string
			sub      string
			patterns []string
			h        Handler
			field    string
		}{
			{"an empty name", "", []string{"device.>"}, ok, "name"},
			{"a name with a dot", "a.b", []string{"device.>"}, ok, "name"},
			{"a name with a wildcard", "a*", []string{"device.>"}, ok, "name"},
			{"no patterns", "x", nil, ok, "subjects"},
			{"an empty pattern", "x", []string{""}, ok, "subjects"},
			{"a pattern for an unknown area", "x", []string{"weather.>"}, ok, "subjects"},
			{"a pattern with '>' in the middle", "x", []string{"device.>.created"}, ok, "subjects"},
			{"a pattern of one token", "x", []string{"device"}, ok, "subjects"},
			{"an uppercase pattern", "x", []string{"Device.>"}, ok, "subjects"},
			{"partially overlapping patterns", "x", []string{"device.*.updated", "device.firmware.*"}, ok, "subjects"},
			{"no handler", "x", []string{"device.>"}, nil, "handler"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				stop, err := b.Subscribe(context.Background(), tt.sub, tt.patterns, tt.h)
				if err == nil {
					stop()
					t.Fatal("Subscribe succeeded")
				}
				if e := apperr.As(err); e == nil || e.Code != apperr.Invalid || e.Field != tt.field {
					t.Fatalf("Subscribe = %v, want invalid %q", err, tt.field)
				}
			})
		}
	})
}

func TestStoppingASubscriptionHandsBackItsEventPromptly(t *testing.T) {
	forEachServer(t, func(t *testing.T, s target) {
		// The stopped subscriber hands its event back with a short delay,
		// so the next subscriber gets it well within the collector's 15 s
		// although AckWait is a minute. (A plain Nak could bounce between
		// the draining pull and the server until MaxDeliver was spent.)
		b := s.open(t, func(c *Config) { c.AckWait = time.Minute })
		publish(t, b, event("slow", "device.created"))
		started := make(chan struct{})
		stop := subscribe(t, b, "shared", []string{"device.>"}, func(ctx context.Context, ev Event) error {
			close(started)
			<-ctx.Done() // a long handler that honours cancellation
			return ctx.Err()
		})
		<-started
		stop()
		c := newCollector()
		subscribe(t, b, "shared", []string{"device.>"}, c.handle)
		if got := ids(c.wait(t, 1)); got[0] != "slow" {
			t.Fatalf("received %v, want [slow]", got)
		}
	})
}

func TestCancellingTheSubscribeContextStopsTheSubscription(t *testing.T) {
	forEachServer(t, func(t *testing.T, s target) {
		b := s.open(t)
		ctx, cancel := context.WithCancel(context.Background())
		c := newCollector()
		if _, err := b.Subscribe(ctx, "scoped", []string{"device.>"}, c.handle); err != nil {
			t.Fatal(err)
		}
		publish(t, b, event("s1", "device.created"))
		c.wait(t, 1)
		cancel()
		time.Sleep(100 * time.Millisecond)
		publish(t, b, event("s2", "device.created"))
		c.quiet(t, 300*time.Millisecond)
	})
}

func TestOpenBringsAnExistingStreamUpToDateWithoutLosingEvents(t *testing.T) {
	forEachServer(t, func(t *testing.T, s target) {
		b := s.open(t)
		ctx := context.Background()
		name := s.base.StreamPrefix + DeviceEvents
		publish(t, b, event("old-1", "device.created"), event("old-2", "site.created"))
		// An operator widened the limits and another version had fewer subjects.
		st, err := b.js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		cfg := st.CachedInfo().Config
		cfg.MaxAge = 90 * 24 * time.Hour
		cfg.Subjects = []string{s.base.StreamPrefix + "fleetward.device.>", s.base.StreamPrefix + "fleetward.site.>"}
		cfg.Duplicates = time.Minute
		cfg.Description = ""
		if _, err := b.js.UpdateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		b.Close()

		b2 := s.open(t)
		st, err = b2.js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info := st.CachedInfo()
		if info.State.Msgs != 2 {
			t.Errorf("stream holds %d events after Open, want the 2 it had", info.State.Msgs)
		}
		if info.Config.MaxAge != 90*24*time.Hour {
			t.Errorf("max age = %s, want the operator's 90 days kept", info.Config.MaxAge)
		}
		if info.Config.Duplicates != DuplicateWindow {
			t.Errorf("duplicate window = %s, want %s", info.Config.Duplicates, DuplicateWindow)
		}
		if len(info.Config.Subjects) != 4 {
			t.Errorf("subjects = %v, want group and identity added", info.Config.Subjects)
		}
		publish(t, b2, event("g1", "group.created"))
	})
}

func TestTheEmbeddedStoreCannotBeOpenedTwice(t *testing.T) {
	s := target{name: "embedded", embedded: true, base: Config{Dir: t.TempDir()}}
	s.open(t)
	_, err := s.tryOpen(t)
	if !apperr.Is(err, apperr.Conflict) {
		t.Fatalf("second Open = %v, want Conflict", err)
	}
}

func TestOpenRefusesBadConfigurations(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		code  apperr.Code
		field string
	}{
		{"an embedded bus without a directory", Config{}, apperr.Invalid, "dir"},
		{"a stream prefix with a dot", Config{Dir: t.TempDir(), StreamPrefix: "a.b"}, apperr.Invalid, "stream_prefix"},
		{"an embedded bus with replicas", Config{Dir: t.TempDir(), Replicas: 3}, apperr.Invalid, "replicas"},
		{"an unreachable external server", Config{URL: "nats://127.0.0.1:1"}, apperr.Unavailable, "url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Open(context.Background(), tt.cfg)
			if err == nil {
				b.Close()
				t.Fatal("Open succeeded")
			}
			if e := apperr.As(err); e == nil || e.Code != tt.code || e.Field != tt.field {
				t.Fatalf("Open = %v, want %s on %q", err, tt.code, tt.field)
			}
		})
	}
}

func TestRedactURLDropsCredentials(t *testing.T) {
	got := redactURL("nats://alice:secret@n1:4222, nats://tok3n@n2:4222")
	if strings.Contains(got, "secret") || strings.Contains(got, "tok3n") || !strings.Contains(got, "n2:4222") {
		t.Fatalf("redactURL = %q", got)
	}
}

func BenchmarkPublish(b *testing.B) {
	bus, err := Open(context.Background(), Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Close()
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		if err := bus.Publish(ctx, event(fmt.Sprint("bench-", i), "device.updated")); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
