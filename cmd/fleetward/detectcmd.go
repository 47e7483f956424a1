package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/fleetward/fleetward/internal/detect"
)

func detectCommand() *cli.Command {
	return &cli.Command{
		Name:  "detect",
		Usage: "score the packets of a capture for anomalies (Kitsune's AfterImage features and KitNET)",
		Description: `Reads a pcap or pcapng file, computes Kitsune's 100 damped statistics for every packet and
feeds them to a KitNET autoencoder ensemble: the first --fm packets learn the feature map, the
next --ad train the autoencoders, and every later packet gets an anomaly score (RMSE). Prints
the throughput and, given per-packet labels (one 0 or 1 per line), AUC, equal error rate and
the true-positive rate at 0.1% and 1% false positives over the scored packets.

  fleetward detect --pcap mirai-splice.pcap --labels mirai-splice.labels --fm 5000 --ad 20000`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "pcap", Usage: "pcap or pcapng file to score", Required: true},
			&cli.IntFlag{Name: "fm", Value: 5000, Usage: "packets for the feature-mapping grace period"},
			&cli.IntFlag{Name: "ad", Value: 50000, Usage: "packets for the autoencoder training grace period"},
			&cli.StringFlag{Name: "labels", Usage: "file of per-packet labels (0 benign, 1 malicious) to evaluate the scores against"},
			&cli.BoolFlag{Name: "kitsune-links", Usage: "compute Kitsune's exact features (update every link of the sender; slower on scanning traffic)"},
			&cli.StringFlag{Name: "scores", Usage: "write the per-packet scores to this CSV file (idx,rmse)"},
			&cli.BoolFlag{Name: "json", Usage: "print the results as JSON on standard output"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Int("fm") <= 0 || cmd.Int("ad") <= 0 {
				return fmt.Errorf("detect: --fm and --ad must be positive")
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
			r, err := detect.OpenFile(cmd.String("pcap"))
			if err != nil {
				return fmt.Errorf("detect: %w", err)
			}
			defer r.Close()
			opts := detect.ScoreOptions{
				KitNET:       detect.KitNETConfig{FMGrace: int(cmd.Int("fm")), ADGrace: int(cmd.Int("ad"))},
				KitsuneLinks: cmd.Bool("kitsune-links"),
			}
			if stderrIsTerminal() {
				opts.Progress = func(n int) { fmt.Fprintf(os.Stderr, "\rscored %d packets", n) }
			}
			res, err := detect.ScoreCapture(r, opts)
			clearProgress()
			if err != nil {
				return fmt.Errorf("detect: %w", err)
			}
			out := detectOutput{File: cmd.String("pcap"), Result: res}
			if labels != nil {
				if len(labels) != res.Packets {
					return fmt.Errorf("detect: --labels has %d labels for %d packets", len(labels), res.Packets)
				}
				ev := detect.Evaluate(res.Scores[res.Trained:], labels[res.Trained:])
				out.Evaluation = &ev
			}
			if path := cmd.String("scores"); path != "" {
				if err := writeScores(path, res.Scores); err != nil {
					return fmt.Errorf("detect: --scores: %w", err)
				}
			}
			if cmd.Bool("json") {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			printDetect(os.Stdout, out)
			return nil
		},
	}
}

type detectOutput struct {
	File       string              `json:"file"`
	Result     *detect.ScoreResult `json:"result"`
	Evaluation *detect.Evaluation  `json:"evaluation,omitempty"`
}

func printDetect(w io.Writer, out detectOutput) {
	res := out.Result
	fmt.Fprintf(w, "%s: %d packets in %s (%.0f packets/s; features %.0f packets/s), %d autoencoders\n",
		out.File, res.Packets, time.Duration(res.Seconds*float64(time.Second)).Round(time.Millisecond), res.PacketsPerSec,
		float64(res.Packets)/max(res.FeatureSeconds, 1e-9), res.Autoencoders)
	d := res.Decode
	fmt.Fprintf(w, "decoded: %d non-IP, %d fragments, %d truncated, %d malformed, %d ICMP errors with quoted ports\n",
		d.NonIP, d.Fragments, d.Truncated, d.Malformed, d.ICMPQuoted)
	if res.Corrupt != "" {
		fmt.Fprintf(w, "the capture ends in a corrupt record; the packets before it were scored: %s\n", res.Corrupt)
	}
	fmt.Fprintf(w, "trained on the first %d packets, scored %d\n", res.Trained, res.Packets-res.Trained)
	if ev := out.Evaluation; ev != nil {
		fmt.Fprintf(w, "scored packets: %d benign, %d malicious\n", ev.Benign, ev.Malicious)
		fmt.Fprintf(w, "AUC %.5f  EER %.5f  TPR %.4f at 1%% FPR (threshold %.4g)  TPR %.4f at 0.1%% FPR (threshold %.4g)\n",
			ev.AUC, ev.EER, ev.TPRAt1, ev.Thresh1, ev.TPRAt01, ev.Thresh01)
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
