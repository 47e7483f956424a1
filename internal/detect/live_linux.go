package detect

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/gopacket"
	"golang.org/x/sys/unix"
)

// LiveCapture reads every frame seen on one network interface through an
// AF_PACKET socket, without cgo and without a BPF filter: the pipeline
// wants all traffic. It needs CAP_NET_RAW. Close it to make Next return
// io.EOF; Next may be blocked for up to half a second before it notices.
//
// Frames are read from a TPACKET_V3 receive ring shared with the kernel
// (Mode CaptureRing), in place and without a system call per frame, and
// carry the time the kernel received them. When the kernel refuses the
// ring, the capture reads one frame per recvfrom instead (CaptureRecvfrom,
// RingError says why), stamped with the time they are read.
//
// The interface is put in promiscuous mode unless LiveOptions says not
// to, so that a sensor on a mirror port sees traffic between other hosts.
// Ethernet and loopback interfaces give Ethernet frames; interfaces that
// carry bare IP packets (tun, WireGuard, PPP, raw-IP modems) give those
// packets (LinkType); other kinds of interface are refused when opened.
//
// A sensor must outlive its interface's bad moments: when a receive fails
// (the link went down, the interface was removed and created again, as a
// VPN or a USB adapter does), the capture does not end. It reopens the
// interface of the same name, with the same options, retrying after
// 250 ms and then twice as long each time up to 30 s, until it succeeds or
// Close is called. Errors and Reopens count these; OnError, if set before
// the first Next, hears each failure. Drops counts the frames the kernel
// could not queue because the reader fell behind.
type LiveCapture struct {
	iface string
	opts  LiveOptions
	// link is what the interface carried when the capture was opened. The
	// caller built its decoder for it, so a reopen that finds the interface
	// carrying something else fails, and is retried.
	link LinkType
	mu   sync.Mutex
	// fd and reader are changed with mu held, and never while reading.
	fd     int
	reader frameReader
	// ringErr is why the socket has no ring, nil when it has one.
	ringErr error
	closed  bool
	reading bool
	// lent: Next returned a frame, which its caller may still be using
	// until it calls Next again. Changed with mu held.
	lent bool
	done chan struct{} // closed by Close
	// loopback: every frame shows twice on lo, as it leaves and as it
	// arrives; only the arrival is kept.
	loopback bool
	// OnError is called, on the reading goroutine, with each receive or
	// reopen failure.
	OnError func(error)
	backoff time.Duration
	// statsDue asks the next call of Next to read the kernel's drop
	// counter; statsAt is when it was last read. Reading goroutine only.
	statsDue bool
	statsAt  time.Time
	errs     atomic.Uint64
	reopens  atomic.Uint64
	drops    atomic.Uint64
}

// Reopen delays: the first retry, and the longest wait between retries.
const (
	reopenFirst = 250 * time.Millisecond
	reopenMax   = 30 * time.Second
)

// statsEvery is the least time between two reads of the kernel's drop
// counter while frames flow: a system call per frame would cost more than
// a fresher count is worth.
const statsEvery = time.Second

// receiveBuffer is the socket's receive buffer when it has no ring: room
// for bursts that arrive while a packet is scored.
const receiveBuffer = 8 << 20

// quietWait is how long a read waits for a frame before Next looks
// whether the capture was closed, and reads the drop counter.
const quietWait = 500 * time.Millisecond

// errQuiet is what a frameReader returns when no frame came within
// quietWait.
var errQuiet = errors.New("no frame")

// frameReader reads the frames of one packet socket: from its ring
// (rxRing) or one recvfrom at a time (recvReader).
type frameReader interface {
	// read returns the next frame of the socket fd, valid until the
	// following read or release, and whether the host sent it (on lo,
	// the leaving copy); errQuiet when none came within quietWait, or the
	// socket's error.
	read(fd int) (frame []byte, ci gopacket.CaptureInfo, outgoing bool, err error)
	// release frees what the reader holds. frameInUse says the frame read
	// last may still be in use: it must stay readable.
	release(frameInUse bool)
	// mode is CaptureRing or CaptureRecvfrom.
	mode() string
}

// recvReader reads one frame per recvfrom into its buffer.
type recvReader struct {
	buf []byte
}

func (r *recvReader) mode() string { return CaptureRecvfrom }

// release has nothing to free: the buffer is Go memory.
func (r *recvReader) release(bool) {}

