package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/gopacket"
	"github.com/urfave/cli/v3"

	"github.com/fleetward/fleetward/internal/alert"
	"github.com/fleetward/fleetward/internal/detect"
	"github.com/fleetward/fleetward/internal/flow"
)

func detectCommand() *cli.Command {
	return &cli.Command{
		Name:  "detect",
		Usage: "detect attacks in a packet capture (anomaly scores) or a Zeek conn.log (flow rules)",
		Description: `Reads a pcap or pcapng file, computes Kitsune's 100 damped statistics for every packet and
feeds them to a KitNET autoencoder ensemble: the first --fm packets learn the feature map, the
next --ad train the autoencoders, and every later packet gets an anomaly score (RMSE). Prints
the throughput and, given per-packet labels (one 0 or 1 per line), AUC, equal error rate and
the true-positive rate at 0.1% and 1% false positives over the scored packets, raw and after
per-source smoothing, and how soon after the first malicious packet the first alert came.

Alongside the model, the packet rules (Telnet scans, SYN/UDP/ACK floods, port scans, brute force,
C2 beaconing, plaintext credentials; --no-rules turns them off) and the model's alerts (a threshold
calibrated on the end of the training period, a source alerting only when --persist of its last
--window scores are above it) become alerts, aggregated per source and behaviour and printed.
--plot draws the scores and the threshold; --save-model and --load-model keep a trained model.

With --iface IF it captures live (AF_PACKET, root or CAP_NET_RAW) until interrupted or --count
packets, printing each alert as it starts. The interface is put in promiscuous mode, so that a
sensor on a mirror port sees the traffic between other hosts; --no-promisc leaves it out.

With --zeek FILE it reads a Zeek conn.log instead (TSV, JSON lines, or IoT-23's labelled CSV) and runs
the flow rules (C2 retries, Telnet scans, port scans, brute force, floods; docs/DETECTION.md): it
prints the alerts and, when the file has labels, how many malicious and benign flows were flagged.
With --server and --token the detections (of --pcap, --iface or --zeek) go to a running fleetward,
which raises the alerts on the devices that have the addresses; with --pcap and --iface the
model's scores go too, as per-source summaries every --summary-interval of capture time, which the
device pages plot.

  fleetward detect --pcap mirai-splice.pcap --labels mirai-splice.labels --fm 5000 --ad 20000 --plot scores.png
  fleetward detect --iface eth0 --load-model model.json --server https://fleetward:8443 --token $TOKEN --cacert ca.crt
  fleetward detect --zeek conn.log --server https://fleetward:8443 --token $TOKEN --cacert ca.crt`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "pcap", Usage: "pcap or pcapng file to score"},
			&cli.StringFlag{Name: "iface", Usage: "network interface to capture on live (AF_PACKET; needs root or CAP_NET_RAW); runs until interrupted or --count packets"},
			&cli.StringFlag{Name: "plot", Usage: "draw the per-source smoothed scores (coloured by --labels) and the alert threshold to this PNG file (--pcap only)"},
			&cli.StringFlag{Name: "save-model", Usage: "write the trained model to this file (versioned JSON) after the capture"},
			&cli.StringFlag{Name: "load-model", Usage: "score with the model in this file (from --save-model) instead of training; --fm and --ad are ignored"},
			&cli.IntFlag{Name: "count", Usage: "with --iface: stop after this many packets"},
			&cli.BoolFlag{Name: "no-promisc", Usage: "with --iface: do not put the interface in promiscuous mode (see only the traffic to and from this host, broadcasts and multicast)"},
			&cli.StringFlag{Name: "zeek", Usage: "Zeek conn.log (TSV, JSON lines or IoT-23 CSV) to run the flow rules on"},
			&cli.StringFlag{Name: "server", Usage: "fleetward server URL to send the detections to", Sources: cli.EnvVars("FLEETWARD_SERVER")},
			&cli.StringFlag{Name: "token", Usage: "API token for --server", Sources: cli.EnvVars("FLEETWARD_TOKEN")},
			&cli.StringFlag{Name: "cacert", Usage: "PEM file to trust for --server (e.g. DATA/tls/ca.crt)", Sources: cli.EnvVars("FLEETWARD_CACERT")},
			&cli.IntFlag{Name: "fm", Value: 5000, Usage: "packets for the feature-mapping grace period"},
			&cli.IntFlag{Name: "ad", Value: 50000, Usage: "packets for the autoencoder training grace period"},
			&cli.StringFlag{Name: "labels", Usage: "file of per-packet labels (0 benign, 1 malicious) to evaluate the scores against (--pcap only)"},
			&cli.BoolFlag{Name: "kitsune-links", Usage: "compute Kitsune's exact features (update every link of the sender; slower on scanning traffic)"},
			&cli.StringFlag{Name: "scores", Usage: "write the per-packet scores to this CSV file (idx,rmse; --pcap only)"},
			&cli.BoolFlag{Name: "json", Usage: "print the results as JSON on standard output"},
			&cli.BoolFlag{Name: "no-rules", Usage: "with --pcap: do not apply the packet rules"},
			&cli.StringSliceFlag{Name: "rule", Usage: "change a rule threshold, NAME=VALUE (repeatable), e.g. telnet_scan_hosts=20, brute_force_window=2m, no_new_destination=true; packet rules (--pcap, --iface): " +
				strings.Join(detect.RuleSettings(), ", ") + "; flow rules (--zeek): " + strings.Join(flow.RuleSettings(), ", ")},
			&cli.DurationFlag{Name: "warmup", Value: detect.DefaultAnomalyConfig.Warmup, Usage: "with --load-model: no anomaly alerts in this first stretch of capture time, while the fresh stream statistics fill"},
			&cli.BoolFlag{Name: "learn", Usage: "continued learning: after training, packets judged benign (score below --learn-below × threshold, source not anomalous) also train the model"},
			&cli.FloatFlag{Name: "learn-below", Value: 0.5, Usage: "with --learn: the share of the alert threshold below which a packet counts as benign"},
			&cli.DurationFlag{Name: "summary-interval", Value: detect.DefaultSummaryInterval, Usage: "with --server: capture time each per-device score summary (the dashboard's score plot) covers"},
		}, alertFlags("", "")...),
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Bool("no-promisc") && cmd.String("iface") == "" {
				return fmt.Errorf("detect: --no-promisc is an option of the live capture: give --iface IF too")
			}
			if path := cmd.String("zeek"); path != "" {
				if cmd.String("pcap") != "" {
					return fmt.Errorf("detect: give --pcap or --zeek, not both")
				}
				// The flow rules take --rule, --server and --json; a packet
				// option would be ignored without a word.
				for _, name := range []string{"iface", "plot", "save-model", "load-model", "count", "fm", "ad", "labels", "kitsune-links", "scores",
					"no-rules", "warmup", "learn", "learn-below", "summary-interval", "target-fpr", "threshold-scale", "threshold", "persist", "window", "idle-gap"} {
					if cmd.IsSet(name) {
						return fmt.Errorf("detect: --%s is an option of packet detection (--pcap, --iface), not of --zeek", name)
					}
				}
				var send func(context.Context, []alert.Signal) error
				if cmd.String("server") != "" {
					c, err := newAPIClient(cmd)
					if err != nil {
						return fmt.Errorf("detect: %w", err)
					}
					send = func(ctx context.Context, sigs []alert.Signal) error {
						return c.do(ctx, "POST", "/api/v1/signals", alert.SignalReport{Signals: sigs}, nil)
					}
				}
				var rules flow.Rules
				if err := setRules(cmd, "rule", &rules); err != nil {
					return fmt.Errorf("detect: %w", err)
				}
				rep, err := detectFlows(ctx, path, rules, send)
				if err != nil {
					return fmt.Errorf("detect: %w", err)
				}
				if cmd.Bool("json") {
					enc := json.NewEncoder(os.Stdout)
					enc.SetIndent("", "  ")
					return enc.Encode(rep)
				}
				printFlowReport(os.Stdout, rep)
				return nil
			}
			if (cmd.String("pcap") == "") == (cmd.String("iface") == "") {
				return fmt.Errorf("detect: give one of --pcap FILE, --iface IF or --zeek FILE")
			}
			if cmd.String("iface") != "" {
				for _, name := range []string{"plot", "scores", "labels"} {
					if cmd.IsSet(name) {
						return fmt.Errorf("detect: --%s is an option of --pcap: it needs every packet of a capture that ends, numbered, and a live capture has neither", name)
					}
				}
			}
			if cmd.Int("fm") <= 0 || cmd.Int("ad") <= 0 {
				return fmt.Errorf("detect: --fm and --ad must be positive")
			}
			if cmd.Int("count") < 0 {
				return fmt.Errorf("detect: --count must be positive (or 0, the default, for no limit)")
			}
			if cmd.Duration("summary-interval") <= 0 {
				return fmt.Errorf("detect: --summary-interval must be positive")
			}
			var labels []bool
			if path := cmd.String("labels"); path != "" {
				f, err := os.Open(path)
				if err != nil {
					return fmt.Errorf("detect: --labels: %w", err)
				}
				labels, err = detect.ReadLabels(f)
				f.Close()
				if err != nil {
					return fmt.Errorf("detect: --labels %s: %w", path, err)
				}
			}
			var sender *sensorSenders
			if cmd.String("server") != "" {
				c, err := newAPIClient(cmd)
				if err != nil {
					return fmt.Errorf("detect: %w", err)
				}
				sender = &sensorSenders{
					signals: &signalSender{Send: func(ctx context.Context, sigs []alert.Signal) error {
						return c.do(ctx, "POST", "/api/v1/signals", alert.SignalReport{Signals: sigs}, nil)
					}},
					summaries: &summarySender{Send: func(ctx context.Context, sums []alert.ScoreSummary) error {
						return c.do(ctx, "POST", "/api/v1/scores", map[string]any{"summaries": sums}, nil)
					}},
				}
			}
			if iface := cmd.String("iface"); iface != "" {
				return detectLive(ctx, cmd, iface, sender)
			}
			r, err := detect.OpenFile(cmd.String("pcap"))
			if err != nil {
				return fmt.Errorf("detect: %w", err)
			}
			defer r.Close()
			startHeap(64 << 20)
			opts, err := scoreOptions(cmd)
			if err != nil {
				return err
			}
			if stderrIsTerminal() {
				opts.Progress = func(n int) { fmt.Fprintf(os.Stderr, "\rscored %d packets", n) }
			}
			// A file's summaries go in full batches as the capture is
			// scored, so that a long file's are never all in memory.
			var summaryErr error
			if sender != nil {
				opts.SummaryInterval = cmd.Duration("summary-interval")
				sensor := "pcap:" + filepath.Base(cmd.String("pcap"))
				opts.Summaries = func(sums []alert.ScoreSummary) {
					for i := range sums {
						sums[i].Sensor = sensor
					}
					if summaryErr == nil {
						summaryErr = sender.summaries.Add(ctx, true, sums...)
					}
				}
			}
			src := &interruptible{Reader: r, ctx: ctx}
			res, err := detect.ScoreCapture(src, opts)
			clearProgress()
			if err != nil {
				return fmt.Errorf("detect: %w", err)
			}
			if err := saveModel(cmd, res); err != nil {
				return err
			}
			if path := cmd.String("plot"); path != "" {
				// The alert threshold applies to the per-source smoothed
				// scores, so those are drawn against it where there are any.
				plotted, title := res.Scores, "anomaly score (RMSE) per packet"
				if len(res.Smoothed) == len(res.Scores) && res.Threshold > 0 {
					plotted, title = res.Smoothed, "anomaly score per packet, smoothed per source (what alerts use), and the alert threshold"
				}
				f, err := os.Create(path)
				if err != nil {
					return fmt.Errorf("detect: --plot: %w", err)
				}
				err = detect.PlotScores(f, plotted, detect.PlotOptions{Labels: labels, Threshold: res.Threshold, Title: title})
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					return fmt.Errorf("detect: --plot %s: %w", path, err)
				}
			}
			out := detectOutput{File: cmd.String("pcap"), Result: res, Alerts: []alert.Alert{}}
			if n := res.Decode.Panicked; n > 0 {
				out.Warnings = append(out.Warnings, fmt.Sprintf("%d frames crashed the decoder or the rules and were kept without addresses (a bug: please report it with this): %s",
					n, res.FirstPanic))
			}
			if d := res.Decode; d.UnknownLink > 0 {
				out.Warnings = append(out.Warnings, fmt.Sprintf("%d frames are of a link type the decoder does not handle (the first is %v; docs/DETECTION.md lists those handled): they carry no addresses, so neither the rules nor the anomaly model could judge who sent them",
					d.UnknownLink, d.UnknownLinkType))
			}
			if res.StreamsShed > 0 {
				out.Warnings = append(out.Warnings, fmt.Sprintf("%d streams evicted to stay within %d tracked (a flood of new sources?); %d tracked at the end",
					res.StreamsShed, detect.DefaultMaxStreams, res.Streams))
			}
			switch {
			case res.Corrupt != "":
				out.Warnings = append(out.Warnings, fmt.Sprintf("reading stopped at a corrupt or cut record after %d packets, which were scored: %s", res.Packets, res.Corrupt))
			case res.Packets == 0:
				out.Warnings = append(out.Warnings, "the capture holds no packets")
			}
			if res.Packets > 0 && res.Packets <= res.Trained {
				out.Warnings = append(out.Warnings, fmt.Sprintf("all %d packets went to the grace periods (--fm %d, --ad %d): nothing was scored, so the anomaly model could raise no alert; lower --fm and --ad or give a longer capture",
					res.Packets, cmd.Int("fm"), cmd.Int("ad")))
			}
			if res.Uncalibrated {
				out.Warnings = append(out.Warnings, fmt.Sprintf("the anomaly model could not be calibrated: the last half of its %d training packets (--ad) gave no finite score, so it raised no alert; train on more packets",
					cmd.Int("ad")))
			}
			if src.interrupted {
				out.Warnings = append(out.Warnings, fmt.Sprintf("interrupted: the results cover the first %d packets of the capture", res.Packets))
				if len(labels) > res.Packets {
					labels = labels[:res.Packets]
				}
			}
			if labels != nil && len(labels) != res.Packets {
				return fmt.Errorf("detect: --labels has %d labels for %d packets", len(labels), res.Packets)
			}
			if scored := labels[min(res.Trained, len(labels)):]; labels != nil && (!slices.Contains(scored, true) || !slices.Contains(scored, false)) {
				// AUC, EER and TPR compare the two kinds.
				out.Warnings = append(out.Warnings, "--labels marks the scored packets all benign or all malicious: there is nothing to evaluate the scores on")
			} else if labels != nil {
				ev := detect.Evaluate(res.Scores[res.Trained:], labels[res.Trained:])
				out.Evaluation = &ev
				sm := detect.Evaluate(res.Smoothed[res.Trained:], labels[res.Trained:])
				out.Smoothed = &sm
				out.AlertCheck = checkAlerts(res, labels)
				if err := out.AlertCheck.nameInfected(cmd.String("pcap"), labels); err != nil {
					return fmt.Errorf("detect: --labels: %w", err)
				}
			}
			if sender != nil {
				if err := sender.signals.Add(ctx, true, res.Signals...); err != nil {
					return fmt.Errorf("detect: --server: %w", err)
				}
				if err := sender.signals.Flush(ctx); err != nil {
					return fmt.Errorf("detect: --server: %w", err)
				}
				if summaryErr != nil {
					return fmt.Errorf("detect: --server: %w", summaryErr)
				}
				if err := sender.summaries.Flush(ctx); err != nil {
					return fmt.Errorf("detect: --server: %w", err)
				}
				out.Sent, out.SummariesSent = sender.signals.Sent(), sender.summaries.Sent()
			}
			agg := alert.NewAggregator(0, nil)
			var invalid []string
			for _, sig := range res.Signals {
				a, _, err := agg.Add(sig)
				if err != nil {
					// A bug, but not one to lose the capture's results over.
					invalid = append(invalid, fmt.Sprintf("%s %s at %s: %v", sig.Detector, sig.Behaviour, sig.Time.Format(time.RFC3339Nano), err))
					continue
				}
				out.Alerts = upsertAlert(out.Alerts, a)
			}
			if len(invalid) > 0 {
				out.Warnings = append(out.Warnings, fmt.Sprintf("%s left out as invalid (a bug: please report it with this): %s",
					plural(len(invalid), "signal"), invalid[0]))
			}
			if path := cmd.String("scores"); path != "" {
				if err := writeScores(path, res.Scores); err != nil {
					return fmt.Errorf("detect: --scores: %w", err)
				}
			}
			if cmd.Bool("json") {
				// JSON has no infinities: a threshold an evaluation could
				// not place (NaN scores above every benign one) is left out.
				for _, ev := range []*detect.Evaluation{out.Evaluation, out.Smoothed} {
					if ev != nil {
						zeroUnlessFinite(&ev.Thresh01)
						zeroUnlessFinite(&ev.Thresh1)
					}
				}
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(out); err != nil {
					return err
				}
			} else {
				printDetect(os.Stdout, out)
			}
			if src.interrupted {
				// The results are out, but a script must not take them for
				// the whole capture's.
				return fmt.Errorf("detect: interrupted after %d packets", res.Packets)
			}
			if res.Corrupt != "" && res.Packets == 0 {
				return fmt.Errorf("detect: no packet could be read from %s: %s", cmd.String("pcap"), res.Corrupt)
			}
			return nil
		},
	}
}

