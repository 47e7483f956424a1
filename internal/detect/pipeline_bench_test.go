package detect

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/google/gopacket"
)

// memorySource replays frames held in memory, so that a benchmark measures
// the detector and not the disk.
type memorySource struct {
	frames []capturedFrame
	link   LinkType
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

func (m *memorySource) LinkType() LinkType { return m.link }

// BenchmarkScoreCapture runs the whole detector (decode, AfterImage,
// KitNET training and scoring, rules, anomaly alerts) over the Mirai splice
// held in memory with the grace periods, as `detect --pcap` does.
// "one-goroutine" is the single-core figure; "pipelined" runs the two
// stages on goroutines of their own (and, without the vector kernels, the
// ensemble over GOMAXPROCS goroutines).
func BenchmarkScoreCapture(b *testing.B) {
	frames, link := loadFrames(b, datasetPath(b, "mirai-splice.pcap"))
	for _, sequential := range []bool{true, false} {
		name := "pipelined"
		if sequential {
			name = "one-goroutine"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var elapsed time.Duration
			for range b.N {
				src := &memorySource{frames: frames, link: link}
				start := time.Now()
				if _, err := ScoreCapture(src, ScoreOptions{KitNET: KitNETConfig{FMGrace: 5000, ADGrace: 20000},
					Rules: &Rules{}, Anomaly: &AnomalyConfig{}, Sequential: sequential}); err != nil {
					b.Fatal(err)
				}
				elapsed += time.Since(start)
			}
			b.ReportMetric(float64(b.N*len(frames))/elapsed.Seconds(), "packets/s")
		})
	}
}

// BenchmarkScoreWithTrainedModel is the steady state of a sensor: a model
// trained on the splice (saved and loaded, as `detect --load-model`) scores
// the whole splice, with rules and anomaly alerts, on one goroutine.
func BenchmarkScoreWithTrainedModel(b *testing.B) {
	frames, link := loadFrames(b, datasetPath(b, "mirai-splice.pcap"))
	trained, err := ScoreCapture(&memorySource{frames: frames, link: link}, ScoreOptions{KitNET: KitNETConfig{FMGrace: 5000, ADGrace: 20000}})
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if err := trained.Model.Save(&buf); err != nil {
		b.Fatal(err)
	}
	saved := buf.Bytes()
	b.ReportAllocs()
	b.ResetTimer()
	var elapsed time.Duration
	for range b.N {
		b.StopTimer()
		model, err := LoadKitNET(bytes.NewReader(saved))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		if _, err := ScoreCapture(&memorySource{frames: frames, link: link}, ScoreOptions{Model: model, Rules: &Rules{},
			Anomaly: &AnomalyConfig{}, Sequential: true}); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
	}
	b.ReportMetric(float64(b.N*len(frames))/elapsed.Seconds(), "packets/s")
}

// BenchmarkKitNET runs the model alone, on one goroutine, over the splice's
// feature vectors computed beforehand: feature mapping, training and
// scoring with the grace periods, in batches of DefaultBatch as
// ScoreCapture hands them over. "train" is the whole run from an untrained
// model; "score" scores every vector with the model it trained.
func BenchmarkKitNET(b *testing.B) {
	frames, link := loadFrames(b, datasetPath(b, "mirai-splice.pcap"))
	dec, ai := NewDecoder(link), NewAfterImage()
	ai.OwnLinkOnly = true
	x := make([]float64, len(frames)*NumFeatures)
	var p Packet
	for i := range frames {
		dec.Decode(frames[i].data, frames[i].ci, &p)
		ai.Update(&p, x[i*NumFeatures:(i+1)*NumFeatures])
	}
	cfg := KitNETConfig{FMGrace: 5000, ADGrace: 20000}
	scores := make([]float64, len(frames))
	run := func(k *KitNET) {
		for t := 0; t < len(frames); t += DefaultBatch {
			n := min(DefaultBatch, len(frames)-t)
			k.ProcessBatch(x[t*NumFeatures:(t+n)*NumFeatures], n, 1, scores[t:t+n])
		}
	}
	b.Run("train", func(b *testing.B) {
		var elapsed time.Duration
		for range b.N {
			k := NewKitNET(NumFeatures, cfg)
			start := time.Now()
			run(k)
			elapsed += time.Since(start)
		}
		b.ReportMetric(float64(b.N*len(frames))/elapsed.Seconds(), "packets/s")
	})
	b.Run("score", func(b *testing.B) {
		k := NewKitNET(NumFeatures, cfg)
		run(k)
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			run(k)
		}
		b.ReportMetric(float64(b.N*len(frames))/time.Since(start).Seconds(), "packets/s")
	})
}
