package bus

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fleetward/fleetward/internal/apperr"
)

func TestValidateType(t *testing.T) {
	tests := []struct {
		name string
		typ  string
		ok   bool
	}{
		{"an area and a name are valid", "device.created", true},
		{"underscores and digits are valid", "security.login_failed2", true},
		{"more than two tokens are valid", "device.firmware.updated", true},
		{"empty is refused", "", false},
		{"one token is refused", "device", false},
		{"uppercase is refused", "device.Created", false},
		{"a leading dot is refused", ".device.created", false},
		{"a trailing dot is refused", "device.created.", false},
		{"a doubled dot is refused", "device..created", false},
		{"a token starting with a digit is refused", "device.1created", false},
		{"a wildcard is refused", "device.*", false},
		{"a full wildcard is refused", ">", false},
		{"a hyphen is refused", "device.re-enrolled", false},
		{"a space is refused", "device. created", false},
		{"non-ASCII is refused", "device.créé", false},
		{"over 128 bytes is refused", "device." + strings.Repeat("a", 130), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateType(tt.typ)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidateType(%q) = %v, want ok=%v", tt.typ, err, tt.ok)
			}
			if err != nil {
				if e := apperr.As(err); e == nil || e.Code != apperr.Invalid || e.Field != "type" {
					t.Fatalf("ValidateType(%q) = %v, want an invalid type error", tt.typ, err)
				}
			}
		})
	}
}

func TestStreamForPicksTheStreamByArea(t *testing.T) {
	tests := []struct{ typ, stream string }{
		{"device.created", DeviceEvents},
		{"site.updated", DeviceEvents},
		{"group.deleted", DeviceEvents},
		{"security.login_failed", SecurityEvents},
		{"operator.created", AdminEvents},
		{"token.revoked", AdminEvents},
		{"system.started", AdminEvents},
		{"weather.changed", ""},
	}
	for _, tt := range tests {
		got, err := StreamFor(tt.typ)
		if got != tt.stream || (err == nil) != (tt.stream != "") {
			t.Errorf("StreamFor(%q) = %q, %v; want %q", tt.typ, got, err, tt.stream)
		}
	}
}

func TestSubjectMatching(t *testing.T) {
	tests := []struct {
		a, b             string
		aSubsumesB, coll bool
	}{
		{"device.>", "device.created", true, true},
		{"device.>", "device.>", true, true},
		{"device.*", "device.created", true, true},
		{"device.*", "device.firmware.updated", false, false},
		{"device.>", "device", false, false},
		{"*.created", "device.created", true, true},
		{"device.created", "device.*", false, true},
		{"device.*.updated", "device.firmware.*", false, true},
		{"device.created", "device.updated", false, false},
		{">", "site.x.y", true, true},
		{"device.*", "device.>", false, true},
	}
	for _, tt := range tests {
		a, b := strings.Split(tt.a, "."), strings.Split(tt.b, ".")
		if got := subsumes(a, b); got != tt.aSubsumesB {
			t.Errorf("subsumes(%s, %s) = %v", tt.a, tt.b, got)
		}
		if got, back := collide(a, b), collide(b, a); got != tt.coll || back != got {
			t.Errorf("collide(%s, %s) = %v (reversed %v), want %v", tt.a, tt.b, got, back, tt.coll)
		}
	}
}

