package main

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/fleetward/fleetward/internal/store"
)

// TestLedgerVerifyCommandNamesTheEditedEntry changes one stored ledger
// entry directly in the SQLite file, as an intruder with file access
// would, and shows that `fleetward ledger verify --data` exits 2 and names
// that entry, while the untouched ledger verifies with exit 0.
func TestLedgerVerifyCommandNamesTheEditedEntry(t *testing.T) {
	bin := buildBinary(t)
	data := t.TempDir()
	for _, name := range []string{"first", "second", "third", "fourth"} {
		if _, err := runCLI(t, bin, "", "token", "create", "--data", data, "--name", name, "--role", "auditor"); err != nil {
			t.Fatalf("token create: %v", err)
		}
	}
	out, err := runCLI(t, bin, "", "ledger", "verify", "--data", data)
	if err != nil {
		t.Fatalf("intact ledger: %v\n%s", err, out)
	}
	if !strings.Contains(out, "ledger OK") {
		t.Fatalf("intact ledger report: %s", out)
	}

	db, err := store.Open(context.Background(), store.Config{Dir: data})
	if err != nil {
		t.Fatal(err)
	}
	res, err := db.Exec(context.Background(), `UPDATE ledger_entries SET actor = ? WHERE idx = ?`, "cli:mallory", 2)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("edited %d rows, want 1", n)
	}
	db.Close()

	out, err = runCLI(t, bin, "", "ledger", "verify", "--data", data)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("verify of an edited ledger: err %v (want exit status 2)\n%s", err, out)
	}
	if !strings.Contains(out, "TAMPERED") || !strings.Contains(out, "entry 2") {
		t.Fatalf("the report does not name entry 2:\n%s", out)
	}
	t.Logf("verify reported:\n%s", out)
}
