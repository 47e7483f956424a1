package app

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/fleetward/fleetward/internal/identity"
)

// serverCertificate loads the certificate of fleetward's own HTTPS and
// MQTT listeners from dir/tls, or has the CA issue a new one (ECDSA P-256,
// key made here) for the host names the server answers to. It is replaced
// when it expires within 30 days, lacks one of the hosts, or does not chain
// to the CA's root (a self-signed certificate of an older version). It
// writes tls/server.crt (leaf and issuing intermediate), tls/server.key
// (0600) and tls/ca.crt (the root: what clients trust).
func serverCertificate(ctx context.Context, ca *identity.CA, dir string, hosts []string, now time.Time) (tls.Certificate, string, error) {
	tdir := filepath.Join(dir, "tls")
	certPath, keyPath, rootPath := filepath.Join(tdir, "server.crt"), filepath.Join(tdir, "server.key"), filepath.Join(tdir, "ca.crt")
	chain, err := ca.Chain(ctx)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("server certificate: %w", err)
	}
	root := chain[len(chain)-1]
	roots := x509.NewCertPool()
	roots.AddCert(root)
	intermediates := x509.NewCertPool()
	for _, c := range chain[:len(chain)-1] {
		intermediates.AddCert(c)
	}
	if err := os.MkdirAll(tdir, 0o700); err != nil {
		return tls.Certificate{}, "", fmt.Errorf("server certificate: %w", err)
	}
	if err := writeFileAtomic(rootPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw}), 0o644); err != nil {
		return tls.Certificate{}, "", fmt.Errorf("server certificate: %w", err)
	}
	if cert, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil {
		leaf := cert.Leaf
		if leaf != nil && now.Add(30*24*time.Hour).Before(leaf.NotAfter) && coversHosts(leaf, hosts) {
			_, verr := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: intermediates, CurrentTime: now,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
			if verr == nil {
				return cert, fingerprint(leaf.Raw), nil
			}
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("server certificate: %w", err)
	}
	leaf, err := ca.IssueServer(ctx, hosts, &key.PublicKey)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("server certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("server certificate: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw})
	for _, c := range chain[:len(chain)-1] {
		if bytes.Equal(c.RawSubject, leaf.RawIssuer) {
			certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
			break
		}
	}
	if err := writeFileAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return tls.Certificate{}, "", fmt.Errorf("server certificate: %w", err)
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return tls.Certificate{}, "", fmt.Errorf("server certificate: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("server certificate: %w", err)
	}
	return cert, fingerprint(leaf.Raw), nil
}

// writeFileAtomic replaces path with data through a temporary file, so a
// crash never leaves a half-written certificate or key.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func coversHosts(c *x509.Certificate, hosts []string) bool {
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(c.IPAddresses, ip.Equal) {
				return false
			}
		} else if h != "" && !slices.Contains(c.DNSNames, h) {
			return false
		}
	}
	return true
}

func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// certHosts are the names the server certificate covers: loopback, this
// machine's hostname and the host parts of the listen addresses.
func certHosts(listen ...string) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if h, err := os.Hostname(); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	for _, l := range listen {
		if h, _, err := net.SplitHostPort(l); err == nil && h != "" && h != "0.0.0.0" && h != "::" && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	return hosts
}
