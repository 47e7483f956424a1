package inventory

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/store/storetest"
)

func TestParseFilterReadsEveryParameter(t *testing.T) {
	q := url.Values{
		"class": {"camera,sensor", "plc"}, "vendor": {"Axis"}, "site": {"muc, ber"}, "tag": {"PCI"}, "status": {"active,quarantined"},
		"group": {"wave-1"}, "risk_min": {"10"}, "risk_max": {"90.5"}, "q": {"lobby 10.1"}, "sort": {"-risk"}, "limit": {"20"},
		"cursor": {""},
	}
	f, err := ParseFilter(q)
	if err != nil {
		t.Fatal(err)
	}
	want := Filter{Classes: []string{"camera", "sensor", "plc"}, Vendors: []string{"Axis"}, Sites: []string{"muc", "ber"},
		Tags: []string{"PCI"}, Statuses: []string{"active", "quarantined"}, Group: "wave-1", RiskMin: ptr(10.0), RiskMax: ptr(90.5),
		Query: "lobby 10.1", Sort: "-risk", Limit: 20}
	gotJSON, _ := json.Marshal(f)
	wantJSON, _ := json.Marshal(want)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Fatalf("ParseFilter\n got %s\nwant %s", gotJSON, wantJSON)
	}
	if f, err := ParseFilter(url.Values{}); err != nil || f.Sort != "" || f.Limit != 0 {
		t.Fatalf("no parameters: %+v, %v", f, err)
	}
}

func TestParseFilterNamesTheBadParameter(t *testing.T) {
	tests := []struct {
		name  string
		query string
		field string
	}{
		{"an unknown parameter is named", "colour=red", "colour"},
		{"an unknown class is refused", "class=camera,toaster", "class"},
		{"an unknown status is refused", "status=lost", "status"},
		{"a malformed site id is refused", "site=Main%20Site", "site"},
		{"a malformed tag is refused", "tag=has%20space", "tag"},
		{"a malformed group id is refused", "group=-x", "group"},
		{"a risk_min that is not a number is refused", "risk_min=high", "risk_min"},
		{"a risk_max over 100 is refused", "risk_max=101", "risk_max"},
		{"a risk_min of NaN is refused", "risk_min=NaN", "risk_min"},
		{"risk_max below risk_min is refused", "risk_min=50&risk_max=40", "risk_max"},
		{"an unknown sort is refused", "sort=colour", "sort"},
		{"a limit of 0 is refused", "limit=0", "limit"},
		{"a limit over 1000 is refused", "limit=1001", "limit"},
		{"a limit that is not a number is refused", "limit=ten", "limit"},
		{"a repeated single parameter is refused", "sort=name&sort=id", "sort"},
		{"a malformed cursor is refused", "cursor=!!!", "cursor"},
		{"a long query is refused", "q=" + strings.Repeat("a", 257), "q"},
		{"a query that is not UTF-8 is refused", "q=%ff", "q"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			_, err = ParseFilter(q)
			if ae := apperr.As(err); ae == nil || ae.Code != apperr.Invalid || ae.Field != tt.field {
				t.Fatalf("ParseFilter(%s) = %v, want invalid on %q", tt.query, err, tt.field)
			}
		})
	}
}

// importDevices imports devices through JSON and fails the test on any
// error or failed row.
func importDevices(t testing.TB, f *fixture, devs []Device) ImportResult {
	t.Helper()
	b, err := json.Marshal(devs)
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.s.ImportDevices(f.ctx, "json", bytes.NewReader(b), ImportOptions{})
	if err != nil || res.Failed > 0 {
		t.Fatalf("import: %v; errors %+v", err, res.Errors)
	}
	return res
}

// listAll walks every page of a filter and returns the devices in order.
func listAll(t testing.TB, s *Service, f Filter) ([]Device, int) {
	t.Helper()
	var out []Device
	total := -1
	for page := 0; ; page++ {
		p, err := s.ListDevices(context.Background(), f)
		if err != nil {
			t.Fatalf("list page %d of %+v: %v", page, f, err)
		}
		if total >= 0 && p.Total != total {
			t.Fatalf("total changed from %d to %d between pages", total, p.Total)
		}
		total = p.Total
		out = append(out, p.Devices...)
		if p.NextCursor == "" {
			return out, total
		}
		if len(p.Devices) == 0 || page > 10000 {
			t.Fatal("a page with a next cursor but no devices")
		}
		f.Cursor = p.NextCursor
	}
}

func ids(ds []Device) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

