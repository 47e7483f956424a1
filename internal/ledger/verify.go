package ledger

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/transparency-dev/merkle/compact"
	"golang.org/x/mod/sumdb/note"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/store"
)

// maxProblems bounds Report.Problems; the rest are counted in Omitted.
const maxProblems = 1000

// pageSize is how many entries Verify, VerifyBundle and Export handle at a time.
const pageSize = 5000

// Report is the outcome of verifying a ledger, live or from a bundle.
type Report struct {
	// Entries is how many entries were verified (the head's size, or the
	// bundle's entry count).
	Entries uint64 `json:"entries"`
	// Checkpoints is how many signed checkpoints were checked.
	Checkpoints int `json:"checkpoints"`
	// OK is true when no problem was found.
	OK bool `json:"ok"`
	// Problems lists what is wrong, earliest first within each kind.
	Problems []Problem `json:"problems,omitempty"`
	// Omitted counts problems beyond the first 1000.
	Omitted int `json:"omitted,omitempty"`
	// Root is the root hash recomputed over all Entries (nil when the tree
	// could not be rebuilt).
	Root []byte `json:"root,omitempty"`
	// Signed is the size of the largest checkpoint whose signature and root
	// both verified; Entries - Signed entries are not yet covered by a
	// signature.
	Signed uint64 `json:"signed"`
	// VerifierKey is the key checkpoints were checked against, and
	// KeyPinned says whether the caller supplied it (true) or it was taken
	// from the verified data itself (false: that proves integrity, not
	// authorship).
	VerifierKey string `json:"verifier_key"`
	KeyPinned   bool   `json:"key_pinned"`
	// Notes are remarks that are not problems.
	Notes []string `json:"notes,omitempty"`
}

// Problem is one thing found wrong.
type Problem struct {
	// Index is the entry to blame, when one is.
	Index *uint64 `json:"index,omitempty"`
	// Checkpoint is the size of the checkpoint concerned, if any.
	Checkpoint *uint64 `json:"checkpoint,omitempty"`
	// Message says what is wrong; it names the checkpoint, if any, but not
	// the entry.
	Message string `json:"message"`
}

// String formats the problem as "entry N: message", or just the message
// when no entry is to blame (a message about a checkpoint names it).
func (p Problem) String() string {
	if p.Index != nil {
		return fmt.Sprintf("entry %d: %s", *p.Index, p.Message)
	}
	return p.Message
}

func ptr(v uint64) *uint64 { return &v }

// checker rebuilds a tree leaf by leaf and checks checkpoints against it.
// Verify (from the store) and VerifyBundle (offline) share it.
type checker struct {
	rep       *Report
	verifiers note.Verifiers // nil when there is no usable key
	origin    string         // the expected origin line, "" for any
	rng       *compact.Range
	// broken is set once a leaf is unknown: the tree cannot be rebuilt
	// past brokenAt, so later roots cannot be checked.
	broken   bool
	brokenAt uint64
	// firstBad is the lowest entry known to be altered or missing.
	firstBad *uint64
	// bad holds nodes known to differ from what was recorded, so only the
	// lowest differing node of a path is reported.
	bad            map[compact.NodeID]bool
	rootMismatches int
}

func newChecker(rep *Report, vkey string, pinned bool) *checker {
	c := &checker{rep: rep, rng: rangeFactory.NewEmptyRange(0), bad: map[compact.NodeID]bool{}}
	rep.VerifierKey, rep.KeyPinned = vkey, pinned
	switch v, err := note.NewVerifier(vkey); {
	case vkey == "":
		c.problem(nil, nil, "there is no verifier key: checkpoint signatures cannot be checked")
	case err != nil:
		c.problem(nil, nil, "the verifier key %q is malformed (%v): checkpoint signatures cannot be checked", vkey, err)
	default:
		c.verifiers = note.VerifierList(v)
	}
	return c
}

