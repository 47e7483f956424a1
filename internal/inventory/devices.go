package inventory

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/bus"
	"github.com/fleetward/fleetward/internal/store"
)

// DevicePatch changes some fields of a device. A nil field stays unchanged;
// a non-nil one replaces the field (an empty list or map clears it). The
// id never changes.
type DevicePatch struct {
	// IfVersion, when set, makes the update conditional: it fails with
	// Conflict unless the device is at this version.
	IfVersion       *int64    `json:"if_version,omitempty"`
	Name            *string   `json:"name,omitempty"`
	Class           *string   `json:"class,omitempty"`
	Vendor          *string   `json:"vendor,omitempty"`
	Model           *string   `json:"model,omitempty"`
	Serial          *string   `json:"serial,omitempty"`
	MACs            *[]string `json:"macs,omitempty"`
	IPs             *[]string `json:"ips,omitempty"`
	FirmwareVersion *string   `json:"firmware_version,omitempty"`
	OS              *string   `json:"os,omitempty"`
	OSVersion       *string   `json:"os_version,omitempty"`
	ConfigDigest    *string   `json:"config_digest,omitempty"`
	// Location replaces the whole location; send {} to clear it.
	Location   *Location          `json:"location,omitempty"`
	Owner      *string            `json:"owner,omitempty"`
	Segment    *string            `json:"segment,omitempty"`
	Tags       *[]string          `json:"tags,omitempty"`
	Status     *string            `json:"status,omitempty"`
	FirstSeen  *time.Time         `json:"first_seen,omitempty"`
	LastSeen   *time.Time         `json:"last_seen,omitempty"`
	RiskScore  *float64           `json:"risk_score,omitempty"`
	Attributes *map[string]string `json:"attributes,omitempty"`
	// Secrets adds or replaces the named secrets; other secrets stay.
	Secrets map[string]string `json:"secrets,omitempty"`
	// RemoveSecrets deletes the named secrets; unknown names are ignored.
	RemoveSecrets []string `json:"remove_secrets,omitempty"`
}

// apply returns d with the patch's fields replaced. Secrets are not
// applied; see mergeSecrets.
func (p *DevicePatch) apply(d Device) Device {
	patchField(&d.Name, p.Name)
	patchField(&d.Class, p.Class)
	patchField(&d.Vendor, p.Vendor)
	patchField(&d.Model, p.Model)
	patchField(&d.Serial, p.Serial)
	patchField(&d.FirmwareVersion, p.FirmwareVersion)
	patchField(&d.OS, p.OS)
	patchField(&d.OSVersion, p.OSVersion)
	patchField(&d.ConfigDigest, p.ConfigDigest)
	patchField(&d.Owner, p.Owner)
	patchField(&d.Segment, p.Segment)
	patchField(&d.Status, p.Status)
	patchField(&d.MACs, p.MACs)
	patchField(&d.IPs, p.IPs)
	patchField(&d.Location, p.Location)
	patchField(&d.Tags, p.Tags)
	patchField(&d.FirstSeen, p.FirstSeen)
	patchField(&d.LastSeen, p.LastSeen)
	patchField(&d.RiskScore, p.RiskScore)
	patchField(&d.Attributes, p.Attributes)
	return d
}

// patchField replaces *dst with *src, or leaves it when src is nil.
func patchField[T any](dst, src *T) {
	if src != nil {
		*dst = *src
	}
}

// deviceChange is one validated device change, ready to be written.
type deviceChange struct {
	created bool
	old     Device // the stored device before an update
	dev     Device // the device as it will be stored (no Secrets)
	// setSecrets are sealed and stored; removeSecrets deleted.
	setSecrets    map[string]string
	removeSecrets []string
	tagsChanged   bool
	events        []bus.Event
}

