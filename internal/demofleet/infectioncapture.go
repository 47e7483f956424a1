package demofleet

import (
	"cmp"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/fleetward/fleetward/internal/alert"
	"github.com/fleetward/fleetward/internal/detect"
	"github.com/fleetward/fleetward/internal/inventory"
)

// Addresses of the demo's synthetic capture that are not fleet devices:
// fleetward's MQTT broker and the site's DNS resolver on the management
// network, its router, and hosts on the internet on documentation
// networks (RFC 5737), which no real host has.
var (
	CaptureBroker   = netip.MustParseAddr("10.255.0.10")
	CaptureResolver = netip.MustParseAddr("10.255.0.53")
	CaptureNTP      = netip.MustParseAddr("192.0.2.123")
	// CaptureTelnetVictim is the host on the internet (TEST-NET-2) whose
	// open Telnet port the infected device tries passwords on. Its answers
	// score as anomalous as the bot's attempts; the detector charges them
	// to the bot, which opened the connections.
	CaptureTelnetVictim = netip.MustParseAddr("198.51.100.23")
	// CaptureFloodTarget is the host on the internet (TEST-NET-3) the
	// bot's command server sends it to flood.
	CaptureFloodTarget = netip.MustParseAddr("203.0.113.80")
	captureRouter      = net.HardwareAddr{0x02, 0x00, 0x5e, 0x10, 0x00, 0x01}
)

// CaptureDevice is a fleet device as its packets show it: the address and
// MAC address the inventory has for it.
type CaptureDevice struct {
	ID  string
	IP  netip.Addr // IPv4
	MAC net.HardwareAddr
}

// InfectionCapture describes a synthetic packet capture of part of the
// demo fleet, seen by a sensor on the site's uplink: for Benign every
// device keeps its routine traffic (MQTT over TLS to the broker at its own
// period, DNS lookups, NTP), with jitter; then for Infection the device
// Infected also does what a Mirai bot does — SYNs to random addresses on
// Telnet (23, and 2323 one time in ten) many times a second, a Telnet
// brute force of the one host that answers (a new connection and one
// password pair every few seconds, the password sent in clear), calls
// to its command server, and, a minute before the end (or halfway through
// a shorter infection), the attack its command server orders: Mirai's GRE
// flood of a host on the internet for 3 s. Only the traffic is synthetic;
// it is built with gopacket as real frames, for the real detector.
type InfectionCapture struct {
	Devices   []CaptureDevice
	Infected  int // index in Devices
	End       time.Time
	Benign    time.Duration // default 25 min, longer if that holds under 2,000 packets
	Infection time.Duration // default 5 min
	Seed      uint64
}

// CaptureFrames is a generated capture in time order. It is a packet
// source for detect.ScoreCapture (Next, LinkType).
type CaptureFrames struct {
	frames []capturedFrame
	next   int
	// BenignPackets is how many frames come before the infection starts:
	// a detector must finish training within them.
	BenignPackets int
	// InfectionStart is the capture time the infected device starts
	// scanning.
	InfectionStart time.Time
}

type capturedFrame struct {
	at   time.Time
	data []byte
}

// Len is the number of frames.
func (c *CaptureFrames) Len() int { return len(c.frames) }

// Next returns the next frame, or io.EOF after the last.
func (c *CaptureFrames) Next() ([]byte, gopacket.CaptureInfo, error) {
	if c.next >= len(c.frames) {
		return nil, gopacket.CaptureInfo{}, io.EOF
	}
	f := c.frames[c.next]
	c.next++
	return f.data, gopacket.CaptureInfo{Timestamp: f.at, CaptureLength: len(f.data), Length: len(f.data)}, nil
}

// LinkType is Ethernet.
func (c *CaptureFrames) LinkType() detect.LinkType { return detect.LinkEthernet }

