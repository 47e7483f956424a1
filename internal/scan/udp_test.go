package scan

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// freeLoopbackAddr returns an address of 127.0.0.0/8 other than 127.0.0.1
// on which every port in ports can be bound for UDP, so the tests can serve
// the well-known ports without colliding with anything on 127.0.0.1.
func freeLoopbackAddr(t *testing.T, ports ...int) netip.Addr {
	t.Helper()
	for range 50 {
		a := netip.AddrFrom4([4]byte{127, byte(1 + rand.IntN(250)), byte(rand.IntN(256)), byte(2 + rand.IntN(250))})
		ok := true
		for _, p := range ports {
			c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, uint16(p))))
			if err != nil {
				ok = false
				break
			}
			c.Close()
		}
		if ok {
			return a
		}
	}
	t.Fatal("no free loopback address for the UDP servers")
	return netip.Addr{}
}

// serveUDP answers each datagram on a:port with reply(request); a nil reply
// is silence. With fromOtherPort the answer leaves from another socket, as
// many SSDP devices do. It counts the datagrams received.
func serveUDP(t *testing.T, a netip.Addr, port int, fromOtherPort bool, reply func([]byte) []byte) *atomic.Int64 {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, uint16(port))))
	if err != nil {
		t.Fatalf("listen udp %s:%d: %v", a, port, err)
	}
	t.Cleanup(func() { c.Close() })
	out := c
	if fromOtherPort {
		if out, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 0))); err != nil {
			t.Fatalf("listen udp: %v", err)
		}
		t.Cleanup(func() { out.Close() })
	}
	var n atomic.Int64
	go func() {
		buf := make([]byte, 2048)
		for {
			k, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			n.Add(1)
			if r := reply(append([]byte(nil), buf[:k]...)); r != nil {
				_, _ = out.WriteToUDPAddrPort(r, from)
			}
		}
	}()
	return &n
}

// coapReply answers a CoAP GET /.well-known/core with a piggybacked 2.05.
func coapReply(payload string) func([]byte) []byte {
	return func(req []byte) []byte {
		m, err := parseCoAP(req)
		if err != nil {
			return nil
		}
		b, _ := marshalCoAP(coapMessage{Type: coapACK, Code: 0x45, MessageID: m.MessageID, Token: m.Token,
			Options: []coapOption{{coapContent, []byte{40}}}, Payload: []byte(payload)})
		return b
	}
}

// iAmFrame is an I-Am of device instance 260001 from vendor 260 (the
// open-source BACnet Stack), as bacnet-stack's server sends it.
var iAmFrame = []byte{0x81, 0x0a, 0x00, 0x15, 0x01, 0x00, 0x10, 0x00,
	0xc4, 0x02, 0x03, 0xf7, 0xa1, // device, instance 260001
	0x22, 0x05, 0xc4, // max APDU 1476
	0x91, 0x00, // segmented both
	0x22, 0x01, 0x04} // vendor 260

const ssdpReply = "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=1800\r\nEXT:\r\nLOCATION: http://192.168.1.20:49152/rootDesc.xml\r\n" +
	"SERVER: Linux/3.10 UPnP/1.0 Hikvision-Webs/1.0\r\nST: upnp:rootdevice\r\nUSN: uuid:abcd-1234::upnp:rootdevice\r\n\r\n"