func (c *checker) problem(index, cp *uint64, format string, args ...any) {
	if len(c.rep.Problems) >= maxProblems {
		c.rep.Omitted++
		return
	}
	msg := fmt.Sprintf(format, args...)
	if cp != nil {
		// Messages stand on their own, for callers that print only them.
		msg = fmt.Sprintf("checkpoint at size %d: %s", *cp, msg)
	}
	c.rep.Problems = append(c.rep.Problems, Problem{Index: index, Checkpoint: cp, Message: msg})
}

func (c *checker) markBad(index uint64) {
	if c.firstBad == nil || index < *c.firstBad {
		c.firstBad = ptr(index)
	}
}

// size is the number of leaves appended so far, counting unknown ones.
func (c *checker) size() uint64 {
	if c.broken {
		return c.brokenAt
	}
	return c.rng.End()
}

// appendLeaf adds the next leaf; a nil leaf is unknown and breaks the
// rebuild from here on.
func (c *checker) appendLeaf(index uint64, leaf []byte, visit compact.VisitFn) {
	if c.broken {
		return
	}
	if leaf == nil {
		c.broken, c.brokenAt = true, index
		return
	}
	if err := c.rng.Append(leaf, visit); err != nil {
		c.problem(ptr(index), nil, "cannot add the leaf to the tree: %v", err)
		c.broken, c.brokenAt = true, index
	}
}

func (c *checker) root() []byte {
	if c.broken {
		return nil
	}
	if c.rng.End() == 0 {
		return hasher.EmptyRoot()
	}
	r, err := c.rng.GetRootHash(nil)
	if err != nil {
		return nil
	}
	return r
}

// checkNode compares a node the rebuild produced with the stored one (nil
// when it is missing from the store).
func (c *checker) checkNode(id compact.NodeID, got, stored []byte) {
	if stored != nil && bytes.Equal(got, stored) {
		return
	}
	c.bad[id] = true
	if id.Level > 0 && (c.bad[compact.NewNodeID(id.Level-1, 2*id.Index)] || c.bad[compact.NewNodeID(id.Level-1, 2*id.Index+1)]) {
		return // a child was already reported
	}
	first, end := id.Coverage()
	c.markBad(first)
	what := "does not match the one recomputed from the entries"
	if stored == nil {
		what = "is missing from the store"
	}
	c.problem(ptr(first), nil, "the recorded tree node over entries %d–%d (level %d, index %d) %s: "+
		"one of these entries was altered together with its leaf hash", first, end-1, id.Level, id.Index, what)
}

// checkCheckpoint verifies a checkpoint of the current size: its signature,
// that the signed size and root are the recorded ones, and that the root
// is the rebuilt tree's.
func (c *checker) checkCheckpoint(size uint64, root, signed []byte) {
	c.rep.Checkpoints++
	cp := ptr(size)
	text, sigOK := c.openNote(cp, signed)
	if text == "" || (!sigOK && c.verifiers != nil) {
		// Without a valid signature the note's root proves nothing.
		return
	}
	origin, nsize, nroot, err := parseCheckpointText(text)
	if err != nil {
		c.problem(nil, cp, "the signed note is not a checkpoint: %v", err)
		return
	}
	if c.origin != "" && origin != c.origin {
		c.problem(nil, cp, "the signed origin is %q, want %q", origin, c.origin)
		sigOK = false
	}
	if nsize != size || !bytes.Equal(nroot, root) {
		c.problem(nil, cp, "the recorded size or root differs from the signed note (which says size %d)", nsize)
		return
	}
	if c.broken {
		c.problem(nil, cp, "cannot be checked: the tree cannot be rebuilt past entry %d", c.brokenAt)
		return
	}
	if got := c.root(); !bytes.Equal(got, nroot) {
		c.rootMismatches++
		if c.rootMismatches > 1 {
			return
		}
		msg := fmt.Sprintf("the signed root does not match the root recomputed from the first %d entries: "+
			"entries were altered, removed or reordered after it was signed", size)
		if c.firstBad != nil && *c.firstBad < size {
			msg += fmt.Sprintf("; the earliest entry implicated is %d", *c.firstBad)
			c.problem(ptr(*c.firstBad), cp, "%s", msg)
			return
		}
		c.problem(nil, cp, "%s", msg)
		return
	}
	if sigOK && size > c.rep.Signed {
		c.rep.Signed = size
	}
}

