package detect

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
)

// The rules follow TCP connections in two small direct-mapped tables:
// a connection lands in the slot its hash picks and displaces whatever
// was there. Under a flood, real connections may be displaced; each table
// says what that costs. Both are fixed in size, allocated at first use.

// connHash hashes one direction of a TCP connection (source, destination,
// ports) with seed. It is never 0, which marks an empty slot. Seeded per
// detector, so that no one can aim packets at a chosen slot.
func connHash(seed uint64, src, dst Host, sport, dport uint16) uint64 {
	h := seed ^ uint64(src.Kind)<<8 ^ uint64(dst.Kind)
	for _, w := range [5]uint64{
		binary.LittleEndian.Uint64(src.Addr[:8]), binary.LittleEndian.Uint64(src.Addr[8:]),
		binary.LittleEndian.Uint64(dst.Addr[:8]), binary.LittleEndian.Uint64(dst.Addr[8:]),
		uint64(sport)<<16 | uint64(dport),
	} {
		hi, lo := bits.Mul64(h^w, 0x9e3779b97f4a7c15)
		h = hi ^ lo
	}
	return h | 1
}

// macPair hashes the source and destination MAC addresses of a frame.
// A reply on the same link carries them the other way round: the
// forged "reply" of a host on the LAN carries its own MAC, unless it
// forges that too (and teaches the switch to send it the victim's
// traffic). Links without MACs (raw IP) give every frame the same pair,
// and so do links that carry the sender's alone (Linux cooked captures,
// what tcpdump -i any writes): a frame there has no pair to reverse.
func macPair(src, dst [6]byte) uint64 {
	if src == ([6]byte{}) || dst == ([6]byte{}) {
		src, dst = [6]byte{}, [6]byte{}
	}
	a := uint64(src[0]) | uint64(src[1])<<8 | uint64(src[2])<<16 | uint64(src[3])<<24 | uint64(src[4])<<32 | uint64(src[5])<<40
	b := uint64(dst[0]) | uint64(dst[1])<<8 | uint64(dst[2])<<16 | uint64(dst[3])<<24 | uint64(dst[4])<<32 | uint64(dst[5])<<40
	hi, lo := bits.Mul64(a^0x9e3779b97f4a7c15, b^0xc2b2ae3d27d4eb4f)
	return hi ^ lo
}

// handshakeSlots is the size of the table of handshakes in progress: a
// power of two. A slot is 24 bytes, so the table is 1.5 MiB.
const handshakeSlots = 1 << 16

// handshakes follows TCP handshakes far enough to tell the ACK that
// completes one from any other: the client's SYN (sequence X), the
// server's SYN-ACK acknowledging it (X+1, with its own sequence Y), then
// the client's ACK with sequence X+1 acknowledging Y+1, each frame between
// the same two MAC addresses (macPair). Only that ACK takes the SYN off the
// SYN-flood counts. A flooder that sends ACKs of its own alongside its SYNs
// completes nothing; one that forges the server's SYN-ACK too sends it
// from its own MAC address, not the one its SYN went to, unless it forges
// that as well. It also tells a retransmitted SYN (the same connection and
// sequence number) from a new connection.
//
// A handshake displaced before it completes leaves its SYN counted: a SYN
// each against its own source and destination, far from any threshold. A
// sensor that sees one direction only never sees a SYN-ACK, so there no
// ACK completes anything.
type handshakes struct {
	seed  uint64
	slots []handshake
}

type handshake struct {
	tag  uint64 // the connection's hash; 0 for an empty slot
	macs uint64 // the SYN's macPair
	// clientNext is X+1; serverNext is Y+1 once the SYN-ACK was seen, 0
	// before.
	clientNext, serverNext uint32
}

func (h *handshakes) slot(tag uint64) *handshake {
	return &h.slots[tag&(handshakeSlots-1)]
}

// syn records a client's SYN and reports whether it retransmits one
// recorded already (same connection and sequence number, not yet
// answered).
func (h *handshakes) syn(p *Packet) (retransmit bool) {
	if h.slots == nil {
		h.seed = rand.Uint64()
		h.slots = make([]handshake, handshakeSlots)
	}
	tag := connHash(h.seed, p.Src, p.Dst, p.SrcPort, p.DstPort)
	s := h.slot(tag)
	macs := macPair(p.SrcMAC, p.DstMAC)
	if s.tag == tag && s.clientNext == p.Seq+1 && s.serverNext == 0 && s.macs == macs {
		return true
	}
	*s = handshake{tag: tag, macs: macs, clientNext: p.Seq + 1}
	return false
}

// synAck records a server's SYN-ACK if it answers a recorded SYN, and
// reports whether it did.
func (h *handshakes) synAck(p *Packet) bool {
	if h.slots == nil {
		return false
	}
	tag := connHash(h.seed, p.Dst, p.Src, p.DstPort, p.SrcPort)
	s := h.slot(tag)
	if s.tag != tag || s.serverNext != 0 || p.Ack != s.clientNext || s.macs != macPair(p.DstMAC, p.SrcMAC) {
		return false
	}
	// Y+1 may wrap to 0; 1 then stands for "answered" and cannot be
	// matched, which costs one handshake in four billion.
	s.serverNext = max(p.Seq+1, 1)
	return true
}

