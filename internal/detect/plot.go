package detect

import (
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
)

// PlotOptions describes a score plot.
type PlotOptions struct {
	Width, Height int // pixels; default 1200×500
	// Labels colours each score: benign green, malicious red; without
	// labels every point is blue. Training packets (score 0) are skipped.
	Labels []bool
	// Threshold draws a horizontal line when positive.
	Threshold float64
}

// PlotScores draws the scores against the packet index as a PNG with a
// logarithmic score axis (one grey line per decade) and the threshold as
// a black line. It uses only the standard library.
func PlotScores(w io.Writer, scores []float64, opts PlotOptions) error {
	if opts.Width <= 0 {
		opts.Width = 1200
	}
	if opts.Height <= 0 {
		opts.Height = 500
	}
	img := image.NewRGBA(image.Rect(0, 0, opts.Width, opts.Height))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range scores {
		if s > 0 && !math.IsInf(s, 0) {
			lo, hi = min(lo, s), max(hi, s)
		}
	}
	if opts.Threshold > 0 {
		lo, hi = min(lo, opts.Threshold), max(hi, opts.Threshold)
	}
	if math.IsInf(lo, 1) {
		return png.Encode(w, img)
	}
	llo, lhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if lhi <= llo {
		lhi = llo + 1
	}
	const margin = 10
	y := func(s float64) int {
		f := (math.Log10(s) - llo) / (lhi - llo)
		return opts.Height - margin - int(f*float64(opts.Height-2*margin))
	}
	grey := color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
	for d := llo; d <= lhi; d++ {
		yy := y(math.Pow(10, d))
		for x := range opts.Width {
			img.Set(x, yy, grey)
		}
	}
	benign, malicious, plain := color.RGBA{0x1a, 0x9c, 0x3a, 0xff}, color.RGBA{0xd6, 0x27, 0x28, 0xff}, color.RGBA{0x1f, 0x77, 0xb4, 0xff}
	n := max(len(scores), 1)
	for i, s := range scores {
		if s <= 0 || math.IsInf(s, 0) || math.IsNaN(s) {
			continue
		}
		c := plain
		if i < len(opts.Labels) {
			c = benign
			if opts.Labels[i] {
				c = malicious
			}
		}
		x := margin + i*(opts.Width-2*margin)/n
		yy := y(s)
		img.Set(x, yy, c)
		img.Set(x, yy+1, c)
	}
	if opts.Threshold > 0 {
		yy := y(opts.Threshold)
		for x := range opts.Width {
			if x%8 < 5 {
				img.Set(x, yy, color.Black)
			}
		}
	}
	return png.Encode(w, img)
}
