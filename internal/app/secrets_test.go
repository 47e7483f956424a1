package app_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/app"
	"github.com/fleetward/fleetward/internal/auth"
	"github.com/fleetward/fleetward/internal/inventory"
)

// TestSecretsNeverReachTheDatabaseFileInClear stores a TOTP seed, a device
// credential and an API token through the real services, closes the
// database, and searches every file of the data directory (the SQLite file
// and its WAL included) for each secret's bytes.
func TestSecretsNeverReachTheDatabaseFileInClear(t *testing.T) {
	dir := t.TempDir()
	ctx := actor.With(context.Background(), actor.Actor{Name: "test"})
	c, err := app.OpenCore(ctx, app.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Auth.CreateOperator(ctx, "root-admin", "a very long admin passphrase", auth.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	enrol, err := c.Auth.EnrollTOTP(ctx, "root-admin")
	if err != nil {
		t.Fatal(err)
	}
	const community = "s3cret-snmp-community-4711"
	const camPassword = "camera-admin-password-0815"
	dev, err := c.Inventory.CreateDevice(ctx, inventory.Device{
		Name: "loading dock camera", Class: "camera",
		Secrets: map[string]string{"snmp_community": community, "admin_password": camPassword},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.Inventory.DeviceSecret(ctx, dev.ID, "snmp_community"); err != nil || got != community {
		t.Fatalf("DeviceSecret = %q, %v; want the stored value back", got, err)
	}
	token, _, err := c.Auth.CreateToken(ctx, "grep-test", auth.RoleAuditor, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	secrets := map[string]string{
		"TOTP secret":         enrol.Secret,
		"SNMP community":      community,
		"camera password":     camPassword,
		"API token":           token,
		"admin password":      "a very long admin passphrase",
		"first recovery code": enrol.RecoveryCodes[0],
	}
	files, control := 0, false
	err = filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		// A positive control: plain device data is found, so the search
		// does see what the database holds.
		control = control || bytes.Contains(raw, []byte("loading dock camera"))
		for what, s := range secrets {
			if bytes.Contains(raw, []byte(s)) {
				t.Errorf("%s found in clear in %s", what, path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !control {
		t.Fatal("the device name was not found in any file either: the search proves nothing")
	}
	if _, err := os.Stat(filepath.Join(dir, "fleetward.db")); err != nil || files < 2 {
		t.Fatalf("searched %d files; the database file must be among them: %v", files, err)
	}
}
