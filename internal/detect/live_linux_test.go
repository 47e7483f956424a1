package detect

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// TestLiveCaptureOnLoopback captures UDP datagrams the test sends to
// 127.0.0.1 through an AF_PACKET socket on lo and decodes them. It needs
// root (CAP_NET_RAW) and is skipped without it.
func TestLiveCaptureOnLoopback(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("AF_PACKET capture needs root")
	}
	lc, err := OpenInterface("lo")
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	marker := []byte("fleetward-live-capture-test")
	go func() {
		for range 20 {
			conn.WriteToUDP(marker, conn.LocalAddr().(*net.UDPAddr))
			time.Sleep(20 * time.Millisecond)
		}
	}()
	dec := NewDecoder(lc.LinkType())
	dec.PayloadPrefix = MaxPayloadPrefix
	port := uint16(conn.LocalAddr().(*net.UDPAddr).Port)
	deadline := time.Now().Add(5 * time.Second)
	var p Packet
	for time.Now().Before(deadline) {
		data, ci, err := lc.Next()
		if err != nil {
			t.Fatal(err)
		}
		dec.Decode(data, ci, &p)
		if p.DstPort == port && bytes.Equal(p.Payload, marker) {
			if hostString(p.Src) != "127.0.0.1" || p.Time < float64(time.Now().Add(-time.Minute).Unix()) {
				t.Errorf("captured %+v", p)
			}
			break
		}
	}
	if p.DstPort != port {
		t.Fatal("no datagram captured within 5 s")
	}
	if err := lc.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := lc.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("Next after Close: %v, want io.EOF", err)
	}
}

func TestOpenInterfaceNamesAMissingInterface(t *testing.T) {
	_, err := OpenInterface("fw-no-such0")
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("fw-no-such0")) {
		t.Errorf("error %v does not name the interface", err)
	}
}
