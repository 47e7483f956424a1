package scan

import (
	"bufio"
	"bytes"
	_ "embed"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/fleetward/fleetward/internal/apperr"
)

// Credential is one username and password pair to try. Source says which
// list it came from ("mirai", "vendor:<vendor>", "file") and Entry is its
// 1-based position in the list the audit was given, so a finding can name
// the entry without repeating the password.
type Credential struct {
	Username string
	Password string
	Source   string
	Entry    int
}

// MaxCredentials is the most entries a credential list may hold.
const MaxCredentials = 10000

//go:embed credlists/default.tsv
var defaultCredentialsTSV []byte

var (
	defaultCredentialsOnce sync.Once
	defaultCredentials     []Credential
)

// DefaultCredentials returns the list shipped in the binary: the Mirai
// scanner's pairs first, then IoT vendor defaults, each entry with its
// source (see docs/CREDITS.md). The caller may modify the returned slice.
func DefaultCredentials() []Credential {
	defaultCredentialsOnce.Do(func() {
		list, err := parseCredentialList(defaultCredentialsTSV, true)
		if err != nil {
			panic("scan: embedded credential list: " + err.Error())
		}
		defaultCredentials = list
	})
	return append([]Credential(nil), defaultCredentials...)
}

// LoadCredentialFile reads a user credential list (see ParseCredentials).
func LoadCredentialFile(path string) ([]Credential, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, apperr.InvalidField("credentials", "read %s: %v", path, err)
	}
	list, err := ParseCredentials(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return list, nil
}

// ParseCredentials parses a user credential list: one pair a line, either
// "user:pass" (the password is everything after the first colon) or
// "user<TAB>pass" (a third tab-separated column is ignored). Blank lines and
// lines starting with # are skipped. Every entry gets the source "file".
// Returns an Invalid error naming the first bad line.
func ParseCredentials(b []byte) ([]Credential, error) {
	return parseCredentialList(b, false)
}

func parseCredentialList(b []byte, embedded bool) ([]Credential, error) {
	var out []Credential
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 4096), 64*1024)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSuffix(sc.Text(), "\r")
		if strings.TrimSpace(text) == "" || strings.HasPrefix(strings.TrimSpace(text), "#") {
			continue
		}
		var user, pass, source string
		if strings.Contains(text, "\t") {
			f := strings.Split(text, "\t")
			user, pass = f[0], f[1]
			if len(f) > 2 {
				source = f[2]
			}
		} else {
			var ok bool
			user, pass, ok = strings.Cut(text, ":")
			if !ok {
				return nil, apperr.InvalidField("credentials", "line %d: want user:password or user<TAB>password", line)
			}
		}
		if user == "" {
			return nil, apperr.InvalidField("credentials", "line %d: empty username", line)
		}
		if len(user) > 255 || len(pass) > 255 {
			return nil, apperr.InvalidField("credentials", "line %d: username or password longer than 255 bytes", line)
		}
		if strings.ContainsAny(user+pass, "\x00\n") {
			return nil, apperr.InvalidField("credentials", "line %d: NUL byte", line)
		}
		if !embedded {
			source = "file"
		} else if source == "" {
			return nil, apperr.InvalidField("credentials", "line %d: no source column", line)
		}
		if len(out) >= MaxCredentials {
			return nil, apperr.InvalidField("credentials", "line %d: more than %d entries", line, MaxCredentials)
		}
		out = append(out, Credential{Username: user, Password: pass, Source: source, Entry: len(out) + 1})
	}
	if err := sc.Err(); err != nil {
		return nil, apperr.InvalidField("credentials", "line %d: %v", line+1, err)
	}
	if len(out) == 0 {
		return nil, apperr.InvalidField("credentials", "no entries")
	}
	return out, nil
}

// PasswordHint shows a password without revealing it: its first and last
// character with four stars between ("x****1"), "(empty)" for no password,
// and "****" for a one-character password.
func PasswordHint(p string) string {
	r := []rune(p)
	switch len(r) {
	case 0:
		return "(empty)"
	case 1:
		return "****"
	}
	return string(r[0]) + "****" + string(r[len(r)-1])
}

// CredentialFinding is the outcome of a credential audit of one service.
// It never holds the password: PasswordHint and Entry identify it.
type CredentialFinding struct {
	// Works is true when a login succeeded.
	Works bool `json:"works"`
	// Service is the protocol audited: "telnet", "ssh", "http" (basic or
	// digest), "mqtt" or "mqtts".
	Service string `json:"service"`
	// Username, Source, Entry and PasswordHint describe the working entry.
	Username     string `json:"username,omitempty"`
	Source       string `json:"source,omitempty"`
	Entry        int    `json:"entry,omitempty"`
	PasswordHint string `json:"password_hint,omitempty"`
	// Attempts is the number of logins tried on this service.
	Attempts int `json:"attempts"`
	// Stopped says why the audit ended before the list did, if it did
	// ("cap", "lockout: ...", "error: ...", "cancelled").
	Stopped string `json:"stopped,omitempty"`
	// Details holds what the login showed (an SSH host key fingerprint,
	// the HTTP auth scheme).
	Details map[string]string `json:"details,omitempty"`
}
