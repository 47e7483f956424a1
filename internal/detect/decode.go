package detect

import (
	"encoding/binary"
	"errors"
	"math"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// AddrKind says what a Host holds.
type AddrKind uint8

// The kinds of host address. AddrNone is an empty address, as Kitsune's
// tshark export gives for an ARP packet without an IPv4 protocol address.
const (
	AddrNone AddrKind = iota
	AddrIPv4
	AddrIPv6
	AddrMAC
)

// A Host is the address that identifies a host in the features: an IPv4 or
// IPv6 address, or a MAC address for frames without one. It is a comparable
// value so that it can key maps without building strings per packet.
type Host struct {
	Kind AddrKind
	Addr [16]byte
}

// PortKind says what a packet's transport endpoints are.
type PortKind uint8

// The transport endpoint kinds, following Kitsune's tshark parsing: TCP and
// UDP ports are one kind (Kitsune concatenates tcp.srcport and udp.srcport),
// ARP and ICMP have no ports, anything else has none at all.
const (
	PortNone PortKind = iota
	PortNumber
	PortARP
	PortICMP
)

// Packet is what the features need from one decoded frame.
type Packet struct {
	// Time is the capture time in seconds since the Unix epoch, rounded to
	// the float64 nearest the decimal value tshark prints.
	Time float64
	// Length is the frame's length on the wire (tshark's frame.len), not the
	// captured length.
	Length int
	// SrcMAC and DstMAC are the Ethernet addresses (zero on raw IP and
	// loopback links; a Linux cooked capture has only the source's).
	SrcMAC, DstMAC [6]byte
	// Src and Dst are the hosts as Kitsune sees them (see doc.go).
	Src, Dst Host
	// Ports says whether SrcPort and DstPort hold TCP/UDP ports.
	Ports            PortKind
	SrcPort, DstPort uint16
	// Proto is the IP protocol of the transport header whose ports were
	// taken (TCP or UDP), 0 otherwise.
	Proto layers.IPProtocol
	// TCPFlags holds the TCP flags (FIN 0x01 … CWR 0x80) of a TCP packet.
	TCPFlags uint8
	// Cut says the frame was captured shorter than it was on the wire
	// (snaplen): Payload may then be empty though the packet had one.
	Cut bool
	// FragProto, FragLen and FragHead describe the first fragment of a
	// fragmented IPv4 packet, which has no ports here (Kitsune's tshark
	// fields give none): its IP protocol (0 for any other packet), how
	// many bytes of the transport header on it the fragment carries on the
	// wire, and the first 20 of those captured. The rules read them, so
	// that fragmenting a scan does not hide it.
	FragProto layers.IPProtocol
	FragLen   uint16
	FragHead  [20]byte
	// Seq and Ack are a TCP packet's sequence and acknowledgement numbers
	// (zero for ports quoted in an ICMP error).
	Seq, Ack uint32
	// PayloadLen is a TCP packet's payload length on the wire, from the IP
	// lengths (whatever the snaplen kept of it); 0 when they do not say
	// (a header cut short, an IPv6 jumbogram).
	PayloadLen int
	// Portless marks an IP packet, unfragmented or the first fragment of
	// one, that carries no TCP or UDP header and is no ICMP error (GRE,
	// ESP, ICMP echo, any other protocol, 0 included), for the flood of
	// such packets; IPProto is its protocol.
	Portless bool
	IPProto  layers.IPProtocol
	// Payload is the start of the transport payload, at most
	// Decoder.PayloadPrefix bytes (MaxPayloadPrefix at most). It is nil
	// unless the decoder was asked for payloads, and it points into the
	// decoder's own buffer: it is valid until the next Decode.
	Payload []byte
}

// The TCP flags in Packet.TCPFlags.
const (
	FlagFIN uint8 = 1 << iota
	FlagSYN
	FlagRST
	FlagPSH
	FlagACK
	FlagURG
	FlagECE
	FlagCWR
)

// MaxPayloadPrefix bounds Decoder.PayloadPrefix: the rules that read
// payloads need a login line, a request line, or a DNS query with the
// longest name (12 bytes of header, 255 of name, 4 of type and class).
const MaxPayloadPrefix = 320

// DecodeStats counts what a Decoder met. Nothing is ever dropped silently:
// each frame is counted as decoded or as one of the skipped kinds.
type DecodeStats struct {
	Packets     uint64 `json:"packets"`
	NonIP       uint64 `json:"non_ip"`        // frames with neither IP nor ARP (hosts are MACs)
	Fragments   uint64 `json:"fragments"`     // IP fragments (transport not decoded)
	Truncated   uint64 `json:"truncated"`     // captured shorter than their headers claim
	Malformed   uint64 `json:"malformed"`     // a header failed to decode; what came before it is kept
	ICMPQuoted  uint64 `json:"icmp_quoted"`   // ICMP errors whose quoted ports were used
	UnknownLink uint64 `json:"unknown_link"`  // frames of a link type the decoder does not handle
	IPv6ExtHdrs uint64 `json:"ipv6_ext_hdrs"` // IPv6 packets with extension headers
	VLANTagged  uint64 `json:"vlan_tagged"`   // frames with an 802.1Q tag
	IPsecAH     uint64 `json:"ipsec_ah"`      // IPsec Authentication Headers stepped over
	// UnknownLinkType is the link type of the first frame counted in
	// UnknownLink, for the warning that names it (a capture rarely
	// mixes several unsupported ones).
	UnknownLinkType LinkType `json:"unknown_link_type,omitempty"`
	// Panicked counts frames whose decoding or rules panicked, a bug: each
	// was kept as a frame without addresses (ScoreResult.FirstPanic).
	Panicked uint64 `json:"panicked,omitempty"`
}

// frameOnly is a frame's Packet before decoding: its time and its length
// on the wire (at least what was captured), no addresses.
func frameOnly(data []byte, ci gopacket.CaptureInfo) Packet {
	return Packet{Time: epochSeconds(ci.Timestamp.Unix(), int64(ci.Timestamp.Nanosecond())), Length: max(ci.Length, len(data)), Cut: len(data) < ci.Length}
}

// A Decoder turns frames into Packets with gopacket's DecodingLayerParser,
// reusing its layers so that decoding allocates nothing per packet. It is
// not safe for concurrent use; give each goroutine its own.
type Decoder struct {
	eth     ethernet
	dot1q   dot1Q
	ah      ipsecAH
	ip4     ipv4First
	ip6     ipv6First
	ext     layers.IPv6ExtensionSkipper
	tcp     layers.TCP
	udp     layers.UDP
	icmp4   layers.ICMPv4
	icmp6   layers.ICMPv6
	arp     layers.ARP
	loop    layers.Loopback
	sll     linuxSLL
	sll2    linuxSLL2
	ethP    *gopacket.DecodingLayerParser
	raw4P   *gopacket.DecodingLayerParser
	raw6P   *gopacket.DecodingLayerParser
	loopP   *gopacket.DecodingLayerParser
	sllP    *gopacket.DecodingLayerParser
	sll2P   *gopacket.DecodingLayerParser
	decoded []gopacket.LayerType
	link    LinkType
	payload [MaxPayloadPrefix]byte
	// PayloadPrefix is how many bytes of each TCP or UDP payload to copy
	// into Packet.Payload (at most MaxPayloadPrefix). 0, the default,
	// copies nothing: only the payload rules need it.
	PayloadPrefix int
	// Stats counts the frames decoded so far.
	Stats DecodeStats
	// general turns decodeFast off, so that every frame goes through
	// gopacket (the tests compare the two).
	general bool
}

// NewDecoder returns a Decoder for frames of the given link type: Ethernet,
// raw IP (LinkRaw, LinkIPv4, LinkIPv6), BSD loopback (LinkNull, LinkLoop)
// and Linux cooked capture, both versions (LinkLinuxSLL and LinkLinuxSLL2,
// what tcpdump -i any writes). Frames of other links are counted as
// UnknownLink and keep only their time and length.
//
// A frame whose CaptureInfo.AncillaryData[0] is a LinkType is
// decoded as that link type instead: a pcapng Reader gives each frame its
// interface's, and a file's interfaces may differ.
func NewDecoder(link LinkType) *Decoder {
	d := &Decoder{link: link, decoded: make([]gopacket.LayerType, 0, 12)}
	ls := []gopacket.DecodingLayer{&d.eth, &d.dot1q, &d.ip4, &d.ip6, &d.ext, &d.ah, &d.tcp, &d.udp, &d.icmp4, &d.icmp6, &d.arp, &d.loop, &d.sll, &d.sll2}
	parser := func(first gopacket.LayerType) *gopacket.DecodingLayerParser {
		p := gopacket.NewDecodingLayerParser(first, ls...)
		p.IgnoreUnsupported = true
		return p
	}
	d.ethP, d.raw4P, d.raw6P = parser(layers.LayerTypeEthernet), parser(layers.LayerTypeIPv4), parser(layers.LayerTypeIPv6)
	d.loopP, d.sllP, d.sll2P = parser(layers.LayerTypeLoopback), parser(layers.LayerTypeLinuxSLL), parser(layerTypeLinuxSLL2)
	return d
}

// Decode fills p from one frame. It never fails: whatever it cannot decode
// is counted in Stats and left out of p, following Kitsune's rules for
// packets without IP or transport headers (see doc.go).
func (d *Decoder) Decode(data []byte, ci gopacket.CaptureInfo, p *Packet) {
	*p = frameOnly(data, ci)
	d.Stats.Packets++
	if ci.CaptureLength < ci.Length {
		d.Stats.Truncated++
	}
	link := d.link
	if len(ci.AncillaryData) > 0 {
		if l, ok := ci.AncillaryData[0].(LinkType); ok {
			link = l
		}
	}
	if !d.general && link == LinkEthernet && d.decodeFast(data, p) {
		return
	}
	var parser *gopacket.DecodingLayerParser
	switch link {
	case LinkEthernet:
		parser = d.ethP
	case LinkRaw, LinkIPv4, LinkIPv6:
		// DecodingLayerParser starts from one fixed layer type; a raw link
		// carries either version.
		parser = d.raw4P
		if len(data) > 0 && data[0]>>4 == 6 {
			parser = d.raw6P
		}
	case LinkNull, LinkLoop:
		// gopacket's Loopback reads the address family in either byte
		// order: host order (Null) or network order (Loop).
		parser = d.loopP
	case LinkLinuxSLL:
		parser = d.sllP
	case LinkLinuxSLL2:
		parser = d.sll2P
	default:
		if d.Stats.UnknownLink == 0 {
			d.Stats.UnknownLinkType = link
		}
		d.Stats.UnknownLink++
		return
	}
	d.decoded = d.decoded[:0]
	d.ip4.seen, d.ip6.seen, d.ip6.salvaged = false, false, false
	if err := parser.DecodeLayers(data, &d.decoded); err != nil {
		d.Stats.Malformed++
	}
	d.fill(p)
}

// fill copies the decoded layers into p following Kitsune's tshark rules.
func (d *Decoder) fill(p *Packet) {
	var haveIP4, haveIP6, haveTransport, haveICMP4, haveARP, haveICMP6, fragment bool
	firstFragment := false   // fragment is the first of its packet
	var transportFrom []byte // the IP payload, for ports of a truncated header
	wire := 0                // transportFrom's length on the wire, from the IP lengths (0: unknown)
	lastIPv6 := false        // the last IP header was IPv6's, so extension headers may follow
	var ipProto layers.IPProtocol
layers:
	for i, t := range d.decoded {
		switch t {
		case layers.LayerTypeEthernet:
			copy(p.SrcMAC[:], d.eth.SrcMAC)
			copy(p.DstMAC[:], d.eth.DstMAC)
		case layers.LayerTypeLinuxSLL:
			if d.sll.addrLen == 6 {
				copy(p.SrcMAC[:], d.sll.addr[:6])
			}
		case layerTypeLinuxSLL2:
			if d.sll2.addrLen == 6 {
				copy(p.SrcMAC[:], d.sll2.addr[:6])
			}
		case layers.LayerTypeDot1Q:
			d.Stats.VLANTagged++
		case layers.LayerTypeIPv4:
			lastIPv6 = false
			if haveIP4 || haveIP6 {
				// A tunnel's inner header: the addresses are the outer's
				// (tshark's first occurrence), the ports the inner's (the
				// first TCP or UDP header), unless the outer is a fragment.
				ip := &d.ip4.IPv4
				if transportFrom == nil && !fragment && ip.Flags&layers.IPv4MoreFragments == 0 && ip.FragOffset == 0 &&
					hasPorts(ip.Protocol) {
					transportFrom, wire = ip.Payload, ipv4PayloadLen(ip)
				}
				continue
			}
			haveIP4 = true
			ip := &d.ip4.first
			p.Src, p.Dst = hostIPv4(ip.SrcIP), hostIPv4(ip.DstIP)
			ipProto, wire = ip.Protocol, ipv4PayloadLen(ip)
			if ip.Flags&layers.IPv4MoreFragments != 0 || ip.FragOffset != 0 {
				d.Stats.Fragments++
				fragment, firstFragment = true, ip.FragOffset == 0
				// Only when what the fragment carries of the transport header
				// (up to 20 bytes) was captured.
				if n := max(wire, 0); ip.FragOffset == 0 && len(ip.Payload) >= min(n, len(p.FragHead)) {
					p.FragProto, p.FragLen = ip.Protocol, uint16(n)
					copy(p.FragHead[:], ip.Payload)
				}
			} else if hasPorts(ip.Protocol) {
				transportFrom = ip.Payload
			}
		case layers.LayerTypeIPv6:
			lastIPv6 = true
			if haveIP4 || haveIP6 {
				if transportFrom == nil && !fragment {
					// What follows is the inner packet's: its extension
					// headers come off its own length.
					_, wire = ipv6Next(&d.ip6.IPv6)
					if next := d.ip6.NextLayerType(); next == layers.LayerTypeTCP || next == layers.LayerTypeUDP {
						transportFrom = d.ip6.Payload
					}
				}
				continue
			}
			haveIP6 = true
			ip := &d.ip6.first
			p.Src, p.Dst = hostIPv6(ip.SrcIP), hostIPv6(ip.DstIP)
			ipProto, wire = d.ip6.firstProto, d.ip6.firstWire
			if d.ip6.firstHopByHop {
				d.Stats.IPv6ExtHdrs++ // gopacket decodes hop-by-hop inside IPv6
			}
			if next := d.ip6.firstNext; next == layers.LayerTypeTCP || next == layers.LayerTypeUDP {
				transportFrom = ip.Payload
			}
		case layers.LayerTypeIPv6HopByHop, layers.LayerTypeIPv6Routing, layers.LayerTypeIPv6Destination:
			if !lastIPv6 {
				// After an IPv4 header (protocol 0, 43 or 60) this is no
				// extension header but the payload of a raw packet.
				break layers
			}
			d.Stats.IPv6ExtHdrs++
			ipProto, wire = d.ext.NextHeader, wire-len(d.ext.Contents)
			if hasPorts(d.ext.NextHeader) {
				transportFrom = d.ext.Payload
			}
		case layers.LayerTypeIPSecAH:
			d.Stats.IPsecAH++
			ipProto, wire = d.ah.next, wire-len(d.ah.Contents)
			if !fragment && hasPorts(d.ah.next) {
				transportFrom = d.ah.Payload
			}
		case layers.LayerTypeIPv6Fragment:
			if !lastIPv6 {
				break layers
			}
			d.Stats.IPv6ExtHdrs++
			// An atomic fragment (offset 0, no more to come: RFC 6946) is
			// the whole packet, read as one. The parser reuses one layer
			// for every extension header, so d.ext is this one only when
			// no other follows.
			last := i+1 == len(d.decoded) || !isIPv6Extension(d.decoded[i+1])
			first, more := false, true // unknown: neither atomic nor first
			if c := d.ext.Contents; last && len(c) >= 4 {
				field := binary.BigEndian.Uint16(c[2:4]) // offset in 8-byte units, 2 reserved bits, M
				first, more = field>>3 == 0, field&1 != 0
			}
			if first && !more {
				ipProto, wire = d.ext.NextHeader, wire-len(d.ext.Contents)
				if !fragment && hasPorts(d.ext.NextHeader) {
					transportFrom = d.ext.Payload
				}
				continue
			}
			d.Stats.Fragments++
			fragment, transportFrom = true, nil
			firstFragment, ipProto = first, d.ext.NextHeader
			// A first fragment tells the rules what it carries of its
			// transport header, as an IPv4 one does (FragProto), when it
			// was captured whole.
			if first && !p.Cut && !haveIP4 && hasPorts(d.ext.NextHeader) {
				p.FragProto, p.FragLen = d.ext.NextHeader, uint16(min(len(d.ext.Payload), 0xffff))
				copy(p.FragHead[:], d.ext.Payload)
			}
			// The parser goes on to decode whatever follows a fragment header;
			// only an unfragmented first piece would be trustworthy, and tshark
			// would reassemble, so take no ports from any fragment.
			break layers
		case layers.LayerTypeTCP:
			if !haveTransport && transportFrom != nil {
				haveTransport = true
				p.SrcPort, p.DstPort = uint16(d.tcp.SrcPort), uint16(d.tcp.DstPort)
				p.Proto = layers.IPProtocolTCP
				p.TCPFlags = tcpFlags(&d.tcp)
				p.Seq, p.Ack = d.tcp.Seq, d.tcp.Ack
				if n := wire - len(d.tcp.Contents); wire > 0 && n > 0 {
					p.PayloadLen = n
				}
				d.copyPayload(p, d.tcp.Payload)
			}
		case layers.LayerTypeUDP:
			if !haveTransport && transportFrom != nil {
				haveTransport = true
				p.SrcPort, p.DstPort = uint16(d.udp.SrcPort), uint16(d.udp.DstPort)
				p.Proto = layers.IPProtocolUDP
				d.copyPayload(p, d.udp.Payload)
			}
		case layers.LayerTypeICMPv4:
			haveICMP4 = true
		case layers.LayerTypeICMPv6:
			haveICMP6 = true
		case layers.LayerTypeARP:
			haveARP = true
		}
	}
	if !haveTransport && len(transportFrom) >= 4 {
		// A TCP header cut short by the snaplen still has its ports, and
		// tshark reports them.
		haveTransport = true
		p.SrcPort, p.DstPort = binary.BigEndian.Uint16(transportFrom), binary.BigEndian.Uint16(transportFrom[2:])
	}
	if !haveTransport && haveICMP4 && icmp4Quotes(d.icmp4.TypeCode.Type()) {
		haveTransport = quotedPortsIPv4(d.icmp4.Payload, p)
	}
	if !haveTransport && haveICMP6 && d.icmp6.TypeCode.Type() >= 1 && d.icmp6.TypeCode.Type() <= 4 && len(d.icmp6.Payload) >= 4 {
		haveTransport = quotedPortsIPv6(d.icmp6.Payload[4:], p)
	}
	if !haveIP4 && !haveIP6 && d.ip6.salvaged {
		// gopacket refuses an IPv6 packet whose header is whole for what
		// follows it (no next header and a length of 0, a hop-by-hop
		// header past the end); tshark still reports its addresses.
		haveIP6 = true
		p.Src, p.Dst = hostIPv6(d.ip6.SrcIP), hostIPv6(d.ip6.DstIP)
	}
	haveIP := haveIP4 || haveIP6
	switch {
	case haveTransport:
		p.Ports = PortNumber
		if haveICMP4 || haveICMP6 {
			d.Stats.ICMPQuoted++
		}
	case haveARP:
		p.Ports = PortARP
		p.Src, p.Dst = Host{}, Host{}
		if d.arp.Protocol == layers.EthernetTypeIPv4 && len(d.arp.SourceProtAddress) == 4 && len(d.arp.DstProtAddress) == 4 {
			p.Src, p.Dst = hostIPv4(d.arp.SourceProtAddress), hostIPv4(d.arp.DstProtAddress)
		}
	case haveICMP4:
		p.Ports = PortICMP
	case !haveIP:
		d.Stats.NonIP++
		p.Src, p.Dst = hostMAC(p.SrcMAC), hostMAC(p.DstMAC)
	}
	// An ICMP error answers a packet (a flood's, often): it is no flood
	// packet itself.
	icmpError := haveICMP4 && icmp4Quotes(d.icmp4.TypeCode.Type()) || haveICMP6 && d.icmp6.TypeCode.Type() < 128
	// A first fragment says its protocol too: a flood of big GRE packets
	// or pings is fragmented. The later fragments count for nothing.
	if haveIP && !haveTransport && (!fragment || firstFragment) && !icmpError && !hasPorts(ipProto) {
		p.Portless, p.IPProto = true, ipProto
	}
}

// decodeFast decodes the commonest frames straight from the bytes and
// reports whether it did: Ethernet II carrying an IPv4 packet without
// options or fragmentation whose TCP or UDP header is all there (the
// packet itself may be cut short by the snaplen, as most of the Mirai
// capture's are), or an Ethernet ARP packet of the usual sizes. It fills p
// exactly as gopacket's layers and fill would (the tests compare the two
// on every frame of the captures and on fuzzed frames); where gopacket
// would find anything wrong or unusual it declines, and the frame takes
// the general way. gopacket's parser costs a map lookup and an interface
// call per layer, and most of the decoder's time on ordinary traffic.
// Decode calls it only for frames of an Ethernet link.
func (d *Decoder) decodeFast(data []byte, p *Packet) bool {
	if len(data) < 14+20 {
		return false
	}
	switch layers.EthernetType(binary.BigEndian.Uint16(data[12:14])) {
	case layers.EthernetTypeIPv4:
	case layers.EthernetTypeARP:
		return d.decodeFastARP(data, p)
	default:
		return false
	}
	ip := data[14:]
	total := int(binary.BigEndian.Uint16(ip[2:4]))
	flagsFrag := binary.BigEndian.Uint16(ip[6:8])
	proto := layers.IPProtocol(ip[9])
	// No options (IHL 5), not a fragment (MF clear, offset 0), TCP or UDP.
	// A total length of 0 (TSO) goes the general way.
	if ip[0]&0x0f != 5 || total < 20 || flagsFrag&0x3fff != 0 ||
		(proto != layers.IPProtocolTCP && proto != layers.IPProtocolUDP) {
		return false
	}
	// gopacket trims the link's padding past the total length, and keeps
	// what was captured of a packet cut short.
	seg := ip[20:min(total, len(ip))]
	var payload []byte
	var flags uint8
	switch proto {
	case layers.IPProtocolTCP:
		if len(seg) < 20 {
			return false
		}
		start := int(seg[12]>>4) * 4
		if start < 20 || start > len(seg) || !tcpOptionsValid(seg[20:start]) {
			return false
		}
		flags, payload = seg[13], seg[start:]
		p.Seq, p.Ack = binary.BigEndian.Uint32(seg[4:8]), binary.BigEndian.Uint32(seg[8:12])
		p.PayloadLen = max(total-20-start, 0)
	case layers.IPProtocolUDP:
		if len(seg) < 8 {
			return false
		}
		switch n := int(binary.BigEndian.Uint16(seg[4:6])); {
		case n >= 8:
			payload = seg[8:min(n, len(seg))]
		case n == 0: // a jumbogram: the rest
			payload = seg[8:]
		default:
			return false
		}
	}
	copy(p.DstMAC[:], data[0:6])
	copy(p.SrcMAC[:], data[6:12])
	p.Src, p.Dst = hostIPv4(ip[12:16]), hostIPv4(ip[16:20])
	p.SrcPort, p.DstPort = binary.BigEndian.Uint16(seg[0:2]), binary.BigEndian.Uint16(seg[2:4])
	p.Proto, p.TCPFlags, p.Ports = proto, flags, PortNumber
	d.copyPayload(p, payload)
	return true
}

// decodeFastARP is decodeFast for an ARP packet with 6-byte hardware and
// 4-byte protocol addresses, all there.
func (d *Decoder) decodeFastARP(data []byte, p *Packet) bool {
	arp := data[14:]
	if len(arp) < 28 || arp[4] != 6 || arp[5] != 4 {
		return false
	}
	copy(p.DstMAC[:], data[0:6])
	copy(p.SrcMAC[:], data[6:12])
	p.Ports = PortARP
	if layers.EthernetType(binary.BigEndian.Uint16(arp[2:4])) == layers.EthernetTypeIPv4 {
		p.Src, p.Dst = hostIPv4(arp[14:18]), hostIPv4(arp[24:28])
	}
	return true
}

// linuxSLL decodes the 16-byte header of a Linux cooked capture (packet
// type, ARPHRD type, address length, 8 bytes of address, protocol). It
// stands in for gopacket's LinuxSLL, whose decoder slices the address by
// the header's length field unchecked: a frame claiming a long address
// panics.
type linuxSLL struct {
	layers.BaseLayer
	addrLen  uint16
	addr     [8]byte
	protocol layers.EthernetType
}

func (s *linuxSLL) CanDecode() gopacket.LayerClass    { return layers.LayerTypeLinuxSLL }
func (s *linuxSLL) NextLayerType() gopacket.LayerType { return s.protocol.LayerType() }

func (s *linuxSLL) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 16 {
		df.SetTruncated()
		return errors.New("linux cooked capture header cut short")
	}
	s.addrLen = binary.BigEndian.Uint16(data[4:6])
	copy(s.addr[:], data[6:14])
	s.protocol = layers.EthernetType(binary.BigEndian.Uint16(data[14:16]))
	s.BaseLayer = layers.BaseLayer{Contents: data[:16], Payload: data[16:]}
	return nil
}

