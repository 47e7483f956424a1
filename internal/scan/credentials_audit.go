package scan

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Credential audit defaults.
const (
	// DefaultCredentialRate is the most login attempts per host per minute.
	DefaultCredentialRate = 6
	// DefaultCredentialCap is the most login attempts per host in one scan.
	DefaultCredentialCap = 30
	// slowAttempt is how long one attempt may take before the audit reads
	// the delay as a lockout sign and stops.
	slowAttempt = 20 * time.Second
)

// errLockout marks an attempt that showed a sign of lockout: the service
// refused connections after earlier attempts, said "too many", or became
// very slow. The audit of the host stops.
var errLockout = errors.New("lockout")

// errNoPasswordAuth means the service does not take a password at all (an
// SSH server with password authentication disabled): nothing to audit.
var errNoPasswordAuth = errors.New("password authentication not offered")

// loginFunc tries one credential on one service: ok is true when the login
// succeeded; an error means the attempt said nothing about the credential
// (wrapping errLockout or errNoPasswordAuth to end the audit).
type loginFunc func(ctx context.Context, target string, c Credential, f *CredentialFinding) (ok bool, err error)

// credentialLogin returns how to audit a port, or nil when the port is not
// one the audit knows how to log in to.
func (s *scanner) credentialLogin(p *Port) (string, loginFunc) {
	switch {
	case p.Service == "telnet" && p.Plaintext:
		return "telnet", s.loginTelnet
	case p.Service == "ssh" && p.Details["ssh_protocol"] != "":
		return "ssh", s.loginSSH
	case (p.Service == "http" || p.Service == "https") && p.Details["status"] == "401":
		switch strings.ToLower(p.Details["auth_scheme"]) {
		case "basic", "digest":
			tls := p.Service == "https"
			return p.Service, func(ctx context.Context, target string, c Credential, f *CredentialFinding) (bool, error) {
				return s.loginHTTP(ctx, target, tls, c, f)
			}
		}
	case (p.Service == "mqtt" || p.Service == "mqtts") && p.Details["anonymous"] == "refused":
		tls := p.Service == "mqtts"
		return p.Service, func(ctx context.Context, target string, c Credential, f *CredentialFinding) (bool, error) {
			return s.loginMQTT(ctx, target, tls, c)
		}
	}
	return "", nil
}

// hostLimiter spaces the login attempts on one host and counts them
// against the per-host cap.
type hostLimiter struct {
	interval time.Duration
	next     time.Time
	used     int
	cap      int
}

func (l *hostLimiter) wait(ctx context.Context) error {
	if d := time.Until(l.next); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	l.next = time.Now().Add(l.interval)
	l.used++
	return nil
}

// auditHost tries the credential list on every audit-able port of a host,
// one connection at a time, and records a finding on each port tried.
func (s *scanner) auditHost(ctx context.Context, addr netip.Addr, ports []Port) {
	lim := &hostLimiter{interval: time.Duration(float64(time.Minute) / s.opts.CredentialRate), cap: s.opts.CredentialCap}
	for i := range ports {
		p := &ports[i]
		service, login := s.credentialLogin(p)
		if login == nil {
			if p.AnonymousMQTT() {
				p.Credentials = &CredentialFinding{Works: true, Service: p.Service, Username: "(anonymous)", Source: "anonymous", PasswordHint: "(empty)"}
			}
			continue
		}
		target := netip.AddrPortFrom(addr, uint16(p.Number)).String()
		f := &CredentialFinding{Service: service, Details: map[string]string{}}
		p.Credentials = f
		s.auditService(ctx, target, login, lim, f)
		if len(f.Details) == 0 {
			f.Details = nil
		}
		if strings.HasPrefix(f.Stopped, "lockout") {
			// A host that locks one service out may lock them all.
			return
		}
	}
}

func (s *scanner) auditService(ctx context.Context, target string, login loginFunc, lim *hostLimiter, f *CredentialFinding) {
	for i, c := range s.opts.Credentials {
		if lim.used >= lim.cap {
			f.Stopped = "cap: " + strconv.Itoa(lim.cap) + " attempts on this host"
			return
		}
		if err := lim.wait(ctx); err != nil {
			f.Stopped = "cancelled"
			return
		}
		if s.opts.CredentialProgress != nil {
			s.opts.CredentialProgress(target, f.Service, i+1, min(len(s.opts.Credentials), lim.cap))
		}
		f.Attempts++
		start := time.Now()
		actx, cancel := context.WithTimeout(ctx, slowAttempt)
		ok, err := login(actx, target, c, f)
		cancel()
		took := time.Since(start)
		switch {
		case ok:
			f.Works, f.Username, f.Source, f.Entry, f.PasswordHint = true, c.Username, c.Source, c.Entry, PasswordHint(c.Password)
			return
		case errors.Is(err, errNoPasswordAuth):
			f.Attempts-- // nothing was tried: the attempt does not count
			lim.used--
			f.Stopped = err.Error()
			return
		case errors.Is(err, errLockout):
			f.Stopped = err.Error()
			return
		case err != nil && isRefused(err) && f.Attempts > 1:
			f.Stopped = "lockout: connection refused after " + strconv.Itoa(f.Attempts-1) + " attempts"
			return
		case took >= slowAttempt:
			f.Stopped = "lockout: an attempt took " + took.Round(time.Second).String()
			return
		case err != nil:
			f.Stopped = "error: " + err.Error()
			return
		case ctx.Err() != nil:
			f.Stopped = "cancelled"
			return
		}
	}
}

func isRefused(err error) bool {
	var oe *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || (errors.As(err, &oe) && oe.Op == "dial")
}

// lockoutText reports whether a service's answer says it is refusing
// logins for now.
func lockoutText(s string) bool {
	l := strings.ToLower(s)
	for _, w := range []string{"too many", "locked", "try again later", "temporarily blocked"} {
		if strings.Contains(l, w) {
			return true
		}
	}
	return false
}

func lockoutErr(what string) error { return fmt.Errorf("%w: %s", errLockout, what) }

// auditHosts runs the credential audit on every host found, hosts in
// parallel (up to Concurrency), one connection at a time per host.
func (s *scanner) auditHosts(ctx context.Context, found map[netip.Addr][]Port) error {
	sem := make(chan struct{}, s.opts.Concurrency)
	var wg sync.WaitGroup
	for a, ports := range found {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			slices.SortFunc(ports, func(x, y Port) int { return x.Number - y.Number })
			s.auditHost(ctx, a, ports)
		}()
	}
	wg.Wait()
	return ctx.Err()
}