// interruptible ends a capture file early, as if it ended there, once ctx
// is done (Ctrl-C, SIGTERM), so that what was scored is still reported.
type interruptible struct {
	*detect.Reader
	ctx         context.Context
	read        int
	interrupted bool
}

func (s *interruptible) Next() ([]byte, gopacket.CaptureInfo, error) {
	// Looking at ctx costs a little; every 1,024 packets is well under a
	// millisecond apart.
	if s.read++; s.read%1024 == 0 && s.ctx.Err() != nil {
		s.interrupted = true
		return nil, gopacket.CaptureInfo{}, io.EOF
	}
	return s.Reader.Next()
}

// zeroUnlessFinite sets *v to 0 when it is NaN or infinite.
func zeroUnlessFinite(v *float64) {
	if math.IsNaN(*v) || math.IsInf(*v, 0) {
		*v = 0
	}
}

type detectOutput struct {
	File       string              `json:"file"`
	Result     *detect.ScoreResult `json:"result"`
	Evaluation *detect.Evaluation  `json:"evaluation,omitempty"`
	// Smoothed evaluates the per-source smoothed scores the alerts use.
	Smoothed   *detect.Evaluation `json:"evaluation_smoothed,omitempty"`
	AlertCheck *alertCheck        `json:"alert_check,omitempty"`
	Alerts     []alert.Alert      `json:"alerts"` // [] for none, never null
	// Sent is how many signals went to --server.
	Sent int `json:"sent_to_server,omitempty"`
	// SummariesSent is how many score summaries went to --server.
	SummariesSent int `json:"summaries_sent_to_server,omitempty"`
	// Warnings say what the results leave out.
	Warnings []string `json:"warnings,omitempty"`
}

