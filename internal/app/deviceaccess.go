package app

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"time"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/broker"
	"github.com/fleetward/fleetward/internal/bus"
	"github.com/fleetward/fleetward/internal/identity"
	"github.com/fleetward/fleetward/internal/inventory"
)

// deviceAccess decides which devices the broker lets in, and drops a live
// session the moment its device loses that right. It joins the two places
// that right lives: the CA (is the certificate ours, unexpired and
// unrevoked?) and the inventory (is the device active, not quarantined,
// retired or deleted?). It implements broker.Authority.
//
// The CA reports revocations through identity.Options.OnRevoke and the
// inventory reports committed changes through its publisher, both in
// process and synchronously, so a revoked or quarantined device is
// disconnected within milliseconds of the change committing. The database
// stays the authority: every connect asks it again, so a change made by
// another node is honoured at the device's next connect.
type deviceAccess struct {
	ca        *identity.CA
	inventory *inventory.Service
	log       *slog.Logger

	mu      sync.RWMutex
	broker  *broker.Broker      // nil until the broker starts
	revoked map[string]struct{} // certificate serials (identity.SerialString)
	// watchers hear every committed inventory event (watchInventory).
	watchers []func(bus.Event)
}

// watchInventory adds f to what hears the inventory's committed events.
// f runs on the path of the change, so it must return at once.
func (a *deviceAccess) watchInventory(f func(bus.Event)) {
	a.mu.Lock()
	a.watchers = append(a.watchers, f)
	a.mu.Unlock()
}

func newDeviceAccess(ca *identity.CA, log *slog.Logger) *deviceAccess {
	return &deviceAccess{ca: ca, log: log, revoked: map[string]struct{}{}}
}

// attach gives deviceAccess the broker whose sessions it drops.
func (a *deviceAccess) attach(b *broker.Broker) {
	a.mu.Lock()
	a.broker = b
	a.mu.Unlock()
}

// connectCheckTimeout bounds the database reads of one connect.
const connectCheckTimeout = 5 * time.Second

// VerifyClient implements broker.Authority: the leaf must be a device
// certificate this CA issued and has not revoked, and the device it names
// must be in the inventory with status active.
func (a *deviceAccess) VerifyClient(chains [][]*x509.Certificate) (string, string, error) {
	leaf := chains[0][0]
	deviceID, err := identity.DeviceIDFromCertificate(leaf)
	if err != nil {
		return "", "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), connectCheckTimeout)
	defer cancel()
	issued, err := a.ca.Status(ctx, identity.SerialString(leaf.SerialNumber))
	if err != nil {
		if apperr.Is(err, apperr.NotFound) {
			return "", "", fmt.Errorf("certificate %s was not issued by this CA", identity.SerialString(leaf.SerialNumber))
		}
		return "", "", fmt.Errorf("look up certificate: %w", err)
	}
	if issued.Kind != identity.KindDevice || issued.DeviceID != deviceID {
		return "", "", fmt.Errorf("certificate %s is not a device certificate of %s", issued.Serial, deviceID)
	}
	if issued.Status == identity.StatusRevoked {
		a.markRevoked(issued.Serial)
		return "", "", fmt.Errorf("certificate %s is revoked", issued.Serial)
	}
	d, err := a.inventory.GetDevice(ctx, deviceID)
	if err != nil {
		if apperr.Is(err, apperr.NotFound) {
			return "", "", fmt.Errorf("device %s is not in the inventory", deviceID)
		}
		return "", "", fmt.Errorf("look up device %s: %w", deviceID, err)
	}
	if d.Status != inventory.StatusActive {
		return "", "", fmt.Errorf("device %s is %s", deviceID, d.Status)
	}
	class := issued.Class
	if class == "" {
		class = d.Class
	}
	return deviceID, class, nil
}

// Revoked implements broker.Authority from memory: the revocations this
// process has seen. VerifyClient has already asked the database.
func (a *deviceAccess) Revoked(serial *big.Int) bool {
	a.mu.RLock()
	_, ok := a.revoked[identity.SerialString(serial)]
	a.mu.RUnlock()
	return ok
}

func (a *deviceAccess) markRevoked(serial string) {
	a.mu.Lock()
	a.revoked[serial] = struct{}{}
	a.mu.Unlock()
}

// certificateRevoked is the CA's OnRevoke: remember the serial and drop
// the device's sessions.
func (a *deviceAccess) certificateRevoked(c identity.IssuedCertificate) {
	a.markRevoked(c.Serial)
	if c.DeviceID != "" {
		a.disconnect(c.DeviceID, "certificate revoked")
	}
}

func (a *deviceAccess) disconnect(deviceID, reason string) {
	a.mu.RLock()
	b := a.broker
	a.mu.RUnlock()
	if b == nil {
		return
	}
	a.log.Info("dropping the device's mqtt sessions", "device", deviceID, "reason", reason)
	b.Disconnect(deviceID)
}

// Publish implements bus.Publisher for the inventory's committed events
// (it is not the bus: the ledger relay is the only path there). A device
// leaving the active status, or deleted, is disconnected.
func (a *deviceAccess) Publish(_ context.Context, ev bus.Event) error {
	a.mu.RLock()
	watchers := a.watchers
	a.mu.RUnlock()
	for _, f := range watchers {
		f(ev)
	}
	switch ev.Type {
	case inventory.EventDeviceStatusChanged:
		var change struct {
			To string `json:"to"`
		}
		if err := json.Unmarshal(ev.Data, &change); err != nil {
			return fmt.Errorf("read %s event: %w", ev.Type, err)
		}
		if change.To != inventory.StatusActive {
			a.disconnect(ev.Subject, "device is now "+change.To)
		}
	case inventory.EventDeviceDeleted:
		a.disconnect(ev.Subject, "device deleted")
	}
	return nil
}

// revokeDevice revokes every valid certificate of a device (which drops
// its sessions through OnRevoke) and returns the serials revoked.
func (a *deviceAccess) revokeDevice(ctx context.Context, deviceID string, reason identity.Reason) ([]string, error) {
	certs, err := a.ca.DeviceCertificates(ctx, deviceID)
	if err != nil {
		return nil, err
	}
	var revoked []string
	var errs []error
	for _, c := range certs {
		if c.Status == identity.StatusRevoked {
			continue
		}
		if err := a.ca.Revoke(ctx, c.Serial, reason); err != nil {
			errs = append(errs, err)
			continue
		}
		revoked = append(revoked, c.Serial)
	}
	// Sessions of a certificate issued elsewhere still go.
	a.disconnect(deviceID, "device certificates revoked")
	return revoked, errors.Join(errs...)
}
