package detect

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/fleetward/fleetward/internal/alert"
)

// crafted is one frame of a crafted capture, at an offset from its start.
type crafted struct {
	at    time.Duration
	frame []byte
}

var (
	botIP    = net.IP{10, 200, 1, 66}
	victimIP = net.IP{10, 200, 1, 7}
)

// tcpFrame builds an Ethernet/IPv4/TCP frame from src to dst.
func tcpFrame(t testing.TB, src, dst net.IP, sport, dport uint16, flags string, payload []byte) []byte {
	t.Helper()
	return tcpSeqFrame(t, src, dst, sport, dport, flags, 1, 0, payload)
}

// tcpSeqFrame is tcpFrame with the sequence and acknowledgement numbers given.
func tcpSeqFrame(t testing.TB, src, dst net.IP, sport, dport uint16, flags string, seq, ack uint32, payload []byte) []byte {
	t.Helper()
	return tcpOptionsFrame(t, src, dst, sport, dport, flags, seq, ack, nil, payload)
}

// tcpOptionsFrame is tcpSeqFrame with TCP options, over IPv6 when src is
// an IPv6 address.
func tcpOptionsFrame(t testing.TB, src, dst net.IP, sport, dport uint16, flags string, seq, ack uint32, opts []layers.TCPOption, payload []byte) []byte {
	t.Helper()
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Window: 1024, Seq: seq, Ack: ack,
		SYN: strings.Contains(flags, "S"), ACK: strings.Contains(flags, "A"), PSH: strings.Contains(flags, "P"),
		FIN: strings.Contains(flags, "F"), RST: strings.Contains(flags, "R"), Options: opts}
	if src.To4() == nil {
		ip := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolTCP, HopLimit: 64, SrcIP: src, DstIP: dst}
		return frame(t, hostEth(src, dst, layers.EthernetTypeIPv6), ip, tcp, gopacket.Payload(payload))
	}
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src, DstIP: dst}
	return frame(t, hostEth(src, dst, layers.EthernetTypeIPv4), ip, tcp, gopacket.Payload(payload))
}

// tcpHandshake is a TCP handshake from client to server starting at at:
// SYN, SYN-ACK 1 ms later, ACK 2 ms later.
func tcpHandshake(t testing.TB, at time.Duration, client, server net.IP, cport, sport uint16) []crafted {
	isn, serverISN := uint32(cport)*7919, uint32(sport)*104729+uint32(cport)
	return []crafted{
		{at, tcpSeqFrame(t, client, server, cport, sport, "S", isn, 0, nil)},
		{at + time.Millisecond, tcpSeqFrame(t, server, client, sport, cport, "SA", serverISN, isn+1, nil)},
		{at + 2*time.Millisecond, tcpSeqFrame(t, client, server, cport, sport, "A", isn+1, serverISN+1, nil)},
	}
}

// hostEth is an Ethernet header from src's MAC address to dst's, as on a
// LAN: botIP has macA, victimIP macB, any other host a MAC made of its
// address, so that a reply carries the two the other way round.
func hostEth(src, dst net.IP, typ layers.EthernetType) *layers.Ethernet {
	mac := func(ip net.IP) net.HardwareAddr {
		switch {
		case ip.Equal(botIP):
			return macA
		case ip.Equal(victimIP):
			return macB
		}
		b := ip.To16()
		return net.HardwareAddr{0x02, 0x01, b[12], b[13], b[14], b[15]}
	}
	return &layers.Ethernet{SrcMAC: mac(src), DstMAC: mac(dst), EthernetType: typ}
}

// timestamps is the TCP timestamps option, with the no-ops that align it.
var timestamps = []layers.TCPOption{{OptionType: layers.TCPOptionKindNop, OptionLength: 1}, {OptionType: layers.TCPOptionKindNop, OptionLength: 1},
	{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: []byte{0, 0, 1, 0, 0, 0, 2, 0}}}

func udpFrame(t testing.TB, src, dst net.IP, sport, dport uint16, payload []byte) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: src, DstIP: dst}
	return frame(t, hostEth(src, dst, layers.EthernetTypeIPv4), ip, &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}, gopacket.Payload(payload))
}

// writeCraftedCapture writes frames to a pcap file with pcapgo and returns its path.
func writeCraftedCapture(t testing.TB, frames []crafted) string {
	t.Helper()
	return writeCraftedLink(t, layers.LinkTypeEthernet, frames, func(_ int, frame []byte) []byte { return frame })
}

