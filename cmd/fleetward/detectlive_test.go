package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/detect"
	"github.com/fleetward/fleetward/internal/inventory"
	"github.com/fleetward/fleetward/internal/telemetry"
)

// TestDetectLiveSendsScoreSummariesToARealServer captures on lo while a
// datagram goes to 127.0.0.1 every few milliseconds, with a model that
// trains on the first 120 packets, and sends to a real server: the device
// with 127.0.0.1 gets score measurements. Needs root (AF_PACKET).
func TestDetectLiveSendsScoreSummariesToARealServer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("AF_PACKET capture needs root")
	}
	ctx := actor.With(context.Background(), actor.Actor{Name: "test"})
	s, dir, token := startSensorServer(t, ctx, inventory.Device{ID: "lo-host", Name: "Loopback", Class: "other", IPs: []string{"127.0.0.1"}})
	loopbackTraffic(t)
	b, err := captureStdout(t, func() error {
		return rootCommand().Run(context.Background(), []string{"fleetward", "detect", "--iface", "lo", "--count", "1500",
			"--fm", "20", "--ad", "100", "--summary-interval", "500ms", "--json",
			"--server", s.URL, "--token", token, "--cacert", filepath.Join(dir, "tls", "ca.crt")})
	})
	if err != nil {
		t.Fatalf("detect --iface lo: %v\n%s", err, b)
	}
	var rep struct {
		SummariesSent int     `json:"summaries_sent_to_server"`
		CaptureDrops  *uint64 `json:"capture_drops"`
		CaptureMode   string  `json:"capture_mode"`
		Alerts        json.RawMessage
	}
	if err := json.Unmarshal(b, &rep); err != nil || rep.SummariesSent == 0 {
		t.Fatalf("sent %d score summaries (%v): %s", rep.SummariesSent, err, b)
	}
	if len(rep.Alerts) == 0 || string(rep.Alerts) == "null" {
		t.Errorf("alerts is %q in the JSON report; want a list, [] when there are none", rep.Alerts)
	}
	if rep.CaptureDrops == nil || rep.CaptureMode != detect.CaptureRing {
		t.Errorf("the report has no capture_drops, or a capture_mode other than %q: %s", detect.CaptureRing, b)
	}
	series, err := s.Telemetry.Series(ctx, "lo-host", []string{telemetry.MetricAnomalyPackets}, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	packets := 0.0
	for _, p := range series[telemetry.MetricAnomalyPackets] {
		packets += p.Value
	}
	if len(series[telemetry.MetricAnomalyPackets]) == 0 || packets == 0 || packets > 1500 {
		t.Errorf("lo-host has %d score points counting %.0f packets after %d summaries", len(series[telemetry.MetricAnomalyPackets]), packets, rep.SummariesSent)
	}
}

// TestDetectLivePrintsHowTheCaptureFared captures 200 frames on lo with
// --no-promisc and prints, after the totals, how it read them (from its
// ring), the frames the kernel dropped, the failures and the reopens. (What promiscuous mode changes is
// tested in internal/detect: lo's counter is shared with other tests.)
// Needs root (AF_PACKET).
func TestDetectLivePrintsHowTheCaptureFared(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("AF_PACKET capture needs root")
	}
	loopbackTraffic(t)
	b, err := captureStdout(t, func() error {
		return rootCommand().Run(context.Background(), []string{"fleetward", "detect", "--iface", "lo", "--no-promisc",
			"--count", "200", "--fm", "20", "--ad", "100"})
	})
	if err != nil {
		t.Fatalf("detect --iface lo --no-promisc: %v\n%s", err, b)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^lo: 200 packets, `),
		regexp.MustCompile(`(?m)^capture \(ring\): \d+ frames dropped by the kernel \(the detector fell behind\), 0 failures, 0 reopens$`),
	} {
		if !want.Match(b) {
			t.Errorf("output lacks %v:\n%s", want, b)
		}
	}
}

// loopbackTraffic sends a datagram to 127.0.0.1 every 3 ms until the test
// ends.
func loopbackTraffic(t *testing.T) {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(stop); wg.Wait(); conn.Close() })
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(3 * time.Millisecond):
				conn.WriteToUDP([]byte("fleetward live capture test"), conn.LocalAddr().(*net.UDPAddr))
			}
		}
	})
}
