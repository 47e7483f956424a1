package flow

import (
	"errors"
	"github.com/fleetward/fleetward/internal/datasets"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func iot23Dir(t *testing.T) string {
	t.Helper()
	return datasets.Path(t, "iot23")
}

// score runs the rules over a labelled file and counts flagged flows.
type score struct {
	flows, malicious, benign, flaggedMalicious, flaggedBenign, skipped int
	behaviours                                                         map[string]int
}

func evaluate(t *testing.T, path string) score {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// IoT-23 rows are not in time order; the rules take them in order of
	// their start, as detect --zeek gives them.
	r := NewReader(f)
	var conns []Conn
	var order Reorderer
	keep := func(c Conn) { conns = append(conns, c) }
	for {
		c, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		order.Push(c, keep)
	}
	order.Flush(keep)
	d := NewDetector(testRules)
	s := score{behaviours: map[string]int{}, skipped: r.Skipped}
	for _, c := range conns {
		sigs := d.Observe(c)
		s.flows++
		for _, sg := range sigs {
			s.behaviours[sg.Behaviour]++
		}
		switch {
		case c.Malicious():
			s.malicious++
			if len(sigs) > 0 {
				s.flaggedMalicious++
			}
		default:
			s.benign++
			if len(sigs) > 0 {
				s.flaggedBenign++
			}
		}
	}
	return s
}

var testRules = Rules{}

func TestFlowRulesOnIoT23FindTheBotsAndLeaveBenignTrafficAlone(t *testing.T) {
	dir := iot23Dir(t)
	for _, c := range []struct {
		file         string
		minRecall    float64
		maxFalsePos  int
		wantBehavior string
	}{
		{"CTU-Honeypot-Capture-4-1-labeled.csv", 0, 0, ""},
		{"CTU-Malware-Capture-8-1-labeled.csv", 0.99, 0, "c2_beaconing"},
		{"CTU-Malware-Capture-20-1-labeled.csv", 0.3, 0, "c2_beaconing"},
	} {
		t.Run(c.file, func(t *testing.T) {
			s := evaluate(t, filepath.Join(dir, c.file))
			recall := 0.0
			if s.malicious > 0 {
				recall = float64(s.flaggedMalicious) / float64(s.malicious)
			}
			t.Logf("%d flows (%d skipped): %d malicious, %d flagged (recall %.3f); %d benign, %d flagged; behaviours %v",
				s.flows, s.skipped, s.malicious, s.flaggedMalicious, recall, s.benign, s.flaggedBenign, s.behaviours)
			if s.skipped != 0 {
				t.Errorf("%d records skipped", s.skipped)
			}
			if recall < c.minRecall {
				t.Errorf("recall %.3f, want at least %.2f", recall, c.minRecall)
			}
			if s.flaggedBenign > c.maxFalsePos {
				t.Errorf("%d benign flows flagged, want at most %d", s.flaggedBenign, c.maxFalsePos)
			}
			if c.wantBehavior != "" && s.behaviours[c.wantBehavior] == 0 {
				t.Errorf("no %s signal; got %v", c.wantBehavior, s.behaviours)
			}
		})
	}
}

func TestReaderReadsZeekTSVAndJSONAndSkipsBadRecords(t *testing.T) {
	tsv := "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n" +
		"#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\torig_pkts\tresp_pkts\n" +
		"#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tcount\tcount\n" +
		"1540469303.114184\tC1\t192.168.1.132\t58687\t216.239.35.4\t123\tudp\t-\t0.114184\t48\t48\tSF\t1\t1\n" +
		"1540469304.5\tC2\tnot-an-ip\t1\t10.0.0.1\t23\ttcp\t-\t-\t-\t-\tS0\t1\t0\n" +
		"1540469305\tC3\t10.0.0.5\t40000\t10.0.0.1\t23\ttcp\t-\t-\t-\t-\tS0\t1\t0\n"
	r := NewReader(strings.NewReader(tsv))
	got := readConns(t, r)
	if len(got) != 2 || r.Skipped != 1 || !strings.Contains(r.LastError.Error(), "id.orig_h") {
		t.Fatalf("read %d, skipped %d (%v); want 2 and 1 naming id.orig_h", len(got), r.Skipped, r.LastError)
	}
	if got[0].Time != time.Unix(1540469303, 114184000).UTC() || got[0].RespP != 123 || got[0].OrigBytes != 48 || !got[1].Unanswered() {
		t.Errorf("records = %+v", got)
	}
	js := `{"ts":1540469303.5,"uid":"C1","id.orig_h":"10.0.0.5","id.orig_p":40000,"id.resp_h":"8.8.8.8","id.resp_p":50,"proto":"tcp","conn_state":"S0","orig_pkts":2,"resp_pkts":0}` + "\n" +
		`{"ts":"2026-11-28T10:00:00.25Z","id.orig_h":"10.0.0.5","id.resp_h":"8.8.8.8","id.resp_p":50,"proto":"tcp"}` + "\n" + `{"ts":` + "\n"
	r = NewReader(strings.NewReader(js))
	n := len(readConns(t, r))
	if n != 2 || r.Skipped != 1 {
		t.Errorf("JSON: read %d skipped %d, want 2 and 1", n, r.Skipped)
	}
	if _, err := NewReader(strings.NewReader("hello\n")).Next(); err == nil || !strings.Contains(err.Error(), "not a Zeek conn.log") {
		t.Errorf("a non-log = %v", err)
	}
	// A record longer than MaxLine between good ones is skipped like any
	// malformed one, and the last record needs no line ending.
	record := `{"ts":1540469303.5,"id.orig_h":"10.0.0.5","id.resp_h":"8.8.8.8","id.resp_p":50,"proto":"tcp"}`
	long := `{"ts":1540469304,"history":"` + strings.Repeat("S", MaxLine+10) + `"}`
	r = NewReader(strings.NewReader(record + "\r\n" + long + "\n" + record))
	n = len(readConns(t, r))
	if n != 2 || r.Skipped != 1 || !strings.Contains(r.LastError.Error(), "line 2: a line longer than") {
		t.Errorf("a long line: read %d, skipped %d (%v); want 2 and 1 on line 2", n, r.Skipped, r.LastError)
	}
}

func TestTelnetScanAndBruteForceAndFloodRules(t *testing.T) {
	d := NewDetector(Rules{})
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	got := map[string]int{}
	src := mustAddr("10.0.0.5")
	for i := range 12 { // Telnet to 12 hosts in 12 s
		c := Conn{Time: t0.Add(time.Duration(i) * time.Second), OrigH: src, RespH: mustAddr("10.0.1." + itoa(i+1)), RespP: 23, Proto: "tcp", ConnState: "S0", OrigPkts: 1}
		for _, s := range d.Observe(c) {
			got[s.Behaviour]++
		}
	}
	for i := range 20 { // 20 SSH logins to one host in 20 s
		c := Conn{Time: t0.Add(time.Minute + time.Duration(i)*time.Second), OrigH: src, RespH: mustAddr("10.0.2.1"), RespP: 22, Proto: "tcp", ConnState: "SF", OrigPkts: 10, RespPkts: 10}
		for _, s := range d.Observe(c) {
			got[s.Behaviour]++
		}
	}
	for i := range 600 { // 600 UDP flows in 6 s
		c := Conn{Time: t0.Add(3*time.Minute + time.Duration(i)*10*time.Millisecond), OrigH: src, RespH: mustAddr("10.0.3.1"), RespP: 53, Proto: "udp", ConnState: "S0", OrigPkts: 1}
		for _, s := range d.Observe(c) {
			got[s.Behaviour]++
		}
	}
	if got["telnet_scan"] != 3 || got["brute_force"] != 6 || got["udp_flood"] != 101 {
		t.Errorf("signals = %v; want telnet_scan 3 (hosts 10-12), brute_force 6 (attempts 15-20), udp_flood 101", got)
	}
	d.evict(t0.Add(time.Hour))
	if d.Keys() != 0 {
		t.Errorf("%d windows kept an hour later, want 0", d.Keys())
	}
}

func FuzzReader(f *testing.F) {
	f.Add("#fields\tts\tid.orig_h\tid.resp_h\tid.resp_p\tproto\n1.5\t10.0.0.1\t10.0.0.2\t23\ttcp\n")
	f.Add(`{"ts":1.5,"id.orig_h":"10.0.0.1","id.resp_h":"10.0.0.2","id.resp_p":23,"proto":"tcp"}`)
	f.Add("ts,uid,id.orig_h,id.orig_p,id.resp_h,id.resp_p,proto\n1,C,10.0.0.1,1,10.0.0.2,2,tcp\n")
	f.Fuzz(func(t *testing.T, in string) {
		r := NewReader(strings.NewReader(in))
		d := NewDetector(Rules{})
		for range 1000 {
			c, err := r.Next()
			if err != nil {
				return
			}
			d.Observe(c)
		}
	})
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func itoa(i int) string { return strconv.Itoa(i) }

// BenchmarkFlowRules measures the rules over the IoT-23 Mirai capture
// (10,403 flows), in flows a second.
func BenchmarkFlowRules(b *testing.B) {
	path := datasets.Path(b, "iot23/CTU-Malware-Capture-8-1-labeled.csv")
	f, err := os.Open(path)
	if err != nil {
		b.Skip(err)
	}
	r := NewReader(f)
	var conns []Conn
	var order Reorderer
	keep := func(c Conn) { conns = append(conns, c) }
	for {
		c, err := r.Next()
		if err != nil {
			break
		}
		order.Push(c, keep)
	}
	order.Flush(keep)
	f.Close()
	b.ResetTimer()
	for b.Loop() {
		d := NewDetector(Rules{})
		for _, c := range conns {
			d.Observe(c)
		}
	}
	b.ReportMetric(float64(b.N*len(conns))/b.Elapsed().Seconds(), "flows/s")
}

// readConns reads r to its end.
func readConns(t *testing.T, r *Reader) []Conn {
	t.Helper()
	var got []Conn
	for {
		c, err := r.Next()
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, c)
	}
}

// The distinct-target windows slide: a target leaves when its last
// sighting is older than the window, one seen again stays, and a set past
// maxDistinct keeps the newest.
func TestDistinctWindowsSlide(t *testing.T) {
	d := NewDetector(Rules{})
	t0 := time.Date(2026, 11, 29, 6, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	for i, step := range []struct {
		target string
		at     int
		want   int
	}{
		{"a", 0, 1}, {"b", 10, 2}, {"c", 20, 3},
		{"a", 50, 3},  // seen again: its window starts over
		{"d", 71, 3},  // b (10) has left; a, c, d
		{"e", 81, 3},  // c (20) has left; a, d, e
		{"f", 111, 3}, // a (50) has left; d, e, f
		{"g", 500, 1},
	} {
		if n := d.distinctCount("k", step.target, at(step.at), time.Minute); n != step.want {
			t.Fatalf("step %d (%s at %d s): %d distinct, want %d", i, step.target, step.at, n, step.want)
		}
	}
	// Records out of order: one late within the window counts and keeps
	// the target's later sighting; one later than the window counts not.
	for i, step := range []struct {
		target string
		at     int
		want   int
	}{
		{"x", 1000, 1}, {"y", 1030, 2},
		{"x", 1010, 2}, // late, within the window: x is now last seen at 1010 s
		{"z", 900, 2},  // late past the window: not counted
		{"w", 1065, 3}, // x (1010 s) is 55 s back: y, x, w
		{"v", 1071, 3}, // x left (61 s back): y, w, v
	} {
		if n := d.distinctCount("late", step.target, at(step.at), time.Minute); n != step.want {
			t.Fatalf("late step %d (%s at %d s): %d distinct, want %d", i, step.target, step.at, n, step.want)
		}
	}
	for i := range maxDistinct + 10 {
		d.distinctCount("big", strconv.Itoa(i), t0, time.Minute)
	}
	if n := len(d.distinct["big"].last); n != maxDistinct {
		t.Errorf("a set fed %d targets holds %d, want %d", maxDistinct+10, n, maxDistinct)
	}
}
