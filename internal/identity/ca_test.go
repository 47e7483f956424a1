package identity

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/store/storetest"
)

func TestIssuedDeviceCertificateVerifiesToTheRoot(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		ctx := context.Background()
		ca := initCA(t, e.DB)
		cert := issueDevice(t, ca, "cam-01", "camera")

		if err := verifyClient(t, ca, cert); err != nil {
			t.Fatalf("device certificate does not verify for client auth: %v", err)
		}
		chain, _ := ca.Chain(ctx)
		roots := x509.NewCertPool()
		roots.AddCert(chain[len(chain)-1])
		inter := x509.NewCertPool()
		inter.AddCert(chain[0])
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
			t.Error("a device certificate verified for server auth")
		}
		if got, want := cert.Subject.CommonName, "cam-01"; got != want {
			t.Errorf("CN = %q, want %q", got, want)
		}
		if len(cert.URIs) != 1 || cert.URIs[0].String() != "urn:fleetward:device:cam-01" {
			t.Errorf("URIs = %v", cert.URIs)
		}
		if cert.KeyUsage != x509.KeyUsageDigitalSignature || len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
			t.Errorf("key usage %v, ext key usage %v; want digitalSignature and clientAuth only", cert.KeyUsage, cert.ExtKeyUsage)
		}
		if cert.IsCA {
			t.Error("device certificate is a CA")
		}
		if life := cert.NotAfter.Sub(cert.NotBefore); life < 30*24*time.Hour || life > 30*24*time.Hour+2*time.Minute {
			t.Errorf("lifetime = %v, want 30 days", life)
		}
		if cert.SerialNumber.BitLen() > 128 || cert.SerialNumber.BitLen() < 64 {
			t.Errorf("serial has %d bits", cert.SerialNumber.BitLen())
		}
		id, err := DeviceIDFromCertificate(cert)
		if err != nil || id != "cam-01" {
			t.Errorf("DeviceIDFromCertificate = %q, %v", id, err)
		}

		list, err := ca.DeviceCertificates(ctx, "cam-01")
		if err != nil || len(list) != 1 {
			t.Fatalf("DeviceCertificates = %v, %v", list, err)
		}
		if c := list[0]; c.Serial != SerialString(cert.SerialNumber) || c.Status != StatusValid || c.Class != "camera" || !bytes.Equal(c.DER, cert.Raw) ||
			!c.NotAfter.Equal(cert.NotAfter) || c.Kind != KindDevice {
			t.Errorf("stored certificate = %+v", c)
		}
		entries, err := ca.ledger.EntriesByType(ctx, EventCertificateIssued, 10)
		if err != nil || len(entries) != 1 || entries[0].Subject != "cam-01" {
			t.Fatalf("ledger entries = %+v, %v", entries, err)
		}
		var data map[string]any
		json.Unmarshal(entries[0].Data, &data)
		if data["serial"] != SerialString(cert.SerialNumber) || data["class"] != "camera" {
			t.Errorf("ledger data = %s", entries[0].Data)
		}
	})
}

func TestClassPolicySetsTheLifetime(t *testing.T) {
	ca := initCA(t, storetest.SQLite(t).DB)
	ca.SetClassPolicy("plc", ClassPolicy{Lifetime: 7 * 24 * time.Hour})
	cert := issueDevice(t, ca, "plc-1", "plc")
	if life := cert.NotAfter.Sub(cert.NotBefore); life > 7*24*time.Hour+2*time.Minute || life < 7*24*time.Hour {
		t.Errorf("plc lifetime = %v, want 7 days", life)
	}
}

