package app_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/app"
	"github.com/fleetward/fleetward/internal/bus"
	"github.com/fleetward/fleetward/internal/inventory"
	"github.com/fleetward/fleetward/internal/ledger"
	"github.com/fleetward/fleetward/internal/secrets"
	"github.com/fleetward/fleetward/internal/store"
)

// quietLog keeps the servers' info lines out of the test output; warnings
// and errors still show.
func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// startServer starts fleetward on dir with a loopback listener. The
// returned stop stops it (once); it also runs when the test ends.
func startServer(t *testing.T, dir string, metricsPublic bool) (*app.Server, func() error) {
	t.Helper()
	s, err := app.Start(context.Background(), app.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", MetricsPublic: metricsPublic, Log: quietLog()})
	if err != nil {
		t.Fatalf("start server on %s: %v", dir, err)
	}
	var once sync.Once
	var stopErr error
	stop := func() error {
		once.Do(func() { stopErr = s.Stop() })
		return stopErr
	}
	t.Cleanup(func() { stop() })
	return s, stop
}

// collector subscribes to the bus and keeps what arrives.
type collector struct {
	mu     sync.Mutex
	events []bus.Event
}

func subscribe(t *testing.T, s *app.Server, name string, patterns ...string) *collector {
	t.Helper()
	c := &collector{}
	stop, err := s.Bus.Subscribe(context.Background(), name, patterns, func(_ context.Context, ev bus.Event) error {
		c.mu.Lock()
		c.events = append(c.events, ev)
		c.mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatalf("subscribe %s to %v: %v", name, patterns, err)
	}
	t.Cleanup(stop)
	return c
}

// waitFor returns the first n events, failing the test if they do not
// arrive within d.
func (c *collector) waitFor(t *testing.T, n int, d time.Duration) []bus.Event {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		c.mu.Lock()
		got := append([]bus.Event(nil), c.events...)
		c.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events arrived within %v: %s", len(got), n, d, describe(got))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func describe(evs []bus.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "\n  %s %s %s by %s", ev.ID, ev.Type, ev.Subject, ev.Actor)
	}
	return b.String()
}

// ledgerIndex is the ledger index the relay put in an event's id
// ("l<key hash>-<index>").
func ledgerIndex(t *testing.T, ev bus.Event) uint64 {
	t.Helper()
	i := strings.LastIndexByte(ev.ID, '-')
	n, err := strconv.ParseUint(ev.ID[i+1:], 10, 64)
	if i < 0 || err != nil {
		t.Fatalf("event id %q does not end in a ledger index", ev.ID)
	}
	return n
}

// ledgerEntries signs a checkpoint over everything recorded so far and
// returns every entry whose type starts with prefix, in ledger order.
func ledgerEntries(t *testing.T, l *ledger.Ledger, prefix string) []ledger.Entry {
	t.Helper()
	ctx := context.Background()
	cp, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	all, err := l.Entries(ctx, 0, cp.Size)
	if err != nil {
		t.Fatalf("ledger entries: %v", err)
	}
	var out []ledger.Entry
	for _, e := range all {
		if strings.HasPrefix(e.Type, prefix) {
			out = append(out, e)
		}
	}
	return out
}

// requireSameAsLedger checks that evs are exactly the entries, in order,
// with the same type, subject, actor, remote, time and data.
func requireSameAsLedger(t *testing.T, evs []bus.Event, entries []ledger.Entry) {
	t.Helper()
	if len(evs) != len(entries) {
		t.Fatalf("bus carried %d events, the ledger holds %d:%s", len(evs), len(entries), describe(evs))
	}
	for i, ev := range evs {
		e := entries[i]
		if idx := ledgerIndex(t, ev); idx != e.Index {
			t.Errorf("event %d carries ledger index %d, want %d (out of ledger order?)", i, idx, e.Index)
		}
		if ev.Type != e.Type || ev.Subject != e.Subject || ev.Actor != e.Actor || ev.Remote != e.Remote {
			t.Errorf("event %d = %s %s by %s from %q, ledger entry %d = %s %s by %s from %q",
				i, ev.Type, ev.Subject, ev.Actor, ev.Remote, e.Index, e.Type, e.Subject, e.Actor, e.Remote)
		}
		if !ev.Time.Equal(e.Time) {
			t.Errorf("event %d time %v, ledger %v", i, ev.Time, e.Time)
		}
		if string(ev.Data) != string(e.Data) {
			t.Errorf("event %d data %s, ledger %s", i, ev.Data, e.Data)
		}
	}
}

func TestRelayPublishesEveryInventoryChangeInLedgerOrderWithItsActor(t *testing.T) {
	s, _ := startServer(t, t.TempDir(), false)
	events := subscribe(t, s, "relay_order_test", "device.>")

	alice := actor.With(context.Background(), actor.Actor{Name: "operator:alice", Remote: "192.0.2.10"})
	ci := actor.With(context.Background(), actor.Actor{Name: "token:ci", Remote: "192.0.2.20"})
	// A site and a group are inventory changes too, but on other subjects:
	// "device.>" must not carry them.
	if _, err := s.Inventory.CreateSite(alice, inventory.Site{ID: "berlin", Name: "Berlin"}); err != nil {
		t.Fatal(err)
	}
	type want struct{ typ, subject, actor string }
	var wants []want
	for i := range 6 {
		ctx, who := alice, "operator:alice"
		if i%2 == 1 {
			ctx, who = ci, "token:ci"
		}
		id := fmt.Sprintf("cam-%d", i)
		if _, err := s.Inventory.CreateDevice(ctx, inventory.Device{ID: id, Name: "Camera " + id, Class: "camera",
			Location: inventory.Location{Site: "berlin"}}); err != nil {
			t.Fatal(err)
		}
		wants = append(wants, want{"device.created", id, who})
	}
	name := "Lobby camera"
	if _, err := s.Inventory.UpdateDevice(ci, "cam-0", inventory.DevicePatch{Name: &name}); err != nil {
		t.Fatal(err)
	}
	wants = append(wants, want{"device.updated", "cam-0", "token:ci"})
	if err := s.Inventory.DeleteDevice(alice, "cam-5"); err != nil {
		t.Fatal(err)
	}
	wants = append(wants, want{"device.deleted", "cam-5", "operator:alice"})
	if _, err := s.Inventory.CreateGroup(alice, inventory.Group{ID: "lobby", Name: "Lobby"}); err != nil {
		t.Fatal(err)
	}

	got := events.waitFor(t, len(wants), 15*time.Second)
	for i, w := range wants {
		if got[i].Type != w.typ || got[i].Subject != w.subject || got[i].Actor != w.actor {
			t.Errorf("event %d = %s %s by %s, want %s %s by %s", i, got[i].Type, got[i].Subject, got[i].Actor, w.typ, w.subject, w.actor)
		}
	}
	requireSameAsLedger(t, got, ledgerEntries(t, s.Ledger, "device."))
	// Nothing more arrives: no repeats, no site or group events.
	time.Sleep(time.Second)
	if extra := events.waitFor(t, 0, 0); len(extra) != len(wants) {
		t.Errorf("%d events arrived, want exactly %d:%s", len(extra), len(wants), describe(extra))
	}
}

func TestChangeMadeWithoutARunningServerReachesTheBusWhenItStarts(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	cli := actor.With(ctx, actor.Actor{Name: "cli:bob", Remote: "workstation"})

	// First a server runs and relays what it saw, then stops.
	s, stop := startServer(t, dir, false)
	if _, err := s.Inventory.CreateDevice(cli, inventory.Device{ID: "before", Name: "Before", Class: "sensor"}); err != nil {
		t.Fatal(err)
	}
	waitRelayed(t, s, 15*time.Second)
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}

	// A CLI command changes the inventory while no server runs.
	core, err := app.OpenCore(ctx, app.Config{DataDir: dir, Log: quietLog()})
	if err != nil {
		t.Fatalf("open core: %v", err)
	}
	if _, err := core.Inventory.CreateDevice(cli, inventory.Device{ID: "offline", Name: "Made offline", Class: "plc"}); err != nil {
		t.Fatal(err)
	}
	if err := core.Close(); err != nil {
		t.Fatalf("close core: %v", err)
	}

	s, _ = startServer(t, dir, false)
	got := subscribe(t, s, "offline_test", "device.>").waitFor(t, 2, 15*time.Second)
	requireSameAsLedger(t, got, ledgerEntries(t, s.Ledger, "device."))
	if got[1].Subject != "offline" || got[1].Actor != "cli:bob" || got[1].Remote != "workstation" {
		t.Errorf("offline change arrived as %s %s by %s from %q", got[1].Type, got[1].Subject, got[1].Actor, got[1].Remote)
	}
}

