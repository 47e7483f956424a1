package vuln

import (
	"net/url"
	"strings"

	"github.com/fleetward/fleetward/internal/apperr"
)

// vendorAliases maps a folded vendor name to the one NVD uses, so a device
// registered as "Dahua" finds advisories filed under "dahuasecurity".
var vendorAliases = map[string]string{
	"dahua":               "dahuasecurity",
	"dahuatechnology":     "dahuasecurity",
	"hikvisiondigital":    "hikvision",
	"mikrotikls":          "mikrotik",
	"ubnt":                "ui",
	"ubiquiti":            "ui",
	"ubiquitinetworks":    "ui",
	"zyxelcommunications": "zyxel",
	"netgearinc":          "netgear",
	"tplinktechnologies":  "tplink",
	"dlinkcorporation":    "dlink",
	"dropbear":            "dropbearsshproject",
	"eclipsefoundation":   "eclipse",
	"linuxfoundation":     "linux",
	"thekelley":           "thekelleys",
}

// NormalizeVendor folds a vendor name for lookups: lower-case, every
// character that is not an ASCII letter or digit removed ("TP-Link" and
// "tp_link" both become "tplink"), then a small alias table applied.
func NormalizeVendor(s string) string {
	f := fold(s)
	if a, ok := vendorAliases[f]; ok {
		return a
	}
	return f
}

// NormalizeProduct folds a product or model name the same way as
// NormalizeVendor, without aliases ("Archer AX21" = "archer_ax21").
func NormalizeProduct(s string) string { return fold(s) }

func fold(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
		case isLower(c) || isDigit(c):
			b.WriteByte(c)
		}
	}
	return b.String()
}

// packageCPE maps package names as SBOM tools and package managers spell
// them to the vendor and product NVD files advisories under (syft invents
// cpe:2.3:a:dropbear:dropbear, NVD says dropbear_ssh_project:dropbear_ssh).
var packageCPE = map[string][2]string{
	"busybox":        {"busybox", "busybox"},
	"dropbear":       {"dropbearsshproject", "dropbearssh"},
	"dropbearssh":    {"dropbearsshproject", "dropbearssh"},
	"mosquitto":      {"eclipse", "mosquitto"},
	"mosquittossl":   {"eclipse", "mosquitto"},
	"mosquittonossl": {"eclipse", "mosquitto"},
	"openssl":        {"openssl", "openssl"},
	"libopenssl":     {"openssl", "openssl"},
	"libopenssl3":    {"openssl", "openssl"},
	"libopenssl11":   {"openssl", "openssl"},
	"libssl3":        {"openssl", "openssl"},
	"libssl11":       {"openssl", "openssl"},
	"dnsmasq":        {"thekelleys", "dnsmasq"},
	"linux":          {"linux", "linuxkernel"},
	"linuxkernel":    {"linux", "linuxkernel"},
	"kernel":         {"linux", "linuxkernel"},
	"uhttpd":         {"openwrt", "uhttpd"},
	"lighttpd":       {"lighttpd", "lighttpd"},
	"curl":           {"haxx", "curl"},
	"libcurl":        {"haxx", "curl"},
	"zlib":           {"zlib", "zlib"},
	"openssh":        {"openbsd", "openssh"},
}

// CPE is a parsed CPE 2.3 formatted string. Fields hold the unescaped
// values; "*" is ANY and "-" is NA, as written.
type CPE struct {
	Part, Vendor, Product, Version, Update, Edition, Language string
	SWEdition, TargetSW, TargetHW, Other                      string
}

