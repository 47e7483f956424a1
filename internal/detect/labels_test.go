package detect

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/fleetward/fleetward/internal/apperr"
)

func TestReadLabels(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []bool
		wantErr bool
	}{
		{"zeros and ones become benign and malicious", "0\n1\n 1 \r\n0", []bool{false, true, true, false}, false},
		{"blank trailing lines are ignored", "1\n0\n\n\n", []bool{true, false}, false},
		{"an empty file has no labels", "", nil, false},
		{"a word is refused", "0\nyes\n", nil, true},
		{"a blank line inside is refused, it would shift every later label", "0\n\n1\n", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadLabels(strings.NewReader(tt.in))
			var ae *apperr.Error
			if tt.wantErr {
				if !errors.As(err, &ae) || ae.Field != "labels" {
					t.Fatalf("error %v, want an invalid labels error", err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("ReadLabels = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func FuzzReadLabels(f *testing.F) {
	f.Add("0\n1\n")
	f.Add("1\r\n\n")
	f.Fuzz(func(t *testing.T, in string) {
		labels, err := ReadLabels(strings.NewReader(in))
		if err == nil && len(labels) > strings.Count(in, "0")+strings.Count(in, "1") {
			t.Errorf("%d labels from %q", len(labels), in)
		}
	})
}
