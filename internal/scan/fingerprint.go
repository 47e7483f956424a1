package scan

import (
	"fmt"
	"regexp"
	"strings"
)

// Guess is what the banners of a host or port suggest it is: the maker,
// the product and its version, the operating system. It is a guess: a
// banner can be changed by the device's owner or copied by another
// firmware, and Evidence says which banner each part came from.
type Guess struct {
	Vendor  string `json:"vendor,omitempty"`
	Product string `json:"product,omitempty"`
	Version string `json:"version,omitempty"`
	// OS is the operating system or its distribution ("Linux 3.10",
	// "Raspbian"), when a banner tells.
	OS string `json:"os,omitempty"`
	// Device is true when the guess names a device maker or line (a
	// Hikvision camera), false when it names only the software on it
	// (BusyBox, lighttpd), which many makers ship.
	Device bool `json:"device"`
	// Evidence are the port and banner each part came from
	// ("80/tcp server: DNVRS-Webs").
	Evidence []string `json:"evidence,omitempty"`
}

// fingerprint recognises a product from one banner field of a port.
type fingerprint struct {
	fields  []string       // Details keys, or "banner"
	re      *regexp.Regexp // on the field's value
	vendor  string
	product string
	version string // a regexp template ("$1") or ""
	os      string // a regexp template or ""
	device  bool   // names a device maker, not only a software component
	port    int    // only on this port (0: any)
}

