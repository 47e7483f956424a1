package scan

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/fleetward/fleetward/internal/apperr"
)

type fakeResolver map[string][]netip.Addr

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := f[host]; ok {
		return a, nil
	}
	return nil, &notFound{host}
}

type notFound struct{ host string }

func (e *notFound) Error() string { return "no such host " + e.host }

func TestParseTargets(t *testing.T) {
	r := fakeResolver{"cam.local": {netip.MustParseAddr("192.168.1.20")}}
	tests := []struct {
		name  string
		specs []string
		want  []string // first addresses, in order
		count int
		err   string
	}{
		{"a CIDR expands to every address", []string{"10.0.0.0/30"}, []string{"10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.3"}, 4, ""},
		{"a CIDR with host bits is masked", []string{"10.0.0.5/30"}, []string{"10.0.0.4"}, 4, ""},
		{"a single address", []string{"192.168.1.1"}, []string{"192.168.1.1"}, 1, ""},
		{"a list is merged, sorted and deduplicated", []string{"10.0.0.2,10.0.0.1", "10.0.0.1/32"}, []string{"10.0.0.1", "10.0.0.2"}, 2, ""},
		{"a host name is resolved", []string{"cam.local"}, []string{"192.168.1.20"}, 1, ""},
		{"a /16 is at the cap", []string{"10.1.0.0/16"}, []string{"10.1.0.0"}, 65536, ""},
		{"a /15 is over the cap", []string{"10.0.0.0/15"}, nil, 0, "more than 65536"},
		{"two /16s are over the cap", []string{"10.1.0.0/16", "10.2.0.0/16"}, nil, 0, "more than 65536"},
		{"an IPv6 /64 is over the cap", []string{"fd00::/64"}, nil, 0, "more than 65536"},
		{"a bad prefix is named", []string{"10.0.0.0/33"}, nil, 0, `"10.0.0.0/33"`},
		{"an unknown host is named", []string{"nowhere.invalid"}, nil, 0, `"nowhere.invalid": cannot resolve`},
		{"nothing is refused", []string{" , "}, nil, 0, "no target"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTargets(context.Background(), tt.specs, r)
			if tt.err != "" {
				if err == nil || apperr.CodeOf(err) != apperr.Invalid || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want invalid containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseTargets: %v", err)
			}
			if len(got) != tt.count {
				t.Fatalf("%d addresses, want %d", len(got), tt.count)
			}
			for i, w := range tt.want {
				if got[i].String() != w {
					t.Errorf("address %d = %s, want %s", i, got[i], w)
				}
			}
		})
	}
}

func TestParsePorts(t *testing.T) {
	tests := []struct {
		in   string
		want []int
		err  string
	}{
		{"22,80", []int{22, 80}, ""},
		{"8000-8002, 22, 8001", []int{8000, 8001, 8002, 22}, ""},
		{"0", nil, `"0"`},
		{"65536", nil, `"65536"`},
		{"90-80", nil, "range ends before"},
		{"http", nil, `"http"`},
		{"", nil, "no port"},
	}
	for _, tt := range tests {
		got, err := ParsePorts(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParsePorts(%q) err = %v, want containing %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || len(got) != len(tt.want) {
			t.Errorf("ParsePorts(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("ParsePorts(%q) = %v, want %v", tt.in, got, tt.want)
				break
			}
		}
	}
}
