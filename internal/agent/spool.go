package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Defaults for a Spool's bounds.
const (
	DefaultSpoolMaxMessages = 10000
	DefaultSpoolMaxBytes    = 16 << 20
)

// SpoolEntry is one message waiting in the spool.
type SpoolEntry struct {
	Seq     uint64 `json:"-"`
	Topic   string `json:"topic"`
	Payload []byte `json:"payload"`
}

// Spool is a bounded, ordered queue of outgoing MQTT messages on disk, one
// file per message named by a sequence number, so that what the agent
// accepted survives a lost connection and a restart. When a bound is
// reached the oldest messages are dropped and counted. A message is removed
// only when the caller says it was delivered. It is safe for concurrent
// use; only one process may open a directory.
type Spool struct {
	dir      string
	maxCount int
	maxBytes int64
	mu       sync.Mutex
	seqs     []uint64 // oldest first
	sizes    map[uint64]int64
	total    int64
	next     uint64
	dropped  uint64
	notEmpty chan struct{} // closed and replaced when a message arrives
}

const spoolSuffix = ".msg"

// OpenSpool opens (creating it, mode 0700) the spool in dir, holding at
// most maxCount messages and maxBytes bytes of files; zero takes the
// defaults. Files left half-written by a crash are removed.
func OpenSpool(dir string, maxCount int, maxBytes int64) (*Spool, error) {
	if maxCount <= 0 {
		maxCount = DefaultSpoolMaxMessages
	}
	if maxBytes <= 0 {
		maxBytes = DefaultSpoolMaxBytes
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open spool %s: %w", dir, err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("open spool %s: %w", dir, err)
	}
	s := &Spool{dir: dir, maxCount: maxCount, maxBytes: maxBytes, sizes: map[uint64]int64{}, next: 1, notEmpty: make(chan struct{})}
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") {
			_ = os.Remove(filepath.Join(dir, name))
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(name, spoolSuffix), 10, 64)
		if !strings.HasSuffix(name, spoolSuffix) || err != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		s.seqs = append(s.seqs, seq)
		s.sizes[seq] = info.Size()
		s.total += info.Size()
		s.next = max(s.next, seq+1)
	}
	slices.Sort(s.seqs)
	return s, nil
}

func (s *Spool) path(seq uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%020d%s", seq, spoolSuffix))
}

// Append adds a message at the end, dropping the oldest messages if the
// spool would otherwise exceed its bounds. A single message larger than
// the byte bound is refused.
func (s *Spool) Append(topic string, payload []byte) error {
	data, err := json.Marshal(SpoolEntry{Topic: topic, Payload: payload})
	if err != nil {
		return fmt.Errorf("spool append: %w", err)
	}
	size := int64(len(data))
	if size > s.maxBytes {
		return fmt.Errorf("spool append to %s: message of %d bytes exceeds the spool's %d", topic, size, s.maxBytes)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.seqs) > 0 && (len(s.seqs)+1 > s.maxCount || s.total+size > s.maxBytes) {
		s.removeLocked(s.seqs[0])
		s.dropped++
	}
	seq := s.next
	if err := writeFileAtomic(s.path(seq), data, 0o600); err != nil {
		return fmt.Errorf("spool append to %s: %w", topic, err)
	}
	s.next++
	s.seqs = append(s.seqs, seq)
	s.sizes[seq] = size
	s.total += size
	close(s.notEmpty)
	s.notEmpty = make(chan struct{})
	return nil
}

// Oldest returns the oldest message. ok is false if the spool is empty. A
// file that cannot be read is removed, counted as dropped, and skipped.
func (s *Spool) Oldest() (e SpoolEntry, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.seqs) > 0 {
		seq := s.seqs[0]
		data, err := os.ReadFile(s.path(seq))
		if err == nil {
			err = json.Unmarshal(data, &e)
		}
		if err != nil {
			s.removeLocked(seq)
			s.dropped++
			continue
		}
		e.Seq = seq
		return e, true
	}
	return SpoolEntry{}, false
}

// Remove deletes the message with seq, once it has been delivered.
// Removing a message that is no longer there is not an error.
func (s *Spool) Remove(seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.removeLocked(seq)
}

func (s *Spool) removeLocked(seq uint64) error {
	i := slices.Index(s.seqs, seq)
	if i < 0 {
		return nil
	}
	s.seqs = slices.Delete(s.seqs, i, i+1)
	s.total -= s.sizes[seq]
	delete(s.sizes, seq)
	if err := os.Remove(s.path(seq)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spool remove %d: %w", seq, err)
	}
	return nil
}

// Len returns the number of messages waiting.
func (s *Spool) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seqs)
}

// Dropped returns how many messages were dropped since the spool was
// opened, to stay within bounds or because their file was unreadable.
func (s *Spool) Dropped() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// Wait returns a channel that is closed when the next message is appended.
func (s *Spool) Wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.notEmpty
}

// writeFileAtomic writes data to path through a synced temporary file and a
// rename, so a crash leaves either the old file or the new one.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, mode)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}
