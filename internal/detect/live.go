package detect

// LiveOptions adjusts a live capture (OpenInterface). The zero value is
// what a network sensor wants.
type LiveOptions struct {
	// NoPromiscuous captures only the frames the interface accepts for
	// the host: those to its own MAC address, broadcasts and its multicast
	// groups. By default the capture asks for promiscuous mode, so that a
	// sensor on a mirror (SPAN) port or a hub sees the unicast traffic
	// between other hosts, which is the traffic it is there to watch.
	NoPromiscuous bool

	// For tests: ringBlockSize and ringBlocks, when set, size the ring.
	ringBlockSize, ringBlocks int
}

// How a live capture reads frames (LiveCapture.Mode).
const (
	// CaptureRing reads them in place from a TPACKET_V3 ring of memory
	// shared with the kernel, without a system call or a copy per frame.
	CaptureRing = "ring"
	// CaptureRecvfrom reads them one recvfrom system call at a time, each
	// copying its frame: the way when the kernel refuses the ring.
	CaptureRecvfrom = "recvfrom"
)
