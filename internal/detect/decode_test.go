package detect

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/fleetward/fleetward/internal/apperr"
)

var (
	macA = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	macB = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0b}
	ipA  = net.IP{10, 200, 0, 1}
	ipB  = net.IP{10, 200, 0, 2}
	ip6A = net.ParseIP("fd00::a")
	ip6B = net.ParseIP("fd00::b")
)

// frame serializes layers into one frame, fixing lengths and checksums.
func frame(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	for _, l := range ls {
		type checksummed interface {
			SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
		}
		if c, ok := l.(checksummed); ok {
			for _, n := range ls {
				if nl, ok := n.(gopacket.NetworkLayer); ok {
					c.SetNetworkLayerForChecksum(nl)
				}
			}
		}
	}
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	return buf.Bytes()
}

func eth(typ layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: typ}
}

func ip4(proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto, SrcIP: ipA, DstIP: ipB}
}

func decodeOne(t *testing.T, data []byte, wire int) (Packet, DecodeStats) {
	t.Helper()
	d := NewDecoder(LinkEthernet)
	var p Packet
	ci := gopacket.CaptureInfo{Timestamp: time.Unix(1500000000, 250000000), CaptureLength: len(data), Length: wire}
	d.Decode(data, ci, &p)
	return p, d.Stats
}

