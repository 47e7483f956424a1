package broker

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPahoInteroperability runs the Eclipse Paho MQTT interoperability
// client suites (client_test5 for MQTT 5, client_test for 3.1.1) against
// the broker in its test-only open mode, and against a private Debian
// mosquitto in the same run when mosquitto is installed, and logs the
// pass/fail counts side by side. It reports; it does not fail on a failing
// conformance test, because the known failures are documented in
// docs/MQTT-CONFORMANCE.md.
//
//	FLEETWARD_PAHO_DIR=/path/to/paho.mqtt.testing go test -run PahoInteroperability -v ./internal/broker/
//
// FLEETWARD_PAHO_RUNNER overrides the runner script (default
// ../shared/lab/paho_run.py from the repository root); FLEETWARD_PAHO_TESTS
// (comma-separated test names) runs only those tests; FLEETWARD_PAHO_TIMEOUT
// bounds each test (default 45s) because some tests wait forever on a broker
// that does not do what they expect.
func TestPahoInteroperability(t *testing.T) {
	dir := os.Getenv("FLEETWARD_PAHO_DIR")
	if dir == "" {
		t.Skip("FLEETWARD_PAHO_DIR is not set: point it at a checkout of github.com/eclipse/paho.mqtt.testing to run the MQTT interoperability suites")
	}
	if fi, err := os.Stat(filepath.Join(dir, "interoperability")); err == nil && fi.IsDir() {
		dir = filepath.Join(dir, "interoperability")
	}
	runner := os.Getenv("FLEETWARD_PAHO_RUNNER")
	if runner == "" {
		runner = filepath.Join("..", "..", "..", "shared", "lab", "paho_run.py")
	}
	runner, _ = filepath.Abs(runner)
	if _, err := os.Stat(runner); err != nil {
		t.Fatalf("paho runner %s: %v (set FLEETWARD_PAHO_RUNNER)", runner, err)
	}
	perTest := 45 * time.Second
	if v := os.Getenv("FLEETWARD_PAHO_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("FLEETWARD_PAHO_TIMEOUT %q: %v", v, err)
		}
		perTest = d
	}

	b, err := New(Config{
		Addr:                     "127.0.0.1:0",
		PlaintextInsecure:        true,
		InsecureOpenForTests:     true,
		ConnectAttemptsPerMinute: -1,
		Log:                      testLogger(t),
	}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	targets := []pahoTarget{{name: "fleetward", addr: b.Addr()}}
	if addr, ok := startOpenMosquitto(t); ok {
		targets = append(targets, pahoTarget{name: "mosquitto", addr: addr})
	}

	for _, suite := range []string{"client_test5", "client_test"} {
		names := pahoTestNames(t, filepath.Join(dir, suite+".py"))
		if only := os.Getenv("FLEETWARD_PAHO_TESTS"); only != "" {
			names = slices.DeleteFunc(names, func(n string) bool { return !slices.Contains(strings.Split(only, ","), n) })
			if len(names) == 0 {
				continue
			}
		}
		results := make([]map[string]string, len(targets))
		var wg sync.WaitGroup
		for i, tg := range targets {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = runPahoSuite(t, runner, dir, suite, tg.addr, names, perTest)
			}()
		}
		wg.Wait()
		for i, tg := range targets {
			var passed, failed []string
			for _, n := range names {
				if results[i][n] == "ok" {
					passed = append(passed, n)
				} else {
					failed = append(failed, n+" ("+results[i][n]+")")
				}
			}
			t.Logf("paho %s %s: %d of %d passed; not passed: %s", suite, tg.name, len(passed), len(names), strings.Join(failed, ", "))
		}
	}
}

type pahoTarget struct{ name, addr string }

var pahoTestDef = regexp.MustCompile(`(?m)^\s+def (test\w*)\(self\)`)

// pahoTestNames lists the test methods of a suite file (unittest runs
// every method whose name starts with "test"), in file order.
func pahoTestNames(t *testing.T, path string) []string {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("paho suite: %v", err)
	}
	var names []string
	for _, m := range pahoTestDef.FindAllSubmatch(src, -1) {
		names = append(names, string(m[1]))
	}
	if len(names) == 0 {
		t.Fatalf("paho suite %s: no tests found", path)
	}
	return names
}

var pahoVerdict = regexp.MustCompile(`(?m)^(test\w*) \(.*\) \.\.\. .*?(ok|FAIL|ERROR|skipped.*)$`)

// runPahoSuite runs each test of a suite in its own process, bounded by
// perTest, and returns each test's verdict: "ok", "FAIL", "ERROR" or
// "timeout". One process per test keeps a hung test from taking the rest of
// the suite with it.
func runPahoSuite(t *testing.T, runner, dir, suite, addr string, names []string, perTest time.Duration) map[string]string {
	host, port, _ := net.SplitHostPort(addr)
	out := map[string]string{}
	for _, n := range names {
		ctx, cancel := context.WithTimeout(context.Background(), perTest)
		cmd := exec.CommandContext(ctx, "python3", runner, "--paho", dir, "--suite", suite,
			"--host", host, "--port", port, "Test."+n)
		cmd.WaitDelay = time.Second
		b, _ := cmd.CombinedOutput()
		timedOut := ctx.Err() != nil
		cancel()
		verdict := "ERROR"
		if m := pahoVerdict.FindSubmatch(b); m != nil {
			verdict = string(m[2])
		}
		if regexp.MustCompile(`(?m)^OK`).Match(b) {
			verdict = "ok"
		} else if timedOut {
			verdict = "timeout"
		} else if strings.Contains(string(b), "FAILED (failures") {
			verdict = "FAIL"
		}
		out[n] = verdict
		if verdict != "ok" && testing.Verbose() {
			t.Logf("paho %s %s %s: %s\n%s", suite, addr, n, verdict, tail(string(b), 1500))
		}
	}
	return out
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// startOpenMosquitto starts a private mosquitto on a free 127.0.0.1 port,
// anonymous and without persistence, and returns its address. It never
// touches a system mosquitto.
func startOpenMosquitto(t *testing.T) (string, bool) {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
			if _, err := os.Stat(p); err == nil {
				bin = p
			}
		}
	}
	if bin == "" {
		t.Log("mosquitto not installed (Debian package mosquitto): running the suites against fleetward only")
		return "", false
	}
	port := freePort(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "mosquitto.conf")
	body := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n", port)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", conf)
	logf, _ := os.Create(filepath.Join(dir, "mosquitto.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mosquitto: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if !eventually(5*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		t.Fatalf("mosquitto did not listen on %s", addr)
	}
	return addr, true
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
