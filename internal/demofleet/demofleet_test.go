package demofleet

import (
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/inventory"
)

var testNow = time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)

func TestGenerateIsDeterministicForASeed(t *testing.T) {
	a := Generate(500, 42, testNow)
	b := Generate(500, 42, testNow)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two fleets from the same seed and time differ")
	}
	c := Generate(500, 43, testNow)
	if reflect.DeepEqual(a, c) {
		t.Fatal("fleets from different seeds are equal")
	}
	// A smaller fleet from the same seed is not required to be a prefix,
	// but it is deterministic too.
	if !reflect.DeepEqual(Generate(37, 9, testNow), Generate(37, 9, testNow)) {
		t.Fatal("small fleets from the same seed differ")
	}
}

func TestEverySiteAndDeviceValidates(t *testing.T) {
	sites := map[string]inventory.Site{}
	for _, s := range Sites() {
		if err := s.Validate(); err != nil {
			t.Fatalf("site %s: %v", s.ID, err)
		}
		sites[s.ID] = s
	}
	if len(sites) < 5 || len(sites) > 6 {
		t.Fatalf("%d sites, want 5 or 6", len(sites))
	}
	for _, d := range Generate(3000, 1, testNow) {
		if err := d.Validate(); err != nil {
			t.Fatalf("device %s: %v\n%+v", d.ID, err, d)
		}
		if _, ok := sites[d.Location.Site]; !ok {
			t.Fatalf("device %s is at unknown site %q", d.ID, d.Location.Site)
		}
	}
}

func TestIdentifiersAndAddressesAreUnique(t *testing.T) {
	fleet := Generate(5000, 3, testNow)
	if len(fleet) != 5000 {
		t.Fatalf("Generate(5000) gave %d devices", len(fleet))
	}
	seen := map[string]map[string]string{"id": {}, "name": {}, "serial": {}, "mac": {}, "ip": {}}
	check := func(kind, v, id string) {
		if other, dup := seen[kind][v]; dup {
			t.Fatalf("%s %q of %s is also %s's", kind, v, id, other)
		}
		seen[kind][v] = id
	}
	for _, d := range fleet {
		check("id", d.ID, d.ID)
		check("name", d.Name, d.ID)
		check("serial", d.Serial, d.ID)
		for _, m := range d.MACs {
			check("mac", m, d.ID)
		}
		for _, ip := range d.IPs {
			check("ip", ip, d.ID)
		}
	}
}

func TestAddressesFollowSiteSegmentAndVendor(t *testing.T) {
	octet := map[string]int{}
	for _, p := range profiles() {
		octet[p.site.ID] = p.octet
	}
	ouis := map[string][]string{}
	for _, p := range catalog() {
		ouis[p.vendor] = append(ouis[p.vendor], p.ouis...)
	}
	for _, d := range Generate(2000, 5, testNow) {
		a, err := netip.ParseAddr(d.IPs[0])
		if err != nil || !a.Is4() {
			t.Fatalf("%s: first address %q is not IPv4", d.ID, d.IPs[0])
		}
		b := a.As4()
		seg := slices.Index(Segments(), d.Segment)
		if b[0] != 10 || int(b[1]) != octet[d.Location.Site] || int(b[2])/40 != seg || b[3] < 10 || b[3] > 249 {
			t.Fatalf("%s at %s on %s has address %s, want 10.%d.[%d-%d].x", d.ID, d.Location.Site, d.Segment, a, octet[d.Location.Site], seg*40, seg*40+39)
		}
		for _, m := range d.MACs {
			if !slices.Contains(ouis[d.Vendor], m[:8]) {
				t.Fatalf("%s: MAC %s is not under a %s prefix %v", d.ID, m, d.Vendor, ouis[d.Vendor])
			}
		}
	}
}

func TestAFullSegmentContinuesInTheNextBlockThenOnIPv6(t *testing.T) {
	g := &generator{ips: map[[2]int]int{}}
	if got := g.addresses(3, SegmentOT, 1); !slices.Equal(got, []string{"10.3.80.10"}) {
		t.Fatalf("first address = %v", got)
	}
	g.ips[[2]int{3, 2}] = 240 * 40 // the segment's 40 /24s are full
	if got := g.addresses(3, SegmentOT, 1); !slices.Equal(got, []string{"10.19.80.10"}) {
		t.Fatalf("address after a full block = %v, want 10.19.80.10", got)
	}
	g.ips[[2]int{3, 2}] = 240 * 40 * 16
	got := g.addresses(3, SegmentOT, 1)
	if len(got) != 1 || !netip.MustParseAddr(got[0]).Is6() {
		t.Fatalf("address past every block = %v, want one IPv6 address", got)
	}
	if got := g.addresses(3, SegmentGuest, 2); len(got) != 2 || !netip.MustParseAddr(got[1]).Is6() {
		t.Fatalf("a router's addresses = %v, want IPv4 and IPv6", got)
	}
}