// ipv4First is gopacket's IPv4 layer keeping the frame's first header
// (first, once seen): the parser decodes a tunnel's inner header into the
// same layer, and tshark (Kitsune) reports the first occurrence, the outer
// header.
type ipv4First struct {
	layers.IPv4
	first layers.IPv4
	seen  bool // a header was decoded in the frame
}

func (l *ipv4First) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	err := l.IPv4.DecodeFromBytes(data, df)
	if err == nil && !l.seen {
		l.first, l.seen = l.IPv4, true
	}
	return err
}

// ipv6First is ipv4First for IPv6, with what fill needs of the first
// header beside it. When the frame's first IPv6 header is whole but
// gopacket refuses the packet, salvaged says its addresses are in SrcIP
// and DstIP.
type ipv6First struct {
	layers.IPv6
	first         layers.IPv6
	firstHopByHop bool
	firstNext     gopacket.LayerType
	// firstProto and firstWire are the protocol after the first header
	// (and the hop-by-hop header gopacket decodes inside it) and the
	// length on the wire of what follows them.
	firstProto layers.IPProtocol
	firstWire  int
	seen       bool
	salvaged   bool
}

func (l *ipv6First) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	err := l.IPv6.DecodeFromBytes(data, df)
	switch {
	case l.seen:
	case err == nil:
		l.first, l.firstHopByHop, l.firstNext = l.IPv6, l.HopByHop != nil, l.NextLayerType()
		l.firstProto, l.firstWire = ipv6Next(&l.IPv6)
		l.seen = true
	case len(data) >= 40 && data[0]>>4 == 6:
		l.salvaged = true
	}
	return err
}