// ParseCPE parses "cpe:2.3:part:vendor:product:version:…" (13 fields, with
// backslash escapes such as "\:" and "\."). Missing trailing fields are ANY.
func ParseCPE(s string) (CPE, error) {
	if !strings.HasPrefix(s, "cpe:2.3:") {
		return CPE{}, apperr.InvalidField("cpe", "%q does not start with cpe:2.3:", s)
	}
	var fields []string
	var cur strings.Builder
	rest := s[len("cpe:2.3:"):]
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		switch {
		case c == '\\':
			if i+1 >= len(rest) {
				return CPE{}, apperr.InvalidField("cpe", "%q ends with a lone backslash", s)
			}
			i++
			cur.WriteByte(rest[i])
		case c == ':':
			fields = append(fields, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	fields = append(fields, cur.String())
	if len(fields) > 11 {
		return CPE{}, apperr.InvalidField("cpe", "%q has %d fields, want 11 after cpe:2.3", s, len(fields))
	}
	for len(fields) < 11 {
		fields = append(fields, "*")
	}
	switch fields[0] {
	case "a", "o", "h", "*":
	default:
		return CPE{}, apperr.InvalidField("cpe", "%q has part %q, want a, o or h", s, fields[0])
	}
	if fields[1] == "" || fields[2] == "" {
		return CPE{}, apperr.InvalidField("cpe", "%q has an empty vendor or product", s)
	}
	return CPE{fields[0], fields[1], fields[2], fields[3], fields[4], fields[5], fields[6],
		fields[7], fields[8], fields[9], fields[10]}, nil
}

// PURL is a parsed package URL (pkg:type/namespace/name@version?qualifiers#subpath).
type PURL struct {
	Type, Namespace, Name, Version string
	Qualifiers                     map[string]string
	Subpath                        string
}

// Key is the lookup key of the package regardless of version:
// "type/namespace/name", lower-cased.
func (p PURL) Key() string {
	return strings.ToLower(p.Type + "/" + p.Namespace + "/" + p.Name)
}

// ParsePURL parses a package URL per the purl specification: percent-encoded
// segments, an optional namespace of several segments, version after the
// last "@" of the path.
func ParsePURL(s string) (PURL, error) {
	rest, ok := strings.CutPrefix(s, "pkg:")
	if !ok {
		return PURL{}, apperr.InvalidField("purl", "%q does not start with pkg:", s)
	}
	rest = strings.TrimLeft(rest, "/")
	var p PURL
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		sub, err := url.PathUnescape(rest[i+1:])
		if err != nil {
			return PURL{}, apperr.InvalidField("purl", "%q has a bad subpath: %v", s, err)
		}
		p.Subpath = strings.Trim(sub, "/")
		rest = rest[:i]
	}
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		q := rest[i+1:]
		rest = rest[:i]
		for _, kv := range strings.Split(q, "&") {
			if kv == "" {
				continue
			}
			k, v, _ := strings.Cut(kv, "=")
			uv, err := url.QueryUnescape(v)
			if err != nil {
				return PURL{}, apperr.InvalidField("purl", "%q has a bad qualifier %q: %v", s, k, err)
			}
			if p.Qualifiers == nil {
				p.Qualifiers = map[string]string{}
			}
			p.Qualifiers[strings.ToLower(k)] = uv
		}
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		v, err := url.PathUnescape(rest[i+1:])
		if err != nil {
			return PURL{}, apperr.InvalidField("purl", "%q has a bad version: %v", s, err)
		}
		p.Version = v
		rest = rest[:i]
	}
	typ, path, ok := strings.Cut(rest, "/")
	if !ok || typ == "" {
		return PURL{}, apperr.InvalidField("purl", "%q has no type/name", s)
	}
	p.Type = strings.ToLower(typ)
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i, seg := range segs {
		u, err := url.PathUnescape(seg)
		if err != nil {
			return PURL{}, apperr.InvalidField("purl", "%q has a bad path segment: %v", s, err)
		}
		segs[i] = u
	}
	p.Name = segs[len(segs)-1]
	if p.Name == "" {
		return PURL{}, apperr.InvalidField("purl", "%q has an empty name", s)
	}
	p.Namespace = strings.Join(segs[:len(segs)-1], "/")
	return p, nil
}
