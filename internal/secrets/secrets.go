// Package secrets seals values at rest (device credentials, the ledger's
// signing key, operator TOTP seeds) with envelope encryption under one
// master key.
//
// Every value gets its own random 256-bit data key. The value is encrypted
// under the data key with AES-256-GCM; the data key is wrapped under the
// master key with AES-256-GCM. Both are bound to a context string (the
// setting name, "device:<id>/password", …) given to Seal and again to
// Open, so a sealed value copied into another row does not open there.
//
// A sealed value is one line of text:
//
//	fwsec1:<key id>:<base64url(wrap nonce | wrapped data key)>:<base64url(nonce | ciphertext)>
//
// where base64url is unpadded (RFC 4648 §5), the key id is the first 8 hex
// digits of SHA-256(master key), the data is encrypted with additional data
// = context, and the data key is wrapped with additional data =
// context + "\x00" + key id.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/fleetward/fleetward/internal/apperr"
)

// EnvMasterKey names the environment variable that, when set, holds the
// master key (standard or URL base64 of 32 bytes) and takes precedence over
// the key file.
const EnvMasterKey = "FLEETWARD_MASTER_KEY"

// KeyFile is the name of the master key file inside the data directory.
const KeyFile = "master.key"

// KeySize is the size of the master key and of each data key, in bytes.
const KeySize = 32

// prefix starts every sealed value and names the format version.
const prefix = "fwsec1"

// maxSealed bounds what Open parses: sealed values are settings and
// columns, not files.
const maxSealed = 16 << 20

// ErrWrongKey is returned (wrapped) by Open for a value sealed under a
// different master key than the keyring's.
var ErrWrongKey = errors.New("sealed under a different master key")

// ErrNotAuthentic is returned (wrapped) by Open when a value fails
// authentication: it was sealed for another context, or it was altered.
// The two cannot be told apart, by design of authenticated encryption.
var ErrNotAuthentic = errors.New("does not authenticate: wrong context, or the sealed value was altered")

// Keyring holds the master key. It is safe for concurrent use and never
// reveals the key.
type Keyring struct {
	master cipher.AEAD
	id     string
}

// New returns a keyring for a 32-byte master key.
func New(master []byte) (*Keyring, error) {
	if len(master) != KeySize {
		return nil, fmt.Errorf("master key is %d bytes, want %d", len(master), KeySize)
	}
	aead, err := newGCM(master)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(master)
	return &Keyring{master: aead, id: hex.EncodeToString(sum[:4])}, nil
}

// Load returns the keyring for the master key in $FLEETWARD_MASTER_KEY when
// that is set, and otherwise for the key in DIR/master.key, creating the
// file with 32 random bytes and mode 0600 on first use. It refuses a key
// file that its group or other users may read or write, since anyone who
// reads it can open every sealed secret.
func Load(dir string) (*Keyring, error) {
	if v, ok := os.LookupEnv(EnvMasterKey); ok {
		key, err := decodeKey(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvMasterKey, err)
		}
		return New(key)
	}
	if dir == "" {
		return nil, errors.New("load master key: no data directory and $" + EnvMasterKey + " is not set")
	}
	path := filepath.Join(dir, KeyFile)
	key, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = createKeyFile(dir, path)
	}
	if err != nil {
		return nil, err
	}
	return New(key)
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("master key file %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("master key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("master key file %s has mode %04o: it must not be accessible to group or others; "+
			"refusing to use it (fix with: chmod 600 %s)", path, perm, path)
	}
	buf, err := io.ReadAll(io.LimitReader(f, 256))
	if err != nil {
		return nil, fmt.Errorf("read master key file %s: %w", path, err)
	}
	if len(buf) == KeySize {
		return buf, nil
	}
	// An operator may have written the same base64 text as the variable.
	key, err := decodeKey(strings.TrimSpace(string(buf)))
	if err != nil {
		return nil, fmt.Errorf("master key file %s: want %d raw bytes or their base64: %w", path, KeySize, err)
	}
	return key, nil
}

