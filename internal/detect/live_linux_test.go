package detect

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"
)

// readModes are the two ways a capture reads frames, for the tests that
// run each way.
var readModes = []struct {
	name string
	opts LiveOptions
	mode string
}{
	{"from the ring", LiveOptions{}, CaptureRing},
	{"with recvfrom when the kernel refuses the ring", refusedRing, CaptureRecvfrom},
}

// refusedRing asks for ring blocks of a size the kernel refuses (not a
// multiple of the page size), as it may refuse a ring for other reasons:
// the capture reads with recvfrom instead.
var refusedRing = LiveOptions{ringBlockSize: 1000}

// TestLiveCaptureOnLoopback captures UDP datagrams the test sends to
// 127.0.0.1 through an AF_PACKET socket on lo and decodes them, reading
// each way. It needs root (CAP_NET_RAW) and is skipped without it.
func TestLiveCaptureOnLoopback(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("AF_PACKET capture needs root")
	}
	for _, m := range readModes {
		t.Run(m.name, func(t *testing.T) { testLoopback(t, m.opts, m.mode) })
	}
}

func testLoopback(t *testing.T, opts LiveOptions, mode string) {
	lc, err := OpenInterface("lo", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	if lc.Mode() != mode {
		t.Fatalf("Mode() = %q (RingError %v); want %q", lc.Mode(), lc.RingError(), mode)
	}
	if ringErr := lc.RingError(); (ringErr == nil) != (mode == CaptureRing) || ringErr != nil && !strings.Contains(ringErr.Error(), "PACKET_RX_RING") {
		t.Errorf("RingError() = %v in mode %s; want nil with a ring, else the refused PACKET_RX_RING", ringErr, mode)
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	marker := []byte("fleetward-live-capture-test")
	go func() {
		for range 20 {
			conn.WriteToUDP(marker, conn.LocalAddr().(*net.UDPAddr))
			time.Sleep(20 * time.Millisecond)
		}
	}()
	dec := NewDecoder(lc.LinkType())
	dec.PayloadPrefix = MaxPayloadPrefix
	port := uint16(conn.LocalAddr().(*net.UDPAddr).Port)
	deadline := time.Now().Add(5 * time.Second)
	var p Packet
	var data []byte
	for time.Now().Before(deadline) {
		var ci gopacket.CaptureInfo
		data, ci, err = lc.Next()
		if err != nil {
			t.Fatal(err)
		}
		dec.Decode(data, ci, &p)
		if p.DstPort == port && bytes.Equal(p.Payload, marker) {
			if hostString(p.Src) != "127.0.0.1" || p.Time < float64(time.Now().Add(-time.Minute).Unix()) {
				t.Errorf("captured %+v", p)
			}
			break
		}
	}
	if p.DstPort != port {
		t.Fatal("no datagram captured within 5 s")
	}
	if err := lc.Close(); err != nil {
		t.Fatal(err)
	}
	// The frame Next returned last stays readable until the following
	// call, even across Close (whose ring is gone: it reads as zeros).
	_ = bytes.Count(data, []byte{0})
	if _, _, err := lc.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("Next after Close: %v, want io.EOF", err)
	}
}

func TestOpenInterfaceNamesAMissingInterface(t *testing.T) {
	_, err := OpenInterface("fw-no-such0", LiveOptions{})
	if err == nil || !strings.Contains(err.Error(), "fw-no-such0: no such interface; this host has ") || !strings.Contains(err.Error(), "lo") {
		t.Errorf("error %v does not name the interface and those there are", err)
	}
}

// TestLiveCaptureOnAVeth creates a network namespace and a veth pair
// (10.200.77.1 here, 10.200.77.2 inside), sends UDP datagrams to the
// namespace and checks the capture on the host end decodes them. Root only;
// under CI=true as root it must run.
func TestLiveCaptureOnAVeth(t *testing.T) {
	v := newVeth(t)
	lc, err := OpenInterface(v.host, LiveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	v.sendUDP(t)
	if !v.captured(t, lc, 5*time.Second) {
		t.Fatal("no datagram to 10.200.77.2:9999 captured on the veth within 5 s")
	}
}

// TestReaderReadsTcpdumpAnyCaptures has tcpdump capture on the "any"
// device of a namespace, in both Linux cooked formats, while datagrams
// arrive over a veth: both files decode, and the datagrams carry their
// addresses, ports and the sender's MAC. (tcpdump 4.99 writes pcap only;
// the pcapng interface descriptions are TestReaderReadsLinkTypesAboveAByte's.)
func TestReaderReadsTcpdumpAnyCaptures(t *testing.T) {
	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tcpdump is required under CI (scripts/test.sh installs it)")
		}
		t.Skip("no tcpdump")
	}
	v := newVeth(t)
	hostIf, err := net.InterfaceByName(v.host)
	if err != nil {
		t.Fatal(err)
	}
	v.sendUDP(t)
	for _, c := range []struct {
		link LinkType
		dlt  string
	}{{LinkLinuxSLL2, "LINUX_SLL2"}, {LinkLinuxSLL, "LINUX_SLL"}} {
		path := filepath.Join(t.TempDir(), "any.pcap")
		cmd := exec.Command(v.ipTool, "netns", "exec", v.ns, tcpdump, "-i", "any", "-y", c.dlt, "-U", "-c", "5", "-w", path, "udp port 9999")
		if out, err := runWithin(cmd, 10*time.Second); err != nil {
			t.Fatalf("tcpdump %s: %v: %s", c.dlt, err, out)
		}
		r, err := OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if r.LinkType() != c.link {
			t.Errorf("%s: LinkType() = %v", c.dlt, r.LinkType())
		}
		dec := NewDecoder(r.LinkType())
		var p Packet
		n := 0
		for {
			data, ci, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			dec.Decode(data, ci, &p)
			if hostString(p.Src) != "10.200.77.1" || hostString(p.Dst) != "10.200.77.2" || p.DstPort != 9999 || !bytes.Equal(p.SrcMAC[:], hostIf.HardwareAddr) {
				t.Errorf("%s: frame decoded as %+v; want 10.200.77.1 to 10.200.77.2:9999 from %v", c.dlt, p, hostIf.HardwareAddr)
			}
			n++
		}
		r.Close()
		if n != 5 || dec.Stats.UnknownLink != 0 || dec.Stats.Malformed != 0 {
			t.Errorf("%s: %d frames, stats %+v; want 5 decoded", c.dlt, n, dec.Stats)
		}
	}
}