func (r *recvReader) read(fd int) ([]byte, gopacket.CaptureInfo, bool, error) {
	n, from, err := unix.Recvfrom(fd, r.buf, unix.MSG_TRUNC)
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
		// The receive timed out (or a signal cut it short).
		return nil, gopacket.CaptureInfo{}, false, errQuiet
	}
	if err != nil {
		return nil, gopacket.CaptureInfo{}, false, err
	}
	ll, _ := from.(*unix.SockaddrLinklayer)
	captured := min(n, len(r.buf))
	ci := gopacket.CaptureInfo{Timestamp: time.Now(), CaptureLength: captured, Length: n}
	return r.buf[:captured], ci, ll != nil && ll.Pkttype == unix.PACKET_OUTGOING, nil
}

// OpenInterface opens a live capture on the named interface. Returns an
// error naming the interface when it does not exist, when it is of a kind
// whose frames cannot be decoded (naming its hardware type), or when the
// socket cannot be opened or put in promiscuous mode (usually: not root
// and no CAP_NET_RAW).
func OpenInterface(name string, opts LiveOptions) (*LiveCapture, error) {
	s, err := openPacketSocket(name, opts)
	if err != nil {
		return nil, err
	}
	return &LiveCapture{fd: s.fd, reader: s.reader, ringErr: s.ringErr, iface: name, opts: opts, link: s.link,
		loopback: s.loopback, done: make(chan struct{}), backoff: reopenFirst, statsAt: time.Now()}, nil
}

// packetSocket is an AF_PACKET socket bound to an interface, what it
// reads and how.
type packetSocket struct {
	fd       int
	reader   frameReader
	ringErr  error // why reader is not a ring
	link     LinkType
	loopback bool
}

// close closes a socket that was never read.
func (s packetSocket) close() {
	s.reader.release(false)
	unix.Close(s.fd)
}

// openPacketSocket opens an AF_PACKET socket bound to the interface now
// called name, in promiscuous mode unless opts says not to, with a
// receive ring, or else a receive timeout so that Close is noticed.
func openPacketSocket(name string, opts LiveOptions) (packetSocket, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		if names := interfaceNames(); names != "" {
			return packetSocket{}, fmt.Errorf("capture on %s: no such interface; this host has %s", name, names)
		}
		return packetSocket{}, fmt.Errorf("capture on %s: %w", name, err)
	}
	hw, err := hardwareType(name)
	if err != nil {
		return packetSocket{}, err
	}
	link, err := captureLinkType(name, hw)
	if err != nil {
		return packetSocket{}, err
	}
	// On a raw-IP interface a SOCK_DGRAM socket reads the IP packet alone,
	// even from a driver that puts a link header before it (HDLC's PPP);
	// elsewhere SOCK_RAW keeps the Ethernet header, whose MAC addresses the
	// features use.
	sockType := unix.SOCK_RAW
	if link == LinkRaw {
		sockType = unix.SOCK_DGRAM
	}
	fd, err := newPacketSocket(name, sockType)
	if err != nil {
		return packetSocket{}, err
	}
	// The ring is set up before the socket is bound, so that no frame
	// waits outside it.
	var reader frameReader
	ring, ringErr := newRxRing(fd, opts.ringBlockSize, opts.ringBlocks, link == LinkEthernet)
	if ringErr == nil {
		reader = ring
	} else {
		// The refusal may have left the socket half set up: start again.
		unix.Close(fd)
		if fd, err = newPacketSocket(name, sockType); err != nil {
			return packetSocket{}, err
		}
		reader = &recvReader{buf: make([]byte, 65536)}
	}
	fail := func(what string, err error) (packetSocket, error) {
		reader.release(false)
		unix.Close(fd)
		return packetSocket{}, fmt.Errorf("capture on %s: %s: %w", name, what, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		return fail("bind", err)
	}
	if !opts.NoPromiscuous {
		// A membership rather than the interface's IFF_PROMISC flag: the
		// kernel counts it apart from other users' and drops it when the
		// socket closes, so a sensor that dies leaves the interface as it was.
		mreq := unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_PROMISC}
		if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
			return fail("promiscuous mode", err)
		}
	}
	if ringErr != nil {
		// The ring's reader polls with a timeout; recvfrom needs one of
		// its own.
		tv := unix.NsecToTimeval(quietWait.Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return fail("receive timeout", err)
		}
		// SO_RCVBUF is capped by net.core.rmem_max without a word (208 KiB
		// by default); SO_RCVBUFFORCE, allowed with CAP_NET_ADMIN, is not.
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, receiveBuffer) != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, receiveBuffer)
		}
	}
	return packetSocket{fd: fd, reader: reader, ringErr: ringErr, link: link, loopback: ifi.Flags&net.FlagLoopback != 0}, nil
}

