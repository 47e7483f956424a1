package detect

// Regression tests from the audit of adbf412 and the demo's GRE flood:
// each failed before its fix; the comments say what was wrong.

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/fleetward/fleetward/internal/alert"
)

// ip_flood skips destinations groupAddress calls group addresses, and
// that takes every IPv4 address ending in .255 for a broadcast: a GRE
// flood of a host on the internet at x.y.z.255 (a valid unicast address in
// any prefix shorter than /24; one target in 256) is not seen, though the
// frames go to the router's unicast MAC. udp_flood and syn_flood do not
// skip such targets.
func TestAudit2IPFloodOfAHostEndingIn255(t *testing.T) {
	for _, target := range []net.IP{{203, 0, 113, 80}, {203, 0, 112, 255}} {
		t.Run(target.String(), func(t *testing.T) {
			var fs []crafted
			for i := range 12000 {
				fs = append(fs, crafted{time.Duration(i) * 250 * time.Microsecond, greFrame(t, botIP, target, false, uint16(i), 512)})
			}
			sigs := runRules(t, writeCraftedCapture(t, fs), Rules{}, 0)
			if !auditHas(sigs, "ip_flood") {
				t.Errorf("Mirai's greip at 4,000 packets/s for 3 s against %s: no ip_flood; got %v", target, auditBehaviours(sigs))
			}
		})
	}
}

// dns_water_torture keys names by publicsuffix.EffectiveTLDPlusOne, which
// reads the whole Public Suffix List, private section included: under a
// private suffix (a dynamic-DNS provider's duckdns.org or ddns.net, a
// hosting platform's) every random label is a registered domain of its
// own, so a water-torture flood of that provider's name servers counts one
// name per "domain" and is never seen.
func TestAudit2DNSWaterTortureUnderAPrivateSuffix(t *testing.T) {
	resolver := net.IP{10, 200, 1, 1}
	for _, parent := range []string{"victim-shop.example", "duckdns.org", "ddns.net"} {
		t.Run(parent, func(t *testing.T) {
			var fs []crafted
			for i := range 1000 {
				q := dnsQuery(uint16(i), auditRandLabel(i)+"."+parent)
				fs = append(fs, crafted{time.Duration(i) * 5 * time.Millisecond, udpFrame(t, botIP, resolver, uint16(20000+i), 53, q)})
			}
			sigs := runRules(t, writeCraftedCapture(t, fs), Rules{}, 0)
			if !auditHas(sigs, "dns_water_torture") {
				t.Errorf("1,000 random names under %s in 5 s: no dns_water_torture; got %v", parent, auditBehaviours(sigs))
			}
		})
	}
}

// dnsQuestion declines a name with any byte outside printable ASCII (or a
// space) in a label. DNS labels are binary and resolvers pass such names
// on to the authoritative servers (which answer NXDOMAIN, the point of
// the attack), so a bot whose random labels carry one such byte is not
// seen. DETECTION.md says "whichever labels are random ... the names are
// distinct" and lists what is not read without this.
func TestAudit2DNSWaterTortureWithBinaryLabels(t *testing.T) {
	resolver := net.IP{10, 200, 1, 1}
	for _, tc := range []struct {
		name  string
		label func(i int) string
	}{
		{"control: alphanumeric", auditRandLabel},
		{"one byte 0x80 in the random label", func(i int) string { return auditRandLabel(i) + "\x80" }},
		{"one space in the random label", func(i int) string { return auditRandLabel(i) + " x" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fs []crafted
			for i := range 1000 {
				q := dnsQuery(uint16(i), tc.label(i)+".victim-shop.example")
				fs = append(fs, crafted{time.Duration(i) * 5 * time.Millisecond, udpFrame(t, botIP, resolver, uint16(20000+i), 53, q)})
			}
			sigs := runRules(t, writeCraftedCapture(t, fs), Rules{}, 0)
			if !auditHas(sigs, "dns_water_torture") {
				t.Errorf("1,000 distinct names under victim-shop.example in 5 s: no dns_water_torture; got %v", auditBehaviours(sigs))
			}
		})
	}
}

// The forwarder exemption is keyed by address: a router asked on its LAN
// address (or its IPv6 ULA, which RDNSS hands out) forwards from its WAN
// address, which nobody asked. A sensor that sees both sides (tcpdump -i
// any on the router, a mirror of the router's LAN and WAN ports) names the
// router's WAN address as a second attacker, the finding adbf412 fixed
// for the one-address case only.
func TestAudit2DNSForwarderOnAnotherAddressIsNamed(t *testing.T) {
	routerLAN, routerWAN := net.IP{10, 200, 1, 1}, net.IP{198, 51, 100, 7}
	sigs := forwardedWaterTorture(t, routerLAN, routerWAN)
	if !auditHas(sigs, "dns_water_torture") {
		t.Fatalf("no dns_water_torture at all: %v", auditBehaviours(sigs))
	}
	for _, s := range sigs {
		if s.Behaviour == "dns_water_torture" && s.SrcIP == routerWAN.String() {
			t.Errorf("the router forwarding the bot's queries from its WAN address is named: %s from %s", s.Behaviour, s.SrcIP)
		}
	}
}

