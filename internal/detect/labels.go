package detect

import (
	"bufio"
	"io"
	"strings"

	"github.com/fleetward/fleetward/internal/apperr"
)

// ReadLabels reads per-packet ground truth, one line per packet: "1" for
// malicious, "0" for benign (surrounding spaces and blank trailing lines
// are ignored). Any other line is an Invalid error naming the field
// "labels" and the line.
func ReadLabels(r io.Reader) ([]bool, error) {
	var labels []bool
	sc := bufio.NewScanner(r)
	line, blank := 0, 0
	for sc.Scan() {
		line++
		switch strings.TrimSpace(sc.Text()) {
		case "0":
			labels = append(labels, false)
		case "1":
			labels = append(labels, true)
		case "":
			blank++
			continue
		default:
			return nil, apperr.InvalidField("labels", "line %d: %.20q is not 0 or 1", line, sc.Text())
		}
		if blank > 0 {
			return nil, apperr.InvalidField("labels", "line %d: a label after a blank line", line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, apperr.InvalidField("labels", "line %d: %v", line+1, err)
	}
	return labels, nil
}
