package ledger

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/fleetward/fleetward/internal/apperr"
)

// BundleFormat names the export format, version 1. A bundle is JSON lines
// (UTF-8, one object per line, HTML characters not escaped):
//
//	{"header":{"format":"fleetward-ledger-bundle/1","origin":…,"verifier_key":…,"entries":N,"checkpoints":M,"exported_at":…}}
//	{"checkpoint":{"size":0,"root":base64,"time":…,"note":"<signed note text>"}}
//	{"entry":{"index":0,"time":…,"type":…,"actor":…,"remote":…,"subject":…,"data":…}}
//	…
//	{"end":{"entries":N,"checkpoints":M}}
//
// Entries come in index order; each checkpoint of size S comes right
// before entry S (or before the end line when S = N). An entry's data is
// written exactly as stored, so its leaf hash can be recomputed from the
// line (see the package documentation).
const BundleFormat = "fleetward-ledger-bundle/1"

// maxBundleLine bounds one bundle line: an entry's data is at most 1 MiB.
const maxBundleLine = 4 << 20

type bundleLine struct {
	Header     *bundleHeader     `json:"header,omitempty"`
	Entry      *Entry            `json:"entry,omitempty"`
	Checkpoint *bundleCheckpoint `json:"checkpoint,omitempty"`
	End        *bundleEnd        `json:"end,omitempty"`
}

type bundleHeader struct {
	Format      string    `json:"format"`
	Origin      string    `json:"origin"`
	VerifierKey string    `json:"verifier_key"`
	Entries     uint64    `json:"entries"`
	Checkpoints uint64    `json:"checkpoints"`
	ExportedAt  time.Time `json:"exported_at"`
}

type bundleCheckpoint struct {
	Size uint64    `json:"size"`
	Root []byte    `json:"root"`
	Time time.Time `json:"time"`
	Note string    `json:"note"`
}

type bundleEnd struct {
	Entries     uint64 `json:"entries"`
	Checkpoints uint64 `json:"checkpoints"`
}

