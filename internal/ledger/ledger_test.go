package ledger

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"golang.org/x/mod/sumdb/note"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/bus"
	"github.com/fleetward/fleetward/internal/secrets"
	"github.com/fleetward/fleetward/internal/store"
	"github.com/fleetward/fleetward/internal/store/storetest"
)

func newKeyring(t testing.TB) *secrets.Keyring {
	t.Helper()
	key := make([]byte, secrets.KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	k, err := secrets.New(key)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func openLedger(t testing.TB, db *store.DB, sealer Sealer) *Ledger {
	t.Helper()
	l, err := Open(context.Background(), db, Options{Sealer: sealer})
	if err != nil {
		t.Fatalf("open ledger: %v", err)
	}
	return l
}

// sampleEntry is an entry of about 300 bytes, like a device change.
func sampleEntry(i int) Entry {
	data := fmt.Sprintf(`{"id":"dev-%d","changes":{"firmware":{"from":"1.2.%d","to":"1.3.0"},"site":"plant <b> & \"north\""},"seq":%d}`, i%97, i%10, i)
	return Entry{
		Type: "device.updated", Actor: "operator:alice", Remote: "192.0.2.10:51515",
		Subject: fmt.Sprintf("dev-%d", i%97), Data: json.RawMessage(data),
	}
}

func appendN(t testing.TB, l *Ledger, from, n, batch int) {
	t.Helper()
	for done := 0; done < n; {
		k := min(batch, n-done)
		es := make([]Entry, k)
		for i := range es {
			es[i] = sampleEntry(from + done + i)
		}
		if _, err := l.Append(context.Background(), es...); err != nil {
			t.Fatalf("append: %v", err)
		}
		done += k
	}
}

// refRoot is RFC 6962's Merkle Tree Hash, written from the definition.
func refRoot(leaves [][]byte) []byte {
	switch len(leaves) {
	case 0:
		s := sha256.Sum256(nil)
		return s[:]
	case 1:
		return leaves[0]
	}
	k := 1 << (bits.Len(uint(len(leaves)-1)) - 1)
	return hasher.HashChildren(refRoot(leaves[:k]), refRoot(leaves[k:]))
}

func allLeaves(t *testing.T, l *Ledger, n uint64) [][]byte {
	t.Helper()
	var leaves [][]byte
	for from := uint64(0); from < n; from += MaxRange {
		es, err := l.Entries(context.Background(), from, min(from+MaxRange, n))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			h, err := LeafHash(e)
			if err != nil {
				t.Fatal(err)
			}
			leaves = append(leaves, h)
		}
	}
	if uint64(len(leaves)) != n {
		t.Fatalf("read %d entries, want %d", len(leaves), n)
	}
	return leaves
}

func TestProofsVerifyAgainstSignedRoots(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		ctx := context.Background()
		l := openLedger(t, e.DB, newKeyring(t))
		sizes := []uint64{1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 200}
		roots := map[uint64][]byte{}
		var size uint64
		for _, s := range sizes {
			appendN(t, l, int(size), int(s-size), 7)
			size = s
			cp, err := l.Checkpoint(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if cp.Size != s {
				t.Fatalf("checkpoint size %d, want %d", cp.Size, s)
			}
			roots[s] = cp.Root
		}
		leaves := allLeaves(t, l, size)
		for _, s := range sizes {
			if want := refRoot(leaves[:s]); !bytes.Equal(roots[s], want) {
				t.Fatalf("signed root at size %d differs from RFC 6962's definition", s)
			}
		}
		for _, s := range sizes {
			indexes := []uint64{0, s / 2, s - 1}
			for p := uint64(1); p < s; p <<= 1 {
				indexes = append(indexes, p-1, p, min(p+1, s-1))
			}
			for _, i := range indexes {
				p, err := l.InclusionProof(ctx, i, s)
				if err != nil {
					t.Fatalf("inclusion proof of %d in %d: %v", i, s, err)
				}
				if err := proof.VerifyInclusion(hasher, i, s, leaves[i], p, roots[s]); err != nil {
					t.Fatalf("inclusion proof of %d in %d does not verify: %v", i, s, err)
				}
			}
		}
		for i, s1 := range sizes {
			for _, s2 := range sizes[i:] {
				p, err := l.ConsistencyProof(ctx, s1, s2)
				if err != nil {
					t.Fatalf("consistency proof %d→%d: %v", s1, s2, err)
				}
				if err := proof.VerifyConsistency(hasher, s1, s2, p, roots[s1], roots[s2]); err != nil {
					t.Fatalf("consistency proof %d→%d does not verify: %v", s1, s2, err)
				}
			}
		}
		if p, err := l.ConsistencyProof(ctx, 0, 17); err != nil || len(p) != 0 {
			t.Fatalf("consistency proof from the empty tree = %v, %v; want an empty proof", p, err)
		}

		bad := []struct {
			name string
			call func() error
			code apperr.Code
		}{
			{"an inclusion proof in an empty tree is invalid", func() error { _, err := l.InclusionProof(ctx, 0, 0); return err }, apperr.Invalid},
			{"an index at the size is invalid", func() error { _, err := l.InclusionProof(ctx, 200, 200); return err }, apperr.Invalid},
			{"a size beyond the latest checkpoint is not found", func() error { _, err := l.InclusionProof(ctx, 0, 201); return err }, apperr.NotFound},
			{"a consistency proof backwards is invalid", func() error { _, err := l.ConsistencyProof(ctx, 9, 8); return err }, apperr.Invalid},
			{"a consistency proof beyond the latest checkpoint is not found", func() error { _, err := l.ConsistencyProof(ctx, 1, 1000); return err }, apperr.NotFound},
		}
		for _, tt := range bad {
			if err := tt.call(); !apperr.Is(err, tt.code) {
				t.Errorf("%s: error %v, want code %s", tt.name, err, tt.code)
			}
		}
	})
}

