package ledger

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/compact"
	"golang.org/x/mod/sumdb/note"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/store"
	"github.com/fleetward/fleetward/internal/store/storetest"
)

// buildLedger appends 100 entries with checkpoints at 10, 40, 64 and 100.
func buildLedger(t testing.TB, db *store.DB) *Ledger {
	t.Helper()
	l := openLedger(t, db, newKeyring(t))
	at := 0
	for _, size := range []int{10, 40, 64, 100} {
		appendN(t, l, at, size-at, 9)
		at = size
		if _, err := l.Checkpoint(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

func mustExec(t *testing.T, db *store.DB, q string, args ...any) {
	t.Helper()
	res, err := db.Exec(context.Background(), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		t.Fatalf("%s changed no row", q)
	}
}

// reportNames reports whether a problem names entry index (or, with
// index < 0, no entry) and checkpoint cp (or, with cp < 0, any), and its
// message contains text.
func reportNames(rep Report, index, cp int64, text string) bool {
	for _, p := range rep.Problems {
		if index >= 0 && (p.Index == nil || *p.Index != uint64(index)) {
			continue
		}
		if cp >= 0 && (p.Checkpoint == nil || *p.Checkpoint != uint64(cp)) {
			continue
		}
		if strings.Contains(p.Message, text) {
			return true
		}
	}
	return false
}

func dump(rep Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "ok=%v entries=%d checkpoints=%d signed=%d\n", rep.OK, rep.Entries, rep.Checkpoints, rep.Signed)
	for _, p := range rep.Problems {
		b.WriteString("  " + p.String() + "\n")
	}
	return b.String()
}

func TestVerifyPassesOnAnIntactLedger(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		ctx := context.Background()
		l := buildLedger(t, e.DB)
		appendN(t, l, 100, 5, 5) // an unsigned tail is not a problem
		var last [2]uint64
		rep, err := Verify(ctx, e.DB, func(done, total uint64) { last = [2]uint64{done, total} })
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK || rep.Entries != 105 || rep.Checkpoints != 4 || rep.Signed != 100 || rep.KeyPinned {
			t.Fatalf("verify intact ledger:\n%s", dump(rep))
		}
		if last != [2]uint64{105, 105} {
			t.Fatalf("last progress %v, want [105 105]", last)
		}
		if len(rep.Notes) != 2 {
			t.Fatalf("notes %q; want the unsigned tail and the unpinned key", rep.Notes)
		}
		if rep, err := VerifyWithKey(ctx, e.DB, l.VerifierKey(), nil); err != nil || !rep.OK || !rep.KeyPinned {
			t.Fatalf("verify with the pinned key: %v\n%s", err, dump(rep))
		}
		if _, err := VerifyWithKey(ctx, e.DB, "not a key", nil); !apperr.Is(err, apperr.Invalid) {
			t.Fatalf("verify with a malformed pinned key: error %v, want invalid", err)
		}
	})
}

