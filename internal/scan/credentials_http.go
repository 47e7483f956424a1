package scan

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strings"

	"github.com/fleetward/fleetward/internal/ascii"
)

// digestChallenge is an HTTP Digest challenge (RFC 7616 section 3.3).
type digestChallenge struct {
	Realm, Nonce, Opaque, Algorithm string
	QopAuth                         bool // qop offers "auth"
	Qop                             bool // the challenge has a qop parameter at all
}

// parseAuthParams splits the parameters of a WWW-Authenticate challenge
// (after the scheme) into lower-cased names and unquoted values.
func parseAuthParams(s string) (map[string]string, error) {
	out := map[string]string{}
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return out, nil
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, fmt.Errorf("auth parameter %q: no '='", truncate(printable([]byte(s)), 40))
		}
		name := ascii.Lower(strings.TrimSpace(s[:eq]))
		if name == "" || strings.ContainsAny(name, " \t\",") {
			return nil, fmt.Errorf("auth parameter name %q: not a token", truncate(printable([]byte(name)), 40))
		}
		s = strings.TrimLeft(s[eq+1:], " \t")
		var val string
		if strings.HasPrefix(s, `"`) {
			var sb strings.Builder
			i, closed := 1, false
			for ; i < len(s); i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
					sb.WriteByte(s[i])
					continue
				}
				if s[i] == '"' {
					closed = true
					break
				}
				sb.WriteByte(s[i])
			}
			if !closed {
				return nil, fmt.Errorf("auth parameter %s: unterminated quoted string", name)
			}
			val, s = sb.String(), s[i+1:]
		} else {
			end := strings.IndexAny(s, ", \t")
			if end < 0 {
				end = len(s)
			}
			val, s = s[:end], s[end:]
		}
		if len(out) >= 32 {
			return nil, errors.New("more than 32 auth parameters")
		}
		out[name] = val
	}
}

// parseDigestChallenge parses a `Digest realm="..", nonce="..", qop="auth"`
// header value. Returns an error for another scheme, a missing nonce, or an
// algorithm other than MD5 and SHA-256 (with or without -sess).
func parseDigestChallenge(v string) (digestChallenge, error) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(v), " ")
	if !strings.EqualFold(scheme, "digest") {
		return digestChallenge{}, fmt.Errorf("auth scheme %q is not Digest", truncate(printable([]byte(scheme)), 32))
	}
	params, err := parseAuthParams(rest)
	if err != nil {
		return digestChallenge{}, err
	}
	c := digestChallenge{Realm: params["realm"], Nonce: params["nonce"], Opaque: params["opaque"], Algorithm: params["algorithm"]}
	if c.Nonce == "" {
		return digestChallenge{}, errors.New("digest challenge without a nonce")
	}
	switch strings.ToUpper(c.Algorithm) {
	case "":
		c.Algorithm = "MD5"
	case "MD5", "SHA-256", "MD5-SESS", "SHA-256-SESS":
		c.Algorithm = strings.ToUpper(c.Algorithm)
	default:
		return digestChallenge{}, fmt.Errorf("digest algorithm %q not supported", truncate(printable([]byte(c.Algorithm)), 32))
	}
	if q, ok := params["qop"]; ok {
		c.Qop = true
		for _, o := range strings.Split(q, ",") {
			if strings.EqualFold(strings.TrimSpace(o), "auth") {
				c.QopAuth = true
			}
		}
		if !c.QopAuth {
			return digestChallenge{}, errors.New("digest challenge offers no qop=auth")
		}
	}
	return c, nil
}

// authorization computes the Authorization header for one request
// (RFC 7616 section 3.4, qop=auth; RFC 2069 form when the server sent no qop).
func (c digestChallenge) authorization(user, pass, method, uri, cnonce string) string {
	var h func() hash.Hash = md5.New
	if strings.HasPrefix(c.Algorithm, "SHA-256") {
		h = sha256.New
	}
	sum := func(s string) string {
		x := h()
		io.WriteString(x, s)
		return hex.EncodeToString(x.Sum(nil))
	}
	ha1 := sum(user + ":" + c.Realm + ":" + pass)
	if strings.HasSuffix(c.Algorithm, "-SESS") {
		ha1 = sum(ha1 + ":" + c.Nonce + ":" + cnonce)
	}
	ha2 := sum(method + ":" + uri)
	q := func(s string) string {
		return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
	}
	var resp string
	parts := []string{"username=" + q(user), "realm=" + q(c.Realm), "nonce=" + q(c.Nonce), "uri=" + q(uri), "algorithm=" + c.Algorithm}
	if c.QopAuth {
		const nc = "00000001"
		resp = sum(ha1 + ":" + c.Nonce + ":" + nc + ":" + cnonce + ":auth:" + ha2)
		parts = append(parts, "qop=auth", "nc="+nc, "cnonce="+q(cnonce))
	} else {
		resp = sum(ha1 + ":" + c.Nonce + ":" + ha2)
	}
	parts = append(parts, "response="+q(resp))
	if c.Opaque != "" {
		parts = append(parts, "opaque="+q(c.Opaque))
	}
	return "Digest " + strings.Join(parts, ", ")
}

// pickDigest chooses the strongest Digest challenge among WWW-Authenticate
// values: SHA-256 before MD5.
func pickDigest(values []string) (digestChallenge, bool) {
	var best digestChallenge
	found := false
	for _, v := range values {
		c, err := parseDigestChallenge(v)
		if err != nil {
			continue
		}
		if !found || (strings.HasPrefix(c.Algorithm, "SHA-256") && !strings.HasPrefix(best.Algorithm, "SHA-256")) {
			best, found = c, true
		}
	}
	return best, found
}

// loginHTTP tries one credential on the realm-protected path the banner
// grab found ("/"), by Basic or Digest authentication, whichever the
// server asks for (Digest preferred when it offers both).
func (s *scanner) loginHTTP(ctx context.Context, target string, overTLS bool, c Credential, f *CredentialFinding) (bool, error) {
	scheme := "http"
	if overTLS {
		scheme = "https"
	}
	url := scheme + "://" + target + "/"
	client := &http.Client{
		Timeout: 2*s.opts.ReadTimeout + s.opts.Timeout,
		Transport: &http.Transport{
			DialContext:       s.dial,
			DisableKeepAlives: true,
			// Devices present certificates nobody could verify; the banner
			// grab reports the certificate.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()
	do := func(auth string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("User-Agent", "fleetward-scan")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64*1024))
		resp.Body.Close()
		return resp, nil
	}
	first, err := do("")
	if err != nil {
		return false, err
	}
	if first.StatusCode == http.StatusTooManyRequests {
		return false, lockoutErr("HTTP 429 Too Many Requests")
	}
	if first.StatusCode != http.StatusUnauthorized {
		return false, fmt.Errorf("GET / answered %d without credentials", first.StatusCode)
	}
	var auth string
	if dc, ok := pickDigest(first.Header.Values("WWW-Authenticate")); ok {
		f.Details["http_auth"] = "digest " + dc.Algorithm
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		auth = dc.authorization(c.Username, c.Password, http.MethodGet, "/", hex.EncodeToString(b))
	} else {
		f.Details["http_auth"] = "basic"
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.SetBasicAuth(c.Username, c.Password)
		auth = req.Header.Get("Authorization")
	}
	resp, err := do(auth)
	if err != nil {
		return false, err
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return false, lockoutErr("HTTP 429 Too Many Requests")
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return false, nil
	case resp.StatusCode < 400:
		return true, nil
	}
	return false, fmt.Errorf("GET / with credentials answered %d", resp.StatusCode)
}
