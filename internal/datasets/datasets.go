// Package datasets finds the public test data shipped beside the project
// (../shared/datasets of the checkout) for tests and benchmarks. The
// project never copies that data: tests read it where it is.
package datasets

import (
	"os"
	"path/filepath"
	"testing"
)

// Root returns the datasets directory: $FLEETWARD_DATASETS, else the first
// shared/datasets found beside the working directory or one of its
// parents, else /work/shared/datasets. Returns "" when none exists.
func Root() string {
	if d := os.Getenv("FLEETWARD_DATASETS"); d != "" {
		return d
	}
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			if p := filepath.Join(dir, "shared", "datasets"); isDir(p) {
				return p
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	if isDir("/work/shared/datasets") {
		return "/work/shared/datasets"
	}
	return ""
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// Path returns the dataset file or folder rel (e.g. "iot23/x.csv"). When it
// is missing the test is skipped, except under CI=true, where the data
// must be there and the test fails.
func Path(t testing.TB, rel string) string {
	t.Helper()
	root := Root()
	p := filepath.Join(root, rel)
	if _, err := os.Stat(p); root == "" || err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("dataset %s missing (set FLEETWARD_DATASETS to the shared/datasets folder): root %q", rel, root)
		}
		t.Skipf("dataset %s not available (root %q)", rel, root)
	}
	return p
}