// prepareCreate turns a normalized device into a creation: id, times,
// version 1, secret names, and its event.
func (s *Service) prepareCreate(ctx context.Context, d Device, now time.Time) (*deviceChange, error) {
	if d.ID == "" {
		d.ID = newID("dev-")
	}
	c := &deviceChange{created: true, setSecrets: d.Secrets, tagsChanged: true}
	d.Secrets = nil
	d.SecretNames = sortedKeys(c.setSecrets)
	if len(d.SecretNames) == 0 {
		d.SecretNames = nil
	}
	d.CreatedAt, d.UpdatedAt, d.Version = now, now, 1
	c.dev = d
	ev, err := s.newEvent(ctx, EventDeviceCreated, d.ID, d, now)
	if err != nil {
		return nil, err
	}
	c.events = []bus.Event{ev}
	return c, nil
}

// prepareUpdate compares a normalized next state with the stored old one.
// It returns nil when nothing changes.
func (s *Service) prepareUpdate(ctx context.Context, old, next Device, removeSecrets []string, now time.Time) (*deviceChange, error) {
	next.ID, next.CreatedAt = old.ID, old.CreatedAt
	set := next.Secrets
	next.Secrets = nil
	var removed []string
	for _, n := range removeSecrets {
		if msg := checkSecretName(n); msg != "" {
			return nil, apperr.InvalidField("remove_secrets", "%s", msg)
		}
		if _, ok := set[n]; ok {
			return nil, apperr.InvalidField("secrets."+n, "is both set and removed")
		}
		if slices.Contains(old.SecretNames, n) && !slices.Contains(removed, n) {
			removed = append(removed, n)
		}
	}
	names := slices.DeleteFunc(slices.Clone(old.SecretNames), func(n string) bool { return slices.Contains(removed, n) })
	for n := range set {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	if len(names) > MaxSecrets {
		return nil, apperr.InvalidField("secrets", "a device may hold at most %d secrets", MaxSecrets)
	}
	slices.Sort(names)
	if len(names) == 0 {
		names = nil
	}
	next.SecretNames = names

	changed := diffDevices(&old, &next)
	if len(set) > 0 {
		changed["secrets_set"] = sortedKeys(set)
	}
	if len(removed) > 0 {
		slices.Sort(removed)
		changed["secrets_removed"] = removed
	}
	if len(changed) == 0 {
		return nil, nil
	}
	next.UpdatedAt, next.Version = now, old.Version+1
	c := &deviceChange{old: old, dev: next, setSecrets: set, removeSecrets: removed, tagsChanged: !slices.Equal(old.Tags, next.Tags)}
	ev, err := s.newEvent(ctx, EventDeviceUpdated, next.ID, map[string]any{"version": next.Version, "changed": changed}, now)
	if err != nil {
		return nil, err
	}
	c.events = append(c.events, ev)
	if old.Status != next.Status {
		ev, err := s.newEvent(ctx, EventDeviceStatusChanged, next.ID, map[string]any{"from": old.Status, "to": next.Status}, now)
		if err != nil {
			return nil, err
		}
		c.events = append(c.events, ev)
	}
	return c, nil
}

// diffDevices returns the fields of b that differ from a, by JSON name
// (location fields as "location.site", …), with b's values.
func diffDevices(a, b *Device) map[string]any {
	out := map[string]any{}
	str := func(name, x, y string) {
		if x != y {
			out[name] = y
		}
	}
	list := func(name string, x, y []string) {
		if !slices.Equal(x, y) {
			if y == nil {
				y = []string{}
			}
			out[name] = y
		}
	}
	coord := func(name string, x, y *float64) {
		if (x == nil) != (y == nil) || (x != nil && *x != *y) {
			out[name] = y
		}
	}
	tm := func(name string, x, y time.Time) {
		if !x.Equal(y) {
			out[name] = y
		}
	}
	str("name", a.Name, b.Name)
	str("class", a.Class, b.Class)
	str("vendor", a.Vendor, b.Vendor)
	str("model", a.Model, b.Model)
	str("serial", a.Serial, b.Serial)
	list("macs", a.MACs, b.MACs)
	list("ips", a.IPs, b.IPs)
	str("firmware_version", a.FirmwareVersion, b.FirmwareVersion)
	str("os", a.OS, b.OS)
	str("os_version", a.OSVersion, b.OSVersion)
	str("config_digest", a.ConfigDigest, b.ConfigDigest)
	str("location.site", a.Location.Site, b.Location.Site)
	str("location.building", a.Location.Building, b.Location.Building)
	str("location.room", a.Location.Room, b.Location.Room)
	coord("location.lat", a.Location.Lat, b.Location.Lat)
	coord("location.lon", a.Location.Lon, b.Location.Lon)
	str("owner", a.Owner, b.Owner)
	str("segment", a.Segment, b.Segment)
	list("tags", a.Tags, b.Tags)
	str("status", a.Status, b.Status)
	tm("first_seen", a.FirstSeen, b.FirstSeen)
	tm("last_seen", a.LastSeen, b.LastSeen)
	if a.RiskScore != b.RiskScore {
		out["risk_score"] = b.RiskScore
	}
	if !mapsEqual(a.Attributes, b.Attributes) {
		attrs := b.Attributes
		if attrs == nil {
			attrs = map[string]string{}
		}
		out["attributes"] = attrs
	}
	return out
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// writeChanges stores prepared changes in tx, creations with multi-row
// inserts. It leaves their events to the caller, which records them with
// the rest of its transaction's (see change).
func (s *Service) writeChanges(ctx context.Context, tx *store.Tx, changes []*deviceChange) error {
	var creates []*Device
	for _, c := range changes {
		if c.created {
			creates = append(creates, &c.dev)
		}
	}
	if len(creates) > 0 {
		if err := insertDevices(ctx, tx, creates); err != nil {
			return err
		}
	}
	for _, c := range changes {
		if !c.created {
			if err := updateDevice(ctx, tx, &c.dev, c.tagsChanged); err != nil {
				return err
			}
			if err := deleteSecrets(ctx, tx, c.dev.ID, c.removeSecrets); err != nil {
				return err
			}
		}
		if err := s.writeSecrets(ctx, tx, c.dev.ID, c.setSecrets, store.Nanos(c.dev.UpdatedAt)); err != nil {
			return err
		}
	}
	return nil
}

// checkSiteExists returns Invalid on location.site when a device's site
// does not exist.
func checkSiteExists(ctx context.Context, q store.Querier, site string) error {
	if site == "" {
		return nil
	}
	ok, err := siteExists(ctx, q, site)
	if err != nil {
		return err
	}
	if !ok {
		return apperr.InvalidField("location.site", "site %s does not exist; create it first", quote(site))
	}
	return nil
}

// CreateDevice validates d and stores it with version 1, generating an id
// when d has none. Its secrets are sealed and only their names returned.
// Returns Invalid (naming the field) for a malformed device or a site that
// does not exist, and Conflict when the id is taken.
func (s *Service) CreateDevice(ctx context.Context, d Device) (Device, error) {
	n, err := d.normalized()
	if err != nil {
		return Device{}, err
	}
	now := s.nowUTC()
	c, err := s.prepareCreate(ctx, n, now)
	if err != nil {
		return Device{}, err
	}
	// No op: a conflict gets the device's own message below, and any other
	// error, application errors too, is named with the device here.
	err = s.change(ctx, "", func(tx *store.Tx) ([]bus.Event, error) {
		if err := checkSiteExists(ctx, tx, c.dev.Location.Site); err != nil {
			return nil, err
		}
		if err := s.writeChanges(ctx, tx, []*deviceChange{c}); err != nil {
			return nil, err
		}
		return c.events, nil
	})
	if apperr.Is(err, apperr.Conflict) {
		return Device{}, apperr.Errorf(apperr.Conflict, "device %s exists already", c.dev.ID)
	}
	if err != nil {
		return Device{}, fmt.Errorf("create device %s: %w", c.dev.ID, err)
	}
	return c.dev, nil
}

// GetDevice returns a device, with its secrets' names but not their values.
// Returns NotFound when it does not exist.
func (s *Service) GetDevice(ctx context.Context, id string) (Device, error) {
	return s.getDevice(ctx, s.db, id, false)
}

// UpdateDevice applies a patch to a device and returns the result. The
// version grows by one when anything changed; a patch that changes nothing
// returns the device as it is, records nothing and emits nothing. Returns
// NotFound when the device does not exist, Invalid (naming the field) when
// the result would be invalid, and Conflict when p.IfVersion is set and the
// device is at another version.
func (s *Service) UpdateDevice(ctx context.Context, id string, p DevicePatch) (Device, error) {
	if p.Status != nil && *p.Status == "" {
		// Never let an empty value silently turn, say, a quarantined
		// device active.
		return Device{}, apperr.InvalidField("status", "must be one of %s", strings.Join(Statuses, ", "))
	}
	var out Device
	now := s.nowUTC()
	err := s.change(ctx, "update device "+id, func(tx *store.Tx) ([]bus.Event, error) {
		old, err := s.getDevice(ctx, tx, id, true)
		if err != nil {
			return nil, err
		}
		if p.IfVersion != nil && *p.IfVersion != old.Version {
			return nil, apperr.Errorf(apperr.Conflict, "device %s is at version %d, not %d: it changed since it was read", id, old.Version, *p.IfVersion)
		}
		next := p.apply(old)
		next.Secrets = p.Secrets
		next, err = next.normalized()
		if err != nil {
			return nil, err
		}
		c, err := s.prepareUpdate(ctx, old, next, p.RemoveSecrets, now)
		if err != nil {
			return nil, err
		}
		if c == nil {
			out = old
			return nil, nil
		}
		if c.dev.Location.Site != old.Location.Site {
			if err := checkSiteExists(ctx, tx, c.dev.Location.Site); err != nil {
				return nil, err
			}
		}
		if err := s.writeChanges(ctx, tx, []*deviceChange{c}); err != nil {
			return nil, err
		}
		out = c.dev
		return c.events, nil
	})
	if err != nil {
		return Device{}, err
	}
	return out, nil
}

// DeleteDevice removes a device with its tags, secrets and group
// memberships. Returns NotFound when it does not exist.
func (s *Service) DeleteDevice(ctx context.Context, id string) error {
	return s.change(ctx, "delete device "+id, func(tx *store.Tx) ([]bus.Event, error) {
		old, err := s.getDevice(ctx, tx, id, true)
		if err != nil {
			return nil, err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM devices WHERE id = ?`, id); err != nil {
			return nil, fmt.Errorf("delete device %s: %w", id, err)
		}
		ev, err := s.newEvent(ctx, EventDeviceDeleted, id, map[string]any{"id": id, "name": old.Name}, s.nowUTC())
		if err != nil {
			return nil, err
		}
		return []bus.Event{ev}, nil
	})
}

// DeviceSecret opens one of a device's sealed secrets and returns its
// value. Every access is recorded in the ledger (by name, never the value).
// Returns NotFound when the device or the secret does not exist.
func (s *Service) DeviceSecret(ctx context.Context, id, name string) (string, error) {
	if msg := checkSecretName(name); msg != "" {
		return "", apperr.InvalidField("name", "%s", msg)
	}
	if s.sealer == nil {
		return "", fmt.Errorf("open secret %s of device %s: the inventory has no sealer", name, id)
	}
	var plain []byte
	// No op: DeviceSecret returns errors as they come; those of reading and
	// opening the secret name it already.
	err := s.change(ctx, "", func(tx *store.Tx) ([]bus.Event, error) {
		if _, err := s.getDevice(ctx, tx, id, false); err != nil {
			return nil, err
		}
		var sealed string
		err := tx.QueryRow(ctx, `SELECT sealed FROM device_secrets WHERE device_id = ? AND name = ?`, id, name).Scan(&sealed)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, apperr.NotFoundf("device %s has no secret %s", id, quote(name))
		}
		if err != nil {
			return nil, fmt.Errorf("read secret %s of device %s: %w", name, id, err)
		}
		if plain, err = s.sealer.Open(sealed, secretContext(id, name)); err != nil {
			return nil, fmt.Errorf("open secret %s of device %s: %w", name, id, err)
		}
		ev, err := s.newEvent(ctx, EventDeviceSecretAccessed, id, map[string]any{"name": name}, s.nowUTC())
		if err != nil {
			return nil, err
		}
		return []bus.Event{ev}, nil
	})
	if err != nil {
		return "", err
	}
	return string(plain), nil
}
