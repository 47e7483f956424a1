// Package audit turns what fleetward knows about a fleet (the inventory,
// network scans, advisories, certificates, broker sessions and policy) into
// findings: each a weakness of one device or of the fleet, with a severity,
// the evidence, what to do about it and the provisions of ETSI EN 303 645,
// NIST IR 8259A and the OWASP IoT Top 10 (2018) it falls short of. Findings
// are kept across audits (first seen, last seen, resolved), can be
// suppressed with a reason and an expiry, and feed the risk score of each
// device and of the fleet (see risk.go).
package audit

import "slices"

// Severities, most severe first.
const (
	SeverityCritical = "critical"
	SeverityHigh     = "high"
	SeverityMedium   = "medium"
	SeverityLow      = "low"
	SeverityInfo     = "info"
)

// Severities lists every severity, most severe first. Callers must not
// modify it.
var Severities = []string{SeverityCritical, SeverityHigh, SeverityMedium, SeverityLow, SeverityInfo}

// severityRank orders severities: 0 is the most severe, -1 unknown.
func severityRank(s string) int { return slices.Index(Severities, s) }

// The check identifiers. A finding's Check is one of these.
const (
	CheckDefaultCredential       = "default_credential"
	CheckPlaintextManagement     = "plaintext_management"
	CheckMQTTAnonymous           = "mqtt_anonymous"
	CheckMQTTPlaintext           = "mqtt_plaintext"
	CheckFirmwareOutdated        = "firmware_outdated"
	CheckKnownExploited          = "known_exploited_vulnerability"
	CheckKnownVulnerability      = "known_vulnerability"
	CheckEndOfLife               = "end_of_life"
	CheckUnmanagedDevice         = "unmanaged_device"
	CheckCertificateExpiring     = "certificate_expiring"
	CheckCertificateExpired      = "certificate_expired"
	CheckSharedCertificate       = "shared_certificate"
	CheckWeakDeviceKey           = "weak_device_key"
	CheckRevokedStillConnected   = "revoked_certificate_connected"
	CheckConflictingClientID     = "conflicting_client_id"
	CheckBroadACL                = "broad_broker_acl"
	CheckCAExpiring              = "ca_certificate_expiring"
	CheckLoggingDisabled         = "logging_disabled"
	CheckPlaintextServiceExposed = "plaintext_service"
)

// Check describes one kind of finding: what it means, how bad it is by
// default, what to do, and which provisions of the standards it maps to.
// The catalogue is fixed at build time; an audit only produces findings of
// these checks.
type Check struct {
	ID          string `json:"id"`
	Title       string `json:"title"`
	Severity    string `json:"severity"`
	Description string `json:"description"`
	Remediation string `json:"remediation"`
	// ETSI are provisions of ETSI EN 303 645 V2.1.1 ("5.1-1").
	ETSI []string `json:"etsi_en_303_645"`
	// NIST are device cybersecurity capabilities of NIST IR 8259A.
	NIST []string `json:"nist_ir_8259a"`
	// OWASP are items of the OWASP IoT Top 10 (2018) ("I1").
	OWASP []string `json:"owasp_iot_top10"`
}

// NIST IR 8259A capability names.
const (
	nistIdentification = "Device Identification"
	nistConfiguration  = "Device Configuration"
	nistDataProtection = "Data Protection"
	nistLogicalAccess  = "Logical Access to Interfaces"
	nistSoftwareUpdate = "Software Update"
	nistStateAwareness = "Cybersecurity State Awareness"
)