func TestScanProbesUDPServicesAndReportsOnlyParsedReplies(t *testing.T) {
	a := freeLoopbackAddr(t, 5683, 1900, 47808)
	var lostFirst atomic.Bool
	coapSeen := serveUDP(t, a, 5683, false, func(req []byte) []byte {
		if lostFirst.CompareAndSwap(false, true) {
			return nil // the first answer is lost: the retry must find the port
		}
		return coapReply(`</sensors/temp>;rt="temperature-c";if="sensor",</light>;ct=0;title="Lamp"`)(req)
	})
	serveUDP(t, a, 1900, true, func(req []byte) []byte {
		if !bytes.HasPrefix(req, []byte("M-SEARCH * HTTP/1.1\r\n")) {
			return nil
		}
		return []byte(ssdpReply)
	})
	serveUDP(t, a, 47808, false, func(req []byte) []byte {
		if !bytes.Equal(req, bacnetWhoIs) {
			return nil
		}
		return iAmFrame
	})
	// A second host answers every probe with garbage: nothing is open there.
	b := freeLoopbackAddr(t, 5683, 1900, 47808)
	for _, p := range DefaultUDPPorts {
		serveUDP(t, b, p, false, func([]byte) []byte { return []byte("\x00\x01garbage") })
	}
	res, err := Scan(context.Background(), []netip.Addr{a, b}, Options{UDPPorts: DefaultUDPPorts, Timeout: 600 * time.Millisecond, Rate: 1000})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if len(res.Hosts) != 1 || res.Hosts[0].Addr != a {
		t.Fatalf("hosts = %+v, want only %s", res.Hosts, a)
	}
	got := map[int]Port{}
	for _, p := range res.Hosts[0].Ports {
		got[p.Number] = p
	}
	tests := []struct {
		name    string
		port    int
		service string
		details map[string]string
		banner  string
	}{
		{"CoAP lists the resources of /.well-known/core after a lost reply", 5683, "coap",
			map[string]string{"coap_code": "2.05", "coap_resource_count": "2", "coap_content_format": "40",
				"coap_resources": `/sensors/temp rt="temperature-c", /light`}, "CoAP 2.05, 2 resources"},
		{"SSDP reports SERVER, ST, USN and LOCATION from another source port", 1900, "ssdp",
			map[string]string{"ssdp_server": "Linux/3.10 UPnP/1.0 Hikvision-Webs/1.0", "ssdp_st": "upnp:rootdevice",
				"ssdp_usn": "uuid:abcd-1234::upnp:rootdevice", "ssdp_location": "http://192.168.1.20:49152/rootDesc.xml"}, "SSDP 200"},
		{"BACnet reports the device instance and vendor of the I-Am", 47808, "bacnet",
			map[string]string{"bacnet_device_instance": "260001", "bacnet_vendor_id": "260"}, "BACnet I-Am device 260001, vendor id 260"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ok := got[tt.port]
			if !ok {
				t.Fatalf("udp port %d not reported; got %+v", tt.port, res.Hosts[0].Ports)
			}
			if p.Proto != "udp" || p.State != StateOpen || p.Service != tt.service || !p.Plaintext {
				t.Errorf("port = %+v, want open udp %s in plaintext", p, tt.service)
			}
			for k, v := range tt.details {
				if p.Details[k] != v {
					t.Errorf("details[%q] = %q, want %q", k, p.Details[k], v)
				}
			}
			if !strings.Contains(p.Banner, tt.banner) {
				t.Errorf("banner %q does not contain %q", p.Banner, tt.banner)
			}
		})
	}
	if n := coapSeen.Load(); n != 2 {
		t.Errorf("CoAP server saw %d requests, want 2 (one lost reply, one retry)", n)
	}
}