func TestEveryKeyAlgorithmIssuesVerifiableCertificates(t *testing.T) {
	for _, alg := range []string{ECDSAP256, Ed25519, RSA3072} {
		t.Run(alg, func(t *testing.T) {
			ca := newTestCA(t, storetest.SQLite(t).DB, Options{KeyAlgorithm: alg})
			if err := ca.Init(context.Background(), InitOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := verifyClient(t, ca, issueDevice(t, ca, "dev-"+alg, "")); err != nil {
				t.Fatalf("verify: %v", err)
			}
			crl, err := ca.CRL(context.Background())
			if err != nil {
				t.Fatalf("CRL: %v", err)
			}
			if _, err := x509.ParseRevocationList(crl); err != nil {
				t.Fatalf("parse CRL: %v", err)
			}
		})
	}
}

func TestIssueDeviceRejectsBadRequestsNamingTheField(t *testing.T) {
	ctx := context.Background()
	ca := initCA(t, storetest.SQLite(t).DB)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	subject := pkix.Name{CommonName: "dev-1"}
	badSig := makeCSR(t, p256, &x509.CertificateRequest{Subject: subject})
	badSig.Signature = append([]byte(nil), badSig.Signature...)
	badSig.Signature[len(badSig.Signature)-1] ^= 0xff

	tests := []struct {
		name  string
		id    string
		csr   *x509.CertificateRequest
		field string
	}{
		{"a missing CSR", "dev-1", nil, "csr"},
		{"an empty device id", "", makeCSR(t, p256, &x509.CertificateRequest{Subject: subject}), "device_id"},
		{"a device id with a slash", "a/b", makeCSR(t, p256, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "a/b"}}), "device_id"},
		{"a CSR whose signature does not verify", "dev-1", badSig, "csr.signature"},
		{"a P-224 key", "dev-1", makeCSR(t, p224, &x509.CertificateRequest{Subject: subject}), "csr.public_key"},
		{"a 1024-bit RSA key", "dev-1", makeCSR(t, rsa1024, &x509.CertificateRequest{Subject: subject}), "csr.public_key"},
		{"a CN for another device", "dev-1", makeCSR(t, p256, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "dev-2"}}), "csr.subject.common_name"},
		{"a URI for another device", "dev-1", makeCSR(t, p256, &x509.CertificateRequest{Subject: subject, URIs: []*url.URL{mustURL(DeviceURI("dev-2"))}}), "csr.uris"},
		{"a DNS name", "dev-1", makeCSR(t, p256, &x509.CertificateRequest{Subject: subject, DNSNames: []string{"fleetward.example"}}), "csr.dns_names"},
		{"an IP address", "dev-1", makeCSR(t, p256, &x509.CertificateRequest{Subject: subject, IPAddresses: []net.IP{net.IPv4(10, 0, 0, 1)}}), "csr.ip_addresses"},
		{"an email address", "dev-1", makeCSR(t, p256, &x509.CertificateRequest{Subject: subject, EmailAddresses: []string{"a@b.example"}}), "csr.email_addresses"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused", func(t *testing.T) {
			cert, err := ca.IssueDevice(ctx, tt.id, "", tt.csr)
			if cert != nil {
				t.Fatal("a certificate was issued")
			}
			wantField(t, err, tt.field)
		})
	}
	var n int
	ca.db.QueryRow(ctx, `SELECT COUNT(*) FROM identity_certificates`).Scan(&n)
	if n != 0 {
		t.Errorf("%d certificates stored after refusals", n)
	}
}

