package vuln

import (
	"github.com/fleetward/fleetward/internal/datasets"
	"strings"
	"testing"

	"github.com/fleetward/fleetward/internal/apperr"
)

// dataset returns the path of a shared test file, skipping the test when
// the datasets are absent outside CI.
func dataset(t testing.TB, rel string) string {
	t.Helper()
	return datasets.Path(t, rel)
}

func mustParse(t testing.TB, rel string) *Document {
	t.Helper()
	doc, err := ParseFile(dataset(t, rel))
	if err != nil {
		t.Fatalf("parse %s: %v", rel, err)
	}
	return doc
}

func findMatch(ms []Match, id string) (Match, bool) {
	for _, m := range ms {
		if m.AdvisoryID == id {
			return m, true
		}
	}
	return Match{}, false
}

func TestFormatsAreDetectedFromContent(t *testing.T) {
	tests := []struct {
		file string
		want Format
	}{
		{"advisories/kev/known_exploited_vulnerabilities.json", FormatKEV},
		{"advisories/kev_iot_subset.json", FormatKEV},
		{"advisories/nvd-api2/CVE-2023-1389.json", FormatNVD},
		{"advisories/nvd-api2/CVE-2021-33044.json", FormatNVD},
		{"advisories/nvd-api2/CVE-2015-2051.json", FormatNVD},
		{"advisories/cvelistv5/CVE-2021-36260.json", FormatCVE5},
		{"sbom/fixture-archer-ax21-1.1.3-vulnerable.cdx.json", FormatCycloneDX},
		{"sbom/synthetic-iotlab-fw.syft.cdx.json", FormatCycloneDX},
		{"sbom/synthetic-iotlab-fw.syft.spdx.json", FormatSPDX},
		{"sbom/cyclonedx-bom-examples/VEX_CISA-Use-Cases_Case-1_vex-not_affected.json", FormatCycloneDX},
		{"sbom/cyclonedx-bom-examples/HBOM_PCIe-SATA-adapter-board_bom.json", FormatCycloneDX},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			doc := mustParse(t, tt.file)
			if doc.Format != tt.want {
				t.Fatalf("format = %s, want %s", doc.Format, tt.want)
			}
		})
	}
}

func TestFullKEVCatalogParses(t *testing.T) {
	doc := mustParse(t, "advisories/kev/known_exploited_vulnerabilities.json")
	if len(doc.KEV) != 1404 {
		t.Fatalf("KEV entries = %d, want 1404", len(doc.KEV))
	}
}

func TestArcherAX21MatchesOnlyBefore114ViaNVD(t *testing.T) {
	nvd := mustParse(t, "advisories/nvd-api2/CVE-2023-1389.json")
	kev := mustParse(t, "advisories/kev_iot_subset.json")
	cat := NewCatalog(nvd.Advisories, kev.KEV)
	tests := []struct {
		name, vendor, model, firmware string
		want                          bool
	}{
		{"firmware 1.1.3 is affected", "TP-Link", "Archer AX21", "1.1.3", true},
		{"firmware 1.1.3 with build suffix is affected", "tp-link", "archer_ax21", "1.1.3 Build 20221010 rel.1234", true},
		{"firmware 1.1.4 is fixed", "TP-Link", "Archer AX21", "1.1.4", false},
		{"firmware 1.1.4 with build suffix is fixed", "TP-Link", "Archer AX21", "1.1.4 Build 20230219 rel.73395", false},
		{"another model is not affected", "TP-Link", "Archer AX55", "1.1.3", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms := cat.Match(Target{DeviceID: "d1", Vendor: tt.vendor, Model: tt.model, FirmwareVersion: tt.firmware})
			m, ok := findMatch(ms, "CVE-2023-1389")
			if ok != tt.want {
				t.Fatalf("matched = %v, want %v (%+v)", ok, tt.want, ms)
			}
			if ok && (!m.KnownExploited || m.KEVDateAdded != "2023-05-01" || m.CVSS != 8.8 || !m.VersionChecked) {
				t.Fatalf("match lacks KEV/CVSS data: %+v", m)
			}
			if ok && !strings.Contains(m.Reason, "< 1.1.4") {
				t.Fatalf("reason %q does not name the range", m.Reason)
			}
		})
	}
}

