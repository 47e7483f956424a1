package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/api"
	"github.com/fleetward/fleetward/internal/app"
	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/auth"
	"github.com/fleetward/fleetward/internal/inventory"
)

// The fuzz targets below drive every JSON (and CSV) decoder of the API
// through the real server's handler: a server started by app.Start on a
// fresh data directory, with the outer middleware (panic recovery, metrics)
// in place. Requests go to s.API.Handler() through httptest, which is much
// faster than TLS on a socket and reaches the same code. The property is the
// one the API promises: bad input never gets a 5xx or a panic; every 4xx
// carries the one error shape with a known code and the status that code
// maps to; every 2xx body is JSON.

// fuzzServer is a running fleetward with the fixtures the fuzz targets
// need: an admin token, an existing device, site, group and operator.
type fuzzServer struct {
	*app.Server
	h     http.Handler
	admin string
	log   *serverLog
	// remotes numbers requests so each comes from its own address, which
	// keeps login throttling from answering everything with 429.
	remotes atomic.Uint32
}

const (
	fuzzDevice   = "fuzz-dev-1"
	fuzzDevice2  = "fuzz-dev-2"
	fuzzSite     = "fuzz-site"
	fuzzGroup    = "fuzz-group"
	fuzzOperator = "fuzzy"
	fuzzPassword = "correct horse battery staple"
)

func newFuzzServer(f testing.TB) *fuzzServer {
	f.Helper()
	log := &serverLog{}
	s, err := app.Start(context.Background(), app.Config{DataDir: f.TempDir(), HTTPAddr: "127.0.0.1:0", Log: slog.New(log)})
	if err != nil {
		f.Fatalf("start server: %v", err)
	}
	f.Cleanup(func() { s.Stop() })
	ctx := actor.With(context.Background(), actor.Actor{Name: "fuzz"})
	tok, _, err := s.Auth.CreateToken(ctx, "fuzz-admin", auth.RoleAdmin, nil, 24*time.Hour)
	if err != nil {
		f.Fatalf("create token: %v", err)
	}
	if _, err := s.Inventory.CreateSite(ctx, inventory.Site{ID: fuzzSite, Name: "Fuzz site"}); err != nil {
		f.Fatalf("create site: %v", err)
	}
	for _, id := range []string{fuzzDevice, fuzzDevice2} {
		if _, err := s.Inventory.CreateDevice(ctx, inventory.Device{ID: id, Name: "Fuzz " + id, Class: "camera",
			Location: inventory.Location{Site: fuzzSite}, Secrets: map[string]string{"pin": "1234"}}); err != nil {
			f.Fatalf("create device: %v", err)
		}
	}
	if _, err := s.Inventory.CreateGroup(ctx, inventory.Group{ID: fuzzGroup, Name: "Fuzz group"}); err != nil {
		f.Fatalf("create group: %v", err)
	}
	if _, err := s.Auth.CreateOperator(ctx, fuzzOperator, fuzzPassword, auth.RoleOperator); err != nil {
		f.Fatalf("create operator: %v", err)
	}
	return &fuzzServer{Server: s, h: s.API.Handler(), admin: tok, log: log}
}

// serve sends one request through the server's handler and checks the
// API's promises about the answer. A non-empty token is sent as a bearer
// token.
func (fs *fuzzServer) serve(t *testing.T, req *http.Request, token string) *httptest.ResponseRecorder {
	t.Helper()
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	n := fs.remotes.Add(1)
	req.RemoteAddr = fmt.Sprintf("10.%d.%d.%d:40000", byte(n>>16), byte(n>>8), byte(n))
	panics := fs.log.panicCount()
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fs.h.ServeHTTP(rec, req)
	}()
	select {
	case <-done:
	case <-time.After(requestTimeout):
		var stacks bytes.Buffer
		pprof.Lookup("goroutine").WriteTo(&stacks, 2)
		t.Fatalf("%s %s did not answer within %v; goroutines:\n%s", req.Method, req.URL, requestTimeout, stacks.String())
	}
	if fs.log.panicCount() != panics {
		t.Fatalf("%s %s panicked:\n%s", req.Method, req.URL, fs.log.last())
	}
	if rec.Code >= 500 {
		t.Fatalf("%s %s = %d: %s\nserver log: %s", req.Method, req.URL, rec.Code, clipBytes(rec.Body.Bytes()), fs.log.last())
	}
	checkAnswer(t, req, rec)
	return rec
}