func TestVerifyFindsTampering(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, l *Ledger, db *store.DB)
		// want lists (entry index or -1, checkpoint size or -1, message text).
		want []struct {
			index, cp int64
			text      string
		}
	}{
		{
			name: "editing one entry's actor names that entry and the first checkpoint after it",
			tamper: func(t *testing.T, l *Ledger, db *store.DB) {
				mustExec(t, db, `UPDATE ledger_entries SET actor = 'operator:mallory' WHERE idx = 37`)
			},
			want: []struct {
				index, cp int64
				text      string
			}{{37, -1, "does not match its recorded leaf hash"}, {37, 40, "signed root does not match"}},
		},
		{
			name: "editing one entry's data names that entry",
			tamper: func(t *testing.T, l *Ledger, db *store.DB) {
				mustExec(t, db, `UPDATE ledger_entries SET data = '{"id":"dev-1"}' WHERE idx = 5`)
			},
			want: []struct {
				index, cp int64
				text      string
			}{{5, -1, "does not match its recorded leaf hash"}, {5, 10, "signed root does not match"}},
		},
		{
			name: "editing an entry and its leaf hash together is caught by the stored nodes and the signed root",
			tamper: func(t *testing.T, l *Ledger, db *store.DB) {
				es, err := l.Entries(context.Background(), 37, 38)
				if err != nil {
					t.Fatal(err)
				}
				es[0].Actor = "operator:mallory"
				leaf, _ := LeafHash(es[0])
				mustExec(t, db, `UPDATE ledger_entries SET actor = 'operator:mallory' WHERE idx = 37`)
				mustExec(t, db, `UPDATE ledger_nodes SET hash = ? WHERE level = 0 AND idx = 37`, leaf)
			},
			want: []struct {
				index, cp int64
				text      string
			}{{36, -1, "over entries 36–37 (level 1, index 18) does not match"}, {36, 40, "signed root does not match"}},
		},
		{
			name: "deleting an entry names it",
			tamper: func(t *testing.T, l *Ledger, db *store.DB) {
				mustExec(t, db, `DELETE FROM ledger_entries WHERE idx = 12`)
			},
			want: []struct {
				index, cp int64
				text      string
			}{{12, -1, "missing"}},
		},
		{
			name: "deleting the newest entry with its leaf is caught",
			tamper: func(t *testing.T, l *Ledger, db *store.DB) {
				mustExec(t, db, `DELETE FROM ledger_entries WHERE idx = 99`)
				mustExec(t, db, `DELETE FROM ledger_nodes WHERE level = 0 AND idx = 99`)
			},
			want: []struct {
				index, cp int64
				text      string
			}{{99, -1, "missing"}, {-1, 100, "cannot be checked"}},
		},
		{
			name: "a checkpoint signed by another key is caught",
			tamper: func(t *testing.T, l *Ledger, db *store.DB) {
				cp, err := checkpointAt(context.Background(), db, 40)
				if err != nil {
					t.Fatal(err)
				}
				skey, _, _ := note.GenerateKey(rand.Reader, keyName(DefaultOrigin))
				s, _ := note.NewSigner(skey)
				text, _, _ := strings.Cut(string(cp.Note), "\n\n")
				forged, err := note.Sign(&note.Note{Text: text + "\n"}, s)
				if err != nil {
					t.Fatal(err)
				}
				mustExec(t, db, `UPDATE ledger_checkpoints SET note = ? WHERE size = 40`, string(forged))
			},
			want: []struct {
				index, cp int64
				text      string
			}{{-1, 40, "not signed by the verifier key"}},
		},
		{
			name: "a checkpoint whose signed root was changed is caught",
			tamper: func(t *testing.T, l *Ledger, db *store.DB) {
				cp, err := checkpointAt(context.Background(), db, 64)
				if err != nil {
					t.Fatal(err)
				}
				fake := bytes.Repeat([]byte{0xaa}, 32)
				text := strings.Replace(string(cp.Note), b64(cp.Root), b64(fake), 1)
				mustExec(t, db, `UPDATE ledger_checkpoints SET note = ?, root = ? WHERE size = 64`, text, fake)
			},
			want: []struct {
				index, cp int64
				text      string
			}{{-1, 64, "signature does not verify"}},
		},
		{
			name: "a checkpoint beyond the head (entries removed, head rolled back) is caught",
			tamper: func(t *testing.T, l *Ledger, db *store.DB) {
				mustExec(t, db, `DELETE FROM ledger_checkpoints WHERE size = 100`)
				mustExec(t, db, `INSERT INTO ledger_checkpoints (size, root, note, created_at)
					SELECT 120, root, note, created_at FROM ledger_checkpoints WHERE size = 64`)
			},
			want: []struct {
				index, cp int64
				text      string
			}{{-1, 120, "beyond the ledger's 100 entries"}},
		},
		{
			name: "a rewritten head is caught",
			tamper: func(t *testing.T, l *Ledger, db *store.DB) {
				h, err := readHead(context.Background(), db, "")
				if err != nil {
					t.Fatal(err)
				}
				h.hashes[0] = bytes.Repeat([]byte{1}, 32)
				mustExec(t, db, `UPDATE ledger_head SET hashes = ? WHERE id = 1`, joinHashes(h.hashes))
			},
			want: []struct {
				index, cp int64
				text      string
			}{{-1, -1, "stored head (size 100) does not match"}},
		},
	}
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				// Each case gets a fresh database of this engine.
				db := freshDB(t, e)
				l := buildLedger(t, db)
				tt.tamper(t, l, db)
				rep, err := VerifyWithKey(context.Background(), db, l.VerifierKey(), nil)
				if err != nil {
					t.Fatal(err)
				}
				if rep.OK {
					t.Fatalf("verify reports OK after tampering:\n%s", dump(rep))
				}
				t.Logf("report:\n%s", dump(rep))
				for _, w := range tt.want {
					if !reportNames(rep, w.index, w.cp, w.text) {
						t.Errorf("no problem names entry %d, checkpoint %d, %q:\n%s", w.index, w.cp, w.text, dump(rep))
					}
				}
			})
		}
	})
}

// freshDB opens a new empty database on e's engine.
func freshDB(t *testing.T, e storetest.Engine) *store.DB {
	t.Helper()
	if e.Name == "postgres" {
		pg, ok := storetest.Postgres(t)
		if !ok {
			t.Skip("postgres unavailable")
		}
		return pg.DB
	}
	return storetest.SQLite(t).DB
}

