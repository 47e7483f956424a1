package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/ledger"
)

// TestWithRealPeers runs the real binary against real outside peers:
// openssl, curl, Go's own TLS client and fleetward's CLI. One binary and one
// server serve every subtest. A subtest whose peer is not installed is
// skipped, except under CI=true, where a missing peer fails it.
func TestWithRealPeers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary; skipped with -short")
	}
	bin := buildBinary(t)
	data := t.TempDir()
	addr := freeAddr(t)
	base := "https://" + addr
	cert := filepath.Join(data, "tls", "ca.crt")
	srv := startServe(t, bin, data, addr)
	t.Cleanup(func() {
		srv.Process.Signal(syscall.SIGTERM)
		if err := srv.Wait(); err != nil {
			t.Errorf("serve did not stop cleanly on SIGTERM: %v", err)
		}
	})

	t.Run("openssl s_client completes TLS 1.3 and is refused TLS 1.1", func(t *testing.T) {
		openssl := requireTool(t, "openssl", "openssl")
		out, err := runTool(t, "", openssl, "s_client", "-connect", addr, "-tls1_3", "-brief",
			"-CAfile", cert, "-verify_ip", "127.0.0.1", "-verify_return_error")
		if err != nil {
			t.Fatalf("openssl s_client -tls1_3: %v\n%s", err, out)
		}
		for _, want := range []string{"Protocol version: TLSv1.3", "Verification: OK"} {
			if !strings.Contains(out, want) {
				t.Errorf("openssl s_client -tls1_3 output lacks %q:\n%s", want, out)
			}
		}
		// @SECLEVEL=0 lets this openssl offer TLS 1.1 whatever its own
		// configuration says, so the refusal must come from the server.
		out, err = runTool(t, "", openssl, "s_client", "-connect", addr, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0", "-brief")
		if err == nil {
			t.Fatalf("openssl s_client -tls1_1 connected; fleetward must refuse TLS 1.1:\n%s", out)
		}
		if !strings.Contains(out, "alert protocol version") {
			t.Errorf("TLS 1.1 failed, but not by the server's protocol_version alert:\n%s", out)
		}
	})

	t.Run("a Go client negotiates X25519MLKEM768 over TLS 1.3 by default", func(t *testing.T) {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: certPool(t, cert)})
		if err != nil {
			t.Fatalf("TLS dial %s: %v", addr, err)
		}
		defer conn.Close()
		st := conn.ConnectionState()
		if st.Version != tls.VersionTLS13 {
			t.Errorf("negotiated %s, want TLS 1.3", tls.VersionName(st.Version))
		}
		if st.CurveID != tls.X25519MLKEM768 {
			t.Errorf("negotiated key exchange %v, want X25519MLKEM768 (hybrid post-quantum)", st.CurveID)
		}
		// And a client stuck on TLS 1.1 is refused by the server, not by
		// its own defaults.
		old, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: certPool(t, cert), MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
		if err == nil {
			old.Close()
			t.Fatal("a TLS 1.1 client connected")
		}
		if !strings.Contains(err.Error(), "protocol version") {
			t.Errorf("TLS 1.1 refused with %v, want the server's protocol version alert", err)
		}
	})

	t.Run("curl reaches health, needs a token for the API and gets nothing over plaintext", func(t *testing.T) {
		curl := requireTool(t, "curl", "curl")
		status, body := curlDo(t, curl, "--cacert", cert, base+"/healthz")
		if status != 200 || !strings.Contains(body, `"ok"`) {
			t.Errorf("curl /healthz = %d %s, want 200 ok", status, body)
		}
		status, body = curlDo(t, curl, "--cacert", cert, base+"/api/v1/devices")
		if status != 401 {
			t.Errorf("curl /api/v1/devices without a token = %d, want 401: %s", status, body)
		}
		requireErrorShape(t, body, "unauthorized")

		// The documented way: a token straight from the CLI in a shell.
		script := `curl -sS --cacert "$CERT" -H "Authorization: Bearer $("$FW" token create --data "$DATA" --name curl --role auditor)" ` +
			`-w '\n%{http_code}' "$URL"`
		sh := exec.Command("sh", "-c", script)
		sh.Env = append(os.Environ(), "CERT="+cert, "FW="+bin, "DATA="+data, "URL="+base+"/api/v1/devices")
		out, err := sh.Output()
		if err != nil {
			t.Fatalf("curl with a token from 'fleetward token create': %v\n%s", err, out)
		}
		status, body = splitStatus(t, string(out))
		var page struct {
			Devices []json.RawMessage `json:"devices"`
			Total   *int              `json:"total"`
		}
		if status != 200 || json.Unmarshal([]byte(body), &page) != nil || page.Devices == nil || page.Total == nil {
			t.Errorf("curl /api/v1/devices with a token = %d %s, want 200 and a device page", status, body)
		}

		// Plain HTTP to the TLS port: Go's server answers a bare 400 and
		// closes; nothing of the API is served without TLS.
		token := createToken(t, bin, data, "plaintext", "auditor")
		for _, path := range []string{"/healthz", "/api/v1/devices"} {
			cmd := exec.Command(curl, "-sS", "--max-time", "10", "-H", "Authorization: Bearer "+token, "-w", "\n%{http_code}", "http://"+addr+path)
			out, err := cmd.Output()
			if err != nil {
				continue // refused outright: fine
			}
			status, body := splitStatus(t, string(out))
			if status == 200 || strings.Contains(body, `"status"`) || strings.Contains(body, `"devices"`) {
				t.Errorf("plain http://%s%s = %d %q: served without TLS", addr, path, status, body)
			}
		}
	})

	t.Run("help texts are useful and exit 0", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			want []string
		}{
			{[]string{"--help"}, []string{"USAGE", "serve", "demo", "user", "token", "ledger", "device", "fleetward user add", "FLEETWARD_DATA"}},
			{[]string{"serve", "--help"}, []string{"--data", "--database", "--nats", "--http", "--http-plaintext-insecure", "127.0.0.1:8443", "TLS"}},
			{[]string{"token", "create", "--help"}, []string{"--name", "--role", "--scope", "--ttl", "TOKEN=$(fleetward token create", "Authorization: Bearer"}},
			{[]string{"user", "add", "--help"}, []string{"standard input", "--role", "USERNAME"}},
			{[]string{"ledger", "verify", "--help"}, []string{"--bundle", "--key", "exit 0", "2"}},
			{[]string{"device", "list", "--help"}, []string{"--server", "--token", "--cacert", "--json"}},
		} {
			out, err := runCLI(t, bin, "", c.args...)
			if err != nil {
				t.Errorf("fleetward %s: %v", strings.Join(c.args, " "), err)
				continue
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("fleetward %s does not mention %q:\n%s", strings.Join(c.args, " "), w, out)
				}
			}
		}
		if _, err := runCLI(t, bin, "", "no-such-command"); err == nil {
			t.Error("fleetward no-such-command exited 0")
		}
	})

	t.Run("user add reads the password from stdin and the operator logs in with curl", func(t *testing.T) {
		curl := requireTool(t, "curl", "curl")
		const password = "correct horse battery staple"
		out, err := runCLI(t, bin, password+"\n", "user", "add", "olga", "--role", "operator", "--data", data)
		if err != nil {
			t.Fatalf("fleetward user add: %v", err)
		}
		if !strings.Contains(out, `"olga"`) {
			t.Errorf("user add printed %q", out)
		}
		if _, err := runCLI(t, bin, "", "user", "add", "empty", "--data", data); err == nil || !strings.Contains(err.Error(), "standard input") {
			t.Errorf("user add with nothing on stdin = %v, want an error about standard input", err)
		}
		login := func(pw string) (int, string) {
			body, _ := json.Marshal(map[string]string{"username": "olga", "password": pw})
			cmd := exec.Command(curl, "-sS", "--cacert", cert, "-H", "Content-Type: application/json", "--data-binary", "@-",
				"-w", "\n%{http_code}", base+"/api/v1/auth/login")
			cmd.Stdin = bytes.NewReader(body)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("curl login: %v", err)
			}
			return splitStatus(t, string(out))
		}
		status, body := login(password)
		var res struct{ Status, Username, Role, CSRFToken string }
		json.Unmarshal([]byte(body), &res)
		if status != 200 || res.Status != "ok" || res.Role != "operator" || res.Username != "olga" {
			t.Errorf("login = %d %s, want 200 status ok for an operator", status, body)
		}
		status, body = login(password + "!")
		if status != 401 {
			t.Errorf("login with a wrong password = %d %s, want 401", status, body)
		}
		requireErrorShape(t, body, "unauthorized")
	})

	t.Run("an exported ledger verifies offline and a flipped byte in an entry fails with exit 2", func(t *testing.T) {
		bundle := filepath.Join(t.TempDir(), "ledger.jsonl")
		cmd := exec.Command(bin, "ledger", "export", "--data", data, "--out", bundle)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("ledger export: %v\n%s", err, stderr.String())
		}
		_, key, ok := strings.Cut(stderr.String(), "verifier key (pin it with --key): ")
		key = strings.TrimSpace(key)
		if !ok || key == "" {
			t.Fatalf("ledger export did not print the verifier key:\n%s", stderr.String())
		}
		out, err := runCLI(t, bin, "", "ledger", "verify", "--bundle", bundle, "--key", key)
		if err != nil {
			t.Fatalf("ledger verify of an untouched bundle: %v\n%s", err, out)
		}
		if !strings.HasPrefix(out, "ledger OK") {
			t.Errorf("ledger verify printed %q", out)
		}

		raw, err := os.ReadFile(bundle)
		if err != nil {
			t.Fatal(err)
		}
		lines := bytes.SplitAfter(raw, []byte("\n"))
		// The last entry: its index is not 0, so a damaged "index" key
		// cannot pass for the default.
		at := -1
		for i, l := range lines {
			if bytes.HasPrefix(l, []byte(`{"entry":`)) {
				at = i
			}
		}
		if at < 0 {
			t.Fatalf("the bundle has no entry:\n%s", raw)
		}
		entryStart := bytes.Index(raw, lines[at])
		entryLen := len(bytes.TrimSuffix(lines[at], []byte("\n")))

		// Through the binary: one letter of the actor changed, the JSON
		// still well-formed.
		actorAt := bytes.Index(lines[at], []byte(`"actor":"`)) + len(`"actor":"`) + 1
		tampered := slices.Clone(raw)
		tampered[entryStart+actorAt] ^= 0x01
		if err := os.WriteFile(bundle, tampered, 0o600); err != nil {
			t.Fatal(err)
		}
		vc := exec.Command(bin, "ledger", "verify", "--bundle", bundle, "--key", key)
		vout, err := vc.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Fatalf("ledger verify of a tampered bundle = %v, want exit status 2\n%s", err, vout)
		}
		if !strings.Contains(string(vout), "TAMPERED") {
			t.Errorf("ledger verify of a tampered bundle printed:\n%s", vout)
		}

		// In process, every byte of the entry line: whichever byte is
		// flipped, the bundle no longer verifies (exit 2, not 1).
		for i := range entryLen {
			tampered := slices.Clone(raw)
			tampered[entryStart+i] ^= 0x01
			rep, err := ledger.VerifyBundle(bytes.NewReader(tampered), key)
			if err != nil {
				t.Errorf("byte %d of the entry line flipped (%q): VerifyBundle error %v; the CLI would exit 1, not 2", i, lines[at][i], err)
				continue
			}
			if rep.OK {
				t.Errorf("byte %d of the entry line flipped (%q → %q): the bundle still verifies\n%s", i, lines[at][i], lines[at][i]^0x01, tampered[entryStart:entryStart+entryLen])
			}
		}
		t.Logf("each of the %d bytes of entry line %d, flipped alone, makes the bundle fail", entryLen, at+1)
	})

	t.Run("device list prints exactly what the API lists, across pages", func(t *testing.T) {
		token := createToken(t, bin, data, "device-list", "operator")
		client := pinnedClient(t, data)
		// More devices than one page of the CLI (500) holds.
		var rows strings.Builder
		rows.WriteString("id,name,class,vendor\n")
		for i := range 1203 {
			fmt.Fprintf(&rows, "list-%04d,Sensor %d,sensor,Bosch\n", i, i)
		}
		req, _ := http.NewRequest("POST", base+"/api/v1/devices/import?format=csv", strings.NewReader(rows.String()))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "text/csv")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("import = %d", resp.StatusCode)
		}

		api := map[string]string{}
		for cursor := ""; ; {
			url := base + "/api/v1/devices?limit=1000&sort=id"
			if cursor != "" {
				url += "&cursor=" + cursor
			}
			req, _ := http.NewRequest("GET", url, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var page struct {
				Devices []struct {
					ID, Name string
				} `json:"devices"`
				NextCursor string `json:"next_cursor"`
			}
			err = json.NewDecoder(resp.Body).Decode(&page)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("GET %s = %d, %v", url, resp.StatusCode, err)
			}
			for _, d := range page.Devices {
				api[d.ID] = d.Name
			}
			if cursor = page.NextCursor; cursor == "" {
				break
			}
		}
		if len(api) < 1203 {
			t.Fatalf("the API lists %d devices, want at least 1203", len(api))
		}

		out, err := runCLI(t, bin, "", "device", "list", "--server", base, "--token", token, "--cacert", filepath.Join(data, "tls", "ca.crt"), "--json")
		if err != nil {
			t.Fatalf("fleetward device list: %v", err)
		}
		cli := map[string]string{}
		sc := bufio.NewScanner(strings.NewReader(out))
		n := 0
		for sc.Scan() {
			var d struct{ ID, Name string }
			if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
				t.Fatalf("device list --json line %d is not JSON: %v: %q", n+1, err, sc.Text())
			}
			if _, dup := cli[d.ID]; dup {
				t.Errorf("device list printed %s twice", d.ID)
			}
			cli[d.ID] = d.Name
			n++
		}
		for id, name := range api {
			if cli[id] != name {
				t.Errorf("the API lists %s %q, device list printed %q", id, name, cli[id])
			}
		}
		if len(cli) != len(api) {
			t.Errorf("device list printed %d devices, the API lists %d", len(cli), len(api))
		}

		// Without a usable certificate the CLI refuses the server.
		if _, err := runCLI(t, bin, "", "device", "list", "--server", base, "--token", token); err == nil {
			t.Error("device list trusted the self-signed server without --cacert")
		}
		if _, err := runCLI(t, bin, "", "device", "list", "--server", base, "--token", "fwt_bogus", "--cacert", cert); err == nil ||
			!strings.Contains(err.Error(), "unauthorized") {
			t.Errorf("device list with a bogus token = %v, want an unauthorized error", err)
		}
	})
}

