package app

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/inventory"
)

// inventoryReport is what an agent publishes on devices/{id}/inventory
// (internal/agent.Inventory): what the device says it runs.
type inventoryReport struct {
	Firmware       string `json:"firmware"`
	OSName         string `json:"os_name"`
	OSVersion      string `json:"os_version"`
	Kernel         string `json:"kernel"`
	ConfigDigest   string `json:"config_digest"`
	ListeningPorts []struct {
		Proto string `json:"proto"`
		Addr  string `json:"addr"`
		Port  uint16 `json:"port"`
	} `json:"listening_ports"`
}

// maxReportedPorts bounds the ports kept from one report.
const maxReportedPorts = 256

// applyInventoryReport brings the inventory up to date with what a device
// reports about itself: firmware, OS and version, configuration digest,
// and (as attributes) kernel and listening ports. Only a change is
// written, attributed to the device, so a device that reports the same
// facts every start adds nothing to the ledger. The report is what the
// device claims; the audit of a later stage compares it with what a scan
// sees.
func (s *Server) applyInventoryReport(ctx context.Context, m deviceMessage) {
	log := s.Log.With("component", "telemetry", "device", m.deviceID)
	var rep inventoryReport
	if err := json.Unmarshal(m.payload, &rep); err != nil {
		s.deviceMsgs.bad.Add(1)
		log.Warn("device inventory report refused", "err", err)
		return
	}
	ctx = actor.With(context.WithoutCancel(ctx), actor.Actor{Name: "device:" + m.deviceID, Remote: "mqtt"})
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	d, err := s.Inventory.GetDevice(ctx, m.deviceID)
	if err != nil {
		log.Warn("device inventory report for a device not in the inventory", "err", err)
		return
	}
	var p inventory.DevicePatch
	changed := false
	set := func(field **string, have, want string) {
		want = strings.TrimSpace(want)
		if want != "" && want != have {
			*field = &want
			changed = true
		}
	}
	set(&p.FirmwareVersion, d.FirmwareVersion, rep.Firmware)
	set(&p.OS, d.OS, rep.OSName)
	set(&p.OSVersion, d.OSVersion, rep.OSVersion)
	set(&p.ConfigDigest, d.ConfigDigest, normalizeDigest(rep.ConfigDigest))
	attrs := maps.Clone(d.Attributes)
	if attrs == nil {
		attrs = map[string]string{}
	}
	if k := strings.TrimSpace(rep.Kernel); k != "" && attrs["kernel"] != k {
		attrs["kernel"] = k
		changed = true
	}
	var ports []string
	for i, lp := range rep.ListeningPorts {
		if i == maxReportedPorts {
			break
		}
		ports = append(ports, fmt.Sprintf("%s/%d", lp.Proto, lp.Port))
	}
	slices.Sort(ports)
	ports = slices.Compact(ports)
	if joined := strings.Join(ports, " "); rep.ListeningPorts != nil && attrs["listening_ports"] != joined {
		attrs["listening_ports"] = joined
		changed = true
	}
	if !changed {
		return
	}
	p.Attributes = &attrs
	// A field the inventory refuses (a malformed version string, say) is
	// left out and the rest applied: one bad fact must not hide the others.
	for range 4 {
		_, err = s.Inventory.UpdateDevice(ctx, m.deviceID, p)
		e := apperr.As(err)
		if err == nil || e == nil || e.Code != apperr.Invalid || !dropField(&p, e.Field) {
			break
		}
		s.deviceMsgs.bad.Add(1)
		log.Warn("device inventory report: field refused", "field", e.Field, "err", err)
	}
	if err != nil {
		log.Warn("device inventory report not applied", "err", err)
	}
}

// dropField clears the patch field the inventory named, and reports
// whether it knew it.
func dropField(p *inventory.DevicePatch, field string) bool {
	switch field {
	case "firmware_version":
		p.FirmwareVersion = nil
	case "os":
		p.OS = nil
	case "os_version":
		p.OSVersion = nil
	case "config_digest":
		p.ConfigDigest = nil
	case "attributes":
		p.Attributes = nil
	default:
		return false
	}
	return true
}

// normalizeDigest writes a bare hex SHA-256 (as the agent sends it) the
// way the inventory keeps digests: "sha256:<hex>".
func normalizeDigest(d string) string {
	d = strings.ToLower(strings.TrimSpace(d))
	if len(d) == 64 && strings.Trim(d, "0123456789abcdef") == "" {
		return "sha256:" + d
	}
	return d
}
