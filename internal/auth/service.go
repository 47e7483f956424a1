package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/bus"
	"github.com/fleetward/fleetward/internal/store"
)

// Ledger records events in fleetward's tamper-evident log. RecordTx writes
// them inside the caller's transaction, so a change and its record commit
// together; Record writes them on their own (for security events that
// change nothing else).
type Ledger interface {
	Record(ctx context.Context, evs ...bus.Event) error
	RecordTx(ctx context.Context, tx *store.Tx, evs ...bus.Event) error
}

// Sealer encrypts small secrets at rest. context binds a sealed value to
// its purpose ("totp:alice"): Open fails when given another.
type Sealer interface {
	Seal(plaintext []byte, context string) (string, error)
	Open(sealed, context string) ([]byte, error)
}

// Options tunes a Service. The zero value of each field means its
// default; the zero Options is the secure configuration.
type Options struct {
	// Issuer names fleetward in authenticator apps. Default "fleetward".
	Issuer string
	// SessionIdle ends a session that has not been used for this long.
	// Default 30 minutes.
	SessionIdle time.Duration
	// SessionAbsolute ends a session this long after login, however busy.
	// Default 12 hours.
	SessionAbsolute time.Duration
	// Now tells the time; tests set it. Default time.Now.
	Now func() time.Time
	// AdminsWithoutMFAInsecure lets administrators log in without a TOTP
	// second factor. Only `fleetward demo --insecure-demo-login` sets it;
	// by default every administrator must enrol and use one.
	AdminsWithoutMFAInsecure bool
}

const (
	defaultIssuer          = "fleetward"
	defaultSessionIdle     = 30 * time.Minute
	defaultSessionAbsolute = 12 * time.Hour
	// hashSlots bounds how many argon2id hashes run at once: each takes 64
	// MiB, and a burst of logins must not exhaust memory.
	hashSlots = 4
)

// Service manages operators, their credentials and sessions, and API
// tokens. It is safe for concurrent use, and several Services (one per
// server node) may share one database: sessions, throttling and token use
// live there.
type Service struct {
	db     *store.DB
	ledger Ledger
	pub    bus.Publisher
	sealer Sealer
	log    *slog.Logger
	opts   Options

	hashSem   chan struct{}
	dummyOnce sync.Once
	dummyHash string

	lastPrune atomic.Int64 // unix nanos of the last Prune started by Login

	counters struct {
		loginsOK, loginsFailed, loginsThrottled, lockouts, mfaFailed    atomic.Uint64
		tokensUsed, tokensRejected, permissionDenied, recoveryCodesUsed atomic.Uint64
	}
}