// alertFlags are the flags of how model scores become alerts
// (detect.AnomalyConfig), named with prefix ("" for detect, "sensor-" for
// the agent's edge sensor) and their usage with usage before it;
// alertConfig reads them back.
func alertFlags(prefix, usage string) []cli.Flag {
	d := detect.DefaultAnomalyConfig
	return []cli.Flag{
		&cli.FloatFlag{Name: prefix + "target-fpr", Value: d.TargetFPR, Usage: usage + "alert threshold: this quantile of the calibration scores is allowed above it"},
		&cli.FloatFlag{Name: prefix + "threshold-scale", Value: d.ThresholdScale, Usage: usage + "alert threshold: multiplier of the calibrated quantile"},
		&cli.FloatFlag{Name: prefix + "threshold", Usage: usage + "alert threshold used as is instead of the calibrated one"},
		&cli.IntFlag{Name: prefix + "persist", Value: d.Persist, Usage: usage + "a source alerts when this many of its last --" + prefix + "window scores are above the threshold"},
		&cli.IntFlag{Name: prefix + "window", Value: d.Window, Usage: usage + "per-source smoothing window, in packets"},
		&cli.DurationFlag{Name: prefix + "idle-gap", Value: d.IdleGap, Usage: usage + "a channel or source silent for longer is not judged on its first packets after the pause"},
	}
}

