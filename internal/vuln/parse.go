package vuln

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/fleetward/fleetward/internal/apperr"
)

// MaxFileSize bounds one input file; the full KEV catalog is about 1.5 MB.
const MaxFileSize = 64 << 20

// ParseFile reads and parses one advisory or SBOM file; see Parse.
func ParseFile(path string) (*Document, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("vuln: %w", err)
	}
	defer f.Close()
	return Parse(filepath.Base(path), f)
}

// Parse detects the format of r from its content and parses it. name is
// used in errors only. Errors are apperr Invalid errors whose message names
// the file, the record (index and id when known) and the field.
func Parse(name string, r io.Reader) (*Document, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("vuln: read %s: %w", name, err)
	}
	if len(data) > MaxFileSize {
		return nil, apperr.Errorf(apperr.TooLarge, "%s: larger than %d bytes", name, MaxFileSize)
	}
	return ParseBytes(name, data)
}

// ParseBytes is Parse on a byte slice.
func ParseBytes(name string, data []byte) (*Document, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, apperr.InvalidField("file", "%s: empty file", name)
	}
	if !json.Valid(trimmed) {
		var v any
		err := json.Unmarshal(trimmed, &v)
		return nil, apperr.InvalidField("file", "%s: not valid JSON: %s", name, jsonErr(err))
	}
	if trimmed[0] == '[' {
		return parseOSV(name, trimmed, true)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &top); err != nil {
		return nil, apperr.InvalidField("file", "%s: want a JSON object or array: %s", name, jsonErr(err))
	}
	has := func(k string) bool { _, ok := top[k]; return ok }
	switch {
	case has("bomFormat"):
		return parseCycloneDX(name, top)
	case has("spdxVersion"):
		return parseSPDX(name, top)
	case has("catalogVersion"):
		return parseKEV(name, top)
	case has("cveMetadata") || has("dataType") && has("containers"):
		return parseCVE5(name, top)
	case has("vulnerabilities"):
		if bytes.Contains(top["vulnerabilities"], []byte(`"cveID"`)) {
			return parseKEV(name, top)
		}
		return parseNVD(name, top)
	case has("cve") || has("configurations") || has("sourceIdentifier") || has("vulnStatus"):
		return parseNVD(name, top)
	case has("schema_version") || has("affected") || has("modified") && has("id"):
		return parseOSV(name, trimmed, false)
	}
	return nil, apperr.InvalidField("file", "%s: unknown format: not OSV, KEV, NVD, CVE 5, CycloneDX or SPDX", name)
}

// recordErr builds the error for record idx (with id, when known) of file
// name at field.
func recordErr(name string, idx int, id, field, format string, args ...any) error {
	rec := "record " + strconv.Itoa(idx)
	if id != "" {
		rec += " (" + id + ")"
	}
	return apperr.InvalidField(field, "%s: %s: field %s: %s", name, rec, field, fmt.Sprintf(format, args...))
}

// decodeRecord unmarshals one record, turning a type error into one that
// names the field.
func decodeRecord(name string, idx int, raw json.RawMessage, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		id := peekID(raw)
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			field := te.Field
			if field == "" {
				field = "(record)"
			}
			return recordErr(name, idx, id, field, "want %s, got JSON %s", te.Type, te.Value)
		}
		return recordErr(name, idx, id, "(record)", "%s", jsonErr(err))
	}
	return nil
}

// peekID finds a record's id for an error message when the record does not
// decode.
func peekID(raw json.RawMessage) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	for _, k := range []string{"id", "cveID"} {
		var s string
		if json.Unmarshal(m[k], &s) == nil && s != "" {
			return s
		}
	}
	return ""
}

func jsonErr(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%v at byte %d", se, se.Offset)
	}
	if err == nil {
		return "invalid"
	}
	return err.Error()
}

// ---- OSV ----