func TestEveryClassOfEverySiteHasAProduct(t *testing.T) {
	g := &generator{catalog: catalog()}
	for _, p := range profiles() {
		for class := range p.classes {
			if !slices.Contains(inventory.Classes, class) {
				t.Errorf("%s: %q is not an inventory class", p.site.ID, class)
			}
			if len(g.products(class, p.site.ID)) == 0 {
				t.Errorf("%s holds %s devices but no product fits", p.site.ID, class)
			}
		}
	}
	for _, prod := range catalog() {
		if len(prod.models) == 0 || len(prod.ouis) == 0 || len(prod.firmware) == 0 || prod.nics < 1 || !slices.Contains(Segments(), prod.segment) {
			t.Errorf("%s %v is incomplete", prod.vendor, prod.models)
		}
	}
}

func TestTheClassAndSiteMixIsSane(t *testing.T) {
	const n = 4000
	fleet := Generate(n, 11, testNow)
	bySite := map[string]int{}
	byClass := map[string]int{}
	medicalAtClinic, clinic := 0, 0
	for _, d := range fleet {
		bySite[d.Location.Site]++
		byClass[d.Class]++
		if d.Location.Site == siteClinic {
			clinic++
			if d.Class == inventory.ClassMedical {
				medicalAtClinic++
			}
		}
		if d.Class == inventory.ClassMedical && d.Location.Site != siteClinic {
			t.Fatalf("medical device %s outside the clinic", d.ID)
		}
		if d.Class == inventory.ClassPLC && d.Segment != SegmentOT {
			t.Fatalf("PLC %s on segment %s", d.ID, d.Segment)
		}
		if d.Class == inventory.ClassCamera && d.Segment != SegmentCCTV {
			t.Fatalf("camera %s on segment %s", d.ID, d.Segment)
		}
	}
	for _, p := range profiles() {
		got := float64(bySite[p.site.ID]) / n
		if got < p.share-0.01 || got > p.share+0.01 {
			t.Errorf("%s holds %.3f of the fleet, want %.2f", p.site.ID, got, p.share)
		}
	}
	if f := float64(medicalAtClinic) / float64(clinic); f < 0.3 {
		t.Errorf("medical devices are %.2f of the clinic, want at least 0.3", f)
	}
	if f := float64(byClass[inventory.ClassCamera]) / n; f < 0.12 || f > 0.3 {
		t.Errorf("cameras are %.2f of the fleet", f)
	}
	for _, c := range []string{inventory.ClassCamera, inventory.ClassPLC, inventory.ClassMedical, inventory.ClassGateway, inventory.ClassRouter,
		inventory.ClassSensor, inventory.ClassThermostat, inventory.ClassPrinter, inventory.ClassLock, inventory.ClassLighting} {
		if byClass[c] == 0 {
			t.Errorf("no %s in a fleet of %d", c, n)
		}
	}
	vendors := map[string]bool{}
	for _, d := range fleet {
		vendors[d.Vendor] = true
	}
	for _, v := range []string{"Hikvision", "Dahua", "Axis Communications", "Siemens", "Schneider Electric", "Rockwell Automation",
		"TP-Link", "MikroTik", "Cisco", "BD", "Philips", "HP", "Philips Hue", "Honeywell", "Johnson Controls", "Bosch", "Advantech"} {
		if !vendors[v] {
			t.Errorf("no %s device in a fleet of %d", v, n)
		}
	}
}

func TestOlderFirmwareIsRarer(t *testing.T) {
	fleet := Generate(20000, 2, testNow)
	counts := map[string]map[string]int{} // vendor+model family → firmware → devices
	for _, d := range fleet {
		k := d.Vendor + "|" + d.Class + "|" + d.OS
		if counts[k] == nil {
			counts[k] = map[string]int{}
		}
		counts[k][d.FirmwareVersion]++
	}
	for _, prod := range catalog() {
		k := prod.vendor + "|" + prod.class + "|" + prod.os
		oldest, newest := prod.firmware[0].version, prod.firmware[len(prod.firmware)-1].version
		co, cn := counts[k][oldest], counts[k][newest]
		if co+cn < 40 {
			continue // too few to tell
		}
		if co >= cn {
			t.Errorf("%s %s: oldest firmware %s on %d devices, newest %s on %d", prod.vendor, prod.models[0], oldest, co, newest, cn)
		}
	}
}

