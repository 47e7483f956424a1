package scan

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/apperr"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// serveTCP starts a listener on 127.0.0.1 that runs handle on each
// connection, and returns its port.
func serveTCP(t *testing.T, handle func(net.Conn)) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				handle(c)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

func portOf(t *testing.T, rawURL string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(strings.TrimPrefix(strings.TrimPrefix(rawURL, "https://"), "http://"))
	if err != nil {
		t.Fatalf("server URL %q: %v", rawURL, err)
	}
	var n int
	fmt.Sscan(p, &n)
	return n
}

func TestScanIdentifiesServicesOnLoopback(t *testing.T) {
	var telnetReplies atomic.Value
	telnetPort := serveTCP(t, func(c net.Conn) {
		// IAC DO ECHO, IAC WILL SGA, IAC DO NAWS, then a greeting and prompt.
		c.Write([]byte{255, 253, 1, 255, 251, 3, 255, 253, 31})
		reply := make([]byte, 9)
		if _, err := io.ReadFull(c, reply); err == nil {
			telnetReplies.Store(reply)
		}
		c.Write([]byte("\r\nBusyBox on camera\r\nlogin: "))
		io.Copy(io.Discard, c)
	})
	sshPort := serveTCP(t, func(c net.Conn) {
		c.Write([]byte("SSH-2.0-dropbear_2022.83\r\n"))
		io.Copy(io.Discard, c)
	})
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "Boa/0.94.14rc21")
		w.Header().Set("WWW-Authenticate", `Basic realm="IPCamera"`)
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, "<html><head><TITLE>Network  Camera &amp; NVR</TITLE></head></html>")
	}))
	t.Cleanup(web.Close)
	tlsWeb := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<title>Router admin</title>")
	}))
	t.Cleanup(tlsWeb.Close)

	ports := []int{telnetPort, sshPort, portOf(t, web.URL), portOf(t, tlsWeb.URL)}
	mqttUp := false
	if c, err := net.DialTimeout("tcp", "127.0.0.1:1883", time.Second); err == nil {
		c.Close()
		mqttUp = true
		ports = append(ports, 1883)
	} else if os.Getenv("CI") == "true" {
		t.Fatalf("mosquitto is not reachable on 127.0.0.1:1883: %v", err)
	}

	var progressCalls, lastDone, lastTotal uint64
	res, err := Scan(context.Background(), []netip.Addr{loopback}, Options{
		Ports: ports, ReadTimeout: time.Second,
		Progress: func(done, total uint64) { progressCalls++; lastDone, lastTotal = done, total },
	})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if lastDone != uint64(len(ports)) || lastTotal != uint64(len(ports)) || progressCalls != uint64(len(ports)) {
		t.Errorf("progress: %d calls, last %d/%d; want %d calls ending %d/%d", progressCalls, lastDone, lastTotal, len(ports), len(ports), len(ports))
	}
	if len(res.Hosts) != 1 || res.Hosts[0].Addr != loopback {
		t.Fatalf("hosts = %+v, want 127.0.0.1 only", res.Hosts)
	}
	got := map[int]Port{}
	for _, p := range res.Hosts[0].Ports {
		got[p.Number] = p
	}
	want := func(port int, service string, plaintext bool, details map[string]string, bannerHas string) {
		t.Helper()
		p, ok := got[port]
		if !ok {
			t.Errorf("port %d (%s) not reported open", port, service)
			return
		}
		if p.Service != service || p.Plaintext != plaintext || p.State != StateOpen || p.Proto != "tcp" {
			t.Errorf("port %d: service %q plaintext %v state %q proto %q; want %q %v open tcp", port, p.Service, p.Plaintext, p.State, p.Proto, service, plaintext)
		}
		for k, v := range details {
			if p.Details[k] != v {
				t.Errorf("port %d: details[%q] = %q, want %q (all: %v)", port, k, p.Details[k], v, p.Details)
			}
		}
		if !strings.Contains(p.Banner, bannerHas) {
			t.Errorf("port %d: banner %q does not contain %q", port, p.Banner, bannerHas)
		}
	}
	want(telnetPort, "telnet", true, map[string]string{"prompt": "login:", "telnet_options": "DO ECHO, WILL SGA, DO NAWS"}, "BusyBox on camera login:")
	want(sshPort, "ssh", false, map[string]string{"ssh_protocol": "2.0", "ssh_software": "dropbear_2022.83"}, "SSH-2.0-dropbear_2022.83")
	want(portOf(t, web.URL), "http", true, map[string]string{"status": "401", "server": "Boa/0.94.14rc21", "realm": "IPCamera", "auth_scheme": "Basic", "title": "Network Camera & NVR"}, `realm "IPCamera"`)
	cert := tlsWeb.Certificate()
	want(portOf(t, tlsWeb.URL), "https", false, map[string]string{"status": "200", "title": "Router admin",
		"tls_subject": cert.Subject.String(), "tls_issuer": cert.Issuer.String(), "tls_not_after": cert.NotAfter.UTC().Format(time.RFC3339)}, "HTTP/1.0 200")
	if r, _ := telnetReplies.Load().([]byte); string(r) != string([]byte{255, 252, 1, 255, 254, 3, 255, 252, 31}) {
		t.Errorf("telnet replies = %v, want WONT ECHO, DONT SGA, WONT NAWS", r)
	}
	if mqttUp {
		want(1883, "mqtt", true, map[string]string{"anonymous": "accepted", "connack_code": "0"}, "anonymous connect accepted")
		if !got[1883].AnonymousMQTT() {
			t.Error("AnonymousMQTT() = false for mosquitto accepting anonymous clients")
		}
	} else {
		t.Log("skipping the MQTT check: mosquitto is not reachable on 127.0.0.1:1883")
	}
	if len(res.NotProbed) != 0 {
		t.Errorf("NotProbed = %+v, want none: every UDP port has a probe", res.NotProbed)
	}
}

