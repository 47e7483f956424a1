package detect

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"
)

// The receive ring's default size: 64 blocks of 128 KiB, 8 MiB like the
// receive buffer of the recvfrom path. The kernel hands a block over when
// it is full or when it has held its first frame for ringRetire, so on a
// quiet link every block may carry only a few frames: many small blocks
// let a reader that stalls for up to 64 × 50 ms lose nothing even then,
// where a few large ones would fill after a few retire timeouts. A block
// holds any frame up to 128 KiB, above the 64 KiB of the largest.
const (
	ringBlockSize = 128 << 10
	ringBlocks    = 64
	// ringRetire bounds how long a frame on a quiet link waits in a block
	// that is not yet full before the reader sees it.
	ringRetire = 50 * time.Millisecond
	// ringFrameSize means nothing to TPACKET_V3, which packs frames of any
	// size one after the other in a block, but the kernel requires one
	// that divides the block size and holds a frame header.
	ringFrameSize = 2048
)

// frameLinkAddrOffset is where, in a frame of the ring, the sockaddr_ll
// that says where the frame came from is: after the tpacket3_hdr, aligned
// to TPACKET_ALIGNMENT.
const frameLinkAddrOffset = (unix.SizeofTpacket3Hdr + unix.TPACKET_ALIGNMENT - 1) &^ (unix.TPACKET_ALIGNMENT - 1)

// rxRing reads frames from a TPACKET_V3 receive ring (PACKET_RX_RING): memory
// shared with the kernel, which writes frames into a block and hands it to
// the reader by setting its status to TP_STATUS_USER; the reader reads the
// frames in place and hands the block back (TP_STATUS_KERNEL) once it has
// moved past its last frame. No system call is made while blocks are
// waiting; poll waits when none is. Blocks go round in order, so the reader
// only ever looks at the one after the block it handed back last.
type rxRing struct {
	mem       []byte // the mapping, blocks × blockSize bytes
	blockSize int
	blocks    int
	block     int  // the block being read, or waited for
	open      bool // the block is the reader's: its frames are being read
	next      int  // offset in mem of the block's next frame
	left      int  // frames of the block not yet read
	// detached: Close came while a frame of the ring was still in use, so
	// the mapping was swapped for zero pages; they are unmapped later.
	detached bool
	// vlan: the frames are Ethernet and each has room for a VLAN tag
	// before it (PACKET_RESERVE), where read puts back the tag the kernel
	// took off.
	vlan bool
}

// vlanTagLen is the length of an 802.1Q tag: its type and its TCI.
const vlanTagLen = 4

// newRxRing sets up a TPACKET_V3 receive ring of blocks × blockSize bytes
// (the defaults when 0) on the packet socket fd, which must not be bound
// yet, and maps it. It returns an error naming the step the kernel
// refused; the socket is then in an unknown state and should be closed.
//
// With vlan (Ethernet frames), each frame gets room for a VLAN tag in
// front of it: the kernel takes the tag off a tagged frame before any
// packet socket sees it and reports it beside the frame, and read puts it
// back, as libpcap does, so that the decoder sees the frame as it was on
// the wire.
func newRxRing(fd, blockSize, blocks int, vlan bool) (*rxRing, error) {
	if blockSize == 0 {
		blockSize = ringBlockSize
	}
	if blocks == 0 {
		blocks = ringBlocks
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return nil, fmt.Errorf("PACKET_VERSION TPACKET_V3: %w", err)
	}
	if vlan {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_RESERVE, vlanTagLen); err != nil {
			return nil, fmt.Errorf("PACKET_RESERVE: %w", err)
		}
	}
	frameSize := min(ringFrameSize, blockSize)
	req := unix.TpacketReq3{
		Block_size:     uint32(blockSize),
		Block_nr:       uint32(blocks),
		Frame_size:     uint32(frameSize),
		Frame_nr:       uint32(blockSize / frameSize * blocks),
		Retire_blk_tov: uint32(ringRetire.Milliseconds()),
	}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return nil, fmt.Errorf("PACKET_RX_RING of %d × %d bytes: %w", blocks, blockSize, err)
	}
	mem, err := unix.Mmap(fd, 0, blocks*blockSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap of the %d-byte ring: %w", blocks*blockSize, err)
	}
	return &rxRing{mem: mem, blockSize: blockSize, blocks: blocks, vlan: vlan}, nil
}

func (r *rxRing) mode() string { return CaptureRing }

// blockHeader is the header of block i, where its status and frame count
// are.
func (r *rxRing) blockHeader(i int) *unix.TpacketHdrV1 {
	desc := (*unix.TpacketBlockDesc)(unsafe.Pointer(&r.mem[i*r.blockSize]))
	return (*unix.TpacketHdrV1)(unsafe.Pointer(&desc.Hdr))
}

