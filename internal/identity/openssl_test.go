package identity

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetward/fleetward/internal/store/storetest"
)

// openssl runs the real openssl binary and returns its combined output.
func openssl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("openssl", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func needOpenSSL(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl binary not found on PATH; install it (Debian: apt-get install openssl) to run the interoperability tests")
	}
}

func writePEM(t *testing.T, dir, name string, certs ...*x509.Certificate) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, EncodeCertsPEM(certs...), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// opensslSerial is how openssl prints a serial: uppercase hex, even length.
func opensslSerial(c *x509.Certificate) string {
	s := strings.ToUpper(SerialString(c.SerialNumber))
	if len(s)%2 == 1 {
		s = "0" + s
	}
	return s
}

func TestOpenSSLVerifiesChainCRLAndOCSP(t *testing.T) {
	needOpenSSL(t)
	for _, alg := range []string{ECDSAP256, Ed25519, RSA3072} {
		t.Run(alg, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			ca := newTestCA(t, storetest.SQLite(t).DB, Options{KeyAlgorithm: alg})
			if err := ca.Init(ctx, InitOptions{}); err != nil {
				t.Fatal(err)
			}
			dev := issueDevice(t, ca, "cam-7", "camera")
			kept := issueDevice(t, ca, "cam-9", "camera")
			chain, _ := ca.Chain(ctx)
			root := writePEM(t, dir, "root.pem", chain[len(chain)-1])
			inter := writePEM(t, dir, "intermediate.pem", chain[0])
			devPEM := writePEM(t, dir, "device.pem", dev)

			if out := openssl(t, "verify", "-purpose", "sslclient", "-CAfile", root, "-untrusted", inter, devPEM); !strings.Contains(out, "device.pem: OK") {
				t.Fatalf("openssl verify: %s", out)
			}

			srv := ocspServer(ca)
			defer srv.Close()
			ocspCheck := func(want string) {
				t.Helper()
				out := openssl(t, "ocsp", "-issuer", inter, "-cert", devPEM, "-url", srv.URL+"/pki/ocsp",
					"-CAfile", root, "-resp_text")
				if !strings.Contains(out, devPEM+": "+want) || !strings.Contains(out, "Response verify OK") {
					t.Fatalf("openssl ocsp, want %s:\n%s", want, out)
				}
			}
			ocspCheck("good")

			if err := ca.Revoke(ctx, SerialString(dev.SerialNumber), ReasonKeyCompromise); err != nil {
				t.Fatal(err)
			}
			der, err := ca.CRL(ctx)
			if err != nil {
				t.Fatal(err)
			}
			crlPath := filepath.Join(dir, "crl.der")
			os.WriteFile(crlPath, der, 0o600)
			out := openssl(t, "crl", "-inform", "DER", "-in", crlPath, "-noout", "-text")
			for _, want := range []string{"Serial Number: " + opensslSerial(dev), "Next Update:", "X509v3 CRL Number", "Key Compromise"} {
				if !strings.Contains(out, want) {
					t.Errorf("openssl crl output lacks %q:\n%s", want, out)
				}
			}
			crlPEM := filepath.Join(dir, "crl.pem")
			os.WriteFile(crlPEM, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 0o600)
			openssl(t, "crl", "-in", crlPEM, "-CAfile", inter, "-noout") // signature checks against the intermediate

			// With the CRL, openssl verify now refuses the device.
			bundle := filepath.Join(dir, "bundle.pem")
			b, _ := os.ReadFile(root)
			b = append(b, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})...)
			os.WriteFile(bundle, b, 0o600)
			vout, verr := exec.Command("openssl", "verify", "-crl_check", "-CAfile", bundle, "-untrusted", inter, devPEM).CombinedOutput()
			if verr == nil || !strings.Contains(string(vout), "revoked") {
				t.Errorf("openssl verify -crl_check of a revoked certificate: %v\n%s", verr, vout)
			}

			ocspCheck("revoked")

			// After rotation, openssl verifies certificates from both
			// intermediates with the chain bundle.
			if _, err := ca.RotateIntermediate(ctx, nil); err != nil {
				t.Fatal(err)
			}
			fresh := writePEM(t, dir, "fresh.pem", issueDevice(t, ca, "cam-8", "camera"))
			chain, _ = ca.Chain(ctx)
			bundleInter := writePEM(t, dir, "intermediates.pem", chain[:len(chain)-1]...)
			oldDev := writePEM(t, dir, "old-device.pem", kept)
			for _, p := range []string{fresh, oldDev} {
				if out := openssl(t, "verify", "-CAfile", root, "-untrusted", bundleInter, p); !strings.Contains(out, ": OK") {
					t.Errorf("openssl verify after rotation: %s", out)
				}
			}
		})
	}
}