// ipv4PayloadLen is the length on the wire of what follows an IPv4
// header, by its lengths.
func ipv4PayloadLen(ip *layers.IPv4) int { return int(ip.Length) - int(ip.IHL)*4 }

// ipv6Next returns the protocol after an IPv6 header and the hop-by-hop
// header gopacket decodes inside it, and the length on the wire of what
// follows them.
func ipv6Next(ip *layers.IPv6) (layers.IPProtocol, int) {
	if ip.HopByHop != nil {
		return ip.HopByHop.NextHeader, int(ip.Length) - len(ip.HopByHop.Contents)
	}
	return ip.NextHeader, int(ip.Length)
}

// hasPorts reports whether proto is a transport with ports: TCP or UDP.
func hasPorts(proto layers.IPProtocol) bool {
	return proto == layers.IPProtocolTCP || proto == layers.IPProtocolUDP
}

// isIPv6Extension reports whether t is one of the IPv6 extension headers
// the parser's IPv6ExtensionSkipper decodes.
func isIPv6Extension(t gopacket.LayerType) bool {
	switch t {
	case layers.LayerTypeIPv6HopByHop, layers.LayerTypeIPv6Routing, layers.LayerTypeIPv6Destination, layers.LayerTypeIPv6Fragment:
		return true
	}
	return false
}

