package audit

import (
	"crypto/rand"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func checksOf(fs []Finding, device string) []string {
	var out []string
	for _, f := range fs {
		if f.DeviceID == device {
			out = append(out, f.Check)
		}
	}
	slices.Sort(out)
	return out
}

func TestEvaluateFindsEachWeaknessOnTheRightDevice(t *testing.T) {
	s := Snapshot{
		Now: now,
		Devices: []Device{
			{ID: "cam-1", Class: "camera", Vendor: "Hikvision", Model: "DS-2CD", FirmwareVersion: "V5.4.0", Status: "active", IPs: []string{"10.0.0.5"}},
			{ID: "cam-2", Class: "camera", Vendor: "Hikvision", Model: "DS-2CD", FirmwareVersion: "V5.5.0", Status: "active", IPs: []string{"10.0.0.6"}},
			{ID: "rogue", Class: "other", Status: "unmanaged", IPs: []string{"10.0.0.9"}},
		},
		Services: []Service{
			{DeviceID: "cam-1", Addr: "10.0.0.5", Port: 23, Proto: "tcp", Name: "telnet", Plaintext: true,
				Credential: &WorkingCredential{Username: "root", Source: "mirai", PasswordHint: "x****1"}},
			{DeviceID: "cam-2", Addr: "10.0.0.6", Port: 443, Proto: "tcp", Name: "https"},
			{DeviceID: "rogue", Addr: "10.0.0.9", Port: 1883, Proto: "tcp", Name: "mqtt", Plaintext: true, AnonymousMQTT: true},
			{Addr: "10.0.0.77", Port: 554, Proto: "tcp", Name: "rtsp", Plaintext: true},
		},
		Vulns: []Vulnerability{{DeviceID: "cam-1", AdvisoryID: "CVE-2021-36260", Exploited: true, KEVDueDate: "2022-01-24", What: "firmware V5.4.0"}},
		EOL:   []EndOfLife{{DeviceID: "cam-2", Component: "linux", Version: "3.10", EOLDate: time.Date(2017, 11, 4, 0, 0, 0, 0, time.UTC)}},
	}
	fs := Evaluate(s)
	if got, want := checksOf(fs, "cam-1"), []string{CheckDefaultCredential, CheckFirmwareOutdated, CheckKnownExploited, CheckPlaintextManagement}; !slices.Equal(got, want) {
		t.Errorf("cam-1 checks = %v, want %v", got, want)
	}
	if got, want := checksOf(fs, "cam-2"), []string{CheckEndOfLife}; !slices.Equal(got, want) {
		t.Errorf("cam-2 checks = %v, want %v (HTTPS alone is no finding)", got, want)
	}
	if got, want := checksOf(fs, "rogue"), []string{CheckMQTTAnonymous, CheckMQTTPlaintext, CheckUnmanagedDevice}; !slices.Equal(got, want) {
		t.Errorf("rogue checks = %v, want %v", got, want)
	}
	if got, want := checksOf(fs, ""), []string{CheckPlaintextServiceExposed, CheckUnmanagedDevice}; !slices.Equal(got, want) {
		t.Errorf("unknown address checks = %v, want %v", got, want)
	}
	if fs[0].Severity != SeverityCritical {
		t.Errorf("first finding is %s, want the most severe first", fs[0].Severity)
	}
	for _, f := range fs {
		if f.Check == CheckDefaultCredential && (!strings.Contains(f.Evidence, `"root"`) || !f.Exploited || !f.Exposed) {
			t.Errorf("default credential finding = %+v; want user named, exploited and exposed", f)
		}
	}
	again := Evaluate(s)
	for i := range fs {
		if fs[i].ID != again[i].ID {
			t.Fatal("the same snapshot gives different finding ids")
		}
	}
}

func TestEvaluateCertificatesSessionsACLsAndCA(t *testing.T) {
	small, _ := rand.Prime(rand.Reader, 512)
	s := Snapshot{
		Now: now,
		Certificates: []Certificate{
			{DeviceID: "a", Serial: "01", NotAfter: now.Add(48 * time.Hour), KeyAlgo: "ECDSA", SPKI: "aaaa"},
			{DeviceID: "b", Serial: "02", NotAfter: now.Add(-time.Hour), KeyAlgo: "ECDSA", SPKI: "bbbb"},
			{DeviceID: "c", Serial: "03", NotAfter: now.Add(30 * 24 * time.Hour), KeyAlgo: "RSA", RSABits: 1024, RSAModulus: small, SPKI: "cccc"},
			{DeviceID: "d1", Serial: "04", NotAfter: now.Add(30 * 24 * time.Hour), KeyAlgo: "ECDSA", SPKI: "shared"},
			{DeviceID: "d2", Serial: "05", NotAfter: now.Add(30 * 24 * time.Hour), KeyAlgo: "ECDSA", SPKI: "shared"},
			{DeviceID: "e", Serial: "0e", NotAfter: now.Add(30 * 24 * time.Hour), KeyAlgo: "ECDSA", SPKI: "eeee", Revoked: true},
			{DeviceID: "f", Serial: "0f", NotAfter: now.Add(-time.Hour), KeyAlgo: "ECDSA", SPKI: "ffff", Superseded: true},
		},
		Sessions: []Session{
			{DeviceID: "e", ClientID: "e", Serial: "0E", Remote: "10.0.0.1:5000"},
			{DeviceID: "g", ClientID: "g", Serial: "77", Remote: "10.0.0.2:5000"},
			{DeviceID: "g", ClientID: "g", Serial: "78", Remote: "10.0.0.3:5000"},
		},
		ACLs: []ACLRule{
			{Class: "camera", Action: "publish", Topic: "devices/{device}/#"},
			{Class: "sensor", Action: "subscribe", Topic: "devices/+/commands"},
		},
		CAs:            []CACertificate{{Name: "issuing CA", Serial: "99", NotAfter: now.Add(10 * 24 * time.Hour)}, {Name: "root CA", Serial: "98", NotAfter: now.Add(3650 * 24 * time.Hour)}},
		LoggingProblem: "ledger append failed",
	}
	fs := Evaluate(s)
	want := map[string][]string{
		"a":  {CheckCertificateExpiring},
		"b":  {CheckCertificateExpired},
		"c":  {CheckWeakDeviceKey},
		"d1": {CheckSharedCertificate},
		"d2": {CheckSharedCertificate},
		"e":  {CheckRevokedStillConnected},
		"f":  nil,
		"g":  {CheckConflictingClientID},
		"":   {CheckBroadACL, CheckCAExpiring, CheckLoggingDisabled},
	}
	for dev, w := range want {
		if got := checksOf(fs, dev); !slices.Equal(got, w) {
			t.Errorf("device %q checks = %v, want %v", dev, got, w)
		}
	}
}

func TestBroadTopicOnlyFlagsWildcardsOutsideTheDevicesOwnTree(t *testing.T) {
	for topic, want := range map[string]bool{
		"devices/{device}/#": false, "devices/{device}/+/x": false, "#": true, "devices/+/cmd": true,
		"devices/#": true, "fleet/status": false, "+/{device}": true,
	} {
		if got := broadTopic(topic); got != want {
			t.Errorf("broadTopic(%q) = %v, want %v", topic, got, want)
		}
	}
}

// rocaPrime makes a prime of the form the vulnerable library made:
// k·M + (65537^a mod M), M the product of rocaPrimes.
func rocaPrime(t *testing.T, bits int) *big.Int {
	t.Helper()
	m := big.NewInt(1)
	for _, p := range rocaPrimes {
		m.Mul(m, big.NewInt(p))
	}
	for range 100000 {
		a, _ := rand.Int(rand.Reader, big.NewInt(1<<20))
		g := new(big.Int).Exp(big.NewInt(65537), a, m)
		k, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), uint(bits-m.BitLen())))
		p := new(big.Int).Add(new(big.Int).Mul(k, m), g)
		if p.ProbablyPrime(20) {
			return p
		}
	}
	t.Fatal("no ROCA-form prime found")
	return nil
}

