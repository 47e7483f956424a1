package demofleet

import (
	"embed"
	"io/fs"

	"github.com/fleetward/fleetward/internal/inventory"
)

// advisoryFiles are the advisories the demo imports, written for the demo
// from public facts: CVE-2023-1389 (TP-Link Archer AX21 before 1.1.4, used
// by Mirai variants) as an NVD API 2.0 record, and its CISA KEV entry.
//
//go:embed advisories/*.json
var advisoryFiles embed.FS

// Advisories returns the demo's advisory files by name.
func Advisories() map[string][]byte {
	out := map[string][]byte{}
	names, _ := fs.Glob(advisoryFiles, "advisories/*.json")
	for _, n := range names {
		b, _ := advisoryFiles.ReadFile(n)
		out[n] = b
	}
	return out
}

// KEVRouter is the demo's guest Wi-Fi router that was never updated: a
// TP-Link Archer AX21 on firmware 1.1.2, which CVE-2023-1389 (in CISA's
// KEV catalog, exploited by Mirai variants) affects.
func KEVRouter() inventory.Device {
	return inventory.Device{ID: "hq-rtr-guest", Name: "HQ guest Wi-Fi router", Class: inventory.ClassRouter, Vendor: "TP-Link",
		Model: "Archer AX21 v1.20", Serial: "22C4105000123", FirmwareVersion: "1.1.2 Build 20220714", OS: "Embedded Linux",
		OSVersion: "4.1.52", MACs: []string{"d0:37:45:1a:2b:3c"}, IPs: []string{"10.1.40.1"}, Location: inventory.Location{Site: Sites()[0].ID},
		Segment: SegmentGuest, Status: inventory.StatusActive, Tags: []string{"wifi", "guest-wifi"},
		Attributes: map[string]string{"busybox": "1.19.4"}}
}
