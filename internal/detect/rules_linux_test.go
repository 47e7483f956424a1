package detect

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fleetward/fleetward/internal/alert"
)

// TestRulesOnRealKernelTraffic runs the packet rules over a live capture
// on the host end of a veth while real kernels talk across it: a server in
// a network namespace (10.200.77.2) and clients here (10.200.77.1). The
// flood packets are written to raw sockets as Mirai writes them; the
// target's answers are its kernel's own. Root only; under CI=true as root
// it must run.
func TestRulesOnRealKernelTraffic(t *testing.T) {
	v := newVeth(t)
	n := &netns{ipTool: v.ipTool, name: v.ns}
	server := serveInNamespace(t, n)
	target := net.IPv4(10, 200, 77, 2).To4()
	// The floods below go as fast as this host sends, which a CI machine
	// running other packages' tests at once may slow to a few thousand
	// packets a second: the rates are a third of the defaults.
	rules := Rules{ACKFloodRate: 1000, IPFloodRate: 1000, HTTPFloodRate: 70}

	t.Run("Mirai's STOMP flood inside a real connection, answered by the target's duplicate ACKs, is an ACK flood", func(t *testing.T) {
		sigs, frames := rulesWhile(t, v, rules, func() {
			conn, err := net.Dial("tcp4", server.String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			local := conn.LocalAddr().(*net.TCPAddr)
			sendRaw(t, unix.IPPROTO_TCP, target, 6000, func(i int) []byte {
				// Sequence numbers stepping by one under 768-byte payloads,
				// the acknowledgement a constant: Mirai's stomp loop.
				return tcpSegment(local.IP.To4(), target, uint16(local.Port), uint16(server.port()), 0x12340000+uint32(i), 0x5678, 768)
			})
		})
		if replies := frames.from(target); replies < 1000 {
			t.Errorf("the target answered %d times; the test wants its kernel's duplicate ACKs to keep the connection talking", replies)
		}
		wantOnly(t, sigs, "ack_flood", "10.200.77.1")
	})

	t.Run("Mirai's GRE flood from a raw socket is an IP flood", func(t *testing.T) {
		sigs, _ := rulesWhile(t, v, rules, func() {
			sendRaw(t, unix.IPPROTO_GRE, target, 6000, func(i int) []byte { return greIPPayload(net.IPv4(10, 200, 77, 1).To4(), target, i, 512) })
		})
		wantOnly(t, sigs, "ip_flood", "10.200.77.1")
	})

	t.Run("1,500 HTTP requests over kept-alive connections as fast as the server answers are an HTTP flood", func(t *testing.T) {
		sigs, _ := rulesWhile(t, v, rules, func() {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			defer client.CloseIdleConnections()
			for range 1500 {
				resp, err := client.Get("http://" + server.String() + "/")
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
		wantOnly(t, sigs, "http_flood", "10.200.77.1")
	})

	t.Run("a fast download losing 2% of its segments to nft is no ACK flood, even at a rate of 20", func(t *testing.T) {
		nft, err := exec.LookPath("nft")
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("nft (nftables) is required under CI as root")
			}
			t.Skip("no nft")
		}
		ruleset := fmt.Sprintf("table inet fwloss { chain out { type filter hook output priority 0; tcp sport %d numgen random mod 50 == 0 drop; }; }", server.port())
		if out, err := exec.Command(v.ipTool, "netns", "exec", v.ns, nft, ruleset).CombinedOutput(); err != nil {
			t.Fatalf("nft: %v: %s", err, out)
		}
		defer exec.Command(v.ipTool, "netns", "exec", v.ns, nft, "delete table inet fwloss").Run()
		// Segments of one MSS each, as on a wire, not 64 KiB GSO bursts: a
		// loss is then one segment, and the strays come by the thousand.
		v.run(t, "-n", v.ns, "link", "set", v.peer, "gso_max_segs", "1")
		sigs, frames := rulesWhile(t, v, Rules{ACKFloodRate: 20}, func() {
			resp, err := http.Get("http://" + server.String() + "/download")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if n, err := io.Copy(io.Discard, resp.Body); err != nil || n != downloadSize {
				t.Fatalf("downloaded %d bytes (%v), want %d", n, err, downloadSize)
			}
		})
		if frames.from(target) < 500 {
			t.Errorf("only %d frames of the download captured", frames.from(target))
		}
		for _, s := range sigs {
			t.Errorf("unexpected signal %s from %s: %s", s.Behaviour, s.SrcIP, s.Explanation)
		}
	})
}

// downloadSize is what the namespace's server sends for /download.
const downloadSize = 64 << 20

// serverAddr is the namespace's HTTP server.
type serverAddr struct{ *net.TCPAddr }

func (a serverAddr) port() int { return a.Port }

// serveInNamespace starts an HTTP server listening in the namespace: "/"
// answers "hello", "/download" sends downloadSize bytes.
func serveInNamespace(t *testing.T, n *netns) serverAddr {
	t.Helper()
	var ln net.Listener
	n.join(t, func() (err error) {
		ln, err = net.Listen("tcp4", "10.200.77.2:0")
		return err
	})
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello") })
	chunk := make([]byte, 1<<20)
	mux.HandleFunc("/download", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(downloadSize))
		for range downloadSize / len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return serverAddr{ln.Addr().(*net.TCPAddr)}
}

// capturedFrames counts the frames a capture decoded, by source.
type capturedFrames struct {
	mu  sync.Mutex
	src map[Host]int
}

func (c *capturedFrames) from(ip net.IP) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.src[hostIPv4(ip)]
}

// rulesWhile captures on the veth's host end while traffic runs, applying
// rules r to every frame, and returns the signals and what was captured.
func rulesWhile(t *testing.T, v *veth, r Rules, traffic func()) ([]alert.Signal, *capturedFrames) {
	t.Helper()
	lc, err := OpenInterface(v.host, LiveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	det := NewRuleDetector(r)
	dec := NewDecoder(lc.LinkType())
	dec.PayloadPrefix = det.PayloadPrefix()
	frames := &capturedFrames{src: map[Host]int{}}
	var sigs []alert.Signal
	done := make(chan error, 1)
	go func() {
		var p Packet
		for {
			data, ci, err := lc.Next()
			if err != nil {
				done <- err
				return
			}
			dec.Decode(data, ci, &p)
			frames.mu.Lock()
			frames.src[p.Src]++
			frames.mu.Unlock()
			sigs = det.Observe(&p, sigs)
		}
	}()
	traffic()
	time.Sleep(300 * time.Millisecond) // the last frames reach the ring
	lc.Close()
	if err := <-done; !errors.Is(err, io.EOF) {
		t.Fatalf("capture ended with %v", err)
	}
	if drops := lc.Drops(); drops > 0 {
		t.Logf("the kernel dropped %d frames of the capture", drops)
	}
	return sigs, frames
}

// wantOnly fails the test unless the signals are one of behaviour, from
// src.
func wantOnly(t *testing.T, sigs []alert.Signal, behaviour, src string) {
	t.Helper()
	var got []string
	for _, s := range sigs {
		got = append(got, s.Behaviour+" from "+s.SrcIP+": "+s.Explanation)
	}
	if len(sigs) != 1 || sigs[0].Behaviour != behaviour || sigs[0].SrcIP != src {
		t.Fatalf("want one %s from %s, got %d:\n%s", behaviour, src, len(sigs), strings.Join(got, "\n"))
	}
}

// sendRaw writes n packets of IP protocol proto to dst from a raw socket,
// the kernel writing the IP header.
func sendRaw(t *testing.T, proto int, dst net.IP, n int, packet func(i int) []byte) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, proto)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	to := &unix.SockaddrInet4{}
	copy(to.Addr[:], dst)
	for i := range n {
		if err := unix.Sendto(fd, packet(i), 0, to); err != nil {
			t.Fatal(err)
		}
	}
}