// writeCraftedLink writes frames to a pcap file of link type link, each
// turned into that link's frame by data, and returns its path.
func writeCraftedLink(t testing.TB, link layers.LinkType, frames []crafted, data func(i int, frame []byte) []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "crafted.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, link); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)
	for i, c := range frames {
		b := data(i, c.frame)
		ci := gopacket.CaptureInfo{Timestamp: start.Add(c.at), CaptureLength: len(b), Length: len(b)}
		if err := w.WritePacket(ci, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// runRules decodes a capture and applies the rules to every packet.
func runRules(t testing.TB, path string, r Rules, limit int) []alert.Signal {
	t.Helper()
	rd, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	det := NewRuleDetector(r)
	dec := NewDecoder(rd.LinkType())
	dec.PayloadPrefix = det.PayloadPrefix()
	var p Packet
	var out []alert.Signal
	for n := 0; limit <= 0 || n < limit; n++ {
		data, ci, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		dec.Decode(data, ci, &p)
		out = det.Observe(&p, out)
	}
	return out
}

func TestRulesOnCraftedCaptures(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name   string
		frames func(t testing.TB) []crafted
		want   string // the behaviour expected, "" for none
		check  func(t *testing.T, s alert.Signal)
		rules  Rules
		only   bool // no signal but want's
	}{
		{
			name: "Mirai's GRE flood, 5,000 GRE-wrapped UDP datagrams of 512 bytes to one host in a second, is an IP flood",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 5000 {
					fs = append(fs, crafted{time.Duration(i) * 200 * time.Microsecond, greFrame(t, botIP, victimIP, false, uint16(i), 512)})
				}
				return fs
			},
			want: "ip_flood",
			only: true,
			check: func(t *testing.T, s alert.Signal) {
				checkPeer(t, s, victimIP.String())
				if !strings.Contains(s.Explanation, "GRE") {
					t.Errorf("explanation %q does not name GRE", s.Explanation)
				}
			},
		},
		{
			name: "Mirai's GRE Ethernet flood (greeth) is an IP flood",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 5000 {
					fs = append(fs, crafted{time.Duration(i) * 200 * time.Microsecond, greFrame(t, botIP, victimIP, true, uint16(i), 512)})
				}
				return fs
			},
			want: "ip_flood",
			only: true,
		},
		{
			name: "a GRE flood from 5,000 spoofed sources is an IP flood the victim receives",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 5000 {
					src := net.IP{100, 64, byte(i >> 8), byte(i)}
					fs = append(fs, crafted{time.Duration(i) * 200 * time.Microsecond, greFrame(t, src, victimIP, false, uint16(i), 512)})
				}
				return fs
			},
			want: "ip_flood_received",
			only: true,
			check: func(t *testing.T, s alert.Signal) {
				if s.SrcIP != victimIP.String() {
					t.Errorf("signal on %s, want the victim %s", s.SrcIP, victimIP)
				}
			},
		},
		{
			name: "a GRE tunnel carrying 4,000 packets a second each way is no flood",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 8000 {
					at := time.Duration(i) * 250 * time.Microsecond
					fs = append(fs, crafted{at, greFrame(t, botIP, victimIP, false, uint16(i), 512)},
						crafted{at + 100*time.Microsecond, greFrame(t, victimIP, botIP, false, uint16(i), 512)})
				}
				return fs
			},
		},
		{
			name: "4,000 pings a second that nothing answers are an IP flood; as many answered are none",
			frames: func(t testing.TB) []crafted {
				other := net.IP{10, 200, 1, 8}
				var fs []crafted
				for i := range 4000 {
					at := time.Duration(i) * 250 * time.Microsecond
					fs = append(fs, crafted{at, icmpEchoFrame(t, botIP, victimIP, 8, uint16(i))},
						crafted{at + 10*time.Microsecond, icmpEchoFrame(t, botIP, other, 8, uint16(i))},
						crafted{at + 50*time.Microsecond, icmpEchoFrame(t, other, botIP, 0, uint16(i))})
				}
				return fs
			},
			want: "ip_flood",
			only: true,
			check: func(t *testing.T, s alert.Signal) {
				checkPeer(t, s, victimIP.String())
				if !strings.Contains(s.Explanation, "ICMPv4") {
					t.Errorf("explanation %q does not name ICMP", s.Explanation)
				}
			},
		},
		{
			name: "Mirai's STOMP flood, 768-byte PSH-ACKs inside a real connection whose sequence steps by one, is an ACK flood",
			frames: func(t testing.TB) []crafted {
				fs := tcpHandshake(t, 0, botIP, victimIP, 40000, 80)
				isn, serverISN := uint32(40000)*7919+1, uint32(80)*104729+40000+1
				for i := range 5000 {
					at := 3*time.Millisecond + time.Duration(i)*200*time.Microsecond
					fs = append(fs, crafted{at, tcpSeqFrame(t, botIP, victimIP, 40000, 80, "PA", isn+uint32(i), serverISN, make([]byte, 768))})
					if i%10 == 0 { // the target's duplicate ACKs keep the connection talking
						fs = append(fs, crafted{at + 50*time.Microsecond, tcpSeqFrame(t, victimIP, botIP, 80, 40000, "A", serverISN, isn, nil)})
					}
				}
				return fs
			},
			want:  "ack_flood",
			only:  true,
			check: func(t *testing.T, s alert.Signal) { checkPeer(t, s, victimIP.String()+":80") },
		},
		{
			name: "STOMP from a little-endian bot, its sequence numbers stepping by 65,536, is an ACK flood",
			frames: func(t testing.TB) []crafted {
				fs := tcpHandshake(t, 0, botIP, victimIP, 40000, 80)
				for i := range 5000 {
					at := 3*time.Millisecond + time.Duration(i)*200*time.Microsecond
					fs = append(fs, crafted{at, tcpSeqFrame(t, botIP, victimIP, 40000, 80, "PA", uint32(i)<<16, 77, make([]byte, 768))})
					if i%10 == 0 {
						fs = append(fs, crafted{at + 50*time.Microsecond, tcpSeqFrame(t, victimIP, botIP, 80, 40000, "A", 9, 1, nil)})
					}
				}
				return fs
			},
			want: "ack_flood",
			only: true,
		},
		{
			// Each retransmission counts once (200 a second here), not again at
			// the segment after it, which carries on from the furthest end.
			name:  "an upload of 4,000 segments a second that retransmits one in 20 is no ACK flood, even at a rate of 300",
			rules: Rules{ACKFloodRate: 300},
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 8000 {
					at := time.Duration(i) * 250 * time.Microsecond
					fs = append(fs, crafted{at, tcpSeqFrame(t, botIP, victimIP, 40000, 80, "PA", 1+uint32(i)*1400, 1, make([]byte, 1400))})
					if i%20 == 19 { // the segment 10 back, again
						fs = append(fs, crafted{at + 10*time.Microsecond, tcpSeqFrame(t, botIP, victimIP, 40000, 80, "PA", 1+uint32(i-10)*1400, 1, make([]byte, 1400))})
					}
					if i%2 == 1 {
						fs = append(fs, crafted{at + 20*time.Microsecond, tcpSeqFrame(t, victimIP, botIP, 80, 40000, "A", 1, 1+uint32(i-12)*1400, nil)})
					}
				}
				return fs
			},
		},
		{
			// Each loss is two strays (the segment after the gap, then the
			// retransmission), 360 in half a second, but the receiver's
			// acknowledgement keeps moving: a real 2 Gbit/s download through
			// a 2% random drop (nft numgen) raised nothing at a rate of 20.
			name:  "a download of 18,000 segments a second losing one in 50, its receiver acknowledging as the holes fill, is no ACK flood at a rate of 100",
			rules: Rules{ACKFloodRate: 100},
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				seg := func(i int) uint32 { return 1 + uint32(i)*1448 }
				hole := -1 // the segment lost and not yet retransmitted
				for i := range 9000 {
					at := time.Duration(i) * 55 * time.Microsecond
					if i%50 == 25 {
						hole = i // lost before the sensor
					} else {
						fs = append(fs, crafted{at, tcpSeqFrame(t, victimIP, botIP, 443, 40000, "A", seg(i), 1, make([]byte, 1448))})
					}
					if hole >= 0 && i == hole+5 {
						fs = append(fs, crafted{at + 10*time.Microsecond, tcpSeqFrame(t, victimIP, botIP, 443, 40000, "A", seg(hole), 1, make([]byte, 1448))})
						hole = -1
					}
					if i%2 == 1 { // cumulative: up to the hole while there is one
						acked := seg(i + 1)
						if hole >= 0 {
							acked = seg(hole)
						}
						fs = append(fs, crafted{at + 20*time.Microsecond, tcpSeqFrame(t, botIP, victimIP, 40000, 443, "A", 1, acked, nil)})
					}
				}
				return fs
			},
		},
		{
			name: "Mirai's HTTP flood, 400 GET requests a second over 4 kept-alive connections, is an HTTP flood",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for c := range 4 {
					fs = append(fs, tcpHandshake(t, time.Duration(c)*time.Millisecond, botIP, victimIP, uint16(40000+c), 80)...)
				}
				req := []byte("GET / HTTP/1.1\r\nHost: 10.200.1.7\r\nUser-Agent: Mozilla/5.0\r\nConnection: keep-alive\r\n\r\n")
				resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
				var sent, got [4]uint32
				for i := range 600 {
					c := i % 4
					cport := uint16(40000 + c)
					isn, serverISN := uint32(cport)*7919+1, uint32(80)*104729+uint32(cport)+1
					at := 10*time.Millisecond + time.Duration(i)*2500*time.Microsecond
					fs = append(fs, crafted{at, tcpSeqFrame(t, botIP, victimIP, cport, 80, "PA", isn+sent[c], serverISN+got[c], req)})
					sent[c] += uint32(len(req))
					fs = append(fs, crafted{at + 500*time.Microsecond, tcpSeqFrame(t, victimIP, botIP, 80, cport, "PA", serverISN+got[c], isn+sent[c], resp)})
					got[c] += uint32(len(resp))
				}
				return fs
			},
			want:  "http_flood",
			only:  true,
			check: func(t *testing.T, s alert.Signal) { checkPeerHost(t, s, victimIP.String()) },
		},
		{
			name: "a browser fetching a page and its 120 images over 6 connections is no HTTP flood",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for c := range 6 {
					fs = append(fs, tcpHandshake(t, time.Duration(c)*time.Millisecond, botIP, victimIP, uint16(40000+c), 80)...)
				}
				var sent [6]uint32
				for i := range 121 {
					c := i % 6
					cport := uint16(40000 + c)
					isn, serverISN := uint32(cport)*7919+1, uint32(80)*104729+uint32(cport)+1
					req := []byte(fmt.Sprintf("GET /img/%d.jpg HTTP/1.1\r\nHost: nas.local\r\n\r\n", i))
					at := 10*time.Millisecond + time.Duration(i)*5*time.Millisecond
					fs = append(fs, crafted{at, tcpSeqFrame(t, botIP, victimIP, cport, 80, "PA", isn+sent[c], serverISN, req)})
					sent[c] += uint32(len(req))
				}
				return fs
			},
		},
		{
			name: "Mirai's DNS water torture, queries for 150 random names under one domain in 3 s, is water torture",
			frames: func(t testing.TB) []crafted {
				resolver := net.IP{10, 200, 1, 1}
				var fs []crafted
				for i := range 150 {
					name := fmt.Sprintf("%012x.Target-Shop.example", uint64(i)*0x9e3779b97f4a7c15>>16)
					fs = append(fs, crafted{time.Duration(i) * 20 * time.Millisecond, udpFrame(t, botIP, resolver, uint16(30000+i), 53, dnsQuery(uint16(i), name))})
				}
				return fs
			},
			want: "dns_water_torture",
			only: true,
			check: func(t *testing.T, s alert.Signal) {
				if !strings.Contains(s.Explanation, "target-shop.example") && !strings.Contains(s.Explanation, "Target-Shop.example") {
					t.Errorf("explanation %q does not name the domain", s.Explanation)
				}
			},
		},
		{
			name: "150 reverse lookups of one /24, and 40 names under one CDN domain, are no water torture",
			frames: func(t testing.TB) []crafted {
				resolver := net.IP{10, 200, 1, 1}
				var fs []crafted
				for i := range 150 {
					fs = append(fs, crafted{time.Duration(i) * 20 * time.Millisecond, udpFrame(t, botIP, resolver, uint16(30000+i), 53, dnsQuery(uint16(i), fmt.Sprintf("%d.2.0.192.in-addr.arpa", i)))})
				}
				for i := range 40 {
					fs = append(fs, crafted{3*time.Second + time.Duration(i)*20*time.Millisecond, udpFrame(t, botIP, resolver, uint16(31000+i), 53, dnsQuery(uint16(i), fmt.Sprintf("img%d.cdn.example", i)))})
				}
				return fs
			},
		},
		{
			name: "a bot sending SYNs to port 23 of 50 hosts in 5 s is a Telnet scan",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 50 {
					port := uint16(23)
					if i%10 == 0 {
						port = 2323
					}
					fs = append(fs, crafted{time.Duration(i) * 100 * ms, tcpFrame(t, botIP, net.IP{10, 200, 2, byte(i)}, 40000, port, "S", nil)})
				}
				return fs
			},
			want: "telnet_scan",
			check: func(t *testing.T, s alert.Signal) {
				if s.SrcIP != "10.200.1.66" || s.Score != 10 || s.Detector != "rule" || s.SrcMAC != "02:00:00:00:00:0a" {
					t.Errorf("signal %+v", s)
				}
			},
		},
		{
			name: "a bot sending SYNs to port 5555 of 60 hosts in 6 s is a host scan",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 60 {
					fs = append(fs, crafted{time.Duration(i) * 100 * ms, tcpFrame(t, botIP, net.IP{198, 51, byte(i), 7}, 40000, 5555, "S", nil)})
				}
				return fs
			},
			want: "host_scan",
			check: func(t *testing.T, s alert.Signal) {
				if s.SrcIP != "10.200.1.66" || s.Score != 50 || !strings.Contains(s.Explanation, "port 5555 of 50 hosts") {
					t.Errorf("signal %+v", s)
				}
			},
		},
		{
			name: "a recorder reconnecting to 30 cameras on 554 in 3 s is no host scan",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 30 {
					fs = append(fs, crafted{time.Duration(i) * 100 * ms, tcpFrame(t, botIP, net.IP{10, 200, 3, byte(i)}, uint16(40000+i), 554, "S", nil)})
				}
				return fs
			},
		},
		{
			name: "SYNs to 23 of 5 hosts are not a scan",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 5 {
					fs = append(fs, crafted{time.Duration(i) * 100 * ms, tcpFrame(t, botIP, net.IP{10, 200, 2, byte(i)}, 40000, 23, "S", nil)})
				}
				return fs
			},
		},
		{
			name: "3,000 SYNs to random hosts on random ports in 10 s are a random scan",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				x := uint32(2463534242)
				for i := range 3000 {
					x ^= x << 13
					x ^= x >> 17
					x ^= x << 5
					dst := net.IP{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)}
					fs = append(fs, crafted{time.Duration(i) * 3 * ms, tcpFrame(t, botIP, dst, uint16(40000+i%1000), uint16(x%60000+1000), "S", nil)})
				}
				return fs
			},
			want: "random_scan",
			check: func(t *testing.T, s alert.Signal) {
				if s.SrcIP != "10.200.1.66" || s.Score != 100 || s.Severity != alert.SeverityHigh {
					t.Errorf("signal %+v", s)
				}
			},
			only: true,
		},
		{
			name: "a recorder completing 135 connections to 45 cameras on 80, 554 and 8000 in 4 s is no scan",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 135 {
					cam := net.IP{10, 200, 3, byte(10 + i/3)}
					port := []uint16{80, 554, 8000}[i%3]
					at := time.Duration(i) * 30 * ms
					fs = append(fs, tcpHandshake(t, at, botIP, cam, uint16(40000+i), port)...)
				}
				return fs
			},
		},
		{
			name: "a browser completing 110 connections to CDN hosts on 443 in 6 s is no scan",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 110 {
					fs = append(fs, tcpHandshake(t, time.Duration(i)*55*ms, botIP, net.IP{151, 101, byte(i), 1}, uint16(40000+i), 443)...)
				}
				return fs
			},
		},
		{
			name: "a smart TV opening 60 connections to CDN hosts on 443 and 80 in 10 s is no scan",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 60 {
					port := uint16(443)
					if i >= 45 {
						port = 80
					}
					fs = append(fs, crafted{time.Duration(i) * 150 * ms, tcpFrame(t, botIP, net.IP{151, 101, byte(i), 1}, uint16(40000+i), port, "S", nil)})
				}
				return fs
			},
		},
		{
			name: "SYNs to port 23 of 30 hosts, each split into 8-byte fragments as nmap -f does, are tiny fragments",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 30 {
					for j, f := range fragmentFrame(t, tcpFrame(t, botIP, net.IP{10, 200, 2, byte(i)}, 40000, 23, "S", nil), 8) {
						fs = append(fs, crafted{time.Duration(i)*100*ms + time.Duration(j)*time.Microsecond, f})
					}
				}
				return fs
			},
			want: "tiny_fragment",
			check: func(t *testing.T, s alert.Signal) {
				if s.SrcIP != "10.200.1.66" || s.Score != 8 || !strings.Contains(s.Explanation, "8 bytes of its TCP header") {
					t.Errorf("signal %+v", s)
				}
			},
			only: true,
		},
		{
			name: "SYNs to port 23 of 30 hosts in 24-byte first fragments are a Telnet scan",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 30 {
					for j, f := range fragmentFrame(t, tcpFrame(t, botIP, net.IP{10, 200, 2, byte(i)}, 40000, 23, "S", make([]byte, 40)), 24) {
						fs = append(fs, crafted{time.Duration(i)*100*ms + time.Duration(j)*time.Microsecond, f})
					}
				}
				return fs
			},
			want:  "telnet_scan",
			check: func(t *testing.T, s alert.Signal) { checkPeer(t, s, "10.200.2.9:23") },
			only:  true,
		},
		{
			name:   "SYNs to port 23 of 30 hosts over IPv6 in 24-byte fragments are a Telnet scan",
			frames: func(t testing.TB) []crafted { return ipv6FragmentedTelnetScan(t, 24) },
			want:   "telnet_scan",
			check:  func(t *testing.T, s alert.Signal) { checkPeer(t, s, "[fd00::2:a]:23") },
			only:   true,
		},
		{
			name:   "SYNs to port 23 of 30 hosts over IPv6 in 8-byte fragments are tiny fragments",
			frames: func(t testing.TB) []crafted { return ipv6FragmentedTelnetScan(t, 8) },
			want:   "tiny_fragment",
			only:   true,
		},
		{
			name: "2,000 SYNs to one host in half a second are a SYN flood",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 2000 {
					fs = append(fs, crafted{time.Duration(i) * 250 * time.Microsecond, tcpFrame(t, botIP, victimIP, uint16(1024+i), 80, "S", nil)})
				}
				return fs
			},
			want: "syn_flood",
			check: func(t *testing.T, s alert.Signal) {
				if s.SrcIP != "10.200.1.66" {
					t.Errorf("signal %+v", s)
				}
			},
			only: true,
		},
		{
			name: "2,000 SYNs to one host in half a second from spoofed sources are a SYN flood it receives",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 2000 {
					spoofed := net.IP{100, byte(i >> 8), byte(i), 1}
					fs = append(fs, crafted{time.Duration(i) * 250 * time.Microsecond, tcpFrame(t, spoofed, victimIP, uint16(1024+i), 80, "S", nil)})
				}
				return fs
			},
			want: "syn_flood_received",
			check: func(t *testing.T, s alert.Signal) {
				// The alert is the victim's: its address and MAC.
				if s.SrcIP != "10.200.1.7" || s.SrcMAC != macB.String() || s.Score != 1000 || !strings.HasPrefix(s.Peer, "100.3.231.1:") {
					t.Errorf("signal %+v", s)
				}
			},
		},
		{
			name: "500 SYNs from one source, then 2,000 from spoofed ones in the same second, are a SYN flood received",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 500 {
					fs = append(fs, crafted{time.Duration(i) * 100 * time.Microsecond, tcpFrame(t, net.IP{10, 9, 9, 9}, victimIP, uint16(1024+i), 80, "S", nil)})
				}
				for i := range 2000 {
					spoofed := net.IP{100, byte(i >> 8), byte(i), 1}
					fs = append(fs, crafted{50*ms + time.Duration(i)*400*time.Microsecond, tcpFrame(t, spoofed, victimIP, uint16(1024+i), 80, "S", nil)})
				}
				return fs
			},
			want: "syn_flood_received",
			check: func(t *testing.T, s alert.Signal) {
				if s.SrcIP != "10.200.1.7" || !strings.Contains(s.Explanation, "the most from one source, 10.9.9.9: 500") {
					t.Errorf("signal %+v", s)
				}
			},
			only: true,
		},
		{
			name: "999 SYNs from one source and 1 from another are no flood from many sources",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 999 {
					fs = append(fs, crafted{time.Duration(i) * 500 * time.Microsecond, tcpFrame(t, botIP, victimIP, uint16(1024+i), 80, "S", nil)})
				}
				return append(fs, crafted{600 * time.Millisecond, tcpFrame(t, net.IP{10, 200, 1, 77}, victimIP, 5555, 80, "S", nil)})
			},
		},
		{
			name: "12,000 UDP datagrams to one host in a second are a UDP flood",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 12000 {
					fs = append(fs, crafted{time.Duration(i) * 80 * time.Microsecond, udpFrame(t, botIP, victimIP, 5000, uint16(i), make([]byte, 512))})
				}
				return fs
			},
			want: "udp_flood",
		},
		{
			name: "a camera's 4K stream, 2,500 datagrams of 1,200 bytes a second, is no UDP flood",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 5000 {
					fs = append(fs, crafted{time.Duration(i) * 400 * time.Microsecond, udpFrame(t, botIP, victimIP, 5004, 40000, make([]byte, 1200))})
				}
				return fs
			},
		},
		{
			name: "a 100 Mbit/s download's 4,300 ACKs a second are no ACK flood",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 8600 {
					at := time.Duration(i) * 116 * time.Microsecond
					fs = append(fs, crafted{at, tcpSeqFrame(t, victimIP, botIP, 443, 40000, "A", 1+uint32(i)*1448, 1, make([]byte, 1448))})
					if i%2 == 1 {
						fs = append(fs, crafted{at + 20*time.Microsecond, tcpSeqFrame(t, botIP, victimIP, 40000, 443, "A", 1, 1+uint32(i+1)*1448, nil)})
					}
				}
				return fs
			},
		},
		{
			name: "1,500 devices reconnecting to their broker within a second are no SYN flood",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 1500 {
					dev := net.IP{10, 201, byte(i >> 8), byte(i)}
					at := time.Duration(i) * 600 * time.Microsecond
					isn, serverISN := uint32(i)*7919, ^uint32(i)
					fs = append(fs, crafted{at, tcpSeqFrame(t, dev, victimIP, 40000, 8883, "S", isn, 0, nil)},
						crafted{at + 200*time.Microsecond, tcpSeqFrame(t, victimIP, dev, 8883, 40000, "SA", serverISN, isn+1, nil)},
						crafted{at + 400*time.Microsecond, tcpSeqFrame(t, dev, victimIP, 40000, 8883, "A", isn+1, serverISN+1, nil)})
				}
				return fs
			},
		},
		{
			name: "1,500 devices reconnecting over IPv6 with TCP timestamps are no SYN flood",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				broker := net.ParseIP("fd00::1")
				for i := range 1500 {
					dev := net.ParseIP(fmt.Sprintf("fd00::1:%x", i+1))
					at := time.Duration(i) * 600 * time.Microsecond
					isn, serverISN := uint32(i)*7919, ^uint32(i)
					fs = append(fs, crafted{at, tcpOptionsFrame(t, dev, broker, 40000, 8883, "S", isn, 0, timestamps, nil)},
						crafted{at + 200*time.Microsecond, tcpOptionsFrame(t, broker, dev, 8883, 40000, "SA", serverISN, isn+1, timestamps, nil)},
						crafted{at + 400*time.Microsecond, tcpOptionsFrame(t, dev, broker, 40000, 8883, "A", isn+1, serverISN+1, timestamps, nil)})
				}
				return fs
			},
		},
		{
			name: "4,000 bare ACKs over IPv6 with timestamps are an ACK flood",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 4000 {
					fs = append(fs, crafted{time.Duration(i) * 200 * time.Microsecond,
						tcpOptionsFrame(t, net.ParseIP("fd00::66"), net.ParseIP("fd00::7"), uint16(1024+i), 80, "A", 1, 1, timestamps, nil)})
				}
				return fs
			},
			want: "ack_flood",
		},
		{
			name: "4,000 bare ACKs padded with 40 bytes of TCP options are an ACK flood",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				padding := []layers.TCPOption{{OptionType: 30, OptionLength: 40, OptionData: make([]byte, 38)}}
				for i := range 4000 {
					fs = append(fs, crafted{time.Duration(i) * 200 * time.Microsecond, tcpOptionsFrame(t, botIP, victimIP, uint16(1024+i), 80, "A", 1, 1, padding, nil)})
				}
				return fs
			},
			want: "ack_flood",
		},
		{
			name: "a flooder forging the server's SYN-ACK from its own MAC, then completing the handshake, still floods",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 2000 {
					at := time.Duration(i) * 250 * time.Microsecond
					isn, sport := uint32(i)*104729, uint16(1024+i)
					forged := tcpSeqFrame(t, victimIP, botIP, 80, sport, "SA", 5, isn+1, nil)
					copy(forged[6:12], macA) // the "server's" frame comes from the flooder
					fs = append(fs, crafted{at, tcpSeqFrame(t, botIP, victimIP, sport, 80, "S", isn, 0, nil)},
						crafted{at + 10*time.Microsecond, forged},
						crafted{at + 20*time.Microsecond, tcpSeqFrame(t, botIP, victimIP, sport, 80, "A", isn+1, 6, nil)})
				}
				return fs
			},
			want: "syn_flood",
			only: true,
		},
		{
			name: "an ACK flood behind a reply forged from the flooder's MAC is an ACK flood",
			frames: func(t testing.TB) []crafted {
				forged := tcpFrame(t, victimIP, botIP, 80, 40000, "A", nil)
				copy(forged[6:12], macA)
				fs := []crafted{{0, forged}}
				for i := range 5000 {
					fs = append(fs, crafted{ms + time.Duration(i)*200*time.Microsecond, tcpFrame(t, botIP, victimIP, 40000, 80, "PA", make([]byte, 512))})
				}
				return fs
			},
			want: "ack_flood",
			only: true,
		},
		{
			name: "5,000 FIN-PSH-ACKs with data to one host in a second are an ACK flood",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 5000 {
					fs = append(fs, crafted{time.Duration(i) * 200 * time.Microsecond, tcpFrame(t, botIP, victimIP, uint16(1024+i), 80, "FPA", make([]byte, 512))})
				}
				return fs
			},
			want: "ack_flood",
			only: true,
		},
		{
			name: "a flooder answering its own SYNs with ACKs, before the server or past it, still floods",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 2000 {
					at := time.Duration(i) * 250 * time.Microsecond
					isn, sport := uint32(i)*104729, uint16(1024+i)
					fs = append(fs, crafted{at, tcpSeqFrame(t, botIP, victimIP, sport, 80, "S", isn, 0, nil)})
					switch i % 3 {
					case 0: // an ACK with the right sequence before any SYN-ACK
						fs = append(fs, crafted{at + 10*time.Microsecond, tcpSeqFrame(t, botIP, victimIP, sport, 80, "A", isn+1, 12345, nil)})
					case 1: // the server answers; the flooder's ACK guesses its number wrong
						fs = append(fs, crafted{at + 50*time.Microsecond, tcpSeqFrame(t, victimIP, botIP, 80, sport, "SA", 777, isn+1, nil)},
							crafted{at + 100*time.Microsecond, tcpSeqFrame(t, botIP, victimIP, sport, 80, "A", isn+1, 12345, nil)})
					default: // an ACK of another connection altogether
						fs = append(fs, crafted{at + 10*time.Microsecond, tcpSeqFrame(t, botIP, victimIP, sport+1, 80, "A", isn+1, 1, nil)})
					}
				}
				return fs
			},
			want: "syn_flood",
			only: true,
		},
		{
			name: "4,000 bare ACKs to one host in a second are an ACK flood",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 4000 {
					fs = append(fs, crafted{time.Duration(i) * 200 * time.Microsecond, tcpFrame(t, botIP, victimIP, uint16(1024+i%5000), 80, "A", nil)})
				}
				return fs
			},
			want: "ack_flood",
		},
		{
			name: "an upload of 4,000 segments a second, acknowledged by the receiver, is no ACK flood",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 8000 {
					at := time.Duration(i) * 250 * time.Microsecond
					fs = append(fs, crafted{at, tcpSeqFrame(t, botIP, victimIP, 40000, 80, "PA", 1+uint32(i)*1400, 1, make([]byte, 1400))})
					if i%2 == 1 {
						fs = append(fs, crafted{at + 20*time.Microsecond, tcpSeqFrame(t, victimIP, botIP, 80, 40000, "A", 1, 1+uint32(i+1)*1400, nil)})
					}
				}
				return fs
			},
		},
		{
			name: "Mirai's ACK flood, PSH-ACKs with 512 bytes to random ports answered by resets, is an ACK flood",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 6000 {
					at := time.Duration(i) * 150 * time.Microsecond
					sport, dport := uint16(1024+i*7), uint16(1+i*13)
					fs = append(fs, crafted{at, tcpSeqFrame(t, botIP, victimIP, sport, dport, "PA", uint32(i)*2654435761, uint32(i), make([]byte, 512))},
						crafted{at + 30*time.Microsecond, tcpFrame(t, victimIP, botIP, dport, sport, "R", nil)})
				}
				return fs
			},
			want: "ack_flood",
			check: func(t *testing.T, s alert.Signal) {
				if s.SrcIP != "10.200.1.66" || !strings.Contains(s.Explanation, "outside any connection") {
					t.Errorf("signal %+v", s)
				}
			},
			only: true,
		},
		{
			name: "3 attempts to log in to an SSH server that is down, each SYN retransmitted 4 times, are no brute force",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for a := range 3 {
					start := time.Duration(a) * 20 * time.Second
					for _, after := range []time.Duration{0, 1, 3, 7, 15} {
						fs = append(fs, crafted{start + after*time.Second, tcpSeqFrame(t, botIP, victimIP, uint16(50000+a), 22, "S", uint32(a)*1000, 0, nil)})
					}
				}
				return fs
			},
		},
		{
			name: "SYNs to 100 ports of one host are a port scan",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 100 {
					fs = append(fs, crafted{time.Duration(i) * 10 * ms, tcpFrame(t, botIP, victimIP, 40000, uint16(1+i), "S", nil)})
				}
				return fs
			},
			want:  "port_scan",
			check: func(t *testing.T, s alert.Signal) { checkPeerHost(t, s, "10.200.1.7") },
		},
		{
			name: "UDP datagrams to 100 ports of one host are a port scan",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 100 {
					fs = append(fs, crafted{time.Duration(i) * 10 * ms, udpFrame(t, botIP, victimIP, 40000, uint16(1+i*10), nil)})
				}
				return fs
			},
			want: "port_scan",
			check: func(t *testing.T, s alert.Signal) {
				checkPeerHost(t, s, "10.200.1.7")
				if s.SrcIP != "10.200.1.66" || !strings.HasPrefix(s.Explanation, "UDP datagrams to 20 ports") {
					t.Errorf("signal %+v", s)
				}
			},
			only: true,
		},
		{
			name: "a hub broadcasting discovery to 22 ports, a traceroute and 25 TFTP transfers are no port scan",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 22 {
					fs = append(fs, crafted{time.Duration(i) * 1500 * ms, udpFrame(t, botIP, net.IP{255, 255, 255, 255}, 40000, uint16(1900+i*113), nil)})
				}
				for i := range 30 {
					fs = append(fs, crafted{time.Duration(i) * 100 * ms, udpFrame(t, botIP, net.IP{93, 184, 216, 34}, 45000, uint16(33434+i), nil)})
				}
				for i := range 25 { // the server answers each request from a transfer port above the client's
					at := time.Duration(i) * 2 * time.Second
					client, tid := uint16(40000+i), uint16(50000+i)
					fs = append(fs, crafted{at, udpFrame(t, botIP, victimIP, client, 69, []byte("\x00\x01fw.bin\x00octet\x00"))},
						crafted{at + ms, udpFrame(t, victimIP, botIP, tid, client, make([]byte, 516))},
						crafted{at + 2*ms, udpFrame(t, botIP, victimIP, client, tid, []byte{0, 4, 0, 1})})
				}
				return fs
			},
		},
		{
			name: "a DNS server answering 100 queries, each from its own port, is no port scan",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 100 {
					at := time.Duration(i) * 10 * ms
					fs = append(fs, crafted{at, udpFrame(t, victimIP, botIP, uint16(30000+i*7), 53, nil)},
						crafted{at + ms, udpFrame(t, botIP, victimIP, 53, uint16(30000+i*7), nil)})
				}
				return fs
			},
		},
		{
			name: "20 connections to SSH in 40 s are a brute-force login",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 20 {
					fs = append(fs, crafted{time.Duration(i) * 2 * time.Second, tcpFrame(t, botIP, victimIP, uint16(40000+i), 22, "S", nil)})
				}
				return fs
			},
			want:  "brute_force",
			check: func(t *testing.T, s alert.Signal) { checkPeer(t, s, "10.200.1.7:22") },
		},
		{
			name: "connections every 30 s with a few ms of jitter to a new public address are beaconing",
			frames: func(t testing.TB) []crafted {
				fs := []crafted{{0, udpFrame(t, botIP, victimIP, 5000, 53, nil)}}
				for i := range 10 {
					at := 11*time.Minute + time.Duration(i)*30*time.Second + time.Duration(i%3)*7*ms
					fs = append(fs, crafted{at, tcpFrame(t, botIP, net.IP{203, 0, 113, 9}, uint16(40000+i), 443, "S", nil)})
				}
				return fs
			},
			want: "c2_beaconing",
			check: func(t *testing.T, s alert.Signal) {
				checkPeer(t, s, "203.0.113.9:443")
				if s.Severity != alert.SeverityHigh {
					t.Errorf("severity %s, want high", s.Severity)
				}
			},
		},
		{
			name: "a device's call home moving to a new address on its port is medium beaconing",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 20 { // to its cloud while learning, then to a new address of it
					to := net.IP{52, 1, 2, 3}
					if i >= 12 {
						to = net.IP{52, 1, 9, 9}
					}
					fs = append(fs, crafted{time.Duration(i) * time.Minute, tcpFrame(t, botIP, to, uint16(40000+i), 8883, "S", nil)})
				}
				return fs
			},
			want: "c2_beaconing",
			check: func(t *testing.T, s alert.Signal) {
				if s.Severity != alert.SeverityMedium || !strings.Contains(s.Explanation, "its own cloud service at a new address") {
					t.Errorf("signal %+v", s)
				}
			},
		},
		{
			name: "a device that joins after 30 minutes and calls its cloud every 30 s is not beaconing",
			frames: func(t testing.TB) []crafted {
				fs := []crafted{{0, udpFrame(t, victimIP, net.IP{10, 200, 1, 1}, 5000, 53, nil)}} // the capture starts with someone else
				for i := range 40 {
					fs = append(fs, crafted{30*time.Minute + time.Duration(i)*30*time.Second, tcpFrame(t, botIP, net.IP{52, 1, 2, 3}, uint16(40000+i), 443, "S", nil)})
				}
				return fs
			},
		},
		{
			name: "a device that DHCP moves to a new address keeps calling its cloud every 30 s: not beaconing",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 80 {
					src := net.IP{192, 168, 1, 50}
					if i >= 40 {
						src = net.IP{192, 168, 1, 77}
					}
					fs = append(fs, crafted{time.Duration(i) * 30 * time.Second, tcpFrame(t, src, net.IP{52, 1, 2, 3}, uint16(40000+i), 443, "S", nil)})
				}
				return fs
			},
		},
		{
			name: "a device switched off for 3 hours calls its cloud again every 30 s: not beaconing",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 80 {
					at := time.Duration(i) * 30 * time.Second
					if i >= 40 {
						at += 3 * time.Hour
					}
					fs = append(fs, crafted{at, tcpFrame(t, botIP, net.IP{52, 1, 2, 3}, uint16(40000+i), 443, "S", nil)})
				}
				// Others talk meanwhile, enough packets for idle state to be
				// swept.
				for i := range 10000 {
					fs = append(fs, crafted{21*time.Minute + time.Duration(i)*time.Second, udpFrame(t, victimIP, net.IP{10, 200, 1, 1}, 5000, 5000, nil)})
				}
				slices.SortStableFunc(fs, func(a, b crafted) int { return cmp.Compare(a.at, b.at) })
				return fs
			},
		},
		{
			name: "regular connections to a destination known from the learning period are not beaconing",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 40 {
					fs = append(fs, crafted{time.Duration(i) * 30 * time.Second, tcpFrame(t, botIP, net.IP{203, 0, 113, 9}, uint16(40000+i), 443, "S", nil)})
				}
				return fs
			},
		},
		{
			// HTTPS to the internet after 11 minutes of DNS only is a new
			// destination class (the cases below); here only beaconing is
			// in question.
			name: "connections at irregular times are not beaconing",
			frames: func(t testing.TB) []crafted {
				fs := []crafted{{0, udpFrame(t, botIP, victimIP, 5000, 53, nil)}}
				at := 11 * time.Minute
				for i := range 12 {
					at += time.Duration(5+(i*7)%23) * time.Second
					fs = append(fs, crafted{at, tcpFrame(t, botIP, net.IP{203, 0, 113, 9}, uint16(40000+i), 443, "S", nil)})
				}
				return fs
			},
			rules: Rules{NoNewDestination: true},
		},
		{
			name: "a device that only spoke HTTPS to the internet and then keeps opening Telnet to it has a new destination class",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 30 {
					fs = append(fs, crafted{time.Duration(i) * 30 * time.Second, tcpFrame(t, botIP, net.IP{203, 0, 113, 9}, uint16(40000+i), 443, "S", nil)})
				}
				for i := range 3 {
					fs = append(fs, crafted{16*time.Minute + time.Duration(i)*time.Second, tcpFrame(t, botIP, net.IP{198, 51, 100, byte(i)}, uint16(41000+i), 23, "S", nil)})
				}
				return fs
			},
			want: "new_destination",
			check: func(t *testing.T, s alert.Signal) {
				checkPeer(t, s, "198.51.100.2:23")
				if s.Severity != alert.SeverityHigh || !strings.Contains(s.Explanation, "telnet to internet") {
					t.Errorf("signal %+v: want high severity, telnet to internet", s)
				}
			},
		},
		{
			name: "a device that first probed 100 services once each still has a new destination class when it keeps opening Telnet",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 30 {
					fs = append(fs, crafted{time.Duration(i) * 30 * time.Second, tcpFrame(t, botIP, net.IP{203, 0, 113, 9}, uint16(40000+i), 443, "S", nil)})
				}
				for i := range 100 { // one datagram to each of 100 low ports of 100 hosts, 3 s apart: below every rule
					fs = append(fs, crafted{16*time.Minute + time.Duration(i)*3*time.Second, udpFrame(t, botIP, net.IP{203, 0, 113, byte(50 + i)}, 40000, uint16(200+i), nil)})
				}
				for i := range 3 {
					fs = append(fs, crafted{22*time.Minute + time.Duration(i)*time.Second, tcpFrame(t, botIP, net.IP{198, 51, 100, byte(i)}, uint16(41000+i), 23, "S", nil)})
				}
				return fs
			},
			want:  "new_destination",
			check: func(t *testing.T, s alert.Signal) { checkPeer(t, s, "198.51.100.2:23") },
			only:  true,
		},
		{
			name: "a single probe of a new class is not a new destination class",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 30 {
					fs = append(fs, crafted{time.Duration(i) * 30 * time.Second, tcpFrame(t, botIP, net.IP{203, 0, 113, 9}, uint16(40000+i), 443, "S", nil)})
				}
				fs = append(fs, crafted{16 * time.Minute, tcpFrame(t, botIP, victimIP, 42000, 3389, "S", nil)})
				fs = append(fs, crafted{18 * time.Minute, tcpFrame(t, botIP, victimIP, 42001, 3389, "S", nil)})
				return fs
			},
		},
		{
			name: "classes first opened during the learning period are not new",
			frames: func(t testing.TB) []crafted {
				var fs []crafted
				for i := range 30 {
					fs = append(fs, crafted{time.Duration(i) * 30 * time.Second, tcpFrame(t, botIP, net.IP{203, 0, 113, 9}, uint16(40000+i), 443, "S", nil)})
					fs = append(fs, crafted{time.Duration(i)*30*time.Second + ms, udpFrame(t, botIP, victimIP, uint16(50000+i), 53, nil)})
				}
				return fs
			},
		},
		{
			name: "an HTTP Basic authorization names its user, not its password",
			frames: func(t testing.TB) []crafted {
				req := "GET /cgi-bin/snapshot HTTP/1.1\r\nHost: cam\r\nAuthorization: Basic " +
					base64.StdEncoding.EncodeToString([]byte("admin:hunter2")) + "\r\n\r\n"
				return []crafted{{0, tcpFrame(t, botIP, victimIP, 40000, 8080, "PA", []byte(req))}}
			},
			want:  "plaintext_credentials",
			check: checkUserNotPassword("admin", "hunter2"),
		},
		{
			name: "FTP USER then PASS names the user",
			frames: func(t testing.TB) []crafted {
				return []crafted{
					{0, tcpFrame(t, victimIP, botIP, 21, 40000, "PA", []byte("220 ready\r\n"))},
					{ms, tcpFrame(t, botIP, victimIP, 40000, 21, "PA", []byte("USER operator\r\n"))},
					{2 * ms, tcpFrame(t, victimIP, botIP, 21, 40000, "PA", []byte("331 password\r\n"))},
					{3 * ms, tcpFrame(t, botIP, victimIP, 40000, 21, "PA", []byte("PASS s3cret\r\n"))},
				}
			},
			want:  "plaintext_credentials",
			check: checkUserNotPassword("operator", "s3cret"),
		},
		{
			name: "an MQTT CONNECT with a password names the user",
			frames: func(t testing.TB) []crafted {
				return []crafted{{0, tcpFrame(t, botIP, victimIP, 40000, 1883, "PA", mqttConnect("sensor-1", "iot", "pa55"))}}
			},
			want:  "plaintext_credentials",
			check: checkUserNotPassword("iot", "pa55"),
		},
		{
			name: "FTP USER and PASS pipelined in one segment name the user",
			frames: func(t testing.TB) []crafted {
				return []crafted{{0, tcpFrame(t, botIP, victimIP, 40000, 21, "PA", []byte("USER root\r\nPASS toor\r\n"))}}
			},
			want:  "plaintext_credentials",
			check: checkUserNotPassword("root", "toor"),
		},
		{
			name: "an MQTT 5 CONNECT with properties, a will and a password names the user",
			frames: func(t testing.TB) []crafted {
				return []crafted{{0, tcpFrame(t, botIP, victimIP, 40000, 1883, "PA", mqtt5ConnectWithWill("sensor-1", "iot", "pa55"))}}
			},
			want:  "plaintext_credentials",
			check: checkUserNotPassword("iot", "pa55"),
		},
		{
			name: "a camera polled with HTTP Basic every 10 s for 8 minutes is one signal",
			frames: func(t testing.TB) []crafted {
				req := "GET /snap.jpg HTTP/1.1\r\nAuthorization: Basic " + base64.StdEncoding.EncodeToString([]byte("admin:admin")) + "\r\n\r\n"
				var fs []crafted
				for i := range 48 {
					fs = append(fs, crafted{time.Duration(i) * 10 * time.Second, tcpFrame(t, botIP, victimIP, uint16(40000+i), 80, "PA", []byte(req))})
				}
				return fs
			},
			want:  "plaintext_credentials",
			check: checkUserNotPassword("admin", "admin:"),
		},
		{
			name: "an MQTT CONNECT without a password is not a credential",
			frames: func(t testing.TB) []crafted {
				c := mqttConnect("sensor-1", "iot", "pa55")
				c[9] &^= 0x40 // clear the password flag
				return []crafted{{0, tcpFrame(t, botIP, victimIP, 40000, 1883, "PA", c)}}
			},
		},
		{
			name: "a Telnet login typed one key at a time names the user",
			frames: func(t testing.TB) []crafted {
				fs := []crafted{{0, tcpFrame(t, victimIP, botIP, 23, 40000, "PA", []byte("\xff\xfb\x01cam login: "))}}
				at := ms
				for _, c := range "root\r\n" {
					fs = append(fs, crafted{at, tcpFrame(t, botIP, victimIP, 40000, 23, "PA", []byte{byte(c)})})
					at += ms
				}
				fs = append(fs, crafted{at, tcpFrame(t, victimIP, botIP, 23, 40000, "PA", []byte("Password: "))})
				fs = append(fs, crafted{at + ms, tcpFrame(t, botIP, victimIP, 40000, 23, "PA", []byte("xc3511\r\n"))})
				return fs
			},
			want:  "plaintext_credentials",
			check: checkUserNotPassword("root", "xc3511"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sigs := runRules(t, writeCraftedCapture(t, tt.frames(t)), tt.rules, 0)
			if tt.want == "" {
				if len(sigs) > 0 {
					t.Fatalf("want no signal, got %+v", sigs)
				}
				return
			}
			var got []alert.Signal
			for _, s := range sigs {
				if err := s.Validate(); err != nil {
					t.Errorf("invalid signal %+v: %v", s, err)
				}
				if s.Behaviour == tt.want {
					got = append(got, s)
				}
			}
			if len(got) != 1 || tt.only && len(sigs) != 1 {
				t.Fatalf("want one %s signal, got %d of %d: %+v", tt.want, len(got), len(sigs), sigs)
			}
			if tt.check != nil {
				tt.check(t, got[0])
			}
		})
	}
}