type osvRecord struct {
	ID       string   `json:"id"`
	Aliases  []string `json:"aliases"`
	Summary  string   `json:"summary"`
	Severity []struct {
		Type  string `json:"type"`
		Score string `json:"score"`
	} `json:"severity"`
	Affected []struct {
		Package struct {
			Ecosystem string `json:"ecosystem"`
			Name      string `json:"name"`
			PURL      string `json:"purl"`
		} `json:"package"`
		Ranges []struct {
			Type   string              `json:"type"`
			Events []map[string]string `json:"events"`
		} `json:"ranges"`
		Versions []string `json:"versions"`
	} `json:"affected"`
}

// osvEcosystemType maps OSV ecosystems to purl types for packages given
// without a purl.
var osvEcosystemType = map[string]string{
	"debian": "deb", "ubuntu": "deb", "alpine": "apk", "npm": "npm", "pypi": "pypi",
	"go": "golang", "crates.io": "cargo", "maven": "maven", "nuget": "nuget",
	"rubygems": "gem", "packagist": "composer", "hex": "hex", "pub": "pub",
	"openwrt": "opkg",
}

func parseOSV(name string, data []byte, array bool) (*Document, error) {
	var raws []json.RawMessage
	if array {
		if err := json.Unmarshal(data, &raws); err != nil {
			return nil, apperr.InvalidField("file", "%s: %s", name, jsonErr(err))
		}
	} else {
		raws = []json.RawMessage{data}
	}
	doc := &Document{Name: name, Format: FormatOSV}
	for i, raw := range raws {
		var rec osvRecord
		if err := decodeRecord(name, i, raw, &rec); err != nil {
			return nil, err
		}
		if strings.TrimSpace(rec.ID) == "" {
			return nil, recordErr(name, i, "", "id", "missing")
		}
		adv := Advisory{ID: rec.ID, Source: FormatOSV, Aliases: rec.Aliases, Summary: rec.Summary}
		for _, s := range rec.Severity {
			if strings.HasPrefix(s.Type, "CVSS_V3") || strings.HasPrefix(s.Type, "CVSS_V4") {
				adv.CVSSVector = s.Score
				if sc, err := CVSS3Score(s.Score); err == nil {
					adv.CVSS = sc
					adv.Severity = SeverityOf(sc)
				}
			}
		}
		for j, a := range rec.Affected {
			field := fmt.Sprintf("affected[%d]", j)
			var key string
			switch {
			case a.Package.PURL != "":
				p, err := ParsePURL(a.Package.PURL)
				if err != nil {
					return nil, recordErr(name, i, rec.ID, field+".package.purl", "%v", err)
				}
				key = p.Key()
			case a.Package.Name != "":
				eco := strings.ToLower(a.Package.Ecosystem)
				if k, _, ok := strings.Cut(eco, ":"); ok {
					eco = k
				}
				typ, ok := osvEcosystemType[eco]
				if !ok {
					typ = "generic"
				}
				ns, n := "", a.Package.Name
				if i := strings.LastIndexByte(n, '/'); i >= 0 && typ != "generic" {
					ns, n = n[:i], n[i+1:]
				}
				if typ == "deb" || typ == "apk" {
					ns = eco // purl spec: pkg:deb/debian/…, pkg:deb/ubuntu/…, pkg:apk/alpine/…
				}
				key = strings.ToLower(typ + "/" + ns + "/" + n)
			default:
				return nil, recordErr(name, i, rec.ID, field+".package", "needs a name or a purl")
			}
			af := Affected{PURLKey: key, Ecosystem: a.Package.Ecosystem}
			for _, v := range a.Versions {
				af.Ranges = append(af.Ranges, Exact(v))
			}
			for k, r := range a.Ranges {
				rfield := fmt.Sprintf("%s.ranges[%d]", field, k)
				if r.Type == "GIT" {
					adv.Notes = append(adv.Notes, rfield+": GIT range ignored (commit hashes cannot be compared with versions)")
					continue
				}
				if r.Type != "SEMVER" && r.Type != "ECOSYSTEM" {
					return nil, recordErr(name, i, rec.ID, rfield+".type", "%q is not SEMVER, ECOSYSTEM or GIT", r.Type)
				}
				ivs, err := osvEvents(r.Events)
				if err != nil {
					return nil, recordErr(name, i, rec.ID, rfield+".events", "%v", err)
				}
				af.Ranges = append(af.Ranges, ivs...)
			}
			if len(af.Ranges) == 0 {
				adv.Notes = append(adv.Notes, field+": no comparable versions or ranges")
				continue
			}
			adv.Affected = append(adv.Affected, af)
		}
		doc.Advisories = append(doc.Advisories, adv)
	}
	return doc, nil
}

