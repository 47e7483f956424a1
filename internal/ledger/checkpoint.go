package ledger

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/fleetward/fleetward/internal/store"
)

// Checkpoint signs the current tree head when the ledger grew since the
// latest stored checkpoint (or none is stored yet), stores it and returns
// it; otherwise it returns the latest stored checkpoint. Concurrent callers,
// in one process or several, never store two checkpoints of one size.
func (l *Ledger) Checkpoint(ctx context.Context) (Checkpoint, error) {
	latest, stored, err := latestCheckpoint(ctx, l.db)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("ledger checkpoint: %w", err)
	}
	h, err := readHead(ctx, l.db, "")
	if err != nil {
		return Checkpoint{}, fmt.Errorf("ledger checkpoint: %w", err)
	}
	if stored && h.size <= latest.Size {
		return latest, nil
	}
	root, err := rootOf(h.size, h.hashes)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("ledger checkpoint: stored head is corrupt: %w", err)
	}
	signed, err := note.Sign(&note.Note{Text: checkpointText(l.origin, h.size, root)}, l.signer)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("ledger checkpoint at size %d: sign: %w", h.size, err)
	}
	cp := Checkpoint{Size: h.size, Root: root, Time: time.Unix(0, l.now().UnixNano()).UTC(), Note: signed}
	_, err = l.db.Exec(ctx, `INSERT INTO ledger_checkpoints (size, root, note, created_at) VALUES (?, ?, ?, ?)`,
		int64(cp.Size), cp.Root, string(cp.Note), cp.Time.UnixNano())
	if store.IsUniqueViolation(err) {
		// Another process signed this size first; theirs stands.
		return checkpointAt(ctx, l.db, h.size)
	}
	if err != nil {
		return Checkpoint{}, fmt.Errorf("ledger checkpoint at size %d: store: %w", h.size, err)
	}
	l.log.Debug("signed checkpoint", "size", cp.Size)
	return cp, nil
}

// Latest returns the latest stored checkpoint: the one of the largest size.
// Before the first checkpoint it returns an unsigned Checkpoint of size 0
// (Root is the empty tree's root, Note is nil).
func (l *Ledger) Latest(ctx context.Context) (Checkpoint, error) {
	cp, _, err := latestCheckpoint(ctx, l.db)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("ledger latest checkpoint: %w", err)
	}
	return cp, nil
}

// Run signs a checkpoint every CheckpointEvery while the ledger grows, until
// ctx is done, and once more on the way out so nothing recorded before a
// clean shutdown is left unsigned.
func (l *Ledger) Run(ctx context.Context) {
	tick := time.NewTicker(l.every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if _, err := l.Checkpoint(final); err != nil {
				l.log.Warn("final ledger checkpoint failed", "err", err)
			}
			return
		case <-tick.C:
			if _, err := l.Checkpoint(ctx); err != nil && ctx.Err() == nil {
				l.log.Warn("ledger checkpoint failed; will retry", "err", err)
			}
		}
	}
}

func latestCheckpoint(ctx context.Context, q store.Querier) (Checkpoint, bool, error) {
	cp, err := scanCheckpoint(q.QueryRow(ctx, `SELECT size, root, note, created_at FROM ledger_checkpoints ORDER BY size DESC LIMIT 1`))
	if errors.Is(err, sql.ErrNoRows) {
		return Checkpoint{Root: hasher.EmptyRoot()}, false, nil
	}
	return cp, err == nil, err
}

func checkpointAt(ctx context.Context, q store.Querier, size uint64) (Checkpoint, error) {
	cp, err := scanCheckpoint(q.QueryRow(ctx, `SELECT size, root, note, created_at FROM ledger_checkpoints WHERE size = ?`, int64(size)))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("read checkpoint at size %d: %w", size, err)
	}
	return cp, nil
}

type rowScanner interface{ Scan(dest ...any) error }

func scanCheckpoint(row rowScanner) (Checkpoint, error) {
	var size, at int64
	var root []byte
	var text string
	if err := row.Scan(&size, &root, &text, &at); err != nil {
		return Checkpoint{}, err
	}
	return Checkpoint{Size: uint64(size), Root: bytes.Clone(root), Time: time.Unix(0, at).UTC(), Note: []byte(text)}, nil
}
