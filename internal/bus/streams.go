package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The streams fleetward keeps its events in. Each holds the events of a few
// areas (an area is the first token of an event's type) under the subjects
// "fleetward.<area>.>": an event of type "device.created" is published on
// the subject "fleetward.device.created" and stored in DEVICE_EVENTS.
//
// Open creates the streams, or brings existing ones up to this
// configuration without losing data: file storage, events kept for 30 days
// (MaxAge), the oldest discarded first when a limit is reached, and a
// repeated event ID dropped within 2 minutes (DuplicateWindow).
//
// With Config.StreamPrefix set (tests), every stream name and the subject
// root carry the prefix: "<prefix>DEVICE_EVENTS", "<prefix>fleetward.device.>".
const (
	// DeviceEvents holds what happens to the inventory and to device
	// identities, on the subjects "fleetward.device.>", "fleetward.site.>",
	// "fleetward.group.>" and "fleetward.identity.>".
	DeviceEvents = "DEVICE_EVENTS"
	// SecurityEvents holds security-relevant facts (failed logins, denied
	// requests, detections), on the subject "fleetward.security.>".
	SecurityEvents = "SECURITY_EVENTS"
	// AdminEvents holds changes to operators, API tokens and fleetward
	// itself, on the subjects "fleetward.operator.>", "fleetward.token.>"
	// and "fleetward.system.>".
	AdminEvents = "ADMIN_EVENTS"
	// Telemetry holds device measurements (broker-side counters per
	// sampling interval, agent reports), on the subject
	// "fleetward.telemetry.>".
	Telemetry = "TELEMETRY"
)

const (
	// SubjectRoot is the first token of every subject fleetward publishes
	// on: an event of type T goes to "fleetward.T".
	SubjectRoot = "fleetward"
	// MaxAge is how long a stream keeps an event.
	MaxAge = 30 * 24 * time.Hour
	// DuplicateWindow is how long JetStream remembers an event ID to drop a
	// repeat of it. A repeat published later than this is stored again, so
	// handlers must tolerate seeing an event twice.
	DuplicateWindow = 2 * time.Minute
)

// streamSpec is one stream fleetward owns: its name and the areas it carries.
type streamSpec struct {
	name        string
	areas       []string
	description string
}

// streamSpecs returns the streams in a fixed order.
func streamSpecs() []streamSpec {
	return []streamSpec{
		{DeviceEvents, []string{"device", "site", "group", "identity"}, "fleetward inventory and device identity events: devices, sites, groups, certificates"},
		{SecurityEvents, []string{"security"}, "fleetward security events: authentication failures, denials, detections"},
		{AdminEvents, []string{"operator", "token", "system"}, "fleetward administrative events: operators, API tokens, the system"},
		{Telemetry, []string{"telemetry"}, "fleetward device measurements: broker-side counters and agent reports"},
	}
}

// knownAreas lists every area some stream carries.
func knownAreas() []string {
	var areas []string
	for _, s := range streamSpecs() {
		areas = append(areas, s.areas...)
	}
	return areas
}

// wantStream is the configuration fleetward creates spec's stream with.
func wantStream(spec streamSpec, prefix string, replicas int) jetstream.StreamConfig {
	subjects := make([]string, len(spec.areas))
	for i, a := range spec.areas {
		subjects[i] = prefix + SubjectRoot + "." + a + ".>"
	}
	return jetstream.StreamConfig{
		Name:        prefix + spec.name,
		Description: spec.description,
		Subjects:    subjects,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      MaxAge,
		MaxMsgs:     -1,
		MaxBytes:    -1,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Duplicates:  DuplicateWindow,
	}
}

