package scan

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
)

func TestFingerprintPort(t *testing.T) {
	tests := []struct {
		name                         string
		port                         Port
		vendor, product, version, os string
	}{
		{"a BusyBox telnet banner gives its version", Port{Number: 23, Banner: "BusyBox v1.19.4 (2013-03-01 12:00:00 CST) built-in shell (ash) login:"}, "", "BusyBox", "1.19.4", "Linux"},
		{"dropbear gives its year.release version", Port{Number: 22, Details: map[string]string{"ssh_software": "dropbear_2019.78"}}, "", "Dropbear SSH", "2019.78", ""},
		{"OpenSSH on Raspbian names the distribution", Port{Number: 22, Banner: "SSH-2.0-OpenSSH_7.9p1", Details: map[string]string{"ssh_software": "OpenSSH_7.9p1", "ssh_comments": "Raspbian-10+deb10u2"}}, "OpenBSD", "OpenSSH", "7.9p1", "Raspbian"},
		{"OpenSSH on Debian names the distribution", Port{Number: 22, Banner: "SSH-2.0-OpenSSH_7.4p1", Details: map[string]string{"ssh_comments": "Debian-10+deb9u7"}}, "OpenBSD", "OpenSSH", "7.4p1", "Debian"},
		{"GoAhead-Webs is the Embedthis web server", Port{Number: 80, Details: map[string]string{"server": "GoAhead-Webs"}}, "Embedthis", "GoAhead WebServer", "", ""},
		{"Boa gives its version", Port{Number: 80, Details: map[string]string{"server": "Boa/0.94.14rc21"}}, "", "Boa", "0.94.14rc21", ""},
		{"lighttpd gives its version", Port{Number: 80, Details: map[string]string{"server": "lighttpd/1.4.35"}}, "", "lighttpd", "1.4.35", ""},
		{"mini_httpd is ACME Labs'", Port{Number: 80, Details: map[string]string{"server": "mini_httpd/1.19 19dec2003"}}, "ACME Labs", "mini_httpd", "1.19", ""},
		{"thttpd is ACME Labs'", Port{Number: 80, Details: map[string]string{"server": "thttpd/2.25b 29dec2003"}}, "ACME Labs", "thttpd", "2.25b", ""},
		{"uc-httpd is a Xiongmai DVR", Port{Number: 80, Details: map[string]string{"server": "uc-httpd 1.0.0"}}, "Xiongmai", "DVR / NVR / IP camera (uc-httpd)", "1.0.0", ""},
		{"DNVRS-Webs is a Hikvision NVR", Port{Number: 80, Details: map[string]string{"server": "DNVRS-Webs"}}, "Hikvision", "IP camera / NVR web server (DNVRS-Webs)", "", ""},
		{"a Hikvision page title names the maker", Port{Number: 80, Details: map[string]string{"server": "webserver", "title": "HIKVISION - Login"}}, "Hikvision", "IP camera / NVR", "", ""},
		{"Dahua's WEB SERVICE title names the maker", Port{Number: 80, Details: map[string]string{"title": "WEB SERVICE"}}, "Dahua", "IP camera / DVR", "", ""},
		{"a Dahua RTSP server names the maker", Port{Number: 554, Details: map[string]string{"server": "Dahua Rtsp Server"}}, "Dahua", "IP camera / DVR", "", ""},
		{"a LIVE555 RTSP server gives its version", Port{Number: 554, Details: map[string]string{"server": "LIVE555 Streaming Media v2016.01.12"}}, "Live Networks", "LIVE555 Streaming Media", "2016.01.12", ""},
		{"RomPager on 7547 is a TR-069 server", Port{Number: 7547, Details: map[string]string{"server": "RomPager/4.07 UPnP/1.0"}}, "Allegro Software", "RomPager", "4.07", ""},
		{"gSOAP on 7547 is a TR-069 server", Port{Number: 7547, Details: map[string]string{"server": "gSOAP/2.7"}}, "Genivia", "gSOAP (TR-069 CWMP)", "2.7", ""},
		{"mosquitto gives its version where it shows it", Port{Number: 1883, Banner: "mosquitto version 2.0.11"}, "Eclipse", "Mosquitto", "2.0.11", ""},
		{"a NETGEAR realm names the router", Port{Number: 80, Details: map[string]string{"realm": "NETGEAR R7000"}}, "NETGEAR", "router R7000", "", ""},
		{"a UPnP SERVER header gives the Linux version", Port{Number: 1900, Proto: "udp", Details: map[string]string{"ssdp_server": "Linux/3.10.0 UPnP/1.0 Hikvision-Webs/1.0"}}, "Hikvision", "IP camera / NVR web server (Hikvision-Webs)", "", "Linux 3.10.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.port
			if p.Proto == "" {
				p.Proto = "tcp"
			}
			g, ok := fingerprintPort(&p)
			if !ok {
				t.Fatalf("no fingerprint matched %+v", tt.port)
			}
			if g.Vendor != tt.vendor || g.Product != tt.product || g.Version != tt.version || g.OS != tt.os {
				t.Errorf("guess = %q %q %q %q, want %q %q %q %q", g.Vendor, g.Product, g.Version, g.OS, tt.vendor, tt.product, tt.version, tt.os)
			}
			if tt.product != "" && p.Details["product"] != tt.product {
				t.Errorf("Details[product] = %q, want %q", p.Details["product"], tt.product)
			}
			if len(g.Evidence) == 0 {
				t.Error("guess has no evidence")
			}
		})
	}
}

