package detect

// ApplyRules runs only the packet rules over r: decoding and the rules,
// without AfterImage or KitNET, for a sensor on a device too small to
// train a model. It honours opts.Rules (the defaults when nil),
// opts.Signals, opts.Status, opts.Progress, opts.Batch and
// opts.Sequential, and keeps no per-packet data; the result's Signals are
// kept only when opts.Signals is nil. It is ScoreCapture's pipeline with
// the model left out.
func ApplyRules(r PacketSource, opts ScoreOptions) (*ScoreResult, error) {
	if opts.Rules == nil {
		opts.Rules = &Rules{}
	}
	opts.Anomaly, opts.Model, opts.Discard = nil, nil, true
	return scoreCapture(r, opts, false)
}