func TestIssueDeviceAcceptsEveryAllowedKeyType(t *testing.T) {
	ca := initCA(t, storetest.SQLite(t).DB)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	for name, key := range map[string]crypto.Signer{"P-384": p384, "Ed25519": ed, "RSA-2048": rsa2048} {
		t.Run(name, func(t *testing.T) {
			csr := makeCSR(t, key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "d1"}})
			cert, err := ca.IssueDevice(context.Background(), "d1", "", csr)
			if err != nil {
				t.Fatal(err)
			}
			if err := verifyClient(t, ca, cert); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestRevocationAppearsInTheCRL(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		ctx := context.Background()
		ca := initCA(t, e.DB)
		keep := issueDevice(t, ca, "dev-keep", "")
		gone := issueDevice(t, ca, "dev-gone", "")

		first, err := ca.CRL(ctx)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := ca.CRL(ctx)
		if !bytes.Equal(first, again) {
			t.Error("CRL was made anew without a revocation")
		}
		if err := ca.Revoke(ctx, SerialString(gone.SerialNumber), ReasonKeyCompromise); err != nil {
			t.Fatal(err)
		}
		if err := ca.Revoke(ctx, SerialString(gone.SerialNumber), ReasonKeyCompromise); err != nil {
			t.Fatalf("revoking twice: %v", err)
		}
		der, err := ca.CRL(ctx)
		if err != nil {
			t.Fatal(err)
		}
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		chain, _ := ca.Chain(ctx)
		if err := crl.CheckSignatureFrom(chain[0]); err != nil {
			t.Fatalf("CRL not signed by the intermediate: %v", err)
		}
		if len(crl.RevokedCertificateEntries) != 1 || crl.RevokedCertificateEntries[0].SerialNumber.Cmp(gone.SerialNumber) != 0 {
			t.Fatalf("revoked entries = %+v", crl.RevokedCertificateEntries)
		}
		if crl.RevokedCertificateEntries[0].ReasonCode != int(ReasonKeyCompromise) {
			t.Errorf("reason = %d", crl.RevokedCertificateEntries[0].ReasonCode)
		}
		if got := crl.NextUpdate.Sub(crl.ThisUpdate); got != CRLValidity {
			t.Errorf("nextUpdate - thisUpdate = %v", got)
		}
		old, _ := x509.ParseRevocationList(first)
		if crl.Number.Cmp(old.Number) <= 0 {
			t.Errorf("CRL number %v did not grow past %v", crl.Number, old.Number)
		}
		st, err := ca.Status(ctx, SerialString(gone.SerialNumber))
		if err != nil || st.Status != StatusRevoked || st.Reason != ReasonKeyCompromise || st.RevokedAt.IsZero() {
			t.Errorf("status = %+v, %v", st, err)
		}
		if entries, _ := ca.ledger.EntriesByType(ctx, EventCertificateRevoked, 10); len(entries) != 1 || entries[0].Subject != "dev-gone" {
			t.Errorf("revocation ledger entries = %+v", entries)
		}
		if err := ca.Revoke(ctx, "abcdef", 0); !apperr.Is(err, apperr.NotFound) {
			t.Errorf("revoke unknown serial: %v", err)
		}
		wantField(t, ca.Revoke(ctx, "xyz", 0), "serial")

		// A revocation by another server sharing the database reaches this
		// one's cached CRL.
		other := NewCA(e.DB, ca.sealer, ca.ledger, Options{Log: quietLog()})
		if err := other.Revoke(ctx, SerialString(keep.SerialNumber), ReasonCessationOfOperation); err != nil {
			t.Fatal(err)
		}
		der, _ = ca.CRL(ctx)
		if crl, _ := x509.ParseRevocationList(der); len(crl.RevokedCertificateEntries) != 2 {
			t.Errorf("CRL after another server's revocation lists %d certificates, want 2", len(crl.RevokedCertificateEntries))
		}
		wantField(t, ca.Revoke(ctx, SerialString(keep.SerialNumber), 8), "reason")
		if st, _ := ca.Status(ctx, SerialString(keep.SerialNumber)); st.Status != StatusRevoked {
			t.Errorf("status after another server's revocation = %q", st.Status)
		}
	})
}

func TestRotatedIntermediateKeepsOldCertificatesVerifying(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		ctx := context.Background()
		ca := initCA(t, e.DB)
		before := issueDevice(t, ca, "dev-old", "")
		oldChain, _ := ca.Chain(ctx)

		next, err := ca.RotateIntermediate(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		after := issueDevice(t, ca, "dev-new", "")
		if !bytes.Equal(after.RawIssuer, next.RawSubject) || bytes.Equal(after.AuthorityKeyId, before.AuthorityKeyId) {
			t.Error("new certificate is not issued by the new intermediate")
		}
		chain, _ := ca.Chain(ctx)
		if len(chain) != 3 || !chain[0].Equal(next) || !chain[1].Equal(oldChain[0]) || !chain[2].Equal(oldChain[1]) {
			t.Fatalf("chain after rotation has %d certificates, want new intermediate, old intermediate, root", len(chain))
		}
		for _, c := range []*x509.Certificate{before, after} {
			if err := verifyClient(t, ca, c); err != nil {
				t.Errorf("%s does not verify after rotation: %v", c.Subject.CommonName, err)
			}
		}
		// Revoking an old certificate is still signed by its own issuer.
		if err := ca.Revoke(ctx, SerialString(before.SerialNumber), ReasonSuperseded); err != nil {
			t.Fatal(err)
		}
		der, err := ca.CRLForIssuer(ctx, oldChain[0])
		if err != nil {
			t.Fatal(err)
		}
		crl, _ := x509.ParseRevocationList(der)
		if crl.CheckSignatureFrom(oldChain[0]) != nil || len(crl.RevokedCertificateEntries) != 1 {
			t.Errorf("old intermediate's CRL does not list the revocation")
		}
		if entries, _ := ca.ledger.EntriesByType(ctx, EventIntermediateRotated, 10); len(entries) != 1 {
			t.Errorf("rotation ledger entries = %d", len(entries))
		}
	})
}