func TestChangeMadeByACLICommandWhileTheServerRunsReachesTheBus(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, _ := startServer(t, dir, false)
	events := subscribe(t, s, "cli_live_test", "device.>")

	// `fleetward token create` and friends open the core beside a running
	// server; the server's relay finds their ledger entries.
	core, err := app.OpenCore(ctx, app.Config{DataDir: dir, Log: quietLog()})
	if err != nil {
		t.Fatalf("open core beside a running server: %v", err)
	}
	cli := actor.With(ctx, actor.Actor{Name: "cli:carol"})
	if _, err := core.Inventory.CreateDevice(cli, inventory.Device{ID: "from-cli", Name: "From CLI", Class: "gateway"}); err != nil {
		t.Fatal(err)
	}
	if err := core.Close(); err != nil {
		t.Fatal(err)
	}
	got := events.waitFor(t, 1, 15*time.Second)
	if got[0].Subject != "from-cli" || got[0].Actor != "cli:carol" {
		t.Errorf("got %s %s by %s", got[0].Type, got[0].Subject, got[0].Actor)
	}
}

// streamCounts is what each stream holds: messages and last sequence.
func streamCounts(t *testing.T, s *app.Server) map[string][2]uint64 {
	t.Helper()
	stats, err := s.Bus.Stats(context.Background())
	if err != nil {
		t.Fatalf("bus stats: %v", err)
	}
	out := map[string][2]uint64{}
	for name, st := range stats {
		out[name] = [2]uint64{st.Messages, st.LastSeq}
	}
	return out
}

