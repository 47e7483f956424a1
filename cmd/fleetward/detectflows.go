package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/fleetward/fleetward/internal/alert"
	"github.com/fleetward/fleetward/internal/flow"
)

// flowReport is what `detect --zeek` found in a conn.log.
type flowReport struct {
	File    string `json:"file"`
	Flows   int    `json:"flows"`
	Skipped int    `json:"skipped"`
	// Late counts the connections that started more than an hour before
	// one already read (flow.Reorderer): scored out of order.
	Late       int            `json:"late,omitempty"`
	LastError  string         `json:"last_error,omitempty"`
	Seconds    float64        `json:"seconds"`
	FlowsPerS  float64        `json:"flows_per_second"`
	Signals    int            `json:"signals"`
	Behaviours map[string]int `json:"behaviours"`
	Alerts     []alert.Alert  `json:"alerts"`
	// With labels (IoT-23): flows flagged among malicious and benign ones.
	Labelled *flowLabels `json:"labels,omitempty"`
	// Sent is how many signals went to --server.
	Sent int `json:"sent_to_server,omitempty"`
}

type flowLabels struct {
	Malicious        int     `json:"malicious"`
	FlaggedMalicious int     `json:"flagged_malicious"`
	Recall           float64 `json:"recall"`
	Benign           int     `json:"benign"`
	FlaggedBenign    int     `json:"flagged_benign"`
	FalsePositive    float64 `json:"false_positive_rate"`
}

// detectFlows runs the flow rules over a conn.log (the records in order
// of their start, flow.Reorderer: Zeek writes a connection when it ends),
// folds the signals into alerts and, with send, hands the signals to a
// server.
func detectFlows(ctx context.Context, path string, rules flow.Rules, send func(context.Context, []alert.Signal) error) (flowReport, error) {
	rep := flowReport{File: path, Behaviours: map[string]int{}}
	f, err := os.Open(path)
	if err != nil {
		return rep, err
	}
	defer f.Close()
	r := flow.NewReader(f)
	start := time.Now()
	d := flow.NewDetector(rules)
	agg := alert.NewAggregator(0, nil)
	alerts := map[string]alert.Alert{}
	var labels flowLabels
	hasLabels := false
	var pending []alert.Signal
	var sendErr error
	sendBatch := func() error {
		if err := send(ctx, pending); err != nil {
			return fmt.Errorf("send signals to the server: %w", err)
		}
		rep.Sent += len(pending)
		pending = pending[:0]
		return nil
	}
	observe := func(c flow.Conn) {
		sigs := d.Observe(c)
		rep.Flows++
		rep.Signals += len(sigs)
		for _, s := range sigs {
			rep.Behaviours[s.Behaviour]++
			a, _, err := agg.Add(s)
			if err == nil {
				alerts[a.ID] = a
			}
		}
		if send != nil && sendErr == nil {
			// In batches as they come: a day's log raises too many to hold.
			pending = append(pending, sigs...)
			if len(pending) >= 1000 {
				sendErr = sendBatch()
			}
		}
		if c.Label != "" {
			hasLabels = true
			if c.Malicious() {
				labels.Malicious++
				if len(sigs) > 0 {
					labels.FlaggedMalicious++
				}
			} else {
				labels.Benign++
				if len(sigs) > 0 {
					labels.FlaggedBenign++
				}
			}
		}
	}
	// The rules take connections in order of their start; Zeek writes
	// them as they end.
	var order flow.Reorderer
	for {
		c, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return rep, fmt.Errorf("%s: %w", path, err)
		}
		order.Push(c, observe)
	}
	order.Flush(observe)
	rep.Late = order.Late
	rep.Skipped = r.Skipped
	if r.LastError != nil {
		rep.LastError = r.LastError.Error()
	}
	rep.Seconds = time.Since(start).Seconds()
	if rep.Seconds > 0 {
		rep.FlowsPerS = float64(rep.Flows) / rep.Seconds
	}
	rep.Alerts = slices.SortedFunc(maps.Values(alerts), func(a, b alert.Alert) int { return a.FirstSeen.Compare(b.FirstSeen) })
	if rep.Alerts == nil {
		rep.Alerts = []alert.Alert{} // [] for none, never null
	}
	if hasLabels {
		if labels.Malicious > 0 {
			labels.Recall = float64(labels.FlaggedMalicious) / float64(labels.Malicious)
		}
		if labels.Benign > 0 {
			labels.FalsePositive = float64(labels.FlaggedBenign) / float64(labels.Benign)
		}
		rep.Labelled = &labels
	}
	if send != nil && sendErr == nil && len(pending) > 0 {
		sendErr = sendBatch()
	}
	return rep, sendErr
}

// plural counts n of noun, "1 signal" or "3 signals".
func plural[N int | uint64](n N, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// printFlowReport writes the report for a person.
func printFlowReport(w io.Writer, rep flowReport) {
	fmt.Fprintf(w, "%s: %s (%d malformed, skipped) in %.3f s, %.0f flows/s; %s in %s\n",
		rep.File, plural(rep.Flows, "flow"), rep.Skipped, rep.Seconds, rep.FlowsPerS, plural(rep.Signals, "signal"), plural(len(rep.Alerts), "alert"))
	for _, a := range rep.Alerts {
		fmt.Fprintf(w, "  %s  %-8s %-14s %-15s %s  %s\n", a.FirstSeen.Format(time.RFC3339), a.Severity, a.Behaviour, a.SrcIP, plural(a.Signals, "signal"), a.Explanation)
	}
	if l := rep.Labelled; l != nil {
		recall := fmt.Sprintf("recall %.3f", l.Recall)
		if l.Malicious == 0 {
			recall = "no recall: the labels mark no flow malicious"
		}
		fmt.Fprintf(w, "labels: %d of %d malicious flows flagged (%s); %d of %d benign flagged (false positive rate %.4f)\n",
			l.FlaggedMalicious, l.Malicious, recall, l.FlaggedBenign, l.Benign, l.FalsePositive)
	}
	if rep.Sent > 0 {
		fmt.Fprintf(w, "sent %d signals to the server\n", rep.Sent)
	}
}