// openNote checks a note's signature and returns its text ("" when it
// cannot be read at all) and whether the signature verified.
func (c *checker) openNote(cp *uint64, signed []byte) (string, bool) {
	verifiers := c.verifiers
	if verifiers == nil {
		verifiers = note.VerifierList()
	}
	n, err := note.Open(signed, verifiers)
	var unverified *note.UnverifiedNoteError
	var invalid *note.InvalidSignatureError
	switch {
	case err == nil:
		return n.Text, true
	case errors.As(err, &unverified):
		if c.verifiers != nil {
			c.problem(nil, cp, "not signed by the verifier key %s (forged, or signed by another key)", c.rep.VerifierKey)
		}
		return unverified.Note.Text, false
	case errors.As(err, &invalid):
		c.problem(nil, cp, "the signature does not verify: the checkpoint was forged or altered")
		text, _, _ := strings.Cut(string(signed), "\n\n")
		return text + "\n", false
	default:
		c.problem(nil, cp, "the signed note is malformed: %v", err)
		return "", false
	}
}

// finish records the summary items and sets OK.
func (c *checker) finish() {
	if c.rootMismatches > 1 {
		c.problem(nil, nil, "%d later checkpoints do not match the recomputed tree either", c.rootMismatches-1)
	}
	c.rep.Root = c.root()
	if c.rep.Signed < c.rep.Entries && !c.broken {
		c.rep.Notes = append(c.rep.Notes, fmt.Sprintf("%d entries after the last verified checkpoint (size %d) are not yet covered by a signature",
			c.rep.Entries-c.rep.Signed, c.rep.Signed))
	}
	if !c.rep.KeyPinned && c.rep.VerifierKey != "" {
		c.rep.Notes = append(c.rep.Notes, "the verifier key was taken from the verified data itself: this proves integrity, "+
			"not authorship; pin the key you trust to prove both")
	}
	c.rep.OK = len(c.rep.Problems) == 0 && c.rep.Omitted == 0
}

// Verify checks the ledger stored in db against the stored verifier key;
// see VerifyWithKey.
func Verify(ctx context.Context, db *store.DB, progress func(done, total uint64)) (Report, error) {
	return VerifyWithKey(ctx, db, "", progress)
}

