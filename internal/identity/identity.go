// Package identity is fleetward's certificate authority: a root and an
// issuing intermediate, device certificates that carry the device id,
// server certificates for fleetward's own listeners, and revocation
// published as a CRL and through an OCSP responder.
//
// The CA's private keys are kept in the database only sealed under the
// master key. The root key may instead be written to a file for offline
// storage (Init with OfflineRootKeyFile), so the server holds only the
// intermediate; it is then needed again only to rotate the intermediate.
// Every issuance and revocation is recorded in the ledger in the same
// transaction that stores it.
package identity

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/bus"
	"github.com/fleetward/fleetward/internal/store"
)

// Sealer encrypts values at rest, bound to a context string;
// *secrets.Keyring is one.
type Sealer interface {
	Seal(plaintext []byte, context string) (string, error)
	Open(sealed, context string) ([]byte, error)
}

// Ledger appends events to the tamper-evident log inside the caller's
// transaction, so a certificate and its record commit or roll back together.
type Ledger interface {
	RecordTx(ctx context.Context, tx *store.Tx, evs ...bus.Event) error
}

// The event types the CA records. Subject is the device id for device
// certificates, the serial for others.
const (
	EventCAInitialized       = "identity.ca_initialized"       // Data: {"root", "intermediate", "key_algorithm", "root_offline"}
	EventIntermediateRotated = "identity.intermediate_rotated" // Data: {"intermediate", "previous"}
	EventCertificateIssued   = "identity.certificate_issued"   // Data: {"serial", "kind", "device", "class", "issuer", "not_after"}
	EventCertificateRevoked  = "identity.certificate_revoked"  // Data: {"serial", "device", "reason"}
)

// The CA key algorithms.
const (
	ECDSAP256 = "ecdsa-p256"
	Ed25519   = "ed25519"
	RSA3072   = "rsa-3072"
)

// Lifetimes of the certificates the CA makes.
const (
	RootLifetime           = 10 * 365 * 24 * time.Hour
	IntermediateLifetime   = 3 * 365 * 24 * time.Hour
	DefaultDeviceLifetime  = 30 * 24 * time.Hour
	DefaultServerLifetime  = 90 * 24 * time.Hour
	CRLValidity            = 24 * time.Hour
	DeviceURIPrefix        = "urn:fleetward:device:"
	maxDeviceLifetime      = 5 * 365 * 24 * time.Hour
	defaultOrganization    = "fleetward"
	clockSkewAllowance     = time.Minute
	crlRefreshBeforeExpiry = CRLValidity / 2
)

// ClassPolicy is what the CA allows for one device class.
type ClassPolicy struct {
	// Lifetime of the class's device certificates; zero means
	// DefaultDeviceLifetime.
	Lifetime time.Duration `json:"lifetime"`
}

// Options configure a CA. The zero value is usable.
type Options struct {
	// KeyAlgorithm of the CA's own keys: "ecdsa-p256" (default), "ed25519"
	// or "rsa-3072".
	KeyAlgorithm string
	// Organization is the O of the CA's subjects; default "fleetward".
	Organization string
	// PublicURL, when set ("https://fleetward.example:8443"), puts the CRL
	// (<PublicURL>/pki/crl) and OCSP (<PublicURL>/pki/ocsp) locations into
	// issued certificates.
	PublicURL string
	// Classes sets the policy per device class; a class not listed gets
	// DefaultDeviceLifetime.
	Classes map[string]ClassPolicy
	// ServerLifetime of IssueServer certificates; default 90 days.
	ServerLifetime time.Duration
	// OnRevoke, if set, is called after a revocation commits (not for a
	// certificate that was already revoked), so an in-process broker can
	// drop the certificate's live session at once. It must not block.
	OnRevoke func(IssuedCertificate)
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Log receives diagnostics; default slog.Default().
	Log *slog.Logger
}

// CA issues, stores and revokes certificates. It is safe for concurrent
// use, and several CAs (in several processes) may share one database.
type CA struct {
	db     *store.DB
	sealer Sealer
	ledger Ledger
	opts   Options
	now    func() time.Time
	log    *slog.Logger

	mu      sync.Mutex
	classes map[string]ClassPolicy
	signers map[string]crypto.Signer // by CA serial; keys never change
	crls    map[string]cachedCRL     // by issuer serial
	// responders are delegated OCSP signers for Ed25519 intermediates.
	responders map[string]ocspSigner // by issuer serial
}

// NewCA returns a CA over db. Call Init before issuing.
func NewCA(db *store.DB, sealer Sealer, ledger Ledger, opts Options) *CA {
	if opts.KeyAlgorithm == "" {
		opts.KeyAlgorithm = ECDSAP256
	}
	if opts.Organization == "" {
		opts.Organization = defaultOrganization
	}
	if opts.ServerLifetime <= 0 {
		opts.ServerLifetime = DefaultServerLifetime
	}
	ca := &CA{
		db: db, sealer: sealer, ledger: ledger, opts: opts,
		now: opts.Now, log: opts.Log,
		classes:    map[string]ClassPolicy{},
		signers:    map[string]crypto.Signer{},
		crls:       map[string]cachedCRL{},
		responders: map[string]ocspSigner{},
	}
	if ca.now == nil {
		ca.now = time.Now
	}
	if ca.log == nil {
		ca.log = slog.Default()
	}
	for class, p := range opts.Classes {
		ca.classes[class] = p
	}
	return ca
}

// SetClassPolicy sets the policy for a device class; it applies to
// certificates issued from now on.
func (ca *CA) SetClassPolicy(class string, p ClassPolicy) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	ca.classes[class] = p
}

// ClassPolicyFor returns the policy for a device class, defaults filled in.
func (ca *CA) ClassPolicyFor(class string) ClassPolicy {
	ca.mu.Lock()
	p := ca.classes[class]
	ca.mu.Unlock()
	if p.Lifetime <= 0 {
		p.Lifetime = DefaultDeviceLifetime
	}
	if p.Lifetime > maxDeviceLifetime {
		p.Lifetime = maxDeviceLifetime
	}
	return p
}

// newEvent builds an event attributed to the context's actor.
func newEvent(ctx context.Context, typ, subject string, data any, now time.Time) (bus.Event, error) {
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

// record appends one event to the ledger inside tx.
func (ca *CA) record(ctx context.Context, tx *store.Tx, typ, subject string, data any) error {
	ev, err := newEvent(ctx, typ, subject, data, ca.now().UTC())
	if err != nil {
		return err
	}
	if err := ca.ledger.RecordTx(ctx, tx, ev); err != nil {
		return fmt.Errorf("record %s for %s in the ledger: %w", typ, subject, err)
	}
	return nil
}