func TestDecoderFollowsKitsunesParsingRules(t *testing.T) {
	hostA, hostB := hostIPv4(ipA), hostIPv4(ipB)
	var macAKey, macBKey [6]byte
	copy(macAKey[:], macA)
	copy(macBKey[:], macB)
	quotedUDP := frame(t, ip4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 5353, DstPort: 9999}, gopacket.Payload("x"))
	tests := []struct {
		name  string
		data  []byte
		want  Packet
		check func(DecodeStats) bool
	}{
		{
			name: "a TCP segment has its hosts and ports",
			data: frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), &layers.TCP{SrcPort: 40000, DstPort: 23, SYN: true, Window: 1}),
			want: Packet{Src: hostA, Dst: hostB, Ports: PortNumber, SrcPort: 40000, DstPort: 23},
		},
		{
			name:  "a VLAN-tagged UDP datagram is decoded through the tag",
			data:  frame(t, eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 7, Type: layers.EthernetTypeIPv4}, ip4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 68, DstPort: 67}),
			want:  Packet{Src: hostA, Dst: hostB, Ports: PortNumber, SrcPort: 68, DstPort: 67},
			check: func(s DecodeStats) bool { return s.VLANTagged == 1 },
		},
		{
			name: "an IPv6 datagram behind a hop-by-hop header keeps its ports",
			data: frame(t, eth(layers.EthernetTypeIPv6),
				&layers.IPv6{Version: 6, NextHeader: layers.IPProtocolIPv6HopByHop, HopLimit: 1, SrcIP: ip6A, DstIP: ip6B},
				gopacket.Payload{byte(layers.IPProtocolUDP), 0, 1, 4, 0, 0, 0, 0}, // hop-by-hop header with a PadN option
				&layers.UDP{SrcPort: 546, DstPort: 547}),
			want:  Packet{Src: hostIPv6(ip6A), Dst: hostIPv6(ip6B), Ports: PortNumber, SrcPort: 546, DstPort: 547},
			check: func(s DecodeStats) bool { return s.IPv6ExtHdrs == 1 },
		},
		{
			name: "a TCP segment behind an IPsec AH header keeps its ports",
			data: frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolAH),
				gopacket.Payload(append([]byte{byte(layers.IPProtocolTCP), 4, 0, 0, 0, 0, 1, 0, 0, 0, 0, 9}, make([]byte, 12)...)), // a 24-byte AH: 12 of ICV
				&layers.TCP{SrcPort: 40000, DstPort: 443, SYN: true, Window: 1}),
			want:  Packet{Src: hostA, Dst: hostB, Ports: PortNumber, SrcPort: 40000, DstPort: 443},
			check: func(s DecodeStats) bool { return s.IPsecAH == 1 && s.Malformed == 0 },
		},
		{
			name: "an IPv6 segment behind an atomic fragment header (offset 0, no more) is read whole",
			data: frame(t, eth(layers.EthernetTypeIPv6),
				&layers.IPv6{Version: 6, NextHeader: layers.IPProtocolIPv6Fragment, HopLimit: 64, SrcIP: ip6A, DstIP: ip6B},
				gopacket.Payload{byte(layers.IPProtocolTCP), 0, 0, 0, 0, 0, 0, 7},
				&layers.TCP{SrcPort: 40000, DstPort: 22, SYN: true, Window: 1}),
			want:  Packet{Src: hostIPv6(ip6A), Dst: hostIPv6(ip6B), Ports: PortNumber, SrcPort: 40000, DstPort: 22},
			check: func(s DecodeStats) bool { return s.IPv6ExtHdrs == 1 && s.Fragments == 0 },
		},
		{
			name: "an IPv6 first fragment with more to come has no ports",
			data: frame(t, eth(layers.EthernetTypeIPv6),
				&layers.IPv6{Version: 6, NextHeader: layers.IPProtocolIPv6Fragment, HopLimit: 64, SrcIP: ip6A, DstIP: ip6B},
				gopacket.Payload{byte(layers.IPProtocolTCP), 0, 0, 1, 0, 0, 0, 7},
				&layers.TCP{SrcPort: 40000, DstPort: 22, SYN: true, Window: 1}),
			want:  Packet{Src: hostIPv6(ip6A), Dst: hostIPv6(ip6B)},
			check: func(s DecodeStats) bool { return s.Fragments == 1 },
		},
		{
			name: "an IPv6 datagram behind a destination options and an AH header keeps its ports",
			data: frame(t, eth(layers.EthernetTypeIPv6),
				&layers.IPv6{Version: 6, NextHeader: layers.IPProtocolIPv6Destination, HopLimit: 1, SrcIP: ip6A, DstIP: ip6B},
				gopacket.Payload{byte(layers.IPProtocolAH), 0, 1, 4, 0, 0, 0, 0},
				gopacket.Payload(append([]byte{byte(layers.IPProtocolUDP), 4, 0, 0, 0, 0, 1, 0, 0, 0, 0, 9}, make([]byte, 12)...)),
				&layers.UDP{SrcPort: 546, DstPort: 547}),
			want:  Packet{Src: hostIPv6(ip6A), Dst: hostIPv6(ip6B), Ports: PortNumber, SrcPort: 546, DstPort: 547},
			check: func(s DecodeStats) bool { return s.IPsecAH == 1 && s.IPv6ExtHdrs == 1 },
		},
		{
			name:  "an AH header longer than the packet is malformed; the hosts stay",
			data:  frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolAH), gopacket.Payload([]byte{byte(layers.IPProtocolTCP), 200, 0, 0, 0, 0, 1, 0, 0, 0, 0, 9, 1, 2, 3, 4})),
			want:  Packet{Src: hostA, Dst: hostB},
			check: func(s DecodeStats) bool { return s.IPsecAH == 0 && s.Malformed == 1 },
		},
		{
			name: "a QinQ frame with the old 0x9100 outer tag is decoded through both tags",
			data: frame(t, eth(ethernetTypeQinQ9100), &layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeDot1Q},
				&layers.Dot1Q{VLANIdentifier: 7, Type: layers.EthernetTypeIPv4}, ip4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 68, DstPort: 67}),
			want:  Packet{Src: hostA, Dst: hostB, Ports: PortNumber, SrcPort: 68, DstPort: 67},
			check: func(s DecodeStats) bool { return s.VLANTagged == 2 },
		},
		{
			name:  "an IPv4 fragment has hosts but no ports",
			data:  frame(t, eth(layers.EthernetTypeIPv4), &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: ipA, DstIP: ipB, FragOffset: 185}, gopacket.Payload(bytes.Repeat([]byte{1}, 16))),
			want:  Packet{Src: hostA, Dst: hostB},
			check: func(s DecodeStats) bool { return s.Fragments == 1 },
		},
		{
			name: "an ARP request takes its hosts from the protocol addresses",
			data: frame(t, eth(layers.EthernetTypeARP), &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4, Operation: 1,
				SourceHwAddress: macA, SourceProtAddress: ipA, DstHwAddress: make([]byte, 6), DstProtAddress: ipB}),
			want: Packet{Src: hostA, Dst: hostB, Ports: PortARP},
		},
		{
			name: "an ICMP echo is an icmp socket",
			data: frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolICMPv4), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0)}),
			want: Packet{Src: hostA, Dst: hostB, Ports: PortICMP},
		},
		{
			name:  "an ICMP error carries the quoted transport ports, as tshark reports them",
			data:  frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolICMPv4), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 3)}, gopacket.Payload(quotedUDP)),
			want:  Packet{Src: hostA, Dst: hostB, Ports: PortNumber, SrcPort: 5353, DstPort: 9999},
			check: func(s DecodeStats) bool { return s.ICMPQuoted == 1 },
		},
		{
			name: "an IP-in-IP tunnel has the outer header's hosts and the inner datagram's ports, as tshark's first occurrences",
			data: frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolIPv4),
				&layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{192, 0, 2, 1}, DstIP: net.IP{192, 0, 2, 2}},
				&layers.UDP{SrcPort: 1111, DstPort: 2222}),
			want: Packet{Src: hostA, Dst: hostB, Ports: PortNumber, SrcPort: 1111, DstPort: 2222},
		},
		{
			name:  "an IPv6 packet with no next header keeps its hosts",
			data:  frame(t, eth(layers.EthernetTypeIPv6), gopacket.Payload(append([]byte{0x60, 0, 0, 0, 0, 0, byte(layers.IPProtocolNoNextHeader), 64}, append(slices.Clone([]byte(ip6A)), ip6B...)...))),
			want:  Packet{Src: hostIPv6(ip6A), Dst: hostIPv6(ip6B)},
			check: func(s DecodeStats) bool { return s.NonIP == 0 },
		},
		{
			name:  "an IPv6 packet whose hop-by-hop header runs past its end keeps its hosts",
			data:  frame(t, eth(layers.EthernetTypeIPv6), gopacket.Payload(append(append([]byte{0x60, 0, 0, 0, 0, 8, 0, 64}, append(slices.Clone([]byte(ip6A)), ip6B...)...), 0, 255, 0, 0, 0, 0, 0, 0))),
			want:  Packet{Src: hostIPv6(ip6A), Dst: hostIPv6(ip6B)},
			check: func(s DecodeStats) bool { return s.NonIP == 0 && s.Malformed == 1 },
		},
		{
			name:  "a frame without IP is keyed by its MAC addresses",
			data:  frame(t, eth(layers.EthernetTypeLLC), gopacket.Payload(bytes.Repeat([]byte{0}, 46))),
			want:  Packet{Src: hostMAC(macAKey), Dst: hostMAC(macBKey)},
			check: func(s DecodeStats) bool { return s.NonIP == 1 },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, stats := decodeOne(t, tt.data, len(tt.data))
			tt.want.Time, tt.want.Length = 1500000000.25, len(tt.data)
			tt.want.SrcMAC, tt.want.DstMAC = macAKey, macBKey
			// The rule fields (protocol, flags, payload) have their own test.
			got.Proto, got.TCPFlags, got.Seq, got.Ack, got.Payload = 0, 0, 0, 0, nil
			got.FragProto, got.FragLen, got.FragHead = 0, 0, [20]byte{}
			got.PayloadLen, got.Portless, got.IPProto = 0, false, 0
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decoded\n %+v\nwant\n %+v", got, tt.want)
			}
			if tt.check != nil && !tt.check(stats) {
				t.Errorf("stats %+v", stats)
			}
		})
	}
}

