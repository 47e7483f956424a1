package ascii

import (
	"bytes"
	"testing"
)

func TestLowerKeepsEveryByteWhereItWas(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"letters are lowered", "AuthoriZATion: Basic", "authorization: basic"},
		{"invalid UTF-8 stays one byte each", "\xff\nAUTH\xc3", "\xff\nauth\xc3"},
		{"non-ASCII letters are left alone", "ÄÖ", "ÄÖ"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Lower(tt.in); got != tt.want {
				t.Errorf("Lower(%q) = %q, want %q", tt.in, got, tt.want)
			}
			in := []byte(tt.in)
			if got := Lower(in); !bytes.Equal(got, []byte(tt.want)) {
				t.Errorf("Lower([]byte(%q)) = %q, want %q", tt.in, got, tt.want)
			}
			if string(in) != tt.in {
				t.Errorf("Lower changed its argument to %q", in)
			}
		})
	}
}