func TestScanGivesUpOnASilentUDPPortAfterTwoRetries(t *testing.T) {
	a := freeLoopbackAddr(t, 5683)
	seen := serveUDP(t, a, 5683, false, func([]byte) []byte { return nil })
	start := time.Now()
	res, err := Scan(context.Background(), []netip.Addr{a}, Options{UDPPorts: []int{5683}, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if len(res.Hosts) != 0 {
		t.Errorf("hosts = %+v, want none: a silent UDP port is not reported", res.Hosts)
	}
	if n := seen.Load(); n != udpTries {
		t.Errorf("server saw %d datagrams, want %d (a try and two retries)", n, udpTries)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("silent port took %s, want the timeout to bound it", d)
	}
}

func TestScanRefusesUDPPortsWithoutAProbe(t *testing.T) {
	_, err := Scan(context.Background(), []netip.Addr{loopback}, Options{UDPPorts: []int{53}})
	if err == nil || !strings.Contains(err.Error(), "no UDP probe") {
		t.Errorf("err = %v, want a refusal naming the missing probe", err)
	}
}

func TestUDPRetriesCountAgainstTheRate(t *testing.T) {
	a := freeLoopbackAddr(t, 5683)
	serveUDP(t, a, 5683, false, func([]byte) []byte { return nil })
	start := time.Now()
	// Three datagrams at 5 a second cannot all leave in under 2 × 200 ms.
	if _, err := Scan(context.Background(), []netip.Addr{a}, Options{UDPPorts: []int{5683}, Rate: 5, Timeout: 150 * time.Millisecond}); err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if d := time.Since(start); d < 380*time.Millisecond {
		t.Errorf("3 datagrams at 5/s took %s, want at least 400ms", d)
	}
}

func TestParseCoAP(t *testing.T) {
	long := strings.Repeat("x", 300)
	msg := coapMessage{Type: coapCON, Code: coapGET, MessageID: 0x1234, Token: []byte{1, 2, 3},
		Options: []coapOption{{coapUriPath, []byte(".well-known")}, {coapUriPath, []byte("core")}, {coapBlock2, []byte{0x08}}, {2000, []byte(long)}},
		Payload: []byte("hi")}
	enc, err := marshalCoAP(msg)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		in      []byte
		wantErr string
	}{
		{"a message with extended option deltas and lengths round-trips", enc, ""},
		{"a short datagram is refused", []byte{0x40, 1}, "at least 4"},
		{"version 2 is refused", []byte{0x80, 1, 0, 0}, "version"},
		{"a token length over 8 is refused", []byte{0x49, 1, 0, 0}, "token length"},
		{"a payload marker with no payload is refused", []byte{0x40, 1, 0, 0, 0xff}, "payload marker"},
		{"option delta 15 is reserved", []byte{0x40, 1, 0, 0, 0xf1, 0}, "reserved"},
		{"an option running past the end is refused", []byte{0x40, 1, 0, 0, 0xb5, 'a'}, "inside an option"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parseCoAP(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.MessageID != 0x1234 || string(m.Payload) != "hi" || len(m.Options) != 4 || m.Options[3].Number != 2000 || string(m.Options[3].Value) != long {
				t.Errorf("round trip = %+v", m)
			}
		})
	}
}

func TestParseLinkFormat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string // path|attr=value
		wantErr bool
	}{
		{"RFC 6690's example parses into resources and attributes",
			`</sensors>;ct=40;title="Sensor Index",</sensors/temp>;rt="temperature-c";if="sensor",</sensors/light>;rt="light-lux";if="sensor"`,
			[]string{"/sensors|ct=40", "/sensors|title=Sensor Index", "/sensors/temp|rt=temperature-c", "/sensors/light|if=sensor"}, false},
		{"a quoted value may hold commas and semicolons", `</a>;title="x,y;z",</b>`, []string{"/a|title=x,y;z", "/b|"}, false},
		{"an attribute without a value is kept", `</obs>;obs`, []string{"/obs|obs="}, false},
		{"a link without angle brackets is an error", `/a;ct=0`, nil, true},
		{"an unterminated quote is an error", `</a>;title="x`, nil, true},
		{"an empty document has no resources", ``, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := parseLinkFormat(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			for _, w := range tt.want {
				path, attr, _ := strings.Cut(w, "|")
				found := false
				for _, r := range res {
					k, v, _ := strings.Cut(attr, "=")
					if r.Path == path && (attr == "" || r.Attrs[k] == v) {
						found = true
					}
				}
				if !found {
					t.Errorf("no resource %s with %s in %+v", path, attr, res)
				}
			}
		})
	}
}