// maxAlertWindow bounds --window: each source tracked keeps that many
// scores.
const maxAlertWindow = 10000

// alertConfig is the AnomalyConfig of the alertFlags named with prefix, or
// an error naming the first flag whose value makes no sense (the library
// would quietly take its default for it).
func alertConfig(cmd *cli.Command, prefix string) (detect.AnomalyConfig, error) {
	c := detect.AnomalyConfig{TargetFPR: cmd.Float(prefix + "target-fpr"), ThresholdScale: cmd.Float(prefix + "threshold-scale"),
		Threshold: cmd.Float(prefix + "threshold"), Persist: int(cmd.Int(prefix + "persist")), Window: int(cmd.Int(prefix + "window")),
		IdleGap: cmd.Duration(prefix + "idle-gap")}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	for _, bad := range []struct {
		flag  string
		wrong bool
		want  string
	}{
		{"target-fpr", !(c.TargetFPR > 0 && c.TargetFPR < 1), "a share of the calibration scores, above 0 and below 1"},
		{"threshold-scale", !(finite(c.ThresholdScale) && c.ThresholdScale > 0), "a positive multiplier"},
		{"threshold", !(finite(c.Threshold) && c.Threshold >= 0), "a score, positive (0: calibrate it)"},
		{"window", c.Window < 1 || c.Window > maxAlertWindow, fmt.Sprintf("a number of packets from 1 to %d", maxAlertWindow)},
		{"persist", c.Persist < 1 || c.Persist > c.Window, fmt.Sprintf("a number of packets from 1 to --%swindow (%d)", prefix, c.Window)},
		{"idle-gap", c.IdleGap <= 0, "a positive duration"},
	} {
		if bad.wrong {
			return c, fmt.Errorf("--%s%s %v: want %s", prefix, bad.flag, cmd.Value(prefix+bad.flag), bad.want)
		}
	}
	return c, nil
}

