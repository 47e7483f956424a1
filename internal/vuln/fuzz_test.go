package vuln

import (
	"github.com/fleetward/fleetward/internal/datasets"
	"os"
	"path/filepath"
	"testing"
)

// seedFiles adds the shared dataset files under dir (when present) to f.
func seedFiles(f *testing.F, dir string) {
	paths, _ := filepath.Glob(filepath.Join(datasets.Root(), dir, "*.json"))
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil && len(b) < 200_000 {
			f.Add(b)
		}
	}
}

// fuzzParse checks that parsing never panics and that a parsed document
// can be matched against.
func fuzzParse(f *testing.F, seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := ParseBytes("fuzz.json", data)
		if err != nil {
			return
		}
		cat := NewCatalog(doc.Advisories, doc.KEV)
		tg := Target{Vendor: "tp-link", Model: "archer ax21", FirmwareVersion: "1.1.3", OS: "linux", OSVersion: "4.4"}
		if doc.SBOM != nil {
			tg.Components, tg.VEX = doc.SBOM.Components, doc.SBOM.VEX
		}
		_ = cat.Match(tg)
	})
}

func FuzzParseOSV(f *testing.F) {
	fuzzParse(f,
		`[{"id":"A","affected":[{"package":{"name":"busybox","purl":"pkg:generic/busybox"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.36"}]}],"versions":["1.0"]}],"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]}]`,
		`{"id":"B","schema_version":"1.6.0","affected":[{"package":{"ecosystem":"Debian:12","name":"openssl"},"ranges":[{"type":"GIT","events":[{"introduced":"abc"}]},{"type":"ECOSYSTEM","events":[{"introduced":"1"},{"last_affected":"2"},{"limit":"3"}]}]}]}`)
}

func FuzzParseKEV(f *testing.F) {
	fuzzParse(f, `{"catalogVersion":"1","vulnerabilities":[{"cveID":"CVE-2023-1389","vendorProject":"TP-Link","product":"Archer AX21 and AX55 Routers","dateAdded":"2023-05-01","dueDate":"2023-05-22","knownRansomwareCampaignUse":"Known"}]}`)
	if b, err := os.ReadFile(filepath.Join(datasets.Root(), "advisories/kev_iot_subset.json")); err == nil {
		f.Add(b)
	}
}

func FuzzParseNVD(f *testing.F) {
	fuzzParse(f, `{"vulnerabilities":[{"cve":{"id":"CVE-2099-1","metrics":{"cvssMetricV31":[{"type":"Primary","cvssData":{"baseScore":8.8,"baseSeverity":"HIGH"}}]},"configurations":[{"operator":"AND","nodes":[{"cpeMatch":[{"vulnerable":true,"criteria":"cpe:2.3:o:tp-link:archer_ax21_firmware:*:*:*:*:*:*:*:*","versionEndExcluding":"1.1.4"}]},{"cpeMatch":[{"vulnerable":false,"criteria":"cpe:2.3:h:tp-link:archer_ax21:-:*:*:*:*:*:*:*"}]}]}]}}]}`)
	seedFiles(f, "advisories/nvd-api2")
}

func FuzzParseCVE5(f *testing.F) {
	fuzzParse(f, `{"dataType":"CVE_RECORD","cveMetadata":{"cveId":"CVE-2099-2"},"containers":{"cna":{"affected":[{"vendor":"Hikvision","product":"DS-2CDxxxx","defaultStatus":"unaffected","versions":[{"version":"0","lessThan":"5.5.800","status":"affected"},{"version":"5.6","lessThanOrEqual":"5.6.2","status":"affected"}]}],"metrics":[{"cvssV3_1":{"baseScore":9.8,"baseSeverity":"CRITICAL"}}]}}}`)
	seedFiles(f, "advisories/cvelistv5")
}

func FuzzParseCycloneDX(f *testing.F) {
	fuzzParse(f, `{"bomFormat":"CycloneDX","metadata":{"component":{"name":"fw","version":"1"}},"components":[{"bom-ref":"a","name":"busybox","version":"1.33.2","purl":"pkg:generic/busybox@1.33.2","cpe":"cpe:2.3:a:busybox:busybox:1.33.2","components":[{"name":"inner"}]}],"vulnerabilities":[{"id":"CVE-1","analysis":{"state":"not_affected"},"affects":[{"ref":"a"}]}]}`)
	seedFiles(f, "sbom")
}

func FuzzParseSPDX(f *testing.F) {
	fuzzParse(f, `{"spdxVersion":"SPDX-2.3","name":"fw","packages":[{"SPDXID":"p1","name":"dropbear","versionInfo":"2022.83-1","externalRefs":[{"referenceType":"purl","referenceLocator":"pkg:deb/dropbear@2022.83-1"},{"referenceType":"cpe23Type","referenceLocator":"cpe:2.3:a:dropbear:dropbear:2022.83-1:*:*:*:*:*:*:*"}]}]}`)
}

func FuzzParseCPE(f *testing.F) {
	for _, s := range []string{"cpe:2.3:o:tp-link:archer_ax21_firmware:1.1.3:*:*:*:*:*:*:*", `cpe:2.3:a:foo\:bar:baz:*`, "cpe:2.3:h:x:y:-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCPE(s)
		if err == nil && (c.Vendor == "" || c.Product == "") {
			t.Fatalf("ParseCPE(%q) accepted an empty vendor or product", s)
		}
	})
}

func FuzzParsePURL(f *testing.F) {
	for _, s := range []string{"pkg:generic/busybox@1.33.2", "pkg:deb/debian/libssl3@3.0.11-1?arch=amd64#x", "pkg:npm/%40a/b@1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePURL(s)
		if err == nil && (p.Name == "" || p.Type == "") {
			t.Fatalf("ParsePURL(%q) accepted an empty type or name", s)
		}
	})
}

// FuzzCompareVersions checks that the order is total and consistent:
// reflexive, antisymmetric and transitive on three inputs.
func FuzzCompareVersions(f *testing.F) {
	f.Add("1.1.4 Build 20230219 rel.73395", "V1.0.0.12_1.0.12", "2.0.11-r3")
	f.Add("5.4.0-150-generic", "1.35.0", "1.0.0-rc1")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		if CompareVersions(a, a) != 0 {
			t.Fatalf("%q != itself", a)
		}
		ab, ba := CompareVersions(a, b), CompareVersions(b, a)
		if ab != -ba {
			t.Fatalf("compare(%q,%q)=%d but compare(%q,%q)=%d", a, b, ab, b, a, ba)
		}
		bc, ac := CompareVersions(b, c), CompareVersions(a, c)
		if ab <= 0 && bc <= 0 && ac > 0 {
			t.Fatalf("not transitive: %q <= %q <= %q but %q > %q", a, b, c, a, c)
		}
	})
}