// runWithin runs cmd, killing it if it has not finished within d.
func runWithin(cmd *exec.Cmd, d time.Duration) ([]byte, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	timer := time.AfterFunc(d, func() { cmd.Process.Kill() })
	defer timer.Stop()
	err := cmd.Wait()
	return out.Bytes(), err
}

// TestLiveCaptureSurvivesTheInterfaceGoingAway takes the captured veth
// down and up, then deletes it and creates it again under the same name:
// each time the capture reports the failure, reopens the interface and
// decodes the datagrams sent afterwards; Next never returns an error.
func TestLiveCaptureSurvivesTheInterfaceGoingAway(t *testing.T) {
	v := newVeth(t)
	lc, err := OpenInterface(v.host, LiveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The reader notes when it last decoded a datagram to the namespace.
	var lastMatch atomic.Int64
	dec := NewDecoder(lc.LinkType())
	var p Packet
	r := readCapture(t, lc, nil, func(data []byte, ci gopacket.CaptureInfo) {
		dec.Decode(data, ci, &p)
		if p.DstPort == 9999 && hostString(p.Dst) == "10.200.77.2" {
			lastMatch.Store(time.Now().UnixNano())
		}
	})
	v.sendUDP(t)
	capturedSince := func(mark time.Time) func() bool {
		return func() bool { return lastMatch.Load() > mark.UnixNano() }
	}
	r.waitFor(t, "datagram before the interface went away", 5*time.Second, capturedSince(time.Time{}))

	// Down and up: the socket sees ENETDOWN.
	errs := lc.Errors()
	v.run(t, "link", "set", v.host, "down")
	r.waitFor(t, "error when the link went down", 5*time.Second, func() bool { return lc.Errors() > errs })
	v.run(t, "link", "set", v.host, "up")
	r.waitFor(t, "datagram after the link came back up", 10*time.Second, capturedSince(time.Now()))

	// Deleted and created again: a new interface index under the old name.
	errs, reopens := lc.Errors(), lc.Reopens()
	v.run(t, "link", "del", v.host)
	r.waitFor(t, "error when the interface was deleted", 5*time.Second, func() bool { return lc.Errors() > errs })
	time.Sleep(600 * time.Millisecond) // a reopen or two fails meanwhile
	v.create(t)
	r.waitFor(t, "datagram after the interface was created again", 15*time.Second, capturedSince(time.Now()))
	if lc.Reopens() == reopens {
		t.Error("the recreated interface was captured without a reopen")
	}
	if got := promiscuity(t, v.run(t, "-d", "link", "show", "dev", v.host)); got != 1 {
		t.Errorf("the recreated interface's promiscuity is %d; want 1: the reopen asks for promiscuous mode again", got)
	}
	if reported := r.reported(); len(reported) < 2 || !strings.Contains(reported[0], "capture on "+v.host) {
		t.Errorf("OnError heard %q; want failures naming the interface", reported)
	}
}

// captureReader reads a capture on its own goroutine for a whole test, as
// a sensor does, and records what OnError hears.
type captureReader struct {
	lc      *LiveCapture
	readErr chan error // what ended Next
	mu      sync.Mutex
	heard   []string
}

// readCapture starts reading lc, passing each frame to onFrame, until the
// test ends; it then closes lc and checks that Next ended with io.EOF.
// With a namespace, the reader's thread joins it first, so that the
// capture's reopens look the interface up there.
func readCapture(t *testing.T, lc *LiveCapture, n *netns, onFrame func([]byte, gopacket.CaptureInfo)) *captureReader {
	r := &captureReader{lc: lc, readErr: make(chan error, 1)}
	lc.OnError = func(err error) {
		r.mu.Lock()
		r.heard = append(r.heard, err.Error())
		r.mu.Unlock()
	}
	go func() {
		if n != nil {
			if err := n.enterThread(); err != nil {
				r.readErr <- err
				return
			}
		}
		for {
			data, ci, err := lc.Next()
			if err != nil {
				r.readErr <- err
				return
			}
			onFrame(data, ci)
		}
	}()
	t.Cleanup(func() {
		lc.Close()
		if err := <-r.readErr; err != io.EOF {
			t.Errorf("Next ended with %v; want io.EOF after Close", err)
		}
	})
	return r
}

// waitFor checks ok every 20 ms and fails the test if Next ends, or within
// passes, first.
func (r *captureReader) waitFor(t *testing.T, what string, within time.Duration, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !ok(); time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-r.readErr:
			r.readErr <- err // for the check at the test's end
			t.Fatalf("Next returned %v while waiting for %s", err, what)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v (errors %d, reopens %d; OnError heard %q)", what, within, r.lc.Errors(), r.lc.Reopens(), r.reported())
		}
	}
}