func TestGuessHost(t *testing.T) {
	tests := []struct {
		name          string
		ports         []Port
		vendor, os    string
		device, empty bool
	}{
		{"a camera maker named by one port wins over BusyBox on another", []Port{
			{Number: 23, Proto: "tcp", Banner: "BusyBox v1.22.1 built-in shell"},
			{Number: 80, Proto: "tcp", Details: map[string]string{"server": "DNVRS-Webs"}},
		}, "Hikvision", "Linux", true, false},
		{"port 34567 hints Xiongmai when no banner names a maker", []Port{
			{Number: 23, Proto: "tcp", Banner: "BusyBox v1.12.1 (none) login:"},
			{Number: 34567, Proto: "tcp"},
		}, "Xiongmai", "Linux", true, false},
		{"a host with unrecognised banners has no guess", []Port{{Number: 80, Proto: "tcp", Details: map[string]string{"server": "SomethingElse"}}}, "", "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := guessHost(tt.ports)
			if tt.empty {
				if g != nil {
					t.Fatalf("guess = %+v, want none", g)
				}
				return
			}
			if g == nil || g.Vendor != tt.vendor || g.OS != tt.os || g.Device != tt.device {
				t.Fatalf("guess = %+v, want vendor %q os %q device %v", g, tt.vendor, tt.os, tt.device)
			}
		})
	}
}

func TestScanGuessesTheHostFromItsBanners(t *testing.T) {
	web := serveTCP(t, func(c net.Conn) {
		buf := make([]byte, 1024)
		c.Read(buf)
		fmt.Fprint(c, "HTTP/1.1 200 OK\r\nServer: uc-httpd 1.0.0\r\nContent-Length: 0\r\n\r\n")
	})
	ssh := serveTCP(t, func(c net.Conn) {
		c.Write([]byte("SSH-2.0-dropbear_2014.63\r\n"))
		io.Copy(io.Discard, c)
	})
	res, err := Scan(context.Background(), []netip.Addr{loopback}, Options{Ports: []int{web, ssh}})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if len(res.Hosts) != 1 || res.Hosts[0].Guess == nil {
		t.Fatalf("hosts = %+v, want one with a guess", res.Hosts)
	}
	g := res.Hosts[0].Guess
	if g.Vendor != "Xiongmai" || !g.Device || len(g.Evidence) != 2 {
		t.Errorf("guess = %+v, want Xiongmai from the web server, evidence from both ports", g)
	}
	for _, p := range res.Hosts[0].Ports {
		if p.Number == ssh && (p.Details["product"] != "Dropbear SSH" || p.Details["version"] != "2014.63") {
			t.Errorf("ssh port details = %v, want Dropbear SSH 2014.63", p.Details)
		}
	}
}

func FuzzFingerprintPort(f *testing.F) {
	f.Add("BusyBox v1.19.4 built-in shell", "uc-httpd 1.0.0", "HIKVISION", "Raspbian-10")
	f.Add("SSH-2.0-OpenSSH_7.4p1", "RomPager/4.07", "WEB SERVICE", "")
	f.Fuzz(func(t *testing.T, banner, server, title, comments string) {
		ports := []Port{
			{Number: 7547, Proto: "tcp", Banner: banner, Details: map[string]string{"server": server, "title": title, "ssh_comments": comments}},
			{Number: 34567, Proto: "tcp", Banner: server},
		}
		g := guessHost(ports)
		if g != nil && strings.Contains(g.Product, "$") {
			t.Fatalf("unexpanded template in %+v", g)
		}
	})
}
