package setting

import (
	"strings"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/apperr"
)

type thresholds struct {
	Hosts  int           `json:"hosts"`
	Window time.Duration `json:"window"`
	Jitter float64       `json:"jitter,omitempty"`
	Off    bool          `json:"off"`
	Name   string        `json:"name"`
}

func TestSetChangesOneFieldByItsJSONName(t *testing.T) {
	var th thresholds
	for _, kv := range [][2]string{{"hosts", "25"}, {"window", "2m"}, {"jitter", "0.2"}, {"off", "true"}} {
		if err := Set(&th, kv[0], kv[1]); err != nil {
			t.Fatalf("Set(%s, %s): %v", kv[0], kv[1], err)
		}
	}
	if th != (thresholds{Hosts: 25, Window: 2 * time.Minute, Jitter: 0.2, Off: true}) {
		t.Errorf("set %+v", th)
	}
}

func TestSetRefusesBadNamesAndValues(t *testing.T) {
	for _, kv := range [][2]string{{"hosts", "-1"}, {"hosts", "many"}, {"hosts", "0"}, {"window", "10"}, {"window", "-3s"},
		{"jitter", "NaN"}, {"jitter", "+Inf"}, {"off", "perhaps"}, {"name", "x"}, {"nope", "1"}} {
		var th thresholds
		err := Set(&th, kv[0], kv[1])
		if !apperr.Is(err, apperr.Invalid) || !strings.Contains(err.Error(), kv[0]) {
			t.Errorf("Set(%s, %s) = %v, want an Invalid error naming the setting", kv[0], kv[1], err)
		}
		if th != (thresholds{}) {
			t.Errorf("Set(%s, %s) changed %+v", kv[0], kv[1], th)
		}
	}
	// An unknown name is answered with the names there are.
	err := Set(&thresholds{}, "hsots", "1")
	if !strings.Contains(err.Error(), "hosts, window, jitter, off, name") {
		t.Errorf("error %q does not list the settings", err)
	}
}

func TestNamesAreTheJSONNames(t *testing.T) {
	if got := strings.Join(Names[thresholds](), " "); got != "hosts window jitter off name" {
		t.Errorf("names %q", got)
	}
}
