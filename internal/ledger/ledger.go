// Package ledger is fleetward's tamper-evident record of every state change
// and security event: an append-only RFC 6962 Merkle log with signed
// checkpoints, inclusion and consistency proofs, and verification both
// against the live store and offline from an exported bundle.
//
// # Entries and leaves
//
// Each Entry is a leaf of the tree. Its leaf hash is
// SHA-256(0x00 || canonical bytes), the canonical bytes being this JSON
// object, keys in exactly this order and no whitespace:
//
//	{"index":N,"time":T,"type":S,"actor":S,"remote":S,"subject":S,"data":D}
//
// N is the decimal index; T is the time in UTC as Go's RFC3339Nano
// ("2006-01-02T15:04:05.999999999Z", trailing fractional zeros dropped);
// each S is a JSON string in which only '"', '\' and the characters
// U+0000–U+001F are escaped (the latter always as \u00xx, lowercase hex) and
// everything else is written as its UTF-8 bytes; D is the entry's data
// exactly as stored (compact JSON), or null when it has none. Interior
// nodes are SHA-256(0x01 || left || right). See CanonicalBytes.
//
// # Storage
//
// Appends are serialized on one head row holding the tree size and its
// compact range; every perfect subtree hash is stored as a node (level,
// index), so a proof at any size is a few primary-key reads. Several
// server processes may append to one PostgreSQL database at once.
//
// # Checkpoints
//
// A checkpoint is a signed note (golang.org/x/mod/sumdb/note, Ed25519) whose
// text is the transparency-dev checkpoint format:
//
//	<origin>
//	<size>
//	<base64 root hash>
//
// The signing key is kept in the settings table sealed under the master key
// ("ledger.signing_key"); its verifier key is kept in clear
// ("ledger.verifier_key") so anyone can verify without the master key.
package ledger

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/fleetward/fleetward/internal/store"
)

// Setting names the ledger owns in the settings table.
const (
	SettingSigningKey  = "ledger.signing_key"
	SettingVerifierKey = "ledger.verifier_key"
)

// DefaultOrigin is the checkpoint origin line when Options.Origin is empty.
const DefaultOrigin = "fleetward ledger"

// Entry is one record in the ledger. Entries are immutable once appended:
// the ledger assigns Index (0, 1, 2, … with no gaps) and, when it is zero,
// Time.
type Entry struct {
	Index uint64    `json:"index"`
	Time  time.Time `json:"time"`
	// Type is "<area>.<what>", as bus.Event.Type.
	Type string `json:"type"`
	// Actor is who caused it ("operator:alice", "system").
	Actor string `json:"actor"`
	// Remote is the actor's network address, when known.
	Remote string `json:"remote,omitempty"`
	// Subject is what the entry concerns (a device id, a username).
	Subject string `json:"subject,omitempty"`
	// Data is the payload, compact JSON, or nil.
	Data json.RawMessage `json:"data,omitempty"`
}

// Checkpoint is a signed tree head: the ledger's first Size entries hash
// to Root, and Note is the signed note that says so.
type Checkpoint struct {
	Size uint64    `json:"size"`
	Root []byte    `json:"root"`
	Time time.Time `json:"time"`
	// Note is the signed note text (checkpoint body and signature lines).
	// It is nil only for the empty ledger before its first checkpoint.
	Note []byte `json:"note"`
}

// Sealer seals and opens small secrets bound to a context string;
// *secrets.Keyring is one.
type Sealer interface {
	Seal(plaintext []byte, context string) (string, error)
	Open(sealed, context string) ([]byte, error)
}

// Options configure a Ledger. Sealer is required unless SigningKey is set.
type Options struct {
	// Origin is the first line of every checkpoint; default DefaultOrigin.
	Origin string
	// Sealer protects the signing key at rest.
	Sealer Sealer
	// SigningKey, when set, is the note signer key to sign with
	// ("PRIVATE+KEY+<name>+<hash>+<key>", as note.GenerateKey makes) instead
	// of the stored one; it is not stored. Its verifier key must match a
	// stored verifier key, if there is one.
	SigningKey string
	// CheckpointEvery is how often Run signs a new checkpoint when the
	// ledger grew; default one second.
	CheckpointEvery time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Log receives the ledger's own diagnostics; default slog.Default().
	Log *slog.Logger
}

// Ledger appends to, signs and proves fleetward's Merkle log. It is safe
// for concurrent use, and several Ledgers (in several processes) may share
// one database.
type Ledger struct {
	db       *store.DB
	origin   string
	signer   note.Signer
	verifier note.Verifier
	vkey     string
	every    time.Duration
	now      func() time.Time
	log      *slog.Logger
}

// hasher is the RFC 6962 SHA-256 tree hasher; it is stateless.
var hasher = rfc6962.DefaultHasher

// rangeFactory builds compact ranges with the RFC 6962 node hash.
var rangeFactory = &compact.RangeFactory{Hash: hasher.HashChildren}

