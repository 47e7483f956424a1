package detect

// Regression tests from the audit of the rules added in 2947b21..cdf47f4
// (ip_flood, STOMP in ack_flood, http_flood, dns_water_torture): each
// failed before its fix (adbf412 and after).

import (
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/fleetward/fleetward/internal/alert"
)

func auditBehaviours(sigs []alert.Signal) []string {
	var got []string
	for _, s := range sigs {
		got = append(got, s.Behaviour+" from "+s.SrcIP+" to "+s.Peer)
	}
	return got
}

func auditHas(sigs []alert.Signal, behaviour string) bool {
	for _, s := range sigs {
		if s.Behaviour == behaviour {
			return true
		}
	}
	return false
}

func auditRandLabel(i int) string {
	return fmt.Sprintf("%012x", uint64(i+1)*0x9e3779b97f4a7c15>>16)
}

// Water torture whose random part is more than one label, or not the
// first label ("www.<random>.victim"), keys every query under its own
// parent: nothing is ever counted twice.
func TestAuditDNSWaterTortureRandomPartNotOnlyFirstLabel(t *testing.T) {
	resolver := net.IP{10, 200, 1, 1}
	for _, tc := range []struct {
		name  string
		qname func(i int) string
	}{
		{"control: one random label", func(i int) string { return auditRandLabel(i) + ".victim-shop.example" }},
		{"two random labels", func(i int) string { return auditRandLabel(i) + "." + auditRandLabel(i+7777) + ".victim-shop.example" }},
		{"constant first label, random second", func(i int) string { return "www." + auditRandLabel(i) + ".victim-shop.example" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fs []crafted
			for i := range 1000 {
				fs = append(fs, crafted{time.Duration(i) * 5 * time.Millisecond, udpFrame(t, botIP, resolver, uint16(20000+i), 53, dnsQuery(uint16(i), tc.qname(i)))})
			}
			sigs := runRules(t, writeCraftedCapture(t, fs), Rules{}, 0)
			if !auditHas(sigs, "dns_water_torture") {
				t.Errorf("1,000 queries for random names under victim-shop.example in 5 s: no dns_water_torture; got %v", auditBehaviours(sigs))
			}
		})
	}
}

// A query name longer than the 256-byte payload prefix less the 12-byte
// DNS header (names may be 255 bytes) is cut, and dnsQuestion declines it:
// padding the query names with constant labels hides the flood.
func TestAuditDNSWaterTortureLongNamesCutByPrefix(t *testing.T) {
	resolver := net.IP{10, 200, 1, 1}
	pad := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 25) + "."
	var fs []crafted
	for i := range 1000 {
		name := auditRandLabel(i) + "." + pad + "victim-shop.example" // 13+218+20+1 = 252 bytes on the wire
		fs = append(fs, crafted{time.Duration(i) * 5 * time.Millisecond, udpFrame(t, botIP, resolver, uint16(20000+i), 53, dnsQuery(uint16(i), name))})
	}
	sigs := runRules(t, writeCraftedCapture(t, fs), Rules{}, 0)
	if !auditHas(sigs, "dns_water_torture") {
		t.Errorf("1,000 random 252-byte names under one parent in 5 s: no dns_water_torture (the name is cut at the %d-byte payload prefix); got %v", MaxPayloadPrefix, auditBehaviours(sigs))
	}
}

