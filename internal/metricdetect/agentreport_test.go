package metricdetect

import (
	"strings"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/telemetry"
)

// agentReport is a report as internal/agent publishes it.
const agentReport = `{"device_id":"gw-1","seq":7,"time":"2026-11-28T10:00:00Z",
	"totals":{"bytes_in":900000,"bytes_out":4000000,"packets_in":900,"packets_out":3000},
	"delta":{"bytes_in":9000,"bytes_out":600000,"packets_in":90,"packets_out":300},"delta_seconds":30,
	"listening_ports":[{"proto":"tcp","addr":"0.0.0.0","port":22},{"proto":"udp","addr":"::","port":5683}],
	"established_tcp":3,"remote_addresses":["10.0.0.9","52.1.2.3"],"spool_dropped":0,"skipped_lines":0}`

func TestAgentObservationTakesTheReportsCountersOverItsInterval(t *testing.T) {
	now := time.Date(2026, 11, 28, 10, 0, 5, 0, time.UTC)
	samples, err := telemetry.ParseAgentReport("gw-1", now, []byte(agentReport))
	if err != nil {
		t.Fatal(err)
	}
	o, ok := AgentObservation(samples)
	if !ok || o.DeviceID != "gw-1" || o.Interval != 30*time.Second || !o.Time.Equal(now.Add(-5*time.Second)) {
		t.Fatalf("observation = %+v, want gw-1 at the report's time over 30 s", o)
	}
	for metric, want := range map[string]float64{"delta_bytes_out": 600000, "delta_packets_out": 300, "remote_addresses_count": 2, "established_tcp": 3} {
		if o.Values[metric] != want {
			t.Errorf("%s = %v, want %v", metric, o.Values[metric], want)
		}
	}
	first, _ := telemetry.ParseAgentReport("gw-1", now, []byte(`{"delta":{"bytes_out":0},"delta_seconds":0,"established_tcp":1}`))
	if o, _ := AgentObservation(first); o.Interval != 0 {
		t.Errorf("an agent's first report (delta_seconds 0) has interval %s, want 0 so its counters are skipped", o.Interval)
	}
	if _, ok := AgentObservation(nil); ok {
		t.Error("no samples made an observation")
	}
}

func TestParseListeningPorts(t *testing.T) {
	ports, ok, err := ParseListeningPorts([]byte(agentReport))
	if err != nil || !ok || len(ports) != 2 || ports[0] != (Port{"tcp", "0.0.0.0", 22}) || ports[1] != (Port{"udp", "::", 5683}) {
		t.Fatalf("ParseListeningPorts = %+v, %v, %v", ports, ok, err)
	}
	if ports, ok, err := ParseListeningPorts([]byte(`{"established_tcp":1}`)); err != nil || ok || ports != nil {
		t.Errorf("a report without listening_ports = %+v, %v, %v; want none and false", ports, ok, err)
	}
	if ports, ok, err := ParseListeningPorts([]byte(`{"listening_ports":[]}`)); err != nil || !ok || len(ports) != 0 {
		t.Errorf("an empty list = %+v, %v, %v; want none and true", ports, ok, err)
	}
	for _, c := range []struct{ name, payload, field string }{
		{"not JSON", `listening`, ""},
		{"not a list", `{"listening_ports":22}`, ""},
		{"a port out of range", `{"listening_ports":[{"proto":"tcp","addr":"::","port":70000}]}`, "listening_ports[0]"},
		{"a port that is a string", `{"listening_ports":[{"proto":"tcp","addr":"::","port":"22"}]}`, "listening_ports[0]"},
		{"an unknown protocol", `{"listening_ports":[{"proto":"tcp","port":22},{"proto":"sctp","port":9}]}`, "listening_ports[1].proto"},
		{"null entry", `{"listening_ports":[null]}`, "listening_ports[0].proto"},
		{"an address too long", `{"listening_ports":[{"proto":"tcp","addr":"` + strings.Repeat("a", 65) + `","port":1}]}`, "listening_ports[0].addr"},
		{"too many ports", `{"listening_ports":[` + strings.Repeat(`{"proto":"tcp","port":1},`, 4096) + `{"proto":"tcp","port":1}]}`, "listening_ports"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := ParseListeningPorts([]byte(c.payload))
			if e := apperr.As(err); e == nil || e.Field != c.field {
				t.Fatalf("ParseListeningPorts = %v, want an Invalid error naming %q", err, c.field)
			}
		})
	}
}

func FuzzParseListeningPorts(f *testing.F) {
	f.Add([]byte(agentReport))
	f.Add([]byte(`{"listening_ports":[{"proto":"udp","addr":"127.0.0.1","port":0}]}`))
	f.Add([]byte(`{"listening_ports":[{}]}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		ports, ok, err := ParseListeningPorts(payload)
		if err != nil {
			if ok || ports != nil {
				t.Fatalf("an error came with ports %+v (ok %v)", ports, ok)
			}
			return
		}
		d, _ := New(Config{PortWarmup: 1})
		d.ObservePorts("d", time.Now(), nil) // the warm-up: every port after it is new
		for _, p := range ports {
			if p.Proto != "tcp" && p.Proto != "udp" {
				t.Fatalf("parsed port %+v has protocol %q", p, p.Proto)
			}
		}
		for _, s := range d.ObservePorts("d", time.Now(), ports) {
			if err := s.Validate(); err != nil {
				t.Fatalf("signal %+v does not validate: %v", s, err)
			}
		}
	})
}

// BenchmarkParseListeningPorts measures the second read of an agent
// report the port check costs on top of telemetry.ParseAgentReport.
func BenchmarkParseListeningPorts(b *testing.B) {
	b.SetBytes(int64(len(agentReport)))
	for range b.N {
		if _, _, err := ParseListeningPorts([]byte(agentReport)); err != nil {
			b.Fatal(err)
		}
	}
}
