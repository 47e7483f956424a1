// Package bus carries facts between fleetward's components. Producers
// (inventory, auth, the broker, scanners) publish events; consumers
// (detectors, response, the dashboard) subscribe. The transport is NATS
// JetStream: an embedded server under the data directory by default, or an
// external one.
package bus

import (
	"context"
	"encoding/json"
	"time"
)

// Event is one fact published on the bus. Events are immutable once
// published. The same event is also appended to the ledger by the component
// that produced it, so Type, Actor and Subject mean the same in both places.
type Event struct {
	// ID is unique per event; JetStream uses it to drop duplicates.
	ID string `json:"id"`
	// Type is "<area>.<what>", e.g. "device.created", "device.updated",
	// "security.login_failed", "operator.created". The area picks the
	// stream: see StreamFor.
	Type string `json:"type"`
	// Time is when it happened, as the producer saw it.
	Time time.Time `json:"time"`
	// Actor is who caused it ("operator:alice", "token:ci", "system").
	Actor string `json:"actor"`
	// Remote is the network address of the actor, when known.
	Remote string `json:"remote,omitempty"`
	// Subject is what it concerns: a device id, an operator's username.
	Subject string `json:"subject,omitempty"`
	// Data is the event's payload, JSON.
	Data json.RawMessage `json:"data,omitempty"`
}

// Publisher publishes events durably: when Publish returns nil the event is
// stored in its stream.
type Publisher interface {
	Publish(ctx context.Context, ev Event) error
}

// Handler receives one event. Returning an error asks for redelivery.
type Handler func(ctx context.Context, ev Event) error
