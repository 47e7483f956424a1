package demofleet

import (
	"bufio"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// WeakService is one deliberately weak service of the demo's weak devices.
type WeakService struct {
	// Addr is where it listens, on a loopback address of its own in the
	// lab's Network, so a scan of that network sees one host per device.
	Addr string
	// Kind is "telnet", "http-basic" or "mqtt-anonymous".
	Kind string
	// DeviceHint says which kind of fleet device the demo gives the
	// address to ("" for an unmanaged device nobody enrolled).
	DeviceHint string
	// MiraiLogin is set on the camera's Telnet, whose password is the
	// first pair Mirai tries (root/xc3511): the demo's bot is that camera.
	MiraiLogin bool
}

// WeakLab runs the services of a few deliberately weak devices on loopback
// addresses, so the demo's scan finds what a real network would show:
// a camera with Telnet and the Mirai password root/xc3511, a camera web
// page with admin/admin, a gateway's MQTT broker that lets anyone in, and
// an unknown device with Telnet that is in nobody's inventory. They only
// listen on 127.0.0.0/8 and run no commands: a login gets a fake shell
// prompt and nothing else.
type WeakLab struct {
	// Network is the /28 of 127.0.0.0/24 that holds every device's
	// address, and nothing of another lab's: what the demo scans.
	Network  string
	Services []WeakService
	closers  []func() error
	wg       sync.WaitGroup
}

// WeakNetwork is the network of the first lab on a host; a lab started
// while another holds it takes the next free /28 of 127.0.0.0/24, so that
// two demos on one host each scan their own devices and only those.
const WeakNetwork = "127.0.0.16/28"

// WeakPorts are the ports the weak devices listen on, in every lab.
const WeakPorts = "23,2323,80,8080,1883,8883"

// weakDevice is one of a lab's devices: its host number in the lab's /28
// (the first lab's Telnet camera is 127.0.0.21), the port of its weak
// service, and how it serves.
type weakDevice struct {
	host       byte
	port       uint16
	kind, hint string
	miraiLogin bool
	serve      func(l *WeakLab, ln net.Listener) (stop func() error, err error)
}

var weakDevices = []weakDevice{
	{5, 2323, "telnet", "camera", true, func(l *WeakLab, ln net.Listener) (func() error, error) {
		return l.serveTelnet(ln, "IPC login: ", "root", "xc3511"), nil
	}},
	{6, 8080, "http-basic", "camera", false, func(l *WeakLab, ln net.Listener) (func() error, error) { return l.serveHTTPBasic(ln), nil }},
	{7, 1883, "mqtt-anonymous", "gateway", false, func(_ *WeakLab, ln net.Listener) (func() error, error) { return startAnonymousMQTT(ln) }},
	{8, 2323, "telnet", "", false, func(l *WeakLab, ln net.Listener) (func() error, error) {
		return l.serveTelnet(ln, "(none) login: ", "admin", "admin"), nil
	}},
}

// StartWeakLab starts the weak services in the first /28 of 127.0.0.0/24,
// from WeakNetwork on, whose addresses and ports are all free. Close stops
// them.
func StartWeakLab(ctx context.Context) (*WeakLab, error) {
	var taken error
	// WeakNetwork is past 127.0.0.0/28, which holds 127.0.0.1, where the
	// demo's own server listens.
	for first := int(netip.MustParsePrefix(WeakNetwork).Addr().As4()[3]); first < 256; first += 16 {
		network := netip.PrefixFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(first)}), 28)
		lns, err := listenWeak(ctx, network)
		if errors.Is(err, syscall.EADDRINUSE) {
			taken = err // another lab's, most likely: try the next block
			continue
		}
		if err != nil {
			return nil, err
		}
		l := &WeakLab{Network: network.String()}
		for i, d := range weakDevices {
			stop, err := d.serve(l, lns[i])
			if err != nil {
				for _, ln := range lns[i:] {
					ln.Close()
				}
				l.Close()
				return nil, fmt.Errorf("weak demo device on %s: %w", lns[i].Addr(), err)
			}
			l.closers = append(l.closers, stop)
			l.Services = append(l.Services, WeakService{Addr: lns[i].Addr().String(), Kind: d.kind, DeviceHint: d.hint, MiraiLogin: d.miraiLogin})
		}
		return l, nil
	}
	return nil, fmt.Errorf("weak demo devices: no /28 of 127.0.0.0/24 from %s on is free: %w", WeakNetwork, taken)
}