// read returns the next frame of the ring, waiting up to quietWait for
// one; see frameReader. The frame is read in place: the block holding it is
// handed back to the kernel only by the following read.
func (r *rxRing) read(fd int) ([]byte, gopacket.CaptureInfo, bool, error) {
	for {
		if r.open && r.left == 0 {
			// The caller is done with the block's last frame.
			atomic.StoreUint32(&r.blockHeader(r.block).Block_status, unix.TP_STATUS_KERNEL)
			r.open = false
			r.block = (r.block + 1) % r.blocks
		}
		if !r.open {
			h := r.blockHeader(r.block)
			// The kernel writes the status last, after the frames: once
			// the reader sees TP_STATUS_USER, the block is complete.
			if atomic.LoadUint32(&h.Block_status)&unix.TP_STATUS_USER == 0 {
				if err := waitReadable(fd); err != nil {
					return nil, gopacket.CaptureInfo{}, false, err
				}
				continue
			}
			r.open = true
			r.left = int(h.Num_pkts)
			r.next = r.block*r.blockSize + int(h.Offset_to_first_pkt)
			continue
		}
		at := r.next
		hdr := (*unix.Tpacket3Hdr)(unsafe.Pointer(&r.mem[at]))
		from := (*unix.RawSockaddrLinklayer)(unsafe.Pointer(&r.mem[at+frameLinkAddrOffset]))
		r.next += int(hdr.Next_offset)
		r.left--
		// tp_mac is where the frame starts: its link header on a SOCK_RAW
		// socket; on a SOCK_DGRAM one the kernel sets it to tp_net, the IP
		// header.
		start, end := at+int(hdr.Mac), at+int(hdr.Mac)+int(hdr.Snaplen)
		ci := gopacket.CaptureInfo{
			Timestamp:     time.Unix(int64(hdr.Sec), int64(hdr.Nsec)),
			CaptureLength: int(hdr.Snaplen),
			Length:        int(hdr.Len),
		}
		// The reserved room lies between the sockaddr_ll and the frame.
		if r.vlan && hdr.Status&unix.TP_STATUS_VLAN_VALID != 0 && hdr.Snaplen >= 12 &&
			int(hdr.Mac) >= frameLinkAddrOffset+unix.SizeofSockaddrLinklayer+vlanTagLen {
			tpid := uint16(layers.EthernetTypeDot1Q)
			if hdr.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
				tpid = hdr.Hv1.Vlan_tpid
			}
			start -= vlanTagLen
			copy(r.mem[start:start+12], r.mem[start+vlanTagLen:start+vlanTagLen+12]) // the MAC addresses
			binary.BigEndian.PutUint16(r.mem[start+12:], tpid)
			binary.BigEndian.PutUint16(r.mem[start+14:], uint16(hdr.Hv1.Vlan_tci))
			ci.CaptureLength += vlanTagLen
			ci.Length += vlanTagLen
		}
		return r.mem[start:end:end], ci, from.Pkttype == unix.PACKET_OUTGOING, nil
	}
}

// waitReadable waits up to quietWait for the socket fd to have a block
// ready. It returns errQuiet when none came (or a signal cut the wait
// short), and the socket's pending error when there is one: the link went
// down or the interface went away.
func waitReadable(fd int) error {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, int(quietWait.Milliseconds()))
	switch {
	case errors.Is(err, unix.EINTR) || err == nil && n == 0:
		return errQuiet
	case err != nil:
		return fmt.Errorf("poll: %w", err)
	case fds[0].Revents&unix.POLLERR != 0:
		soErr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			return err
		}
		if soErr != 0 {
			return unix.Errno(soErr)
		}
		// An error poll keeps reporting but the socket does not name:
		// waiting again would spin, so the capture reopens (with backoff).
		return errors.New("poll: the socket reports an error but has none pending")
	}
	return nil
}

// release unmaps the ring, which lets the kernel free it once the socket
// is closed too. When the frame Next returned last may still be in use —
// Close, called from another goroutine while the caller works on it —
// unmapping would make that frame fault: the ring's pages are replaced by
// zero pages instead, which frees the ring all the same and keeps the
// frame readable (as zeros), and a later release unmaps those.
func (r *rxRing) release(frameInUse bool) {
	if r.mem == nil {
		return
	}
	if frameInUse {
		if !r.detached {
			_, err := unix.MmapPtr(-1, 0, unsafe.Pointer(&r.mem[0]), uintptr(len(r.mem)),
				unix.PROT_READ, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED)
			// Should the swap fail, the ring stays mapped until the next
			// release rather than fault under the caller.
			r.detached = err == nil
		}
		return
	}
	unix.Munmap(r.mem)
	r.mem = nil
}
