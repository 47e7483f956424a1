package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/alert"
	"github.com/fleetward/fleetward/internal/app"
	"github.com/fleetward/fleetward/internal/auth"
	"github.com/fleetward/fleetward/internal/datasets"
	"github.com/fleetward/fleetward/internal/detect"
	"github.com/fleetward/fleetward/internal/flow"
	"github.com/fleetward/fleetward/internal/inventory"
	"github.com/fleetward/fleetward/internal/telemetry"
)

// writeTestCapture writes n UDP packets between two hosts and returns the
// file's path.
func writeTestCapture(t *testing.T, dir string, n int) string {
	t.Helper()
	path := filepath.Join(dir, "test.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: []byte{10, 200, 0, 1}, DstIP: []byte{10, 200, 0, byte(2 + i%3)}}
		udp := &layers.UDP{SrcPort: 5000, DstPort: layers.UDPPort(6000 + i%5)}
		udp.SetNetworkLayerForChecksum(ip)
		buf := gopacket.NewSerializeBuffer()
		err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
			&layers.Ethernet{SrcMAC: []byte{2, 0, 0, 0, 0, 1}, DstMAC: []byte{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4},
			ip, udp, gopacket.Payload(make([]byte, 10+i%40)))
		if err != nil {
			t.Fatal(err)
		}
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(1700000000, int64(i)*int64(time.Millisecond)), CaptureLength: len(buf.Bytes()), Length: len(buf.Bytes())}
		if err := w.WritePacket(ci, buf.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func TestDetectCommandRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	pcap := writeTestCapture(t, dir, 20)
	notCapture := filepath.Join(dir, "notes.txt")
	os.WriteFile(notCapture, []byte("not a capture at all"), 0o600)
	badLabels := filepath.Join(dir, "bad.labels")
	os.WriteFile(badLabels, []byte("0\nmaybe\n"), 0o600)
	shortLabels := filepath.Join(dir, "short.labels")
	os.WriteFile(shortLabels, []byte("0\n1\n"), 0o600)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no capture", nil, "pcap"},
		{"a file that is not a capture", []string{"--pcap", notCapture}, "not a pcap or pcapng file"},
		{"a zero grace period", []string{"--pcap", pcap, "--fm", "0"}, "must be positive"},
		{"labels that are not 0 or 1", []string{"--pcap", pcap, "--labels", badLabels}, "line 2"},
		{"fewer labels than packets", []string{"--pcap", pcap, "--labels", shortLabels}, "2 labels for 20 packets"},
		{"a learning share above the threshold", []string{"--pcap", pcap, "--learn", "--learn-below", "1.5"}, "--learn-below 1.5"},
		{"a negative warm-up", []string{"--pcap", pcap, "--warmup", "-1m"}, "--warmup -1m0s"},
		{"a rule setting that does not exist", []string{"--pcap", pcap, "--rule", "telnet_scan_hostz=3"}, "no such setting; the settings are telnet_scan_hosts, "},
		{"a flow rule setting that does not exist", []string{"--zeek", pcap, "--rule", "telnet_scan_window=3s"}, "no such setting; the settings are c2_unanswered, "},
		{"a rule without a value", []string{"--pcap", pcap, "--rule", "telnet_scan_hosts"}, "want NAME=VALUE"},
		{"no promiscuous mode without a live capture", []string{"--pcap", pcap, "--no-promisc"}, "give --iface IF too"},
		{"a threshold that is not a number", []string{"--pcap", pcap, "--threshold", "NaN"}, "--threshold NaN: want a score"},
		{"a negative threshold", []string{"--pcap", pcap, "--threshold", "-1"}, "--threshold -1: want a score"},
		{"a false-positive rate above 1", []string{"--pcap", pcap, "--target-fpr", "2"}, "--target-fpr 2: want a share"},
		{"a threshold scale that is not a number", []string{"--pcap", pcap, "--threshold-scale", "NaN"}, "--threshold-scale NaN: want a positive"},
		{"an empty window", []string{"--pcap", pcap, "--window", "0"}, "--window 0: want a number of packets from 1"},
		{"a window past the bound", []string{"--pcap", pcap, "--window", "100000000"}, "--window 100000000: want"},
		{"persistence longer than the window", []string{"--pcap", pcap, "--persist", "11"}, "--persist 11: want a number of packets from 1 to --window (10)"},
		{"a zero idle gap", []string{"--pcap", pcap, "--idle-gap", "0s"}, "--idle-gap 0s: want a positive duration"},
		{"a directory for a capture", []string{"--pcap", dir}, "a directory, not a pcap or pcapng file"},
		{"a packet option with --zeek", []string{"--zeek", pcap, "--labels", badLabels}, "--labels is an option of packet detection"},
		{"a negative count", []string{"--pcap", pcap, "--count", "-1"}, "--count must be positive"},
		{"a zero summary interval", []string{"--pcap", pcap, "--summary-interval", "0s"}, "--summary-interval must be positive"},
		{"beaconing of fewer than 3 connections", []string{"--pcap", pcap, "--rule", "beacon_connections=1"}, "beacon_connections: 1: beaconing needs at least 3"},
		{"a beacon period minimum above its maximum", []string{"--pcap", pcap, "--rule", "beacon_min_period=2h", "--rule", "beacon_max_period=1m"}, "beacon_min_period: 2h0m0s is not below beacon_max_period 1m0s"},
		{"a score plot of a live capture", []string{"--iface", "lo", "--plot", filepath.Join(dir, "p.png")}, "--plot is an option of --pcap"},
		{"a score file of a live capture", []string{"--iface", "lo", "--scores", filepath.Join(dir, "s.csv")}, "--scores is an option of --pcap"},
		{"labels for a live capture", []string{"--iface", "lo", "--labels", badLabels}, "--labels is an option of --pcap"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := rootCommand().Run(context.Background(), append([]string{"fleetward", "detect"}, tt.args...))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want containing %q", err, tt.want)
			}
		})
	}
}