// reported returns what OnError heard so far.
func (r *captureReader) reported() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.heard)
}

// TestLiveCaptureIsPromiscuous captures on a bridge in a network
// namespace while one of its ports, a veth, receives frames to a MAC
// address no interface has, and broadcasts. A bridge, like a NIC, passes a
// unicast frame up to its own interface only when the frame is addressed to
// it or the interface is promiscuous: it stands for a sensor's NIC on a
// mirror port. The kernel drops the promiscuous membership with the socket.
func TestLiveCaptureIsPromiscuous(t *testing.T) {
	t.Run("by default it sees frames to other hosts", func(t *testing.T) {
		testPromiscuous(t, LiveOptions{})
	})
	t.Run("with NoPromiscuous it sees the broadcasts only", func(t *testing.T) {
		testPromiscuous(t, LiveOptions{NoPromiscuous: true})
	})
}

func testPromiscuous(t *testing.T, opts LiveOptions) {
	n := newNetns(t, "fwprm")
	suffix := testSuffix()
	bridge, port, sender := "fwbr"+suffix, "fwbp"+suffix, "fwbs"+suffix
	n.ip(t, "link", "add", bridge, "type", "bridge")
	n.ip(t, "link", "add", port, "type", "veth", "peer", "name", sender)
	n.ip(t, "link", "set", port, "master", bridge)
	for _, dev := range []string{bridge, port, sender} {
		n.ip(t, "link", "set", dev, "up")
	}
	lc := n.openCapture(t, bridge, opts)
	want := 1
	if opts.NoPromiscuous {
		want = 0
	}
	if got := promiscuity(t, n.ip(t, "-d", "link", "show", "dev", bridge)); got != want {
		t.Errorf("the captured bridge's promiscuity is %d; want %d", got, want)
	}

	stranger := net.HardwareAddr{0x02, 0x66, 0x77, 0, 0, 1}
	broadcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	marker := []byte("fleetward-promiscuous-test")
	sendFrames(t, n, sender, func(src net.HardwareAddr) [][]byte {
		// 0x88b5: the EtherType IEEE 802 leaves for local experiments.
		return [][]byte{
			frame(t, &layers.Ethernet{SrcMAC: src, DstMAC: stranger, EthernetType: 0x88b5}, gopacket.Payload(marker)),
			frame(t, &layers.Ethernet{SrcMAC: src, DstMAC: broadcast, EthernetType: 0x88b5}, gopacket.Payload(marker)),
		}
	})
	// Without promiscuous mode, 20 broadcasts seen (400 ms of frames) show
	// that the frames to the stranger, sent as often, were not let through.
	var toStranger, broadcasts int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		data, _, err := lc.Next()
		if err != nil {
			t.Fatal(err)
		}
		if len(data) < 6 || !bytes.Contains(data, marker) {
			continue
		}
		switch {
		case bytes.Equal(data[:6], stranger):
			toStranger++
		case bytes.Equal(data[:6], broadcast):
			broadcasts++
		}
		if opts.NoPromiscuous && broadcasts >= 20 || !opts.NoPromiscuous && toStranger > 0 && broadcasts > 0 {
			break
		}
	}
	switch {
	case !opts.NoPromiscuous && toStranger == 0:
		t.Errorf("no frame to %v captured within 5 s in promiscuous mode (%d broadcasts)", stranger, broadcasts)
	case opts.NoPromiscuous && toStranger > 0:
		t.Errorf("%d frames to %v captured without promiscuous mode", toStranger, stranger)
	case broadcasts == 0 || opts.NoPromiscuous && broadcasts < 20:
		t.Errorf("%d broadcasts captured within 5 s", broadcasts)
	}

	lc.Close()
	if got := promiscuity(t, n.ip(t, "-d", "link", "show", "dev", bridge)); got != 0 {
		t.Errorf("after Close the bridge's promiscuity is %d; want 0", got)
	}
}

