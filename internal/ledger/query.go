package ledger

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/store"
)

// Query limits.
const (
	// MaxRange is the most entries one Entries call returns.
	MaxRange = 10000
	// DefaultLimit and MaxLimit bound EntriesBySubject and EntriesByType.
	DefaultLimit = 100
	MaxLimit     = 1000
)

const entryColumns = `idx, event_time, type, actor, remote, subject, data`

// Entries returns the stored entries with from ≤ index < to, in index
// order; indexes not yet appended are simply absent. A range with to < from
// or wider than MaxRange is an apperr Invalid error on "to".
func (l *Ledger) Entries(ctx context.Context, from, to uint64) ([]Entry, error) {
	if to < from {
		return nil, apperr.InvalidField("to", "must not be less than from")
	}
	if to-from > MaxRange {
		return nil, apperr.InvalidField("to", "at most %d entries per request", MaxRange)
	}
	if from >= 1<<63 {
		return nil, nil
	}
	to = min(to, 1<<63-1)
	out, err := queryEntries(ctx, l.db, `SELECT `+entryColumns+` FROM ledger_entries WHERE idx >= ? AND idx < ? ORDER BY idx`,
		int64(from), int64(to))
	if err != nil {
		return nil, fmt.Errorf("ledger entries %d..%d: %w", from, to, err)
	}
	return out, nil
}

// EntriesBySubject returns up to limit entries about subject, newest
// first. limit ≤ 0 means DefaultLimit; it is capped at MaxLimit.
func (l *Ledger) EntriesBySubject(ctx context.Context, subject string, limit int) ([]Entry, error) {
	out, err := queryEntries(ctx, l.db, `SELECT `+entryColumns+` FROM ledger_entries WHERE subject = ? ORDER BY idx DESC LIMIT ?`,
		subject, clampLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("ledger entries about %q: %w", subject, err)
	}
	return out, nil
}

// EntriesByType returns up to limit entries whose type starts with
// typePrefix ("security." for all security events, or one full type),
// newest first. limit ≤ 0 means DefaultLimit; it is capped at MaxLimit.
func (l *Ledger) EntriesByType(ctx context.Context, typePrefix string, limit int) ([]Entry, error) {
	// substr rather than LIKE: SQLite's LIKE ignores ASCII case, and
	// neither needs escaping this way.
	out, err := queryEntries(ctx, l.db, `SELECT `+entryColumns+` FROM ledger_entries
		WHERE substr(type, 1, ?) = ? ORDER BY idx DESC LIMIT ?`,
		utf8.RuneCountInString(typePrefix), typePrefix, clampLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("ledger entries of type %q: %w", typePrefix, err)
	}
	return out, nil
}

func clampLimit(limit int) int {
	if limit <= 0 {
		return DefaultLimit
	}
	return min(limit, MaxLimit)
}

func queryEntries(ctx context.Context, q store.Querier, query string, args ...any) ([]Entry, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Entry{}
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func scanEntry(row rowScanner) (Entry, error) {
	var idx, at int64
	var e Entry
	var data string
	if err := row.Scan(&idx, &at, &e.Type, &e.Actor, &e.Remote, &e.Subject, &data); err != nil {
		return Entry{}, err
	}
	e.Index, e.Time = uint64(idx), time.Unix(0, at).UTC()
	if data != "" {
		e.Data = []byte(data)
	}
	return e, nil
}

// InclusionProof returns the RFC 6962 inclusion proof of entry index in the
// tree of the first size entries, for proof.VerifyInclusion against the
// root of a checkpoint of that size. index ≥ size, or size 0, is an apperr
// Invalid error; a size beyond the latest checkpoint is NotFound.
func (l *Ledger) InclusionProof(ctx context.Context, index, size uint64) ([][]byte, error) {
	if size == 0 {
		return nil, apperr.InvalidField("size", "must be at least 1")
	}
	if index >= size {
		return nil, apperr.InvalidField("index", "must be less than size (%d)", size)
	}
	if err := l.requireSigned(ctx, size); err != nil {
		return nil, err
	}
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, apperr.InvalidField("index", "%v", err)
	}
	p, err := l.buildProof(ctx, nodes)
	if err != nil {
		return nil, fmt.Errorf("ledger inclusion proof of %d in %d: %w", index, size, err)
	}
	return p, nil
}

// ConsistencyProof returns the RFC 6962 consistency proof between the trees
// of the first size1 and size2 entries, for proof.VerifyConsistency. size1
// > size2 is an apperr Invalid error on "from"; a size2 beyond the latest
// checkpoint is NotFound.
func (l *Ledger) ConsistencyProof(ctx context.Context, size1, size2 uint64) ([][]byte, error) {
	if size1 > size2 {
		return nil, apperr.InvalidField("from", "must not be greater than to (%d)", size2)
	}
	if err := l.requireSigned(ctx, size2); err != nil {
		return nil, err
	}
	nodes, err := proof.Consistency(size1, size2)
	if err != nil {
		return nil, apperr.InvalidField("from", "%v", err)
	}
	p, err := l.buildProof(ctx, nodes)
	if err != nil {
		return nil, fmt.Errorf("ledger consistency proof %d→%d: %w", size1, size2, err)
	}
	return p, nil
}

func (l *Ledger) requireSigned(ctx context.Context, size uint64) error {
	cp, err := l.Latest(ctx)
	if err != nil {
		return err
	}
	if size > cp.Size {
		return apperr.NotFoundf("no signed checkpoint covers size %d yet (the latest covers %d entries)", size, cp.Size)
	}
	return nil
}

func (l *Ledger) buildProof(ctx context.Context, nodes proof.Nodes) ([][]byte, error) {
	hashes, err := fetchNodes(ctx, l.db, nodes.IDs)
	if err != nil {
		return nil, err
	}
	p, err := nodes.Rehash(hashes, hasher.HashChildren)
	if err != nil {
		return nil, err
	}
	if p == nil {
		p = [][]byte{}
	}
	return p, nil
}

// fetchNodes reads the stored hashes of ids, in the order of ids.
func fetchNodes(ctx context.Context, q store.Querier, ids []compact.NodeID) ([][]byte, error) {
	if len(ids) == 0 {
		return [][]byte{}, nil
	}
	var where strings.Builder
	args := make([]any, 0, 2*len(ids))
	for i, id := range ids {
		if i > 0 {
			where.WriteString(" OR ")
		}
		where.WriteString("(level = ? AND idx = ?)")
		args = append(args, int(id.Level), int64(id.Index))
	}
	found, err := queryNodes(ctx, q, where.String(), args)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(ids))
	for i, id := range ids {
		h, ok := found[id]
		if !ok {
			return nil, fmt.Errorf("tree node (level %d, index %d) is missing from the store", id.Level, id.Index)
		}
		out[i] = h
	}
	return out, nil
}

// queryNodes reads the stored tree nodes a WHERE clause over (level, idx)
// selects.
func queryNodes(ctx context.Context, q store.Querier, where string, args []any) (map[compact.NodeID][]byte, error) {
	rows, err := q.Query(ctx, `SELECT level, idx, hash FROM ledger_nodes WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("read tree nodes: %w", err)
	}
	defer rows.Close()
	found := map[compact.NodeID][]byte{}
	for rows.Next() {
		var level int
		var idx int64
		var h []byte
		if err := rows.Scan(&level, &idx, &h); err != nil {
			return nil, fmt.Errorf("read tree nodes: %w", err)
		}
		found[compact.NewNodeID(uint(level), uint64(idx))] = h
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read tree nodes: %w", err)
	}
	return found, nil
}
