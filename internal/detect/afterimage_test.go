package detect

import (
	"encoding/csv"
	"errors"
	"github.com/fleetward/fleetward/internal/datasets"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// datasetPath returns a file of ../shared/datasets/kitsune-mirai, skipping
// the test when the datasets are absent (unless CI=true, where they must be).
func datasetPath(t testing.TB, name string) string {
	t.Helper()
	return datasets.Path(t, filepath.Join("kitsune-mirai", name))
}

// readFeatures reads a capture and returns every packet's features.
func readFeatures(t testing.TB, path string, limit int) [][]float64 {
	t.Helper()
	r, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	dec := NewDecoder(r.LinkType())
	ai := NewAfterImage()
	var rows [][]float64
	var p Packet
	for limit <= 0 || len(rows) < limit {
		data, ci, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		dec.Decode(data, ci, &p)
		out := make([]float64, NumFeatures)
		ai.Update(&p, out)
		rows = append(rows, out)
	}
	return rows
}

func TestAfterImageMatchesKitsuneOnTheFirst2000MiraiPackets(t *testing.T) {
	pcap := datasetPath(t, "mirai2000.pcap")
	f, err := os.Open(datasetPath(t, "afterimage_features_mirai_first2000.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	header, want := want[0], want[1:]
	if len(header) != NumFeatures {
		t.Fatalf("reference has %d columns, want %d", len(header), NumFeatures)
	}
	got := readFeatures(t, pcap, 0)
	if len(got) != len(want) {
		t.Fatalf("got features for %d packets, reference has %d", len(got), len(want))
	}
	// Every value must be within 1e-6 relative of Kitsune's, with an
	// absolute floor of 1e-8 for values near zero. The Pearson correlations
	// are the deliberate exception: pcc = cov/(σa·σb), and when a stream's
	// packet sizes barely vary its σ² is a difference of nearly equal numbers,
	// pure rounding noise (1.8e-12 for a run of 86-byte packets). An ulp of
	// difference in a decay factor (Go's math.Exp2 against C's pow) moves
	// such a pcc in its fifth digit (5 of the 40,000, by at most 9e-5).
	// Those are held to 1e-4 absolute, and must stay rare.
	const relTol, absFloor, pccTol = 1e-6, 1e-8, 1e-4
	bad, noisyPCC, worstPCC := 0, 0, 0.0
	for i := range want {
		for j, s := range want[i] {
			w, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatalf("row %d column %s: %v", i+1, header[j], err)
			}
			g := got[i][j]
			if math.Abs(g-w) <= relTol*math.Max(math.Abs(w), absFloor/relTol) {
				continue
			}
			if strings.Contains(header[j], "_pcc_") && math.Abs(g-w) <= pccTol {
				noisyPCC++
				worstPCC = max(worstPCC, math.Abs(g-w))
				continue
			}
			if bad < 20 {
				t.Errorf("packet %d %s = %.17g, Kitsune has %.17g", i+1, header[j], g, w)
			}
			bad++
		}
	}
	t.Logf("%d of %d pcc values differ beyond 1e-6 (rounding noise), by at most %.2g", noisyPCC, len(want)*4*NumLambdas, worstPCC)
	if noisyPCC > len(want)*4*NumLambdas/1000 {
		t.Errorf("%d pcc values differ beyond 1e-6: more than rounding noise explains", noisyPCC)
	}
	if bad > 0 {
		t.Errorf("%d of %d values differ", bad, len(want)*NumFeatures)
	}
}

// telnetSender returns a function that folds a 60-byte packet from
// 10.0.0.src port 1000 to 10.0.0.dst port 23 at capture time at into ai,
// its features into out.
func telnetSender(ai *AfterImage, out []float64) func(at float64, src, dst byte) {
	return func(at float64, src, dst byte) {
		p := Packet{Time: at, Length: 60, Ports: PortNumber, SrcPort: 1000, DstPort: 23,
			Src: Host{Kind: AddrIPv4, Addr: [16]byte{10, 0, 0, src}}, Dst: Host{Kind: AddrIPv4, Addr: [16]byte{10, 0, 0, dst}}}
		ai.Update(&p, out)
	}
}

func TestAfterImageEvictsIdleStreamsAndKeepsBusyOnes(t *testing.T) {
	ai := NewAfterImage()
	out := make([]float64, NumFeatures)
	send := telnetSender(ai, out)
	send(1000, 1, 2) // a flow that goes quiet
	for at := 1000.0; at <= 1000+DefaultIdleTimeout+2*EvictInterval; at += 30 {
		send(at, 3, 4) // a flow that stays busy
	}
	// Left: the busy flow's MAC-IP pair, jitter, two hosts and two sockets.
	if got := ai.Streams(); got != 6 {
		t.Errorf("%d streams tracked after the quiet flow's timeout, want 6", got)
	}
	if n := ai.hosts.links.live + ai.sockets.links.live; n != 2 {
		t.Errorf("%d links kept, want 2", n)
	}
	if n := ai.hosts.pairs.len() + ai.sockets.pairs.len(); n != 2 {
		t.Errorf("%d link pairs indexed, want 2", n)
	}
	send(1000+2*DefaultIdleTimeout, 1, 2) // the quiet flow returns
	if out[offsetChannel] != 1 {
		t.Errorf("a returning stream starts with weight %v, want 1", out[offsetChannel])
	}
}

func TestAfterImageGivesNumbersForAPeerThatOnlyReceivedLongAgo(t *testing.T) {
	ai := NewAfterImage()
	out := make([]float64, NumFeatures)
	p := Packet{Length: 60, Ports: PortNumber, SrcPort: 1000, DstPort: 23,
		Src: Host{Kind: AddrIPv4, Addr: [16]byte{10, 0, 0, 1}}, Dst: Host{Kind: AddrIPv4, Addr: [16]byte{10, 0, 0, 2}}}
	for _, at := range []float64{100, 400, 3000} {
		p.Time = at
		ai.Update(&p, out)
		for i, v := range out {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("at %v s feature %d is %v", at, i, v)
			}
		}
	}
}

// One packet stamped ten years ahead neither evicts every stream (they
// would all look idle at its time) nor stops the decay of the streams it
// touched: once packets are back in the present, flows it did not touch
// have the features they would have had without it, and the flow it
// touched has statistics no heavier than a fresh flow's.
func TestAfterImageOutlivesOnePacketFromTheFuture(t *testing.T) {
	clean, bogus := NewAfterImage(), NewAfterImage()
	outClean, outBogus := make([]float64, NumFeatures), make([]float64, NumFeatures)
	sendClean, sendBogus := telnetSender(clean, outClean), telnetSender(bogus, outBogus)
	at := 1000.0
	for range 2000 {
		at += 0.5
		sendClean(at, 1, 2)
		sendBogus(at, 1, 2)
		sendClean(at+0.1, 3, 4)
		sendBogus(at+0.1, 3, 4)
	}
	sendBogus(at+10*365*86400, 3, 4)
	for i := range 4000 {
		at += 0.5
		sendClean(at, 1, 2)
		sendBogus(at, 1, 2)
		if !slices.Equal(outClean, outBogus) {
			t.Fatalf("packet %d after the leap: the untouched flow's features differ", i)
		}
		sendBogus(at+0.1, 3, 4)
	}
	// The touched flow's slowest window weighs what 4,000 packets in
	// 2,000 s give it, not 4,000 undecayed.
	fresh := NewAfterImage()
	outFresh := make([]float64, NumFeatures)
	sendFresh := telnetSender(fresh, outFresh)
	for i := range 4000 {
		sendFresh(float64(i)*0.5, 3, 4)
	}
	slow := offsetMACIP + 3*(NumLambdas-1)
	if w, want := outBogus[slow], outFresh[slow]; w > 1.01*want {
		t.Errorf("the touched flow's slowest weight is %.1f after the leap; a fresh flow's is %.1f", w, want)
	}
}
