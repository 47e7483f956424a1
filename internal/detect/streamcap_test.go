package detect

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
)

// spoofedSYN is a SYN from a random source address and port to the
// camera 192.168.2.110, port 23, at time at: each one opens a source
// MAC-IP pair, a jitter stream, a host and a socket never seen before.
func spoofedSYN(rng *rand.Rand, at float64) Packet {
	src := rng.Uint32()
	return Packet{Time: at, Length: 60, Ports: PortNumber, SrcPort: uint16(rng.Uint32()), DstPort: 23,
		Src: Host{Kind: AddrIPv4, Addr: [16]byte{byte(src >> 24), byte(src >> 16), byte(src >> 8), byte(src)}},
		Dst: Host{Kind: AddrIPv4, Addr: [16]byte{192, 168, 2, 110}}}
}

// When the streams reach MaxStreams, those seen least recently go, down
// to seven eighths of it, and the busy ones stay.
func TestAfterImageShedsTheLeastRecentlySeenStreams(t *testing.T) {
	ai := NewAfterImage()
	ai.MaxStreams = 4000
	out := make([]float64, NumFeatures)
	send := telnetSender(ai, out)
	rng := rand.New(rand.NewPCG(1, 2))
	at := 1000.0
	for i := range 5000 {
		at += 0.001
		p := spoofedSYN(rng, at)
		ai.Update(&p, out)
		if i%100 == 0 {
			send(at, 3, 4) // a flow that stays busy
		}
		if n := ai.Streams(); n > ai.MaxStreams+6 {
			t.Fatalf("packet %d: %d streams tracked, cap %d", i, n, ai.MaxStreams)
		}
	}
	if ai.Shed() == 0 {
		t.Fatal("nothing shed after 5,000 spoofed sources")
	}
	// The busy flow kept its streams: its channel's weight in the slowest
	// window counts its 50 packets, not a fresh start.
	send(at+0.001, 3, 4)
	if w := out[offsetChannel+7*(NumLambdas-1)]; w < 40 {
		t.Errorf("the busy flow's channel weight %.1f: its streams were shed", w)
	}
	t.Logf("%d streams, %d shed", ai.Streams(), ai.Shed())
}

// Past shedSample streams, shedOldest chooses its cutoff from a sample:
// each shed still leaves about seven eighths of the cap, and the same
// packets shed the same streams, so that scores can be reproduced.
func TestAfterImageShedsFromASampleReproducibly(t *testing.T) {
	run := func() ([]float64, uint64, int, int) {
		ai := NewAfterImage()
		ai.MaxStreams = 40000
		out := make([]float64, NumFeatures)
		rng := rand.New(rand.NewPCG(7, 8))
		least, most := ai.MaxStreams, 0
		var shed uint64
		for i := range 50000 {
			p := spoofedSYN(rng, 1000+float64(i)*1e-3)
			ai.Update(&p, out)
			if ai.Shed() != shed {
				shed = ai.Shed()
				least = min(least, ai.Streams())
			}
			most = max(most, ai.Streams())
		}
		return out, ai.Shed(), least, most
	}
	out1, shed1, least, most := run()
	out2, shed2, _, _ := run()
	if shed1 < 3*40000/8 {
		t.Fatalf("%d shed; want several sheds of an eighth of the cap", shed1)
	}
	if want := 40000 - 40000/8; least < want-want/50 || most > 40000+6 {
		t.Errorf("streams ranged %d to %d after sheds; want about %d left by each, never past 40,000", least, most, want)
	}
	if shed1 != shed2 || !slices.Equal(out1, out2) {
		t.Errorf("the same packets shed %d, then %d streams, with different features", shed1, shed2)
	}
	t.Logf("%d shed, %d to %d streams", shed1, least, most)
}

// The bound: 1M concurrent streams fit in 1 GiB. A flood of
// 400,000 spoofed-source SYNs in 40 s opens 1.6M streams, past the
// default cap; the streams tracked stay under it and the memory held
// (the Go heap and the slabs) under 1 GiB.
func TestAfterImageHoldsAMillionStreamsInAGibibyte(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 1.6M streams")
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ai := NewAfterImage()
	out := make([]float64, NumFeatures)
	rng := rand.New(rand.NewPCG(3, 4))
	most := 0
	for i := range 400000 {
		p := spoofedSYN(rng, 1000+float64(i)*1e-4)
		ai.Update(&p, out)
		most = max(most, ai.Streams())
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc) + int64(ai.slabBytes())
	t.Logf("at most %d streams tracked, %d shed, %d MB held", most, ai.Shed(), held>>20)
	if most > DefaultMaxStreams+6 || most < DefaultMaxStreams-DefaultMaxStreams/8 {
		t.Errorf("at most %d streams tracked, want the cap %d", most, DefaultMaxStreams)
	}
	if ai.Shed() == 0 {
		t.Error("nothing shed")
	}
	if held > 1<<30 {
		t.Errorf("%d MB held for %d streams, over 1 GiB", held>>20, most)
	}
	runtime.KeepAlive(ai)
}

// BenchmarkAfterImageSpoofedFlood updates AfterImage with spoofed-source
// SYNs past the stream cap, where every packet opens streams never seen
// before and the oldest are shed: the per-packet cost under a flood.
func BenchmarkAfterImageSpoofedFlood(b *testing.B) {
	ai := NewAfterImage()
	out := make([]float64, NumFeatures)
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 400000 { // past the cap before timing
		p := spoofedSYN(rng, 1000+float64(i)*1e-4)
		ai.Update(&p, out)
	}
	b.ResetTimer()
	for i := range b.N {
		p := spoofedSYN(rng, 1040+float64(i)*1e-4)
		ai.Update(&p, out)
	}
}