func TestListFiltersEachAndCombined(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e)
		sites := []string{"s1", "s2", "s3", "s4"}
		devs := genDevices(400, 11, sites)
		devs[0].Name, devs[0].Serial, devs[0].MACs = "Lobby Camera 50%_off", "ZX-9000-Q", []string{"02:AB:CD:00:00:01"}
		// One group member matches every filter at once.
		devs[12].Class, devs[12].Vendor, devs[12].Location.Site, devs[12].Tags = "camera", "Axis", "s1", []string{"pci"}
		devs[12].Status, devs[12].RiskScore = StatusActive, 12.5
		ipPrefix := devs[3].IPs[0][:strings.LastIndex(devs[3].IPs[0], ".")+1]
		importDevices(t, f, devs)
		if _, err := f.s.CreateGroup(f.ctx, Group{ID: "g", Name: "G"}); err != nil {
			t.Fatal(err)
		}
		if err := f.s.AddGroupMembers(f.ctx, "g", ids(devs[10:40])); err != nil {
			t.Fatal(err)
		}
		all := make([]Device, len(devs))
		for i, d := range devs {
			all[i] = normalize(t, d)
		}
		inGroup := func(d Device) bool { return slices.Contains(ids(devs[10:40]), d.ID) }
		tests := []struct {
			name  string
			query string
			match func(d Device) bool
		}{
			{"no filter lists every device", "", func(Device) bool { return true }},
			{"class matches one class", "class=camera", func(d Device) bool { return d.Class == "camera" }},
			{"class matches any of a list", "class=camera,sensor&class=plc", func(d Device) bool { return slices.Contains([]string{"camera", "sensor", "plc"}, d.Class) }},
			{"vendor matches without regard to case", "vendor=AXIS,siemens", func(d Device) bool { return d.Vendor == "Axis" || d.Vendor == "Siemens" }},
			{"site matches any of a list", "site=s1,s3", func(d Device) bool { return d.Location.Site == "s1" || d.Location.Site == "s3" }},
			{"tag matches devices with the tag", "tag=pci", func(d Device) bool { return slices.Contains(d.Tags, "pci") }},
			{"tag matches devices with any of the tags", "tag=pci,EOL", func(d Device) bool { return slices.Contains(d.Tags, "pci") || slices.Contains(d.Tags, "eol") }},
			{"status matches any of a list", "status=quarantined,pending", func(d Device) bool { return d.Status == "quarantined" || d.Status == "pending" }},
			{"group matches its members", "group=g", inGroup},
			{"risk bounds are inclusive", "risk_min=20&risk_max=30.5", func(d Device) bool { return d.RiskScore >= 20 && d.RiskScore <= 30.5 }},
			{"q finds a name without regard to case", "q=lobby%20CAMERA", func(d Device) bool { return d.ID == devs[0].ID }},
			{"q takes % and _ literally", "q=50%25_off", func(d Device) bool { return d.ID == devs[0].ID }},
			{"q finds a serial", "q=zx-9000", func(d Device) bool { return d.ID == devs[0].ID }},
			{"q finds a MAC typed in upper case", "q=02:AB:CD", func(d Device) bool { return d.ID == devs[0].ID }},
			{"q finds an IP prefix", "q=" + ipPrefix, func(d Device) bool {
				return slices.ContainsFunc(d.IPs, func(ip string) bool { return strings.Contains(ip, ipPrefix) })
			}},
			{"q matches the id", "q=" + devs[5].ID, func(d Device) bool { return strings.Contains(d.ID, devs[5].ID) }},
			{"q matches the owner and firmware", "q=clinical-engineering%201.", func(d Device) bool {
				return d.Owner == "clinical-engineering" && strings.Contains(searchText(&d), "1.")
			}},
			{"class, site and a risk range combine", "class=camera,sensor&site=s1&risk_min=50", func(d Device) bool {
				return (d.Class == "camera" || d.Class == "sensor") && d.Location.Site == "s1" && d.RiskScore >= 50
			}},
			{"every filter combines", "class=camera,sensor,plc,gateway&vendor=axis,bosch,cisco&site=s1,s2&tag=pci,critical,ot&status=active&risk_max=80&group=g", func(d Device) bool {
				return slices.Contains([]string{"camera", "sensor", "plc", "gateway"}, d.Class) &&
					slices.Contains([]string{"Axis", "Bosch", "Cisco"}, d.Vendor) &&
					(d.Location.Site == "s1" || d.Location.Site == "s2") &&
					(slices.Contains(d.Tags, "pci") || slices.Contains(d.Tags, "critical") || slices.Contains(d.Tags, "ot")) &&
					d.Status == "active" && d.RiskScore <= 80 && inGroup(d)
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				q, _ := url.ParseQuery(tt.query)
				q.Set("sort", "id")
				q.Set("limit", "37")
				flt, err := ParseFilter(q)
				if err != nil {
					t.Fatal(err)
				}
				got, total := listAll(t, f.s, flt)
				var want []string
				for _, d := range all {
					if tt.match(d) {
						want = append(want, d.ID)
					}
				}
				slices.Sort(want)
				if !slices.Equal(ids(got), want) || total != len(want) {
					t.Fatalf("%s: got %d devices (total %d), want %d\n got %v\nwant %v", tt.query, len(got), total, len(want), ids(got), want)
				}
				if len(want) == 0 {
					t.Fatalf("%s matches nothing in the generated fleet: the test proves nothing", tt.query)
				}
				if e.Name != "sqlite" {
					return
				}
				// Both SQLite plans (walk the sort index, or use the
				// filter's indexes) give the same pages, in any order.
				for _, sortBy := range []string{"name", "-risk", "risk", "class", "-last_seen"} {
					flt.Sort = sortBy
					c, err := flt.compile()
					if err != nil {
						t.Fatal(err)
					}
					walked, next1, err := f.s.listPage(f.ctx, &c, true)
					if err != nil {
						t.Fatal(err)
					}
					filtered, next2, err := f.s.listPage(f.ctx, &c, false)
					if err != nil {
						t.Fatal(err)
					}
					if !slices.Equal(ids(walked), ids(filtered)) || next1 != next2 {
						t.Fatalf("sort %s: walking the sort index gives %v, the filter's index %v", sortBy, ids(walked), ids(filtered))
					}
				}
			})
		}
	})
}