// --rule changes the flow rules' thresholds with --zeek: IoT-23's Mirai
// capture raises its C2 alert at the default 5 unanswered connections, and
// none when 500 are needed.
func TestDetectZeekTakesRuleSettings(t *testing.T) {
	log := datasets.Path(t, filepath.Join("iot23", "CTU-Malware-Capture-8-1-labeled.csv"))
	alerts := func(args ...string) int {
		out, err := captureStdout(t, func() error {
			return rootCommand().Run(context.Background(), append([]string{"fleetward", "detect", "--zeek", log, "--json"}, args...))
		})
		if err != nil {
			t.Fatal(err)
		}
		var rep flowReport
		if err := json.Unmarshal(out, &rep); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return len(rep.Alerts)
	}
	if n := alerts(); n == 0 {
		t.Fatal("no alert at the default thresholds")
	}
	if n := alerts("--rule", "c2_unanswered=500"); n != 0 {
		t.Errorf("%d alerts with c2_unanswered=500", n)
	}
}

func TestDetectCommandScoresEveryPacket(t *testing.T) {
	dir := t.TempDir()
	pcap := writeTestCapture(t, dir, 60)
	labels := filepath.Join(dir, "test.labels")
	os.WriteFile(labels, []byte(strings.Repeat("0\n", 50)+strings.Repeat("1\n", 10)), 0o600)
	scores := filepath.Join(dir, "scores.csv")
	args := []string{"fleetward", "detect", "--pcap", pcap, "--fm", "10", "--ad", "20", "--labels", labels, "--scores", scores, "--json"}
	if err := rootCommand().Run(context.Background(), args); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(scores)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 61 || lines[0] != "idx,rmse" {
		t.Fatalf("scores file has %d lines starting %q, want a header and 60 scores", len(lines), lines[0])
	}
	if lines[31] != "30,0" || lines[32] == "31,0" {
		t.Errorf("the first 31 packets train (score 0) and the rest are scored; got %q then %q", lines[31], lines[32])
	}
}

// writeScanCapture writes a Telnet scan from 10.200.0.9 and returns its path.
func writeScanCapture(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "scan.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	// A Telnet scan: SYNs to port 23 of 40 hosts in 4 s.
	for i := range 40 {
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: []byte{10, 200, 0, 9}, DstIP: []byte{10, 200, 3, byte(i)}}
		tcp := &layers.TCP{SrcPort: 40000, DstPort: 23, SYN: true, Window: 1024}
		tcp.SetNetworkLayerForChecksum(ip)
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
			&layers.Ethernet{SrcMAC: []byte{2, 0, 0, 0, 0, 9}, DstMAC: []byte{2, 0, 0, 0, 0, 1}, EthernetType: layers.EthernetTypeIPv4}, ip, tcp); err != nil {
			t.Fatal(err)
		}
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(1700000000, int64(i)*int64(100*time.Millisecond)), CaptureLength: len(buf.Bytes()), Length: len(buf.Bytes())}
		if err := w.WritePacket(ci, buf.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	return path
}

