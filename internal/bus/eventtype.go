package bus

import (
	"strings"

	"github.com/fleetward/fleetward/internal/apperr"
)

// maxTypeLen bounds an event type; NATS subjects have no hard limit, but a
// type is a short name, and a long one is a mistake.
const maxTypeLen = 128

// ValidateType reports whether t is a well-formed event type:
// "<area>.<what>", two or more dot-separated tokens, each of lowercase
// letters, digits and underscores, starting with a letter, at most 128
// bytes. It does not check that a stream carries the area; StreamFor does.
// Returns an Invalid *apperr.Error naming the field "type".
func ValidateType(t string) error {
	if t == "" {
		return apperr.InvalidField("type", "is required")
	}
	if len(t) > maxTypeLen {
		return apperr.InvalidField("type", "is %d bytes long; at most %d are allowed", len(t), maxTypeLen)
	}
	tokens := strings.Split(t, ".")
	if len(tokens) < 2 {
		return apperr.InvalidField("type", "%q must be \"<area>.<what>\", e.g. \"device.created\"", t)
	}
	for _, tok := range tokens {
		if err := checkToken(tok); err != "" {
			return apperr.InvalidField("type", "%q: %s", t, err)
		}
	}
	return nil
}

// checkToken returns why tok is not a valid literal token, or "".
func checkToken(tok string) string {
	if tok == "" {
		return "has an empty token (leading, trailing or doubled dot)"
	}
	if tok[0] < 'a' || tok[0] > 'z' {
		return "each token must start with a lowercase letter"
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return "only lowercase letters, digits, '_' and '.' are allowed"
		}
	}
	return ""
}

// areaOf returns the first token of a type or pattern.
func areaOf(t string) string {
	area, _, _ := strings.Cut(t, ".")
	return area
}

// StreamFor returns the name of the stream (without any StreamPrefix) that
// carries events of type t, chosen by its area (see the stream constants).
// Returns an Invalid *apperr.Error naming "type" when t is malformed or no
// stream carries its area.
func StreamFor(t string) (string, error) {
	if err := ValidateType(t); err != nil {
		return "", err
	}
	area := areaOf(t)
	for _, s := range streamSpecs() {
		for _, a := range s.areas {
			if a == area {
				return s.name, nil
			}
		}
	}
	return "", apperr.InvalidField("type", "no stream carries area %q of %q; known areas: %s", area, t, strings.Join(knownAreas(), ", "))
}

// validatePattern checks one subscription pattern: an event type in which a
// token may be "*" (any one token) and the last may be ">" (one or more
// tokens). A pattern must be able to match a type, so it has two or more
// tokens, or is ">" alone.
func validatePattern(p string) ([]string, error) {
	if p == "" {
		return nil, apperr.InvalidField("subjects", "a pattern is empty")
	}
	if len(p) > maxTypeLen {
		return nil, apperr.InvalidField("subjects", "pattern is %d bytes long; at most %d are allowed", len(p), maxTypeLen)
	}
	tokens := strings.Split(p, ".")
	for i, tok := range tokens {
		switch {
		case tok == ">" && i != len(tokens)-1:
			return nil, apperr.InvalidField("subjects", "pattern %q: '>' may only be the last token", p)
		case tok == ">" || tok == "*":
		default:
			if err := checkToken(tok); err != "" {
				return nil, apperr.InvalidField("subjects", "pattern %q: %s", p, err)
			}
		}
	}
	if len(tokens) < 2 && tokens[0] != ">" {
		return nil, apperr.InvalidField("subjects", "pattern %q matches no event type; types are \"<area>.<what>\", try %q", p, p+".>")
	}
	return tokens, nil
}

// subsumes reports whether every subject matched by specific is also
// matched by general. Both are token lists that may hold "*" and a final
// ">".
func subsumes(general, specific []string) bool {
	for i, g := range general {
		if g == ">" {
			return i < len(specific)
		}
		if i >= len(specific) || specific[i] == ">" {
			return false
		}
		if g != "*" && g != specific[i] {
			return false
		}
	}
	return len(general) == len(specific)
}

// collide reports whether some subject is matched by both a and b.
func collide(a, b []string) bool {
	for i := 0; ; i++ {
		if i == len(a) || i == len(b) {
			return len(a) == len(b)
		}
		if a[i] == ">" || b[i] == ">" {
			return true
		}
		if a[i] != "*" && b[i] != "*" && a[i] != b[i] {
			return false
		}
	}
}
