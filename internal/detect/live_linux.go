package detect

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"
)

// LiveCapture reads every frame seen on one network interface through an
// AF_PACKET socket, without cgo and without a BPF filter: the pipeline
// wants all traffic. It needs CAP_NET_RAW. Frames are stamped with the
// time they are read. Close it to make Next return io.EOF; Next may be
// blocked for up to half a second before it notices.
//
// A sensor must outlive its interface's bad moments: when a receive fails
// (the link went down, the interface was removed and created again, as a
// VPN or a USB adapter does), the capture does not end. It reopens the
// interface of the same name, retrying after 250 ms and then twice as long
// each time up to 30 s, until it succeeds or Close is called. Errors and
// Reopens count these; OnError, if set before the first Next, hears each
// failure.
type LiveCapture struct {
	fd      int
	iface   string
	buf     []byte
	mu      sync.Mutex
	closed  bool
	reading bool
	done    chan struct{} // closed by Close
	// loopback: every frame shows twice on lo, as it leaves and as it
	// arrives; only the arrival is kept.
	loopback bool
	// OnError is called, on the reading goroutine, with each receive or
	// reopen failure.
	OnError func(error)
	backoff time.Duration
	errs    atomic.Uint64
	reopens atomic.Uint64
}

// Reopen delays: the first retry, and the longest wait between retries.
const (
	reopenFirst = 250 * time.Millisecond
	reopenMax   = 30 * time.Second
)

// OpenInterface opens a live capture on the named interface. Returns an
// error naming the interface when it does not exist or the socket cannot
// be opened (usually: not root and no CAP_NET_RAW).
func OpenInterface(name string) (*LiveCapture, error) {
	fd, loopback, err := openPacketSocket(name)
	if err != nil {
		return nil, err
	}
	return &LiveCapture{fd: fd, iface: name, buf: make([]byte, 65536), loopback: loopback,
		done: make(chan struct{}), backoff: reopenFirst}, nil
}

// openPacketSocket opens an AF_PACKET socket bound to the interface now
// called name, with a receive timeout so that Close is noticed.
func openPacketSocket(name string) (fd int, loopback bool, err error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return -1, false, fmt.Errorf("capture on %s: %w", name, err)
	}
	proto := htons(unix.ETH_P_ALL)
	fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(proto))
	if err != nil {
		return -1, false, fmt.Errorf("capture on %s: AF_PACKET socket (needs root or CAP_NET_RAW): %w", name, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return -1, false, fmt.Errorf("capture on %s: bind: %w", name, err)
	}
	tv := unix.NsecToTimeval((500 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return -1, false, fmt.Errorf("capture on %s: receive timeout: %w", name, err)
	}
	// A larger receive buffer rides out bursts while a packet is scored.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 8<<20)
	return fd, ifi.Flags&net.FlagLoopback != 0, nil
}

// LinkType is Ethernet: Linux gives loopback and Ethernet-like interfaces
// an Ethernet header on AF_PACKET sockets.
func (c *LiveCapture) LinkType() layers.LinkType { return layers.LinkTypeEthernet }

// Errors is the number of receive failures so far; Reopens the number of
// times the interface was opened again after one.
func (c *LiveCapture) Errors() uint64  { return c.errs.Load() }
func (c *LiveCapture) Reopens() uint64 { return c.reopens.Load() }

// Next returns the next frame, valid until the following call, or io.EOF
// once the capture is closed. A failing receive is not returned: the
// interface is reopened (see LiveCapture).
func (c *LiveCapture) Next() ([]byte, gopacket.CaptureInfo, error) {
	for {
		c.mu.Lock()
		if c.closed {
			if c.fd >= 0 {
				unix.Close(c.fd)
				c.fd = -1
			}
			c.mu.Unlock()
			return nil, gopacket.CaptureInfo{}, io.EOF
		}
		c.reading = true
		c.mu.Unlock()
		n, from, err := unix.Recvfrom(c.fd, c.buf, unix.MSG_TRUNC)
		c.mu.Lock()
		c.reading = false
		c.mu.Unlock()
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			if !c.reopen(fmt.Errorf("capture on %s: %w", c.iface, err)) {
				return nil, gopacket.CaptureInfo{}, io.EOF
			}
			continue
		}
		c.backoff = reopenFirst
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && c.loopback && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		captured := min(n, len(c.buf))
		return c.buf[:captured], gopacket.CaptureInfo{Timestamp: time.Now(), CaptureLength: captured, Length: n}, nil
	}
}

// reopen reports err, drops the socket and opens the interface again,
// waiting between attempts. It returns false if Close came first.
func (c *LiveCapture) reopen(err error) bool {
	c.errs.Add(1)
	c.report(err)
	c.mu.Lock()
	if c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
	}
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
		fd, loopback, err := openPacketSocket(c.iface)
		if err != nil {
			c.report(err)
			continue
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			unix.Close(fd)
			return false
		}
		c.fd, c.loopback = fd, loopback
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

// Close stops the capture; a blocked Next returns io.EOF.
func (c *LiveCapture) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		close(c.done)
	}
	c.closed = true
	// A reader blocked in Recvfrom closes the socket itself when its
	// timeout wakes it; closing it under its feet could let the number be
	// reused by another file.
	if !c.reading && c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
	}
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