func TestOfflineRootKeyIsWrittenToTheFileAndNotKept(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		ctx := context.Background()
		path := filepath.Join(t.TempDir(), "root.key")
		ca := newTestCA(t, e.DB, Options{})
		if err := ca.Init(ctx, InitOptions{OfflineRootKeyFile: path}); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("root key file mode = %v, want 0600", fi.Mode().Perm())
		}
		pemKey, _ := os.ReadFile(path)
		rootKey, err := ParseKeyPEM(pemKey)
		if err != nil {
			t.Fatal(err)
		}
		chain, _ := ca.Chain(ctx)
		root := chain[len(chain)-1]
		if !samePublicKey(rootKey.Public(), root.PublicKey) {
			t.Fatal("offline key does not match the root")
		}
		var sealed string
		if err := ca.db.QueryRow(ctx, `SELECT sealed_key FROM identity_ca_certs WHERE kind = 'root'`).Scan(&sealed); err != nil || sealed != "" {
			t.Errorf("root key is stored (%d bytes), err %v", len(sealed), err)
		}
		assertNotInDB(t, e, rootKey)

		if err := ca.Init(ctx, InitOptions{OfflineRootKeyFile: path}); err != nil {
			t.Errorf("repeated init with the same options: %v", err)
		}
		if err := ca.Init(ctx, InitOptions{}); !apperr.Is(err, apperr.Conflict) {
			t.Errorf("init without offline root on an offline-root CA: %v, want conflict", err)
		}
		other := NewCA(e.DB, ca.sealer, ca.ledger, Options{KeyAlgorithm: Ed25519, Log: quietLog()})
		if err := other.Init(ctx, InitOptions{OfflineRootKeyFile: path}); !apperr.Is(err, apperr.Conflict) {
			t.Errorf("init with another algorithm: %v, want conflict", err)
		}

		_, err = ca.RotateIntermediate(ctx, nil)
		wantField(t, err, "root_key")
		wrong, _ := EncodeKeyPEM(mustKey(t))
		_, err = ca.RotateIntermediate(ctx, wrong)
		wantField(t, err, "root_key")
		cert := issueDevice(t, ca, "dev-1", "")
		next, err := ca.RotateIntermediate(ctx, pemKey)
		if err != nil {
			t.Fatalf("rotate with the offline key: %v", err)
		}
		if err := next.CheckSignatureFrom(root); err != nil {
			t.Fatal(err)
		}
		if err := verifyClient(t, ca, cert); err != nil {
			t.Errorf("old device certificate after rotation: %v", err)
		}
	})
}

func TestInitRefusesToOverwriteAnExistingKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "root.key")
	os.WriteFile(path, []byte("precious"), 0o600)
	ca := newTestCA(t, storetest.SQLite(t).DB, Options{})
	if err := ca.Init(context.Background(), InitOptions{OfflineRootKeyFile: path}); !apperr.Is(err, apperr.Conflict) {
		t.Fatalf("init over an existing key file: %v, want conflict", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "precious" {
		t.Error("existing file was overwritten")
	}
}

func TestPrivateKeysAreNotStoredInClear(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		ctx := context.Background()
		ca := initCA(t, e.DB)
		ca.RotateIntermediate(ctx, nil)
		cas, err := loadCAs(ctx, ca.db)
		if err != nil {
			t.Fatal(err)
		}
		if len(cas) != 3 {
			t.Fatalf("%d CA certificates", len(cas))
		}
		for _, c := range cas {
			key, err := ca.signerFor(c)
			if err != nil {
				t.Fatalf("%s key: %v", c.Kind, err)
			}
			assertNotInDB(t, e, key)
		}
	})
}