func TestPinnedKeyCatchesAReplacedSigningKey(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		ctx := context.Background()
		l := buildLedger(t, e.DB)
		trusted := l.VerifierKey()
		// An attacker with the database but not the master key rewrites an
		// entry, installs a key of their own and re-signs every checkpoint.
		mustExec(t, e.DB, `UPDATE ledger_entries SET actor = 'operator:mallory' WHERE idx = 3`)
		es, _ := l.Entries(ctx, 3, 4)
		leaf, _ := LeafHash(es[0])
		mustExec(t, e.DB, `UPDATE ledger_nodes SET hash = ? WHERE level = 0 AND idx = 3`, leaf)
		mustExec(t, e.DB, `DELETE FROM ledger_nodes WHERE level > 0`)
		rebuilt := rangeFactory.NewEmptyRange(0)
		all := allLeaves(t, l, 100)
		var nodes []node
		for _, h := range all {
			if err := rebuilt.Append(h, func(id compact.NodeID, h []byte) {
				if id.Level > 0 {
					nodes = append(nodes, node{id, h})
				}
			}); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.DB.InTx(ctx, func(tx *store.Tx) error { return insertNodes(ctx, tx, nodes) }); err != nil {
			t.Fatal(err)
		}
		mustExec(t, e.DB, `UPDATE ledger_head SET hashes = ? WHERE id = 1`, joinHashes(rebuilt.Hashes()))
		mustExec(t, e.DB, `DELETE FROM ledger_checkpoints`)
		mustExec(t, e.DB, `DELETE FROM settings WHERE name LIKE 'ledger.%'`)
		forger := openLedger(t, e.DB, newKeyring(t))
		if _, err := forger.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}

		rep, err := Verify(ctx, e.DB, nil)
		if err != nil || !rep.OK {
			t.Fatalf("unpinned verify of a consistently re-signed ledger: %v\n%s", err, dump(rep))
		}
		rep, err = VerifyWithKey(ctx, e.DB, trusted, nil)
		if err != nil || rep.OK || !reportNames(rep, -1, 100, "not signed by the verifier key") {
			t.Fatalf("pinned verify of a re-signed ledger: %v\n%s", err, dump(rep))
		}
	})
}

func exportBundle(t testing.TB, l *Ledger) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := l.Export(context.Background(), &buf); err != nil {
		t.Fatalf("export: %v", err)
	}
	return buf.Bytes()
}

// editLines applies fn to the bundle's lines and joins them again.
func editLines(bundle []byte, fn func(lines []string) []string) []byte {
	lines := strings.Split(strings.TrimSuffix(string(bundle), "\n"), "\n")
	return []byte(strings.Join(fn(lines), "\n") + "\n")
}

func lineOfEntry(lines []string, index uint64) int {
	for i, ln := range lines {
		if strings.HasPrefix(ln, fmt.Sprintf(`{"entry":{"index":%d,`, index)) {
			return i
		}
	}
	panic(fmt.Sprintf("no line for entry %d", index))
}