// Export writes the ledger up to its current head as a bundle (see
// BundleFormat): the verifier key, every entry and every checkpoint within
// the head. Sign a checkpoint first (Checkpoint) so the newest entries are
// covered. Appends may continue while it runs; they are not included.
func (l *Ledger) Export(ctx context.Context, w io.Writer) error {
	h, err := readHead(ctx, l.db, "")
	if err != nil {
		return fmt.Errorf("ledger export: %w", err)
	}
	var ncp int64
	if err := l.db.QueryRow(ctx, `SELECT COUNT(*) FROM ledger_checkpoints WHERE size <= ?`, int64(h.size)).Scan(&ncp); err != nil {
		return fmt.Errorf("ledger export: %w", err)
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(bundleLine{Header: &bundleHeader{Format: BundleFormat, Origin: l.origin, VerifierKey: l.vkey,
		Entries: h.size, Checkpoints: uint64(ncp), ExportedAt: l.now().UTC()}}); err != nil {
		return fmt.Errorf("ledger export: %w", err)
	}
	cps := newCheckpointCursor(l.db, int64(h.size))
	var wroteCPs uint64
	writeCheckpointsUpTo := func(size uint64) error {
		for {
			cp, err := cps.peek(ctx)
			if err != nil || cp == nil || cp.Size > size {
				return err
			}
			if err := enc.Encode(bundleLine{Checkpoint: &bundleCheckpoint{Size: cp.Size, Root: cp.Root, Time: cp.Time, Note: string(cp.Note)}}); err != nil {
				return err
			}
			wroteCPs++
			cps.pop()
		}
	}
	var wroteEntries uint64
	for from := uint64(0); from < h.size; from += pageSize {
		to := min(from+pageSize, h.size)
		entries, err := queryEntries(ctx, l.db, `SELECT `+entryColumns+` FROM ledger_entries WHERE idx >= ? AND idx < ? ORDER BY idx`,
			int64(from), int64(to))
		if err != nil {
			return fmt.Errorf("ledger export: entries %d..%d: %w", from, to, err)
		}
		for i := range entries {
			if err := writeCheckpointsUpTo(entries[i].Index); err != nil {
				return fmt.Errorf("ledger export: %w", err)
			}
			if err := enc.Encode(bundleLine{Entry: &entries[i]}); err != nil {
				return fmt.Errorf("ledger export: %w", err)
			}
			wroteEntries++
		}
	}
	if err := writeCheckpointsUpTo(h.size); err != nil {
		return fmt.Errorf("ledger export: %w", err)
	}
	if err := enc.Encode(bundleLine{End: &bundleEnd{Entries: wroteEntries, Checkpoints: wroteCPs}}); err != nil {
		return fmt.Errorf("ledger export: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("ledger export: %w", err)
	}
	return nil
}

// VerifyBundle checks an exported bundle offline; see VerifyBundleProgress.
func VerifyBundle(r io.Reader, trustedVerifierKey string) (Report, error) {
	return VerifyBundleProgress(r, trustedVerifierKey, nil)
}

// VerifyBundleProgress checks a bundle without a database: it recomputes
// every entry's leaf hash, rebuilds the tree, and checks that every
// checkpoint is signed by the verifier key and that its root is the
// rebuilt root at its size; it also checks the bundle is complete (entry
// indexes without gaps, the counts in its header and end line).
// trustedVerifierKey pins the key; "" uses the key written in the bundle,
// and the report says that this proves integrity, not authorship.
// progress, when not nil, is called every few thousand entries.
//
// The error is for a reader failure, a malformed trusted key, or input that
// is not a bundle at all (apperr Invalid on "bundle"); anything wrong inside
// a bundle is a problem in the Report.
func VerifyBundleProgress(r io.Reader, trustedVerifierKey string, progress func(done, total uint64)) (Report, error) {
	if trustedVerifierKey != "" {
		if _, err := note.NewVerifier(trustedVerifierKey); err != nil {
			return Report{}, apperr.InvalidField("key", "is not a note verifier key (<name>+<hash>+<base64 key>): %v", err)
		}
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxBundleLine)
	if !sc.Scan() {
		if err := sc.Err(); err != nil && !errors.Is(err, bufio.ErrTooLong) {
			return Report{}, fmt.Errorf("read bundle: %w", err)
		}
		return Report{}, apperr.InvalidField("bundle", "is empty or its first line is too long: not a %s file", BundleFormat)
	}
	var first bundleLine
	if err := json.Unmarshal(sc.Bytes(), &first); err != nil || first.Header == nil || first.Header.Format != BundleFormat {
		return Report{}, apperr.InvalidField("bundle", "line 1 is not a %s header", BundleFormat)
	}
	hdr := first.Header

	var rep Report
	vkey, pinned := trustedVerifierKey, trustedVerifierKey != ""
	if !pinned {
		vkey = hdr.VerifierKey
	} else if hdr.VerifierKey != vkey {
		rep.Notes = append(rep.Notes, fmt.Sprintf("the bundle names another verifier key, %s", hdr.VerifierKey))
	}
	c := newChecker(&rep, vkey, pinned)
	c.origin = hdr.Origin
	b := bundleVerifier{c: c}
	line := 1
	var end *bundleEnd
	for sc.Scan() {
		line++
		if end != nil {
			c.problem(nil, nil, "line %d: content after the end line", line)
			break
		}
		var bl bundleLine
		if err := json.Unmarshal(sc.Bytes(), &bl); err != nil {
			c.problem(nil, nil, "line %d is not a valid bundle line (%v): the bundle is damaged", line, err)
			b.stop()
			break
		}
		switch {
		case bl.Entry != nil && bl.Checkpoint == nil && bl.End == nil && bl.Header == nil:
			b.entry(line, *bl.Entry)
			if progress != nil && b.count%pageSize == 0 {
				progress(b.count, hdr.Entries)
			}
		case bl.Checkpoint != nil && bl.Entry == nil && bl.End == nil && bl.Header == nil:
			b.checkpoint(line, *bl.Checkpoint)
		case bl.End != nil && bl.Entry == nil && bl.Checkpoint == nil && bl.Header == nil:
			end = bl.End
		default:
			c.problem(nil, nil, "line %d holds not exactly one of entry, checkpoint or end", line)
		}
	}
	if err := sc.Err(); err != nil {
		if !errors.Is(err, bufio.ErrTooLong) {
			return Report{}, fmt.Errorf("read bundle: line %d: %w", line+1, err)
		}
		c.problem(nil, nil, "line %d is longer than %d bytes: the bundle is damaged", line+1, maxBundleLine)
		b.stop()
	}
	b.flush()
	rep.Entries = b.count
	switch {
	case end == nil:
		c.problem(nil, nil, "the bundle has no end line: it is truncated")
	case end.Entries != b.count || end.Checkpoints != b.checkpoints:
		c.problem(nil, nil, "the end line counts %d entries and %d checkpoints, the bundle holds %d and %d",
			end.Entries, end.Checkpoints, b.count, b.checkpoints)
	}
	if hdr.Entries != b.count || hdr.Checkpoints != b.checkpoints {
		c.problem(nil, nil, "the header announces %d entries and %d checkpoints, the bundle holds %d and %d",
			hdr.Entries, hdr.Checkpoints, b.count, b.checkpoints)
	}
	if progress != nil {
		progress(b.count, hdr.Entries)
	}
	c.finish()
	return rep, nil
}

// bundleVerifier feeds a bundle's lines to a checker, holding checkpoints
// that arrive before the entries they cover.
type bundleVerifier struct {
	c           *checker
	count       uint64 // entries seen (the next expected index)
	checkpoints uint64
	pending     []bundleCheckpoint // sorted by size
}

// stop ends the rebuild: later checkpoints cannot be checked.
func (b *bundleVerifier) stop() {
	if !b.c.broken {
		b.c.broken, b.c.brokenAt = true, b.count
	}
}

func (b *bundleVerifier) entry(line int, e Entry) {
	b.checkPending(b.count)
	switch {
	case e.Index > b.count:
		b.c.markBad(b.count)
		b.c.problem(ptr(b.count), nil, "line %d: entries %d–%d are missing (found entry %d)", line, b.count, e.Index-1, e.Index)
		b.stop()
		b.count = e.Index
	case e.Index < b.count:
		b.c.markBad(e.Index)
		b.c.problem(ptr(e.Index), nil, "line %d: entry %d appears again or out of order (expected %d)", line, e.Index, b.count)
		b.stop()
		return
	}
	leaf, err := LeafHash(e)
	if err != nil {
		b.c.markBad(e.Index)
		b.c.problem(ptr(e.Index), nil, "line %d: the entry cannot be encoded (%v): it was altered", line, err)
	}
	b.c.appendLeaf(e.Index, leaf, nil)
	if e.Index < 1<<63 {
		b.count = e.Index + 1
	}
}

func (b *bundleVerifier) checkpoint(line int, cp bundleCheckpoint) {
	b.checkpoints++
	switch {
	case cp.Size < b.count:
		b.c.rep.Checkpoints++
		b.c.problem(nil, ptr(cp.Size), "line %d: comes after entry %d, out of order, and cannot be checked", line, b.count-1)
	case cp.Size == b.count:
		b.c.checkCheckpoint(cp.Size, cp.Root, []byte(cp.Note))
	default:
		i, _ := slices.BinarySearchFunc(b.pending, cp.Size, func(p bundleCheckpoint, s uint64) int {
			switch {
			case p.Size < s:
				return -1
			case p.Size > s:
				return 1
			}
			return 0
		})
		if len(b.pending) < 1<<16 {
			b.pending = slices.Insert(b.pending, i, cp)
		} else {
			b.c.problem(nil, ptr(cp.Size), "line %d: too many checkpoints ahead of their entries", line)
		}
	}
}

// checkPending checks held checkpoints of size ≤ size.
func (b *bundleVerifier) checkPending(size uint64) {
	for len(b.pending) > 0 && b.pending[0].Size <= size {
		cp := b.pending[0]
		b.pending = b.pending[1:]
		if cp.Size < size {
			b.c.rep.Checkpoints++
			b.c.problem(nil, ptr(cp.Size), "cannot be checked: the entries before it are not in order")
			continue
		}
		b.c.checkCheckpoint(cp.Size, cp.Root, []byte(cp.Note))
	}
}

// flush checks what is still held once all entries are read.
func (b *bundleVerifier) flush() {
	b.checkPending(b.count)
	for _, cp := range b.pending {
		b.c.rep.Checkpoints++
		b.c.problem(nil, ptr(cp.Size), "beyond the bundle's %d entries: entries were removed", b.count)
	}
	b.pending = nil
}
