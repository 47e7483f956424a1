package broker

import (
	"strings"
	"testing"
)

func TestCovers(t *testing.T) {
	tests := []struct {
		pattern, filter string
		want            bool
	}{
		{"devices/a/telemetry", "devices/a/telemetry", true},
		{"devices/a/telemetry", "devices/b/telemetry", false},
		{"devices/a/telemetry", "devices/a/telemetry/x", false},
		{"devices/a/telemetry", "devices/a", false},
		{"devices/a/telemetry", "devices/+/telemetry", false},
		{"devices/a/telemetry", "devices/#", false},
		{"devices/a/cmd/#", "devices/a/cmd/#", true},
		{"devices/a/cmd/#", "devices/a/cmd", true},
		{"devices/a/cmd/#", "devices/a/cmd/reboot", true},
		{"devices/a/cmd/#", "devices/a/cmd/+/x", true},
		{"devices/a/cmd/#", "devices/a/#", false},
		{"devices/a/cmd/#", "devices/+/cmd/#", false},
		{"devices/a/cmd/#", "#", false},
		{"devices/a/cmd/#", "+/a/cmd/x", false},
		{"devices/+/telemetry", "devices/+/telemetry", true},
		{"devices/+/telemetry", "devices/x/telemetry", true},
		{"devices/+/telemetry", "devices/#", false},
		{"#", "$SYS/broker", false},
		{"+/broker", "$SYS/broker", false},
		{"$SYS/#", "$SYS/broker", true},
		{"devices/a/cmd/#", "devices/a/cmd/#/x", false}, // malformed filter
		{"devices/a/cmd/#", "", false},
	}
	for _, tt := range tests {
		if got := covers(tt.pattern, tt.filter); got != tt.want {
			t.Errorf("covers(%q, %q) = %v, want %v", tt.pattern, tt.filter, got, tt.want)
		}
	}
}

func TestDefaultPolicyLetsADeviceTouchOnlyItsOwnTopics(t *testing.T) {
	p := DefaultPolicy()
	pub, sub := expand(p.Publish, "cam-7"), expand(p.Subscribe, "cam-7")
	for _, topic := range []string{"devices/cam-7/telemetry", "devices/cam-7/inventory", "devices/cam-7/events", "devices/cam-7/status", "devices/cam-7/signals", "devices/cam-7/scores", "devices/cam-7/sensor"} {
		if !allowed(pub, topic) {
			t.Errorf("publish to %s refused", topic)
		}
	}
	for _, topic := range []string{"devices/cam-8/telemetry", "devices/cam-8/signals", "devices/cam-8/scores", "devices/cam-8/sensor", "devices/cam-7/cmd/x", "devices/cam-7", "devices/+/telemetry", "#", "$SYS/x", "devices/cam-7/telemetry/extra"} {
		if allowed(pub, topic) {
			t.Errorf("publish to %s allowed", topic)
		}
	}
	for _, f := range []string{"devices/cam-7/cmd/#", "devices/cam-7/cmd/reboot", "$share/g/devices/cam-7/cmd/#"} {
		if !allowed(sub, f) {
			t.Errorf("subscribe to %s refused", f)
		}
	}
	for _, f := range []string{"devices/cam-8/cmd/#", "devices/+/cmd/#", "#", "devices/cam-7/#", "$share/g/#", "$share//devices/cam-7/cmd/#", "$SYS/#"} {
		if allowed(sub, f) {
			t.Errorf("subscribe to %s allowed", f)
		}
	}
}

func TestValidDeviceIDRefusesTopicSyntax(t *testing.T) {
	for _, id := range []string{"", "a/b", "+", "#", "a+b", "{device}", "$SYS", "a\x00b", "a\nb", strings.Repeat("x", 129)} {
		if validDeviceID(id) {
			t.Errorf("validDeviceID(%q) = true", id)
		}
	}
	for _, id := range []string{"cam-7", "0f3a9c", "plc_12.site-a", "Ünïcode"} {
		if !validDeviceID(id) {
			t.Errorf("validDeviceID(%q) = false", id)
		}
	}
}

// FuzzTopicACL checks the template expansion and filter matching that stand
// between a device and every other device's topics.
func FuzzTopicACL(f *testing.F) {
	f.Add("devices/{device}/cmd/#", "dev-a", "devices/dev-a/cmd/+", "devices/dev-a/cmd/reboot", "dev-b")
	f.Add("devices/{device}/telemetry", "a", "devices/+/telemetry", "devices/b/telemetry", "b")
	f.Add("{device}/#", "x", "$share/g/x/#", "x", "y")
	f.Add("+/{device}", "x", "#", "$SYS/x", "y")
	f.Fuzz(func(t *testing.T, template, id, filter, topic, other string) {
		if validPolicyFilter(template) != nil || !validDeviceID(id) {
			return
		}
		pattern := expand([]string{template}, id)[0]
		if !validFilter(pattern) {
			t.Fatalf("template %q with device %q expanded to invalid filter %q", template, id, pattern)
		}
		if strings.Count(pattern, "/") != strings.Count(template, "/") {
			t.Fatalf("device id %q changed the level count: %q → %q", id, template, pattern)
		}
		// A granted subscription never receives a topic outside the pattern.
		if covers(pattern, filter) && matches(filter, topic) && !matches(pattern, topic) {
			t.Fatalf("covers(%q, %q) but topic %q matches the filter and not the pattern", pattern, filter, topic)
		}
		// For topic names, covering is plain matching.
		if validTopicName(topic) && covers(pattern, topic) != matches(pattern, topic) {
			t.Fatalf("covers(%q, %q) = %v but matches = %v", pattern, topic, covers(pattern, topic), matches(pattern, topic))
		}
		// Shared subscriptions are judged by the filter inside.
		if inner, ok := unshare(filter); ok && allowed([]string{pattern}, filter) && !covers(pattern, inner) {
			t.Fatalf("allowed %q but %q is not covered", filter, inner)
		}
		// The default policy never lets one device publish to another's topics.
		if validDeviceID(other) && other != id {
			pub := expand(DefaultPolicy().Publish, id)
			sub := expand(DefaultPolicy().Subscribe, id)
			if allowed(pub, "devices/"+other+"/telemetry") || allowed(sub, "devices/"+other+"/cmd/x") {
				t.Fatalf("device %q may reach device %q's topics", id, other)
			}
		}
	})
}
