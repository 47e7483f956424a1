package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/app"
)

// TestTwoDemosRunSideBySide starts two `fleetward demo` processes at once
// with their default addresses, as two users of one host would: both come
// up, each on its own dashboard and broker port, in its own data directory
// and with its weak devices in a /28 of its own, and each scan finds its
// own four weak devices (three working default passwords, one unmanaged
// device), not the other demo's.
func TestTwoDemosRunSideBySide(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary twice; skipped with -short")
	}
	bin := buildBinary(t)
	tmp := t.TempDir() // the demos' fresh data directories go here
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FLEETWARD_") && !strings.HasPrefix(kv, "TMPDIR=") {
			env = append(env, kv)
		}
	}
	env = append(env, "TMPDIR="+tmp)

	demos := make([]*runningDemo, 2)
	var wg sync.WaitGroup
	for i := range demos {
		demos[i] = startDemo(t, bin, env, "--devices", "20", "--insecure-demo-login")
	}
	for _, d := range demos {
		wg.Add(1)
		go func() { defer wg.Done(); d.waitFor("  devices ", 75*time.Second) }()
	}
	wg.Wait()

	seen := map[string]int{}
	client := insecureLocalClient()
	for i, d := range demos {
		out := d.output()
		if !strings.Contains(out, "  devices ") {
			t.Fatalf("demo %d did not get to its simulated fleet:\n%s", i, out)
		}
		field := func(re string) string {
			m := regexp.MustCompile(re).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("demo %d printed no line matching %q:\n%s", i, re, out)
			}
			return m[1]
		}
		dashboard := field(`(?m)^  dashboard   (\S+)$`)
		data := field(`(?m)^  data        (\S+)$`)
		network := field(`(?m)^  scan        \S+ of (\S+): 4 hosts, 4 open ports, 3 working default passwords, 1 unmanaged$`)
		broker := field(`(?m)^  devices     \d+ enrolled .*\(mTLS, port (\d+)\); 0 failed$`)
		detection := field(`(?m)^  detection   packet sensor: (.*)$`)
		for _, want := range []string{"anomaly", "telnet_scan", "ip_flood"} {
			if !strings.Contains(detection, "on the camera: ") || !strings.Contains(detection, want) {
				t.Errorf("demo %d's packet sensor found no %s on the camera: %s", i, want, detection)
			}
		}
		if !strings.HasPrefix(data, tmp) {
			t.Errorf("demo %d keeps its data in %s, not in a fresh directory under TMPDIR %s", i, data, tmp)
		}
		for _, v := range []string{"dashboard " + dashboard, "data " + data, "network " + network, "broker port " + broker} {
			seen[v]++
		}
		resp, err := client.Get(dashboard + "/healthz")
		if err != nil {
			t.Errorf("demo %d's dashboard %s: %v", i, dashboard, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("demo %d's dashboard %s/healthz = %d", i, dashboard, resp.StatusCode)
		}
		t.Logf("demo %d: dashboard %s, broker port %s, weak devices in %s, data %s", i, dashboard, broker, network, data)
	}
	for v, n := range seen {
		if n > 1 {
			t.Errorf("both demos have the same %s", v)
		}
	}
	for i, d := range demos {
		if err := d.stop(); err != nil {
			t.Errorf("demo %d did not stop cleanly on SIGTERM: %v\n%s", i, err, d.output())
		}
	}
}

// TestDemoServerMovesOffTakenDefaultPorts holds the addresses a demo
// would listen on: with the defaults it listens on free ports instead and
// says where (URL, MQTTAddr); with an address given by flag it fails,
// naming the flag.
func TestDemoServerMovesOffTakenDefaultPorts(t *testing.T) {
	hold := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		return ln.Addr().String()
	}
	httpAddr, mqttAddr := hold(), hold()
	cfg := app.Config{DataDir: t.TempDir(), HTTPAddr: httpAddr, MQTTAddr: mqttAddr, Log: slog.New(slog.DiscardHandler)}
	s, err := startDemoServer(context.Background(), cfg, true, true)
	if err != nil {
		t.Fatalf("with its default ports taken: %v", err)
	}
	defer s.Stop()
	if s.URL == "https://"+httpAddr || s.MQTTAddr() == mqttAddr || !strings.HasPrefix(s.URL, "https://127.0.0.1:") || !strings.HasPrefix(s.MQTTAddr(), "127.0.0.1:") {
		t.Errorf("dashboard %s, broker %s; want other ports of 127.0.0.1 than the taken %s and %s", s.URL, s.MQTTAddr(), httpAddr, mqttAddr)
	}
	cfg.DataDir = t.TempDir()
	if s, err := startDemoServer(context.Background(), cfg, false, true); err == nil {
		s.Stop()
		t.Errorf("started with --http %s taken", httpAddr)
	} else if !strings.Contains(err.Error(), "--http") || !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("with --http %s taken: %v; want the flag named and EADDRINUSE", httpAddr, err)
	}
}

// runningDemo is a `fleetward demo` process and what it printed so far.
type runningDemo struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder
	done chan struct{} // closed when its standard output ends
}

// startDemo starts `fleetward demo` with args; it is killed when the test
// ends if it still runs.
func startDemo(t *testing.T, bin string, env []string, args ...string) *runningDemo {
	t.Helper()
	d := &runningDemo{cmd: exec.Command(bin, append([]string{"demo", "--log-level", "warn"}, args...)...), done: make(chan struct{})}
	d.cmd.Env = env
	d.cmd.Stderr = &lockedWriter{d}
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			d.cmd.Process.Kill()
			d.cmd.Wait()
		}
	})
	go func() {
		defer close(d.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			fmt.Fprintln(&lockedWriter{d}, sc.Text())
		}
	}()
	return d
}

// waitFor waits until the demo printed a line starting with prefix, ended
// or took longer than timeout.
func (d *runningDemo) waitFor(prefix string, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains("\n"+d.output(), "\n"+prefix) {
			return
		}
		select {
		case <-d.done:
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (d *runningDemo) output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.out.String()
}

// stop sends SIGTERM and waits for the demo to exit.
func (d *runningDemo) stop() error {
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	<-d.done
	return d.cmd.Wait()
}

// lockedWriter appends to a demo's output under its lock: standard output
// and standard error are written from two goroutines.
type lockedWriter struct{ d *runningDemo }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	return w.d.out.Write(p)
}
