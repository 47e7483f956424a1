package inventory

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/bus"
	"github.com/fleetward/fleetward/internal/store/storetest"
)

func TestDeviceRoundTripsWithEveryField(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e)
		f.site(t, "berlin")
		f.site(t, "hamburg")
		in := fullDevice("cam-1", "berlin")
		created, err := f.s.CreateDevice(f.ctx, in)
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		want := normalize(t, in)
		want.SecretNames = []string{"admin_password", "snmp_community"}
		if diff := sameDevice(created, want); diff != "" {
			t.Fatalf("created device differs:%s", diff)
		}
		if created.Version != 1 || created.CreatedAt.IsZero() || !created.CreatedAt.Equal(created.UpdatedAt) {
			t.Fatalf("created: version %d, created_at %v, updated_at %v", created.Version, created.CreatedAt, created.UpdatedAt)
		}
		if created.Secrets != nil {
			t.Fatalf("created device returned secret values: %v", created.Secrets)
		}
		if got := created.MACs; !slices.Equal(got, []string{"ac:cc:8e:12:34:56", "ac:cc:8e:12:34:57"}) {
			t.Errorf("macs = %v, want lower-case colon form", got)
		}
		if got := created.IPs; !slices.Equal(got, []string{"10.1.2.3", "10.1.2.4", "2001:db8::1"}) {
			t.Errorf("ips = %v, want canonical form", got)
		}
		if got := created.Tags; !slices.Equal(got, []string{"entrance", "pci"}) {
			t.Errorf("tags = %v, want lower-cased and deduplicated", got)
		}

		got, err := f.s.GetDevice(f.ctx, "cam-1")
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		if diff := sameDevice(got, created); diff != "" || got.Version != 1 || !got.CreatedAt.Equal(created.CreatedAt) {
			t.Fatalf("get differs from create (version %d):%s", got.Version, diff)
		}

		updated, err := f.s.UpdateDevice(f.ctx, "cam-1", DevicePatch{
			IfVersion:       ptr(int64(1)),
			Name:            ptr("Lobby camera (new)"),
			Class:           ptr("sensor"),
			Vendor:          ptr("Bosch"),
			Model:           ptr("FLEXIDOME"),
			Serial:          ptr("B-1"),
			MACs:            ptr([]string{"AA:BB:CC:DD:EE:FF"}),
			IPs:             ptr([]string{"192.0.2.10"}),
			FirmwareVersion: ptr("11.0"),
			OS:              ptr("Linux"),
			OSVersion:       ptr("6.1"),
			ConfigDigest:    ptr(""),
			Location:        &Location{Site: "hamburg", Room: "2.02"},
			Owner:           ptr("security"),
			Segment:         ptr("iot"),
			Tags:            ptr([]string{}),
			Status:          ptr(StatusQuarantined),
			FirstSeen:       ptr(time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)),
			LastSeen:        ptr(time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC)),
			RiskScore:       ptr(97.0),
			Attributes:      ptr(map[string]string{"note": "replaced"}),
			Secrets:         map[string]string{"ssh_key": "-----BEGIN OPENSSH PRIVATE KEY-----"},
			RemoveSecrets:   []string{"snmp_community"},
		})
		if err != nil {
			t.Fatalf("update: %v", err)
		}
		want = Device{ID: "cam-1", Name: "Lobby camera (new)", Class: "sensor", Vendor: "Bosch", Model: "FLEXIDOME", Serial: "B-1",
			MACs: []string{"aa:bb:cc:dd:ee:ff"}, IPs: []string{"192.0.2.10"}, FirmwareVersion: "11.0", OS: "Linux", OSVersion: "6.1",
			Location: Location{Site: "hamburg", Room: "2.02"}, Owner: "security", Segment: "iot", Status: StatusQuarantined,
			FirstSeen: time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC), LastSeen: time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC),
			RiskScore: 97, Attributes: map[string]string{"note": "replaced"}, SecretNames: []string{"admin_password", "ssh_key"}}
		if diff := sameDevice(updated, want); diff != "" {
			t.Fatalf("updated device differs:%s", diff)
		}
		if updated.Version != 2 || !updated.CreatedAt.Equal(created.CreatedAt) {
			t.Fatalf("updated: version %d (want 2), created_at %v (want %v)", updated.Version, updated.CreatedAt, created.CreatedAt)
		}
		got, err = f.s.GetDevice(f.ctx, "cam-1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := sameDevice(got, updated); diff != "" {
			t.Fatalf("get after update differs:%s", diff)
		}

		same, err := f.s.UpdateDevice(f.ctx, "cam-1", DevicePatch{Name: ptr("Lobby camera (new)")})
		if err != nil || same.Version != 2 {
			t.Fatalf("a patch that changes nothing: version %d, err %v; want 2 and no error", same.Version, err)
		}

		if err := f.s.DeleteDevice(f.ctx, "cam-1"); err != nil {
			t.Fatalf("delete: %v", err)
		}
		if _, err := f.s.GetDevice(f.ctx, "cam-1"); !apperr.Is(err, apperr.NotFound) {
			t.Fatalf("get after delete: %v, want not_found", err)
		}
		if err := f.s.DeleteDevice(f.ctx, "cam-1"); !apperr.Is(err, apperr.NotFound) {
			t.Fatalf("second delete: %v, want not_found", err)
		}
		for _, table := range []string{"device_tags", "device_secrets", "group_members"} {
			var n int
			if err := e.DB.QueryRow(f.ctx, `SELECT COUNT(*) FROM `+table+` WHERE device_id = ?`, "cam-1").Scan(&n); err != nil || n != 0 {
				t.Errorf("%s rows of a deleted device: %d (%v)", table, n, err)
			}
		}
	})
}

