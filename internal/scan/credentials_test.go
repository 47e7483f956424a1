package scan

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/fleetward/fleetward/internal/apperr"
)

func TestParseCredentials(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Credential
		wantErr string
	}{
		{"colon lines keep everything after the first colon as the password", "root:xc3511\nadmin:a:b\n",
			[]Credential{{"root", "xc3511", "file", 1}, {"admin", "a:b", "file", 2}}, ""},
		{"tab lines take the first two columns", "# comment\n\nroot\t\tnote\r\n",
			[]Credential{{"root", "", "file", 1}}, ""},
		{"an empty password after the colon is no password", "admin:\n", []Credential{{"admin", "", "file", 1}}, ""},
		{"a line without a separator is named", "root:x\n# c\nnonsense\n", nil, "line 3"},
		{"an empty username is named", "root:x\n:pw\n", nil, "line 2: empty username"},
		{"a list of comments only has no entries", "# nothing\n", nil, "no entries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCredentials([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !apperr.Is(err, apperr.Invalid) {
					t.Fatalf("err = %v, want an Invalid error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseCredentials: %v", err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDefaultCredentialsStartWithMiraiThenVendorDefaults(t *testing.T) {
	list := DefaultCredentials()
	if len(list) < 80 {
		t.Fatalf("%d entries, want the Mirai list plus vendor defaults", len(list))
	}
	seen := map[string]bool{}
	mirai := 0
	for i, c := range list {
		if c.Entry != i+1 {
			t.Errorf("entry %d numbered %d", i+1, c.Entry)
		}
		key := c.Username + "\x00" + c.Password
		if seen[key] {
			t.Errorf("entry %d (%s) duplicates an earlier one", c.Entry, c.Username)
		}
		seen[key] = true
		switch {
		case c.Source == "mirai":
			if i != mirai {
				t.Errorf("entry %d is a Mirai pair after a vendor one", c.Entry)
			}
			mirai++
		case !strings.HasPrefix(c.Source, "vendor:"):
			t.Errorf("entry %d: source %q", c.Entry, c.Source)
		}
	}
	if mirai != 61 {
		t.Errorf("%d Mirai pairs, want 61 (62 in scanner.c, guest:12345 twice)", mirai)
	}
	if list[0].Username != "root" || list[0].Password != "xc3511" {
		t.Errorf("first entry %s, want root/xc3511", list[0].Username)
	}
	// The two pairs whose comments in scanner.c are wrong, as decoded.
	for _, want := range []string{"Administrator\x00meinsm", "admin\x004321"} {
		if !seen[want] {
			t.Errorf("decoded Mirai pair %q missing", strings.ReplaceAll(want, "\x00", ":"))
		}
	}
	if seen["Administrator\x00admin"] {
		t.Error("Administrator:admin comes from a wrong comment in scanner.c, not from the encoded table")
	}
}

func TestPasswordHint(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", "(empty)"}, {"x", "****"}, {"xc3511", "x****1"}, {"ab", "a****b"}, {"pässwörd", "p****d"},
	} {
		if got := PasswordHint(tt.in); got != tt.want {
			t.Errorf("PasswordHint(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestDigestAuthorizationMatchesRFC7616Example checks the responses of the
// example in RFC 7616 section 3.9.1.
func TestDigestAuthorizationMatchesRFC7616Example(t *testing.T) {
	for _, tt := range []struct{ alg, want string }{
		{"MD5", "8ca523f5e9506fed4657c9700eebdbec"},
		{"SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"},
	} {
		c, err := parseDigestChallenge(`Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=` + tt.alg +
			`, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`)
		if err != nil {
			t.Fatalf("%s: parse: %v", tt.alg, err)
		}
		h := c.authorization("Mufasa", "Circle of Life", "GET", "/dir/index.html", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")
		if !strings.Contains(h, `response="`+tt.want+`"`) {
			t.Errorf("%s: %s\nwant response %s", tt.alg, h, tt.want)
		}
	}
}

func TestTelnetLoginStateMachine(t *testing.T) {
	tests := []struct {
		name  string
		steps []string
		want  []telnetAction
	}{
		{"busybox login then shell prompt", []string{"\r\ncam login: ", "Password: ", "\r\nBusyBox v1.35\r\n# "},
			[]telnetAction{telnetSendUser, telnetSendPass, telnetSuccess}},
		{"busybox refusal then a new prompt", []string{"login: ", "Password: ", "\r\nLogin incorrect\r\ncam login: "},
			[]telnetAction{telnetSendUser, telnetSendPass, telnetFailure}},
		{"Username prompt and a > prompt", []string{"Username:", "Password:", "\r\nRouter>"},
			[]telnetAction{telnetSendUser, telnetSendPass, telnetSuccess}},
		{"password-only device", []string{"Password: ", "$ "}, []telnetAction{telnetSendPass, telnetSuccess}},
		{"lockout message", []string{"login: ", "Password: ", "Too many failures, try later"},
			[]telnetAction{telnetSendUser, telnetSendPass, telnetLocked}},
		{"a prompt split across reads", []string{"log", "in: ", "Pass", "word: ", "access denied\r\n>"},
			[]telnetAction{telnetWait, telnetSendUser, telnetWait, telnetSendPass, telnetFailure}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l telnetLogin
			for i, s := range tt.steps {
				if got := l.Feed([]byte(s)); got != tt.want[i] {
					t.Fatalf("step %d (%q): action %d, want %d", i, s, got, tt.want[i])
				}
			}
		})
	}
}

// fakeTelnetLogin serves a busybox-like login: IAC negotiation, "login:",
// "Password:", then a shell prompt for user/pass or "Login incorrect".
func fakeTelnetLogin(t *testing.T, user, pass string, attempts *atomic.Int32) int {
	return serveTCP(t, func(c net.Conn) {
		attempts.Add(1)
		c.Write([]byte{255, 253, 1, 255, 251, 3})
		r := &telnetLineReader{c: c}
		c.Write([]byte("\r\ncam login: "))
		u := r.line()
		c.Write([]byte("Password: "))
		p := r.line()
		if u == user && p == pass {
			c.Write([]byte("\r\n\r\nBusyBox v1.35.0 built-in shell (ash)\r\n# "))
			r.line()
			return
		}
		time.Sleep(50 * time.Millisecond)
		c.Write([]byte("\r\nLogin incorrect\r\ncam login: "))
		r.line()
	})
}

type telnetLineReader struct {
	c   net.Conn
	neg telnetNegotiation
	buf []byte
}

func (r *telnetLineReader) line() string {
	b := make([]byte, 256)
	for {
		if i := bytes.IndexAny(r.buf, "\r\n"); i >= 0 {
			l := string(r.buf[:i])
			r.buf = bytes.TrimLeft(r.buf[i:], "\r\n\x00")
			return l
		}
		n, err := r.c.Read(b)
		if err != nil {
			return ""
		}
		// The server side ignores the client's WONT/DONT answers.
		text, _ := r.neg.Feed(b[:n])
		r.buf = append(r.buf, text...)
	}
}

// fakeSSH serves SSH with the given password accepted by password and
// keyboard-interactive auth, or with no password methods at all.
func fakeSSH(t *testing.T, user, pass string, passwordAuth bool) int {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{}
	if passwordAuth {
		cfg.KeyboardInteractiveCallback = func(c ssh.ConnMetadata, ch ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
			ans, err := ch("", "", []string{"Password: "}, []bool{false})
			if err == nil && c.User() == user && len(ans) == 1 && ans[0] == pass {
				return nil, nil
			}
			return nil, fmt.Errorf("denied")
		}
	} else {
		cfg.PublicKeyCallback = func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) { return nil, fmt.Errorf("denied") }
	}
	cfg.AddHostKey(signer)
	return serveTCP(t, func(c net.Conn) {
		sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
		if err != nil {
			return
		}
		defer sc.Close()
		go ssh.DiscardRequests(reqs)
		for ch := range chans {
			t.Errorf("the audit opened a %s channel after logging in", ch.ChannelType())
			ch.Reject(ssh.Prohibited, "no")
		}
	})
}

// fakeMQTT answers CONNECT with CONNACK 0 for user/pass, 4 otherwise
// (5 for a CONNECT without credentials).
func fakeMQTT(t *testing.T, user, pass string) int {
	return serveTCP(t, func(c net.Conn) {
		hdr := make([]byte, 2)
		if _, err := io.ReadFull(c, hdr); err != nil || hdr[0] != 0x10 {
			return // the banner grab tries TLS and HTTP first
		}
		n, shift := int(hdr[1]&0x7f), 7
		for b := hdr[1]; b&0x80 != 0; shift += 7 {
			one := make([]byte, 1)
			io.ReadFull(c, one)
			b = one[0]
			n |= int(b&0x7f) << shift
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(c, body); err != nil || len(body) < 12 {
			return
		}
		flags := body[7]
		rest := body[10:]
		str := func() string {
			l := int(binary.BigEndian.Uint16(rest))
			s := string(rest[2 : 2+l])
			rest = rest[2+l:]
			return s
		}
		str() // client id
		code := byte(5)
		if flags&0xC0 == 0xC0 {
			code = 4
			if str() == user && str() == pass {
				code = 0
			}
		}
		c.Write([]byte{0x20, 2, 0, code})
		io.Copy(io.Discard, c)
	})
}

func httpAuthServer(t *testing.T, user, pass string, digestAlg string) int {
	t.Helper()
	const realm, nonce = "IPCamera", "dcd98b7102dd2f0e8b11d0f600bfb0c093"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok := false
		if digestAlg == "" {
			u, p, has := r.BasicAuth()
			ok = has && u == user && p == pass
			w.Header().Set("WWW-Authenticate", `Basic realm="`+realm+`"`)
		} else {
			w.Header().Add("WWW-Authenticate", `Digest realm="`+realm+`", qop="auth", algorithm=`+digestAlg+`, nonce="`+nonce+`", opaque="5ccc"`)
			if h := r.Header.Get("Authorization"); h != "" {
				params, err := parseAuthParams(strings.TrimPrefix(h, "Digest "))
				if err == nil {
					c := digestChallenge{Realm: realm, Nonce: nonce, Opaque: "5ccc", Algorithm: digestAlg, QopAuth: true, Qop: true}
					want := c.authorization(user, pass, r.Method, r.URL.RequestURI(), params["cnonce"])
					ok = h == want
				}
			}
		}
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, "<title>camera</title>")
	}))
	t.Cleanup(srv.Close)
	return portOf(t, srv.URL)
}

func TestCredentialAuditFindsWeakLoginsAndNeverShowsPasswords(t *testing.T) {
	var telnetAttempts atomic.Int32
	telnet := fakeTelnetLogin(t, "root", "xc3511", &telnetAttempts)
	sshPort := fakeSSH(t, "admin", "admin", true)
	sshNoPass := fakeSSH(t, "admin", "admin", false)
	basic := httpAuthServer(t, "admin", "1234-basic", "")
	digestMD5 := httpAuthServer(t, "admin", "admin", "MD5")
	digestSHA := httpAuthServer(t, "admin", "admin", "SHA-256")
	mqtt := fakeMQTT(t, "admin", "mqttpass")

	list := []Credential{
		{"root", "wrong-one", "file", 1}, {"root", "xc3511", "mirai", 2}, {"admin", "admin", "mirai", 3},
		{"admin", "1234-basic", "vendor:x", 4}, {"admin", "mqttpass", "file", 5},
	}
	ports := []int{telnet, sshPort, sshNoPass, basic, digestMD5, digestSHA, mqtt}
	var progress atomic.Int32
	res, err := Scan(context.Background(), []netip.Addr{loopback}, Options{
		Ports: ports, ReadTimeout: 500 * time.Millisecond, Credentials: list, CredentialRate: 6000, CredentialCap: 100,
		CredentialProgress: func(string, string, int, int) { progress.Add(1) },
	})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	got := map[int]Port{}
	for _, p := range res.Hosts[0].Ports {
		got[p.Number] = p
	}
	tests := []struct {
		name     string
		port     int
		service  string
		works    bool
		user     string
		entry    int
		hint     string
		attempts int
		stopped  string
	}{
		{"busybox-like telnet takes root/xc3511", telnet, "telnet", true, "root", 2, "x****1", 2, ""},
		{"SSH keyboard-interactive takes admin/admin", sshPort, "ssh", true, "admin", 3, "a****n", 3, ""},
		{"SSH without password methods is not attempted", sshNoPass, "ssh", false, "", 0, "", 0, "password authentication not offered"},
		{"HTTP basic takes the vendor pair", basic, "http", true, "admin", 4, "1****c", 4, ""},
		{"HTTP digest MD5 takes admin/admin", digestMD5, "http", true, "admin", 3, "a****n", 3, ""},
		{"HTTP digest SHA-256 takes admin/admin", digestSHA, "http", true, "admin", 3, "a****n", 3, ""},
		{"MQTT takes the file pair", mqtt, "mqtt", true, "admin", 5, "m****s", 5, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := got[tt.port]
			f := p.Credentials
			if f == nil {
				t.Fatalf("port %d (%s, %v): no credential finding", tt.port, p.Service, p.Details)
			}
			if f.Service != tt.service || f.Works != tt.works || f.Username != tt.user || f.Entry != tt.entry ||
				f.PasswordHint != tt.hint || f.Attempts != tt.attempts || f.Stopped != tt.stopped {
				t.Errorf("finding %+v, want service %s works %v user %q entry %d hint %q attempts %d stopped %q",
					*f, tt.service, tt.works, tt.user, tt.entry, tt.hint, tt.attempts, tt.stopped)
			}
		})
	}
	if !strings.HasPrefix(got[sshPort].Credentials.Details["ssh_host_key"], "ssh-ed25519 SHA256:") {
		t.Errorf("ssh host key not recorded: %v", got[sshPort].Credentials.Details)
	}
	if got[digestSHA].Credentials.Details["http_auth"] != "digest SHA-256" {
		t.Errorf("digest SHA-256 server audited with %q", got[digestSHA].Credentials.Details["http_auth"])
	}
	if progress.Load() == 0 {
		t.Error("no progress reported")
	}
	out, _ := json.Marshal(res)
	assertNoPasswords(t, out, credPasswords(list))
}

func TestCredentialAuditKeepsToCapRateAndStopsOnLockout(t *testing.T) {
	var attempts atomic.Int32
	telnet := fakeTelnetLogin(t, "root", "never", &attempts)
	list := []Credential{{"a", "1", "file", 1}, {"b", "2", "file", 2}, {"c", "3", "file", 3}, {"d", "4", "file", 4}}

	t.Run("the cap ends the audit of a host", func(t *testing.T) {
		attempts.Store(0)
		res, err := Scan(context.Background(), []netip.Addr{loopback}, Options{Ports: []int{telnet}, ReadTimeout: 300 * time.Millisecond,
			Credentials: list, CredentialRate: 6000, CredentialCap: 2})
		if err != nil {
			t.Fatal(err)
		}
		f := res.Hosts[0].Ports[0].Credentials
		// One connection is the banner grab.
		if f == nil || f.Works || f.Attempts != 2 || !strings.HasPrefix(f.Stopped, "cap") || attempts.Load() != 3 {
			t.Errorf("finding %+v with %d connections; want 2 attempts stopped by the cap (3 connections)", f, attempts.Load())
		}
	})
	t.Run("attempts are spaced by the per-host rate", func(t *testing.T) {
		start := time.Now()
		_, err := Scan(context.Background(), []netip.Addr{loopback}, Options{Ports: []int{telnet}, ReadTimeout: 300 * time.Millisecond,
			Credentials: list[:3], CredentialRate: 300}) // one every 200 ms
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 400*time.Millisecond {
			t.Errorf("3 attempts at 300/min took %v, want at least 400 ms", d)
		}
	})
	t.Run("a lockout message stops the audit", func(t *testing.T) {
		locked := serveTCP(t, func(c net.Conn) {
			c.Write([]byte{255, 253, 1})
			c.Write([]byte("\r\nlogin: "))
			r := &telnetLineReader{c: c}
			r.line()
			c.Write([]byte("Password: "))
			r.line()
			c.Write([]byte("\r\nToo many login failures\r\n"))
		})
		res, err := Scan(context.Background(), []netip.Addr{loopback}, Options{Ports: []int{locked}, ReadTimeout: 300 * time.Millisecond,
			Credentials: list, CredentialRate: 6000})
		if err != nil {
			t.Fatal(err)
		}
		f := res.Hosts[0].Ports[0].Credentials
		if f == nil || f.Attempts != 1 || !strings.HasPrefix(f.Stopped, "lockout") {
			t.Errorf("finding %+v, want a lockout stop after 1 attempt", f)
		}
	})
	t.Run("refused connections after attempts read as lockout", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		port := ln.Addr().(*net.TCPAddr).Port
		var n atomic.Int32
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				if n.Add(1) == 2 { // banner grab, then one login; then the port closes
					go func() {
						c.Write([]byte{255, 253, 1})
						c.Write([]byte("login: "))
						r := &telnetLineReader{c: c}
						r.line()
						c.Write([]byte("Password: "))
						r.line()
						c.Write([]byte("\r\nLogin incorrect\r\nlogin: "))
						c.Close()
						ln.Close()
					}()
					continue
				}
				c.Write([]byte{255, 253, 1})
				c.Write([]byte("login: "))
				time.Sleep(100 * time.Millisecond)
				c.Close()
			}
		}()
		t.Cleanup(func() { ln.Close() })
		res, err := Scan(context.Background(), []netip.Addr{loopback}, Options{Ports: []int{port}, ReadTimeout: 300 * time.Millisecond,
			Credentials: list, CredentialRate: 6000})
		if err != nil {
			t.Fatal(err)
		}
		f := res.Hosts[0].Ports[0].Credentials
		if f == nil || f.Attempts != 2 || !strings.Contains(f.Stopped, "lockout: connection refused") {
			t.Errorf("finding %+v, want a lockout stop on the refused second attempt", f)
		}
	})
}

func TestNoCredentialsMeansNoLoginAttempts(t *testing.T) {
	var attempts atomic.Int32
	telnet := fakeTelnetLogin(t, "root", "xc3511", &attempts)
	res, err := Scan(context.Background(), []netip.Addr{loopback}, Options{Ports: []int{telnet}, ReadTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Hosts[0].Ports[0].Credentials != nil || attempts.Load() != 1 {
		t.Errorf("finding %+v after %d connections; want none after the banner grab only", res.Hosts[0].Ports[0].Credentials, attempts.Load())
	}
}
