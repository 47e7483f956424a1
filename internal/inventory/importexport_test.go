package inventory

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/store"
	"github.com/fleetward/fleetward/internal/store/storetest"
)

// freshEngine opens another, empty database on the same engine as e.
func freshEngine(t *testing.T, e storetest.Engine) storetest.Engine {
	t.Helper()
	if e.Name == "sqlite" {
		return storetest.SQLite(t)
	}
	pg, ok := storetest.Postgres(t)
	if !ok {
		t.Fatal("postgres went away")
	}
	return pg
}

func export(t *testing.T, s *Service, format string, f Filter) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := s.ExportDevices(context.Background(), format, &buf, f); err != nil {
		t.Fatalf("export %s: %v", format, err)
	}
	return buf.Bytes()
}

func TestExportThenImportIntoAFreshDatabaseRoundTrips(t *testing.T) {
	for _, format := range []string{"csv", "json"} {
		t.Run(format, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T, e storetest.Engine) {
				src := newFixture(t, e)
				devs := genDevices(1234, 3, []string{"berlin", "paris", "oslo"})
				// Text that needs CSV quoting and JSON escaping.
				devs[0].Name, devs[0].Location.Room = `Lab "A", bench 3`, "R&D; 2nd floor"
				devs[1].Name, devs[1].Owner = "Überwachung — Gebäude 7", "ops,\"night\""
				importDevices(t, src, devs)
				first := export(t, src.s, format, Filter{})

				dst := newFixture(t, freshEngine(t, e))
				res, err := dst.s.ImportDevices(dst.ctx, format, bytes.NewReader(first), ImportOptions{BatchSize: 300})
				if err != nil || res.Failed != 0 || res.Created != len(devs) {
					t.Fatalf("import of the export: %+v, %v", res, err)
				}
				if len(res.SitesCreated) != 3 {
					t.Errorf("sites created %v", res.SitesCreated)
				}
				want, _ := listAll(t, src.s, Filter{Sort: "id", Limit: MaxLimit})
				got, _ := listAll(t, dst.s, Filter{Sort: "id", Limit: MaxLimit})
				if len(got) != len(want) {
					t.Fatalf("%d devices after the round trip, want %d", len(got), len(want))
				}
				for i := range want {
					w := want[i]
					if format == "csv" {
						w.Attributes = nil // not a CSV column
					}
					if diff := sameDevice(got[i], w); diff != "" {
						t.Fatalf("device %s differs after the round trip:%s", w.ID, diff)
					}
				}
				if second := export(t, dst.s, format, Filter{}); format == "csv" && !bytes.Equal(first, second) {
					t.Fatalf("a CSV export of the imported devices differs from the one imported")
				}
				// Importing the same export again changes nothing.
				res, err = dst.s.ImportDevices(dst.ctx, format, bytes.NewReader(first), ImportOptions{})
				if err != nil || res.Unchanged != len(devs) || res.Created+res.Updated+res.Failed != 0 {
					t.Fatalf("re-import: %+v, %v; want everything unchanged", res, err)
				}
			})
		})
	}
}

func TestExportFollowsTheFilterAndOmitsSecretValues(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e)
		f.site(t, "berlin")
		if _, err := f.s.CreateDevice(f.ctx, fullDevice("cam-1", "berlin")); err != nil {
			t.Fatal(err)
		}
		importDevices(t, f, genDevices(50, 4, nil))
		for _, format := range []string{"csv", "json"} {
			out := export(t, f.s, format, Filter{Classes: []string{"camera"}, Sort: "-risk"})
			if bytes.Contains(out, []byte("correct horse")) || bytes.Contains(out, []byte("s3cr3t")) {
				t.Fatalf("%s export holds a secret value:\n%s", format, out)
			}
			want, _ := listAll(t, f.s, Filter{Classes: []string{"camera"}, Sort: "-risk", Limit: MaxLimit})
			var got []string
			if format == "json" {
				var ds []Device
				if err := json.Unmarshal(out, &ds); err != nil {
					t.Fatalf("json export is not an array of devices: %v", err)
				}
				got = ids(ds)
			} else {
				for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n")[1:] {
					got = append(got, strings.SplitN(line, ",", 2)[0])
				}
			}
			if !slices.Equal(got, ids(want)) {
				t.Fatalf("%s export: %v, want %v", format, got, ids(want))
			}
		}
		empty := export(t, f.s, "json", Filter{Classes: []string{"tv"}, Query: "nothing-matches-this"})
		if string(empty) != "[]\n" {
			t.Fatalf("empty json export = %q", empty)
		}
		if err := f.s.ExportDevices(f.ctx, "xml", io.Discard, Filter{}); apperr.As(err) == nil || apperr.As(err).Field != "format" {
			t.Fatalf("unknown format: %v", err)
		}
	})
}

