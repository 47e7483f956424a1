package agent

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/fleetward/fleetward/internal/identity"
)

// The files of a Keystore, inside its directory.
const (
	keyFile   = "device.key" // PKCS#8 PEM, the device's private key
	certFile  = "device.crt" // PEM, the device certificate
	chainFile = "ca.crt"     // PEM, the CA chain from /cacerts, intermediates first, root last
	// The EST server trust given at enrolment, kept so that renewal after
	// a restart still trusts a server whose certificate is not from the CA.
	serverCAFile = "est-server-ca.crt" // PEM, from --ca-cert
	serverFPFile = "est-server.sha256" // hex, from --server-fingerprint
)

// Keystore keeps the device's private key, its certificate and the CA chain
// in a directory only the agent's user can read (0700, files 0600). The key
// is made here and never leaves the device. Files are replaced atomically,
// so a crash leaves the old or the new version, never half of one.
type Keystore struct {
	dir string
}

// OpenKeystore opens dir as a keystore, creating it with mode 0700. An
// existing directory is tightened to 0700.
func OpenKeystore(dir string) (*Keystore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open keystore %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open keystore %s: %w", dir, err)
	}
	return &Keystore{dir: dir}, nil
}

// Dir returns the keystore's directory.
func (k *Keystore) Dir() string { return k.dir }

// Key returns the stored private key, making and storing a new ECDSA P-256
// key if there is none.
func (k *Keystore) Key() (crypto.Signer, error) {
	path := filepath.Join(k.dir, keyFile)
	data, err := os.ReadFile(path)
	if err == nil {
		key, err := identity.ParseKeyPEM(data)
		if err != nil {
			return nil, fmt.Errorf("read device key %s: %w", path, err)
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read device key: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate device key: %w", err)
	}
	pemKey, err := identity.EncodeKeyPEM(key)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(path, pemKey, 0o600); err != nil {
		return nil, fmt.Errorf("store device key: %w", err)
	}
	return key, nil
}

// HasCertificate reports whether a device certificate is stored.
func (k *Keystore) HasCertificate() bool {
	_, err := os.Stat(filepath.Join(k.dir, certFile))
	return err == nil
}

// SaveChain stores the CA chain (intermediates first, root last).
func (k *Keystore) SaveChain(chain []*x509.Certificate) error {
	if err := writeFileAtomic(filepath.Join(k.dir, chainFile), identity.EncodeCertsPEM(chain...), 0o600); err != nil {
		return fmt.Errorf("store CA chain: %w", err)
	}
	return nil
}

// Chain returns the stored CA chain.
func (k *Keystore) Chain() ([]*x509.Certificate, error) {
	certs, err := readCertsPEM(filepath.Join(k.dir, chainFile))
	if err != nil {
		return nil, fmt.Errorf("read CA chain: %w", err)
	}
	return certs, nil
}

// SaveServerTrust stores the anchors the EST server was trusted with at
// enrolment: the PEM of the given CA file (if any) and the pinned
// fingerprint (if any).
func (k *Keystore) SaveServerTrust(caPEM []byte, fingerprint []byte) error {
	if len(caPEM) > 0 {
		if err := writeFileAtomic(filepath.Join(k.dir, serverCAFile), caPEM, 0o600); err != nil {
			return fmt.Errorf("store EST server CA: %w", err)
		}
	}
	if len(fingerprint) > 0 {
		if err := writeFileAtomic(filepath.Join(k.dir, serverFPFile), []byte(hex.EncodeToString(fingerprint)+"\n"), 0o600); err != nil {
			return fmt.Errorf("store EST server fingerprint: %w", err)
		}
	}
	return nil
}

// ServerTrust returns the EST server anchors stored at enrolment; missing
// files leave their part empty.
func (k *Keystore) ServerTrust() (caPEM []byte, fingerprint []byte) {
	caPEM, _ = os.ReadFile(filepath.Join(k.dir, serverCAFile))
	if b, err := os.ReadFile(filepath.Join(k.dir, serverFPFile)); err == nil {
		fingerprint, _ = ParseFingerprint(string(b))
	}
	return caPEM, fingerprint
}

// SaveCertificate stores the device certificate.
func (k *Keystore) SaveCertificate(cert *x509.Certificate) error {
	if err := writeFileAtomic(filepath.Join(k.dir, certFile), identity.EncodeCertsPEM(cert), 0o600); err != nil {
		return fmt.Errorf("store device certificate: %w", err)
	}
	return nil
}

// Certificate returns the stored device certificate with its key and the
// intermediates of the stored chain, ready for a TLS client, and fails if
// the certificate is not for the stored key.
func (k *Keystore) Certificate() (*tls.Certificate, error) {
	certs, err := readCertsPEM(filepath.Join(k.dir, certFile))
	if err != nil {
		return nil, fmt.Errorf("read device certificate: %w", err)
	}
	key, err := k.Key()
	if err != nil {
		return nil, err
	}
	chain, err := k.Chain()
	if err != nil {
		return nil, err
	}
	return tlsCertificate(certs[0], key, chain)
}

// tlsCertificate bundles a device certificate with its key and the
// intermediates of chain (the root is left out; the peer has it).
func tlsCertificate(leaf *x509.Certificate, key crypto.Signer, chain []*x509.Certificate) (*tls.Certificate, error) {
	if pub, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(key.Public()) {
		return nil, fmt.Errorf("device certificate %s is not for the stored key", identity.SerialString(leaf.SerialNumber))
	}
	tc := &tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}
	for _, c := range chain {
		if !isSelfSigned(c) {
			tc.Certificate = append(tc.Certificate, c.Raw)
		}
	}
	return tc, nil
}

func isSelfSigned(c *x509.Certificate) bool {
	return c.IsCA && c.CheckSignatureFrom(c) == nil
}

// readCertsPEM reads every CERTIFICATE block of a PEM file; it fails if
// there is none.
func readCertsPEM(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseCertsPEM(path, data)
}

func parseCertsPEM(name string, data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate", name)
	}
	return certs, nil
}
