package detect

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"strconv"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// PlotOptions describes a score plot.
type PlotOptions struct {
	Width, Height int // pixels; default 1200×500
	// Labels colours each score: benign green, malicious red; without
	// labels every point is blue. Training packets (score 0) are skipped.
	Labels []bool
	// Threshold draws a horizontal line when positive.
	Threshold float64
	// Title is written above the plot; default "anomaly score per packet".
	Title string
}

// The plot's colours.
var (
	plotBenign    = color.RGBA{0x1a, 0x9c, 0x3a, 0xff}
	plotMalicious = color.RGBA{0xd6, 0x27, 0x28, 0xff}
	plotPlain     = color.RGBA{0x1f, 0x77, 0xb4, 0xff}
	plotGrid      = color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
	plotTraining  = color.RGBA{0xf2, 0xf2, 0xf2, 0xff}
	plotText      = color.RGBA{0x33, 0x33, 0x33, 0xff}
)

// PlotScores draws the scores against the packet index as a PNG: a
// logarithmic score axis with a labelled grey line per decade, the packet
// axis with labelled ticks, the grace periods (the packets before the first
// score) shaded, the threshold as a dashed black line, a title and a
// legend. It uses the standard library and x/image's fixed-size font.
func PlotScores(w io.Writer, scores []float64, opts PlotOptions) error {
	if opts.Width <= 0 {
		opts.Width = 1200
	}
	if opts.Height <= 0 {
		opts.Height = 500
	}
	if opts.Title == "" {
		opts.Title = "anomaly score per packet"
	}
	img := image.NewRGBA(image.Rect(0, 0, opts.Width, opts.Height))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	text := &font.Drawer{Dst: img, Src: image.NewUniform(plotText), Face: basicfont.Face7x13}
	write := func(x, baseline int, s string) {
		text.Dot = fixed.P(x, baseline)
		text.DrawString(s)
	}
	width := func(s string) int { return text.MeasureString(s).Ceil() }

	lo, hi, first := math.Inf(1), math.Inf(-1), -1
	for i, s := range scores {
		if s > 0 && !math.IsInf(s, 0) {
			lo, hi = min(lo, s), max(hi, s)
			if first < 0 {
				first = i
			}
		}
	}
	if opts.Threshold > 0 {
		lo, hi = min(lo, opts.Threshold), max(hi, opts.Threshold)
	}
	write(8, 16, opts.Title)
	if math.IsInf(lo, 1) {
		write(8, 34, "no scores: every packet was in the grace periods")
		return png.Encode(w, img)
	}
	llo, lhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if lhi <= llo {
		lhi = llo + 1
	}
	// The plotting area; small images (tests, thumbnails) keep a margin of 2.
	left, right, top, bottom := 64, opts.Width-16, 28, opts.Height-40
	if right-left < 50 || bottom-top < 50 {
		left, right, top, bottom = 2, opts.Width-2, 2, opts.Height-2
	}
	labelled := left > 2
	y := func(s float64) int {
		f := (math.Log10(s) - llo) / (lhi - llo)
		return bottom - int(f*float64(bottom-top))
	}
	n := max(len(scores), 1)
	x := func(i int) int { return left + i*(right-left)/n }

	if first > 0 { // the grace periods: no scores there
		draw.Draw(img, image.Rect(x(0), top, x(first), bottom+1), image.NewUniform(plotTraining), image.Point{}, draw.Src)
		if labelled && x(first)-x(0) > width("grace periods (training)")+8 {
			write(x(0)+6, bottom-6, "grace periods (training)")
		}
	}
	for d := llo; d <= lhi; d++ {
		yy := y(math.Pow(10, d))
		for xx := left; xx <= right; xx++ {
			img.Set(xx, yy, plotGrid)
		}
		if labelled {
			label := strconv.FormatFloat(math.Pow(10, d), 'g', -1, 64)
			write(left-6-width(label), yy+4, label)
		}
	}
	if labelled {
		for yy := top; yy <= bottom; yy++ {
			img.Set(left, yy, plotText)
		}
		for xx := left; xx <= right; xx++ {
			img.Set(xx, bottom, plotText)
		}
		step := tickStep(n)
		for i := 0; i <= n; i += step {
			for yy := bottom; yy < bottom+4; yy++ {
				img.Set(x(i), yy, plotText)
			}
			label := strconv.Itoa(i)
			write(x(i)-width(label)/2, bottom+17, label)
		}
		axis := "packet"
		write((left+right-width(axis))/2, bottom+34, axis)
	}

	for i, s := range scores {
		if s <= 0 || math.IsInf(s, 0) || math.IsNaN(s) {
			continue
		}
		c := plotPlain
		if i < len(opts.Labels) {
			c = plotBenign
			if opts.Labels[i] {
				c = plotMalicious
			}
		}
		xx, yy := x(i), y(s)
		img.Set(xx, yy, c)
		img.Set(xx, yy+1, c)
	}
	if opts.Threshold > 0 {
		yy := y(opts.Threshold)
		for xx := left; xx <= right; xx++ {
			if xx%8 < 5 {
				img.Set(xx, yy, color.Black)
			}
		}
	}
	if labelled {
		plotLegend(img, write, width, right, opts)
	}
	return png.Encode(w, img)
}

// plotLegend writes the legend at the top right: the point colours in use
// and the threshold.
func plotLegend(img *image.RGBA, write func(x, baseline int, s string), width func(string) int, right int, opts PlotOptions) {
	type entry struct {
		c     color.Color
		label string
	}
	var entries []entry
	if len(opts.Labels) > 0 {
		entries = append(entries, entry{plotBenign, "benign"}, entry{plotMalicious, "malicious"})
	} else {
		entries = append(entries, entry{plotPlain, "score"})
	}
	if opts.Threshold > 0 {
		entries = append(entries, entry{color.Black, fmt.Sprintf("threshold %.4g", opts.Threshold)})
	}
	xx := right
	for _, e := range entries {
		xx -= width(e.label) + 28
	}
	for _, e := range entries {
		draw.Draw(img, image.Rect(xx, 8, xx+10, 18), image.NewUniform(e.c), image.Point{}, draw.Src)
		write(xx+14, 17, e.label)
		xx += width(e.label) + 28
	}
}

// tickStep is the packet axis's tick interval for n packets: 1, 2 or 5
// times a power of ten, giving at most about ten ticks.
func tickStep(n int) int {
	step := 1
	for {
		for _, m := range []int{1, 2, 5} {
			if n/(step*m) <= 10 {
				return step * m
			}
		}
		step *= 10
	}
}