func TestImportReportsBadRowsByRowAndField(t *testing.T) {
	csvInput := strings.Join([]string{
		"ID,name,class,macs,lat,first_seen,tags",
		"ok-1,Good camera,camera,aa:bb:cc:dd:ee:01,52.5,2024-01-01T00:00:00Z,a;b",
		"bad-mac,Bad MAC,camera,aa:bb:cc:dd:ee:01;nope,,,",
		"bad-lat,Bad latitude,camera,,91,,",
		`bad-class,"Bad, class",toaster,,,,`,
		"bad-count,too,few",
		"bad-time,Bad time,sensor,,,yesterday,",
		"bad-num,Bad number,sensor,,north,,",
		"Bad ID,Bad id,sensor,,,,",
		",No id but fine,sensor,,,,x",
		"bad-tag,Bad tag,sensor,,,,ok;not ok",
	}, "\r\n") + "\r\n"
	jsonInput := `[
		{"id": "ok-1", "name": "Good camera", "class": "camera", "secret_names": ["ignored"], "version": 9},
		{"id": "bad-field", "name": "x", "class": "camera", "colour": "red"},
		{"id": "bad-type", "name": 7, "class": "camera"},
		{"id": "bad-loc", "name": "x", "class": "camera", "location": {"lat": "north"}},
		{"id": "bad-loc-field", "name": "x", "class": "camera", "location": {"floor": 3}},
		"not an object",
		{"id": "bad-ip", "name": "x", "class": "camera", "ips": ["10.0.0.1", "10.0.0.256"]},
		{"id": "bad-time", "name": "x", "class": "camera", "last_seen": "noon"},
		{"id": "bad-secret", "name": "x", "class": "camera", "secrets": {"pin": 1234}},
		{"name": "No id but fine", "class": "sensor"}
	]`
	tests := []struct {
		format string
		input  string
		want   []RowError
	}{
		{"csv", csvInput, []RowError{
			{Row: 2, Line: 3, ID: "bad-mac", Field: "macs[1]"},
			{Row: 3, Line: 4, ID: "bad-lat", Field: "location.lat"},
			{Row: 4, Line: 5, ID: "bad-class", Field: "class"},
			{Row: 5, Line: 6, ID: "bad-count", Field: ""},
			{Row: 6, Line: 7, ID: "bad-time", Field: "first_seen"},
			{Row: 7, Line: 8, ID: "bad-num", Field: "location.lat"},
			{Row: 8, Line: 9, ID: "Bad ID", Field: "id"},
			{Row: 10, Line: 11, ID: "bad-tag", Field: "tags[1]"},
		}},
		{"json", jsonInput, []RowError{
			{Row: 2, Field: "colour"},
			{Row: 3, Field: "name"},
			{Row: 4, Field: "location.lat"},
			{Row: 5, Field: "location.floor"},
			{Row: 6},
			{Row: 7, ID: "bad-ip", Field: "ips[1]"},
			{Row: 8, Field: "last_seen"},
			{Row: 9, Field: "secrets"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T, e storetest.Engine) {
				f := newFixture(t, e)
				res, err := f.s.ImportDevices(f.ctx, tt.format, strings.NewReader(tt.input), ImportOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if res.Created != 2 || res.Failed != len(tt.want) {
					t.Fatalf("created %d, failed %d; want 2, %d; errors %+v", res.Created, res.Failed, len(tt.want), res.Errors)
				}
				for i, w := range tt.want {
					g := res.Errors[i]
					if g.Row != w.Row || g.Line != w.Line || g.Field != w.Field || (w.ID != "" && g.ID != w.ID) || g.Message == "" {
						t.Errorf("error %d = %+v, want row %d line %d id %q field %q", i, g, w.Row, w.Line, w.ID, w.Field)
					}
					if strings.Contains(g.Message, "1234") {
						t.Errorf("error %d quotes a secret: %s", i, g.Message)
					}
				}
				d, err := f.s.GetDevice(f.ctx, "ok-1")
				if err != nil || d.Version != 1 || d.SecretNames != nil {
					t.Fatalf("ok-1: %+v, %v (read-only fields must be ignored)", d, err)
				}
			})
		})
	}
}

