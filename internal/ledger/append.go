package ledger

import (
	"context"
	"fmt"

	"github.com/transparency-dev/merkle/compact"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/bus"
	"github.com/fleetward/fleetward/internal/store"
)

// Rows per multi-row INSERT: well under SQLite's 32766 and PostgreSQL's
// 65535 bind parameters.
const (
	entryRowsPerInsert = 500
	nodeRowsPerInsert  = 1000
)

// hashSize is the size of every tree hash (SHA-256).
const hashSize = 32

// head is the stored tree head: its size and compact range [0, size).
type head struct {
	size   uint64
	hashes [][]byte
}

// node is one stored tree node.
type node struct {
	id   compact.NodeID
	hash []byte
}

// RecordTx appends evs to the ledger inside the caller's transaction, so
// the record commits or rolls back with the change it describes. Events
// without an Actor (and Remote) get them from actor.From(ctx). The head row
// stays locked until the caller's transaction ends: keep it short.
func (l *Ledger) RecordTx(ctx context.Context, tx *store.Tx, evs ...bus.Event) error {
	if len(evs) == 0 {
		return nil
	}
	_, err := l.appendTx(ctx, tx, entriesFromEvents(ctx, evs))
	return err
}

// Record appends evs in a transaction of its own; see RecordTx.
func (l *Ledger) Record(ctx context.Context, evs ...bus.Event) error {
	if len(evs) == 0 {
		return nil
	}
	_, err := l.Append(ctx, entriesFromEvents(ctx, evs)...)
	return err
}

func entriesFromEvents(ctx context.Context, evs []bus.Event) []Entry {
	a := actor.From(ctx)
	entries := make([]Entry, len(evs))
	for i, ev := range evs {
		if ev.Actor == "" {
			ev.Actor = a.Name
			if ev.Remote == "" {
				ev.Remote = a.Remote
			}
		}
		entries[i] = EntryFromEvent(ev)
	}
	return entries
}

// Append appends entries in one transaction and returns their indexes, in
// order. Their Index fields are ignored. A malformed entry (no type, data
// that is not JSON, a field over its size limit) fails the whole batch with
// an apperr Invalid error naming the field; nothing is appended then.
func (l *Ledger) Append(ctx context.Context, entries ...Entry) ([]uint64, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	var idx []uint64
	err := l.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		idx, err = l.appendTx(ctx, tx, entries)
		return err
	})
	return idx, err
}

func (l *Ledger) appendTx(ctx context.Context, tx *store.Tx, in []Entry) ([]uint64, error) {
	now := l.now()
	entries := make([]Entry, len(in))
	for i, e := range in {
		n, err := normalize(e, now)
		if err != nil {
			return nil, fmt.Errorf("ledger append %q: %w", e.Type, err)
		}
		entries[i] = n
	}
	h, err := readHead(ctx, tx, l.db.ForUpdate())
	if err != nil {
		return nil, fmt.Errorf("ledger append: %w", err)
	}
	rng, err := rangeFactory.NewRange(0, h.size, h.hashes)
	if err != nil {
		return nil, fmt.Errorf("ledger append: stored head is corrupt: %w", err)
	}
	nodes := make([]node, 0, 2*len(entries)+1)
	visit := func(id compact.NodeID, hash []byte) { nodes = append(nodes, node{id, hash}) }
	idx := make([]uint64, len(entries))
	for i := range entries {
		entries[i].Index = h.size + uint64(i)
		idx[i] = entries[i].Index
		leaf, err := LeafHash(entries[i])
		if err != nil {
			return nil, fmt.Errorf("ledger append %q: %w", entries[i].Type, err)
		}
		if err := rng.Append(leaf, visit); err != nil {
			return nil, fmt.Errorf("ledger append: %w", err)
		}
	}
	if err := insertEntries(ctx, tx, entries); err != nil {
		return nil, fmt.Errorf("ledger append: %w", err)
	}
	if err := insertNodes(ctx, tx, nodes); err != nil {
		return nil, fmt.Errorf("ledger append: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE ledger_head SET size = ?, hashes = ?, updated_at = ? WHERE id = 1`,
		int64(rng.End()), joinHashes(rng.Hashes()), now.UnixNano()); err != nil {
		return nil, fmt.Errorf("ledger append: update head: %w", err)
	}
	return idx, nil
}

func readHead(ctx context.Context, q store.Querier, lock string) (head, error) {
	var size int64
	var raw []byte
	if err := q.QueryRow(ctx, `SELECT size, hashes FROM ledger_head WHERE id = 1`+lock).Scan(&size, &raw); err != nil {
		return head{}, fmt.Errorf("read head: %w", err)
	}
	if size < 0 || len(raw)%hashSize != 0 || len(raw)/hashSize != compact.RangeSize(0, uint64(size)) {
		return head{}, fmt.Errorf("read head: stored head is corrupt (size %d with %d bytes of hashes)", size, len(raw))
	}
	return head{size: uint64(size), hashes: splitHashes(raw)}, nil
}

func joinHashes(hs [][]byte) []byte {
	out := make([]byte, 0, len(hs)*hashSize)
	for _, h := range hs {
		out = append(out, h...)
	}
	return out
}

func splitHashes(raw []byte) [][]byte {
	hs := make([][]byte, 0, len(raw)/hashSize)
	for i := 0; i+hashSize <= len(raw); i += hashSize {
		hs = append(hs, raw[i:i+hashSize:i+hashSize])
	}
	return hs
}

// rootOf returns the root hash of a tree given by its compact range.
func rootOf(size uint64, hashes [][]byte) ([]byte, error) {
	if size == 0 {
		return hasher.EmptyRoot(), nil
	}
	rng, err := rangeFactory.NewRange(0, size, hashes)
	if err != nil {
		return nil, err
	}
	return rng.GetRootHash(nil)
}

func insertEntries(ctx context.Context, tx *store.Tx, entries []Entry) error {
	for len(entries) > 0 {
		n := min(len(entries), entryRowsPerInsert)
		args := make([]any, 0, n*7)
		for _, e := range entries[:n] {
			args = append(args, int64(e.Index), e.Time.UnixNano(), e.Type, e.Actor, e.Remote, e.Subject, string(e.Data))
		}
		q := `INSERT INTO ledger_entries (idx, event_time, type, actor, remote, subject, data) VALUES ` + store.Rows(n, 7)
		if _, err := tx.Exec(ctx, q, args...); err != nil {
			return fmt.Errorf("insert entries from %d: %w", entries[0].Index, err)
		}
		entries = entries[n:]
	}
	return nil
}

func insertNodes(ctx context.Context, tx *store.Tx, nodes []node) error {
	for len(nodes) > 0 {
		n := min(len(nodes), nodeRowsPerInsert)
		args := make([]any, 0, n*3)
		for _, nd := range nodes[:n] {
			args = append(args, int(nd.id.Level), int64(nd.id.Index), nd.hash)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO ledger_nodes (level, idx, hash) VALUES `+store.Rows(n, 3), args...); err != nil {
			return fmt.Errorf("insert tree nodes: %w", err)
		}
		nodes = nodes[n:]
	}
	return nil
}
