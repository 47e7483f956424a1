package detect

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"net/netip"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/fleetward/fleetward/internal/alert"
	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/ascii"
	"github.com/fleetward/fleetward/internal/setting"
)

// Rules are the thresholds of the packet rules (docs/DETECTION.md). A zero
// field takes its default from DefaultRules. Counting windows are fixed
// (they restart when their first packet is older than the window), so a
// burst split by a window boundary needs up to twice its threshold; that
// keeps each window one small record instead of a list of times.
type Rules struct {
	// TelnetScanHosts distinct hosts sent a TCP SYN on 23 or 2323 by one
	// source within TelnetScanWindow: Mirai's scanner, which probes random
	// addresses many times a second. Default 10 in 10 s.
	TelnetScanHosts  int           `json:"telnet_scan_hosts"`
	TelnetScanWindow time.Duration `json:"telnet_scan_window"`
	// HostScanHosts distinct hosts sent a TCP SYN on one port other than
	// Telnet's by one source within HostScanWindow: a sweep for one
	// exploitable service (Android debugging on 5555, the router exploits
	// of Mirai's heirs on 37215 and 52869, SSH). Default 50 in 10 s: well
	// above a recorder reconnecting to its cameras.
	HostScanHosts  int           `json:"host_scan_hosts"`
	HostScanWindow time.Duration `json:"host_scan_window"`
	// RandomScanTargets distinct host:port pairs, other than Telnet's,
	// sent a TCP SYN by one source within RandomScanWindow: a scan that
	// never repeats a host or a port (random addresses, random ports), which
	// port_scan (by host) and host_scan (by port) do not see. Default 100
	// in 10 s.
	RandomScanTargets int           `json:"random_scan_targets"`
	RandomScanWindow  time.Duration `json:"random_scan_window"`
	// SYNFloodRate, UDPFloodRate and ACKFloodRate are packets from one
	// source to one destination within RateWindow: bare SYNs not followed
	// by the ACK that completes their handshake (after the destination's
	// SYN-ACK, with the sequence numbers it must carry), UDP datagrams,
	// and ACKs, bare or with data, of no connection: the other direction
	// of their connection has not talked back (anything but a reset,
	// between the same MAC addresses) within RateWindow (Mirai's ACK flood
	// sends 512 bytes with each; the ACKs of a download and the segments
	// of an upload are answered).
	// Defaults 1000, 10000 and 3000 in 1 s: well above a busy device's own
	// traffic (a camera's 4K stream is 2,500 datagrams a second; 10,000 of
	// 1,200 bytes are 100 Mbit/s). The same rates to one destination from
	// many sources (the source that sent the most having sent less than
	// half of them: spoofed or distributed) raise *_flood_received on the
	// destination, the device under attack.
	//
	// An ACK with data also counts when its connection's direction has
	// carried data before, this segment does not start where that data
	// ended, and the other side has acknowledged nothing new within
	// RateWindow (or the segment is mostly bytes sent before: see
	// talking.saw): Mirai's STOMP flood opens a real connection, then
	// sends PSH-ACKs of 768 bytes whose sequence numbers step by one (or
	// by 65,536: it byte-swaps them), which the target answers with
	// duplicate ACKs that keep the connection talking. A transfer's
	// segments follow on from each other, save the few it retransmits,
	// and its receiver's acknowledgement keeps moving.
	SYNFloodRate int           `json:"syn_flood_rate"`
	UDPFloodRate int           `json:"udp_flood_rate"`
	ACKFloodRate int           `json:"ack_flood_rate"`
	RateWindow   time.Duration `json:"rate_window"`
	// IPFloodRate is packets without ports (GRE, ESP, ICMP echo, any IP
	// protocol but TCP and UDP; unfragmented, or the first fragment of
	// one; ICMP errors aside) from one source to one unicast
	// destination within RateWindow, that the destination has not
	// answered with the same protocol (between the same MAC addresses,
	// reversed) within RateWindow: Mirai's GRE floods, which wrap random
	// UDP datagrams in GRE, as IP packets (greip) or Ethernet frames
	// (greeth). A tunnel's peers, and a host answering pings, talk back.
	// Default 3000 in 1 s; many sources to one destination raise
	// ip_flood_received.
	IPFloodRate int `json:"ip_flood_rate"`
	// HTTPFloodRate is HTTP requests (TCP payloads that start a request
	// line, see httpRequest) from one source to one destination within
	// RateWindow: Mirai's HTTP flood, which asks a web server for pages as
	// fast as it answers, over connections that complete their handshakes
	// and so are no SYN flood. Default 200 in 1 s (a browser opens 6
	// connections to a host; a page of 100 images over plain HTTP is a
	// few hundred milliseconds' worth). Many sources to one server raise
	// http_flood_received.
	HTTPFloodRate int `json:"http_flood_rate"`
	// DNSSubdomains distinct names under one registered domain (an ICANN
	// public suffix and one label more: example.co.uk, not co.uk; duckdns.org
	// for every name a dynamic-DNS user has under it) asked by one
	// source in DNS queries over UDP within DNSWindow: Mirai's DNS water
	// torture, which asks the resolver for random names under its
	// target's domain, so that every query reaches the target's
	// authoritative servers past every cache. Reverse lookups
	// (in-addr.arpa, ip6.arpa) do not count, nor does a query for a name
	// another host asked for within the last 2 s (a resolver passing it
	// on). Default 100 in 10 s.
	DNSSubdomains int           `json:"dns_subdomains"`
	DNSWindow     time.Duration `json:"dns_window"`
	// PortScanPorts distinct TCP ports of one host sent a bare SYN by one
	// source within PortScanWindow, or as many UDP ports sent a datagram
	// that does not answer one (see answers: a DNS server's replies to a
	// client's ephemeral ports are no scan). Default 20 in 60 s.
	PortScanPorts  int           `json:"port_scan_ports"`
	PortScanWindow time.Duration `json:"port_scan_window"`
	// BruteForceAttempts TCP connections (SYNs) from one source to one
	// login service (FTP 21, SSH 22, Telnet 23/2323, RDP 3389, VNC 5900,
	// POP3 110, IMAP 143) within BruteForceWindow. Default 15 in 60 s.
	BruteForceAttempts int           `json:"brute_force_attempts"`
	BruteForceWindow   time.Duration `json:"brute_force_window"`
	// BeaconConnections TCP connections from one source to one
	// destination and port whose intervals vary by at most BeaconJitter
	// (standard deviation over mean) and average between BeaconMinPeriod
	// and BeaconMaxPeriod: a bot calling home on a timer. Defaults 8
	// connections, jitter 0.1, period 5 s to 1 h. Only public destinations
	// a source first contacts more than BeaconLearning after it first
	// opened any traffic count: IoT devices keep up their own
	// clock-regular calls to their vendor's cloud (the Mirai splice's
	// cameras call home every 12 to 24 s), and those are established
	// before a device is compromised. The learning is each source's, so a
	// device that joins later, or comes back with a new address from
	// DHCP, learns its clouds too (at most 64 destinations each). Default
	// learning 10 min.
	BeaconLearning    time.Duration `json:"beacon_learning"`
	BeaconConnections int           `json:"beacon_connections"`
	BeaconJitter      float64       `json:"beacon_jitter"`
	BeaconMinPeriod   time.Duration `json:"beacon_min_period"`
	BeaconMaxPeriod   time.Duration `json:"beacon_max_period"`
	// NewDestinationLearning is how long a source is watched before a
	// destination class it never opened (a service and a scope: Telnet to
	// the internet, DNS to a local host) counts as new. Counted from the
	// source's first packet, so devices that join later learn too. A new
	// class raises new_destination once it is opened NewDestinationOpens
	// times within NewDestinationWindow. Defaults 10 min, 3 in 1 min;
	// NoNewDestination turns the rule off.
	NewDestinationLearning time.Duration `json:"new_destination_learning"`
	NewDestinationOpens    int           `json:"new_destination_opens"`
	NewDestinationWindow   time.Duration `json:"new_destination_window"`
	NoNewDestination       bool          `json:"no_new_destination"`
	// CredentialWindow: plaintext_credentials fires once per client,
	// server and service within it. Default 10 min.
	CredentialWindow time.Duration `json:"credential_window"`
	// NoCredentials turns off the plaintext-credential rule.
	NoCredentials bool `json:"no_credentials"`
	// NoPayloads turns off every rule that reads payloads (plaintext
	// credentials, HTTP floods, DNS water torture), and with them the
	// copying of payload prefixes.
	NoPayloads bool `json:"no_payloads"`
}

