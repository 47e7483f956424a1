package vuln

import (
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Catalog is an immutable index of advisories and KEV entries, built once
// by NewCatalog and safe for concurrent matching. Lookups are by
// normalised vendor+product and by package URL key, so matching a device
// costs a few map lookups and range checks, independent of catalog size.
type Catalog struct {
	advisories []*Advisory
	kev        map[string]KEVEntry
	byProduct  map[string][]entry
	byPURL     map[string][]entry
	// wildcards holds, per vendor, products NVD names with a run of x's
	// ("ipc-hum7xxx"): a model family, matched by pattern.
	wildcards map[string][]wildEntry
	// platformRE holds the family patterns of AND-configuration platforms.
	platformRE map[string]platformPattern
}

type entry struct {
	adv *Advisory
	af  *Affected
	// keys holds the parsed bounds of af.Ranges, so matching parses only
	// the device's version.
	keys []intervalKeys
}

type intervalKeys struct {
	start, end []versionToken
}

func (k intervalKeys) contains(r Interval, v []versionToken) bool {
	if r.Start != "" {
		c := compareKeys(v, k.start)
		if c < 0 || (c == 0 && !r.StartIncl) {
			return false
		}
	}
	if r.End != "" {
		c := compareKeys(v, k.end)
		if c > 0 || (c == 0 && !r.EndIncl) {
			return false
		}
	}
	return true
}

type wildEntry struct {
	re *regexp.Regexp
	entry
}

var xRun = regexp.MustCompile(`xx+`)

// NewCatalog indexes advisories and KEV entries. An advisory that appears
// twice (same source and ID) keeps the later copy. A KEV entry whose CVE no
// advisory describes becomes an advisory of its own that matches by vendor
// and product only, with no version check.
func NewCatalog(advisories []Advisory, kev []KEVEntry) *Catalog {
	c := &Catalog{
		kev:        make(map[string]KEVEntry, len(kev)),
		byProduct:  map[string][]entry{},
		byPURL:     map[string][]entry{},
		wildcards:  map[string][]wildEntry{},
		platformRE: map[string]platformPattern{},
	}
	seen := map[string]int{}
	known := map[string]bool{}
	for i := range advisories {
		a := advisories[i]
		k := string(a.Source) + "\x00" + a.ID
		if j, ok := seen[k]; ok {
			c.advisories[j] = &a
			continue
		}
		seen[k] = len(c.advisories)
		c.advisories = append(c.advisories, &a)
	}
	for _, a := range c.advisories {
		if len(a.Affected) == 0 {
			continue // e.g. a CVE 5 record with product "n/a": KEV still gives vendor and product
		}
		known[a.ID] = true
		for _, al := range a.Aliases {
			known[al] = true
		}
	}
	for _, e := range kev {
		c.kev[e.CVEID] = e
		if known[e.CVEID] {
			continue
		}
		known[e.CVEID] = true
		a := &Advisory{ID: e.CVEID, Source: FormatKEV, Summary: e.VulnerabilityName}
		vendor := NormalizeVendor(e.VendorProject)
		for _, p := range kevProducts(e.Product) {
			a.Affected = append(a.Affected, Affected{Vendor: vendor, Product: p, AllVersions: true})
		}
		c.advisories = append(c.advisories, a)
	}
	for _, a := range c.advisories {
		for i := range a.Affected {
			af := &a.Affected[i]
			keys := make([]intervalKeys, len(af.Ranges))
			for j, r := range af.Ranges {
				keys[j] = intervalKeys{versionKey(r.Start), versionKey(r.End)}
			}
			c.index(entry{a, af, keys})
		}
	}
	return c
}

func (c *Catalog) index(e entry) {
	af := e.af
	if af.PURLKey != "" {
		c.byPURL[af.PURLKey] = append(c.byPURL[af.PURLKey], e)
		return
	}
	products := []string{af.Product}
	if p, ok := strings.CutSuffix(af.Product, "firmware"); ok && p != "" {
		products = append(products, p)
	}
	for _, pl := range af.Platforms {
		if v, p, _ := strings.Cut(pl, ":"); v == af.Vendor && p != "" {
			products = append(products, p)
		}
		if _, ok := c.platformRE[pl]; !ok {
			v, p, _ := strings.Cut(pl, ":")
			c.platformRE[pl] = platformPattern{v, familyPattern(p)}
		}
	}
	done := map[string]bool{}
	for _, p := range products {
		if done[p] {
			continue
		}
		done[p] = true
		if re := familyPattern(p); re != nil {
			c.wildcards[af.Vendor] = append(c.wildcards[af.Vendor], wildEntry{re, e})
		}
		k := af.Vendor + "\x00" + p
		c.byProduct[k] = append(c.byProduct[k], e)
	}
}

// familyPattern compiles a product name with runs of two or more x's
// ("ipchum7xxx", NVD's way of naming a model family) into a pattern where
// each x stands for one letter or digit and, when the name ends in x's, any
// further suffix may follow ("ipchum7242s2"). It returns nil for a plain name.
func familyPattern(p string) *regexp.Regexp {
	if !xRun.MatchString(p) {
		return nil
	}
	pat := xRun.ReplaceAllStringFunc(p, func(run string) string { return "[a-z0-9]{" + strconv.Itoa(len(run)) + "}" })
	if len(p) >= 2 && xRun.MatchString(p[len(p)-2:]) {
		pat += "[a-z0-9]*"
	}
	re, err := regexp.Compile("^" + pat + "$")
	if err != nil {
		return nil
	}
	return re
}

type platformPattern struct {
	vendor string
	re     *regexp.Regexp
}

// kevProducts splits KEV's free-text product ("DCS-2530L and DCS-2670L
// Devices", "Multiple Routers") into normalised product names, dropping
// generic words.
func kevProducts(s string) []string {
	s = strings.NewReplacer(" and ", ",", "/", ",", ";", ",").Replace(s)
	var out []string
	for _, p := range strings.Split(s, ",") {
		words := strings.Fields(p)
		for len(words) > 0 {
			switch strings.ToLower(words[len(words)-1]) {
			case "devices", "device", "routers", "router", "firmware", "cameras", "camera", "series":
				words = words[:len(words)-1]
				continue
			}
			break
		}
		if n := NormalizeProduct(strings.Join(words, " ")); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// Len is the number of advisories in the catalog, KEV-only ones included.
func (c *Catalog) Len() int { return len(c.advisories) }

// Advisories returns the catalog's advisories, sorted by ID.
func (c *Catalog) Advisories() []Advisory {
	out := make([]Advisory, 0, len(c.advisories))
	for _, a := range c.advisories {
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Target is a device to check: its identity, firmware, operating system
// and the components of the SBOM attached to its model and firmware.
type Target struct {
	DeviceID        string         `json:"device_id,omitempty"`
	Vendor          string         `json:"vendor"`
	Model           string         `json:"model"`
	FirmwareVersion string         `json:"firmware_version,omitempty"`
	OS              string         `json:"os,omitempty"`
	OSVersion       string         `json:"os_version,omitempty"`
	Components      []Component    `json:"components,omitempty"`
	VEX             []VEXStatement `json:"vex,omitempty"`
}

// TargetFromSBOM builds a Target from device identity and an SBOM: the
// components and VEX statements are copied; a VEX statement about the
// SBOM's subject applies to every match on the device.
func TargetFromSBOM(deviceID, vendor, model, firmware string, sb *SBOM) Target {
	t := Target{DeviceID: deviceID, Vendor: vendor, Model: model, FirmwareVersion: firmware}
	if sb != nil {
		t.Components = sb.Components
		// A statement about the SBOM's subject (metadata.component) covers
		// the device as a whole, its firmware included.
		for _, v := range sb.VEX {
			for _, a := range v.Affects {
				if a != "" && a == sb.Subject.BOMRef {
					v.Affects = nil
					break
				}
			}
			t.VEX = append(t.VEX, v)
		}
	}
	return t
}

// Match is one advisory found to affect a target: which advisory, what on
// the device matched, and why.
type Match struct {
	DeviceID   string   `json:"device_id,omitempty"`
	AdvisoryID string   `json:"advisory_id"`
	Source     Format   `json:"source"`
	Aliases    []string `json:"aliases,omitempty"`
	Summary    string   `json:"summary,omitempty"`
	CVSS       float64  `json:"cvss,omitempty"`
	Severity   string   `json:"severity,omitempty"`
	// KnownExploited is set when CISA KEV lists the CVE (the ID or an alias).
	KnownExploited bool   `json:"known_exploited"`
	KEVDateAdded   string `json:"kev_date_added,omitempty"`
	KEVDueDate     string `json:"kev_due_date,omitempty"`
	RansomwareUse  string `json:"ransomware_use,omitempty"`
	// Matched names what matched: "firmware tplink/archerax21@1.1.3" or
	// "component pkg:generic/busybox@1.33.2".
	Matched string `json:"matched"`
	// Reason is the range the version fell in ("< 1.1.4"), "all versions",
	// or "version not checked" for KEV entries without version data.
	Reason         string `json:"reason"`
	VersionChecked bool   `json:"version_checked"`
}

type probe struct {
	what    string
	ref     string
	version string
	keys    []string // vendor\x00product keys
	vendors []string // for wildcard lookups
	product string
	purl    string
	// key and upstreamKey are the parsed version, as is and without a
	// distribution revision.
	key, upstreamKey []versionToken
}

// Match returns the advisories affecting t, ordered by descending CVSS then
// ID. An advisory a VEX statement marks not_affected or resolved for the
// matched component (or the whole subject) is left out.
func (c *Catalog) Match(t Target) []Match {
	platforms := map[string]bool{}
	var probes []probe
	dv := NormalizeVendor(t.Vendor)
	if t.Model != "" {
		dp := NormalizeProduct(t.Model)
		platforms[dv+":"+dp] = true
		probes = append(probes, probe{what: "firmware " + dv + "/" + dp, version: t.FirmwareVersion,
			keys: []string{dv + "\x00" + dp}, vendors: []string{dv}, product: dp})
	}
	if t.OS != "" {
		var keys []string
		if m, ok := packageCPE[fold(t.OS)]; ok {
			keys = append(keys, m[0]+"\x00"+m[1])
		}
		probes = append(probes, probe{what: "os " + t.OS, version: t.OSVersion, keys: keys})
	}
	for _, comp := range t.Components {
		p := probe{what: "component " + comp.Name, ref: comp.BOMRef, version: comp.Version}
		if comp.PURL != "" {
			p.what = "component " + comp.PURL
			if pu, err := ParsePURL(comp.PURL); err == nil {
				p.purl = pu.Key()
				if p.version == "" {
					p.version = pu.Version
				}
			}
		} else if comp.Version != "" {
			p.what += "@" + comp.Version
		}
		if comp.CPE != "" {
			if cpe, err := ParseCPE(comp.CPE); err == nil {
				v, pr := NormalizeVendor(cpe.Vendor), NormalizeProduct(cpe.Product)
				if cpe.Part == "h" {
					platforms[v+":"+pr] = true
					// Hardware is a platform for firmware advisories; its
					// version is a board revision, not a software version.
					continue
				}
				p.keys = append(p.keys, v+"\x00"+pr)
				p.vendors, p.product = append(p.vendors, v), pr
				if p.version == "" && cpe.Version != "*" && cpe.Version != "-" {
					p.version = cpe.Version
				}
			}
		}
		if m, ok := packageCPE[fold(comp.Name)]; ok {
			p.keys = append(p.keys, m[0]+"\x00"+m[1])
		}
		if comp.Vendor != "" {
			p.keys = append(p.keys, NormalizeVendor(comp.Vendor)+"\x00"+NormalizeProduct(comp.Name))
		}
		probes = append(probes, p)
	}

	var out []Match
	type seenKey struct {
		adv   *Advisory
		probe int
	}
	seen := map[seenKey]bool{}
	for pi := range probes {
		p := &probes[pi]
		p.key = versionKey(p.version)
		p.upstreamKey = versionKey(stripRevision(p.version))
		try := func(e entry) {
			k := seenKey{e.adv, pi}
			if seen[k] {
				return
			}
			m, ok := c.check(e, p, platforms)
			if !ok || suppressed(t.VEX, e.adv, p.ref) {
				return
			}
			seen[k] = true
			m.DeviceID = t.DeviceID
			out = append(out, m)
		}
		if p.purl != "" {
			for _, e := range c.byPURL[p.purl] {
				try(e)
			}
		}
		for _, k := range p.keys {
			for _, e := range c.byProduct[k] {
				try(e)
			}
		}
		if p.product != "" {
			for _, v := range p.vendors {
				for _, w := range c.wildcards[v] {
					if w.re.MatchString(p.product) {
						try(w.entry)
					}
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].CVSS != out[j].CVSS {
			return out[i].CVSS > out[j].CVSS
		}
		if out[i].AdvisoryID != out[j].AdvisoryID {
			return out[i].AdvisoryID < out[j].AdvisoryID
		}
		return out[i].Matched < out[j].Matched
	})
	return out
}

func (c *Catalog) check(e entry, p *probe, platforms map[string]bool) (Match, bool) {
	af := e.af
	if len(af.Platforms) > 0 {
		ok := false
		for _, pl := range af.Platforms {
			if platforms[pl] {
				ok = true
				break
			}
			if pp := c.platformRE[pl]; pp.re != nil {
				for have := range platforms {
					if v, p, _ := strings.Cut(have, ":"); v == pp.vendor && pp.re.MatchString(p) {
						ok = true
					}
				}
			}
		}
		if !ok {
			return Match{}, false
		}
	}
	m := Match{AdvisoryID: e.adv.ID, Source: e.adv.Source, Aliases: e.adv.Aliases, Summary: e.adv.Summary,
		CVSS: e.adv.CVSS, Severity: e.adv.Severity, Matched: p.what}
	switch {
	case af.AllVersions && e.adv.Source == FormatKEV:
		m.Reason = "version not checked: KEV lists vendor and product only"
	case af.AllVersions:
		m.Reason, m.VersionChecked = "all versions", true
	default:
		v, key := p.version, p.key
		if v == "" {
			return Match{}, false
		}
		if af.Upstream {
			v, key = stripRevision(v), p.upstreamKey
		}
		found := false
		for i, r := range af.Ranges {
			if e.keys[i].contains(r, key) {
				m.Reason, m.VersionChecked, found = "version "+v+" in "+r.String(), true, true
				break
			}
		}
		if !found {
			return Match{}, false
		}
		if !strings.Contains(m.Matched, "@") {
			m.Matched += "@" + p.version
		}
	}
	if len(af.Platforms) > 0 {
		m.Reason += " on " + strings.Join(af.Platforms, " or ")
	}
	for _, id := range append([]string{e.adv.ID}, e.adv.Aliases...) {
		if k, ok := c.kev[id]; ok {
			m.KnownExploited, m.KEVDateAdded, m.KEVDueDate, m.RansomwareUse = true, k.DateAdded, k.DueDate, k.RansomwareUse
			break
		}
	}
	return m, true
}

func suppressed(vex []VEXStatement, a *Advisory, ref string) bool {
	if len(vex) == 0 {
		return false
	}
	ids := append([]string{a.ID}, a.Aliases...)
	for _, v := range vex {
		if v.suppresses(ids, ref) {
			return true
		}
	}
	return false
}