// requestTimeout is how long one fuzzed request may take: far more than
// any input of this size needs, so a request still running is stuck.
const requestTimeout = 20 * time.Second

// knownCodes are the application error codes the API may answer with.
var knownCodes = map[apperr.Code]bool{
	apperr.Invalid: true, apperr.Unauthorized: true, apperr.Forbidden: true, apperr.NotFound: true,
	apperr.Conflict: true, apperr.TooLarge: true, apperr.RateLimited: true, apperr.Unavailable: true,
	apperr.Internal: true, apperr.MFARequired: true, apperr.MFAEnrollment: true,
}

// checkAnswer fails on a 5xx, on a 4xx that is not the error shape (or
// whose code maps to another status), and on a 2xx whose body is not JSON.
func checkAnswer(t *testing.T, req *http.Request, rec *httptest.ResponseRecorder) {
	t.Helper()
	status, body := rec.Code, rec.Body.Bytes()
	what := req.Method + " " + req.URL.String()
	switch {
	case status >= 500:
		t.Fatalf("%s = %d: %s", what, status, clipBytes(body))
	case status >= 400:
		var shape struct {
			Error *struct {
				Code       apperr.Code `json:"code"`
				Message    string      `json:"message"`
				Field      string      `json:"field"`
				RetryAfter int         `json:"retry_after"`
			} `json:"error"`
			// Result is what an import committed before it stopped; only
			// the import route sends it beside the error.
			Result json.RawMessage `json:"result"`
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&shape); err != nil || shape.Error == nil || (shape.Result != nil && req.URL.Path != "/api/v1/devices/import") {
			t.Fatalf("%s = %d with a body that is not the error shape (%v): %s", what, status, err, clipBytes(body))
		}
		e := shape.Error
		if !knownCodes[e.Code] || e.Message == "" {
			t.Fatalf("%s = %d with unknown code %q or no message: %s", what, status, e.Code, clipBytes(body))
		}
		if want := api.StatusOf(&apperr.Error{Code: e.Code}); want != status {
			t.Fatalf("%s = %d but code %q maps to %d: %s", what, status, e.Code, want, clipBytes(body))
		}
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("%s = %d with Content-Type %q", what, status, ct)
		}
	case status >= 200 && status < 300:
		if status == http.StatusNoContent {
			if len(body) != 0 {
				t.Fatalf("%s = 204 with a body: %s", what, clipBytes(body))
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("%s = %d with a body that is not JSON: %s", what, status, clipBytes(body))
		}
	default:
		t.Fatalf("%s = %d, neither success nor a client error: %s", what, status, clipBytes(body))
	}
}

func clipBytes(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "…"
	}
	return string(b)
}

// jsonRequest is a request with a JSON body.
func jsonRequest(method, target string, body []byte) *http.Request {
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return req
}

// addSeeds adds each seed as one []byte input.
func addSeeds(f *testing.F, seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
}

// nastyJSON are bodies every JSON endpoint must refuse cleanly.
var nastyJSON = []string{
	``, ` `, `null`, `true`, `0`, `-1e999`, `"str"`, `[]`, `[{}]`, `{}`, `{} {}`, `{}x`, `{`, `}`, `{"`,
	`{"a":`, `{"a":1,}`, `{"a" 1}`, `{"name":"x",`, "\xef\xbb\xbf{}", "{\"name\":\"\xff\xfe\"}",
	`{"name":"\ud800"}`, `{"name":"\u0000"}`, `{"name":null}`, `{"name":1e400}`, `{"name":{"$gt":""}}`,
	`{"__proto__":{"admin":true}}`, `{"name":"a","name":"b"}`, `{"NAME":"upper"}`,
	strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
	`{"x":` + strings.Repeat(`{"x":`, 5000) + `1` + strings.Repeat(`}`, 5001),
	`{"name":"` + strings.Repeat("A", 70000) + `"}`,
	`{"name":"'; DROP TABLE devices; --"}`,
}

