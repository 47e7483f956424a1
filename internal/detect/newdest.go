package detect

import (
	"fmt"
	"strconv"

	"github.com/google/gopacket/layers"

	"github.com/fleetward/fleetward/internal/alert"
)

// A destination class is where a device opens traffic to, coarsely: the
// destination's scope (another local device, the internet, a group
// address) and the service (by its port). IoT devices do few things: a
// camera talks to its recorder on the LAN and to its vendor's cloud over
// HTTPS, and the first time it opens Telnet to the internet it has changed
// hands. Classes are coarse on purpose: a new cloud address is not news, a
// new kind of traffic is.
type destClass struct {
	scope   uint8
	service string
	// id tells services apart without comparing names: a well-known
	// service's serviceIDs entry (the same over TCP and UDP, as the name
	// is), or a port band's: 256 plus its index in tcpBandNames, or
	// 256 + 1026 plus its index in udpBandNames.
	id uint16
}

// key is the class as a map key, without hashing its name.
func (c destClass) key() uint32 { return uint32(c.scope)<<16 | uint32(c.id) }

// Destination scopes.
const (
	scopeLocal uint8 = iota + 1
	scopePublic
	scopeGroup
)

var scopeNames = [...]string{scopeLocal: "local", scopePublic: "internet", scopeGroup: "multicast/broadcast"}

func (c destClass) String() string { return c.service + " to " + scopeNames[c.scope] }

// wellKnownServices names the ports of the services IoT devices use, so
// that 80 and 8080 are both "web" and a new port of a known service is not
// a new class.
var wellKnownServices = map[uint16]string{
	20: "ftp", 21: "ftp", 22: "ssh", 23: "telnet", 2323: "telnet", 25: "smtp", 465: "smtp", 587: "smtp",
	53: "dns", 5353: "mdns", 5355: "llmnr", 67: "dhcp", 68: "dhcp", 547: "dhcp", 69: "tftp", 123: "ntp",
	80: "web", 8080: "web", 8000: "web", 8081: "web", 8888: "web", 443: "https", 8443: "https",
	1883: "mqtt", 8883: "mqtt", 5683: "coap", 5684: "coap", 554: "rtsp", 8554: "rtsp", 1900: "ssdp",
	161: "snmp", 162: "snmp", 514: "syslog", 3478: "stun", 5060: "sip", 5061: "sip", 502: "modbus",
	47808: "bacnet", 7547: "tr-069", 37215: "upnp-soap", 52869: "upnp-soap", 5555: "adb", 3389: "rdp", 5900: "vnc",
	445: "smb", 139: "smb", 137: "netbios", 138: "netbios", 6667: "irc",
}

// serviceIDs gives each port of wellKnownServices its service's number
// (1 + its index in serviceNames), 0 for the rest: a lookup by port
// without hashing, 64 KiB with no pointers for the collector to scan.
var serviceIDs, serviceNames = numberServices(wellKnownServices)

func numberServices(services map[uint16]string) (ids *[1 << 16]uint8, names []string) {
	ids = new([1 << 16]uint8)
	byName := map[string]uint8{}
	for port, name := range services {
		id, ok := byName[name]
		if !ok {
			names = append(names, name)
			id = uint8(len(names))
			byName[name] = id
		}
		ids[port] = id
	}
	return ids, names
}

// wellKnown returns the service that port is well known for, if any.
func wellKnown(port uint16) (name string, id uint16, ok bool) {
	if n := serviceIDs[port]; n != 0 {
		return serviceNames[n-1], uint16(n), true
	}
	return "", 0, false
}

// answers reports whether p goes from the server side of its conversation
// to the client side, as far as one packet tells: a TCP SYN opens, and a
// SYN-ACK or a refusal (RST-ACK) answers; any other TCP segment or UDP
// datagram answers when it comes from a well-known service port to a port
// that is not one, or, neither port being one, from a port of 1024 or
// more to a higher one (a client's ephemeral port, most likely). Packets
// without TCP or UDP ports never answer.
func answers(p *Packet) bool {
	if p.Ports != PortNumber || (p.Proto != layers.IPProtocolTCP && p.Proto != layers.IPProtocolUDP) {
		return false
	}
	if p.Proto == layers.IPProtocolTCP {
		switch p.TCPFlags & (FlagSYN | FlagACK) {
		case FlagSYN:
			return false
		case FlagSYN | FlagACK:
			return true
		}
		// A refusal (what a closed port answers a SYN with: RST and ACK)
		// answers whatever its ports, so that the victim of a port scan is
		// not charged with the replies the scan draws from it.
		// Segments with SYN set were settled by the switch.
		if p.TCPFlags&(FlagRST|FlagACK) == FlagRST|FlagACK {
			return true
		}
	}
	_, _, toService := wellKnown(p.DstPort)
	_, _, fromService := wellKnown(p.SrcPort)
	switch {
	case toService:
		return false
	case fromService:
		return true
	}
	return p.DstPort > p.SrcPort && p.SrcPort >= 1024
}