func TestCheckpointsAreSignedNotesInTheCheckpointFormat(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		ctx := context.Background()
		l := openLedger(t, e.DB, newKeyring(t))
		empty, err := l.Latest(ctx)
		if err != nil || empty.Size != 0 || empty.Note != nil || !bytes.Equal(empty.Root, refRoot(nil)) {
			t.Fatalf("latest before any checkpoint = %+v, %v; want an unsigned empty tree", empty, err)
		}
		appendN(t, l, 0, 10, 10)
		cp, err := l.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		v, err := note.NewVerifier(l.VerifierKey())
		if err != nil {
			t.Fatal(err)
		}
		n, err := note.Open(cp.Note, note.VerifierList(v))
		if err != nil {
			t.Fatalf("checkpoint note does not verify: %v", err)
		}
		want := fmt.Sprintf("fleetward ledger\n10\n%s\n", b64(cp.Root))
		if n.Text != want {
			t.Fatalf("checkpoint text %q, want %q", n.Text, want)
		}
		again, err := l.Checkpoint(ctx)
		if err != nil || again.Size != 10 || !bytes.Equal(again.Note, cp.Note) {
			t.Fatalf("checkpoint without growth = %d, %v; want the stored one", again.Size, err)
		}
		latest, err := l.Latest(ctx)
		if err != nil || !bytes.Equal(latest.Note, cp.Note) || !latest.Time.Equal(cp.Time) {
			t.Fatalf("latest = %+v, %v; want %+v", latest, err, cp)
		}
	})
}