// Checks is the catalogue, in display order. Callers must not modify it.
var Checks = []Check{
	{ID: CheckDefaultCredential, Title: "Default or weak credential accepted", Severity: SeverityCritical,
		Description: "A login service accepted a password from a public default-credential list (the Mirai scanner's list or a vendor default). This is exactly how Mirai and its successors recruit devices.",
		Remediation: "Set a unique, strong password (or disable password login and use keys), then rescan. If the device cannot change it, isolate it on a segment with no inbound access.",
		ETSI:        []string{"5.1-1", "5.1-2"}, NIST: []string{nistLogicalAccess, nistConfiguration}, OWASP: []string{"I1", "I9"}},
	{ID: CheckPlaintextManagement, Title: "Plaintext management service open", Severity: SeverityHigh,
		Description: "A remote management service that sends credentials unencrypted (Telnet, FTP, HTTP administration) answers on the network.",
		Remediation: "Disable Telnet/FTP; serve administration over SSH or HTTPS only, and restrict who can reach it.",
		ETSI:        []string{"5.5-1", "5.5-5", "5.6-1"}, NIST: []string{nistLogicalAccess, nistDataProtection}, OWASP: []string{"I2", "I7"}},
	{ID: CheckMQTTAnonymous, Title: "MQTT broker accepts anonymous clients", Severity: SeverityHigh,
		Description: "An MQTT broker accepted a CONNECT without credentials: anyone on the network can read every topic and publish commands.",
		Remediation: "Require client certificates (or at least passwords) and per-client ACLs; fleetward's broker requires mTLS by default.",
		ETSI:        []string{"5.5-5", "5.6-2"}, NIST: []string{nistLogicalAccess}, OWASP: []string{"I2", "I3", "I9"}},
	{ID: CheckMQTTPlaintext, Title: "MQTT without TLS", Severity: SeverityMedium,
		Description: "An MQTT listener speaks plaintext: credentials and telemetry cross the network readable and changeable.",
		Remediation: "Serve MQTT over TLS (8883) only and close 1883.",
		ETSI:        []string{"5.5-1", "5.5-7"}, NIST: []string{nistDataProtection}, OWASP: []string{"I7"}},
	{ID: CheckPlaintextServiceExposed, Title: "Other plaintext service exposed", Severity: SeverityLow,
		Description: "A service without encryption answers on the network (RTSP, UPnP, CoAP, Modbus, BACnet…).",
		Remediation: "Close the service if it is not needed; otherwise restrict it to the segment that needs it.",
		ETSI:        []string{"5.6-1", "5.5-1"}, NIST: []string{nistLogicalAccess}, OWASP: []string{"I2"}},
	{ID: CheckFirmwareOutdated, Title: "Firmware older than the newest known", Severity: SeverityMedium,
		Description: "The device runs firmware older than the newest version known for its vendor and model.",
		Remediation: "Update the firmware (fleetward's update service, or the vendor's tool).",
		ETSI:        []string{"5.3-1", "5.3-8"}, NIST: []string{nistSoftwareUpdate}, OWASP: []string{"I4", "I5"}},
	{ID: CheckKnownExploited, Title: "Known exploited vulnerability", Severity: SeverityCritical,
		Description: "The device's firmware or a component of it has a vulnerability in CISA's Known Exploited Vulnerabilities catalog: it is being used in attacks now.",
		Remediation: "Apply the vendor's fix now (CISA's due date applies to US federal agencies and is a good bar for anyone); if none exists, isolate the device.",
		ETSI:        []string{"5.3-2", "5.3-8"}, NIST: []string{nistSoftwareUpdate}, OWASP: []string{"I5"}},
	{ID: CheckKnownVulnerability, Title: "Known vulnerability", Severity: SeverityHigh,
		Description: "The device's firmware or a component of it is in the affected range of a published advisory.",
		Remediation: "Update to a fixed version; if none exists, reduce the device's exposure.",
		ETSI:        []string{"5.3-2", "5.3-8"}, NIST: []string{nistSoftwareUpdate}, OWASP: []string{"I5"}},
	{ID: CheckEndOfLife, Title: "End-of-life software", Severity: SeverityHigh,
		Description: "The device's operating system or a component is past its end of life: its vulnerabilities are no longer fixed.",
		Remediation: "Update to a supported release or plan the device's replacement.",
		ETSI:        []string{"5.3-13", "5.3-8"}, NIST: []string{nistSoftwareUpdate}, OWASP: []string{"I5", "I4"}},
	{ID: CheckUnmanagedDevice, Title: "Unmanaged device on the network", Severity: SeverityHigh,
		Description: "A scan found a device that is not in the inventory's managed fleet: nobody patches, watches or answers for it.",
		Remediation: "Identify its owner; enrol it (it gets an identity and policy) or remove it from the network.",
		ETSI:        []string{"5.6-1"}, NIST: []string{nistIdentification}, OWASP: []string{"I8"}},
	{ID: CheckCertificateExpiring, Title: "Device certificate expiring soon", Severity: SeverityMedium,
		Description: "The device's certificate expires within 7 days and it has not renewed it.",
		Remediation: "Check the device's agent (it renews at two thirds of the lifetime); re-enrol it if it cannot renew.",
		ETSI:        []string{"5.4-4"}, NIST: []string{nistIdentification}, OWASP: []string{"I8"}},
	{ID: CheckCertificateExpired, Title: "Device certificate expired", Severity: SeverityHigh,
		Description: "The device's only valid-looking certificate has expired: it cannot connect and is not being managed.",
		Remediation: "Re-enrol the device with a new one-time token.",
		ETSI:        []string{"5.4-4"}, NIST: []string{nistIdentification}, OWASP: []string{"I8"}},
	{ID: CheckSharedCertificate, Title: "Certificate or key shared by several devices", Severity: SeverityHigh,
		Description: "Several devices present the same certificate or public key: stealing one device's key impersonates all of them.",
		Remediation: "Revoke the shared certificate and enrol each device with a key generated on the device.",
		ETSI:        []string{"5.4-3", "5.4-4"}, NIST: []string{nistIdentification, nistDataProtection}, OWASP: []string{"I1", "I9"}},
	{ID: CheckWeakDeviceKey, Title: "Weak device key", Severity: SeverityHigh,
		Description: "The device's key is too weak to trust: RSA shorter than 2048 bits or an RSA modulus with the ROCA fingerprint (CVE-2017-15361), whose private key can be computed.",
		Remediation: "Revoke the certificate and re-enrol with an ECDSA P-256 or RSA ≥ 3072 key generated by an unaffected library.",
		ETSI:        []string{"5.5-1", "5.4-4"}, NIST: []string{nistDataProtection}, OWASP: []string{"I5", "I7"}},
	{ID: CheckRevokedStillConnected, Title: "Revoked certificate still connected", Severity: SeverityCritical,
		Description: "A session authenticated with a certificate that has since been revoked is still open.",
		Remediation: "Disconnect the session (quarantine the device) and find why the broker did not drop it.",
		ETSI:        []string{"5.5-5"}, NIST: []string{nistLogicalAccess}, OWASP: []string{"I3"}},
	{ID: CheckConflictingClientID, Title: "Conflicting client identities", Severity: SeverityHigh,
		Description: "Two sessions claim the same client id, or a session's client id differs from its certificate's device: a cloned or misconfigured device.",
		Remediation: "Find both devices; revoke the clone's certificate.",
		ETSI:        []string{"5.4-4"}, NIST: []string{nistIdentification}, OWASP: []string{"I3"}},
	{ID: CheckBroadACL, Title: "Over-broad broker ACL", Severity: SeverityHigh,
		Description: "A device class may publish or subscribe to wildcard topics that reach other devices' topics.",
		Remediation: "Scope the class's topics with {device} so each device reaches only its own topics.",
		ETSI:        []string{"5.6-1", "5.5-5"}, NIST: []string{nistLogicalAccess}, OWASP: []string{"I3"}},
	{ID: CheckCAExpiring, Title: "CA certificate expiring", Severity: SeverityHigh,
		Description: "The fleet's root or issuing CA certificate expires within 60 days; devices will stop trusting the server and the server the devices.",
		Remediation: "Rotate the issuing intermediate (fleetward ca rotate-intermediate) or plan the root's rollover now.",
		ETSI:        []string{"5.4-4"}, NIST: []string{nistIdentification}, OWASP: []string{"I8"}},
	{ID: CheckLoggingDisabled, Title: "Security logging disabled or failing", Severity: SeverityMedium,
		Description: "Security events are not being recorded: the ledger is not writable or the event bus drops events.",
		Remediation: "Restore the ledger and the bus; check the server log.",
		ETSI:        []string{"5.10-1"}, NIST: []string{nistStateAwareness}, OWASP: []string{"I8"}},
}

// CheckByID returns the check with the given id.
func CheckByID(id string) (Check, bool) {
	for _, c := range Checks {
		if c.ID == id {
			return c, true
		}
	}
	return Check{}, false
}