// Frames builds the capture. Returns an error when a device has no IPv4
// address or MAC address or Infected is out of range.
func (ic InfectionCapture) Frames() (*CaptureFrames, error) {
	if ic.Infected < 0 || ic.Infected >= len(ic.Devices) {
		return nil, fmt.Errorf("infection capture: infected device %d of %d", ic.Infected, len(ic.Devices))
	}
	for _, d := range ic.Devices {
		if !d.IP.Is4() || len(d.MAC) != 6 {
			return nil, fmt.Errorf("infection capture: device %s needs an IPv4 and a MAC address (has %s, %s)", d.ID, d.IP, d.MAC)
		}
	}
	benign := cmp.Or(ic.Benign, 25*time.Minute)
	for {
		cf := ic.frames(benign)
		// A site of one or two devices says too little in 25 minutes for
		// the model to train before the infection (Detect): by default
		// the benign stretch doubles until it holds enough.
		if ic.Benign != 0 || cf.BenignPackets >= minBenignPackets || benign >= maxDefaultBenign {
			return cf, nil
		}
		benign *= 2
	}
}

// minBenignPackets is the least routine traffic a default capture holds
// before the infection: Detect trains on 70% of it, past KitNET's
// minimum grace periods.
const minBenignPackets = 2000

// maxDefaultBenign bounds the default benign stretch of a capture of very
// quiet devices.
const maxDefaultBenign = 24 * time.Hour

// frames builds the capture with the given benign stretch.
func (ic InfectionCapture) frames(benign time.Duration) *CaptureFrames {
	infection := cmp.Or(ic.Infection, 5*time.Minute)
	end := cmp.Or(ic.End, time.Now()).UTC()
	start := end.Add(-benign - infection)
	g := &frameBuilder{rng: rand.New(rand.NewPCG(ic.Seed, ic.Seed^0x5851f42d4c957f2d))}
	for _, d := range ic.Devices {
		g.routine(d, start, end)
	}
	infectedAt := start.Add(benign)
	g.mirai(ic.Devices[ic.Infected], infectedAt, end)
	slices.SortStableFunc(g.out, func(a, b capturedFrame) int { return a.at.Compare(b.at) })
	cf := &CaptureFrames{frames: g.out, InfectionStart: infectedAt}
	cf.BenignPackets, _ = slices.BinarySearchFunc(g.out, infectedAt, func(f capturedFrame, t time.Time) int { return f.at.Compare(t) })
	return cf
}

// frameBuilder serialises frames with gopacket.
type frameBuilder struct {
	rng *rand.Rand
	out []capturedFrame
	buf gopacket.SerializeBuffer
}

func (g *frameBuilder) jitter(d time.Duration, frac float64) time.Duration {
	return time.Duration(float64(d) * (1 + frac*(2*g.rng.Float64()-1)))
}

// tcpSeg is one TCP segment.
type tcpSeg struct {
	flags    string // of S, A, P, F, R
	seq, ack uint32
	payload  []byte
}

// emit appends one Ethernet/IPv4 frame; from the device's side when out,
// else towards it. Every other host is behind the router.
func (g *frameBuilder) emit(at time.Time, dev CaptureDevice, out bool, peer netip.Addr, devPort, peerPort uint16, tcp *tcpSeg, udp []byte) {
	eth := &layers.Ethernet{SrcMAC: dev.MAC, DstMAC: captureRouter, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Flags: layers.IPv4DontFragment, Id: uint16(g.rng.Uint32()),
		SrcIP: net.IP(dev.IP.AsSlice()), DstIP: net.IP(peer.AsSlice())}
	sport, dport := devPort, peerPort
	if !out {
		eth.SrcMAC, eth.DstMAC = captureRouter, dev.MAC
		ip.SrcIP, ip.DstIP = ip.DstIP, ip.SrcIP
		sport, dport = peerPort, devPort
		ip.TTL = 54
	}
	var ls []gopacket.SerializableLayer
	if tcp != nil {
		ip.Protocol = layers.IPProtocolTCP
		t := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: tcp.seq, Ack: tcp.ack, Window: 64240}
		for _, f := range tcp.flags {
			switch f {
			case 'S':
				t.SYN = true
			case 'A':
				t.ACK = true
			case 'P':
				t.PSH = true
			case 'F':
				t.FIN = true
			case 'R':
				t.RST = true
			}
		}
		t.SetNetworkLayerForChecksum(ip)
		ls = []gopacket.SerializableLayer{eth, ip, t, gopacket.Payload(tcp.payload)}
	} else {
		ip.Protocol = layers.IPProtocolUDP
		u := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
		u.SetNetworkLayerForChecksum(ip)
		ls = []gopacket.SerializableLayer{eth, ip, u, gopacket.Payload(udp)}
	}
	g.serialise(at, ls...)
}

