// Package ascii holds byte-wise text helpers for data read off the wire,
// where the input need not be UTF-8.
package ascii

// Lower returns a copy of s with the ASCII letters A-Z lowered and every
// other byte as it was. Unlike strings.ToLower and bytes.ToLower it keeps
// every byte where it was (invalid UTF-8 is not widened to the three-byte
// U+FFFD), so an offset found in the result indexes s.
func Lower[T ~string | ~[]byte](s T) T {
	b := make([]byte, len(s))
	copy(b, s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return T(b)
}