// ipsecAH steps over an IPsec Authentication Header (IP protocol 51, in
// IPv4 or among IPv6's extension headers) to the header it protects, as
// tshark does; gopacket's IPSecAH is no DecodingLayer. Its length field
// counts 4-byte words less 2.
type ipsecAH struct {
	layers.BaseLayer
	next layers.IPProtocol
}

func (a *ipsecAH) CanDecode() gopacket.LayerClass    { return layers.LayerTypeIPSecAH }
func (a *ipsecAH) NextLayerType() gopacket.LayerType { return a.next.LayerType() }

func (a *ipsecAH) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 12 {
		df.SetTruncated()
		return errors.New("IPsec AH header cut short")
	}
	n := (int(data[1]) + 2) * 4
	if n > len(data) {
		df.SetTruncated()
		return errors.New("IPsec AH header longer than what was captured")
	}
	a.next = layers.IPProtocol(data[0])
	a.BaseLayer = layers.BaseLayer{Contents: data[:n], Payload: data[n:]}
	return nil
}

// ethernet and dot1Q are gopacket's layers taking 0x9100, the tag type
// of QinQ before 802.1ad gave it 0x88a8 (still common on switches), as a
// VLAN tag.
type ethernet struct{ layers.Ethernet }

func (e *ethernet) NextLayerType() gopacket.LayerType { return vlanNext(e.EthernetType) }