// sortValue returns the value a sort orders d by.
func sortValue(key string, d Device) any {
	switch key {
	case "name":
		return d.Name
	case "risk":
		return d.RiskScore
	case "last_seen":
		return d.LastSeen.UnixNano()
	case "first_seen":
		return d.FirstSeen.UnixNano()
	case "created_at":
		return d.CreatedAt.UnixNano()
	case "class":
		return d.Class
	case "vendor":
		return d.Vendor
	}
	return d.ID
}

func compareBy(key string, a, b Device) int {
	var c int
	switch va := sortValue(key, a).(type) {
	case string:
		c = strings.Compare(va, sortValue(key, b).(string))
	case float64:
		c = cmp.Compare(va, sortValue(key, b).(float64))
	case int64:
		c = cmp.Compare(va, sortValue(key, b).(int64))
	}
	if c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// TestEverySortWalksAllPagesWithoutDuplicatesOrGaps generates fleets with
// many ties and non-ASCII names, and checks that walking any sort in pages
// of any size, with or without a search term, yields every matching device
// exactly once, in order, on both engines.
func TestEverySortWalksAllPagesWithoutDuplicatesOrGaps(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e)
		f.site(t, "s1")
		base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		rapid.Check(t, func(rt *rapid.T) {
			if _, err := e.DB.Exec(f.ctx, `DELETE FROM devices`); err != nil {
				rt.Fatal(err)
			}
			n := rapid.IntRange(0, 40).Draw(rt, "devices")
			names := []string{"alpha", "Alpha", "beta", "Ärzte", "émile", "zebra", "a b"}
			devs := make([]Device, n)
			for i := range devs {
				devs[i] = Device{
					ID:        fmt.Sprintf("d%03d", rapid.IntRange(0, 999).Draw(rt, "id")),
					Name:      names[rapid.IntRange(0, len(names)-1).Draw(rt, "name")] + rapid.SampledFrom([]string{"", " 1", " 2"}).Draw(rt, "suffix"),
					Class:     rapid.SampledFrom([]string{"camera", "plc", "tv"}).Draw(rt, "class"),
					Vendor:    rapid.SampledFrom([]string{"", "Axis", "axis", "Zyxel"}).Draw(rt, "vendor"),
					RiskScore: rapid.SampledFrom([]float64{0, 0.1, 33.3, 50, 100}).Draw(rt, "risk"),
					LastSeen:  base.Add(time.Duration(rapid.IntRange(0, 3).Draw(rt, "last_seen")) * time.Hour),
					FirstSeen: base.Add(-time.Duration(rapid.IntRange(0, 3).Draw(rt, "first_seen")) * time.Nanosecond * 1000),
				}
			}
			b, _ := json.Marshal(devs)
			res, err := f.s.ImportDevices(f.ctx, "json", bytes.NewReader(b), ImportOptions{BatchSize: rapid.IntRange(1, 50).Draw(rt, "batch")})
			if err != nil || res.Failed > 0 {
				rt.Fatalf("import: %v %+v", err, res.Errors)
			}
			everything, _ := listAll(t, f.s, Filter{Sort: "id", Limit: MaxLimit})
			key := rapid.SampledFrom(SortKeys).Draw(rt, "sort")
			desc := rapid.Bool().Draw(rt, "desc")
			sortParam := key
			if desc {
				sortParam = "-" + key
			}
			q := rapid.SampledFrom([]string{"", "", "alpha", "a", "1", "ärzte", "zzz"}).Draw(rt, "q")
			want := slices.DeleteFunc(slices.Clone(everything), func(d Device) bool { return !strings.Contains(searchText(&d), q) })
			slices.SortFunc(want, func(a, b Device) int {
				if desc {
					return compareBy(key, b, a)
				}
				return compareBy(key, a, b)
			})
			got, total := listAll(t, f.s, Filter{Sort: sortParam, Query: q, Limit: rapid.IntRange(1, 7).Draw(rt, "limit")})
			if !slices.Equal(ids(got), ids(want)) || total != len(want) {
				rt.Fatalf("sort %s: got %v (total %d)\nwant %v", sortParam, ids(got), total, ids(want))
			}
		})
	})
}

