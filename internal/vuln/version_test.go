package vuln

import "testing"

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want int
	}{
		{"equal dotted versions are equal", "1.35.0", "1.35.0", 0},
		{"numbers compare numerically", "1.1.10", "1.1.9", 1},
		{"a leading v is ignored", "V1.0.0.12", "1.0.0.12", 0},
		{"a TP-Link build suffix is build metadata", "1.1.4 Build 20230219 rel.73395", "1.1.4", 0},
		{"a build suffix does not lift an older version", "1.1.3 Build 20221010", "1.1.4", -1},
		{"semver build metadata is ignored", "1.0.0+git20240101", "1.0.0", 0},
		{"NETGEAR dual versions compare piecewise", "V1.0.0.12_1.0.12", "V1.0.0.12_1.0.9", 1},
		{"a distribution revision is later than upstream", "2.0.11-r3", "2.0.11", 1},
		{"revisions compare", "2.0.11-r3", "2.0.11-r10", -1},
		{"a kernel flavour is later than the release", "5.4.0-150-generic", "5.4.0", 1},
		{"kernel ABI numbers compare", "5.4.0-150-generic", "5.4.0-42-generic", 1},
		{"a pre-release is earlier than the release", "1.0.0-rc1", "1.0.0", -1},
		{"beta before rc", "2.0-beta2", "2.0-rc1", -1},
		{"an OpenSSL letter release is later", "1.1.1k", "1.1.1", 1},
		{"OpenSSL letters compare", "1.1.1k", "1.1.1w", -1},
		{"leading zeros are ignored", "2.820.0000000.5.r.210705", "2.820.0.5.r.210705", 0},
		{"Dahua builds compare", "2.820.0000000.4.R.210101", "2.820.0000000.5.r.210705", -1},
		{"dates compare", "2023-02-19", "2023-10-01", -1},
		{"compact dates compare", "20230219", "20221231", 1},
		{"separators do not matter", "1_0-1", "1.0.1", 0},
		{"huge numbers do not overflow", "1.99999999999999999999999", "1.100000000000000000000000", -1},
		{"a word sorts before a number", "1.0a", "1.0.1", -1},
		{"empty is before anything", "", "0", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CompareVersions(tt.a, tt.b); got != tt.want {
				t.Fatalf("CompareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
			}
			if got := CompareVersions(tt.b, tt.a); got != -tt.want {
				t.Fatalf("CompareVersions(%q, %q) = %d, want %d (antisymmetry)", tt.b, tt.a, got, -tt.want)
			}
		})
	}
}

func TestVersionRanges(t *testing.T) {
	events := func(evs ...[2]string) []map[string]string {
		var out []map[string]string
		for _, e := range evs {
			out = append(out, map[string]string{e[0]: e[1]})
		}
		return out
	}
	tests := []struct {
		name    string
		events  []map[string]string
		version string
		want    bool
	}{
		{"introduced 0 covers the first version", events([2]string{"introduced", "0"}, [2]string{"fixed", "1.2"}), "0.0.1", true},
		{"fixed is exclusive", events([2]string{"introduced", "0"}, [2]string{"fixed", "1.2"}), "1.2", false},
		{"just below fixed is affected", events([2]string{"introduced", "0"}, [2]string{"fixed", "1.2"}), "1.1.99", true},
		{"introduced is inclusive", events([2]string{"introduced", "1.0"}, [2]string{"fixed", "1.2"}), "1.0", true},
		{"below introduced is not affected", events([2]string{"introduced", "1.0"}, [2]string{"fixed", "1.2"}), "0.9", false},
		{"last_affected is inclusive", events([2]string{"introduced", "1.0"}, [2]string{"last_affected", "1.4"}), "1.4", true},
		{"after last_affected is not affected", events([2]string{"introduced", "1.0"}, [2]string{"last_affected", "1.4"}), "1.4.1", false},
		{"an open introduction is unbounded", events([2]string{"introduced", "3.0"}), "99.0", true},
		{"a limit caps an open range", events([2]string{"introduced", "3.0"}, [2]string{"limit", "4.0"}), "4.0", false},
		{"a second interval is honoured", events([2]string{"introduced", "1.0"}, [2]string{"fixed", "1.1"}, [2]string{"introduced", "2.0"}, [2]string{"fixed", "2.3"}), "2.2", true},
		{"the gap between intervals is not affected", events([2]string{"introduced", "1.0"}, [2]string{"fixed", "1.1"}, [2]string{"introduced", "2.0"}, [2]string{"fixed", "2.3"}), "1.5", false},
		{"equal with a build suffix equals the fixed version", events([2]string{"introduced", "0"}, [2]string{"fixed", "1.1.4"}), "1.1.4 Build 20230219 rel.73395", false},
		{"build metadata on the bound is ignored", events([2]string{"introduced", "0"}, [2]string{"fixed", "1.1.4+build7"}), "1.1.4", false},
		{"a pre-release of the fixed version is affected", events([2]string{"introduced", "0"}, [2]string{"fixed", "1.1.4"}), "1.1.4-rc2", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ivs, err := osvEvents(tt.events)
			if err != nil {
				t.Fatal(err)
			}
			got := false
			for _, iv := range ivs {
				got = got || iv.Contains(tt.version)
			}
			if got != tt.want {
				t.Fatalf("%s in %v = %v, want %v", tt.version, ivs, got, tt.want)
			}
		})
	}
}

