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
	d.counted(p.Time)
	// The talking table keys a protocol's packets between two hosts by
	// the protocol number in both port fields, so that the way back
	// matches the way out.
	q := *p
	q.SrcPort, q.DstPort = uint16(p.IPProto), uint16(p.IPProto)
	d.talking.saw(&q)
	if talked, _ := d.talking.answered(&q, d.r.RateWindow.Seconds()); talked || groupDestination(p) {
		return out
	}
	what := &d.ipWhat[p.IPProto]
	if *what == "" {
		*what = protocolName(p.IPProto) + " packets (no ports) that nothing answers"
	}
	return d.flood(p, d.ip, d.ipIn, "ip_flood", *what, d.r.IPFloodRate, out)
}

// groupDestination reports whether p goes to a group: a multicast address,
// IPv4's limited broadcast, or a group MAC address. An IPv4 address ending
// in .255 counts as a subnet's broadcast only where the link carries no
// MAC address to say so: it is an ordinary host in a network wider than a
// /24, and one in 256 of the internet's.
func groupDestination(p *Packet) bool {
	if p.DstMAC[0]&1 == 1 {
		return true
	}
	if a := p.Dst.Addr; p.Dst.Kind == AddrIPv4 && p.DstMAC != ([6]byte{}) {
		return a[0] >= 224 || a[0] == 255 && a[1] == 255 && a[2] == 255 && a[3] == 255
	}
	return groupAddress(p.Dst)
}

// protocolName names an IP protocol as gopacket does, or by its number.
func protocolName(proto layers.IPProtocol) string {
	if s := proto.String(); !strings.HasPrefix(s, "UnknownIPProtocol") {
		return s
	}
	return fmt.Sprintf("IP protocol %d", uint8(proto))
}

// methodStart is what a client sent of a request line before its method
// was whole: token bytes alone in their segments.
type methodStart struct {
	b  [maxMethod]byte
	n  uint8
	at float64
}

// startsRequest reports whether a TCP segment with data starts an HTTP/1
// request, also when the request line comes in pieces: a segment of token
// bytes alone (the method, or its start) is kept, and the next segment of
// the direction is read after it. A method sent a byte at a time hides
// nothing; Telnet keystrokes, kept the same way, never make a request.
func (d *RuleDetector) startsRequest(p *Packet) bool {
	k := connKey{p.Src, p.Dst, p.SrcPort, p.DstPort}
	var pending methodStart
	ok := false
	if len(d.methods) > 0 { // mostly empty: no hash of the key then
		pending, ok = d.methods[k]
	}
	if !ok {
		if httpRequest(p.Payload) {
			return true
		}
		if tokens(p.Payload) && len(p.Payload) == p.PayloadLen && len(p.Payload) <= maxMethod {
			if len(d.methods) >= maxRuleKeys {
				clear(d.methods)
			}
			m := methodStart{n: uint8(len(p.Payload)), at: p.Time}
			copy(m.b[:], p.Payload)
			d.methods[k] = m
		}
		return false
	}
	delete(d.methods, k)
	var buf [maxMethod + MaxPayloadPrefix]byte
	joined := append(append(buf[:0], pending.b[:pending.n]...), p.Payload...)
	if httpRequest(joined) {
		return true
	}
	if tokens(joined) && len(p.Payload) == p.PayloadLen && len(joined) <= maxMethod {
		pending.n, pending.at = uint8(copy(pending.b[:], joined)), p.Time
		d.methods[k] = pending
	}
	return false
}

// tokens reports whether b is all HTTP token bytes.
func tokens(b []byte) bool {
	for _, c := range b {
		if !tokenChar(c) {
			return false
		}
	}
	return len(b) > 0
}

// httpRequest reports whether a TCP payload starts an HTTP/1 request: a
// method (any token: Mirai's HTTP flood sends whatever method it is told),
// a space, and a target in origin form ("/…"), "*" or absolute form
// ("http://…"), or any target on a line that names an HTTP/1 version.
// Empty lines before it and extra spaces after the method are skipped, as
// servers do (RFC 9112, 2.2 and 3).
func httpRequest(payload []byte) bool {
	b := payload
	for len(b) > 0 && (b[0] == '\r' || b[0] == '\n') {
		b = b[1:]
	}
	i := 0
	for i < len(b) && i <= maxMethod && tokenChar(b[i]) {
		i++
	}
	if i == 0 || i > maxMethod || i >= len(b) || b[i] != ' ' {
		return false
	}
	target := bytes.TrimLeft(b[i:], " ")
	switch {
	case len(target) == 0:
		return false
	case target[0] == '/' || target[0] == '*' || hasPrefixFold(target, "http://") || hasPrefixFold(target, "https://"):
		return true
	}
	if end := bytes.IndexByte(target, '\n'); end >= 0 {
		target = target[:end]
	}
	return bytes.Contains(target, httpVersion)
}

// maxMethod bounds the length of a method httpRequest reads.
const maxMethod = 24

var httpVersion = []byte(" HTTP/1.")

// tokenChar reports whether c may be part of an HTTP token (RFC 9110, 5.6.2).
func tokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