func TestDetectCommandPrintsRuleAlertsAsJSON(t *testing.T) {
	dir := t.TempDir()
	path := writeScanCapture(t, dir)
	out := filepath.Join(dir, "out.json")
	stdout := os.Stdout
	o, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout = o
	err = rootCommand().Run(context.Background(), []string{"fleetward", "detect", "--pcap", path, "--fm", "5", "--ad", "10", "--json"})
	os.Stdout = stdout
	o.Close()
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Alerts []struct {
			Behaviour string `json:"behaviour"`
			SrcIP     string `json:"src_ip"`
			Signals   int    `json:"signals"`
		} `json:"alerts"`
	}
	b, _ := os.ReadFile(out)
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("output %s: %v", b, err)
	}
	found := false
	for _, a := range got.Alerts {
		found = found || (a.Behaviour == "telnet_scan" && a.SrcIP == "10.200.0.9")
	}
	if !found {
		t.Errorf("no telnet_scan alert on 10.200.0.9 in %s", b)
	}
}

// captureStdout runs f with standard output going to a file and returns
// what it printed.
func captureStdout(t *testing.T, f func() error) ([]byte, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stdout")
	o, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = o
	err = f()
	os.Stdout = stdout
	o.Close()
	b, _ := os.ReadFile(path)
	return b, err
}

