package audit

import (
	"strconv"
	"strings"
)

// CompareVersions compares two firmware version strings: runs of digits
// compare as numbers, other runs as lower-case text, and a version that is
// a prefix of the other is older ("1.2" < "1.2.1"). It returns -1, 0 or 1.
func CompareVersions(a, b string) int {
	ta, tb := versionTokens(a), versionTokens(b)
	for i := 0; i < len(ta) && i < len(tb); i++ {
		x, y := ta[i], tb[i]
		xn, xerr := strconv.ParseUint(x, 10, 64)
		yn, yerr := strconv.ParseUint(y, 10, 64)
		switch {
		case xerr == nil && yerr == nil:
			if xn != yn {
				if xn < yn {
					return -1
				}
				return 1
			}
		case xerr == nil: // number after text: a release beats a tag like "rc"
			return 1
		case yerr == nil:
			return -1
		default:
			if c := strings.Compare(x, y); c != 0 {
				return c
			}
		}
	}
	switch {
	case len(ta) < len(tb):
		return -1
	case len(ta) > len(tb):
		return 1
	}
	return 0
}

// versionTokens splits v into runs of digits and runs of letters,
// dropping separators and a leading "v".
func versionTokens(v string) []string {
	v = strings.ToLower(strings.TrimSpace(v))
	v = strings.TrimPrefix(v, "v")
	var out []string
	start, kind := -1, 0
	flush := func(i int) {
		if start >= 0 {
			out = append(out, v[start:i])
			start = -1
		}
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		k := 0
		switch {
		case c >= '0' && c <= '9':
			k = 1
		case c >= 'a' && c <= 'z':
			k = 2
		}
		if k != kind {
			flush(i)
			kind = k
		}
		if k != 0 && start < 0 {
			start = i
		}
	}
	flush(len(v))
	return out
}
