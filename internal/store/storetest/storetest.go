// Package storetest opens real databases for tests: a SQLite file in the
// test's temporary directory and, when a server is reachable, a fresh schema
// on PostgreSQL. Every store test runs against both engines through Engines.
//
// PostgreSQL is found at $FLEETWARD_TEST_POSTGRES (default
// postgres://127.0.0.1:5432/test?sslmode=disable). When
// FLEETWARD_REQUIRE_POSTGRES=1 (as in CI) an unreachable server fails the
// test instead of skipping the PostgreSQL run.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/fleetward/fleetward/internal/store"
)

// DefaultPostgresURL is used when FLEETWARD_TEST_POSTGRES is unset.
const DefaultPostgresURL = "postgres://127.0.0.1:5432/test?sslmode=disable"

// PostgresURL returns the server URL tests use.
func PostgresURL() string {
	if u := os.Getenv("FLEETWARD_TEST_POSTGRES"); u != "" {
		return u
	}
	return DefaultPostgresURL
}

// RequirePostgres reports whether an unreachable PostgreSQL fails tests.
func RequirePostgres() bool { return os.Getenv("FLEETWARD_REQUIRE_POSTGRES") == "1" }

var (
	reachOnce sync.Once
	reachErr  error
)

func postgresReachable() error {
	reachOnce.Do(func() {
		db, err := sql.Open("pgx", PostgresURL())
		if err != nil {
			reachErr = err
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		reachErr = db.PingContext(ctx)
	})
	return reachErr
}

// Engine is one opened database.
type Engine struct {
	Name string // "sqlite" or "postgres"
	DB   *store.DB
	// Dir is the data directory (SQLite's file lives there); also set for
	// PostgreSQL so tests have a place for other files.
	Dir string
	// URL is the PostgreSQL connection string with the test's schema, or "".
	URL string
}

// Engines opens a fresh, migrated database on each available engine. The
// databases are closed (and the PostgreSQL schema dropped) when the test
// ends.
func Engines(t testing.TB) []Engine {
	t.Helper()
	out := []Engine{SQLite(t)}
	if pg, ok := Postgres(t); ok {
		out = append(out, pg)
	}
	return out
}

// Run calls fn as a subtest for each engine from Engines.
func Run(t *testing.T, fn func(t *testing.T, e Engine)) {
	t.Helper()
	for _, e := range Engines(t) {
		t.Run(e.Name, func(t *testing.T) { fn(t, e) })
	}
}

// SQLite opens a fresh SQLite database in a temporary directory.
func SQLite(t testing.TB) Engine {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(context.Background(), store.Config{Dir: dir})
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return Engine{Name: "sqlite", DB: db, Dir: dir}
}

// Postgres opens a fresh schema on the test server. It returns false (and
// logs why) when the server is unreachable and not required.
func Postgres(t testing.TB) (Engine, bool) {
	t.Helper()
	if err := postgresReachable(); err != nil {
		if RequirePostgres() {
			t.Fatalf("postgres at %s is required (FLEETWARD_REQUIRE_POSTGRES=1) but unreachable: %v", PostgresURL(), err)
		}
		t.Logf("postgres at %s unreachable, running sqlite only: %v", PostgresURL(), err)
		return Engine{}, false
	}
	url, drop := NewSchema(t)
	db, err := store.Open(context.Background(), store.Config{URL: url})
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() {
		db.Close()
		drop()
	})
	return Engine{Name: "postgres", DB: db, Dir: t.TempDir(), URL: url}, true
}

// NewSchema creates an empty schema on the test server and returns a
// connection URL whose search_path points at it, and a function that drops
// it.
func NewSchema(t testing.TB) (string, func()) {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "fwtest_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", PostgresURL())
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	u, err := url.Parse(PostgresURL())
	if err != nil {
		t.Fatalf("postgres url: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), func() {
		_, _ = admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		admin.Close()
	}
}