// tcpSegment is a PSH-ACK TCP segment with size bytes of payload and its
// checksum.
func tcpSegment(src, dst net.IP, sport, dport uint16, seq, ack uint32, size int) []byte {
	b := make([]byte, 20+size)
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint32(b[4:], seq)
	binary.BigEndian.PutUint32(b[8:], ack)
	b[12], b[13] = 5<<4, FlagPSH|FlagACK
	binary.BigEndian.PutUint16(b[14:], 64240)
	for i := range size {
		b[20+i] = byte(i * 31)
	}
	pseudo := append(append(append([]byte{}, src...), dst...), 0, 6, byte(len(b)>>8), byte(len(b)))
	binary.BigEndian.PutUint16(b[16:], internetChecksum(append(pseudo, b...)))
	return b
}

// greIPPayload is the GRE part of a Mirai greip packet: a GRE header
// carrying an IPv4 packet with a UDP datagram of size bytes to a random
// port.
func greIPPayload(src, dst net.IP, i, size int) []byte {
	b := make([]byte, 4+20+8+size)
	binary.BigEndian.PutUint16(b[2:], 0x0800)
	ip := b[4:]
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+size))
	binary.BigEndian.PutUint16(ip[4:], uint16(i))
	copy(ip[12:], src)
	copy(ip[16:], dst)
	binary.BigEndian.PutUint16(ip[10:], internetChecksum(ip[:20]))
	udp := ip[20:]
	binary.BigEndian.PutUint16(udp[0:], uint16(1024+i%5000))
	binary.BigEndian.PutUint16(udp[2:], uint16(7+i%60000))
	binary.BigEndian.PutUint16(udp[4:], uint16(8+size))
	return b
}

// internetChecksum is RFC 1071's checksum.
func internetChecksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