func checkPeer(t *testing.T, s alert.Signal, peer string) {
	t.Helper()
	if s.Peer != peer {
		t.Errorf("peer %q, want %q", s.Peer, peer)
	}
}

func checkPeerHost(t *testing.T, s alert.Signal, host string) {
	t.Helper()
	if !strings.HasPrefix(s.Peer, host+":") {
		t.Errorf("peer %q, want host %s", s.Peer, host)
	}
}

func checkUserNotPassword(user, password string) func(*testing.T, alert.Signal) {
	return func(t *testing.T, s alert.Signal) {
		t.Helper()
		if !strings.Contains(s.Explanation, `"`+user+`"`) {
			t.Errorf("explanation %q does not name user %q", s.Explanation, user)
		}
		if strings.Contains(s.Explanation, password) {
			t.Errorf("explanation %q reveals the password", s.Explanation)
		}
	}
}

// fragmentFrame splits the IPv4 packet of an Ethernet frame (IHL 5) into
// fragments of size bytes of payload (a multiple of 8; the last holds the
// rest), as a sender fragmenting on purpose would.
func fragmentFrame(t testing.TB, f []byte, size int) [][]byte {
	t.Helper()
	ip, payload := f[14:34], f[34:]
	var out [][]byte
	for off := 0; off < len(payload); off += size {
		end := min(off+size, len(payload))
		frag := append(append(append([]byte{}, f[:14]...), ip...), payload[off:end]...)
		h := frag[14:34]
		binary.BigEndian.PutUint16(h[2:4], uint16(20+end-off))
		flags := uint16(off / 8)
		if end < len(payload) {
			flags |= 0x2000 // more fragments
		}
		binary.BigEndian.PutUint16(h[6:8], flags)
		h[10], h[11] = 0, 0
		var sum uint32
		for i := 0; i < 20; i += 2 {
			sum += uint32(binary.BigEndian.Uint16(h[i:]))
		}
		for sum > 0xffff {
			sum = sum&0xffff + sum>>16
		}
		binary.BigEndian.PutUint16(h[10:12], ^uint16(sum))
		out = append(out, frag)
	}
	return out
}

