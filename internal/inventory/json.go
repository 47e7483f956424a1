package inventory

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"

	"github.com/fleetward/fleetward/internal/apperr"
)

// jsonReader reads a JSON array of devices one element at a time, so a
// large import never holds more than one device's text in memory.
type jsonReader struct {
	dec    *json.Decoder
	budget *budgetReader
	row    int
	ended  bool
}

func newJSONReader(r io.Reader) (*jsonReader, error) {
	b := &budgetReader{r: r, limit: maxRowBytes, what: "a JSON array element"}
	dec := json.NewDecoder(b)
	tok, err := dec.Token()
	b.reset()
	if errors.Is(err, io.EOF) {
		return nil, apperr.InvalidField("body", "is empty; expected a JSON array of devices")
	}
	if err != nil {
		return nil, jsonFatal(err, 0)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, apperr.InvalidField("body", "must be a JSON array of devices")
	}
	return &jsonReader{dec: dec, budget: b}, nil
}

// jsonFatal explains a JSON error the reader cannot continue after.
func jsonFatal(err error, row int) error {
	if apperr.As(err) != nil {
		return err
	}
	where := "JSON"
	if row > 0 {
		where = "JSON array element " + strconv.Itoa(row)
	}
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return apperr.InvalidField("body", "%s: %v (at byte %d)", where, syn, syn.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return apperr.InvalidField("body", "%s: the input ends inside the array", where)
	}
	return apperr.InvalidField("body", "%s: %v", where, err)
}

func (j *jsonReader) next() (importRow, error) {
	if j.ended {
		return importRow{}, io.EOF
	}
	if !j.dec.More() {
		tok, err := j.dec.Token()
		if err != nil {
			return importRow{}, jsonFatal(err, j.row+1)
		}
		if d, ok := tok.(json.Delim); !ok || d != ']' {
			return importRow{}, apperr.InvalidField("body", "expected the end of the device array")
		}
		if _, err := j.dec.Token(); !errors.Is(err, io.EOF) {
			return importRow{}, apperr.InvalidField("body", "has data after the JSON array")
		}
		j.ended = true
		return importRow{}, io.EOF
	}
	var raw json.RawMessage
	if err := j.dec.Decode(&raw); err != nil {
		return importRow{}, jsonFatal(err, j.row+1)
	}
	j.budget.reset()
	j.row++
	d, present, err := decodeDeviceJSON(raw)
	return importRow{row: j.row, dev: d, present: present, err: err}, nil
}

// decodeDeviceJSON decodes one JSON device object strictly: unknown fields
// are errors, read-only fields (secret_names, created_at, updated_at,
// version) are ignored. It returns the keys the object gives (an empty
// status counts as absent). Errors are Invalid *apperr.Error naming the
// field, and never quote a secret's value.
func decodeDeviceJSON(raw []byte) (Device, map[string]bool, error) {
	var d Device
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return Device{}, nil, apperr.Errorf(apperr.Invalid, "must be a JSON object (a device)")
	}
	present := make(map[string]bool, len(obj))
	for _, key := range sortedKeys(obj) {
		target, expect := jsonTarget(&d, key)
		if expect == "" {
			return Device{}, nil, apperr.InvalidField(fieldName(key), "is not a device field")
		}
		if target == nil {
			continue // read-only
		}
		decode := json.Unmarshal
		if key == "location" {
			decode = decodeStrict // the only nested object with named fields
		}
		if err := decode(obj[key], target); err != nil {
			var typ *json.UnmarshalTypeError
			if key == "location" && errors.As(err, &typ) && typ.Field != "" {
				return Device{}, nil, apperr.InvalidField("location."+fieldName(typ.Field), "has the wrong type")
			}
			if key == "location" {
				if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
					return Device{}, nil, apperr.InvalidField("location."+fieldName(strings.Trim(f, `"`)), "is not a location field (site, building, room, lat, lon)")
				}
			}
			return Device{}, nil, apperr.InvalidField(key, "must be %s", expect)
		}
		present[key] = true
	}
	if d.Status == "" {
		delete(present, "status")
	}
	return d, present, nil
}

// decodeStrict decodes one JSON value, rejecting unknown object fields.
func decodeStrict(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// jsonTarget returns where a device's JSON key decodes to and what it must
// be, for errors; a nil target with an expectation is a read-only field,
// and an empty expectation an unknown one.
func jsonTarget(d *Device, key string) (any, string) {
	const (
		str  = "a string"
		list = "an array of strings"
		obj  = "an object of strings"
		tm   = "an RFC 3339 time (e.g. \"2025-03-01T12:00:00Z\")"
	)
	switch key {
	case "id":
		return &d.ID, str
	case "name":
		return &d.Name, str
	case "class":
		return &d.Class, str
	case "vendor":
		return &d.Vendor, str
	case "model":
		return &d.Model, str
	case "serial":
		return &d.Serial, str
	case "macs":
		return &d.MACs, list
	case "ips":
		return &d.IPs, list
	case "firmware_version":
		return &d.FirmwareVersion, str
	case "os":
		return &d.OS, str
	case "os_version":
		return &d.OSVersion, str
	case "config_digest":
		return &d.ConfigDigest, str
	case "location":
		return &d.Location, "an object with site, building, room, lat and lon"
	case "owner":
		return &d.Owner, str
	case "segment":
		return &d.Segment, str
	case "tags":
		return &d.Tags, list
	case "status":
		return &d.Status, str
	case "first_seen":
		return &d.FirstSeen, tm
	case "last_seen":
		return &d.LastSeen, tm
	case "risk_score":
		return &d.RiskScore, "a number"
	case "attributes":
		return &d.Attributes, obj
	case "secrets":
		return &d.Secrets, obj
	case "secret_names", "created_at", "updated_at", "version":
		return nil, "read-only"
	}
	return nil, ""
}

// jsonWriter writes devices as one JSON array, a device per line.
type jsonWriter struct {
	w *bufio.Writer
	n int
}

func newJSONWriter(w io.Writer) *jsonWriter { return &jsonWriter{w: bufio.NewWriterSize(w, 64<<10)} }

func (j *jsonWriter) begin() error {
	_, err := j.w.WriteString("[")
	return err
}

func (j *jsonWriter) write(d *Device) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	sep := ",\n"
	if j.n == 0 {
		sep = "\n"
	}
	j.n++
	if _, err := j.w.WriteString(sep); err != nil {
		return err
	}
	_, err = j.w.Write(b)
	return err
}

func (j *jsonWriter) end() error {
	end := "]\n"
	if j.n > 0 {
		end = "\n]\n"
	}
	if _, err := j.w.WriteString(end); err != nil {
		return err
	}
	return j.w.Flush()
}
