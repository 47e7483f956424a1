package detect

import (
	"bytes"
	"fmt"
	"hash/maphash"

	"github.com/fleetward/fleetward/internal/alert"
)

// dnsKey is a source and a parent name it asked about (its hash).
type dnsKey struct {
	src    Host
	parent uint64
}

// dnsSeed keys the hashes of DNS names.
var dnsSeed = maphash.MakeSeed()

// waterTorture counts a DNS query's first label under its parent name:
// many distinct ones from one source within DNSWindow are a water-torture
// attack on the parent's authoritative servers.
func (d *RuleDetector) waterTorture(p *Packet, out []alert.Signal) []alert.Signal {
	label, parent, ok := dnsQuestion(p.Payload)
	if !ok {
		return out
	}
	r := &d.r
	key := dnsKey{p.Src, hashName(parent)}
	if n, fire := distinct(d.dns, key, hashName(label), p.Time, r.DNSWindow, r.DNSSubdomains); fire {
		out = append(out, d.signal(p, "dns_water_torture", alert.SeverityHigh, n, r.DNSSubdomains,
			fmt.Sprintf("DNS queries for %d different names under %s within %s (threshold %d), e.g. %q: random subdomains that no cache holds, a DNS water-torture flood of %s's name servers",
				n, printable(nameString(parent)), r.DNSWindow, r.DNSSubdomains, printable(label), printable(nameString(parent)))))
	}
	return out
}

// dnsQuestion reads a DNS query (over UDP: no length prefix) with one
// question and returns the wire form of its name's first label and of the
// rest, the parent, which must have two labels at least. It declines
// responses, other opcodes, compressed or truncated names, and reverse
// lookups.
func dnsQuestion(b []byte) (label, parent []byte, ok bool) {
	if len(b) < 12+1 || b[2]&0x80 != 0 || b[2]>>3&0x0f != 0 || b[4] != 0 || b[5] != 1 {
		return nil, nil, false
	}
	name := b[12:]
	labels, end := 0, 0
	for {
		if end >= len(name) {
			return nil, nil, false // cut short
		}
		n := int(name[end])
		if n == 0 {
			break
		}
		if n > 63 { // a pointer, or a label type no query uses
			return nil, nil, false
		}
		end += 1 + n
		labels++
	}
	if labels < 3 || end > 255 {
		return nil, nil, false
	}
	first := 1 + int(name[0])
	label, parent = name[1:first], name[first:end]
	if hasSuffixFold(parent, inAddrArpa) || hasSuffixFold(parent, ip6Arpa) {
		return nil, nil, false
	}
	return label, parent, true
}

// The reverse-lookup zones, in wire form.
var inAddrArpa, ip6Arpa = []byte("\x07in-addr\x04arpa"), []byte("\x03ip6\x04arpa")

// hashName hashes a name or label case-insensitively: DNS names are.
func hashName(b []byte) uint64 {
	var buf [255]byte
	n := copy(buf[:], b)
	for i := range n {
		if c := buf[i]; c >= 'A' && c <= 'Z' {
			buf[i] = c + 'a' - 'A'
		}
	}
	return maphash.Bytes(dnsSeed, buf[:n])
}

// hasSuffixFold reports whether b ends with suffix, ignoring ASCII case.
func hasSuffixFold(b, suffix []byte) bool {
	return len(b) >= len(suffix) && bytes.EqualFold(b[len(b)-len(suffix):], suffix)
}

// nameString turns the wire form of labels (length-prefixed, no root)
// into dotted text.
func nameString(b []byte) []byte {
	var s []byte
	for i := 0; i < len(b); {
		n := int(b[i])
		if i+1+n > len(b) {
			return append(s, b[i:]...)
		}
		if len(s) > 0 {
			s = append(s, '.')
		}
		s = append(s, b[i+1:i+1+n]...)
		i += 1 + n
	}
	return s
}