func TestNVDBoundsAreHonoured(t *testing.T) {
	tests := []struct {
		name    string
		iv      Interval
		version string
		want    bool
	}{
		{"versionStartExcluding leaves the start out", Interval{Start: "1.0"}, "1.0", false},
		{"versionStartIncluding keeps the start", Interval{Start: "1.0", StartIncl: true}, "1.0", true},
		{"versionEndIncluding keeps the end", Interval{End: "2.0", EndIncl: true}, "2.0", true},
		{"versionEndExcluding leaves the end out", Interval{End: "2.0"}, "2.0", false},
		{"an exact version matches only itself", Exact("1.1.3"), "1.1.3", true},
		{"an exact version rejects its successor", Exact("1.1.3"), "1.1.4", false},
		{"an unbounded interval matches all", Interval{}, "7", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.iv.Contains(tt.version); got != tt.want {
				t.Fatalf("%v contains %s = %v, want %v", tt.iv, tt.version, got, tt.want)
			}
		})
	}
}

func TestParseCPE(t *testing.T) {
	tests := []struct {
		name, in        string
		vendor, product string
		version         string
		ok              bool
	}{
		{"a full CPE parses", "cpe:2.3:o:tp-link:archer_ax21_firmware:1.1.3:*:*:*:*:*:*:*", "tp-link", "archer_ax21_firmware", "1.1.3", true},
		{"escaped colons and dots are unescaped", `cpe:2.3:a:foo\:bar:baz\.qux:1\.0:*:*:*:*:*:*:*`, "foo:bar", "baz.qux", "1.0", true},
		{"missing trailing fields are ANY", "cpe:2.3:a:busybox:busybox", "busybox", "busybox", "*", true},
		{"CPE 2.2 URIs are refused", "cpe:/a:busybox:busybox:1.0", "", "", "", false},
		{"too many fields are refused", "cpe:2.3:a:b:c:d:e:f:g:h:i:j:k:l", "", "", "", false},
		{"an unknown part is refused", "cpe:2.3:x:b:c", "", "", "", false},
		{"a trailing backslash is refused", `cpe:2.3:a:b:c\`, "", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseCPE(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok %v", err, tt.ok)
			}
			if tt.ok && (c.Vendor != tt.vendor || c.Product != tt.product || c.Version != tt.version) {
				t.Fatalf("got %+v", c)
			}
		})
	}
}

func TestParsePURL(t *testing.T) {
	tests := []struct {
		name, in string
		key      string
		version  string
		ok       bool
	}{
		{"a generic purl parses", "pkg:generic/busybox@1.33.2", "generic//busybox", "1.33.2", true},
		{"a namespace and qualifiers parse", "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12", "deb/debian/libssl3", "3.0.11-1~deb12u2", true},
		{"percent-encoding is decoded", "pkg:npm/%40angular/core@16.0.0", "npm/@angular/core", "16.0.0", true},
		{"a subpath is split off", "pkg:golang/github.com/a/b@v1.0.0#sub/dir", "golang/github.com/a/b", "v1.0.0", true},
		{"a missing version is fine", "pkg:generic/dropbear", "generic//dropbear", "", true},
		{"no pkg scheme is refused", "generic/busybox@1", "", "", false},
		{"no name is refused", "pkg:generic/", "", "", false},
		{"bad escapes are refused", "pkg:generic/a%zz@1", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePURL(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok %v", err, tt.ok)
			}
			if tt.ok && (p.Key() != tt.key || p.Version != tt.version) {
				t.Fatalf("got key %q version %q", p.Key(), p.Version)
			}
		})
	}
}

func TestNormalizeNames(t *testing.T) {
	tests := []struct{ in, want string }{
		{"TP-Link", "tplink"}, {"tp_link", "tplink"}, {"Dahua", "dahuasecurity"}, {"Ubiquiti Networks", "ui"},
	}
	for _, tt := range tests {
		if got := NormalizeVendor(tt.in); got != tt.want {
			t.Errorf("NormalizeVendor(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if NormalizeProduct("Archer AX21") != NormalizeProduct("archer_ax21") {
		t.Error("product names do not fold alike")
	}
}

func TestCVSS3Score(t *testing.T) {
	tests := []struct {
		vector string
		want   float64
	}{
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8},
		{"CVSS:3.1/AV:A/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 8.8},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10},
		{"CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N", 5.5},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0},
	}
	for _, tt := range tests {
		if got, err := CVSS3Score(tt.vector); err != nil || got != tt.want {
			t.Errorf("CVSS3Score(%s) = %v, %v; want %v", tt.vector, got, err, tt.want)
		}
	}
}
