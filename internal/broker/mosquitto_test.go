package broker

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// These tests drive the broker with Debian's mosquitto_pub and mosquitto_sub
// over mutual TLS, as a device would.

func TestMosquittoDevicePublishesOwnTelemetryAndItIsDelivered(t *testing.T) {
	needTool(t, "mosquitto_pub")
	needTool(t, "mosquitto_sub")
	tb := startBroker(t, nil)
	devA := tb.ca.device("dev-a", "sensor")
	backend := tb.ca.device("backend-1", "backend")

	sub := exec.Command("mosquitto_sub", append(tb.mosqArgs(backend, "backend-1"),
		"-t", "devices/dev-a/telemetry", "-q", "1", "-C", "1", "-W", "10")...)
	var out bytes.Buffer
	sub.Stdout, sub.Stderr = &out, &out
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sub.Wait() }()

	// Publish until the subscriber, whose SUBSCRIBE may not have arrived
	// yet, gets a message.
	for i := 0; ; i++ {
		if o, err := run(t, 5*time.Second, "mosquitto_pub", append(tb.mosqArgs(devA, "dev-a"),
			"-t", "devices/dev-a/telemetry", "-q", "1", "-m", "temp=21.5")...); err != nil {
			t.Fatalf("mosquitto_pub to own topic: %v: %s", err, o)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("mosquitto_sub: %v: %s", err, out.String())
			}
			if got := strings.TrimSpace(out.String()); got != "temp=21.5" {
				t.Fatalf("subscriber got %q, want temp=21.5", got)
			}
			m, _ := tb.Metrics("dev-a")
			if m.MessagesIn == 0 || m.BytesIn == 0 || m.ConnectAttempts == 0 || m.LastSourceIP != "127.0.0.1" {
				t.Errorf("dev-a metrics not counted: %+v", m)
			}
			// mochi calls OnPacketSent after the write, so mosquitto_sub
			// can have the message and exit before the count is taken.
			if !eventually(2*time.Second, func() bool { mb, _ := tb.Metrics("backend-1"); return mb.MessagesOut > 0 }) {
				mb, _ := tb.Metrics("backend-1")
				t.Errorf("backend-1 delivery not counted: %+v", mb)
			}
			return
		case <-time.After(300 * time.Millisecond):
		}
		if i == 20 {
			t.Fatalf("subscriber received nothing after %d publishes: %s", i, out.String())
		}
	}
}

func TestMosquittoPublishToAnotherDevicesTopicIsDeniedAndNotDelivered(t *testing.T) {
	needTool(t, "mosquitto_pub")
	needTool(t, "mosquitto_sub")
	tb := startBroker(t, nil)
	devA := tb.ca.device("dev-a", "sensor")
	tb.ca.device("dev-b", "sensor")
	backend := tb.ca.device("backend-1", "backend")

	sub := exec.Command("mosquitto_sub", append(tb.mosqArgs(backend, "backend-1"),
		"-t", "devices/dev-b/telemetry", "-q", "1", "-C", "1", "-W", "3")...)
	var out bytes.Buffer
	sub.Stdout, sub.Stderr = &out, &out
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	if !eventually(3*time.Second, func() bool { return len(tb.Sessions()) == 1 }) {
		t.Fatal("subscriber did not connect")
	}
	time.Sleep(200 * time.Millisecond) // let SUBSCRIBE arrive
	if o, err := run(t, 5*time.Second, "mosquitto_pub", append(tb.mosqArgs(devA, "dev-a"),
		"-t", "devices/dev-b/telemetry", "-q", "0", "-m", "spoofed")...); err != nil {
		t.Fatalf("mosquitto_pub: %v: %s", err, o)
	}
	_ = sub.Wait()
	if strings.Contains(out.String(), "spoofed") {
		t.Fatalf("denied publish was delivered: %s", out.String())
	}
	ev := tb.events.waitEvent(t, EventPublishDenied, "dev-a", "devices/dev-b/telemetry")
	if ev.Actor != "device:dev-a" || ev.ID == "" || ev.Time.IsZero() {
		t.Errorf("event fields: %+v", ev)
	}
	if m, _ := tb.Metrics("dev-a"); m.AuthorizationFailures != 1 || m.MessagesIn != 0 {
		t.Errorf("dev-a metrics: %+v, want 1 authorization failure and 0 messages in", m)
	}
}