func TestDecoderTakesWireLengthAndPortsOfSnaplenTruncatedPackets(t *testing.T) {
	full := frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), &layers.TCP{SrcPort: 1234, DstPort: 80, Window: 1}, gopacket.Payload(bytes.Repeat([]byte{'a'}, 400)))
	for _, keep := range []int{14 + 20 + 4, 14 + 20 + 10, 100, len(full)} {
		p, stats := decodeOne(t, full[:keep], len(full))
		if p.Length != len(full) || p.Ports != PortNumber || p.SrcPort != 1234 || p.DstPort != 80 {
			t.Errorf("kept %d bytes: %+v", keep, p)
		}
		if keep < len(full) && stats.Truncated != 1 {
			t.Errorf("kept %d bytes: truncation not counted: %+v", keep, stats)
		}
	}
}

// The rules read a TCP segment's payload length on the wire (the STOMP
// flood's sequence check) and the protocol of a packet without ports (the
// IP flood), whatever the snaplen kept; the fast path and gopacket's
// agree on them.
func TestDecoderReadsPayloadLengthsAndPortlessProtocols(t *testing.T) {
	tcp := func() *layers.TCP { return &layers.TCP{SrcPort: 1234, DstPort: 80, ACK: true, Window: 1} }
	withTimestamps := tcp()
	withTimestamps.Options = timestamps
	ip6 := func(next layers.IPProtocol) *layers.IPv6 {
		return &layers.IPv6{Version: 6, NextHeader: next, HopLimit: 64, SrcIP: ip6A, DstIP: ip6B}
	}
	destOpts := gopacket.Payload{byte(layers.IPProtocolTCP), 0, 1, 4, 0, 0, 0, 0} // next TCP, 8 bytes: a PadN option
	tests := []struct {
		name    string
		data    []byte
		keep    int // bytes captured, 0 for all
		payload int
		proto   layers.IPProtocol
	}{
		{"an IPv4 segment of 400 bytes", frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), tcp(), gopacket.Payload(make([]byte, 400))), 0, 400, 0},
		{"an IPv4 segment of 400 bytes cut to 100 by the snaplen", frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), tcp(), gopacket.Payload(make([]byte, 400))), 100, 400, 0},
		{"an IPv4 segment with timestamps", frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), withTimestamps, gopacket.Payload(make([]byte, 100))), 0, 100, 0},
		{"a bare IPv4 ACK padded to Ethernet's minimum", append(frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), tcp()), 0, 0, 0, 0, 0, 0), 0, 0, 0},
		{"an IPv6 segment behind a destination options header", frame(t, eth(layers.EthernetTypeIPv6), ip6(layers.IPProtocolIPv6Destination), destOpts, tcp(), gopacket.Payload(make([]byte, 300))), 0, 300, 0},
		{"an IPv6 segment behind a hop-by-hop header, cut short", frame(t, eth(layers.EthernetTypeIPv6), ip6(layers.IPProtocolIPv6HopByHop), destOpts, tcp(), gopacket.Payload(make([]byte, 300))), 120, 300, 0},
		{"an IPv4 segment behind an IPsec AH header", frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolAH),
			gopacket.Payload(append([]byte{byte(layers.IPProtocolTCP), 4, 0, 0, 0, 0, 1, 0, 0, 0, 0, 9}, make([]byte, 12)...)), tcp(), gopacket.Payload(make([]byte, 50))), 0, 50, 0},
		{"a UDP datagram", frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 1, DstPort: 2}, gopacket.Payload(make([]byte, 40))), 0, 0, 0},
		{"a GRE packet", frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolGRE), &layers.GRE{Protocol: layers.EthernetTypeIPv4}, ip4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 1, DstPort: 2}), 0, 0, layers.IPProtocolGRE},
		{"an IPv6 ESP packet", frame(t, eth(layers.EthernetTypeIPv6), ip6(layers.IPProtocolESP), gopacket.Payload(make([]byte, 64))), 0, 0, layers.IPProtocolESP},
		{"an IPv6 ESP packet behind a destination options header", frame(t, eth(layers.EthernetTypeIPv6), ip6(layers.IPProtocolIPv6Destination), gopacket.Payload{byte(layers.IPProtocolESP), 0, 1, 4, 0, 0, 0, 0}, gopacket.Payload(make([]byte, 64))), 0, 0, layers.IPProtocolESP},
		{"an IPv4 fragment of a GRE packet", frame(t, eth(layers.EthernetTypeIPv4), &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolGRE, SrcIP: ipA, DstIP: ipB, FragOffset: 185}, gopacket.Payload(make([]byte, 64))), 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := tt.data
			if tt.keep > 0 {
				data = data[:tt.keep]
			}
			ci := gopacket.CaptureInfo{CaptureLength: len(data), Length: len(tt.data)}
			fast, general := NewDecoder(LinkEthernet), NewDecoder(LinkEthernet)
			general.general = true
			var a, b Packet
			fast.Decode(data, ci, &a)
			general.Decode(data, ci, &b)
			if !samePacket(&a, &b) {
				t.Errorf("fast %+v, gopacket %+v", a, b)
			}
			if b.PayloadLen != tt.payload || b.IPProto != tt.proto || b.Portless != (tt.proto != 0) {
				t.Errorf("payload length %d and protocol %v, want %d and %v", b.PayloadLen, b.IPProto, tt.payload, tt.proto)
			}
		})
	}
}

