package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/fleetward/fleetward/internal/app"
	"github.com/fleetward/fleetward/internal/demofleet"
	"github.com/fleetward/fleetward/internal/flow"
	"github.com/fleetward/fleetward/internal/inventory"
)

// scanDemoWeakDevices starts the demo's deliberately weak devices on
// loopback addresses, gives their addresses to fleet devices of the right
// class (the rogue one stays unknown), and scans them with the credential
// audit, as an operator would scan a real network: the findings on the
// dashboard come from that real scan.
func scanDemoWeakDevices(ctx context.Context, s *app.Server) (*demofleet.WeakLab, string, error) {
	lab, err := demofleet.StartWeakLab(ctx)
	if err != nil {
		return nil, "", err
	}
	used := map[string]bool{}
	infected := "" // the camera with the Mirai password is the one Mirai took
	for _, svc := range lab.Services {
		if svc.DeviceHint == "" {
			continue
		}
		host, _, _ := net.SplitHostPort(svc.Addr)
		page, err := s.Inventory.ListDevices(ctx, inventory.Filter{Classes: []string{svc.DeviceHint}, Statuses: []string{inventory.StatusActive}, Limit: 20, Sort: "id"})
		if err != nil {
			lab.Close()
			return nil, "", err
		}
		for _, d := range page.Devices {
			if used[d.ID] {
				continue
			}
			used[d.ID] = true
			ips := append([]string{host}, d.IPs...)
			if _, err := s.Inventory.UpdateDevice(ctx, d.ID, inventory.DevicePatch{IPs: &ips}); err != nil {
				lab.Close()
				return nil, "", fmt.Errorf("give %s to demo device %s: %w", host, d.ID, err)
			}
			if svc.Addr == demofleet.WeakCameraTelnet {
				infected = d.ID
			}
			break
		}
	}
	fmt.Printf("  scanning    %s with the default-credential audit (at most 6 logins a minute per host, as on a real network)…\n", demofleet.WeakNetwork)
	rec, err := s.Scan(ctx, app.ScanRequest{Targets: []string{demofleet.WeakNetwork}, Ports: demofleet.WeakPorts, Credentials: demoScanCredentials})
	if err != nil {
		lab.Close()
		return nil, "", fmt.Errorf("demo scan: %w", err)
	}
	fmt.Printf("  scan        %s of %s: %d hosts, %d open ports, %d working default passwords, %d unmanaged\n",
		rec.ID, demofleet.WeakNetwork, rec.Summary.Hosts, rec.Summary.OpenPorts, rec.Summary.Credentials, rec.Summary.Unmanaged)
	return lab, infected, nil
}

// injectDemoInfection plays the part of a network sensor watching the
// infected camera: three minutes of Mirai-like connection records (a
// Telnet scan of its network and retries of an unreachable command
// server) go through the real flow rules, and what they find becomes
// alerts on the camera.
func injectDemoInfection(ctx context.Context, s *app.Server, deviceID string) error {
	d, err := s.Inventory.GetDevice(ctx, deviceID)
	if err != nil {
		return err
	}
	var src netip.Addr
	for _, ip := range d.IPs {
		if a, err := netip.ParseAddr(ip); err == nil && a.Is4() && a.IsPrivate() {
			src = a
			break
		}
	}
	if !src.IsValid() {
		return fmt.Errorf("demo infection: %s has no private IPv4 address", deviceID)
	}
	det := flow.NewDetector(flow.Rules{})
	raised := map[string]bool{}
	for _, c := range demofleet.InfectionFlows(src, time.Now().Add(-3*time.Minute), 3*time.Minute, 7) {
		for _, sig := range det.Observe(c) {
			a, err := s.RaiseAlert(ctx, sig)
			if err != nil {
				return err
			}
			raised[a.ID] = true
		}
	}
	fmt.Printf("  detection   %s (%s) infected: %d alerts from a Telnet scan and C2 retries (%s/alerts)\n", deviceID, src, len(raised), s.URL)
	return nil
}

// demoScanCredentials is the demo scan's credential mode.
const demoScanCredentials = "default"
