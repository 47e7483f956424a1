package main

import (
	"encoding/base64"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDeviceLifecycleWithRealPeers is issue 3's end-to-end check, with
// nothing of fleetward's on the device side: `openssl req` makes the key
// and CSR on the "device", curl enrols it over EST (RFC 7030) with a
// one-time token, mosquitto_pub and mosquitto_sub use the certificate on
// the broker, are confined to the device's own topics, and are dropped and
// refused once the device is revoked; openssl reads the revocation in the
// CRL and from the OCSP responder.
func TestDeviceLifecycleWithRealPeers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary; skipped with -short")
	}
	openssl := requireTool(t, "openssl", "openssl")
	curl := requireTool(t, "curl", "curl")
	mosqPub := requireTool(t, "mosquitto_pub", "mosquitto-clients")
	mosqSub := requireTool(t, "mosquitto_sub", "mosquitto-clients")
	bin := buildBinary(t)
	data := t.TempDir()
	addr, mqttAddr := freeAddr(t), freeAddr(t)
	base := "https://" + addr
	srv := startServe(t, bin, data, addr, "--mqtt", mqttAddr)
	t.Cleanup(func() {
		srv.Process.Signal(syscall.SIGTERM)
		srv.Wait()
	})
	ca := filepath.Join(data, "tls", "ca.crt")
	token := createToken(t, bin, data, "e2e-operator", "operator")
	dev := t.TempDir()
	file := func(name string) string { return filepath.Join(dev, name) }
	api := func(method, path, body string) (int, string) {
		t.Helper()
		args := []string{"--cacert", ca, "-X", method, "-H", "Authorization: Bearer " + token, base + path}
		if body != "" {
			args = append(args, "-H", "Content-Type: application/json", "--data", body)
		}
		return curlDo(t, curl, args...)
	}
	const id = "e2e-cam-1"

	if status, body := api("POST", "/api/v1/devices", `{"id":"`+id+`","name":"E2E camera","class":"camera","vendor":"Axis Communications"}`); status != 201 {
		t.Fatalf("register the device = %d: %s", status, body)
	}
	status, body := api("POST", "/api/v1/devices/"+id+"/enrollment-token", `{}`)
	var tok struct {
		Token string `json:"token"`
	}
	if status != 200 && status != 201 || json.Unmarshal([]byte(body), &tok) != nil || tok.Token == "" {
		t.Fatalf("enrolment token = %d: %s", status, body)
	}

	// The device: its key never leaves dev/.
	if out, err := runTool(t, "", openssl, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", file("device.key"), "-subj", "/CN="+id, "-outform", "DER", "-out", file("csr.der")); err != nil {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}
	csr, _ := os.ReadFile(file("csr.der"))
	os.WriteFile(file("csr.b64"), []byte(base64.StdEncoding.EncodeToString(csr)), 0o600)
	enrol := func(password string) (int, string) {
		return curlDo(t, curl, "--cacert", ca, "-u", id+":"+password, "-H", "Content-Type: application/pkcs10",
			"--data-binary", "@"+file("csr.b64"), base+"/.well-known/est/simpleenroll")
	}
	status, body = enrol(tok.Token)
	if status != 200 {
		t.Fatalf("EST simpleenroll with curl = %d: %s", status, body)
	}
	p7, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(body), ""))
	if err != nil {
		t.Fatalf("simpleenroll answer is not base64: %v", err)
	}
	os.WriteFile(file("cert.p7"), p7, 0o600)
	if out, err := runTool(t, "", openssl, "pkcs7", "-inform", "DER", "-in", file("cert.p7"), "-print_certs", "-out", file("device.crt")); err != nil {
		t.Fatalf("openssl pkcs7: %v\n%s", err, out)
	}
	// The chain from /cacerts, for openssl verify and ocsp.
	status, body = curlDo(t, curl, "--cacert", ca, base+"/.well-known/est/cacerts")
	chainP7, _ := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(body), ""))
	os.WriteFile(file("chain.p7"), chainP7, 0o600)
	if out, err := runTool(t, "", openssl, "pkcs7", "-inform", "DER", "-in", file("chain.p7"), "-print_certs", "-out", file("chain.pem")); status != 200 || err != nil {
		t.Fatalf("cacerts = %d, openssl pkcs7: %v\n%s", status, err, out)
	}
	if out, err := runTool(t, "", openssl, "verify", "-CAfile", file("chain.pem"), "-purpose", "sslclient", file("device.crt")); err != nil || !strings.Contains(out, "OK") {
		t.Fatalf("openssl verify of the enrolled certificate: %v\n%s", err, out)
	}
	if status, body := enrol(tok.Token); status != 401 {
		t.Errorf("the same token a second time = %d (%s), want 401", status, body)
	}
	if _, metrics := api("GET", "/metrics", ""); !strings.Contains(metrics, `fleetward_est_requests_total{op="simpleenroll",outcome="issued"} 1`) ||
		!strings.Contains(metrics, `fleetward_est_requests_total{op="simpleenroll",outcome="refused"} 1`) {
		t.Errorf("/metrics does not count one issued and one refused enrolment:\n%s", metrics)
	}

	// Re-enrolment over mutual TLS with the current certificate (RFC 7030
	// simplereenroll): a new key and CSR, no token.
	if out, err := runTool(t, "", openssl, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", file("renewed.key"), "-subj", "/CN="+id, "-outform", "DER", "-out", file("renew.der")); err != nil {
		t.Fatalf("openssl req (renewal): %v\n%s", err, out)
	}
	renewCSR, _ := os.ReadFile(file("renew.der"))
	os.WriteFile(file("renew.b64"), []byte(base64.StdEncoding.EncodeToString(renewCSR)), 0o600)
	status, body = curlDo(t, curl, "--cacert", ca, "--cert", file("device.crt"), "--key", file("device.key"),
		"-H", "Content-Type: application/pkcs10", "--data-binary", "@"+file("renew.b64"), base+"/.well-known/est/simplereenroll")
	if status != 200 {
		t.Fatalf("EST simplereenroll with curl and the current certificate = %d: %s", status, body)
	}
	if status, _ := curlDo(t, curl, "--cacert", ca, "-H", "Content-Type: application/pkcs10", "--data-binary", "@"+file("renew.b64"),
		base+"/.well-known/est/simplereenroll"); status < 400 {
		t.Errorf("simplereenroll without a client certificate = %d, want a refusal", status)
	}

	_, port, _ := net.SplitHostPort(mqttAddr)
	mqtt := func(clientID string) []string {
		return []string{"-h", "127.0.0.1", "-p", port, "--cafile", ca, "--cert", file("device.crt"), "--key", file("device.key"), "-i", clientID, "-V", "mqttv5"}
	}
	sessions := func() string {
		_, body := api("GET", "/api/v1/broker/sessions", "")
		return body
	}
	if out, err := runTool(t, "", mosqPub, append(mqtt(id), "-t", "devices/"+id+"/telemetry", "-q", "1", "-m", `{"temp":21.5}`)...); err != nil {
		t.Fatalf("mosquitto_pub to its own topic: %v\n%s", err, out)
	}
	// mosquitto_sub says so and exits (with status 0) when its only
	// subscription is refused.
	out, err := runTool(t, "", mosqSub, append(mqtt(id), "-t", "devices/other-device/cmd/#", "-C", "1", "-W", "5")...)
	if !strings.Contains(out, "All subscription requests were denied") {
		t.Errorf("mosquitto_sub to another device's commands: %v %q, want the subscription denied", err, out)
	}
	// A publish to another device's topic: QoS 1 under MQTT 5 is answered
	// "not authorized" and counted as an authorization failure.
	runTool(t, "", mosqPub, append(mqtt(id), "-t", "devices/other-device/telemetry", "-q", "1", "-m", "spoof")...)
	_, body = api("GET", "/api/v1/devices/"+id+"/broker-metrics", "")
	var m struct {
		AuthorizationFailures int `json:"authorization_failures"`
		MessagesIn            int `json:"messages_in"`
	}
	if json.Unmarshal([]byte(body), &m); m.AuthorizationFailures < 2 || m.MessagesIn < 1 {
		t.Errorf("broker metrics %s: want the own publish counted and the two denials", body)
	}

	// The device stays connected, then is revoked.
	sub := exec.Command(mosqSub, append(mqtt(id), "-t", "devices/"+id+"/cmd/#")...)
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sub.Process.Kill(); sub.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(sessions(), `"device_id":"`+id+`"`) {
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto_sub did not connect: %s", sessions())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if status, body := api("POST", "/api/v1/devices/"+id+"/revoke", `{"reason":1}`); status != 200 {
		t.Fatalf("revoke = %d: %s", status, body)
	}
	revoked := time.Now()
	for strings.Contains(sessions(), `"device_id":"`+id+`"`) {
		if time.Since(revoked) > time.Second {
			t.Fatalf("the revoked device is still connected after a second: %s", sessions())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("revoked device disconnected within %v", time.Since(revoked).Round(time.Millisecond))
	if out, err := runTool(t, "", mosqPub, append(mqtt(id), "-t", "devices/"+id+"/telemetry", "-q", "1", "-m", "after")...); err == nil {
		t.Errorf("mosquitto_pub with the revoked certificate succeeded: %s", out)
	}

	// openssl reads the revocation in the CRL and from the OCSP responder.
	status, body = curlDo(t, curl, "--cacert", ca, "-o", file("crl.der"), base+"/pki/crl")
	if status != 200 {
		t.Fatalf("GET /pki/crl = %d", status)
	}
	serial, _ := runTool(t, "", openssl, "x509", "-in", file("device.crt"), "-noout", "-serial")
	serial = strings.TrimPrefix(strings.TrimSpace(serial), "serial=")
	if out, err := runTool(t, "", openssl, "crl", "-inform", "DER", "-in", file("crl.der"), "-noout", "-text"); err != nil ||
		!strings.Contains(strings.ToUpper(strings.ReplaceAll(out, ":", "")), strings.TrimLeft(serial, "0")) || !strings.Contains(out, "Key Compromise") {
		t.Errorf("openssl crl does not list serial %s as key compromise: %v\n%s", serial, err, out)
	}
	// The first certificate of the chain is the issuing intermediate.
	chainPEM, _ := os.ReadFile(file("chain.pem"))
	first := string(chainPEM)[:strings.Index(string(chainPEM), "-----END CERTIFICATE-----")+len("-----END CERTIFICATE-----")]
	os.WriteFile(file("issuer.pem"), []byte(first[strings.Index(first, "-----BEGIN"):]+"\n"), 0o600)
	if out, err := runTool(t, "", openssl, "ocsp", "-issuer", file("issuer.pem"), "-cert", file("device.crt"), "-reqout", file("ocsp.req")); err != nil {
		t.Fatalf("openssl ocsp -reqout: %v\n%s", err, out)
	}
	status, _ = curlDo(t, curl, "--cacert", ca, "-H", "Content-Type: application/ocsp-request", "--data-binary", "@"+file("ocsp.req"), "-o", file("ocsp.resp"), base+"/pki/ocsp")
	out, err = runTool(t, "", openssl, "ocsp", "-respin", file("ocsp.resp"), "-issuer", file("issuer.pem"), "-cert", file("device.crt"), "-CAfile", file("chain.pem"))
	if status != 200 || err != nil || !strings.Contains(out, "revoked") || !strings.Contains(out, "Response verify OK") {
		t.Errorf("openssl ocsp on the responder's answer (HTTP %d): %v\n%s", status, err, out)
	}
}

// TestAgentCommandEnrolsAndReportsToARealServer runs `fleetward serve` and
// `fleetward agent` as separate processes, as on a device: the agent
// enrols with its one-time token, connects, and what it reads of this
// machine (firmware, kernel, listening ports) reaches the inventory and
// its metrics the measurements. Restarted without a token, it reuses its
// stored certificate.
func TestAgentCommandEnrolsAndReportsToARealServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary; skipped with -short")
	}
	curl := requireTool(t, "curl", "curl")
	bin := buildBinary(t)
	data := t.TempDir()
	addr, mqttAddr := freeAddr(t), freeAddr(t)
	base := "https://" + addr
	srv := startServe(t, bin, data, addr, "--mqtt", mqttAddr, "--telemetry-interval", "500ms")
	t.Cleanup(func() {
		srv.Process.Signal(syscall.SIGTERM)
		srv.Wait()
	})
	ca := filepath.Join(data, "tls", "ca.crt")
	token := createToken(t, bin, data, "agent-e2e", "operator")
	api := func(method, path, body string) (int, string) {
		t.Helper()
		args := []string{"--cacert", ca, "-X", method, "-H", "Authorization: Bearer " + token, base + path}
		if body != "" {
			args = append(args, "-H", "Content-Type: application/json", "--data", body)
		}
		return curlDo(t, curl, args...)
	}
	const id = "gw-agent-1"
	if status, body := api("POST", "/api/v1/devices", `{"id":"`+id+`","name":"Agent gateway","class":"gateway"}`); status != 201 {
		t.Fatalf("register = %d: %s", status, body)
	}
	_, body := api("POST", "/api/v1/devices/"+id+"/enrollment-token", `{}`)
	var tok struct {
		Token string `json:"token"`
	}
	if json.Unmarshal([]byte(body), &tok); tok.Token == "" {
		t.Fatalf("no enrolment token: %s", body)
	}
	agentDir := filepath.Join(t.TempDir(), "agent")
	runAgent := func(args ...string) *exec.Cmd {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"agent", "--server", base, "--device-id", id, "--data", agentDir,
			"--mqtt", mqttAddr, "--ca-cert", ca, "--interval", "1s", "--firmware", "7.15.3"}, args...)...)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
			if t.Failed() {
				t.Logf("agent output:\n%s", out.String())
			}
		})
		return cmd
	}
	connected := func() bool {
		_, body := api("GET", "/api/v1/broker/sessions", "")
		return strings.Contains(body, `"device_id":"`+id+`"`)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("after 20 s: %s", what)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	first := runAgent("--token", tok.Token)
	waitFor("the agent is connected to the broker", connected)
	var dev struct {
		FirmwareVersion string            `json:"firmware_version"`
		Attributes      map[string]string `json:"attributes"`
	}
	waitFor("the agent's inventory report reaches the inventory", func() bool {
		_, body := api("GET", "/api/v1/devices/"+id, "")
		json.Unmarshal([]byte(body), &dev)
		return dev.FirmwareVersion == "7.15.3" && dev.Attributes["kernel"] != ""
	})
	waitFor("the agent's metrics and the broker's counts are measured", func() bool {
		_, body := api("GET", "/api/v1/devices/"+id+"/measurements?metric=established_tcp&metric=messages_in&window=1h", "")
		return strings.Contains(body, `"established_tcp"`) && strings.Contains(body, `"messages_in"`)
	})
	if info, err := os.Stat(agentDir); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("agent data directory mode = %v, %v; want 0700", info.Mode().Perm(), err)
	}

	first.Process.Signal(syscall.SIGTERM)
	first.Wait()
	waitFor("the stopped agent's session is gone", func() bool { return !connected() })
	runAgent() // no token: it must reuse what it stored
	waitFor("the restarted agent reconnects with its stored certificate", connected)
	_, body = api("GET", "/api/v1/devices/"+id+"/certificates", "")
	if n := strings.Count(body, `"serial"`); n != 1 {
		t.Errorf("the device has %d certificates after a restart, want 1: %s", n, body)
	}
}
