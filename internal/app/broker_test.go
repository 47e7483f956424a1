package app_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/app"
	"github.com/fleetward/fleetward/internal/auth"
	"github.com/fleetward/fleetward/internal/identity"
	"github.com/fleetward/fleetward/internal/inventory"
	"github.com/fleetward/fleetward/internal/telemetry"
)

// requirePeer returns the path of an outside program the test drives, and
// skips (fails under CI=true) when it is not installed.
func requirePeer(t *testing.T, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (Debian package %s) and CI requires it", name, debianPackage)
	}
	t.Skipf("%s is not installed (Debian package %s): skipping this test with a real peer", name, debianPackage)
	return ""
}

// deviceFiles makes a key on the "device", has the server's CA issue its
// certificate, and writes both as PEM files for mosquitto clients.
func deviceFiles(t *testing.T, ctx context.Context, s *app.Server, id, class string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: id}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, _ := x509.ParseCertificateRequest(der)
	cert, err = s.CA.IssueDevice(ctx, id, class, csr)
	if err != nil {
		t.Fatalf("issue %s: %v", id, err)
	}
	dir := t.TempDir()
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile = filepath.Join(dir, id+".crt"), filepath.Join(dir, id+".key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	return certFile, keyFile, cert
}

func connected(s *app.Server, deviceID string) bool {
	for _, ss := range s.Broker.Sessions() {
		if ss.DeviceID == deviceID {
			return true
		}
	}
	return false
}