// reconcileStream merges the configuration fleetward wants into the one a
// stream has, changing only what can be changed without losing stored
// events: it adds missing subjects, lengthens a shorter MaxAge or duplicate
// window, and raises the replica count. It never shortens a limit an
// operator set, nor changes storage, retention or discard policy (the
// server cannot, or doing so would drop events); those differences come
// back as warnings. changes describes what the merged configuration alters.
func reconcileStream(have, want jetstream.StreamConfig) (merged jetstream.StreamConfig, changes, warnings []string) {
	merged = have
	merged.Subjects = slices.Clone(have.Subjects)
	for _, w := range want.Subjects {
		wt := strings.Split(w, ".")
		covered := false
		for _, h := range merged.Subjects {
			if subsumes(strings.Split(h, "."), wt) {
				covered = true
				break
			}
		}
		if covered {
			continue
		}
		// A narrower subject the stream had is covered by w from now on;
		// NATS refuses overlapping subjects within a stream.
		merged.Subjects = slices.DeleteFunc(merged.Subjects, func(h string) bool {
			return subsumes(wt, strings.Split(h, "."))
		})
		merged.Subjects = append(merged.Subjects, w)
		changes = append(changes, "add subject "+w)
	}
	if have.MaxAge != 0 && have.MaxAge < want.MaxAge {
		merged.MaxAge = want.MaxAge
		changes = append(changes, fmt.Sprintf("max age %s → %s", have.MaxAge, want.MaxAge))
	}
	if have.Duplicates < want.Duplicates {
		merged.Duplicates = want.Duplicates
		changes = append(changes, fmt.Sprintf("duplicate window %s → %s", have.Duplicates, want.Duplicates))
	}
	if have.Replicas < want.Replicas {
		merged.Replicas = want.Replicas
		changes = append(changes, fmt.Sprintf("replicas %d → %d", have.Replicas, want.Replicas))
	}
	if have.Description == "" && want.Description != "" {
		merged.Description = want.Description
		changes = append(changes, "set description")
	}
	if have.Storage != want.Storage {
		warnings = append(warnings, fmt.Sprintf("stream uses %s storage, not %s: events may not survive a restart of the NATS server", have.Storage, want.Storage))
	}
	if have.Retention != want.Retention {
		warnings = append(warnings, fmt.Sprintf("stream has %s retention, not %s: events may be removed before every subscriber has seen them", have.Retention, want.Retention))
	}
	if have.Discard != want.Discard {
		warnings = append(warnings, fmt.Sprintf("stream discard policy is %s, not %s: publishing fails once the stream is full", have.Discard, want.Discard))
	}
	if have.Sealed {
		warnings = append(warnings, "stream is sealed: publishing to it fails")
	}
	return merged, changes, warnings
}

// ensureStreams creates fleetward's streams or reconciles existing ones.
func (b *Bus) ensureStreams(ctx context.Context) error {
	for _, spec := range streamSpecs() {
		want := wantStream(spec, b.prefix, b.replicas)
		if err := b.ensureStream(ctx, want); err != nil {
			return fmt.Errorf("ensure stream %s: %w", want.Name, err)
		}
	}
	return nil
}

func (b *Bus) ensureStream(ctx context.Context, want jetstream.StreamConfig) error {
	for attempt := 0; ; attempt++ {
		s, err := b.js.Stream(ctx, want.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			_, err = b.js.CreateStream(ctx, want)
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) && attempt == 0 {
				continue // another node created it a moment ago: reconcile with that
			}
			if err != nil {
				return fmt.Errorf("create: %w", err)
			}
			b.log.Info("bus stream created", "stream", want.Name, "subjects", want.Subjects)
			return nil
		}
		if err != nil {
			return fmt.Errorf("look up: %w", err)
		}
		merged, changes, warnings := reconcileStream(s.CachedInfo().Config, want)
		for _, w := range warnings {
			b.log.Warn("bus stream differs from fleetward's configuration", "stream", want.Name, "reason", w)
		}
		if len(changes) == 0 {
			return nil
		}
		if _, err := b.js.UpdateStream(ctx, merged); err != nil {
			return fmt.Errorf("update (%s): %w", strings.Join(changes, "; "), err)
		}
		b.log.Info("bus stream updated", "stream", want.Name, "changes", changes)
		return nil
	}
}