func TestEpochSecondsRoundsLikeParsingTsharksDecimal(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		sec, nsec := 1e9+rng.Int64N(1e9), rng.Int64N(1e9)
		want, _ := strconv.ParseFloat(strconv.FormatInt(sec, 10)+"."+leftPad9(nsec), 64)
		if got := epochSeconds(sec, nsec); got != want {
			t.Fatalf("epochSeconds(%d, %d) = %.17g, want %.17g", sec, nsec, got, want)
		}
	}
}

func leftPad9(n int64) string {
	s := strconv.FormatInt(n, 10)
	for len(s) < 9 {
		s = "0" + s
	}
	return s
}

// writeCapture writes Ethernet frames into a pcap (or pcapng) file image.
func writeCapture(t testing.TB, ng bool, frames ...[]byte) []byte {
	t.Helper()
	lfs := make([]linkFrame, len(frames))
	for i, f := range frames {
		lfs[i] = linkFrame{LinkEthernet, f}
	}
	return writeLinkCapture(t, ng, lfs...)
}

// A linkFrame is a frame and the link type it was captured on.
type linkFrame struct {
	link LinkType
	data []byte
}

// writeLinkCapture writes frames into a pcap file image, whose one link type
// is the first frame's, or a pcapng one with an interface for each link type
// in the order they first appear. pcapgo writes one byte of a link type;
// the image is given all 16 bits afterwards.
func writeLinkCapture(t testing.TB, ng bool, frames ...linkFrame) []byte {
	t.Helper()
	var buf bytes.Buffer
	ts := time.Unix(1500000000, 0)
	ci := func(i int, f linkFrame) gopacket.CaptureInfo {
		return gopacket.CaptureInfo{Timestamp: ts.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(f.data), Length: len(f.data)}
	}
	if ng {
		var w *pcapgo.NgWriter
		ifaces := map[LinkType]int{}
		var links []LinkType
		for i, f := range frames {
			id, ok := ifaces[f.link]
			var err error
			intf := pcapgo.NgInterface{LinkType: layers.LinkType(f.link), SnapLength: 65535}
			switch {
			case w == nil:
				w, err = pcapgo.NewNgWriterInterface(&buf, intf, pcapgo.DefaultNgWriterOptions)
			case !ok:
				id, err = w.AddInterface(intf)
			}
			if !ok {
				ifaces[f.link] = id
				links = append(links, f.link)
			}
			if err != nil {
				t.Fatal(err)
			}
			c := ci(i, f)
			c.InterfaceIndex = id
			if err := w.WritePacket(c, f.data); err != nil {
				t.Fatal(err)
			}
		}
		if w == nil {
			t.Fatal("a pcapng image needs a frame to take its first interface from")
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		return setInterfaceLinks(buf.Bytes(), links)
	}
	w := pcapgo.NewWriter(&buf)
	link := LinkEthernet
	if len(frames) > 0 {
		link = frames[0].link
	}
	if err := w.WriteFileHeader(65535, layers.LinkType(link)); err != nil {
		t.Fatal(err)
	}
	for i, f := range frames {
		if f.link != link {
			t.Fatalf("frame %d is of link type %v in a pcap file of %v", i, f.link, link)
		}
		if err := w.WritePacket(ci(i, f), f.data); err != nil {
			t.Fatal(err)
		}
	}
	image := buf.Bytes()
	binary.LittleEndian.PutUint32(image[20:], uint32(link))
	return image
}

// setInterfaceLinks gives the interface descriptions of a little-endian
// pcapng image the link types links, in order.
func setInterfaceLinks(image []byte, links []LinkType) []byte {
	for off := 0; off+12 <= len(image) && len(links) > 0; off += int(binary.LittleEndian.Uint32(image[off+4:])) {
		if binary.LittleEndian.Uint32(image[off:]) == blockInterfaceDescription {
			binary.LittleEndian.PutUint16(image[off+8:], uint16(links[0]))
			links = links[1:]
		}
	}
	return image
}

// decodeCapture reads every frame of a capture file image and decodes it
// as ScoreCapture does.
func decodeCapture(t *testing.T, file []byte) ([]Packet, DecodeStats) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	d := NewDecoder(r.LinkType())
	var pkts []Packet
	for {
		data, ci, err := r.Next()
		if errors.Is(err, io.EOF) {
			return pkts, d.Stats
		}
		if err != nil {
			t.Fatal(err)
		}
		var p Packet
		d.Decode(data, ci, &p)
		pkts = append(pkts, p)
	}
}

// A pcapng file whose interfaces have different link types (tcpdump -i
// any on some systems, merged captures) gives every packet, each decoded
// with its own interface's link type; pcapgo's default would drop those of
// the interfaces unlike the first without a word.
func TestReaderKeepsEveryInterfaceOfAMixedPcapng(t *testing.T) {
	ethUDP := frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 5000, DstPort: 6000})
	rawTCP := frame(t, &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: ipB, DstIP: ipA}, &layers.TCP{SrcPort: 40000, DstPort: 23, SYN: true})
	wifi := bytes.Repeat([]byte{0x80}, 40) // 802.11, which the decoder does not handle
	var frames []linkFrame
	for range 30 {
		frames = append(frames, linkFrame{LinkEthernet, ethUDP}, linkFrame{LinkRaw, rawTCP})
	}
	frames = append(frames, linkFrame{LinkType(layers.LinkTypeIEEE802_11), wifi})
	pkts, stats := decodeCapture(t, writeLinkCapture(t, true, frames...))
	if len(pkts) != 61 {
		t.Fatalf("read %d packets, want all 61 of the three interfaces", len(pkts))
	}
	for i := 0; i < 60; i += 2 {
		e, r := pkts[i], pkts[i+1]
		if e.Src != hostIPv4(ipA) || e.SrcPort != 5000 || e.DstPort != 6000 || e.SrcMAC[5] != 0x0a {
			t.Fatalf("Ethernet packet %d decoded as %+v", i, e)
		}
		if r.Src != hostIPv4(ipB) || r.Dst != hostIPv4(ipA) || r.SrcPort != 40000 || r.DstPort != 23 || r.TCPFlags != FlagSYN {
			t.Fatalf("raw IP packet %d decoded as %+v", i+1, r)
		}
	}
	if stats.UnknownLink != 1 || stats.UnknownLinkType != LinkType(layers.LinkTypeIEEE802_11) || stats.Malformed != 0 || stats.NonIP != 0 {
		t.Errorf("stats %+v, want the one 802.11 frame counted as an unknown link", stats)
	}
}

