package identity

import (
	"context"
	"testing"

	"github.com/fleetward/fleetward/internal/store/storetest"
)

// BenchmarkIssueDevice measures signing and storing one device certificate
// (ECDSA P-256 CA, SQLite), ledger record included.
func BenchmarkIssueDevice(b *testing.B) {
	ca := initCA(b, storetest.SQLite(b).DB)
	_, csr := deviceCSR(b, "bench-1")
	ctx := context.Background()
	for b.Loop() {
		if _, err := ca.IssueDevice(ctx, "bench-1", "", csr); err != nil {
			b.Fatal(err)
		}
	}
}
