package main

import (
	"bytes"
	"context"
	"errors"
	"github.com/fleetward/fleetward/internal/datasets"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVulnImportAndMatch(t *testing.T) {
	ds := datasets.Path(t, ".")
	data := t.TempDir()
	bad := filepath.Join(t.TempDir(), "truncated.json")
	if err := os.WriteFile(bad, []byte(`{"catalogVersion":"1","vulnerabilities":[`), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		root := rootCommand()
		root.Writer = &out
		err := root.Run(context.Background(), append([]string{"fleetward", "vuln"}, args...))
		return out.String(), err
	}
	out, err := run("import", "--data", data, filepath.Join(ds, "advisories/nvd-api2"), bad, filepath.Join(ds, "advisories/kev_iot_subset.json"))
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("import err = %v, want exit 1 for the one bad file", err)
	}
	for _, want := range []string{"CVE-2023-1389.json: nvd, 1 advisories", "truncated.json: ERROR", "kev_iot_subset.json: kev, 101"} {
		if !strings.Contains(out, want) {
			t.Errorf("import output lacks %q:\n%s", want, out)
		}
	}
	out, err = run("match", "--data", data, "--vendor", "TP-Link", "--model", "Archer AX21", "--firmware", "1.1.3")
	if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(out, "CVE-2023-1389") {
		t.Fatalf("match 1.1.3: err %v, output:\n%s", err, out)
	}
	out, err = run("match", "--data", data, "--vendor", "TP-Link", "--model", "Archer AX21", "--firmware", "1.1.4", "--json")
	if err != nil || strings.Contains(out, "CVE-2023-1389") {
		t.Fatalf("match 1.1.4: err %v, output:\n%s", err, out)
	}
}
