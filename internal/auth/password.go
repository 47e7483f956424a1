package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/fleetward/fleetward/internal/apperr"
)

// argonParams are the cost parameters of an argon2id hash.
type argonParams struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}

// currentParams is what new hashes use: the RFC 9106 "second recommended"
// profile scaled to 64 MiB, about 100 ms on one server core. A stored hash
// with other parameters is replaced at the operator's next login.
var currentParams = argonParams{Memory: 64 * 1024, Time: 2, Threads: 2}

const (
	saltLen = 16
	keyLen  = 32
	// Limits a stored hash may ask for, so a corrupted row cannot make a
	// login allocate gigabytes or spin for minutes.
	maxMemoryKiB = 1 << 20
	maxTime      = 16
)

// phcB64 is the PHC string format's base64: standard alphabet, no padding.
var phcB64 = base64.RawStdEncoding

// hashPassword returns the PHC string
// $argon2id$v=19$m=65536,t=2,p=2$<salt>$<hash> of password with a fresh
// salt.
func hashPassword(password string, p argonParams) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, phcB64.EncodeToString(salt), phcB64.EncodeToString(key)), nil
}

// phcHash is a parsed argon2id PHC string.
type phcHash struct {
	params argonParams
	salt   []byte
	key    []byte
}

var errBadPHC = errors.New("not an argon2id PHC string")

// parsePHC parses "$argon2id$v=19$m=<KiB>,t=<n>,p=<n>$<salt>$<hash>".
func parsePHC(s string) (phcHash, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return phcHash{}, errBadPHC
	}
	var h phcHash
	fields := strings.Split(parts[3], ",")
	if len(fields) != 3 {
		return phcHash{}, errBadPHC
	}
	for i, name := range []string{"m", "t", "p"} {
		val, ok := strings.CutPrefix(fields[i], name+"=")
		if !ok {
			return phcHash{}, errBadPHC
		}
		n, err := strconv.ParseUint(val, 10, 32)
		if err != nil {
			return phcHash{}, errBadPHC
		}
		switch name {
		case "m":
			h.params.Memory = uint32(n)
		case "t":
			h.params.Time = uint32(n)
		case "p":
			if n > 255 {
				return phcHash{}, errBadPHC
			}
			h.params.Threads = uint8(n)
		}
	}
	p := h.params
	if p.Time == 0 || p.Time > maxTime || p.Threads == 0 || p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemoryKiB {
		return phcHash{}, fmt.Errorf("%w: parameters m=%d,t=%d,p=%d out of range", errBadPHC, p.Memory, p.Time, p.Threads)
	}
	var err error
	if h.salt, err = phcB64.DecodeString(parts[4]); err != nil || len(h.salt) < 8 {
		return phcHash{}, errBadPHC
	}
	if h.key, err = phcB64.DecodeString(parts[5]); err != nil || len(h.key) < 16 || len(h.key) > 128 {
		return phcHash{}, errBadPHC
	}
	return h, nil
}

// verifyPassword reports whether password matches the PHC string, and
// whether the hash should be replaced because its parameters are not the
// current ones. A malformed stored hash is an error, never a match.
func verifyPassword(phc, password string) (ok, rehash bool, err error) {
	h, err := parsePHC(phc)
	if err != nil {
		return false, false, err
	}
	key := argon2.IDKey([]byte(password), h.salt, h.params.Time, h.params.Memory, h.params.Threads, uint32(len(h.key)))
	ok = subtle.ConstantTimeCompare(key, h.key) == 1
	return ok, h.params != currentParams || len(h.key) != keyLen, nil
}

// Password rules.
const (
	minPasswordChars = 12
	maxPasswordChars = 1024
	minDistinctChars = 5
)