func createKeyFile(dir, path string) ([]byte, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create master key: %w", err)
	}
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("create master key: %w", err)
	}
	// Write to a temporary file and link it into place, so a concurrent
	// first start either wins or reads the winner's complete key.
	tmp, err := os.CreateTemp(dir, ".master.key.*")
	if err != nil {
		return nil, fmt.Errorf("create master key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("create master key: %w", err)
	}
	if _, err := tmp.Write(key); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("create master key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("create master key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("create master key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readKeyFile(path)
		}
		return nil, fmt.Errorf("create master key %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return key, nil
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if key, err := enc.DecodeString(s); err == nil {
			if len(key) != KeySize {
				return nil, fmt.Errorf("decodes to %d bytes, want %d", len(key), KeySize)
			}
			return key, nil
		}
	}
	return nil, errors.New("not base64")
}

// KeyID identifies the master key: the first 8 hex digits of its SHA-256.
// It is safe to show and log.
func (k *Keyring) KeyID() string { return k.id }

// Seal encrypts plaintext for context under a fresh data key and returns
// the sealed text (see the package documentation for its format).
func (k *Keyring) Seal(plaintext []byte, context string) (string, error) {
	dataKey := make([]byte, KeySize)
	if _, err := rand.Read(dataKey); err != nil {
		return "", fmt.Errorf("seal %s: %w", context, err)
	}
	data, err := newGCM(dataKey)
	if err != nil {
		return "", fmt.Errorf("seal %s: %w", context, err)
	}
	body, err := sealWith(data, plaintext, []byte(context))
	if err != nil {
		return "", fmt.Errorf("seal %s: %w", context, err)
	}
	wrapped, err := sealWith(k.master, dataKey, k.wrapAAD(context))
	if err != nil {
		return "", fmt.Errorf("seal %s: %w", context, err)
	}
	enc := base64.RawURLEncoding
	return prefix + ":" + k.id + ":" + enc.EncodeToString(wrapped) + ":" + enc.EncodeToString(body), nil
}

// Open decrypts a value sealed by Seal for the same context. A malformed
// value is an apperr Invalid error on field "sealed"; a value sealed under
// another master key wraps ErrWrongKey; a value sealed for another context
// or altered in any byte wraps ErrNotAuthentic.
func (k *Keyring) Open(sealed, context string) ([]byte, error) {
	if len(sealed) > maxSealed {
		return nil, apperr.InvalidField("sealed", "is %d bytes, more than the %d allowed", len(sealed), maxSealed)
	}
	parts := strings.Split(sealed, ":")
	if len(parts) != 4 || parts[0] != prefix {
		return nil, apperr.InvalidField("sealed", "is not a %s sealed value (want %s:<key id>:<wrapped key>:<ciphertext>)", prefix, prefix)
	}
	if parts[1] != k.id {
		return nil, fmt.Errorf("open %s: %w (key %q, this keyring holds key %q)", context, ErrWrongKey, parts[1], k.id)
	}
	enc := base64.RawURLEncoding
	wrapped, err := enc.DecodeString(parts[2])
	if err != nil {
		return nil, apperr.InvalidField("sealed", "wrapped key is not unpadded base64url: %v", err)
	}
	body, err := enc.DecodeString(parts[3])
	if err != nil {
		return nil, apperr.InvalidField("sealed", "ciphertext is not unpadded base64url: %v", err)
	}
	dataKey, err := openWith(k.master, wrapped, k.wrapAAD(context))
	if err != nil {
		return nil, fmt.Errorf("open %s: data key %w", context, err)
	}
	if len(dataKey) != KeySize {
		return nil, fmt.Errorf("open %s: data key is %d bytes: %w", context, len(dataKey), ErrNotAuthentic)
	}
	data, err := newGCM(dataKey)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", context, err)
	}
	plaintext, err := openWith(data, body, []byte(context))
	if err != nil {
		return nil, fmt.Errorf("open %s: value %w", context, err)
	}
	return plaintext, nil
}

func (k *Keyring) wrapAAD(context string) []byte {
	return []byte(context + "\x00" + k.id)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// sealWith returns nonce | ciphertext.
func sealWith(aead cipher.AEAD, plaintext, aad []byte) ([]byte, error) {
	out := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		return nil, err
	}
	return aead.Seal(out, out, plaintext, aad), nil
}

func openWith(aead cipher.AEAD, sealed, aad []byte) ([]byte, error) {
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("is truncated: %w", ErrNotAuthentic)
	}
	n := aead.NonceSize()
	out, err := aead.Open(nil, sealed[:n], sealed[n:], aad)
	if err != nil {
		return nil, ErrNotAuthentic
	}
	return out, nil
}