func TestCreateDeviceGeneratesIDsAndRefusesDuplicates(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e)
		d, err := f.s.CreateDevice(f.ctx, Device{Name: "thermostat", Class: "thermostat"})
		if err != nil {
			t.Fatal(err)
		}
		if len(d.ID) != 16 || !strings.HasPrefix(d.ID, "dev-") || checkID(d.ID) != "" {
			t.Fatalf("generated id %q, want dev- and 12 base32 characters", d.ID)
		}
		if d.Status != StatusActive {
			t.Errorf("status %q, want the default active", d.Status)
		}
		_, err = f.s.CreateDevice(f.ctx, Device{ID: d.ID, Name: "again", Class: "sensor"})
		if !apperr.Is(err, apperr.Conflict) {
			t.Fatalf("duplicate id: %v, want conflict", err)
		}
		_, err = f.s.CreateDevice(f.ctx, Device{Name: "nowhere", Class: "sensor", Location: Location{Site: "atlantis"}})
		if ae := apperr.As(err); ae == nil || ae.Code != apperr.Invalid || ae.Field != "location.site" {
			t.Fatalf("unknown site: %v, want invalid on location.site", err)
		}
		_, err = f.s.UpdateDevice(f.ctx, d.ID, DevicePatch{Location: &Location{Site: "atlantis"}})
		if ae := apperr.As(err); ae == nil || ae.Field != "location.site" {
			t.Fatalf("update to an unknown site: %v, want invalid on location.site", err)
		}
	})
}

func TestLookupsOfMalformedIDsAreNotFound(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e)
		if _, err := f.s.CreateGroup(f.ctx, Group{ID: "g", Name: "G"}); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"a\x00b", "\xff", "UPPER", "", strings.Repeat("a", 100)} {
			checks := map[string]error{}
			_, checks["GetDevice"] = f.s.GetDevice(f.ctx, id)
			_, checks["UpdateDevice"] = f.s.UpdateDevice(f.ctx, id, DevicePatch{Name: ptr("x")})
			checks["DeleteDevice"] = f.s.DeleteDevice(f.ctx, id)
			_, checks["DeviceSecret"] = f.s.DeviceSecret(f.ctx, id, "pin")
			_, checks["GetSite"] = f.s.GetSite(f.ctx, id)
			checks["DeleteSite"] = f.s.DeleteSite(f.ctx, id)
			_, checks["GetGroup"] = f.s.GetGroup(f.ctx, id)
			checks["DeleteGroup"] = f.s.DeleteGroup(f.ctx, id)
			checks["RemoveGroupMember"] = f.s.RemoveGroupMember(f.ctx, "g", id)
			for op, err := range checks {
				if !apperr.Is(err, apperr.NotFound) {
					t.Errorf("%s(%q) = %v, want not_found", op, id, err)
				}
			}
		}
	})
}

