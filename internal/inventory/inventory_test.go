package inventory

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/bus"
	"github.com/fleetward/fleetward/internal/store"
	"github.com/fleetward/fleetward/internal/store/storetest"
)

// recordingLedger is the test double for the ledger. Like the real one it
// writes inside the caller's transaction — one settings row per event,
// "test.ledger.<seq>.<event id>" — so a rolled-back change leaves no record, and what
// a test reads back with ledgerEvents is exactly what was committed.
type recordingLedger struct {
	mu  sync.Mutex
	seq int
}

func (l *recordingLedger) RecordTx(ctx context.Context, tx *store.Tx, evs ...bus.Event) error {
	if tx == nil {
		return errors.New("recording ledger: RecordTx needs the caller's transaction")
	}
	args := make([]any, 0, 3*len(evs))
	l.mu.Lock()
	for _, ev := range evs {
		if err := bus.ValidateType(ev.Type); err != nil {
			l.mu.Unlock()
			return fmt.Errorf("recording ledger: %w", err)
		}
		b, err := json.Marshal(ev)
		if err != nil {
			l.mu.Unlock()
			return err
		}
		l.seq++
		// The event id keeps names unique when several doubles share a
		// database.
		args = append(args, fmt.Sprintf("test.ledger.%012d.%s", l.seq, ev.ID), string(b), ev.Time.UnixNano())
	}
	l.mu.Unlock()
	for len(args) > 0 {
		n := min(len(args), 3*300)
		q := `INSERT INTO settings (name, value, updated_at) VALUES ` + strings.Repeat("(?, ?, ?),", n/3-1) + "(?, ?, ?)"
		if _, err := tx.Exec(ctx, q, args[:n]...); err != nil {
			return fmt.Errorf("recording ledger: %w", err)
		}
		args = args[n:]
	}
	return nil
}

