package metricdetect

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The baselines are learned over hours and days; a server restart must not
// forget them, or every device would be in its warm-up again, silent to a
// surge, while its baseline is learned anew. The detector therefore keeps
// track of the devices whose state changed (and of those it forgot) since
// the last Changes call, and a saved device's state can be restored.

// DeviceState is what the detector knows of one device, as saved and
// restored: its metrics' baselines and its listening ports.
type DeviceState struct {
	LastSeen    time.Time              `json:"last_seen"`
	Series      map[string]SeriesState `json:"series,omitempty"`
	Ports       []string               `json:"ports,omitempty"` // "tcp/22"
	PortReports int                    `json:"port_reports,omitempty"`
}

// SeriesState is one metric's baseline of a device: the samples learned,
// the EWMA of the value and of its absolute deviation, and which of the
// last samples were above the threshold (newest in bit 0).
type SeriesState struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean"`
	Dev  float64 `json:"dev"`
	Hits uint16  `json:"hits,omitempty"`
}

// Changes returns the state of every device observed since the last call
// and the IDs of the devices forgotten since then (idle, or evicted at
// MaxDevices), and starts over. A device forgotten and seen again is among
// the changed, not the gone.
func (d *Detector) Changes() (changed map[string]DeviceState, gone []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	changed = make(map[string]DeviceState, len(d.dirty))
	for id := range d.dirty {
		if dev := d.devices[id]; dev != nil {
			changed[id] = dev.state()
		}
	}
	for id := range d.gone {
		if d.devices[id] == nil {
			gone = append(gone, id)
		}
	}
	slices.Sort(gone)
	clear(d.dirty)
	clear(d.gone)
	return changed, gone
}

// Unsaved puts the devices of a Changes call back among the changes, when
// saving them failed: the next Changes returns them again (with their state
// then).
func (d *Detector) Unsaved(changed map[string]DeviceState, gone []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for id := range changed {
		d.dirty[id] = true
	}
	for _, id := range gone {
		d.gone[id] = true
	}
}

func (dev *deviceState) state() DeviceState {
	st := DeviceState{LastSeen: dev.lastSeen, PortReports: dev.portReports, Series: make(map[string]SeriesState, len(dev.series))}
	for name, s := range dev.series {
		st.Series[name] = SeriesState{N: s.n, Mean: s.mean, Dev: s.dev, Hits: s.hits}
	}
	for k := range dev.ports {
		st.Ports = append(st.Ports, fmt.Sprintf("%s/%d", k.proto, k.port))
	}
	slices.Sort(st.Ports)
	return st
}

// ParseDeviceState decodes a saved DeviceState, refusing one that could
// not have been saved: values that are negative or not finite, unknown
// protocols, ports out of range.
func ParseDeviceState(data []byte) (DeviceState, error) {
	var st DeviceState
	if err := json.Unmarshal(data, &st); err != nil {
		return DeviceState{}, fmt.Errorf("device state: %w", err)
	}
	if st.LastSeen.IsZero() {
		return DeviceState{}, fmt.Errorf("device state: no last_seen")
	}
	if st.PortReports < 0 {
		return DeviceState{}, fmt.Errorf("device state: port_reports %d is negative", st.PortReports)
	}
	for name, s := range st.Series {
		if s.N < 0 || !(s.Mean >= 0) || !(s.Dev >= 0) || math.IsInf(s.Mean, 0) || math.IsInf(s.Dev, 0) {
			return DeviceState{}, fmt.Errorf("device state: series %q: n %d, mean %g, dev %g: want counts and values at least 0 and finite", name, s.N, s.Mean, s.Dev)
		}
	}
	if len(st.Ports) > maxKnownPorts {
		return DeviceState{}, fmt.Errorf("device state: %d ports, at most %d are kept", len(st.Ports), maxKnownPorts)
	}
	for _, p := range st.Ports {
		if _, err := parsePortKey(p); err != nil {
			return DeviceState{}, fmt.Errorf("device state: %w", err)
		}
	}
	return st, nil
}

func parsePortKey(s string) (portKey, error) {
	proto, num, _ := strings.Cut(s, "/")
	port, err := strconv.ParseUint(num, 10, 16)
	if err != nil || (proto != "tcp" && proto != "udp") || strconv.FormatUint(port, 10) != num {
		return portKey{}, fmt.Errorf("port %q: want tcp/N or udp/N, N from 0 to 65535", s)
	}
	return portKey{proto, uint16(port)}, nil
}

// Restore sets the state of device id from a saved one (ParseDeviceState),
// unless the detector has seen the device since it started: what it
// learned then is newer. Series of metrics the detector does not watch are
// dropped, and the above-threshold history is cut to PersistWindow. A
// device idle for IdleTTL by the detector's clock, or by the saved state's
// newest, is forgotten at the next sweep, as if it had never stopped.
func (d *Detector) Restore(id string, st DeviceState) {
	if id == "" {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.devices[id] != nil {
		return
	}
	dev := &deviceState{lastSeen: st.LastSeen, series: map[string]*series{}, ports: map[portKey]bool{}, portReports: st.PortReports}
	for name, s := range st.Series {
		if _, ok := d.metrics[name]; ok {
			dev.series[name] = &series{n: s.N, mean: s.Mean, dev: s.Dev, hits: s.Hits & (1<<d.cfg.PersistWindow - 1)}
		}
	}
	for _, p := range st.Ports {
		if k, err := parsePortKey(p); err == nil {
			dev.ports[k] = true
		}
	}
	d.add(id, dev)
	if st.LastSeen.After(d.now) {
		d.now = st.LastSeen
	}
}
