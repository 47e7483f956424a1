package auth

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/bus"
	"github.com/fleetward/fleetward/internal/ledger"
	"github.com/fleetward/fleetward/internal/secrets"
	"github.com/fleetward/fleetward/internal/store"
	"github.com/fleetward/fleetward/internal/store/storetest"
)

// clock is a settable time source for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// recorder is a bus.Publisher that keeps what it was given. The real bus
// (NATS) is not needed to see that the service publishes after commit.
type recorder struct {
	mu  sync.Mutex
	evs []bus.Event
}

func (r *recorder) Publish(_ context.Context, ev bus.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, ev)
	return nil
}

func (r *recorder) types() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.evs))
	for i, ev := range r.evs {
		out[i] = ev.Type
	}
	return out
}

// fixture is a Service over a real database, the real ledger and a real
// keyring, with a clock the test moves.
type fixture struct {
	svc    *Service
	db     *store.DB
	ledger *ledger.Ledger
	keys   *secrets.Keyring
	pub    *recorder
	clock  *clock
	ctx    context.Context
}

// testPassword is a password every rule accepts.
const testPassword = "plum orchard at dusk 42"

func newFixture(t testing.TB, e storetest.Engine, mfaForAdmins bool) *fixture {
	t.Helper()
	master := make([]byte, secrets.KeySize)
	_, _ = rand.Read(master)
	kr, err := secrets.New(master)
	if err != nil {
		t.Fatalf("keyring: %v", err)
	}
	ctx := actor.With(context.Background(), actor.Actor{Name: "cli:test"})
	log := slog.New(slog.DiscardHandler)
	lg, err := ledger.Open(ctx, e.DB, ledger.Options{Sealer: kr, Log: log})
	if err != nil {
		t.Fatalf("open ledger: %v", err)
	}
	c := &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	pub := &recorder{}
	svc := NewService(e.DB, lg, pub, kr, log, Options{Now: c.Now, AdminsWithoutMFAInsecure: !mfaForAdmins})
	return &fixture{svc: svc, db: e.DB, ledger: lg, keys: kr, pub: pub, clock: c, ctx: ctx}
}

// operator creates an operator with testPassword.
func (f *fixture) operator(t *testing.T, username string, role Role) Operator {
	t.Helper()
	op, err := f.svc.CreateOperator(f.ctx, username, testPassword, role)
	if err != nil {
		t.Fatalf("create operator %s: %v", username, err)
	}
	return op
}

// login logs in with the password and expects a session.
func (f *fixture) login(t *testing.T, username, remote string) Session {
	t.Helper()
	res, err := f.svc.Login(f.ctx, username, testPassword, remote)
	if err != nil {
		t.Fatalf("login %s: %v", username, err)
	}
	if res.Session == nil {
		t.Fatalf("login %s: got a pending second step, want a session", username)
	}
	return *res.Session
}

// entries returns the ledger entries of a type, oldest first.
func (f *fixture) entries(t *testing.T, typ string) []ledger.Entry {
	t.Helper()
	es, err := f.ledger.EntriesByType(f.ctx, typ, 1000)
	if err != nil {
		t.Fatalf("ledger entries %s: %v", typ, err)
	}
	out := make([]ledger.Entry, 0, len(es))
	for i := len(es) - 1; i >= 0; i-- {
		if es[i].Type == typ {
			out = append(out, es[i])
		}
	}
	return out
}

// data decodes an entry's payload.
func data(t *testing.T, e ledger.Entry) map[string]any {
	t.Helper()
	m := map[string]any{}
	if len(e.Data) > 0 {
		if err := json.Unmarshal(e.Data, &m); err != nil {
			t.Fatalf("entry %d data %s: %v", e.Index, e.Data, err)
		}
	}
	return m
}

// wantCode fails unless err carries code.
func wantCode(t *testing.T, err error, code apperr.Code) *apperr.Error {
	t.Helper()
	if !apperr.Is(err, code) {
		t.Fatalf("error = %v, want code %s", err, code)
	}
	return apperr.As(err)
}

// wantField fails unless err is Invalid about field.
func wantField(t *testing.T, err error, field string) {
	t.Helper()
	e := wantCode(t, err, apperr.Invalid)
	if e.Field != field {
		t.Fatalf("error %v names field %q, want %q", err, e.Field, field)
	}
}

// wantMessage fails unless err's message contains part.
func wantMessage(t *testing.T, err error, part string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), part) {
		t.Fatalf("error = %v, want it to say %q", err, part)
	}
}