type dot1Q struct{ layers.Dot1Q }

func (q *dot1Q) NextLayerType() gopacket.LayerType { return vlanNext(q.Type) }

const ethernetTypeQinQ9100 layers.EthernetType = 0x9100

func vlanNext(t layers.EthernetType) gopacket.LayerType {
	if t == ethernetTypeQinQ9100 {
		return layers.LayerTypeDot1Q
	}
	return t.LayerType()
}

// linuxSLL2 decodes the 20-byte header of a Linux cooked capture v2
// (LINKTYPE_LINUX_SLL2, what tcpdump 4.99 and later write for -i any): the
// protocol, 2 reserved bytes, the interface index, the ARPHRD type, the
// packet type, the address length and 8 bytes of the sender's address.
type linuxSLL2 struct {
	layers.BaseLayer
	addrLen  uint8
	addr     [8]byte
	protocol layers.EthernetType
}

// layerTypeLinuxSLL2 names linuxSLL2 to a DecodingLayerParser; gopacket
// has no such layer. It is decoded only that way, so it needs no Decoder.
var layerTypeLinuxSLL2 = gopacket.RegisterLayerType(12276, gopacket.LayerTypeMetadata{Name: "LinuxSLL2"})

func (s *linuxSLL2) CanDecode() gopacket.LayerClass    { return layerTypeLinuxSLL2 }
func (s *linuxSLL2) NextLayerType() gopacket.LayerType { return s.protocol.LayerType() }