// newPacketSocket opens an AF_PACKET socket of the given type. Its
// protocol is 0 until it is bound, so that it receives nothing before:
// no frame of another interface slips in.
func newPacketSocket(name string, sockType int) (int, error) {
	fd, err := unix.Socket(unix.AF_PACKET, sockType|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("capture on %s: AF_PACKET socket (needs root or CAP_NET_RAW): %w", name, err)
	}
	return fd, nil
}

// hardwareType returns the named interface's hardware type (ARPHRD_*),
// which says what its frames start with.
func hardwareType(name string) (uint16, error) {
	fd, err := newPacketSocket(name, unix.SOCK_DGRAM)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, fmt.Errorf("capture on %s: %w", name, err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFHWADDR, ifr); err != nil {
		return 0, fmt.Errorf("capture on %s: hardware type: %w", name, err)
	}
	// The answer is a struct sockaddr whose family is the hardware type.
	return ifr.Uint16(), nil
}

// interfaceNames lists the host's interfaces, "eth0, lo", for the error
// that names one missing; "" if they cannot be listed.
func interfaceNames() string {
	ifs, err := net.Interfaces()
	if err != nil {
		return ""
	}
	names := make([]string, len(ifs))
	for i, ifi := range ifs {
		names[i] = ifi.Name
	}
	return strings.Join(names, ", ")
}

// captureLinkType returns the link type of the frames captured on the
// interface name, of hardware type hw, or an error naming both when the
// Decoder cannot read them.
func captureLinkType(name string, hw uint16) (LinkType, error) {
	switch hw {
	case unix.ARPHRD_ETHER, unix.ARPHRD_LOOPBACK:
		// Linux gives loopback frames an Ethernet header of zero addresses.
		return LinkEthernet, nil
	case unix.ARPHRD_NONE, unix.ARPHRD_PPP, unix.ARPHRD_RAWIP:
		return LinkRaw, nil
	}
	kind := ""
	if n, ok := hardwareTypeNames[hw]; ok {
		kind = " (" + n + ")"
	}
	return 0, fmt.Errorf("capture on %s: link type %d%s is not supported; Ethernet, loopback and raw-IP (tun, WireGuard, PPP) interfaces are", name, hw, kind)
}

// hardwareTypeNames names the kinds of interface someone may try to
// capture on and cannot, for the error that refuses them.
var hardwareTypeNames = map[uint16]string{
	unix.ARPHRD_INFINIBAND:         "ARPHRD_INFINIBAND",
	unix.ARPHRD_SLIP:               "ARPHRD_SLIP",
	unix.ARPHRD_CAN:                "ARPHRD_CAN",
	unix.ARPHRD_TUNNEL:             "ARPHRD_TUNNEL",
	unix.ARPHRD_TUNNEL6:            "ARPHRD_TUNNEL6",
	unix.ARPHRD_SIT:                "ARPHRD_SIT",
	unix.ARPHRD_IPGRE:              "ARPHRD_IPGRE",
	unix.ARPHRD_IEEE80211:          "ARPHRD_IEEE80211",
	unix.ARPHRD_IEEE80211_PRISM:    "ARPHRD_IEEE80211_PRISM",
	unix.ARPHRD_IEEE80211_RADIOTAP: "ARPHRD_IEEE80211_RADIOTAP",
	unix.ARPHRD_IEEE802154:         "ARPHRD_IEEE802154",
	unix.ARPHRD_IP6GRE:             "ARPHRD_IP6GRE",
	unix.ARPHRD_NETLINK:            "ARPHRD_NETLINK",
	unix.ARPHRD_6LOWPAN:            "ARPHRD_6LOWPAN",
}

// LinkType is the link type of the frames Next returns, fixed when the
// capture is opened: LinkEthernet on Ethernet and loopback interfaces,
// LinkRaw (an IPv4 or IPv6 packet without a link
// header) on tun, WireGuard, PPP and raw-IP interfaces.
func (c *LiveCapture) LinkType() LinkType { return c.link }

// Errors is the number of receive failures so far; Reopens the number of
// times the interface was opened again after one.
func (c *LiveCapture) Errors() uint64  { return c.errs.Load() }
func (c *LiveCapture) Reopens() uint64 { return c.reopens.Load() }

