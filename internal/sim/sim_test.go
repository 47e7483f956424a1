package sim_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/app"
	"github.com/fleetward/fleetward/internal/auth"
	"github.com/fleetward/fleetward/internal/sim"
	"github.com/fleetward/fleetward/internal/telemetry"
)

// TestSimulatedFleetEnrolsOverESTAndReportsOverMTLS runs a real server and
// a simulated fleet of every class against it: each device registers,
// gets its own token and certificate over EST, holds its own TLS session
// with the broker, and its reports reach the inventory and the
// measurements intact.
func TestSimulatedFleetEnrolsOverESTAndReportsOverMTLS(t *testing.T) {
	dir := t.TempDir()
	ctx := actor.With(context.Background(), actor.Actor{Name: "test"})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := app.Start(ctx, app.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0",
		TelemetryInterval: 500 * time.Millisecond, ESTRatePerMinute: 6000,
		MQTT: app.MQTTLimits{ConnectAttemptsPerMinute: 6000}, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	token, _, err := s.Auth.CreateToken(ctx, "sim", auth.RoleOperator, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pem, _ := os.ReadFile(filepath.Join(dir, "tls", "ca.crt"))
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	const n = 24
	sm, err := sim.New(sim.Config{Server: s.URL, MQTTAddr: s.MQTTAddr(), Token: token, CAPEM: pem,
		Devices: sim.Generate("t", n), Register: true, Speed: 10, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sm.Run(rctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for len(s.Broker.Sessions()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s: %d sessions, stats %+v", len(s.Broker.Sessions()), sm.Stats())
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // a few reports from every class but the slowest
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := sm.Stats()
	if st.Enrolled != n || st.EnrolFailures != 0 || st.ConnectErrors != 0 || st.Messages < n {
		t.Errorf("stats %+v: want %d enrolled, no failures, at least one message each", st, n)
	}
	serials := map[string]bool{}
	for _, d := range sim.Generate("t", n) {
		certs, err := s.CA.DeviceCertificates(ctx, d.ID)
		if err != nil || len(certs) != 1 {
			t.Fatalf("%s: certificates %v, %v; want exactly one", d.ID, certs, err)
		}
		serials[certs[0].Serial] = true
		dev, err := s.Inventory.GetDevice(ctx, d.ID)
		if err != nil || dev.Class != d.Profile.Class || dev.FirmwareVersion != d.Profile.Firmware {
			t.Errorf("%s in the inventory: %+v, %v", d.ID, dev, err)
		}
	}
	if len(serials) != n {
		t.Errorf("%d distinct certificates for %d devices", len(serials), n)
	}
	plc := "t-plc-0004"
	series, err := s.Telemetry.Series(ctx, plc, []string{"process_cycle_ms", telemetry.MetricMessagesIn}, time.Now().Add(-time.Minute))
	if err != nil || len(series["process_cycle_ms"]) == 0 || len(series[telemetry.MetricMessagesIn]) == 0 {
		t.Errorf("measurements of %s: %v, %v; want its reports and the broker's counts", plc, series, err)
	}
	for _, line := range strings.Split(metricsText(t, s.URL, token, roots), "\n") {
		if strings.HasPrefix(line, "fleetward_device_messages_refused_total ") && line != "fleetward_device_messages_refused_total 0" {
			t.Errorf("the server refused simulated reports: %s", line)
		}
	}
}

func metricsText(t *testing.T, base, token string, roots *x509.CertPool) string {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