func TestArcherAX21MatchesOnlyBefore114ViaSBOM(t *testing.T) {
	nvd := mustParse(t, "advisories/nvd-api2/CVE-2023-1389.json")
	cat := NewCatalog(nvd.Advisories, nil)
	tests := []struct {
		file string
		want bool
	}{
		{"sbom/fixture-archer-ax21-1.1.3-vulnerable.cdx.json", true},
		{"sbom/fixture-archer-ax21-1.1.4-fixed-fw.cdx.json", false},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			sb := mustParse(t, tt.file).SBOM
			// No device model: only the SBOM's firmware and hardware CPEs can match.
			ms := cat.Match(Target{DeviceID: "d1", Components: sb.Components})
			if _, ok := findMatch(ms, "CVE-2023-1389"); ok != tt.want {
				t.Fatalf("matched = %v, want %v (%+v)", ok, tt.want, ms)
			}
		})
	}
}

func TestDahuaANDConfigurationNeedsTheHardware(t *testing.T) {
	nvd := mustParse(t, "advisories/nvd-api2/CVE-2021-33044.json")
	cat := NewCatalog(nvd.Advisories, nil)
	tests := []struct {
		name   string
		t      Target
		want   bool
		range_ string
	}{
		{"a family model before the fix is affected", Target{Vendor: "Dahua", Model: "IPC-HUM7xxx", FirmwareVersion: "2.820.0000000.4.R.210101"}, true, "2.820.0000000.5.r.210705"},
		{"a concrete model of the family is affected", Target{Vendor: "dahuasecurity", Model: "IPC-HUM7242", FirmwareVersion: "2.800.0000000.1.R.200101"}, true, ""},
		{"the fixed build is not affected", Target{Vendor: "Dahua", Model: "IPC-HUM7xxx", FirmwareVersion: "2.820.0000000.5.R.210705"}, false, ""},
		{"firmware on the wrong hardware is not affected", Target{Components: []Component{{Name: "fw", Version: "1.0", CPE: "cpe:2.3:o:dahuasecurity:ipc-hum7xxx_firmware:1.0:*:*:*:*:*:*:*"}}}, false, ""},
		{"firmware with its hardware in the SBOM is affected", Target{Components: []Component{
			{Name: "fw", Version: "1.0", CPE: "cpe:2.3:o:dahuasecurity:ipc-hum7xxx_firmware:1.0:*:*:*:*:*:*:*"},
			{Name: "hw", CPE: "cpe:2.3:h:dahuasecurity:ipc-hum7xxx:-:*:*:*:*:*:*:*"}}}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms := cat.Match(tt.t)
			m, ok := findMatch(ms, "CVE-2021-33044")
			if ok != tt.want {
				t.Fatalf("matched = %v, want %v (%+v)", ok, tt.want, ms)
			}
			if ok && tt.range_ != "" && !strings.Contains(m.Reason, tt.range_) {
				t.Fatalf("reason %q lacks %q", m.Reason, tt.range_)
			}
		})
	}
}

func TestHikvisionCVE5RecordParsesAndSaysWhyItCannotMatch(t *testing.T) {
	doc := mustParse(t, "advisories/cvelistv5/CVE-2021-36260.json")
	if len(doc.Advisories) != 1 || doc.Advisories[0].ID != "CVE-2021-36260" {
		t.Fatalf("advisories = %+v", doc.Advisories)
	}
	a := doc.Advisories[0]
	if len(a.Affected) != 0 || len(a.Notes) == 0 || !strings.Contains(a.Notes[0], "n/a") {
		t.Fatalf("want no affected products and a note on n/a, got %+v / %v", a.Affected, a.Notes)
	}
	// KEV lists it for Hikvision: the KEV-only advisory matches by vendor
	// and product with no version check.
	kev := mustParse(t, "advisories/kev_iot_subset.json")
	cat := NewCatalog(doc.Advisories, kev.KEV)
	ms := cat.Match(Target{Vendor: "HIKVISION", Model: "Security Cameras Web Server", FirmwareVersion: "V5.5.0 build 170725"})
	m, ok := findMatch(ms, "CVE-2021-36260")
	if !ok || !m.KnownExploited || m.VersionChecked || m.Source != FormatKEV {
		t.Fatalf("want an unchecked KEV match, got %+v", ms)
	}
}

