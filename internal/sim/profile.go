package sim

import (
	"encoding/json"
	"math/rand/v2"
	"time"
)

// Profile is how one class of simulated device behaves on the wire: how
// often it reports and how large its reports are. The figures follow what
// such devices send in practice: a PLC polls its process every second, a
// camera reports motion and stream health every few seconds, a battery
// sensor wakes twice a minute.
type Profile struct {
	Class    string
	Vendor   string
	Model    string
	Firmware string
	OS       string
	// Interval between telemetry reports; each is jittered by ±20 %.
	Interval time.Duration
	// Size is the approximate telemetry payload in bytes.
	Size int
	// Ports the device listens on, reported in its inventory.
	Ports []int
}

// Profiles are the simulated device classes.
var Profiles = map[string]Profile{
	"camera":     {Class: "camera", Vendor: "Axis Communications", Model: "M3106-L Mk II", Firmware: "10.12.199", OS: "AXIS OS", Interval: 5 * time.Second, Size: 768, Ports: []int{80, 443, 554}},
	"thermostat": {Class: "thermostat", Vendor: "Honeywell", Model: "T6 Pro", Firmware: "3.4.1", OS: "FreeRTOS", Interval: 60 * time.Second, Size: 128, Ports: []int{}},
	"plc":        {Class: "plc", Vendor: "Siemens", Model: "S7-1215C", Firmware: "4.5.2", OS: "Siemens RTOS", Interval: time.Second, Size: 256, Ports: []int{102, 502}},
	"sensor":     {Class: "sensor", Vendor: "Shelly", Model: "H&T Gen3", Firmware: "1.3.2", OS: "Zephyr", Interval: 30 * time.Second, Size: 96, Ports: []int{}},
	"gateway":    {Class: "gateway", Vendor: "MikroTik", Model: "hAP ax2", Firmware: "7.15.3", OS: "RouterOS", Interval: 10 * time.Second, Size: 512, Ports: []int{22, 443, 8291}},
}

// profileOrder cycles the classes for generated fleets.
var profileOrder = []string{"camera", "sensor", "thermostat", "plc", "gateway", "sensor", "camera", "sensor"}

// profileForClass maps an inventory class to the closest profile.
func profileForClass(class string) Profile {
	if p, ok := Profiles[class]; ok {
		return p
	}
	switch class {
	case "controller", "hvac", "lock":
		return Profiles["plc"]
	case "router", "ap":
		return Profiles["gateway"]
	case "doorbell", "tv":
		return Profiles["camera"]
	}
	return Profiles["sensor"]
}

// jitter returns d changed by up to ±20 %.
func jitter(r *rand.Rand, d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*r.Float64()))
}

// telemetryReport makes one device-side metrics report of about the
// profile's size, in the agent's format.
func telemetryReport(r *rand.Rand, p Profile, seq uint64, now time.Time, bytesIn, bytesOut uint64) []byte {
	rep := map[string]any{
		"seq":             seq,
		"time":            now.UTC().Format(time.RFC3339Nano),
		"delta":           map[string]uint64{"bytes_in": bytesIn, "bytes_out": bytesOut, "packets_in": bytesIn / 300, "packets_out": bytesOut / 300},
		"established_tcp": 1 + r.IntN(3),
	}
	switch p.Class {
	case "camera":
		rep["video"] = map[string]any{"fps": 25 + r.IntN(5), "bitrate_kbps": 2000 + r.IntN(1500), "motion": r.IntN(10) == 0}
	case "thermostat":
		rep["climate"] = map[string]any{"temperature_c": 20 + r.Float64()*3, "setpoint_c": 21.5, "humidity_pct": 35 + r.Float64()*10}
	case "plc":
		rep["process"] = map[string]any{"cycle_ms": 8 + r.Float64()*4, "inputs": r.IntN(1 << 16), "outputs": r.IntN(1 << 16)}
	case "gateway":
		rep["links"] = map[string]any{"clients": 5 + r.IntN(40), "cpu_pct": 10 + r.Float64()*30, "wan_rtt_ms": 8 + r.Float64()*20}
	default:
		rep["environment"] = map[string]any{"temperature_c": 18 + r.Float64()*6, "battery_pct": 60 + r.IntN(40)}
	}
	b, _ := json.Marshal(rep)
	if pad := p.Size - len(b); pad > 16 {
		rep["note"] = padding(pad - 10)
		b, _ = json.Marshal(rep)
	}
	return b
}

func padding(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	out := make([]byte, n)
	for i := range out {
		out[i] = alphabet[i%len(alphabet)]
	}
	return string(out)
}

// inventoryReport is the device's self-description, in the agent's format.
func inventoryReport(d Device) []byte {
	p := d.Profile
	firmware, osName, osVersion := p.Firmware, p.OS, p.Firmware
	if d.Firmware != "" || d.OS != "" {
		firmware, osName, osVersion = d.Firmware, d.OS, d.OSVersion
	}
	ports := make([]map[string]any, 0, len(p.Ports))
	for _, port := range p.Ports {
		ports = append(ports, map[string]any{"proto": "tcp", "addr": "0.0.0.0", "port": port})
	}
	b, _ := json.Marshal(map[string]any{
		"device_id": d.ID, "firmware": firmware, "os_name": osName, "os_version": osVersion,
		"kernel": "", "listening_ports": ports, "config_digest": "",
	})
	return b
}