// ruleSetter is a set of rule thresholds that takes NAME=VALUE settings
// (detect.Rules, flow.Rules); one that also has Validate is checked as a
// whole once every setting is in.
type ruleSetter interface {
	Set(name, value string) error
}

// setRules applies each NAME=VALUE of the repeatable flag (--rule,
// --sensor-rule) to rules.
func setRules(cmd *cli.Command, flag string, rules ruleSetter) error {
	for _, kv := range cmd.StringSlice(flag) {
		name, value, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("--%s %q: want NAME=VALUE", flag, kv)
		}
		if err := rules.Set(name, value); err != nil {
			return fmt.Errorf("--%s: %w", flag, err)
		}
	}
	// Values good alone may not be together (a minimum above its maximum).
	if v, ok := rules.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			return fmt.Errorf("--%s: %w", flag, err)
		}
	}
	return nil
}

// alertCheck measures the alerts against the labels: how soon after the
// first malicious packet the first alert came, and how many signals fired
// on benign scored packets.
type alertCheck struct {
	FirstMalicious   time.Time `json:"first_malicious,omitzero"`
	FirstAlert       time.Time `json:"first_alert,omitzero"`
	FirstAlertSource string    `json:"first_alert_source,omitempty"`
	DelaySeconds     float64   `json:"delay_seconds"`
	// BenignSignals counts the signals raised on benign-labelled packets
	// after training, wherever they are in the capture.
	BenignSignals int `json:"benign_signals"`
	// Infected is the source of most malicious-labelled packets, the
	// infected device (the labels also mark the replies of the hosts it
	// attacks), and FirstAlertNamesIt whether the first alert is its.
	Infected          string `json:"infected_source,omitempty"`
	FirstAlertNamesIt bool   `json:"first_alert_names_infected"`
	firstAlertIP      string
}

