package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/google/gopacket"
	"github.com/urfave/cli/v3"

	"github.com/fleetward/fleetward/internal/alert"
	"github.com/fleetward/fleetward/internal/detect"
)

// scoreOptions builds the detector's options from the detect flags,
// loading --load-model.
func scoreOptions(cmd *cli.Command) (detect.ScoreOptions, error) {
	anomaly, err := alertConfig(cmd, "")
	if err != nil {
		return detect.ScoreOptions{}, fmt.Errorf("detect: %w", err)
	}
	anomaly.Learn, anomaly.LearnBelow, anomaly.Warmup = cmd.Bool("learn"), cmd.Float("learn-below"), cmd.Duration("warmup")
	opts := detect.ScoreOptions{
		KitNET:       detect.KitNETConfig{FMGrace: int(cmd.Int("fm")), ADGrace: int(cmd.Int("ad"))},
		KitsuneLinks: cmd.Bool("kitsune-links"),
		Anomaly:      &anomaly,
	}
	if lb := cmd.Float("learn-below"); !(lb > 0 && lb <= 1) {
		return opts, fmt.Errorf("detect: --learn-below %v: a share of the threshold, above 0 and at most 1", lb)
	}
	if cmd.Duration("warmup") <= 0 {
		return opts, fmt.Errorf("detect: --warmup %v: must be positive", cmd.Duration("warmup"))
	}
	if !cmd.Bool("no-rules") {
		opts.Rules = &detect.Rules{}
		if err := setRules(cmd, "rule", opts.Rules); err != nil {
			return opts, fmt.Errorf("detect: %w", err)
		}
	}
	if path := cmd.String("load-model"); path != "" {
		m, err := loadModel(path)
		if err != nil {
			return opts, fmt.Errorf("detect: --load-model: %w", err)
		}
		opts.Model = m
	}
	return opts, nil
}

// loadModel reads a model written by --save-model.
func loadModel(path string) (*detect.KitNET, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := detect.LoadKitNET(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// saveModel writes --save-model.
func saveModel(cmd *cli.Command, res *detect.ScoreResult) error {
	path := cmd.String("save-model")
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("detect: --save-model: %w", err)
	}
	if err := res.Model.Save(f); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("detect: --save-model %s: %w", path, err)
	}
	return f.Close()
}

// signalSender sends signals to POST /api/v1/signals; summarySender sends
// score summaries to POST /api/v1/scores. Batches of alert.DefaultBatchSize
// at most stay under both routes' bounds.
type (
	signalSender  = alert.Batcher[alert.Signal]
	summarySender = alert.Batcher[alert.ScoreSummary]
)

// sensorSenders are the senders of `detect --server`, nil without one.
type sensorSenders struct {
	signals   *signalSender
	summaries *summarySender
}

// flush sends what both senders hold, signals first.
func (s *sensorSenders) flush(ctx context.Context) error {
	if err := s.signals.Flush(ctx); err != nil {
		return err
	}
	return s.summaries.Flush(ctx)
}

// countedSource stops a live capture after a number of packets.
type countedSource struct {
	detect.PacketSource
	left int
}

func (c *countedSource) Next() ([]byte, gopacket.CaptureInfo, error) {
	if c.left == 0 {
		return nil, gopacket.CaptureInfo{}, io.EOF
	}
	c.left--
	return c.PacketSource.Next()
}

// liveReport is what `detect --iface` prints when it stops.
type liveReport struct {
	Interface string              `json:"interface"`
	Result    *detect.ScoreResult `json:"result"`
	Alerts    []alert.Alert       `json:"alerts"`
	Sent      int                 `json:"sent_to_server,omitempty"`
	// SummariesSent is how many score summaries went to --server.
	SummariesSent int `json:"summaries_sent_to_server,omitempty"`
	// CaptureDrops counts the frames the kernel dropped because the
	// detector fell behind; CaptureErrors the receive failures (the
	// interface went down or away) and CaptureReopens how often it was
	// opened again after one. Packets are missed in each case.
	CaptureDrops   uint64 `json:"capture_drops"`
	CaptureErrors  uint64 `json:"capture_errors"`
	CaptureReopens uint64 `json:"capture_reopens"`
	// CaptureMode is how the capture read frames at the end: "ring", or
	// "recvfrom" (a system call per frame) when the kernel refused the
	// ring.
	CaptureMode string `json:"capture_mode"`
}