// ipv6FragmentedTelnetScan is SYNs to port 23 of 30 hosts over IPv6, each
// split into fragments of size bytes.
func ipv6FragmentedTelnetScan(t testing.TB, size int) []crafted {
	var fs []crafted
	for i := range 30 {
		dst := net.ParseIP(fmt.Sprintf("fd00::2:%x", i+1))
		syn := tcpOptionsFrame(t, net.ParseIP("fd00::66"), dst, 40000, 23, "S", 7, 0, nil, make([]byte, 40))
		for j, f := range fragmentFrame6(t, syn, size) {
			fs = append(fs, crafted{time.Duration(i)*100*time.Millisecond + time.Duration(j)*time.Microsecond, f})
		}
	}
	return fs
}

// fragmentFrame6 splits the IPv6 packet of an Ethernet frame (no
// extension headers) into fragments of size bytes of payload (a multiple
// of 8; the last holds the rest), each behind a fragment header.
func fragmentFrame6(t testing.TB, f []byte, size int) [][]byte {
	t.Helper()
	ip, payload := f[14:54], f[54:]
	next := ip[6]
	var out [][]byte
	for off := 0; off < len(payload); off += size {
		end := min(off+size, len(payload))
		frag := append(append([]byte{}, f[:14]...), ip...)
		binary.BigEndian.PutUint16(frag[14+4:], uint16(8+end-off))
		frag[14+6] = byte(layers.IPProtocolIPv6Fragment)
		more := uint16(0)
		if end < len(payload) {
			more = 1
		}
		frag = append(frag, next, 0, 0, 0, 0, 0, 0, 42)
		binary.BigEndian.PutUint16(frag[54+2:], uint16(off/8)<<3|more)
		out = append(out, append(frag, payload[off:end]...))
	}
	return out
}