func TestUpdateDeviceChecksVersionAndInput(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e)
		if _, err := f.s.CreateDevice(f.ctx, Device{ID: "plc-1", Name: "PLC", Class: "plc", Status: StatusQuarantined}); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name  string
			patch DevicePatch
			code  apperr.Code
			field string
		}{
			{"a stale if_version is a conflict", DevicePatch{IfVersion: ptr(int64(7)), Name: ptr("x")}, apperr.Conflict, ""},
			{"an empty status does not reset a quarantine", DevicePatch{Status: ptr("")}, apperr.Invalid, "status"},
			{"an empty name is refused", DevicePatch{Name: ptr(" ")}, apperr.Invalid, "name"},
			{"a bad MAC is named by index", DevicePatch{MACs: ptr([]string{"aa:bb:cc:dd:ee:ff", "nope"})}, apperr.Invalid, "macs[1]"},
			{"a bad secret name is refused", DevicePatch{RemoveSecrets: []string{"Bad Name"}}, apperr.Invalid, "remove_secrets"},
			{"a secret both set and removed is refused", DevicePatch{Secrets: map[string]string{"pin": "1"}, RemoveSecrets: []string{"pin"}}, apperr.Invalid, "secrets.pin"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := f.s.UpdateDevice(f.ctx, "plc-1", tt.patch)
				ae := apperr.As(err)
				if ae == nil || ae.Code != tt.code || ae.Field != tt.field {
					t.Fatalf("got %v, want %s on %q", err, tt.code, tt.field)
				}
			})
		}
		d, err := f.s.GetDevice(f.ctx, "plc-1")
		if err != nil || d.Version != 1 || d.Status != StatusQuarantined {
			t.Fatalf("after refused updates: version %d status %s (%v); want 1, quarantined", d.Version, d.Status, err)
		}
		if _, err := f.s.UpdateDevice(f.ctx, "ghost", DevicePatch{Name: ptr("x")}); !apperr.Is(err, apperr.NotFound) {
			t.Fatalf("update of a missing device: %v, want not_found", err)
		}
	})
}

