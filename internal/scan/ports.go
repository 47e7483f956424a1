package scan

import (
	"strconv"
	"strings"

	"github.com/fleetward/fleetward/internal/apperr"
)

// DefaultTCPPorts are the TCP ports scanned when no list is given: the
// management, video and field-bus ports IoT devices most often leave open.
var DefaultTCPPorts = []int{23, 2323, 22, 80, 443, 8080, 8443, 554, 1883, 8883, 502, 5000, 7547, 37777, 34567}

// DefaultUDPPorts are the UDP ports of the default list: CoAP, SSDP and
// BACnet/IP, each asked its protocol's discovery question (udpProbes).
var DefaultUDPPorts = []int{5683, 1900, 47808}

// tcpServiceHints names the service usually found on a TCP port; it orders
// the probes and names ports that no probe recognised.
var tcpServiceHints = map[int]string{
	23: "telnet", 2323: "telnet", 22: "ssh", 80: "http", 443: "https", 8080: "http", 8443: "https",
	554: "rtsp", 1883: "mqtt", 8883: "mqtts", 502: "modbus", 5000: "http", 7547: "cwmp",
	37777: "dahua-dvr", 34567: "xiongmai-dvr",
}

// ParsePorts parses a comma-separated list of TCP ports and ranges
// ("22,80,8000-8100"). Returns an Invalid error naming the bad element.
// The result keeps the given order and drops duplicates.
func ParsePorts(s string) ([]int, error) {
	var out []int
	seen := map[int]bool{}
	add := func(p int) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(f, "-")
		a, err := parsePort(lo)
		if err != nil {
			return nil, apperr.InvalidField("ports", "%q: %v", f, err)
		}
		b := a
		if isRange {
			if b, err = parsePort(hi); err != nil {
				return nil, apperr.InvalidField("ports", "%q: %v", f, err)
			}
			if b < a {
				return nil, apperr.InvalidField("ports", "%q: range ends before it starts", f)
			}
		}
		for p := a; p <= b; p++ {
			add(p)
		}
	}
	if len(out) == 0 {
		return nil, apperr.InvalidField("ports", "no port given")
	}
	return out, nil
}

func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 || n > 65535 {
		return 0, errPortRange
	}
	return n, nil
}

var errPortRange = apperr.Errorf(apperr.Invalid, "a port is a number from 1 to 65535")
