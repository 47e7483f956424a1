package inventory

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/url"
	"strings"
	"testing"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/store/storetest"
)

// requireAppError fails unless err is nil or an *apperr.Error of code
// Invalid: bad input must be explained, never reported as internal.
func requireAppError(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if ae := apperr.As(err); ae == nil || ae.Code != apperr.Invalid || ae.Message == "" {
		t.Fatalf("%s: %v (%T), want an invalid *apperr.Error", what, err, err)
	}
}

// requireStoredDevicesAreClean checks that every stored device validates
// and is already in normal form.
func requireStoredDevicesAreClean(t *testing.T, s *Service) {
	t.Helper()
	devs, _ := listAll(t, s, Filter{Sort: "id", Limit: MaxLimit})
	for _, d := range devs {
		n, err := d.normalized()
		if err != nil {
			t.Fatalf("stored device %s does not validate: %v", d.ID, err)
		}
		n.SecretNames, n.CreatedAt, n.UpdatedAt, n.Version = d.SecretNames, d.CreatedAt, d.UpdatedAt, d.Version
		if diff := sameDevice(n, d); diff != "" {
			t.Fatalf("stored device %s is not in normal form:%s", d.ID, diff)
		}
	}
}

// fuzzing reports whether this process runs under go test -fuzz rather
// than running the seed corpus. While fuzzing, the import targets leave the
// database out: coverage inside SQLite and pgx varies with the database's
// state, so nearly every input looks new and the fuzzer spends its time
// minimizing. The seed corpus and saved inputs still run through both
// engines in every go test.
func fuzzing() bool {
	fl := flag.Lookup("test.fuzz")
	return fl != nil && fl.Value.String() != ""
}

// parseRows reads every row as ImportDevices would and validates it as a
// new device, checking that every error explains itself.
func parseRows(t *testing.T, format string, data []byte) {
	var rr rowReader
	var err error
	if format == "csv" {
		rr, err = newCSVReader(bytes.NewReader(data))
	} else {
		rr, err = newJSONReader(bytes.NewReader(data))
	}
	requireAppError(t, "open reader", err)
	if err != nil {
		return
	}
	for n := 1; ; n++ {
		row, err := rr.next()
		if errors.Is(err, io.EOF) {
			return
		}
		requireAppError(t, "read row", err)
		if err != nil {
			return
		}
		if row.row != n {
			t.Fatalf("row numbered %d, want %d", row.row, n)
		}
		requireAppError(t, "row", row.err)
		if row.err == nil {
			_, err := row.dev.normalized()
			requireAppError(t, "validate row", err)
		}
	}
}

// fuzzImport imports data on every engine and checks the outcome.
func fuzzImport(f *testing.F, format string) {
	if fuzzing() {
		f.Fuzz(func(t *testing.T, data []byte, _ uint8, _ bool) { parseRows(t, format, data) })
		return
	}
	var fixtures []*fixture
	for _, e := range storetest.Engines(f) {
		fixtures = append(fixtures, newFixture(f, e))
	}
	f.Fuzz(func(t *testing.T, data []byte, batch uint8, stop bool) {
		parseRows(t, format, data)
		for _, fx := range fixtures {
			e := fx.e
			if _, err := e.DB.Exec(context.Background(), `DELETE FROM devices`); err != nil {
				t.Fatal(err)
			}
			res, err := fx.s.ImportDevices(fx.ctx, format, bytes.NewReader(data), ImportOptions{BatchSize: int(batch%8) + 1, StopOnError: stop})
			requireAppError(t, e.Name+" import", err)
			for _, re := range res.Errors {
				if re.Row < 1 || re.Message == "" {
					t.Fatalf("%s: row error without row or message: %+v", e.Name, re)
				}
			}
			requireStoredDevicesAreClean(t, fx.s)
		}
	})
}

func FuzzImportCSV(f *testing.F) {
	f.Add([]byte("id,name,class,macs,ips,tags,lat,lon,risk_score,first_seen,status,site\n"+
		"cam-1,Camera,camera,AA-BB-CC-DD-EE-FF;aa:bb:cc:dd:ee:ff,10.0.0.1;::ffff:10.0.0.1,Pci;pci,52.5,13.4,12.5,2024-01-01T00:00:00Z,pending,s1\n"+
		",Unnamed id,tv,,,,,,,,,\n"), uint8(0), false)
	f.Add([]byte("\uFEFFID , Name,CLASS\r\nx,\"quoted, name\",sensor\r\ny,\"multi\nline\",plc\r\n"), uint8(1), false)
	f.Add([]byte("id,name,class\na,b\"c,tv\n"), uint8(2), true)
	f.Add([]byte("id,name,class\nbad id,x,toaster\nok,x,tv,extra\n"), uint8(3), true)
	f.Add([]byte("id,name\nx,\x00\n"), uint8(4), false)
	f.Add([]byte("colour\nred\n"), uint8(0), false)
	f.Add([]byte(""), uint8(0), false)
	fuzzImport(f, "csv")
}