// Link types are 16 bits: one read as its low byte would decode
// LINUX_SLL2 (276) frames as 20's, and 257's and 256's as Ethernet and
// Null. Each is taken whole, from a pcap header and from each pcapng
// interface description.
func TestReaderReadsLinkTypesAboveAByte(t *testing.T) {
	ethTCP := frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), &layers.TCP{SrcPort: 40000, DstPort: 23, SYN: true})
	sll2 := append([]byte{0x08, 0x00, 0, 0, 0, 0, 0, 3, 0, 1, 0, 6}, macA...)
	sll2 = append(append(sll2, 0, 0), ethTCP[14:]...)
	for _, link := range []LinkType{256, 257, 1025} {
		for _, ng := range []bool{false, true} {
			pkts, stats := decodeCapture(t, writeLinkCapture(t, ng, linkFrame{link, ethTCP}))
			if len(pkts) != 1 || pkts[0].Src != (Host{}) || stats.UnknownLink != 1 || stats.UnknownLinkType != link {
				t.Errorf("link type %d (pcapng %v): %+v, stats %+v; want one frame of an unknown link, no addresses", link, ng, pkts, stats)
			}
		}
	}
	pkts, stats := decodeCapture(t, writeLinkCapture(t, true, linkFrame{LinkEthernet, ethTCP}, linkFrame{LinkLinuxSLL2, sll2}, linkFrame{257, ethTCP}, linkFrame{LinkLinuxSLL2, sll2}))
	if len(pkts) != 4 || stats.UnknownLink != 1 || stats.UnknownLinkType != 257 || stats.Malformed != 0 {
		t.Fatalf("%d packets, stats %+v; want 4, one of link type 257 unknown", len(pkts), stats)
	}
	for _, i := range []int{0, 1, 3} {
		if p := pkts[i]; p.Src != hostIPv4(ipA) || p.DstPort != 23 || p.SrcMAC[5] != macA[5] {
			t.Errorf("packet %d decoded as %+v", i, p)
		}
	}
	if pkts[2].Src != (Host{}) {
		t.Errorf("the frame of link type 257 decoded as %+v, as if it were Ethernet", pkts[2])
	}
	if got := LinkLinuxSLL2.String(); got != "LINUX_SLL2 (276)" {
		t.Errorf("String() = %q", got)
	}
	if got := LinkType(1025).String(); got != "LINKTYPE 1025" {
		t.Errorf("String() = %q", got)
	}
}