// TestLiveCapturePutsBackVLANTags sends 802.1Q-tagged and QinQ (802.1ad
// outside 802.1Q) frames over a veth: the kernel takes the outer tag off
// before the capture sees the frame, and the ring's reader puts it back,
// so the decoder counts the tags and reads the IP datagram inside.
func TestLiveCapturePutsBackVLANTags(t *testing.T) {
	n := newNetns(t, "fwvln")
	suffix := testSuffix()
	port, sender := "fwvp"+suffix, "fwvs"+suffix
	n.ip(t, "link", "add", port, "type", "veth", "peer", "name", sender)
	for _, dev := range []string{port, sender} {
		n.ip(t, "link", "set", dev, "up")
	}
	lc := n.openCapture(t, port, LiveOptions{})
	if lc.Mode() != CaptureRing {
		t.Skipf("the kernel refused the ring (%s): recvfrom does not see tags", lc.Mode())
	}
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{10, 201, 0, 1}, DstIP: net.IP{10, 201, 0, 2}}
	udp := &layers.UDP{SrcPort: 4000, DstPort: 5683}
	broadcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	sendFrames(t, n, sender, func(src net.HardwareAddr) [][]byte {
		return [][]byte{
			frame(t, &layers.Ethernet{SrcMAC: src, DstMAC: broadcast, EthernetType: layers.EthernetTypeDot1Q},
				&layers.Dot1Q{VLANIdentifier: 7, Priority: 5, Type: layers.EthernetTypeIPv4}, ip, udp, gopacket.Payload("vlan")),
			frame(t, &layers.Ethernet{SrcMAC: src, DstMAC: broadcast, EthernetType: layers.EthernetTypeQinQ},
				&layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeDot1Q},
				&layers.Dot1Q{VLANIdentifier: 8, Type: layers.EthernetTypeIPv4}, ip, udp, gopacket.Payload("qinq")),
		}
	})
	dec := NewDecoder(lc.LinkType())
	var p Packet
	seen := map[string]bool{}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && len(seen) < 2; {
		data, ci, err := lc.Next()
		if err != nil {
			t.Fatal(err)
		}
		var kind string
		switch {
		case bytes.Contains(data, []byte("vlan")):
			kind = "vlan"
		case bytes.Contains(data, []byte("qinq")):
			kind = "qinq"
		default:
			continue
		}
		before := dec.Stats.VLANTagged
		dec.Decode(data, ci, &p)
		tags := dec.Stats.VLANTagged - before
		tpid, tci := binary.BigEndian.Uint16(data[12:14]), binary.BigEndian.Uint16(data[14:16])
		switch {
		case kind == "vlan" && (tpid != 0x8100 || tci != 5<<13|7 || tags != 1):
			t.Errorf("802.1Q frame: type %#04x, TCI %#04x, %d tags decoded; want 0x8100, priority 5 VLAN 7, 1 tag", tpid, tci, tags)
		case kind == "qinq" && (tpid != 0x88a8 || tci != 100 || tags != 2):
			t.Errorf("QinQ frame: outer type %#04x, TCI %#04x, %d tags decoded; want 0x88a8, VLAN 100, 2 tags", tpid, tci, tags)
		case p.Src != hostIPv4(net.IP{10, 201, 0, 1}) || p.DstPort != 5683 || !bytes.Equal(p.SrcMAC[:], data[6:12]) || ci.CaptureLength != len(data):
			t.Errorf("%s frame decoded as %+v (captured %d of %d bytes)", kind, p, ci.CaptureLength, len(data))
		}
		seen[kind] = true
	}
	if len(seen) < 2 {
		t.Fatalf("captured only %v of the tagged frames within 5 s", seen)
	}
}

// sendFrames sends the Ethernet frames that frames builds from the
// sender's MAC address out of the interface sender, in the namespace n,
// every 20 ms until the test ends.
func sendFrames(t *testing.T, n *netns, sender string, frames func(src net.HardwareAddr) [][]byte) {
	t.Helper()
	fd, index := -1, 0
	var src net.HardwareAddr
	n.join(t, func() error {
		ifi, err := net.InterfaceByName(sender)
		if err != nil {
			return err
		}
		index, src = ifi.Index, ifi.HardwareAddr
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		return err
	})
	t.Cleanup(func() { unix.Close(fd) })
	out := frames(src)
	to := &unix.SockaddrLinklayer{Ifindex: index}
	repeat(t, 20*time.Millisecond, func() {
		for _, f := range out {
			unix.Sendto(fd, f, 0, to)
		}
	})
}

// repeat calls send every interval until the test ends.
func repeat(t *testing.T, every time.Duration, send func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(done); wg.Wait() })
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(every):
				send()
			}
		}
	})
}

// TestLiveCaptureOnATun captures on a tun device in a network namespace,
// which carries IP packets without a link header: the capture says so
// (LinkTypeRaw), and the Decoder reads the datagrams the namespace sends
// out through the tun as well as IPv4 and IPv6 datagrams written into the
// tun as if they came from its far end, reading each way (a SOCK_DGRAM
// socket's frames start at the IP header in the ring too).
func TestLiveCaptureOnATun(t *testing.T) {
	for _, m := range readModes {
		t.Run(m.name, func(t *testing.T) { testTun(t, m.opts) })
	}
}

