package audit

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/fleetward/fleetward/internal/vuln"
)

// Finding is one weakness of one device (DeviceID set) or of the fleet
// (DeviceID empty), found by a check. Its ID is derived from the check,
// the device and the subject, so the same weakness found by the next audit
// is the same finding. Audits create and resolve findings; operators may
// only suppress them.
type Finding struct {
	ID       string `json:"id"`
	Check    string `json:"check"`
	DeviceID string `json:"device_id,omitempty"`
	// Subject is what exactly is weak: "10.0.0.5 tcp/23", a certificate
	// serial, an advisory id.
	Subject  string `json:"subject"`
	Severity string `json:"severity"`
	Title    string `json:"title"`
	Evidence string `json:"evidence"`
	// Exploited is true when the weakness is known to be exploited in the
	// wild (a CISA KEV entry) or was shown to work (a default password
	// that logged in).
	Exploited bool `json:"exploited"`
	// Exposed is true when the weakness is reachable over the network (a
	// scan found it), not only inferred from records.
	Exposed bool `json:"exposed"`
	// Kept by the Store:
	Status          string    `json:"status,omitempty"` // StatusOpen or StatusResolved
	FirstSeen       time.Time `json:"first_seen,omitzero"`
	LastSeen        time.Time `json:"last_seen,omitzero"`
	ResolvedAt      time.Time `json:"resolved_at,omitzero"`
	SuppressedUntil time.Time `json:"suppressed_until,omitzero"`
	SuppressReason  string    `json:"suppress_reason,omitempty"`
	SuppressedBy    string    `json:"suppressed_by,omitempty"`
}

// Finding statuses.
const (
	StatusOpen     = "open"
	StatusResolved = "resolved"
)

// Suppressed reports whether f is suppressed at now.
func (f Finding) Suppressed(now time.Time) bool { return now.Before(f.SuppressedUntil) }

// findingID derives the stable id of a finding.
func findingID(check, device, subject string) string {
	h := sha256.Sum256([]byte(check + "\x00" + device + "\x00" + subject))
	return hex.EncodeToString(h[:10])
}

// Snapshot is everything an audit looks at, gathered by the caller at one
// time. Every field is optional: a check whose input is missing finds
// nothing.
type Snapshot struct {
	Now     time.Time
	Devices []Device
	// Services are what network scans found, already resolved to devices
	// where an address belongs to one.
	Services []Service
	Vulns    []Vulnerability
	EOL      []EndOfLife
	// Certificates are the device certificates the CA issued, current and
	// past.
	Certificates []Certificate
	Sessions     []Session
	ACLs         []ACLRule
	CAs          []CACertificate
	// LoggingProblem, when not empty, says why security events are not
	// being recorded.
	LoggingProblem string
}

// Device is what an audit needs of an inventory device.
type Device struct {
	ID              string
	Name            string
	Class           string
	Vendor          string
	Model           string
	FirmwareVersion string
	Status          string
	IPs             []string
	// Criticality is "low", "normal", "high" or "critical"; empty is normal.
	Criticality string
}

// Service is one open port found by a scan.
type Service struct {
	DeviceID  string `json:"device_id,omitempty"` // empty when no device has the address
	Addr      string `json:"addr"`
	Port      int    `json:"port"`
	Proto     string `json:"proto"`
	Name      string `json:"service"` // "telnet", "ssh", "http", "mqtt", …
	Banner    string `json:"banner,omitempty"`
	Plaintext bool   `json:"plaintext"`
	// AnonymousMQTT is true when an MQTT broker accepted a CONNECT
	// without credentials.
	AnonymousMQTT bool `json:"anonymous_mqtt,omitempty"`
	// Credential, when not nil, is a credential that logged in.
	Credential *WorkingCredential `json:"credential,omitempty"`
	// Details are the scanner's facts about the service (vendor and
	// version guesses, certificate, realm).
	Details map[string]string `json:"details,omitempty"`
}

// WorkingCredential says which listed credential logged in, without the
// password: its user name, its source list and a hint.
type WorkingCredential struct {
	Username     string `json:"username"`
	Source       string `json:"source"`
	PasswordHint string `json:"password_hint"`
}

// Vulnerability is an advisory that matches a device.
type Vulnerability struct {
	DeviceID   string
	AdvisoryID string
	Aliases    []string
	CVSS       float64
	Severity   string // advisory severity when known; else derived from CVSS
	Exploited  bool   // in CISA's KEV catalog
	KEVDueDate string
	What       string // "firmware 1.1.3" or "pkg:generic/busybox@1.30.1"
	Why        string // the range that matched
}

// EndOfLife is a component of a device that is past its end of life.
type EndOfLife struct {
	DeviceID  string
	Component string
	Version   string
	EOLDate   time.Time
	Source    string
}

