package main

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/fleetward/fleetward/internal/alert"
	"github.com/fleetward/fleetward/internal/app"
	"github.com/fleetward/fleetward/internal/demofleet"
	"github.com/fleetward/fleetward/internal/flow"
	"github.com/fleetward/fleetward/internal/inventory"
)

// scanDemoWeakDevices starts the demo's deliberately weak devices on
// loopback addresses (a /28 no other demo on the host holds), gives their
// addresses to fleet devices of the right class (the rogue one stays
// unknown), and scans that /28 with the credential audit, as an operator
// would scan a real network: the findings on the dashboard come from that
// real scan.
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
			if svc.MiraiLogin {
				infected = d.ID
			}
			break
		}
	}
	fmt.Printf("  scanning    %s with the default-credential audit (at most 6 logins a minute per host, as on a real network)…\n", lab.Network)
	rec, err := s.Scan(ctx, app.ScanRequest{Targets: []string{lab.Network}, Ports: demofleet.WeakPorts, Credentials: demoScanCredentials})
	if err != nil {
		lab.Close()
		return nil, "", fmt.Errorf("demo scan: %w", err)
	}
	fmt.Printf("  scan        %s of %s: %d hosts, %d open ports, %d working default passwords, %d unmanaged\n",
		rec.ID, lab.Network, rec.Summary.Hosts, rec.Summary.OpenPorts, rec.Summary.Credentials, rec.Summary.Unmanaged)
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
	fmt.Printf("  detection   flow sensor: %s (%s): %s from a Telnet scan and C2 retries in its connection records (%s/alerts)\n", deviceID, src, plural(len(raised), "alert"), s.URL)
	return nil
}

// detectDemoInfection plays the part of a packet sensor on the infected
// camera's uplink: a synthetic capture of the camera and eleven devices of
// its site (their inventory addresses), half an hour of routine traffic
// ending now (longer at a site too quiet to train on in that time), the
// camera a Mirai bot for the last five minutes, goes
// through the real packet detector (KitNET trains on the benign start).
// Its signals become alerts and its score summaries the devices' anomaly
// score measurements, which the device pages plot.
func detectDemoInfection(ctx context.Context, s *app.Server, deviceID string) error {
	cam, err := s.Inventory.GetDevice(ctx, deviceID)
	if err != nil {
		return err
	}
	page, err := s.Inventory.ListDevices(ctx, inventory.Filter{Sites: []string{cam.Location.Site}, Statuses: []string{inventory.StatusActive}, Limit: 100, Sort: "id"})
	if err != nil {
		return err
	}
	devs, err := demofleet.CaptureDevicesOf(append([]inventory.Device{cam}, page.Devices...), deviceID, 11)
	if err != nil {
		return err
	}
	frames, err := demofleet.InfectionCapture{Devices: devs, End: time.Now(), Seed: 7}.Frames()
	if err != nil {
		return err
	}
	var sigs []alert.Signal
	var sums []alert.ScoreSummary
	res, err := frames.Detect(func(ss []alert.Signal) { sigs = append(sigs, ss...) }, func(ss []alert.ScoreSummary) { sums = append(sums, ss...) })
	if err != nil {
		return err
	}
	raised := map[string]bool{}
	behaviours := map[string]bool{}
	for _, sig := range sigs {
		a, err := s.RaiseAlert(ctx, sig)
		if err != nil {
			return err
		}
		raised[a.ID] = true
		if a.DeviceID == deviceID {
			behaviours[a.Behaviour] = true
		}
	}
	for i := range sums {
		sums[i].Sensor = "demo-uplink"
	}
	rep, err := s.RecordScores(ctx, sums)
	if err != nil {
		return err
	}
	peak := 0.0
	for _, sm := range sums {
		if sm.SrcIP == devs[0].IP.String() {
			peak = max(peak, sm.MaxScore)
		}
	}
	fmt.Printf("  detection   packet sensor: %d frames of %d devices scored in %s; %s (%s) scored up to %.3g against a threshold of %.3g; %s, on the camera: %s (%s/devices/%s)\n",
		res.Packets, len(devs), time.Duration(res.Seconds*float64(time.Second)).Round(time.Millisecond), deviceID, devs[0].IP, peak, res.Threshold, plural(len(raised), "alert"), strings.Join(slices.Sorted(maps.Keys(behaviours)), ", "), s.URL, deviceID)
	if rep.Unresolved > 0 {
		slog.Debug("demo scores of hosts outside the inventory", "summaries", rep.Unresolved)
	}
	return nil
}

// demoScanCredentials is the demo scan's credential mode.
const demoScanCredentials = "default"