// commonPasswords are refused outright (compared case-insensitively). Only
// ones of the minimum length or more matter; shorter ones fail that rule.
var commonPasswords = map[string]bool{
	"123456789012": true, "1234567890123": true, "12345678901234": true, "123456123456": true,
	"1q2w3e4r5t6y": true, "1qaz2wsx3edc": true, "qwertyuiopas": true, "qwertyuiop123": true,
	"qwerty123456": true, "asdfghjkl123": true, "zxcvbnm12345": true, "qazwsxedcrfv": true,
	"passwordpassword": true, "password1234": true, "password12345": true, "password123!": true,
	"passw0rd1234": true, "p@ssw0rd1234": true, "p@ssword1234": true, "iloveyou1234": true,
	"letmein12345": true, "welcome12345": true, "welcome@1234": true, "changeme1234": true,
	"administrator": true, "administrator1": true, "admin1234567": true, "adminadmin123": true,
	"abcdefghijkl": true, "abcdefgh1234": true, "abc123abc123": true, "trustno1trustno1": true,
	"football1234": true, "baseball1234": true,
	"princess1234": true, "sunshine1234": true, "superman1234": true, "starwars1234": true,
	"michael12345": true, "jennifer1234": true, "whatever1234": true, "master123456": true,
	"dragon123456": true, "monkey123456": true, "shadow123456": true, "charlie12345": true,
	"computer1234": true, "internet1234": true, "security1234": true, "secret123456": true,
	"default12345": true, "fleetward123": true, "fleetward1234": true, "fleetwardadmin": true,
}

// commonStems are words that, followed only by digits or punctuation, make a
// guessable password ("Password2024!", "fleetward#1").
var commonStems = []string{
	"password", "passw0rd", "p@ssw0rd", "p@ssword", "qwerty", "qwertyuiop", "letmein", "welcome", "admin",
	"administrator", "root", "changeme", "iloveyou", "fleetward", "secret", "default", "master", "monkey",
	"dragon", "football", "baseball", "sunshine", "princess", "superman", "trustno1", "login", "test",
	"guest", "abc123", "summer", "winter", "spring", "autumn", "camera", "device", "operator", "auditor",
}

// validatePassword applies the password rules and returns an Invalid
// *apperr.Error naming the field "password" when one is broken. username
// may be empty.
func validatePassword(password, username string) error {
	if !utf8.ValidString(password) {
		return apperr.InvalidField("password", "is not valid UTF-8")
	}
	n := utf8.RuneCountInString(password)
	if n < minPasswordChars {
		return apperr.InvalidField("password", "is %d characters long; at least %d are required (a passphrase of a few words is easiest)", n, minPasswordChars)
	}
	if n > maxPasswordChars {
		return apperr.InvalidField("password", "is %d characters long; at most %d are allowed", n, maxPasswordChars)
	}
	distinct := map[rune]bool{}
	for _, r := range password {
		if unicode.IsControl(r) {
			return apperr.InvalidField("password", "must not contain control characters (line breaks, tabs)")
		}
		distinct[r] = true
	}
	if len(distinct) < minDistinctChars {
		return apperr.InvalidField("password", "uses only %d different characters; at least %d are required", len(distinct), minDistinctChars)
	}
	lower := strings.ToLower(password)
	if username != "" && strings.Contains(lower, strings.ToLower(username)) && len(lower) < 2*len(username)+4 {
		return apperr.InvalidField("password", "must not be the username or a variation of it")
	}
	if commonPasswords[lower] || commonPasswords[strings.ReplaceAll(lower, " ", "")] {
		return apperr.InvalidField("password", "is a commonly used password; choose another")
	}
	stem := strings.TrimRightFunc(lower, func(r rune) bool { return unicode.IsDigit(r) || unicode.IsPunct(r) || unicode.IsSymbol(r) || r == ' ' })
	stem = strings.TrimLeftFunc(stem, func(r rune) bool { return unicode.IsDigit(r) || unicode.IsPunct(r) || unicode.IsSymbol(r) || r == ' ' })
	for _, s := range commonStems {
		if stem == s || (username != "" && stem == strings.ToLower(username)) {
			return apperr.InvalidField("password", "is a common word with digits or symbols around it; choose another")
		}
	}
	return nil
}
