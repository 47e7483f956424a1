package ledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/bus"
)

// Limits on one entry, so a runaway producer cannot bloat the log.
const (
	maxFieldBytes = 4096
	maxDataBytes  = 1 << 20
)

// The times an entry may carry: what fits in int64 Unix nanoseconds.
var (
	minTime = time.Unix(0, -1<<63).UTC()
	maxTime = time.Unix(0, 1<<63-1).UTC()
)

// EntryFromEvent returns the entry that records ev. Index is left for the
// ledger to assign.
func EntryFromEvent(ev bus.Event) Entry {
	return Entry{Time: ev.Time, Type: ev.Type, Actor: ev.Actor, Remote: ev.Remote, Subject: ev.Subject, Data: ev.Data}
}

// normalize validates e for appending and puts it in its stored form: time
// in UTC at nanosecond precision (now when zero), strings as valid UTF-8
// without NUL (anything else becomes U+FFFD, since PostgreSQL text cannot
// hold it and the stored form is what gets hashed), data compacted, and
// empty or null data as nil.
func normalize(e Entry, now time.Time) (Entry, error) {
	if e.Type == "" {
		return Entry{}, apperr.InvalidField("type", "is required")
	}
	t := e.Time
	if t.IsZero() {
		t = now
	}
	if t.Before(minTime) || t.After(maxTime) {
		return Entry{}, apperr.InvalidField("time", "%s is outside the years 1678–2262", t.Format(time.RFC3339))
	}
	e.Time = time.Unix(0, t.UnixNano()).UTC()
	for _, f := range []struct {
		name string
		v    *string
	}{{"type", &e.Type}, {"actor", &e.Actor}, {"remote", &e.Remote}, {"subject", &e.Subject}} {
		if len(*f.v) > maxFieldBytes {
			return Entry{}, apperr.InvalidField(f.name, "is %d bytes, more than %d", len(*f.v), maxFieldBytes)
		}
		*f.v = cleanString(*f.v)
	}
	if len(e.Data) > maxDataBytes {
		return Entry{}, apperr.InvalidField("data", "is %d bytes, more than %d", len(e.Data), maxDataBytes)
	}
	data, err := compactData(e.Data)
	if err != nil {
		return Entry{}, err
	}
	e.Data = data
	return e, nil
}

func cleanString(s string) string {
	if utf8.ValidString(s) && !strings.ContainsRune(s, 0) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// compactData returns data in stored form: nil for none or JSON null,
// otherwise valid UTF-8 compact JSON.
func compactData(data []byte) (json.RawMessage, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || string(data) == "null" {
		return nil, nil
	}
	if !utf8.Valid(data) || !json.Valid(data) {
		return nil, apperr.InvalidField("data", "is not valid UTF-8 JSON")
	}
	var b bytes.Buffer
	if err := json.Compact(&b, data); err != nil {
		return nil, apperr.InvalidField("data", "is not valid JSON: %v", err)
	}
	return b.Bytes(), nil
}

// CanonicalBytes returns the bytes whose RFC 6962 leaf hash is the entry's
// leaf (see the package documentation for the exact encoding). It fails
// when the entry's data is not valid JSON, or a string is not valid UTF-8,
// which no appended entry has.
func CanonicalBytes(e Entry) ([]byte, error) {
	b := make([]byte, 0, 128+len(e.Type)+len(e.Actor)+len(e.Remote)+len(e.Subject)+len(e.Data))
	b = append(b, `{"index":`...)
	b = strconv.AppendUint(b, e.Index, 10)
	b = append(b, `,"time":"`...)
	b = e.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	for _, f := range []struct{ key, v string }{{"type", e.Type}, {"actor", e.Actor}, {"remote", e.Remote}, {"subject", e.Subject}} {
		if !utf8.ValidString(f.v) {
			return nil, errors.New(f.key + " is not valid UTF-8")
		}
		b = append(b, ',', '"')
		b = append(b, f.key...)
		b = append(b, '"', ':')
		b = appendString(b, f.v)
	}
	b = append(b, `,"data":`...)
	if len(e.Data) == 0 {
		b = append(b, "null"...)
	} else {
		if !utf8.Valid(e.Data) || !json.Valid(e.Data) {
			return nil, errors.New("data is not valid UTF-8 JSON")
		}
		b = append(b, e.Data...)
	}
	return append(b, '}'), nil
}

// LeafHash returns the entry's RFC 6962 leaf hash: SHA-256(0x00 ||
// CanonicalBytes(e)).
func LeafHash(e Entry) ([]byte, error) {
	c, err := CanonicalBytes(e)
	if err != nil {
		return nil, err
	}
	return hasher.HashLeaf(c), nil
}

// appendString writes s as a JSON string, escaping only '"', '\' and
// control characters below U+0020.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