// Loopback captures (BSD Null in host byte order, OpenBSD Loop in network
// order) and Linux cooked captures (tcpdump -i any) give their hosts,
// ports and, for cooked captures, the source MAC address.
func TestDecoderReadsLoopbackAndLinuxCookedCaptures(t *testing.T) {
	var macAKey [6]byte
	copy(macAKey[:], macA)
	tcp := func() []gopacket.SerializableLayer {
		return []gopacket.SerializableLayer{ip4(layers.IPProtocolTCP), &layers.TCP{SrcPort: 40000, DstPort: 23, SYN: true}}
	}
	udp6 := func() []gopacket.SerializableLayer {
		return []gopacket.SerializableLayer{&layers.IPv6{Version: 6, NextHeader: layers.IPProtocolUDP, HopLimit: 1, SrcIP: ip6A, DstIP: ip6B}, &layers.UDP{SrcPort: 546, DstPort: 547}}
	}
	arp := func() []gopacket.SerializableLayer {
		return []gopacket.SerializableLayer{&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4, Operation: 1,
			SourceHwAddress: macA, SourceProtAddress: ipA, DstHwAddress: make([]byte, 6), DstProtAddress: ipB}}
	}
	// sll is a Linux cooked header: an outgoing packet (type 4) of an
	// Ethernet device (ARPHRD 1) with an address of addrLen bytes.
	sll := func(addrLen int, protocol layers.EthernetType) gopacket.Payload {
		h := []byte{0, 4, 0, 1, 0, byte(addrLen)}
		h = append(h, macA...)
		h = append(h, 0, 0)
		return binary.BigEndian.AppendUint16(h, uint16(protocol))
	}
	// sll2 is the same as a Linux cooked v2 header, the protocol first and
	// the address last (interface index 3).
	sll2 := func(addrLen int, protocol layers.EthernetType) gopacket.Payload {
		h := binary.BigEndian.AppendUint16(nil, uint16(protocol))
		h = append(h, 0, 0, 0, 0, 0, 3, 0, 1, 4, byte(addrLen))
		return append(append(h, macA...), 0, 0)
	}
	with := func(header []byte, ls []gopacket.SerializableLayer) []byte {
		return frame(t, append([]gopacket.SerializableLayer{gopacket.Payload(header)}, ls...)...)
	}
	tests := []struct {
		name string
		link LinkType
		data []byte
		want Packet
	}{
		{"a Null frame with a little-endian family carries IPv4", LinkNull, with([]byte{2, 0, 0, 0}, tcp()),
			Packet{Src: hostIPv4(ipA), Dst: hostIPv4(ipB), Ports: PortNumber, SrcPort: 40000, DstPort: 23}},
		{"a Null frame with a big-endian BSD IPv6 family carries IPv6", LinkNull, with([]byte{0, 0, 0, 24}, udp6()),
			Packet{Src: hostIPv6(ip6A), Dst: hostIPv6(ip6B), Ports: PortNumber, SrcPort: 546, DstPort: 547}},
		{"a Loop frame's family is in network order", LinkLoop, with([]byte{0, 0, 0, 2}, tcp()),
			Packet{Src: hostIPv4(ipA), Dst: hostIPv4(ipB), Ports: PortNumber, SrcPort: 40000, DstPort: 23}},
		{"a cooked IPv4 frame gives its source MAC", LinkLinuxSLL, with(sll(6, layers.EthernetTypeIPv4), tcp()),
			Packet{SrcMAC: macAKey, Src: hostIPv4(ipA), Dst: hostIPv4(ipB), Ports: PortNumber, SrcPort: 40000, DstPort: 23}},
		{"a cooked IPv6 frame without a link address has no MAC", LinkLinuxSLL, with(sll(0, layers.EthernetTypeIPv6), udp6()),
			Packet{Src: hostIPv6(ip6A), Dst: hostIPv6(ip6B), Ports: PortNumber, SrcPort: 546, DstPort: 547}},
		{"a cooked ARP frame takes its hosts from the protocol addresses", LinkLinuxSLL, with(sll(6, layers.EthernetTypeARP), arp()),
			Packet{SrcMAC: macAKey, Src: hostIPv4(ipA), Dst: hostIPv4(ipB), Ports: PortARP}},
		{"a cooked v2 IPv4 frame gives its source MAC", LinkLinuxSLL2, with(sll2(6, layers.EthernetTypeIPv4), tcp()),
			Packet{SrcMAC: macAKey, Src: hostIPv4(ipA), Dst: hostIPv4(ipB), Ports: PortNumber, SrcPort: 40000, DstPort: 23}},
		{"a cooked v2 IPv6 frame without a link address has no MAC", LinkLinuxSLL2, with(sll2(0, layers.EthernetTypeIPv6), udp6()),
			Packet{Src: hostIPv6(ip6A), Dst: hostIPv6(ip6B), Ports: PortNumber, SrcPort: 546, DstPort: 547}},
		{"a cooked v2 ARP frame takes its hosts from the protocol addresses", LinkLinuxSLL2, with(sll2(6, layers.EthernetTypeARP), arp()),
			Packet{SrcMAC: macAKey, Src: hostIPv4(ipA), Dst: hostIPv4(ipB), Ports: PortARP}},
	}
	for _, tt := range tests {
		for _, ng := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, pcapng %v", tt.name, ng), func(t *testing.T) {
				pkts, stats := decodeCapture(t, writeLinkCapture(t, ng, linkFrame{tt.link, tt.data}))
				if len(pkts) != 1 {
					t.Fatalf("%d packets", len(pkts))
				}
				got := pkts[0]
				tt.want.Time, tt.want.Length = 1500000000, len(tt.data)
				got.Proto, got.TCPFlags, got.Payload = 0, 0, nil
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("decoded\n %+v\nwant\n %+v", got, tt.want)
				}
				if stats.UnknownLink != 0 || stats.Malformed != 0 || stats.NonIP != 0 {
					t.Errorf("stats %+v", stats)
				}
			})
		}
	}
}

func TestReaderReadsBothFormatsAndStopsCleanlyAtCorruption(t *testing.T) {
	f := frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 1, DstPort: 2})
	for _, ng := range []bool{false, true} {
		file := writeCapture(t, ng, f, f, f)
		tests := []struct {
			name      string
			data      []byte
			wantN     int
			wantError error
		}{
			{"a whole file yields every packet then EOF", file, 3, io.EOF},
			{"a file cut inside the last record yields the others then a corruption error", file[:len(file)-5], 2, ErrFileCorrupt},
		}
		for _, tt := range tests {
			t.Run(strconv.FormatBool(ng)+"/"+tt.name, func(t *testing.T) {
				r, err := NewReader(bytes.NewReader(tt.data))
				if err != nil {
					t.Fatal(err)
				}
				wantFormat := map[bool]string{false: "pcap", true: "pcapng"}[ng]
				if r.Format != wantFormat {
					t.Errorf("format %q, want %q", r.Format, wantFormat)
				}
				n := 0
				for {
					_, _, err = r.Next()
					if err != nil {
						break
					}
					n++
				}
				if n != tt.wantN || !errors.Is(err, tt.wantError) {
					t.Errorf("read %d packets and %v, want %d and %v", n, err, tt.wantN, tt.wantError)
				}
			})
		}
	}
}

func TestReaderRefusesWhatIsNotACapture(t *testing.T) {
	for _, data := range [][]byte{nil, []byte("ab"), []byte("GIF89a not a capture")} {
		_, err := NewReader(bytes.NewReader(data))
		var ae *apperr.Error
		if !errors.As(err, &ae) || ae.Code != apperr.Invalid || ae.Field != "capture" {
			t.Errorf("NewReader(%q) = %v, want an invalid capture error", data, err)
		}
	}
}

