package inventory

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/bus"
	"github.com/fleetward/fleetward/internal/store"
)

// Ledger appends events to the tamper-evident log inside the caller's
// transaction, so a change and its record commit or roll back together.
type Ledger interface {
	RecordTx(ctx context.Context, tx *store.Tx, evs ...bus.Event) error
}

// Sealer encrypts values at rest. Open must fail for a value sealed under
// another context.
type Sealer interface {
	Seal(plaintext []byte, context string) (string, error)
	Open(sealed, context string) ([]byte, error)
}

// Service keeps the inventory: devices, sites and groups. It is safe for
// concurrent use.
//
// Every change is recorded through Ledger.RecordTx in the change's own
// transaction and, after the commit, published on the bus; a failed publish
// is logged and counted (PublishFailures) and the change stands. Event data
// never holds a secret's value, only its name.
type Service struct {
	db     *store.DB
	ledger Ledger
	pub    bus.Publisher
	sealer Sealer
	log    *slog.Logger
	now    func() time.Time

	publishFailures atomic.Uint64
}

// NewService returns a Service over db. db and ledger are required; pub may
// be nil (nothing is published), sealer may be nil only if no device ever
// has secrets (storing one then fails), log may be nil (nothing is logged).
func NewService(db *store.DB, ledger Ledger, pub bus.Publisher, sealer Sealer, log *slog.Logger) *Service {
	if db == nil || ledger == nil {
		panic("inventory.NewService: db and ledger are required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{db: db, ledger: ledger, pub: pub, sealer: sealer, log: log, now: time.Now}
}

// PublishFailures returns how many events failed to publish after their
// change was committed (and recorded in the ledger) since the Service was
// made.
func (s *Service) PublishFailures() uint64 { return s.publishFailures.Load() }

// The event types the inventory emits. Each event's Subject is the id of
// the device, site or group it concerns.
const (
	EventDeviceCreated        = "device.created"         // Data: the device (secret names only)
	EventDeviceUpdated        = "device.updated"         // Data: {"version", "changed": {field: new value}}
	EventDeviceStatusChanged  = "device.status_changed"  // Data: {"from", "to"}; alongside device.updated
	EventDeviceDeleted        = "device.deleted"         // Data: {"id", "name"}
	EventDeviceSecretAccessed = "device.secret_accessed" // Data: {"name"}
	EventSiteCreated          = "site.created"           // Data: the site
	EventSiteDeleted          = "site.deleted"           // Data: {"id", "name"}
	EventGroupCreated         = "group.created"          // Data: the group
	EventGroupDeleted         = "group.deleted"          // Data: {"id", "name"}
	EventGroupMembersAdded    = "group.members_added"    // Data: {"devices": [ids]}
	EventGroupMemberRemoved   = "group.member_removed"   // Data: {"device": id}
)

// newEvent builds an event attributed to the context's actor.
func (s *Service) newEvent(ctx context.Context, typ, subject string, data any, now time.Time) (bus.Event, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return bus.Event{}, fmt.Errorf("encode %s event for %s: %w", typ, subject, err)
	}
	a := actor.From(ctx)
	return bus.Event{
		ID:      rand.Text(),
		Type:    typ,
		Time:    now,
		Actor:   a.Name,
		Remote:  a.Remote,
		Subject: subject,
		Data:    raw,
	}, nil
}

// change runs fn in a transaction, records the events fn returns in the
// ledger inside it, and publishes them once it has committed; fn may run
// more than once (InTx retries serialization failures), and only the last
// run's events count. An application error (*apperr.Error) is returned as
// it is; any other error is wrapped with op, which names the change and its
// subject ("delete site s-1"). With an empty op every error is returned as
// it is, for callers that name their errors themselves.
func (s *Service) change(ctx context.Context, op string, fn func(tx *store.Tx) ([]bus.Event, error)) error {
	var evs []bus.Event
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if evs, err = fn(tx); err != nil {
			return err
		}
		return s.record(ctx, tx, evs)
	})
	if err != nil {
		if op == "" || apperr.As(err) != nil {
			return err
		}
		return fmt.Errorf("%s: %w", op, err)
	}
	s.publish(ctx, evs)
	return nil
}

// record appends evs to the ledger inside tx.
func (s *Service) record(ctx context.Context, tx *store.Tx, evs []bus.Event) error {
	if len(evs) == 0 {
		return nil
	}
	if err := s.ledger.RecordTx(ctx, tx, evs...); err != nil {
		return fmt.Errorf("record %d inventory events in the ledger: %w", len(evs), err)
	}
	return nil
}

// publish sends committed events on the bus. The change already stands, so
// a failure is logged and counted, never returned; it runs even when ctx
// was cancelled after the commit.
func (s *Service) publish(ctx context.Context, evs []bus.Event) {
	if s.pub == nil || len(evs) == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	for _, ev := range evs {
		if err := s.pub.Publish(ctx, ev); err != nil {
			s.publishFailures.Add(1)
			s.log.Warn("publish inventory event failed; the change is committed and in the ledger",
				"event", ev.ID, "type", ev.Type, "subject", ev.Subject, "err", err)
		}
	}
}

// nowUTC is the Service's clock, in UTC and truncated to microseconds so
// times survive every engine and encoding unchanged.
func (s *Service) nowUTC() time.Time { return s.now().UTC().Truncate(time.Microsecond) }