// startSensorServer starts a real server with one device and returns it,
// its data directory and an operator token for a sensor to send with.
func startSensorServer(t *testing.T, ctx context.Context, dev inventory.Device) (s *app.Server, dir, token string) {
	t.Helper()
	dir = t.TempDir()
	s, err := app.Start(ctx, app.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
	if _, err := s.Inventory.CreateDevice(ctx, dev); err != nil {
		t.Fatal(err)
	}
	token, _, err = s.Auth.CreateToken(ctx, "sensor-"+dev.ID, auth.RoleOperator, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir, token
}

func TestDetectCommandSendsSignalsToARealServer(t *testing.T) {
	ctx := actor.With(context.Background(), actor.Actor{Name: "test"})
	s, dir, token := startSensorServer(t, ctx, inventory.Device{ID: "cam-scan", Name: "Scanning camera", Class: "camera", IPs: []string{"10.200.0.9"}})
	pcap := writeScanCapture(t, t.TempDir())
	b, err := captureStdout(t, func() error {
		return rootCommand().Run(context.Background(), []string{"fleetward", "detect", "--pcap", pcap, "--fm", "5", "--ad", "10", "--json",
			"--server", s.URL, "--token", token, "--cacert", filepath.Join(dir, "tls", "ca.crt")})
	})
	if err != nil {
		t.Fatalf("detect: %v\n%s", err, b)
	}
	var out struct {
		Sent          int `json:"sent_to_server"`
		SummariesSent int `json:"summaries_sent_to_server"`
		Alerts        []struct {
			Behaviour string `json:"behaviour"`
		} `json:"alerts"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.Sent == 0 || out.SummariesSent == 0 {
		t.Fatalf("sent %d signals and %d score summaries (%v): %s", out.Sent, out.SummariesSent, err, b)
	}
	// The scanning camera's scores are its measurements, for the plot.
	series, err := s.Telemetry.Series(ctx, "cam-scan", []string{telemetry.MetricAnomalyScoreMax, telemetry.MetricAnomalyPackets}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(series[telemetry.MetricAnomalyScoreMax]) == 0 || len(series[telemetry.MetricAnomalyPackets]) == 0 {
		t.Errorf("no anomaly score measurements of cam-scan after %d summaries were sent: %+v", out.SummariesSent, series)
	}
	es, _ := s.Ledger.EntriesBySubject(ctx, "cam-scan", 10)
	raised := 0
	for _, e := range es {
		if e.Type == alert.EventAlertRaised {
			raised++
		}
	}
	// One alert per behaviour: the Telnet scan, and the model's anomaly
	// when its tiny training set makes the scan stand out.
	if raised != len(out.Alerts) || raised == 0 {
		t.Errorf("%d alerts raised on cam-scan, the command printed %d", raised, len(out.Alerts))
	}
}

// A signal on a benign-labelled packet counts against the detector
// wherever it falls, in the attack's window too; signals during training
// and on malicious packets do not.
func TestCheckAlertsCountsSignalsOnBenignPackets(t *testing.T) {
	at := func(s float64) time.Time { return time.UnixMicro(int64(s * 1e6)).UTC() }
	times := []float64{100, 101, 102, 103.000001, 104, 105, 106}
	labels := []bool{false, false, false, false, true, false, true}
	res := &detect.ScoreResult{Times: times, Trained: 2, Signals: []alert.Signal{
		{Time: at(101), SrcIP: "10.0.0.1", Behaviour: "anomaly"},        // in training
		{Time: at(103.000001), SrcIP: "10.0.0.2", Behaviour: "anomaly"}, // benign, before the attack
		{Time: at(104), SrcIP: "10.0.0.3", Behaviour: "anomaly"},        // the attack
		{Time: at(105), SrcIP: "10.0.0.4", Behaviour: "anomaly"},        // benign, in the attack's window
		{Time: at(106), SrcIP: "10.0.0.3", Behaviour: "anomaly"},
	}}
	c := checkAlerts(res, labels)
	if c.BenignSignals != 2 {
		t.Errorf("%d signals on benign packets, want 2", c.BenignSignals)
	}
	if c.FirstAlertSource != "10.0.0.3  (anomaly)" || c.DelaySeconds != 0 {
		t.Errorf("first alert %q after %v s", c.FirstAlertSource, c.DelaySeconds)
	}
}

// A capture shorter than the grace periods scores nothing, and says so.
func TestDetectWarnsWhenNothingWasScored(t *testing.T) {
	pcap := writeTestCapture(t, t.TempDir(), 20)
	out, err := captureStdout(t, func() error {
		return rootCommand().Run(context.Background(), []string{"fleetward", "detect", "--pcap", pcap, "--json"})
	})
	if err != nil {
		t.Fatal(err)
	}
	var res detectOutput
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "all 20 packets went to the grace periods") {
		t.Errorf("warnings %q", res.Warnings)
	}
}

// TestDetectStopsWhenInterrupted: Ctrl-C or SIGTERM (a done context) ends
// the reading of a capture file; what was scored is still reported, with
// a warning, and the command fails so that a script does not take it for
// the whole capture's.
func TestDetectStopsWhenInterrupted(t *testing.T) {
	pcap := writeTestCapture(t, t.TempDir(), 5000)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var err error
	out, _ := captureStdout(t, func() error {
		err = rootCommand().Run(ctx, []string{"fleetward", "detect", "--pcap", pcap, "--fm", "100", "--ad", "200", "--json"})
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "interrupted after 1023 packets") {
		t.Fatalf("err = %v, want interrupted after 1023 packets", err)
	}
	var rep detectOutput
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if rep.Result.Packets != 1023 || len(rep.Warnings) == 0 || !strings.Contains(rep.Warnings[len(rep.Warnings)-1], "interrupted") {
		t.Errorf("%d packets, warnings %q", rep.Result.Packets, rep.Warnings)
	}
}

// Frames of a link type the decoder does not handle are scored without
// addresses, and detect says how many and of which link type.
func TestDetectWarnsOfFramesOfAnUnknownLinkType(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wifi.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeIEEE802_11); err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 60)
	for i := range 12 {
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(1700000000, int64(i)*int64(time.Millisecond)), CaptureLength: len(frame), Length: len(frame)}
		if err := w.WritePacket(ci, frame); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	out, err := captureStdout(t, func() error {
		return rootCommand().Run(context.Background(), []string{"fleetward", "detect", "--pcap", path, "--fm", "2", "--ad", "2", "--json"})
	})
	if err != nil {
		t.Fatal(err)
	}
	var res detectOutput
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := "12 frames are of a link type the decoder does not handle (the first is 802.11 (105);"
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], want) || !strings.Contains(res.Warnings[0], "carry no addresses") {
		t.Errorf("warnings %q, want one starting %q", res.Warnings, want)
	}
}

// A capture cut short is scored up to the cut and says so in its
// warnings; one from which no packet can be read fails, so that a script
// does not take an empty result for a quiet network.
func TestDetectSaysWhenACaptureIsCorrupt(t *testing.T) {
	dir := t.TempDir()
	whole, err := os.ReadFile(writeTestCapture(t, dir, 300))
	if err != nil {
		t.Fatal(err)
	}
	run := func(image []byte) (detectOutput, error) {
		path := filepath.Join(dir, "cut.pcap")
		if err := os.WriteFile(path, image, 0o644); err != nil {
			t.Fatal(err)
		}
		var res detectOutput
		out, err := captureStdout(t, func() error {
			return rootCommand().Run(context.Background(), []string{"fleetward", "detect", "--pcap", path, "--fm", "20", "--ad", "50", "--json"})
		})
		if jerr := json.Unmarshal(out, &res); jerr != nil {
			t.Fatalf("%v: %s", jerr, out)
		}
		return res, err
	}
	res, err := run(whole[:len(whole)-7])
	if err != nil || res.Result.Packets != 299 || len(res.Warnings) == 0 || !strings.Contains(res.Warnings[0], "corrupt or cut record after 299 packets") {
		t.Errorf("a capture cut inside its last record: error %v, %d packets, warnings %q", err, res.Result.Packets, res.Warnings)
	}
	if _, err := run(whole[:24+10]); err == nil || !strings.Contains(err.Error(), "no packet could be read") {
		t.Errorf("a capture cut inside its first record: error %v", err)
	}
	res, err = run(whole[:24])
	if err != nil || res.Result.Packets != 0 || len(res.Warnings) != 1 || res.Warnings[0] != "the capture holds no packets" {
		t.Errorf("a capture of no packets: error %v, warnings %q", err, res.Warnings)
	}
}

// Labels that mark every scored packet benign give no AUC or alert
// check (a 0 and a year-1 "first malicious packet" before), and a
// result without alerts lists none as [], not null.
func TestDetectSaysWhenLabelsHaveNothingToEvaluate(t *testing.T) {
	dir := t.TempDir()
	path := writeTestCapture(t, dir, 300)
	labels := filepath.Join(dir, "labels.csv")
	if err := os.WriteFile(labels, []byte(strings.Repeat("0\n", 300)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := captureStdout(t, func() error {
		return rootCommand().Run(context.Background(), []string{"fleetward", "detect", "--pcap", path, "--labels", labels, "--fm", "20", "--ad", "50", "--no-rules", "--json"})
	})
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var res map[string]json.RawMessage
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	if _, ok := res["evaluation"]; ok {
		t.Errorf("an evaluation of all-benign labels: %s", res["evaluation"])
	}
	if _, ok := res["alert_check"]; ok {
		t.Errorf("an alert check without a malicious packet: %s", res["alert_check"])
	}
	if !strings.Contains(string(res["warnings"]), "nothing to evaluate") {
		t.Errorf("warnings %s", res["warnings"])
	}
	if a := strings.TrimSpace(string(res["alerts"])); !strings.HasPrefix(a, "[") {
		t.Errorf("alerts %s, want a list", a)
	}
}

// detect --zeek --server sends the signals in batches as the log is read,
// every one of them, and a failed send fails the run.
func TestDetectFlowsSendsSignalsInBatches(t *testing.T) {
	log := datasets.Path(t, filepath.Join("iot23", "CTU-Malware-Capture-8-1-labeled.csv"))
	var batches []int
	rep, err := detectFlows(context.Background(), log, flow.Rules{}, func(_ context.Context, sigs []alert.Signal) error {
		batches = append(batches, len(sigs))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sum := 0
	for _, n := range batches {
		sum += n
	}
	if rep.Signals < 2000 || sum != rep.Signals || rep.Sent != rep.Signals || len(batches) < rep.Signals/1100 {
		t.Errorf("%d signals, %d sent in %d batches %v", rep.Signals, rep.Sent, len(batches), batches)
	}
	_, err = detectFlows(context.Background(), log, flow.Rules{}, func(context.Context, []alert.Signal) error { return errors.New("server down") })
	if err == nil || !strings.Contains(err.Error(), "server down") {
		t.Errorf("a failed send: %v", err)
	}
}

// The alert check names the infected device, the source of most
// malicious-labelled packets, and says whether the first alert was its.
func TestAlertCheckNamesTheInfectedDevice(t *testing.T) {
	pcap := writeTestCapture(t, t.TempDir(), 300) // every packet from 10.200.0.1
	labels := make([]bool, 300)
	for i := 100; i < 200; i++ {
		labels[i] = true
	}
	for _, tc := range []struct {
		first string
		want  bool
	}{{"10.200.0.1", true}, {"10.200.0.3", false}} {
		c := &alertCheck{firstAlertIP: tc.first}
		if err := c.nameInfected(pcap, labels); err != nil {
			t.Fatal(err)
		}
		if c.Infected != "10.200.0.1" || c.FirstAlertNamesIt != tc.want {
			t.Errorf("first alert on %s: infected %q, names it %v", tc.first, c.Infected, c.FirstAlertNamesIt)
		}
	}
}