// requireTool returns the path of an outside program a test needs. Without
// it the test is skipped, or fails under CI=true, where every peer must be
// installed.
func requireTool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (Debian package %s); CI=true requires every real peer", name, debianPackage)
	}
	t.Skipf("%s is not installed (Debian package %s): skipping this test with a real peer", name, debianPackage)
	return ""
}

// runTool runs an outside program with stdin and returns its combined
// output; it is killed after a minute.
func runTool(t *testing.T, stdin, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	timer := time.AfterFunc(time.Minute, func() { cmd.Process.Kill() })
	defer timer.Stop()
	err := cmd.Wait()
	return out.String(), err
}

// curlDo runs curl -sS with args and returns the status and body.
func curlDo(t *testing.T, curl string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(curl, append([]string{"-sS", "--max-time", "30", "-w", "\n%{http_code}"}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("curl %v: %v\n%s", args, err, ee.Stderr)
		}
		t.Fatalf("curl %v: %v", args, err)
	}
	return splitStatus(t, string(out))
}

// splitStatus splits curl's output written with -w '\n%{http_code}'.
func splitStatus(t *testing.T, out string) (int, string) {
	t.Helper()
	i := strings.LastIndexByte(out, '\n')
	var status int
	if _, err := fmt.Sscanf(out[i+1:], "%d", &status); i < 0 || err != nil {
		t.Fatalf("curl output does not end in a status: %q", out)
	}
	return status, out[:i]
}

func requireErrorShape(t *testing.T, body, code string) {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code != code || e.Error.Message == "" {
		t.Errorf("body is not the error shape with code %q: %s", code, body)
	}
}

func createToken(t *testing.T, bin, data, name, role string) string {
	t.Helper()
	out, err := runCLI(t, bin, "", "token", "create", "--data", data, "--name", name, "--role", role)
	if err != nil {
		t.Fatalf("token create: %v", err)
	}
	return strings.TrimSpace(out)
}

func certPool(t *testing.T, path string) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no PEM certificate", path)
	}
	return pool
}