func TestIssueServerCertificate(t *testing.T) {
	ctx := context.Background()
	ca := initCA(t, storetest.SQLite(t).DB)
	key := mustKey(t)
	cert, err := ca.IssueServer(ctx, []string{"fleetward.example", "127.0.0.1"}, key.Public())
	if err != nil {
		t.Fatal(err)
	}
	chain, _ := ca.Chain(ctx)
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(chain[1])
	inter.AddCert(chain[0])
	for _, host := range []string{"fleetward.example", "127.0.0.1"} {
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: host, Roots: roots, Intermediates: inter}); err != nil {
			t.Errorf("server certificate for %s: %v", host, err)
		}
	}
	if _, err := DeviceIDFromCertificate(cert); err == nil {
		t.Error("a server certificate passed as a device's")
	}
	_, err = ca.IssueServer(ctx, nil, key.Public())
	wantField(t, err, "hosts")
	_, err = ca.IssueServer(ctx, []string{"a b"}, key.Public())
	wantField(t, err, "hosts")
}

func TestIssueBeforeInitIsAConflict(t *testing.T) {
	ca := newTestCA(t, storetest.SQLite(t).DB, Options{})
	_, csr := deviceCSR(t, "d")
	if _, err := ca.IssueDevice(context.Background(), "d", "", csr); !apperr.Is(err, apperr.Conflict) {
		t.Errorf("issue before init: %v", err)
	}
	if err := newTestCA(t, storetest.SQLite(t).DB, Options{KeyAlgorithm: "dsa"}).Init(context.Background(), InitOptions{}); err == nil {
		t.Error("init with an unknown algorithm succeeded")
	}
}

func TestDeviceIDFromCertificateRefusesForgeries(t *testing.T) {
	tests := []struct {
		name string
		cert *x509.Certificate
	}{
		{"no certificate", nil},
		{"no device URI", &x509.Certificate{Subject: pkix.Name{CommonName: "a"}}},
		{"two device URIs", &x509.Certificate{Subject: pkix.Name{CommonName: "a"}, URIs: []*url.URL{mustURL(DeviceURI("a")), mustURL(DeviceURI("b"))}}},
		{"a CN that disagrees", &x509.Certificate{Subject: pkix.Name{CommonName: "b"}, URIs: []*url.URL{mustURL(DeviceURI("a"))}}},
		{"a malformed id", &x509.Certificate{Subject: pkix.Name{CommonName: "a b"}, URIs: []*url.URL{{Scheme: "urn", Opaque: "fleetward:device:a b"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DeviceIDFromCertificate(tt.cert)
			wantField(t, err, "certificate")
		})
	}
}

func mustKey(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// assertNotInDB fails if the key's PKCS#8 encoding or raw private bytes
// appear anywhere in the identity tables, or (SQLite) in the database files.
func assertNotInDB(t *testing.T, e storetest.Engine, key crypto.Signer) {
	t.Helper()
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	needles := [][]byte{der}
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		b, _ := k.Bytes()
		needles = append(needles, b)
	case ed25519.PrivateKey:
		needles = append(needles, k.Seed())
	case *rsa.PrivateKey:
		needles = append(needles, k.Primes[0].Bytes())
	}
	pemKey, _ := EncodeKeyPEM(key)
	needles = append(needles, bytes.TrimSpace(bytes.Split(pemKey, []byte("\n"))[1]))
	var hay [][]byte
	for _, q := range []string{
		`SELECT serial || kind || sealed_key, der FROM identity_ca_certs`,
		`SELECT key_algorithm || organization, '' FROM identity_ca`,
	} {
		rows, err := e.DB.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var a string
			var b []byte
			if err := rows.Scan(&a, &b); err != nil {
				t.Fatal(err)
			}
			hay = append(hay, []byte(a), b)
		}
		rows.Close()
	}
	if e.Name == "sqlite" {
		for _, f := range []string{"fleetward.db", "fleetward.db-wal"} {
			b, _ := os.ReadFile(filepath.Join(e.Dir, f))
			hay = append(hay, b)
		}
	}
	for _, h := range hay {
		for _, n := range needles {
			if bytes.Contains(h, n) {
				t.Fatalf("private key material found in the database in clear")
			}
		}
	}
	if len(hay) == 0 {
		t.Fatal("nothing to search")
	}
}