func TestFiltersFor(t *testing.T) {
	b := &Bus{prefix: "p_"}
	tests := []struct {
		name     string
		patterns []string
		want     map[string][]string
	}{
		{"one area maps to its stream", []string{"device.>"},
			map[string][]string{"p_DEVICE_EVENTS": {"p_fleetward.device.>"}}},
		{"a covered pattern is dropped", []string{"device.created", "device.>", "device.>"},
			map[string][]string{"p_DEVICE_EVENTS": {"p_fleetward.device.>"}}},
		{"a wildcard area reaches every stream", []string{"*.created"},
			map[string][]string{
				"p_DEVICE_EVENTS":   {"p_fleetward.device.created", "p_fleetward.site.created", "p_fleetward.group.created", "p_fleetward.identity.created"},
				"p_SECURITY_EVENTS": {"p_fleetward.security.created"},
				"p_ADMIN_EVENTS":    {"p_fleetward.operator.created", "p_fleetward.token.created", "p_fleetward.system.created"},
				"p_TELEMETRY":       {"p_fleetward.telemetry.created"},
			}},
		{"everything", []string{">", "security.login_failed"},
			map[string][]string{
				"p_DEVICE_EVENTS":   {"p_fleetward.device.>", "p_fleetward.site.>", "p_fleetward.group.>", "p_fleetward.identity.>"},
				"p_SECURITY_EVENTS": {"p_fleetward.security.>"},
				"p_ADMIN_EVENTS":    {"p_fleetward.operator.>", "p_fleetward.token.>", "p_fleetward.system.>"},
				"p_TELEMETRY":       {"p_fleetward.telemetry.>"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := b.filtersFor(tt.patterns)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("filtersFor = %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if !slices.Equal(got[k], v) {
					t.Fatalf("filtersFor[%s] = %v, want %v", k, got[k], v)
				}
			}
		})
	}
}

func TestReconcileStreamNeverLosesData(t *testing.T) {
	want := wantStream(streamSpecs()[0], "", 1)
	tests := []struct {
		name     string
		have     func(*jetstream.StreamConfig)
		changes  int
		warnings int
		check    func(t *testing.T, m jetstream.StreamConfig)
	}{
		{"a stream as fleetward made it needs nothing", func(*jetstream.StreamConfig) {}, 0, 0, nil},
		{"a missing subject is added", func(c *jetstream.StreamConfig) { c.Subjects = c.Subjects[:len(c.Subjects)-1] }, 1, 0,
			func(t *testing.T, m jetstream.StreamConfig) {
				if len(m.Subjects) != 4 {
					t.Errorf("subjects = %v", m.Subjects)
				}
			}},
		{"a narrower subject is replaced by the covering one", func(c *jetstream.StreamConfig) {
			c.Subjects = []string{"fleetward.device.created", "fleetward.site.>", "fleetward.group.>", "fleetward.identity.>", "other.x"}
		}, 1, 0, func(t *testing.T, m jetstream.StreamConfig) {
			if slices.Contains(m.Subjects, "fleetward.device.created") || !slices.Contains(m.Subjects, "fleetward.device.>") || !slices.Contains(m.Subjects, "other.x") {
				t.Errorf("subjects = %v", m.Subjects)
			}
		}},
		{"a wider subject the operator set is kept", func(c *jetstream.StreamConfig) { c.Subjects = []string{"fleetward.>"} }, 0, 0,
			func(t *testing.T, m jetstream.StreamConfig) {
				if !slices.Equal(m.Subjects, []string{"fleetward.>"}) {
					t.Errorf("subjects = %v", m.Subjects)
				}
			}},
		{"a longer max age is kept", func(c *jetstream.StreamConfig) { c.MaxAge = 365 * 24 * time.Hour }, 0, 0, nil},
		{"unlimited age is kept", func(c *jetstream.StreamConfig) { c.MaxAge = 0 }, 0, 0, nil},
		{"a shorter max age is lengthened", func(c *jetstream.StreamConfig) { c.MaxAge = time.Hour }, 1, 0,
			func(t *testing.T, m jetstream.StreamConfig) {
				if m.MaxAge != MaxAge {
					t.Errorf("max age = %s", m.MaxAge)
				}
			}},
		{"more replicas are kept", func(c *jetstream.StreamConfig) { c.Replicas = 3 }, 0, 0, nil},
		{"an operator's byte limit is kept", func(c *jetstream.StreamConfig) { c.MaxBytes = 1 << 30 }, 0, 0,
			func(t *testing.T, m jetstream.StreamConfig) {
				if m.MaxBytes != 1<<30 {
					t.Errorf("max bytes = %d", m.MaxBytes)
				}
			}},
		{"memory storage is only warned about", func(c *jetstream.StreamConfig) { c.Storage = jetstream.MemoryStorage }, 0, 1,
			func(t *testing.T, m jetstream.StreamConfig) {
				if m.Storage != jetstream.MemoryStorage {
					t.Error("storage changed")
				}
			}},
		{"work-queue retention and discard-new are only warned about", func(c *jetstream.StreamConfig) {
			c.Retention = jetstream.WorkQueuePolicy
			c.Discard = jetstream.DiscardNew
		}, 0, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			have := want
			have.Subjects = slices.Clone(want.Subjects)
			tt.have(&have)
			m, changes, warnings := reconcileStream(have, want)
			if len(changes) != tt.changes || len(warnings) != tt.warnings {
				t.Fatalf("changes %q, warnings %q; want %d and %d", changes, warnings, tt.changes, tt.warnings)
			}
			if m.MaxAge != 0 && m.MaxAge < have.MaxAge {
				t.Errorf("max age shortened from %s to %s", have.MaxAge, m.MaxAge)
			}
			if tt.check != nil {
				tt.check(t, m)
			}
		})
	}
}