func TestScanSkipsClosedPorts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // now closed: the connection is refused
	res, err := Scan(context.Background(), []netip.Addr{loopback}, Options{Ports: []int{port}})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if len(res.Hosts) != 0 {
		t.Errorf("hosts = %+v, want none", res.Hosts)
	}
}

func TestScanStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Scan(ctx, []netip.Addr{loopback}, Options{Ports: []int{1, 2, 3}})
	if err == nil {
		t.Fatal("Scan with a cancelled context returned no error")
	}
}

func TestScanRefusesOutOfScopeAddressesBeforeDialling(t *testing.T) {
	for _, target := range []string{"8.8.8.8/32", "1.1.1.0/24"} {
		t.Run(target, func(t *testing.T) {
			addrs, err := ParseTargets(context.Background(), []string{target}, nil)
			if err != nil {
				t.Fatalf("ParseTargets: %v", err)
			}
			var dials atomic.Int64
			s := &scanner{opts: Options{Ports: []int{80}}.withDefaults(), dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
				dials.Add(1)
				return nil, fmt.Errorf("test must not dial %s", addr)
			}}
			_, err = s.run(context.Background(), addrs)
			if apperr.CodeOf(err) != apperr.Forbidden {
				t.Fatalf("err = %v, want forbidden", err)
			}
			if !strings.Contains(err.Error(), addrs[0].String()) {
				t.Errorf("error %q does not name %s", err, addrs[0])
			}
			if n := dials.Load(); n != 0 {
				t.Errorf("%d dials, want none", n)
			}
		})
	}
}

func TestCheckScope(t *testing.T) {
	pub := netip.MustParsePrefix("198.51.100.0/24")
	tests := []struct {
		name    string
		targets string
		allowed []netip.Prefix
		refuse  string // address the error names; "" when allowed
	}{
		{"a public address is refused", "8.8.8.8", nil, "8.8.8.8"},
		{"a public /24 is refused at its first address", "1.1.1.0/24", nil, "1.1.1.0"},
		{"an RFC 1918 /30 is allowed", "10.0.0.0/30", nil, ""},
		{"172.16/12 and 192.168/16 are allowed", "172.31.255.255,192.168.1.1", nil, ""},
		{"loopback is allowed", "127.0.0.1,::1", nil, ""},
		{"link-local is allowed", "169.254.1.1,fe80::1", nil, ""},
		{"RFC 4193 unique local is allowed", "fd00::1/126", nil, ""},
		{"a public range is refused without an allowance", "198.51.100.0/28", nil, "198.51.100.0"},
		{"a public range is allowed when AllowedRanges covers it", "198.51.100.0/28", []netip.Prefix{pub}, ""},
		{"an allowance does not stretch past its range", "198.51.100.0/23", []netip.Prefix{pub}, "198.51.101.0"},
		{"a mixed list names the public address", "10.0.0.1,9.9.9.9", nil, "9.9.9.9"},
		{"multicast is refused", "239.255.255.250", nil, "239.255.255.250"},
		{"an IPv4-mapped public address is refused", "::ffff:8.8.4.4", nil, "8.8.4.4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addrs, err := ParseTargets(context.Background(), []string{tt.targets}, nil)
			if err != nil {
				t.Fatalf("ParseTargets(%q): %v", tt.targets, err)
			}
			err = CheckScope(addrs, tt.allowed)
			if tt.refuse == "" {
				if err != nil {
					t.Errorf("CheckScope: %v, want allowed", err)
				}
				return
			}
			if apperr.CodeOf(err) != apperr.Forbidden || !strings.Contains(err.Error(), "address "+tt.refuse+" ") {
				t.Errorf("CheckScope: %v, want forbidden naming %s", err, tt.refuse)
			}
		})
	}
}

func TestScanKeepsToTheRate(t *testing.T) {
	var ports []int
	for range 6 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
		ln.Close()
	}
	start := time.Now()
	if _, err := Scan(context.Background(), []netip.Addr{loopback}, Options{Ports: ports, Rate: 20}); err != nil {
		t.Fatalf("Scan: %v", err)
	}
	// At 20 a second the sixth attempt starts 5 × 50 ms after the first.
	if d := time.Since(start); d < 240*time.Millisecond {
		t.Errorf("6 attempts at rate 20/s took %s, want at least 250ms", d)
	}
}
