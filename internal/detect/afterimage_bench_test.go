package detect

import (
	"errors"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/google/gopacket"
)

type capturedFrame struct {
	data []byte
	ci   gopacket.CaptureInfo
}

func loadFrames(b testing.TB, path string) ([]capturedFrame, LinkType) {
	b.Helper()
	r, err := OpenFile(path)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	var frames []capturedFrame
	for {
		data, ci, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		frames = append(frames, capturedFrame{append([]byte(nil), data...), ci})
	}
	return frames, r.LinkType()
}

// BenchmarkAfterImage decodes and extracts the features of the Mirai splice
// capture, held in memory, on one core; each lap after the first is shifted
// in time past the previous one so that the streams keep their history.
func BenchmarkAfterImage(b *testing.B) {
	b.Run("kitsune-links", func(b *testing.B) { benchmarkAfterImage(b, false) })
	b.Run("own-link-only", func(b *testing.B) { benchmarkAfterImage(b, true) })
}

func benchmarkAfterImage(b *testing.B, ownLinkOnly bool) {
	frames, link := loadFrames(b, datasetPath(b, "mirai-splice.pcap"))
	span := frames[len(frames)-1].ci.Timestamp.Sub(frames[0].ci.Timestamp).Seconds() + 1
	dec := NewDecoder(link)
	ai := NewAfterImage()
	ai.OwnLinkOnly = ownLinkOnly
	out := make([]float64, NumFeatures)
	var p Packet
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		f := &frames[i%len(frames)]
		dec.Decode(f.data, f.ci, &p)
		p.Time += float64(i/len(frames)) * span
		ai.Update(&p, out)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "packets/s")
}

// BenchmarkStreamMemory measures the memory held per flow when every packet
// opens a new flow between new hosts (the worst case: each flow adds a
// source MAC-IP pair, a jitter stream, two hosts, two sockets and two
// links): the Go heap (the indexes) and the slabs' streams and links.
func BenchmarkStreamMemory(b *testing.B) {
	const flows = 100000
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		ai := NewAfterImage()
		out := make([]float64, NumFeatures)
		p := Packet{Length: 100, Ports: PortNumber, SrcPort: 40000, DstPort: 23}
		for i := range flows {
			p.Time = 1e9 + float64(i)*1e-4
			p.Src = Host{Kind: AddrIPv4, Addr: [16]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}}
			p.Dst = Host{Kind: AddrIPv4, Addr: [16]byte{172, byte(i >> 16), byte(i >> 8), byte(i)}}
			ai.Update(&p, out)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		held := float64(after.HeapAlloc-before.HeapAlloc) + float64(ai.slabBytes())
		b.ReportMetric(held/flows, "bytes/flow")
		b.ReportMetric(held/float64(ai.Streams()), "bytes/stream")
		runtime.KeepAlive(ai)
	}
}