// initiatedClass returns the class of traffic p opens, and false for a
// packet that answers or continues a conversation: only a TCP SYN, or a
// UDP datagram to a known service port or from a high port to a lower
// one, opens.
func initiatedClass(p *Packet) (destClass, bool) {
	var c destClass
	switch p.Proto {
	case layers.IPProtocolTCP:
		if p.TCPFlags&(FlagSYN|FlagACK|FlagRST|FlagFIN) != FlagSYN {
			return c, false
		}
		name, id, known := wellKnown(p.DstPort)
		if !known {
			name, id = bandName(p.DstPort, &tcpBandNames, 256)
		}
		c.service, c.id = name, id
	case layers.IPProtocolUDP:
		if answers(p) {
			return c, false
		}
		name, id, known := wellKnown(p.DstPort)
		if !known {
			name, id = bandName(p.DstPort, &udpBandNames, 256+1026)
		}
		c.service, c.id = name, id
	default:
		return c, false
	}
	switch {
	case groupAddress(p.Dst):
		c.scope = scopeGroup
	case public(p.Dst):
		c.scope = scopePublic
	default:
		c.scope = scopeLocal
	}
	return c, true
}

// bandName names a port without a well-known service by its band, from
// names (made once, not per packet), and gives the band's class id: base
// plus the band's index in names.
func bandName(port uint16, names *[1026]string, base uint16) (string, uint16) {
	band := 1025
	switch {
	case port < 1024:
		band = int(port)
	case port < 49152:
		band = 1024
	}
	return names[band], base + uint16(band)
}

// tcpBandNames and udpBandNames are "tcp/" and "udp/" followed by the
// band (portBand) of ports 0…1023, then of the registered and dynamic bands.
var tcpBandNames, udpBandNames = bandNames("tcp/"), bandNames("udp/")

func bandNames(prefix string) (names [1026]string) {
	for port := range 1024 {
		names[port] = prefix + portBand(uint16(port))
	}
	names[1024], names[1025] = prefix+portBand(1024), prefix+portBand(49152)
	return names
}

// portBand groups an unnamed port: the well-known range by port, the rest
// in two bands.
func portBand(port uint16) string {
	switch {
	case port < 1024:
		return strconv.Itoa(int(port))
	case port < 49152:
		return "registered"
	}
	return "dynamic"
}

// destClasses is what one source has opened: the classes it knows, and
// for a class opened after the learning period, when it was first opened
// and how many times since.
type destClasses struct {
	first   float64    // when the source first opened traffic
	last    float64    // and last
	classes []newClass // at most maxClassesPerSource: a list is smaller than a map, and as quick
	// knownBeacons counts the public destinations the source contacted
	// while learning (beacon.known), at most maxKnownBeacons.
	knownBeacons int
}

// newClass follows a class (by destClass.key) opened after the learning
// period: known once it fired, or when it was opened during learning.
type newClass struct {
	key   uint32
	start float64
	n     int
	known bool
}

// class returns the source's entry for class key, or nil.
func (s *destClasses) class(key uint32) *newClass {
	for i := range s.classes {
		if s.classes[i].key == key {
			return &s.classes[i]
		}
	}
	return nil
}

// pendingSlot returns the class to forget for a new one when the list is
// full: of the classes opened after learning and not yet past the
// threshold, the one whose window began first (so a source that once
// probed 64 services, each below the threshold, still raises the rule for
// the next class it keeps opening). Nil when every class is known.
func (s *destClasses) pendingSlot() *newClass {
	var oldest *newClass
	for i := range s.classes {
		if k := &s.classes[i]; !k.known && (oldest == nil || k.start < oldest.start) {
			oldest = k
		}
	}
	return oldest
}

// maxClassesPerSource bounds a source's classes; past it, a new class
// takes the place of a pending one (pendingSlot).
const maxClassesPerSource = 64

// newDestination records the class p opens for its source and fires when
// a source past its learning period opens a class it never did.
func (d *RuleDetector) newDestination(p *Packet, out []alert.Signal) []alert.Signal {
	c, ok := initiatedClass(p)
	if !ok {
		return out
	}
	s := d.dests[p.Src]
	if s == nil {
		if len(d.dests) >= maxRuleKeys {
			clear(d.dests)
		}
		s = &destClasses{first: p.Time}
		d.dests[p.Src] = s
	}
	s.last = p.Time
	if d.r.NoNewDestination {
		return out // the source's first and last times are kept for beaconing
	}
	learnt := p.Time - s.first
	nc := s.class(c.key())
	if nc == nil {
		fresh := newClass{key: c.key(), start: p.Time, known: learnt < d.r.NewDestinationLearning.Seconds()}
		if len(s.classes) < maxClassesPerSource {
			s.classes = append(s.classes, fresh)
			nc = &s.classes[len(s.classes)-1]
		} else if nc = s.pendingSlot(); nc == nil {
			return out // 64 classes known: a scanner, which the scan rules see
		} else {
			*nc = fresh
		}
	}
	if nc.known {
		return out
	}
	// A single probe is noise (a router checking a port); a device that
	// keeps opening the new kind of traffic has changed behaviour.
	if p.Time-nc.start > d.r.NewDestinationWindow.Seconds() {
		nc.start, nc.n = p.Time, 0
	}
	nc.n++
	if nc.n < d.r.NewDestinationOpens {
		return out
	}
	nc.known = true
	known := 0
	for _, k := range s.classes {
		if k.known {
			known++
		}
	}
	severity := alert.SeverityMedium
	if c.scope == scopePublic && (loginPort(p.DstPort) || c.service == "irc") {
		severity = alert.SeverityHigh
	}
	return append(out, d.signal(p, "new_destination", severity, nc.n, d.r.NewDestinationOpens,
		fmt.Sprintf("%s opened %d times within %s (%s), never before in %.0f s of this source's traffic; %d other classes known",
			c, nc.n, d.r.NewDestinationWindow, peerString(p), learnt, known-1)))
}
