package broker

import (
	"sort"
	"sync"
	"time"
)

// Metrics are the broker-side counters of one device since the broker
// started, in the manner of AWS IoT Device Defender's cloud-side metrics.
// Bytes count PUBLISH payloads.
type Metrics struct {
	DeviceID string `json:"device_id"`
	// MessagesIn and BytesIn count accepted publishes from the device.
	MessagesIn uint64 `json:"messages_in"`
	BytesIn    uint64 `json:"bytes_in"`
	// MessagesOut and BytesOut count publishes delivered to the device.
	MessagesOut uint64 `json:"messages_out"`
	BytesOut    uint64 `json:"bytes_out"`
	// MaxMessageSize is the largest payload the device has published.
	MaxMessageSize uint64 `json:"max_message_size"`
	// AuthorizationFailures counts denied connects, publishes and subscribes.
	AuthorizationFailures uint64 `json:"authorization_failures"`
	// RateLimited counts publishes dropped by the message or byte limit.
	RateLimited uint64 `json:"rate_limited"`
	// ConnectAttempts counts MQTT connects presenting this device's
	// certificate, accepted or not.
	ConnectAttempts uint64 `json:"connect_attempts"`
	Disconnects     uint64 `json:"disconnects"`
	// MalformedPackets counts connections dropped for undecodable packets.
	MalformedPackets uint64 `json:"malformed_packets"`
	// LastSourceIP is the address of the device's latest connect attempt.
	LastSourceIP string    `json:"last_source_ip,omitempty"`
	LastSeen     time.Time `json:"last_seen"`
}

// deviceState holds one device's counters and rate-limit buckets.
type deviceState struct {
	mu       sync.Mutex
	m        Metrics
	messages tokenBucket
	bytes    tokenBucket
}

// tokenBucket allows rate tokens a second with bursts up to burst. A zero
// rate means no limit.
type tokenBucket struct {
	rate, burst float64
	tokens      float64
	last        time.Time
}

func newBucket(rate, burst float64) tokenBucket {
	return tokenBucket{rate: rate, burst: burst, tokens: burst}
}

// take removes n tokens if there are that many and reports whether it did.
func (b *tokenBucket) take(now time.Time, n float64) bool {
	if b.rate <= 0 {
		return true
	}
	if !b.last.IsZero() {
		b.tokens += now.Sub(b.last).Seconds() * b.rate
		if b.tokens > b.burst {
			b.tokens = b.burst
		}
	}
	b.last = now
	if b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}

// deviceStates is the broker's table of per-device state, created on first use.
type deviceStates struct {
	mu      sync.Mutex
	devices map[string]*deviceState
	newFn   func(id string) *deviceState
}

func (d *deviceStates) get(id string) *deviceState {
	d.mu.Lock()
	defer d.mu.Unlock()
	s, ok := d.devices[id]
	if !ok {
		s = d.newFn(id)
		d.devices[id] = s
	}
	return s
}

func (d *deviceStates) lookup(id string) (*deviceState, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s, ok := d.devices[id]
	return s, ok
}

func (d *deviceStates) all() []*deviceState {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]*deviceState, 0, len(d.devices))
	for _, s := range d.devices {
		out = append(out, s)
	}
	return out
}

func (s *deviceState) update(f func(m *Metrics)) {
	s.mu.Lock()
	f(&s.m)
	s.mu.Unlock()
}

func (s *deviceState) snapshot() Metrics {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m
}

// Metrics returns the counters of one device, and false if the broker has
// not seen it.
func (b *Broker) Metrics(deviceID string) (Metrics, bool) {
	s, ok := b.devices.lookup(deviceID)
	if !ok {
		return Metrics{}, false
	}
	return s.snapshot(), true
}

// AllMetrics returns the counters of every device the broker has seen,
// ordered by device id.
func (b *Broker) AllMetrics() []Metrics {
	states := b.devices.all()
	out := make([]Metrics, 0, len(states))
	for _, s := range states {
		out = append(out, s.snapshot())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DeviceID < out[j].DeviceID })
	return out
}
