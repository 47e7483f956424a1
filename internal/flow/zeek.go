// Package flow detects known attack behaviour in flow records: Zeek's
// conn.log (TSV with its #fields header, JSON lines, or the labelled CSV
// of the IoT-23 dataset). Where packet detection sees every packet, flow
// detection sees connections, which is what most networks can export; the
// rules here (C2 retry and beaconing, port scans, Telnet scanning,
// brute-force logins, floods) emit alert.Signals like the packet rules.
package flow

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Conn is one Zeek connection record. Missing numeric fields ("-" or
// empty) are zero.
type Conn struct {
	Time      time.Time
	UID       string
	OrigH     netip.Addr
	OrigP     int
	RespH     netip.Addr
	RespP     int
	Proto     string // "tcp", "udp", "icmp"
	Service   string
	Duration  float64
	OrigBytes int64
	RespBytes int64
	// ConnState is Zeek's summary: S0 (attempt, no reply), REJ, SF, …
	ConnState string
	OrigPkts  int64
	RespPkts  int64
	// Label is the dataset's label ("benign", "Malicious"), when the file
	// has one; DetailedLabel its detail ("C&C-Torii").
	Label         string
	DetailedLabel string
}

// Unanswered reports whether the responder never answered: no reply at
// all (S0), refused (REJ), or only the originator's packets seen.
func (c Conn) Unanswered() bool {
	switch c.ConnState {
	case "S0", "REJ", "RSTOS0", "SH", "OTH":
		return c.RespPkts == 0 || c.ConnState == "REJ"
	}
	return false
}

// Malicious reports whether the dataset labels the record malicious.
func (c Conn) Malicious() bool {
	l := strings.ToLower(c.Label)
	return l != "" && l != "benign" && l != "-"
}

// MaxLine bounds one record; a longer line is skipped as malformed.
const MaxLine = 64 << 10

// Reader reads conn.log records in any of the three formats, detected from
// the first line.
type Reader struct {
	br     *bufio.Reader
	line   int
	format string // "tsv", "json", "csv"
	fields map[string]int
	sep    string
	unset  string
	// Skipped counts records that were malformed and skipped.
	Skipped int
	// LastError is the most recent skipped record's error.
	LastError error
}

// NewReader returns a Reader of r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, MaxLine), sep: "\t", unset: "-"}
}

// errLineTooLong is the error of a skipped line longer than MaxLine.
var errLineTooLong = fmt.Errorf("a line longer than %d bytes", MaxLine)

// readLine returns the next line without its line ending, or
// errLineTooLong after passing over one longer than MaxLine; io.EOF at
// the end.
func (r *Reader) readLine() (string, error) {
	b, err := r.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = r.br.ReadSlice('\n')
		}
		if err == nil || errors.Is(err, io.EOF) {
			err = errLineTooLong
		}
		return "", err
	}
	if errors.Is(err, io.EOF) && len(b) > 0 {
		err = nil // the last line, without a line ending
	}
	return strings.TrimRight(string(b), "\r\n"), err
}

// ErrFormat is returned when the input is not a conn.log in a known format.
type ErrFormat struct {
	Line   int
	Reason string
}

func (e *ErrFormat) Error() string { return fmt.Sprintf("conn.log line %d: %s", e.Line, e.Reason) }