// routine adds a device's everyday traffic from start to end: a
// long-lived MQTT-over-TLS session that publishes every period (a publish,
// the broker's acknowledgement, the device's ACK), a DNS lookup of the
// broker's name about once a minute and an NTP exchange about every 64 s.
func (g *frameBuilder) routine(d CaptureDevice, start, end time.Time) {
	period := time.Duration(4+g.rng.IntN(8)) * time.Second
	size := 90 + g.rng.IntN(160)
	port := uint16(32768 + g.rng.IntN(28000))
	seq, ack := g.rng.Uint32(), g.rng.Uint32()
	for at := start.Add(time.Duration(g.rng.Int64N(int64(period)))); at.Before(end); at = at.Add(g.jitter(period, 0.05)) {
		n := size + g.rng.IntN(24)
		g.emit(at, d, true, CaptureBroker, port, 8883, &tcpSeg{flags: "PA", seq: seq, ack: ack, payload: make([]byte, n)}, nil)
		seq += uint32(n)
		rtt := time.Duration(2+g.rng.IntN(6)) * time.Millisecond
		g.emit(at.Add(rtt), d, false, CaptureBroker, port, 8883, &tcpSeg{flags: "PA", seq: ack, ack: seq, payload: make([]byte, 31)}, nil)
		ack += 31
		g.emit(at.Add(rtt+200*time.Microsecond), d, true, CaptureBroker, port, 8883, &tcpSeg{flags: "A", seq: seq, ack: ack}, nil)
	}
	for at := start.Add(time.Duration(g.rng.Int64N(int64(time.Minute)))); at.Before(end); at = at.Add(g.jitter(time.Minute, 0.1)) {
		sp := uint16(32768 + g.rng.IntN(28000))
		g.emit(at, d, true, CaptureResolver, sp, 53, nil, make([]byte, 38))
		g.emit(at.Add(time.Duration(1+g.rng.IntN(3))*time.Millisecond), d, false, CaptureResolver, sp, 53, nil, make([]byte, 54))
	}
	for at := start.Add(time.Duration(g.rng.Int64N(int64(64 * time.Second)))); at.Before(end); at = at.Add(g.jitter(64*time.Second, 0.02)) {
		g.emit(at, d, true, CaptureNTP, 123, 123, nil, make([]byte, 48))
		g.emit(at.Add(time.Duration(15+g.rng.IntN(20))*time.Millisecond), d, false, CaptureNTP, 123, 123, nil, make([]byte, 48))
	}
}

// miraiPairs are a few of the user and password pairs Mirai's scanner
// tries (from its published source), the camera's own among them.
var miraiPairs = [][2]string{{"root", "xc3511"}, {"root", "vizxv"}, {"admin", "admin"}, {"root", "888888"}, {"root", "default"},
	{"root", "123456"}, {"support", "support"}, {"root", "54321"}, {"admin", "password"}, {"root", "juantech"}}