func TestRecordTx(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		ctx := actor.With(context.Background(), actor.Actor{Name: "operator:bob", Remote: "198.51.100.7:443"})
		l := openLedger(t, e.DB, newKeyring(t))
		appendN(t, l, 0, 3, 3)
		headBefore, err := readHead(ctx, e.DB, "")
		if err != nil {
			t.Fatal(err)
		}

		t.Run("a rolled back transaction leaves no entry and the head unchanged", func(t *testing.T) {
			errAbort := errors.New("abort")
			err := e.DB.InTx(ctx, func(tx *store.Tx) error {
				if err := l.RecordTx(ctx, tx, bus.Event{Type: "device.created", Subject: "dev-x"}); err != nil {
					return err
				}
				return errAbort
			})
			if !errors.Is(err, errAbort) {
				t.Fatalf("InTx = %v", err)
			}
			h, err := readHead(ctx, e.DB, "")
			if err != nil || h.size != 3 || !equalHashes(h.hashes, headBefore.hashes) {
				t.Fatalf("head after rollback: size %d, %v; want the head before", h.size, err)
			}
			if es, _ := l.Entries(ctx, 0, 10); len(es) != 3 {
				t.Fatalf("%d entries after rollback, want 3", len(es))
			}
		})
		t.Run("a committed transaction records the events with the actor from the context", func(t *testing.T) {
			err := e.DB.InTx(ctx, func(tx *store.Tx) error {
				return l.RecordTx(ctx, tx,
					bus.Event{Type: "device.created", Subject: "dev-x", Data: json.RawMessage(`{ "name" : "cam" }`)},
					bus.Event{Type: "device.updated", Subject: "dev-x", Actor: "system"})
			})
			if err != nil {
				t.Fatal(err)
			}
			es, err := l.Entries(ctx, 3, 10)
			if err != nil || len(es) != 2 {
				t.Fatalf("entries = %d, %v; want 2", len(es), err)
			}
			if es[0].Index != 3 || es[0].Actor != "operator:bob" || es[0].Remote != "198.51.100.7:443" || string(es[0].Data) != `{"name":"cam"}` {
				t.Fatalf("first recorded entry = %+v", es[0])
			}
			if es[1].Actor != "system" || es[1].Remote != "" {
				t.Fatalf("an event's own actor was replaced: %+v", es[1])
			}
			if rep, err := Verify(ctx, e.DB, nil); err != nil || !rep.OK {
				t.Fatalf("verify after RecordTx: %+v, %v", rep, err)
			}
		})
	})
}

func TestAppendStoresWhatItHashes(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		ctx := context.Background()
		l := openLedger(t, e.DB, newKeyring(t))
		at := time.Date(2026, 3, 1, 12, 30, 0, 123456789, time.FixedZone("CET", 3600))
		tests := []struct {
			name  string
			in    Entry
			check func(t *testing.T, got Entry)
			field string // non-empty: an Invalid error on this field is expected
		}{
			{name: "a full entry round-trips with its time in UTC to the nanosecond",
				in: Entry{Time: at, Type: "device.created", Actor: "operator:alice", Remote: "[2001:db8::1]:443", Subject: "dev-1", Data: json.RawMessage(`{"a": [1, 2]}`)},
				check: func(t *testing.T, got Entry) {
					if !got.Time.Equal(at) || got.Time.Location() != time.UTC || string(got.Data) != `{"a":[1,2]}` {
						t.Fatalf("stored %+v", got)
					}
				}},
			{name: "a zero time becomes the append time",
				in: Entry{Type: "system.started"},
				check: func(t *testing.T, got Entry) {
					if time.Since(got.Time) > time.Minute || got.Data != nil {
						t.Fatalf("stored %+v", got)
					}
				}},
			{name: "null data is stored as none", in: Entry{Type: "x.y", Data: json.RawMessage(`null`)},
				check: func(t *testing.T, got Entry) {
					if got.Data != nil {
						t.Fatalf("data %q, want none", got.Data)
					}
				}},
			{name: "NUL and invalid UTF-8 in strings become U+FFFD", in: Entry{Type: "x.y", Subject: "a\x00b\xffc", Actor: "tab\there"},
				check: func(t *testing.T, got Entry) {
					if got.Subject != "a\uFFFDb\uFFFDc" || got.Actor != "tab\there" {
						t.Fatalf("stored subject %q actor %q", got.Subject, got.Actor)
					}
				}},
			{name: "an entry without a type is refused", in: Entry{Actor: "system"}, field: "type"},
			{name: "data that is not JSON is refused", in: Entry{Type: "x.y", Data: json.RawMessage(`{"a":`)}, field: "data"},
			{name: "an oversized subject is refused", in: Entry{Type: "x.y", Subject: strings.Repeat("s", maxFieldBytes+1)}, field: "subject"},
			{name: "a time beyond 2262 is refused", in: Entry{Type: "x.y", Time: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}, field: "time"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				idx, err := l.Append(ctx, tt.in)
				if tt.field != "" {
					if ae := apperr.As(err); ae == nil || ae.Code != apperr.Invalid || ae.Field != tt.field {
						t.Fatalf("append error = %v; want invalid %s", err, tt.field)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				es, err := l.Entries(ctx, idx[0], idx[0]+1)
				if err != nil || len(es) != 1 {
					t.Fatalf("read back: %v, %v", es, err)
				}
				tt.check(t, es[0])
			})
		}
		if rep, err := Verify(ctx, e.DB, nil); err != nil || !rep.OK {
			t.Fatalf("verify: %+v, %v", rep, err)
		}
	})
}

