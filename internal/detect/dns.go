package detect

import (
	"fmt"
	"hash/maphash"
	"strings"
	"time"

	"golang.org/x/net/publicsuffix"

	"github.com/fleetward/fleetward/internal/alert"
)

// dnsKey is a source and a registered domain (its hash).
type dnsKey struct {
	src    Host
	domain uint64
}

// dnsAsk is who asked for a name first, and when.
type dnsAsk struct {
	by Host
	at float64
}

// forwardDelay is how soon after one host asks for a name another's query
// for it is taken for a resolver passing it on.
const forwardDelay = 2 * time.Second

// dnsSeed keys the hashes of DNS names.
var dnsSeed = maphash.MakeSeed()

// waterTorture counts a DNS query's name under its registered domain (the
// public suffix of the Public Suffix List's ICANN section and one label
// more): many distinct names from one source within DNSWindow are a
// water-torture attack on the domain's name servers, whichever labels the
// attacker randomises, under a dynamic-DNS or hosting provider's domain
// too. A query for a name another host asked for within forwardDelay is a
// resolver passing it on (the LAN router's forwarder, from whichever of
// its addresses): the host that asked first is the one counted.
func (d *RuleDetector) waterTorture(p *Packet, out []alert.Signal) []alert.Signal {
	name, ok := dnsQuestion(p.Payload)
	if !ok {
		return out
	}
	domain, ok := registeredDomain(name)
	if !ok {
		return out
	}
	r := &d.r
	h := maphash.String(dnsSeed, name)
	if a, ok := d.dnsNames[h]; ok && a.by != p.Src && !windowEnded(a.at, p.Time, forwardDelay) {
		return out
	}
	if len(d.dnsNames) >= maxRuleKeys {
		clear(d.dnsNames)
	}
	d.dnsNames[h] = dnsAsk{p.Src, p.Time}
	key := dnsKey{p.Src, maphash.String(dnsSeed, domain)}
	if n, fire := distinct(d.dns, key, h, p.Time, r.DNSWindow, r.DNSSubdomains); fire {
		out = append(out, d.signal(p, "dns_water_torture", alert.SeverityHigh, n, r.DNSSubdomains,
			fmt.Sprintf("DNS queries for %d different names under %s within %s (threshold %d), e.g. %q: random names that no cache holds, a DNS water-torture flood of %s's name servers",
				n, printable([]byte(domain)), r.DNSWindow, r.DNSSubdomains, printable([]byte(name)), printable([]byte(domain)))))
	}
	return out
}

// registeredDomain returns the ICANN suffix of name (past any private
// suffix a provider registered, such as duckdns.org or cloudfront.net, and
// the last label for a top-level domain the list lacks) with the label
// before it; false when name is a suffix itself.
func registeredDomain(name string) (string, bool) {
	suffix, icann := publicsuffix.PublicSuffix(name)
	for !icann {
		i := strings.IndexByte(suffix, '.')
		if i < 0 {
			break // an unlisted top-level domain: the default rule
		}
		suffix, icann = publicsuffix.PublicSuffix(suffix[i+1:])
	}
	if len(name) <= len(suffix)+1 || !strings.HasSuffix(name, suffix) || name[len(name)-len(suffix)-1] != '.' {
		return "", false
	}
	rest := name[:len(name)-len(suffix)-1]
	return name[strings.LastIndexByte(rest, '.')+1:], true
}

// dnsQuestion reads a DNS query (over UDP: no length prefix) with one
// question and returns its name, dotted, with ASCII letters lower-cased
// and every other byte as it is (a bot may put any byte in a label). It
// declines responses, other opcodes, compressed or cut names, labels
// holding a dot, and reverse lookups.
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
			if c == '.' {
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