// mqttConnect builds an MQTT 3.1.1 CONNECT with a user name and password.
func mqttConnect(client, user, password string) []byte {
	str := func(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }
	var body bytes.Buffer
	body.Write(str("MQTT"))
	body.Write([]byte{4, 0xc2, 0, 60})
	body.Write(str(client))
	body.Write(str(user))
	body.Write(str(password))
	return append([]byte{0x10, byte(body.Len())}, body.Bytes()...)
}

// mqtt5ConnectWithWill builds an MQTT 5 CONNECT with connect properties,
// a will (with its own properties), a user name and a password.
func mqtt5ConnectWithWill(client, user, password string) []byte {
	str := func(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }
	var body bytes.Buffer
	body.Write(str("MQTT"))
	body.Write([]byte{5, 0xc2 | 0x04, 0, 60})
	body.Write([]byte{5, 0x11, 0, 0, 0, 30}) // properties: session expiry 30 s
	body.Write(str(client))
	body.Write([]byte{2, 0x01, 1}) // will properties: payload format UTF-8
	body.Write(str("devices/" + client + "/status"))
	body.Write(str("offline"))
	body.Write(str(user))
	body.Write(str(password))
	return append([]byte{0x10, byte(body.Len())}, body.Bytes()...)
}

// The first 38,363 packets of the Mirai splice are benign; the rules must
// stay quiet on them.
func TestRulesAreQuietOnBenignTraffic(t *testing.T) {
	path := datasetPath(t, "mirai-splice.pcap")
	for _, s := range runRules(t, path, Rules{}, 38363) {
		t.Errorf("signal on benign traffic: %+v", s)
	}
}

