package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/app"
	"github.com/fleetward/fleetward/internal/audit"
	"github.com/fleetward/fleetward/internal/auth"
	"github.com/fleetward/fleetward/internal/demofleet"
	"github.com/fleetward/fleetward/internal/inventory"
	"github.com/fleetward/fleetward/internal/scan"
)

func TestScanCommandRefusesBadInputBeforeScanning(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no target", nil, "at least one target"},
		{"a public address", []string{"8.8.8.8"}, "address 8.8.8.8 is outside the scan scope"},
		{"a public range", []string{"1.1.1.0/24"}, "address 1.1.1.0 is outside the scan scope"},
		{"an allowance that does not cover the target", []string{"--allow", "198.51.100.0/24", "203.0.113.1"}, "address 203.0.113.1"},
		{"a bad allowance", []string{"--allow", "nope", "10.0.0.1"}, `--allow "nope"`},
		{"a bad port list", []string{"--ports", "0", "127.0.0.1"}, "--ports"},
		{"a zero rate", []string{"--rate", "0", "127.0.0.1"}, "must be positive"},
		{"too many addresses", []string{"10.0.0.0/8"}, "more than 65536"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := rootCommand().Run(context.Background(), append([]string{"fleetward", "scan"}, tt.args...))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want containing %q", err, tt.want)
			}
		})
	}
}

func TestScanCommandPrintsATablePerHost(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				c.Write([]byte{255, 253, 1})
				c.Read(make([]byte, 3))
				c.Write([]byte("router login: "))
				io.Copy(io.Discard, c)
			}()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	res, err := scan.Scan(context.Background(), []netip.Addr{netip.MustParseAddr("127.0.0.1")}, scan.Options{Ports: []int{port}})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	var out bytes.Buffer
	printScan(&out, res)
	for _, want := range []string{"127.0.0.1\n", fmt.Sprintf("%d/tcp", port), "telnet", "PLAINTEXT", "router login:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	// The command itself, end to end, on the same listener.
	if err := rootCommand().Run(context.Background(), []string{"fleetward", "scan", "--ports", fmt.Sprint(port), "--json", "127.0.0.1"}); err != nil {
		t.Fatalf("fleetward scan: %v", err)
	}
}

// TestScanCommandRecordsInTheLedgerWhoRanIt: with --record the scan is a
// ledger entry with the user who ran it, and the unknown address becomes
// an unmanaged device with its Telnet finding.
func TestScanCommandRecordsInTheLedgerWhoRanIt(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go demofleet.ServeTelnetLogin(ln, "(none) login: ", "root", "xc3511")
	dir := t.TempDir()
	port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	if err := rootCommand().Run(context.Background(), []string{"fleetward", "scan", "--ports", port, "--record", "--data", dir, "--json", "127.0.0.1"}); err != nil {
		t.Fatalf("fleetward scan --record: %v", err)
	}
	ctx := context.Background()
	core, err := app.OpenCore(ctx, app.Config{DataDir: dir, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer core.Close()
	entries, err := core.Ledger.Entries(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var scans []string
	for _, e := range entries {
		if e.Type == audit.EventScanCompleted {
			scans = append(scans, e.Actor)
		}
	}
	if len(scans) != 1 || !strings.HasPrefix(scans[0], "cli:") {
		t.Fatalf("scan entries in the ledger by %v, want one by the CLI user", scans)
	}
	page, err := core.Inventory.ListDevices(ctx, inventory.Filter{Statuses: []string{inventory.StatusUnmanaged}})
	if err != nil || len(page.Devices) != 1 || page.Devices[0].IPs[0] != "127.0.0.1" || page.Devices[0].RiskScore == 0 {
		t.Fatalf("unmanaged devices = %+v, %v; want 127.0.0.1 with a risk score", page.Devices, err)
	}
}

// TestFindingsCommandListsAuditsAndSuppressesThroughTheAPI drives the
// findings commands against a running server.
func TestFindingsCommandListsAuditsAndSuppressesThroughTheAPI(t *testing.T) {
	dir := t.TempDir()
	ctx := actor.With(context.Background(), actor.Actor{Name: "test"})
	s, err := app.Start(ctx, app.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	token, _, err := s.Auth.CreateToken(ctx, "cli", auth.RoleAdmin, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []inventory.Device{
		{ID: "cam-a", Name: "A", Class: "camera", Vendor: "Acme", Model: "C1", FirmwareVersion: "1.0"},
		{ID: "cam-b", Name: "B", Class: "camera", Vendor: "Acme", Model: "C1", FirmwareVersion: "2.0"},
	} {
		if _, err := s.Inventory.CreateDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	client := []string{"--server", s.URL, "--token", token, "--cacert", filepath.Join(dir, "tls", "ca.crt")}
	run := func(args ...string) string {
		t.Helper()
		old := os.Stdout
		r, w, _ := os.Pipe()
		os.Stdout = w
		err := rootCommand().Run(context.Background(), append([]string{"fleetward", "findings"}, args...))
		w.Close()
		os.Stdout = old
		out, _ := io.ReadAll(r)
		if err != nil {
			t.Fatalf("findings %v: %v", args, err)
		}
		return string(out)
	}
	if out := run(append([]string{"audit"}, client...)...); !strings.Contains(out, `"findings": 1`) {
		t.Fatalf("audit printed %s; want one finding", out)
	}
	out := run(append([]string{"list", "--json"}, client...)...)
	var f audit.Finding
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &f); err != nil || f.Check != audit.CheckFirmwareOutdated || f.DeviceID != "cam-a" {
		t.Fatalf("list --json = %q (%v); want cam-a's outdated firmware", out, err)
	}
	until := time.Now().AddDate(0, 1, 0).Format(time.DateOnly)
	if out := run(append([]string{"suppress", f.ID, "--reason", "update scheduled", "--until", until}, client...)...); !strings.Contains(out, "suppressed "+f.ID) {
		t.Errorf("suppress printed %q", out)
	}
	if out := run(append([]string{"list"}, client...)...); strings.Contains(out, f.ID) {
		t.Errorf("the suppressed finding is still listed:\n%s", out)
	}
}