// nameInfected finds the capture's infected device from its labels and
// says whether the first alert named it: an alert on time on the wrong
// device is no detection.
func (c *alertCheck) nameInfected(path string, labels []bool) error {
	r, err := detect.OpenFile(path)
	if err != nil {
		return err
	}
	defer r.Close()
	dec := detect.NewDecoder(r.LinkType())
	counts := map[string]int{}
	var p detect.Packet
	for i := 0; i < len(labels); i++ {
		data, ci, err := r.Next()
		if err != nil {
			break // the scoring pass read as far, and said why it stopped
		}
		if labels[i] {
			dec.Decode(data, ci, &p)
			if src := p.Src.String(); src != "" {
				counts[src]++
			}
		}
	}
	for src, n := range counts {
		if n > counts[c.Infected] || n == counts[c.Infected] && src < c.Infected {
			c.Infected = src
		}
	}
	c.FirstAlertNamesIt = c.Infected != "" && c.firstAlertIP == c.Infected
	return nil
}

func checkAlerts(res *detect.ScoreResult, labels []bool) *alertCheck {
	c := &alertCheck{DelaySeconds: -1}
	first := slices.Index(labels, true)
	if first < 0 || first >= len(res.Times) {
		return c
	}
	c.FirstMalicious = res.Time(first)
	for _, s := range res.Signals {
		if i := signalPacket(res, s); i >= res.Trained && i < len(labels) && !labels[i] {
			c.BenignSignals++
		}
		if s.Time.Before(c.FirstMalicious) {
			continue
		}
		if c.FirstAlert.IsZero() {
			c.FirstAlert, c.FirstAlertSource, c.firstAlertIP = s.Time, s.SrcIP+" "+s.SrcMAC+" ("+s.Behaviour+")", s.SrcIP
			c.DelaySeconds = s.Time.Sub(c.FirstMalicious).Seconds()
		}
	}
	return c
}

