package detect

import (
	"errors"
	"io"
	"time"
)

// ScoreOptions configures ScoreCapture.
type ScoreOptions struct {
	// KitNET configures the detector (grace periods and so on).
	KitNET KitNETConfig
	// KitsuneLinks computes Kitsune's exact features, updating every link of
	// the sender (see AfterImage.OwnLinkOnly); by default only the packet's
	// own links are updated, which is many times faster on scanning traffic.
	KitsuneLinks bool
	// Progress, if set, is called every 10,000 packets with the count so far.
	Progress func(packets int)
}

// ScoreResult is the outcome of scoring one capture.
type ScoreResult struct {
	Packets int `json:"packets"`
	// Trained is the number of packets spent in the grace periods; their
	// scores are 0.
	Trained int `json:"trained"`
	// Scores holds one anomaly score per packet, in capture order.
	Scores         []float64   `json:"-"`
	Seconds        float64     `json:"seconds"`
	FeatureSeconds float64     `json:"feature_seconds"`
	PacketsPerSec  float64     `json:"packets_per_second"`
	Decode         DecodeStats `json:"decode"`
	Autoencoders   int         `json:"autoencoders"`
	// Corrupt is set when the capture ended with a corrupt or truncated
	// record; the packets before it were scored.
	Corrupt string `json:"corrupt,omitempty"`
}

// ScoreCapture runs every packet of r through the decoder, AfterImage and
// KitNET and returns the scores. A corrupt end of file is reported in the
// result, not as an error: the packets before it are good.
func ScoreCapture(r *Reader, opts ScoreOptions) (*ScoreResult, error) {
	dec := NewDecoder(r.LinkType())
	ai := NewAfterImage()
	ai.OwnLinkOnly = !opts.KitsuneLinks
	kn := NewKitNET(NumFeatures, opts.KitNET)
	res := &ScoreResult{}
	x := make([]float64, NumFeatures)
	var p Packet
	var featureTime time.Duration
	start := time.Now()
	for {
		data, ci, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if errors.Is(err, ErrFileCorrupt) {
				res.Corrupt = err.Error()
				break
			}
			return nil, err
		}
		t0 := time.Now()
		dec.Decode(data, ci, &p)
		ai.Update(&p, x)
		featureTime += time.Since(t0)
		if kn.Training() {
			res.Trained++
		}
		res.Scores = append(res.Scores, kn.Process(x))
		res.Packets++
		if opts.Progress != nil && res.Packets%10000 == 0 {
			opts.Progress(res.Packets)
		}
	}
	res.Seconds = time.Since(start).Seconds()
	res.FeatureSeconds = featureTime.Seconds()
	if res.Seconds > 0 {
		res.PacketsPerSec = float64(res.Packets) / res.Seconds
	}
	res.Decode = dec.Stats
	res.Autoencoders = len(kn.FeatureMap())
	return res, nil
}