func (s *linuxSLL2) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 20 {
		df.SetTruncated()
		return errors.New("linux cooked capture v2 header cut short")
	}
	s.protocol = layers.EthernetType(binary.BigEndian.Uint16(data[0:2]))
	s.addrLen = data[11]
	copy(s.addr[:], data[12:20])
	s.BaseLayer = layers.BaseLayer{Contents: data[:20], Payload: data[20:]}
	return nil
}

// tcpOptionsValid reports whether gopacket would parse TCP options opts
// without an error: every option but End of List and No-Operation has a
// length of at least 2 that stays within them.
func tcpOptionsValid(opts []byte) bool {
	for len(opts) > 0 {
		switch opts[0] {
		case 0: // End of List: the rest is padding
			return true
		case 1: // No-Operation
			opts = opts[1:]
		default:
			if len(opts) < 2 || opts[1] < 2 || int(opts[1]) > len(opts) {
				return false
			}
			opts = opts[opts[1]:]
		}
	}
	return true
}

// tcpFlags packs gopacket's flag booleans into one byte.
func tcpFlags(t *layers.TCP) uint8 {
	var f uint8
	for i, on := range [8]bool{t.FIN, t.SYN, t.RST, t.PSH, t.ACK, t.URG, t.ECE, t.CWR} {
		if on {
			f |= 1 << i
		}
	}
	return f
}