// Mirai's HTTP flood takes its method from the attack's "method" option
// (any string); servers also skip a CRLF before the request line (RFC 9112
// 2.2); and a request written in pieces puts its method, or part of it,
// in a segment of its own.
func TestAuditHTTPFloodEvasions(t *testing.T) {
	for _, tc := range []struct {
		name string
		reqs [][]byte // the segments of one request
	}{
		{"control: GET", [][]byte{[]byte("GET / HTTP/1.1\r\nHost: v\r\n\r\n")}},
		{"Mirai method=PROPFIND", [][]byte{[]byte("PROPFIND / HTTP/1.1\r\nHost: v\r\n\r\n")}},
		{"an empty line before the request line", [][]byte{[]byte("\r\nGET / HTTP/1.1\r\nHost: v\r\n\r\n")}},
		{"the method in a segment of its own", [][]byte{[]byte("GET"), []byte(" / HTTP/1.1\r\nHost: v\r\n\r\n")}},
		{"the method a byte at a time", [][]byte{[]byte("G"), []byte("E"), []byte("T"), []byte(" / HTTP/1.1\r\nHost: v\r\n\r\n")}},
		// nginx and Go's net/http skip any leading CR or LF, and nginx takes
		// extra spaces; a long target pushes the version past the payload
		// prefix, so absolute and origin forms count without it.
		{"a bare LF before the request line", [][]byte{[]byte("\nGET / HTTP/1.1\r\nHost: v\r\n\r\n")}},
		{"absolute form, long URL", [][]byte{[]byte("GET http://v/?" + strings.Repeat("a", 400) + " HTTP/1.1\r\nHost: v\r\n\r\n")}},
		{"two spaces, long path", [][]byte{[]byte("GET  /?" + strings.Repeat("a", 400) + " HTTP/1.1\r\nHost: v\r\n\r\n")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := tcpHandshake(t, 0, botIP, victimIP, 40000, 80)
			isn, serverISN := uint32(40000)*7919+1, uint32(80)*104729+40000+1
			resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
			var sent, got uint32
			for i := range 600 {
				at := 10*time.Millisecond + time.Duration(i)*1500*time.Microsecond
				for k, seg := range tc.reqs {
					fs = append(fs, crafted{at + time.Duration(k)*10*time.Microsecond, tcpSeqFrame(t, botIP, victimIP, 40000, 80, "PA", isn+sent, serverISN+got, seg)})
					sent += uint32(len(seg))
				}
				fs = append(fs, crafted{at + 500*time.Microsecond, tcpSeqFrame(t, victimIP, botIP, 80, 40000, "PA", serverISN+got, isn+sent, resp)})
				got += uint32(len(resp))
			}
			sigs := runRules(t, writeCraftedCapture(t, fs), Rules{}, 0)
			if !auditHas(sigs, "http_flood") {
				t.Errorf("600 requests in 0.9 s on one connection: no http_flood; got %v", auditBehaviours(sigs))
			}
		})
	}
}

// A STOMP variant that starts its sequence numbers at the connection's
// real next byte (the SYN-ACK's acknowledgement) and steps them by one
// gives the target one new byte per segment: the target's acknowledgement
// moves forward at every segment, so no stray counts, though 767 of every
// 768 bytes are duplicates and the flood is 5,000 segments a second.
func TestAuditSTOMPInWindowVariantEvades(t *testing.T) {
	fs := tcpHandshake(t, 0, botIP, victimIP, 40000, 80)
	isn, serverISN := uint32(40000)*7919+1, uint32(80)*104729+40000+1
	for i := range 5000 {
		at := 3*time.Millisecond + time.Duration(i)*200*time.Microsecond
		fs = append(fs, crafted{at, tcpSeqFrame(t, botIP, victimIP, 40000, 80, "PA", isn+uint32(i), serverISN, make([]byte, 768))})
		// What a real stack answers: everything up to the segment's end.
		fs = append(fs, crafted{at + 50*time.Microsecond, tcpSeqFrame(t, victimIP, botIP, 80, 40000, "A", serverISN, isn+uint32(i)+768, nil)})
	}
	sigs := runRules(t, writeCraftedCapture(t, fs), Rules{}, 0)
	if !auditHas(sigs, "ack_flood") {
		t.Errorf("5,000 overlapping 768-byte segments a second, each one byte past the last: no ack_flood; got %v", auditBehaviours(sigs))
	}
}

// writeSLLCapture writes IP packets as a Linux cooked capture (tcpdump -i
// any), each with the link address of its sender, as Linux records it.
func writeSLLCapture(t *testing.T, frames []crafted, senders []net.HardwareAddr, outgoing []bool) string {
	t.Helper()
	return writeCraftedLink(t, layers.LinkTypeLinuxSLL, frames, func(i int, frame []byte) []byte {
		h := make([]byte, 16)
		if outgoing[i] {
			binary.BigEndian.PutUint16(h[0:2], 4)
		}
		binary.BigEndian.PutUint16(h[2:4], 1) // ARPHRD_ETHER
		binary.BigEndian.PutUint16(h[4:6], 6)
		copy(h[6:12], senders[i])
		binary.BigEndian.PutUint16(h[14:16], uint16(layers.EthernetTypeIPv4))
		return append(h, frame[14:]...) // the IP packet of an Ethernet frame
	})
}