func TestKEVWithoutAdvisoryMatchesByVendorAndProductUnchecked(t *testing.T) {
	kev := mustParse(t, "advisories/kev_iot_subset.json")
	cat := NewCatalog(nil, kev.KEV)
	ms := cat.Match(Target{Vendor: "D-Link", Model: "DCS-2530L", FirmwareVersion: "1.0"})
	m, ok := findMatch(ms, "CVE-2020-25078")
	if !ok {
		t.Fatalf("no KEV match for D-Link DCS-2530L: %+v", ms)
	}
	if m.VersionChecked || !strings.Contains(m.Reason, "version not checked") || !m.KnownExploited || m.KEVDueDate != "2025-08-26" {
		t.Fatalf("match = %+v", m)
	}
}

func TestCVE5VersionRanges(t *testing.T) {
	rec := `{"dataType":"CVE_RECORD","cveMetadata":{"cveId":"CVE-2099-0001"},"containers":{"cna":{"affected":[
	 {"vendor":"Hikvision","product":"DS-2CD2xx","versions":[
	   {"version":"0","lessThan":"5.5.800","status":"affected"},
	   {"version":"5.6.0","lessThanOrEqual":"5.6.2","status":"affected"},
	   {"version":"5.7.1","status":"affected"},
	   {"version":"5.7.3","status":"unaffected"}]}]}}}`
	doc, err := ParseBytes("rec.json", []byte(rec))
	if err != nil {
		t.Fatal(err)
	}
	cat := NewCatalog(doc.Advisories, nil)
	tests := []struct {
		version string
		want    bool
	}{
		{"5.5.799", true}, {"5.5.800", false}, {"5.6.2", true}, {"5.6.3", false}, {"5.7.1", true}, {"5.7.3", false},
	}
	for _, tt := range tests {
		ms := cat.Match(Target{Vendor: "HIKVISION", Model: "ds-2cd2xx", FirmwareVersion: tt.version})
		if got := len(ms) == 1; got != tt.want {
			t.Errorf("version %s: matched = %v, want %v", tt.version, got, tt.want)
		}
	}
}

func TestSBOMComponentsMatchThroughCPEPurlAndNameMapping(t *testing.T) {
	osv := `[{"id":"OSV-1","aliases":["CVE-2099-1"],"affected":[{"package":{"ecosystem":"Generic","name":"busybox","purl":"pkg:generic/busybox"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.36.0"}]}]}],
	 "severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]}]`
	nvd := `{"id":"CVE-2099-2","configurations":[{"nodes":[{"operator":"OR","cpeMatch":[{"vulnerable":true,"criteria":"cpe:2.3:a:dropbear_ssh_project:dropbear_ssh:*:*:*:*:*:*:*:*","versionEndExcluding":"2022.83"}]}]}]}`
	nvd2 := `{"id":"CVE-2099-3","configurations":[{"nodes":[{"operator":"OR","cpeMatch":[{"vulnerable":true,"criteria":"cpe:2.3:a:eclipse:mosquitto:*:*:*:*:*:*:*:*","versionStartIncluding":"2.0.0","versionEndIncluding":"2.0.11"}]}]}]}`
	var advs []Advisory
	for i, s := range []string{osv, nvd, nvd2} {
		d, err := ParseBytes("adv"+string(rune('0'+i)), []byte(s))
		if err != nil {
			t.Fatal(err)
		}
		advs = append(advs, d.Advisories...)
	}
	if advs[0].CVSS != 9.8 || advs[0].Severity != "critical" {
		t.Fatalf("OSV CVSS = %v %s, want 9.8 critical", advs[0].CVSS, advs[0].Severity)
	}
	cat := NewCatalog(advs, nil)
	sb := mustParse(t, "sbom/synthetic-iotlab-fw.syft.spdx.json").SBOM
	ms := cat.Match(TargetFromSBOM("cam-1", "IoTLab", "cam", "1.0", sb))
	for _, id := range []string{"OSV-1", "CVE-2099-3"} {
		if _, ok := findMatch(ms, id); !ok {
			t.Errorf("%s did not match the SPDX SBOM: %+v", id, ms)
		}
	}
	// dropbear 2022.83 is the fixed version.
	if _, ok := findMatch(ms, "CVE-2099-2"); ok {
		t.Errorf("CVE-2099-2 matched dropbear 2022.83, which is fixed")
	}
	sb2 := mustParse(t, "sbom/fixture-archer-ax21-1.1.3-vulnerable.cdx.json").SBOM
	ms = cat.Match(TargetFromSBOM("r1", "TP-Link", "Archer AX21", "1.1.3", sb2))
	for _, id := range []string{"OSV-1", "CVE-2099-2"} {
		if _, ok := findMatch(ms, id); !ok {
			t.Errorf("%s did not match the CycloneDX SBOM: %+v", id, ms)
		}
	}
}