// DefaultRules are the documented defaults.
var DefaultRules = Rules{TelnetScanHosts: 10, TelnetScanWindow: 10 * time.Second, HostScanHosts: 50, HostScanWindow: 10 * time.Second,
	RandomScanTargets: 100, RandomScanWindow: 10 * time.Second,
	SYNFloodRate: 1000, UDPFloodRate: 10000, ACKFloodRate: 3000, IPFloodRate: 3000, HTTPFloodRate: 200, RateWindow: time.Second,
	DNSSubdomains: 100, DNSWindow: 10 * time.Second,
	PortScanPorts: 20, PortScanWindow: time.Minute, BruteForceAttempts: 15, BruteForceWindow: time.Minute,
	BeaconConnections: 8, BeaconJitter: 0.1, BeaconMinPeriod: 5 * time.Second, BeaconMaxPeriod: time.Hour,
	BeaconLearning: 10 * time.Minute, NewDestinationLearning: 10 * time.Minute,
	NewDestinationOpens: 3, NewDestinationWindow: time.Minute, CredentialWindow: 10 * time.Minute}

func (r Rules) withDefaults() Rules {
	d := DefaultRules
	pick := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	pickD := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	pick(&r.TelnetScanHosts, d.TelnetScanHosts)
	pickD(&r.TelnetScanWindow, d.TelnetScanWindow)
	pick(&r.HostScanHosts, d.HostScanHosts)
	pickD(&r.HostScanWindow, d.HostScanWindow)
	pick(&r.RandomScanTargets, d.RandomScanTargets)
	pickD(&r.RandomScanWindow, d.RandomScanWindow)
	pick(&r.SYNFloodRate, d.SYNFloodRate)
	pick(&r.UDPFloodRate, d.UDPFloodRate)
	pick(&r.ACKFloodRate, d.ACKFloodRate)
	pick(&r.IPFloodRate, d.IPFloodRate)
	pick(&r.HTTPFloodRate, d.HTTPFloodRate)
	pick(&r.DNSSubdomains, d.DNSSubdomains)
	pickD(&r.DNSWindow, d.DNSWindow)
	pickD(&r.RateWindow, d.RateWindow)
	pick(&r.PortScanPorts, d.PortScanPorts)
	pickD(&r.PortScanWindow, d.PortScanWindow)
	pick(&r.BruteForceAttempts, d.BruteForceAttempts)
	pickD(&r.BruteForceWindow, d.BruteForceWindow)
	pick(&r.BeaconConnections, d.BeaconConnections)
	if r.BeaconJitter <= 0 {
		r.BeaconJitter = d.BeaconJitter
	}
	pickD(&r.BeaconMinPeriod, d.BeaconMinPeriod)
	pickD(&r.BeaconMaxPeriod, d.BeaconMaxPeriod)
	pickD(&r.BeaconLearning, d.BeaconLearning)
	pickD(&r.NewDestinationLearning, d.NewDestinationLearning)
	pick(&r.NewDestinationOpens, d.NewDestinationOpens)
	pickD(&r.NewDestinationWindow, d.NewDestinationWindow)
	pickD(&r.CredentialWindow, d.CredentialWindow)
	return r
}

// loginPort reports whether port is a TCP service that takes a password.
func loginPort(port uint16) bool {
	switch port {
	case 21, 22, 23, 2323, 110, 143, 3389, 5900:
		return true
	}
	return false
}

// maxKnownBeacons bounds the public destinations a source learns as its
// own (beacon.known).
const maxKnownBeacons = 64

// maxRuleKeys bounds each table of rule state; past it, the table is
// cleared of idle entries, and if still full, emptied (a flood of spoofed
// sources must not exhaust memory).
const maxRuleKeys = 1 << 18

type hostPair struct{ src, dst Host }

// servicePort is a source and a destination port.
type servicePort struct {
	src  Host
	port uint16
}

type serviceKey struct {
	src, dst Host
	port     uint16
}

type connKey struct {
	client, server         Host
	clientPort, serverPort uint16
}

// counter counts packets in a fixed window and remembers whether it fired.
type counter struct {
	start float64
	n     int
	fired bool
}