// A Linux cooked capture records the sender's link address only: the way
// back never carries the MAC pair reversed, so nothing was ever answered.
func TestAuditCookedCaptureNothingIsAnswered(t *testing.T) {
	for _, tc := range []struct {
		name string
		pair func(i int) (out, back []byte) // a packet and its answer
	}{
		{"a GRE tunnel carrying 4,000 packets a second each way", func(i int) ([]byte, []byte) {
			return greFrame(t, botIP, victimIP, false, uint16(i), 512), greFrame(t, victimIP, botIP, false, uint16(i), 512)
		}},
		{"4,000 pings a second, each answered", func(i int) ([]byte, []byte) {
			return icmpEchoFrame(t, botIP, victimIP, 8, uint16(i)), icmpEchoFrame(t, victimIP, botIP, 0, uint16(i))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fs []crafted
			var senders []net.HardwareAddr
			var out []bool
			for i := range 8000 {
				at := time.Duration(i) * 250 * time.Microsecond
				there, back := tc.pair(i)
				fs = append(fs, crafted{at, there}, crafted{at + 50*time.Microsecond, back})
				senders = append(senders, macA, macB)
				out = append(out, true, false)
			}
			if sigs := runRules(t, writeSLLCapture(t, fs, senders, out), Rules{}, 0); len(sigs) != 0 {
				t.Errorf("answered traffic in a tcpdump -i any capture: %v", auditBehaviours(sigs))
			}
		})
	}
}

// The same holds for ack_flood (older than these commits): a download's
// ACKs are never seen answered in a cooked capture.
func TestAuditCookedCaptureDownloadACKs(t *testing.T) {
	var fs []crafted
	var senders []net.HardwareAddr
	var out []bool
	for i := range 8000 {
		at := time.Duration(i) * 250 * time.Microsecond
		fs = append(fs, crafted{at, tcpSeqFrame(t, victimIP, botIP, 443, 40000, "A", 1+uint32(i)*1400, 1, make([]byte, 1400))},
			crafted{at + 50*time.Microsecond, tcpSeqFrame(t, botIP, victimIP, 40000, 443, "A", 1, 1+uint32(i+1)*1400, nil)})
		senders = append(senders, macB, macA)
		out = append(out, false, true)
	}
	sigs := runRules(t, writeSLLCapture(t, fs, senders, out), Rules{}, 0)
	if len(sigs) != 0 {
		t.Errorf("a 45 Mbit/s download in a tcpdump -i any capture: %v", auditBehaviours(sigs))
	}
}

// A victim of a GRE flood that answers each packet with an ICMP protocol
// unreachable (an embedded stack that does not rate-limit its errors) is
// named as an ip_flood source: its ICMP errors are "unanswered" ICMP.
func TestAuditICMPErrorsAnsweringAFloodAreAFlood(t *testing.T) {
	var fs []crafted
	for i := range 4000 {
		at := time.Duration(i) * 250 * time.Microsecond
		gre := greFrame(t, botIP, victimIP, false, uint16(i), 64)
		fs = append(fs, crafted{at, gre})
		quoted := gre[14 : 14+28] // the IP header and 8 bytes of what it carried
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: victimIP, DstIP: botIP}
		icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeDestinationUnreachable, layers.ICMPv4CodeProtocol)}
		fs = append(fs, crafted{at + 20*time.Microsecond, frame(t, hostEth(victimIP, botIP, layers.EthernetTypeIPv4), ip, icmp, gopacket.Payload(quoted))})
	}
	sigs := runRules(t, writeCraftedCapture(t, fs), Rules{}, 0)
	for _, s := range sigs {
		if s.SrcIP == victimIP.String() && s.Behaviour == "ip_flood" {
			t.Errorf("the victim's ICMP errors raised ip_flood on the victim: %s", s.Explanation)
		}
	}
}

// Observe returns from portless before it counts the packet and calls
// evict: on traffic that is all portless (a spoofed GRE flood, an IPsec
// gateway's ESP) the rate tables are never swept, and keys idle for hours
// stay until the table fills and is emptied whole.
func TestAuditPortlessPacketsNeverEvict(t *testing.T) {
	for _, tc := range []struct {
		name  string
		pkt   func(t testing.TB, src net.IP, i int) []byte
		table func(d *RuleDetector) int
	}{
		{"control: UDP", func(t testing.TB, src net.IP, i int) []byte { return udpFrame(t, src, victimIP, 7, 9, nil) },
			func(d *RuleDetector) int { return len(d.udp) }},
		{"GRE", func(t testing.TB, src net.IP, i int) []byte { return greFrame(t, src, victimIP, false, uint16(i), 8) },
			func(d *RuleDetector) int { return len(d.ip) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			det := NewRuleDetector(Rules{})
			dec := NewDecoder(LinkEthernet)
			var p Packet
			start := time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)
			feed := func(at time.Time, src net.IP, i int) {
				data := tc.pkt(t, src, i)
				dec.Decode(data, gopacket.CaptureInfo{Timestamp: at, CaptureLength: len(data), Length: len(data)}, &p)
				det.Observe(&p, nil)
			}
			for i := range 20000 { // spoofed sources, 20,000 keys
				feed(start.Add(time.Duration(i)*50*time.Microsecond), net.IP{100, 64, byte(i >> 8), byte(i)}, i)
			}
			before := tc.table(det)
			for i := range 20000 { // an hour later, one source
				feed(start.Add(time.Hour+time.Duration(i)*time.Millisecond), net.IP{10, 1, 1, 1}, i)
			}
			if after := tc.table(det); after > before/10 {
				t.Errorf("%d rate-table keys after the spoofed flood, %d an hour and 20,000 packets later (Keys() %d)", before, after, det.Keys())
			}
		})
	}
}