func TestMosquittoSubscribeToAnotherDevicesCommandsIsDenied(t *testing.T) {
	needTool(t, "mosquitto_sub")
	tb := startBroker(t, nil)
	devA := tb.ca.device("dev-a", "sensor")
	o, _ := run(t, 10*time.Second, "mosquitto_sub", append(tb.mosqArgs(devA, "dev-a"),
		"-t", "devices/dev-b/cmd/#", "-q", "1", "-C", "1", "-W", "2")...)
	tb.events.waitEvent(t, EventSubscribeDenied, "dev-a", "devices/dev-b/cmd/#")
	if m, _ := tb.Metrics("dev-a"); m.AuthorizationFailures != 1 {
		t.Errorf("dev-a metrics: %+v, want 1 authorization failure (mosquitto_sub said %q)", m, o)
	}
}

func TestMosquittoClientIDOtherThanCertificateIsRefused(t *testing.T) {
	needTool(t, "mosquitto_pub")
	for _, version := range []string{"mqttv311", "mqttv5"} {
		t.Run(version, func(t *testing.T) {
			tb := startBroker(t, nil)
			devA := tb.ca.device("dev-a", "sensor")
			args := append(tb.mosqArgs(devA, "dev-b"), "-V", version, "-t", "devices/dev-b/telemetry", "-m", "x")
			o, err := run(t, 5*time.Second, "mosquitto_pub", args...)
			if err == nil || !strings.Contains(strings.ToLower(o), "not authori") {
				t.Fatalf("mosquitto_pub with client id dev-b and dev-a's certificate: err=%v output=%q, want refusal 'not authorised'", err, o)
			}
			tb.events.waitEvent(t, EventConnectDenied, "dev-a", "client id does not match")
			if m, _ := tb.Metrics("dev-a"); m.AuthorizationFailures != 1 || m.ConnectAttempts != 1 {
				t.Errorf("dev-a metrics: %+v", m)
			}
		})
	}
}

func TestMosquittoWithoutClientCertificateIsRefused(t *testing.T) {
	needTool(t, "mosquitto_pub")
	tb := startBroker(t, nil)
	o, err := run(t, 5*time.Second, "mosquitto_pub", append(tb.mosqArgs(issued{}, "dev-a"),
		"-t", "devices/dev-a/telemetry", "-m", "x")...)
	if err == nil {
		t.Fatalf("mosquitto_pub without a client certificate succeeded: %s", o)
	}
	tb.events.waitEvent(t, EventConnectDenied, "", "tls handshake")
	if len(tb.Sessions()) != 0 {
		t.Errorf("sessions: %+v", tb.Sessions())
	}
}

func TestMosquittoRevokedDeviceIsDroppedWithinOneSecondAndRefusedOnReconnect(t *testing.T) {
	needTool(t, "mosquitto_pub")
	needTool(t, "mosquitto_sub")
	tb := startBroker(t, nil)
	dev := tb.ca.device("dev-r", "sensor")

	sub := exec.Command("mosquitto_sub", append(tb.mosqArgs(dev, "dev-r"), "-t", "devices/dev-r/cmd/#", "-q", "1")...)
	var out bytes.Buffer
	sub.Stdout, sub.Stderr = &out, &out
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Process.Kill(); _ = sub.Wait() })
	if !eventually(3*time.Second, func() bool { return len(tb.Sessions()) == 1 }) {
		t.Fatalf("mosquitto_sub did not connect: %s", out.String())
	}

	tb.ca.revoke(dev.leaf.SerialNumber)
	start := time.Now()
	tb.Disconnect("dev-r")
	if !eventually(time.Second, func() bool { return len(tb.Sessions()) == 0 }) {
		t.Fatalf("session still live 1 s after Disconnect: %+v", tb.Sessions())
	}
	t.Logf("session dropped after %v", time.Since(start))
	// mosquitto_sub reconnects on its own; that attempt must be refused.
	tb.events.waitEvent(t, EventConnectDenied, "dev-r", "certificate revoked")

	o, err := run(t, 5*time.Second, "mosquitto_pub", append(tb.mosqArgs(dev, "dev-r"),
		"-t", "devices/dev-r/telemetry", "-m", "x")...)
	if err == nil || !strings.Contains(o, "not authori") {
		t.Fatalf("reconnect with revoked certificate: err=%v output=%q, want refusal", err, o)
	}
	if m, _ := tb.Metrics("dev-r"); m.Disconnects == 0 || m.AuthorizationFailures == 0 {
		t.Errorf("dev-r metrics: %+v", m)
	}
}