// distinctSet counts distinct targets in a fixed window. It stops growing
// once it has fired: the count is past the threshold.
type distinctSet[T comparable] struct {
	start float64
	// first is the window's first target, kept inline: under a flood of
	// spoofed sources most keys never see a second, and a map each would
	// be most of the rules' memory. seen holds every target once there is
	// a second; n counts them.
	first T
	seen  map[T]struct{}
	n     int
	fired bool
}

// add counts target in the window.
func (s *distinctSet[T]) add(target T) {
	switch {
	case s.seen != nil:
		s.seen[target] = struct{}{}
		s.n = len(s.seen)
	case s.n == 0:
		s.first, s.n = target, 1
	case target != s.first:
		s.seen = map[T]struct{}{s.first: {}, target: {}}
		s.n = 2
	}
}

// remove takes target out of the window, unless it has fired.
func (s *distinctSet[T]) remove(target T) {
	switch {
	case s.fired:
	case s.seen != nil:
		delete(s.seen, target)
		s.n = len(s.seen)
	case s.n == 1 && s.first == target:
		s.n = 0
	}
}

type beacon struct {
	times []float64 // the last BeaconConnections connection times
	fired bool
	known bool // first contacted during the learning period
}

// credState follows one plaintext login conversation.
type credState struct {
	last     float64
	expect   uint8 // telnet: what the server last prompted for
	user     []byte
	password bool // telnet: the client is typing a password
}

const (
	expectNothing uint8 = iota
	expectUser
	expectPassword
)

// RuleDetector applies the packet rules to decoded packets in capture
// order and emits alert.Signals with Detector "rule". It fires once per
// rule and key per window, not once per packet. Its state is bounded (see
// maxRuleKeys) and idle entries are evicted as capture time moves. Not
// safe for concurrent use.
type RuleDetector struct {
	r        Rules
	telnet   map[Host]*distinctSet[Host]
	hostScan map[servicePort]*distinctSet[Host]
	// randomScan holds each source's host:port targets (servicePort's
	// src is the target host here).
	randomScan map[Host]*distinctSet[servicePort]
	ports      map[hostPair]*distinctSet[uint16]
	udpPorts   map[hostPair]*distinctSet[uint16]
	syn        map[hostPair]*counter
	udp        map[hostPair]*counter
	ack        map[hostPair]*counter
	ip         map[hostPair]*counter // packets without ports
	http       map[hostPair]*counter // HTTP requests
	// synIn, udpIn, ackIn, ipIn and httpIn count the same packets by
	// destination alone.
	synIn, udpIn, ackIn, ipIn, httpIn map[Host]*destCounter
	dns                               map[dnsKey]*distinctSet[uint64] // the names each source asked under a registered domain
	dnsNames                          map[uint64]dnsAsk               // who first asked for each name lately (a forwarder's queries follow)
	methods                           map[connKey]methodStart         // the first bytes of request lines sent in pieces
	ipWhat                            [256]string                     // ip_flood's words for each protocol, made at its first flood packet
	brute                             map[serviceKey]*counter
	beacons                           map[serviceKey]*beacon
	knownPorts                        map[servicePort]struct{} // the ports of known beacons (beacon.known)
	creds                             map[connKey]*credState
	tiny                              map[Host]*counter       // the tiny_fragment signals of the window
	credsSeen                         map[serviceKey]*counter // the credential signals of the window
	dests                             map[Host]*destClasses
	handshakes                        handshakes // the SYNs whose completing ACK takes them off the SYN counts
	talking                           talking    // the connection directions talking, whose other side's ACKs are no flood
	packets                           int
	swept                             [numSweeps]float64 // when evict last read each table
}

// NewRuleDetector returns a RuleDetector with rules r (zero fields take
// their defaults).
func NewRuleDetector(r Rules) *RuleDetector {
	return &RuleDetector{r: r.withDefaults(), telnet: map[Host]*distinctSet[Host]{}, hostScan: map[servicePort]*distinctSet[Host]{}, randomScan: map[Host]*distinctSet[servicePort]{}, ports: map[hostPair]*distinctSet[uint16]{},
		udpPorts: map[hostPair]*distinctSet[uint16]{},
		syn:      map[hostPair]*counter{}, udp: map[hostPair]*counter{}, ack: map[hostPair]*counter{},
		synIn: map[Host]*destCounter{}, udpIn: map[Host]*destCounter{}, ackIn: map[Host]*destCounter{}, brute: map[serviceKey]*counter{},
		ip: map[hostPair]*counter{}, http: map[hostPair]*counter{}, ipIn: map[Host]*destCounter{}, httpIn: map[Host]*destCounter{}, dns: map[dnsKey]*distinctSet[uint64]{}, dnsNames: map[uint64]dnsAsk{}, methods: map[connKey]methodStart{},
		beacons: map[serviceKey]*beacon{}, knownPorts: map[servicePort]struct{}{}, creds: map[connKey]*credState{}, tiny: map[Host]*counter{}, credsSeen: map[serviceKey]*counter{}, dests: map[Host]*destClasses{}}
}

// Rules returns the thresholds in force, defaults filled in.
func (d *RuleDetector) Rules() Rules { return d.r }

// PayloadPrefix is the Decoder.PayloadPrefix the rules need: 0 when no
// rule reads payloads.
func (d *RuleDetector) PayloadPrefix() int {
	if d.r.NoPayloads {
		return 0
	}
	return MaxPayloadPrefix
}