func testTun(t *testing.T, opts LiveOptions) {
	n := newNetns(t, "fwtun")
	name := "fwtn" + testSuffix()
	tun, _ := n.tunUp(t, name, unix.IFF_TUN)
	n.ip(t, "addr", "add", "10.200.78.1", "peer", "10.200.78.2", "dev", name)
	lc := n.openCapture(t, name, opts)
	var conn *net.UDPConn
	n.join(t, func() (err error) {
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(10, 200, 78, 1)})
		return err
	})
	t.Cleanup(func() { conn.Close() })
	if lc.LinkType() != LinkRaw {
		t.Fatalf("LinkType() = %v on a tun; want %v", lc.LinkType(), LinkRaw)
	}

	payload := gopacket.Payload("fleetward-tun-test")
	in4 := frame(t, &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: net.IPv4(10, 200, 78, 2), DstIP: net.IPv4(10, 200, 78, 1)}, &layers.UDP{SrcPort: 4242, DstPort: 9998}, payload)
	in6 := frame(t, &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP,
		SrcIP: net.ParseIP("fd00:78::2"), DstIP: net.ParseIP("fd00:78::1")}, &layers.UDP{SrcPort: 4242, DstPort: 9997}, payload)
	repeat(t, 50*time.Millisecond, func() {
		conn.WriteToUDP(payload, &net.UDPAddr{IP: net.IPv4(10, 200, 78, 2), Port: 9999})
		unix.Write(tun, in4)
		unix.Write(tun, in6)
	})

	want := []string{
		"10.200.78.1 -> 10.200.78.2:9999", // sent out through the tun
		"10.200.78.2 -> 10.200.78.1:9998", // came in
		"fd00:78::2 -> fd00:78::1:9997",   // came in
	}
	seen := map[string]bool{}
	dec := NewDecoder(lc.LinkType())
	var p Packet
	for deadline := time.Now().Add(5 * time.Second); len(seen) < len(want) && time.Now().Before(deadline); {
		data, ci, err := lc.Next()
		if err != nil {
			t.Fatal(err)
		}
		dec.Decode(data, ci, &p)
		if got := fmt.Sprintf("%s -> %s:%d", hostString(p.Src), hostString(p.Dst), p.DstPort); slices.Contains(want, got) {
			seen[got] = true
		}
	}
	for _, w := range want {
		if !seen[w] {
			t.Errorf("no datagram %s decoded within 5 s (decoder: %+v)", w, dec.Stats)
		}
	}
}

// openTun creates a tun (mode IFF_TUN: IP packets, no link header) or tap
// (IFF_TAP: Ethernet frames) device, which lives while the returned
// descriptor is open; IFF_NO_PI puts no packet information before the
// packets on the descriptor.
func openTun(name string, mode uint16) (int, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	ifr, err := unix.NewIfreq(name)
	if err == nil {
		ifr.SetUint16(mode | unix.IFF_NO_PI)
		err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
	}
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("tun %s: %w", name, err)
	}
	return fd, nil
}

// TestLiveCaptureRefusesWhatItCannotDecode makes a tun device in a
// network namespace pose as a Wi-Fi interface in monitor mode
// (TUNSETLINK to ARPHRD_IEEE80211_RADIOTAP, whose frames start with a
// radiotap header): opening it fails with an error naming the interface
// and its hardware type.
func TestLiveCaptureRefusesWhatItCannotDecode(t *testing.T) {
	n := newNetns(t, "fwlnk")
	name := "fwtr" + testSuffix()
	var openErr error
	n.join(t, func() error {
		tun, err := openTun(name, unix.IFF_TUN)
		if err != nil {
			return err
		}
		defer unix.Close(tun)
		if err := unix.IoctlSetInt(tun, unix.TUNSETLINK, unix.ARPHRD_IEEE80211_RADIOTAP); err != nil {
			return fmt.Errorf("TUNSETLINK: %w", err)
		}
		lc, err := OpenInterface(name, LiveOptions{})
		if err == nil {
			lc.Close()
		}
		openErr = err
		return nil
	})
	for _, want := range []string{name, "link type 803 (ARPHRD_IEEE80211_RADIOTAP) is not supported"} {
		if openErr == nil || !strings.Contains(openErr.Error(), want) {
			t.Errorf("OpenInterface on a radiotap interface: error %v; want one containing %q", openErr, want)
		}
	}
}

// TestLiveCaptureReopensOnlyTheSameLinkType captures on a tun device in a
// network namespace, then removes it and creates a tap, which carries
// Ethernet frames, under the same name: the capture, whose reader decodes
// raw IP, does not take the tap and says why. When a tun comes back under
// that name, it reopens. The reader runs in the namespace, where the
// reopens look the interface up.
func TestLiveCaptureReopensOnlyTheSameLinkType(t *testing.T) {
	n := newNetns(t, "fwrel")
	name := "fwtl" + testSuffix()
	_, removeTun := n.tunUp(t, name, unix.IFF_TUN)
	r := readCapture(t, n.openCapture(t, name, LiveOptions{}), n, func([]byte, gopacket.CaptureInfo) {})
	heard := func(s string) func() bool {
		return func() bool {
			return slices.ContainsFunc(r.reported(), func(r string) bool { return strings.Contains(r, s) })
		}
	}

	removeTun()
	r.waitFor(t, "error when the tun was removed", 5*time.Second, func() bool { return r.lc.Errors() > 0 })
	_, removeTap := n.tunUp(t, name, unix.IFF_TAP)
	r.waitFor(t, "refusal of the tap", 10*time.Second, heard("capture on "+name+": the interface now carries Ethernet (1) frames, not the RAW (101) frames"))
	if r.lc.Reopens() != 0 {
		t.Errorf("%d reopens on a tap after a tun", r.lc.Reopens())
	}
	removeTap()
	n.tunUp(t, name, unix.IFF_TUN)
	r.waitFor(t, "reopen on the new tun", 20*time.Second, func() bool { return r.lc.Reopens() == 1 })
}

