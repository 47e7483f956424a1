package detect

import (
	"fmt"

	"github.com/google/gopacket/layers"
)

// A LinkType is a capture's link-layer header type, the LINKTYPE_ number a
// pcap file header or pcapng interface description gives it. gopacket's
// layers.LinkType is one byte and would read LINKTYPE_LINUX_SLL2 (276) as
// 20, or 257 as Ethernet; a LinkType holds the full 16 bits.
type LinkType uint16

// The link types the Decoder reads (others are counted as unknown).
const (
	LinkNull      LinkType = 0   // BSD loopback, address family in host order
	LinkEthernet  LinkType = 1   // Ethernet II and 802.3
	LinkRaw       LinkType = 101 // an IPv4 or IPv6 packet, no link header
	LinkLoop      LinkType = 108 // OpenBSD loopback, family in network order
	LinkLinuxSLL  LinkType = 113 // Linux cooked capture v1 (tcpdump -i any)
	LinkIPv4      LinkType = 228 // raw IPv4
	LinkIPv6      LinkType = 229 // raw IPv6
	LinkLinuxSLL2 LinkType = 276 // Linux cooked capture v2 (tcpdump 4.99 -i any)
)

// String names the link type with its number, "LINUX_SLL2 (276)" or
// "802.11 (105)", or gives the number alone when it has no name here.
func (l LinkType) String() string {
	switch l {
	case LinkRaw:
		return "RAW (101)"
	case LinkLinuxSLL2:
		return "LINUX_SLL2 (276)"
	}
	if l <= 0xff {
		if name := layers.LinkType(l).String(); name != "" && name != "UnknownLinkType" {
			return fmt.Sprintf("%s (%d)", name, l)
		}
	}
	return fmt.Sprintf("LINKTYPE %d", l)
}

// linkTypeField reads the link type from a pcap header's 32-bit field,
// whose upper bits say whether frames end in a frame check sequence.
func linkTypeField(v uint32) LinkType { return LinkType(v & 0xffff) }
