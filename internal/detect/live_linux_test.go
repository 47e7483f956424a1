package detect

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
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

// TestLiveCaptureOnAVeth creates a network namespace and a veth pair
// (10.200.77.1 here, 10.200.77.2 inside), sends UDP datagrams to the
// namespace and checks the capture on the host end decodes them. Root only;
// under CI=true as root it must run.
func TestLiveCaptureOnAVeth(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("creating a namespace and capturing need root")
	}
	ipTool, err := exec.LookPath("ip")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ip (iproute2) is required under CI as root")
		}
		t.Skip("no ip tool")
	}
	suffix := strconv.Itoa(os.Getpid() % 100000)
	ns, host, peer := "fwdet-"+suffix, "fwdh"+suffix, "fwdp"+suffix
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(ipTool, args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	run("netns", "add", ns)
	t.Cleanup(func() {
		exec.Command(ipTool, "link", "del", host).Run()
		exec.Command(ipTool, "netns", "del", ns).Run()
	})
	run("link", "add", host, "type", "veth", "peer", "name", peer)
	run("link", "set", peer, "netns", ns)
	run("addr", "add", "10.200.77.1/30", "dev", host)
	run("link", "set", host, "up")
	run("-n", ns, "addr", "add", "10.200.77.2/30", "dev", peer)
	run("-n", ns, "link", "set", peer, "up")
	lc, err := OpenInterface(host)
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	conn, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(10, 200, 77, 2), Port: 9999})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
				conn.Write([]byte("fleetward-veth"))
			}
		}
	}()
	dec := NewDecoder(lc.LinkType())
	var p Packet
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		data, ci, err := lc.Next()
		if err != nil {
			t.Fatal(err)
		}
		dec.Decode(data, ci, &p)
		if p.DstPort == 9999 && hostString(p.Dst) == "10.200.77.2" && hostString(p.Src) == "10.200.77.1" {
			return
		}
	}
	t.Fatal("no datagram to 10.200.77.2:9999 captured on the veth within 5 s")
}