// FuzzDecodeCapture feeds arbitrary bytes through the reader, the decoder
// and AfterImage: nothing may panic, and every feature must be a number.
func FuzzDecodeCapture(f *testing.F) {
	tcp := frame(f, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), &layers.TCP{SrcPort: 1, DstPort: 23, SYN: true})
	arp := frame(f, eth(layers.EthernetTypeARP), &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4, Operation: 1,
		SourceHwAddress: macA, SourceProtAddress: ipA, DstHwAddress: make([]byte, 6), DstProtAddress: ipB})
	f.Add(writeCapture(f, false, tcp, arp, tcp[:30]))
	f.Add(writeCapture(f, true, tcp, arp))
	raw := frame(f, ip4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 1, DstPort: 2})
	f.Add(writeLinkCapture(f, true, linkFrame{LinkEthernet, tcp}, linkFrame{LinkRaw, raw}, linkFrame{LinkLinuxSLL, raw}, linkFrame{LinkLinuxSLL2, raw}))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data))
		if err != nil {
			return
		}
		d := NewDecoder(r.LinkType())
		ai := NewAfterImage()
		out := make([]float64, NumFeatures)
		var p Packet
		for range 1000 {
			b, ci, err := r.Next()
			if err != nil {
				return
			}
			d.Decode(b, ci, &p)
			ai.Update(&p, out)
		}
	})
}

// FuzzDecodeFrame decodes arbitrary frames on each supported link type,
// and one unsupported: nothing may panic and every packet must come out
// with a length.
func FuzzDecodeFrame(f *testing.F) {
	f.Add(frame(f, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), &layers.TCP{SrcPort: 1, DstPort: 23}), uint8(0))
	f.Add(frame(f, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolICMPv4), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 3)},
		gopacket.Payload(frame(f, ip4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 53, DstPort: 9}))), uint8(0))
	f.Add(frame(f, &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolUDP, HopLimit: 1, SrcIP: ip6A, DstIP: ip6B}, &layers.UDP{SrcPort: 1, DstPort: 2}), uint8(1))
	withOpts := frame(f, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), &layers.TCP{SrcPort: 40000, DstPort: 23, SYN: true,
		Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{5, 180}}, {OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{7}}}}, gopacket.Payload("root\r\n"))
	f.Add(withOpts, uint8(0))
	f.Add(append(slices.Clone(withOpts), 0, 0, 0, 0), uint8(0)) // a trailer past the IP length
	f.Add(frame(f, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 5353, DstPort: 5353}, gopacket.Payload("hello")), uint8(0))
	f.Add(frame(f, eth(layers.EthernetTypeARP), &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: 1, SourceHwAddress: macA, SourceProtAddress: ipA, DstHwAddress: make([]byte, 6), DstProtAddress: ipB}), uint8(0))
	f.Add(frame(f, gopacket.Payload{2, 0, 0, 0}, ip4(layers.IPProtocolTCP), &layers.TCP{SrcPort: 1, DstPort: 23}), uint8(2))
	f.Add(frame(f, gopacket.Payload{0, 0, 0, 30}, &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolUDP, HopLimit: 1, SrcIP: ip6A, DstIP: ip6B}, &layers.UDP{SrcPort: 1, DstPort: 2}), uint8(3))
	f.Add(frame(f, gopacket.Payload{0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 0x0a, 0, 0, 0x08, 0x00}, ip4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 68, DstPort: 67}), uint8(4))
	f.Add([]byte{0, 0, 0, 1, 0xff, 0xff, 2, 0, 0, 0, 0, 0x0a, 0, 0, 0x08, 0x06, 0}, uint8(4)) // a cooked header claiming a 65535-byte address
	f.Add(frame(f, gopacket.Payload{0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 0x0a, 0, 0}, ip4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 68, DstPort: 67}), uint8(6))
	f.Add([]byte{0x08, 0x06, 0, 0, 0, 0, 0, 2, 0, 1, 0, 0xff, 2, 0, 0, 0, 0, 0x0a, 0, 0, 0}, uint8(6)) // a cooked v2 header claiming a 255-byte address
	links := []LinkType{LinkEthernet, LinkRaw, LinkNull, LinkLoop, LinkLinuxSLL, LinkType(layers.LinkTypeIEEE802_11), LinkLinuxSLL2}
	f.Fuzz(func(t *testing.T, data []byte, link uint8) {
		d := NewDecoder(links[int(link)%len(links)])
		d.PayloadPrefix = MaxPayloadPrefix
		var p Packet
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(1, 0), CaptureLength: len(data), Length: len(data) + 10}
		d.Decode(data, ci, &p)
		checkGeneralDecode(t, d, data, ci, &p)
		if p.Length != len(data)+10 {
			t.Errorf("length %d, want the wire length %d", p.Length, len(data)+10)
		}
		if len(p.Payload) > MaxPayloadPrefix {
			t.Errorf("payload prefix of %d bytes", len(p.Payload))
		}
		out := make([]float64, NumFeatures)
		NewAfterImage().Update(&p, out)
		for _, s := range NewRuleDetector(Rules{}).Observe(&p, nil) {
			if err := s.Validate(); err != nil {
				t.Errorf("invalid signal %+v: %v", s, err)
			}
		}
	})
}

// checkGeneralDecode decodes data again with gopacket alone (no fast path)
// and requires the same packet and counters as d gave for it.
func checkGeneralDecode(t *testing.T, d *Decoder, data []byte, ci gopacket.CaptureInfo, got *Packet) {
	t.Helper()
	g := NewDecoder(d.link)
	g.general, g.PayloadPrefix = true, d.PayloadPrefix
	var want Packet
	g.Decode(data, ci, &want)
	if !samePacket(got, &want) {
		t.Fatalf("frame % x:\ndecoded  %+v\ngopacket %+v", data, *got, want)
	}
	if d.Stats.Packets == 1 && d.Stats != g.Stats {
		t.Fatalf("frame % x: counters %+v, gopacket's %+v", data, d.Stats, g.Stats)
	}
}