func totalMessages(counts map[string][2]uint64) uint64 {
	var n uint64
	for _, c := range counts {
		n += c[0]
	}
	return n
}

// waitRelayed signs a checkpoint over everything recorded so far and waits
// until the streams hold one message per ledger entry.
func waitRelayed(t *testing.T, s *app.Server, d time.Duration) uint64 {
	t.Helper()
	cp, err := s.Ledger.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(d)
	for {
		n := totalMessages(streamCounts(t, s))
		if n == cp.Size {
			return n
		}
		if n > cp.Size {
			t.Fatalf("the bus holds %d messages for %d ledger entries", n, cp.Size)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bus holds %d messages for %d ledger entries after %v", n, cp.Size, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// relayedTotal reads fleetward_bus_relayed_total from /metrics (public on
// these servers): how many entries this process published.
func relayedTotal(t *testing.T, s *app.Server) uint64 {
	t.Helper()
	rec := httptest.NewRecorder()
	s.API.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics = %d: %s", rec.Code, rec.Body)
	}
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "fleetward_bus_relayed_total "); ok {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				t.Fatalf("fleetward_bus_relayed_total %q: %v", v, err)
			}
			return n
		}
	}
	t.Fatal("/metrics lacks fleetward_bus_relayed_total")
	return 0
}