// listenWeak listens on every weak device's address in network, or on
// none when one of them fails.
func listenWeak(ctx context.Context, network netip.Prefix) ([]net.Listener, error) {
	var lns []net.Listener
	for _, d := range weakDevices {
		ip := network.Addr().As4()
		ip[3] += d.host
		addr := netip.AddrPortFrom(netip.AddrFrom4(ip), d.port).String()
		ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
		if err != nil {
			for _, ln := range lns {
				ln.Close()
			}
			return nil, fmt.Errorf("weak demo device on %s: %w", addr, err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// Close stops every weak service.
func (l *WeakLab) Close() error {
	var errs []error
	for _, c := range l.closers {
		errs = append(errs, c())
	}
	l.wg.Wait()
	return errors.Join(errs...)
}

// serveTelnet serves a weak Telnet login on ln until it is closed.
func (l *WeakLab) serveTelnet(ln net.Listener, prompt, user, pass string) func() error {
	l.wg.Add(1)
	go func() { defer l.wg.Done(); ServeTelnetLogin(ln, prompt, user, pass) }()
	return ln.Close
}

// ServeTelnetLogin answers every connection on ln like a BusyBox telnetd:
// option negotiation, a login prompt, a password prompt, then a shell
// prompt (and nothing more) for the one right pair. It returns when ln is
// closed. Tests use it as a weak device.
func ServeTelnetLogin(ln net.Listener, prompt, user, pass string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go telnetSession(c, prompt, user, pass)
	}
}

func telnetSession(c net.Conn, prompt, user, pass string) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	// WILL ECHO, WILL SUPPRESS-GO-AHEAD, DO TERMINAL-TYPE.
	c.Write([]byte{255, 251, 1, 255, 251, 3, 255, 253, 24})
	r := bufio.NewReader(c)
	readLine := func() (string, error) {
		var b []byte
		for len(b) < 256 {
			x, err := r.ReadByte()
			if err != nil {
				return "", err
			}
			switch {
			case x == 255: // IAC: skip the command and its option
				cmd, _ := r.ReadByte()
				if cmd >= 251 && cmd <= 254 {
					r.ReadByte()
				}
			case x == '\n':
				return strings.TrimRight(string(b), "\r\x00"), nil
			case x != 0:
				b = append(b, x)
			}
		}
		return string(b), nil
	}
	for range 3 {
		fmt.Fprintf(c, "\r\n%s", prompt)
		u, err := readLine()
		if err != nil {
			return
		}
		fmt.Fprint(c, "Password: ")
		p, err := readLine()
		if err != nil {
			return
		}
		if subtle.ConstantTimeCompare([]byte(u), []byte(user)) == 1 && subtle.ConstantTimeCompare([]byte(p), []byte(pass)) == 1 {
			fmt.Fprint(c, "\r\n\r\nBusyBox v1.19.3 (2017-01-24) built-in shell (ash)\r\n# ")
			readLine()
			return
		}
		time.Sleep(200 * time.Millisecond)
		fmt.Fprint(c, "\r\nLogin incorrect\r\n")
	}
}

// serveHTTPBasic is a camera's web page behind basic auth admin/admin.
func (l *WeakLab) serveHTTPBasic(ln net.Listener) func() error {
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "Boa/0.94.14rc21")
		u, p, ok := r.BasicAuth()
		if !ok || u != "admin" || p != "admin" {
			w.Header().Set("WWW-Authenticate", `Basic realm="IPCamera"`)
			http.Error(w, "401 Unauthorized", http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, "<html><head><title>IPCamera Web</title></head><body>live view</body></html>")
	})}
	l.wg.Add(1)
	go func() { defer l.wg.Done(); srv.Serve(ln) }()
	return srv.Close
}

// startAnonymousMQTT runs an MQTT broker on ln that accepts every client,
// as many gateways ship. On an error ln is left open.
func startAnonymousMQTT(ln net.Listener) (func() error, error) {
	s := mqtt.New(&mqtt.Options{InlineClient: false, Logger: discardLogger()})
	if err := s.AddHook(new(allowEveryone), nil); err != nil {
		return nil, err
	}
	if err := s.AddListener(listeners.NewNet("weak-"+ln.Addr().String(), ln)); err != nil {
		return nil, err
	}
	if err := s.Serve(); err != nil {
		return nil, err
	}
	return s.Close, nil
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// allowEveryone admits every client and every topic: the weakness.
type allowEveryone struct{ mqtt.HookBase }

func (h *allowEveryone) ID() string { return "allow-everyone" }

func (h *allowEveryone) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

func (h *allowEveryone) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool { return true }

func (h *allowEveryone) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool { return true }
