package vuln

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/store/storetest"
)

func TestStoreImportsAndMatches(t *testing.T) {
	ctx := context.Background()
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		s := NewStore(e.DB)
		for _, rel := range []string{"advisories/nvd-api2/CVE-2023-1389.json", "advisories/kev_iot_subset.json", "advisories/nvd-api2/CVE-2023-1389.json"} {
			f, err := os.Open(dataset(t, rel))
			if err != nil {
				t.Fatal(err)
			}
			res, err := s.Import(ctx, rel, f)
			f.Close()
			if err != nil {
				t.Fatalf("import %s: %v", rel, err)
			}
			if res.SHA256 == "" || res.Advisories+res.KEV == 0 {
				t.Fatalf("import result %+v", res)
			}
		}
		advs, err := s.ListAdvisories(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(advs) != 1 {
			t.Fatalf("re-import did not replace: %d advisories", len(advs))
		}
		cat, err := s.LoadCatalog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ms := cat.Match(Target{Vendor: "TP-Link", Model: "Archer AX21", FirmwareVersion: "1.1.3"})
		if m, ok := findMatch(ms, "CVE-2023-1389"); !ok || !m.KnownExploited {
			t.Fatalf("stored catalog does not match: %+v", ms)
		}

		f, err := os.Open(dataset(t, "sbom/fixture-archer-ax21-1.1.3-vulnerable.cdx.json"))
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Import(ctx, "ax21.cdx.json", f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(res.SBOM, "tplink/") {
			t.Fatalf("SBOM attached to %q", res.SBOM)
		}
		sb := mustParse(t, "sbom/synthetic-iotlab-fw.syft.spdx.json").SBOM
		if err := s.AttachSBOM(ctx, "IoTLab", "Cam One", "1.0", "iotlab.spdx.json", sb); err != nil {
			t.Fatal(err)
		}
		got, err := s.SBOMFor(ctx, "iotlab", "cam-one", "1.0")
		if err != nil || len(got.Components) != len(sb.Components) {
			t.Fatalf("SBOMFor = %v, %v", got, err)
		}
		if _, err := s.SBOMFor(ctx, "iotlab", "cam-one", "2.0"); !apperr.Is(err, apperr.NotFound) {
			t.Fatalf("missing SBOM error = %v, want not found", err)
		}
		if _, err := s.Import(ctx, "bad.json", strings.NewReader(`{"catalogVersion":"1","vulnerabilities":[{"cveID":7}]}`)); !apperr.Is(err, apperr.Invalid) {
			t.Fatalf("bad import error = %v, want invalid", err)
		}
	})
}