func TestCanonicalBytesAreTheDocumentedEncoding(t *testing.T) {
	e := Entry{Index: 42, Time: time.Date(2026, 1, 2, 3, 4, 5, 600000000, time.UTC), Type: "device.updated",
		Actor: "operator:\"al\\ice\"", Remote: "", Subject: "<cam>&\n\u00e9", Data: json.RawMessage(`{"k":"<v>"}`)}
	got, err := CanonicalBytes(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"index":42,"time":"2026-01-02T03:04:05.6Z","type":"device.updated","actor":"operator:\"al\\ice\"",` +
		`"remote":"","subject":"<cam>&\u000a` + "\u00e9" + `","data":{"k":"<v>"}}`
	if string(got) != want {
		t.Fatalf("canonical bytes\n got %s\nwant %s", got, want)
	}
	// The canonical form is JSON that decodes back to the entry.
	var back Entry
	if err := json.Unmarshal(got, &back); err != nil || back.Subject != e.Subject || back.Actor != e.Actor {
		t.Fatalf("canonical bytes do not decode back: %+v, %v", back, err)
	}
	leaf, _ := LeafHash(e)
	sum := sha256.Sum256(append([]byte{0}, got...))
	if !bytes.Equal(leaf, sum[:]) {
		t.Fatal("leaf hash is not SHA-256(0x00 || canonical bytes)")
	}
}

func TestQueries(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		ctx := context.Background()
		l := openLedger(t, e.DB, newKeyring(t))
		for i := range 30 {
			typ := "device.updated"
			if i%3 == 0 {
				typ = "security.login_failed"
			}
			if _, err := l.Append(ctx, Entry{Type: typ, Subject: fmt.Sprintf("s%d", i%2)}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := l.Append(ctx, Entry{Type: "securityX.other"}); err != nil {
			t.Fatal(err)
		}
		es, err := l.EntriesBySubject(ctx, "s1", 5)
		if err != nil || len(es) != 5 || es[0].Index != 29 || es[4].Index != 21 {
			t.Fatalf("by subject = %v, %v; want 29, 27, …, 21", indexes(es), err)
		}
		es, err = l.EntriesByType(ctx, "security.", 0)
		if err != nil || len(es) != 10 || es[0].Index != 27 {
			t.Fatalf("by type prefix = %v, %v; want the 10 security entries newest first", indexes(es), err)
		}
		es, err = l.EntriesByType(ctx, "SECURITY.", 0)
		if err != nil || len(es) != 0 {
			t.Fatalf("type prefixes must be case-sensitive, got %v, %v", indexes(es), err)
		}
		es, err = l.Entries(ctx, 25, 40)
		if err != nil || !slices.Equal(indexes(es), []uint64{25, 26, 27, 28, 29, 30}) {
			t.Fatalf("range = %v, %v", indexes(es), err)
		}
		if _, err := l.Entries(ctx, 5, 4); !apperr.Is(err, apperr.Invalid) {
			t.Fatalf("backwards range error = %v", err)
		}
		if _, err := l.Entries(ctx, 0, MaxRange+1); !apperr.Is(err, apperr.Invalid) {
			t.Fatalf("oversized range error = %v", err)
		}
		if es, err := l.Entries(ctx, 1<<63, 1<<63+5); err != nil || len(es) != 0 {
			t.Fatalf("a range beyond int64 = %v, %v", es, err)
		}
	})
}

func indexes(es []Entry) []uint64 {
	out := make([]uint64, len(es))
	for i, e := range es {
		out[i] = e.Index
	}
	return out
}

func TestOpenKeepsOneSealedSigningKey(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		ctx := context.Background()
		kr := newKeyring(t)
		l1 := openLedger(t, e.DB, kr)
		l2 := openLedger(t, e.DB, kr)
		if l1.VerifierKey() != l2.VerifierKey() || !strings.HasPrefix(l1.VerifierKey(), "fleetward-ledger+") {
			t.Fatalf("verifier keys %q and %q; want one key named fleetward-ledger", l1.VerifierKey(), l2.VerifierKey())
		}
		sealed, err := readSetting(ctx, e.DB, SettingSigningKey)
		if err != nil || !strings.HasPrefix(sealed, "fwsec1:") || strings.Contains(sealed, "PRIVATE") {
			t.Fatalf("stored signing key %q, %v; want it sealed", sealed, err)
		}
		if vk, _ := readSetting(ctx, e.DB, SettingVerifierKey); vk != l1.VerifierKey() {
			t.Fatalf("stored verifier key %q, want %q", vk, l1.VerifierKey())
		}
		if _, err := Open(ctx, e.DB, Options{Sealer: newKeyring(t)}); err == nil || !strings.Contains(err.Error(), "master key") {
			t.Fatalf("open with another master key = %v; want an error about the master key", err)
		}
		if _, err := Open(ctx, e.DB, Options{}); err == nil {
			t.Fatal("open without a sealer succeeded")
		}
		skey, _, _ := note.GenerateKey(rand.Reader, "other")
		if _, err := Open(ctx, e.DB, Options{SigningKey: skey}); err == nil || !strings.Contains(err.Error(), "verifier key") {
			t.Fatalf("open with a signing key that is not the stored one = %v", err)
		}
	})
}

func TestRunSignsWhileTheLedgerGrowsAndOnceMoreOnTheWayOut(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		ctx := context.Background()
		kr := newKeyring(t)

		fast, err := Open(ctx, e.DB, Options{Sealer: kr, CheckpointEvery: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { fast.Run(runCtx); close(done) }()
		appendN(t, fast, 0, 5, 5)
		deadline := time.Now().Add(5 * time.Second)
		for {
			cp, err := fast.Latest(ctx)
			if err == nil && cp.Size == 5 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no checkpoint of size 5 within 5s: %+v, %v", cp, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		<-done

		slow, err := Open(ctx, e.DB, Options{Sealer: kr, CheckpointEvery: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		runCtx, cancel = context.WithCancel(ctx)
		done = make(chan struct{})
		go func() { slow.Run(runCtx); close(done) }()
		appendN(t, slow, 5, 3, 3)
		cancel()
		<-done
		if cp, err := slow.Latest(ctx); err != nil || cp.Size != 8 {
			t.Fatalf("after Run returned the latest checkpoint is %d, %v; want 8", cp.Size, err)
		}
	})
}

func TestConcurrentAppendsKeepOneConsistentTree(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		ctx := context.Background()
		kr := newKeyring(t)
		// Two ledgers over two connection pools to one database stand for two
		// server processes.
		db2, err := store.Open(ctx, store.Config{Dir: e.Dir, URL: e.URL})
		if err != nil {
			t.Fatal(err)
		}
		defer db2.Close()
		ledgers := []*Ledger{openLedger(t, e.DB, kr), openLedger(t, db2, kr)}
		if ledgers[0].VerifierKey() != ledgers[1].VerifierKey() {
			t.Fatal("two ledgers on one database use different keys")
		}
		const workers, each = 4, 15
		var wg sync.WaitGroup
		errs := make(chan error, 2*workers+2)
		got := make(chan uint64, 2*workers*each*2)
		for _, l := range ledgers {
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range each {
						idx, err := l.Append(ctx, sampleEntry(w*each+i), sampleEntry(w*each+i+1000))
						if err != nil {
							errs <- err
							return
						}
						for _, x := range idx {
							got <- x
						}
					}
				}()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 10 {
					if _, err := l.Checkpoint(ctx); err != nil {
						errs <- err
						return
					}
					time.Sleep(5 * time.Millisecond)
				}
			}()
		}
		wg.Wait()
		close(errs)
		close(got)
		for err := range errs {
			t.Fatalf("concurrent append: %v", err)
		}
		const total = 2 * workers * each * 2
		var seen []uint64
		for x := range got {
			seen = append(seen, x)
		}
		slices.Sort(seen)
		for i, x := range seen {
			if x != uint64(i) {
				t.Fatalf("indexes handed out are not 0..%d without gaps or repeats: position %d holds %d", total-1, i, x)
			}
		}
		if len(seen) != total {
			t.Fatalf("%d indexes, want %d", len(seen), total)
		}
		if _, err := ledgers[1].Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		rep, err := VerifyWithKey(ctx, e.DB, ledgers[0].VerifierKey(), nil)
		if err != nil || !rep.OK || rep.Entries != total || rep.Signed != total {
			t.Fatalf("verify after concurrent appends: %+v, %v", rep, err)
		}
	})
}

func b64(b []byte) string {
	s, _ := json.Marshal(b)
	return strings.Trim(string(s), `"`)
}
