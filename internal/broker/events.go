package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetward/fleetward/internal/bus"
)

// The security event types the broker publishes.
const (
	EventConnectDenied   = "security.mqtt_connect_denied"
	EventPublishDenied   = "security.mqtt_publish_denied"
	EventSubscribeDenied = "security.mqtt_subscribe_denied"
	// EventMalformedPacket reports a connection dropped for bytes the MQTT
	// engine could not decode safely.
	EventMalformedPacket = "security.mqtt_malformed_packet"
)

// denial is the Data of a security event.
type denial struct {
	Topic  string `json:"topic,omitempty"`
	Reason string `json:"reason"`
	Class  string `json:"class,omitempty"`
}

// eventQueueSize bounds the events waiting for the bus. Hooks never wait on
// the bus: a flood of denials beyond this is counted and logged, not queued.
const eventQueueSize = 1024

// securityEvents sends events to the bus from one goroutine so that a slow
// bus never stalls an MQTT session.
type securityEvents struct {
	pub     bus.Publisher
	log     *slog.Logger
	queue   chan bus.Event
	done    chan struct{}
	dropped atomic.Uint64
	// counts holds how many events of each type were raised, sent or not.
	counts sync.Map // type → *atomic.Uint64

	mu     sync.RWMutex // guards closed against sends racing close
	closed bool
}

func newSecurityEvents(pub bus.Publisher, log *slog.Logger) *securityEvents {
	e := &securityEvents{pub: pub, log: log, queue: make(chan bus.Event, eventQueueSize), done: make(chan struct{})}
	go e.run()
	return e
}

func (e *securityEvents) run() {
	defer close(e.done)
	for ev := range e.queue {
		if e.pub == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := e.pub.Publish(ctx, ev); err != nil {
			e.log.Error("publish security event", "type", ev.Type, "subject", ev.Subject, "error", err)
		}
		cancel()
	}
}

// send counts and queues an event; it never blocks.
func (e *securityEvents) send(typ, deviceID, remote string, d denial) {
	n, _ := e.counts.LoadOrStore(typ, new(atomic.Uint64))
	n.(*atomic.Uint64).Add(1)
	data, _ := json.Marshal(d)
	actor := "device:" + deviceID
	if deviceID == "" {
		actor = "device:unknown"
	}
	ev := bus.Event{ID: randomID(), Type: typ, Time: time.Now().UTC(), Actor: actor, Remote: remote, Subject: deviceID, Data: data}
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return
	}
	select {
	case e.queue <- ev:
	default:
		if n := e.dropped.Add(1); n&(n-1) == 0 { // log at 1, 2, 4, 8, …
			e.log.Warn("security event queue full, events dropped", "dropped", n)
		}
	}
}

// close flushes queued events, waiting at most until ctx ends.
func (e *securityEvents) close(ctx context.Context) {
	e.mu.Lock()
	if !e.closed {
		e.closed = true
		close(e.queue)
	}
	e.mu.Unlock()
	select {
	case <-e.done:
	case <-ctx.Done():
	}
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// SecurityEventCounts returns how many security events of each type the
// broker has raised since it started (denied connects, publishes and
// subscribes, malformed packets), including any the bus did not take.
func (b *Broker) SecurityEventCounts() map[string]uint64 {
	out := map[string]uint64{}
	b.events.counts.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Uint64).Load()
		return true
	})
	return out
}
