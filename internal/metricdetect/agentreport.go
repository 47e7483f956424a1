package metricdetect

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/telemetry"
)

// maxReportPorts bounds the listening ports one report may list.
const maxReportPorts = 4096

// AgentObservation turns the samples telemetry.ParseAgentReport made of one
// agent report into an Observation: the counters the agent reports in
// "delta" cover "delta_seconds" (0 in an agent's first report, whose
// counters are then skipped). Returns false when samples is empty.
func AgentObservation(samples []telemetry.Sample) (Observation, bool) {
	if len(samples) == 0 {
		return Observation{}, false
	}
	o := Observation{DeviceID: samples[0].DeviceID, Time: samples[0].Time, Values: make(map[string]float64, len(samples))}
	for _, s := range samples {
		o.Values[s.Metric] = s.Value
	}
	if sec := o.Values["delta_seconds"]; sec > 0 && sec < 366*24*3600 {
		o.Interval = time.Duration(sec * float64(time.Second))
	}
	return o, true
}

// ParseListeningPorts reads the "listening_ports" of an agent report (a
// JSON object, as the agent publishes on devices/{id}/telemetry). It
// returns false when the report has no such list, so a report that does
// not speak of ports is not taken for one listing none. Returns Invalid
// naming the field for a list that is not one of {proto, addr, port}
// objects with proto tcp or udp, or that has more than 4096 entries.
func ParseListeningPorts(payload []byte) ([]Port, bool, error) {
	if len(payload) > telemetry.MaxReportBytes {
		return nil, false, apperr.Errorf(apperr.TooLarge, "report of %d bytes is larger than %d", len(payload), telemetry.MaxReportBytes)
	}
	var doc struct {
		Ports *[]json.RawMessage `json:"listening_ports"`
	}
	if err := json.Unmarshal(payload, &doc); err != nil {
		return nil, false, apperr.Errorf(apperr.Invalid, "report is not a JSON object: %v", err)
	}
	if doc.Ports == nil {
		return nil, false, nil
	}
	if len(*doc.Ports) > maxReportPorts {
		return nil, false, apperr.InvalidField("listening_ports", "%d entries; at most %d", len(*doc.Ports), maxReportPorts)
	}
	out := make([]Port, 0, len(*doc.Ports))
	for i, raw := range *doc.Ports {
		field := "listening_ports[" + strconv.Itoa(i) + "]"
		var p Port
		dec := json.NewDecoder(bytes.NewReader(raw))
		if err := dec.Decode(&p); err != nil {
			return nil, false, apperr.InvalidField(field, "must be {\"proto\", \"addr\", \"port\"} with a port from 0 to 65535: %v", err)
		}
		if p.Proto != "tcp" && p.Proto != "udp" {
			return nil, false, apperr.InvalidField(field+".proto", "%q: tcp or udp", p.Proto)
		}
		if len(p.Addr) > 64 {
			return nil, false, apperr.InvalidField(field+".addr", "at most 64 bytes")
		}
		out = append(out, p)
	}
	return out, true, nil
}
