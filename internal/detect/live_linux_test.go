package detect

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	v := newVeth(t)
	lc, err := OpenInterface(v.host)
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	v.sendUDP(t)
	if !v.captured(t, lc, 5*time.Second) {
		t.Fatal("no datagram to 10.200.77.2:9999 captured on the veth within 5 s")
	}
}

// TestLiveCaptureSurvivesTheInterfaceGoingAway takes the captured veth
// down and up, then deletes it and creates it again under the same name:
// each time the capture reports the failure, reopens the interface and
// decodes the datagrams sent afterwards; Next never returns an error.
func TestLiveCaptureSurvivesTheInterfaceGoingAway(t *testing.T) {
	v := newVeth(t)
	lc, err := OpenInterface(v.host)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var reported []string
	lc.OnError = func(err error) {
		mu.Lock()
		reported = append(reported, err.Error())
		mu.Unlock()
	}
	// One reader for the whole test, as a sensor has: it notes when it
	// last decoded a datagram to the namespace, and what ended it.
	var lastMatch atomic.Int64
	readErr := make(chan error, 1)
	go func() {
		dec := NewDecoder(lc.LinkType())
		var p Packet
		for {
			data, ci, err := lc.Next()
			if err != nil {
				readErr <- err
				return
			}
			dec.Decode(data, ci, &p)
			if p.DstPort == 9999 && hostString(p.Dst) == "10.200.77.2" {
				lastMatch.Store(time.Now().UnixNano())
			}
		}
	}()
	t.Cleanup(func() {
		lc.Close()
		if err := <-readErr; err != io.EOF {
			t.Errorf("Next ended with %v; want io.EOF after Close", err)
		}
	})
	v.sendUDP(t)
	waitFor := func(what string, within time.Duration, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(within); !ok(); time.Sleep(20 * time.Millisecond) {
			select {
			case err := <-readErr:
				t.Fatalf("Next returned %v while waiting for %s", err, what)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s within %v (errors %d, reopens %d)", what, within, lc.Errors(), lc.Reopens())
			}
		}
	}
	capturedSince := func(mark time.Time) func() bool {
		return func() bool { return lastMatch.Load() > mark.UnixNano() }
	}
	waitFor("datagram before the interface went away", 5*time.Second, capturedSince(time.Time{}))

	// Down and up: the socket sees ENETDOWN.
	errs := lc.Errors()
	v.run(t, "link", "set", v.host, "down")
	waitFor("error when the link went down", 5*time.Second, func() bool { return lc.Errors() > errs })
	v.run(t, "link", "set", v.host, "up")
	waitFor("datagram after the link came back up", 10*time.Second, capturedSince(time.Now()))

	// Deleted and created again: a new interface index under the old name.
	errs, reopens := lc.Errors(), lc.Reopens()
	v.run(t, "link", "del", v.host)
	waitFor("error when the interface was deleted", 5*time.Second, func() bool { return lc.Errors() > errs })
	time.Sleep(600 * time.Millisecond) // a reopen or two fails meanwhile
	v.create(t)
	waitFor("datagram after the interface was created again", 15*time.Second, capturedSince(time.Now()))
	if lc.Reopens() == reopens {
		t.Error("the recreated interface was captured without a reopen")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reported) < 2 || !strings.Contains(reported[0], "capture on "+v.host) {
		t.Errorf("OnError heard %q; want failures naming the interface", reported)
	}
}

// veth is a veth pair with one end in a network namespace: 10.200.77.1 on
// host, 10.200.77.2 on the namespace's end.
type veth struct {
	ipTool, ns, host, peer string
}

func newVeth(t *testing.T) *veth {
	t.Helper()
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
	v := &veth{ipTool: ipTool, ns: "fwdet-" + suffix, host: "fwdh" + suffix, peer: "fwdp" + suffix}
	v.run(t, "netns", "add", v.ns)
	t.Cleanup(func() {
		exec.Command(ipTool, "link", "del", v.host).Run()
		exec.Command(ipTool, "netns", "del", v.ns).Run()
	})
	v.create(t)
	return v
}

// create adds the pair, addresses it and brings it up.
func (v *veth) create(t *testing.T) {
	t.Helper()
	v.run(t, "link", "add", v.host, "type", "veth", "peer", "name", v.peer)
	v.run(t, "link", "set", v.peer, "netns", v.ns)
	v.run(t, "addr", "add", "10.200.77.1/30", "dev", v.host)
	v.run(t, "link", "set", v.host, "up")
	v.run(t, "-n", v.ns, "addr", "add", "10.200.77.2/30", "dev", v.peer)
	v.run(t, "-n", v.ns, "link", "set", v.peer, "up")
}

func (v *veth) run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(v.ipTool, args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %v: %v: %s", args, err, out)
	}
}

// sendUDP sends a datagram to 10.200.77.2:9999 every 50 ms until the test
// ends; sends that fail while the interface is away are ignored.
func (v *veth) sendUDP(t *testing.T) {
	conn, err := net.ListenUDP("udp4", nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(done); wg.Wait(); conn.Close() })
	to := &net.UDPAddr{IP: net.IPv4(10, 200, 77, 2), Port: 9999}
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
				conn.WriteToUDP([]byte("fleetward-veth"), to)
			}
		}
	})
}

// captured reads the capture until a datagram from 10.200.77.1 to
// 10.200.77.2:9999 shows or within passes.
func (v *veth) captured(t *testing.T, lc *LiveCapture, within time.Duration) bool {
	t.Helper()
	dec := NewDecoder(lc.LinkType())
	var p Packet
	for deadline := time.Now().Add(within); time.Now().Before(deadline); {
		data, ci, err := lc.Next()
		if err != nil {
			t.Fatal(err)
		}
		dec.Decode(data, ci, &p)
		if p.DstPort == 9999 && hostString(p.Dst) == "10.200.77.2" && hostString(p.Src) == "10.200.77.1" {
			return true
		}
	}
	return false
}
