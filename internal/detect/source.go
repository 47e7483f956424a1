package detect

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/fleetward/fleetward/internal/apperr"
)

// ErrFileCorrupt reports that a capture file ended in the middle of a record
// or holds a record that cannot be read. The packets read before it are
// valid; a Reader stops at the first corrupt record.
var ErrFileCorrupt = errors.New("capture file corrupt or truncated")

// packetReader is what pcapgo's pcap and pcapng readers have in common.
type packetReader interface {
	ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	LinkType() layers.LinkType
}

// A Reader reads packets from a pcap or pcapng capture, told apart by the
// file's magic number. It is not safe for concurrent use.
type Reader struct {
	r      packetReader
	closer io.Closer
	blocks *blockWalker // pcapng only
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
		ng, err := pcapgo.NewNgReader(blocks, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			return nil, apperr.InvalidField("capture", "pcapng header: %v", err)
		}
		return &Reader{r: ng, Format: "pcapng", blocks: blocks}, nil
	case le == magicPcapMicro || le == magicPcapNano || be == magicPcapMicro || be == magicPcapNano:
		p, err := pcapgo.NewReader(br)
		if err != nil {
			return nil, apperr.InvalidField("capture", "pcap header: %v", err)
		}
		return &Reader{r: p, Format: "pcap"}, nil
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
	r, err := NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open capture %s: %w", path, err)
	}
	r.closer = f
	return r, nil
}

// LinkType is the link layer of the capture's (first) interface.
func (r *Reader) LinkType() layers.LinkType { return r.r.LinkType() }

// Next returns the next packet's bytes, valid until the following call, and
// its capture info. It returns io.EOF at a clean end of file and an error
// wrapping ErrFileCorrupt when the file is truncated or corrupt.
func (r *Reader) Next() ([]byte, gopacket.CaptureInfo, error) {
	data, ci, err := r.r.ZeroCopyReadPacketData()
	if err != nil {
		if err == io.EOF {
			if r.blocks != nil && !r.blocks.betweenBlocks() {
				return nil, ci, fmt.Errorf("%w: pcapng file ends inside a block", ErrFileCorrupt)
			}
			return nil, ci, io.EOF
		}
		return nil, ci, fmt.Errorf("%w: %v", ErrFileCorrupt, err)
	}
	if ci.Length < len(data) {
		// A wire length below the captured length is corrupt; the captured
		// bytes are the better lower bound.
		ci.Length = len(data)
	}
	return data, ci, nil
}

// Close closes the file opened by OpenFile; it is a no-op for NewReader.
func (r *Reader) Close() error {
	if r.closer == nil {
		return nil
	}
	return r.closer.Close()
}

// blockWalker follows the pcapng block lengths of the bytes pcapgo reads.
// pcapgo reports a file cut inside a block as a clean io.EOF; the walker
// knows whether the file ended between blocks.
type blockWalker struct {
	r         io.Reader
	hdr       [12]byte
	hdrN      int
	remaining uint64
	bigEndian bool
	corrupt   bool
}

func (w *blockWalker) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	w.walk(p[:n])
	return n, err
}

func (w *blockWalker) walk(b []byte) {
	for len(b) > 0 && !w.corrupt {
		if w.remaining > 0 {
			k := min(w.remaining, uint64(len(b)))
			w.remaining -= k
			b = b[k:]
			continue
		}
		// Every block is at least 12 bytes: type, length, and either the
		// byte-order magic (section header) or a body and trailing length.
		k := copy(w.hdr[w.hdrN:], b)
		w.hdrN += k
		b = b[k:]
		if w.hdrN < len(w.hdr) {
			continue
		}
		w.hdrN = 0
		if binary.LittleEndian.Uint32(w.hdr[:4]) == magicPcapng {
			w.bigEndian = binary.BigEndian.Uint32(w.hdr[8:]) == 0x1a2b3c4d
		}
		length := binary.LittleEndian.Uint32(w.hdr[4:])
		if w.bigEndian {
			length = binary.BigEndian.Uint32(w.hdr[4:])
		}
		if length < 12 {
			w.corrupt = true
			return
		}
		w.remaining = uint64(length) - 12
	}
}

// betweenBlocks reports whether everything read so far is whole blocks.
func (w *blockWalker) betweenBlocks() bool {
	return !w.corrupt && w.hdrN == 0 && w.remaining == 0
}