// osvEvents turns an OSV event list into intervals. Events are taken in
// order: "introduced" opens an interval ("0" = from the beginning),
// "fixed" closes it exclusively, "last_affected" inclusively; an interval
// still open at the end is unbounded above unless a "limit" caps it.
func osvEvents(events []map[string]string) ([]Interval, error) {
	var out []Interval
	var open *Interval
	limit := ""
	for i, ev := range events {
		if len(ev) != 1 {
			return nil, fmt.Errorf("event %d has %d keys, want one", i, len(ev))
		}
		for k, v := range ev {
			switch k {
			case "introduced":
				if open != nil {
					out = append(out, *open)
				}
				iv := Interval{StartIncl: true}
				if v != "0" {
					iv.Start = v
				}
				open = &iv
			case "fixed", "last_affected":
				if open == nil {
					return nil, fmt.Errorf("event %d: %s without introduced", i, k)
				}
				open.End, open.EndIncl = v, k == "last_affected"
				out = append(out, *open)
				open = nil
			case "limit":
				limit = v
			default:
				return nil, fmt.Errorf("event %d: unknown event %q", i, k)
			}
		}
	}
	if open != nil {
		if limit != "" && limit != "*" {
			open.End = limit
		}
		out = append(out, *open)
	}
	return out, nil
}

// ---- KEV ----

func parseKEV(name string, top map[string]json.RawMessage) (*Document, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(top["vulnerabilities"], &raws); err != nil {
		return nil, apperr.InvalidField("vulnerabilities", "%s: field vulnerabilities: want an array: %s", name, jsonErr(err))
	}
	doc := &Document{Name: name, Format: FormatKEV}
	for i, raw := range raws {
		var e KEVEntry
		if err := decodeRecord(name, i, raw, &e); err != nil {
			return nil, err
		}
		if !strings.HasPrefix(e.CVEID, "CVE-") {
			return nil, recordErr(name, i, e.CVEID, "cveID", "missing or not a CVE ID")
		}
		if e.VendorProject == "" || e.Product == "" {
			return nil, recordErr(name, i, e.CVEID, "vendorProject", "vendorProject and product are required")
		}
		doc.KEV = append(doc.KEV, e)
	}
	return doc, nil
}

// ---- NVD API 2.0 ----

type nvdCVE struct {
	ID           string `json:"id"`
	Descriptions []struct {
		Lang  string `json:"lang"`
		Value string `json:"value"`
	} `json:"descriptions"`
	Metrics struct {
		V31 []nvdMetric `json:"cvssMetricV31"`
		V30 []nvdMetric `json:"cvssMetricV30"`
		V2  []nvdMetric `json:"cvssMetricV2"`
	} `json:"metrics"`
	Configurations []struct {
		Operator string `json:"operator"`
		Nodes    []struct {
			Operator string `json:"operator"`
			Negate   bool   `json:"negate"`
			CPEMatch []struct {
				Vulnerable            bool   `json:"vulnerable"`
				Criteria              string `json:"criteria"`
				VersionStartIncluding string `json:"versionStartIncluding"`
				VersionStartExcluding string `json:"versionStartExcluding"`
				VersionEndIncluding   string `json:"versionEndIncluding"`
				VersionEndExcluding   string `json:"versionEndExcluding"`
			} `json:"cpeMatch"`
		} `json:"nodes"`
	} `json:"configurations"`
}