func TestImportRefusesMalformedInputAsAWhole(t *testing.T) {
	tests := []struct {
		name   string
		format string
		input  string
		field  string
	}{
		{"an unknown CSV column is named", "csv", "id,name,colour\n", "colour"},
		{"a repeated CSV column is named", "csv", "id,name,NAME\n", "name"},
		{"an unnamed CSV column is refused", "csv", "id,,name\n", "header"},
		{"a CSV bare quote stops the import", "csv", "id,name,class\na,b\"c,tv\n", "body"},
		{"an empty JSON body is refused", "json", "", "body"},
		{"a JSON object instead of an array is refused", "json", `{"id":"x"}`, "body"},
		{"a JSON syntax error stops the import", "json", `[{"id":"a","name":"a","class":"tv"} {"id":"b"}]`, "body"},
		{"a truncated JSON array is refused", "json", `[{"id":"a","name":"a","class":"tv"},`, "body"},
		{"data after the JSON array is refused", "json", `[] []`, "body"},
		{"an unknown format is refused", "xml", "<devices/>", "format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T, e storetest.Engine) {
				f := newFixture(t, e)
				_, err := f.s.ImportDevices(f.ctx, tt.format, strings.NewReader(tt.input), ImportOptions{})
				if ae := apperr.As(err); ae == nil || ae.Code != apperr.Invalid || ae.Field != tt.field {
					t.Fatalf("got %v, want invalid on %q", err, tt.field)
				}
			})
		})
	}
}

func TestImportUpdatesOnlyTheGivenFields(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e)
		f.site(t, "berlin")
		orig, err := f.s.CreateDevice(f.ctx, fullDevice("cam-1", "berlin"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.UpdateDevice(f.ctx, "cam-1", DevicePatch{Status: ptr(StatusQuarantined)}); err != nil {
			t.Fatal(err)
		}
		// Columns: id, name, room and an empty status (leave it).
		res, err := f.s.ImportDevices(f.ctx, "csv", strings.NewReader("room,id,name,status\n2.17,cam-1,Renamed camera,\n"), ImportOptions{})
		if err != nil || res.Updated != 1 {
			t.Fatalf("csv update: %+v, %v", res, err)
		}
		got, err := f.s.GetDevice(f.ctx, "cam-1")
		if err != nil {
			t.Fatal(err)
		}
		want := orig
		want.Name, want.Location.Room, want.Status = "Renamed camera", "2.17", StatusQuarantined
		if diff := sameDevice(got, want); diff != "" || got.Version != 3 {
			t.Fatalf("after a partial CSV import (version %d):%s", got.Version, diff)
		}
		res, err = f.s.ImportDevices(f.ctx, "json", strings.NewReader(`[{"id":"cam-1","tags":["new"],"location":{"site":"berlin"},"secrets":{"pin":"4321"}}]`), ImportOptions{})
		if err != nil || res.Updated != 1 {
			t.Fatalf("json update: %+v, %v", res, err)
		}
		got, _ = f.s.GetDevice(f.ctx, "cam-1")
		want.Tags, want.Location, want.SecretNames = []string{"new"}, Location{Site: "berlin"}, []string{"admin_password", "pin", "snmp_community"}
		if diff := sameDevice(got, want); diff != "" {
			t.Fatalf("after a partial JSON import:%s", diff)
		}
		if v, err := f.s.DeviceSecret(f.ctx, "cam-1", "pin"); err != nil || v != "4321" {
			t.Fatalf("imported secret: %q, %v", v, err)
		}
		evs := ledgerEvents(t, e.DB)
		last := evs[len(evs)-2] // the import's update, before the secret access
		if last.Type != EventDeviceUpdated || strings.Contains(string(last.Data), "4321") {
			t.Fatalf("import event %s: %s", last.Type, last.Data)
		}
	})
}