// copyPayload copies the first PayloadPrefix bytes of b into the decoder's
// buffer, so that Packet.Payload never allocates and never outlives it.
func (d *Decoder) copyPayload(p *Packet, b []byte) {
	n := min(d.PayloadPrefix, MaxPayloadPrefix, len(b))
	if n <= 0 {
		return
	}
	p.Payload = d.payload[:copy(d.payload[:n], b)]
}

// icmp4Quotes reports whether an ICMPv4 type carries the start of the packet
// that caused it: destination unreachable, source quench, redirect, time
// exceeded and parameter problem.
func icmp4Quotes(t uint8) bool {
	switch t {
	case 3, 4, 5, 11, 12:
		return true
	}
	return false
}

// quotedPortsIPv4 takes the transport ports of the IPv4 packet quoted in an
// ICMP error, as tshark reports them in tcp.srcport and udp.srcport. They are
// the quoted packet's own, so its source port is the ICMP receiver's port.
func quotedPortsIPv4(b []byte, p *Packet) bool {
	if len(b) < 20 || b[0]>>4 != 4 {
		return false
	}
	ihl := int(b[0]&0x0f) * 4
	proto := layers.IPProtocol(b[9])
	fragOffset := binary.BigEndian.Uint16(b[6:]) & 0x1fff
	if ihl < 20 || fragOffset != 0 || (proto != layers.IPProtocolTCP && proto != layers.IPProtocolUDP) || len(b) < ihl+4 {
		return false
	}
	p.SrcPort, p.DstPort = binary.BigEndian.Uint16(b[ihl:]), binary.BigEndian.Uint16(b[ihl+2:])
	return true
}

