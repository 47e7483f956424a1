package auth

import (
	"regexp"
	"strings"
	"testing"

	"github.com/fleetward/fleetward/internal/store/storetest"
)

func TestPasswordHashIsArgon2idPHC(t *testing.T) {
	h, err := hashPassword(testPassword, currentParams)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^\$argon2id\$v=19\$m=65536,t=2,p=2\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`).MatchString(h) {
		t.Fatalf("hash %q is not the expected PHC string", h)
	}
	h2, _ := hashPassword(testPassword, currentParams)
	if h == h2 {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
	tests := []struct {
		name     string
		password string
		want     bool
	}{
		{"the right password matches", testPassword, true},
		{"a wrong password does not match", testPassword + "!", false},
		{"an empty password does not match", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := verifyPassword(h, tt.password)
			if err != nil || ok != tt.want || rehash {
				t.Fatalf("verify = %v, rehash %v, %v; want %v, false, nil", ok, rehash, err, tt.want)
			}
		})
	}
}

func TestVerifyAsksToRehashOldParameters(t *testing.T) {
	old, err := hashPassword(testPassword, argonParams{Memory: 8 * 1024, Time: 1, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	ok, rehash, err := verifyPassword(old, testPassword)
	if err != nil || !ok || !rehash {
		t.Fatalf("verify old hash = %v, rehash %v, %v; want true, true, nil", ok, rehash, err)
	}
}

func TestMalformedStoredHashesNeverMatch(t *testing.T) {
	for _, h := range []string{
		"", "plain", "$argon2i$v=19$m=65536,t=2,p=2$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=18$m=65536,t=2,p=2$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=999999999,t=2,p=2$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=65536,t=0,p=2$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=65536,t=2,p=0$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=65536,t=2,p=2$!!$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$t=2,m=65536,p=2$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
	} {
		if ok, _, err := verifyPassword(h, testPassword); ok || err == nil {
			t.Errorf("verify(%q) = %v, %v; want false and an error", h, ok, err)
		}
	}
}

func TestPasswordRules(t *testing.T) {
	tests := []struct {
		name, password, username string
		refused                  bool
	}{
		{"a passphrase is accepted", "plum orchard at dusk 42", "ada", false},
		{"a long random string is accepted", "Xk9#mQ2$vL7pR4wZ", "ada", false},
		{"eleven characters are too few", "Xk9#mQ2$vL7", "ada", true},
		{"twelve multibyte characters are enough", "ÄÖÜäöüßéèêëï", "ada", false},
		{"more than 1024 characters are too many", strings.Repeat("abcdefgh", 129), "ada", true},
		{"a common password is refused", "password1234", "ada", true},
		{"a common password in capitals is refused", "PASSWORD1234", "ada", true},
		{"a common word with digits and symbols is refused", "Password2024!", "ada", true},
		{"a repeated character is refused", "aaaaaaaaaaaaaaaa", "ada", true},
		{"the username is refused", "adalovelace1", "adalovelace1", true},
		{"the username with digits is refused", "adalovelace#2024", "adalovelace", true},
		{"a line break is refused", "plum orchard\nat dusk", "ada", true},
		{"invalid UTF-8 is refused", "plum orchard \xff at dusk", "ada", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validatePassword(tt.password, tt.username)
			if !tt.refused {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			wantField(t, err, "password")
		})
	}
}

func TestCreateOperatorRefusesWeakPasswordsNamingTheField(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		f := newFixture(t, e, true)
		for _, pw := range []string{"", "short", "password1234", "qwerty123456", "Welcome2026!", "zzzzzzzzzzzzzzzz", "margaret.h.1"} {
			_, err := f.svc.CreateOperator(f.ctx, "margaret.h", pw, RoleOperator)
			wantField(t, err, "password")
		}
		if ops, _ := f.svc.ListOperators(f.ctx); len(ops) != 0 {
			t.Fatalf("refused operators were stored: %v", ops)
		}
	})
}

func BenchmarkPasswordHash(b *testing.B) {
	var h string
	for b.Loop() {
		var err error
		if h, err = hashPassword(testPassword, currentParams); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/hash")
	b.ReportMetric(float64(currentParams.Memory)/1024, "MiB/hash")
	if ok, _, _ := verifyPassword(h, testPassword); !ok {
		b.Fatal("hash does not verify")
	}
}

func FuzzParsePasswordHash(f *testing.F) {
	h, _ := hashPassword(testPassword, argonParams{Memory: 8 * 1024, Time: 1, Threads: 1})
	for _, s := range []string{h, "", "$", "$argon2id$v=19$m=8,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA", "$argon2id$v=19$m=65536,t=2,p=2$$"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePHC(s)
		if err != nil {
			return
		}
		if p.params.Memory > maxMemoryKiB || p.params.Time > maxTime || p.params.Threads == 0 || len(p.salt) < 8 || len(p.key) < 16 {
			t.Fatalf("parsePHC(%q) accepted out-of-range values %+v", s, p.params)
		}
	})
}
