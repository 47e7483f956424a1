package detect

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/google/gopacket/layers"

	"github.com/fleetward/fleetward/internal/alert"
)

// portless applies the flood rule to a packet without ports (GRE, ESP,
// ICMP, any IP protocol but TCP and UDP): it counts toward ip_flood unless
// its destination is a group address (IGMP, VRRP, OSPF and neighbour
// discovery go there) or has sent the same protocol back, along the same
// link, within the rate window: a tunnel's peer or a host answering pings.
func (d *RuleDetector) portless(p *Packet, out []alert.Signal) []alert.Signal {
	if p.Src.Kind != AddrIPv4 && p.Src.Kind != AddrIPv6 {
		return out
	}
	// The talking table keys a protocol's packets between two hosts by
	// the protocol number in both port fields, so that the way back
	// matches the way out.
	d.counted(p.Time)
	q := *p
	q.SrcPort, q.DstPort = uint16(p.IPProto), uint16(p.IPProto)
	d.talking.saw(&q)
	if talked, _ := d.talking.answered(&q, d.r.RateWindow.Seconds()); talked || groupAddress(p.Dst) {
		return out
	}
	what := &d.ipWhat[p.IPProto]
	if *what == "" {
		*what = protocolName(p.IPProto) + " packets (no ports) that nothing answers"
	}
	return d.flood(p, d.ip, d.ipIn, "ip_flood", *what, d.r.IPFloodRate, out)
}

// protocolName names an IP protocol as gopacket does, or by its number.
func protocolName(proto layers.IPProtocol) string {
	if s := proto.String(); !strings.HasPrefix(s, "UnknownIPProtocol") {
		return s
	}
	return fmt.Sprintf("IP protocol %d", uint8(proto))
}

// httpMethods are the request methods an HTTP flood uses, each with the
// space that follows it in a request line.
var httpMethods = [][]byte{[]byte("GET "), []byte("POST "), []byte("HEAD "), []byte("PUT "), []byte("DELETE "),
	[]byte("OPTIONS "), []byte("PATCH "), []byte("CONNECT "), []byte("TRACE ")}

// httpRequest reports whether a TCP payload starts an HTTP/1 request: a
// method, a space and a target that starts with '/', '*' or a letter (an
// absolute URI or a CONNECT authority).
func httpRequest(payload []byte) bool {
	if len(payload) < 5 || payload[0] < 'A' || payload[0] > 'T' {
		return false
	}
	for _, m := range httpMethods {
		if bytes.HasPrefix(payload, m) {
			if len(payload) == len(m) {
				return false
			}
			c := payload[len(m)]
			return c == '/' || c == '*' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		}
	}
	return false
}