// Observe applies the rules to one packet and appends the signals it
// triggers to out, which it returns.
func (d *RuleDetector) Observe(p *Packet, out []alert.Signal) []alert.Signal {
	if hasPorts(p.FragProto) {
		return d.firstFragment(p, out)
	}
	if p.Portless {
		return d.portless(p, out)
	}
	if p.Ports != PortNumber || (p.Src.Kind != AddrIPv4 && p.Src.Kind != AddrIPv6) {
		return out
	}
	r := &d.r
	t := p.Time
	tcp := p.Proto == layers.IPProtocolTCP
	flags := p.TCPFlags & (FlagSYN | FlagACK | FlagRST | FlagFIN)
	// Data segments that do not follow on from their direction's last
	// (see talking.saw).
	var stray, sliver bool
	if tcp && flags&FlagRST == 0 {
		stray, sliver = d.talking.saw(p)
	}
	switch {
	case tcp && flags == FlagSYN:
		retransmit := d.handshakes.syn(p)
		if p.DstPort == 23 || p.DstPort == 2323 {
			if n, fire := distinct(d.telnet, p.Src, p.Dst, t, r.TelnetScanWindow, r.TelnetScanHosts); fire {
				out = append(out, d.signal(p, "telnet_scan", alert.SeverityHigh, n, r.TelnetScanHosts,
					fmt.Sprintf("TCP SYN to 23/2323 of %d hosts within %s (threshold %d): Mirai-style Telnet scanning", n, r.TelnetScanWindow, r.TelnetScanHosts)))
			}
		} else {
			if n, fire := distinct(d.hostScan, servicePort{p.Src, p.DstPort}, p.Dst, t, r.HostScanWindow, r.HostScanHosts); fire {
				out = append(out, d.signal(p, "host_scan", alert.SeverityHigh, n, r.HostScanHosts,
					fmt.Sprintf("TCP SYN to port %d of %d hosts within %s (threshold %d): a sweep for one service", p.DstPort, n, r.HostScanWindow, r.HostScanHosts)))
			}
			if n, fire := distinct(d.randomScan, p.Src, servicePort{p.Dst, p.DstPort}, t, r.RandomScanWindow, r.RandomScanTargets); fire {
				out = append(out, d.signal(p, "random_scan", alert.SeverityHigh, n, r.RandomScanTargets,
					fmt.Sprintf("TCP SYN to %d distinct host:port pairs within %s (threshold %d): a scan of random addresses and ports", n, r.RandomScanWindow, r.RandomScanTargets)))
			}
		}
		if n, fire := distinct(d.ports, hostPair{p.Src, p.Dst}, p.DstPort, t, r.PortScanWindow, r.PortScanPorts); fire {
			out = append(out, d.signal(p, "port_scan", alert.SeverityMedium, n, r.PortScanPorts,
				fmt.Sprintf("TCP SYN to %d ports of %s within %s (threshold %d)", n, hostString(p.Dst), r.PortScanWindow, r.PortScanPorts)))
		}
		out = d.flood(p, d.syn, d.synIn, "syn_flood", "TCP SYNs", r.SYNFloodRate, out)
		// A retransmitted SYN is the same attempt again (a client
		// retrying a server that is down), not another login.
		if loginPort(p.DstPort) && !retransmit {
			if n, fire := count(d.brute, serviceKey{p.Src, p.Dst, p.DstPort}, t, r.BruteForceWindow, r.BruteForceAttempts); fire {
				out = append(out, d.signal(p, "brute_force", alert.SeverityHigh, n, r.BruteForceAttempts,
					fmt.Sprintf("%d connections to the login service %s within %s (threshold %d)", n, peerString(p), r.BruteForceWindow, r.BruteForceAttempts)))
			}
		}
		out = d.beacon(p, out)
	case tcp && flags == FlagSYN|FlagACK:
		// An accepted connection is no scan's: the sweeps that count
		// targets regardless of what answers forget it (a recorder
		// connecting to its cameras, a TV to its CDN hosts).
		if d.handshakes.synAck(p) {
			if s := d.randomScan[p.Dst]; s != nil {
				s.remove(servicePort{p.Src, p.SrcPort})
			}
			if s := d.hostScan[servicePort{p.Dst, p.SrcPort}]; s != nil {
				s.remove(p.Src)
			}
		}
	case tcp && flags&(FlagSYN|FlagRST|FlagACK) == FlagACK: // FIN-ACKs too: a flood may set FIN
		// An ACK, bare or with data. A bare one (no payload on the wire,
		// by the IP lengths, whatever the link, options, IP version or
		// snaplen) that completes a handshake
		// takes its SYN off the SYN counts: a thousand devices
		// reconnecting to their broker at once are no SYN flood, spoofed
		// sources never answer, and a flooder's own ACKs complete nothing.
		bare := flags == FlagACK && p.PayloadLen == 0 && len(p.Payload) == 0
		if bare && d.handshakes.completes(p) {
			if c := d.syn[hostPair{p.Src, p.Dst}]; c != nil && c.n > 0 {
				c.n--
			}
			if in := d.synIn[p.Dst]; in != nil && in.n > 0 {
				in.n--
			}
		}
		// An ACK of a connection whose other side is talking (the ACKs of
		// a download, the segments of an upload) is no flood; one that
		// nothing answers is.
		// A stray segment counts when the other side acknowledges nothing
		// new (a STOMP flood's, not a lossy transfer's retransmission), a
		// sliver whatever it acknowledges.
		if talked, acked := d.talking.answered(p, r.RateWindow.Seconds()); !talked || stray && (!acked || sliver) {
			out = d.flood(p, d.ack, d.ackIn, "ack_flood", "TCP ACKs outside any connection or out of its sequence", r.ACKFloodRate, out)
		}
		if !r.NoPayloads && len(p.Payload) > 0 && d.startsRequest(p) {
			out = d.flood(p, d.http, d.httpIn, "http_flood", "HTTP requests", r.HTTPFloodRate, out)
		}
	case p.Proto == layers.IPProtocolUDP:
		// A datagram back from a port takes it off the other way's scan:
		// it answered (a TFTP server's transfer port, a game or media
		// peer's); a scan's closed ports answer with ICMP, if at all.
		if s := d.udpPorts[hostPair{p.Dst, p.Src}]; s != nil {
			s.remove(p.SrcPort)
		}
		// Discovery broadcasts to many ports (SSDP, mDNS and every vendor's
		// own) and traceroute's probes (33434 and up) are no scan.
		if !answers(p) && !groupDestination(p) && (p.DstPort < 33434 || p.DstPort > 33534) {
			if n, fire := distinct(d.udpPorts, hostPair{p.Src, p.Dst}, p.DstPort, t, r.PortScanWindow, r.PortScanPorts); fire {
				out = append(out, d.signal(p, "port_scan", alert.SeverityMedium, n, r.PortScanPorts,
					fmt.Sprintf("UDP datagrams to %d ports of %s within %s (threshold %d)", n, hostString(p.Dst), r.PortScanWindow, r.PortScanPorts)))
			}
		}
		out = d.flood(p, d.udp, d.udpIn, "udp_flood", "UDP datagrams", r.UDPFloodRate, out)
		if p.DstPort == 53 && !r.NoPayloads {
			out = d.waterTorture(p, out)
		}
	}
	if !r.NoCredentials && !r.NoPayloads && len(p.Payload) > 0 && p.Proto == layers.IPProtocolTCP {
		out = d.credentials(p, out)
	}
	// Also with NoNewDestination: it keeps when each source first opened
	// traffic, from which beaconing counts its learning period.
	out = d.newDestination(p, out)
	d.counted(t)
	return out
}