// completes reports whether a client's ACK completes a recorded, answered
// handshake, and forgets the handshake if it does.
func (h *handshakes) completes(p *Packet) bool {
	if h.slots == nil {
		return false
	}
	tag := connHash(h.seed, p.Src, p.Dst, p.SrcPort, p.DstPort)
	s := h.slot(tag)
	if s.tag != tag || s.serverNext == 0 || p.Seq != s.clientNext || p.Ack != s.serverNext || s.macs != macPair(p.SrcMAC, p.DstMAC) {
		return false
	}
	*s = handshake{}
	return true
}

// talkingSlots is the size of the table of talking connection directions.
// A slot is 48 bytes, so the table is 12 MiB.
const talkingSlots = 1 << 18

// talking remembers, for each direction of a TCP connection, when it last
// carried a segment that was not a reset, and between which MAC addresses.
// An ACK belongs to a live connection when the other direction has talked
// within the rate window, back along the same link: the server's SYN-ACK,
// data or ACKs. An ACK flood's segments (Mirai's carry 512 bytes of
// payload, with PSH) belong to no connection: the target answers each with
// a reset, or not at all, and a "reply" the flooder forges carries its own
// MAC address.
//
// A flood inside one real connection (Mirai's STOMP) keeps the connection
// talking: the target answers its segments with duplicate ACKs. It is seen
// by its sequence numbers instead: its segments do not follow on from
// each other (strays, see saw), and the target acknowledges none of them.
// A fast transfer that loses segments has strays too (the gap, then the
// retransmission), but its receiver's acknowledgement number keeps moving
// forward; so a stray counts only when the other direction has not
// acknowledged anything new within the rate window.
//
// A direction displaced by another connection is seen talking again at its
// next segment; in between, an ACK of its connection counts toward a flood
// of its own source and destination, far from any threshold. A sensor that
// sees one direction only sees nothing talking back: there every ACK
// counts, and an upload faster than ACKFloodRate segments a second raises
// ack_flood (raise the rate there).
type talking struct {
	seed  uint64
	slots []talk
}

type talk struct {
	tag    uint64
	macs   uint64
	last   float64
	acked  float64 // when the direction's acknowledgement number last moved forward (0: never seen to)
	next   uint32  // where the direction's data goes on: the furthest end of its segments
	ack    uint32  // the direction's last acknowledgement number
	data   bool    // next is known
	hasAck bool    // ack is known
}

// saw records a TCP segment of p's direction and reports whether it is a
// stray: data that does not start where the direction's data so far
// ended, a retransmission, data past a segment the sensor did not see, or
// a forged segment (a STOMP flood's, whose sequence numbers step by less,
// or more, than their payloads). A sliver is a stray that starts behind
// that end and reaches past it by less than half its length: mostly old
// bytes and a few new ones, which no retransmission sends (it resends
// what was sent) and a STOMP variant stepping by one from the real
// sequence number sends every time, its target acknowledging the one new
// byte of each.
func (c *talking) saw(p *Packet) (stray, sliver bool) {
	if c.slots == nil {
		c.seed = rand.Uint64()
		c.slots = make([]talk, talkingSlots)
	}
	tag := connHash(c.seed, p.Src, p.Dst, p.SrcPort, p.DstPort)
	s := &c.slots[tag&(talkingSlots-1)]
	macs := macPair(p.SrcMAC, p.DstMAC)
	t := talk{tag: tag, macs: macs, last: p.Time}
	if s.tag == tag && s.macs == macs {
		t.acked, t.next, t.ack, t.data, t.hasAck = s.acked, s.next, s.ack, s.data, s.hasAck
	}
	if p.PayloadLen > 0 && p.TCPFlags&FlagSYN == 0 {
		stray = t.data && p.Seq != t.next
		end := p.Seq + uint32(p.PayloadLen)
		ahead := int32(end - t.next)
		sliver = stray && int32(p.Seq-t.next) < 0 && ahead > 0 && int(ahead)*2 < p.PayloadLen
		// The end moves only forward (in sequence space, which wraps):
		// a retransmission is one stray, not two.
		if !t.data || ahead > 0 {
			t.next = end
		}
		t.data = true
	}
	if p.TCPFlags&FlagACK != 0 {
		switch {
		case !t.hasAck:
			t.ack, t.hasAck = p.Ack, true
		case int32(p.Ack-t.ack) > 0: // moved forward (in sequence space)
			t.ack, t.acked = p.Ack, p.Time
		}
	}
	*s = t
	return stray, sliver
}

// answered reports whether the other direction of p's connection has
// talked back along the same link within window seconds, and whether it
// has acknowledged new data within window seconds as well.
func (c *talking) answered(p *Packet, window float64) (talked, acked bool) {
	if c.slots == nil {
		return false, false
	}
	tag := connHash(c.seed, p.Dst, p.Src, p.DstPort, p.SrcPort)
	s := c.slots[tag&(talkingSlots-1)]
	within := func(t float64) bool { return p.Time-t <= window && p.Time >= t-window }
	if s.tag != tag || s.macs != macPair(p.DstMAC, p.SrcMAC) || !within(s.last) {
		return false, false
	}
	return true, s.acked != 0 && within(s.acked)
}
