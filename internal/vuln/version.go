package vuln

import (
	"strings"
)

// CompareVersions orders two version strings as found in advisories, SBOMs
// and IoT firmware banners. It returns -1, 0 or +1 and is a total preorder:
// antisymmetric (Compare(a,b) == -Compare(b,a)) and transitive, because both
// sides are reduced to the same key and the keys are compared.
//
// The rules, in order:
//   - Lower-case; a leading "v" or "version" is dropped ("V1.0.0.12" = "1.0.0.12").
//   - Build metadata is ignored: everything from a "+" or from a "build"
//     word on ("1.1.4 Build 20230219 rel.73395" = "1.1.4", "1.0+git1" = "1.0").
//   - The rest is split into runs of ASCII digits and runs of ASCII letters;
//     every other character separates ("1.0_1" = "1.0.1" = "1-0-1").
//   - Tokens are compared left to right. Numbers compare numerically with
//     leading zeros ignored and no size limit ("0000000.5" = "0.5", 10 > 9).
//     Words compare as strings ("1.1.1k" < "1.1.1l").
//   - At a position where the kinds differ, the order is: a pre-release word
//     (alpha, beta, pre, rc, dev, snapshot) < the end of the version < any
//     other word < a number. So "1.0-rc1" < "1.0" < "1.0-r3" < "1.0.1", and a
//     suffix such as "-150-generic" or "-r3" makes a version later, not earlier.
//   - Dates are versions like any other: "2023-02-19" < "2023-10-01".
//
// Empty strings compare equal to each other and before everything else.
func CompareVersions(a, b string) int {
	return compareKeys(versionKey(a), versionKey(b))
}

type tokenKind uint8

const (
	kindPre tokenKind = iota
	kindEnd
	kindWord
	kindNumber
)

type versionToken struct {
	kind tokenKind
	text string
}

var preReleaseWords = map[string]bool{
	"alpha": true, "beta": true, "pre": true, "rc": true, "dev": true, "snapshot": true,
}

func versionKey(v string) []versionToken {
	s := strings.ToLower(strings.TrimSpace(v))
	if i := strings.IndexByte(s, '+'); i >= 0 {
		s = s[:i]
	}
	var toks []versionToken
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case isDigit(c):
			j := i
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			n := strings.TrimLeft(s[i:j], "0")
			if n == "" {
				n = "0"
			}
			toks = append(toks, versionToken{kindNumber, n})
			i = j
		case isLower(c):
			j := i
			for j < len(s) && isLower(s[j]) {
				j++
			}
			w := s[i:j]
			i = j
			if w == "build" {
				i = len(s)
				continue
			}
			if len(toks) == 0 && (w == "v" || w == "version") {
				continue
			}
			k := kindWord
			if preReleaseWords[w] {
				k = kindPre
			}
			toks = append(toks, versionToken{k, w})
		default:
			i++
		}
	}
	return toks
}

func compareKeys(a, b []versionToken) int {
	for i := 0; i < len(a) || i < len(b); i++ {
		ta, tb := versionToken{kind: kindEnd}, versionToken{kind: kindEnd}
		if i < len(a) {
			ta = a[i]
		}
		if i < len(b) {
			tb = b[i]
		}
		if ta.kind != tb.kind {
			if ta.kind < tb.kind {
				return -1
			}
			return 1
		}
		if c := compareToken(ta, tb); c != 0 {
			return c
		}
	}
	return 0
}

func compareToken(a, b versionToken) int {
	if a.kind == kindNumber && len(a.text) != len(b.text) {
		if len(a.text) < len(b.text) {
			return -1
		}
		return 1
	}
	return strings.Compare(a.text, b.text)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isLower(c byte) bool { return c >= 'a' && c <= 'z' }

// Interval is one affected version range. An empty Start or End is
// unbounded on that side; the Incl flags say whether the bound itself is
// affected. An Interval whose Start and End are equal and both inclusive is
// a single exact version.
type Interval struct {
	Start     string `json:"start,omitempty"`
	StartIncl bool   `json:"start_incl,omitempty"`
	End       string `json:"end,omitempty"`
	EndIncl   bool   `json:"end_incl,omitempty"`
}

// Exact returns the interval holding only version v.
func Exact(v string) Interval { return Interval{Start: v, StartIncl: true, End: v, EndIncl: true} }

// Contains reports whether version v lies in the interval.
func (r Interval) Contains(v string) bool {
	if r.Start != "" {
		c := CompareVersions(v, r.Start)
		if c < 0 || (c == 0 && !r.StartIncl) {
			return false
		}
	}
	if r.End != "" {
		c := CompareVersions(v, r.End)
		if c > 0 || (c == 0 && !r.EndIncl) {
			return false
		}
	}
	return true
}

// String describes the interval for a match explanation, e.g.
// ">= 1.0, < 1.1.4" or "= 1.1.3" or "all versions".
func (r Interval) String() string {
	if r.Start != "" && r.Start == r.End && r.StartIncl && r.EndIncl {
		return "= " + r.Start
	}
	var parts []string
	if r.Start != "" {
		op := "> "
		if r.StartIncl {
			op = ">= "
		}
		parts = append(parts, op+r.Start)
	}
	if r.End != "" {
		op := "< "
		if r.EndIncl {
			op = "<= "
		}
		parts = append(parts, op+r.End)
	}
	if len(parts) == 0 {
		return "all versions"
	}
	return strings.Join(parts, ", ")
}

// stripRevision drops a distribution revision ("-1", "-r3", "-0ubuntu1") so a
// packaged version compares against upstream advisory ranges (NVD, CVE 5),
// which never carry one. OSV ranges of a distribution ecosystem keep it.
func stripRevision(v string) string {
	i := strings.LastIndexByte(v, '-')
	if i <= 0 {
		return v
	}
	rev := strings.TrimPrefix(v[i+1:], "r")
	if rev == "" || !isDigit(rev[0]) {
		return v
	}
	return v[:i]
}