func TestROCAFingerprintSeparatesVulnerableModuliFromRandomOnes(t *testing.T) {
	n := new(big.Int).Mul(rocaPrime(t, 512), rocaPrime(t, 512))
	if !ROCAVulnerable(n) {
		t.Error("a modulus of two ROCA-form primes is not flagged")
	}
	for range 20 {
		p, _ := rand.Prime(rand.Reader, 512)
		q, _ := rand.Prime(rand.Reader, 512)
		if ROCAVulnerable(new(big.Int).Mul(p, q)) {
			t.Fatal("a random modulus is flagged as ROCA-vulnerable")
		}
	}
	if ROCAVulnerable(nil) || ROCAVulnerable(big.NewInt(0)) {
		t.Error("nil or zero is flagged")
	}
}

func TestRiskFollowsTheDocumentedFormula(t *testing.T) {
	dev := Device{ID: "x", Class: "camera"}
	cred := Finding{Severity: SeverityCritical, Exploited: true, Exposed: true, Status: StatusOpen}
	if got := DeviceRisk(dev, []Finding{cred}, now); got != 75 {
		t.Errorf("a working default password on a normal device = %v, want 75 (certain × 0.75)", got)
	}
	if got := DeviceRisk(Device{Class: "gateway"}, []Finding{cred}, now); got != 90 {
		t.Errorf("on a gateway = %v, want 90", got)
	}
	med := Finding{Severity: SeverityMedium, Status: StatusOpen}
	// p = 5/15 = 1/3; two of them: 1 - (2/3)^2 = 5/9; × 75 = 41.67
	if got := DeviceRisk(dev, []Finding{med, med}, now); got != 41.7 {
		t.Errorf("two medium findings = %v, want 41.7", got)
	}
	suppressed := cred
	suppressed.SuppressedUntil = now.Add(time.Hour)
	resolved := cred
	resolved.Status = StatusResolved
	if got := DeviceRisk(dev, []Finding{suppressed, resolved}, now); got != 0 {
		t.Errorf("suppressed and resolved findings count: %v", got)
	}
	if got := FleetRisk([]float64{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 90, 70}); got != 80 {
		t.Errorf("fleet risk = %v, want the mean of the worst tenth, 80", got)
	}
	if b := RiskBuckets([]float64{0, 9.9, 10, 100, 55}); b != [10]int{2, 1, 0, 0, 0, 1, 0, 0, 0, 1} {
		t.Errorf("buckets = %v", b)
	}
}