// mirai adds the infected device's bot traffic from start to end.
func (g *frameBuilder) mirai(d CaptureDevice, start, end time.Time) {
	base := d.IP.As4()
	// The scanner: one raw socket, one source port, a SYN to a random
	// address of the network every 20 to 80 ms; a few hosts refuse.
	scanPort := uint16(32768 + g.rng.IntN(28000))
	for at := start; at.Before(end); at = at.Add(time.Duration(20+g.rng.IntN(60)) * time.Millisecond) {
		dst := netip.AddrFrom4([4]byte{base[0], base[1], byte(g.rng.IntN(256)), byte(1 + g.rng.IntN(254))})
		port := uint16(23)
		if g.rng.IntN(10) == 0 {
			port = 2323
		}
		seq := g.rng.Uint32()
		g.emit(at, d, true, dst, scanPort, port, &tcpSeg{flags: "S", seq: seq}, nil)
		if g.rng.IntN(50) == 0 {
			g.emit(at.Add(time.Duration(1+g.rng.IntN(4))*time.Millisecond), d, false, dst, scanPort, port, &tcpSeg{flags: "RA", ack: seq + 1}, nil)
		}
	}
	// The brute force: from 20 s in, a host with Telnet open (on the
	// internet, which the bot scans too) gets a connection every 2 to 4 s,
	// each trying one pair.
	victim := CaptureTelnetVictim
	for i, at := 0, start.Add(20*time.Second); at.Before(end); i, at = i+1, at.Add(time.Duration(2000+g.rng.IntN(2000))*time.Millisecond) {
		g.telnetLogin(d, victim, at, miraiPairs[i%len(miraiPairs)])
	}
	// The attack: Mirai's greip flood, GRE packets wrapping 512-byte UDP
	// datagrams to random ports of the target, 4,000 a second for 3 s.
	attack := end.Add(-time.Minute)
	if half := start.Add(end.Sub(start) / 2); attack.Before(half) {
		attack = half
	}
	for i := range 12000 {
		g.gre(attack.Add(time.Duration(i)*250*time.Microsecond), d, CaptureFloodTarget, 512)
	}
	// The command server: a connection attempt every 80 s, retried.
	for at := start.Add(5 * time.Second); at.Before(end); at = at.Add(80 * time.Second) {
		port := uint16(32768 + g.rng.IntN(28000))
		for _, retry := range []time.Duration{0, 3 * time.Second, 9 * time.Second} {
			if t := at.Add(retry); t.Before(end) {
				g.emit(t, d, true, C2Address, port, 23, &tcpSeg{flags: "S", seq: g.rng.Uint32()}, nil)
			}
		}
	}
}

// gre adds one packet of Mirai's greip flood from the device to target:
// GRE carrying an IPv4 UDP datagram of size random bytes to a random port.
func (g *frameBuilder) gre(at time.Time, d CaptureDevice, target netip.Addr, size int) {
	src, dst := net.IP(d.IP.AsSlice()), net.IP(target.AsSlice())
	eth := &layers.Ethernet{SrcMAC: d.MAC, DstMAC: captureRouter, EthernetType: layers.EthernetTypeIPv4}
	outer := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: uint16(g.rng.Uint32()), Protocol: layers.IPProtocolGRE, SrcIP: src, DstIP: dst}
	inner := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: uint16(g.rng.Uint32()), Protocol: layers.IPProtocolUDP, SrcIP: src, DstIP: dst}
	udp := &layers.UDP{SrcPort: layers.UDPPort(g.rng.Uint32()), DstPort: layers.UDPPort(g.rng.Uint32())}
	udp.SetNetworkLayerForChecksum(inner)
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(g.rng.Uint32())
	}
	g.serialise(at, eth, outer, &layers.GRE{Protocol: layers.EthernetTypeIPv4}, inner, udp, gopacket.Payload(payload))
}

// serialise appends one frame made of ls.
func (g *frameBuilder) serialise(at time.Time, ls ...gopacket.SerializableLayer) {
	if g.buf == nil {
		g.buf = gopacket.NewSerializeBuffer()
	}
	if err := gopacket.SerializeLayers(g.buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		panic(fmt.Sprintf("demo capture: serialise a frame: %v", err)) // the layers given are always valid
	}
	g.out = append(g.out, capturedFrame{at: at, data: slices.Clone(g.buf.Bytes())})
}