type nvdMetric struct {
	Type     string `json:"type"`
	CVSSData struct {
		VectorString string  `json:"vectorString"`
		BaseScore    float64 `json:"baseScore"`
		BaseSeverity string  `json:"baseSeverity"`
	} `json:"cvssData"`
	BaseSeverity string `json:"baseSeverity"`
}

func parseNVD(name string, top map[string]json.RawMessage) (*Document, error) {
	var raws []json.RawMessage
	switch {
	case top["vulnerabilities"] != nil:
		var wrapped []json.RawMessage
		if err := json.Unmarshal(top["vulnerabilities"], &wrapped); err != nil {
			return nil, apperr.InvalidField("vulnerabilities", "%s: field vulnerabilities: want an array: %s", name, jsonErr(err))
		}
		for i, w := range wrapped {
			var item struct {
				CVE json.RawMessage `json:"cve"`
			}
			if err := decodeRecord(name, i, w, &item); err != nil {
				return nil, err
			}
			if item.CVE == nil {
				return nil, recordErr(name, i, "", "cve", "missing")
			}
			raws = append(raws, item.CVE)
		}
	case top["cve"] != nil:
		raws = []json.RawMessage{top["cve"]}
	default:
		b, _ := json.Marshal(top)
		raws = []json.RawMessage{b}
	}
	doc := &Document{Name: name, Format: FormatNVD}
	for i, raw := range raws {
		var c nvdCVE
		if err := decodeRecord(name, i, raw, &c); err != nil {
			return nil, err
		}
		if !strings.HasPrefix(c.ID, "CVE-") {
			return nil, recordErr(name, i, c.ID, "id", "missing or not a CVE ID")
		}
		adv := Advisory{ID: c.ID, Source: FormatNVD}
		for _, d := range c.Descriptions {
			if d.Lang == "en" {
				adv.Summary = d.Value
				break
			}
		}
		for _, ms := range [][]nvdMetric{c.Metrics.V31, c.Metrics.V30, c.Metrics.V2} {
			if m, ok := pickMetric(ms); ok {
				adv.CVSS, adv.CVSSVector = m.CVSSData.BaseScore, m.CVSSData.VectorString
				adv.Severity = strings.ToLower(m.CVSSData.BaseSeverity)
				if adv.Severity == "" {
					adv.Severity = strings.ToLower(m.BaseSeverity)
				}
				if adv.Severity == "" {
					adv.Severity = SeverityOf(adv.CVSS)
				}
				break
			}
		}
		for ci, cfg := range c.Configurations {
			var vulnerable []Affected
			var platforms []string
			for ni, node := range cfg.Nodes {
				if node.Negate {
					adv.Notes = append(adv.Notes, fmt.Sprintf("configurations[%d].nodes[%d]: negated node ignored", ci, ni))
					continue
				}
				for mi, m := range node.CPEMatch {
					field := fmt.Sprintf("configurations[%d].nodes[%d].cpeMatch[%d].criteria", ci, ni, mi)
					cpe, err := ParseCPE(m.Criteria)
					if err != nil {
						return nil, recordErr(name, i, c.ID, field, "%v", err)
					}
					vendor, product := NormalizeVendor(cpe.Vendor), NormalizeProduct(cpe.Product)
					if !m.Vulnerable {
						platforms = append(platforms, vendor+":"+product)
						continue
					}
					af := Affected{Vendor: vendor, Product: product, Upstream: true}
					iv := Interval{}
					switch {
					case m.VersionStartIncluding != "":
						iv.Start, iv.StartIncl = m.VersionStartIncluding, true
					case m.VersionStartExcluding != "":
						iv.Start = m.VersionStartExcluding
					}
					switch {
					case m.VersionEndIncluding != "":
						iv.End, iv.EndIncl = m.VersionEndIncluding, true
					case m.VersionEndExcluding != "":
						iv.End = m.VersionEndExcluding
					}
					switch {
					case iv.Start != "" || iv.End != "":
						af.Ranges = []Interval{iv}
					case cpe.Version == "*" || cpe.Version == "":
						af.AllVersions = true
					case cpe.Version == "-":
						adv.Notes = append(adv.Notes, field+": version NA (-) cannot be matched")
						continue
					default:
						v := cpe.Version
						if cpe.Update != "*" && cpe.Update != "-" && cpe.Update != "" {
							v += "-" + cpe.Update
						}
						af.Ranges = []Interval{Exact(v)}
					}
					vulnerable = append(vulnerable, af)
				}
			}
			if strings.EqualFold(cfg.Operator, "AND") {
				for k := range vulnerable {
					vulnerable[k].Platforms = platforms
				}
			}
			adv.Affected = append(adv.Affected, vulnerable...)
		}
		doc.Advisories = append(doc.Advisories, adv)
	}
	return doc, nil
}

