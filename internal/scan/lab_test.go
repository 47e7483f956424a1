package scan

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// labSkip skips the lab test with a reason, or fails it under CI=true,
// where the lab must run.
func labSkip(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI: the credential lab cannot run: "+format, args...)
	}
	t.Skipf("credential lab skipped: "+format, args...)
}

// TestLabCredentialAudit builds two devices in network namespaces
// (testdata/lab/lab.sh): a weak one with default credentials on telnet,
// SSH, HTTP basic auth and MQTT plus an anonymous MQTT listener, and a
// well-configured one (SSH without passwords, strong HTTP password, MQTT
// with mTLS only). The real scanner, with the default list, must report
// every weak login on the first and nothing on the second.
func TestLabCredentialAudit(t *testing.T) {
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		labSkip(t, "needs Linux and root (network namespaces)")
	}
	for _, tool := range []string{"ip", "unshare", "ss", "openssl", "dropbear", "dropbearkey", "mosquitto", "mosquitto_passwd"} {
		if _, err := exec.LookPath(tool); err != nil {
			labSkip(t, "%s not found (scripts/test.sh installs iproute2, openssl, dropbear-bin, mosquitto)", tool)
		}
	}
	bb := os.Getenv("FLEETWARD_LAB_BUSYBOX")
	if bb == "" {
		labSkip(t, "FLEETWARD_LAB_BUSYBOX is not set (scripts/test.sh unpacks busybox-static and sets it)")
	}
	if _, err := os.Stat(bb); err != nil {
		labSkip(t, "FLEETWARD_LAB_BUSYBOX: %v", err)
	}
	script, _ := exec.LookPath("testdata/lab/lab.sh")
	if script == "" {
		script = "testdata/lab/lab.sh"
	}
	lab := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "/bin/sh", append([]string{script}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("lab.sh %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	dir := t.TempDir()
	// "up" first removes a stale lab from a killed run; Cleanup removes
	// this one, also when the test fails.
	t.Cleanup(func() { lab("down") })
	lab("up", dir, bb)

	weak, strong := netip.MustParseAddr("10.200.41.2"), netip.MustParseAddr("10.200.42.2")
	creds := DefaultCredentials()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := Scan(ctx, []netip.Addr{weak, strong}, Options{
		Ports:       []int{22, 23, 80, 1883, 1884, 8883},
		Credentials: creds, CredentialRate: 6000, // the lab does not lock out; the default cap of 30 holds
	})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	ports := map[netip.Addr]map[int]Port{}
	for _, h := range res.Hosts {
		ports[h.Addr] = map[int]Port{}
		for _, p := range h.Ports {
			ports[h.Addr][p.Number] = p
		}
	}

	weakWant := []struct {
		port          int
		service, user string
		source        string
	}{
		{23, "telnet", "root", "mirai"},
		{22, "ssh", "admin", "mirai"},
		{80, "http", "admin", "mirai"},
		{1883, "mqtt", "admin", "mirai"},
		{1884, "mqtt", "(anonymous)", "anonymous"},
	}
	for _, w := range weakWant {
		p, ok := ports[weak][w.port]
		if !ok {
			t.Errorf("weak device: port %d not found open", w.port)
			continue
		}
		f := p.Credentials
		if f == nil || !f.Works || f.Service != w.service || f.Username != w.user || f.Source != w.source {
			t.Errorf("weak device port %d (%s): finding %+v, want %s works for %s from %s", w.port, p.Service, f, w.service, w.user, w.source)
		}
	}
	if !ports[weak][1884].AnonymousMQTT() {
		t.Error("weak device: anonymous MQTT on 1884 not reported")
	}
	if len(ports[strong]) != 3 {
		t.Errorf("strong device: open ports %v, want 22, 80 and 8883", ports[strong])
	}
	for n, p := range ports[strong] {
		if p.Credentials != nil && p.Credentials.Works {
			t.Errorf("strong device port %d: weak credential reported: %+v", n, p.Credentials)
		}
		if p.AnonymousMQTT() {
			t.Errorf("strong device port %d: anonymous MQTT reported", n)
		}
	}
	if f := ports[strong][22].Credentials; f == nil || f.Stopped != "password authentication not offered" || f.Attempts != 0 {
		t.Errorf("strong device SSH: finding %+v, want no attempt: password authentication not offered", f)
	}
	if f := ports[strong][80].Credentials; f == nil || f.Attempts != DefaultCredentialCap || !strings.HasPrefix(f.Stopped, "cap") {
		t.Errorf("strong device HTTP: finding %+v, want %d attempts, stopped by the cap", f, DefaultCredentialCap)
	}
	if f := ports[strong][8883].Credentials; f != nil {
		t.Errorf("strong device mTLS MQTT: finding %+v, want none (no client certificate, no login)", f)
	}

	out, _ := json.Marshal(res)
	assertNoPasswords(t, out, append(credPasswords(creds), "Vq7#kR2!pLm9xZ", "tN4$wB8@hQ1&eY"))
	t.Logf("lab scan took %v", res.Finished.Sub(res.Started).Round(time.Millisecond))
}

// assertNoPasswords fails if any string value in the JSON output (keys,
// usernames and timestamps aside: admin/admin is common) is a tested password, or
// contains one that is not a plain word (a word like "password" may be part
// of a message).
func assertNoPasswords(t *testing.T, out []byte, passwords []string) {
	t.Helper()
	var doc any
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("result JSON: %v", err)
	}
	var values []string
	var walk func(key string, v any)
	walk = func(key string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, y := range x {
				walk(k, y)
			}
		case []any:
			for _, y := range x {
				walk(key, y)
			}
		case string:
			// A timestamp's digits are the clock's (a start time's
			// fraction of a second may well read 1111), not a password.
			if _, err := time.Parse(time.RFC3339Nano, x); key != "username" && err != nil {
				values = append(values, x)
			}
		}
	}
	walk("", doc)
	word := regexp.MustCompile(`^[a-z]+$`)
	for _, pw := range passwords {
		for _, v := range values {
			if pw != "" && (v == pw || (len(pw) >= 4 && !word.MatchString(pw) && strings.Contains(v, pw))) {
				t.Errorf("the JSON result shows a tested password (%s) in %q", PasswordHint(pw), PasswordHint(v))
			}
		}
	}
}

func credPasswords(list []Credential) []string {
	var out []string
	for _, c := range list {
		out = append(out, c.Password)
	}
	return out
}