func TestImportCreatesTheSitesDevicesReferTo(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e)
		f.site(t, "known")
		in := "id,name,class,site\na,A,tv,known\nb,B,tv,new-site\nc,C,tv,new-site\nd,D,tv,other\n"
		res, err := f.s.ImportDevices(f.ctx, "csv", strings.NewReader(in), ImportOptions{BatchSize: 2})
		if err != nil || res.Created != 4 {
			t.Fatalf("import: %+v, %v", res, err)
		}
		if !slices.Equal(res.SitesCreated, []string{"new-site", "other"}) {
			t.Fatalf("sites created %v, want new-site and other", res.SitesCreated)
		}
		site, err := f.s.GetSite(f.ctx, "new-site")
		if err != nil || site.Name != "new-site" {
			t.Fatalf("created site %+v, %v; want it named after its id", site, err)
		}
		n := 0
		for _, ev := range ledgerEvents(t, e.DB) {
			if ev.Type == EventSiteCreated {
				n++
			}
		}
		if n != 3 {
			t.Fatalf("%d site.created entries, want 3", n)
		}
	})
}

func TestImportDryRunStoresNothing(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e)
		in := "id,name,class,site\na,A,tv,s1\nb,B,toaster,s1\nc,C,tv,s2\n"
		res, err := f.s.ImportDevices(f.ctx, "csv", strings.NewReader(in), ImportOptions{DryRun: true, BatchSize: 1})
		if err != nil || res.Created != 2 || res.Failed != 1 || !res.DryRun || !slices.Equal(res.SitesCreated, []string{"s1", "s2"}) {
			t.Fatalf("dry run: %+v, %v", res, err)
		}
		var n int
		if err := e.DB.QueryRow(f.ctx, `SELECT (SELECT COUNT(*) FROM devices) + (SELECT COUNT(*) FROM sites)`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("dry run stored %d rows (%v)", n, err)
		}
		if len(ledgerEvents(t, e.DB)) != 0 || len(f.pub.published()) != 0 {
			t.Fatal("dry run recorded or published events")
		}
	})
}

func TestImportStopOnErrorKeepsTheRowsBefore(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e)
		in := "id,name,class\na,A,tv\nb,B,tv\nc,C,tv\nd,D,toaster\ne,E,tv\n"
		res, err := f.s.ImportDevices(f.ctx, "csv", strings.NewReader(in), ImportOptions{StopOnError: true, BatchSize: 2})
		ae := apperr.As(err)
		if ae == nil || ae.Field != "class" || !strings.Contains(ae.Message, "row 4") {
			t.Fatalf("got %v, want invalid on class naming row 4", err)
		}
		if res.Created != 3 || res.Failed != 1 {
			t.Fatalf("result %+v, want 3 created, 1 failed", res)
		}
		page, _ := f.s.ListDevices(f.ctx, Filter{Sort: "id"})
		if !slices.Equal(ids(page.Devices), []string{"a", "b", "c"}) {
			t.Fatalf("stored %v, want a, b, c", ids(page.Devices))
		}
	})
}

func TestImportCommitsEachBatchWithItsLedgerEntries(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e)
		devs := genDevices(35, 9, nil)
		b, _ := json.Marshal(devs)
		// Cut the input after the 25th device: the batches before stand,
		// and the rows read since are committed too.
		cut := bytes.Index(b, []byte(`{"id":"`+devs[25].ID))
		broken := append(append([]byte{}, b[:cut]...), []byte(`{"id": oops}]`)...)
		var progress []ImportProgress
		res, err := f.s.ImportDevices(f.ctx, "json", bytes.NewReader(broken), ImportOptions{BatchSize: 10,
			Progress: func(p ImportProgress) {
				var n int
				_ = e.DB.QueryRow(context.Background(), `SELECT COUNT(*) FROM devices`).Scan(&n)
				if n != p.Created {
					t.Errorf("progress reports %d created, %d committed", p.Created, n)
				}
				progress = append(progress, p)
			}})
		if ae := apperr.As(err); ae == nil || ae.Field != "body" || !strings.Contains(ae.Message, "26") {
			t.Fatalf("got %v, want invalid body naming element 26", err)
		}
		if res.Created != 25 {
			t.Fatalf("created %d, want 25", res.Created)
		}
		var done []int
		for _, p := range progress {
			done = append(done, p.Done)
		}
		if !slices.Equal(done, []int{10, 20, 25}) {
			t.Fatalf("progress done %v, want 10, 20, 25", done)
		}
		if n := len(ledgerEvents(t, e.DB)); n != 25 {
			t.Fatalf("%d ledger entries, want 25 (one per device, committed with it)", n)
		}
		if n := len(f.pub.published()); n != 25 {
			t.Fatalf("%d events published, want 25", n)
		}
	})
}

