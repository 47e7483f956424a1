//go:build !linux

package detect

import (
	"errors"
	"fmt"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// LiveCapture is only available on Linux (AF_PACKET).
type LiveCapture struct {
	OnError func(error)
}

// Errors, Reopens and Drops are always 0.
func (c *LiveCapture) Errors() uint64  { return 0 }
func (c *LiveCapture) Reopens() uint64 { return 0 }
func (c *LiveCapture) Drops() uint64   { return 0 }

// OpenInterface returns an error: live capture needs Linux's AF_PACKET.
func OpenInterface(name string, opts LiveOptions) (*LiveCapture, error) {
	return nil, fmt.Errorf("capture on %s: %w", name, errors.ErrUnsupported)
}

// Mode is empty and RingError nil: there is no capture to read.
func (c *LiveCapture) Mode() string     { return "" }
func (c *LiveCapture) RingError() error { return nil }

// LinkType is Ethernet.
func (c *LiveCapture) LinkType() LinkType { return LinkEthernet }

// Next always fails.
func (c *LiveCapture) Next() ([]byte, gopacket.CaptureInfo, error) {
	return nil, gopacket.CaptureInfo{}, errors.ErrUnsupported
}

// Close does nothing.
func (c *LiveCapture) Close() error { return nil }
