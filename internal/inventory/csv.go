package inventory

import (
	"encoding/csv"
	"errors"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fleetward/fleetward/internal/apperr"
)

// CSVColumns are the columns of the device CSV format, in the order
// ExportDevices writes them. ImportDevices takes them in any order and any
// subset; lists (macs, ips, tags) are separated by ';', times are RFC 3339.
// Callers must not modify it.
var CSVColumns = []string{
	"id", "name", "class", "vendor", "model", "serial", "macs", "ips", "firmware_version", "os", "os_version",
	"config_digest", "site", "building", "room", "lat", "lon", "owner", "segment", "tags", "status", "risk_score",
	"first_seen", "last_seen",
}

// csvField maps a CSV column to the device field it sets, as named in
// errors and in importRow.present.
func csvField(col string) string {
	switch col {
	case "site", "building", "room", "lat", "lon":
		return "location." + col
	}
	return col
}

// csvReader reads devices from CSV with a header row.
type csvReader struct {
	r      *csv.Reader
	budget *budgetReader
	cols   []string // the header's columns, in input order
	row    int
}

func newCSVReader(r io.Reader) (*csvReader, error) {
	b := &budgetReader{r: r, limit: maxRowBytes, what: "a CSV record"}
	cr := csv.NewReader(b)
	cr.ReuseRecord = true
	c := &csvReader{r: cr, budget: b}
	header, err := cr.Read()
	b.reset()
	if errors.Is(err, io.EOF) {
		return c, nil // no input, no rows
	}
	if err != nil {
		return nil, csvFatal(err)
	}
	for i, h := range header {
		if i == 0 {
			h = strings.TrimPrefix(h, "\uFEFF") // a byte order mark spreadsheets write
		}
		h = strings.ToLower(strings.TrimSpace(h))
		switch {
		case h == "":
			return nil, apperr.InvalidField("header", "column %d has no name", i+1)
		case !slices.Contains(CSVColumns, h):
			return nil, apperr.InvalidField(fieldName(h), "is not a known CSV column; known: %s", strings.Join(CSVColumns, ", "))
		case slices.Contains(c.cols, h):
			return nil, apperr.InvalidField(h, "appears twice in the header")
		}
		c.cols = append(c.cols, h)
	}
	return c, nil
}

// fieldName makes input text fit to name a field in an error.
func fieldName(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.ToValidUTF8(s, "?")
}

// csvFatal explains a CSV error the reader cannot continue after.
func csvFatal(err error) error {
	if apperr.As(err) != nil {
		return err
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return apperr.InvalidField("body", "CSV line %d, column %d: %v", pe.Line, pe.Column, pe.Err)
	}
	return apperr.InvalidField("body", "reading CSV: %v", err)
}

func (c *csvReader) next() (importRow, error) {
	if c.cols == nil {
		return importRow{}, io.EOF
	}
	rec, err := c.r.Read()
	c.budget.reset()
	if errors.Is(err, io.EOF) {
		return importRow{}, io.EOF
	}
	if err != nil && !errors.Is(err, csv.ErrFieldCount) {
		return importRow{}, csvFatal(err)
	}
	c.row++
	line, _ := c.r.FieldPos(0) // a record always has a field
	r := importRow{row: c.row, line: line, present: make(map[string]bool, len(c.cols))}
	if err != nil {
		r.err = apperr.Errorf(apperr.Invalid, "has %d fields; the header has %d", len(rec), len(c.cols))
		if len(rec) > 0 && c.cols[0] == "id" {
			r.dev.ID = rec[0]
		}
		return r, nil
	}
	for i, v := range rec {
		if err := setCSVField(&r.dev, c.cols[i], v); err != nil {
			r.err = err
			return r, nil
		}
		if c.cols[i] == "status" && strings.TrimSpace(v) == "" {
			continue // an empty status leaves it as it is
		}
		r.present[csvField(c.cols[i])] = true
	}
	return r, nil
}

