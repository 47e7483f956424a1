package alert

import (
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/ledger"
	"github.com/fleetward/fleetward/internal/secrets"
	"github.com/fleetward/fleetward/internal/store/storetest"
)

var t0 = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

func scanSignal(at time.Duration, peer string) Signal {
	return Signal{Time: t0.Add(at), Detector: "rule", Behaviour: "telnet_scan", Severity: SeverityHigh, SrcIP: "10.0.0.5",
		Peer: peer, Score: 48, Threshold: 20, Explanation: "SYN to 23/tcp of 48 hosts in 10 s"}
}

func TestAggregatorFoldsASourcesBehaviourWithinTheWindow(t *testing.T) {
	g := NewAggregator(time.Minute, func(ip, mac string) string {
		if ip == "10.0.0.5" {
			return "cam-5"
		}
		return ""
	})
	first, started, err := g.Add(scanSignal(0, "10.0.0.7:23"))
	if err != nil || !started || first.DeviceID != "cam-5" {
		t.Fatalf("first signal = %+v, %v, %v; want a new alert on cam-5", first, started, err)
	}
	for i := range 40 {
		a, started, _ := g.Add(scanSignal(time.Duration(i)*time.Second, fmt.Sprintf("10.0.1.%d:23", i)))
		if started || a.ID != first.ID {
			t.Fatalf("signal %d started a new alert", i)
		}
	}
	crit := scanSignal(41*time.Second, "10.0.0.7:23")
	crit.Severity = SeverityCritical
	a, _, _ := g.Add(crit)
	if a.Signals != 42 || len(a.Peers) != MaxPeers || a.PeersDropped != 41-MaxPeers || a.Severity != SeverityCritical {
		t.Fatalf("alert = %d signals, %d peers (+%d), %s; want 42, %d (+%d), critical", a.Signals, len(a.Peers), a.PeersDropped, a.Severity, MaxPeers, 41-MaxPeers)
	}
	// Another behaviour of the same source is another alert.
	other := scanSignal(42*time.Second, "")
	other.Behaviour = "brute_force"
	if b, started, _ := g.Add(other); !started || b.ID == first.ID {
		t.Error("another behaviour joined the telnet scan alert")
	}
	// After the window the same behaviour is a new alert.
	if b, started, _ := g.Add(scanSignal(41*time.Second+2*time.Minute, "")); !started || b.ID == first.ID {
		t.Error("a signal after the window joined the old alert")
	}
	if n := g.Expire(t0.Add(time.Hour)); n != 2 {
		t.Errorf("Expire = %d, want the 2 alerts left open", n)
	}
}

func TestAggregatorTakesASignalsDeviceIDBeforeResolvingItsAddress(t *testing.T) {
	resolved := 0
	g := NewAggregator(time.Minute, func(ip, mac string) string {
		resolved++
		return "by-address"
	})
	surge := Signal{Time: t0, Detector: "metric", Behaviour: "message_surge", Severity: SeverityMedium, DeviceID: "th-1",
		Explanation: "messages_in 40/s"}
	a, started, err := g.Add(surge)
	if err != nil || !started || a.DeviceID != "th-1" || resolved != 0 {
		t.Fatalf("signal with a device id only = %+v, %v, %v (resolver called %d times); want a new alert on th-1 without resolving", a, started, err, resolved)
	}
	withAddr := surge
	withAddr.Time, withAddr.SrcIP = t0.Add(time.Second), "10.0.0.5"
	if b, started, _ := g.Add(withAddr); started || b.ID != a.ID || b.DeviceID != "th-1" || resolved != 0 {
		t.Errorf("the same device with an address = %+v (started %v); want it folded into %s on th-1", b, started, a.ID)
	}
	// A device whose id looks like an address is not the address's alert.
	byAddr := surge
	byAddr.DeviceID, byAddr.SrcIP = "", "th-1"
	if c, started, _ := g.Add(byAddr); !started || c.ID == a.ID || c.DeviceID != "by-address" {
		t.Errorf("a signal from address %q = %+v (started %v); want its own alert, resolved", "th-1", c, started)
	}
}

func TestAggregatorRefusesMalformedSignals(t *testing.T) {
	g := NewAggregator(0, nil)
	for field, s := range map[string]Signal{
		"time":      {Behaviour: "x", Severity: SeverityLow, SrcIP: "1.2.3.4"},
		"behaviour": {Time: t0, Severity: SeverityLow, SrcIP: "1.2.3.4"},
		"severity":  {Time: t0, Behaviour: "x", Severity: "urgent", SrcIP: "1.2.3.4"},
		"src_ip":    {Time: t0, Behaviour: "x", Severity: SeverityLow},
		"device_id": {Time: t0, Behaviour: "x", Severity: SeverityLow, DeviceID: string(make([]byte, 129))},
	} {
		if _, _, err := g.Add(s); apperr.As(err) == nil || apperr.As(err).Field != field {
			t.Errorf("Add(%+v) = %v, want an error naming %q", s, err, field)
		}
	}
}