// The attack part of the splice: the infected camera 192.168.2.110 starts
// opening Telnet to local hosts, which it never did in its first 23 minutes.
func TestRulesSeeTheInfectedCameraOpenANewDestinationClass(t *testing.T) {
	path := datasetPath(t, "mirai-splice.pcap")
	var got []alert.Signal
	for _, s := range runRules(t, path, Rules{}, 0) {
		if s.Behaviour == "new_destination" {
			got = append(got, s)
		}
	}
	if len(got) != 1 || got[0].SrcIP != "192.168.2.110" || !strings.Contains(got[0].Explanation, "telnet to local") {
		t.Fatalf("new_destination signals %+v, want one on 192.168.2.110 for telnet to local", got)
	}
}

// A scan of more public addresses than the beacon table holds, after the
// learning period, does not make the table forget a device's own calls
// home: they stay known, and raise no c2_beaconing.
func TestRulesKeepTheKnownBeaconsThroughAScan(t *testing.T) {
	det := NewRuleDetector(Rules{})
	home := Host{Kind: AddrIPv4, Addr: [16]byte{52, 1, 2, 3}}
	dev := Host{Kind: AddrIPv4, Addr: [16]byte{192, 168, 1, 57}}
	call := func(at float64) []alert.Signal {
		p := Packet{Time: at, Ports: PortNumber, Proto: layers.IPProtocolTCP, TCPFlags: FlagSYN, Src: dev, Dst: home, SrcPort: 40000, DstPort: 443}
		return det.Observe(&p, nil)
	}
	at := 1000.0
	for ; at < 1000+15*60; at += 30 { // learning, and 5 min past it
		call(at)
	}
	bot := Host{Kind: AddrIPv4, Addr: [16]byte{192, 168, 1, 66}}
	p := Packet{Ports: PortNumber, Proto: layers.IPProtocolTCP, TCPFlags: FlagSYN, Src: bot, SrcPort: 40000, DstPort: 8080}
	p.Dst.Kind = AddrIPv4
	for i := range maxRuleKeys + 1000 {
		p.Time = at + float64(i)*1e-4
		p.Dst.Addr[0], p.Dst.Addr[1], p.Dst.Addr[2], p.Dst.Addr[3] = 45, byte(i>>16), byte(i>>8), byte(i)
		det.Observe(&p, nil)
	}
	for range 20 {
		at += 30
		for _, s := range call(at) {
			if s.Behaviour == "c2_beaconing" {
				t.Fatalf("the device's own call home, known since learning, raised %+v after the scan", s)
			}
		}
	}
	if n := len(det.beacons); n > maxRuleKeys {
		t.Errorf("%d beacon entries kept", n)
	}
}