func TestVEXNotAffectedSuppressesAMatch(t *testing.T) {
	nvd := mustParse(t, "advisories/nvd-api2/CVE-2023-1389.json")
	cat := NewCatalog(nvd.Advisories, nil)
	sb := mustParse(t, "sbom/fixture-archer-ax21-1.1.3-vulnerable.cdx.json").SBOM
	tests := []struct {
		name  string
		state string
		want  bool
	}{
		{"not_affected suppresses", "not_affected", false},
		{"resolved suppresses", "resolved", false},
		{"exploitable keeps the match", "exploitable", true},
		{"in_triage keeps the match", "in_triage", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := Target{Vendor: "TP-Link", Model: "Archer AX21", FirmwareVersion: "1.1.3", Components: sb.Components,
				VEX: []VEXStatement{{ID: "CVE-2023-1389", State: tt.state}}}
			if _, ok := findMatch(cat.Match(tg), "CVE-2023-1389"); ok != tt.want {
				t.Fatalf("matched = %v, want %v", ok, tt.want)
			}
		})
	}
	vex := mustParse(t, "sbom/cyclonedx-bom-examples/VEX_CISA-Use-Cases_Case-1_vex-not_affected.json").SBOM
	if len(vex.VEX) == 0 || vex.VEX[0].State != "not_affected" {
		t.Fatalf("VEX example statements = %+v", vex.VEX)
	}
}

