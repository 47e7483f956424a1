// Package vuln matches IoT devices and their software bills of materials
// against vulnerability advisories, offline. It reads OSV, CISA KEV, NVD API
// 2.0, CVE JSON 5.x, CycloneDX and SPDX files (ParseFile detects which),
// builds a Catalog indexed by normalised vendor/product and package URL, and
// answers "which advisories affect this device" with a lookup and a few
// range checks per candidate. It also ships a dated end-of-life table (EOL).
package vuln

import "time"

// Format names a supported input format.
type Format string

// The formats ParseFile recognises.
const (
	FormatOSV       Format = "osv"
	FormatKEV       Format = "kev"
	FormatNVD       Format = "nvd"
	FormatCVE5      Format = "cve5"
	FormatCycloneDX Format = "cyclonedx"
	FormatSPDX      Format = "spdx"
)

// Advisory is one vulnerability record from an OSV, NVD or CVE 5 file,
// normalised. Its ID is the source's ID (a CVE ID for NVD and CVE 5);
// importing a record with the same ID and source again replaces it.
type Advisory struct {
	ID         string     `json:"id"`
	Source     Format     `json:"source"`
	Aliases    []string   `json:"aliases,omitempty"`
	Summary    string     `json:"summary,omitempty"`
	CVSS       float64    `json:"cvss,omitempty"`
	CVSSVector string     `json:"cvss_vector,omitempty"`
	Severity   string     `json:"severity,omitempty"`
	Affected   []Affected `json:"affected,omitempty"`
	// Notes records what the parser skipped and why (GIT ranges, "n/a"
	// products), so an advisory that can never match says so.
	Notes []string `json:"notes,omitempty"`
}

// Affected is one product an advisory affects and in which versions. It is
// keyed either by package URL (PURLKey, from OSV) or by vendor and product
// (from NVD CPEs and CVE 5 records), both normalised.
type Affected struct {
	Vendor    string `json:"vendor,omitempty"`
	Product   string `json:"product,omitempty"`
	PURLKey   string `json:"purl_key,omitempty"`
	Ecosystem string `json:"ecosystem,omitempty"`
	// Ranges are the affected intervals; a version in any of them is affected.
	Ranges []Interval `json:"ranges,omitempty"`
	// AllVersions means every version is affected, or, for a KEV-only
	// entry, that no version information exists ("version not checked").
	AllVersions bool `json:"all_versions,omitempty"`
	// Platforms, from an NVD AND-configuration, are the hardware products
	// (normalised vendor/product pairs "vendor:product") the firmware is
	// only vulnerable on; empty means any.
	Platforms []string `json:"platforms,omitempty"`
	// Upstream is true when versions are upstream versions (NVD, CVE 5), so
	// a packaged version's distribution revision is dropped before comparing.
	Upstream bool `json:"upstream,omitempty"`
}

// KEVEntry is one row of CISA's Known Exploited Vulnerabilities catalog. KEV
// has no versions: it marks a CVE as exploited in the wild.
type KEVEntry struct {
	CVEID             string   `json:"cveID"`
	VendorProject     string   `json:"vendorProject"`
	Product           string   `json:"product"`
	VulnerabilityName string   `json:"vulnerabilityName,omitempty"`
	DateAdded         string   `json:"dateAdded"`
	ShortDescription  string   `json:"shortDescription,omitempty"`
	RequiredAction    string   `json:"requiredAction,omitempty"`
	DueDate           string   `json:"dueDate,omitempty"`
	RansomwareUse     string   `json:"knownRansomwareCampaignUse,omitempty"`
	Notes             string   `json:"notes,omitempty"`
	CWEs              []string `json:"cwes,omitempty"`
}

// Component is one piece of software or hardware in an SBOM or on a device.
type Component struct {
	BOMRef  string `json:"bom_ref,omitempty"`
	Type    string `json:"type,omitempty"`
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	Vendor  string `json:"vendor,omitempty"`
	PURL    string `json:"purl,omitempty"`
	CPE     string `json:"cpe,omitempty"`
}

// VEXStatement is a CycloneDX VEX analysis: the state of one vulnerability
// for the listed components (bom-refs; empty means the whole subject).
type VEXStatement struct {
	ID      string   `json:"id"`
	State   string   `json:"state"`
	Affects []string `json:"affects,omitempty"`
}

// suppresses reports whether the statement rules out advisory ids for the
// component with bom-ref ref.
func (v VEXStatement) suppresses(ids []string, ref string) bool {
	if v.State != "not_affected" && v.State != "resolved" && v.State != "false_positive" {
		return false
	}
	hit := false
	for _, id := range ids {
		if id == v.ID {
			hit = true
		}
	}
	if !hit {
		return false
	}
	if len(v.Affects) == 0 {
		return true
	}
	for _, a := range v.Affects {
		if a == ref {
			return true
		}
	}
	return false
}

// SBOM is the normalised content of a CycloneDX or SPDX document: the
// subject (CycloneDX metadata.component, usually the firmware or device),
// its components flattened, and any VEX statements.
type SBOM struct {
	Subject    Component      `json:"subject"`
	Components []Component    `json:"components"`
	VEX        []VEXStatement `json:"vex,omitempty"`
}

// Document is the result of parsing one file: advisories, KEV entries or an
// SBOM, depending on Format.
type Document struct {
	Name       string     `json:"name"`
	Format     Format     `json:"format"`
	Advisories []Advisory `json:"advisories,omitempty"`
	KEV        []KEVEntry `json:"kev,omitempty"`
	SBOM       *SBOM      `json:"sbom,omitempty"`
}

// Lifecycle is one row of the end-of-life table.
type Lifecycle struct {
	Product string    `json:"product"`
	Series  string    `json:"series"`
	EOL     time.Time `json:"eol"`
	// Expired is true when now is on or after EOL.
	Expired bool   `json:"expired"`
	Source  string `json:"source"`
	Note    string `json:"note,omitempty"`
}
