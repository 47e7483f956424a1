package telemetry

import (
	"time"

	"github.com/fleetward/fleetward/internal/broker"
)

// Broker-side metric names, as stored. Counters are the change over one
// sampling interval; max_message_size is the largest payload seen in it
// (or since the broker started, when the interval saw no larger one).
const (
	MetricMessagesIn            = "messages_in"
	MetricBytesIn               = "bytes_in"
	MetricMessagesOut           = "messages_out"
	MetricBytesOut              = "bytes_out"
	MetricMaxMessageSize        = "max_message_size"
	MetricAuthorizationFailures = "authorization_failures"
	MetricRateLimited           = "rate_limited"
	MetricConnectAttempts       = "connect_attempts"
	MetricDisconnects           = "disconnects"
	MetricMalformedPackets      = "malformed_packets"
)

// BrokerMetrics lists the broker-side metrics, in display order.
var BrokerMetrics = []string{
	MetricMessagesIn, MetricBytesIn, MetricMessagesOut, MetricBytesOut, MetricMaxMessageSize,
	MetricAuthorizationFailures, MetricRateLimited, MetricConnectAttempts, MetricDisconnects, MetricMalformedPackets,
}

// BrokerSampler turns the broker's cumulative per-device counters into
// per-interval samples. It is not safe for concurrent use: one loop owns it.
type BrokerSampler struct {
	last map[string]broker.Metrics
}

// NewBrokerSampler returns a sampler whose first Sample measures from zero.
func NewBrokerSampler() *BrokerSampler {
	return &BrokerSampler{last: map[string]broker.Metrics{}}
}

// Sample returns, for each device whose counters moved since the previous
// call, one sample per metric at now. Devices with no change give none, so
// an idle fleet costs no rows.
func (bs *BrokerSampler) Sample(now time.Time, all []broker.Metrics) []Sample {
	var out []Sample
	for _, m := range all {
		prev := bs.last[m.DeviceID]
		bs.last[m.DeviceID] = m
		deltas := []struct {
			name     string
			cur, old uint64
		}{
			{MetricMessagesIn, m.MessagesIn, prev.MessagesIn},
			{MetricBytesIn, m.BytesIn, prev.BytesIn},
			{MetricMessagesOut, m.MessagesOut, prev.MessagesOut},
			{MetricBytesOut, m.BytesOut, prev.BytesOut},
			{MetricAuthorizationFailures, m.AuthorizationFailures, prev.AuthorizationFailures},
			{MetricRateLimited, m.RateLimited, prev.RateLimited},
			{MetricConnectAttempts, m.ConnectAttempts, prev.ConnectAttempts},
			{MetricDisconnects, m.Disconnects, prev.Disconnects},
			{MetricMalformedPackets, m.MalformedPackets, prev.MalformedPackets},
		}
		moved := false
		for _, d := range deltas {
			if d.cur != d.old {
				moved = true
				break
			}
		}
		if !moved {
			continue
		}
		for _, d := range deltas {
			v := d.cur - d.old
			if d.cur < d.old { // counters reset (a restart): count from zero
				v = d.cur
			}
			out = append(out, Sample{DeviceID: m.DeviceID, Metric: d.name, Source: SourceBroker, Time: now, Value: float64(v)})
		}
		out = append(out, Sample{DeviceID: m.DeviceID, Metric: MetricMaxMessageSize, Source: SourceBroker, Time: now, Value: float64(m.MaxMessageSize)})
	}
	return out
}