// An IPv4 packet of protocol 0 has IPProto 0, which the rules read as
// "not portless": such a flood is not counted (the docs say any protocol
// but TCP and UDP); gopacket even decodes its payload as an IPv6
// hop-by-hop header.
func TestAuditIPProtocolZeroFlood(t *testing.T) {
	var fs []crafted
	for i := range 5000 {
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: 0, SrcIP: botIP, DstIP: victimIP}
		pl := make([]byte, 64)
		_ = i // zeros, as hping3 --rawip sends by default
		fs = append(fs, crafted{time.Duration(i) * 200 * time.Microsecond, frame(t, hostEth(botIP, victimIP, layers.EthernetTypeIPv4), ip, gopacket.Payload(pl))})
	}
	sigs := runRules(t, writeCraftedCapture(t, fs), Rules{}, 0)
	if !auditHas(sigs, "ip_flood") {
		t.Errorf("5,000 unanswered IP protocol 0 packets in a second: no ip_flood; got %v", auditBehaviours(sigs))
	}
	for _, s := range sigs {
		if s.Behaviour != "ip_flood" {
			t.Errorf("protocol-0 packets read as something else: %s: %s", s.Behaviour, s.Explanation)
		}
	}
}

// A forwarding resolver (the LAN router's dnsmasq) passes on each name a
// bot asks for: water torture through it raises the rule on the router as
// well, as if it were a second attacker.
func TestAuditDNSWaterTortureForwarderIsNamed(t *testing.T) {
	router := net.IP{10, 200, 1, 1}
	sigs := forwardedWaterTorture(t, router, router)
	for _, s := range sigs {
		if s.Behaviour == "dns_water_torture" && s.SrcIP == router.String() {
			t.Errorf("the resolver forwarding the bot's queries is named too: %s from %s", s.Behaviour, s.SrcIP)
		}
	}
}

// forwardedWaterTorture runs the rules over a bot asking the resolver at
// asked for 200 random names under one domain in 4 s, each passed on 1 ms
// later from the resolver's address from to an upstream server.
func forwardedWaterTorture(t *testing.T, asked, from net.IP) []alert.Signal {
	t.Helper()
	upstream := net.IP{9, 9, 9, 9}
	var fs []crafted
	for i := range 200 {
		at := time.Duration(i) * 20 * time.Millisecond
		q := dnsQuery(uint16(i), auditRandLabel(i)+".victim-shop.example")
		fs = append(fs, crafted{at, udpFrame(t, botIP, asked, uint16(20000+i), 53, q)},
			crafted{at + time.Millisecond, udpFrame(t, from, upstream, uint16(40000+i), 53, q)})
	}
	return runRules(t, writeCraftedCapture(t, fs), Rules{}, 0)
}

// PayloadLen of a TCP segment inside an IP tunnel whose inner header is
// followed by an extension header: the extension case subtracts from the
// outer header's length.
func TestAuditPayloadLenInTunnelWithInnerExtensionHeader(t *testing.T) {
	destOpts := gopacket.Payload{byte(layers.IPProtocolTCP), 0, 1, 4, 0, 0, 0, 0}
	tcp := &layers.TCP{SrcPort: 1234, DstPort: 80, ACK: true, Window: 1}
	inner := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolIPv6Destination, HopLimit: 64, SrcIP: ip6A, DstIP: ip6B}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"6in4", frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolIPv6), inner, destOpts, tcp, gopacket.Payload(make([]byte, 100)))},
		{"IPv6 in IPv6", frame(t, eth(layers.EthernetTypeIPv6), &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolIPv6, HopLimit: 64, SrcIP: ip6A, DstIP: ip6B},
			inner, destOpts, tcp, gopacket.Payload(make([]byte, 100)))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := decodeOne(t, tc.data, len(tc.data))
			if p.Ports != PortNumber || p.DstPort != 80 {
				t.Fatalf("not decoded as TCP to 80: %+v", p)
			}
			if p.PayloadLen != 100 {
				t.Errorf("PayloadLen %d, want 100", p.PayloadLen)
			}
		})
	}
}
