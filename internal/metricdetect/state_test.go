package metricdetect

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestRestoredBaselinesJudgeAsTheOriginal learns a device's series, saves
// its state through JSON into a new detector, and feeds both the same
// samples: every signal, and the state after, is the same. A detector that
// started bare stays silent through its warm-up instead.
func TestRestoredBaselinesJudgeAsTheOriginal(t *testing.T) {
	cfg := Config{Warmup: 20}
	orig := newDetector(t, cfg)
	r := rand.New(rand.NewPCG(7, 7))
	feed(t, orig, "cam-1", "messages_in", noisy(r, 40, 100, 0.1))
	orig.ObservePorts("cam-1", t0, []Port{{"tcp", "0.0.0.0", 554}, {"udp", "0.0.0.0", 5353}})
	changed, gone := orig.Changes()
	if len(changed) != 1 || len(gone) != 0 {
		t.Fatalf("Changes = %d changed, gone %v; want cam-1 alone", len(changed), gone)
	}
	data, err := json.Marshal(changed["cam-1"])
	if err != nil {
		t.Fatal(err)
	}
	st, err := ParseDeviceState(data)
	if err != nil {
		t.Fatalf("ParseDeviceState(%s): %v", data, err)
	}
	restored, bare := newDetector(t, cfg), newDetector(t, cfg)
	restored.Restore("cam-1", st)

	// A surge from the next sample on.
	next := concat(noisy(r, 3, 100, 0.1), constant(6, 2000))
	observe := func(d *Detector) []string {
		var out []string
		for i, v := range next {
			for _, s := range d.Observe(Observation{DeviceID: "cam-1", Time: t0.Add(time.Duration(40+i) * 10 * time.Second),
				Values: map[string]float64{"messages_in": v}, Interval: 10 * time.Second}) {
				out = append(out, s.Behaviour+" "+s.Explanation)
			}
		}
		for _, s := range d.ObservePorts("cam-1", t0.Add(time.Hour), []Port{{"tcp", "0.0.0.0", 554}, {"tcp", "0.0.0.0", 23}}) {
			out = append(out, s.Behaviour+" "+s.Peer)
		}
		return out
	}
	want, got := observe(orig), observe(restored)
	if len(want) < 4 || !reflect.DeepEqual(got, want) {
		t.Fatalf("restored detector's signals:\n%s\nthe original's:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if b := observe(bare); len(b) != 0 {
		t.Errorf("a detector without the saved state signalled in its warm-up: %v", b)
	}
	a, _ := orig.Changes()
	b, _ := restored.Changes()
	if !reflect.DeepEqual(a, b) {
		t.Errorf("states after the same samples differ:\n%+v\n%+v", a["cam-1"], b["cam-1"])
	}
}

// TestChangesTrackObservedAndForgottenDevices: Changes names the devices
// observed since the last call, then the forgotten ones; Unsaved puts a
// failed save's back.
func TestChangesTrackObservedAndForgottenDevices(t *testing.T) {
	d := newDetector(t, Config{IdleTTL: time.Hour})
	obs := func(id string, at time.Time) {
		d.Observe(Observation{DeviceID: id, Time: at, Values: map[string]float64{"messages_in": 5}, Interval: 10 * time.Second})
	}
	obs("a", t0)
	obs("b", t0)
	if c, g := d.Changes(); len(c) != 2 || len(g) != 0 {
		t.Fatalf("first Changes: %d changed, gone %v; want a and b", len(c), g)
	}
	if c, g := d.Changes(); len(c) != 0 || len(g) != 0 {
		t.Fatalf("Changes with nothing new: %d changed, gone %v", len(c), g)
	}
	obs("a", t0.Add(2*time.Hour)) // b is idle past the TTL: forgotten
	c, g := d.Changes()
	if _, ok := c["a"]; len(c) != 1 || !ok || !reflect.DeepEqual(g, []string{"b"}) {
		t.Fatalf("after b's idle hours: changed %v, gone %v; want a changed and b gone", c, g)
	}
	d.Unsaved(c, g)
	c2, g2 := d.Changes()
	if len(c2) != 1 || !reflect.DeepEqual(g2, []string{"b"}) {
		t.Fatalf("after Unsaved: changed %v, gone %v; want the same again", c2, g2)
	}
	// Restore never overwrites a device seen since the start.
	d.Restore("a", DeviceState{LastSeen: t0, Series: map[string]SeriesState{"messages_in": {N: 999, Mean: 1}}})
	if c, _ := d.Changes(); len(c) != 0 || d.devices["a"].series["messages_in"].n == 999 {
		t.Error("Restore replaced the state of a device observed since the start")
	}
	// Series of metrics not watched are dropped; the hit history is cut.
	d.Restore("c", DeviceState{LastSeen: t0.Add(2 * time.Hour), Series: map[string]SeriesState{"messages_in": {N: 40, Mean: 5, Dev: 1, Hits: 0xffff}, "gone_metric": {N: 1}}})
	if s := d.devices["c"].series; len(s) != 1 || s["messages_in"].hits != 1<<DefaultConfig.PersistWindow-1 {
		t.Errorf("restored series = %+v", s)
	}
}

func TestParseDeviceStateRefusesWhatCouldNotHaveBeenSaved(t *testing.T) {
	for _, bad := range []string{
		``, `null`, `{}`, `[]`, `{"last_seen":"yesterday"}`,
		`{"last_seen":"2026-11-28T10:00:00Z","series":{"messages_in":{"n":-1,"mean":1,"dev":1}}}`,
		`{"last_seen":"2026-11-28T10:00:00Z","series":{"messages_in":{"n":1,"mean":-1,"dev":1}}}`,
		`{"last_seen":"2026-11-28T10:00:00Z","series":{"messages_in":{"n":1,"mean":1e999,"dev":1}}}`,
		`{"last_seen":"2026-11-28T10:00:00Z","series":{"messages_in":{"n":1,"mean":1,"dev":1,"hits":70000}}}`,
		`{"last_seen":"2026-11-28T10:00:00Z","ports":["tcp/65536"]}`,
		`{"last_seen":"2026-11-28T10:00:00Z","ports":["sctp/22"]}`,
		`{"last_seen":"2026-11-28T10:00:00Z","ports":["tcp/022"]}`,
		`{"last_seen":"2026-11-28T10:00:00Z","port_reports":-3}`,
	} {
		if st, err := ParseDeviceState([]byte(bad)); err == nil {
			t.Errorf("ParseDeviceState(%s) = %+v, want an error", bad, st)
		}
	}
	good := `{"last_seen":"2026-11-28T10:00:00Z","series":{"messages_in":{"n":3,"mean":1.5,"dev":0.5,"hits":1}},"ports":["tcp/22","udp/53"],"port_reports":4}`
	if _, err := ParseDeviceState([]byte(good)); err != nil {
		t.Errorf("ParseDeviceState(%s): %v", good, err)
	}
}

// FuzzParseDeviceState: any bytes give a state or an error, never a panic,
// and a state that parses restores without one.
func FuzzParseDeviceState(f *testing.F) {
	f.Add([]byte(`{"last_seen":"2026-11-28T10:00:00Z","series":{"messages_in":{"n":3,"mean":1.5,"dev":0.5,"hits":1}},"ports":["tcp/22"],"port_reports":4}`))
	f.Add([]byte(`{"last_seen":"2026-11-28T10:00:00Z","ports":["udp/0"]}`))
	f.Add([]byte(`{`))
	d, err := New(Config{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ParseDeviceState(data)
		if err != nil {
			return
		}
		d.Restore("fuzz", st)
		d.Observe(Observation{DeviceID: "fuzz", Time: st.LastSeen.Add(time.Second), Values: map[string]float64{"messages_in": 1}, Interval: time.Second})
		d.Changes()
	})
}