// Certificate is a device certificate issued by the fleet's CA.
type Certificate struct {
	DeviceID   string
	Serial     string
	NotAfter   time.Time
	Revoked    bool
	KeyAlgo    string // "ECDSA", "Ed25519", "RSA"
	RSABits    int
	RSAModulus *big.Int
	// Fingerprint is the SHA-256 of the certificate; SPKI the SHA-256 of
	// its public key.
	Fingerprint string
	SPKI        string
	// Superseded is true when the device has a newer certificate.
	Superseded bool
}

// Session is a live broker session.
type Session struct {
	DeviceID string
	ClientID string
	Serial   string
	Remote   string
}

// ACLRule is one topic a device class may publish or subscribe to.
type ACLRule struct {
	Class  string
	Action string // "publish" or "subscribe"
	Topic  string
}

// CACertificate is a root or issuing certificate of the fleet's CA.
type CACertificate struct {
	Name     string
	Serial   string
	NotAfter time.Time
}

// Audit windows.
const (
	certificateExpiryWarning = 7 * 24 * time.Hour
	caExpiryWarning          = 60 * 24 * time.Hour
)

// Evaluate runs every check on s and returns the findings, most severe
// first. It is a pure function of s.
func Evaluate(s Snapshot) []Finding {
	e := evaluation{now: s.Now, byDevice: map[string]Device{}}
	for _, d := range s.Devices {
		e.byDevice[d.ID] = d
	}
	e.services(s.Services)
	e.firmware(s.Devices)
	e.vulnerabilities(s.Vulns)
	e.endOfLife(s.EOL)
	e.certificates(s.Certificates)
	e.sessions(s.Sessions, s.Certificates)
	e.acls(s.ACLs)
	e.cas(s.CAs)
	if s.LoggingProblem != "" {
		e.add(CheckLoggingDisabled, "", "ledger", s.LoggingProblem, false, false)
	}
	slices.SortFunc(e.out, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(severityRank(a.Severity), severityRank(b.Severity)),
			cmp.Compare(a.DeviceID, b.DeviceID), cmp.Compare(a.Check, b.Check), cmp.Compare(a.Subject, b.Subject))
	})
	return e.out
}

type evaluation struct {
	now      time.Time
	byDevice map[string]Device
	out      []Finding
	seen     map[string]bool
}

// add records a finding of check with the check's severity.
func (e *evaluation) add(check, device, subject, evidence string, exploited, exposed bool) *Finding {
	c, _ := CheckByID(check)
	return e.addSeverity(check, c.Severity, device, subject, evidence, exploited, exposed)
}

func (e *evaluation) addSeverity(check, severity, device, subject, evidence string, exploited, exposed bool) *Finding {
	id := findingID(check, device, subject)
	if e.seen == nil {
		e.seen = map[string]bool{}
	}
	if e.seen[id] {
		return nil
	}
	e.seen[id] = true
	c, _ := CheckByID(check)
	e.out = append(e.out, Finding{ID: id, Check: check, DeviceID: device, Subject: subject, Severity: severity,
		Title: c.Title, Evidence: evidence, Exploited: exploited, Exposed: exposed})
	return &e.out[len(e.out)-1]
}

// plaintextManagement are services whose plaintext carries an
// administrator's credentials.
var plaintextManagement = map[string]bool{"telnet": true, "ftp": true, "http": true, "tr-069": true, "rlogin": true}

