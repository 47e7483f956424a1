package detect

import "hash/maphash"

// handshakeSlots is the size of the table of handshakes in progress: a
// power of two. A slot is 16 bytes, so the table is 1 MiB.
const handshakeSlots = 1 << 16

// handshakes follows TCP handshakes far enough to tell the ACK that
// completes one from any other bare ACK: the client's SYN (sequence X),
// the server's SYN-ACK acknowledging it (X+1, with its own sequence Y),
// then the client's ACK with sequence X+1 acknowledging Y+1. Only that ACK
// takes the SYN off the SYN-flood counts. A flooder that sends ACKs of its
// own alongside its SYNs, or that answers its SYNs before the server does,
// completes nothing: a server answers only SYNs, and never with the numbers
// the flooder would have to guess.
//
// The table is direct-mapped and fixed in size: a handshake lands in the
// slot its connection hashes to and displaces whatever was there. Under a
// flood, real handshakes may be displaced before they complete; their SYNs
// then stay counted, which is a SYN each against its own source and
// destination, far from any threshold. A sensor that sees one direction
// only never sees a SYN-ACK, so there no ACK completes anything.
type handshakes struct {
	seed  maphash.Seed
	slots []handshake // allocated at the first SYN
}

type handshake struct {
	tag uint64 // the connection's hash; 0 for an empty slot
	// clientNext is X+1; serverNext is Y+1 once the SYN-ACK was seen, 0
	// before.
	clientNext, serverNext uint32
}

// handshakeTag hashes a connection; never 0, which marks an empty slot.
func (h *handshakes) tag(k connKey) uint64 {
	return maphash.Comparable(h.seed, k) | 1
}

func (h *handshakes) slot(tag uint64) *handshake {
	return &h.slots[tag&(handshakeSlots-1)]
}

// syn records a client's SYN.
func (h *handshakes) syn(p *Packet) {
	if h.slots == nil {
		h.seed = maphash.MakeSeed()
		h.slots = make([]handshake, handshakeSlots)
	}
	tag := h.tag(connKey{p.Src, p.Dst, p.SrcPort, p.DstPort})
	*h.slot(tag) = handshake{tag: tag, clientNext: p.Seq + 1}
}

// synAck records a server's SYN-ACK if it answers a recorded SYN.
func (h *handshakes) synAck(p *Packet) {
	if h.slots == nil {
		return
	}
	tag := h.tag(connKey{p.Dst, p.Src, p.DstPort, p.SrcPort})
	if s := h.slot(tag); s.tag == tag && s.serverNext == 0 && p.Ack == s.clientNext {
		// Y+1 may wrap to 0; 1 then stands for "answered" and cannot be
		// matched, which costs one handshake in four billion.
		s.serverNext = max(p.Seq+1, 1)
	}
}

// completes reports whether a client's bare ACK completes a recorded,
// answered handshake, and forgets the handshake if it does.
func (h *handshakes) completes(p *Packet) bool {
	if h.slots == nil {
		return false
	}
	tag := h.tag(connKey{p.Src, p.Dst, p.SrcPort, p.DstPort})
	s := h.slot(tag)
	if s.tag != tag || s.serverNext == 0 || p.Seq != s.clientNext || p.Ack != s.serverNext {
		return false
	}
	*s = handshake{}
	return true
}
