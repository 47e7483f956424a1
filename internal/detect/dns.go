package detect

import (
	"fmt"
	"hash/maphash"
	"strings"

	"golang.org/x/net/publicsuffix"

	"github.com/fleetward/fleetward/internal/alert"
)

// dnsKey is a host and a registered domain (its hash).
type dnsKey struct {
	host   Host
	domain uint64
}

// dnsSeed keys the hashes of DNS names.
var dnsSeed = maphash.MakeSeed()

// waterTorture counts a DNS query's name under its registered domain (the
// public suffix and one label more): many distinct names from one source
// within DNSWindow are a water-torture attack on the domain's
// authoritative servers, whichever labels the attacker randomises. A
// source that was itself asked for names under the domain within the
// window is a resolver passing its clients' queries on (the LAN router's
// forwarder): its client is the one to blame, and is counted on its own.
func (d *RuleDetector) waterTorture(p *Packet, out []alert.Signal) []alert.Signal {
	name, ok := dnsQuestion(p.Payload)
	if !ok {
		return out
	}
	domain, err := publicsuffix.EffectiveTLDPlusOne(name)
	if err != nil {
		return out // a public suffix itself, or no name
	}
	r := &d.r
	key := dnsKey{p.Src, maphash.String(dnsSeed, domain)}
	asked := dnsKey{p.Dst, key.domain}
	if len(d.dnsAsked) >= maxRuleKeys {
		clear(d.dnsAsked)
	}
	d.dnsAsked[asked] = p.Time
	if t, ok := d.dnsAsked[key]; ok && !windowEnded(t, p.Time, r.DNSWindow) {
		return out
	}
	if n, fire := distinct(d.dns, key, maphash.String(dnsSeed, name), p.Time, r.DNSWindow, r.DNSSubdomains); fire {
		out = append(out, d.signal(p, "dns_water_torture", alert.SeverityHigh, n, r.DNSSubdomains,
			fmt.Sprintf("DNS queries for %d different names under %s within %s (threshold %d), e.g. %q: random names that no cache holds, a DNS water-torture flood of %s's name servers",
				n, printable([]byte(domain)), r.DNSWindow, r.DNSSubdomains, printable([]byte(name)), printable([]byte(domain)))))
	}
	return out
}

// dnsQuestion reads a DNS query (over UDP: no length prefix) with one
// question and returns its name, lower-case and dotted. It declines
// responses, other opcodes, compressed or cut names, names with dots or
// bytes outside printable ASCII in a label, and reverse lookups.
func dnsQuestion(b []byte) (string, bool) {
	if len(b) < 12+1 || b[2]&0x80 != 0 || b[2]>>3&0x0f != 0 || b[4] != 0 || b[5] != 1 {
		return "", false
	}
	var buf [255]byte
	name := buf[:0]
	for i := 12; ; {
		if i >= len(b) {
			return "", false // cut short
		}
		n := int(b[i])
		if n == 0 {
			break
		}
		if n > 63 || i+1+n > len(b) || len(name)+n+1 > len(buf) { // a pointer, a label type no query uses, or too long
			return "", false
		}
		if len(name) > 0 {
			name = append(name, '.')
		}
		for _, c := range b[i+1 : i+1+n] {
			if c <= ' ' || c >= 0x7f || c == '.' {
				return "", false
			}
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			name = append(name, c)
		}
		i += 1 + n
	}
	s := string(name)
	if s == "" || strings.HasSuffix(s, ".in-addr.arpa") || strings.HasSuffix(s, ".ip6.arpa") {
		return "", false
	}
	return s, true
}