func FuzzCreateDevice(f *testing.F) {
	fs := newFuzzServer(f)
	addSeeds(f,
		`{"name":"Lobby camera","class":"camera"}`,
		`{"id":"cam-7","name":"Cam 7","class":"CAMERA","vendor":"Axis","model":"P3245","serial":"ACCC8E000001",`+
			`"macs":["AA-BB-CC-DD-EE-FF","aa:bb:cc:dd:ee:ff","0011.2233.4455"],"ips":["10.0.0.7","::ffff:10.0.0.7","2001:db8::1"],`+
			`"firmware_version":"10.12","os":"Linux","os_version":"4.9","config_digest":"SHA256:`+strings.Repeat("Ab", 32)+`",`+
			`"location":{"site":"fuzz-site","building":"A","room":"1.01","lat":52.52,"lon":13.40},"owner":"facilities",`+
			`"segment":"cctv","tags":["PCI","pci","eol"],"status":"pending","first_seen":"2024-01-01T00:00:00Z",`+
			`"last_seen":"2024-06-01T12:00:00.123456789+02:00","risk_score":42.5,"attributes":{"k":"v"},"secrets":{"admin_password":"hunter2"},`+
			`"secret_names":["ignored"],"created_at":"2020-01-01T00:00:00Z","version":99}`,
		`{"id":"fuzz-dev-1","name":"duplicate","class":"camera"}`,
		`{"name":"x","class":"toaster"}`,
		`{"name":"x","class":"camera","location":{"site":"no-such-site"}}`,
		`{"name":"x","class":"camera","location":{"lat":91,"lon":-181}}`,
		`{"name":"x","class":"camera","location":{"lat":"north"}}`,
		`{"name":"x","class":"camera","risk_score":1e309}`,
		`{"name":"x","class":"camera","risk_score":-0.0001}`,
		`{"name":"x","class":"camera","first_seen":"0001-01-01T00:00:00Z"}`,
		`{"name":"x","class":"camera","first_seen":"9999-12-31T23:59:59Z"}`,
		`{"name":"x","class":"camera","first_seen":"yesterday"}`,
		`{"name":"x","class":"camera","ips":["fe80::1%eth0","300.1.1.1"]}`,
		`{"name":"x","class":"camera","macs":["zz:zz"]}`,
		`{"name":"x","class":"camera","tags":["b c"]}`,
		`{"name":"x","class":"camera","tags":[`+strings.TrimSuffix(strings.Repeat(`"t",`, 40), ",")+`]}`,
		`{"name":"x","class":"camera","attributes":{"k":1}}`,
		`{"name":"x","class":"camera","secrets":{"":"x"}}`,
		`{"name":"x","class":"camera","status":"gone"}`,
		`{"name":"x","class":"camera","id":"UPPER"}`,
		`{"name":"x","class":"camera","id":"`+strings.Repeat("a", 64)+`"}`,
		`{"name":"x","class":"camera","config_digest":"md5:abc"}`,
		`{"name":"x","class":"camera","version":"one"}`,
		`{"name":"x","class":"camera","colour":"red"}`,
		`{"name":"x\u0007","class":"camera"}`,
	)
	addSeeds(f, nastyJSON...)
	f.Fuzz(func(t *testing.T, body []byte) {
		fs.serve(t, jsonRequest("POST", "/api/v1/devices", body), fs.admin)
	})
}

