package ledger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"

	"github.com/fleetward/fleetward/internal/secrets"
	"github.com/fleetward/fleetward/internal/store"
	"github.com/fleetward/fleetward/internal/store/storetest"
)

// BenchmarkAppendSingle appends one entry per transaction.
func BenchmarkAppendSingle(b *testing.B) { benchmarkAppend(b, 1) }

// BenchmarkAppendBatch100 appends 100 entries per transaction.
func BenchmarkAppendBatch100(b *testing.B) { benchmarkAppend(b, 100) }

func benchmarkAppend(b *testing.B, batch int) {
	for _, e := range storetest.Engines(b) {
		b.Run(e.Name, func(b *testing.B) {
			ctx := context.Background()
			l := openLedger(b, e.DB, newKeyring(b))
			entries := make([]Entry, batch)
			for i := range entries {
				entries[i] = sampleEntry(i)
			}
			n := 0
			for b.Loop() {
				if _, err := l.Append(ctx, entries...); err != nil {
					b.Fatal(err)
				}
				n += batch
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

// BenchmarkSHA256 measures raw hashing of entry-sized inputs, the ceiling
// for appends, and the canonical encoding plus leaf hash of a real entry.
func BenchmarkSHA256(b *testing.B) {
	e := sampleEntry(1)
	e.Time = time.Now()
	canon, err := CanonicalBytes(e)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("raw", func(b *testing.B) {
		b.SetBytes(int64(len(canon)))
		for b.Loop() {
			sha256.Sum256(canon)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "hashes/s")
	})
	b.Run("canonical+leaf", func(b *testing.B) {
		b.SetBytes(int64(len(canon)))
		for b.Loop() {
			if _, err := LeafHash(e); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "hashes/s")
	})
	b.Logf("entry size %d bytes", len(canon))
}

// BenchmarkInclusionProof1M measures inclusion proofs in a large ledger:
// 100k entries, or 1M with FLEETWARD_BENCH_1M=1. The SQLite ledger is built
// once and kept under the system temporary directory for later runs; the
// PostgreSQL one is built in a fresh schema each run.
func BenchmarkInclusionProof1M(b *testing.B) {
	size := uint64(100_000)
	if os.Getenv("FLEETWARD_BENCH_1M") == "1" {
		size = 1_000_000
	}
	ctx := context.Background()
	// A fixed master key so the cached ledger opens on the next run.
	kr, err := secrets.New(bytes.Repeat([]byte{0x42}, secrets.KeySize))
	if err != nil {
		b.Fatal(err)
	}
	type engine struct {
		name string
		db   *store.DB
	}
	dir := filepath.Join(os.TempDir(), "fleetward-bench-ledger-"+strconv.FormatUint(size, 10))
	sdb, err := store.Open(ctx, store.Config{Dir: dir})
	if err != nil {
		// A cache from an older schema (say, a migration numbered below one
		// already applied) is rebuilt rather than repaired.
		b.Logf("rebuilding the cached ledger in %s: %v", dir, err)
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		if sdb, err = store.Open(ctx, store.Config{Dir: dir}); err != nil {
			b.Fatal(err)
		}
	}
	defer sdb.Close()
	engines := []engine{{"sqlite", sdb}}
	if pg, ok := storetest.Postgres(b); ok {
		engines = append(engines, engine{"postgres", pg.DB})
	}
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			l, err := Open(ctx, e.db, Options{Sealer: kr})
			if err != nil {
				b.Fatal(err)
			}
			buildBenchLedger(b, l, size)
			cp, err := l.Checkpoint(ctx)
			if err != nil || cp.Size != size {
				b.Fatalf("checkpoint %d, %v; want %d", cp.Size, err, size)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			for b.Loop() {
				if _, err := l.InclusionProof(ctx, rng.Uint64N(size), size); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "us/proof")

			// The proofs must also be right.
			i := size / 3
			p, err := l.InclusionProof(ctx, i, size)
			if err != nil {
				b.Fatal(err)
			}
			es, err := l.Entries(ctx, i, i+1)
			if err != nil || len(es) != 1 {
				b.Fatal(es, err)
			}
			leaf, _ := LeafHash(es[0])
			if err := proof.VerifyInclusion(hasher, i, size, leaf, p, cp.Root); err != nil {
				b.Fatalf("proof of %d in %d does not verify: %v", i, size, err)
			}
		})
	}
}

// buildBenchLedger appends sample entries until the ledger holds size, in
// large batches.
func buildBenchLedger(b *testing.B, l *Ledger, size uint64) {
	ctx := context.Background()
	h, err := readHead(ctx, l.db, "")
	if err != nil {
		b.Fatal(err)
	}
	if h.size > size {
		b.Fatalf("cached ledger holds %d entries, more than %d", h.size, size)
	}
	if h.size == size {
		return
	}
	start, from := time.Now(), h.size
	const batch = 10_000
	entries := make([]Entry, batch)
	for at := h.size; at < size; {
		n := min(batch, size-at)
		for i := range n {
			entries[i] = sampleEntry(int(at + i))
		}
		if _, err := l.Append(ctx, entries[:n]...); err != nil {
			b.Fatal(err)
		}
		at += n
		if at%250_000 == 0 {
			b.Logf("built %d/%d entries", at, size)
		}
	}
	took := time.Since(start)
	b.Logf("built %d entries in %v (%.0f entries/s)", size-from, took.Round(time.Millisecond), float64(size-from)/took.Seconds())
}
