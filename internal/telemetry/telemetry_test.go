package telemetry_test

import (
	"context"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/alert"
	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/broker"
	"github.com/fleetward/fleetward/internal/store/storetest"
	"github.com/fleetward/fleetward/internal/telemetry"
)

func TestStoreKeepsSeriesInOrderOnEveryEngine(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		ctx := context.Background()
		s := telemetry.NewStore(e.DB)
		t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
		var samples []telemetry.Sample
		for i := range 5 {
			at := t0.Add(time.Duration(i) * 10 * time.Second)
			samples = append(samples,
				telemetry.Sample{DeviceID: "cam-1", Metric: "bytes_in", Source: telemetry.SourceBroker, Time: at, Value: float64(100 * i)},
				telemetry.Sample{DeviceID: "cam-2", Metric: "bytes_in", Source: telemetry.SourceBroker, Time: at, Value: 7})
		}
		if err := s.Record(ctx, samples); err != nil {
			t.Fatal(err)
		}
		// A repeated report replaces, never duplicates.
		if err := s.Record(ctx, samples[:2]); err != nil {
			t.Fatalf("recording the same samples again: %v", err)
		}
		got, err := s.Series(ctx, "cam-1", []string{"bytes_in", "messages_in"}, t0.Add(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		pts := got["bytes_in"]
		if len(pts) != 4 || pts[0].Value != 100 || pts[3].Value != 400 || !pts[0].Time.Equal(t0.Add(10*time.Second)) {
			t.Fatalf("series = %+v, want 4 points 100..400 from t0+10s", pts)
		}
		if _, ok := got["messages_in"]; ok {
			t.Error("a metric with no points is in the result")
		}
		n, err := s.Prune(ctx, t0.Add(25*time.Second))
		if err != nil || n != 6 {
			t.Fatalf("Prune = %d, %v; want 6 rows (3 times × 2 devices)", n, err)
		}
	})
}

func TestStoreRefusesBadSamplesAndStoresNoneOfTheBatch(t *testing.T) {
	e := storetest.SQLite(t)
	s := telemetry.NewStore(e.DB)
	now := time.Now()
	good := telemetry.Sample{DeviceID: "d", Metric: "bytes_in", Source: telemetry.SourceAgent, Time: now, Value: 1}
	for _, c := range []struct {
		name  string
		bad   telemetry.Sample
		field string
	}{
		{"empty device id", telemetry.Sample{Metric: "x", Source: telemetry.SourceAgent, Time: now}, "device_id"},
		{"metric with a capital", telemetry.Sample{DeviceID: "d", Metric: "Bytes", Source: telemetry.SourceAgent, Time: now}, "metric"},
		{"unknown source", telemetry.Sample{DeviceID: "d", Metric: "x", Source: "tv", Time: now}, "source"},
		{"no time", telemetry.Sample{DeviceID: "d", Metric: "x", Source: telemetry.SourceAgent}, "time"},
		{"NaN value", telemetry.Sample{DeviceID: "d", Metric: "x", Source: telemetry.SourceAgent, Time: now, Value: math.NaN()}, "value"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := s.Record(context.Background(), []telemetry.Sample{good, c.bad})
			if e := apperr.As(err); e == nil || e.Field != c.field {
				t.Fatalf("Record = %v, want Invalid naming %q", err, c.field)
			}
			got, _ := s.Series(context.Background(), "d", []string{"bytes_in"}, time.Time{})
			if len(got["bytes_in"]) != 0 {
				t.Fatal("the good sample of a refused batch was stored")
			}
		})
	}
}

func TestBrokerSamplerReportsChangesPerIntervalAndSkipsIdleDevices(t *testing.T) {
	bs := telemetry.NewBrokerSampler()
	t0 := time.Now()
	first := bs.Sample(t0, []broker.Metrics{{DeviceID: "a", MessagesIn: 10, BytesIn: 2560, MaxMessageSize: 256}, {DeviceID: "b"}})
	if v := value(first, "a", telemetry.MetricMessagesIn); v != 10 {
		t.Errorf("first interval messages_in = %v, want 10", v)
	}
	if len(samplesOf(first, "b")) != 0 {
		t.Error("a device with no traffic produced samples")
	}
	second := bs.Sample(t0.Add(10*time.Second), []broker.Metrics{{DeviceID: "a", MessagesIn: 15, BytesIn: 3840, MaxMessageSize: 256}})
	if v := value(second, "a", telemetry.MetricMessagesIn); v != 5 {
		t.Errorf("second interval messages_in = %v, want the change, 5", v)
	}
	if v := value(second, "a", telemetry.MetricBytesIn); v != 1280 {
		t.Errorf("second interval bytes_in = %v, want 1280", v)
	}
	if idle := bs.Sample(t0.Add(20*time.Second), []broker.Metrics{{DeviceID: "a", MessagesIn: 15, BytesIn: 3840, MaxMessageSize: 256}}); len(idle) != 0 {
		t.Errorf("an idle interval produced %d samples", len(idle))
	}
	reset := bs.Sample(t0.Add(30*time.Second), []broker.Metrics{{DeviceID: "a", MessagesIn: 2}})
	if v := value(reset, "a", telemetry.MetricMessagesIn); v != 2 {
		t.Errorf("after a counter reset messages_in = %v, want 2", v)
	}
}

func samplesOf(ss []telemetry.Sample, device string) []telemetry.Sample {
	var out []telemetry.Sample
	for _, s := range ss {
		if s.DeviceID == device {
			out = append(out, s)
		}
	}
	return out
}

