package scan

import (
	"context"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// serveModbus listens on port 502 of a loopback address other than
// 127.0.0.1 (the scan picks its probes by port number) and answers each
// request with reply(request). It records the function code of every
// request it receives.
func serveModbus(t *testing.T, reply func(req []byte) []byte) (netip.Addr, func() []byte) {
	t.Helper()
	var ln net.Listener
	var a netip.Addr
	for range 50 {
		a = netip.AddrFrom4([4]byte{127, byte(1 + rand.IntN(250)), byte(rand.IntN(256)), byte(2 + rand.IntN(250))})
		var err error
		if ln, err = net.Listen("tcp", netip.AddrPortFrom(a, 502).String()); err == nil {
			break
		}
	}
	if ln == nil {
		t.Skip("cannot listen on a loopback address's port 502 (needs root or CAP_NET_BIND_SERVICE)")
	}
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	var functions []byte
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				for {
					head := make([]byte, 7)
					if _, err := io.ReadFull(c, head); err != nil {
						return
					}
					l := int(binary.BigEndian.Uint16(head[4:6]))
					if l < 1 || l > 254 {
						return
					}
					pdu := make([]byte, l-1)
					if _, err := io.ReadFull(c, pdu); err != nil {
						return
					}
					if len(pdu) > 0 {
						mu.Lock()
						functions = append(functions, pdu[0])
						mu.Unlock()
					}
					if r := reply(append(head, pdu...)); r != nil {
						c.Write(r)
					}
				}
			}()
		}
	}()
	return a, func() []byte { mu.Lock(); defer mu.Unlock(); return append([]byte(nil), functions...) }
}

// deviceIDReply answers a Read Device Identification with the objects.
func deviceIDReply(req []byte, objects ...string) []byte {
	pdu := []byte{0x2b, 0x0e, 0x01, 0x01, 0x00, 0x00, byte(len(objects))}
	for i, o := range objects {
		pdu = append(pdu, byte(i), byte(len(o)))
		pdu = append(pdu, o...)
	}
	adu := []byte{req[0], req[1], 0, 0, 0, 0, req[6]}
	binary.BigEndian.PutUint16(adu[4:], uint16(len(pdu)+1))
	return append(adu, pdu...)
}

func TestScanIdentifiesModbusWithAReadOnlyRequest(t *testing.T) {
	tests := []struct {
		name    string
		reply   func([]byte) []byte
		details map[string]string
		banner  string
	}{
		{"a device that identifies itself gives vendor, product code and revision",
			func(req []byte) []byte { return deviceIDReply(req, "Schneider Electric", "BMX P34 2020", "v2.70") },
			map[string]string{"modbus_vendor": "Schneider Electric", "modbus_product_code": "BMX P34 2020", "modbus_revision": "v2.70",
				"vendor": "Schneider Electric", "product": "BMX P34 2020", "version": "v2.70"},
			"Modbus/TCP, Schneider Electric BMX P34 2020 v2.70"},
		{"a device without the function still answers in Modbus",
			func(req []byte) []byte { return []byte{req[0], req[1], 0, 0, 0, 3, req[6], 0xab, 0x01} },
			map[string]string{"modbus_exception": "illegal function"},
			"device identification refused: illegal function"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, functions := serveModbus(t, tt.reply)
			res, err := Scan(context.Background(), []netip.Addr{a}, Options{Ports: []int{502}, ReadTimeout: 300 * time.Millisecond})
			if err != nil {
				t.Fatalf("Scan: %v", err)
			}
			if len(res.Hosts) != 1 || len(res.Hosts[0].Ports) != 1 {
				t.Fatalf("hosts = %+v, want one port", res.Hosts)
			}
			p := res.Hosts[0].Ports[0]
			if p.Service != "modbus" || !p.Plaintext {
				t.Errorf("port = %+v, want plaintext modbus", p)
			}
			for k, v := range tt.details {
				if p.Details[k] != v {
					t.Errorf("details[%q] = %q, want %q", k, p.Details[k], v)
				}
			}
			if !strings.Contains(p.Banner, tt.banner) {
				t.Errorf("banner %q does not contain %q", p.Banner, tt.banner)
			}
			for _, f := range functions() {
				if f != 0x2b {
					t.Errorf("the scan sent function %d; only 43 (read device identification) is allowed", f)
				}
			}
			if len(functions()) != 1 {
				t.Errorf("the scan sent %d Modbus requests, want 1", len(functions()))
			}
		})
	}
}

func TestParseModbusDeviceID(t *testing.T) {
	req := modbusReadDeviceID(0x1234)
	ok := deviceIDReply(req, "Acme", "PLC-1")
	tests := []struct {
		name    string
		in      []byte
		wantErr string
		want    map[byte]string
	}{
		{"an answer gives its objects", ok, "", map[byte]string{0: "Acme", 1: "PLC-1"}},
		{"an exception is an answer", []byte{0x12, 0x34, 0, 0, 0, 3, 0xff, 0xab, 0x02}, "", nil},
		{"another transaction is refused", deviceIDReply(modbusReadDeviceID(1), "x"), "transaction id", nil},
		{"an MBAP length that disagrees is refused", append(append([]byte(nil), ok...), 0), "MBAP length", nil},
		{"an object running past the end is refused", func() []byte {
			b := append([]byte(nil), ok[:len(ok)-2]...)
			binary.BigEndian.PutUint16(b[4:], uint16(len(b)-6))
			return b
		}(), "cut short", nil},
		{"another function is refused", []byte{0x12, 0x34, 0, 0, 0, 3, 0xff, 0x03, 0x00}, "function 0x03", nil},
		{"a non-Modbus protocol id is refused", []byte{0x12, 0x34, 0, 1, 0, 3, 0xff, 0xab, 0x01}, "protocol id", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parseModbusDeviceID(tt.in, 0x1234)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.want {
				if r.Objects[k] != v {
					t.Errorf("object %d = %q, want %q", k, r.Objects[k], v)
				}
			}
		})
	}
}

func TestModbusRequestIsReadDeviceIdentification(t *testing.T) {
	b := modbusReadDeviceID(7)
	if len(b) != 11 || b[7] != 0x2b || b[8] != 0x0e || binary.BigEndian.Uint16(b[4:6]) != 5 {
		t.Errorf("request % x is not FC 43 / MEI 14 with MBAP length 5", b)
	}
}

func FuzzParseModbusDeviceID(f *testing.F) {
	f.Add(deviceIDReply(modbusReadDeviceID(1), "Acme", "PLC-1", "1.0"))
	f.Add([]byte{0, 1, 0, 0, 0, 3, 0xff, 0xab, 0x01})
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := parseModbusDeviceID(in, 1)
		if err == nil && len(r.Objects) > 256 {
			t.Fatalf("%d objects", len(r.Objects))
		}
	})
}