func TestMalformedFilesNameFileRecordAndField(t *testing.T) {
	tests := []struct {
		name  string
		data  string
		wants []string
	}{
		{"truncated JSON", `{"catalogVersion":"1","vulnerabilities":[{"cveID":"CVE-1`, []string{"bad.json", "not valid JSON", "byte"}},
		{"KEV entry with a number for cveID", `{"catalogVersion":"1","vulnerabilities":[{"cveID":"CVE-2020-1","vendorProject":"a","product":"b"},{"cveID":5}]}`, []string{"bad.json", "record 1", "cveID", "string"}},
		{"KEV entry without an id", `{"catalogVersion":"1","vulnerabilities":[{"vendorProject":"a","product":"b"}]}`, []string{"record 0", "cveID", "missing"}},
		{"OSV record without an id", `[{"id":"A"},{"affected":[]}]`, []string{"record 1", "field id", "missing"}},
		{"OSV range of an unknown type", `{"id":"X-1","affected":[{"package":{"name":"p"},"ranges":[{"type":"WEIRD","events":[]}]}]}`, []string{"record 0 (X-1)", "affected[0].ranges[0].type"}},
		{"OSV fixed without introduced", `{"id":"X-2","affected":[{"package":{"name":"p"},"ranges":[{"type":"SEMVER","events":[{"fixed":"1"}]}]}]}`, []string{"(X-2)", "events", "without introduced"}},
		{"OSV versions of the wrong type", `{"id":"X-3","affected":[{"package":{"name":"p"},"versions":"1.0"}]}`, []string{"(X-3)", "versions"}},
		{"NVD with a bad CPE", `{"vulnerabilities":[{"cve":{"id":"CVE-2099-9","configurations":[{"nodes":[{"cpeMatch":[{"vulnerable":true,"criteria":"cpe:/a:x:y"}]}]}]}}]}`, []string{"(CVE-2099-9)", "configurations[0].nodes[0].cpeMatch[0].criteria"}},
		{"NVD without an id", `{"vulnerabilities":[{"cve":{"configurations":[]}}]}`, []string{"record 0", "field id"}},
		{"CVE 5 without an id", `{"dataType":"CVE_RECORD","cveMetadata":{},"containers":{"cna":{}}}`, []string{"cveMetadata.cveId"}},
		{"CycloneDX component without a name", `{"bomFormat":"CycloneDX","components":[{"name":"a"},{"version":"1"}]}`, []string{"record 1", "components.name"}},
		{"CycloneDX component of the wrong type", `{"bomFormat":"CycloneDX","components":[{"name":"a","version":1}]}`, []string{"record 0", "components.version"}},
		{"SPDX packages not an array", `{"spdxVersion":"SPDX-2.3","packages":{}}`, []string{"packages", "array"}},
		{"an unknown format", `{"hello":"world"}`, []string{"unknown format"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseBytes("bad.json", []byte(tt.data))
			if err == nil {
				t.Fatal("no error")
			}
			if !apperr.Is(err, apperr.Invalid) {
				t.Errorf("error code = %s, want invalid", apperr.CodeOf(err))
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestNVDWrappedAndOSVSingleRecordsParse(t *testing.T) {
	nvd := `{"resultsPerPage":1,"vulnerabilities":[{"cve":{"id":"CVE-2099-7","metrics":{"cvssMetricV2":[{"type":"Primary","cvssData":{"baseScore":7.5}}]},
	  "configurations":[{"nodes":[{"operator":"OR","cpeMatch":[{"vulnerable":true,"criteria":"cpe:2.3:o:d-link:dir-645_firmware:1.03:*:*:*:*:*:*:*"}]}]}]}}]}`
	doc, err := ParseBytes("nvd.json", []byte(nvd))
	if err != nil {
		t.Fatal(err)
	}
	a := doc.Advisories[0]
	if doc.Format != FormatNVD || a.CVSS != 7.5 || a.Severity != "high" || len(a.Affected) != 1 || a.Affected[0].Ranges[0] != Exact("1.03") {
		t.Fatalf("NVD = %+v", doc)
	}
	cat := NewCatalog(doc.Advisories, nil)
	if ms := cat.Match(Target{Vendor: "D-Link", Model: "DIR-645", FirmwareVersion: "1.03"}); len(ms) != 1 {
		t.Fatalf("exact CPE version did not match: %+v", ms)
	}
	if ms := cat.Match(Target{Vendor: "D-Link", Model: "DIR-645", FirmwareVersion: "1.04"}); len(ms) != 0 {
		t.Fatalf("exact CPE version matched another version: %+v", ms)
	}
	osv := `{"id":"GHSA-1","schema_version":"1.6.0","affected":[{"package":{"ecosystem":"Debian:12","name":"openssl"},"ranges":[{"type":"GIT","repo":"x","events":[{"introduced":"abc"}]},{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"3.0.11-1~deb12u2"}]}]}]}`
	doc, err = ParseBytes("osv.json", []byte(osv))
	if err != nil {
		t.Fatal(err)
	}
	a = doc.Advisories[0]
	if a.Affected[0].PURLKey != "deb/debian/openssl" || len(a.Notes) != 1 || !strings.Contains(a.Notes[0], "GIT range ignored") {
		t.Fatalf("OSV = %+v", a)
	}
	cat = NewCatalog(doc.Advisories, nil)
	tg := Target{Components: []Component{{Name: "openssl", PURL: "pkg:deb/debian/openssl@3.0.11-1~deb12u1?distro=debian-12"}}}
	if ms := cat.Match(tg); len(ms) != 1 {
		t.Fatalf("Debian revision below the fix did not match: %+v", ms)
	}
}

func TestCISAVEXExamplesDecideWhetherTheSubjectMatches(t *testing.T) {
	adv := Advisory{ID: "CVE-2021-44228", Source: FormatNVD, Affected: []Affected{{Vendor: "acme", Product: "abc", AllVersions: true}}}
	cat := NewCatalog([]Advisory{adv}, nil)
	tests := []struct {
		file string
		want bool
	}{
		{"VEX_CISA-Use-Cases_Case-1_vex-not_affected.json", false},
		{"VEX_CISA-Use-Cases_Case-1_vex-fixed.json", false},
		{"VEX_CISA-Use-Cases_Case-1_vex-affected.json", true},
		{"VEX_CISA-Use-Cases_Case-1_vex-under_investigation.json", true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			sb := mustParse(t, "sbom/cyclonedx-bom-examples/"+tt.file).SBOM
			ms := cat.Match(TargetFromSBOM("d", "Acme", "ABC", "4.2", sb))
			if got := len(ms) == 1; got != tt.want {
				t.Fatalf("matched = %v, want %v (VEX %+v)", got, tt.want, sb.VEX)
			}
		})
	}
}