func (e *evaluation) services(svcs []Service) {
	unmanaged := map[string][]string{}
	for _, s := range svcs {
		where := fmt.Sprintf("%s %s/%d", s.Addr, cmp.Or(s.Proto, "tcp"), s.Port)
		ev := fmt.Sprintf("%s on %s", cmp.Or(s.Name, "unknown service"), where)
		if s.Banner != "" {
			ev += fmt.Sprintf(": %q", truncate(s.Banner, 120))
		}
		if s.Credential != nil {
			c := s.Credential
			e.add(CheckDefaultCredential, s.DeviceID, where,
				fmt.Sprintf("%s login accepted user %q with password %s from the %s list", cmp.Or(s.Name, "service"), c.Username, c.PasswordHint, c.Source),
				true, true)
		}
		switch {
		case s.Name == "mqtt" || s.Name == "mqtts":
			if s.AnonymousMQTT {
				e.add(CheckMQTTAnonymous, s.DeviceID, where, ev+"; CONNECT without credentials accepted", false, true)
			}
			if s.Plaintext {
				e.add(CheckMQTTPlaintext, s.DeviceID, where, ev, false, true)
			}
		case s.Plaintext && plaintextManagement[s.Name]:
			sev := SeverityHigh
			if s.Name == "http" {
				sev = SeverityMedium // a web page in the clear is common and less often an admin login
			}
			e.addSeverity(CheckPlaintextManagement, sev, s.DeviceID, where, ev, false, true)
		case s.Plaintext:
			e.add(CheckPlaintextServiceExposed, s.DeviceID, where, ev, false, true)
		}
		if s.DeviceID == "" || e.byDevice[s.DeviceID].Status == "unmanaged" {
			key := cmp.Or(s.DeviceID, "addr:"+s.Addr)
			unmanaged[key] = append(unmanaged[key], fmt.Sprintf("%s/%d %s", cmp.Or(s.Proto, "tcp"), s.Port, s.Name))
		}
	}
	for key, ports := range unmanaged {
		device, addr := key, ""
		if a, ok := strings.CutPrefix(key, "addr:"); ok {
			device, addr = "", a
		}
		subject := addr
		if device != "" {
			subject = strings.Join(e.byDevice[device].IPs, ",")
		}
		e.add(CheckUnmanagedDevice, device, cmp.Or(subject, device),
			fmt.Sprintf("not in the managed fleet; answers on %s", strings.Join(ports, ", ")), false, true)
	}
}

// firmware reports devices whose firmware is older than the newest seen
// on a device of the same vendor and model: the fleet itself tells which
// version is current.
func (e *evaluation) firmware(devs []Device) {
	newest := map[string]string{}
	for _, d := range devs {
		if d.FirmwareVersion == "" || d.Model == "" {
			continue
		}
		k := strings.ToLower(d.Vendor + "\x00" + d.Model)
		if cur, ok := newest[k]; !ok || vuln.CompareVersions(d.FirmwareVersion, cur) > 0 {
			newest[k] = d.FirmwareVersion
		}
	}
	for _, d := range devs {
		if d.FirmwareVersion == "" || d.Model == "" {
			continue
		}
		n := newest[strings.ToLower(d.Vendor+"\x00"+d.Model)]
		if vuln.CompareVersions(d.FirmwareVersion, n) < 0 {
			e.add(CheckFirmwareOutdated, d.ID, "firmware "+d.FirmwareVersion,
				fmt.Sprintf("%s %s runs firmware %s; %s is the newest in the fleet", d.Vendor, d.Model, d.FirmwareVersion, n), false, false)
		}
	}
}

func (e *evaluation) vulnerabilities(vs []Vulnerability) {
	for _, v := range vs {
		ids := v.AdvisoryID
		if len(v.Aliases) > 0 {
			ids += " (" + strings.Join(v.Aliases, ", ") + ")"
		}
		ev := fmt.Sprintf("%s affects %s", ids, v.What)
		if v.Why != "" {
			ev += "; " + v.Why
		}
		if v.CVSS > 0 {
			ev += fmt.Sprintf("; CVSS %.1f", v.CVSS)
		}
		if v.Exploited {
			if v.KEVDueDate != "" {
				ev += "; in CISA KEV, due " + v.KEVDueDate
			}
			e.add(CheckKnownExploited, v.DeviceID, v.AdvisoryID, ev, true, false)
			continue
		}
		e.addSeverity(CheckKnownVulnerability, cmp.Or(v.Severity, severityFromCVSS(v.CVSS)), v.DeviceID, v.AdvisoryID, ev, false, false)
	}
}

// severityFromCVSS maps a CVSS v3 base score to its qualitative rating.
func severityFromCVSS(score float64) string {
	switch {
	case score >= 9:
		return SeverityCritical
	case score >= 7:
		return SeverityHigh
	case score >= 4:
		return SeverityMedium
	case score > 0:
		return SeverityLow
	}
	return SeverityMedium // unscored: neither ignored nor alarming
}

func (e *evaluation) endOfLife(items []EndOfLife) {
	for _, x := range items {
		ev := fmt.Sprintf("%s %s reached end of life on %s", x.Component, x.Version, x.EOLDate.Format(time.DateOnly))
		if x.Source != "" {
			ev += " (" + x.Source + ")"
		}
		e.add(CheckEndOfLife, x.DeviceID, x.Component+" "+x.Version, ev, false, false)
	}
}