// TestDecodeFastEqualsGopacket decodes every frame of the Mirai captures
// with the fast path and with gopacket alone and requires the same packets;
// most of them take the fast path.
func TestDecodeFastEqualsGopacket(t *testing.T) {
	for _, name := range []string{"mirai2000.pcap", "mirai-splice.pcap"} {
		r, err := OpenFile(datasetPath(t, name))
		if err != nil {
			t.Fatal(err)
		}
		fast, general := NewDecoder(r.LinkType()), NewDecoder(r.LinkType())
		general.general = true
		fast.PayloadPrefix, general.PayloadPrefix = MaxPayloadPrefix, MaxPayloadPrefix
		taken := 0
		for n := 0; ; n++ {
			data, ci, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			var a, b, c Packet
			if fast.decodeFast(data, &c) {
				taken++
			}
			fast.Decode(data, ci, &a)
			general.Decode(data, ci, &b)
			if !samePacket(&a, &b) {
				t.Fatalf("%s frame %d: fast %+v, gopacket %+v", name, n, a, b)
			}
		}
		r.Close()
		if fast.Stats != general.Stats {
			t.Errorf("%s: counters %+v, gopacket's %+v", name, fast.Stats, general.Stats)
		}
		t.Logf("%s: %d of %d frames took the fast path", name, taken, fast.Stats.Packets)
		if taken < int(fast.Stats.Packets)/2 {
			t.Errorf("%s: only %d of %d frames took the fast path", name, taken, fast.Stats.Packets)
		}
	}
}

// samePacket reports whether a and b hold the same fields and payload.
func samePacket(a, b *Packet) bool {
	x, y := *a, *b
	x.Payload, y.Payload = nil, nil
	return reflect.DeepEqual(x, y) && bytes.Equal(a.Payload, b.Payload)
}

// A corrupt record in the middle of a pcap file is reported with where it
// is and how much of the file was left unread, not as the file's end.
func TestReaderSaysWhereACorruptRecordIs(t *testing.T) {
	f := frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 1, DstPort: 2})
	file := writeCapture(t, false, f, f, f, f)
	// The second record's captured length (bytes 8-11 of its header) is
	// past the snap length.
	second := 24 + 16 + len(f)
	binary.LittleEndian.PutUint32(file[second+8:], 1<<30)
	path := filepath.Join(t.TempDir(), "corrupt.pcap")
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := 0
	for err == nil {
		if _, _, err = r.Next(); err == nil {
			n++
		}
	}
	want := fmt.Sprintf("at byte %d of %d (the %d bytes from there on unread)", second, len(file), len(file)-second)
	if n != 1 || !errors.Is(err, ErrFileCorrupt) || !strings.Contains(err.Error(), want) {
		t.Errorf("read %d packets, then %v; want 1, then an error %q", n, err, want)
	}
}

// A pcapng packet block whose length is too short for its fixed fields,
// or whose captured length is impossible, fails the read before pcapgo
// takes the next block's bytes (or its own) as a captured length and
// allocates for it: each of these once made a 4 GiB buffer, and fuzzing
// workers, zeroing such buffers over and over, were killed as hung.
func TestReaderFailsAPcapngBlockOfImpossibleLengthsWithoutAllocating(t *testing.T) {
	f := frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 1, DstPort: 2})
	good := writeCapture(t, true, f, f)
	// The first enhanced packet block: after the section header and the
	// interface description, each of the length their second word says.
	first := 0
	for range 2 {
		first += int(binary.LittleEndian.Uint32(good[first+4:]))
	}
	if binary.LittleEndian.Uint32(good[first:]) != blockEnhancedPacket {
		t.Fatalf("no enhanced packet block at byte %d", first)
	}
	for _, tt := range []struct {
		name  string
		patch func(b []byte)
	}{
		{"a block shorter than its fixed fields", func(b []byte) {
			binary.LittleEndian.PutUint32(b[first+4:], 16)
			binary.LittleEndian.PutUint32(b[first+16:], 0xffffff00) // where pcapgo would read a captured length
			binary.LittleEndian.PutUint32(b[first+20:], 0xffffff00)
		}},
		{"a captured length past the block", func(b []byte) { binary.LittleEndian.PutUint32(b[first+20:], 0x7fffffff) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := slices.Clone(good)
			tt.patch(b)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			r, err := NewReader(bytes.NewReader(b))
			if err == nil {
				_, _, err = r.Next()
			}
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrFileCorrupt) {
				t.Errorf("err = %v, want a corrupt file", err)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
				t.Errorf("%d bytes allocated reading it", grew)
			}
		})
	}
}

// pcapgo keeps a large record of each interface a pcapng section
// describes; past maxInterfaces of them, the file is refused.
func TestReaderRefusesAPcapngOfTooManyInterfaces(t *testing.T) {
	for _, extra := range []int{maxInterfaces - 1, maxInterfaces} {
		var buf bytes.Buffer
		w, err := pcapgo.NewNgWriterInterface(&buf, pcapgo.NgInterface{LinkType: layers.LinkTypeEthernet}, pcapgo.DefaultNgWriterOptions)
		if err != nil {
			t.Fatal(err)
		}
		for range extra {
			if _, err := w.AddInterface(pcapgo.NgInterface{LinkType: layers.LinkTypeEthernet}); err != nil {
				t.Fatal(err)
			}
		}
		f := frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 1, DstPort: 2})
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(1, 0), CaptureLength: len(f), Length: len(f)}, f); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		r, err := NewReader(&buf)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = r.Next()
		if tooMany := extra+1 > maxInterfaces; tooMany != (err != nil) || tooMany && !strings.Contains(err.Error(), "more than 4096 interfaces") {
			t.Errorf("%d interfaces: %v", extra+1, err)
		}
	}
}