// NewService returns a Service over db. ledger records every change and
// security event; pub publishes them after commit (nil publishes nothing);
// sealer encrypts TOTP secrets (nil makes enrolling a second factor fail).
func NewService(db *store.DB, ledger Ledger, pub bus.Publisher, sealer Sealer, log *slog.Logger, opts Options) *Service {
	if opts.Issuer == "" {
		opts.Issuer = defaultIssuer
	}
	if opts.SessionIdle <= 0 {
		opts.SessionIdle = defaultSessionIdle
	}
	if opts.SessionAbsolute <= 0 {
		opts.SessionAbsolute = defaultSessionAbsolute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{db: db, ledger: ledger, pub: pub, sealer: sealer, log: log, opts: opts,
		hashSem: make(chan struct{}, hashSlots)}
}

// Metrics returns the service's counters since it started: logins_ok,
// logins_failed (wrong password, unknown or disabled user, wrong second
// factor, throttled), logins_throttled, lockouts, mfa_failed, tokens_used,
// tokens_rejected, permission_denied and recovery_codes_used.
func (s *Service) Metrics() map[string]uint64 {
	c := &s.counters
	return map[string]uint64{
		"logins_ok":           c.loginsOK.Load(),
		"logins_failed":       c.loginsFailed.Load(),
		"logins_throttled":    c.loginsThrottled.Load(),
		"lockouts":            c.lockouts.Load(),
		"mfa_failed":          c.mfaFailed.Load(),
		"tokens_used":         c.tokensUsed.Load(),
		"tokens_rejected":     c.tokensRejected.Load(),
		"permission_denied":   c.permissionDenied.Load(),
		"recovery_codes_used": c.recoveryCodesUsed.Load(),
	}
}

func (s *Service) now() time.Time { return s.opts.Now().UTC() }

// hash runs an argon2id password hash in one of the bounded slots.
func (s *Service) hash(ctx context.Context, password string) (string, error) {
	if err := s.acquire(ctx); err != nil {
		return "", err
	}
	defer s.release()
	return hashPassword(password, currentParams)
}

// verify checks a password against a stored hash in one of the bounded
// slots.
func (s *Service) verify(ctx context.Context, phc, password string) (ok, rehash bool, err error) {
	if err := s.acquire(ctx); err != nil {
		return false, false, err
	}
	defer s.release()
	return verifyPassword(phc, password)
}

func (s *Service) acquire(ctx context.Context) error {
	select {
	case s.hashSem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Service) release() { <-s.hashSem }

// dummy returns a hash of a random password, verified in place of a real
// one when the username is unknown, so an unknown user costs the same time
// as a known one.
func (s *Service) dummy() string {
	s.dummyOnce.Do(func() {
		h, err := hashPassword(rand.Text(), currentParams)
		if err != nil {
			// rand never fails on supported platforms; a malformed dummy
			// still costs a parse and never matches.
			s.log.Error("cannot make the dummy password hash", "err", err)
		}
		s.dummyHash = h
	})
	return s.dummyHash
}

// event builds an event of type typ about subject, attributed to the actor
// in ctx; remote, when given, overrides the actor's address.
func (s *Service) event(ctx context.Context, typ, subject, remote string, data any) bus.Event {
	a := actor.From(ctx)
	if remote == "" {
		remote = a.Remote
	}
	ev := bus.Event{ID: randomHex(16), Type: typ, Time: s.now(), Actor: a.Name, Remote: remote, Subject: subject}
	if data != nil {
		ev.Data = mustJSON(data)
	}
	return ev
}

// recordTx records evs in the ledger inside tx.
func (s *Service) recordTx(ctx context.Context, tx *store.Tx, evs ...bus.Event) error {
	if s.ledger == nil || len(evs) == 0 {
		return nil
	}
	if err := s.ledger.RecordTx(ctx, tx, evs...); err != nil {
		return fmt.Errorf("record %s in ledger: %w", evs[0].Type, err)
	}
	return nil
}

// recordSecurity records security events that change nothing else and
// publishes them. Failures are logged, not returned: refusing a login
// because the ledger is slow would help nobody.
func (s *Service) recordSecurity(ctx context.Context, evs ...bus.Event) {
	if s.ledger != nil && len(evs) > 0 {
		if err := s.ledger.Record(context.WithoutCancel(ctx), evs...); err != nil {
			s.log.Error("cannot record security event in ledger", "type", evs[0].Type, "subject", evs[0].Subject, "err", err)
		}
	}
	s.publish(ctx, evs...)
}

// publish sends committed events on the bus, logging failures.
func (s *Service) publish(ctx context.Context, evs ...bus.Event) {
	if s.pub == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	for _, ev := range evs {
		if err := s.pub.Publish(ctx, ev); err != nil {
			s.log.Warn("cannot publish event", "type", ev.Type, "subject", ev.Subject, "err", err)
		}
	}
}

// randomBytes returns n bytes from the system's CSPRNG, which never fails
// on the platforms Go supports.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func randomHex(n int) string { return hex.EncodeToString(randomBytes(n)) }

// sha256Hex is how secrets with enough entropy of their own (session and
// API tokens, pending login IDs, recovery codes) are stored.
func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// mustJSON encodes an event payload of plain values, which always encode;
// should one not, the event goes without its payload.
func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}