// Next returns the next record, io.EOF at the end. A malformed record is
// counted in Skipped and passed over; a file that is not a conn.log at all
// (no header, unknown format) is an *ErrFormat.
func (r *Reader) Next() (Conn, error) {
	for {
		line, err := r.readLine()
		if errors.Is(err, io.EOF) {
			return Conn{}, io.EOF
		}
		r.line++
		if errors.Is(err, errLineTooLong) && r.format != "" {
			r.Skipped++
			r.LastError = fmt.Errorf("conn.log line %d: %w", r.line, err)
			continue
		}
		if err != nil {
			return Conn{}, fmt.Errorf("conn.log line %d: %w", r.line, err)
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		if r.format == "" {
			if err := r.detect(line); err != nil {
				return Conn{}, err
			}
			if r.format != "json" {
				continue // the line was a header
			}
		}
		if r.format == "tsv" && strings.HasPrefix(line, "#") {
			if err := r.header(line); err != nil {
				return Conn{}, err
			}
			continue
		}
		var c Conn
		switch r.format {
		case "json":
			c, err = parseJSON(line)
		default:
			if r.fields == nil {
				return Conn{}, &ErrFormat{r.line, "a record before the #fields header"}
			}
			c, err = r.parseSeparated(line)
		}
		if err != nil {
			r.Skipped++
			r.LastError = fmt.Errorf("conn.log line %d: %w", r.line, err)
			continue
		}
		return c, nil
	}
}

// detect picks the format from the first line.
func (r *Reader) detect(line string) error {
	switch {
	case strings.HasPrefix(line, "#"):
		r.format = "tsv"
		return r.header(line)
	case strings.HasPrefix(line, "{"):
		r.format = "json"
		return nil
	case strings.HasPrefix(line, "ts,"):
		r.format, r.sep = "csv", ","
		r.fields = fieldIndex(strings.Split(line, ","))
		return r.requireFields()
	}
	return &ErrFormat{r.line, "not a Zeek conn.log: expected a #separator/#fields header, JSON objects, or a CSV header starting with ts,"}
}

// header reads a TSV header line: #separator, #unset_field, #fields.
func (r *Reader) header(line string) error {
	key, value, _ := strings.Cut(line, " ")
	if strings.Contains(line, "\t") {
		key, value, _ = strings.Cut(line, r.sep)
	}
	switch key {
	case "#separator":
		sep := strings.TrimSpace(value)
		if s, err := strconv.Unquote(`"` + sep + `"`); err == nil && s != "" {
			r.sep = s
		}
	case "#unset_field":
		r.unset = value
	case "#fields":
		r.fields = fieldIndex(strings.Split(value, r.sep))
		return r.requireFields()
	}
	return nil
}

func fieldIndex(names []string) map[string]int {
	m := make(map[string]int, len(names))
	for i, n := range names {
		m[strings.TrimSpace(n)] = i
	}
	return m
}

func (r *Reader) requireFields() error {
	for _, f := range []string{"ts", "id.orig_h", "id.resp_h", "id.resp_p", "proto"} {
		if _, ok := r.fields[f]; !ok {
			return &ErrFormat{r.line, "the header has no " + f + " field"}
		}
	}
	return nil
}

func (r *Reader) parseSeparated(line string) (Conn, error) {
	cols := strings.Split(line, r.sep)
	get := func(name string) string {
		i, ok := r.fields[name]
		if !ok || i >= len(cols) {
			return ""
		}
		v := cols[i]
		if v == r.unset || v == "-" || v == "(empty)" {
			return ""
		}
		return v
	}
	if len(cols) < len(r.fields)-2 { // IoT-23 rows may lack trailing empties
		return Conn{}, fmt.Errorf("%d columns, the header has %d", len(cols), len(r.fields))
	}
	return build(get)
}

func parseJSON(line string) (Conn, error) {
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader([]byte(line)))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		return Conn{}, fmt.Errorf("not a JSON object: %w", err)
	}
	return build(func(name string) string {
		switch v := m[name].(type) {
		case string:
			return v
		case json.Number:
			return v.String()
		case bool:
			return strconv.FormatBool(v)
		}
		return ""
	})
}

// build makes a Conn from named field values, naming the field at fault.
func build(get func(string) string) (Conn, error) {
	var c Conn
	ts, err := parseTime(get("ts"))
	if err != nil {
		return c, fmt.Errorf("ts: %w", err)
	}
	c.Time = ts
	c.UID = get("uid")
	if c.OrigH, err = netip.ParseAddr(get("id.orig_h")); err != nil {
		return c, fmt.Errorf("id.orig_h: %q is not an IP address", get("id.orig_h"))
	}
	if c.RespH, err = netip.ParseAddr(get("id.resp_h")); err != nil {
		return c, fmt.Errorf("id.resp_h: %q is not an IP address", get("id.resp_h"))
	}
	for _, f := range []struct {
		name string
		into *int
	}{{"id.orig_p", &c.OrigP}, {"id.resp_p", &c.RespP}} {
		if v := get(f.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 65535 {
				return c, fmt.Errorf("%s: %q is not a port", f.name, v)
			}
			*f.into = n
		}
	}
	c.Proto = strings.ToLower(get("proto"))
	if c.Proto == "" {
		return c, fmt.Errorf("proto: missing")
	}
	c.Service, c.ConnState = get("service"), get("conn_state")
	if v := get("duration"); v != "" {
		if c.Duration, err = strconv.ParseFloat(v, 64); err != nil || c.Duration < 0 || math.IsNaN(c.Duration) {
			return c, fmt.Errorf("duration: %q", v)
		}
	}
	for _, f := range []struct {
		name string
		into *int64
	}{{"orig_bytes", &c.OrigBytes}, {"resp_bytes", &c.RespBytes}, {"orig_pkts", &c.OrigPkts}, {"resp_pkts", &c.RespPkts}} {
		if v := get(f.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return c, fmt.Errorf("%s: %q is not a count", f.name, v)
			}
			*f.into = n
		}
	}
	c.Label, c.DetailedLabel = get("label"), get("detailed-label")
	return c, nil
}

// parseTime reads Zeek's epoch seconds ("1540469303.123456") or an ISO
// 8601 time (JSON logs written with LogAscii::json_timestamps).
func parseTime(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, fmt.Errorf("missing")
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if f < 0 || f > 1e11 || math.IsNaN(f) {
			return time.Time{}, fmt.Errorf("%q is out of range", v)
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1e6))*1000).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither epoch seconds nor RFC 3339", v)
	}
	return t.UTC(), nil
}
