package vuln

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// syntheticOSV generates n OSV-style advisories over a pool of packages,
// each with one or two ranges, from a fixed seed.
func syntheticOSV(n, packages int, r *rand.Rand) []Advisory {
	out := make([]Advisory, n)
	for i := range out {
		pkg := r.IntN(packages)
		major, minor := r.IntN(4), r.IntN(20)
		af := Affected{PURLKey: fmt.Sprintf("generic//pkg%04d", pkg), Ranges: []Interval{
			{Start: fmt.Sprintf("%d.%d.0", major, minor), StartIncl: true, End: fmt.Sprintf("%d.%d.%d", major, minor+1, r.IntN(5))},
		}}
		if r.IntN(3) == 0 {
			af.Ranges = append(af.Ranges, Interval{End: "0.5.0"})
		}
		out[i] = Advisory{ID: fmt.Sprintf("SYN-%05d", i), Source: FormatOSV, CVSS: float64(r.IntN(100)) / 10, Affected: []Affected{af}}
	}
	return out
}

// BenchmarkMatchFleet matches 100k synthetic devices (vendor and model
// drawn from the KEV catalog, eight SBOM components each) against the full
// KEV catalog plus 10k generated OSV advisories.
func BenchmarkMatchFleet(b *testing.B) {
	kevDoc := mustParse(b, "advisories/kev/known_exploited_vulnerabilities.json")
	r := rand.New(rand.NewPCG(1, 2))
	cat := NewCatalog(syntheticOSV(10_000, 2_000, r), kevDoc.KEV)
	const devices = 100_000
	targets := make([]Target, devices)
	for i := range targets {
		k := kevDoc.KEV[r.IntN(len(kevDoc.KEV))]
		t := Target{DeviceID: fmt.Sprintf("dev-%06d", i), Vendor: k.VendorProject, Model: k.Product,
			FirmwareVersion: fmt.Sprintf("%d.%d.%d", r.IntN(4), r.IntN(20), r.IntN(10))}
		for j := 0; j < 8; j++ {
			v := fmt.Sprintf("%d.%d.%d", r.IntN(4), r.IntN(20), r.IntN(10))
			t.Components = append(t.Components, Component{Name: "c", Version: v, PURL: fmt.Sprintf("pkg:generic/pkg%04d@%s", r.IntN(2_000), v)})
		}
		targets[i] = t
	}
	b.ResetTimer()
	matches := 0
	for b.Loop() {
		matches = 0
		for _, t := range targets {
			matches += len(cat.Match(t))
		}
	}
	perRun := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(devices/perRun, "devices/s")
	b.ReportMetric(float64(devices)*float64(cat.Len())/perRun, "device×advisories/s")
	b.ReportMetric(float64(matches)/devices, "matches/device")
}