// The exemption covers a whole registered domain for DNSWindow after one
// query: an infected router (Mirai's usual host, running the LAN's
// dnsmasq) that floods random names under a domain its clients also use
// (a Dyn-style attack on a popular service) is never counted, as long as
// one client asks it one name there every 10 s.
func TestAudit2DNSForwarderExemptionHidesAnInfectedRouter(t *testing.T) {
	router, client, upstream := net.IP{10, 200, 1, 1}, net.IP{10, 200, 1, 50}, net.IP{8, 8, 8, 8}
	var fs []crafted
	for i := range 2000 {
		at := time.Duration(i) * 5 * time.Millisecond
		if i%1000 == 0 { // one ordinary lookup every 5 s
			fs = append(fs, crafted{at, udpFrame(t, client, router, 33333, 53, dnsQuery(7, "www.victim-shop.example"))})
		}
		fs = append(fs, crafted{at + time.Millisecond, udpFrame(t, router, upstream, uint16(40000+i), 53, dnsQuery(uint16(i), auditRandLabel(i)+".victim-shop.example"))})
	}
	sigs := runRules(t, writeCraftedCapture(t, fs), Rules{}, 0)
	if !auditHas(sigs, "dns_water_torture") {
		t.Errorf("a router asking 2,000 random names under victim-shop.example in 10 s (its clients asked 2): no dns_water_torture; got %v", auditBehaviours(sigs))
	}
}

// With no_payloads the rules tell a bare ACK by the frame's length alone
// (66 bytes: Ethernet, IPv4, TCP with timestamps), though Packet.PayloadLen
// now says it whatever the link: an IPv6 (74+ bytes), VLAN-tagged or
// cooked-capture ACK that completes a handshake never takes its SYN off
// the counts, and a thousand IPv6 devices reconnecting to their broker at
// once raise syn_flood_received, which DETECTION.md says they do not.
func TestAudit2NoPayloadsIPv6ReconnectStormIsNoSYNFlood(t *testing.T) {
	broker := net.ParseIP("fd00::1883")
	var fs []crafted
	for i := range 1500 {
		client := net.ParseIP(fmt.Sprintf("fd00::1:%x", i+1))
		fs = append(fs, tcpHandshake(t, time.Duration(i)*500*time.Microsecond, client, broker, uint16(40000+i%20000), 1883)...)
	}
	path := writeCraftedCapture(t, fs)
	for _, r := range []Rules{{}, {NoPayloads: true}} {
		t.Run(fmt.Sprintf("no_payloads=%v", r.NoPayloads), func(t *testing.T) {
			sigs := runRules(t, path, r, 0)
			if len(sigs) != 0 {
				t.Errorf("1,500 IPv6 clients completing their handshakes in 0.75 s: %v", auditBehaviours(sigs))
			}
		})
	}
}

// ip_flood counts unfragmented packets only, and a first fragment goes to
// the rules only when it carries TCP or UDP: a GRE or ICMP flood whose
// packets exceed the MTU (Mirai's greip with df=0 and len=1480, ping -s
// 4000) is invisible, though its UDP equivalent is a udp_flood by its
// first fragments.
func TestAudit2FragmentedPortlessFlood(t *testing.T) {
	for _, tc := range []struct {
		name string
		pkt  func(i int) []byte
	}{
		{"control: unfragmented GRE", func(i int) []byte { return greFrame(t, botIP, victimIP, false, uint16(i), 512) }},
		{"GRE of 1,480 bytes, df=0", func(i int) []byte { return greFrame(t, botIP, victimIP, false, uint16(i), 1480) }},
		{"ICMP echo of 4,000 bytes", func(i int) []byte {
			ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: botIP, DstIP: victimIP}
			return frame(t, hostEth(botIP, victimIP, layers.EthernetTypeIPv4), ip,
				&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 7, Seq: uint16(i)}, gopacket.Payload(make([]byte, 4000)))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fs []crafted
			for i := range 4000 {
				at := time.Duration(i) * 250 * time.Microsecond
				for k, f := range fragmentFrame(t, tc.pkt(i), 1480) {
					fs = append(fs, crafted{at + time.Duration(k)*time.Microsecond, f})
				}
			}
			sigs := runRules(t, writeCraftedCapture(t, fs), Rules{}, 0)
			if !auditHas(sigs, "ip_flood") {
				t.Errorf("4,000 packets a second, %d frames: no ip_flood; got %v", len(fs), auditBehaviours(sigs))
			}
		})
	}
}

// A DNS query costs the rules two small allocations: the query name
// (string(name) in dnsQuestion) and the error publicsuffix's address check
// makes of every name; the rest of Observe allocates nothing per packet
// once its tables hold the keys. The test keeps it at that.
func TestAudit2ObserveDNSQueryAllocations(t *testing.T) {
	det := NewRuleDetector(Rules{})
	dec := NewDecoder(LinkEthernet)
	dec.PayloadPrefix = det.PayloadPrefix()
	data := udpFrame(t, botIP, net.IP{10, 200, 1, 1}, 20000, 53, dnsQuery(1, "www.example.com"))
	ci := gopacket.CaptureInfo{Timestamp: time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC), CaptureLength: len(data), Length: len(data)}
	var p Packet
	out := make([]alert.Signal, 0, 4)
	dec.Decode(data, ci, &p)
	det.Observe(&p, out[:0])
	allocs := testing.AllocsPerRun(1000, func() {
		dec.Decode(data, ci, &p)
		det.Observe(&p, out[:0])
	})
	if allocs > 2 {
		t.Errorf("%.1f allocations per DNS query, want 2 at most", allocs)
	}
}
