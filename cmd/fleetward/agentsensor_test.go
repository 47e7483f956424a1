package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/alert"
	"github.com/fleetward/fleetward/internal/app"
	"github.com/fleetward/fleetward/internal/auth"
	"github.com/fleetward/fleetward/internal/inventory"
)

// TestAgentSensorSendsAlertsToARealServer is the edge sensor end to end: a
// real server (broker, EST, API); `fleetward agent --sensor` enrolled with
// a one-time token, capturing on the host end of a veth; and in a network
// namespace behind it an "infected camera" that probes Telnet on a dozen
// addresses, as Mirai does. The agent's signals travel over mutual-TLS
// MQTT, and GET /api/v1/alerts shows the Telnet scan on the camera, found
// by its address, naming the gateway that saw it; the gateway's summaries
// become its sensor_* measurements. Root only (namespaces, AF_PACKET);
// under CI=true as root it must run.
func TestAgentSensorSendsAlertsToARealServer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("network namespaces and AF_PACKET capture need root")
	}
	ipTool, err := exec.LookPath("ip")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ip (iproute2) is required under CI as root")
		}
		t.Skip("no ip tool")
	}
	suffix := strconv.Itoa(os.Getpid() % 100000)
	ns, hostIf, peerIf := "fwes-"+suffix, "fwsh"+suffix, "fwsp"+suffix
	ip := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(ipTool, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
		return string(out)
	}
	ip("netns", "add", ns)
	t.Cleanup(func() {
		exec.Command(ipTool, "link", "del", hostIf).Run()
		exec.Command(ipTool, "netns", "del", ns).Run()
	})
	ip("link", "add", hostIf, "type", "veth", "peer", "name", peerIf)
	ip("link", "set", peerIf, "netns", ns)
	ip("addr", "add", "10.200.81.1/24", "dev", hostIf)
	ip("link", "set", hostIf, "up")
	ip("-n", ns, "addr", "add", "10.200.81.2/24", "dev", peerIf)
	ip("-n", ns, "link", "set", peerIf, "up")
	ip("-n", ns, "route", "add", "default", "via", "10.200.81.1")
	mac := regexp.MustCompile(`link/ether ([0-9a-f:]{17})`).FindStringSubmatch(ip("-n", ns, "link", "show", peerIf))
	if mac == nil {
		t.Fatalf("no MAC for %s", peerIf)
	}

	dir := t.TempDir()
	ctx := actor.With(context.Background(), actor.Actor{Name: "test"})
	s, err := app.Start(ctx, app.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0", Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	for _, d := range []inventory.Device{
		{ID: "gw-edge", Name: "Gateway with an edge sensor", Class: "gateway"},
		{ID: "cam-mirai", Name: "Infected camera", Class: "camera", IPs: []string{"10.200.81.2"}, MACs: []string{mac[1]}},
	} {
		if _, err := s.Inventory.CreateDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	enrol, err := s.CA.CreateEnrollmentToken(ctx, "gw-edge", "gateway", 0)
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := s.Auth.CreateToken(ctx, "operator-1", auth.RoleOperator, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	client := pinnedClient(t, dir)
	get := func(path string, into any) {
		t.Helper()
		req, _ := http.NewRequest("GET", s.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("GET %s = %d: %s", path, resp.StatusCode, b)
		}
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}

	agentCtx, stopAgent := context.WithCancel(context.Background())
	agentDone := make(chan error, 1)
	go func() {
		agentDone <- rootCommand().Run(agentCtx, []string{"fleetward", "--log-level", "error", "agent",
			"--server", s.URL, "--device-id", "gw-edge", "--token", enrol.Token, "--data", filepath.Join(t.TempDir(), "agent"),
			"--mqtt", s.MQTTAddr(), "--ca-cert", filepath.Join(dir, "tls", "ca.crt"), "--interval", "1h",
			"--sensor", hostIf, "--sensor-fm", "20", "--sensor-ad", "50", "--sensor-interval", "300ms"})
	}()
	defer func() {
		stopAgent()
		select {
		case err := <-agentDone:
			if err != nil {
				t.Errorf("agent: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("the agent did not stop within 10 s")
		}
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("after 20 s: %s", what)
			}
			select {
			case err := <-agentDone:
				t.Fatalf("the agent stopped: %v", err)
			default:
			}
		}
	}
	waitFor("the agent is connected to the broker", func() bool {
		for _, ss := range s.Broker.Sessions() {
			if ss.DeviceID == "gw-edge" {
				return true
			}
		}
		return false
	})

	// The camera probes Telnet on 12 addresses beyond the gateway; every
	// SYN passes the gateway's interface.
	scan := exec.Command(ipTool, "netns", "exec", ns, "bash", "-c",
		`for i in $(seq 2 13); do timeout 0.3 bash -c "echo > /dev/tcp/10.200.82.$i/23" 2>/dev/null; done; true`)
	if out, err := scan.CombinedOutput(); err != nil {
		t.Fatalf("scan from the namespace: %v: %s", err, out)
	}
	var alerts struct{ Alerts []alert.Alert }
	waitFor("a telnet_scan alert on cam-mirai", func() bool {
		get("/api/v1/alerts?device=cam-mirai", &alerts)
		return len(alerts.Alerts) > 0
	})
	a := alerts.Alerts[0]
	if a.Behaviour != "telnet_scan" || a.SrcIP != "10.200.81.2" || !strings.HasPrefix(a.Explanation, "sensor gw-edge: ") {
		t.Errorf("alert = %+v; want the camera's telnet_scan reported by sensor gw-edge", a)
	}
	var gwAlerts struct{ Alerts []alert.Alert }
	get("/api/v1/alerts?device=gw-edge", &gwAlerts)
	if len(gwAlerts.Alerts) != 0 {
		t.Errorf("the reporting gateway got alerts itself: %+v", gwAlerts.Alerts)
	}
	var m struct {
		Series map[string][]struct {
			Value float64 `json:"value"`
		} `json:"series"`
	}
	waitFor("the gateway's summaries counting the scan become its measurements", func() bool {
		get("/api/v1/devices/gw-edge/measurements?metric=sensor_packets&metric=sensor_signals&metric=sensor_pps&metric=sensor_capture_drops&window=1h", &m)
		sig := m.Series["sensor_signals"]
		return len(m.Series["sensor_packets"]) > 0 && len(m.Series["sensor_pps"]) > 0 && len(sig) > 0 && sig[len(sig)-1].Value >= 1 &&
			len(m.Series["sensor_capture_drops"]) > 0
	})
}
