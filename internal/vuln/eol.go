package vuln

import (
	_ "embed"
	"encoding/json"
	"strings"
	"sync"
	"time"
)

//go:embed eol.json
var eolJSON []byte

type eolRow struct {
	Product string `json:"product"`
	Series  string `json:"series"`
	EOL     string `json:"eol"`
	Source  string `json:"source"`
	Note    string `json:"note"`
}

var eolTable = sync.OnceValues(func() (map[string][]Lifecycle, string) {
	var f struct {
		Compiled string   `json:"compiled"`
		Rows     []eolRow `json:"rows"`
	}
	if err := json.Unmarshal(eolJSON, &f); err != nil {
		panic("vuln: embedded eol.json: " + err.Error()) // a build defect, caught by TestEOL
	}
	out := map[string][]Lifecycle{}
	for _, r := range f.Rows {
		d, err := time.Parse(time.DateOnly, r.EOL)
		if err != nil {
			panic("vuln: embedded eol.json: " + err.Error())
		}
		out[r.Product] = append(out[r.Product], Lifecycle{Product: r.Product, Series: r.Series, EOL: d, Source: r.Source, Note: r.Note})
	}
	return out, f.Compiled
})

// EOLCompiled is the date (YYYY-MM-DD) the embedded end-of-life table was
// compiled; later releases and changed dates are not in it.
func EOLCompiled() string { _, c := eolTable(); return c }

// eolAliases folds package and OS names onto the table's product names.
var eolAliases = map[string]string{
	"linuxkernel": "linux", "kernel": "linux",
	"libssl": "openssl", "libssl3": "openssl", "libssl11": "openssl", "libopenssl": "openssl", "libopenssl3": "openssl",
	"raspbian": "debian", "debiangnulinux": "debian",
}

// EOL looks up the lifecycle of product at version in the embedded table:
// the row whose series is the longest prefix of version at a component
// boundary ("4.4.60" is series 4.4, "1.1.1k" is 1.1.1, "3.16.85" is 3).
// Expired says whether now is on or after the end-of-life date. The second
// result is false when the product or series is not in the table.
func EOL(product, version string, now time.Time) (Lifecycle, bool) {
	p := fold(product)
	if a, ok := eolAliases[p]; ok {
		p = a
	}
	rows, _ := eolTable()
	v := strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(version), "v"), "V"))
	var best Lifecycle
	found := false
	for _, r := range rows[p] {
		rest, ok := strings.CutPrefix(v, r.Series)
		if !ok || (rest != "" && isDigit(rest[0])) {
			continue
		}
		if !found || len(r.Series) > len(best.Series) {
			best, found = r, true
		}
	}
	if found {
		best.Expired = !now.Before(best.EOL)
	}
	return best, found
}