func value(ss []telemetry.Sample, device, metric string) float64 {
	for _, s := range ss {
		if s.DeviceID == device && s.Metric == metric {
			return s.Value
		}
	}
	return -1
}

func TestParseAgentReportTurnsEveryNumberIntoAMetric(t *testing.T) {
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	report := `{"time":"2026-11-28T09:59:50Z","net":{"bytes_in":1200,"packets_out":7},"established":3,
		"listening":[{"proto":"tcp","port":22},{"proto":"udp","port":5683}],"Up Time":12.5,"healthy":true,"firmware":"1.2"}`
	got, err := telemetry.ParseAgentReport("th-1", now, []byte(report))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"net_bytes_in": 1200, "net_packets_out": 7, "established": 3, "listening_count": 2, "up_time": 12.5, "healthy": 1}
	if len(got) != len(want) {
		t.Fatalf("got %d samples %v, want %d", len(got), got, len(want))
	}
	for _, s := range got {
		if w, ok := want[s.Metric]; !ok || w != s.Value || s.Source != telemetry.SourceAgent || !s.Time.Equal(now.Add(-10*time.Second)) {
			t.Errorf("unexpected sample %v", s)
		}
	}
}

func TestParseAgentReportRefusesWhatIsNotAReport(t *testing.T) {
	for _, c := range []struct{ name, payload string }{
		{"not JSON", "temp=21"},
		{"a JSON array", "[1,2]"},
		{"null", "null"},
		{"a bad time", `{"time":"yesterday","x":1}`},
		{"a number too large", `{"x":1e999}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := telemetry.ParseAgentReport("d", time.Now(), []byte(c.payload)); apperr.As(err) == nil {
				t.Fatalf("ParseAgentReport(%q) = %v, want an Invalid error", c.payload, err)
			}
		})
	}
	big := []byte(`{`)
	for i := range 100 {
		if i > 0 {
			big = append(big, ',')
		}
		big = append(big, []byte(`"m`+string(rune('a'+i%26))+string(rune('a'+i/26))+`":1`)...)
	}
	big = append(big, '}')
	if _, err := telemetry.ParseAgentReport("d", time.Now(), big); apperr.As(err) == nil {
		t.Fatalf("a report with 100 metrics was accepted")
	}
}

func FuzzParseAgentReport(f *testing.F) {
	f.Add([]byte(`{"net":{"bytes_in":1},"listening":[1,2]}`))
	f.Add([]byte(`{"time":"2026-11-28T10:00:00Z","a":{"b":{"c":{"d":{"e":{"f":1}}}}}}`))
	f.Add([]byte(`{"x":-0,"y":true,"z":null}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		samples, err := telemetry.ParseAgentReport("d", time.Now(), payload)
		if err != nil {
			return
		}
		for _, s := range samples {
			if err := s.Validate(); err != nil {
				t.Fatalf("parsed sample %v does not validate: %v", s, err)
			}
		}
	})
}

func TestScoreSummariesAreStoredAsSensorSamplesOnEveryEngine(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		ctx := context.Background()
		s := telemetry.NewStore(e.DB)
		t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
		sum := alert.ScoreSummary{Start: t0, End: t0.Add(10 * time.Second), SrcIP: "10.0.0.1", Packets: 12, MaxScore: 3.5, MeanScore: 1.25, Threshold: 0.4}
		if err := s.Record(ctx, telemetry.ScoreSamples("cam-1", sum)); err != nil {
			t.Fatal(err)
		}
		got, err := s.Series(ctx, "cam-1", telemetry.AnomalyMetrics, t0)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]float64{telemetry.MetricAnomalyScoreMax: 3.5, telemetry.MetricAnomalyScoreMean: 1.25,
			telemetry.MetricAnomalyThreshold: 0.4, telemetry.MetricAnomalyPackets: 12}
		for m, v := range want {
			if pts := got[m]; len(pts) != 1 || pts[0].Value != v || !pts[0].Time.Equal(sum.End) {
				t.Errorf("%s = %+v, want %v at the summary's end", m, pts, v)
			}
		}
	})
}

// FuzzScoreSummary: a summary that validates, alone or merged with
// another, always makes samples that validate: the route that checks
// summaries never fails to store them for a bad value.
func FuzzScoreSummary(f *testing.F) {
	f.Add([]byte(`{"start":"2026-11-28T10:00:00Z","end":"2026-11-28T10:00:10Z","src_ip":"10.0.0.1","packets":12,"max_score":3.5,"mean_score":1.25,"threshold":0.4}`),
		[]byte(`{"end":"2026-11-28T10:00:10Z","src_mac":"02:00:00:00:00:01","packets":9223372036854775807,"max_score":1e308,"mean_score":1e308,"threshold":1e308}`))
	f.Add([]byte(`{"end":"0001-01-01T00:00:01Z","src_ip":"x","packets":0,"max_score":0,"mean_score":5,"threshold":0}`), []byte(`{}`))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var x, y alert.ScoreSummary
		if json.Unmarshal(a, &x) != nil || x.Validate() != nil {
			return
		}
		check := func(what string, s alert.ScoreSummary) {
			for _, smp := range telemetry.ScoreSamples("d", s) {
				if err := smp.Validate(); err != nil {
					t.Fatalf("%s %+v makes sample %+v: %v", what, s, smp, err)
				}
			}
		}
		check("summary", x)
		if json.Unmarshal(b, &y) != nil || y.Validate() != nil {
			return
		}
		m := x.Merge(y)
		if err := m.Validate(); err != nil {
			t.Fatalf("merging %+v and %+v gives %+v: %v", x, y, m, err)
		}
		check("merged summary", m)
	})
}