func TestBundles(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		l := buildLedger(t, e.DB)
		bundle := exportBundle(t, l)
		key := l.VerifierKey()

		t.Run("an exported bundle verifies offline with the pinned key", func(t *testing.T) {
			var last uint64
			rep, err := VerifyBundleProgress(bytes.NewReader(bundle), key, func(done, _ uint64) { last = done })
			if err != nil || !rep.OK || rep.Entries != 100 || rep.Checkpoints != 4 || rep.Signed != 100 || !rep.KeyPinned || last != 100 {
				t.Fatalf("verify bundle: %v\n%s", err, dump(rep))
			}
			live, err := Verify(context.Background(), e.DB, nil)
			if err != nil || !bytes.Equal(live.Root, rep.Root) {
				t.Fatalf("the bundle's root differs from the store's: %v", err)
			}
		})
		t.Run("without a pinned key the bundle's key is used and the report says so", func(t *testing.T) {
			rep, err := VerifyBundle(bytes.NewReader(bundle), "")
			if err != nil || !rep.OK || rep.KeyPinned || rep.VerifierKey != key || !strings.Contains(strings.Join(rep.Notes, " "), "not authorship") {
				t.Fatalf("verify bundle unpinned: %v\n%s%q", err, dump(rep), rep.Notes)
			}
		})

		otherSkey, otherVkey, _ := note.GenerateKey(rand.Reader, keyName(DefaultOrigin))
		tampered := []struct {
			name string
			edit func(lines []string) []string
			key  string
			text string
		}{
			{"an edited entry is caught", func(lines []string) []string {
				i := lineOfEntry(lines, 50)
				lines[i] = strings.Replace(lines[i], "operator:alice", "operator:mallory", 1)
				return lines
			}, key, "signed root does not match"},
			{"a removed entry is caught", func(lines []string) []string {
				i := lineOfEntry(lines, 20)
				return append(lines[:i], lines[i+1:]...)
			}, key, "entries 20–20 are missing"},
			{"a truncated bundle is caught", func(lines []string) []string {
				return lines[:lineOfEntry(lines, 70)]
			}, key, "truncated"},
			{"a forged checkpoint is caught", func(lines []string) []string {
				for i, ln := range lines {
					if strings.HasPrefix(ln, `{"checkpoint":{"size":40,`) {
						var bl bundleLine
						_ = json.Unmarshal([]byte(ln), &bl)
						s, _ := note.NewSigner(otherSkey)
						text, _, _ := strings.Cut(bl.Checkpoint.Note, "\n\n")
						forged, _ := note.Sign(&note.Note{Text: text + "\n"}, s)
						bl.Checkpoint.Note = string(forged)
						b, _ := json.Marshal(bl)
						lines[i] = string(b)
					}
				}
				return lines
			}, key, "not signed by the verifier key"},
			{"another pinned key fails every checkpoint", func(lines []string) []string { return lines }, otherVkey, "not signed by the verifier key"},
			{"a damaged line is caught", func(lines []string) []string {
				lines[5] = lines[5][:len(lines[5])/2]
				return lines
			}, key, "is not a valid bundle line"},
		}
		for _, tt := range tampered {
			t.Run(tt.name, func(t *testing.T) {
				rep, err := VerifyBundle(bytes.NewReader(editLines(bundle, tt.edit)), tt.key)
				if err != nil {
					t.Fatal(err)
				}
				if rep.OK || !reportNames(rep, -1, -1, tt.text) {
					t.Fatalf("want a problem %q:\n%s", tt.text, dump(rep))
				}
			})
		}
		t.Run("input that is not a bundle is an invalid-bundle error", func(t *testing.T) {
			for _, in := range []string{"", "hello\n", `{"entry":{"index":0}}` + "\n", `{"header":{"format":"other"}}`} {
				if _, err := VerifyBundle(strings.NewReader(in), ""); !apperr.Is(err, apperr.Invalid) {
					t.Errorf("VerifyBundle(%q) error = %v; want invalid", in, err)
				}
			}
			if _, err := VerifyBundle(bytes.NewReader(bundle), "not a key"); !apperr.Is(err, apperr.Invalid) {
				t.Errorf("a malformed pinned key error = %v; want invalid", err)
			}
		})
	})
}

func FuzzVerifyBundle(f *testing.F) {
	// A small ledger keeps inputs short, so the fuzzer's minimization is quick.
	l := openLedger(f, storetest.SQLite(f).DB, newKeyring(f))
	for _, n := range []int{1, 3, 4} {
		appendN(f, l, 0, n, n)
		if _, err := l.Checkpoint(context.Background()); err != nil {
			f.Fatal(err)
		}
	}
	bundle := exportBundle(f, l)
	key := l.VerifierKey()
	f.Add(bundle)
	sc := bufio.NewScanner(bytes.NewReader(bundle))
	var lines [][]byte
	for sc.Scan() {
		lines = append(lines, append([]byte(nil), sc.Bytes()...))
	}
	f.Add(bytes.Join(lines[:len(lines)/2], []byte("\n")))
	f.Add(bytes.Join(append(lines[:3:3], lines[len(lines)-1]), []byte("\n")))
	f.Add(append(lines[0], []byte("\n{\"checkpoint\":{\"size\":18446744073709551615}}\n{\"entry\":{\"index\":18446744073709551615,\"type\":\"x\",\"time\":\"2020-01-01T00:00:00Z\"}}")...))
	f.Add([]byte(`{"header":{"format":"fleetward-ledger-bundle/1"}}` + "\n" + `{"entry":{"index":0,"type":"x","time":"2020-01-01T00:00:00Z","data":{}}}` + "\n" + `{"end":{}}`))
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, k := range []string{"", key} {
			rep, err := VerifyBundle(bytes.NewReader(data), k)
			if err != nil {
				continue
			}
			if rep.OK && rep.KeyPinned && rep.Signed > 0 && !bytes.Contains(data, []byte(`"note"`)) {
				t.Fatalf("a bundle without a note verified %d signed entries", rep.Signed)
			}
		}
	})
}
