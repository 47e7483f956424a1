package scan

import (
	"strings"
	"testing"
)

func FuzzParseCredentials(f *testing.F) {
	f.Add([]byte("root:xc3511\n# c\nadmin\t\tnote\r\n"))
	f.Add([]byte("a:b:c\n:x\n"))
	f.Add([]byte("\xff:\x00\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		list, err := ParseCredentials(b)
		if err != nil {
			if !strings.Contains(err.Error(), "line") && !strings.Contains(err.Error(), "no entries") {
				t.Fatalf("error %q names no line", err)
			}
			return
		}
		for i, c := range list {
			if c.Username == "" || c.Entry != i+1 || c.Source != "file" {
				t.Fatalf("entry %d: %+v", i+1, c)
			}
			if strings.ContainsAny(c.Username+c.Password, "\n\x00") {
				t.Fatalf("entry %d keeps a line end or NUL", i+1)
			}
		}
	})
}

func FuzzTelnetLogin(f *testing.F) {
	f.Add([]byte("cam login: "), []byte("Password: "), []byte("\r\n# "))
	f.Add([]byte("Username:"), []byte("Login incorrect\r\nlogin:"), []byte(""))
	f.Add([]byte("Password:"), []byte("Too many"), []byte("$"))
	f.Fuzz(func(t *testing.T, a, b, c []byte) {
		var l telnetLogin
		sentPass := false
		for _, chunk := range [][]byte{a, b, c} {
			act := l.Feed(chunk)
			if len(l.text) > maxBanner {
				t.Fatalf("kept %d bytes of text", len(l.text))
			}
			switch act {
			case telnetSendPass:
				sentPass = true
			case telnetSuccess:
				if l.stage == 0 {
					t.Fatalf("success before any credential was sent")
				}
				return
			case telnetFailure, telnetLocked:
				return
			}
		}
		if a := l.Settled(); a == telnetSuccess && !sentPass {
			t.Fatalf("settled as a success without sending the password")
		}
	})
}

func FuzzParseDigestChallenge(f *testing.F) {
	f.Add(`Digest realm="x", nonce="n", qop="auth,auth-int", algorithm=SHA-256, opaque="o"`)
	f.Add(`Digest realm="a\"b", nonce=abc`)
	f.Add(`Digest nonce="unterminated`)
	f.Add(`Basic realm="x"`)
	f.Fuzz(func(t *testing.T, v string) {
		c, err := parseDigestChallenge(v)
		if err != nil {
			return
		}
		if c.Nonce == "" {
			t.Fatalf("accepted %q without a nonce", v)
		}
		switch c.Algorithm {
		case "MD5", "SHA-256", "MD5-SESS", "SHA-256-SESS":
		default:
			t.Fatalf("accepted algorithm %q", c.Algorithm)
		}
		h := c.authorization("u", "p", "GET", "/", "cn")
		if !strings.HasPrefix(h, "Digest ") || strings.ContainsAny(h, "\r\n") && !strings.ContainsAny(v, "\r\n") {
			t.Fatalf("authorization %q", h)
		}
	})
}