func FuzzUpdateDevice(f *testing.F) {
	fs := newFuzzServer(f)
	addSeeds(f,
		`{"name":"Renamed"}`,
		`{"if_version":1,"status":"quarantined"}`,
		`{"if_version":-1}`,
		`{"if_version":1e400}`,
		`{"if_version":"1"}`,
		`{"status":""}`,
		`{"status":null}`,
		`{"class":"toaster"}`,
		`{"location":{}}`,
		`{"location":null}`,
		`{"location":{"site":"no-such-site"}}`,
		`{"location":{"site":"fuzz-site","lat":0,"lon":0}}`,
		`{"macs":[]}`,
		`{"macs":null}`,
		`{"ips":["10.0.0.1","10.0.0.1"]}`,
		`{"tags":["A","a"]}`,
		`{"attributes":{}}`,
		`{"attributes":{"k":null}}`,
		`{"secrets":{"pin":"4321"},"remove_secrets":["pin","nope"]}`,
		`{"remove_secrets":[1]}`,
		`{"first_seen":"2024-01-01T00:00:00Z","last_seen":"1969-12-31T23:59:59Z"}`,
		`{"risk_score":100}`,
		`{"risk_score":"NaN"}`,
		`{"id":"other"}`,
		`{"version":5}`,
		`{"name":""}`,
	)
	addSeeds(f, nastyJSON...)
	f.Fuzz(func(t *testing.T, body []byte) {
		fs.serve(t, jsonRequest("PATCH", "/api/v1/devices/"+fuzzDevice, body), fs.admin)
	})
}