func TestDeviceValidationNamesTheField(t *testing.T) {
	ok := func() Device { return Device{Name: "ok", Class: "camera"} }
	with := func(mod func(d *Device)) Device {
		d := ok()
		mod(&d)
		return d
	}
	tests := []struct {
		name  string
		dev   Device
		field string
	}{
		{"an id with upper case is refused", with(func(d *Device) { d.ID = "Cam-1" }), "id"},
		{"an id starting with a dash is refused", with(func(d *Device) { d.ID = "-cam" }), "id"},
		{"an id of 64 characters is refused", with(func(d *Device) { d.ID = strings.Repeat("a", 64) }), "id"},
		{"a missing name is refused", with(func(d *Device) { d.Name = "" }), "name"},
		{"a name of 129 characters is refused", with(func(d *Device) { d.Name = strings.Repeat("é", 129) }), "name"},
		{"a name with a control character is refused", with(func(d *Device) { d.Name = "a\x00b" }), "name"},
		{"a name that is not UTF-8 is refused", with(func(d *Device) { d.Name = "a\xffb" }), "name"},
		{"a missing class is refused", with(func(d *Device) { d.Class = "" }), "class"},
		{"an unknown class is refused", with(func(d *Device) { d.Class = "toaster" }), "class"},
		{"a long vendor is refused", with(func(d *Device) { d.Vendor = strings.Repeat("v", 257) }), "vendor"},
		{"a bad MAC is named by index", with(func(d *Device) { d.MACs = []string{"aa:bb:cc:dd:ee:ff", "zz"} }), "macs[1]"},
		{"a 20-byte InfiniBand address is refused", with(func(d *Device) {
			d.MACs = []string{"00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01"}
		}), "macs[0]"},
		{"a bad IP is named by index", with(func(d *Device) { d.IPs = []string{"10.0.0.300"} }), "ips[0]"},
		{"an IP with a zone is refused", with(func(d *Device) { d.IPs = []string{"fe80::1%eth0"} }), "ips[0]"},
		{"a digest without algorithm is refused", with(func(d *Device) { d.ConfigDigest = strings.Repeat("a", 64) }), "config_digest"},
		{"a short digest is refused", with(func(d *Device) { d.ConfigDigest = "sha256:abcd" }), "config_digest"},
		{"a digest with non-hex is refused", with(func(d *Device) { d.ConfigDigest = "sha256:" + strings.Repeat("g", 64) }), "config_digest"},
		{"a malformed site id is refused", with(func(d *Device) { d.Location.Site = "Main Site" }), "location.site"},
		{"a latitude over 90 is refused", with(func(d *Device) { d.Location.Lat = ptr(90.5) }), "location.lat"},
		{"a longitude under -180 is refused", with(func(d *Device) { d.Location.Lon = ptr(-181.0) }), "location.lon"},
		{"a room with a newline is refused", with(func(d *Device) { d.Location.Room = "1\n2" }), "location.room"},
		{"a bad tag is named by index", with(func(d *Device) { d.Tags = []string{"ok", "ok2", "fine", "has space"} }), "tags[3]"},
		{"33 distinct tags are refused", with(func(d *Device) {
			for i := range 33 {
				d.Tags = append(d.Tags, "t"+strconv.Itoa(i))
			}
		}), "tags"},
		{"an unknown status is refused", with(func(d *Device) { d.Status = "lost" }), "status"},
		{"a first_seen before 1970 is refused", with(func(d *Device) { d.FirstSeen = time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC) }), "first_seen"},
		{"a last_seen after 2200 is refused", with(func(d *Device) { d.LastSeen = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) }), "last_seen"},
		{"a negative risk is refused", with(func(d *Device) { d.RiskScore = -1 }), "risk_score"},
		{"a risk over 100 is refused", with(func(d *Device) { d.RiskScore = 100.01 }), "risk_score"},
		{"65 attributes are refused", with(func(d *Device) {
			d.Attributes = map[string]string{}
			for i := range 65 {
				d.Attributes["k"+strconv.Itoa(i)] = "v"
			}
		}), "attributes"},
		{"an attribute value with NUL is refused", with(func(d *Device) { d.Attributes = map[string]string{"k": "a\x00"} }), "attributes.k"},
		{"an empty secret is refused", with(func(d *Device) { d.Secrets = map[string]string{"pin": ""} }), "secrets.pin"},
		{"a bad secret name is refused", with(func(d *Device) { d.Secrets = map[string]string{"Admin Password": "x"} }), "secrets"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.dev.Validate()
			ae := apperr.As(err)
			if ae == nil || ae.Code != apperr.Invalid || ae.Field != tt.field {
				t.Fatalf("Validate() = %v, want invalid on %q", err, tt.field)
			}
			if strings.Contains(ae.Message, "correct horse") {
				t.Fatalf("error quotes a secret: %v", ae)
			}
		})
	}
	t.Run("a device with every field set is valid", func(t *testing.T) {
		if err := fullDevice("cam-1", "berlin").Validate(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestChangesAreRecordedInTheLedgerAndPublished(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e)
		f.site(t, "berlin")
		if _, err := f.s.CreateDevice(f.ctx, fullDevice("cam-1", "berlin")); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.UpdateDevice(f.ctx, "cam-1", DevicePatch{Status: ptr(StatusQuarantined), RiskScore: ptr(80.0),
			Secrets: map[string]string{"admin_password": "new-password-value"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.DeviceSecret(f.ctx, "cam-1", "admin_password"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.CreateGroup(f.ctx, Group{ID: "wave-1", Name: "Wave 1"}); err != nil {
			t.Fatal(err)
		}
		if err := f.s.AddGroupMembers(f.ctx, "wave-1", []string{"cam-1"}); err != nil {
			t.Fatal(err)
		}
		if err := f.s.RemoveGroupMember(f.ctx, "wave-1", "cam-1"); err != nil {
			t.Fatal(err)
		}
		if err := f.s.DeleteGroup(f.ctx, "wave-1"); err != nil {
			t.Fatal(err)
		}
		if err := f.s.DeleteDevice(f.ctx, "cam-1"); err != nil {
			t.Fatal(err)
		}
		if err := f.s.DeleteSite(f.ctx, "berlin"); err != nil {
			t.Fatal(err)
		}
		// A refused change records nothing.
		if _, err := f.s.CreateDevice(f.ctx, Device{Name: "x", Class: "nope"}); err == nil {
			t.Fatal("invalid device accepted")
		}

		recorded := ledgerEvents(t, e.DB)
		var types []string
		for _, ev := range recorded {
			types = append(types, ev.Type)
		}
		want := []string{"site.created", "device.created", "device.updated", "device.status_changed", "device.secret_accessed",
			"group.created", "group.members_added", "group.member_removed", "group.deleted", "device.deleted", "site.deleted"}
		if !slices.Equal(types, want) {
			t.Fatalf("ledger types\n got %v\nwant %v", types, want)
		}
		published := f.pub.published()
		if len(published) != len(recorded) {
			t.Fatalf("published %d events, recorded %d", len(published), len(recorded))
		}
		ids := map[string]bool{}
		for i, ev := range recorded {
			if published[i].ID != ev.ID {
				t.Errorf("event %d: published %s, recorded %s", i, published[i].ID, ev.ID)
			}
			if ids[ev.ID] || ev.ID == "" {
				t.Errorf("event id %q repeated or empty", ev.ID)
			}
			ids[ev.ID] = true
			if ev.Actor != "operator:ada" || ev.Remote != "192.0.2.7" || ev.Time.IsZero() || ev.Subject == "" {
				t.Errorf("event %s: actor %q remote %q time %v subject %q", ev.Type, ev.Actor, ev.Remote, ev.Time, ev.Subject)
			}
			if err := bus.ValidateType(ev.Type); err != nil {
				t.Errorf("event type %q: %v", ev.Type, err)
			}
			for _, secret := range []string{"correct horse", "s3cr3t-community", "new-password-value"} {
				raw, _ := json.Marshal(ev)
				if strings.Contains(string(raw), secret) {
					t.Errorf("event %s carries a secret value: %s", ev.Type, raw)
				}
			}
		}
		var upd struct {
			Version int64          `json:"version"`
			Changed map[string]any `json:"changed"`
		}
		if err := json.Unmarshal(recorded[2].Data, &upd); err != nil {
			t.Fatal(err)
		}
		if upd.Version != 2 || upd.Changed["status"] != "quarantined" || upd.Changed["risk_score"] != 80.0 ||
			len(upd.Changed["secrets_set"].([]any)) != 1 || len(upd.Changed) != 3 {
			t.Errorf("device.updated data = %s, want version 2 and status, risk_score, secrets_set only", recorded[2].Data)
		}
		if string(recorded[3].Data) != `{"from":"active","to":"quarantined"}` {
			t.Errorf("status_changed data = %s", recorded[3].Data)
		}
	})
}

func TestAFailedPublishIsCountedAndTheChangeStands(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e)
		f.pub.fail = true
		if _, err := f.s.CreateDevice(f.ctx, Device{ID: "s-1", Name: "sensor", Class: "sensor"}); err != nil {
			t.Fatalf("create with the bus down: %v", err)
		}
		if _, err := f.s.GetDevice(f.ctx, "s-1"); err != nil {
			t.Fatalf("device lost: %v", err)
		}
		if n := f.s.PublishFailures(); n != 1 {
			t.Fatalf("PublishFailures = %d, want 1", n)
		}
		if n := len(ledgerEvents(t, e.DB)); n != 1 {
			t.Fatalf("ledger entries = %d, want 1", n)
		}
	})
}

func TestSecretsAreSealedAtRestAndNeverReturned(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e)
		f.site(t, "berlin")
		d, err := f.s.CreateDevice(f.ctx, fullDevice("cam-1", "berlin"))
		if err != nil {
			t.Fatal(err)
		}
		rows, err := e.DB.Query(f.ctx, `SELECT name, sealed FROM device_secrets WHERE device_id = ? ORDER BY name`, "cam-1")
		if err != nil {
			t.Fatal(err)
		}
		var sealed []string
		for rows.Next() {
			var name, s string
			if err := rows.Scan(&name, &s); err != nil {
				t.Fatal(err)
			}
			sealed = append(sealed, s)
			for _, plain := range []string{"correct horse", "s3cr3t-community"} {
				if strings.Contains(s, plain) {
					t.Errorf("secret %s stored in clear: %q", name, s)
				}
			}
		}
		rows.Close()
		if len(sealed) != 2 {
			t.Fatalf("%d sealed secrets stored, want 2", len(sealed))
		}
		// Nothing in the devices row (search text included) holds a value.
		var all string
		if err := e.DB.QueryRow(f.ctx, `SELECT name || search || attributes || secret_names FROM devices WHERE id = ?`, "cam-1").Scan(&all); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(all, "correct horse") {
			t.Fatal("a secret value is in the devices table")
		}
		raw, _ := json.Marshal(d)
		if strings.Contains(string(raw), "correct horse") || strings.Contains(string(raw), `"secrets"`) {
			t.Fatalf("returned device carries secrets: %s", raw)
		}
		got, err := f.s.DeviceSecret(f.ctx, "cam-1", "admin_password")
		if err != nil || got != "correct horse battery staple" {
			t.Fatalf("DeviceSecret = %q, %v", got, err)
		}
		// A sealed value moved to another name does not open: the
		// context binds it to its device and name.
		if _, err := e.DB.Exec(f.ctx, `UPDATE device_secrets SET sealed = ? WHERE device_id = ? AND name = ?`, sealed[0], "cam-1", "snmp_community"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.DeviceSecret(f.ctx, "cam-1", "snmp_community"); err == nil {
			t.Fatal("a sealed value opened under another name")
		}
		if _, err := f.s.DeviceSecret(f.ctx, "cam-1", "nope"); !apperr.Is(err, apperr.NotFound) {
			t.Fatalf("missing secret: %v, want not_found", err)
		}
		if _, err := f.s.DeviceSecret(f.ctx, "ghost", "admin_password"); !apperr.Is(err, apperr.NotFound) {
			t.Fatalf("missing device: %v, want not_found", err)
		}
	})
}

