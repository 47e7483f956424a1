package detect

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
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
type LiveCapture struct {
	fd      int
	iface   string
	buf     []byte
	mu      sync.Mutex
	closed  bool
	reading bool
	// loopback: every frame shows twice on lo, as it leaves and as it
	// arrives; only the arrival is kept.
	loopback bool
}

// OpenInterface opens a live capture on the named interface. Returns an
// error naming the interface when it does not exist or the socket cannot
// be opened (usually: not root and no CAP_NET_RAW).
func OpenInterface(name string) (*LiveCapture, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("capture on %s: %w", name, err)
	}
	proto := htons(unix.ETH_P_ALL)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(proto))
	if err != nil {
		return nil, fmt.Errorf("capture on %s: AF_PACKET socket (needs root or CAP_NET_RAW): %w", name, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("capture on %s: bind: %w", name, err)
	}
	tv := unix.NsecToTimeval((500 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("capture on %s: receive timeout: %w", name, err)
	}
	// A larger receive buffer rides out bursts while a packet is scored.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 8<<20)
	return &LiveCapture{fd: fd, iface: name, buf: make([]byte, 65536), loopback: ifi.Flags&net.FlagLoopback != 0}, nil
}

// LinkType is Ethernet: Linux gives loopback and Ethernet-like interfaces
// an Ethernet header on AF_PACKET sockets.
func (c *LiveCapture) LinkType() layers.LinkType { return layers.LinkTypeEthernet }

// Next returns the next frame, valid until the following call, or io.EOF
// once the capture is closed.
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
			return nil, gopacket.CaptureInfo{}, fmt.Errorf("capture on %s: %w", c.iface, err)
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && c.loopback && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		captured := min(n, len(c.buf))
		return c.buf[:captured], gopacket.CaptureInfo{Timestamp: time.Now(), CaptureLength: captured, Length: n}, nil
	}
}

// Close stops the capture; a blocked Next returns io.EOF.
func (c *LiveCapture) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
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
