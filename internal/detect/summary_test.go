package detect

import (
	"math"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/alert"
)

func TestSummariserIntervals(t *testing.T) {
	a := Host{Kind: AddrIPv4, Addr: [16]byte{10, 0, 0, 1}}
	b := Host{Kind: AddrIPv4, Addr: [16]byte{10, 0, 0, 2}}
	mac := [6]byte{2, 0, 0, 0, 0, 9}
	var got [][]alert.ScoreSummary
	s := newSummariser(ScoreOptions{Anomaly: &AnomalyConfig{}, SummaryInterval: 10 * time.Second,
		Summaries: func(ss []alert.ScoreSummary) { got = append(got, ss) }})
	base := 1_800_000_000.0 // a multiple of 10 s
	at := func(sec float64) time.Time { return packetTime(base + sec) }
	pkt := func(sec float64, h Host) *Packet { return &Packet{Time: base + sec, Src: h, SrcMAC: mac} }
	observePacket(s, pkt(1, a), 1, 5)
	observePacket(s, pkt(2, b), 2, 5)
	observePacket(s, pkt(3, a), 3, 5)
	observePacket(s, pkt(9.5, a), 8, 5)
	if len(got) != 0 {
		t.Fatalf("summaries before the interval closed: %+v", got)
	}
	// A packet 25 s in closes [0, 10); the quiet [10, 20) has none.
	observePacket(s, pkt(25, b), 4, 5)
	// A frame without an IP address is its MAC's.
	observePacket(s, &Packet{Time: base + 26, SrcMAC: mac}, 0.5, 5)
	observePacket(s, pkt(27, b), math.NaN(), 5) // not a score: left out
	s.flush()
	s.flush() // nothing left: emits nothing
	want := [][]alert.ScoreSummary{
		{
			{Start: at(0), End: at(10), SrcIP: "10.0.0.1", SrcMAC: "02:00:00:00:00:09", Packets: 3, MaxScore: 8, MeanScore: 4, Threshold: 5},
			{Start: at(0), End: at(10), SrcIP: "10.0.0.2", SrcMAC: "02:00:00:00:00:09", Packets: 1, MaxScore: 2, MeanScore: 2, Threshold: 5},
		},
		{
			{Start: at(20), End: at(26), SrcIP: "10.0.0.2", SrcMAC: "02:00:00:00:00:09", Packets: 1, MaxScore: 4, MeanScore: 4, Threshold: 5},
			{Start: at(20), End: at(26), SrcMAC: "02:00:00:00:00:09", Packets: 1, MaxScore: 0.5, MeanScore: 0.5, Threshold: 5},
		},
	}
	if len(got) != len(want) {
		t.Fatalf("%d batches of summaries, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if len(got[i]) != len(want[i]) {
			t.Fatalf("batch %d: %+v, want %+v", i, got[i], want[i])
		}
		for j := range want[i] {
			g, w := got[i][j], want[i][j]
			if !g.Start.Equal(w.Start) || !g.End.Equal(w.End) || g.SrcIP != w.SrcIP || g.SrcMAC != w.SrcMAC || g.Packets != w.Packets ||
				g.MaxScore != w.MaxScore || g.MeanScore != w.MeanScore || g.Threshold != w.Threshold {
				t.Errorf("batch %d summary %d:\n got %+v\nwant %+v", i, j, g, w)
			}
			if err := g.Validate(); err != nil {
				t.Errorf("batch %d summary %d does not validate: %v", i, j, err)
			}
		}
	}
}