// telnetLogin adds one Telnet session: handshake, the login prompt, the
// user name, the password prompt, the password, a refusal, and the close.
func (g *frameBuilder) telnetLogin(d CaptureDevice, victim netip.Addr, at time.Time, pair [2]string) {
	port := uint16(32768 + g.rng.IntN(28000))
	cseq, sseq := g.rng.Uint32(), g.rng.Uint32()
	step := func() time.Duration { return time.Duration(1+g.rng.IntN(3)) * time.Millisecond }
	out := func(flags string, payload []byte) {
		g.emit(at, d, true, victim, port, 23, &tcpSeg{flags: flags, seq: cseq, ack: sseq, payload: payload}, nil)
		cseq += uint32(len(payload))
		at = at.Add(step())
	}
	in := func(flags string, payload []byte) {
		g.emit(at, d, false, victim, port, 23, &tcpSeg{flags: flags, seq: sseq, ack: cseq, payload: payload}, nil)
		sseq += uint32(len(payload))
		at = at.Add(step())
	}
	out("S", nil)
	cseq++
	in("SA", nil)
	sseq++
	out("A", nil)
	in("PA", []byte("\r\n(none) login: "))
	out("PA", []byte(pair[0]+"\r\n"))
	in("PA", []byte("Password: "))
	out("PA", []byte(pair[1]+"\r\n"))
	at = at.Add(300 * time.Millisecond) // the refusal takes a while
	in("PA", []byte("\r\nLogin incorrect\r\n"))
	out("FA", nil)
	cseq++
	in("FA", nil)
	sseq++
	out("A", nil)
}

// Detect runs the capture through fleetward's packet detector as a sensor
// on the uplink would: the model trains on the first 70% of the benign
// traffic (a tenth of it for the feature map), the packet rules and the
// anomaly alerter watch everything after. Signals and score summaries go
// to the callbacks (either may be nil) as the detector finds them.
func (c *CaptureFrames) Detect(signals func([]alert.Signal), summaries func([]alert.ScoreSummary)) (*detect.ScoreResult, error) {
	fm := max(c.BenignPackets/10, 100)
	ad := max(c.BenignPackets*6/10, 500)
	// Minutes of training leave the model less sure of benign drift than
	// a sensor's days would: twice the default margin on the threshold.
	// The bot's scores are orders of magnitude above it either way.
	anomaly := &detect.AnomalyConfig{ThresholdScale: 2 * detect.DefaultAnomalyConfig.ThresholdScale}
	opts := detect.ScoreOptions{KitNET: detect.KitNETConfig{FMGrace: fm, ADGrace: ad}, Rules: &detect.Rules{}, Anomaly: anomaly,
		Signals: signals, Summaries: summaries, Discard: true}
	c.next = 0
	res, err := detect.ScoreCapture(c, opts)
	if err != nil {
		return nil, fmt.Errorf("demo capture: %w", err)
	}
	return res, nil
}

// CaptureDevicesOf picks the devices of a demo capture from the inventory:
// the infected one first, then up to others more active devices, each
// with its first private IPv4 address and first MAC address (devices
// without both are skipped, as a sensor could not tell them apart).
// Returns an error when the infected device is not among devs or has no
// such addresses.
func CaptureDevicesOf(devs []inventory.Device, infectedID string, others int) ([]CaptureDevice, error) {
	var out []CaptureDevice
	var infected *CaptureDevice
	for _, d := range devs {
		cd, ok := captureDevice(d)
		switch {
		case d.ID == infectedID:
			if !ok {
				return nil, fmt.Errorf("demo capture: %s has no private IPv4 and MAC address", d.ID)
			}
			infected = &cd
		case ok && len(out) < others && d.Status == inventory.StatusActive:
			out = append(out, cd)
		}
	}
	if infected == nil {
		return nil, fmt.Errorf("demo capture: no device %s", infectedID)
	}
	return append([]CaptureDevice{*infected}, out...), nil
}

func captureDevice(d inventory.Device) (CaptureDevice, bool) {
	cd := CaptureDevice{ID: d.ID}
	for _, ip := range d.IPs {
		if a, err := netip.ParseAddr(ip); err == nil && a.Is4() && a.IsPrivate() {
			cd.IP = a
			break
		}
	}
	for _, m := range d.MACs {
		if hw, err := net.ParseMAC(m); err == nil && len(hw) == 6 {
			cd.MAC = hw
			break
		}
	}
	return cd, cd.IP.IsValid() && cd.MAC != nil
}
