package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/app"
)

func TestClassPolicyFileErrorsNameTheClassAndField(t *testing.T) {
	for _, c := range []struct{ name, doc, want string }{
		{"not JSON", `classes: {}`, "not a class policy document"},
		{"an unknown field", `{"classes":{"plc":{"legacy":true}}}`, `unknown field "legacy"`},
		{"a bad topic filter", `{"classes":{"plc":{"publish":["devices/{device}/#/x"]}}}`, "classes.plc"},
		{"a lifetime that is not a duration", `{"classes":{"camera":{"certificate_lifetime":"30 days"}}}`, "classes.camera.certificate_lifetime"},
		{"a lifetime over 398 days", `{"classes":{"camera":{"certificate_lifetime":"10000h"}}}`, "outside 1h to 398 days"},
		{"an empty class name", `{"classes":{"":{}}}`, "is not a class name"},
		{"two documents", `{"classes":{}} {}`, "data after"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := app.ParseClassPolicies([]byte(c.doc))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("ParseClassPolicies(%s) = %v, want an error containing %q", c.doc, err, c.want)
			}
		})
	}
	if _, err := app.ParseClassPolicies([]byte(`{"classes":{"plc":{"legacy_tls":true,"certificate_lifetime":"168h","publish":["devices/{device}/telemetry","plant/{device}/#"]}}}`)); err != nil {
		t.Fatalf("a good document was refused: %v", err)
	}
}

func TestClassPolicyFileSetsTheCertificateLifetimeOfAClass(t *testing.T) {
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.json")
	os.WriteFile(policy, []byte(`{"classes":{"sensor":{"certificate_lifetime":"168h"}}}`), 0o600)
	ctx := actor.With(context.Background(), actor.Actor{Name: "test"})
	s, err := app.Start(ctx, app.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", ClassPolicyFile: policy, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	for class, want := range map[string]time.Duration{"sensor": 7 * 24 * time.Hour, "camera": 30 * 24 * time.Hour} {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: class + "-1"}}, key)
		csr, _ := x509.ParseCertificateRequest(der)
		cert, err := s.CA.IssueDevice(ctx, class+"-1", class, csr)
		if err != nil {
			t.Fatal(err)
		}
		if got := time.Until(cert.NotAfter); got < want-time.Hour || got > want+time.Hour {
			t.Errorf("%s certificate lives %v, want about %v", class, got.Round(time.Hour), want)
		}
	}
	if _, err := app.Start(ctx, app.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", ClassPolicyFile: filepath.Join(dir, "missing.json")}); err == nil || !strings.Contains(err.Error(), "--class-policy") {
		t.Fatalf("Start with a missing policy file = %v, want an error naming --class-policy", err)
	}
}