// VerifyWithKey re-reads every entry up to the stored head in order,
// recomputes its leaf hash from the stored fields and compares it with the
// recorded one, rebuilds the tree comparing every recorded node, checks
// every stored checkpoint's signature and that its root is the rebuilt
// root at its size, and compares the stored head with the rebuilt one. It
// needs no master key. trustedVerifierKey pins the checkpoint key; "" uses
// the stored one (and the report says so). progress, when not nil, is
// called after each batch of entries. Entries appended while it runs are
// left for the next run. The error is only for failures to read; what is
// wrong with the data is in the Report.
func VerifyWithKey(ctx context.Context, db *store.DB, trustedVerifierKey string, progress func(done, total uint64)) (Report, error) {
	if trustedVerifierKey != "" {
		if _, err := note.NewVerifier(trustedVerifierKey); err != nil {
			return Report{}, apperr.InvalidField("key", "is not a note verifier key (<name>+<hash>+<base64 key>): %v", err)
		}
	}
	var rep Report
	stored, err := readSetting(ctx, db, SettingVerifierKey)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Report{}, fmt.Errorf("ledger verify: read verifier key: %w", err)
	}
	vkey := trustedVerifierKey
	if vkey == "" {
		vkey = stored
	} else if stored != "" && stored != vkey {
		rep.Notes = append(rep.Notes, fmt.Sprintf("the stored verifier key %s differs from the pinned one", stored))
	}
	c := newChecker(&rep, vkey, trustedVerifierKey != "")

	// Checkpoints are read up to the largest one that existed before the
	// head was read, so every one of them is within the head.
	var maxCP sql.NullInt64
	if err := db.QueryRow(ctx, `SELECT MAX(size) FROM ledger_checkpoints`).Scan(&maxCP); err != nil {
		return Report{}, fmt.Errorf("ledger verify: %w", err)
	}
	h, err := readHead(ctx, db, "")
	if err != nil {
		c.problem(nil, nil, "the stored head is unreadable: %v", err)
		var size int64
		if err := db.QueryRow(ctx, `SELECT COALESCE(MAX(idx) + 1, 0) FROM ledger_entries`).Scan(&size); err != nil {
			return Report{}, fmt.Errorf("ledger verify: %w", err)
		}
		h = head{size: uint64(size)}
	}
	rep.Entries = h.size
	cps := newCheckpointCursor(db, maxCP.Int64)
	if progress != nil {
		progress(0, h.size)
	}
	for from := uint64(0); from < h.size; from += pageSize {
		to := min(from+pageSize, h.size)
		if err := verifyEntries(ctx, db, c, cps, from, to); err != nil {
			return Report{}, fmt.Errorf("ledger verify: entries %d..%d: %w", from, to, err)
		}
		if progress != nil {
			progress(to, h.size)
		}
	}
	if err := checkCheckpointsUpTo(ctx, c, cps, h.size); err != nil {
		return Report{}, fmt.Errorf("ledger verify: %w", err)
	}
	for {
		cp, err := cps.peek(ctx)
		if err != nil {
			return Report{}, fmt.Errorf("ledger verify: %w", err)
		}
		if cp == nil {
			break
		}
		c.rep.Checkpoints++
		c.problem(nil, ptr(cp.Size), "beyond the ledger's %d entries: entries were removed and the head rolled back", h.size)
		cps.pop()
	}
	if h.hashes != nil && !c.broken {
		if !equalHashes(h.hashes, c.rng.Hashes()) {
			c.problem(nil, nil, "the stored head (size %d) does not match the tree rebuilt from the entries", h.size)
		}
	}
	c.finish()
	return rep, nil
}

// verifyEntries checks entries [from, to) and the nodes they complete.
func verifyEntries(ctx context.Context, db *store.DB, c *checker, cps *checkpointCursor, from, to uint64) error {
	entries, err := queryEntries(ctx, db, `SELECT `+entryColumns+` FROM ledger_entries WHERE idx >= ? AND idx < ? ORDER BY idx`,
		int64(from), int64(to))
	if err != nil {
		return err
	}
	nodes, err := nodesCompletedBy(ctx, db, from, to)
	if err != nil {
		return err
	}
	visit := func(id compact.NodeID, hash []byte) {
		if id.Level > 0 {
			c.checkNode(id, hash, nodes[id])
		}
	}
	next := 0
	for idx := from; idx < to; idx++ {
		if err := checkCheckpointsUpTo(ctx, c, cps, idx); err != nil {
			return err
		}
		stored := nodes[compact.NewNodeID(0, idx)]
		var e *Entry
		if next < len(entries) && entries[next].Index == idx {
			e = &entries[next]
			next++
		}
		c.appendLeaf(idx, c.leafFor(idx, e, stored), visit)
	}
	return nil
}