func TestRestartDoesNotPublishLedgerEntriesTwice(t *testing.T) {
	dir := t.TempDir()
	s, stop := startServer(t, dir, true)
	ctx := actor.With(context.Background(), actor.Actor{Name: "operator:alice"})
	for i := range 5 {
		if _, err := s.Inventory.CreateDevice(ctx, inventory.Device{ID: fmt.Sprintf("d-%d", i), Name: "Device", Class: "sensor"}); err != nil {
			t.Fatal(err)
		}
	}
	n := waitRelayed(t, s, 15*time.Second)
	if got := relayedTotal(t, s); got != n {
		t.Errorf("first run relayed %d entries, the streams hold %d", got, n)
	}
	before := streamCounts(t, s)
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// JetStream drops a repeated event id only within its duplicate window
	// (2 minutes), so the stream counts alone would not show a relay that
	// starts over; the relayed counter of the new process does.
	s, _ = startServer(t, dir, true)
	time.Sleep(2 * time.Second) // several relay ticks and a checkpoint
	if got := relayedTotal(t, s); got != 0 {
		t.Errorf("after a restart the relay published %d entries again", got)
	}
	after := streamCounts(t, s)
	for name, c := range before {
		if after[name] != c {
			t.Errorf("stream %s: %d messages (last seq %d) before the restart, %d (last seq %d) after",
				name, c[0], c[1], after[name][0], after[name][1])
		}
	}

	// It resumes where it stopped: one new change, one new message.
	if _, err := s.Inventory.CreateDevice(ctx, inventory.Device{ID: "d-new", Name: "New", Class: "sensor"}); err != nil {
		t.Fatal(err)
	}
	if n2 := waitRelayed(t, s, 15*time.Second); n2 != n+1 {
		t.Errorf("after one more change the bus holds %d messages, want %d", n2, n+1)
	}
	if got := relayedTotal(t, s); got != 1 {
		t.Errorf("the restarted relay published %d entries for one change", got)
	}
}

func TestConfigValidateNamesTheFlagAtFault(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  app.Config
		flag string
	}{
		{"no data directory", app.Config{}, "--data"},
		{"blank data directory", app.Config{DataDir: "  "}, "--data"},
		{"http without a port", app.Config{DataDir: "d", HTTPAddr: "127.0.0.1"}, "--http"},
		{"http as a URL", app.Config{DataDir: "d", HTTPAddr: "https://127.0.0.1:8443/"}, "--http"},
		{"http with an empty port", app.Config{DataDir: "d", HTTPAddr: "127.0.0.1:"}, "--http"},
		{"http with too many colons", app.Config{DataDir: "d", HTTPAddr: "::1:8443"}, "--http"},
		{"database as a file path", app.Config{DataDir: "d", DatabaseURL: "/var/lib/fleetward.db"}, "--database"},
		{"database of another engine", app.Config{DataDir: "d", DatabaseURL: "mysql://db/fleetward"}, "--database"},
		{"database as sqlite URL", app.Config{DataDir: "d", DatabaseURL: "sqlite:///tmp/x.db"}, "--database"},
		{"nats over http", app.Config{DataDir: "d", NATSURL: "http://127.0.0.1:4222"}, "--nats"},
		{"nats without a scheme", app.Config{DataDir: "d", NATSURL: "127.0.0.1:4222"}, "--nats"},
		{"nats over websocket", app.Config{DataDir: "d", NATSURL: "ws://127.0.0.1:8080"}, "--nats"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			if err == nil {
				t.Fatalf("Validate(%+v) = nil, want an error naming %s", c.cfg, c.flag)
			}
			// One fault, one message, and it starts with the flag.
			if !strings.HasPrefix(err.Error(), c.flag) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q does not start with %s (or names more than one fault)", err, c.flag)
			}
		})
	}

	t.Run("every fault at once is named", func(t *testing.T) {
		err := (&app.Config{HTTPAddr: "nope", DatabaseURL: "mysql://x", NATSURL: "http://x"}).Validate()
		for _, flag := range []string{"--data", "--http", "--database", "--nats"} {
			if err == nil || !strings.Contains(err.Error(), flag) {
				t.Errorf("error %v does not name %s", err, flag)
			}
		}
	})

	t.Run("good configurations pass and get defaults", func(t *testing.T) {
		for _, cfg := range []app.Config{
			{DataDir: "d"},
			{DataDir: "d", HTTPAddr: "[::1]:8443", DatabaseURL: "postgres://u:p@db:5432/fw", NATSURL: "nats://n:4222"},
			{DataDir: "d", HTTPAddr: "0.0.0.0:443", DatabaseURL: "postgresql://db/fw", NATSURL: "tls://n1:4222,tls://n2:4222"},
			{DataDir: "d", HTTPAddr: ":8443"},
		} {
			if err := cfg.Validate(); err != nil {
				t.Errorf("Validate(%+v) = %v", cfg, err)
			}
			if cfg.HTTPAddr == "" || cfg.Log == nil {
				t.Errorf("Validate left HTTPAddr %q, Log %v", cfg.HTTPAddr, cfg.Log)
			}
		}
		cfg := app.Config{DataDir: "d"}
		cfg.Validate()
		if cfg.HTTPAddr != app.DefaultHTTPAddr {
			t.Errorf("default --http = %q, want %q", cfg.HTTPAddr, app.DefaultHTTPAddr)
		}
	})

	t.Run("a bad configuration is refused before anything is written", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		_, err := app.Start(context.Background(), app.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", NATSURL: "http://127.0.0.1:4222", Log: quietLog()})
		if err == nil || !strings.Contains(err.Error(), "--nats") {
			t.Fatalf("Start with a bad --nats = %v, want an error naming --nats", err)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Start refused the configuration but created %s (%v)", dir, err)
		}
	})

	t.Run("a port that cannot be bound is reported against --http", func(t *testing.T) {
		_, err := app.Start(context.Background(), app.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:99999", Log: quietLog()})
		if err == nil || !strings.Contains(err.Error(), "--http") {
			t.Fatalf("Start with --http 127.0.0.1:99999 = %v, want an error naming --http", err)
		}
	})
}