// counted counts a packet the rules took and every 8,192 reads the
// tables for state gone idle.
func (d *RuleDetector) counted(t float64) {
	d.packets++
	if d.packets%8192 == 0 {
		d.evict(t)
	}
}

// firstFragment applies the rules to the first fragment of a fragmented
// TCP or UDP packet as to the whole packet, from the transport header it
// carries (the later fragments carry none and are not counted). A first
// fragment too short for the whole TCP header is itself the signal: no
// stack splits a header across fragments (RFC 1858 calls it an attack on
// filters); scanners do, so that the flags and ports escape inspection
// (nmap -f).
func (d *RuleDetector) firstFragment(p *Packet, out []alert.Signal) []alert.Signal {
	whole := 8 // a UDP header
	if p.FragProto == layers.IPProtocolTCP {
		whole = 20
	}
	if int(p.FragLen) < whole {
		if _, fire := count(d.tiny, p.Src, p.Time, d.r.PortScanWindow, 1); fire {
			s := d.signal(p, "tiny_fragment", alert.SeverityHigh, int(p.FragLen), whole,
				fmt.Sprintf("a first fragment to %s carrying %d bytes of its %s header (under %d): a header split across fragments hides its flags and ports from filters (RFC 1858; nmap -f)",
					hostString(p.Dst), p.FragLen, p.FragProto, whole))
			out = append(out, s)
		}
		return out
	}
	h := p.FragHead[:]
	q := *p
	q.FragProto, q.Ports, q.Proto = 0, PortNumber, p.FragProto
	q.SrcPort, q.DstPort = binary.BigEndian.Uint16(h[0:2]), binary.BigEndian.Uint16(h[2:4])
	q.Payload = nil // the rules' payload reading skips fragments
	if q.Proto == layers.IPProtocolTCP {
		q.Seq, q.Ack, q.TCPFlags = binary.BigEndian.Uint32(h[4:8]), binary.BigEndian.Uint32(h[8:12]), h[13]
	}
	return d.Observe(&q, out)
}

// flood counts p toward the flood of its kind (behaviour, what) from its
// source to its destination (bySource), which signals on the source, and
// toward all packets of that kind to its destination (byDest). When those
// reach the rate and the source that sent the most sent less than half of
// them, the flood is
// spoofed or distributed: it signals behaviour+"_received" on the
// destination, the device under attack, since the sources say nothing.
func (d *RuleDetector) flood(p *Packet, bySource map[hostPair]*counter, byDest map[Host]*destCounter, behaviour, what string, rate int, out []alert.Signal) []alert.Signal {
	window := d.r.RateWindow
	pair, fire := count(bySource, hostPair{p.Src, p.Dst}, p.Time, window, rate)
	if fire {
		out = append(out, d.signal(p, behaviour, alert.SeverityCritical, pair, rate,
			fmt.Sprintf("%d %s to %s within %s (threshold %d)", pair, what, hostString(p.Dst), window, rate)))
	}
	// Checked at every packet past the rate, not only the one that
	// reached it: a source that sends half the rate first must not mask
	// the spoofed flood that follows in the same window.
	if in := countDest(byDest, p.Dst, p.Src, pair, p.Time, window); in.n >= rate && !in.fired && in.topN*2 < in.n {
		in.fired = true
		n := in.n
		s := d.signal(p, behaviour+"_received", alert.SeverityHigh, n, rate,
			fmt.Sprintf("%d %s from many sources within %s (threshold %d; the most from one source, %s: %d): a spoofed or distributed flood",
				n, what, window, rate, hostString(in.top), in.topN))
		s.SrcIP, s.SrcMAC, s.Peer = hostString(p.Dst), "", hostPort(p.Src, p.SrcPort, true)
		if p.DstMAC != ([6]byte{}) && p.DstMAC[0]&1 == 0 {
			s.SrcMAC = net.HardwareAddr(p.DstMAC[:]).String()
		}
		out = append(out, s)
	}
	return out
}

// destCounter counts packets to one destination, and which source sent
// the most of them: a flood from one source is that source's, not a
// distributed one.
type destCounter struct {
	counter
	top  Host
	topN int // top's count in its own window when it was last the most
}

// countDest adds one packet from src, which has sent srcN in its own
// window, to dst's window and returns the window.
func countDest(m map[Host]*destCounter, dst, src Host, srcN int, t float64, window time.Duration) *destCounter {
	c := m[dst]
	if c == nil {
		if len(m) >= maxRuleKeys {
			clear(m)
		}
		c = &destCounter{counter: counter{start: t}}
		m[dst] = c
	}
	if windowEnded(c.start, t, window) {
		*c = destCounter{counter: counter{start: t}}
	}
	c.n++
	if srcN > c.topN || src == c.top {
		c.top, c.topN = src, srcN
	}
	return c
}

// windowEnded reports whether a fixed window that began at start is over
// at t: past its length, or t before it (the capture's clock went back).
func windowEnded(start, t float64, window time.Duration) bool {
	return t-start > window.Seconds() || t < start
}

// count adds one packet to key's window and reports the count and whether
// it has just reached the threshold.
func count[K comparable](m map[K]*counter, key K, t float64, window time.Duration, threshold int) (int, bool) {
	c := m[key]
	if c == nil {
		if len(m) >= maxRuleKeys {
			clear(m)
		}
		c = &counter{start: t}
		m[key] = c
	}
	if windowEnded(c.start, t, window) {
		*c = counter{start: t}
	}
	c.n++
	if c.n >= threshold && !c.fired {
		c.fired = true
		return c.n, true
	}
	return c.n, false
}

// distinct adds target to key's window and reports the number of distinct
// targets and whether it has just reached the threshold.
func distinct[K, T comparable](m map[K]*distinctSet[T], key K, target T, t float64, window time.Duration, threshold int) (int, bool) {
	s := m[key]
	if s == nil {
		if len(m) >= maxRuleKeys {
			clear(m)
		}
		s = &distinctSet[T]{start: t}
		m[key] = s
	}
	if windowEnded(s.start, t, window) {
		s.start, s.fired, s.n = t, false, 0
		clear(s.seen)
	}
	if s.fired {
		return s.n, false
	}
	s.add(target)
	if s.n >= threshold {
		s.fired = true
		return s.n, true
	}
	return s.n, false
}

