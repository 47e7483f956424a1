package detect

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/fleetward/fleetward/internal/apperr"
)

// ErrFileCorrupt reports that a capture file ended in the middle of a record
// or holds a record that cannot be read. The packets read before it are
// valid; a Reader stops at the first corrupt record.
var ErrFileCorrupt = errors.New("capture file corrupt or truncated")

// packetReader is what pcapgo's pcap and pcapng readers have in common
// that a Reader uses.
type packetReader interface {
	ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error)
}

// A Reader reads packets from a pcap or pcapng capture, told apart by the
// file's magic number. It is not safe for concurrent use.
type Reader struct {
	r      packetReader
	ng     *pcapgo.NgReader // pcapng only
	closer io.Closer
	blocks *blockWalker // pcapng only
	link   LinkType     // pcap only: pcapgo's keeps one byte of it
	ancil  [1]any       // the AncillaryData of the frame Next returned
	broken error        // set once pcapgo has panicked: its state is lost
	size   int64        // of the file, 0 if unknown
	// good is where the last record read whole ends, in a pcap file.
	good int64
	// Format is "pcap" or "pcapng".
	Format string
}

// Magic numbers of the two capture formats (both byte orders for pcap,
// microsecond and nanosecond resolution).
const (
	magicPcapMicro = 0xa1b2c3d4
	magicPcapNano  = 0xa1b23c4d
	magicPcapng    = 0x0a0d0d0a
)

// maxSnapLen is the largest snap length a pcap file may claim; a packet
// captured longer is a corrupt record. It is tcpdump's default.
const maxSnapLen = 262144

// NewReader starts reading a capture from r. It returns an Invalid error
// naming the field "capture" when r holds neither a pcap nor a pcapng header,
// or when the header itself is unreadable.
func NewReader(r io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	head, err := br.Peek(4)
	if err != nil {
		return nil, apperr.InvalidField("capture", "too short to be a pcap or pcapng file")
	}
	le, be := binary.LittleEndian.Uint32(head), binary.BigEndian.Uint32(head)
	switch {
	case le == magicPcapng:
		blocks := &blockWalker{r: br}
		// pcapgo's default reads only the packets of interfaces with the
		// first one's link type and drops the others silently; mixed,
		// every packet comes with its interface's link type (Next).
		ng, err := guard(func() (*pcapgo.NgReader, error) {
			return pcapgo.NewNgReader(blocks, pcapgo.NgReaderOptions{WantMixedLinkType: true})
		})
		if err != nil {
			return nil, apperr.InvalidField("capture", "pcapng header: %v", err)
		}
		return &Reader{r: ng, ng: ng, Format: "pcapng", blocks: blocks}, nil
	case le == magicPcapMicro || le == magicPcapNano || be == magicPcapMicro || be == magicPcapNano:
		// pcapgo allocates a packet buffer of the header's snap length, up
		// to 4 GiB; cap it so that a hostile header cannot exhaust memory.
		var hdr [24]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return nil, apperr.InvalidField("capture", "pcap header is cut short")
		}
		order := binary.ByteOrder(binary.LittleEndian)
		if be == magicPcapMicro || be == magicPcapNano {
			order = binary.BigEndian
		}
		if order.Uint32(hdr[16:]) > maxSnapLen {
			order.PutUint32(hdr[16:], maxSnapLen)
		}
		p, err := pcapgo.NewReader(io.MultiReader(bytes.NewReader(hdr[:]), br))
		if err != nil {
			return nil, apperr.InvalidField("capture", "pcap header: %v", err)
		}
		return &Reader{r: p, Format: "pcap", good: int64(len(hdr)), link: linkTypeField(order.Uint32(hdr[20:]))}, nil
	default:
		return nil, apperr.InvalidField("capture", "unknown magic number %#08x: not a pcap or pcapng file", le)
	}
}

// OpenFile opens a pcap or pcapng file. Close the Reader when done.
func OpenFile(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open capture %s: %w", path, err)
	}
	if st, err := f.Stat(); err == nil && st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("open capture %s: %w", path, apperr.InvalidField("capture", "a directory, not a pcap or pcapng file"))
	}
	r, err := NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open capture %s: %w", path, err)
	}
	r.closer = f
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		r.size = st.Size()
	}
	return r, nil
}

// PacketsHint estimates how many packets the file holds, from its size
// and a small packet (64 bytes with its record header), capped at
// maxPacketsHint; 0 if the size is unknown. ScoreCapture sizes its
// per-packet results by it rather than growing them a doubling at a time,
// each growth a copy into memory never touched before.
func (r *Reader) PacketsHint() int { return int(min(r.size/64, maxPacketsHint)) }

// maxPacketsHint caps PacketsHint: beyond it the results grow as they go.
const maxPacketsHint = 1 << 22