func TestPagingSurvivesChangesBetweenPages(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e)
		for _, id := range []string{"b", "d", "f", "h"} {
			if _, err := f.s.CreateDevice(f.ctx, Device{ID: id, Name: id, Class: "tv"}); err != nil {
				t.Fatal(err)
			}
		}
		p1, err := f.s.ListDevices(f.ctx, Filter{Limit: 2})
		if err != nil || !slices.Equal(ids(p1.Devices), []string{"b", "d"}) {
			t.Fatalf("first page %v, %v", ids(p1.Devices), err)
		}
		// A device before the cursor and one after it appear; one after
		// it goes.
		for _, id := range []string{"a", "e"} {
			if _, err := f.s.CreateDevice(f.ctx, Device{ID: id, Name: id, Class: "tv"}); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.s.DeleteDevice(f.ctx, "f"); err != nil {
			t.Fatal(err)
		}
		p2, err := f.s.ListDevices(f.ctx, Filter{Limit: 2, Cursor: p1.NextCursor})
		if err != nil || !slices.Equal(ids(p2.Devices), []string{"e", "h"}) || p2.NextCursor != "" {
			t.Fatalf("second page %v (next %q), %v; want e, h and the end", ids(p2.Devices), p2.NextCursor, err)
		}
	})
}

func TestACursorMustComeFromTheSameSort(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e)
		for i := range 5 {
			if _, err := f.s.CreateDevice(f.ctx, Device{ID: fmt.Sprintf("d%d", i), Name: "n", Class: "tv", RiskScore: float64(i)}); err != nil {
				t.Fatal(err)
			}
		}
		p, err := f.s.ListDevices(f.ctx, Filter{Sort: "risk", Limit: 2})
		if err != nil || p.NextCursor == "" {
			t.Fatalf("first page: %+v, %v", p, err)
		}
		enc := func(c cursor) string {
			b, _ := json.Marshal(c)
			return base64.RawURLEncoding.EncodeToString(b)
		}
		tests := []struct {
			name   string
			sort   string
			cursor string
		}{
			{"a cursor for risk is refused for -risk", "-risk", p.NextCursor},
			{"a cursor for risk is refused for name", "name", p.NextCursor},
			{"a cursor that is not base64 is refused", "risk", "%%%"},
			{"a cursor that is not JSON is refused", "risk", base64.RawURLEncoding.EncodeToString([]byte("risk|1|d1"))},
			{"a cursor with a bad value for its sort is refused", "risk", enc(cursor{Sort: "risk", Value: "high", ID: "d1"})},
			{"a cursor with a NaN value is refused", "risk", enc(cursor{Sort: "risk", Value: "NaN", ID: "d1"})},
			{"a cursor without an id is refused", "risk", enc(cursor{Sort: "risk", Value: "1"})},
			{"a time cursor with a float is refused", "last_seen", enc(cursor{Sort: "last_seen", Value: "1.5", ID: "d1"})},
			{"a huge cursor is refused", "risk", strings.Repeat("A", 4096)},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := f.s.ListDevices(f.ctx, Filter{Sort: tt.sort, Cursor: tt.cursor})
				if ae := apperr.As(err); ae == nil || ae.Code != apperr.Invalid || ae.Field != "cursor" {
					t.Fatalf("got %v, want invalid on cursor", err)
				}
				_, err = ParseFilter(url.Values{"sort": {tt.sort}, "cursor": {tt.cursor}})
				if ae := apperr.As(err); ae == nil || ae.Field != "cursor" {
					t.Fatalf("ParseFilter: got %v, want invalid on cursor", err)
				}
			})
		}
		p2, err := f.s.ListDevices(f.ctx, Filter{Sort: "risk", Limit: 2, Cursor: p.NextCursor})
		if err != nil || !slices.Equal(ids(p2.Devices), []string{"d2", "d3"}) {
			t.Fatalf("the right sort continues: %v, %v", ids(p2.Devices), err)
		}
	})
}