// beacon records a connection start and fires when the last
// BeaconConnections starts are evenly spaced.
func (d *RuleDetector) beacon(p *Packet, out []alert.Signal) []alert.Signal {
	r := &d.r
	if !public(p.Dst) {
		return out // C2 is on the internet; a LAN peer is no beacon, and keeps no state
	}
	key := serviceKey{p.Src, p.Dst, p.DstPort}
	b := d.beacons[key]
	if b == nil {
		if len(d.beacons) >= maxRuleKeys {
			d.shedBeacons()
		}
		// times is allocated by the first append: a known destination
		// never needs it. The learning period is the source's own, from
		// the first traffic it opened: a device that joins later, or
		// comes back with a new address from DHCP, learns its cloud
		// services too. Known entries are never idle-swept (a device off
		// for hours still knows its cloud).
		// A source keeps at most maxKnownBeacons: one that scans the
		// internet while it learns is no device calling its clouds, and
		// must not fill the table with known entries.
		src := d.dests[p.Src]
		first := p.Time
		if src != nil {
			first = src.first
		}
		learning := p.Time-first <= r.BeaconLearning.Seconds()
		if learning && src != nil {
			if src.knownBeacons >= maxKnownBeacons {
				return out
			}
			src.knownBeacons++
		}
		b = &beacon{known: learning}
		d.beacons[key] = b
		if sp := (servicePort{p.Src, p.DstPort}); b.known && len(d.knownPorts) < maxRuleKeys {
			d.knownPorts[sp] = struct{}{}
		}
	}
	if b.known {
		return out
	}
	if n := len(b.times); n > 0 && p.Time-b.times[n-1] < 1 {
		return out // a retransmitted SYN, not a new connection
	}
	if len(b.times) == r.BeaconConnections {
		copy(b.times, b.times[1:])
		b.times = b.times[:len(b.times)-1]
	}
	b.times = append(b.times, p.Time)
	if len(b.times) < r.BeaconConnections || b.fired {
		return out
	}
	var sum, sq float64
	k := float64(len(b.times) - 1)
	for i := 1; i < len(b.times); i++ {
		sum += b.times[i] - b.times[i-1]
	}
	mean := sum / k
	for i := 1; i < len(b.times); i++ {
		dev := b.times[i] - b.times[i-1] - mean
		sq += dev * dev
	}
	cv := math.Sqrt(sq/k) / mean
	if mean < r.BeaconMinPeriod.Seconds() || mean > r.BeaconMaxPeriod.Seconds() || cv > r.BeaconJitter {
		return out
	}
	b.fired = true
	why := fmt.Sprintf("%d connections to %s every %.1f s (jitter %.3f, at most %.2f): a timer calling home", len(b.times), peerString(p), mean, cv, r.BeaconJitter)
	severity := alert.SeverityHigh
	if _, ok := d.knownPorts[servicePort{p.Src, p.DstPort}]; ok {
		// Cloud services move between addresses: a device that called
		// this port of other public addresses while learning may be
		// calling its own service at a new one.
		severity = alert.SeverityMedium
		why += fmt.Sprintf("; the device called port %d of other public addresses while learning, so this may be its own cloud service at a new address", p.DstPort)
	}
	return append(out, d.signal(p, "c2_beaconing", severity, len(b.times), r.BeaconConnections, why))
}

// shedBeacons makes room in the full beacon table. The destinations
// first contacted after the learning period go (a scan's single SYNs to
// public addresses fill the table with them), and those known from the
// learning period stay, lest a device's own calls home, forgotten, look
// like a bot's; only when the known alone fill three quarters of the
// table does everything go.
func (d *RuleDetector) shedBeacons() {
	for k, b := range d.beacons {
		if !b.known {
			delete(d.beacons, k)
		}
	}
	if len(d.beacons) >= maxRuleKeys*3/4 {
		clear(d.beacons)
	}
}

// credentials looks for a login sent in clear: HTTP Basic authorization,
// FTP USER and PASS, MQTT CONNECT with a password, and a Telnet login
// typed after a password prompt. The signal names the user, never the
// password.
func (d *RuleDetector) credentials(p *Packet, out []alert.Signal) []alert.Signal {
	pl := p.Payload
	// Once per client, server and service within CredentialWindow: a
	// device polling with HTTP Basic every 10 s is one finding, not a
	// signal a request.
	report := func(proto string, user []byte) []alert.Signal {
		if _, fire := count(d.credsSeen, serviceKey{p.Src, p.Dst, p.DstPort}, p.Time, d.r.CredentialWindow, 1); !fire {
			return out
		}
		return append(out, d.signal(p, "plaintext_credentials", alert.SeverityMedium, 1, 1,
			fmt.Sprintf("%s password for user %q sent in clear to %s", proto, printable(user), peerString(p))))
	}
	if user, ok := httpBasicUser(pl); ok {
		return report("HTTP Basic", user)
	}
	switch {
	case p.DstPort == 21:
		// A client may send several commands in one segment.
		st := d.conn(connKey{p.Src, p.Dst, p.SrcPort, p.DstPort}, p.Time)
		for rest := pl; len(rest) > 0; {
			line := firstLine(rest)
			rest = rest[min(len(line)+1, len(rest)):]
			switch {
			case hasPrefixFold(line, "USER "):
				st.user = append(st.user[:0], line[5:min(len(line), 5+64)]...)
			case hasPrefixFold(line, "PASS "):
				return report("FTP", st.user)
			}
		}
	case p.DstPort == 1883:
		if user, ok := mqttConnectUser(pl); ok {
			return report("MQTT", user)
		}
	case p.SrcPort == 23 || p.SrcPort == 2323:
		// The server's prompts say what the client types next.
		st := d.conn(connKey{p.Dst, p.Src, p.DstPort, p.SrcPort}, p.Time)
		switch low := ascii.Lower(pl); {
		case bytes.Contains(low, []byte("assword")):
			st.expect = expectPassword
		case bytes.Contains(low, []byte("login")) || bytes.Contains(low, []byte("username")):
			st.expect, st.user = expectUser, st.user[:0]
		}
	case p.DstPort == 23 || p.DstPort == 2323:
		st := d.conn(connKey{p.Src, p.Dst, p.SrcPort, p.DstPort}, p.Time)
		for i := 0; i < len(pl); i++ {
			c := pl[i]
			if c == 0xff { // a Telnet command: IAC, verb, option
				i += 2
				continue
			}
			if c != '\r' && c != '\n' && c != 0 {
				if st.expect == expectUser && len(st.user) < 64 {
					st.user = append(st.user, c)
				}
				if st.expect == expectPassword {
					st.password = true
				}
				continue
			}
			switch {
			case st.expect == expectPassword && st.password:
				st.expect, st.password = expectNothing, false
				return report("Telnet", st.user)
			case st.expect == expectUser && len(st.user) > 0:
				st.expect = expectNothing
			}
		}
	}
	return out
}