func pickMetric(ms []nvdMetric) (nvdMetric, bool) {
	for _, m := range ms {
		if m.Type == "Primary" {
			return m, true
		}
	}
	if len(ms) > 0 {
		return ms[0], true
	}
	return nvdMetric{}, false
}

// ---- CVE JSON 5.x ----

type cve5Record struct {
	CVEMetadata struct {
		CVEID string `json:"cveId"`
		State string `json:"state"`
	} `json:"cveMetadata"`
	Containers struct {
		CNA struct {
			Title        string `json:"title"`
			Descriptions []struct {
				Lang  string `json:"lang"`
				Value string `json:"value"`
			} `json:"descriptions"`
			Affected []struct {
				Vendor        string `json:"vendor"`
				Product       string `json:"product"`
				PackageName   string `json:"packageName"`
				DefaultStatus string `json:"defaultStatus"`
				Versions      []struct {
					Version         string `json:"version"`
					Status          string `json:"status"`
					LessThan        string `json:"lessThan"`
					LessThanOrEqual string `json:"lessThanOrEqual"`
				} `json:"versions"`
			} `json:"affected"`
			Metrics []map[string]json.RawMessage `json:"metrics"`
		} `json:"cna"`
	} `json:"containers"`
}

func parseCVE5(name string, top map[string]json.RawMessage) (*Document, error) {
	raw, _ := json.Marshal(top)
	var rec cve5Record
	if err := decodeRecord(name, 0, raw, &rec); err != nil {
		return nil, err
	}
	id := rec.CVEMetadata.CVEID
	if !strings.HasPrefix(id, "CVE-") {
		return nil, recordErr(name, 0, id, "cveMetadata.cveId", "missing or not a CVE ID")
	}
	cna := rec.Containers.CNA
	adv := Advisory{ID: id, Source: FormatCVE5, Summary: cna.Title}
	for _, d := range cna.Descriptions {
		if strings.HasPrefix(d.Lang, "en") {
			adv.Summary = d.Value
			break
		}
	}
	for _, m := range cna.Metrics {
		for _, k := range []string{"cvssV3_1", "cvssV3_0", "cvssV4_0"} {
			var c struct {
				BaseScore    float64 `json:"baseScore"`
				VectorString string  `json:"vectorString"`
				BaseSeverity string  `json:"baseSeverity"`
			}
			if m[k] != nil && json.Unmarshal(m[k], &c) == nil && adv.CVSS == 0 {
				adv.CVSS, adv.CVSSVector, adv.Severity = c.BaseScore, c.VectorString, strings.ToLower(c.BaseSeverity)
			}
		}
	}
	for ai, a := range cna.Affected {
		field := fmt.Sprintf("containers.cna.affected[%d]", ai)
		product := a.Product
		if product == "" {
			product = a.PackageName
		}
		if isNA(a.Vendor) || isNA(product) {
			adv.Notes = append(adv.Notes, field+": vendor or product is n/a; cannot be matched")
			continue
		}
		af := Affected{Vendor: NormalizeVendor(a.Vendor), Product: NormalizeProduct(product), Upstream: true}
		for vi, v := range a.Versions {
			if v.Status != "affected" {
				continue
			}
			start := v.Version
			if start == "0" || isNA(start) || start == "*" {
				start = ""
			}
			switch {
			case v.LessThan != "":
				af.Ranges = append(af.Ranges, Interval{Start: start, StartIncl: true, End: strings.TrimSuffix(v.LessThan, "*")})
			case v.LessThanOrEqual != "":
				af.Ranges = append(af.Ranges, Interval{Start: start, StartIncl: true, End: v.LessThanOrEqual, EndIncl: true})
			case start != "":
				af.Ranges = append(af.Ranges, Exact(start))
			default:
				adv.Notes = append(adv.Notes, fmt.Sprintf("%s.versions[%d]: no version", field, vi))
			}
		}
		if len(af.Ranges) == 0 {
			if a.DefaultStatus != "affected" {
				adv.Notes = append(adv.Notes, field+": no affected versions")
				continue
			}
			af.AllVersions = true
		}
		adv.Affected = append(adv.Affected, af)
	}
	return &Document{Name: name, Format: FormatCVE5, Advisories: []Advisory{adv}}, nil
}