func (e *evaluation) certificates(certs []Certificate) {
	byKey := map[string][]Certificate{}
	for _, c := range certs {
		if c.Revoked || c.Superseded {
			continue
		}
		if c.SPKI != "" {
			byKey[c.SPKI] = append(byKey[c.SPKI], c)
		}
		left := c.NotAfter.Sub(e.now)
		switch {
		case left <= 0:
			e.add(CheckCertificateExpired, c.DeviceID, "certificate "+c.Serial,
				fmt.Sprintf("certificate %s expired on %s", c.Serial, c.NotAfter.UTC().Format(time.RFC3339)), false, false)
		case left < certificateExpiryWarning:
			e.add(CheckCertificateExpiring, c.DeviceID, "certificate "+c.Serial,
				fmt.Sprintf("certificate %s expires in %s (%s)", c.Serial, left.Round(time.Hour), c.NotAfter.UTC().Format(time.RFC3339)), false, false)
		}
		if c.KeyAlgo == "RSA" {
			switch {
			case c.RSABits > 0 && c.RSABits < 2048:
				e.add(CheckWeakDeviceKey, c.DeviceID, "certificate "+c.Serial,
					fmt.Sprintf("RSA key of %d bits (at least 2048 needed)", c.RSABits), false, false)
			case c.RSAModulus != nil && ROCAVulnerable(c.RSAModulus):
				e.add(CheckWeakDeviceKey, c.DeviceID, "certificate "+c.Serial,
					"RSA modulus has the ROCA fingerprint (CVE-2017-15361): the private key can be factored", true, false)
			}
		}
	}
	for spki, cs := range byKey {
		devices := map[string]bool{}
		for _, c := range cs {
			devices[c.DeviceID] = true
		}
		if len(devices) < 2 {
			continue
		}
		ids := make([]string, 0, len(devices))
		for d := range devices {
			ids = append(ids, d)
		}
		slices.Sort(ids)
		for _, d := range ids {
			e.add(CheckSharedCertificate, d, "key "+spki[:min(16, len(spki))],
				fmt.Sprintf("the same public key is in the certificates of %d devices: %s", len(ids), strings.Join(ids, ", ")), false, false)
		}
	}
}

func (e *evaluation) sessions(sessions []Session, certs []Certificate) {
	revoked := map[string]bool{}
	for _, c := range certs {
		if c.Revoked {
			revoked[strings.ToLower(c.Serial)] = true
		}
	}
	byClient := map[string][]Session{}
	for _, s := range sessions {
		if s.Serial != "" && revoked[strings.ToLower(s.Serial)] {
			e.add(CheckRevokedStillConnected, s.DeviceID, "session "+s.Serial,
				fmt.Sprintf("session from %s uses revoked certificate %s", s.Remote, s.Serial), false, true)
		}
		byClient[s.ClientID] = append(byClient[s.ClientID], s)
		if s.DeviceID != "" && s.ClientID != s.DeviceID {
			e.add(CheckConflictingClientID, s.DeviceID, "client "+s.ClientID,
				fmt.Sprintf("session from %s has client id %q but the certificate of device %q", s.Remote, s.ClientID, s.DeviceID), false, true)
		}
	}
	for id, ss := range byClient {
		if len(ss) < 2 {
			continue
		}
		remotes := make([]string, len(ss))
		for i, s := range ss {
			remotes[i] = s.Remote
		}
		slices.Sort(remotes)
		e.add(CheckConflictingClientID, ss[0].DeviceID, "client "+id,
			fmt.Sprintf("%d sessions claim client id %q, from %s", len(ss), id, strings.Join(remotes, ", ")), false, true)
	}
}

// acls reports topic filters with wildcards that are not confined to the
// device's own subtree: a "#" or "+" before any "{device}" segment lets a
// device reach every other device's topics.
func (e *evaluation) acls(rules []ACLRule) {
	for _, r := range rules {
		if !broadTopic(r.Topic) {
			continue
		}
		e.add(CheckBroadACL, "", fmt.Sprintf("class %s %s %s", r.Class, r.Action, r.Topic),
			fmt.Sprintf("devices of class %s may %s %q, which reaches other devices' topics", r.Class, r.Action, r.Topic), false, false)
	}
}

// broadTopic reports whether an ACL topic filter has a wildcard level
// before (or without) a {device} level.
func broadTopic(topic string) bool {
	for _, level := range strings.Split(topic, "/") {
		switch level {
		case "{device}":
			return false
		case "#", "+":
			return true
		}
	}
	return false
}

func (e *evaluation) cas(cas []CACertificate) {
	for _, c := range cas {
		left := c.NotAfter.Sub(e.now)
		if left >= caExpiryWarning {
			continue
		}
		ev := fmt.Sprintf("%s (serial %s) expires on %s, in %d days", c.Name, c.Serial, c.NotAfter.UTC().Format(time.DateOnly), int(left.Hours()/24))
		if left <= 0 {
			ev = fmt.Sprintf("%s (serial %s) expired on %s", c.Name, c.Serial, c.NotAfter.UTC().Format(time.DateOnly))
		}
		e.add(CheckCAExpiring, "", c.Name+" "+c.Serial, ev, false, false)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
