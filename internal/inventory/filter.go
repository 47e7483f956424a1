package inventory

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/store"
)

// Filter selects, orders and pages devices. The zero Filter lists every
// device by name, 50 at a time. Within a field, values are alternatives
// (class camera OR sensor); different fields must all match.
type Filter struct {
	Classes  []string // any of these classes
	Vendors  []string // any of these vendors, compared case-insensitively
	Sites    []string // any of these site ids
	Tags     []string // devices with any of these tags
	Statuses []string // any of these statuses
	Group    string   // members of this group
	// RiskMin and RiskMax bound RiskScore, inclusive.
	RiskMin *float64
	RiskMax *float64
	// Query matches, case-insensitively, text in the id, name, vendor,
	// model, serial, IPs, MACs, owner and firmware version; every
	// whitespace-separated term must match.
	Query string
	// Sort is one of SortKeys, optionally prefixed with "-" for descending
	// order; "name" when empty. Ties are broken by id.
	Sort string
	// Cursor continues a listing from DevicePage.NextCursor; it must come
	// from a listing with the same Sort.
	Cursor string
	// Limit is the page size, 1 to MaxLimit; DefaultLimit when 0.
	Limit int
}

// Page sizes.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
)

// maxQueryLen bounds Filter.Query and each filter value.
const maxQueryLen = 256

// maxFilterValues bounds the alternatives in one list parameter.
const maxFilterValues = 100

// sortKey is one way of ordering devices.
type sortKey struct {
	name   string // as in the sort parameter
	column string
	kind   byte // 's' text, 'i' integer, 'f' float
}

// sortKeys are the orders ListDevices offers.
var sortKeys = []sortKey{
	{"name", "name", 's'},
	{"risk", "risk_score", 'f'},
	{"last_seen", "last_seen", 'i'},
	{"first_seen", "first_seen", 'i'},
	{"created_at", "created_at", 'i'},
	{"class", "class", 's'},
	{"vendor", "vendor", 's'},
	{"id", "id", 's'},
}

// SortKeys lists the accepted values of Filter.Sort (each may be prefixed
// with "-"). Callers must not modify it.
var SortKeys = func() []string {
	out := make([]string, len(sortKeys))
	for i, k := range sortKeys {
		out[i] = k.name
	}
	return out
}()

// sortSpec is a parsed Filter.Sort.
type sortSpec struct {
	key  sortKey
	desc bool
}

func (s sortSpec) String() string {
	if s.desc {
		return "-" + s.key.name
	}
	return s.key.name
}

func parseSort(v string) (sortSpec, error) {
	if v == "" {
		return sortSpec{key: sortKeys[0]}, nil
	}
	name, desc := strings.CutPrefix(v, "-")
	for _, k := range sortKeys {
		if k.name == name {
			return sortSpec{key: k, desc: desc}, nil
		}
	}
	return sortSpec{}, apperr.InvalidField("sort", "%s is not a sort order; one of %s, each optionally prefixed with '-'", quote(v), strings.Join(SortKeys, ", "))
}

// filterParams are the query parameters ParseFilter knows.
var filterParams = []string{"class", "vendor", "site", "tag", "status", "group", "risk_min", "risk_max", "q", "sort", "cursor", "limit"}