func TestRulesStateIsBounded(t *testing.T) {
	det := NewRuleDetector(Rules{})
	p := Packet{Ports: PortNumber, Proto: layers.IPProtocolTCP, TCPFlags: FlagSYN, DstPort: 23}
	p.Src.Kind, p.Dst.Kind = AddrIPv4, AddrIPv4
	for i := range 200000 {
		p.Time = float64(i) / 1000
		p.Src.Addr[0], p.Src.Addr[1], p.Src.Addr[2] = byte(i), byte(i>>8), byte(i>>16)
		det.Observe(&p, nil)
	}
	// Sources idle for longer than every window are gone: the Telnet
	// window is 10 s, i.e. 10,000 packets here, and beacon state lasts
	// 2 h of idle time, so only the beacon table keeps everything.
	if n := len(det.telnet); n > 20000 {
		t.Errorf("%d Telnet scan windows kept", n)
	}
}

func TestDecodingWithPayloadsDoesNotAllocate(t *testing.T) {
	f := tcpFrame(t, botIP, victimIP, 40000, 23, "PA", bytes.Repeat([]byte("x"), 600))
	dec := NewDecoder(LinkEthernet)
	dec.PayloadPrefix = MaxPayloadPrefix
	ci := gopacket.CaptureInfo{Timestamp: time.Unix(1, 0), CaptureLength: len(f), Length: len(f)}
	var p Packet
	allocs := testing.AllocsPerRun(1000, func() { dec.Decode(f, ci, &p) })
	if allocs != 0 {
		t.Errorf("%v allocations per decode", allocs)
	}
	if len(p.Payload) != MaxPayloadPrefix || p.TCPFlags != FlagPSH|FlagACK || p.Proto != layers.IPProtocolTCP {
		t.Errorf("payload %d bytes, flags %#x, proto %v", len(p.Payload), p.TCPFlags, p.Proto)
	}
	dec.PayloadPrefix = 0
	dec.Decode(f, ci, &p)
	if p.Payload != nil {
		t.Errorf("payload copied though no rule asked for it")
	}
}