func TestStatusesAndRiskScoresAreRealistic(t *testing.T) {
	const n = 5000
	fleet := Generate(n, 8, testNow)
	statuses := map[string]int{}
	var risks []float64
	sum := 0.0
	for _, d := range fleet {
		statuses[d.Status]++
		risks = append(risks, d.RiskScore)
		sum += d.RiskScore
	}
	if f := float64(statuses[inventory.StatusActive]) / n; f < 0.8 || f > 0.92 {
		t.Errorf("active devices are %.2f of the fleet, want mostly active", f)
	}
	for _, s := range []string{inventory.StatusPending, inventory.StatusQuarantined, inventory.StatusRetired} {
		if statuses[s] == 0 {
			t.Errorf("no %s devices", s)
		}
	}
	sort.Float64s(risks)
	median, mean := risks[n/2], sum/n
	high := n - sort.SearchFloat64s(risks, 70)
	if median > 40 || median < 10 {
		t.Errorf("median risk %.1f, want most devices low", median)
	}
	if mean <= median {
		t.Errorf("mean risk %.1f not above median %.1f: want a long upper tail", mean, median)
	}
	if f := float64(high) / n; f < 0.01 || f > 0.15 {
		t.Errorf("%.3f of devices score 70 or more, want a few", f)
	}
	if risks[0] < 0 || risks[n-1] > 100 {
		t.Errorf("risk from %.1f to %.1f, want within 0..100", risks[0], risks[n-1])
	}
}

func TestSeenTimesAreSpreadOverMonthsBeforeNow(t *testing.T) {
	var oldest time.Time
	for _, d := range Generate(3000, 4, testNow) {
		if d.FirstSeen.IsZero() || d.LastSeen.IsZero() || d.LastSeen.Before(d.FirstSeen) || d.LastSeen.After(testNow) {
			t.Fatalf("%s: first %s, last %s, now %s", d.ID, d.FirstSeen, d.LastSeen, testNow)
		}
		if age := testNow.Sub(d.FirstSeen); age > 541*24*time.Hour {
			t.Fatalf("%s first seen %s ago", d.ID, age)
		}
		switch d.Status {
		case inventory.StatusPending:
			if testNow.Sub(d.FirstSeen) > 14*24*time.Hour {
				t.Fatalf("pending %s was discovered %s ago", d.ID, testNow.Sub(d.FirstSeen))
			}
		case inventory.StatusRetired:
			if testNow.Sub(d.LastSeen) < 14*24*time.Hour {
				t.Fatalf("retired %s was seen %s ago", d.ID, testNow.Sub(d.LastSeen))
			}
		}
		if oldest.IsZero() || d.FirstSeen.Before(oldest) {
			oldest = d.FirstSeen
		}
	}
	if testNow.Sub(oldest) < 300*24*time.Hour {
		t.Errorf("the oldest device was first seen %s ago, want first sightings over many months", testNow.Sub(oldest))
	}
}

func TestEmptyAndTinyFleets(t *testing.T) {
	for _, n := range []int{-5, 0} {
		if got := Generate(n, 1, testNow); len(got) != 0 {
			t.Errorf("Generate(%d) gave %d devices", n, len(got))
		}
	}
	for n := 1; n <= 12; n++ {
		fleet := Generate(n, int64(n), testNow)
		if len(fleet) != n {
			t.Fatalf("Generate(%d) gave %d devices", n, len(fleet))
		}
		for _, d := range fleet {
			if err := d.Validate(); err != nil {
				t.Fatalf("Generate(%d): %s: %v", n, d.ID, err)
			}
		}
	}
}

func TestApportionGivesEveryUnitOnce(t *testing.T) {
	tests := []struct {
		n       int
		weights []float64
		want    []int
	}{
		{10, []float64{1, 1}, []int{5, 5}},
		{3, []float64{1, 1}, []int{2, 1}},
		{7, []float64{0.5, 0.3, 0.2}, []int{4, 2, 1}},
		{0, []float64{1}, []int{0}},
		{5, []float64{0, 0}, []int{0, 0}},
	}
	for _, tt := range tests {
		if got := apportion(tt.n, tt.weights); !slices.Equal(got, tt.want) {
			t.Errorf("apportion(%d, %v) = %v, want %v", tt.n, tt.weights, got, tt.want)
		}
	}
}

// FuzzGenerate checks that any size and seed (as `fleetward demo --devices
// --seed` takes them) gives a fleet of that size whose devices validate.
func FuzzGenerate(f *testing.F) {
	f.Add(0, int64(0))
	f.Add(1, int64(-1))
	f.Add(57, int64(1<<62))
	f.Add(-3, int64(7))
	f.Fuzz(func(t *testing.T, n int, seed int64) {
		n %= 300
		fleet := Generate(n, seed, testNow)
		if want := max(n, 0); len(fleet) != want {
			t.Fatalf("Generate(%d) gave %d devices", n, len(fleet))
		}
		ids := map[string]bool{}
		for _, d := range fleet {
			if err := d.Validate(); err != nil {
				t.Fatalf("%s: %v", d.ID, err)
			}
			if ids[d.ID] || !strings.Contains(d.Name, strings.ToUpper(d.ID)) {
				t.Fatalf("duplicate or misnamed device %s (%s)", d.ID, d.Name)
			}
			ids[d.ID] = true
		}
	})
}

func BenchmarkGenerate(b *testing.B) {
	for b.Loop() {
		Generate(10000, 1, testNow)
	}
	b.ReportMetric(10000*float64(b.N)/b.Elapsed().Seconds(), "devices/s")
}