func isNA(s string) bool {
	s = strings.TrimSpace(strings.ToLower(s))
	return s == "" || s == "n/a" || s == "na" || s == "unknown"
}

// ---- CycloneDX ----

type cdxComponent struct {
	BOMRef   string `json:"bom-ref"`
	Type     string `json:"type"`
	Name     string `json:"name"`
	Version  string `json:"version"`
	Group    string `json:"group"`
	PURL     string `json:"purl"`
	CPE      string `json:"cpe"`
	Supplier *struct {
		Name string `json:"name"`
	} `json:"supplier"`
	Manufacturer *struct {
		Name string `json:"name"`
	} `json:"manufacturer"`
	Components []cdxComponent `json:"components"`
}

func parseCycloneDX(name string, top map[string]json.RawMessage) (*Document, error) {
	var format string
	if err := json.Unmarshal(top["bomFormat"], &format); err != nil || format != "CycloneDX" {
		return nil, recordErr(name, 0, "", "bomFormat", "want \"CycloneDX\"")
	}
	sb := &SBOM{}
	if m := top["metadata"]; m != nil {
		var meta struct {
			Component *cdxComponent `json:"component"`
		}
		if err := decodeRecord(name, 0, m, &meta); err != nil {
			return nil, prefixField(err, "metadata")
		}
		if meta.Component != nil {
			sb.Subject = cdxToComponent(*meta.Component)
		}
	}
	if c := top["components"]; c != nil {
		var raws []json.RawMessage
		if err := json.Unmarshal(c, &raws); err != nil {
			return nil, apperr.InvalidField("components", "%s: field components: want an array: %s", name, jsonErr(err))
		}
		for i, raw := range raws {
			var comp cdxComponent
			if err := decodeRecord(name, i, raw, &comp); err != nil {
				return nil, prefixField(err, "components")
			}
			if err := flattenCDX(name, i, comp, &sb.Components); err != nil {
				return nil, err
			}
		}
	}
	if v := top["vulnerabilities"]; v != nil {
		var raws []json.RawMessage
		if err := json.Unmarshal(v, &raws); err != nil {
			return nil, apperr.InvalidField("vulnerabilities", "%s: field vulnerabilities: want an array: %s", name, jsonErr(err))
		}
		for i, raw := range raws {
			var vx struct {
				ID       string `json:"id"`
				Analysis *struct {
					State string `json:"state"`
				} `json:"analysis"`
				Affects []struct {
					Ref string `json:"ref"`
				} `json:"affects"`
			}
			if err := decodeRecord(name, i, raw, &vx); err != nil {
				return nil, prefixField(err, "vulnerabilities")
			}
			if vx.ID == "" {
				return nil, recordErr(name, i, "", "vulnerabilities.id", "missing")
			}
			if vx.Analysis == nil {
				continue
			}
			st := VEXStatement{ID: vx.ID, State: vx.Analysis.State}
			for _, a := range vx.Affects {
				st.Affects = append(st.Affects, a.Ref)
			}
			sb.VEX = append(sb.VEX, st)
		}
	}
	return &Document{Name: name, Format: FormatCycloneDX, SBOM: sb}, nil
}

