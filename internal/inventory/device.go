// Package inventory knows every device of the fleet: its identity, vendor,
// model, firmware, configuration, location, owner, network segment and risk,
// and the sites and groups that organize the fleet.
//
// The Service is the only writer of the inventory's tables. Every change it
// makes is recorded in the ledger inside the change's own transaction and
// then published on the bus. Credential-like device attributes (secrets)
// are sealed at rest and never returned; only their names are.
package inventory

import (
	"crypto/rand"
	"encoding/base32"
	"math"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fleetward/fleetward/internal/apperr"
)

// Device is one device of the fleet. Operators create and edit devices
// through the API, the dashboard and bulk import; discovery and audits
// update them later. A stored device always satisfies Validate, carries
// normalized addresses and tags, and has a version that grows by one with
// every change.
type Device struct {
	// ID is the caller's identifier, or "dev-" and 12 random base32
	// characters when created without one. It matches
	// ^[a-z0-9][a-z0-9._-]{0,62}$ and never changes.
	ID string `json:"id"`
	// Name is required, at most 128 characters.
	Name string `json:"name"`
	// Class is one of Classes.
	Class  string `json:"class"`
	Vendor string `json:"vendor"`
	Model  string `json:"model"`
	Serial string `json:"serial"`
	// MACs are EUI-48 or EUI-64 addresses, stored in lower-case colon form
	// ("aa:bb:cc:dd:ee:ff"), without duplicates.
	MACs []string `json:"macs,omitempty"`
	// IPs are IPv4 or IPv6 addresses in canonical form, without duplicates.
	IPs             []string `json:"ips,omitempty"`
	FirmwareVersion string   `json:"firmware_version"`
	OS              string   `json:"os"`
	OSVersion       string   `json:"os_version"`
	// ConfigDigest identifies the device's running configuration, as
	// "sha256:<64 hex>" (sha384 and sha512 are accepted too), or is empty.
	ConfigDigest string   `json:"config_digest"`
	Location     Location `json:"location"`
	Owner        string   `json:"owner"`
	Segment      string   `json:"segment"`
	// Tags are lower-case labels matching ^[a-z0-9][a-z0-9:._-]{0,63}$, at
	// most 32, without duplicates.
	Tags []string `json:"tags,omitempty"`
	// Status is one of Statuses; "active" when not given.
	Status    string    `json:"status"`
	FirstSeen time.Time `json:"first_seen,omitzero"`
	LastSeen  time.Time `json:"last_seen,omitzero"`
	// RiskScore is from 0 (no known risk) to 100.
	RiskScore float64 `json:"risk_score"`
	// Attributes are free-form facts, at most 64.
	Attributes map[string]string `json:"attributes,omitempty"`
	// Secrets are credential-like attributes ("snmp_community",
	// "admin_password"). They are write-only: sealed at rest and never
	// returned; a returned Device lists their names in SecretNames.
	Secrets map[string]string `json:"secrets,omitempty"`
	// SecretNames lists the names of the device's secrets, sorted.
	// Read-only: ignored on input.
	SecretNames []string `json:"secret_names,omitempty"`
	// CreatedAt, UpdatedAt and Version are kept by the Service and ignored
	// on input.
	CreatedAt time.Time `json:"created_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	Version   int64     `json:"version,omitempty"`
}

// Location is where a device is. Site, when set, is the id of an existing
// Site.
type Location struct {
	Site     string `json:"site"`
	Building string `json:"building"`
	Room     string `json:"room"`
	// Lat is from -90 to 90 and Lon from -180 to 180, in degrees (WGS 84).
	Lat *float64 `json:"lat"`
	Lon *float64 `json:"lon"`
}

// The device classes.
const (
	ClassCamera     = "camera"
	ClassSensor     = "sensor"
	ClassThermostat = "thermostat"
	ClassController = "controller"
	ClassPLC        = "plc"
	ClassGateway    = "gateway"
	ClassRouter     = "router"
	ClassMedical    = "medical"
	ClassHVAC       = "hvac"
	ClassLighting   = "lighting"
	ClassLock       = "lock"
	ClassPrinter    = "printer"
	ClassSpeaker    = "speaker"
	ClassTV         = "tv"
	ClassWearable   = "wearable"
	ClassOther      = "other"
)

// Classes lists every device class, in display order. Callers must not
// modify it.
var Classes = []string{
	ClassCamera, ClassSensor, ClassThermostat, ClassController, ClassPLC, ClassGateway, ClassRouter, ClassMedical,
	ClassHVAC, ClassLighting, ClassLock, ClassPrinter, ClassSpeaker, ClassTV, ClassWearable, ClassOther,
}

// The device statuses.
const (
	// StatusPending: discovered or registered, awaiting an operator's approval.
	StatusPending = "pending"
	// StatusActive: known and managed; the default.
	StatusActive = "active"
	// StatusQuarantined: isolated from the network by policy.
	StatusQuarantined = "quarantined"
	// StatusRetired: out of service, kept for the record.
	StatusRetired = "retired"
	// StatusUnmanaged: known but not under fleetward's management.
	StatusUnmanaged = "unmanaged"
)

// Statuses lists every device status. Callers must not modify it.
var Statuses = []string{StatusPending, StatusActive, StatusQuarantined, StatusRetired, StatusUnmanaged}

// Limits on a device's fields.
const (
	MaxNameLen       = 128  // characters in Name
	MaxTextLen       = 256  // characters in the other single-line text fields
	MaxTags          = 32   // tags per device
	MaxAddresses     = 64   // MACs, and IPs, per device
	MaxAttributes    = 64   // attributes per device
	MaxAttrKeyLen    = 128  // bytes in an attribute's name
	MaxAttrValueLen  = 4096 // bytes in an attribute's value
	MaxSecrets       = 16   // secrets per device
	MaxSecretLen     = 4096 // bytes in a secret's value
	maxIDLen         = 63
	maxTagLen        = 64
	maxSecretNameLen = 64
)

// Times must lie within these bounds: stored as Unix nanoseconds, where 0
// means "never", a time must be after the epoch and before 2262.
var (
	minTime = time.Unix(0, 1).UTC()
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Validate reports whether d is acceptable input for CreateDevice: every
// field well-formed (addresses, tags and digests may be in any form that
// normalizes, e.g. upper-case MACs). Read-only fields are ignored; an empty
// ID is fine (one is generated). It does not check that the site exists.
// Returns an Invalid *apperr.Error naming the field, e.g. "location.lat",
// "tags[3]", "macs[0]".
func (d Device) Validate() error {
	_, err := d.normalized()
	return err
}

// normalized returns a copy of d in canonical form (trimmed text, canonical
// addresses, lower-case deduplicated tags, default status) with read-only
// fields cleared, or the first validation error.
func (d Device) normalized() (Device, error) {
	out := Device{
		ID:     d.ID,
		Status: d.Status,
	}
	if out.ID != "" {
		if msg := checkID(out.ID); msg != "" {
			return Device{}, apperr.InvalidField("id", "%s", msg)
		}
	}
	var err error
	if out.Name, err = cleanText("name", d.Name, MaxNameLen); err != nil {
		return Device{}, err
	}
	if out.Name == "" {
		return Device{}, apperr.InvalidField("name", "is required")
	}
	out.Class = strings.ToLower(strings.TrimSpace(d.Class))
	if out.Class == "" {
		return Device{}, apperr.InvalidField("class", "is required; one of %s", strings.Join(Classes, ", "))
	}
	if !slices.Contains(Classes, out.Class) {
		return Device{}, apperr.InvalidField("class", "%s is not a device class; one of %s", quote(d.Class), strings.Join(Classes, ", "))
	}
	for _, f := range []struct {
		name     string
		in       string
		out      *string
		maxRunes int
	}{
		{"vendor", d.Vendor, &out.Vendor, MaxTextLen},
		{"model", d.Model, &out.Model, MaxTextLen},
		{"serial", d.Serial, &out.Serial, MaxTextLen},
		{"firmware_version", d.FirmwareVersion, &out.FirmwareVersion, MaxTextLen},
		{"os", d.OS, &out.OS, MaxTextLen},
		{"os_version", d.OSVersion, &out.OSVersion, MaxTextLen},
		{"owner", d.Owner, &out.Owner, MaxTextLen},
		{"segment", d.Segment, &out.Segment, MaxTextLen},
		{"location.building", d.Location.Building, &out.Location.Building, MaxTextLen},
		{"location.room", d.Location.Room, &out.Location.Room, MaxTextLen},
	} {
		if *f.out, err = cleanText(f.name, f.in, f.maxRunes); err != nil {
			return Device{}, err
		}
	}
	if out.MACs, err = normalizeMACs(d.MACs); err != nil {
		return Device{}, err
	}
	if out.IPs, err = normalizeIPs(d.IPs); err != nil {
		return Device{}, err
	}
	if out.ConfigDigest, err = normalizeDigest(d.ConfigDigest); err != nil {
		return Device{}, err
	}
	out.Location.Site = strings.TrimSpace(d.Location.Site)
	if out.Location.Site != "" {
		if msg := checkID(out.Location.Site); msg != "" {
			return Device{}, apperr.InvalidField("location.site", "%s", msg)
		}
	}
	if out.Location.Lat, err = checkCoordinate("location.lat", d.Location.Lat, 90); err != nil {
		return Device{}, err
	}
	if out.Location.Lon, err = checkCoordinate("location.lon", d.Location.Lon, 180); err != nil {
		return Device{}, err
	}
	if out.Tags, err = normalizeTags(d.Tags); err != nil {
		return Device{}, err
	}
	if out.Status == "" {
		out.Status = StatusActive
	}
	if !slices.Contains(Statuses, out.Status) {
		return Device{}, apperr.InvalidField("status", "%s is not a status; one of %s", quote(d.Status), strings.Join(Statuses, ", "))
	}
	if out.FirstSeen, err = checkTime("first_seen", d.FirstSeen); err != nil {
		return Device{}, err
	}
	if out.LastSeen, err = checkTime("last_seen", d.LastSeen); err != nil {
		return Device{}, err
	}
	if math.IsNaN(d.RiskScore) || d.RiskScore < 0 || d.RiskScore > 100 {
		return Device{}, apperr.InvalidField("risk_score", "must be from 0 to 100")
	}
	out.RiskScore = d.RiskScore
	if out.Attributes, err = checkAttributes(d.Attributes); err != nil {
		return Device{}, err
	}
	if out.Secrets, err = checkSecrets(d.Secrets); err != nil {
		return Device{}, err
	}
	return out, nil
}

// checkID returns why id is not a valid device, site or group id, or "".
func checkID(id string) string {
	if len(id) > maxIDLen {
		return "must be at most 63 characters"
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return "must be lower-case letters, digits, '.', '_' and '-', starting with a letter or digit (" + quote(id) + ")"
		}
	}
	if id == "" {
		return "is required"
	}
	return ""
}

// newID returns prefix and 12 random lower-case base32 characters (60 bits).
func newID(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	s := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
	return prefix + s[:12]
}

// cleanText trims s and checks that it is valid UTF-8 without control
// characters and at most maxRunes characters long.
func cleanText(field, s string, maxRunes int) (string, error) {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) {
		return "", apperr.InvalidField(field, "is not valid UTF-8")
	}
	n := 0
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return "", apperr.InvalidField(field, "must not contain control characters")
		}
		n++
	}
	if n > maxRunes {
		return "", apperr.InvalidField(field, "is %d characters long; at most %d are allowed", n, maxRunes)
	}
	return s, nil
}

// quote quotes a caller's value for an error message, shortened so a huge
// input does not make a huge error.
func quote(s string) string {
	if len(s) > 64 {
		return strconv.Quote(s[:64]) + "…"
	}
	return strconv.Quote(s)
}

// normalizeMACs parses EUI-48 and EUI-64 addresses in any form net.ParseMAC
// accepts and returns them in lower-case colon form, deduplicated in input
// order.
func normalizeMACs(in []string) ([]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	if len(in) > MaxAddresses {
		return nil, apperr.InvalidField("macs", "has %d addresses; at most %d are allowed", len(in), MaxAddresses)
	}
	out := make([]string, 0, len(in))
	for i, s := range in {
		hw, err := net.ParseMAC(strings.TrimSpace(s))
		if err != nil || (len(hw) != 6 && len(hw) != 8) {
			return nil, apperr.InvalidField(indexed("macs", i), "%s is not a MAC address (EUI-48 or EUI-64, e.g. aa:bb:cc:dd:ee:ff)", quote(s))
		}
		m := hw.String()
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out, nil
}

// normalizeIPs parses IPv4 and IPv6 addresses and returns them in canonical
// form (IPv4-mapped IPv6 addresses as IPv4), deduplicated in input order.
func normalizeIPs(in []string) ([]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	if len(in) > MaxAddresses {
		return nil, apperr.InvalidField("ips", "has %d addresses; at most %d are allowed", len(in), MaxAddresses)
	}
	out := make([]string, 0, len(in))
	for i, s := range in {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return nil, apperr.InvalidField(indexed("ips", i), "%s is not an IP address", quote(s))
		}
		if a.Zone() != "" {
			return nil, apperr.InvalidField(indexed("ips", i), "%s carries a zone, which means nothing outside the host that wrote it", quote(s))
		}
		c := a.Unmap().String()
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

// digestLens maps the accepted digest algorithms to their hex lengths.
var digestLens = map[string]int{"sha256": 64, "sha384": 96, "sha512": 128}

// normalizeDigest checks "<alg>:<hex>" and lower-cases the hex.
func normalizeDigest(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	alg, hex, ok := strings.Cut(s, ":")
	alg = strings.ToLower(alg)
	n, known := digestLens[alg]
	if !ok || !known || len(hex) != n {
		return "", apperr.InvalidField("config_digest", "must be \"sha256:<64 hex digits>\" (or sha384, sha512)")
	}
	hex = strings.ToLower(hex)
	for i := 0; i < len(hex); i++ {
		if c := hex[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", apperr.InvalidField("config_digest", "must be \"sha256:<64 hex digits>\" (or sha384, sha512)")
		}
	}
	return alg + ":" + hex, nil
}

func checkCoordinate(field string, v *float64, limit float64) (*float64, error) {
	if v == nil {
		return nil, nil
	}
	if math.IsNaN(*v) || *v < -limit || *v > limit {
		return nil, apperr.InvalidField(field, "must be from %g to %g degrees", -limit, limit)
	}
	c := *v
	return &c, nil
}

func checkTime(field string, t time.Time) (time.Time, error) {
	if t.IsZero() {
		return time.Time{}, nil
	}
	if t.Before(minTime) || !t.Before(maxTime) {
		return time.Time{}, apperr.InvalidField(field, "must be after 1970-01-01 and before 2200-01-01")
	}
	return t.UTC(), nil
}

// checkTag returns why a (lower-cased) tag is malformed, or "".
func checkTag(t string) string {
	if t == "" {
		return "is empty"
	}
	if len(t) > maxTagLen {
		return "must be at most 64 characters"
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == ':' || c == '.' || c == '_' || c == '-'):
		default:
			return quote(t) + " must be lower-case letters, digits, ':', '.', '_' and '-', starting with a letter or digit"
		}
	}
	return ""
}

// normalizeTags lower-cases, checks and deduplicates tags, keeping the
// first occurrence's position.
func normalizeTags(in []string) ([]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]string, 0, len(in))
	for i, t := range in {
		t = strings.ToLower(strings.TrimSpace(t))
		if msg := checkTag(t); msg != "" {
			return nil, apperr.InvalidField(indexed("tags", i), "%s", msg)
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
		if len(out) > MaxTags {
			return nil, apperr.InvalidField("tags", "at most %d distinct tags are allowed", MaxTags)
		}
	}
	return out, nil
}

func checkAttributes(in map[string]string) (map[string]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	if len(in) > MaxAttributes {
		return nil, apperr.InvalidField("attributes", "has %d entries; at most %d are allowed", len(in), MaxAttributes)
	}
	out := make(map[string]string, len(in))
	for _, k := range sortedKeys(in) {
		v := in[k]
		if k == "" || len(k) > MaxAttrKeyLen {
			return nil, apperr.InvalidField("attributes", "names must be 1 to %d bytes long", MaxAttrKeyLen)
		}
		if _, err := cleanText("attributes", k, MaxAttrKeyLen); err != nil || strings.TrimSpace(k) != k {
			return nil, apperr.InvalidField("attributes", "name %s must be printable text without surrounding spaces", quote(k))
		}
		if len(v) > MaxAttrValueLen {
			return nil, apperr.InvalidField("attributes."+k, "is %d bytes long; at most %d are allowed", len(v), MaxAttrValueLen)
		}
		if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
			return nil, apperr.InvalidField("attributes."+k, "must be valid UTF-8 without NUL characters")
		}
		out[k] = v
	}
	return out, nil
}

// checkSecretName returns why a secret's name is malformed, or "".
func checkSecretName(n string) string {
	if n == "" || len(n) > maxSecretNameLen {
		return "secret names must be 1 to 64 characters"
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return "secret name " + quote(n) + " must be lower-case letters, digits, '.', '_' and '-', starting with a letter or digit"
		}
	}
	return ""
}

// checkSecrets checks names and values; the error names the secret, never
// its value.
func checkSecrets(in map[string]string) (map[string]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	if len(in) > MaxSecrets {
		return nil, apperr.InvalidField("secrets", "has %d entries; at most %d are allowed", len(in), MaxSecrets)
	}
	out := make(map[string]string, len(in))
	for _, k := range sortedKeys(in) {
		if msg := checkSecretName(k); msg != "" {
			return nil, apperr.InvalidField("secrets", "%s", msg)
		}
		v := in[k]
		if v == "" || len(v) > MaxSecretLen {
			return nil, apperr.InvalidField("secrets."+k, "must be 1 to %d bytes long", MaxSecretLen)
		}
		out[k] = v
	}
	return out, nil
}

func indexed(field string, i int) string { return field + "[" + strconv.Itoa(i) + "]" }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
