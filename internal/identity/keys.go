package identity

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"

	"github.com/fleetward/fleetward/internal/apperr"
)

// generateKey makes a CA key of the named algorithm.
func generateKey(alg string) (crypto.Signer, error) {
	switch alg {
	case ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case Ed25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	case RSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	}
	return nil, apperr.InvalidField("key_algorithm", "%q is not one of %s, %s, %s", alg, ECDSAP256, Ed25519, RSA3072)
}

// checkPublicKey accepts the key types fleetward issues certificates for:
// ECDSA P-256 or P-384, Ed25519, RSA of at least 2048 bits. It returns an
// Invalid error naming field otherwise.
func checkPublicKey(field string, pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return apperr.InvalidField(field, "ECDSA curve %s is not allowed; use P-256 or P-384", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return apperr.InvalidField(field, "Ed25519 key is %d bytes, want %d", len(k), ed25519.PublicKeySize)
		}
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return apperr.InvalidField(field, "RSA key is %d bits; at least 2048 are required", k.N.BitLen())
		}
	case nil:
		return apperr.InvalidField(field, "is missing or of an unsupported type")
	default:
		return apperr.InvalidField(field, "key type %T is not allowed; use ECDSA P-256/P-384, Ed25519 or RSA ≥ 2048", pub)
	}
	return nil
}

// samePublicKey reports whether a and b are the same key.
func samePublicKey(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// EncodeKeyPEM encodes a private key as a PKCS#8 "PRIVATE KEY" PEM block.
func EncodeKeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseKeyPEM decodes a PEM private key (PKCS#8, or the older EC and
// PKCS#1 forms). Returns an Invalid error naming "root_key" if it cannot.
func ParseKeyPEM(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, apperr.InvalidField("root_key", "is not PEM")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, apperr.InvalidField("root_key", "PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, apperr.InvalidField("root_key", "cannot be parsed: %v", err)
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, apperr.InvalidField("root_key", "key type %T cannot sign", key)
	}
	return s, nil
}

// EncodeCertsPEM encodes certificates as concatenated "CERTIFICATE" blocks.
func EncodeCertsPEM(certs ...*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}

// newSerial returns a random, positive 128-bit serial number.
func newSerial() (*big.Int, error) {
	var b [16]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("serial number: %w", err)
		}
		n := new(big.Int).SetBytes(b[:])
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

// SerialString is how fleetward writes a serial number: lowercase hex,
// without separators or leading zeros.
func SerialString(n *big.Int) string { return n.Text(16) }

// ParseSerial reads a serial number in hex, with or without ':' separators
// or a "0x" prefix. Returns an Invalid error naming "serial".
func ParseSerial(s string) (*big.Int, error) {
	t := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), ":", ""))
	t = strings.TrimPrefix(t, "0x")
	if t == "" || len(t) > 40 {
		return nil, apperr.InvalidField("serial", "must be 1 to 40 hex digits")
	}
	n, ok := new(big.Int).SetString(t, 16)
	if !ok || n.Sign() <= 0 {
		return nil, apperr.InvalidField("serial", "%q is not a positive hex number", s)
	}
	return n, nil
}

var errNotInitialized = apperr.Errorf(apperr.Conflict, "the certificate authority is not initialized; run `fleetward ca init`")