// quotedPortsIPv6 is quotedPortsIPv4 for ICMPv6 errors; it does not walk the
// quoted packet's extension headers.
func quotedPortsIPv6(b []byte, p *Packet) bool {
	if len(b) < 44 || b[0]>>4 != 6 {
		return false
	}
	proto := layers.IPProtocol(b[6])
	if proto != layers.IPProtocolTCP && proto != layers.IPProtocolUDP {
		return false
	}
	p.SrcPort, p.DstPort = binary.BigEndian.Uint16(b[40:]), binary.BigEndian.Uint16(b[42:])
	return true
}

// hostIPv4 keys an IPv4 address (gopacket gives 4 bytes for IPv4 headers,
// ARP gives 4 bytes too; a 16-byte form is reduced to its last 4).
func hostIPv4(ip []byte) Host {
	h := Host{Kind: AddrIPv4}
	if len(ip) >= 4 {
		copy(h.Addr[:4], ip[len(ip)-4:])
	}
	return h
}

func hostIPv6(ip []byte) Host {
	h := Host{Kind: AddrIPv6}
	copy(h.Addr[:], ip)
	return h
}

func hostMAC(mac [6]byte) Host {
	h := Host{Kind: AddrMAC}
	copy(h.Addr[:], mac[:])
	return h
}

// epochSeconds returns the float64 nearest to sec + nsec/1e9, which is what
// parsing tshark's decimal frame.time_epoch gives. The plain sum rounds twice
// and is sometimes one unit in the last place off, which for λ = 5 moves a
// decay factor by more than the 1e-6 the features must match to; so the two
// neighbours of the plain sum are checked, with the residue computed exactly
// enough by a fused multiply-add.
func epochSeconds(sec, nsec int64) float64 {
	if sec < 0 {
		sec, nsec = 0, 0
	}
	s, n := float64(sec), float64(nsec)
	c := s + n/1e9
	best, bestErr := c, math.Abs(math.FMA(c-s, 1e9, -n))
	for _, x := range [2]float64{math.Nextafter(c, math.Inf(-1)), math.Nextafter(c, math.Inf(1))} {
		if e := math.Abs(math.FMA(x-s, 1e9, -n)); e < bestErr {
			best, bestErr = x, e
		}
	}
	return best
}