// signalPacket is the index of the packet a signal was raised on: the
// first packet at its time (the capture's times are in order), or -1.
func signalPacket(res *detect.ScoreResult, s alert.Signal) int {
	t := float64(s.Time.UnixNano()) / 1e9
	i := sort.Search(len(res.Times), func(i int) bool { return res.Times[i] >= t-1e-6 })
	if i == len(res.Times) || res.Times[i] > t+1e-6 {
		return -1
	}
	return i
}

// upsertAlert replaces the alert with a's ID or appends a.
func upsertAlert(as []alert.Alert, a alert.Alert) []alert.Alert {
	for i := range as {
		if as[i].ID == a.ID {
			as[i] = a
			return as
		}
	}
	return append(as, a)
}

func printDetect(w io.Writer, out detectOutput) {
	res := out.Result
	fmt.Fprintf(w, "%s: %d packets in %s (%.0f packets/s; features %.0f packets/s), %d autoencoders\n",
		out.File, res.Packets, time.Duration(res.Seconds*float64(time.Second)).Round(time.Millisecond), res.PacketsPerSec,
		float64(res.Packets)/max(res.FeatureSeconds, 1e-9), res.Autoencoders)
	d := res.Decode
	fmt.Fprintf(w, "decoded: %d non-IP, %d fragments, %d truncated, %d malformed, %d ICMP errors with quoted ports, %d VLAN-tagged, %d with IPv6 extension headers, %d IPsec AH headers, %d of an unknown link type\n",
		d.NonIP, d.Fragments, d.Truncated, d.Malformed, d.ICMPQuoted, d.VLANTagged, d.IPv6ExtHdrs, d.IPsecAH, d.UnknownLink)
	fmt.Fprintf(w, "trained on the first %d packets, scored %d\n", res.Trained, res.Packets-res.Trained)
	for _, warning := range out.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warning)
	}
	if ev := out.Evaluation; ev != nil {
		fmt.Fprintf(w, "scored packets: %d benign, %d malicious\n", ev.Benign, ev.Malicious)
		fmt.Fprintf(w, "AUC %.5f  EER %.5f  TPR %.4f at 1%% FPR (threshold %.4g)  TPR %.4f at 0.1%% FPR (threshold %.4g)\n",
			ev.AUC, ev.EER, ev.TPRAt1, ev.Thresh1, ev.TPRAt01, ev.Thresh01)
	}
	if ev := out.Smoothed; ev != nil {
		fmt.Fprintf(w, "smoothed: AUC %.5f  EER %.5f  TPR %.4f at 1%% FPR  TPR %.4f at 0.1%% FPR; alert threshold %.4g\n",
			ev.AUC, ev.EER, ev.TPRAt1, ev.TPRAt01, res.Threshold)
	}
	if c := out.AlertCheck; c != nil {
		named := "the infected device, " + c.Infected
		if !c.FirstAlertNamesIt {
			named = "not the infected device, " + c.Infected
		}
		fmt.Fprintf(w, "first malicious packet %s; first alert %s on %s (%.3f s later; %s); %s on benign scored packets\n",
			c.FirstMalicious.Format(time.RFC3339Nano), c.FirstAlert.Format(time.RFC3339Nano), c.FirstAlertSource, c.DelaySeconds, named, plural(c.BenignSignals, "signal"))
	}
	fmt.Fprintf(w, "%s\n", plural(len(out.Alerts), "alert"))
	for _, a := range out.Alerts {
		fmt.Fprintf(w, "  %s %s %s %s %s: %s %s to %s; %s\n", a.Severity, a.Behaviour, a.Detector, a.SrcIP, a.SrcMAC, plural(a.Signals, "signal"),
			a.FirstSeen.Format(time.RFC3339), a.LastSeen.Format(time.RFC3339), a.Explanation)
	}
}

func writeScores(path string, scores []float64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	fmt.Fprintln(f, "idx,rmse")
	for i, s := range scores {
		fmt.Fprintf(f, "%d,%g\n", i, s)
	}
	return f.Close()
}