func FuzzImportJSON(f *testing.F) {
	f.Add([]byte(`[{"id":"cam-1","name":"Camera","class":"camera","macs":["AA-BB-CC-DD-EE-FF"],"ips":["10.0.0.1"],`+
		`"location":{"site":"s1","lat":1.5,"lon":null},"tags":["PCI"],"status":"active","risk_score":99.5,`+
		`"first_seen":"2024-01-01T00:00:00Z","attributes":{"k":"v"},"secrets":{"pin":"1234"},"version":3}]`), uint8(0), false)
	f.Add([]byte(`[{"name":"x","class":"tv"},{"name":"y","class":"toaster"},"str",null,{"colour":1}]`), uint8(1), false)
	f.Add([]byte(`[{"name":"x","class":"tv"} {"name":"y"}]`), uint8(2), true)
	f.Add([]byte(`{"name":"x"}`), uint8(0), false)
	f.Add([]byte(`[{"name":"\u0000","class":"tv","location":{"floor":1}}]`), uint8(0), false)
	f.Add([]byte(`[] trailing`), uint8(0), false)
	f.Add([]byte(`[{"name":"a\ud800b","class":"tv","ips":["fe80::1%eth0"]}]`), uint8(0), false)
	fuzzImport(f, "json")
}

func FuzzParseFilter(f *testing.F) {
	f.Add("class=camera,sensor&site=s1&risk_min=10&risk_max=90&sort=-risk&limit=5")
	f.Add("q=50%25_off%20lobby&tag=pci,EOL&vendor=Axis&status=active&group=g1")
	f.Add("sort=last_seen&cursor=eyJzIjoibGFzdF9zZWVuIiwidiI6IjEiLCJpIjoiYSJ9")
	f.Add("sort=name&cursor=eyJzIjoibmFtZSIsInYiOiJcdTAwMDAiLCJpIjoiYSJ9")
	f.Add("colour=red")
	f.Add("limit=-1&risk_min=NaN")
	f.Add("q=%ff%00")
	engines := storetest.Engines(f)
	for _, e := range engines {
		fx := newFixture(f, e)
		if _, err := fx.s.CreateSite(fx.ctx, Site{ID: "s1", Name: "S1"}); err != nil {
			f.Fatal(err)
		}
		for _, d := range genDevices(30, 5, []string{"s1"}) {
			if _, err := fx.s.CreateDevice(fx.ctx, d); err != nil {
				f.Fatal(err)
			}
		}
	}
	f.Fuzz(func(t *testing.T, query string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		flt, err := ParseFilter(q)
		requireAppError(t, "ParseFilter", err)
		if err != nil {
			return
		}
		// A filter ParseFilter accepts runs on every engine.
		for _, e := range engines {
			s := NewService(e.DB, &recordingLedger{}, nil, nil, nil)
			page, err := s.ListDevices(context.Background(), flt)
			if err != nil {
				t.Fatalf("%s: ListDevices(%q) = %v", e.Name, query, err)
			}
			if page.Total < len(page.Devices) {
				t.Fatalf("%s: total %d below the page's %d devices", e.Name, page.Total, len(page.Devices))
			}
		}
	})
}

func FuzzDeviceJSON(f *testing.F) {
	seed, _ := json.Marshal(fullDevice("cam-1", "berlin"))
	f.Add(seed)
	f.Add([]byte(`{"name":"x","class":"tv","location":{"lat":"north"}}`))
	f.Add([]byte(`{"name":"x","class":"tv","tags":["A","a","b c"]}`))
	f.Add([]byte(`{"name":"x","class":"tv","risk_score":1e309}`))
	f.Add([]byte(`{"name":"x","class":"tv","first_seen":"0001-01-01T00:00:00Z","config_digest":"SHA256:` + strings.Repeat("F", 64) + `"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, _, err := decodeDeviceJSON(data)
		requireAppError(t, "decode", err)
		if err != nil {
			return
		}
		n, err := d.normalized()
		requireAppError(t, "Validate", err)
		if err != nil {
			return
		}
		// Normal form is a fixed point, through JSON too.
		raw, err := json.Marshal(n)
		if err != nil {
			t.Fatalf("marshal a valid device: %v", err)
		}
		back, _, err := decodeDeviceJSON(raw)
		if err != nil {
			t.Fatalf("decode a marshalled valid device: %v\n%s", err, raw)
		}
		again, err := back.normalized()
		if err != nil {
			t.Fatalf("a normalized device no longer validates: %v\n%s", err, raw)
		}
		if diff := sameDevice(again, n); diff != "" {
			t.Fatalf("normalizing is not idempotent:%s", diff)
		}
	})
}
