package vuln

import (
	"testing"
	"time"
)

func TestEOL(t *testing.T) {
	now := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name, product, version string
		series                 string
		expired, found         bool
	}{
		{"the Archer kernel 4.4.60 is past end of life", "linux_kernel", "4.4.60", "4.4", true, true},
		{"a 3.x kernel is past end of life", "Linux", "3.10.14", "3", true, true},
		{"kernel 6.1 is supported", "linux", "6.1.55", "6.1", false, true},
		{"kernel 4.19 is not mistaken for 4.1", "linux", "4.19.100", "4.19", true, true},
		{"OpenSSL 1.1.1k is past end of life", "openssl", "1.1.1k", "1.1.1", true, true},
		{"OpenSSL 3.0.11 left support in September 2026", "libssl3", "3.0.11", "3.0", true, true},
		{"Debian 12 is supported", "Debian", "12.5", "12", false, true},
		{"Ubuntu 18.04 is past end of life", "ubuntu", "18.04", "18.04", true, true},
		{"OpenWrt 19.07.10 is past end of life", "OpenWrt", "19.07.10", "19.07", true, true},
		{"BusyBox has no published lifecycle", "busybox", "1.35.0", "", false, false},
		{"an unknown kernel series is not guessed", "linux", "2.6.36", "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, ok := EOL(tt.product, tt.version, now)
			if ok != tt.found || l.Series != tt.series || l.Expired != tt.expired {
				t.Fatalf("EOL = %+v, %v", l, ok)
			}
			if ok && l.Source == "" {
				t.Fatal("row without a source")
			}
		})
	}
	if EOLCompiled() == "" {
		t.Fatal("no compile date")
	}
}
