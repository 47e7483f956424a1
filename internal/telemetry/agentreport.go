package telemetry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/fleetward/fleetward/internal/apperr"
)

// MaxReportBytes bounds an agent report; the broker's packet limit is
// usually lower.
const MaxReportBytes = 256 << 10

// maxReportMetrics bounds the samples one report may produce, so a device
// cannot flood the measurements table with invented metric names.
const maxReportMetrics = 64

// ParseAgentReport turns a device-side metrics report (a JSON object, as
// the agent publishes on devices/{id}/telemetry) into samples. Every
// number in it becomes a metric: top-level numbers under their own name,
// numbers in nested objects under the joined path ("net.bytes_in" becomes
// net_bytes_in); arrays are counted ("destinations": [...] becomes
// destinations_count). Names are lowercased and anything outside a-z, 0-9
// and _ becomes _. A "time" field (RFC 3339) dates the samples; otherwise
// they take now; a top-level "seq" (the agent's message counter) is not a
// metric. Returns Invalid for a report that is not a JSON object,
// is too large, or holds more than 64 metrics.
func ParseAgentReport(deviceID string, now time.Time, payload []byte) ([]Sample, error) {
	if len(payload) > MaxReportBytes {
		return nil, apperr.Errorf(apperr.TooLarge, "report of %d bytes is larger than %d", len(payload), MaxReportBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, apperr.Errorf(apperr.Invalid, "report is not a JSON object: %v", err)
	}
	if doc == nil {
		return nil, apperr.Errorf(apperr.Invalid, "report is not a JSON object")
	}
	at := now
	if ts, ok := doc["time"].(string); ok {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return nil, apperr.InvalidField("time", "must be RFC 3339: %v", err)
		}
		// A device clock far off is not trusted to place the sample.
		if d := t.Sub(now); d < 24*time.Hour && d > -7*24*time.Hour {
			at = t
		}
	}
	values := map[string]float64{}
	if err := flatten("", doc, 0, values); err != nil {
		return nil, err
	}
	if len(values) > maxReportMetrics {
		return nil, apperr.Errorf(apperr.Invalid, "report has %d metrics; at most %d are kept", len(values), maxReportMetrics)
	}
	names := make([]string, 0, len(values))
	for n := range values {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]Sample, 0, len(names))
	for _, n := range names {
		out = append(out, Sample{DeviceID: deviceID, Metric: n, Source: SourceAgent, Time: at.UTC(), Value: values[n]})
	}
	return out, nil
}

// flatten collects the numbers of v under prefix; depth bounds nesting.
func flatten(prefix string, v any, depth int, into map[string]float64) error {
	if depth > 4 {
		return nil
	}
	switch x := v.(type) {
	case map[string]any:
		for k, child := range x {
			if depth == 0 && (k == "time" || k == "seq") { // when, and the agent's sequence number: not measurements
				continue
			}
			name := metricName(prefix, k)
			if name == "" {
				continue
			}
			if err := flatten(name, child, depth+1, into); err != nil {
				return err
			}
			if len(into) > maxReportMetrics {
				return apperr.Errorf(apperr.Invalid, "report has more than %d metrics", maxReportMetrics)
			}
		}
	case []any:
		if prefix != "" {
			into[metricName(prefix, "count")] = float64(len(x))
		}
	case json.Number:
		f, err := x.Float64()
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return apperr.InvalidField(prefix, "%s is not a finite number", x)
		}
		if prefix != "" {
			into[prefix] = f
		}
	case bool:
		if prefix != "" {
			into[prefix] = map[bool]float64{false: 0, true: 1}[x]
		}
	}
	return nil
}

// metricName joins prefix and key into a valid metric name, or "" when
// nothing usable remains or it would be too long.
func metricName(prefix, key string) string {
	var b strings.Builder
	if prefix != "" {
		b.WriteString(prefix)
		b.WriteByte('_')
	}
	for _, r := range strings.ToLower(key) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	name := strings.Trim(b.String(), "_")
	if !validMetric(name) {
		return ""
	}
	return name
}

// String describes a sample for logs.
func (s Sample) String() string {
	return fmt.Sprintf("%s %s=%g at %s (%s)", s.DeviceID, s.Metric, s.Value, s.Time.Format(time.RFC3339), s.Source)
}

// SensorMetricPrefix starts the names of the measurements made from an
// edge sensor's summaries (sensor_packets, sensor_pps, sensor_decode_…).
const SensorMetricPrefix = "sensor_"

// ParseSensorSummary turns an edge sensor's summary (a JSON object, as the
// agent publishes on devices/{id}/sensor) into samples of the reporting
// device, as ParseAgentReport does, each metric's name prefixed with
// SensorMetricPrefix so that a summary can never overwrite the device's
// other measurements. Names that the prefix makes too long are left out.
// Returns the errors of ParseAgentReport.
func ParseSensorSummary(deviceID string, now time.Time, payload []byte) ([]Sample, error) {
	samples, err := ParseAgentReport(deviceID, now, payload)
	if err != nil {
		return nil, err
	}
	out := samples[:0]
	for _, s := range samples {
		s.Metric = SensorMetricPrefix + s.Metric
		if validMetric(s.Metric) {
			out = append(out, s)
		}
	}
	return out, nil
}
