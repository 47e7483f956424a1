package identity

import (
	"context"
	"crypto/x509"
	"testing"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/store/storetest"
)

// FuzzIssueDeviceCSR feeds arbitrary DER as a CSR: it is either refused
// with an Invalid error or yields a certificate that verifies and names
// the device.
func FuzzIssueDeviceCSR(f *testing.F) {
	ca := initCA(f, storetest.SQLite(f).DB)
	_, csr := deviceCSR(f, "dev-1")
	f.Add(csr.Raw)
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		csr, err := x509.ParseCertificateRequest(der)
		if err != nil {
			return // the EST layer refuses what does not parse
		}
		cert, err := ca.IssueDevice(context.Background(), "dev-1", "", csr)
		if err != nil {
			if !apperr.Is(err, apperr.Invalid) {
				t.Fatalf("refusal is not Invalid: %v", err)
			}
			return
		}
		if id, err := DeviceIDFromCertificate(cert); err != nil || id != "dev-1" {
			t.Fatalf("issued certificate names %q, %v", id, err)
		}
		if err := verifyClient(t, ca, cert); err != nil {
			t.Fatalf("issued certificate does not verify: %v", err)
		}
	})
}