func TestSecretsOnDiskAreReadableOnlyByTheOwner(t *testing.T) {
	t.Run("data directory made by fleetward", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		requireOwnerOnlyFiles(t, dir)
		requireMode(t, dir, 0o700)
	})
	t.Run("data directory made beforehand, readable by all", func(t *testing.T) {
		// A package or an operator may create /var/lib/fleetward 0755;
		// the files in it must still be the owner's alone.
		dir := filepath.Join(t.TempDir(), "data")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o755); err != nil { // whatever the umask
			t.Fatal(err)
		}
		requireOwnerOnlyFiles(t, dir)
	})
}

func requireMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Error(err)
		return
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s has mode %04o, want %04o", path, got, want)
	}
}

// requireOwnerOnlyFiles runs a server on dir, stores a device secret and
// checks the files that hold secrets are 0600.
func requireOwnerOnlyFiles(t *testing.T, dir string) {
	t.Helper()
	s, _ := startServer(t, dir, false)
	// Write something so the database has its WAL files.
	ctx := actor.With(context.Background(), actor.Actor{Name: "operator:alice"})
	if _, err := s.Inventory.CreateDevice(ctx, inventory.Device{Name: "Device", Class: "sensor",
		Secrets: map[string]string{"admin_password": "hunter2"}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		want os.FileMode
	}{
		{filepath.Join(dir, secrets.KeyFile), 0o600},
		{filepath.Join(dir, store.SQLiteFile), 0o600},
		{filepath.Join(dir, "tls", "server.key"), 0o600},
	} {
		requireMode(t, c.path, c.want)
	}
	// SQLite's write-ahead log holds recent rows before they reach the
	// main file: it is as private as the database.
	for _, suffix := range []string{"-wal", "-shm"} {
		path := filepath.Join(dir, store.SQLiteFile+suffix)
		fi, err := os.Stat(path)
		if err != nil {
			continue // not every moment has them
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s has mode %04o: group or others may read recent database pages", path, perm)
		}
	}
}
