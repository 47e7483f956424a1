package demofleet

import (
	"bufio"
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestTwoWeakLabsTakeNetworksOfTheirOwn starts two labs at once, as two
// demos on one host do: each gets a /28 of 127.0.0.0/24 of its own with
// all four devices in it (a scan of one network finds none of the other
// lab's), the Telnet camera with the Mirai password among them, and every
// service answers.
func TestTwoWeakLabsTakeNetworksOfTheirOwn(t *testing.T) {
	ctx := context.Background()
	var labs []*WeakLab
	for range 2 {
		l, err := StartWeakLab(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		labs = append(labs, l)
	}
	if labs[0].Network == labs[1].Network {
		t.Fatalf("both labs took %s", labs[0].Network)
	}
	for _, l := range labs {
		network, err := netip.ParsePrefix(l.Network)
		if err != nil || network.Bits() != 28 || !netip.MustParsePrefix("127.0.0.0/24").Contains(network.Addr()) {
			t.Fatalf("lab network %q: want a /28 of 127.0.0.0/24 (%v)", l.Network, err)
		}
		if len(l.Services) != len(weakDevices) {
			t.Fatalf("lab %s runs %d services, want %d", l.Network, len(l.Services), len(weakDevices))
		}
		mirai := 0
		for _, svc := range l.Services {
			ap, err := netip.ParseAddrPort(svc.Addr)
			if err != nil || !network.Contains(ap.Addr()) {
				t.Errorf("service %s of lab %s lies outside it", svc.Addr, l.Network)
			}
			if svc.MiraiLogin {
				mirai++
				if svc.Kind != "telnet" || svc.DeviceHint != "camera" {
					t.Errorf("the Mirai login is on %+v, want the camera's Telnet", svc)
				}
			}
			c, err := net.DialTimeout("tcp", svc.Addr, 5*time.Second)
			if err != nil {
				t.Errorf("%s %s: %v", svc.Kind, svc.Addr, err)
				continue
			}
			if svc.Kind == "telnet" {
				c.SetDeadline(time.Now().Add(5 * time.Second))
				line, _ := bufio.NewReader(c).ReadString(':')
				if !strings.HasSuffix(line, "login:") {
					t.Errorf("telnet %s greets with %q, want a login prompt", svc.Addr, line)
				}
			}
			c.Close()
		}
		if mirai != 1 {
			t.Errorf("lab %s has %d services with the Mirai login, want 1", l.Network, mirai)
		}
	}
}
