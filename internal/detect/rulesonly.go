package detect

import (
	"errors"
	"io"
	"time"

	"github.com/fleetward/fleetward/internal/alert"
)

// ApplyRules runs only the packet rules over r: decoding and the rules,
// without AfterImage or KitNET, for a sensor on a device too small to
// train a model. It honours opts.Rules (the defaults when nil),
// opts.Signals, opts.Status and opts.Progress, and keeps no per-packet
// data; the result's Signals are kept only when opts.Signals is nil.
func ApplyRules(r PacketSource, opts ScoreOptions) (*ScoreResult, error) {
	var cfg Rules
	if opts.Rules != nil {
		cfg = *opts.Rules
	}
	rules := NewRuleDetector(cfg)
	dec := NewDecoder(r.LinkType())
	dec.PayloadPrefix = rules.PayloadPrefix()
	res := &ScoreResult{}
	var p Packet
	var sigs []alert.Signal
	start := time.Now()
	var lastStatus time.Time
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
		dec.Decode(data, ci, &p)
		sigs = rules.Observe(&p, sigs[:0])
		if len(sigs) > 0 {
			if opts.Signals != nil {
				opts.Signals(sigs)
			} else {
				res.Signals = append(res.Signals, sigs...)
			}
		}
		res.Packets++
		if opts.Progress != nil && res.Packets%10000 == 0 {
			opts.Progress(res.Packets)
		}
		if now := time.Now(); opts.Status != nil && now.Sub(lastStatus) >= time.Second {
			lastStatus = now
			opts.Status(ScoreResult{Packets: res.Packets, Decode: dec.Stats})
		}
	}
	res.Seconds = time.Since(start).Seconds()
	if res.Seconds > 0 {
		res.PacketsPerSec = float64(res.Packets) / res.Seconds
	}
	res.Decode = dec.Stats
	return res, nil
}