// ledgerEvents returns the committed ledger entries, oldest first.
func ledgerEvents(t testing.TB, db *store.DB) []bus.Event {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT value FROM settings WHERE name LIKE 'test.ledger.%' ORDER BY name`)
	if err != nil {
		t.Fatalf("read ledger: %v", err)
	}
	defer rows.Close()
	var out []bus.Event
	for rows.Next() {
		var v string
		var ev bus.Event
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(v), &ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// recordingPublisher is the test double for the bus: it keeps what was
// published, fails while fail is set, runs before (when set) first thing in
// Publish, and counts publishes that got an already cancelled context.
type recordingPublisher struct {
	mu        sync.Mutex
	events    []bus.Event
	fail      bool
	before    func()
	cancelled int
}

func (p *recordingPublisher) Publish(ctx context.Context, ev bus.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.before != nil {
		p.before()
	}
	if ctx.Err() != nil {
		p.cancelled++
	}
	if p.fail {
		return errors.New("bus unavailable")
	}
	p.events = append(p.events, ev)
	return nil
}

func (p *recordingPublisher) published() []bus.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]bus.Event(nil), p.events...)
}

// aesSealer is a real AES-256-GCM sealer: random nonce, context as
// additional data.
type aesSealer struct{ aead cipher.AEAD }

func newAESSealer() *aesSealer {
	key := make([]byte, 32)
	rand.Read(key)
	block, _ := aes.NewCipher(key)
	aead, _ := cipher.NewGCM(block)
	return &aesSealer{aead}
}

func (s *aesSealer) Seal(plain []byte, context string) (string, error) {
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte(context))), nil
}

func (s *aesSealer) Open(sealed, context string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil || len(b) < s.aead.NonceSize() {
		return nil, errors.New("malformed sealed value")
	}
	return s.aead.Open(nil, b[:s.aead.NonceSize()], b[s.aead.NonceSize():], []byte(context))
}

// fixture is a Service over one engine with its doubles.
type fixture struct {
	e      storetest.Engine
	s      *Service
	ledger *recordingLedger
	pub    *recordingPublisher
	ctx    context.Context
}

func newFixture(t testing.TB, e storetest.Engine) *fixture {
	t.Helper()
	f := &fixture{e: e, ledger: &recordingLedger{}, pub: &recordingPublisher{},
		ctx: actor.With(context.Background(), actor.Actor{Name: "operator:ada", Remote: "192.0.2.7"})}
	f.s = NewService(e.DB, f.ledger, f.pub, newAESSealer(), nil)
	return f
}

func (f *fixture) site(t testing.TB, id string) {
	t.Helper()
	if _, err := f.s.CreateSite(f.ctx, Site{ID: id, Name: "Site " + id}); err != nil {
		t.Fatalf("create site %s: %v", id, err)
	}
}

func ptr[T any](v T) *T { return &v }

// fullDevice returns a device with every field set.
func fullDevice(id, site string) Device {
	return Device{
		ID: id, Name: "Lobby camera " + id, Class: "camera", Vendor: "Axis", Model: "P3245-LVE", Serial: "ACCC8E" + id,
		MACs: []string{"AC-CC-8E-12-34-56", "ac:cc:8e:12:34:57"}, IPs: []string{"10.1.2.3", "::ffff:10.1.2.4", "2001:db8::1"},
		FirmwareVersion: "10.12.3", OS: "AXIS OS", OSVersion: "10.12", ConfigDigest: "sha256:" + strings.Repeat("AB", 32),
		Location: Location{Site: site, Building: "North", Room: "1.01", Lat: ptr(52.52), Lon: ptr(13.405)},
		Owner:    "facilities", Segment: "cctv", Tags: []string{"Entrance", "pci", "entrance"}, Status: StatusActive,
		FirstSeen: time.Date(2024, 1, 2, 3, 4, 5, 6000, time.UTC), LastSeen: time.Date(2025, 6, 7, 8, 9, 10, 11000, time.UTC),
		RiskScore: 42.5, Attributes: map[string]string{"poe_port": "sw1/0/12", "note": "mounted above door"},
		Secrets: map[string]string{"admin_password": "correct horse battery staple", "snmp_community": "s3cr3t-community"},
	}
}

// genVendors are the vendors generated fleets draw from.
var genVendors = []string{"Axis", "Hikvision", "Siemens", "Honeywell", "Philips", "GE Healthcare", "Cisco", "Ubiquiti",
	"Bosch", "Schneider Electric", "Rockwell", "Johnson Controls", "Signify", "Sonos", "Samsung", "LG", "HP", "Brother",
	"Assa Abloy", "Garmin", "Dahua", "Moxa", "Advantech", "Zebra"}

var genTags = []string{"pci", "critical", "legacy", "eol", "guest", "ot", "clinical", "lab", "wave:1", "wave:2", "floor-3"}

// genDevices returns n realistic devices, the same for the same seed, at
// the given sites. Ids are "dev-<seed>-<i>".
func genDevices(n int, seed uint64, sites []string) []Device {
	r := mrand.New(mrand.NewPCG(seed, 0x1ee7))
	now := time.Date(2025, 9, 1, 12, 0, 0, 0, time.UTC)
	statuses := []string{StatusActive, StatusActive, StatusActive, StatusActive, StatusActive, StatusActive, StatusPending, StatusQuarantined, StatusRetired, StatusUnmanaged}
	out := make([]Device, n)
	for i := range out {
		class := Classes[r.IntN(len(Classes))]
		d := Device{
			ID:              fmt.Sprintf("dev-%d-%06d", seed, i),
			Name:            fmt.Sprintf("%s %s %d", genVendors[r.IntN(len(genVendors))], class, r.IntN(5000)),
			Class:           class,
			Vendor:          genVendors[r.IntN(len(genVendors))],
			Model:           fmt.Sprintf("M%d-%c", r.IntN(900)+100, 'A'+rune(r.IntN(6))),
			Serial:          fmt.Sprintf("SN%010X", r.Uint64()&0xffffffffff),
			MACs:            []string{fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", r.IntN(256), r.IntN(256), i>>16&255, i>>8&255, i&255)},
			IPs:             []string{fmt.Sprintf("10.%d.%d.%d", r.IntN(256), i>>8&255, i&255)},
			FirmwareVersion: fmt.Sprintf("%d.%d.%d", r.IntN(5), r.IntN(20), r.IntN(100)),
			OS:              []string{"linux", "rtos", "vxworks", "windows-iot", ""}[r.IntN(5)],
			Owner:           []string{"facilities", "it", "clinical-engineering", "security", ""}[r.IntN(5)],
			Segment:         []string{"cctv", "bms", "ot", "guest", "medical"}[r.IntN(5)],
			Status:          statuses[r.IntN(len(statuses))],
			FirstSeen:       now.Add(-time.Duration(r.IntN(365*24)) * time.Hour),
			LastSeen:        now.Add(-time.Duration(r.IntN(72*60)) * time.Minute),
			RiskScore:       math.Round(r.Float64()*1000) / 10,
		}
		if len(sites) > 0 {
			d.Location.Site = sites[r.IntN(len(sites))]
			d.Location.Building = fmt.Sprintf("B%d", r.IntN(4))
			d.Location.Room = fmt.Sprintf("%d.%02d", r.IntN(5), r.IntN(40))
		}
		if r.IntN(3) == 0 {
			d.Location.Lat, d.Location.Lon = ptr(math.Round((r.Float64()*180-90)*1e5)/1e5), ptr(math.Round((r.Float64()*360-180)*1e5)/1e5)
		}
		for range r.IntN(4) {
			d.Tags = append(d.Tags, genTags[r.IntN(len(genTags))])
		}
		if r.IntN(4) == 0 {
			d.Attributes = map[string]string{"rack": fmt.Sprintf("R%d", r.IntN(40))}
		}
		out[i] = d
	}
	return out
}

// normalize returns d as the Service stores it, for comparisons.
func normalize(t testing.TB, d Device) Device {
	t.Helper()
	n, err := d.normalized()
	if err != nil {
		t.Fatalf("normalize %s: %v", d.ID, err)
	}
	return n
}

// sameDevice reports the first difference between two devices' contents,
// ignoring what the Service keeps (created_at, updated_at, version) and
// secret values; "" when they are alike.
func sameDevice(a, b Device) string {
	strip := func(d Device) Device {
		d.CreatedAt, d.UpdatedAt, d.Version, d.Secrets = time.Time{}, time.Time{}, 0, nil
		return d
	}
	ja, _ := json.Marshal(strip(a))
	jb, _ := json.Marshal(strip(b))
	if string(ja) != string(jb) {
		return fmt.Sprintf("\n got %s\nwant %s", ja, jb)
	}
	return ""
}