func (d *RuleDetector) conn(k connKey, t float64) *credState {
	st := d.creds[k]
	if st == nil {
		if len(d.creds) >= maxRuleKeys {
			clear(d.creds)
		}
		st = &credState{}
		d.creds[k] = st
	}
	st.last = t
	return st
}

// ruleWindow is a counting window of the rules: a counter or a distinct set.
type ruleWindow interface{ began() float64 }

func (c *counter) began() float64        { return c.start }
func (s *distinctSet[T]) began() float64 { return s.start }

// forgetEnded deletes the windows of m that started more than length
// before now: the next packet of their key starts a new one anyway.
func forgetEnded[K comparable, W ruleWindow](m map[K]W, now float64, length time.Duration) {
	for k, w := range m {
		if now-w.began() > length.Seconds() {
			delete(m, k)
		}
	}
}

// The tables evict reads, each on its own schedule.
const (
	sweepTelnet = iota
	sweepHostScan
	sweepRandomScan
	sweepPorts
	sweepRates
	sweepBrute
	sweepBeacons
	sweepCreds
	sweepDests
	sweepDNS
	numSweeps
)

// evict forgets state idle for longer than its window. It reads a table
// only when half its window of capture time has passed since it last did,
// so that an entry outlives its window by half of it at most: under a
// flood of spoofed sources, hundreds of thousands of keys read every
// 8,192 packets cost more than the rules themselves.
func (d *RuleDetector) evict(now float64) {
	r := &d.r
	due := func(table int, window float64) bool {
		if last := d.swept[table]; now >= last && now-last < window/2 {
			return false
		}
		d.swept[table] = now
		return true
	}
	if due(sweepTelnet, r.TelnetScanWindow.Seconds()) {
		forgetEnded(d.telnet, now, r.TelnetScanWindow)
	}
	if due(sweepHostScan, r.HostScanWindow.Seconds()) {
		forgetEnded(d.hostScan, now, r.HostScanWindow)
	}
	if due(sweepRandomScan, r.RandomScanWindow.Seconds()) {
		forgetEnded(d.randomScan, now, r.RandomScanWindow)
	}
	if due(sweepPorts, r.PortScanWindow.Seconds()) {
		forgetEnded(d.ports, now, r.PortScanWindow)
		forgetEnded(d.tiny, now, r.PortScanWindow)
		forgetEnded(d.udpPorts, now, r.PortScanWindow)
	}
	if due(sweepRates, r.RateWindow.Seconds()) {
		for _, m := range []map[hostPair]*counter{d.syn, d.udp, d.ack, d.ip, d.http} {
			forgetEnded(m, now, r.RateWindow)
		}
		for _, m := range []map[Host]*destCounter{d.synIn, d.udpIn, d.ackIn, d.ipIn, d.httpIn} {
			forgetEnded(m, now, r.RateWindow)
		}
	}
	if due(sweepDNS, r.DNSWindow.Seconds()) {
		forgetEnded(d.dns, now, r.DNSWindow)
		for k, a := range d.dnsNames {
			if windowEnded(a.at, now, forwardDelay) {
				delete(d.dnsNames, k)
			}
		}
		for k, m := range d.methods {
			if windowEnded(m.at, now, r.DNSWindow) {
				delete(d.methods, k)
			}
		}
	}
	if due(sweepBrute, r.BruteForceWindow.Seconds()) {
		forgetEnded(d.brute, now, r.BruteForceWindow)
	}
	if idle := 2 * r.BeaconMaxPeriod.Seconds(); due(sweepBeacons, idle) {
		for k, b := range d.beacons {
			if len(b.times) > 0 && now-b.times[len(b.times)-1] > idle {
				delete(d.beacons, k)
			}
		}
	}
	if due(sweepCreds, 600) {
		for k, c := range d.creds {
			if now-c.last > 600 {
				delete(d.creds, k)
			}
		}
		forgetEnded(d.credsSeen, now, r.CredentialWindow)
	}
	// A source that opened nothing for a day is gone, or will learn anew.
	if due(sweepDests, 86400) {
		for k, s := range d.dests {
			if now-s.last > 86400 {
				delete(d.dests, k)
			}
		}
	}
}

// Keys is the number of state entries kept.
func (d *RuleDetector) Keys() int {
	return len(d.telnet) + len(d.hostScan) + len(d.randomScan) + len(d.ports) + len(d.udpPorts) + len(d.syn) + len(d.udp) + len(d.ack) + len(d.synIn) + len(d.udpIn) + len(d.ackIn) +
		len(d.ip) + len(d.http) + len(d.ipIn) + len(d.httpIn) + len(d.dns) + len(d.dnsNames) + len(d.methods) +
		len(d.brute) + len(d.beacons) + len(d.creds) + len(d.credsSeen) + len(d.tiny) + len(d.dests)
}

func (d *RuleDetector) signal(p *Packet, behaviour, severity string, score, threshold int, why string) alert.Signal {
	s := alert.Signal{Time: packetTime(p.Time), Detector: "rule", Behaviour: behaviour, Severity: severity,
		SrcIP: hostString(p.Src), Peer: peerString(p), Score: float64(score), Threshold: float64(threshold), Explanation: why}
	if p.SrcMAC != ([6]byte{}) {
		s.SrcMAC = net.HardwareAddr(p.SrcMAC[:]).String()
	}
	return s
}

// packetTime turns a capture time in seconds into a time.Time (to the
// microsecond, which is what pcap records hold).
func packetTime(t float64) time.Time {
	return time.UnixMicro(int64(math.Round(t * 1e6))).UTC()
}

