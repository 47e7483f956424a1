package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildBinary compiles fleetward once for the end-to-end tests.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "fleetward")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startServe runs `fleetward serve` and waits until /healthz answers. The
// broker listens on a free port unless extra gives --mqtt.
func startServe(t *testing.T, bin, data, addr string, extra ...string) *exec.Cmd {
	t.Helper()
	args := []string{"serve", "--data", data, "--http", addr}
	if !slices.Contains(extra, "--mqtt") {
		args = append(args, "--mqtt", freeAddr(t))
	}
	cmd := exec.Command(bin, append(args, extra...)...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	client := insecureLocalClient()
	for i := 0; i < 150; i++ {
		resp, err := client.Get("https://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return cmd
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd.Process.Kill()
	t.Fatalf("server did not become healthy:\n%s", logs.String())
	return nil
}

// insecureLocalClient skips certificate checks only for the health probe
// before the certificate file exists; the test's real requests pin it.
func insecureLocalClient() *http.Client {
	return &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
}

func pinnedClient(t *testing.T, data string) *http.Client {
	pem, err := os.ReadFile(filepath.Join(data, "tls", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: 16}}
}

func runCLI(t *testing.T, bin string, stdin string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, stderr.String())
	}
	return stdout.String(), nil
}

// TestKill9DuringImportLosesNoAcknowledgedDeviceAndTheLedgerVerifies runs
// the real binary, imports devices in many small acknowledged requests and
// one large bulk import at the same time, kills the server with SIGKILL in
// the middle, restarts it, and checks that every device whose import was
// acknowledged is present and that `fleetward ledger verify` passes.
func TestKill9DuringImportLosesNoAcknowledgedDeviceAndTheLedgerVerifies(t *testing.T) {
	bin := buildBinary(t)
	data := t.TempDir()
	addr := freeAddr(t)
	token, err := runCLI(t, bin, "", "token", "create", "--data", data, "--name", "crash-test", "--role", "operator")
	if err != nil {
		t.Fatalf("token create: %v", err)
	}
	token = strings.TrimSpace(token)
	srv := startServe(t, bin, data, addr)
	client := pinnedClient(t, data)
	base := "https://" + addr

	var mu sync.Mutex
	acked := map[string]bool{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				var batch []map[string]any
				var ids []string
				for j := 0; j < 20; j++ {
					id := fmt.Sprintf("crash-%d-%d-%d", w, i, j)
					ids = append(ids, id)
					batch = append(batch, map[string]any{"id": id, "name": "sensor " + id, "class": "sensor", "vendor": "Bosch"})
				}
				body, _ := json.Marshal(batch)
				req, _ := http.NewRequestWithContext(ctx, "POST", base+"/api/v1/devices/import?format=json", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					return // the server is gone
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					mu.Lock()
					for _, id := range ids {
						acked[id] = true
					}
					mu.Unlock()
				}
			}
		}(w)
	}
	// A bulk import in flight when the kill comes: its committed batches
	// must be whole, the rest absent, and the ledger consistent.
	go func() {
		pr, pw := io.Pipe()
		go func() {
			enc := json.NewEncoder(pw)
			pw.Write([]byte("["))
			for i := 0; i < 200000; i++ {
				if i > 0 {
					pw.Write([]byte(","))
				}
				if enc.Encode(map[string]any{"id": fmt.Sprintf("bulk-%d", i), "name": "camera", "class": "camera"}) != nil {
					return
				}
			}
			pw.Write([]byte("]"))
			pw.Close()
		}()
		req, _ := http.NewRequest("POST", base+"/api/v1/devices/import?format=json", pr)
		req.Header.Set("Authorization", "Bearer "+token)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	time.Sleep(3 * time.Second)
	if err := srv.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	srv.Wait()
	cancel()
	wg.Wait()
	mu.Lock()
	n := len(acked)
	mu.Unlock()
	if n == 0 {
		t.Fatal("no import was acknowledged before the kill; the test proves nothing")
	}
	t.Logf("%d devices acknowledged before SIGKILL", n)

	out, err := runCLI(t, bin, "", "ledger", "verify", "--data", data)
	if err != nil {
		t.Fatalf("ledger verify after SIGKILL: %v\n%s", err, out)
	}
	t.Log(strings.TrimSpace(out))

	srv = startServe(t, bin, data, addr)
	defer func() { srv.Process.Signal(syscall.SIGTERM); srv.Wait() }()
	missing := 0
	for id := range acked {
		req, _ := http.NewRequest("GET", base+"/api/v1/devices/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			missing++
			if missing < 5 {
				t.Errorf("acknowledged device %s is missing after restart (HTTP %d)", id, resp.StatusCode)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged devices missing", missing, n)
	}
}