// setCSVField parses one cell into d. Errors name the device field.
func setCSVField(d *Device, col, v string) error {
	switch col {
	case "id":
		d.ID = strings.TrimSpace(v)
	case "name":
		d.Name = v
	case "class":
		d.Class = v
	case "vendor":
		d.Vendor = v
	case "model":
		d.Model = v
	case "serial":
		d.Serial = v
	case "macs":
		d.MACs = splitList(v)
	case "ips":
		d.IPs = splitList(v)
	case "firmware_version":
		d.FirmwareVersion = v
	case "os":
		d.OS = v
	case "os_version":
		d.OSVersion = v
	case "config_digest":
		d.ConfigDigest = v
	case "site":
		d.Location.Site = v
	case "building":
		d.Location.Building = v
	case "room":
		d.Location.Room = v
	case "lat", "lon":
		x, err := parseOptionalFloat(csvField(col), v)
		if err != nil {
			return err
		}
		if col == "lat" {
			d.Location.Lat = x
		} else {
			d.Location.Lon = x
		}
	case "owner":
		d.Owner = v
	case "segment":
		d.Segment = v
	case "tags":
		d.Tags = splitList(v)
	case "status":
		d.Status = strings.TrimSpace(v)
	case "risk_score":
		x, err := parseOptionalFloat(col, v)
		if err != nil {
			return err
		}
		d.RiskScore = 0
		if x != nil {
			d.RiskScore = *x
		}
	case "first_seen", "last_seen":
		t, err := parseOptionalTime(col, v)
		if err != nil {
			return err
		}
		if col == "first_seen" {
			d.FirstSeen = t
		} else {
			d.LastSeen = t
		}
	}
	return nil
}

// splitList splits a ';'-separated cell, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, item := range strings.Split(v, ";") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func parseOptionalFloat(field, v string) (*float64, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, nil
	}
	x, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
		return nil, apperr.InvalidField(field, "%s is not a number", quote(v))
	}
	return &x, nil
}

func parseOptionalTime(field, v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, apperr.InvalidField(field, "%s is not an RFC 3339 time (e.g. 2025-03-01T12:00:00Z)", quote(v))
	}
	return t, nil
}

// csvWriter writes devices as CSV with CSVColumns.
type csvWriter struct {
	w   *csv.Writer
	rec []string
}

func newCSVWriter(w io.Writer) *csvWriter {
	return &csvWriter{w: csv.NewWriter(w), rec: make([]string, len(CSVColumns))}
}

func (c *csvWriter) begin() error { return c.w.Write(CSVColumns) }

func (c *csvWriter) write(d *Device) error {
	for i, col := range CSVColumns {
		c.rec[i] = csvValue(d, col)
	}
	return c.w.Write(c.rec)
}

func (c *csvWriter) end() error {
	c.w.Flush()
	return c.w.Error()
}

// csvValue formats one cell so that setCSVField reads it back unchanged.
func csvValue(d *Device, col string) string {
	optFloat := func(x *float64) string {
		if x == nil {
			return ""
		}
		return strconv.FormatFloat(*x, 'g', -1, 64)
	}
	optTime := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	switch col {
	case "id":
		return d.ID
	case "name":
		return d.Name
	case "class":
		return d.Class
	case "vendor":
		return d.Vendor
	case "model":
		return d.Model
	case "serial":
		return d.Serial
	case "macs":
		return strings.Join(d.MACs, ";")
	case "ips":
		return strings.Join(d.IPs, ";")
	case "firmware_version":
		return d.FirmwareVersion
	case "os":
		return d.OS
	case "os_version":
		return d.OSVersion
	case "config_digest":
		return d.ConfigDigest
	case "site":
		return d.Location.Site
	case "building":
		return d.Location.Building
	case "room":
		return d.Location.Room
	case "lat":
		return optFloat(d.Location.Lat)
	case "lon":
		return optFloat(d.Location.Lon)
	case "owner":
		return d.Owner
	case "segment":
		return d.Segment
	case "tags":
		return strings.Join(d.Tags, ";")
	case "status":
		return d.Status
	case "risk_score":
		return strconv.FormatFloat(d.RiskScore, 'g', -1, 64)
	case "first_seen":
		return optTime(d.FirstSeen)
	case "last_seen":
		return optTime(d.LastSeen)
	}
	return ""
}
