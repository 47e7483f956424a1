package secrets

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetward/fleetward/internal/apperr"
)

func newKeyring(t testing.TB) *Keyring {
	t.Helper()
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	k, err := New(key)
	if err != nil {
		t.Fatalf("new keyring: %v", err)
	}
	return k
}

func TestSealedValuesOpenOnlyWithTheirKeyAndContext(t *testing.T) {
	k := newKeyring(t)
	other := newKeyring(t)
	secret := []byte("mqtt password: hunter2")
	sealed, err := k.Seal(secret, "device:cam-1/password")
	if err != nil {
		t.Fatalf("seal: %v", err)
	}
	if !strings.HasPrefix(sealed, "fwsec1:"+k.KeyID()+":") {
		t.Fatalf("sealed value %q does not start with the format and key id", sealed)
	}
	if bytes.Contains([]byte(sealed), secret) {
		t.Fatal("sealed value contains the plaintext")
	}
	again, _ := k.Seal(secret, "device:cam-1/password")
	if again == sealed {
		t.Fatal("sealing twice gave the same text: data keys or nonces are reused")
	}

	tests := []struct {
		name    string
		keyring *Keyring
		sealed  string
		context string
		wantErr error // nil: opens to secret
		code    apperr.Code
	}{
		{name: "the same key and context open the value", keyring: k, sealed: sealed, context: "device:cam-1/password"},
		{name: "another context does not open it", keyring: k, sealed: sealed, context: "device:cam-2/password", wantErr: ErrNotAuthentic},
		{name: "another master key does not open it", keyring: other, sealed: sealed, context: "device:cam-1/password", wantErr: ErrWrongKey},
		{name: "another master key claiming this key id does not open it", keyring: other,
			sealed: strings.Replace(sealed, k.KeyID(), other.KeyID(), 1), context: "device:cam-1/password", wantErr: ErrNotAuthentic},
		{name: "an empty string is malformed", keyring: k, sealed: "", context: "c", code: apperr.Invalid},
		{name: "a value of another format is malformed", keyring: k, sealed: "fwsec2:" + strings.TrimPrefix(sealed, "fwsec1:"), context: "c", code: apperr.Invalid},
		{name: "broken base64 is malformed", keyring: k, sealed: "fwsec1:" + k.KeyID() + ":!!:AAAA", context: "c", code: apperr.Invalid},
		{name: "a truncated ciphertext does not authenticate", keyring: k, sealed: sealed[:len(sealed)-32], context: "device:cam-1/password", wantErr: ErrNotAuthentic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.keyring.Open(tt.sealed, tt.context)
			switch {
			case tt.wantErr == nil && tt.code == "":
				if err != nil || !bytes.Equal(got, secret) {
					t.Fatalf("open = %q, %v; want the secret", got, err)
				}
			case tt.code != "":
				if !apperr.Is(err, tt.code) {
					t.Fatalf("open error = %v; want code %s", err, tt.code)
				}
			default:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("open error = %v; want %v", err, tt.wantErr)
				}
			}
		})
	}
}

func TestEveryAlteredByteIsDetected(t *testing.T) {
	k := newKeyring(t)
	sealed, err := k.Seal([]byte("a 32-byte value to tamper with!!"), "ctx")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(sealed, ":")
	for _, field := range []int{2, 3} {
		raw, _ := base64.RawURLEncoding.DecodeString(parts[field])
		for i := range raw {
			altered := bytes.Clone(raw)
			altered[i] ^= 0x01
			p := append([]string(nil), parts...)
			p[field] = base64.RawURLEncoding.EncodeToString(altered)
			if _, err := k.Open(strings.Join(p, ":"), "ctx"); !errors.Is(err, ErrNotAuthentic) {
				t.Fatalf("flipping byte %d of part %d: open error = %v, want ErrNotAuthentic", i, field, err)
			}
		}
	}
}

func TestNewRejectsKeysOfTheWrongSize(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := New(make([]byte, n)); err == nil {
			t.Errorf("New accepted a %d-byte key", n)
		}
	}
}

