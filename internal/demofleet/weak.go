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
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// WeakService is one deliberately weak service of the demo's weak devices.
type WeakService struct {
	// Addr is where it listens, on a loopback address of its own so a scan
	// of the loopback range sees one host per device.
	Addr string
	// Kind is "telnet", "http-basic" or "mqtt-anonymous".
	Kind string
	// DeviceHint says which kind of fleet device the demo gives the
	// address to ("" for an unmanaged device nobody enrolled).
	DeviceHint string
}

// WeakLab runs the services of a few deliberately weak devices on loopback
// addresses, so the demo's scan finds what a real network would show:
// a camera with Telnet and the Mirai password root/xc3511, a camera web
// page with admin/admin, a gateway's MQTT broker that lets anyone in, and
// an unknown device with Telnet that is in nobody's inventory. They only
// listen on 127.0.0.0/8 and run no commands: a login gets a fake shell
// prompt and nothing else.
type WeakLab struct {
	Services []WeakService
	closers  []func() error
	wg       sync.WaitGroup
}

// The demo's weak devices, on 127.0.0.0/8 addresses of their own.
const (
	WeakCameraTelnet = "127.0.0.21:2323"
	WeakCameraHTTP   = "127.0.0.22:8080"
	WeakGatewayMQTT  = "127.0.0.23:1883"
	WeakRogueTelnet  = "127.0.0.24:2323"
	// WeakNetwork covers every weak device's address.
	WeakNetwork = "127.0.0.16/28"
	// WeakPorts are the ports the weak devices listen on.
	WeakPorts = "23,2323,80,8080,1883,8883"
)

// StartWeakLab starts the weak services. Close stops them.
func StartWeakLab(ctx context.Context) (*WeakLab, error) {
	l := &WeakLab{}
	for _, s := range []struct {
		addr, kind, hint string
		start            func(net.Listener) func() error
	}{
		{WeakCameraTelnet, "telnet", "camera", func(ln net.Listener) func() error { return l.serveTelnet(ln, "IPC login: ", "root", "xc3511") }},
		{WeakCameraHTTP, "http-basic", "camera", l.serveHTTPBasic},
		{WeakGatewayMQTT, "mqtt-anonymous", "gateway", nil},
		{WeakRogueTelnet, "telnet", "", func(ln net.Listener) func() error { return l.serveTelnet(ln, "(none) login: ", "admin", "admin") }},
	} {
		if s.kind == "mqtt-anonymous" {
			stop, err := startAnonymousMQTT(s.addr)
			if err != nil {
				l.Close()
				return nil, err
			}
			l.closers = append(l.closers, stop)
		} else {
			ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", s.addr)
			if err != nil {
				l.Close()
				return nil, fmt.Errorf("weak demo device on %s: %w", s.addr, err)
			}
			l.closers = append(l.closers, s.start(ln))
		}
		l.Services = append(l.Services, WeakService{Addr: s.addr, Kind: s.kind, DeviceHint: s.hint})
	}
	return l, nil
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

// startAnonymousMQTT runs an MQTT broker that accepts every client, as
// many gateways ship.
func startAnonymousMQTT(addr string) (func() error, error) {
	s := mqtt.New(&mqtt.Options{InlineClient: false, Logger: discardLogger()})
	if err := s.AddHook(new(allowEveryone), nil); err != nil {
		return nil, err
	}
	if err := s.AddListener(listeners.NewTCP(listeners.Config{ID: "weak-" + addr, Address: addr})); err != nil {
		return nil, fmt.Errorf("weak demo device on %s: %w", addr, err)
	}
	if err := s.Serve(); err != nil {
		return nil, fmt.Errorf("weak demo device on %s: %w", addr, err)
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
