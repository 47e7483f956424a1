package agent

import (
	"bufio"
	"cmp"
	"encoding/hex"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Socket states in /proc/net/tcp*, from the kernel's include/net/tcp_states.h.
const (
	tcpEstablished = 0x01
	tcpClose       = 0x07 // also the state of every unconnected UDP socket
	tcpListen      = 0x0A
)

// Socket is one line of /proc/net/tcp, tcp6, udp or udp6.
type Socket struct {
	Local  netip.AddrPort
	Remote netip.AddrPort
	// State is the kernel's socket state (1 established, 10 listening, 7
	// closed, which for UDP means bound and not connected).
	State uint8
}

// ParseProcNetTCP reads the socket table of /proc/net/tcp, tcp6, udp or
// udp6 (they share a format; IPv4 and IPv6 are told apart by the length of
// the address). Lines it cannot read are skipped and counted in skipped; err
// is only a read error. It never panics, whatever the input.
func ParseProcNetTCP(r io.Reader) (socks []Socket, skipped int, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	first := true
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if first {
			first = false
			if strings.HasPrefix(line, "sl") {
				continue // the header
			}
		}
		if line == "" {
			continue
		}
		s, ok := parseSocketLine(line)
		if !ok {
			skipped++
			continue
		}
		socks = append(socks, s)
	}
	return socks, skipped, sc.Err()
}

// parseSocketLine reads "sl local_address rem_address st ...", e.g.
// "0: 0100007F:1F90 00000000:0000 0A ...".
func parseSocketLine(line string) (Socket, bool) {
	f := strings.Fields(line)
	if len(f) < 4 || !strings.HasSuffix(f[0], ":") {
		return Socket{}, false
	}
	local, ok := parseHexAddrPort(f[1])
	if !ok {
		return Socket{}, false
	}
	remote, ok := parseHexAddrPort(f[2])
	if !ok || local.Addr().Is4() != remote.Addr().Is4() {
		return Socket{}, false
	}
	st, err := strconv.ParseUint(f[3], 16, 8)
	if err != nil {
		return Socket{}, false
	}
	return Socket{Local: local, Remote: remote, State: uint8(st)}, true
}

// parseHexAddrPort reads the kernel's "ADDR:PORT" in hex. The address is
// printed as 32-bit words in the host's byte order (little-endian on every
// platform fleetward's agent runs on), so each 4-byte group is reversed;
// the port is printed big-endian, as a plain number.
func parseHexAddrPort(s string) (netip.AddrPort, bool) {
	a, p, ok := strings.Cut(s, ":")
	if !ok || len(p) != 4 || (len(a) != 8 && len(a) != 32) {
		return netip.AddrPort{}, false
	}
	raw, err := hex.DecodeString(a)
	if err != nil {
		return netip.AddrPort{}, false
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	for i := 0; i+4 <= len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	addr, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(addr, uint16(port)), true
}

// InterfaceCounters are one interface's totals from /proc/net/dev.
type InterfaceCounters struct {
	RxBytes   uint64 `json:"rx_bytes"`
	RxPackets uint64 `json:"rx_packets"`
	TxBytes   uint64 `json:"tx_bytes"`
	TxPackets uint64 `json:"tx_packets"`
}

// ParseProcNetDev reads /proc/net/dev into counters by interface name.
// Lines it cannot read are skipped and counted; err is only a read error.
func ParseProcNetDev(r io.Reader) (ifaces map[string]InterfaceCounters, skipped int, err error) {
	ifaces = map[string]InterfaceCounters{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		line := sc.Text()
		name, rest, ok := strings.Cut(line, ":")
		if !ok {
			if strings.Contains(line, "|") { // the two header lines
				continue
			}
			if strings.TrimSpace(line) != "" {
				skipped++
			}
			continue
		}
		name = strings.TrimSpace(name)
		c, ok := parseDevFields(strings.Fields(rest))
		if name == "" || !ok {
			skipped++
			continue
		}
		ifaces[name] = c
	}
	return ifaces, skipped, sc.Err()
}

// parseDevFields reads the 16 numbers after "iface:": receive bytes,
// packets, errs, drop, fifo, frame, compressed, multicast, then transmit
// bytes, packets, and six more.
func parseDevFields(f []string) (InterfaceCounters, bool) {
	if len(f) < 16 {
		return InterfaceCounters{}, false
	}
	var n [16]uint64
	for i := range n {
		v, err := strconv.ParseUint(f[i], 10, 64)
		if err != nil {
			return InterfaceCounters{}, false
		}
		n[i] = v
	}
	return InterfaceCounters{RxBytes: n[0], RxPackets: n[1], TxBytes: n[8], TxPackets: n[9]}, true
}

// Port is a listening socket as reported in inventory and telemetry.
type Port struct {
	Proto string `json:"proto"` // "tcp" or "udp"
	Addr  string `json:"addr"`  // the local address, "0.0.0.0", "::", "127.0.0.1"…
	Port  uint16 `json:"port"`
}

// NetState is what the agent reads from /proc/net/tcp* and udp*.
type NetState struct {
	Listening   []Port
	Established int
	// Remotes are the distinct remote addresses of established TCP
	// connections.
	Remotes []string
	// Skipped counts lines that could not be read.
	Skipped int
}

// netState summarises socket tables: TCP sockets in LISTEN and unconnected
// bound UDP sockets are listening; established TCP connections are counted
// and their remote addresses collected.
func netState(tcp, udp []Socket) NetState {
	var st NetState
	seenPort := map[Port]bool{}
	seenRemote := map[string]bool{}
	addPort := func(proto string, s Socket) {
		p := Port{Proto: proto, Addr: s.Local.Addr().Unmap().String(), Port: s.Local.Port()}
		if !seenPort[p] {
			seenPort[p] = true
			st.Listening = append(st.Listening, p)
		}
	}
	for _, s := range tcp {
		switch s.State {
		case tcpListen:
			addPort("tcp", s)
		case tcpEstablished:
			st.Established++
			r := s.Remote.Addr().Unmap().String()
			if !seenRemote[r] {
				seenRemote[r] = true
				st.Remotes = append(st.Remotes, r)
			}
		}
	}
	for _, s := range udp {
		if s.State == tcpClose && s.Remote.Port() == 0 {
			addPort("udp", s)
		}
	}
	// Sorted, so that inventory compares equal when nothing changed.
	slices.SortFunc(st.Listening, func(a, b Port) int {
		return cmp.Or(cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.Port, b.Port), cmp.Compare(a.Addr, b.Addr))
	})
	slices.Sort(st.Remotes)
	return st
}