// leafFor returns the leaf hash to build the tree with for entry idx (nil
// when it is unknown), reporting how the entry and its recorded leaf hash
// (stored, nil when missing) disagree.
func (c *checker) leafFor(idx uint64, e *Entry, stored []byte) []byte {
	if e == nil {
		c.markBad(idx)
		c.bad[compact.NewNodeID(0, idx)] = true
		c.problem(ptr(idx), nil, "the entry is missing: it was deleted")
		return stored
	}
	leaf, err := LeafHash(*e)
	if err != nil {
		c.markBad(idx)
		c.bad[compact.NewNodeID(0, idx)] = true
		c.problem(ptr(idx), nil, "the entry cannot be encoded (%v): it was altered", err)
		return stored
	}
	switch {
	case stored == nil:
		c.markBad(idx)
		c.bad[compact.NewNodeID(0, idx)] = true
		c.problem(ptr(idx), nil, "the entry's recorded leaf hash is missing")
	case !bytes.Equal(leaf, stored):
		c.markBad(idx)
		c.bad[compact.NewNodeID(0, idx)] = true
		c.problem(ptr(idx), nil, "the entry does not match its recorded leaf hash: it was altered after it was appended")
	}
	return leaf
}

// checkCheckpointsUpTo checks the checkpoints of size ≤ size, the tree
// being rebuilt to size. Smaller ones cannot happen from the store (they
// are read in order) but are reported if they do.
func checkCheckpointsUpTo(ctx context.Context, c *checker, cps *checkpointCursor, size uint64) error {
	for {
		cp, err := cps.peek(ctx)
		if err != nil {
			return err
		}
		if cp == nil || cp.Size > size {
			return nil
		}
		if cp.Size < c.size() {
			c.rep.Checkpoints++
			c.problem(nil, ptr(cp.Size), "out of order, cannot be checked")
		} else {
			c.checkCheckpoint(cp.Size, cp.Root, cp.Note)
		}
		cps.pop()
	}
}

// nodesCompletedBy reads the stored nodes that appending leaves [from, to)
// completes: node (L, i) is complete once leaf (i+1)·2^L − 1 is appended.
func nodesCompletedBy(ctx context.Context, q store.Querier, from, to uint64) (map[compact.NodeID][]byte, error) {
	var where strings.Builder
	var args []any
	for level := uint(0); level < 64; level++ {
		lo := (from+1<<level)>>level - 1
		if to>>level == 0 {
			break
		}
		hi := to>>level - 1
		if hi < lo {
			continue
		}
		if where.Len() > 0 {
			where.WriteString(" OR ")
		}
		where.WriteString("(level = ? AND idx >= ? AND idx <= ?)")
		args = append(args, int(level), int64(lo), int64(hi))
	}
	if len(args) == 0 {
		return map[compact.NodeID][]byte{}, nil
	}
	return queryNodes(ctx, q, where.String(), args)
}

func equalHashes(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// checkpointCursor reads stored checkpoints of size ≤ max in size order,
// a page at a time.
type checkpointCursor struct {
	q     store.Querier
	max   int64
	after int64 // the largest size read so far
	buf   []Checkpoint
	done  bool
}

func newCheckpointCursor(q store.Querier, max int64) *checkpointCursor {
	return &checkpointCursor{q: q, max: max, after: -1}
}

func (c *checkpointCursor) peek(ctx context.Context) (*Checkpoint, error) {
	if len(c.buf) == 0 && !c.done {
		rows, err := c.q.Query(ctx, `SELECT size, root, note, created_at FROM ledger_checkpoints
			WHERE size > ? AND size <= ? ORDER BY size LIMIT 1000`, c.after, c.max)
		if err != nil {
			return nil, fmt.Errorf("read checkpoints: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			cp, err := scanCheckpoint(rows)
			if err != nil {
				return nil, fmt.Errorf("read checkpoints: %w", err)
			}
			c.buf = append(c.buf, cp)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read checkpoints: %w", err)
		}
		if len(c.buf) == 0 {
			c.done = true
		} else {
			c.after = int64(c.buf[len(c.buf)-1].Size)
		}
	}
	if len(c.buf) == 0 {
		return nil, nil
	}
	return &c.buf[0], nil
}

func (c *checkpointCursor) pop() { c.buf = c.buf[1:] }