func TestLoad(t *testing.T) {
	t.Run("a missing key file is created with mode 0600 and reused", func(t *testing.T) {
		t.Setenv(EnvMasterKey, "")
		os.Unsetenv(EnvMasterKey)
		dir := filepath.Join(t.TempDir(), "data")
		k1, err := Load(dir)
		if err != nil {
			t.Fatalf("first load: %v", err)
		}
		fi, err := os.Stat(filepath.Join(dir, KeyFile))
		if err != nil {
			t.Fatalf("key file: %v", err)
		}
		if fi.Mode().Perm() != 0o600 || fi.Size() != KeySize {
			t.Fatalf("key file mode %v size %d, want 0600 and %d bytes", fi.Mode().Perm(), fi.Size(), KeySize)
		}
		sealed, err := k1.Seal([]byte("x"), "c")
		if err != nil {
			t.Fatal(err)
		}
		k2, err := Load(dir)
		if err != nil {
			t.Fatalf("second load: %v", err)
		}
		if k2.KeyID() != k1.KeyID() {
			t.Fatalf("second load has key %s, first %s", k2.KeyID(), k1.KeyID())
		}
		if got, err := k2.Open(sealed, "c"); err != nil || string(got) != "x" {
			t.Fatalf("reloaded keyring cannot open: %q, %v", got, err)
		}
	})
	t.Run("a key file readable by others is refused with the reason", func(t *testing.T) {
		t.Setenv(EnvMasterKey, "")
		os.Unsetenv(EnvMasterKey)
		dir := t.TempDir()
		path := filepath.Join(dir, KeyFile)
		if err := os.WriteFile(path, make([]byte, KeySize), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(dir)
		if err == nil || !strings.Contains(err.Error(), "0644") || !strings.Contains(err.Error(), "chmod 600") {
			t.Fatalf("load error = %v; want a refusal naming the mode and the fix", err)
		}
	})
	t.Run("the environment variable overrides the key file", func(t *testing.T) {
		dir := t.TempDir()
		t.Setenv(EnvMasterKey, "")
		os.Unsetenv(EnvMasterKey)
		fromFile, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		key := bytes.Repeat([]byte{7}, KeySize)
		t.Setenv(EnvMasterKey, base64.StdEncoding.EncodeToString(key))
		fromEnv, err := Load(dir)
		if err != nil {
			t.Fatalf("load with env: %v", err)
		}
		want, _ := New(key)
		if fromEnv.KeyID() != want.KeyID() || fromEnv.KeyID() == fromFile.KeyID() {
			t.Fatalf("env keyring id %s, want %s (file key %s)", fromEnv.KeyID(), want.KeyID(), fromFile.KeyID())
		}
	})
	t.Run("a malformed environment variable is an error naming it", func(t *testing.T) {
		t.Setenv(EnvMasterKey, base64.StdEncoding.EncodeToString([]byte("short")))
		if _, err := Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), EnvMasterKey) {
			t.Fatalf("load error = %v; want one naming %s", err, EnvMasterKey)
		}
	})
}

func FuzzOpen(f *testing.F) {
	k, err := New(bytes.Repeat([]byte{1}, KeySize))
	if err != nil {
		f.Fatal(err)
	}
	sealed, _ := k.Seal([]byte("seed"), "ctx")
	f.Add(sealed, "ctx")
	f.Add(sealed, "other")
	f.Add("fwsec1:"+k.KeyID()+"::", "ctx")
	f.Add("fwsec1:"+k.KeyID()+":AAAA:AAAA", "")
	f.Add(":::", "")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, sealed, context string) {
		if _, err := k.Open(sealed, context); err == nil && !strings.HasPrefix(sealed, "fwsec1:") {
			t.Fatalf("opened a value without the format prefix: %q", sealed)
		}
		again, err := k.Seal([]byte(sealed), context)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := k.Open(again, context); err != nil || string(got) != sealed {
			t.Fatalf("round trip of %q under context %q: %q, %v", sealed, context, got, err)
		}
	})
}