func within(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestServeRunsTheDeviceBrokerAndDropsQuarantinedAndRevokedDevices runs a
// real server with its broker, and Debian's mosquitto clients as the
// device: it connects with its CA-issued certificate, is disconnected
// within a second of being quarantined and of its certificate being
// revoked, and is refused when it tries again.
func TestServeRunsTheDeviceBrokerAndDropsQuarantinedAndRevokedDevices(t *testing.T) {
	sub := requirePeer(t, "mosquitto_sub", "mosquitto-clients")
	pub := requirePeer(t, "mosquitto_pub", "mosquitto-clients")
	dir := t.TempDir()
	ctx := actor.With(context.Background(), actor.Actor{Name: "test"})
	s, err := app.Start(ctx, app.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0", TelemetryInterval: 200 * time.Millisecond, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if _, err := s.Inventory.CreateDevice(ctx, inventory.Device{ID: "cam-7", Name: "Lobby camera", Class: "camera"}); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, cert := deviceFiles(t, ctx, s, "cam-7", "camera")
	_, port, _ := net.SplitHostPort(s.MQTTAddr())
	caFile := filepath.Join(dir, "tls", "ca.crt")
	args := func(clientID string) []string {
		return []string{"-h", "127.0.0.1", "-p", port, "--cafile", caFile, "--cert", certFile, "--key", keyFile, "-i", clientID, "-V", "mqttv5"}
	}
	publishMessage := func(clientID, topic, message string) (string, error) {
		cmd := exec.Command(pub, append(args(clientID), "-t", topic, "-q", "1", "-m", message)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	publish := func(clientID, topic string) (string, error) { return publishMessage(clientID, topic, `{"temp":21}`) }
	// stay connects and stays subscribed until killed.
	stay := func() *exec.Cmd {
		t.Helper()
		cmd := exec.Command(sub, append(args("cam-7"), "-t", "devices/cam-7/cmd/#")...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		if !within(5*time.Second, func() bool { return connected(s, "cam-7") }) {
			t.Fatalf("cam-7 did not connect: %s", out.String())
		}
		return cmd
	}

	t.Run("the device publishes to its own topic over TLS 1.3", func(t *testing.T) {
		if out, err := publish("cam-7", "devices/cam-7/telemetry"); err != nil {
			t.Fatalf("mosquitto_pub to its own topic: %v: %s", err, out)
		}
		c := stay()
		defer c.Process.Kill()
		for _, ss := range s.Broker.Sessions() {
			if ss.DeviceID == "cam-7" && (ss.TLSVersion != "TLS 1.3" || ss.Class != "camera") {
				t.Errorf("session %+v, want TLS 1.3 and class camera", ss)
			}
		}
	})
	t.Run("what the device reports reaches the inventory and the measurements", func(t *testing.T) {
		inv := `{"device_id":"cam-7","firmware":"5.7.3","os_name":"Debian GNU/Linux","os_version":"12","kernel":"6.1.0-26-amd64",
			"listening_ports":[{"proto":"tcp","addr":"0.0.0.0","port":554},{"proto":"tcp","addr":"::","port":80}],"config_digest":"not a digest"}`
		if out, err := publishMessage("cam-7", "devices/cam-7/inventory", inv); err != nil {
			t.Fatalf("publish inventory: %v: %s", err, out)
		}
		tel := `{"device_id":"cam-7","seq":1,"time":"` + time.Now().UTC().Format(time.RFC3339) + `","delta":{"bytes_in":1500,"bytes_out":9000},"established_tcp":2,"remote_addresses":["10.0.0.9"]}`
		if out, err := publishMessage("cam-7", "devices/cam-7/telemetry", tel); err != nil {
			t.Fatalf("publish telemetry: %v: %s", err, out)
		}
		var d inventory.Device
		if !within(5*time.Second, func() bool {
			d, _ = s.Inventory.GetDevice(ctx, "cam-7")
			return d.FirmwareVersion == "5.7.3"
		}) {
			t.Fatalf("inventory not updated from the device's report: %+v", d)
		}
		if d.OS != "Debian GNU/Linux" || d.OSVersion != "12" || d.ConfigDigest != "" ||
			d.Attributes["kernel"] != "6.1.0-26-amd64" || d.Attributes["listening_ports"] != "tcp/554 tcp/80" {
			t.Errorf("inventory after the report: %+v", d)
		}
		var series map[string][]telemetry.Point
		if !within(5*time.Second, func() bool {
			series, _ = s.Telemetry.Series(ctx, "cam-7", []string{"delta_bytes_out", "established_tcp", telemetry.MetricMessagesIn}, time.Now().Add(-time.Hour))
			return len(series) == 3
		}) {
			t.Fatalf("measurements after the reports: %+v, want agent metrics and broker-side messages_in", series)
		}
		if v := series["delta_bytes_out"][0].Value; v != 9000 {
			t.Errorf("delta_bytes_out = %v, want 9000", v)
		}
		if !within(5*time.Second, func() bool {
			d, _ = s.Inventory.GetDevice(ctx, "cam-7")
			return time.Since(d.LastSeen) < time.Minute
		}) {
			t.Errorf("last seen after the device's reports = %v, want within the last minute", d.LastSeen)
		}
	})
	t.Run("a client id other than the certificate's device id is refused", func(t *testing.T) {
		if out, err := publish("cam-8", "devices/cam-8/telemetry"); err == nil {
			t.Fatalf("mosquitto_pub as cam-8 with cam-7's certificate succeeded: %s", out)
		}
	})
	t.Run("quarantine drops the live session within a second and refuses reconnection", func(t *testing.T) {
		stay()
		quarantined := inventory.StatusQuarantined
		start := time.Now()
		if _, err := s.Inventory.UpdateDevice(ctx, "cam-7", inventory.DevicePatch{Status: &quarantined}); err != nil {
			t.Fatal(err)
		}
		if !within(time.Second, func() bool { return !connected(s, "cam-7") }) {
			t.Fatal("cam-7 still connected a second after quarantine")
		}
		t.Logf("disconnected %v after the quarantine", time.Since(start).Round(time.Millisecond))
		if out, err := publish("cam-7", "devices/cam-7/telemetry"); err == nil {
			t.Fatalf("quarantined cam-7 could connect and publish: %s", out)
		}
		active := inventory.StatusActive
		if _, err := s.Inventory.UpdateDevice(ctx, "cam-7", inventory.DevicePatch{Status: &active}); err != nil {
			t.Fatal(err)
		}
		if out, err := publish("cam-7", "devices/cam-7/telemetry"); err != nil {
			t.Fatalf("cam-7 active again could not publish: %v: %s", err, out)
		}
	})
	t.Run("revoking the certificate drops the live session within a second and refuses reconnection", func(t *testing.T) {
		stay()
		start := time.Now()
		if err := s.CA.Revoke(ctx, identity.SerialString(cert.SerialNumber), identity.ReasonKeyCompromise); err != nil {
			t.Fatal(err)
		}
		if !within(time.Second, func() bool { return !connected(s, "cam-7") }) {
			t.Fatal("cam-7 still connected a second after its certificate was revoked")
		}
		t.Logf("disconnected %v after the revocation", time.Since(start).Round(time.Millisecond))
		out, err := publish("cam-7", "devices/cam-7/telemetry")
		if err == nil {
			t.Fatalf("cam-7 with a revoked certificate could connect and publish: %s", out)
		}
		if !strings.Contains(strings.ToLower(out), "not authori") {
			t.Errorf("refusal output %q does not say not authorised", out)
		}
	})
	t.Run("every refused connect is counted", func(t *testing.T) {
		if n := s.Broker.SecurityEventCounts()["security.mqtt_connect_denied"]; n < 3 {
			t.Errorf("connect denials counted = %d, want at least 3 (client id, quarantine, revocation)", n)
		}
	})
}

// TestDeviceAccessAPIRefusesBadInputWithTheFieldNamed sends malformed and
// invalid requests to the routes this stage added: each gets a 4xx with the
// API's error shape, never a 500.
func TestDeviceAccessAPIRefusesBadInputWithTheFieldNamed(t *testing.T) {
	dir := t.TempDir()
	ctx := actor.With(context.Background(), actor.Actor{Name: "test"})
	s, err := app.Start(ctx, app.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0", Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	token, _, err := s.Auth.CreateToken(ctx, "t", auth.RoleOperator, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Inventory.CreateDevice(ctx, inventory.Device{ID: "cam-7", Name: "Lobby camera", Class: "camera"}); err != nil {
		t.Fatal(err)
	}
	pem, _ := os.ReadFile(filepath.Join(dir, "tls", "ca.crt"))
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	for _, c := range []struct {
		name, method, path, body string
		status                   int
		field                    string
	}{
		{"malformed JSON to revoke", "POST", "/api/v1/devices/cam-7/revoke", `{"reason":`, 400, ""},
		{"an unknown field to revoke", "POST", "/api/v1/devices/cam-7/revoke", `{"why":1}`, 400, ""},
		{"a reason RFC 5280 does not accept", "POST", "/api/v1/devices/cam-7/revoke", `{"reason":8}`, 400, "reason"},
		{"a reason of the wrong type", "POST", "/api/v1/devices/cam-7/revoke", `{"reason":"key compromise"}`, 400, "reason"},
		{"revoking a device not in the inventory", "POST", "/api/v1/devices/nope/revoke", `{}`, 404, ""},
		{"measurements over a window that is not a duration", "GET", "/api/v1/devices/cam-7/measurements?window=yesterday", "", 400, "window"},
		{"measurements of a malformed metric name", "GET", "/api/v1/devices/cam-7/measurements?metric=Bytes%20In", "", 400, "metric"},
		{"broker metrics of a device not in the inventory", "GET", "/api/v1/devices/nope/broker-metrics", "", 404, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, s.URL+c.path, strings.NewReader(c.body))
			req.Header.Set("Authorization", "Bearer "+token)
			if c.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e struct {
				Error struct{ Code, Message, Field string } `json:"error"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || resp.StatusCode != c.status || e.Error.Message == "" {
				t.Fatalf("%s %s = %d %+v (%v), want %d with the error shape", c.method, c.path, resp.StatusCode, e, err, c.status)
			}
			if c.field != "" && e.Error.Field != c.field {
				t.Errorf("error names field %q, want %q", e.Error.Field, c.field)
			}
		})
	}
}
