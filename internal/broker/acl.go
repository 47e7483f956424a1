package broker

import (
	"fmt"
	"strings"
)

// DeviceTemplate is the placeholder in a policy's topic filters that stands
// for the connecting device's id.
const DeviceTemplate = "{device}"

// Policy is what the devices of one class may do on the broker. An operator
// sets policies in the configuration; the broker reads them at New and never
// changes them.
type Policy struct {
	// Publish lists the topic filters a device may publish to. {device} is
	// replaced by the device's id.
	Publish []string `json:"publish" toml:"publish"`
	// Subscribe lists the topic filters a device may subscribe to (and so
	// receive from). A subscription is allowed only if every topic it can
	// match is matched by one of these filters.
	Subscribe []string `json:"subscribe" toml:"subscribe"`
	// Legacy allows TLS 1.2 (ECDHE with AEAD suites only) for this class.
	// Devices of other classes must use TLS 1.3.
	Legacy bool `json:"legacy,omitempty" toml:"legacy"`
}

// DefaultPolicy is the policy of a class that has none configured: a device
// publishes its own telemetry, inventory, events and status, and the
// signals, score summaries and summaries of its edge sensor, and receives
// its own commands, nothing else.
func DefaultPolicy() Policy {
	return Policy{
		Publish: []string{
			"devices/{device}/telemetry",
			"devices/{device}/inventory",
			"devices/{device}/events",
			"devices/{device}/status",
			"devices/{device}/signals",
			"devices/{device}/scores",
			"devices/{device}/sensor",
		},
		Subscribe: []string{"devices/{device}/cmd/#"},
	}
}

// Validate reports the first malformed filter in p.
func (p Policy) Validate() error {
	for i, f := range p.Publish {
		if err := validPolicyFilter(f); err != nil {
			return fmt.Errorf("publish[%d] %q: %w", i, f, err)
		}
	}
	for i, f := range p.Subscribe {
		if err := validPolicyFilter(f); err != nil {
			return fmt.Errorf("subscribe[%d] %q: %w", i, f, err)
		}
	}
	return nil
}

func validPolicyFilter(f string) error {
	if f == "" {
		return fmt.Errorf("empty filter")
	}
	if !validFilter(strings.ReplaceAll(f, DeviceTemplate, "d")) {
		return fmt.Errorf("not a valid MQTT topic filter")
	}
	return nil
}

// expand replaces {device} in each filter with id. id must have passed
// validDeviceID so that it cannot add levels or wildcards.
func expand(filters []string, id string) []string {
	out := make([]string, len(filters))
	for i, f := range filters {
		out[i] = strings.ReplaceAll(f, DeviceTemplate, id)
	}
	return out
}

// validDeviceID reports whether id can stand in a topic level: not empty,
// and free of separators, wildcards, template braces and control bytes.
func validDeviceID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c == '/' || c == '+' || c == '#' || c == '{' || c == '}' || c == '$':
			return false
		case c < 0x20 || c == 0x7f:
			return false
		}
	}
	return true
}

// validFilter reports whether f is a well-formed MQTT topic filter: "#" only
// as the last level, "+" and "#" only as whole levels, no NUL.
func validFilter(f string) bool {
	if f == "" || strings.IndexByte(f, 0) >= 0 {
		return false
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if strings.ContainsAny(l, "+#") && len(l) > 1 {
			return false
		}
		if l == "#" && i != len(levels)-1 {
			return false
		}
	}
	return true
}

// validTopicName reports whether t can be published to: a valid filter
// without wildcards.
func validTopicName(t string) bool {
	return validFilter(t) && !strings.ContainsAny(t, "+#")
}

// sharePrefix starts a shared subscription, "$share/<group>/<filter>".
const sharePrefix = "$share/"

// unshare returns the filter inside a shared subscription, or f itself.
func unshare(f string) (string, bool) {
	if !strings.HasPrefix(f, sharePrefix) {
		return f, true
	}
	rest := f[len(sharePrefix):]
	i := strings.IndexByte(rest, '/')
	if i <= 0 || i == len(rest)-1 {
		return "", false
	}
	return rest[i+1:], true
}

// covers reports whether every topic that filter matches is also matched by
// pattern. A topic name (no wildcards) is a filter that matches itself, so
// covers(pattern, topic) is plain MQTT matching. Topics beginning with '$'
// are never matched by a wildcard in the first level (MQTT-4.7.2-1).
func covers(pattern, filter string) bool {
	if !validFilter(pattern) || !validFilter(filter) {
		return false
	}
	p := strings.Split(pattern, "/")
	f := strings.Split(filter, "/")
	if strings.HasPrefix(filter, "$") && (p[0] == "+" || p[0] == "#") {
		return false
	}
	for i, fl := range f {
		if i >= len(p) {
			return false
		}
		pl := p[i]
		switch {
		case pl == "#":
			return true
		case fl == "#":
			return false
		case fl == "+":
			if pl != "+" {
				return false
			}
		default:
			if pl != "+" && pl != fl {
				return false
			}
		}
	}
	// The filter is exhausted. "a/#" also matches its parent "a".
	return len(p) == len(f) || (len(p) == len(f)+1 && p[len(p)-1] == "#")
}

// matches reports whether the topic name matches filter, by the MQTT rules.
func matches(filter, topic string) bool {
	if !validFilter(filter) || !validTopicName(topic) {
		return false
	}
	if strings.HasPrefix(topic, "$") && (filter[0] == '+' || filter[0] == '#') {
		return false
	}
	f := strings.Split(filter, "/")
	t := strings.Split(topic, "/")
	for i, fl := range f {
		if fl == "#" {
			return true
		}
		if i >= len(t) {
			return false
		}
		if fl != "+" && fl != t[i] {
			return false
		}
	}
	return len(f) == len(t)
}

// allowed reports whether one of patterns covers filter.
func allowed(patterns []string, filter string) bool {
	inner, ok := unshare(filter)
	if !ok {
		return false
	}
	for _, p := range patterns {
		if covers(p, inner) {
			return true
		}
	}
	return false
}
