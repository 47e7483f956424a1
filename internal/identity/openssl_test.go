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

func needCurl(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl binary not found on PATH; install it (Debian: apt-get install curl) to run the EST interoperability test")
	}
}

// sh runs a shell pipeline and returns its standard output.
func sh(t *testing.T, dir, script string) string {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s%s", script, err, out, stderr.String())
	}
	return string(out)
}

// TestOpenSSLAndCurlEnrolOverEST is the token path as a device's tooling
// does it: openssl makes the key and a base64 DER CSR, curl posts it with
// the token as HTTP Basic, and openssl unpacks the PKCS#7 answer and
// verifies the certificate against the chain from cacerts.
func TestOpenSSLAndCurlEnrolOverEST(t *testing.T) {
	needOpenSSL(t)
	needCurl(t)
	e := startEST(t, devices{"cam-7": {Class: "camera"}}, ESTOptions{})
	dir := t.TempDir()
	writePEM(t, dir, "root.pem", e.chain[len(e.chain)-1])
	tok := e.token("cam-7", "camera", 0)
	url := e.srv.URL

	sh(t, dir, `openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout device.key -subj /CN=cam-7 -outform DER | base64 > csr.b64`)
	status := sh(t, dir, `curl -sS --cacert root.pem -u cam-7:`+tok+` --data-binary @csr.b64 -H 'Content-Type: application/pkcs10' -o cert.b64 -D headers.txt -w '%{http_code}' `+url+ESTSimpleEnroll)
	if status != "200" {
		b, _ := os.ReadFile(filepath.Join(dir, "cert.b64"))
		t.Fatalf("curl simpleenroll: HTTP %s: %s", status, b)
	}
	headers := sh(t, dir, `cat headers.txt`)
	if !strings.Contains(strings.ToLower(headers), "content-type: application/pkcs7-mime; smime-type=certs-only") {
		t.Errorf("response headers lack the certs-only content type:\n%s", headers)
	}
	certs := sh(t, dir, `base64 -d cert.b64 | openssl pkcs7 -inform DER -print_certs | tee device.pem`)
	if !strings.Contains(strings.ReplaceAll(certs, " ", ""), "CN=cam-7") || strings.Count(certs, "BEGIN CERTIFICATE") != 1 {
		t.Fatalf("openssl pkcs7 -print_certs:\n%s", certs)
	}

	// The chain comes from cacerts, unpacked the same way.
	sh(t, dir, `curl -sS --cacert root.pem `+url+ESTCACerts+` | base64 -d | openssl pkcs7 -inform DER -print_certs > chain.pem`)
	if out := sh(t, dir, `openssl verify -purpose sslclient -CAfile root.pem -untrusted chain.pem device.pem`); !strings.Contains(out, "device.pem: OK") {
		t.Fatalf("openssl verify: %s", out)
	}
	// The issued certificate is for the key openssl made.
	if a, b := sh(t, dir, `openssl x509 -in device.pem -noout -pubkey`), sh(t, dir, `openssl pkey -in device.key -pubout`); a != b {
		t.Fatalf("issued public key\n%s\ndiffers from the device's\n%s", a, b)
	}
	// The token is spent: curl again is refused.
	status = sh(t, dir, `curl -sS --cacert root.pem -u cam-7:`+tok+` --data-binary @csr.b64 -H 'Content-Type: application/pkcs10' -o /dev/null -w '%{http_code}' `+url+ESTSimpleEnroll)
	if status != "401" {
		t.Fatalf("replayed token with curl: HTTP %s, want 401", status)
	}
	// openssl can read the CSR attributes.
	if out := sh(t, dir, `curl -sS --cacert root.pem `+url+ESTCSRAttrs+` | base64 -d | openssl asn1parse -inform DER`); !strings.Contains(out, "prime256v1") || !strings.Contains(out, "ecdsa-with-SHA256") {
		t.Errorf("openssl asn1parse of csrattrs:\n%s", out)
	}
}