// ParseFilter reads a Filter from URL query parameters: class, vendor,
// site, tag and status (each a comma-separated list, or repeated), group,
// risk_min, risk_max, q, sort, cursor and limit. An empty value means the
// parameter is absent. Returns an Invalid *apperr.Error naming the
// parameter for an unknown parameter or a malformed value.
func ParseFilter(q url.Values) (Filter, error) {
	var f Filter
	for _, k := range sortedKeys(q) {
		if !slices.Contains(filterParams, k) {
			return Filter{}, apperr.InvalidField(k, "is not a known parameter; known: %s", strings.Join(filterParams, ", "))
		}
	}
	single := func(name string) (string, error) {
		var v string
		for _, x := range q[name] {
			if x == "" {
				continue
			}
			if v != "" {
				return "", apperr.InvalidField(name, "is given more than once")
			}
			v = x
		}
		return v, nil
	}
	list := func(name string) []string {
		var out []string
		for _, x := range q[name] {
			for _, item := range strings.Split(x, ",") {
				if item = strings.TrimSpace(item); item != "" {
					out = append(out, item)
				}
			}
		}
		return out
	}
	f.Classes, f.Vendors, f.Sites, f.Tags, f.Statuses = list("class"), list("vendor"), list("site"), list("tag"), list("status")
	var err error
	if f.Group, err = single("group"); err != nil {
		return Filter{}, err
	}
	for _, r := range []struct {
		name string
		dst  **float64
	}{{"risk_min", &f.RiskMin}, {"risk_max", &f.RiskMax}} {
		v, err := single(r.name)
		if err != nil {
			return Filter{}, err
		}
		if v == "" {
			continue
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(x) {
			return Filter{}, apperr.InvalidField(r.name, "must be a number from 0 to 100")
		}
		*r.dst = &x
	}
	if f.Query, err = single("q"); err != nil {
		return Filter{}, err
	}
	if f.Sort, err = single("sort"); err != nil {
		return Filter{}, err
	}
	if f.Cursor, err = single("cursor"); err != nil {
		return Filter{}, err
	}
	limit, err := single("limit")
	if err != nil {
		return Filter{}, err
	}
	if limit != "" {
		if f.Limit, err = strconv.Atoi(limit); err != nil || f.Limit < 1 || f.Limit > MaxLimit {
			return Filter{}, apperr.InvalidField("limit", "must be an integer from 1 to %d", MaxLimit)
		}
	}
	if _, err := f.compile(); err != nil {
		return Filter{}, err
	}
	return f, nil
}

// compiledFilter is a checked Filter, normalized for the query.
type compiledFilter struct {
	Filter
	sort   sortSpec
	cursor *cursor
	terms  []string // lower-cased query terms
}

// compile checks f and returns it ready for the query. Errors are Invalid
// and name the query parameter.
func (f Filter) compile() (compiledFilter, error) {
	c := compiledFilter{Filter: f}
	var err error
	if len(f.Classes) > maxFilterValues || len(f.Vendors) > maxFilterValues || len(f.Sites) > maxFilterValues ||
		len(f.Tags) > maxFilterValues || len(f.Statuses) > maxFilterValues {
		return c, apperr.InvalidField(firstLong(f), "lists more than %d values", maxFilterValues)
	}
	c.Classes = make([]string, 0, len(f.Classes))
	for _, v := range f.Classes {
		v = strings.ToLower(v)
		if !slices.Contains(Classes, v) {
			return c, apperr.InvalidField("class", "%s is not a device class; one of %s", quote(v), strings.Join(Classes, ", "))
		}
		c.Classes = append(c.Classes, v)
	}
	c.Vendors = make([]string, 0, len(f.Vendors))
	for _, v := range f.Vendors {
		if v, err = cleanText("vendor", v, MaxTextLen); err != nil {
			return c, err
		}
		c.Vendors = append(c.Vendors, strings.ToLower(v))
	}
	for _, v := range f.Sites {
		if msg := checkID(v); msg != "" {
			return c, apperr.InvalidField("site", "%s", msg)
		}
	}
	c.Tags = make([]string, 0, len(f.Tags))
	for _, v := range f.Tags {
		v = strings.ToLower(v)
		if msg := checkTag(v); msg != "" {
			return c, apperr.InvalidField("tag", "%s", msg)
		}
		c.Tags = append(c.Tags, v)
	}
	for _, v := range f.Statuses {
		if !slices.Contains(Statuses, v) {
			return c, apperr.InvalidField("status", "%s is not a status; one of %s", quote(v), strings.Join(Statuses, ", "))
		}
	}
	if f.Group != "" {
		if msg := checkID(f.Group); msg != "" {
			return c, apperr.InvalidField("group", "%s", msg)
		}
	}
	for _, r := range []struct {
		name string
		v    *float64
	}{{"risk_min", f.RiskMin}, {"risk_max", f.RiskMax}} {
		if r.v != nil && (math.IsNaN(*r.v) || *r.v < 0 || *r.v > 100) {
			return c, apperr.InvalidField(r.name, "must be a number from 0 to 100")
		}
	}
	if f.RiskMin != nil && f.RiskMax != nil && *f.RiskMin > *f.RiskMax {
		return c, apperr.InvalidField("risk_max", "is below risk_min")
	}
	if len(f.Query) > maxQueryLen || !utf8.ValidString(f.Query) || strings.ContainsRune(f.Query, 0) {
		return c, apperr.InvalidField("q", "must be valid UTF-8 text of at most %d bytes", maxQueryLen)
	}
	c.terms = strings.Fields(strings.ToLower(f.Query))
	if c.sort, err = parseSort(f.Sort); err != nil {
		return c, err
	}
	switch {
	case f.Limit == 0:
		c.Limit = DefaultLimit
	case f.Limit < 1 || f.Limit > MaxLimit:
		return c, apperr.InvalidField("limit", "must be an integer from 1 to %d", MaxLimit)
	}
	if f.Cursor != "" {
		cur, err := decodeCursor(f.Cursor, c.sort)
		if err != nil {
			return c, err
		}
		c.cursor = &cur
	}
	return c, nil
}

func firstLong(f Filter) string {
	switch {
	case len(f.Classes) > maxFilterValues:
		return "class"
	case len(f.Vendors) > maxFilterValues:
		return "vendor"
	case len(f.Sites) > maxFilterValues:
		return "site"
	case len(f.Tags) > maxFilterValues:
		return "tag"
	default:
		return "status"
	}
}

// filtered reports whether the filter selects anything but every device.
func (c *compiledFilter) filtered() bool {
	return len(c.Classes)+len(c.Vendors)+len(c.Sites)+len(c.Statuses)+len(c.Tags)+len(c.terms) > 0 ||
		c.Group != "" || c.RiskMin != nil || c.RiskMax != nil
}

// where returns the SQL condition (without "WHERE") and its arguments for
// everything but the cursor; "1 = 1" when nothing is filtered.
//
// walkSort (SQLite only) keeps the filter columns off their indexes with
// SQLite's no-op unary '+', so the query walks the sort order's index and
// filters as it goes: for a broad filter that visits a few rows per result
// instead of sorting every match. SQLite's planner does not weigh LIMIT, so
// it would otherwise pick the filter's index.
func (c *compiledFilter) where(walkSort bool) (string, []any) {
	var conds []string
	var args []any
	col := func(name string) string {
		if walkSort && name != c.sort.key.column {
			return "+" + name
		}
		return name
	}
	in := func(column string, values []string) {
		if len(values) == 0 {
			return
		}
		conds = append(conds, col(column)+" IN ("+store.Placeholders(len(values))+")")
		args = append(args, anys(values)...)
	}
	in("class", c.Classes)
	in("vendor_key", c.Vendors)
	in("site", c.Sites)
	in("status", c.Statuses)
	if len(c.Tags) > 0 {
		conds = append(conds, col("id")+" IN (SELECT device_id FROM device_tags WHERE tag IN ("+store.Placeholders(len(c.Tags))+"))")
		args = append(args, anys(c.Tags)...)
	}
	if c.Group != "" {
		conds = append(conds, col("id")+" IN (SELECT device_id FROM group_members WHERE group_id = ?)")
		args = append(args, c.Group)
	}
	if c.RiskMin != nil {
		conds = append(conds, col("risk_score")+" >= ?")
		args = append(args, *c.RiskMin)
	}
	if c.RiskMax != nil {
		conds = append(conds, col("risk_score")+" <= ?")
		args = append(args, *c.RiskMax)
	}
	for _, t := range c.terms {
		conds = append(conds, `search LIKE ? ESCAPE '\'`)
		args = append(args, "%"+escapeLike(t)+"%")
	}
	if len(conds) == 0 {
		return "1 = 1", nil
	}
	return strings.Join(conds, " AND "), args
}

// escapeLike escapes LIKE's wildcards with a backslash.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// cursor is a position in a listing: the sort it was made for and the last
// row's sort value and id. Listing resumes strictly after it.
type cursor struct {
	Sort  string `json:"s"`
	Value string `json:"v"` // the sort value, formatted by its kind
	ID    string `json:"i"`
}

// cursorArg returns the sort value as the query argument.
func (c *cursor) arg(k sortKey) any {
	switch k.kind {
	case 'i':
		n, _ := strconv.ParseInt(c.Value, 10, 64) // checked in decodeCursor
		return n
	case 'f':
		x, _ := strconv.ParseFloat(c.Value, 64)
		return x
	}
	return c.Value
}

// maxCursorLen bounds an encoded cursor: a 256-character value and an id
// fit easily.
const maxCursorLen = 2048

func encodeCursor(spec sortSpec, d *Device) string {
	var v string
	switch spec.key.name {
	case "name":
		v = d.Name
	case "risk":
		v = strconv.FormatFloat(d.RiskScore, 'g', -1, 64)
	case "last_seen":
		v = strconv.FormatInt(store.Nanos(d.LastSeen), 10)
	case "first_seen":
		v = strconv.FormatInt(store.Nanos(d.FirstSeen), 10)
	case "created_at":
		v = strconv.FormatInt(store.Nanos(d.CreatedAt), 10)
	case "class":
		v = d.Class
	case "vendor":
		v = d.Vendor
	case "id":
		v = d.ID
	}
	b, _ := json.Marshal(cursor{Sort: spec.String(), Value: v, ID: d.ID}) // strings always encode
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor parses a cursor and checks it was made for spec. Errors are
// Invalid on the field "cursor".
func decodeCursor(s string, spec sortSpec) (cursor, error) {
	bad := apperr.InvalidField("cursor", "is malformed; use next_cursor from a previous page as it is")
	if len(s) > maxCursorLen {
		return cursor{}, bad
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, bad
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil || c.ID == "" || checkID(c.ID) != "" {
		return cursor{}, bad
	}
	if c.Sort != spec.String() {
		return cursor{}, apperr.InvalidField("cursor", "was made for sort %s, not %s; start again without a cursor", quote(c.Sort), quote(spec.String()))
	}
	switch spec.key.kind {
	case 's':
		// Stored text is valid UTF-8 without control characters; anything
		// else was not made by encodeCursor (and PostgreSQL refuses NUL).
		if _, err := cleanText("cursor", c.Value, maxCursorLen); err != nil {
			return cursor{}, bad
		}
	case 'i':
		if _, err := strconv.ParseInt(c.Value, 10, 64); err != nil {
			return cursor{}, bad
		}
	case 'f':
		if x, err := strconv.ParseFloat(c.Value, 64); err != nil || math.IsNaN(x) {
			return cursor{}, bad
		}
	}
	return c, nil
}