func TestImportBoundsTheSizeOfARow(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e)
		huge := strings.Repeat("x", 3<<20)
		for _, tt := range []struct{ format, input string }{
			{"csv", "id,name,class\na,A,tv\nb," + huge + ",tv\n"},
			{"json", `[{"id":"a","name":"A","class":"tv"},{"id":"b","name":"` + huge + `","class":"tv"}]`},
		} {
			res, err := f.s.ImportDevices(f.ctx, tt.format, strings.NewReader(tt.input), ImportOptions{})
			if ae := apperr.As(err); ae == nil || ae.Field != "body" || !strings.Contains(ae.Message, "larger than") {
				t.Fatalf("%s: got %v, want a row-size error", tt.format, err)
			}
			if res.Created+res.Unchanged != 1 {
				t.Fatalf("%s: %+v; the row before the huge one should be kept", tt.format, res)
			}
		}
	})
}

// TestImportedBatchesSurviveKill9 imports an endless stream in a child
// process, kills it with SIGKILL after some batches were acknowledged, and
// checks that every acknowledged device is stored with its ledger entry.
func TestImportedBatchesSurviveKill9(t *testing.T) {
	if os.Getenv("INVENTORY_KILL_CHILD") != "" {
		killChild()
		return
	}
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestImportedBatchesSurviveKill9$")
		cmd.Env = append(os.Environ(), "INVENTORY_KILL_CHILD=1", "INVENTORY_DIR="+e.Dir, "INVENTORY_URL="+e.URL)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		acked := 0
		sc := bufio.NewScanner(out)
		deadline := time.Now().Add(60 * time.Second)
		for sc.Scan() && time.Now().Before(deadline) {
			if n, ok := strings.CutPrefix(sc.Text(), "committed "); ok {
				acked, _ = strconv.Atoi(n)
				if acked >= 300 {
					break
				}
			}
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		if acked < 300 {
			t.Fatalf("the child acknowledged only %d devices", acked)
		}
		// Reopen as a restarted server would.
		db, err := store.Open(context.Background(), store.Config{Dir: e.Dir, URL: e.URL})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var devices int
		if err := db.QueryRow(context.Background(), `SELECT COUNT(*) FROM devices`).Scan(&devices); err != nil {
			t.Fatal(err)
		}
		entries := len(ledgerEvents(t, db))
		t.Logf("acknowledged %d, stored %d devices and %d ledger entries", acked, devices, entries)
		if devices < acked || entries != devices || devices%50 != 0 {
			t.Fatalf("after kill -9: %d devices and %d ledger entries stored, %d acknowledged; want whole batches of 50, each with its entries", devices, entries, acked)
		}
	})
}

// killChild is the child process of TestImportedBatchesSurviveKill9: it
// imports an endless JSON stream in batches of 50 and prints every
// acknowledged count.
func killChild() {
	ctx := context.Background()
	db, err := store.Open(ctx, store.Config{Dir: os.Getenv("INVENTORY_DIR"), URL: os.Getenv("INVENTORY_URL")})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	s := NewService(db, &recordingLedger{}, nil, newAESSealer(), nil)
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte("["))
		for i := 0; ; i++ {
			d := genDevices(1, uint64(i), nil)[0]
			b, _ := json.Marshal(d)
			if i > 0 {
				pw.Write([]byte(","))
			}
			if _, err := pw.Write(b); err != nil {
				return
			}
		}
	}()
	_, err = s.ImportDevices(ctx, "json", pr, ImportOptions{BatchSize: 50, Progress: func(p ImportProgress) {
		fmt.Printf("committed %d\n", p.Created)
	}})
	fmt.Fprintln(os.Stderr, "import ended:", err)
	os.Exit(3)
}