func TestParseSSDPResponse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    ssdpInfo
		wantErr bool
	}{
		{"a response gives its SERVER, ST, USN and LOCATION", ssdpReply, ssdpInfo{Status: 200, Server: "Linux/3.10 UPnP/1.0 Hikvision-Webs/1.0",
			ST: "upnp:rootdevice", USN: "uuid:abcd-1234::upnp:rootdevice", Location: "http://192.168.1.20:49152/rootDesc.xml"}, false},
		{"header names are case-insensitive", "HTTP/1.1 200 OK\r\nserver: x\r\nst: y\r\n\r\n", ssdpInfo{Status: 200, Server: "x", ST: "y"}, false},
		{"a NOTIFY is not a response", "NOTIFY * HTTP/1.1\r\nNT: upnp:rootdevice\r\n\r\n", ssdpInfo{}, true},
		{"a response without SSDP headers is not SSDP", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", ssdpInfo{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSSDPResponse([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseIAm(t *testing.T) {
	routed := append([]byte{0x81, 0x0b, 0, 0, 0x01, 0x08, 0x00, 0x05, 0x01, 0x07}, iAmFrame[6:]...) // SNET 5, SADR 7
	binary.BigEndian.PutUint16(routed[2:], uint16(len(routed)))
	tests := []struct {
		name     string
		in       []byte
		instance int
		wantErr  string
	}{
		{"a unicast I-Am gives the instance and vendor", iAmFrame, 260001, ""},
		{"a routed broadcast I-Am skips the source address", routed, 260001, ""},
		{"a Who-Is is not an I-Am", bacnetWhoIs, 0, "not an I-Am"},
		{"a BVLC length that disagrees is refused", append(append([]byte(nil), iAmFrame...), 0), 0, "BVLC length"},
		{"a frame cut inside the I-Am is refused", []byte{0x81, 0x0a, 0x00, 0x0a, 0x01, 0x00, 0x10, 0x00, 0xc4, 0x02}, 0, "field 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parseIAm(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Instance != tt.instance || r.VendorID != 260 || r.ObjectType != 8 || r.MaxAPDU != 1476 {
				t.Errorf("got %+v", r)
			}
		})
	}
}

func FuzzParseCoAP(f *testing.F) {
	b, _ := marshalCoAP(coapMessage{Type: coapACK, Code: 0x45, MessageID: 7, Token: []byte{1}, Options: []coapOption{{coapContent, []byte{40}}}, Payload: []byte(`</a>;rt="x"`)})
	f.Add(b)
	f.Add([]byte{0x40, 1, 0, 0, 0xd1, 0x01, 'x', 0xff, '<'})
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := parseCoAP(in)
		if err != nil {
			return
		}
		if len(m.Token) > 8 {
			t.Fatalf("token of %d bytes accepted", len(m.Token))
		}
		p := Port{Details: map[string]string{}}
		if fillCoAP(in, &p) != nil {
			t.Fatal("fillCoAP refused what parseCoAP accepted")
		}
		if len(p.Banner) > 256 {
			t.Fatalf("banner of %d bytes", len(p.Banner))
		}
		// Re-encoding what was parsed must parse to the same options.
		enc, err := marshalCoAP(m)
		if err != nil {
			t.Fatalf("marshal parsed message: %v", err)
		}
		m2, err := parseCoAP(enc)
		if err != nil || len(m2.Options) != len(m.Options) || !bytes.Equal(m2.Payload, m.Payload) {
			t.Fatalf("round trip: %v, %+v vs %+v", err, m2, m)
		}
	})
}

func FuzzParseLinkFormat(f *testing.F) {
	f.Add(`</sensors>;ct=40;title="Sensor Index",</sensors/temp>;rt="temperature-c";if="sensor"`)
	f.Add(`</a>;b;c=d,<`)
	f.Fuzz(func(t *testing.T, in string) {
		res, _ := parseLinkFormat(in)
		if len(res) > 256 {
			t.Fatalf("%d resources kept", len(res))
		}
	})
}

func FuzzParseSSDPResponse(f *testing.F) {
	f.Add([]byte(ssdpReply))
	f.Add([]byte("HTTP/1.1 200\nST:x"))
	f.Fuzz(func(t *testing.T, in []byte) {
		info, err := parseSSDPResponse(in)
		if err != nil {
			return
		}
		for _, v := range []string{info.Server, info.ST, info.USN, info.Location} {
			if len(v) > 256 {
				t.Fatalf("header value of %d bytes", len(v))
			}
		}
	})
}

func FuzzParseIAm(f *testing.F) {
	f.Add(iAmFrame)
	f.Add(bacnetWhoIs)
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := parseIAm(in)
		if err == nil && (r.Instance < 0 || r.Instance > 0x3fffff) {
			t.Fatalf("instance %d out of range", r.Instance)
		}
	})
}