// LinkType is the link layer of a pcap file's frames. A pcapng file's
// interfaces may each have their own, and each frame names its
// interface's (Next); LinkType is then the first interface's, or Ethernet
// before any interface has been read.
func (r *Reader) LinkType() LinkType {
	if r.ng == nil {
		return r.link
	}
	if first, err := r.ng.Interface(0); err == nil {
		return r.interfaceLink(0, first.LinkType)
	}
	return LinkEthernet
}

// interfaceLink is the link type of the pcapng interface i, as its
// description gives it (the walker's), unless pcapgo's record of it
// (short, one byte) disagrees in the byte they share.
func (r *Reader) interfaceLink(i int, short layers.LinkType) LinkType {
	if links := r.blocks.links; i < len(links) && uint8(links[i]) == uint8(short) {
		return links[i]
	}
	return LinkType(short)
}

// Next returns the next packet's bytes, valid until the following call, and
// its capture info. In a pcapng file the capture info's AncillaryData[0]
// is the link type of the packet's interface (a LinkType, which a Decoder
// follows), also valid until the following call. It returns io.EOF
// at a clean end of file and an error wrapping ErrFileCorrupt when the file
// is truncated or corrupt.
func (r *Reader) Next() ([]byte, gopacket.CaptureInfo, error) {
	if r.broken != nil {
		return nil, gopacket.CaptureInfo{}, r.broken
	}
	var ci gopacket.CaptureInfo
	data, err := guard(func() ([]byte, error) {
		var err error
		var d []byte
		d, ci, err = r.r.ZeroCopyReadPacketData()
		return d, err
	})
	if errors.Is(err, errReaderPanicked) {
		r.broken = fmt.Errorf("%w%s: %v", ErrFileCorrupt, r.where(), err)
		return nil, ci, r.broken
	}
	if err != nil {
		if err == io.EOF {
			if r.blocks != nil && !r.blocks.betweenBlocks() {
				return nil, ci, fmt.Errorf("%w: pcapng file ends inside a block", ErrFileCorrupt)
			}
			return nil, ci, io.EOF
		}
		return nil, ci, fmt.Errorf("%w%s: %v", ErrFileCorrupt, r.where(), err)
	}
	r.good += 16 + int64(len(data)) // a pcap record header and its bytes
	if r.ng != nil && len(ci.AncillaryData) > 0 {
		if short, ok := ci.AncillaryData[0].(layers.LinkType); ok {
			r.ancil[0] = r.interfaceLink(ci.InterfaceIndex, short)
			ci.AncillaryData = r.ancil[:]
		}
	}
	if ci.Length < len(data) {
		// A wire length below the captured length is corrupt; the captured
		// bytes are the better lower bound.
		ci.Length = len(data)
	}
	return data, ci, nil
}

// where says where in a pcap file the corrupt record is: " at byte N of
// M (the K bytes from there on unread)", or "" when that is not known (pcapng,
// whose reader reads ahead).
func (r *Reader) where() string {
	switch {
	case r.Format != "pcap":
		return ""
	case r.size > r.good:
		return fmt.Sprintf(" at byte %d of %d (the %d bytes from there on unread)", r.good, r.size, r.size-r.good)
	}
	return fmt.Sprintf(" at byte %d", r.good)
}

// Close closes the file opened by OpenFile; it is a no-op for NewReader.
func (r *Reader) Close() error {
	if r.closer == nil {
		return nil
	}
	return r.closer.Close()
}

// blockWalker follows the pcapng block lengths of the bytes pcapgo reads,
// and guards pcapgo against the two fields it trusts for allocations:
//
//   - pcapgo reports a file cut inside a block as a clean io.EOF; the walker
//     knows whether the file ended between blocks.
//   - pcapgo allocates a packet buffer of the interface's snap length and of
//     the packet's captured length, both up to 4 GiB from the file. The
//     walker zeroes the snap length of interface descriptions (zero means
//     "no limit", so buffers follow the captured lengths) and fails the read
//     of any packet block whose captured length exceeds its block or
//     maxSnapLen. It checks a block's first bytes before passing any of them
//     on, and never passes on more than one block in a read: pcapgo reads
//     through a buffer of its own, which would hand over the bytes of a
//     failed read (and allocate for them) before the failure.
//
// It also keeps the link types of the section's interfaces, all 16 bits
// of them (pcapgo keeps one byte). Passing on one block at a time, it has
// seen a packet's interface description by the time pcapgo returns the
// packet, and no description after it.
type blockWalker struct {
	r         *bufio.Reader
	prefix    [24]byte // the block's first bytes: type, length, body start
	off       uint64   // offset within the current block
	length    uint64   // the current block's total length, once known
	typ       uint32
	bigEndian bool
	corrupt   bool
	probing   bool       // walking a copy of bytes not yet passed on
	links     []LinkType // of the current section's interfaces, in order
}

// pcapng block types the walker looks into.
const (
	blockInterfaceDescription = 1
	blockObsoletePacket       = 2
	blockSimplePacket         = 3
	blockEnhancedPacket       = 6
)