// fuzzImport drives POST /api/v1/devices/import with one format.
func fuzzImport(f *testing.F, format, contentType string) {
	fs := newFuzzServer(f)
	f.Fuzz(func(t *testing.T, body []byte, dryRun, stopOnError bool) {
		target := "/api/v1/devices/import?format=" + format
		if dryRun {
			target += "&dry_run=true"
		}
		if stopOnError {
			target += "&stop_on_error=true"
		}
		req := httptest.NewRequest("POST", target, bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		rec := fs.serve(t, req, fs.admin)
		if rec.Code == http.StatusOK {
			var res struct {
				Errors []struct {
					Row     int    `json:"row"`
					Message string `json:"message"`
				} `json:"errors"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
				t.Fatalf("import answer is not an import result: %v: %s", err, clipBytes(rec.Body.Bytes()))
			}
			for _, e := range res.Errors {
				if e.Row < 1 || e.Message == "" {
					t.Fatalf("import row error without a row or message: %+v", e)
				}
			}
		}
	})
}

func FuzzImportDevicesJSON(f *testing.F) {
	for _, s := range []string{
		`[{"id":"imp-1","name":"Camera","class":"camera","macs":["AA-BB-CC-DD-EE-FF"],"ips":["10.0.0.1"],` +
			`"location":{"site":"fuzz-site","lat":1.5,"lon":null},"tags":["PCI"],"status":"active","risk_score":99.5,` +
			`"first_seen":"2024-01-01T00:00:00Z","attributes":{"k":"v"},"secrets":{"pin":"1234"},"version":3}]`,
		`[{"id":"fuzz-dev-1","name":"merged","class":"camera"}]`,
		`[{"name":"x","class":"tv"},{"name":"y","class":"toaster"},"str",null,{"colour":1},1,[],true]`,
		`[{"name":"x","class":"tv"} {"name":"y"}]`,
		`[{"name":"x","class":"tv","location":{"site":"no-such-site"}}]`,
		`[{"id":"dup","name":"a","class":"tv"},{"id":"dup","name":"b","class":"tv"}]`,
		`{"name":"x"}`, `[]`, `[] trailing`, `[`, `[{`, `[{"name":"a\ud800b","class":"tv","ips":["fe80::1%eth0"]}]`,
		`[{"name":"\u0000","class":"tv","location":{"floor":1}}]`,
		`[` + strings.TrimSuffix(strings.Repeat(`{"name":"n","class":"sensor"},`, 300), ",") + `]`,
	} {
		f.Add([]byte(s), false, false)
		f.Add([]byte(s), true, true)
	}
	for _, s := range nastyJSON {
		f.Add([]byte(s), false, false)
	}
	fuzzImport(f, "json", "application/json")
}

func FuzzImportDevicesCSV(f *testing.F) {
	for _, s := range []string{
		"id,name,class,macs,ips,tags,lat,lon,risk_score,first_seen,status,site\n" +
			"imp-1,Camera,camera,AA-BB-CC-DD-EE-FF;aa:bb:cc:dd:ee:ff,10.0.0.1;::ffff:10.0.0.1,Pci;pci,52.5,13.4,12.5,2024-01-01T00:00:00Z,pending,fuzz-site\n" +
			",Unnamed id,tv,,,,,,,,,\n",
		"\uFEFFID , Name,CLASS\r\nx,\"quoted, name\",sensor\r\ny,\"multi\nline\",plc\r\n",
		"id,name,class\na,b\"c,tv\n",
		"id,name,class\nbad id,x,toaster\nok,x,tv,extra\n",
		"id,name\nx,\x00\n",
		"colour\nred\n",
		"id,id,name,class\na,b,c,tv\n",
		"name,class,site\nx,tv,no-such-site\n",
		"name,class,lat,lon,risk_score,first_seen\nx,tv,NaN,Inf,1e999,0001-01-01T00:00:00Z\n",
		"name,class\n\"unterminated,tv\n",
		"name,class\n" + strings.Repeat("n,sensor\n", 300),
		"", "\n", ",,,\n", "\"", "\xff\xfe\x00n\x00a\x00m\x00e\x00",
	} {
		f.Add([]byte(s), false, false)
		f.Add([]byte(s), true, true)
	}
	fuzzImport(f, "csv", "text/csv")
}

func FuzzCreateSite(f *testing.F) {
	fs := newFuzzServer(f)
	addSeeds(f,
		`{"id":"berlin","name":"Berlin plant","address":"Alexanderplatz 1","lat":52.52,"lon":13.40,"timezone":"Europe/Berlin"}`,
		`{"id":"fuzz-site","name":"duplicate"}`,
		`{"id":"x","name":"x","timezone":"Local"}`,
		`{"id":"x","name":"x","timezone":"../../../../etc/passwd"}`,
		`{"id":"x","name":"x","timezone":"Mars/Olympus_Mons"}`,
		`{"id":"x","name":"x","timezone":"`+strings.Repeat("A/", 40)+`"}`,
		`{"id":"x","name":"x","lat":-90.0001}`,
		`{"id":"x","name":"x","lat":null,"lon":null}`,
		`{"id":"","name":"x"}`,
		`{"id":"x"}`,
		`{"id":"x","name":"x","created_at":"garbage"}`,
		`{"id":"x","name":"x","address":"`+strings.Repeat("a", 1025)+`"}`,
	)
	addSeeds(f, nastyJSON...)
	f.Fuzz(func(t *testing.T, body []byte) {
		fs.serve(t, jsonRequest("POST", "/api/v1/sites", body), fs.admin)
	})
}

func FuzzCreateGroup(f *testing.F) {
	fs := newFuzzServer(f)
	addSeeds(f,
		`{"name":"Cameras in lobby","description":"all of them"}`,
		`{"id":"lobby","name":"Lobby"}`,
		`{"id":"fuzz-group","name":"duplicate"}`,
		`{"id":"Bad Id","name":"x"}`,
		`{"name":""}`,
		`{"name":"x","device_count":5}`,
		`{"name":"x","device_count":"5"}`,
		`{"name":"x","description":"`+strings.Repeat("d", 1025)+`"}`,
	)
	addSeeds(f, nastyJSON...)
	f.Fuzz(func(t *testing.T, body []byte) {
		fs.serve(t, jsonRequest("POST", "/api/v1/groups", body), fs.admin)
	})
}

func FuzzAddGroupMembers(f *testing.F) {
	fs := newFuzzServer(f)
	many := make([]string, 1001)
	for i := range many {
		many[i] = fmt.Sprintf("d-%d", i)
	}
	manyJSON, _ := json.Marshal(map[string]any{"devices": many})
	addSeeds(f,
		`{"devices":["fuzz-dev-1"]}`,
		`{"devices":["fuzz-dev-1","fuzz-dev-2","fuzz-dev-1"]}`,
		`{"devices":[]}`,
		`{"devices":null}`,
		`{"devices":["no-such-device"]}`,
		`{"devices":[""]}`,
		`{"devices":["UPPER"]}`,
		`{"devices":[1]}`,
		`{"devices":"fuzz-dev-1"}`,
		string(manyJSON),
	)
	addSeeds(f, nastyJSON...)
	f.Fuzz(func(t *testing.T, body []byte) {
		fs.serve(t, jsonRequest("POST", "/api/v1/groups/"+fuzzGroup+"/members", body), fs.admin)
	})
}

func FuzzCreateOperator(f *testing.F) {
	fs := newFuzzServer(f)
	addSeeds(f,
		`{"username":"alice","password":"a long enough passphrase","role":"operator"}`,
		`{"username":"bob","password":"a long enough passphrase","role":"AUDITOR"}`,
		`{"username":"fuzzy","password":"a long enough passphrase","role":"operator"}`,
		`{"username":"carol","password":"short","role":"operator"}`,
		`{"username":"dave","password":"dave dave dave dave","role":"operator"}`,
		`{"username":"erin","password":"a long enough passphrase","role":"king"}`,
		`{"username":"erin","password":"a long enough passphrase","role":""}`,
		`{"username":"erin","password":"a long enough passphrase","role":1}`,
		`{"username":"","password":"a long enough passphrase","role":"auditor"}`,
		`{"username":"Name With Spaces","password":"a long enough passphrase","role":"auditor"}`,
		`{"username":"`+strings.Repeat("u", 300)+`","password":"a long enough passphrase","role":"auditor"}`,
		`{"username":"frank","password":"`+strings.Repeat("p", 5000)+`","role":"auditor"}`,
		`{"username":"grace","password":"\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000","role":"auditor"}`,
		`{"username":"heidi","password":"a long enough passphrase","role":"admin","mfa":false}`,
	)
	addSeeds(f, nastyJSON...)
	f.Fuzz(func(t *testing.T, body []byte) {
		fs.serve(t, jsonRequest("POST", "/api/v1/operators", body), fs.admin)
	})
}

func FuzzCreateToken(f *testing.F) {
	fs := newFuzzServer(f)
	addSeeds(f,
		`{"name":"ci","role":"auditor"}`,
		`{"name":"ci","role":"operator","scopes":["read"],"ttl":"720h"}`,
		`{"name":"ci","role":"auditor","scopes":["admin"]}`,
		`{"name":"ci","role":"auditor","scopes":["root"]}`,
		`{"name":"ci","role":"auditor","scopes":[""]}`,
		`{"name":"ci","role":"auditor","scopes":"read"}`,
		`{"name":"ci","role":"auditor","ttl":"-1h"}`,
		`{"name":"ci","role":"auditor","ttl":"0s"}`,
		`{"name":"ci","role":"auditor","ttl":"1ns"}`,
		`{"name":"ci","role":"auditor","ttl":"100000h"}`,
		`{"name":"ci","role":"auditor","ttl":"9223372036854775807ns"}`,
		`{"name":"ci","role":"auditor","ttl":"99999999999999999999h"}`,
		`{"name":"ci","role":"auditor","ttl":3600}`,
		`{"name":"","role":"auditor"}`,
		`{"name":"`+strings.Repeat("n", 500)+`","role":"auditor"}`,
		`{"name":"tab\there","role":"auditor"}`,
		`{"name":"ci","role":"king"}`,
	)
	addSeeds(f, nastyJSON...)
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := fs.serve(t, jsonRequest("POST", "/api/v1/tokens", body), fs.admin)
		if rec.Code == http.StatusCreated {
			var out struct {
				Token string `json:"token"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Token == "" {
				t.Fatalf("created token answer without a token: %s", clipBytes(rec.Body.Bytes()))
			}
		}
	})
}

func FuzzLogin(f *testing.F) {
	fs := newFuzzServer(f)
	addSeeds(f,
		`{"username":"fuzzy","password":"correct horse battery staple"}`,
		`{"username":"FUZZY ","password":"correct horse battery staple"}`,
		`{"username":"fuzzy","password":"wrong"}`,
		`{"username":"nobody","password":"correct horse battery staple"}`,
		`{"username":"","password":"x"}`,
		`{"username":"fuzzy","password":""}`,
		`{"username":"fuzzy"}`,
		`{"username":1,"password":2}`,
		`{"username":"fuzzy","password":"correct horse battery staple","remember":true}`,
		`{"username":"`+strings.Repeat("u", 100000)+`","password":"x"}`,
		`{"username":"fuzzy","password":"`+strings.Repeat("p", 100000)+`"}`,
	)
	addSeeds(f, nastyJSON...)
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := fs.serve(t, jsonRequest("POST", "/api/v1/auth/login", body), "")
		if rec.Code == http.StatusOK {
			var out struct {
				Status string `json:"status"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Status == "" {
				t.Fatalf("login answer without a status: %s", clipBytes(rec.Body.Bytes()))
			}
		}
	})
}

func FuzzCompleteLogin(f *testing.F) {
	fs := newFuzzServer(f)
	// An administrator's first login leaves a pending enrolment step: a
	// real pending id to aim at.
	ctx := actor.With(context.Background(), actor.Actor{Name: "fuzz"})
	if _, err := fs.Auth.CreateOperator(ctx, "root", fuzzPassword, auth.RoleAdmin); err != nil {
		f.Fatal(err)
	}
	res, err := fs.Auth.Login(ctx, "root", fuzzPassword, "127.0.0.1")
	if err != nil || res.Pending == nil {
		f.Fatalf("admin login = %+v, %v; want a pending MFA step", res, err)
	}
	pending := res.Pending.ID
	addSeeds(f,
		`{"pending_id":"`+pending+`","code":"123456"}`,
		`{"pending_id":"`+pending+`","code":"000000"}`,
		`{"pending_id":"`+pending+`","code":"abcd-efgh-ijkl"}`,
		`{"pending_id":"`+pending+`","code":"`+strings.Repeat("9", 10000)+`"}`,
		`{"pending_id":"`+pending+`","code":""}`,
		`{"pending_id":"`+pending+`"}`,
		`{"pending_id":"nope","code":"123456"}`,
		`{"pending_id":"","code":"123456"}`,
		`{"pending_id":123,"code":123456}`,
		`{"pending_id":"`+pending+`","code":"123456","trust_device":true}`,
	)
	addSeeds(f, nastyJSON...)
	f.Fuzz(func(t *testing.T, body []byte) {
		fs.serve(t, jsonRequest("POST", "/api/v1/auth/mfa", body), "")
	})
}

func FuzzListDevicesQuery(f *testing.F) {
	fs := newFuzzServer(f)
	for _, s := range []string{
		"", "class=camera,sensor&site=fuzz-site&risk_min=10&risk_max=90&sort=-risk&limit=5",
		"q=50%25_off%20lobby&tag=pci,EOL&vendor=Axis&status=active&group=fuzz-group",
		"sort=last_seen&cursor=eyJzIjoibGFzdF9zZWVuIiwidiI6IjEiLCJpIjoiYSJ9",
		"sort=name&cursor=eyJzIjoibmFtZSIsInYiOiJcdTAwMDAiLCJpIjoiYSJ9",
		"sort=risk&cursor=eyJzIjoicmlzayIsInYiOiJOYU4iLCJpIjoiYSJ9",
		"cursor=" + strings.Repeat("A", 5000),
		"colour=red", "limit=-1&risk_min=NaN", "limit=0", "limit=1001", "limit=1e3", "risk_min=Inf&risk_max=-Inf",
		"risk_min=90&risk_max=10", "q=%ff%00", "q=%", "q=%%%", "q=%zz", "q=;", "a;b=c", "&&&", "=", "==&=",
		"sort=-", "sort=--name", "sort=password", "group=a&group=b", "q=" + strings.Repeat("x", 300),
		"class=" + strings.Repeat("camera,", 200), "q=' OR 1=1 --", "q=%5C%25%5F", "tag=%E2%80%AE",
		"limit=1&limit=2", "status=,,,", "site=../../etc",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rawQuery string) {
		req := httptest.NewRequest("GET", "/api/v1/devices", nil)
		req.URL.RawQuery = rawQuery
		rec := fs.serve(t, req, fs.admin)
		if rec.Code == http.StatusOK {
			var page struct {
				Devices []json.RawMessage `json:"devices"`
				Total   *int              `json:"total"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil || page.Total == nil || *page.Total < len(page.Devices) {
				t.Fatalf("?%s: a page must list devices and a total at least as large: %v: %s", rawQuery, err, clipBytes(rec.Body.Bytes()))
			}
		}
	})
}

// TestFuzzHarnessReachesEveryDecoder guards the fuzz targets against
// passing for the wrong reason (a token that does not work, a fixture that
// is missing): a valid body gets a success from every endpoint fuzzed.
func TestFuzzHarnessReachesEveryDecoder(t *testing.T) {
	fs := newFuzzServer(t)
	csv := httptest.NewRequest("POST", "/api/v1/devices/import?format=csv", strings.NewReader("id,name,class\nh-2,Two,tv\n"))
	csv.Header.Set("Content-Type", "text/csv")
	for _, c := range []struct {
		req   *http.Request
		token string
		want  int
	}{
		{jsonRequest("POST", "/api/v1/devices", []byte(`{"name":"Lobby camera","class":"camera"}`)), fs.admin, 201},
		{jsonRequest("PATCH", "/api/v1/devices/"+fuzzDevice, []byte(`{"name":"Renamed","location":{}}`)), fs.admin, 200},
		{jsonRequest("POST", "/api/v1/devices/import?format=json", []byte(`[{"id":"h-1","name":"One","class":"tv"}]`)), fs.admin, 200},
		{csv, fs.admin, 200},
		{jsonRequest("POST", "/api/v1/sites", []byte(`{"id":"berlin","name":"Berlin"}`)), fs.admin, 201},
		{jsonRequest("POST", "/api/v1/groups", []byte(`{"name":"Lobby"}`)), fs.admin, 201},
		{jsonRequest("POST", "/api/v1/groups/"+fuzzGroup+"/members", []byte(`{"devices":["fuzz-dev-1"]}`)), fs.admin, 204},
		{jsonRequest("POST", "/api/v1/operators", []byte(`{"username":"alice","password":"a long enough passphrase","role":"operator"}`)), fs.admin, 201},
		{jsonRequest("POST", "/api/v1/tokens", []byte(`{"name":"ci","role":"auditor"}`)), fs.admin, 201},
		{jsonRequest("POST", "/api/v1/auth/login", []byte(`{"username":"fuzzy","password":"correct horse battery staple"}`)), "", 200},
		{jsonRequest("POST", "/api/v1/auth/mfa", []byte(`{"pending_id":"nope","code":"123456"}`)), "", 401},
		{httptest.NewRequest("GET", "/api/v1/devices?class=camera&sort=-risk&limit=5", nil), fs.admin, 200},
	} {
		if rec := fs.serve(t, c.req, c.token); rec.Code != c.want {
			t.Errorf("%s %s = %d, want %d: %s", c.req.Method, c.req.URL, rec.Code, c.want, clipBytes(rec.Body.Bytes()))
		}
	}
}

// serverLog is the fuzzed server's slog handler. It keeps the last error
// record (an internal error's detail, a recovered panic with its stack) to
// explain a failure, counts recovered panics, and drops everything else so
// the fuzz output stays readable.
type serverLog struct {
	mu     sync.Mutex
	panics int
	text   string
}

func (l *serverLog) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelError }

func (l *serverLog) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, "\n  %s=%v", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	if r.Message == "panic serving request" { // the API's recovery middleware
		l.panics++
	}
	l.text = b.String()
	return nil
}

func (l *serverLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *serverLog) WithGroup(string) slog.Handler      { return l }

func (l *serverLog) panicCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.panics
}

func (l *serverLog) last() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.text
}