// detectLive runs the detector on an interface until ctx ends or --count
// packets, printing each new alert as it starts and sending the signals
// and score summaries to the server when there is one.
func detectLive(ctx context.Context, cmd *cli.Command, iface string, sender *sensorSenders) error {
	lc, err := detect.OpenInterface(iface, detect.LiveOptions{NoPromiscuous: cmd.Bool("no-promisc")})
	if err != nil {
		return fmt.Errorf("detect: %w", err)
	}
	defer lc.Close()
	// The capture reopens the interface when it fails (link down, device
	// re-created); say so, since packets are missed meanwhile.
	lc.OnError = func(err error) { fmt.Fprintf(os.Stderr, "detect: %v (reopening)\n", err) }
	// Without its ring the capture costs a system call per frame and
	// drops sooner: worth knowing on a busy link.
	if err := lc.RingError(); err != nil {
		fmt.Fprintf(os.Stderr, "detect: capture on %s: no receive ring, reading one frame per recvfrom: %v\n", iface, err)
	}
	stop := context.AfterFunc(ctx, func() { lc.Close() })
	defer stop()
	var src detect.PacketSource = lc
	if n := cmd.Int("count"); n > 0 {
		src = &countedSource{PacketSource: lc, left: int(n)}
	}
	opts, err := scoreOptions(cmd)
	if err != nil {
		return err
	}
	opts.Discard = true
	opts.Batch = 1 // a quiet network must not hold packets back
	agg := alert.NewAggregator(0, nil)
	rep := liveReport{Interface: iface, Alerts: []alert.Alert{}} // [], never null, for scripts
	var sendErr error
	var sendMu sync.Mutex // guards sendErr
	if sender != nil {
		// A quiet network must not hold a signal back: flush on a timer.
		tick := time.NewTicker(alert.DefaultBatchDelay)
		defer tick.Stop()
		done := make(chan struct{})
		defer close(done)
		go func() {
			for {
				select {
				case <-done:
					return
				case <-tick.C:
					if err := sender.flush(ctx); err != nil {
						sendMu.Lock()
						sendErr = cmp.Or(sendErr, err)
						sendMu.Unlock()
					}
				}
			}
		}()
	}
	opts.Signals = func(sigs []alert.Signal) {
		for _, sig := range sigs {
			a, started, err := agg.Add(sig)
			if err != nil {
				continue
			}
			rep.Alerts = upsertAlert(rep.Alerts, a)
			if started && !cmd.Bool("json") {
				fmt.Printf("%s alert: %s %s on %s %s: %s\n", sig.Time.Format(time.RFC3339), a.Severity, a.Behaviour, a.SrcIP, a.SrcMAC, a.Explanation)
			}
			if sender != nil {
				sendMu.Lock()
				if sendErr == nil {
					sendErr = sender.signals.Add(ctx, false, sig)
				}
				sendMu.Unlock()
			}
		}
	}
	if sender != nil {
		opts.SummaryInterval = cmd.Duration("summary-interval")
		opts.Summaries = func(sums []alert.ScoreSummary) {
			for i := range sums {
				sums[i].Sensor = iface
			}
			sendMu.Lock()
			if sendErr == nil {
				sendErr = sender.summaries.Add(ctx, false, sums...)
			}
			sendMu.Unlock()
		}
	}
	res, err := detect.ScoreCapture(src, opts)
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("detect: %w", err)
	}
	lc.Close() // reads the kernel's last drop count
	rep.CaptureDrops, rep.CaptureErrors, rep.CaptureReopens, rep.CaptureMode = lc.Drops(), lc.Errors(), lc.Reopens(), lc.Mode()
	if sender != nil {
		sendMu.Lock()
		defer sendMu.Unlock()
		if sendErr == nil {
			sendErr = sender.flush(context.WithoutCancel(ctx))
		}
		rep.Sent, rep.SummariesSent = sender.signals.Sent(), sender.summaries.Sent()
		if sendErr != nil {
			return fmt.Errorf("detect: --server: %w", sendErr)
		}
	}
	rep.Result = res
	if err := saveModel(cmd, res); err != nil {
		return err
	}
	if cmd.Bool("json") {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Printf("%s: %d packets, %d trained on, %d alerts, %d signals and %d score summaries sent\n", iface, res.Packets, res.Trained, len(rep.Alerts), rep.Sent, rep.SummariesSent)
	fmt.Printf("capture (%s): %d frames dropped by the kernel (the detector fell behind), %d failures, %d reopens\n", rep.CaptureMode, rep.CaptureDrops, rep.CaptureErrors, rep.CaptureReopens)
	return nil
}