// Open returns the ledger stored in db, creating its signing key on first
// use (stored sealed, with its verifier key in clear). Several processes
// opening the same empty database at once agree on one key.
func Open(ctx context.Context, db *store.DB, opts Options) (*Ledger, error) {
	l := &Ledger{db: db, origin: opts.Origin, every: opts.CheckpointEvery, now: opts.Now, log: opts.Log}
	if l.origin == "" {
		l.origin = DefaultOrigin
	}
	if err := validOrigin(l.origin); err != nil {
		return nil, err
	}
	if l.every <= 0 {
		l.every = time.Second
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	skey := opts.SigningKey
	if skey == "" {
		if opts.Sealer == nil {
			return nil, errors.New("open ledger: Options.Sealer is required to keep the signing key")
		}
		var err error
		if skey, err = l.loadOrCreateKey(ctx, opts.Sealer); err != nil {
			return nil, err
		}
	}
	vkey, err := verifierKeyFor(skey)
	if err != nil {
		return nil, fmt.Errorf("open ledger: signing key: %w", err)
	}
	if l.signer, err = note.NewSigner(skey); err != nil {
		return nil, fmt.Errorf("open ledger: signing key: %w", err)
	}
	if l.verifier, err = note.NewVerifier(vkey); err != nil {
		return nil, fmt.Errorf("open ledger: verifier key: %w", err)
	}
	l.vkey = vkey
	if err := l.ensureVerifierKey(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

// VerifierKey returns the note verifier key for this ledger's checkpoints
// ("<name>+<hash>+<base64 key>"). Publish it; pin it when verifying.
func (l *Ledger) VerifierKey() string { return l.vkey }

// Origin returns the checkpoint origin line.
func (l *Ledger) Origin() string { return l.origin }

func validOrigin(origin string) error {
	if strings.ContainsFunc(origin, func(r rune) bool { return r < 0x20 || r == 0x7f }) || strings.TrimSpace(origin) != origin {
		return fmt.Errorf("open ledger: origin %q must be one line without control characters or surrounding spaces", origin)
	}
	return nil
}

// keyName derives the note key name from the origin: note names may not
// contain spaces or '+'.
func keyName(origin string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || r == '+' {
			return '-'
		}
		return r
	}, origin)
}

func (l *Ledger) loadOrCreateKey(ctx context.Context, sealer Sealer) (string, error) {
	sealed, err := readSetting(ctx, l.db, SettingSigningKey)
	if errors.Is(err, sql.ErrNoRows) {
		skey, _, gerr := note.GenerateKey(rand.Reader, keyName(l.origin))
		if gerr != nil {
			return "", fmt.Errorf("open ledger: generate signing key: %w", gerr)
		}
		s, serr := sealer.Seal([]byte(skey), SettingSigningKey)
		if serr != nil {
			return "", fmt.Errorf("open ledger: seal signing key: %w", serr)
		}
		// Another process may be creating one too: the first insert wins and
		// everyone reads it back.
		now := l.now().UnixNano()
		if _, err := l.db.Exec(ctx, `INSERT INTO settings (name, value, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO NOTHING`, SettingSigningKey, s, now); err != nil {
			return "", fmt.Errorf("open ledger: store signing key: %w", err)
		}
		sealed, err = readSetting(ctx, l.db, SettingSigningKey)
	}
	if err != nil {
		return "", fmt.Errorf("open ledger: read signing key: %w", err)
	}
	skey, err := sealer.Open(sealed, SettingSigningKey)
	if err != nil {
		return "", fmt.Errorf("open ledger: unseal signing key (is this the master key the ledger was created with?): %w", err)
	}
	return string(skey), nil
}

func (l *Ledger) ensureVerifierKey(ctx context.Context) error {
	if _, err := l.db.Exec(ctx, `INSERT INTO settings (name, value, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO NOTHING`, SettingVerifierKey, l.vkey, l.now().UnixNano()); err != nil {
		return fmt.Errorf("open ledger: store verifier key: %w", err)
	}
	stored, err := readSetting(ctx, l.db, SettingVerifierKey)
	if err != nil {
		return fmt.Errorf("open ledger: read verifier key: %w", err)
	}
	if stored != l.vkey {
		return fmt.Errorf("open ledger: the stored verifier key %q does not belong to the signing key (verifier %q); "+
			"the settings were altered or the key was replaced", stored, l.vkey)
	}
	return nil
}

func readSetting(ctx context.Context, q store.Querier, name string) (string, error) {
	var v string
	err := q.QueryRow(ctx, `SELECT value FROM settings WHERE name = ?`, name).Scan(&v)
	return v, err
}

// verifierKeyFor derives the note verifier key of a note signer key.
func verifierKeyFor(skey string) (string, error) {
	// The key is base64 and may itself contain '+': cut the fields off the
	// front, as note.NewSigner does.
	priv, rest, _ := strings.Cut(skey, "+")
	kw, rest, _ := strings.Cut(rest, "+")
	name, rest, _ := strings.Cut(rest, "+")
	_, key64, _ := strings.Cut(rest, "+")
	if priv != "PRIVATE" || kw != "KEY" {
		return "", errors.New("not a note signer key (PRIVATE+KEY+<name>+<hash>+<key>)")
	}
	raw, err := base64.StdEncoding.DecodeString(key64)
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return "", errors.New("not an Ed25519 note signer key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	return note.NewEd25519VerifierKey(name, pub)
}

// checkpointText is the unsigned body of a checkpoint note.
func checkpointText(origin string, size uint64, root []byte) string {
	return fmt.Sprintf("%s\n%d\n%s\n", origin, size, base64.StdEncoding.EncodeToString(root))
}

// parseCheckpointText reads origin, size and root from a checkpoint body.
// Extension lines after the root are allowed and ignored.
func parseCheckpointText(text string) (origin string, size uint64, root []byte, err error) {
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 {
		return "", 0, nil, errors.New("checkpoint body has fewer than three lines")
	}
	size, err = strconv.ParseUint(lines[1], 10, 64)
	if err != nil || strconv.FormatUint(size, 10) != lines[1] {
		return "", 0, nil, fmt.Errorf("checkpoint size %q is not a decimal number", lines[1])
	}
	root, err = base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != sha256.Size {
		return "", 0, nil, fmt.Errorf("checkpoint root %q is not a base64 SHA-256 hash", lines[2])
	}
	return lines[0], size, root, nil
}
