package detect

import (
	"io"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// memorySource replays frames held in memory, so that a benchmark measures
// the detector and not the disk.
type memorySource struct {
	frames []capturedFrame
	link   layers.LinkType
	next   int
}

func (m *memorySource) Next() ([]byte, gopacket.CaptureInfo, error) {
	if m.next == len(m.frames) {
		return nil, gopacket.CaptureInfo{}, io.EOF
	}
	f := &m.frames[m.next]
	m.next++
	return f.data, f.ci, nil
}

func (m *memorySource) LinkType() layers.LinkType { return m.link }

// BenchmarkScoreCapture runs the whole detector (decode, AfterImage,
// KitNET training and scoring, rules, anomaly alerts) over the Mirai splice
// held in memory with the grace periods, as `detect --pcap` does.
func BenchmarkScoreCapture(b *testing.B) {
	frames, link := loadFrames(b, datasetPath(b, "mirai-splice.pcap"))
	b.ReportAllocs()
	var elapsed time.Duration
	for range b.N {
		src := &memorySource{frames: frames, link: link}
		start := time.Now()
		if _, err := ScoreCapture(src, ScoreOptions{KitNET: KitNETConfig{FMGrace: 5000, ADGrace: 20000},
			Rules: &Rules{}, Anomaly: &AnomalyConfig{}}); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
	}
	b.ReportMetric(float64(b.N*len(frames))/elapsed.Seconds(), "packets/s")
}
