package main

import (
	"context"
	"fmt"
	"net"

	"github.com/fleetward/fleetward/internal/app"
	"github.com/fleetward/fleetward/internal/demofleet"
	"github.com/fleetward/fleetward/internal/inventory"
)

// scanDemoWeakDevices starts the demo's deliberately weak devices on
// loopback addresses, gives their addresses to fleet devices of the right
// class (the rogue one stays unknown), and scans them with the credential
// audit, as an operator would scan a real network: the findings on the
// dashboard come from that real scan.
func scanDemoWeakDevices(ctx context.Context, s *app.Server) (*demofleet.WeakLab, error) {
	lab, err := demofleet.StartWeakLab(ctx)
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	for _, svc := range lab.Services {
		if svc.DeviceHint == "" {
			continue
		}
		host, _, _ := net.SplitHostPort(svc.Addr)
		page, err := s.Inventory.ListDevices(ctx, inventory.Filter{Classes: []string{svc.DeviceHint}, Statuses: []string{inventory.StatusActive}, Limit: 20, Sort: "id"})
		if err != nil {
			lab.Close()
			return nil, err
		}
		for _, d := range page.Devices {
			if used[d.ID] {
				continue
			}
			used[d.ID] = true
			ips := append([]string{host}, d.IPs...)
			if _, err := s.Inventory.UpdateDevice(ctx, d.ID, inventory.DevicePatch{IPs: &ips}); err != nil {
				lab.Close()
				return nil, fmt.Errorf("give %s to demo device %s: %w", host, d.ID, err)
			}
			break
		}
	}
	rec, err := s.Scan(ctx, app.ScanRequest{Targets: []string{demofleet.WeakNetwork}, Ports: demofleet.WeakPorts, Credentials: demoScanCredentials})
	if err != nil {
		lab.Close()
		return nil, fmt.Errorf("demo scan: %w", err)
	}
	fmt.Printf("  scan        %s of %s: %d hosts, %d open ports, %d working default passwords, %d unmanaged\n",
		rec.ID, demofleet.WeakNetwork, rec.Summary.Hosts, rec.Summary.OpenPorts, rec.Summary.Credentials, rec.Summary.Unmanaged)
	return lab, nil
}

// demoScanCredentials is the demo scan's credential mode.
const demoScanCredentials = "none"