// Mode is how the capture reads frames now: CaptureRing, or
// CaptureRecvfrom when the kernel refused the ring. A reopen sets up the
// ring again, and may change it.
func (c *LiveCapture) Mode() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reader.mode()
}

// RingError is why the kernel refused the capture's ring (naming the step
// that failed), or nil when Mode is CaptureRing.
func (c *LiveCapture) RingError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ringErr
}

// Drops is the number of frames the kernel dropped so far because the
// capture's ring (or receive buffer) was full: the reader did not keep
// up. The kernel's count is read when the interface is quiet, at most
// once a second while frames flow, before a reopen and at Close, so it
// may lag by a second.
func (c *LiveCapture) Drops() uint64 { return c.drops.Load() }

// Next returns the next frame, valid until the following call, or io.EOF
// once the capture is closed. A failing receive is not returned: the
// interface is reopened (see LiveCapture).
func (c *LiveCapture) Next() ([]byte, gopacket.CaptureInfo, error) {
	for {
		c.mu.Lock()
		c.lent = false
		if c.closed {
			c.closeSocket()
			c.mu.Unlock()
			return nil, gopacket.CaptureInfo{}, io.EOF
		}
		if c.statsDue {
			c.readDrops()
			c.statsDue, c.statsAt = false, time.Now()
		}
		c.reading = true
		c.mu.Unlock()
		frame, ci, outgoing, err := c.reader.read(c.fd)
		c.mu.Lock()
		c.reading = false
		c.lent = err == nil
		c.mu.Unlock()
		if errors.Is(err, errQuiet) {
			// A quiet moment to read the drop count.
			c.statsDue = true
			continue
		}
		if err != nil {
			if !c.reopen(fmt.Errorf("capture on %s: %w", c.iface, err)) {
				return nil, gopacket.CaptureInfo{}, io.EOF
			}
			continue
		}
		c.backoff = reopenFirst
		if c.loopback && outgoing {
			continue
		}
		c.statsDue = time.Since(c.statsAt) >= statsEvery
		return frame, ci, nil
	}
}

// reopen reports err, drops the socket and opens the interface again,
// waiting between attempts. It returns false if Close came first.
func (c *LiveCapture) reopen(err error) bool {
	c.errs.Add(1)
	c.report(err)
	c.mu.Lock()
	c.closeSocket()
	c.mu.Unlock()
	for {
		t := time.NewTimer(c.backoff)
		select {
		case <-c.done:
			t.Stop()
			return false
		case <-t.C:
		}
		c.backoff = min(2*c.backoff, reopenMax)
		s, err := openPacketSocket(c.iface, c.opts)
		if err != nil {
			c.report(err)
			continue
		}
		if s.link != c.link {
			s.close()
			c.report(fmt.Errorf("capture on %s: the interface now carries %v frames, not the %v frames the capture began with", c.iface, s.link, c.link))
			continue
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			s.close()
			return false
		}
		c.fd, c.reader, c.ringErr, c.loopback = s.fd, s.reader, s.ringErr, s.loopback
		c.statsAt = time.Now()
		c.mu.Unlock()
		c.reopens.Add(1)
		return true
	}
}

func (c *LiveCapture) report(err error) {
	if c.OnError != nil {
		c.OnError(err)
	}
}

// readDrops adds the frames the kernel dropped since the last read, for
// want of room in the ring or the receive buffer; reading resets the
// kernel's counters. Called with mu held.
func (c *LiveCapture) readDrops() {
	if c.fd < 0 {
		return
	}
	// A TPACKET_V3 socket answers with struct tpacket_stats_v3; any other
	// fills its first two fields, the same as in tpacket_stats.
	if st, err := unix.GetsockoptTpacketStatsV3(c.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
		c.drops.Add(uint64(st.Drops))
	}
}

// closeSocket closes the socket, if open, after adding the drops it
// counted (closing would lose them), and releases its reader, which keeps
// the frame lent to Next's caller readable. Called with mu held.
func (c *LiveCapture) closeSocket() {
	if c.fd >= 0 {
		c.readDrops()
		unix.Close(c.fd)
		c.fd = -1
	}
	c.reader.release(c.lent)
}

// Close stops the capture; a blocked Next returns io.EOF.
func (c *LiveCapture) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		close(c.done)
	}
	c.closed = true
	// A reader blocked in a read closes the socket itself when its
	// timeout wakes it; closing it under its feet could let the number be
	// reused by another file, or unmap the ring it reads.
	if !c.reading {
		c.closeSocket()
	}
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