func TestLiveCaptureLinkTypeOfEachHardwareType(t *testing.T) {
	tests := []struct {
		name    string
		hw      uint16
		want    LinkType
		wantErr string
	}{
		{"Ethernet gives Ethernet frames", unix.ARPHRD_ETHER, LinkEthernet, ""},
		{"loopback gives Ethernet frames", unix.ARPHRD_LOOPBACK, LinkEthernet, ""},
		{"a tun or WireGuard interface gives IP packets", unix.ARPHRD_NONE, LinkRaw, ""},
		{"PPP gives IP packets", unix.ARPHRD_PPP, LinkRaw, ""},
		{"a raw-IP modem gives IP packets", unix.ARPHRD_RAWIP, LinkRaw, ""},
		{"an IP-in-IP tunnel is refused by name", unix.ARPHRD_TUNNEL, 0, "capture on if0: link type 768 (ARPHRD_TUNNEL) is not supported; Ethernet, loopback and raw-IP"},
		{"an unknown type is refused by number", 4242, 0, "capture on if0: link type 4242 is not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := captureLinkType("if0", tt.hw)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %v; want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("captureLinkType(%d) = %v, %v; want %v", tt.hw, got, err, tt.want)
			}
		})
	}
}

// TestLiveCaptureCountsKernelDrops gives the capture on lo room for a few
// dozen frames — a ring of two one-page blocks, or a receive buffer
// shrunk to the kernel's least — and sends 500 datagrams to 127.0.0.1
// before reading any: the frames that found no room show in Drops, read
// from the kernel while a reader waits on a quiet interface, or at Close
// when nothing reads.
func TestLiveCaptureCountsKernelDrops(t *testing.T) {
	tiny := []struct {
		name string
		opts LiveOptions
	}{
		{"from a tiny ring", LiveOptions{ringBlockSize: os.Getpagesize(), ringBlocks: 2}},
		{"with recvfrom and a tiny receive buffer", refusedRing},
	}
	for _, tt := range tiny {
		t.Run(tt.name+", while a reader waits", func(t *testing.T) {
			lc := floodedLoopback(t, tt.opts)
			r := readCapture(t, lc, nil, func([]byte, gopacket.CaptureInfo) {})
			r.waitFor(t, "drops counted while reading a flooded capture", 5*time.Second, func() bool { return lc.Drops() > 0 })
			drops := lc.Drops()
			lc.Close()
			if lc.Drops() < drops {
				t.Errorf("Drops went from %d to %d at Close", drops, lc.Drops())
			}
		})
		t.Run(tt.name+", at Close when nothing reads", func(t *testing.T) {
			lc := floodedLoopback(t, tt.opts)
			lc.Close()
			if lc.Drops() == 0 {
				t.Error("no drops counted at Close of a flooded capture")
			}
		})
	}
}

// floodedLoopback opens a capture on lo with opts, shrinking the receive
// buffer of one without a ring to a few frames, and sends it 1000 (500
// datagrams, each seen leaving and arriving).
func floodedLoopback(t *testing.T, opts LiveOptions) *LiveCapture {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("AF_PACKET capture needs root")
	}
	lc, err := OpenInterface("lo", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lc.Close() })
	if lc.Mode() == CaptureRecvfrom {
		// The ring's size cannot be shrunk this way: it needs none.
		if err := unix.SetsockoptInt(lc.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 0); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for range 500 {
		conn.WriteToUDP([]byte("fleetward-drop-test"), conn.LocalAddr().(*net.UDPAddr))
	}
	return lc
}

// veth is a veth pair with one end in a network namespace: 10.200.77.1 on
// host, 10.200.77.2 on the namespace's end.
type veth struct {
	ipTool, ns, host, peer string
}

func newVeth(t *testing.T) *veth {
	t.Helper()
	n := newNetns(t, "fwdet")
	suffix := testSuffix()
	v := &veth{ipTool: n.ipTool, ns: n.name, host: "fwdh" + suffix, peer: "fwdp" + suffix}
	t.Cleanup(func() { exec.Command(v.ipTool, "link", "del", v.host).Run() })
	v.create(t)
	return v
}

// create adds the pair, addresses it and brings it up.
func (v *veth) create(t *testing.T) {
	t.Helper()
	v.run(t, "link", "add", v.host, "type", "veth", "peer", "name", v.peer)
	v.run(t, "link", "set", v.peer, "netns", v.ns)
	v.run(t, "addr", "add", "10.200.77.1/30", "dev", v.host)
	v.run(t, "link", "set", v.host, "up")
	v.run(t, "-n", v.ns, "addr", "add", "10.200.77.2/30", "dev", v.peer)
	v.run(t, "-n", v.ns, "link", "set", v.peer, "up")
}

// run runs the ip tool and returns what it printed.
func (v *veth) run(t *testing.T, args ...string) string {
	t.Helper()
	return runIP(t, v.ipTool, args...)
}

// netns is a network namespace made for one test (ip netns add), deleted
// when the test ends.
type netns struct {
	ipTool, name string
}