func TestSummariserBoundsItsSources(t *testing.T) {
	var got []alert.ScoreSummary
	s := newSummariser(ScoreOptions{Anomaly: &AnomalyConfig{}, Summaries: func(ss []alert.ScoreSummary) { got = append(got, ss...) }})
	for i := range maxSummarySources + 100 {
		h := Host{Kind: AddrIPv4, Addr: [16]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}}
		observePacket(s, &Packet{Time: 100 + float64(i)*1e-4, Src: h}, 1, 2)
	}
	s.flush()
	if len(got) != maxSummarySources || s.skipped != 100 {
		t.Errorf("%d summaries and %d packets skipped, want %d and 100", len(got), s.skipped, maxSummarySources)
	}
	if len(s.sources) != 0 || len(s.order) != 0 {
		t.Errorf("the summariser keeps %d sources after a flush", len(s.sources))
	}
}

func TestNoSummariesWithoutAnomalyOrCallback(t *testing.T) {
	if newSummariser(ScoreOptions{Summaries: func([]alert.ScoreSummary) {}}) != nil {
		t.Error("a summariser without Anomaly (no smoothed scores)")
	}
	if newSummariser(ScoreOptions{Anomaly: &AnomalyConfig{}}) != nil {
		t.Error("a summariser without a Summaries callback")
	}
	var s *summariser
	observePacket(s, &Packet{}, 1, 1) // a nil summariser does nothing
	s.flush()
}

// TestScoreCaptureSummarisesTheMiraiSplice scores the Mirai splice with
// summaries on: they account for every scored packet, their maxima are
// the smoothed scores' maxima, and every anomaly signal falls in an
// interval whose summary of that source is above the threshold.
func TestScoreCaptureSummarisesTheMiraiSplice(t *testing.T) {
	if testing.Short() {
		t.Skip("scores 48,363 packets")
	}
	r, err := OpenFile(datasetPath(t, "mirai-splice.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var sums []alert.ScoreSummary
	batches := 0
	res, err := ScoreCapture(r, ScoreOptions{KitNET: KitNETConfig{FMGrace: 5000, ADGrace: 20000}, Anomaly: &AnomalyConfig{}, Rules: &Rules{},
		Summaries: func(ss []alert.ScoreSummary) { batches++; sums = append(sums, ss...) }})
	if err != nil {
		t.Fatal(err)
	}
	packets, top := 0, 0.0
	for i, s := range sums {
		if err := s.Validate(); err != nil {
			t.Fatalf("summary %d %+v: %v", i, s, err)
		}
		if s.Threshold != res.Threshold || s.End.Sub(s.Start) > DefaultSummaryInterval || s.MeanScore > s.MaxScore {
			t.Fatalf("summary %d %+v (threshold %v)", i, s, res.Threshold)
		}
		packets += s.Packets
		top = max(top, s.MaxScore)
	}
	scored := res.Packets - res.Trained
	if packets != scored {
		t.Errorf("summaries count %d packets, %d were scored after training", packets, scored)
	}
	want := 0.0
	for _, v := range res.Smoothed {
		want = max(want, v)
	}
	if top != want {
		t.Errorf("highest summarised score %v, highest smoothed score %v", top, want)
	}
	anomalies := 0
	for _, sig := range res.Signals {
		if sig.Behaviour != "anomaly" {
			continue
		}
		anomalies++
		found := false
		for _, s := range sums {
			if s.SrcIP == sig.SrcIP && !sig.Time.Before(s.Start) && !sig.Time.After(s.End) && s.MaxScore > s.Threshold && s.MaxScore >= sig.Score {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("anomaly signal %s at %s (score %.3g) has no summary above the threshold", sig.SrcIP, sig.Time, sig.Score)
		}
	}
	if anomalies == 0 {
		t.Error("no anomaly signal on the Mirai splice")
	}
	t.Logf("%d summaries in %d batches for %d scored packets; %d anomaly signals; threshold %.4g, top %.4g", len(sums), batches, scored, anomalies, res.Threshold, top)
}

// observePacket gives s a packet's smoothed score, charged as the anomaly
// alerter would charge it before any conversation was seen.
func observePacket(s *summariser, p *Packet, smoothed, threshold float64) {
	s.observe(p.Time, scoreOwner(p, func(from, to Host) bool { return false }), smoothed, threshold)
}