func TestSitesAndGroups(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e)
		ctx := f.ctx
		site, err := f.s.CreateSite(ctx, Site{ID: "muc", Name: "Munich plant", Address: "Werkstr. 1", Lat: ptr(48.1), Lon: ptr(11.6), Timezone: "Europe/Berlin"})
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.s.GetSite(ctx, "muc")
		if err != nil || got.Name != "Munich plant" || *got.Lat != 48.1 || got.Timezone != "Europe/Berlin" || !got.CreatedAt.Equal(site.CreatedAt) {
			t.Fatalf("GetSite = %+v, %v", got, err)
		}
		for _, tt := range []struct {
			name  string
			site  Site
			code  apperr.Code
			field string
		}{
			{"a duplicate site is a conflict", Site{ID: "muc", Name: "again"}, apperr.Conflict, ""},
			{"a site needs an id", Site{Name: "x"}, apperr.Invalid, "id"},
			{"a site needs a name", Site{ID: "x"}, apperr.Invalid, "name"},
			{"a site's time zone must exist", Site{ID: "x", Name: "x", Timezone: "Mars/Olympus"}, apperr.Invalid, "timezone"},
			{"a site's latitude must be in range", Site{ID: "x", Name: "x", Lat: ptr(-91.0)}, apperr.Invalid, "lat"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, err := f.s.CreateSite(ctx, tt.site)
				if ae := apperr.As(err); ae == nil || ae.Code != tt.code || ae.Field != tt.field {
					t.Fatalf("got %v, want %s on %q", err, tt.code, tt.field)
				}
			})
		}
		if _, err := f.s.CreateSite(ctx, Site{ID: "aachen", Name: "Aachen"}); err != nil {
			t.Fatal(err)
		}
		sites, err := f.s.ListSites(ctx)
		if err != nil || len(sites) != 2 || sites[0].ID != "aachen" {
			t.Fatalf("ListSites = %+v, %v; want aachen first (by name)", sites, err)
		}
		if _, err := f.s.CreateDevice(ctx, Device{ID: "d1", Name: "d1", Class: "plc", Location: Location{Site: "muc"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.CreateDevice(ctx, Device{ID: "d2", Name: "d2", Class: "plc"}); err != nil {
			t.Fatal(err)
		}
		if err := f.s.DeleteSite(ctx, "muc"); !apperr.Is(err, apperr.Conflict) {
			t.Fatalf("delete a site in use: %v, want conflict", err)
		}
		if err := f.s.DeleteSite(ctx, "nowhere"); !apperr.Is(err, apperr.NotFound) {
			t.Fatalf("delete a missing site: %v, want not_found", err)
		}

		g, err := f.s.CreateGroup(ctx, Group{Name: "Rollout wave 1", Description: "first"})
		if err != nil || !strings.HasPrefix(g.ID, "grp-") {
			t.Fatalf("CreateGroup = %+v, %v", g, err)
		}
		if _, err := f.s.CreateGroup(ctx, Group{ID: g.ID, Name: "dup"}); !apperr.Is(err, apperr.Conflict) {
			t.Fatalf("duplicate group: %v, want conflict", err)
		}
		if err := f.s.AddGroupMembers(ctx, g.ID, []string{"d1", "d2", "d1"}); err != nil {
			t.Fatal(err)
		}
		if err := f.s.AddGroupMembers(ctx, g.ID, []string{"d2"}); err != nil {
			t.Fatalf("adding a member again: %v", err)
		}
		err = f.s.AddGroupMembers(ctx, g.ID, []string{"d1", "ghost"})
		if ae := apperr.As(err); ae == nil || ae.Field != "devices[1]" {
			t.Fatalf("adding a missing device: %v, want invalid on devices[1]", err)
		}
		if err := f.s.AddGroupMembers(ctx, "no-group", []string{"d1"}); !apperr.Is(err, apperr.NotFound) {
			t.Fatalf("adding to a missing group: %v, want not_found", err)
		}
		got2, err := f.s.GetGroup(ctx, g.ID)
		if err != nil || got2.DeviceCount != 2 {
			t.Fatalf("GetGroup = %+v, %v; want 2 members", got2, err)
		}
		page, err := f.s.ListDevices(ctx, Filter{Group: g.ID})
		if err != nil || page.Total != 2 {
			t.Fatalf("group filter: total %d, %v", page.Total, err)
		}
		if err := f.s.RemoveGroupMember(ctx, g.ID, "d2"); err != nil {
			t.Fatal(err)
		}
		if err := f.s.RemoveGroupMember(ctx, g.ID, "d2"); !apperr.Is(err, apperr.NotFound) {
			t.Fatalf("removing a non-member: %v, want not_found", err)
		}
		if err := f.s.DeleteDevice(ctx, "d1"); err != nil {
			t.Fatal(err)
		}
		groups, err := f.s.ListGroups(ctx)
		if err != nil || len(groups) != 1 || groups[0].DeviceCount != 0 {
			t.Fatalf("ListGroups = %+v, %v; want one empty group (deleting a device drops its membership)", groups, err)
		}
		if err := f.s.DeleteSite(ctx, "muc"); err != nil {
			t.Fatalf("delete a site no longer in use: %v", err)
		}
		if err := f.s.DeleteGroup(ctx, g.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.GetGroup(ctx, g.ID); !apperr.Is(err, apperr.NotFound) {
			t.Fatalf("get a deleted group: %v", err)
		}
	})
}

func TestFleetStatsCountTheFleet(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e)
		f.site(t, "a")
		now := time.Now()
		f.s.now = func() time.Time { return now }
		devs := []Device{
			{ID: "d1", Name: "one", Class: "camera", Vendor: "Axis", RiskScore: 0, Location: Location{Site: "a"}, LastSeen: now.Add(-time.Hour)},
			{ID: "d2", Name: "two", Class: "camera", Vendor: "Axis", RiskScore: 9.99, Status: StatusQuarantined},
			{ID: "d3", Name: "three", Class: "sensor", RiskScore: 10, LastSeen: now.Add(-25 * time.Hour)},
			{ID: "d4", Name: "four", Class: "plc", Vendor: "Siemens", RiskScore: 100, Location: Location{Site: "a"}, LastSeen: now},
			{ID: "d5", Name: "five", Class: "plc", Vendor: "Siemens", RiskScore: 95.5, Status: StatusPending},
		}
		for _, d := range devs {
			if _, err := f.s.CreateDevice(f.ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		st, err := f.s.FleetStats(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Total != 5 || st.SeenLast24h != 2 {
			t.Errorf("total %d, seen in 24h %d; want 5, 2", st.Total, st.SeenLast24h)
		}
		if st.ByStatus["active"] != 3 || st.ByStatus["quarantined"] != 1 || st.ByStatus["pending"] != 1 {
			t.Errorf("by status %v", st.ByStatus)
		}
		if st.ByClass["camera"] != 2 || st.ByClass["plc"] != 2 || st.ByClass["sensor"] != 1 {
			t.Errorf("by class %v", st.ByClass)
		}
		if len(st.BySite) != 1 || st.BySite["a"] != 2 || len(st.ByVendor) != 2 || st.ByVendor["Axis"] != 2 {
			t.Errorf("by site %v, by vendor %v", st.BySite, st.ByVendor)
		}
		if st.RiskHistogram != [10]int{2, 1, 0, 0, 0, 0, 0, 0, 0, 2} {
			t.Errorf("risk histogram %v", st.RiskHistogram)
		}
		if len(st.Riskiest) != 5 || st.Riskiest[0].ID != "d4" || st.Riskiest[1].ID != "d5" || st.Riskiest[0].RiskScore != 100 {
			t.Errorf("riskiest %+v", st.Riskiest)
		}
	})
}

func TestPublishRunsEvenWhenTheCallersContextEndsAfterCommit(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e)
		ctx, cancel := context.WithCancel(f.ctx)
		f.pub.before = cancel // the caller goes away right after the commit
		if _, err := f.s.CreateSite(ctx, Site{ID: "x", Name: "x"}); err != nil {
			t.Fatal(err)
		}
		if f.pub.cancelled != 0 || len(f.pub.published()) != 1 {
			t.Fatalf("%d publishes got a cancelled context, %d events published", f.pub.cancelled, len(f.pub.published()))
		}
	})
}

func TestMarkSeenMovesLastSeenForwardOnlyWithoutALedgerEntry(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e)
		if _, err := f.s.CreateDevice(f.ctx, Device{ID: "cam-1", Name: "Cam", Class: ClassCamera}); err != nil {
			t.Fatal(err)
		}
		before := len(ledgerEvents(t, e.DB))
		t1 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
		if err := f.s.MarkSeen(f.ctx, map[string]time.Time{"cam-1": t1, "no-such-device": t1}); err != nil {
			t.Fatal(err)
		}
		if err := f.s.MarkSeen(f.ctx, map[string]time.Time{"cam-1": t1.Add(-time.Hour)}); err != nil {
			t.Fatal(err)
		}
		d, _ := f.s.GetDevice(f.ctx, "cam-1")
		if !d.LastSeen.Equal(t1) || !d.FirstSeen.Equal(t1) || d.Version != 1 {
			t.Errorf("after MarkSeen: last %v first %v version %d; want %v, %v, 1", d.LastSeen, d.FirstSeen, d.Version, t1, t1)
		}
		if after := len(ledgerEvents(t, e.DB)); after != before {
			t.Errorf("MarkSeen added %d ledger entries, want none", after-before)
		}
	})
}
