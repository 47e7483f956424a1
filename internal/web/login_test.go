package web_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fleetward/fleetward/internal/actor"
	"github.com/fleetward/fleetward/internal/app"
	"github.com/fleetward/fleetward/internal/auth"
)

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// TestLoginFormRefusesAPostWithoutItsToken shows the login form's CSRF
// protection before any session exists: a post that did not come from the
// form this browser was given (no cookie, or another token) is refused
// without checking the password; the real form logs in.
func TestLoginFormRefusesAPostWithoutItsToken(t *testing.T) {
	dir := t.TempDir()
	ctx := actor.With(context.Background(), actor.Actor{Name: "test"})
	s, err := app.Start(ctx, app.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if _, err := s.Auth.CreateOperator(ctx, "otto", "a sufficiently long password", auth.RoleOperator); err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(filepath.Join(dir, "tls", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(c *http.Client, token string) int {
		t.Helper()
		form := url.Values{"username": {"otto"}, "password": {"a sufficiently long password"}, "next": {"/"}}
		if token != "" {
			form.Set("csrf_token", token)
		}
		resp, err := c.Post(s.URL+"/login", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	// A cross-site post: no login cookie, a made-up token.
	stranger := &http.Client{Timeout: 10 * time.Second, Transport: client.Transport, CheckRedirect: client.CheckRedirect}
	if got := post(stranger, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"); got != http.StatusForbidden {
		t.Fatalf("post without the login cookie = %d, want 403", got)
	}
	resp, err := client.Get(s.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfField.FindSubmatch(body)
	if m == nil {
		t.Fatalf("the login page has no csrf_token field:\n%s", body)
	}
	if got := post(client, ""); got != http.StatusForbidden {
		t.Fatalf("post with the cookie but no token = %d, want 403", got)
	}
	if got := post(client, string(m[1])+"x"); got != http.StatusForbidden {
		t.Fatalf("post with a wrong token = %d, want 403", got)
	}
	if got := post(client, string(m[1])); got != http.StatusSeeOther {
		t.Fatalf("post from the real form = %d, want 303 (logged in)", got)
	}
}
