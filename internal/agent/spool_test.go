package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// drain reads the spool oldest first, removing each message, and returns
// the payloads.
func drain(t *testing.T, s *Spool) []string {
	t.Helper()
	var out []string
	for {
		e, ok := s.Oldest()
		if !ok {
			return out
		}
		out = append(out, string(e.Payload))
		if err := s.Remove(e.Seq); err != nil {
			t.Fatalf("remove %d: %v", e.Seq, err)
		}
	}
}

func appendN(t *testing.T, s *Spool, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		if err := s.Append("devices/d/telemetry", []byte(fmt.Sprint(i))); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
}

func TestSpoolKeepsMessagesInOrderAcrossAReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	s, err := OpenSpool(dir, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, s, 1, 12)
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("spool dir mode = %v (%v), want 0700", fi.Mode().Perm(), err)
	}
	// A crash mid-write leaves a temporary file; reopening clears it.
	if err := os.WriteFile(filepath.Join(dir, "00000000000000000099.msg.tmp"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	s2, err := OpenSpool(dir, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Len() != 12 {
		t.Fatalf("reopened spool holds %d messages, want 12", s2.Len())
	}
	appendN(t, s2, 13, 13)
	got := drain(t, s2)
	for i, p := range got {
		if p != fmt.Sprint(i+1) {
			t.Fatalf("message %d is %q; order lost: %v", i, p, got)
		}
	}
	if len(got) != 13 {
		t.Errorf("got %d messages, want 13", len(got))
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("%d files left in a drained spool", len(ents))
	}
}

func TestFullSpoolDropsTheOldestAndCountsThem(t *testing.T) {
	s, err := OpenSpool(t.TempDir(), 5, 0)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, s, 1, 8)
	if s.Len() != 5 || s.Dropped() != 3 {
		t.Fatalf("len %d, dropped %d; want 5 and 3", s.Len(), s.Dropped())
	}
	if got := drain(t, s); fmt.Sprint(got) != "[4 5 6 7 8]" {
		t.Errorf("kept %v, want the newest five", got)
	}
}

func TestSpoolByteBoundDropsTheOldest(t *testing.T) {
	s, err := OpenSpool(t.TempDir(), 0, 300)
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 60) // about 130 bytes as a file
	for i := range 5 {
		payload[0] = byte('a' + i)
		if err := s.Append("t", payload); err != nil {
			t.Fatal(err)
		}
	}
	if s.Len() != 2 || s.Dropped() != 3 {
		t.Errorf("len %d, dropped %d; want 2 kept within 300 bytes and 3 dropped", s.Len(), s.Dropped())
	}
	if err := s.Append("t", make([]byte, 400)); err == nil {
		t.Error("a message larger than the whole spool was accepted")
	}
}

func TestUnreadableSpoolFileIsSkippedNotFatal(t *testing.T) {
	dir := t.TempDir()
	s, _ := OpenSpool(dir, 0, 0)
	appendN(t, s, 1, 3)
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%020d.msg", 2)), []byte("not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := drain(t, s); fmt.Sprint(got) != "[1 3]" {
		t.Errorf("got %v, want [1 3]", got)
	}
	if s.Dropped() != 1 {
		t.Errorf("dropped = %d, want 1", s.Dropped())
	}
}