// String formats a host as its address ("" for none).
func (h Host) String() string { return hostString(h) }

// hostString formats a host as its address ("" for none).
func hostString(h Host) string {
	switch h.Kind {
	case AddrIPv4:
		return netip.AddrFrom4([4]byte(h.Addr[:4])).String()
	case AddrIPv6:
		return netip.AddrFrom16(h.Addr).String()
	case AddrMAC:
		return net.HardwareAddr(h.Addr[:6]).String()
	}
	return ""
}

// public reports whether h is a public unicast address.
func public(h Host) bool {
	var a netip.Addr
	switch h.Kind {
	case AddrIPv4:
		a = netip.AddrFrom4([4]byte(h.Addr[:4]))
	case AddrIPv6:
		a = netip.AddrFrom16(h.Addr)
	default:
		return false
	}
	return a.IsGlobalUnicast() && !a.IsPrivate()
}

// peerString is the packet's destination, with its port when it has one.
func peerString(p *Packet) string { return hostPort(p.Dst, p.DstPort, p.Ports == PortNumber) }

// hostPort formats a host with its port, ip:port or [ip6]:port, or alone
// when the packet has no port (ARP, ICMP).
func hostPort(h Host, port uint16, hasPort bool) string {
	switch {
	case !hasPort:
		return hostString(h)
	case h.Kind == AddrIPv6:
		return fmt.Sprintf("[%s]:%d", hostString(h), port)
	}
	return fmt.Sprintf("%s:%d", hostString(h), port)
}

func firstLine(b []byte) []byte {
	if i := bytes.IndexAny(b, "\r\n"); i >= 0 {
		return b[:i]
	}
	return b
}

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && bytes.EqualFold(b[:len(prefix)], []byte(prefix))
}

// printable keeps a user name safe to show: printable ASCII, at most 64
// bytes.
func printable(b []byte) string {
	out := make([]byte, 0, min(len(b), 64))
	for _, c := range b[:min(len(b), 64)] {
		if c >= 0x20 && c < 0x7f {
			out = append(out, c)
		} else {
			out = append(out, '?')
		}
	}
	return string(out)
}

// httpBasicUser finds an "Authorization: Basic" header in a request's
// first bytes and returns the user it names.
func httpBasicUser(pl []byte) ([]byte, bool) {
	const header = "\nauthorization:"
	i := bytes.Index(ascii.Lower(pl), []byte(header))
	if i < 0 {
		return nil, false
	}
	v := bytes.TrimLeft(pl[i+len(header):], " \t")
	if !hasPrefixFold(v, "basic ") {
		return nil, false
	}
	v = bytes.TrimLeft(v[6:], " ")
	v = firstLine(v)
	dec := make([]byte, base64.StdEncoding.DecodedLen(len(v)))
	n, err := base64.StdEncoding.Decode(dec, v)
	if err != nil {
		// A prefix cut mid-token still names the user if the colon made it.
		n = 0
		for k := 4; k <= len(v); k += 4 {
			if m, err := base64.StdEncoding.Decode(dec, v[:k]); err == nil {
				n = m
			}
		}
	}
	user, _, found := bytes.Cut(dec[:n], []byte(":"))
	if !found {
		return nil, false
	}
	return user, true
}

// mqttConnectUser parses an MQTT 3.1/3.1.1/5 CONNECT packet and returns its
// user name when it carries a password.
func mqttConnectUser(b []byte) ([]byte, bool) {
	if len(b) < 2 || b[0] != 0x10 {
		return nil, false
	}
	i := 1
	for k := 0; k < 4; k++ { // remaining length, a varint of up to 4 bytes
		if i >= len(b) {
			return nil, false
		}
		c := b[i]
		i++
		if c&0x80 == 0 {
			break
		}
	}
	str := func() ([]byte, bool) {
		if i+2 > len(b) {
			return nil, false
		}
		n := int(b[i])<<8 | int(b[i+1])
		if i+2+n > len(b) {
			return nil, false
		}
		s := b[i+2 : i+2+n]
		i += 2 + n
		return s, true
	}
	name, ok := str()
	if !ok || (string(name) != "MQTT" && string(name) != "MQIsdp") || i+4 > len(b) {
		return nil, false
	}
	level, flags := b[i], b[i+1]
	i += 4 // level, flags, keep-alive
	if flags&0x80 == 0 || flags&0x40 == 0 {
		return nil, false // no user name or no password
	}
	// MQTT 5 properties: a varint length, then that many bytes.
	skipProperties := func() {
		if level != 5 {
			return
		}
		n, shift := 0, 0
		for k := 0; k < 4 && i < len(b); k++ {
			c := b[i]
			i++
			n |= int(c&0x7f) << shift
			shift += 7
			if c&0x80 == 0 {
				break
			}
		}
		i += n
	}
	skipProperties()         // the connect properties
	if _, ok := str(); !ok { // client id
		return nil, false
	}
	if flags&0x04 != 0 { // will: (properties in 5,) topic and message
		skipProperties()
		if _, ok := str(); !ok {
			return nil, false
		}
		if _, ok := str(); !ok {
			return nil, false
		}
	}
	return str()
}

// Validate reports thresholds that are good alone but not together, or
// that no traffic could meet, as Invalid errors naming the field; zero
// fields stand for their defaults.
func (r *Rules) Validate() error {
	v := r.withDefaults()
	switch {
	case v.BeaconConnections < 3:
		return apperr.InvalidField("beacon_connections", "%d: beaconing needs at least 3 connections (2 intervals) to measure a period and its jitter", v.BeaconConnections)
	case v.BeaconMinPeriod >= v.BeaconMaxPeriod:
		return apperr.InvalidField("beacon_min_period", "%s is not below beacon_max_period %s", v.BeaconMinPeriod, v.BeaconMaxPeriod)
	case v.BeaconJitter >= 1:
		return apperr.InvalidField("beacon_jitter", "%g: a standard deviation as large as the mean interval is no timer", v.BeaconJitter)
	}
	return nil
}

// Set changes one threshold by its JSON name ("telnet_scan_hosts",
// "brute_force_window", …) from text: a number, a Go duration ("30s") or a
// boolean (setting.Set).
func (r *Rules) Set(name, value string) error { return setting.Set(r, name, value) }

// RuleSettings lists the names Set takes.
func RuleSettings() []string { return setting.Names[Rules]() }