// FuzzEventType checks that ValidateType never panics, that what it
// accepts makes a well-formed NATS subject, and that a type it accepts is
// also a pattern matching itself.
func FuzzEventType(f *testing.F) {
	for _, s := range []string{"device.created", "security.login_failed", "device", "", ".", "a..b", "a.>", "a.*",
		"Device.x", "device.cré", "x.y.z", "device.\x00", strings.Repeat("a.", 70) + "b", "weather.changed", "a.b c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, typ string) {
		err := ValidateType(typ)
		if err != nil {
			if e := apperr.As(err); e == nil || e.Field != "type" {
				t.Fatalf("ValidateType(%q) = %v, want an invalid type error", typ, err)
			}
			if _, serr := StreamFor(typ); serr == nil {
				t.Fatalf("StreamFor accepted %q which ValidateType refuses", typ)
			}
			return
		}
		subject := SubjectRoot + "." + typ
		for _, tok := range strings.Split(subject, ".") {
			if tok == "" || tok == "*" || tok == ">" || strings.ContainsAny(tok, " \t\r\n") {
				t.Fatalf("type %q gives malformed subject %q", typ, subject)
			}
		}
		tokens, perr := validatePattern(typ)
		if perr != nil {
			t.Fatalf("valid type %q is not a valid pattern: %v", typ, perr)
		}
		if !subsumes(tokens, strings.Split(typ, ".")) {
			t.Fatalf("pattern %q does not match itself", typ)
		}
		if stream, err := StreamFor(typ); err == nil {
			if !slices.ContainsFunc(streamSpecs(), func(s streamSpec) bool { return s.name == stream && slices.Contains(s.areas, areaOf(typ)) }) {
				t.Fatalf("StreamFor(%q) = %s, which does not carry its area", typ, stream)
			}
		}
	})
}

// FuzzSubscriptionPattern checks that any pattern list either is refused
// with an invalid subjects error, or maps to filters that JetStream would
// accept: every filter inside its stream's subjects, none overlapping.
func FuzzSubscriptionPattern(f *testing.F) {
	for _, s := range []string{"device.>", "*.created", ">", "device.*.x,device.y.*", "a", "device.>.x", "*", "*.*", "security.>,>", ",", "device.created,device.created"} {
		f.Add(s)
	}
	b := &Bus{}
	f.Fuzz(func(t *testing.T, list string) {
		filters, err := b.filtersFor(strings.Split(list, ","))
		if err != nil {
			if e := apperr.As(err); e == nil || e.Code != apperr.Invalid || e.Field != "subjects" {
				t.Fatalf("filtersFor(%q) = %v, want an invalid subjects error", list, err)
			}
			return
		}
		for _, spec := range streamSpecs() {
			want := wantStream(spec, "", 1)
			fs := filters[spec.name]
			for i, f := range fs {
				ft := strings.Split(f, ".")
				if !slices.ContainsFunc(want.Subjects, func(s string) bool { return subsumes(strings.Split(s, "."), ft) }) {
					t.Fatalf("filter %q is outside stream %s %v", f, spec.name, want.Subjects)
				}
				for _, g := range fs[:i] {
					if collide(ft, strings.Split(g, ".")) {
						t.Fatalf("filters %q and %q overlap", f, g)
					}
				}
			}
		}
	})
}