// newNetns makes the namespace prefix-PID. It skips the test without root,
// or without the ip tool unless CI=true.
func newNetns(t testing.TB, prefix string) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("creating a namespace and capturing need root")
	}
	ipTool, err := exec.LookPath("ip")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ip (iproute2) is required under CI as root")
		}
		t.Skip("no ip tool")
	}
	n := &netns{ipTool: ipTool, name: prefix + "-" + testSuffix()}
	runIP(t, ipTool, "netns", "add", n.name)
	t.Cleanup(func() { exec.Command(ipTool, "netns", "del", n.name).Run() })
	return n
}

// ip runs the ip tool inside the namespace and returns what it printed.
func (n *netns) ip(t testing.TB, args ...string) string {
	t.Helper()
	return runIP(t, n.ipTool, append([]string{"-n", n.name}, args...)...)
}

// join runs f on an OS thread that has joined the namespace, so that the
// sockets and devices f opens belong to it; they stay there after f
// returns.
func (n *netns) join(t testing.TB, f func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		if err := n.enterThread(); err != nil {
			errc <- err
			return
		}
		errc <- f()
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// enterThread moves the calling goroutine's OS thread into the namespace
// for good: the thread stays locked to the goroutine and ends with it,
// never handed back to the runtime.
func (n *netns) enterThread() error {
	runtime.LockOSThread()
	fd, err := unix.Open("/var/run/netns/"+n.name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("namespace %s: %w", n.name, err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("join namespace %s: %w", n.name, err)
	}
	return nil
}

// openCapture opens a capture on the namespace's interface name, closed
// when the test ends.
func (n *netns) openCapture(t testing.TB, name string, opts LiveOptions) *LiveCapture {
	t.Helper()
	var lc *LiveCapture
	n.join(t, func() (err error) {
		lc, err = OpenInterface(name, opts)
		return err
	})
	t.Cleanup(func() { lc.Close() })
	return lc
}

// tunUp creates a tun or tap device in the namespace (see openTun) and
// brings it up. It returns the device's descriptor and a function that
// removes the device, which the test's end calls if the test did not.
func (n *netns) tunUp(t *testing.T, name string, mode uint16) (fd int, remove func()) {
	t.Helper()
	n.join(t, func() (err error) {
		fd, err = openTun(name, mode)
		return err
	})
	remove = sync.OnceFunc(func() { unix.Close(fd) })
	t.Cleanup(remove)
	n.ip(t, "link", "set", name, "up")
	return fd, remove
}

func runIP(t testing.TB, ipTool string, args ...string) string {
	t.Helper()
	out, err := exec.Command(ipTool, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %v: %v: %s", args, err, out)
	}
	return string(out)
}

// promiscuity reads how many users have put an interface in promiscuous
// mode from what `ip -d link show` printed of it.
func promiscuity(t *testing.T, ipLinkShow string) int {
	t.Helper()
	m := regexp.MustCompile(`promiscuity (\d+)`).FindStringSubmatch(ipLinkShow)
	if m == nil {
		t.Fatalf("no promiscuity in %q", ipLinkShow)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// testSuffix tells this test process's interfaces and namespaces from
// those of another running at the same time.
func testSuffix() string { return strconv.Itoa(os.Getpid() % 100000) }

// sendUDP sends a datagram to 10.200.77.2:9999 every 50 ms until the test
// ends; sends that fail while the interface is away are ignored.
func (v *veth) sendUDP(t *testing.T) {
	conn, err := net.ListenUDP("udp4", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	to := &net.UDPAddr{IP: net.IPv4(10, 200, 77, 2), Port: 9999}
	repeat(t, 50*time.Millisecond, func() { conn.WriteToUDP([]byte("fleetward-veth"), to) })
}

// captured reads the capture until a datagram from 10.200.77.1 to
// 10.200.77.2:9999 shows or within passes.
func (v *veth) captured(t *testing.T, lc *LiveCapture, within time.Duration) bool {
	t.Helper()
	dec := NewDecoder(lc.LinkType())
	var p Packet
	for deadline := time.Now().Add(within); time.Now().Before(deadline); {
		data, ci, err := lc.Next()
		if err != nil {
			t.Fatal(err)
		}
		dec.Decode(data, ci, &p)
		if p.DstPort == 9999 && hostString(p.Dst) == "10.200.77.2" && hostString(p.Src) == "10.200.77.1" {
			return true
		}
	}
	return false
}

// TestLiveCaptureReadsEveryFrameInOrder sends 20,000 numbered datagrams
// over the loopback interface of a network namespace of its own (no other
// traffic), never more than 64 ahead of the reader, and checks each way
// that every one is read, in order and unchanged, with the kernel's
// timestamp, and that nothing was dropped. The ring is 4 blocks of 16 KiB,
// which the 7 MB of frames go round more than a hundred times.
func TestLiveCaptureReadsEveryFrameInOrder(t *testing.T) {
	for _, m := range readModes {
		t.Run(m.name, func(t *testing.T) {
			opts := m.opts
			if m.mode == CaptureRing {
				opts.ringBlockSize, opts.ringBlocks = 16<<10, 4
			}
			testEveryFrameInOrder(t, opts, m.mode)
		})
	}
}

func testEveryFrameInOrder(t *testing.T, opts LiveOptions, mode string) {
	const total, window = 20000, 64
	n, send := loopbackNetns(t, "fwseq")
	lc := n.openCapture(t, "lo", opts)
	if lc.Mode() != mode {
		t.Fatalf("Mode() = %q (RingError %v); want %q", lc.Mode(), lc.RingError(), mode)
	}
	prefix := []byte("fleetward-sequence-")
	var read atomic.Int64 // datagrams read so far
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()
	wg.Go(func() {
		msg := append(slices.Clone(prefix), 0, 0, 0, 0)
		for i := range total {
			for int64(i)-read.Load() >= window {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Microsecond):
				}
			}
			binary.BigEndian.PutUint32(msg[len(prefix):], uint32(i))
			if err := send(msg); err != nil {
				t.Errorf("send %d: %v", i, err)
				return
			}
		}
	})
	for deadline := time.Now().Add(30 * time.Second); read.Load() < total; {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d datagrams read within 30 s", read.Load(), total)
		}
		data, ci, err := lc.Next()
		if err != nil {
			t.Fatal(err)
		}
		at := bytes.Index(data, prefix)
		if at < 0 {
			continue
		}
		want := read.Load()
		if got := binary.BigEndian.Uint32(data[at+len(prefix):]); int64(got) != want {
			t.Fatalf("datagram %d read where %d was due", got, want)
		}
		if ci.CaptureLength != len(data) || ci.Length != len(data) || len(data) != at+len(prefix)+4 {
			t.Fatalf("datagram %d: %d bytes, CaptureInfo %+v; want the whole frame, %d bytes", want, len(data), ci, at+len(prefix)+4)
		}
		if age := time.Since(ci.Timestamp); age < -time.Second || age > time.Second {
			t.Fatalf("datagram %d stamped %v, %v from now", want, ci.Timestamp, age)
		}
		read.Add(1)
	}
	lc.Close()
	if lc.Drops() != 0 {
		t.Errorf("%d frames dropped by a capture whose reader kept up", lc.Drops())
	}
}

// loopbackNetns makes a network namespace whose loopback interface is up
// and returns it with a function that sends a UDP datagram there, from a
// socket on 127.0.0.1 to itself.
func loopbackNetns(tb testing.TB, prefix string) (*netns, func([]byte) error) {
	tb.Helper()
	n := newNetns(tb, prefix)
	n.ip(tb, "link", "set", "lo", "up")
	var conn *net.UDPConn
	n.join(tb, func() (err error) {
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		return err
	})
	tb.Cleanup(func() { conn.Close() })
	self := conn.LocalAddr().(*net.UDPAddr)
	return n, func(b []byte) error {
		_, err := conn.WriteToUDP(b, self)
		return err
	}
}

// TestLiveCaptureCutsFramesLargerThanABlock sends a 30,000-byte datagram
// on a namespace's loopback to a capture whose ring blocks are 16 KiB: the
// frame is cut to what a block holds, and Length still says how long it
// was, as recvfrom's MSG_TRUNC does.
func TestLiveCaptureCutsFramesLargerThanABlock(t *testing.T) {
	n, send := loopbackNetns(t, "fwbig")
	lc := n.openCapture(t, "lo", LiveOptions{ringBlockSize: 16 << 10, ringBlocks: 4})
	if lc.Mode() != CaptureRing {
		t.Fatalf("Mode() = %q (RingError %v); want a ring", lc.Mode(), lc.RingError())
	}
	const size = 30000
	repeat(t, 50*time.Millisecond, func() { send(make([]byte, size)) })
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		data, ci, err := lc.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ci.Length != 14+20+8+size {
			continue
		}
		if len(data) != ci.CaptureLength || ci.CaptureLength >= 16<<10 || ci.CaptureLength < 15<<10 {
			t.Errorf("a %d-byte frame read as %d bytes, CaptureLength %d; want it cut to just under a 16 KiB block", ci.Length, len(data), ci.CaptureLength)
		}
		return
	}
	t.Fatal("no 30,000-byte datagram captured within 5 s")
}

// BenchmarkLiveCapture reads b.N frames each way on the loopback interface
// of a network namespace, where another goroutine sends 64-byte UDP
// datagrams as fast as it can (each a frame leaving, which the capture
// skips, and one arriving). frames/s is the reader's rate, which the
// sender bounds when the reader keeps up; drops/frame what the kernel
// dropped meanwhile because the reader fell behind; cpu-ns/frame the
// reader's own CPU time per frame (its thread's, waits excluded), which
// the sender's pace does not change.
func BenchmarkLiveCapture(b *testing.B) {
	for _, m := range readModes {
		b.Run(m.mode, func(b *testing.B) {
			n, send := loopbackNetns(b, "fwbench")
			lc := n.openCapture(b, "lo", m.opts)
			if lc.Mode() != m.mode {
				b.Fatalf("Mode() = %q (RingError %v); want %q", lc.Mode(), lc.RingError(), m.mode)
			}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				msg := make([]byte, 64)
				for {
					select {
					case <-stop:
						return
					default:
						send(msg)
					}
				}
			})
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			cpuStart := threadCPUTime(b)
			b.ResetTimer()
			for range b.N {
				if _, _, err := lc.Next(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			cpu := threadCPUTime(b) - cpuStart
			close(stop)
			wg.Wait()
			lc.Close()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
			b.ReportMetric(float64(lc.Drops())/float64(b.N), "drops/frame")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/frame")
		})
	}
}

// threadCPUTime is the CPU time the calling thread has used.
func threadCPUTime(tb testing.TB) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ts.Nano())
}