func (w *blockWalker) Read(p []byte) (int, error) {
	if w.off == 0 && !w.corrupt {
		head, _ := w.r.Peek(len(w.prefix)) // shorter at the end: pcapgo meets it
		probe := *w
		probe.probing = true
		probe.walk(slices.Clone(head))
		w.corrupt, w.typ = probe.corrupt, probe.typ
		if probe.off >= 12 {
			p = p[:min(uint64(len(p)), probe.length)]
		}
	} else if w.off >= 12 {
		p = p[:min(uint64(len(p)), w.length-w.off)]
	}
	if w.corrupt {
		return 0, w.corruption()
	}
	n, err := w.r.Read(p)
	w.walk(p[:n])
	if w.corrupt {
		return n, w.corruption()
	}
	return n, err
}

// corruption says what is wrong with the block the walker refused.
func (w *blockWalker) corruption() error {
	if w.typ == blockInterfaceDescription && len(w.links) == maxInterfaces {
		return fmt.Errorf("pcapng section describes more than %d interfaces", maxInterfaces)
	}
	return fmt.Errorf("pcapng block of type %#x has impossible lengths", w.typ)
}

func (w *blockWalker) uint32At(i int) uint32 {
	if w.bigEndian {
		return binary.BigEndian.Uint32(w.prefix[i:])
	}
	return binary.LittleEndian.Uint32(w.prefix[i:])
}

func (w *blockWalker) walk(b []byte) {
	for len(b) > 0 && !w.corrupt {
		if w.off >= 12 && (w.off >= uint64(len(w.prefix)) || w.off >= w.length) {
			k := min(w.length-w.off, uint64(len(b)))
			w.off += k
			b = b[k:]
			if w.off == w.length {
				w.off = 0
			}
			continue
		}
		if w.off >= 12 && w.off < 16 && w.typ == blockInterfaceDescription {
			b[0] = 0 // snap length: see the type's comment
		}
		w.prefix[w.off] = b[0]
		w.off++
		b = b[1:]
		switch {
		case w.off == 12:
			w.typ = binary.LittleEndian.Uint32(w.prefix[:4])
			if w.typ == magicPcapng {
				w.bigEndian = binary.BigEndian.Uint32(w.prefix[8:]) == 0x1a2b3c4d
			} else if w.bigEndian {
				w.typ = binary.BigEndian.Uint32(w.prefix[:4])
			}
			w.length = uint64(w.uint32At(4))
			switch {
			case w.probing:
			case w.typ == magicPcapng:
				w.links = w.links[:0]
			case w.typ == blockInterfaceDescription && len(w.links) == maxInterfaces:
				// pcapgo keeps a large record of each interface: two
				// million descriptions took 1.6 GB.
				w.corrupt = true
			case w.typ == blockInterfaceDescription:
				link := binary.LittleEndian.Uint16(w.prefix[8:])
				if w.bigEndian {
					link = binary.BigEndian.Uint16(w.prefix[8:])
				}
				w.links = append(w.links, LinkType(link))
			}
			// pcapgo reads a block's fixed fields whatever its length says:
			// from a shorter block, it would read the next one's bytes as a
			// captured length.
			if w.length < minBlockLength(w.typ) {
				w.corrupt = true
			}
			if w.typ == blockSimplePacket && w.length > maxSnapLen+16 {
				w.corrupt = true
			}
		case w.off == 24 && (w.typ == blockEnhancedPacket || w.typ == blockObsoletePacket):
			if capLen := uint64(w.uint32At(20)); w.length < 32 || capLen > w.length-32 || capLen > maxSnapLen {
				w.corrupt = true
			}
		}
		if w.off >= 12 && w.off == w.length {
			w.off = 0
		}
	}
}

// maxInterfaces is the most interface descriptions a pcapng section may
// have: a capture has one per interface it was taken on.
const maxInterfaces = 4096

// minBlockLength is the least total length of a pcapng block of type typ
// that holds the fixed fields pcapgo reads from it.
func minBlockLength(typ uint32) uint64 {
	switch typ {
	case blockEnhancedPacket, blockObsoletePacket:
		return 32
	case blockInterfaceDescription:
		return 20
	case blockSimplePacket:
		return 16
	}
	return 12
}

// betweenBlocks reports whether everything read so far is whole blocks.
func (w *blockWalker) betweenBlocks() bool {
	return !w.corrupt && w.off == 0
}

var errReaderPanicked = errors.New("capture reader failed")

// guard runs a pcapgo call and turns a panic into an error. pcapgo v1.1.19
// panics on some corrupt pcapng fields (a timestamp resolution of 10^20
// divides by zero), and a bad file must never crash fleetward; the fuzz
// test found it, and testdata keeps the input.
func guard[T any](f func() (T, error)) (v T, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", errReaderPanicked, p)
		}
	}()
	return f()
}