func FuzzRulesOnPayloads(f *testing.F) {
	f.Add(uint16(1883), mqttConnect("c", "u", "p"))
	f.Add(uint16(80), []byte("GET / HTTP/1.1\r\nAuthorization: Basic YWRtaW46eA==\r\n"))
	f.Add(uint16(21), []byte("USER x\r\n"))
	f.Add(uint16(23), []byte("\xff\xfb\x01root\r\n"))
	f.Add(uint16(80), []byte("\xff\nAuthoriZATion:")) // once a panic: ToLower lengthened the copy it searched
	f.Add(uint16(53), dnsQuery(7, "x1.example.com"))
	f.Fuzz(func(t *testing.T, port uint16, payload []byte) {
		// Each payload goes to a detector that fires at once (a threshold
		// of 1), over TCP and over UDP (port 53: the DNS rule).
		det := NewRuleDetector(Rules{DNSSubdomains: 1, HTTPFloodRate: 1})
		for i, proto := range []layers.IPProtocol{layers.IPProtocolTCP, layers.IPProtocolUDP} {
			p := Packet{Time: float64(i), Ports: PortNumber, Proto: proto, TCPFlags: FlagACK | FlagPSH, DstPort: port, SrcPort: port,
				Payload: payload[:min(len(payload), MaxPayloadPrefix)], PayloadLen: len(payload)}
			p.Src.Kind, p.Dst.Kind = AddrIPv4, AddrIPv4
			for _, s := range det.Observe(&p, nil) {
				if err := s.Validate(); err != nil {
					t.Errorf("invalid signal %+v: %v", s, err)
				}
			}
		}
	})
}

// Bytes that are not UTF-8 before the header must not move where the user
// name is read from (bytes.ToLower turned each into three bytes, and one
// such TCP payload crashed the sensor).
func TestHTTPBasicUserAfterInvalidUTF8(t *testing.T) {
	for _, pl := range []string{
		"\xff\xfe\x80GET / HTTP/1.1\r\nAuthorization: Basic YWRtaW46eA==\r\n",
		"GET /\xc3 HTTP/1.1\r\nAUTHORIZATION: basic YWRtaW46eA==\r\n",
	} {
		user, ok := httpBasicUser([]byte(pl))
		if !ok || string(user) != "admin" {
			t.Errorf("httpBasicUser(%q) = %q, %v; want admin", pl, user, ok)
		}
	}
	if _, ok := httpBasicUser([]byte("\xff\nAuthoriZATion:")); ok {
		t.Error("a header with no value named a user")
	}
}

func TestRulesSetChangesOneThresholdByName(t *testing.T) {
	var r Rules
	for _, kv := range [][2]string{{"telnet_scan_hosts", "25"}, {"brute_force_window", "2m"}, {"beacon_jitter", "0.2"}, {"no_new_destination", "true"}} {
		if err := r.Set(kv[0], kv[1]); err != nil {
			t.Fatalf("Set(%s, %s): %v", kv[0], kv[1], err)
		}
	}
	if r.TelnetScanHosts != 25 || r.BruteForceWindow != 2*time.Minute || r.BeaconJitter != 0.2 || !r.NoNewDestination {
		t.Errorf("rules %+v", r)
	}
	for _, kv := range [][2]string{{"telnet_scan_hosts", "-1"}, {"telnet_scan_hosts", "many"}, {"brute_force_window", "10"},
		{"beacon_jitter", "NaN"}, {"no_such_rule", "1"}, {"no_credentials", "perhaps"}} {
		err := r.Set(kv[0], kv[1])
		if err == nil || !strings.Contains(err.Error(), kv[0]) {
			t.Errorf("Set(%s, %s) = %v, want an error naming the setting", kv[0], kv[1], err)
		}
	}
	if len(RuleSettings()) != reflect.TypeFor[Rules]().NumField() {
		t.Error("RuleSettings misses a field")
	}
}

// TestDestinationClassKeysMatchTheirNames checks that two classes share a
// map key exactly when they share scope and service name: well-known
// services by name across TCP and UDP, port bands apart by protocol.
func TestDestinationClassKeysMatchTheirNames(t *testing.T) {
	byKey := map[uint32]string{}
	byName := map[string]uint32{}
	dst := Host{Kind: AddrIPv4, Addr: [16]byte{8, 8, 8, 8}}
	for _, proto := range []layers.IPProtocol{layers.IPProtocolTCP, layers.IPProtocolUDP} {
		for port := range 1 << 16 {
			p := Packet{Proto: proto, TCPFlags: FlagSYN, SrcPort: 0, DstPort: uint16(port), Dst: dst}
			c, ok := initiatedClass(&p)
			if !ok {
				continue
			}
			name := c.String()
			if other, seen := byKey[c.key()]; seen && other != name {
				t.Fatalf("%s and %s share the key %#x", name, other, c.key())
			}
			if k, seen := byName[name]; seen && k != c.key() {
				t.Fatalf("%s has two keys, %#x and %#x", name, k, c.key())
			}
			byKey[c.key()], byName[name] = name, c.key()
		}
	}
	if len(byKey) < 2000 {
		t.Errorf("only %d classes over all ports of TCP and UDP", len(byKey))
	}
}

// greFrame is one packet of Mirai's GRE floods: GRE wrapping a UDP
// datagram of size bytes to a random port, as an IP packet (greip) or in
// an Ethernet frame (greeth, transparent Ethernet bridging).
func greFrame(t testing.TB, src, dst net.IP, ethernet bool, port uint16, size int) []byte {
	t.Helper()
	outer := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolGRE, SrcIP: src, DstIP: dst}
	inner := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: src, DstIP: dst}
	udp := &layers.UDP{SrcPort: layers.UDPPort(port ^ 0x5a5a), DstPort: layers.UDPPort(port)}
	if ethernet {
		return frame(t, hostEth(src, dst, layers.EthernetTypeIPv4), outer, &layers.GRE{Protocol: layers.EthernetTypeTransparentEthernetBridging},
			&layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4}, inner, udp, gopacket.Payload(make([]byte, size)))
	}
	return frame(t, hostEth(src, dst, layers.EthernetTypeIPv4), outer, &layers.GRE{Protocol: layers.EthernetTypeIPv4}, inner, udp, gopacket.Payload(make([]byte, size)))
}

// icmpEchoFrame is an ICMP echo request (typ 8) or reply (typ 0).
func icmpEchoFrame(t testing.TB, src, dst net.IP, typ uint8, seq uint16) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: src, DstIP: dst}
	return frame(t, hostEth(src, dst, layers.EthernetTypeIPv4), ip, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, 0), Id: 7, Seq: seq}, gopacket.Payload(make([]byte, 56)))
}

// dnsQuery is a DNS query (recursion desired) for an A record of name.
func dnsQuery(id uint16, name string) []byte {
	b := binary.BigEndian.AppendUint16(nil, id)
	b = append(b, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0)
	for label := range strings.SplitSeq(name, ".") {
		b = append(append(b, byte(len(label))), label...)
	}
	return append(b, 0, 0, 1, 0, 1)
}

func FuzzDNSQuestion(f *testing.F) {
	f.Add(dnsQuery(1, "abc.example.com"))
	f.Add(dnsQuery(2, "1.2.0.192.in-addr.arpa"))
	f.Add([]byte("\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c"))
	f.Fuzz(func(t *testing.T, b []byte) {
		name, ok := dnsQuestion(b)
		if !ok {
			return
		}
		if name == "" || len(name) > 255 || strings.Contains(name, "..") || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") {
			t.Fatalf("name %q", name)
		}
		for _, c := range []byte(name) {
			if c >= 'A' && c <= 'Z' {
				t.Fatalf("name %q is not lower-cased", name)
			}
		}
		if domain, ok := registeredDomain(name); ok && (!strings.HasSuffix(name, domain) || domain == "" || strings.HasPrefix(domain, ".")) {
			t.Fatalf("name %q, registered domain %q", name, domain)
		}
	})
}