func prefixField(err error, prefix string) error {
	if ae := apperr.As(err); ae != nil && ae.Field != "" {
		ae.Field = prefix + "." + ae.Field
	}
	return err
}

func cdxToComponent(c cdxComponent) Component {
	out := Component{BOMRef: c.BOMRef, Type: c.Type, Name: c.Name, Version: c.Version, PURL: c.PURL, CPE: c.CPE, Vendor: c.Group}
	if c.Supplier != nil && c.Supplier.Name != "" {
		out.Vendor = c.Supplier.Name
	} else if c.Manufacturer != nil && c.Manufacturer.Name != "" {
		out.Vendor = c.Manufacturer.Name
	}
	return out
}

// flattenCDX appends c and its nested components, depth first; nesting is
// bounded by the JSON decoder's own depth limit.
func flattenCDX(name string, idx int, c cdxComponent, out *[]Component) error {
	if c.Name == "" {
		return recordErr(name, idx, c.BOMRef, "components.name", "missing")
	}
	*out = append(*out, cdxToComponent(c))
	for _, n := range c.Components {
		if err := flattenCDX(name, idx, n, out); err != nil {
			return err
		}
	}
	return nil
}

// ---- SPDX 2.x ----

func parseSPDX(name string, top map[string]json.RawMessage) (*Document, error) {
	var version string
	if err := json.Unmarshal(top["spdxVersion"], &version); err != nil || !strings.HasPrefix(version, "SPDX-2.") {
		return nil, recordErr(name, 0, "", "spdxVersion", "want SPDX-2.x")
	}
	var docName string
	_ = json.Unmarshal(top["name"], &docName)
	sb := &SBOM{Subject: Component{Name: docName}}
	if p := top["packages"]; p != nil {
		var raws []json.RawMessage
		if err := json.Unmarshal(p, &raws); err != nil {
			return nil, apperr.InvalidField("packages", "%s: field packages: want an array: %s", name, jsonErr(err))
		}
		for i, raw := range raws {
			var pkg struct {
				SPDXID       string `json:"SPDXID"`
				Name         string `json:"name"`
				VersionInfo  string `json:"versionInfo"`
				Supplier     string `json:"supplier"`
				ExternalRefs []struct {
					Type    string `json:"referenceType"`
					Locator string `json:"referenceLocator"`
				} `json:"externalRefs"`
			}
			if err := decodeRecord(name, i, raw, &pkg); err != nil {
				return nil, prefixField(err, "packages")
			}
			if pkg.Name == "" {
				return nil, recordErr(name, i, pkg.SPDXID, "packages.name", "missing")
			}
			c := Component{BOMRef: pkg.SPDXID, Name: pkg.Name, Version: pkg.VersionInfo}
			if s, ok := strings.CutPrefix(pkg.Supplier, "Organization: "); ok {
				c.Vendor = s
			}
			for _, r := range pkg.ExternalRefs {
				switch r.Type {
				case "purl":
					c.PURL = r.Locator
				case "cpe23Type":
					if c.CPE == "" {
						c.CPE = r.Locator
					}
				}
			}
			sb.Components = append(sb.Components, c)
		}
	}
	return &Document{Name: name, Format: FormatSPDX, SBOM: sb}, nil
}
