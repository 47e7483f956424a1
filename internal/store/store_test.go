package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/fleetward/fleetward/internal/store"
	"github.com/fleetward/fleetward/internal/store/storetest"
)

func TestStoreMigratesAndRoundTripsOnBothEngines(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		ctx := context.Background()
		if _, err := e.DB.Exec(ctx, `INSERT INTO settings(name, value, updated_at) VALUES (?, ?, ?)`, "test.a", "1", 5); err != nil {
			t.Fatalf("insert: %v", err)
		}
		_, err := e.DB.Exec(ctx, `INSERT INTO settings(name, value, updated_at) VALUES (?, ?, ?)`, "test.a", "2", 6)
		if !store.IsUniqueViolation(err) {
			t.Fatalf("duplicate insert: got %v, want a unique violation", err)
		}
		wantErr := errors.New("roll me back")
		err = e.DB.InTx(ctx, func(tx *store.Tx) error {
			if _, err := tx.Exec(ctx, `UPDATE settings SET value = ? WHERE name = ?`, "3", "test.a"); err != nil {
				return err
			}
			return wantErr
		})
		if !errors.Is(err, wantErr) {
			t.Fatalf("InTx returned %v, want %v", err, wantErr)
		}
		var v string
		if err := e.DB.QueryRow(ctx, `SELECT value FROM settings WHERE name = ?`, "test.a").Scan(&v); err != nil {
			t.Fatalf("select: %v", err)
		}
		if v != "1" {
			t.Fatalf("value after rollback = %q, want 1", v)
		}
	})
}

func TestSQLiteRunsInWALWithForeignKeys(t *testing.T) {
	e := storetest.SQLite(t)
	ctx := context.Background()
	var mode string
	if err := e.DB.QueryRow(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q (%v), want wal", mode, err)
	}
	var fk int
	if err := e.DB.QueryRow(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
		t.Fatalf("foreign_keys = %d (%v), want 1", fk, err)
	}
}

func TestRebindNumbersPlaceholdersForPostgres(t *testing.T) {
	db := &store.DB{Dialect: store.Postgres}
	got := db.Rebind(`SELECT a FROM t WHERE b = ? AND c IN (?, ?)`)
	want := `SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)`
	if got != want {
		t.Fatalf("Rebind = %q, want %q", got, want)
	}
}

func TestPlaceholders(t *testing.T) {
	for _, c := range []struct {
		got, want string
	}{
		{store.Placeholders(0), ""}, {store.Placeholders(1), "?"}, {store.Placeholders(3), "?, ?, ?"},
		{store.Rows(0, 3), ""}, {store.Rows(1, 2), "(?, ?)"}, {store.Rows(3, 1), "(?), (?), (?)"},
		{store.Rows(2, 3), "(?, ?, ?), (?, ?, ?)"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
