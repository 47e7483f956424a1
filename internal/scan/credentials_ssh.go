package scan

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// loginSSH tries one credential by SSH password authentication, and by
// keyboard-interactive answering every question with the password. It
// records the host key fingerprint and never opens a session: a successful
// authentication is closed at once.
func (s *scanner) loginSSH(ctx context.Context, target string, c Credential, f *CredentialFinding) (bool, error) {
	dctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	conn, err := s.dial(dctx, "tcp", target)
	cancel()
	if err != nil {
		return false, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	_ = conn.SetDeadline(time.Now().Add(slowAttempt))
	cfg := &ssh.ClientConfig{
		User: c.Username,
		Auth: []ssh.AuthMethod{
			ssh.Password(c.Password),
			ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range answers {
					answers[i] = c.Password
				}
				return answers, nil
			}),
		},
		// The audit reports the key instead of trusting it: there is no
		// known_hosts for devices found by a scan.
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			f.Details["ssh_host_key"] = key.Type() + " " + ssh.FingerprintSHA256(key)
			return nil
		},
		ClientVersion: "SSH-2.0-fleetward_scan",
		Timeout:       s.opts.Timeout,
	}
	sc, chans, reqs, err := ssh.NewClientConn(conn, target, cfg)
	if err == nil {
		go ssh.DiscardRequests(reqs)
		go func() {
			for ch := range chans {
				_ = ch.Reject(ssh.Prohibited, "no channels")
			}
		}()
		sc.Close()
		return true, nil
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "unable to authenticate") && !strings.Contains(msg, "password") && !strings.Contains(msg, "keyboard-interactive"):
		// "attempted methods [none]": the server offers neither method.
		return false, errNoPasswordAuth
	case strings.Contains(msg, "unable to authenticate"):
		return false, nil
	case lockoutText(msg):
		return false, lockoutErr("ssh: " + msg)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false, err
	}
	return false, err
}