// The fingerprints, device makers first: the first that matches a port
// names it. Sources: the project's own banners (BusyBox's applet banner
// in libbb/messages.c, dropbear's DROPBEAR_VERSION in sysoptions.h,
// OpenSSH's SSH_VERSION and Debian's SSH_EXTRAVERSION patch), nmap's
// nmap-service-probes match lines for the web servers, RTSP servers and
// DVRs (https://svn.nmap.org/nmap/nmap-service-probes), and the vendor
// and CERT advisories named beside the rules.
var fingerprints = []fingerprint{
	// Hikvision cameras and NVRs: "DNVRS-Webs", "App-webs/", "Hikvision-Webs"
	// web servers (nmap-service-probes; ICSA-17-124-01), their RTSP server
	// and page titles.
	{fields: []string{"server", "ssdp_server"}, re: regexp.MustCompile(`(?i)\b(DNVRS-Webs|App-webs|Hikvision-Webs)\b`), vendor: "Hikvision", product: "IP camera / NVR web server ($1)", device: true},
	{fields: []string{"title", "realm"}, re: regexp.MustCompile(`(?i)\bhikvision\b`), vendor: "Hikvision", product: "IP camera / NVR", device: true},
	{fields: []string{"server"}, re: regexp.MustCompile(`(?i)^HikvisionRtspServer|^Hikvision`), vendor: "Hikvision", product: "IP camera RTSP server", device: true},
	// Dahua: "Dahua Rtsp Server", the "WEB SERVICE" login page title and
	// the DVR protocol on 37777 (nmap-service-probes "dahua-dvr").
	{fields: []string{"server"}, re: regexp.MustCompile(`(?i)^Dahua`), vendor: "Dahua", product: "IP camera / DVR", device: true},
	{fields: []string{"title", "realm"}, re: regexp.MustCompile(`(?i)\bdahua\b|^WEB SERVICE$`), vendor: "Dahua", product: "IP camera / DVR", device: true},
	// Xiongmai (XMeye) DVRs, NVRs and cameras: the "uc-httpd" web server
	// (nmap-service-probes; the Mirai/Hajime advisories of 2016, e.g. Flashpoint's).
	{fields: []string{"server"}, re: regexp.MustCompile(`(?i)^uc-httpd(?:[ /]([\d.]+))?`), vendor: "Xiongmai", product: "DVR / NVR / IP camera (uc-httpd)", version: "$1", device: true},
	// MikroTik RouterOS: "ROSSSH" SSH server, RouterOS page titles.
	{fields: []string{"ssh_software"}, re: regexp.MustCompile(`^ROSSSH`), vendor: "MikroTik", product: "RouterOS", os: "RouterOS", device: true},
	{fields: []string{"title", "banner"}, re: regexp.MustCompile(`(?i)RouterOS v?([\d.]+)`), vendor: "MikroTik", product: "RouterOS", version: "$1", os: "RouterOS", device: true},
	// Consumer routers announce themselves in the login realm.
	{fields: []string{"realm", "title"}, re: regexp.MustCompile(`(?i)\b(NETGEAR|TP-?LINK|D-Link|Linksys|ZyXEL|ASUS)\b[ -]?([\w-]*)`), vendor: "$1", product: "router $2", device: true},
	// TR-069 (CWMP) connection request servers on 7547: RomPager
	// (Misfortune Cookie, CERT VU#561444) and gSOAP (the 2016 Mirai
	// variant against Eir D1000 / Zyxel routers).
	{fields: []string{"server"}, re: regexp.MustCompile(`^RomPager/([\w.]+)`), vendor: "Allegro Software", product: "RomPager", version: "$1", port: 7547},
	{fields: []string{"server"}, re: regexp.MustCompile(`^gSOAP/([\w.]+)`), vendor: "Genivia", product: "gSOAP (TR-069 CWMP)", version: "$1", port: 7547},

	// Software components, shipped by many makers.
	{fields: []string{"server"}, re: regexp.MustCompile(`^RomPager/([\w.]+)`), vendor: "Allegro Software", product: "RomPager", version: "$1"},
	{fields: []string{"server"}, re: regexp.MustCompile(`^GoAhead-Webs(?:/([\w.-]+))?|^GoAhead-http`), vendor: "Embedthis", product: "GoAhead WebServer", version: "$1"},
	{fields: []string{"server"}, re: regexp.MustCompile(`^Boa/([\w.]+)`), product: "Boa", version: "$1"},
	{fields: []string{"server"}, re: regexp.MustCompile(`^lighttpd(?:/([\w.]+))?`), product: "lighttpd", version: "$1"},
	{fields: []string{"server"}, re: regexp.MustCompile(`^mini_httpd(?:/([\w.]+))?`), vendor: "ACME Labs", product: "mini_httpd", version: "$1"},
	{fields: []string{"server"}, re: regexp.MustCompile(`^thttpd(?:/([\w.]+))?`), vendor: "ACME Labs", product: "thttpd", version: "$1"},
	{fields: []string{"server"}, re: regexp.MustCompile(`^micro_httpd`), vendor: "ACME Labs", product: "micro_httpd"},
	{fields: []string{"server"}, re: regexp.MustCompile(`(?i)^LIVE555 Streaming Media v([\d.]+)`), vendor: "Live Networks", product: "LIVE555 Streaming Media", version: "$1"},
	{fields: []string{"server"}, re: regexp.MustCompile(`(?i)^GStreamer RTSP server`), product: "GStreamer RTSP server"},
	{fields: []string{"server", "banner"}, re: regexp.MustCompile(`(?i)\bmosquitto(?:[ /]v?(?:version )?([\d.]+))?`), vendor: "Eclipse", product: "Mosquitto", version: "$1"},
	{fields: []string{"server"}, re: regexp.MustCompile(`^nginx(?:/([\w.]+))?`), product: "nginx", version: "$1"},
	{fields: []string{"server"}, re: regexp.MustCompile(`^Apache(?:/([\w.]+))?`), vendor: "Apache", product: "HTTP Server", version: "$1"},
	// SSH: dropbear_2022.83; OpenSSH_7.4p1 with "Debian-10+deb9u7",
	// "Raspbian-10+deb9u7" or "Ubuntu-4ubuntu0.3" as the comment.
	{fields: []string{"ssh_software"}, re: regexp.MustCompile(`^dropbear_(\d{4}\.\d+)`), product: "Dropbear SSH", version: "$1"},
	{fields: []string{"ssh_software"}, re: regexp.MustCompile(`^dropbear`), product: "Dropbear SSH"},
	{fields: []string{"banner"}, re: regexp.MustCompile(`^SSH-[\d.]+-OpenSSH_([\w.]+)`), vendor: "OpenBSD", product: "OpenSSH", version: "$1"},
	// BusyBox announces itself in its shell and login banners:
	// "BusyBox v1.19.4 (2013-03-01 12:00:00 CST) built-in shell (ash)".
	{fields: []string{"banner"}, re: regexp.MustCompile(`BusyBox v(\d+\.\d+(?:\.\d+)?)`), product: "BusyBox", version: "$1", os: "Linux"},
}