// newTestStore returns a Store on engine e and the ledger it records in.
func newTestStore(t *testing.T, e storetest.Engine) (*Store, *ledger.Ledger) {
	t.Helper()
	master := make([]byte, secrets.KeySize)
	rand.Read(master)
	kr, _ := secrets.New(master)
	l, err := ledger.Open(context.Background(), e.DB, ledger.Options{Sealer: kr, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return NewStore(e.DB, l), l
}

func TestStoreKeepsAlertsAndRecordsRaiseAndCloseOnEveryEngine(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		s, l := newTestStore(t, e)
		ctx := actor.With(context.Background(), actor.Actor{Name: "system:detect"})
		g := NewAggregator(time.Minute, func(string, string) string { return "cam-5" })
		for i := range 10 {
			a, started, _ := g.Add(scanSignal(time.Duration(i)*time.Second, fmt.Sprintf("10.0.1.%d:23", i)))
			if err := s.Save(ctx, a, started); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.List(ctx, Filter{DeviceID: "cam-5"})
		if err != nil || len(got) != 1 || got[0].Signals != 10 || len(got[0].Peers) != 10 || !got[0].LastSeen.Equal(t0.Add(9*time.Second)) {
			t.Fatalf("alerts = %+v, %v; want one with 10 signals and peers", got, err)
		}
		if _, err := s.Close(ctx, got[0].ID, ""); apperr.As(err) == nil {
			t.Error("closing without a reason was accepted")
		}
		closed, err := s.Close(actor.With(ctx, actor.Actor{Name: "operator:ada"}), got[0].ID, "camera reflashed and isolated")
		if err != nil || closed.Status != StatusClosed {
			t.Fatalf("Close = %+v, %v", closed, err)
		}
		if open, _ := s.List(ctx, Filter{Status: StatusOpen}); len(open) != 0 {
			t.Errorf("open alerts after closing: %+v", open)
		}
		es, _ := l.EntriesBySubject(ctx, "cam-5", 10)
		if len(es) != 2 || es[0].Type != EventAlertClosed || es[0].Actor != "operator:ada" || es[1].Type != EventAlertRaised {
			t.Errorf("ledger = %+v; want the raise, then the close by ada", es)
		}
		if _, err := s.List(ctx, Filter{Status: "maybe"}); apperr.As(err) == nil {
			t.Error("a bad status filter was accepted")
		}
	})
}

func TestStoreAttributesAlertsRaisedWithoutADeviceOnEveryEngine(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		s, l := newTestStore(t, e)
		ctx := actor.With(context.Background(), actor.Actor{Name: "system:detect"})
		g := NewAggregator(time.Minute, nil)
		ids := map[string]string{}
		for _, sig := range []Signal{
			{SrcIP: "10.0.0.5"},
			{SrcIP: "10.0.0.6", SrcMAC: "1E:36:F2:00:00:07"},
			{SrcIP: "10.0.0.8"},
			{DeviceID: "cam-1"},
		} {
			sig.Time, sig.Detector, sig.Behaviour, sig.Severity = t0, "rule", "port_scan", SeverityMedium
			a, started, err := g.Add(sig)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Save(ctx, a, started); err != nil {
				t.Fatal(err)
			}
			ids[cmp.Or(sig.DeviceID, sig.SrcIP)] = a.ID
		}
		got, err := s.Unattributed(ctx, t0.Add(-time.Hour), []string{"10.0.0.5", "10.0.0.9"}, []string{"1e:36:f2:00:00:07"})
		if err != nil || len(got) != 2 {
			t.Fatalf("Unattributed = %+v, %v; want the alerts of 10.0.0.5 and of the MAC (any case)", got, err)
		}
		if got, err := s.Unattributed(ctx, t0.Add(time.Hour), []string{"10.0.0.5"}, nil); err != nil || len(got) != 0 {
			t.Fatalf("Unattributed of alerts older than since = %+v, %v", got, err)
		}
		if got, err := s.Unattributed(ctx, t0.Add(-time.Hour), nil, []string{"1e:36:f2:00:00:99"}); err != nil || len(got) != 0 {
			t.Fatalf("Unattributed of an unknown MAC = %+v, %v", got, err)
		}
		if done, err := s.Attribute(ctx, ids["10.0.0.5"], "cam-5"); !done || err != nil {
			t.Fatalf("Attribute = %v, %v", done, err)
		}
		// Attributed once: a second attribution, or one of an alert that
		// has a device, changes nothing.
		for _, id := range []string{ids["10.0.0.5"], ids["cam-1"], "alert-nope"} {
			if done, err := s.Attribute(ctx, id, "cam-6"); done || err != nil {
				t.Errorf("Attribute(%s) again = %v, %v; want false", id, done, err)
			}
		}
		if a, _ := s.Get(ctx, ids["10.0.0.5"]); a.DeviceID != "cam-5" {
			t.Errorf("alert after attribution = %+v", a)
		}
		es, _ := l.EntriesBySubject(ctx, "cam-5", 10)
		if len(es) != 1 || es[0].Type != EventAlertAttributed {
			t.Errorf("ledger of cam-5 = %+v; want one attribution", es)
		}
	})
}
