package alert

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/apperr"
)

func TestParseSignalReportKeepsTheGoodSignalsAndNamesTheBadOnes(t *testing.T) {
	good := `{"time":"2026-11-28T10:00:00Z","detector":"rule","behaviour":"telnet_scan","severity":"high","src_ip":"10.0.0.9","explanation":"scan"}`
	tests := []struct {
		name      string
		payload   string
		valid     int
		badFields []string
		code      apperr.Code
	}{
		{"one good signal", `{"signals":[` + good + `]}`, 1, nil, ""},
		{"a good and a bad severity", `{"signals":[` + good + `,{"time":"2026-11-28T10:00:00Z","behaviour":"x","severity":"dire","src_ip":"1.2.3.4"}]}`, 1, []string{"signals[1].severity"}, ""},
		{"a signal without a source", `{"signals":[{"time":"2026-11-28T10:00:00Z","behaviour":"x","severity":"low"}]}`, 0, []string{"signals[0].src_ip"}, ""},
		{"no signals", `{"signals":[]}`, 0, nil, apperr.Invalid},
		{"null", `null`, 0, nil, apperr.Invalid},
		{"not JSON", `{"signals":[`, 0, nil, apperr.Invalid},
		{"data after the object", `{"signals":[` + good + `]} {}`, 0, nil, apperr.Invalid},
		{"an unknown key beside the signals", `{"v":1,"signals":[` + good + `]}`, 1, nil, ""},
		{"a wrong type", `{"signals":"many"}`, 0, nil, apperr.Invalid},
		{"too large", `{"signals":[` + strings.Repeat(good+",", MaxReportBytes/len(good)) + good + `]}`, 0, nil, apperr.TooLarge},
		{"too many", `{"signals":[` + strings.Repeat(`{},`, MaxReportSignals) + `{}]}`, 0, nil, apperr.Invalid},
		{"no signals key", `{"summaries":[` + good + `]}`, 0, nil, apperr.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			valid, bad, err := ParseSignalReport([]byte(tt.payload))
			if tt.code != "" {
				if err == nil || apperr.As(err).Code != tt.code {
					t.Fatalf("err = %v, want %s", err, tt.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(valid) != tt.valid || len(bad) != len(tt.badFields) {
				t.Fatalf("%d valid, %d bad (%v); want %d and %v", len(valid), len(bad), bad, tt.valid, tt.badFields)
			}
			for i, f := range tt.badFields {
				if apperr.As(bad[i]).Field != f {
					t.Errorf("bad[%d] = %v, want field %s", i, bad[i], f)
				}
			}
		})
	}
}

// FuzzParseSignalReport: whatever a device publishes, the parsers return
// an error or items that validate, and never both nothing and no error.
func FuzzParseSignalReport(f *testing.F) {
	f.Add([]byte(`{"signals":[{"time":"2026-11-28T10:00:00Z","detector":"rule","behaviour":"telnet_scan","severity":"high","src_ip":"10.0.0.9","explanation":"scan"}]}`))
	f.Add([]byte(`{"signals":[{"time":"2026-11-28T10:00:00Z","behaviour":"x","severity":"dire"}]}`))
	f.Add([]byte(`{"signals":[`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"summaries":[{"end":"2026-11-28T10:00:10Z","src_ip":"10.0.0.9","packets":3,"max_score":0.2,"mean_score":0.1,"threshold":0.3}]}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		if sums, bad, err := ParseScoreReport(payload); err == nil {
			if len(sums)+len(bad) == 0 {
				t.Fatal("no summaries and no error")
			}
			for _, s := range sums {
				if err := s.Validate(); err != nil {
					t.Fatalf("a returned summary does not validate: %v", err)
				}
			}
		}
		valid, bad, err := ParseSignalReport(payload)
		if err != nil {
			if valid != nil || bad != nil || apperr.As(err).Code == apperr.Internal {
				t.Fatalf("error %v with %d valid and %d bad", err, len(valid), len(bad))
			}
			return
		}
		if len(valid)+len(bad) == 0 || len(valid)+len(bad) > MaxReportSignals {
			t.Fatalf("%d valid and %d bad signals", len(valid), len(bad))
		}
		for _, sig := range valid {
			if err := sig.Validate(); err != nil {
				t.Fatalf("a returned signal does not validate: %v", err)
			}
		}
		for _, e := range bad {
			if apperr.As(e).Code != apperr.Invalid || !strings.HasPrefix(apperr.As(e).Field, "signals[") {
				t.Fatalf("bad signal error %v", e)
			}
		}
	})
}

func TestBatcherSendsFullAndOldBatchesAndKeepsAFailedOne(t *testing.T) {
	var got [][]Signal
	fail := false
	b := &SignalBatcher{Size: 3, Delay: 50 * time.Millisecond, Send: func(_ context.Context, sigs []Signal) error {
		if fail {
			return errors.New("server away")
		}
		got = append(got, append([]Signal(nil), sigs...))
		return nil
	}}
	sig := Signal{Time: time.Now(), Behaviour: "x", Severity: SeverityLow, SrcIP: "10.0.0.1"}
	ctx := context.Background()
	for range 4 {
		if err := b.Add(ctx, true, sig); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 1 || len(got[0]) != 3 || b.Sent() != 3 {
		t.Fatalf("after 4 signals with size 3: batches %d, sent %d", len(got), b.Sent())
	}
	time.Sleep(60 * time.Millisecond)
	fail = true
	if err := b.Add(ctx, false, sig); err == nil {
		t.Fatal("a failed send was not reported")
	}
	fail = false
	if err := b.Flush(ctx); err != nil || b.Sent() != 5 || len(got[1]) != 2 {
		t.Fatalf("after the retry: %v, sent %d, batches %v", err, b.Sent(), got)
	}
	// Many at once still go in batches of Size at most.
	if err := b.Add(ctx, true, sig, sig, sig, sig, sig, sig, sig); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(ctx); err != nil || b.Sent() != 12 || len(got) != 5 || len(got[2]) != 3 || len(got[3]) != 3 || len(got[4]) != 1 {
		t.Fatalf("7 signals at once with size 3: sent %d in %d batches", b.Sent(), len(got))
	}
}

func TestParseScoreReportNamesTheBadSummary(t *testing.T) {
	valid, bad, err := ParseScoreReport([]byte(`{"summaries":[
		{"end":"2026-11-28T10:00:10Z","src_ip":"10.0.0.9","packets":3,"max_score":0.2,"mean_score":0.1,"threshold":0.3},
		{"end":"2026-11-28T10:00:10Z","packets":3}]}`))
	if err != nil || len(valid) != 1 || len(bad) != 1 || apperr.As(bad[0]).Field != "summaries[1].src_ip" {
		t.Fatalf("valid %v, bad %v, err %v", valid, bad, err)
	}
}