// osFingerprints name the operating system from SSDP, HTTP and SSH
// banners; UPnP servers announce "OS/version UPnP/1.0 product/version"
// (UPnP Device Architecture 1.0, SERVER header).
var osFingerprints = []fingerprint{
	{fields: []string{"ssh_comments"}, re: regexp.MustCompile(`^Raspbian`), os: "Raspbian"},
	{fields: []string{"ssh_comments"}, re: regexp.MustCompile(`^Debian`), os: "Debian"},
	{fields: []string{"ssh_comments"}, re: regexp.MustCompile(`^Ubuntu`), os: "Ubuntu"},
	{fields: []string{"server", "ssdp_server"}, re: regexp.MustCompile(`(?i)\bLinux/(\d+\.\d+(?:\.\d+)?)`), os: "Linux $1"},
}

// portHints are weak guesses from a port alone: only these makers' DVRs
// listen on them by default (nmap-services; Dahua and Xiongmai manuals).
var portHints = map[int]Guess{
	37777: {Vendor: "Dahua", Product: "DVR / NVR (port 37777)", Device: true},
	34567: {Vendor: "Xiongmai", Product: "DVR / NVR (port 34567)", Device: true},
}

func (f fingerprint) match(p *Port) (g Guess, ok bool) {
	if f.port != 0 && f.port != p.Number {
		return g, false
	}
	for _, field := range f.fields {
		v := p.Details[field]
		if field == "banner" {
			v = p.Banner
		}
		m := f.re.FindStringSubmatchIndex(v)
		if m == nil {
			continue
		}
		expand := func(tmpl string) string {
			if tmpl == "" {
				return ""
			}
			return strings.TrimSpace(string(f.re.ExpandString(nil, tmpl, v, m)))
		}
		g = Guess{Vendor: expand(f.vendor), Product: expand(f.product), Version: expand(f.version), OS: expand(f.os), Device: f.device}
		g.Evidence = []string{fmt.Sprintf("%d/%s %s: %s", p.Number, p.Proto, field, truncate(v, 80))}
		return g, true
	}
	return g, false
}

// fingerprintPort sets Details["vendor"], ["product"], ["version"] and
// ["os"] of p from the first fingerprint its banners match, and returns the
// guess. Details a probe set itself (a BACnet vendor id) are kept.
func fingerprintPort(p *Port) (Guess, bool) {
	var g Guess
	ok := false
	for _, f := range fingerprints {
		if g, ok = f.match(p); ok {
			break
		}
	}
	for _, f := range osFingerprints {
		if og, found := f.match(p); found {
			if g.OS == "" || len(og.OS) > len(g.OS) {
				g.OS = og.OS
			}
			g.Evidence = append(g.Evidence, og.Evidence...)
			ok = true
			break
		}
	}
	if !ok {
		if v := p.Details["vendor"]; v != "" { // from the protocol itself
			return Guess{Vendor: v, Device: true, Evidence: []string{fmt.Sprintf("%d/%s vendor", p.Number, p.Proto)}}, true
		}
		return Guess{}, false
	}
	if p.Details == nil {
		p.Details = map[string]string{}
	}
	for k, v := range map[string]string{"vendor": g.Vendor, "product": g.Product, "version": g.Version, "os": g.OS} {
		if v != "" && p.Details[k] == "" {
			p.Details[k] = v
		}
	}
	return g, true
}

// guessHost combines the guesses of a host's ports and fills the ports'
// details. A device maker named by a banner wins, then one a port hints
// at (37777, 34567), then the software components; ties go to the lowest
// port. The OS is the most specific any port told.
func guessHost(ports []Port) *Guess {
	var best *Guess
	bestRank := 0
	var evidence []string
	osName := ""
	for i := range ports {
		g, ok := fingerprintPort(&ports[i])
		rank := 1
		if ok && g.Device {
			rank = 3
		}
		if h, hinted := portHints[ports[i].Number]; hinted && !(ok && g.Device) {
			g, ok, rank = h, true, 2
			g.Evidence = []string{fmt.Sprintf("%d/%s open", ports[i].Number, ports[i].Proto)}
		}
		if !ok {
			continue
		}
		evidence = append(evidence, g.Evidence...)
		if len(g.OS) > len(osName) {
			osName = g.OS
		}
		if (g.Vendor != "" || g.Product != "") && rank > bestRank {
			c := g
			best, bestRank = &c, rank
		}
	}
	if best == nil && osName == "" {
		return nil
	}
	if best == nil {
		best = &Guess{}
	}
	best.OS = osName
	best.Evidence = evidence
	return best
}
